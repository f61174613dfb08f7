"""`make bench`: every benchmark, one after the other, each in a fresh process.

Those that keep a section of docs/benchmarks.md up to date write it (cold start, chat, account
store); the component benchmarks (upstream client, frame decoder, simulator) print their tables.
Run on a quiet machine: the chat benchmark pins the gateway to core 0 and the rest to core 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    ["bench.coldstart", "--write"],
    ["bench.chat_bench"],
    ["bench.transport_bench"],
    ["bench.store_bench"],
    ["bench.responses_bench"],
    ["bench.console_bench", "--write"],
    ["bench.upstream_cpu"],
    ["bench.decoder_bench"],
    ["bench.sim_throughput"],
]


def main() -> int:
    failed = []
    for module, *args in STEPS:
        print(f"\n== python -m {module} {' '.join(args)}", flush=True)
        if subprocess.call([sys.executable, "-m", module, *args], cwd=ROOT) != 0:
            failed.append(module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
