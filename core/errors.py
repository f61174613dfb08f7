"""One error tree for the whole gateway.

Each class pins its HTTP status and the error type of both dialects; the HTTP edge renders
whichever envelope the route speaks (OpenAI or Anthropic). Adapters translate foreign
exceptions (curl_cffi, botocore, redis) into these at their boundary.

    GatewayError                      500  server_error           / api_error
    ├── InternalError                 500  server_error           / api_error
    ├── InvalidRequest                400  invalid_request_error  / invalid_request_error
    │   ├── MethodNotAllowed          405
    │   ├── RequestTimeout            408  (the client sent its request too slowly)
    │   └── HeadersTooLarge           431
    ├── AuthenticationFailed          401  invalid_request_error  / authentication_error
    ├── PermissionDenied              403  permission_error       / permission_error
    ├── NotFound                      404  invalid_request_error  / not_found_error
    ├── RequestTooLarge               413  invalid_request_error  / request_too_large
    ├── RateLimited                   429  rate_limit_exceeded    / rate_limit_error
    ├── UpstreamError                 502  upstream_error         / api_error
    ├── Overloaded                    503  overloaded             / overloaded_error
    │   └── StoreUnavailable          503
    └── UpstreamTimeout               504  timeout                / api_error
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    status: ClassVar[int] = 500
    openai_type: ClassVar[str] = "server_error"
    anthropic_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str = "The server had an error while processing your request.",
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}

    def openai_body(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.openai_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def anthropic_body(self) -> dict[str, object]:
        return {"type": "error", "error": {"type": self.anthropic_type, "message": self.message}}


class InternalError(GatewayError):
    """An unexpected fault; the message names the request id, never the cause."""


class InvalidRequest(GatewayError):
    status = 400
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"


class MethodNotAllowed(InvalidRequest):
    status = 405


class RequestTimeout(InvalidRequest):
    """The request line, headers or body did not arrive within the server's read timeouts."""

    status = 408
    default_code = "request_timeout"


class HeadersTooLarge(InvalidRequest):
    """The request line and headers exceed the server's limit (checked before auth)."""

    status = 431
    default_code = "request_header_fields_too_large"


class AuthenticationFailed(GatewayError):
    status = 401
    openai_type = "invalid_request_error"
    anthropic_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    openai_type = "permission_error"
    anthropic_type = "permission_error"


class NotFound(GatewayError):
    status = 404
    openai_type = "invalid_request_error"
    anthropic_type = "not_found_error"


class RequestTooLarge(GatewayError):
    status = 413
    openai_type = "invalid_request_error"
    anthropic_type = "request_too_large"
    default_code = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    openai_type = "rate_limit_exceeded"
    anthropic_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    status = 502
    openai_type = "upstream_error"
    anthropic_type = "api_error"
    default_code = "upstream_error"


class Overloaded(GatewayError):
    status = 503
    openai_type = "overloaded"
    anthropic_type = "overloaded_error"
    default_code = "overloaded"


class StoreUnavailable(Overloaded):
    default_code = "store_unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    openai_type = "timeout"
    anthropic_type = "api_error"
    default_code = "upstream_timeout"
