"""The `grokgate` command: serve the gateway, run the simulator, manage accounts."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys
import time
from collections.abc import Sequence

from core.catalog import Tier
from core.services.accounts import import_accounts
from core.settings import Settings, SettingsError
from functions._wiring import Deps, load_settings, set_deps

log = logging.getLogger("grokgate")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str) -> None:
    """No keys is fine on loopback (with a warning); anywhere else it is refused."""
    settings.require_production_ready()
    if settings.api_keys:
        return
    if not is_loopback(host):
        raise SettingsError(
            f"GROKGATE_API_KEYS: refusing to listen on {host} with no API key; set GROKGATE_API_KEYS "
            "(comma-separated) or listen on 127.0.0.1"
        )
    log.warning("GROKGATE_API_KEYS is empty: the gateway is open to anyone on this machine")


def cmd_serve(args: argparse.Namespace) -> int:
    from functions._answer import interrupt_streams
    from functions._server import ReadLimits, serve
    from functions._wiring import configure_logging
    from functions.local import create_app

    settings = load_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    configure_logging(settings)
    if args.sandbox:
        from functions.sandbox import prepare_sandbox

        settings = prepare_sandbox(settings, host, port)
    check_exposure(settings, host)
    deps = Deps(settings=settings)
    set_deps(deps)
    serve(
        create_app(deps),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        limits=ReadLimits.of(settings),
        grace=settings.shutdown_grace,
        drain=lambda: interrupt_streams(deps),
    )
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from infra.sim.server import run

    run(args.host, args.port)
    return 0


def cmd_secrets_rotate(args: argparse.Namespace) -> int:
    """Seal plain tokens and re-seal those under an older key (put the new key first, keep the
    old one after it until this has run)."""
    settings = account_settings(args)
    if not settings.secret_key:
        raise SettingsError(f"{settings.variable('secret_key')}: required to rotate (the key to seal with)")

    async def rotate(deps: Deps) -> tuple[int, int]:
        return await deps.store.rotate()  # type: ignore[attr-defined, no-any-return]

    done, seen = _store_call(args, rotate)
    print(f"re-sealed {done} of {seen} account token(s) under key {_current_key_id(settings.secret_key)}")
    return 0


def _current_key_id(secret_key: str) -> str:
    from infra.secrets import Sealer

    return Sealer(secret_key).current_key_id


def cmd_secrets_new_key(args: argparse.Namespace) -> int:
    import base64
    import os

    print(base64.b64encode(os.urandom(32)).decode())
    return 0


def account_settings(args: argparse.Namespace) -> Settings:
    """The settings an `accounts` command works with: the configured store, or the sandbox's."""
    settings = load_settings()
    if getattr(args, "sandbox", False):
        from functions.sandbox import sandbox_cli_settings

        return sandbox_cli_settings(settings)
    return settings


def _store_call(args: argparse.Namespace, coro_factory):  # type: ignore[no-untyped-def]
    settings = account_settings(args)

    async def call():  # type: ignore[no-untyped-def]
        deps = Deps(settings=settings)
        try:
            return await coro_factory(deps)
        finally:
            await deps.aclose()

    return asyncio.run(call())


def cmd_accounts_import(args: argparse.Namespace) -> int:
    if args.file == "-":
        text = sys.stdin.read()
    else:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()

    tier = None if args.tier == "auto" else Tier(args.tier)
    report = _store_call(
        args,
        lambda deps: import_accounts(
            deps.store, text, time.time(), tier, None if args.no_detect else deps.rate_limits.fetch
        ),
    )
    print(f"added {report.added}, skipped {report.skipped}, invalid {report.invalid}")
    if report.tiers:
        counts = ", ".join(f"{name} {count}" for name, count in report.tiers.items())
        unchecked = f"; {report.unchecked} not checked by the upstream (basic until a refresh)"
        print(f"tiers: {counts}" + (unchecked if report.unchecked else ""))
    return 0


