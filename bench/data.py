"""
Writes in quantity: `import_catalog` of a generated 10k-row CSV, and one bulk POST of 10,000
items against single POSTs (500 of them, extrapolated per item).
"""

import json
import subprocess
import time
from typing import Any

import httpx

from bench.loadgen import spread
from bench.stack import BIN, NGINX, ROOT, WORK, BenchStack, log, self_cpu

BULK = 10_000


def catalog_csv(items: int = 10_000) -> str:
    path = WORK / f"catalog-{items}.csv"
    if not path.exists():
        subprocess.run(
            [str(BIN / "python"), str(ROOT / "scripts" / "make_sample_catalog.py"),
             "--items", str(items), "--out", str(path)],
            check=True, capture_output=True,
        )  # fmt: skip
    return str(path)


def empty_catalog() -> None:
    from django.db import connection

    from catalog.models import Category, Item

    Item.objects.all().delete()
    Category.objects.exclude(slug="bench").delete()
    connection.close()


def item_count() -> int:
    from django.db import connection

    from catalog.models import Item

    count = Item.objects.count()
    connection.close()
    return count


def load_dataset(stack: BenchStack) -> float:
    """An empty catalog, then the 10k-item sample through `manage.py import_catalog`;
    returns the command's wall time (Django's start-up included)."""
    empty_catalog()
    started = time.monotonic()
    output = stack.manage("import_catalog", catalog_csv())
    elapsed = time.monotonic() - started
    log(f"  import_catalog 10k: {elapsed:.2f} s ({output.strip().splitlines()[-1][:100]})")
    return elapsed


def importing(stack: BenchStack, reps: int) -> dict[str, Any]:
    """issue 4: importing 10,000 items finishes in a few seconds on 2 cores."""
    startup = []
    for _ in range(reps):
        started = time.monotonic()
        stack.manage("check")
        startup.append(time.monotonic() - started)
    times = []
    for _ in range(reps):
        with stack.meter() as meter:
            times.append(load_dataset(stack))
    result = spread(times)
    return {
        "name": "import",
        "title": "import_catalog of a generated 10k-row CSV (wall time of the command)",
        "target": "a few seconds on 2 cores (taken as <= 10 s)",
        "measured": f"{result['median']:.2f} s ({result['min']:.2f}-{result['max']:.2f})",
        "pass": result["median"] <= 10,
        "seconds": result,
        "django_startup_s": spread(startup),
        "cpu_last_run": meter.report(),
    }


def _item(prefix: str, index: int, category: str) -> dict[str, Any]:
    return {
        "sku": f"{prefix}-{index:05d}",
        "name": f"Bench item {index}",
        "description": "written by bench/data.py",
        "price": "19.99",
        "stock": 7,
        "category": category,
    }


def bulk(stack: BenchStack, reps: int, singles: int) -> dict[str, Any]:
    """One POST of 10,000 items vs `singles` single POSTs one after another on a kept-alive
    connection, per item. Bodies are encoded before the clock starts. Each round's rows are
    deleted afterwards so every round writes into the same table."""
    from django.db import connection

    from catalog.models import Item

    headers = {**stack.auth, "Content-Type": "application/json"}
    runs: list[dict[str, Any]] = []
    with httpx.Client(base_url=NGINX, headers=headers, timeout=300) as client:
        warm = client.post("/catalog/items/", content=json.dumps(_item("WARM", 0, stack.category)))
        assert warm.status_code == 201, warm.text
        for rep in range(reps):
            body = json.dumps([_item(f"BULK{rep}", i, stack.category) for i in range(BULK)])
            with stack.meter() as meter:
                cpu = self_cpu()
                started = time.perf_counter()
                response = client.post("/catalog/items/", content=body)
                bulk_s = time.perf_counter() - started
                cpu = self_cpu() - cpu
            assert response.status_code == 201, response.text[:500]
            assert len(response.json()) == BULK
            bulk_cpu = meter.report(client_cpu=cpu)

            bodies = [json.dumps(_item(f"ONE{rep}", i, stack.category)) for i in range(singles)]
            with stack.meter() as meter:
                cpu = self_cpu()
                started = time.perf_counter()
                for one in bodies:
                    response = client.post("/catalog/items/", content=one)
                    assert response.status_code == 201, response.text[:300]
                singles_s = time.perf_counter() - started
                cpu = self_cpu() - cpu
            single_cpu = meter.report(client_cpu=cpu)

            run = {
                "bulk_s": round(bulk_s, 3),
                "bulk_body_bytes": len(body),
                "bulk_us_per_item": round(bulk_s / BULK * 1e6, 1),
                "singles": singles,
                "singles_s": round(singles_s, 3),
                "single_us_per_item": round(singles_s / singles * 1e6, 1),
                "singles_extrapolated_10k_s": round(singles_s / singles * BULK, 1),
                "speedup_per_item": round((singles_s / singles) / (bulk_s / BULK), 1),
                "cpu_bulk": bulk_cpu,
                "cpu_singles": single_cpu,
            }
            runs.append(run)
            log(f"  round {rep + 1}/{reps}: bulk 10k {bulk_s:.2f} s, {singles} singles "
                f"{singles_s:.2f} s -> {run['speedup_per_item']}x per item")  # fmt: skip
            Item.objects.filter(sku__regex=r"^(BULK|ONE)[0-9]+-").delete()
            connection.close()
    speedup = spread([run["speedup_per_item"] for run in runs])
    seconds = spread([run["bulk_s"] for run in runs])
    return {
        "name": "bulk",
        "title": f"Bulk POST of {BULK:,} items vs single POSTs (extrapolated from {singles})",
        "target": ">= 20x faster per item; issue 4: the 10k bulk POST in a few seconds",
        "measured": f"{speedup['median']:.0f}x per item ({speedup['min']:.0f}-"
        f"{speedup['max']:.0f}); bulk 10k in {seconds['median']:.2f} s",
        "pass": speedup["median"] >= 20 and seconds["median"] <= 10,
        "speedup_per_item": speedup,
        "bulk_10k_s": seconds,
        "single_post_ms": spread([run["single_us_per_item"] / 1000 for run in runs]),
        "runs": runs,
    }
