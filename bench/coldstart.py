"""Cold start: what importing each deployable costs, in fresh processes.

For every deployable (a `functions/<name>.py` that api/*.py or serverless.yml names), it starts fresh
interpreters and takes the median of: the wall time of `import functions.<name>`, and the
cumulative time `python -X importtime` gives that import (which inflates it a little). It lists the
packages that cost the most (self time, summed per top-level package) and whether any SDK that
must stay lazy (boto3, curl_cffi, redis, upstash_redis) was imported.

    python -m bench.coldstart [--runs 7] [--write]

`--write` puts the table in docs/benchmarks.md under `## Cold start`, leaving other sections alone.
Bytecode is compiled first, as on a platform that ships or caches .pyc files.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
LAZY_SDKS = ("boto3", "botocore", "curl_cffi", "redis", "upstash_redis")
BUDGET_MS = {"chat": 150.0}
RATIO_GOAL = {"chat": 1.4}  # the deployable's import over the framework floor

# What any Starlette + pydantic app pays before a line of ours: the floor the budget sits on.
FLOOR_IMPORTS = (
    "import asyncio, orjson, starlette.applications, starlette.routing, starlette.responses; "
    "from pydantic import BaseModel"
)

PROBE = """
import sys, time
t = time.perf_counter()
{statement}
wall = (time.perf_counter() - t) * 1000
lazy = sorted({{m.split('.')[0] for m in sys.modules}} & set({sdks!r}))
print(f"{{wall:.2f}} {{','.join(lazy)}}")
"""


# What a route loads on its first request is cold-start time too: for chat, the import and one
# chat completion in the same fresh process, against an empty SQLite pool (a 503 before any
# network), so that moving an import from module level into a route shows as moved, not saved.
FIRST_REQUEST = """
import asyncio, os, tempfile, time
tmp = tempfile.mkdtemp()
os.environ.update(GROKGATE_STORE=f"sqlite:///{tmp}/pool.db", GROKGATE_MEDIA=f"{tmp}/media")
t = time.perf_counter()
import functions.chat
body = b'{"model": "grok-4.20-0309", "messages": [{"role": "user", "content": "hi"}]}'
scope = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
    "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
    "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("gw", 80),
    "headers": [(b"host", b"gw"), (b"content-type", b"application/json")],
}
sent, pending = [], [{"type": "http.request", "body": body, "more_body": False}]
async def receive():
    if pending:
        return pending.pop()
    await asyncio.sleep(3600)  # the client stays: the watch waits for a disconnect that never comes
async def send(message):
    sent.append(message)
asyncio.run(functions.chat.app(scope, receive, send))
assert sent[0]["status"] == 503, sent[0]
print(f"{(time.perf_counter() - t) * 1000:.2f}")
"""
FIRST_REQUEST_OF = {"chat": FIRST_REQUEST}


def deployables(root: Path = ROOT) -> list[str]:
    """The modules the deployment files name: Vercel's api/*.py entries and serverless.yml's
    handlers (and its streaming function's ASGI_APP)."""
    names = set()
    for entry in (root / "api").glob("*.py"):
        names.update(re.findall(r"^from functions\.(\w+) import", entry.read_text(), re.MULTILINE))
    sls = (root / "serverless.yml").read_text()
    names.update(re.findall(r"^\s+handler: functions/(\w+)\.\w+\s*$", sls, re.MULTILINE))
    names.update(re.findall(r"^\s+ASGI_APP: functions\.(\w+):app\s*$", sls, re.MULTILINE))
    return sorted(names)


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    return env


@dataclass
class Result:
    name: str
    wall_ms: float
    importtime_ms: float
    heaviest: list[tuple[str, float]]
    lazy_loaded: list[str]
    first_request_ms: float | None = None
    walls: list[float] = field(default_factory=list)  # one per run, in the floor's order


def statement(name: str) -> str:
    return FLOOR_IMPORTS if name == FLOOR else f"import functions.{name}"


FLOOR = "(framework floor)"


def probe(name: str) -> tuple[float, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement(name), sdks=LAZY_SDKS)],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), out[1].split(",") if len(out) > 1 else []


