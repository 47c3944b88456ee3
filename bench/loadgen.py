"""
HTTP load with wrk (C, epoll): a Python client would spend as much CPU as the servers it
measures on a 2-core machine. Each run reports wrk's own CPU next to the servers'.
"""

import json
import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench.stack import BenchStack

LUA = Path(__file__).with_name("wrk_report.lua")


def wrk(
    stack: BenchStack,
    url: str,
    connections: int,
    duration: float,
    threads: int = 2,
    headers: dict[str, str] | None = None,
    script_args: list[str] | None = None,
) -> dict[str, Any]:
    """One closed-loop wrk run: req/s, errors, latency percentiles, and CPU per process group."""
    seconds = max(1, round(duration))  # wrk takes whole seconds
    argv = [
        "wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s",
        "--timeout", "10s", "-s", str(LUA),
    ]  # fmt: skip
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    with stack.meter() as meter:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout = proc.stdout.read().decode() if proc.stdout else ""
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    line = next((ln for ln in stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {stdout}\n{stderr}")
    report = json.loads(line.removeprefix("WRKJSON "))
    seconds = report["duration_us"] / 1e6
    errors = sum(report["errors"].values())
    return {
        "url": url,
        "connections": connections,
        "duration_s": round(seconds, 3),
        "requests": report["requests"],
        "rps": round(report["requests"] / seconds, 1),
        "errors": errors,
        "error_kinds": report["errors"],
        "latency_us": report["latency_us"],
        "cpu": meter.report(client_cpu=usage.ru_utime + usage.ru_stime),
    }


def spread(values: list[float]) -> dict[str, float]:
    """Median and min-max of repeated runs: the noise is reported, not averaged away."""
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


def median_run(runs: list[dict[str, Any]], key: str = "rps") -> dict[str, Any]:
    """The run whose `key` is the median (the one plotted)."""
    ordered = sorted(runs, key=lambda run: run[key])
    return ordered[(len(ordered) - 1) // 2]


def cpu_summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Median cores used per process group over repeated runs."""
    names = {name for run in runs for name in run["cpu"]["cores"]}
    summary = {
        name: round(statistics.median(run["cpu"]["cores"].get(name, 0.0) for run in runs), 2)
        for name in sorted(names)
    }
    summary["other (machine)"] = round(statistics.median(r["cpu"]["other_cores"] for r in runs), 2)
    return summary
