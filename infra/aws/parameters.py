"""Secrets from SSM Parameter Store, read through the AWS Parameters and Secrets Lambda Extension.

On Lambda the secrets (API keys, admin key, store credentials) are not baked into the function's
environment at deploy time: that would put their plaintext into the CloudFormation template and
the console. The function's environment names them instead:

    SSM_PARAMETER_PREFIX=/grokgate/prod/
    SSM_PARAMETER_NAMES=GROKGATE_API_KEYS,GROKGATE_ADMIN_KEY,GROKGATE_SECRET_KEY

and the first request reads `/grokgate/prod/GROKGATE_API_KEYS` (decrypted) and so on, each becoming
the variable of that name. The extension (a layer) answers on localhost:2773 only in the INVOKE
phase, never during INIT: callers must read on first use, never at import. Standard library HTTP
on purpose: boto3 would add ~100 ms to the first request of every function.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Mapping

from core.settings import SettingsError

EXTENSION_PORT = 2773


def requested_names(env: Mapping[str, str]) -> list[str]:
    return [name.strip() for name in env.get("SSM_PARAMETER_NAMES", "").split(",") if name.strip()]


def fetch_parameters(env: Mapping[str, str], *, timeout: float = 5.0) -> dict[str, str]:
    """Variable name -> decrypted value, for every name listed in `SSM_PARAMETER_NAMES`."""
    names = requested_names(env)
    if not names:
        return {}
    prefix = env.get("SSM_PARAMETER_PREFIX", "")
    port = env.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(EXTENSION_PORT))
    token = env.get("AWS_SESSION_TOKEN", "")
    values: dict[str, str] = {}
    for name in names:
        parameter = prefix + name
        query = urllib.parse.urlencode({"name": parameter, "withDecryption": "true"})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/systemsmanager/parameters/get?{query}",
            headers={"X-Aws-Parameters-Secrets-Token": token},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback)
                body = json.loads(response.read())
        except (OSError, ValueError) as exc:
            # The message names the parameter, never a value.
            raise SettingsError(f"{name}: cannot read SSM parameter {parameter}: {exc}") from None
        values[name] = str(body["Parameter"]["Value"])
    return values