def importtime(name: str) -> tuple[float, dict[str, float]]:
    """Cumulative ms of `functions.<name>`, and self ms per top-level package."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement(name)],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    total = 0.0
    per_package: dict[str, float] = defaultdict(float)
    for line in err.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if not match:
            continue
        self_us, cumulative_us, _, module = match.groups()
        per_package[module.split(".")[0]] += int(self_us) / 1000
        if module == f"functions.{name}":
            total = int(cumulative_us) / 1000
    if name == FLOOR:
        total = sum(per_package.values())
    return total, per_package


def first_request(name: str) -> float | None:
    """ms from the import's start to the first request's answer, or None if not measured."""
    code = FIRST_REQUEST_OF.get(name)
    if code is None:
        return None
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment(), capture_output=True, text=True, check=True
    ).stdout
    return float(out.split()[-1])


@dataclass
class Samples:
    walls: list[float] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)
    lazy: set[str] = field(default_factory=set)
    packages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def result(self, name: str) -> Result:
        median = statistics.median
        heaviest = sorted(((p, median(v)) for p, v in self.packages.items()), key=lambda x: -x[1])[:5]
        first_ms = median(self.firsts) if self.firsts else None
        return Result(
            name, median(self.walls), median(self.totals), heaviest, sorted(self.lazy), first_ms, self.walls
        )


def measure(names: list[str], runs: int) -> list[Result]:
    """Round robin, one fresh process per name and run: the machine's drift (its speed varies by
    tens of percent from one minute to the next) falls on the floor and the deployables alike."""
    samples = {name: Samples() for name in names}
    for _ in range(runs):
        for name, sample in samples.items():
            wall, loaded = probe(name)
            sample.walls.append(wall)
            sample.lazy.update(loaded)
            total, per_package = importtime(name)
            sample.totals.append(total)
            first = first_request(name)
            if first is not None:
                sample.firsts.append(first)
            for package, ms in per_package.items():
                sample.packages[package].append(ms)
    return [sample.result(name) for name, sample in samples.items()]


def table(results: list[Result], runs: int) -> str:
    lines = [
        "## Cold start",
        "",
        f"Import time of each deployable, median of {runs} fresh processes (`python -m bench.coldstart`),",
        "taken in turns with the floor's so that the machine's drift falls on both alike, on this",
        f"machine ({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},",
        f"load average {os.getloadavg()[0]:.1f} when measured),",
        "bytecode compiled. *import* is wall time of `import functions.<name>`; *importtime* is the",
        "cumulative figure `python -X importtime` reports for it (slightly inflated by the measuring).",
        "Heaviest: self time summed per top-level package. *SDKs* lists boto3, curl_cffi, redis or",
        "upstash_redis if importing the deployable loaded them (they must load on first use only).",
        f"The first row is the floor: `{FLOOR_IMPORTS}`, what any Starlette + pydantic",
        "app pays on this machine before a line of ours; *own* is a deployable's import minus it, and",
        "*x floor* the median of its import over the floor's, run by run. *+ first request* (chat) is",
        "the import and one chat completion in the same fresh process (an empty SQLite pool: a 503, no",
        "network): what a route loads on its first request is cold-start time too.",
        "",
        "| deployable | import (ms) | own (ms) | x floor | importtime (ms) | + first request (ms) | budget "
        "| SDKs at import | heaviest packages (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    floor_result = next((r for r in results if r.name == FLOOR), None)
    floor = floor_result.wall_ms if floor_result else 0.0
    for r in results:
        budget = BUDGET_MS.get(r.name)
        verdict = "" if budget is None else f"{budget:.0f} {'ok' if r.wall_ms <= budget else 'OVER'}"
        heavy = ", ".join(f"{p} {ms:.0f}" for p, ms in r.heaviest)
        first = "" if r.first_request_ms is None else f"{r.first_request_ms:.0f}"
        lines.append(
            f"| {r.name} | {r.wall_ms:.0f} | {r.wall_ms - floor:.0f} | {ratio(r, floor_result):.2f} | "
            f"{r.importtime_ms:.0f} | {first} | {verdict} | {', '.join(r.lazy_loaded) or 'none'} | {heavy} |"
        )
    lines.append("")
    for r in results:
        goal = RATIO_GOAL.get(r.name)
        if goal is not None:
            verdict = "ok" if ratio(r, floor_result) <= goal else "OVER"
            lines.append(
                f"The {r.name} import is {ratio(r, floor_result):.2f}x the framework floor (goal {goal}x: {verdict})."
            )
    return "\n".join(lines) + "\n"


def ratio(result: Result, floor: Result | None) -> float:
    """The median of the run-by-run ratios (each run took the floor and this import in turn)."""
    if floor is None:
        return 0.0
    return statistics.median(w / f for w, f in zip(result.walls, floor.walls, strict=True))


def write_section(section: str, doc: Path = DOC) -> None:
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Cold start\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "core", "infra", "functions"],
        cwd=ROOT,
        env=environment(),
        check=True,
    )
    results = measure([FLOOR, *deployables()], args.runs)
    section = table(results, args.runs)
    print(section)
    if args.write:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
