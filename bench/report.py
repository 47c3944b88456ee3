"""
bench/results/summary.md from whatever bench/results/*.json hold (a run with --only refreshes
its own files and keeps the others): one generic table per bench, its docstring the title,
the median over rounds of each numeric column per variant.
"""

import json
import statistics
from pathlib import Path
from typing import Any


def table(rows: list[dict[str, Any]]) -> list[str]:
    """A line per variant (rows in order of first appearance), medians over its rounds."""
    variants: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        variants.setdefault(str(row.get("variant", "")), []).append(row)
    columns = [key for key in dict.fromkeys(k for row in rows for k in row)
               if key not in ("round", "variant")]  # fmt: skip
    lines = ["| variant | rounds | " + " | ".join(columns) + " |",
             "| --- " * (len(columns) + 2) + "|"]  # fmt: skip
    for name, group in variants.items():
        cells = []
        for column in columns:
            values = [row[column] for row in group if column in row]
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            if numbers and len(numbers) == len(values):
                cells.append(f"{statistics.median(numbers):g}")
            else:
                cells.append(", ".join(dict.fromkeys(str(v) for v in values)))
        lines.append(f"| {name or '-'} | {len(group)} | " + " | ".join(cells) + " |")
    return lines


def write(results: Path) -> None:
    out = ["# Benchmark results", "",
           "Written by `make bench` (bench/run.py); what each bench does and why: "
           "docs/benchmarks.md. Medians over rounds; `cores_<group>` = CPU seconds / wall "
           "seconds of that process group (client = the bench process and wrk).", ""]  # fmt: skip
    found = [json.loads(path.read_text()) for path in
             sorted(results.glob("*.json"), key=lambda p: p.stat().st_mtime)]  # fmt: skip
    found = [result for result in found if "rows" in result]  # not the earlier benches' files
    if not found:
        return  # the summary of the earlier benches' last run stays until the next
    for result in found:
        meta = result["meta"]
        title = " ".join((result["title"] or "").split())
        quick = " **quick run: proves the bench works; not figures**" if meta["quick"] else ""
        out += [f"## {result['name']}", "", title, "",
                f"{meta['started']}, commit {meta['commit']}, baseline {meta['baseline']}, "
                f"{meta['seconds']} s.{quick}", "", *table(result["rows"]), ""]  # fmt: skip
    (results / "summary.md").write_text("\n".join(out))
