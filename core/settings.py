"""Settings: one frozen object, built from an injected mapping and validated at start.

`Settings.from_env(mapping)` is the only constructor the application uses. It never reads
`os.environ` itself: `functions/_wiring.py` passes the environment (and an optional `.env`).
Every field is named after its variable; a wrong value raises `SettingsError`, whose message
names the variable and the form it accepts, so a bad deploy stops at start-up, not mid-request.
This module declares the fields; the forms they accept (the value types in their annotations) and
the reading of variables live in `core/settings_forms.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.aliases import ModelAliases
from core.settings_forms import (
    FOREIGN_VARIABLES,
    PREFIX,
    AliasText,
    CommaList,
    HttpUrl,
    JobsUrl,
    OptionalHttpUrl,
    Origins,
    ProxyList,
    ProxyUrl,
    SecretKeys,
    ServiceUrl,
    SettingsError,
    StatsigValue,
    StoreUrl,
    describe,
    parse_dotenv,
    read_env,
    variable,
)

__all__ = [
    "BEHAVIOUR_FIELDS",
    "FOREIGN_VARIABLES",
    "PREFIX",
    "SECRET_FIELDS",
    "Settings",
    "SettingsError",
    "parse_dotenv",
]

SECRET_FIELDS = frozenset(
    {
        "api_keys",
        "metrics_key",
        "admin_key",
        "secret_key",
        "cf_cookies",
        "media_secret",
        "reasoning_secret",
        "upstash_redis_rest_token",
        "cron_secret",
        "proxy_url",
        "proxy_urls",
        "statsig_value",
    }
)

# Behaviour an operator may change at run time from the console: kept in the store as overrides
# of the environment and picked up by every instance within seconds (functions/_wiring.py).
BEHAVIOUR_FIELDS = (
    "image_format",
    "retry_budget",
    "cooldown_seconds",
    "quota_refresh_basic_seconds",
    "quota_refresh_super_seconds",
    "quota_refresh_heavy_seconds",
    "batch_concurrency",
    "show_reasoning",
)


class Settings(BaseModel):
    """Every setting of the gateway. The README's table is generated from these descriptions."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    api_keys: CommaList = Field(
        default=(), description="Comma-separated client API keys. Empty: open, loopback only."
    )
    admin_key: str | None = Field(default=None, description="Key for /admin routes (Bearer or x-api-key).")
    secret_key: SecretKeys = Field(
        default=None,
        description="Seals account tokens at rest (AES-256-GCM): 32 random bytes in base64; several comma-separated to rotate (the first seals). Required in production.",
    )
    env: Literal["development", "production"] = Field(
        default="development", description="`production` refuses to start without keys."
    )
    host: str = Field(default="127.0.0.1", description="Address `grokgate serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `grokgate serve` listens on.")
    store: StoreUrl = Field(
        default="sqlite:///./data/grokgate.db",
        description="Account store: `sqlite:///path`, `redis://…`, `rediss://…`, `upstash`, `dynamodb://TABLE`.",
    )
    media: str = Field(default="./data/media", description="Media store: a folder, or `s3://bucket/prefix`.")
    public_url: OptionalHttpUrl = Field(
        default=None, description="Public base URL of the gateway, used in media links."
    )
    cors_origins: Origins = Field(
        default=(),
        description="Comma-separated browser origins allowed to call the gateway (CORS), e.g. "
        "`https://app.example.com`; `*` allows any. Empty: no browser access.",
    )
    upstream_url: HttpUrl = Field(default="https://grok.com", description="Grok web app base URL.")
    assets_url: HttpUrl = Field(default="https://assets.grok.com", description="Grok assets host base URL.")
    accounts_url: HttpUrl = Field(default="https://accounts.x.ai", description="xAI accounts host base URL.")
    proxy_url: ProxyUrl = Field(default=None, description="Egress proxy for upstream calls (http/socks5).")
    proxy_urls: ProxyList = Field(
        default=(),
        description="Comma-separated egress pool (http/https/socks5/socks4); an account is pinned to one; `{account}` is replaced by the account id. Wins over GROKGATE_PROXY_URL.",
    )
    proxy_cooldown: float = Field(
        default=60.0, ge=0, description="Seconds a proxy rests after a transport failure through it."
    )
    statsig: Literal["local", "signer", "manual"] = Field(
        default="local",
        description="`x-statsig-id`: `local` signs in process from grok.com's page, `signer` asks GROKGATE_STATSIG_SIGNER_URL, `manual` sends GROKGATE_STATSIG_VALUE.",
    )
    statsig_signer_url: ServiceUrl = Field(
        default=None, description="Signer URL (v3 protocol) for GROKGATE_STATSIG=signer."
    )
    statsig_value: StatsigValue = Field(
        default=None, description="The fixed x-statsig-id for GROKGATE_STATSIG=manual (base64 of 70 bytes)."
    )
    statsig_ttl: float = Field(
        default=3600.0, gt=0, description="Seconds scraped statsig inputs (or signer values) are reused."
    )
    impersonate: str = Field(default="chrome", description="curl_cffi browser impersonation target.")
    user_agent: str = Field(
        default=(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36"
        ),
        description="User-Agent sent upstream (must match the impersonation target's browser).",
    )
    cf_cookies: str | None = Field(
        default=None, description="Cloudflare cookies (`cf_clearance=…`) sent with every upstream call."
    )
    flaresolverr_url: ServiceUrl = Field(
        default=None, description="FlareSolverr base URL for Cloudflare clearance; unset: none."
    )
    flaresolverr_timeout: float = Field(
        default=60.0, ge=10, le=300, description="Seconds FlareSolverr may spend on one solve."
    )
    clearance_ttl: float = Field(
        default=1800.0,
        gt=0,
        description="Longest a solved clearance is trusted (a shorter cookie expiry wins).",
    )
    clearance_refresh_within: float = Field(
        default=1200.0,
        ge=0,
        description="The clearance cron renews what expires within this many seconds (more than its interval).",
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to connect upstream.")
    read_timeout: float = Field(
        default=60.0, gt=0, description="Seconds of upstream silence before a stream is abandoned."
    )
    total_timeout: float = Field(default=300.0, gt=0, description="Seconds one upstream call may take.")
    stream_pacing_ms: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description=(
            "Milliseconds a REST chat stream's read waits after its first new token, so tokens arriving "
            "within the window go out as one write: less gateway CPU per token for up to that much latency. "
            "0 (default): every token goes out as soon as it arrives."
        ),
    )
    chat_transport: Literal["rest", "ws", "auto"] = Field(
        default="rest",
        description=(
            "Upstream chat transport: `rest` (the NDJSON stream), `ws` (the gateway WebSocket), or `auto` "
            "(REST; an account REST refuses as anti-bot or retired moves to the WebSocket for a while)."
        ),
    )
    ws_fallback_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="With `auto`: seconds an account chats over the WebSocket before REST is tried again.",
    )
    retry_budget: int = Field(
        default=2, ge=0, le=10, description="Extra accounts tried after a retryable failure."
    )
    max_body_bytes: int = Field(
        default=20 * 1024 * 1024, gt=0, description="Largest accepted request body, in bytes."
    )
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request line plus headers, in bytes (431 past it, checked before auth).",
    )
    header_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a client has to send a request's line and headers (408)."
    )
    body_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a client has to send a request's body once its headers are in.",
    )
    model_aliases: AliasText = Field(
        default="",
        description="Model names clients hard-code, mapped onto catalog ids: `pattern=model,…`, globs allowed (`claude-*=grok-4.20-0309-reasoning,claude-haiku-*=grok-4.20-0309-non-reasoning,gpt-5*=grok-4.20-0309`); a catalog id is always itself, then an exact pattern, then the glob with the most literal characters (docs/clients.md).",
    )
    strict_params: bool = Field(
        default=False,
        description="Refuse request fields the gateway does not know (a 400 naming the field) instead of accepting, ignoring and reporting them in `x-grokgate-ignored-params`.",
    )
    lease_ttl: float = Field(
        default=600.0, gt=0, description="Seconds before a lease of a crashed holder returns by itself."
    )
    cooldown_seconds: float = Field(
        default=900.0, ge=0, description="Cooling time after a 429 that names no retry time."
    )
    heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="SSE comment sent after this much silence in a stream."
    )
    shutdown_grace: float = Field(
        default=10.0,
        ge=0,
        description="Seconds requests in flight get to finish after SIGTERM; then streams end with their terminal error.",
    )
    first_byte_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Seconds a streamed answer may take to start before its headers and an SSE comment go out (0: never early); a failure after that is the stream's own error event.",
    )
    web_search: Literal["auto", "tool"] = Field(
        default="auto",
        description="Upstream web search: `auto` lets Grok search when it wants (as grok.com does; shown as reasoning unless the client asked for search); `tool` only when the client offers a web search tool (`web_search` on Responses, `web_search_options` on chat, `web_search_*` on Messages); over the gateway WebSocket transport, which has no such flag, Grok decides.",
    )
    image_format: Literal["url", "b64_json", "markdown"] = Field(
        default="url", description="How generated images are delivered by default."
    )
    video_format: Literal["url", "markdown", "html"] = Field(
        default="markdown",
        description="How a video made through chat completions is shown: a signed link, markdown, or an HTML `<video>` tag.",
    )
    chat_video_wait: float = Field(
        default=240.0,
        ge=0,
        description="Seconds a chat completion waits for a video job; then it ends with the job's status link.",
    )
    allow_private_fetch: bool = Field(
        default=False, description="Let client-supplied URLs reach private/loopback addresses (tests only)."
    )
    fetch_max_bytes: int = Field(
        default=20 * 1024 * 1024, gt=0, description="Largest file fetched from a client-supplied URL."
    )
    fetch_timeout: float = Field(default=15.0, gt=0, description="Seconds to fetch a client-supplied URL.")
    media_secret: str | None = Field(
        default=None,
        description="HMAC key for local media links; unset: derived from the admin key, else a random per-install key kept in the media folder.",
    )
    reasoning_secret: str | None = Field(
        default=None,
        description="HMAC key that signs Responses reasoning items' `encrypted_content`; unset: derived from the media secret, the admin key or the API keys, else the per-install media key.",
    )
    media_ttl: int = Field(default=3600, gt=0, description="Seconds a signed media link stays valid.")
    responses_ttl: int = Field(
        default=2_592_000,
        ge=0,
        description="Seconds a stored Responses API response (`store`, the default) is kept for retrieval and `previous_response_id` (30 days, as OpenAI); 0: nothing is stored.",
    )
    media_retention: int = Field(
        default=7 * 86400,
        ge=0,
        description="Seconds stored images and videos are kept (then swept; links answer 410); 0: forever.",
    )
    media_max_bytes: int = Field(
        default=0,
        ge=0,
        description="Cap on the local media folder's size; the oldest files go first. 0: none.",
    )
    imagine_nsfw: bool = Field(
        default=False, description="Ask Imagine (E4) for NSFW-enabled generation (`enable_nsfw`)."
    )
    jobs: JobsUrl = Field(
        default=None,
        description="Video job store: `sqlite:///path`, `redis://…`, `rediss://…`, `upstash`, `dynamodb://TABLE`; unset: beside the account store (same SQLite file or Redis, DynamoDB table `<table>-jobs`).",
    )
    video_runner: Literal["inline", "cron", "worker", "stepfunctions"] = Field(
        default="inline",
        description="Who runs video jobs: `inline` (this process), `cron` (the scheduled worker; `worker` is the same), `stepfunctions` (one AWS Step Functions execution per job).",
    )
    video_state_machine: str | None = Field(
        default=None, description="ARN of the video state machine (runner `stepfunctions`)."
    )
    video_timeout: float = Field(
        default=1800.0, gt=0, description="Seconds a video job may take in total before it is failed."
    )
    video_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="First wait between two polls of a submitted video (doubles, up to 60 s).",
    )
    job_claim_seconds: float = Field(
        default=120.0, gt=0, description="Seconds a video job's runner holds it without a heartbeat."
    )
    job_attempts: int = Field(
        default=2, ge=1, le=10, description="Runs a video job gets before a dead runner's job is failed."
    )
    show_reasoning: bool = Field(
        default=True, description="Pass the upstream's thinking on to clients (reasoning/thinking output)."
    )
    quota_refresh_basic_seconds: float = Field(
        default=36000.0, ge=300, description="Seconds between scheduled quota refreshes of a basic account."
    )
    quota_refresh_super_seconds: float = Field(
        default=7200.0, ge=300, description="Seconds between scheduled quota refreshes of a super account."
    )
    quota_refresh_heavy_seconds: float = Field(
        default=7200.0, ge=300, description="Seconds between scheduled quota refreshes of a heavy account."
    )
    batch_concurrency: int = Field(
        default=4, ge=1, le=32, description="Accounts a console batch action works on at once."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines as text, or one JSON object per line (with each request's fields).",
    )
    usage_ledger: bool = Field(
        default=True, description="Book every /v1 request in the usage ledger (per key, model and day)."
    )
    usage_retention_days: int = Field(
        default=90, ge=1, le=3660, description="Days the usage ledger keeps a day's records."
    )
    metrics_key: str | None = Field(
        default=None,
        description="Bearer key for GET /metrics besides the admin key; unset: the admin key only.",
    )
    upstash_redis_rest_url: str | None = Field(
        default=None, description="Upstash REST URL (store `upstash`)."
    )
    upstash_redis_rest_token: str | None = Field(default=None, description="Upstash REST token.")
    cron_secret: str | None = Field(default=None, description="Bearer secret that cron calls must carry.")

    @property
    def aliases(self) -> ModelAliases:
        """`model_aliases`, parsed (checked at start by its validator; parsed once per text)."""
        return _parsed_aliases(self.model_aliases)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from `GROKGATE_*` variables (plus the few platform ones).

        Unknown `GROKGATE_*` names are refused: a typo must not silently fall back to a default.
        """
        raw = read_env(env, cls.model_fields)
        try:
            settings = cls.model_validate(raw)
        except ValidationError as exc:
            raise SettingsError(describe(exc, SECRET_FIELDS)) from None
        settings.require_ready()
        return settings

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable that sets `field`."""
        return variable(field)

    def egress_proxies(self) -> tuple[str, ...]:
        """The egress pool: GROKGATE_PROXY_URLS, else GROKGATE_PROXY_URL, else none (direct)."""
        return self.proxy_urls or ((self.proxy_url,) if self.proxy_url else ())

    def require_ready(self) -> None:
        """Cross-field checks (also run by `require_production_ready`)."""
        if self.statsig == "signer" and not self.statsig_signer_url:
            raise SettingsError("GROKGATE_STATSIG_SIGNER_URL: required when GROKGATE_STATSIG=signer")
        if self.statsig == "manual" and not self.statsig_value:
            raise SettingsError("GROKGATE_STATSIG_VALUE: required when GROKGATE_STATSIG=manual")

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """These settings with run-time overrides of behaviour fields, validated like the environment."""
        unknown = sorted(set(overrides) - set(BEHAVIOUR_FIELDS))
        if unknown:
            raise SettingsError(f"{', '.join(unknown)}: not a setting the console may change")
        if not overrides:
            return self
        try:
            checked = type(self).model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            raise SettingsError(describe(exc, SECRET_FIELDS)) from None
        return self.model_copy(update={name: getattr(checked, name) for name in overrides})

    def refresh_intervals(self) -> dict[str, float]:
        """Seconds between scheduled quota refreshes, by tier name."""
        return {
            "basic": self.quota_refresh_basic_seconds,
            "super": self.quota_refresh_super_seconds,
            "heavy": self.quota_refresh_heavy_seconds,
        }

    def require_production_ready(self) -> None:
        """Refuse configurations that must never face the internet."""
        if self.env == "production":
            if not self.api_keys:
                raise SettingsError(f"{self.variable('api_keys')}: required when GROKGATE_ENV=production")
            if not self.admin_key:
                raise SettingsError(f"{self.variable('admin_key')}: required when GROKGATE_ENV=production")
            if not self.secret_key:
                raise SettingsError(
                    f"{self.variable('secret_key')}: required when GROKGATE_ENV=production (account tokens "
                    "are sealed at rest with it): 32 random bytes in base64"
                )


@lru_cache(maxsize=8)
def _parsed_aliases(text: str) -> ModelAliases:
    return ModelAliases.parse(text)
