"""
`make bench`: every benchmark of bench/ against the real split stack on this machine, then
bench/results/*.json, summary.md and the plots.

    .venv/bin/python -m bench.run                 # everything (~25 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick         # shorter runs, fewer rounds (a smoke test)
    .venv/bin/python -m bench.run --only http --only rows

Absolute numbers on a shared 2-core machine are noisy; the targets are ratios between variants
measured back to back, round after round (A B A B ...), reported as median and min-max.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import data, http, report, ws
from bench.stack import BIN, ROOT, BenchStack, log, running

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ["import", "queries", "rows", "http", "ceiling", "writes", "sizing", "bulk", "checks",
         "sockets", "cost", "fanout", "resume", "live"]  # fmt: skip


def raise_file_limit(wanted: int = 65536) -> int:
    """5k sockets need more descriptors than a default shell's 1024, here and in daphne
    (which inherits this limit when the benchmarks restart it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def setup_django(stack: BenchStack) -> None:
    """This process reads and cleans the bench database through the ORM, as the stack's
    processes see it."""
    os.environ.update(stack.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "myproject.settings"
    import django

    django.setup()


def machine() -> dict[str, Any]:
    def version(argv: list[str]) -> str:
        try:
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            return "not found"
        return (result.stdout + result.stderr).strip().splitlines()[0]

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "?",
    )  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "nginx": version([shutil.which("nginx") or "/usr/sbin/nginx", "-v"]),
        "uwsgi": version([str(BIN / "uwsgi"), "--version"]),
        "mariadb": version([shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--version"]),
        "wrk": version(["wrk", "--version"]),
        "commit": commit,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def run_one(name: str, stack: BenchStack, quick: bool) -> dict[str, Any]:
    reps = 2 if quick else 3
    duration = 3.0 if quick else 8.0
    if name == "import":
        return data.importing(stack, 1 if quick else 3)
    if name == "queries":
        return http.queries(stack, 2.0 if quick else 4.0)
    if name == "rows":
        return http.rows(stack, reps, 2.0 if quick else 5.0)
    if name == "http":
        return http.split(stack, reps, duration)
    if name == "ceiling":
        return http.ceiling(stack, reps, duration)
    if name == "writes":
        return http.writes(stack, reps + 2, 100 if quick else 200)
    if name == "sizing":
        return http.sizing(stack, 1 if quick else 2, 3.0 if quick else 6.0, quick)
    if name == "bulk":
        return data.bulk(stack, reps, 100 if quick else 500)
    if name == "checks":
        return ws.checks(stack, reps, duration)
    if name == "sockets":
        return ws.sockets(stack, quick)
    if name == "cost":
        return ws.cost(stack, reps + 1, quick)
    if name == "fanout":
        return ws.fanout(stack, 1 if quick else 2, quick)
    if name == "resume":
        return ws.resume(stack, reps, quick)
    if name == "live":
        return ws.live(stack, reps, quick)
    raise ValueError(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=ORDER, help="run only these")
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test")
    parser.add_argument("--report-only", action="store_true", help="redo summary.md and plots")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.report_only:
        report.write(RESULTS)
        return 0
    selected = [name for name in ORDER if not args.only or name in args.only]
    files = raise_file_limit()
    meta = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "nofile": files,
    }
    log(f"benchmarks: {', '.join(selected)} (nofile {files})")
    failed = []
    started = time.monotonic()
    with running() as stack:
        meta["machine"] = machine()  # once the stack has installed what it runs (nginx)
        setup_django(stack)
        if "import" not in selected:
            data.load_dataset(stack)
        for name in selected:
            log(f"== {name}")
            bench_started = time.monotonic()
            try:
                result = run_one(name, stack, args.quick)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                continue
            result["meta"] = {**meta, "seconds": round(time.monotonic() - bench_started, 1)}
            (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
            verdict = {True: "PASS", False: "MISS", None: "info"}[result["pass"]]
            log(f"   {name}: {result['measured']} [{verdict}: {result['target']}]")
    report.write(RESULTS)
    log(f"done in {(time.monotonic() - started) / 60:.1f} min; see {RESULTS / 'summary.md'}")
    if failed:
        log(f"benchmarks that crashed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