def cmd_accounts_set_tier(args: argparse.Namespace) -> int:
    from core.accounts import AccountUpdate, TierSource
    from core.errors import NotFound
    from core.services.accounts import update_account

    change = (
        AccountUpdate(tier_source=TierSource.ASSUMED)
        if args.tier == "auto"
        else AccountUpdate(tier=Tier(args.tier))
    )
    try:
        _store_call(args, lambda deps: update_account(deps.store, args.id, change))
    except NotFound:
        print(f"no account {args.id}")
        return 1
    kept = "detected on the next refresh" if args.tier == "auto" else "kept by refreshes"
    print(f"{args.id}: tier {args.tier} ({kept})")
    return 0


def cmd_accounts_list(args: argparse.Namespace) -> int:
    async def collect(deps: Deps) -> list[dict[str, object]]:
        rows, cursor = [], None
        while True:
            page = await deps.store.list(cursor=cursor, limit=500)
            rows += [account.public() for account in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return rows

    rows = _store_call(args, collect)
    print(f"{'ID':22} {'TIER':6} {'SOURCE':8} {'STATUS':9} {'IN-FLIGHT':9} {'TOKEN':14} NOTE")
    for row in rows:
        print(
            f"{row['id']:22} {row['tier']:6} {row['tier_source']:8} {row['status']:9} {row['in_flight']!s:9} "
            f"{row['token']:14} {row['note']}"
        )
    print(f"{len(rows)} account(s)")
    return 0


def cmd_accounts_remove(args: argparse.Namespace) -> int:
    removed = _store_call(args, lambda deps: deps.store.remove(args.id))
    print("removed" if removed else f"no account {args.id}")
    return 0 if removed else 1


def cmd_accounts_export(args: argparse.Namespace) -> int:
    import json

    async def collect(deps: Deps) -> list[dict[str, object]]:
        rows, cursor = [], None
        while True:
            page = await deps.store.list(cursor=cursor, limit=500)
            rows += [
                {
                    "token": a.token,
                    "tier": a.tier.value,
                    "note": a.note,
                    "tags": list(a.tags),
                    "status": a.status.value,
                }
                for a in page.items
            ]
            cursor = page.next_cursor
            if cursor is None:
                return rows

    text = json.dumps({"accounts": _store_call(args, collect)}, indent=2)
    if args.file == "-":
        print(text)
    else:
        with open(args.file, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


def cmd_accounts_status(args: argparse.Namespace) -> int:
    from core.accounts import AccountStatus

    status = AccountStatus.DISABLED if args.action == "disable" else AccountStatus.ACTIVE
    reason = (args.reason or "disabled by an operator") if status is AccountStatus.DISABLED else ""
    done = _store_call(args, lambda deps: deps.store.set_status(args.id, status, reason, time.time()))
    print(f"{args.id}: {status.value}" if done else f"no account {args.id}")
    return 0 if done else 1


def cmd_accounts_refresh(args: argparse.Namespace) -> int:
    from core.services.quota import refresh_account

    async def refresh(deps: Deps) -> str:
        account = await deps.store.get(args.id)
        if account is None:
            return "missing"
        result = await refresh_account(deps.store, deps.rate_limits.fetch, account, time.time())  # type: ignore[arg-type]
        if result == "refreshed":
            fresh = await deps.store.get(args.id)
            if fresh is not None:
                return f"refreshed, tier {fresh.tier.value} ({fresh.tier_source.value})"
        return result

    result = _store_call(args, refresh)
    if result == "missing":
        print(f"no account {args.id}")
        return 1
    if result == "skipped":  # not a failure: the windows are at most 300 s old, or it is not refreshable
        print(f"{args.id}: skipped (refreshed less than 300 s ago, or disabled, expired or blocked)")
        return 0
    print(f"{args.id}: {result}")
    return 0 if result.startswith("refreshed") else 1


def cmd_accounts_upkeep(args: argparse.Namespace) -> int:
    from core.services.upkeep import run_upkeep

    async def upkeep(deps: Deps) -> dict[str, object] | None:
        account = await deps.store.get(args.id)
        if account is None:
            return None
        steps = [s.strip() for s in args.steps.split(",") if s.strip()]
        return await run_upkeep(
            deps.upkeep_calls, deps.records, account.id, account.token, time.time(),
            steps=steps, birth_date=args.birth_date,
        )  # fmt: skip

    try:
        state = _store_call(args, upkeep)
    except ValueError as exc:
        print(exc)
        return 2
    if state is None:
        print(f"no account {args.id}")
        return 1
    for step in ("tos", "birth_date", "nsfw"):
        if step in state:
            print(f"{args.id} {step}: {state[step]}")
    return 1 if any(str(v).startswith("failed") for v in state.values()) else 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="grokgate", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (all routes) with uvicorn")
    serve.add_argument("--host", help="listen address (default GROKGATE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default GROKGATE_PORT or 8000)")
    serve.add_argument("--sandbox", action="store_true", help="run with the simulator and seeded accounts")
    serve.set_defaults(run=cmd_serve)

    sim = sub.add_parser("sim", help="run the Grok web simulator alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8790)
    sim.set_defaults(run=cmd_sim)

    accounts = sub.add_parser(
        "accounts",
        help="manage the account pool",
        description="Manage the account pool in GROKGATE_STORE, or with --sandbox the sandbox's (data/sandbox.db).",
    ).add_subparsers(dest="action", required=True)
    pool = argparse.ArgumentParser(add_help=False)
    pool.add_argument(
        "--sandbox",
        action="store_true",
        help="work on the sandbox's pool (data/sandbox.db) against a simulator started for this command",
    )
    tiers = [t.value for t in Tier] + ["auto"]

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return accounts.add_parser(name, help=text, parents=[pool])

    imp = command("import", "import tokens: one per line, or JSON")
    imp.add_argument("file", help="a file path, or - for standard input")
    imp.add_argument(
        "--tier",
        default="auto",
        choices=tiers,
        help="the tier of entries that name none; auto (the default): detected from the upstream's rate limits. "
        "A tier given here or in the JSON is kept: refreshes do not change it",
    )
    imp.add_argument(
        "--no-detect", action="store_true", help="do not ask the upstream (tiers stay basic until a refresh)"
    )
    imp.set_defaults(run=cmd_accounts_import)
    lst = command("list", "list accounts (tokens masked)")
    lst.set_defaults(run=cmd_accounts_list)
    rm = command("remove", "remove an account by id")
    rm.add_argument("id")
    rm.set_defaults(run=cmd_accounts_remove)
    exp = command("export", "export every account WITH its token (JSON, import-compatible)")
    exp.add_argument("file", nargs="?", default="-", help="a file path, or - for standard output")
    exp.set_defaults(run=cmd_accounts_export)
    for action, text in (
        ("disable", "take an account out"),
        ("enable", "put an account back"),
        ("reset", "reset cooling: back to active now"),
    ):
        sp = command(action, text)
        sp.add_argument("id")
        if action == "disable":
            sp.add_argument("--reason", default="")
        sp.set_defaults(run=cmd_accounts_status)
    rf = command(
        "refresh", "refresh an account's quota windows and detect its tier now (at most every 300 s)"
    )
    rf.add_argument("id")
    rf.set_defaults(run=cmd_accounts_refresh)
    up = command("upkeep", "accept the ToS, set a birth date and enable NSFW for an account (gRPC-web)")
    up.add_argument("id")
    up.add_argument("--steps", default="tos,birth_date,nsfw", help="comma-separated: tos, birth_date, nsfw")
    up.add_argument("--birth-date", default="1990-06-14", help="YYYY-MM-DD (sent at 16:00 UTC)")
    up.set_defaults(run=cmd_accounts_upkeep)
    st = command("set-tier", "set an account's tier (kept by refreshes); auto: let refreshes detect it")
    st.add_argument("id")
    st.add_argument("tier", choices=tiers)
    st.set_defaults(run=cmd_accounts_set_tier)

    secrets = sub.add_parser("secrets", help="account tokens sealed at rest (GROKGATE_SECRET_KEY)")
    secrets_sub = secrets.add_subparsers(dest="action", required=True)
    rot = secrets_sub.add_parser(
        "rotate", help="re-seal every stored token under the first key of GROKGATE_SECRET_KEY"
    )
    rot.set_defaults(run=cmd_secrets_rotate)
    key = secrets_sub.add_parser("new-key", help="print a fresh key (32 random bytes, base64)")
    key.set_defaults(run=cmd_secrets_new_key)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except SettingsError as exc:
        print(f"grokgate: configuration error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
