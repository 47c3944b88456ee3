"""
`make bench`: every bench of bench/ against the split stack on this machine, then
bench/results/<name>.json (flat rows: one per round and variant) and summary.md (--quick:
bench/results/quick/).

    .venv/bin/python -m bench.run                     # everything
    .venv/bin/python -m bench.run --quick             # short runs: proves the benches work
    .venv/bin/python -m bench.run --only reads --only http
    .venv/bin/python -m bench.run --baseline 82d88fe  # sockets and cost against that commit
    .venv/bin/python -m bench.run --report-only       # summary.md again from the JSON

Absolute numbers on a shared 2-core machine are noisy: the figures that count are ratios of
variants measured back to back, round after round (A B A B ...).
"""

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import http, report, sockets, ws
from bench.stack import Bench, bench_stack, log
from tests.live import ROOT

RESULTS = Path(__file__).resolve().parent / "results"
BENCHES: dict[str, Callable[[Bench, bool], list[dict[str, Any]]]] = {
    "import": http.importing, "reads": http.reads,
    "floor": http.floor, "http": http.http, "writes": http.writes,
    "bulk": http.bulk, "checks": ws.checks, "sockets": sockets.sockets,
    "presence": sockets.presence, "cost": ws.cost, "signals": ws.signals, "slow": sockets.slow,
    "fanout": ws.fanout, "resume": ws.resume, "live": ws.live,
    "drain": ws.drain,  # last: it stops Redis
}  # fmt: skip


def raise_file_limit(wanted: int = 65536) -> None:
    """Thousands of sockets need more descriptors than a shell's default 1024, here and in
    the daphne processes started from here."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=list(BENCHES), help="only these")
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--report-only", action="store_true", help="summary.md from the JSON")
    parser.add_argument("--baseline", help="a commit to compare daphne with (sockets, cost)")
    args = parser.parse_args()
    results = RESULTS / "quick" if args.quick else RESULTS  # never mistaken for figures
    results.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report.write(results)
        return 0
    raise_file_limit()
    selected = [name for name in BENCHES if not args.only or name in args.only]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    failed = []
    with bench_stack(args.baseline) as bench:
        for name in selected:
            log(f"== {name}")
            started = time.monotonic()
            try:
                rows = BENCHES[name](bench, args.quick)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                continue
            meta = {
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "commit": commit, "baseline": args.baseline, "quick": args.quick,
                "seconds": round(time.monotonic() - started), "cores": os.cpu_count(),
            }  # fmt: skip
            result = {"name": name, "title": BENCHES[name].__doc__, "meta": meta, "rows": rows}
            (results / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    report.write(results)
    if failed:
        log(f"benches that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
