"""`manage.py import_catalog`: the API's validation, all or nothing, line numbers, batches."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Category, Item
from tests.factories import CategoryFactory, ItemFactory

pytestmark = pytest.mark.django_db

HEADER = ["sku", "name", "price", "stock", "category", "category_name", "enable"]


def write_csv(path: Path, rows: list[list]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_catalog", *args, stdout=out)
    return out.getvalue()


def test_imports_a_good_csv_and_creates_missing_categories(tmp_path):
    CategoryFactory(slug="kitchen", name="Kitchen")
    path = write_csv(tmp_path / "items.csv", [
        ["K-1", "Kettle", "19.90", "5", "kitchen", "", "true"],
        ["G-1", "Rake", "12.00", "0", "garden", "Garden & Yard", "false"],
    ])  # fmt: skip
    out = run(str(path))
    assert "created 2, updated 0, skipped 0" in out
    assert Item.objects.get(sku="G-1").category.name == "Garden & Yard"
    assert not Item.objects.get(sku="G-1").enable
    assert Category.objects.count() == 2


def test_imports_json_arrays_and_json_lines(tmp_path):
    rows = [{"sku": f"J-{i}", "name": "Jar", "price": "1.50", "stock": 1, "category": "jars"}
            for i in range(3)]  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps(rows, indent=2))
    assert "created 3" in run(str(tmp_path / "a.json"))
    lines = "\n".join(json.dumps({**r, "sku": f"L-{i}"}) for i, r in enumerate(rows))
    (tmp_path / "b.jsonl").write_text(lines)
    assert "created 3" in run(str(tmp_path / "b.jsonl"), "--format", "json")
    assert Item.objects.count() == 6


def test_bad_rows_are_reported_by_line_and_nothing_is_written(tmp_path):
    ItemFactory(sku="TAKEN")
    path = write_csv(tmp_path / "items.csv", [
        ["OK-1", "Fine", "1.00", "1", "misc", "", "true"],        # line 2
        ["BAD-1", "Negative", "-1", "1", "misc", "", "true"],     # line 3
        ["TAKEN", "Duplicate", "1.00", "1", "misc", "", "true"],  # line 4
        ["BAD-2", "No category", "1.00", "1", "", "", "true"],    # line 5
        ["OK-1", "Repeated", "1.00", "1", "misc", "", "true"],    # line 6
        ["BAD-3", "Stock", "1.00", "many", "misc", "", "true"],   # line 7
    ])  # fmt: skip
    out = io.StringIO()
    with pytest.raises(CommandError, match="5 invalid row"):
        call_command("import_catalog", str(path), stdout=out)
    report = out.getvalue()
    for line, field in [(3, "price"), (4, "sku"), (5, "category"), (6, "repeats line 2"),
                        (7, "stock")]:  # fmt: skip
        assert f"line {line}: " in report
        assert field in report.split(f"line {line}: ")[1].splitlines()[0]
    assert "line 2:" not in report
    assert Item.objects.count() == 1
    assert not Category.objects.filter(slug="misc").exists()


def test_bad_json_rows_are_reported_by_the_line_they_start_on(tmp_path):
    text = (
        '[\n  {"sku": "A", "name": "a", "price": "1", "stock": 1, "category": "c"},\n'
        '  {"sku": "B",\n   "name": "b", "price": "-1", "stock": 1, "category": "c"},\n'
        '  "not an object"\n]'
    )
    (tmp_path / "x.json").write_text(text)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_catalog", str(tmp_path / "x.json"), stdout=out)
    assert "line 3: price" in out.getvalue()
    assert "line 5: expected an object" in out.getvalue()
    assert not Item.objects.exists()


def test_skip_invalid_writes_the_valid_rows(tmp_path):
    path = write_csv(tmp_path / "items.csv", [
        ["OK-1", "Fine", "1.00", "1", "misc", "", "true"],
        ["BAD-1", "Negative", "-1", "1", "misc", "", "true"],
        ["OK-2", "Fine", "2.00", "1", "misc", "", "true"],
    ])  # fmt: skip
    out = run(str(path), "--skip-invalid")
    assert "line 3: price" in out
    assert "created 2, updated 0, skipped 1" in out
    assert set(Item.objects.values_list("sku", flat=True)) == {"OK-1", "OK-2"}


def test_update_changes_existing_skus_and_creates_new_ones(tmp_path):
    ItemFactory(sku="K-1", name="Old", stock=1)
    path = write_csv(tmp_path / "items.csv", [
        ["K-1", "Renamed", "3.00", "7", "misc", "", "true"],
        ["K-2", "New", "4.00", "1", "misc", "", "true"],
    ])  # fmt: skip
    with pytest.raises(CommandError):
        run(str(path))  # without --update the sku is a duplicate
    out = run(str(path), "--update")
    assert "created 1, updated 1, skipped 0" in out
    item = Item.objects.get(sku="K-1")
    assert (item.name, item.stock, item.category.slug) == ("Renamed", 7, "misc")


def test_if_empty_leaves_a_populated_catalog_alone(tmp_path):
    ItemFactory()
    path = write_csv(tmp_path / "items.csv", [["N-1", "n", "1", "1", "misc", "", "true"]])
    assert "nothing imported" in run(str(path), "--if-empty")
    assert Item.objects.count() == 1


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run(str(tmp_path / "nope.csv"))


def test_imports_20000_rows_in_batches_with_progress_lines(tmp_path):
    path = write_csv(tmp_path / "big.csv", [
        [f"B-{i:06d}", f"Item {i}", f"{i % 500}.25", str(i % 40), f"cat-{i % 12}", "", "true"]
        for i in range(20000)
    ])  # fmt: skip
    out = run(str(path), "--batch-size", "2000")
    assert "created 20000, updated 0, skipped 0" in out
    assert "imported 20000/20000 rows (100%)" in out  # plain lines when not a terminal
    assert Item.objects.count() == 20000
    assert Category.objects.count() == 12


def test_the_shipped_sample_catalog_imports_cleanly():
    sample = Path(__file__).resolve().parents[2] / "catalog/fixtures/sample_catalog.csv"
    assert "created 3000, updated 0, skipped 0" in run(str(sample))


def test_progress_is_a_bar_on_a_terminal():
    from django.core.management.base import OutputWrapper

    from catalog.management.commands.import_catalog import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress(OutputWrapper(stream), total=4)
    progress.advance(2)
    progress.advance(2)
    progress.done()
    assert "\r[####################....................] 2/4" in stream.getvalue()
    assert "\r[########################################] 4/4" in stream.getvalue()
