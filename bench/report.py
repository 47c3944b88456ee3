"""
bench/results/summary.md and the PNG plots, from whatever bench/results/*.json hold (a run
with --only refreshes its own files and keeps the others).
"""

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ORDER = ["http", "ceiling", "rows", "queries", "bulk", "import", "writes", "cost", "fanout",
         "resume", "live", "sockets", "checks", "sizing"]  # fmt: skip
VERDICT = {True: "pass", False: "**MISS**", None: "info"}
# wrk's percentile(100) reads 0: the maximum comes from its `max` instead.
QS = [0.1, 1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 95, 97.5, 99, 99.5, 99.9, 99.99]


def load(results: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for name in ORDER:
        path = results / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def table(found: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| bench | measured (median, min-max) | target | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for name, result in found.items():
        lines.append(
            f"| {name} | {result['measured']} | {result['target']} | {VERDICT[result['pass']]} |"
        )
    return "\n".join(lines)


def _cpu_line(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items())


def details(found: dict[str, dict[str, Any]]) -> str:
    out: list[str] = []
    if "writes" in found:
        w = found["writes"]
        out += [f"### writes: {w['title']}", "", "| round | p50 events on (ms) | p50 off (ms) | "
                "added (ms) |", "| --- | --- | --- | --- |"]  # fmt: skip
        for i, run in enumerate(w["runs"], 1):
            on, off = run["p50_ms"]["on"], run["p50_ms"]["off"]
            out.append(f"| {i} | {on:.2f} | {off:.2f} | {on - off:+.2f} |")
        out.append("")
    for name in ("http", "ceiling", "sizing", "rows"):
        if name not in found:
            continue
        result = found[name]
        out += [f"### {name}: {result['title']}", ""]
        out += ["| variant | req/s | p50 ms | p99 ms | errors | cores used (median) |",
                "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for variant, s in result["variants"].items():
            out.append(
                f"| {variant} | {s['rps']['median']:.0f} ({s['rps']['min']:.0f}-"
                f"{s['rps']['max']:.0f}) | {s['p50_ms']['median']:.2f} | "
                f"{s['p99_ms']['median']:.2f} | {s['errors']} | {_cpu_line(s['cpu_cores'])} |"
            )
        out.append("")
        if name == "sizing" and "writes" in result:
            out += ["Single item POSTs, 16 connections:", "",
                    "| variant | POST/s | p50 ms | p99 ms | errors | cores used (median) |",
                    "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            for variant, s in result["writes"].items():
                out.append(
                    f"| {variant} | {s['rps']['median']:.0f} ({s['rps']['min']:.0f}-"
                    f"{s['rps']['max']:.0f}) | {s['p50_ms']['median']:.2f} | "
                    f"{s['p99_ms']['median']:.2f} | {s['errors']} | {_cpu_line(s['cpu_cores'])} |"
                )
            out.append("")
        if name == "sizing" and "mixed" in result:
            out += [f"The list beside requests that wait ({result['title'].split(': ')[-1]}):",
                    "", "| variant | list req/s | list p99 ms | adjust_stock/s | adjust_stock "
                    "p99 ms | bulk POSTs (median s) |",
                    "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            for variant, m in result["mixed"].items():
                out.append(
                    f"| {variant} | {m['list']['rps']['median']:.0f} | "
                    f"{m['list']['p99_ms']['median']:.0f} | {m['adjust']['rps']['median']:.0f} | "
                    f"{m['adjust']['p99_ms']['median']:.0f} | {m['bulk_count']} "
                    f"({m['bulk_s']['median']:.2f}) |"
                )
            out.append("")
    if "queries" in found:
        q = found["queries"]
        out += ["### queries", "", "| page size | Django queries | MariaDB Questions/request "
                "(raw, less idle rate) |", "| --- | --- | --- |"]  # fmt: skip
        for size, entry in q["django_capture"].items():
            m = q["mariadb_questions"][size]
            out.append(
                f"| {size} | {entry['queries']} | {m['raw_per_request']:.2f}, "
                f"{m['per_request']:.2f} |"
            )
        out += ["", "Queries: " + "; ".join(q["django_capture"]["50"]["sql"]), ""]
        out.append(f"MariaDB idle Questions/s (others): {q['mariadb_idle_questions_per_s']}")
        out.append("")
    if "bulk" in found:
        b = found["bulk"]
        out += ["### bulk", "", "| round | bulk 10k (s) | µs/item bulk | singles (s) | "
                "µs/item single | speed-up |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for i, run in enumerate(b["runs"], 1):
            out.append(
                f"| {i} | {run['bulk_s']:.2f} | {run['bulk_us_per_item']:.0f} | "
                f"{run['singles_s']:.2f} ({run['singles']}) | {run['single_us_per_item']:.0f} | "
                f"{run['speedup_per_item']:.0f}x |"
            )
        out.append("")
    if "import" in found:
        i = found["import"]
        startup = i["django_startup_s"]["median"]
        out += ["### import", "", f"import_catalog 10k rows: {i['measured']}; Django start-up "
                f"alone (`manage.py check`): {startup:.2f} s.", ""]  # fmt: skip
    if "cost" in found:
        c = found["cost"]
        out += [f"### cost: {c['title']}", "", "| round | daphne µs/frame | bare µs/frame | "
                "ratio | daphne burst ms | bare burst ms |",
                "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for i, (d, b) in enumerate(zip(c["runs"]["daphne"], c["runs"]["bare"], strict=True), 1):
            out.append(
                f"| {i} | {d['us_per_frame']:.2f} | {b['us_per_frame']:.2f} | "
                f"{d['us_per_frame'] / b['us_per_frame']:.2f} | {d['burst_ms']:.0f} | "
                f"{b['burst_ms']:.0f} |"
            )
        out.append("")
    if "fanout" in found:
        f = found["fanout"]
        out += ["### fanout", "", "| variant | N | p50 ms | p99 ms | delivered (worst round) |",
                "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for variant, per in f["summary"].items():
            for key, s in per.items():
                extra = ""
                if key == "burst":
                    extra = f" (drained in {s['drained_s']['median']:.1f} s)"
                out.append(
                    f"| {variant} | {key} | {s['p50_ms']['median']:.1f} | "
                    f"{s['p99_ms']['median']:.1f} ({s['p99_ms']['min']:.0f}-"
                    f"{s['p99_ms']['max']:.0f}) | {s['delivered']:.2%}{extra} |"
                )
        out += ["", "Through the stack's nginx; `one daphne` stops the second. Burst latency "
                "counts from each write's sending, so it includes the writes' own queueing; "
                "the drain time is the comparable figure.", ""]  # fmt: skip
    if "resume" in found:
        r = found["resume"]
        out += ["### resume", "", "| sockets resuming at once | last missed frame in (ms, each "
                "round) | recovered / complete in order |", "| --- | --- | --- |"]  # fmt: skip
        for crowd, runs in r["runs"].items():
            states = ", ".join(f"{run['recovered']}/{run['complete_in_order']}" for run in runs)
            out.append(f"| {crowd} | {', '.join(str(run['last_ms']) for run in runs)} | {states} |")
        out.append("")
    if "live" in found:
        q = found["live"]
        out += [f"### live: {q['title']}", "", "| round | POST p50 ms | delivered | p50 ms | "
                "p99 ms | bulk frames | bulk: every frame in (ms) | PATCH answered (ms) |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for i, run in enumerate(q["runs"], 1):
            out.append(
                f"| {i} | {run['write_p50_ms']:.2f} | {run['delivered']:.2%} | {run['p50_ms']} | "
                f"{run['p99_ms']} | {run['bulk_frames']}/{run['bulk_frames_expected']} | "
                f"{run['bulk_all_delivered_ms']:.0f} | {run['bulk_write_ms']:.0f} |"
            )
        on, off = q["post_p50_ms"]["on"], q["post_p50_ms"]["off"]
        out += ["", f"POST p50 with the registry in place (two uWSGI, alternating): events on "
                f"{on['median']:.2f} ms ({on['min']:.2f}-{on['max']:.2f}), off "
                f"{off['median']:.2f} ms ({off['min']:.2f}-{off['max']:.2f}).", ""]  # fmt: skip
    if "sockets" in found:
        data = found["sockets"]
        out += ["### sockets", "", "KiB/socket: (PSS - the fresh process's PSS) / sockets, on "
                "the fresh process (cycle 1) and at the top level of later cycles (their lower "
                "levels sit on the first cycle's high-water mark).", "",
                "| cycle | sockets | PSS MiB | KiB/socket |",
                "| --- | --- | --- | --- |"]  # fmt: skip
        for c, cycle in enumerate(data["cycles"], 1):
            for i, p in enumerate(cycle["points"]):
                shown = c == 1 or i == len(cycle["points"]) - 1
                per = f"{p['kib_per_socket']:.1f}" if shown else "-"
                out.append(f"| {c} | {p['sockets']} | {p['pss_kib'] / 1024:.1f} | {per} |")
        out.append(
            f"| | baseline {data['baseline_kib'] / 1024:.1f} MiB; after each close: "
            + ", ".join(f"{c['after_close_kib'] / 1024:.1f}" for c in data["cycles"])
            + " MiB | | |"
        )
        out.append("")
    if "checks" in found:
        c = found["checks"]
        out += ["### checks", "", "| daphne processes | checks/s | cores used (median round) |",
                "| --- | --- | --- |"]  # fmt: skip
        for name, rate in c["checks_per_s"].items():
            runs = sorted(c["runs"][name], key=lambda r: r["checks_per_s"])
            mid = runs[(len(runs) - 1) // 2]["cpu"]["cores"]
            out.append(
                f"| {name} | {rate['median']:.0f} ({rate['min']:.0f}-{rate['max']:.0f}) | "
                f"{_cpu_line(mid)} |"
            )
        out.append("")
    return "\n".join(out)


def plot_http(found: dict[str, dict[str, Any]], results: Path) -> list[str]:
    made = []
    panels = [n for n in ("http", "ceiling") if n in found]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
        for ax, name in zip(axes[0], panels, strict=True):
            for variant, s in found[name]["variants"].items():
                points = s["latency_percentiles_us"]
                xs = [points[str(q) if str(q) in points else str(int(q))] / 1000 for q in QS]
                ax.plot(xs, QS, marker=".", label=variant)
            ax.set_xscale("log")
            ax.set_xlabel("latency (ms, log scale)")
            ax.set_ylabel("percentile of requests")
            ax.set_title(found[name]["title"].split(":")[0] + " - latency (16 connections)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(results / "http_latency.png", dpi=110)
        plt.close(fig)
        made.append("http_latency.png")
    panels = [n for n in ("http", "ceiling", "sizing") if n in found]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
        for ax, name in zip(axes[0], panels, strict=True):
            series = [("", found[name]["variants"])]
            if name == "sizing" and "writes" in found[name]:
                series = [("list", found[name]["variants"]), ("POST", found[name]["writes"])]
            width = 0.8 / len(series)
            top = 0.0
            for k, (label, variants) in enumerate(series):
                labels = list(variants)
                xs = [x + (k - (len(series) - 1) / 2) * width for x in range(len(labels))]
                med = [variants[v]["rps"]["median"] for v in labels]
                low = [m - variants[v]["rps"]["min"] for m, v in zip(med, labels, strict=True)]
                high = [variants[v]["rps"]["max"] - m for m, v in zip(med, labels, strict=True)]
                ax.bar(xs, med, width=width, yerr=[low, high], capsize=5, alpha=0.8,
                       label=label or None)  # fmt: skip
                for x, m, h in zip(xs, med, high, strict=True):
                    ax.annotate(f"{m:.0f}", (x, m + h), ha="center", va="bottom", fontsize=8,
                                xytext=(0, 3), textcoords="offset points")  # fmt: skip
                ax.set_xticks(range(len(labels)), labels)
                top = max(top, *(variants[v]["rps"]["max"] for v in labels))
            ax.set_ylabel("requests/s (median, bars: min-max)")
            if name == "ceiling":
                ax.set_yscale("log")
                ax.set_ylim(top=top * 3)
                ax.set_ylabel("requests/s, log scale (median, min-max)")
            else:
                ax.set_ylim(0, top * 1.18)
            if len(series) > 1:
                ax.legend(fontsize=8)
            ax.set_title({"http": "DRF list: uWSGI vs daphne", "ceiling": "Ceiling",
                          "sizing": "uWSGI processes x threads"}[name])  # fmt: skip
            ax.grid(True, axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(results / "http_throughput.png", dpi=110)
        plt.close(fig)
        made.append("http_throughput.png")
    return made


def plot_fanout(found: dict[str, dict[str, Any]], results: Path) -> list[str]:
    if "fanout" not in found:
        return []
    f = found["fanout"]
    sizes = [key for key in next(iter(f["runs"].values())) if key != "burst"]
    fig, axes = plt.subplots(1, len(sizes) + 1, figsize=(4.6 * (len(sizes) + 1), 4.2))
    qs = list(range(1, 100))
    colors = {layer: f"C{i}" for i, layer in enumerate(f["runs"])}
    for ax, n in zip(axes, sizes, strict=False):
        for layer, per in f["runs"].items():
            runs = sorted(per[n], key=lambda run: run["p99_ms"])
            run = runs[(len(runs) - 1) // 2]
            ax.plot(run["latency_cdf_ms"], qs, color=colors[layer],
                    label=f"{layer} (p99 {run['p99_ms']:.0f} ms)")  # fmt: skip
        ax.axvline(100, color="red", linestyle="--", linewidth=1, label="100 ms target")
        ax.set_title(f"one write -> N = {n} sockets")
        ax.set_xlabel("delivery latency (ms)")
        ax.set_ylabel("percentile of deliveries")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    ax = axes[-1]
    for layer, per in f["summary"].items():
        xs = [int(n) for n in sizes]
        ys = [per[n]["p99_ms"]["median"] for n in sizes]
        ax.plot(xs, ys, marker="o", color=colors[layer], label=f"{layer} p99")
        ax.plot(xs, [per[n]["p50_ms"]["median"] for n in sizes], marker=".", linestyle=":",
                color=colors[layer], label=f"{layer} p50")  # fmt: skip
    ax.axhline(100, color="red", linestyle="--", linewidth=1)
    ax.set_xlabel("sockets (N)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("latency vs N (median of rounds)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(results / "fanout_latency.png", dpi=110)
    plt.close(fig)
    return ["fanout_latency.png"]


def plot_sockets(found: dict[str, dict[str, Any]], results: Path) -> list[str]:
    if "sockets" not in found:
        return []
    data = found["sockets"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    start = data["baseline_kib"]
    for c, cycle in enumerate(data["cycles"], 1):
        xs = [0] + [p["sockets"] for p in cycle["points"]]
        ys = [start / 1024] + [p["pss_kib"] / 1024 for p in cycle["points"]]
        ax.plot(xs, ys, marker="o", color=f"C{c - 1}", label=f"cycle {c}")
        ax.scatter([0], [cycle["after_close_kib"] / 1024], marker="x", s=60, color=f"C{c - 1}")
        start = cycle["after_close_kib"]
    top = data["cycles"][0]["points"][-1]["sockets"]
    base = data["baseline_kib"] / 1024
    ax.plot([0, top], [base, base + top * 100 / 1024], "r--", linewidth=1,
            label="100 KiB/socket target")  # fmt: skip
    ax.set_title("daphne PSS, idle /catalog/ws/ sockets")
    ax.set_xlabel("open sockets (each cycle starts where the last one ended; x: after close)")
    ax.set_ylabel("PSS (MiB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(results / "sockets_memory.png", dpi=110)
    plt.close(fig)
    return ["sockets_memory.png"]


def plot_writes_checks(found: dict[str, dict[str, Any]], results: Path) -> list[str]:
    panels = [n for n in ("bulk", "checks", "rows", "cost") if n in found]
    if not panels:
        return []
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for ax, name in zip(axes[0], panels, strict=True):
        if name == "bulk":
            runs = found["bulk"]["runs"]
            labels = ["bulk POST (10k)", f"single POSTs ({runs[0]['singles']})"]
            values = [
                [r["bulk_us_per_item"] for r in runs],
                [r["single_us_per_item"] for r in runs],
            ]
            ax.set_yscale("log")
            ax.set_ylabel("µs per item, log scale")
            ax.set_title(f"Writes: {found['bulk']['speedup_per_item']['median']:.0f}x per item")
        elif name == "checks":
            runs = found["checks"]["runs"]
            labels = ["one daphne", "two daphne"]
            values = [
                [r["checks_per_s"] for r in runs["one"]],
                [r["checks_per_s"] for r in runs["two"]],
            ]
            ax.set_ylabel("check frames answered / s")
            ax.set_title(f"Check rate: {found['checks']['scaling']['median']:.2f}x with two")
        elif name == "cost":
            runs = found["cost"]["runs"]
            labels = ["daphne", "bare websockets"]
            values = [[r["us_per_frame"] for r in runs["daphne"]],
                      [r["us_per_frame"] for r in runs["bare"]]]  # fmt: skip
            ax.set_ylabel("CPU µs per delivered frame")
            ax.set_title(f"Fan-out cost: {found['cost']['ratio']['median']:.2f}x the floor")
        else:
            p50 = found["rows"]["p50_us"]
            labels = [f"{size} rows" for size in p50]
            values = [[p50[size]["median"] / 1000] for size in p50]
            ax.set_ylabel("p50 latency (ms), 1 connection")
            ax.set_title(f"Per row: {found['rows']['us_per_row_1_to_50']['median']:.0f} µs")
        med = [sorted(v)[(len(v) - 1) // 2] for v in values]
        low = [m - min(v) for m, v in zip(med, values, strict=True)]
        high = [max(v) - m for m, v in zip(med, values, strict=True)]
        ax.bar(labels, med, yerr=[low, high], capsize=6, color="tab:green", alpha=0.8)
        for x, (m, h) in enumerate(zip(med, high, strict=True)):
            text = f"{m:.0f}" if m >= 10 else f"{m:.2f}"
            ax.annotate(text, (x, m + h), ha="center", va="bottom", fontsize=9,
                        xytext=(0, 3), textcoords="offset points")  # fmt: skip
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(results / "writes_checks_rows.png", dpi=110)
    plt.close(fig)
    return ["writes_checks_rows.png"]


def write(results: Path) -> None:
    found = load(results)
    images = []
    images += plot_http(found, results)
    images += plot_fanout(found, results)
    images += plot_sockets(found, results)
    images += plot_writes_checks(found, results)
    metas = [r["meta"] for r in found.values() if "meta" in r]
    head = metas[0] if metas else {}
    text = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (bench/run.py) against the split stack on one machine: "
        f"{head.get('machine', {}).get('cores', '?')} cores "
        f"({head.get('machine', {}).get('cpu', '?')}), loopback only, MariaDB, a private Redis, "
        "nginx, uWSGI and daphne. Variants alternate round by round; figures are medians with "
        "min-max over rounds. Cores used = CPU seconds / wall seconds per process group "
        "(client = the load generator; `other (machine)` = CPU used by processes outside "
        "the stack and the client).",
        "",
        "Runs (start, commit): " + ", ".join(
            f"{name} {r['meta']['started']} {r['meta'].get('machine', {}).get('commit', '?')}"
            f"{' (quick)' if r['meta']['quick'] else ''}"
            for name, r in found.items() if "meta" in r
        ) + ".",
        "",
        table(found),
        "",
        details(found),
        "## Plots",
        "",
        *[f"![{image}]({image})" for image in images],
        "",
    ]  # fmt: skip
    (results / "summary.md").write_text("\n".join(text))
