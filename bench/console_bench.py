"""The console's account listing at 10,000 accounts on the embedded SQLite store.

Times `AccountStore.list` pages as the console asks for them (50 rows): the first page, a page
deep in the pool (by cursor), and each filter (state, tier, tag, text; text and tag are scans).
Also the whole `GET /admin/api/accounts` round trip through the admin app (ASGI, no network).
Prints a table; `--write` puts it in docs/console.md between the markers.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path

from core.accounts import AccountStatus, NewAccount
from core.catalog import Tier

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "console.md"
START, END = "<!-- console-bench:start -->", "<!-- console-bench:end -->"
POOL = 10_000
RUNS = 30


def pool() -> list[NewAccount]:
    tiers = [Tier.BASIC] * 7 + [Tier.SUPER] * 2 + [Tier.HEAVY]
    return [
        NewAccount(
            f"sso-bench-{i:05d}-" + "x" * 140,
            tiers[i % 10],
            note=f"team {'blue' if i % 3 else 'red'} #{i}",
            tags=("eu",) if i % 4 == 0 else ("us", "trial") if i % 4 == 1 else (),
        )
        for i in range(POOL)
    ]


async def timed(call) -> tuple[float, int]:
    samples, rows = [], 0
    for _ in range(RUNS):
        started = time.perf_counter()
        page = await call()
        samples.append((time.perf_counter() - started) * 1000)
        rows = len(page.items) if hasattr(page, "items") else page
    return statistics.median(samples), rows


async def run() -> list[tuple[str, float, int]]:
    import httpx

    from core.settings import Settings
    from functions import admin
    from functions._app import build_app
    from functions._wiring import Deps
    from infra.state.sqlite import SQLiteAccountStore

    folder = Path(tempfile.mkdtemp(prefix="gg-console-bench-"))
    store = SQLiteAccountStore(folder / "pool.db")
    now = time.time()
    await store.add(pool(), now)
    disabled = await store.list(tier=Tier.SUPER, limit=300)
    for account in disabled.items:
        await store.set_status(account.id, AccountStatus.DISABLED, "bench", now)
    middle = (await store.list(limit=5000)).items[-1].id
    rows: list[tuple[str, float, int]] = []
    cases = {
        "first page": lambda: store.list(limit=50),
        "page 101 (cursor)": lambda: store.list(cursor=middle, limit=50),
        "state = disabled": lambda: store.list(status=AccountStatus.DISABLED, limit=50),
        "tier = heavy": lambda: store.list(tier=Tier.HEAVY, limit=50),
        "tag = eu": lambda: store.list(tag="eu", limit=50),
        "text 'red #99' (few matches: a scan)": lambda: store.list(text="red #99", limit=50),
        "text 'nobody' (no match: a full scan)": lambda: store.list(text="nobody", limit=50),
    }
    for name, call in cases.items():
        median, count = await timed(call)
        rows.append((name, median, count))
    await store.aclose()

    settings = Settings.from_env(
        {"GROKGATE_STORE": f"sqlite:///{folder / 'pool.db'}", "GROKGATE_ADMIN_KEY": "k" * 20}
    )
    deps = Deps(settings=settings)
    app = build_app(admin.routes, deps=deps)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        headers = {"authorization": "Bearer " + "k" * 20}

        async def http() -> int:
            r = await client.get("/admin/api/accounts?limit=50&tag=eu", headers=headers)
            return len(r.json()["data"])

        median, count = await timed(http)
        rows.append(("GET /admin/api/accounts?tag=eu (whole request)", median, count))
    await deps.aclose()
    return rows


def table(rows: list[tuple[str, float, int]]) -> str:
    lines = [
        f"{POOL:,} accounts, SQLite, page of 50, median of {RUNS} runs:",
        "",
        "| listing | ms | rows |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {ms:.2f} | {count} |" for name, ms, count in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="update docs/console.md")
    args = parser.parse_args()
    text = table(asyncio.run(run()))
    print(text)
    if args.write:
        doc = DOC.read_text()
        doc = re.sub(re.escape(START) + ".*?" + re.escape(END), f"{START}\n{text}\n{END}", doc, flags=re.S)
        DOC.write_text(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
