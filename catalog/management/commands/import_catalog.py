"""
Import items from a CSV or JSON file through the same serializer and bulk path as the API.

    python manage.py import_catalog items.csv [--update] [--skip-invalid] [--batch-size N]
                                              [--batch]

One item per CSV row or JSON object (a JSON array, or JSON Lines), with the API's item fields,
except that `category` names a category by slug (created, with `category_name` as its name when
given, if missing). Every row is validated before anything is written; a bad row is reported
with its line number and, unless `--skip-invalid`, nothing at all is written. With `--update`
a row whose sku exists updates that item instead of failing as a duplicate.

The import is one transaction: sockets hear of it (one event per batch) once all of it has
committed. With `--batch` each batch commits on its own, and is announced as it commits: an
import that stops half-way (killed, the database gone) keeps, and announces, the batches that
committed.
"""

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from catalog.models import Category, Item
from catalog.serializers import CategorySerializer, ItemSerializer
from catalog.services import categories, items
from myproject.bulk import BulkListSerializer

ITEM_FIELDS = ("sku", "name", "description", "price", "stock", "enable")


@dataclass
class Row:
    line: int
    data: dict[str, Any]


class Rejected(Exception):
    """Bad rows were found and the import was not told to skip them; nothing is written."""


class Command(BaseCommand):
    help = "Import catalog items from a CSV or JSON file (validated like the API, all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=["csv", "json"], help="default: by extension")
        parser.add_argument("--update", action="store_true", help="update items whose sku exists")
        parser.add_argument("--skip-invalid", action="store_true", help="write the valid rows")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--batch", action="store_true", help="commit (and announce) each batch on its own"
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when the catalog has items"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Item.objects.exists():
            self.stdout.write("The catalog already has items; nothing imported.")
            return
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        kind = options["format"] or ("csv" if path.suffix.lower() == ".csv" else "json")
        with path.open(encoding="utf-8-sig", newline="") as stream:
            rows = list(read_csv(stream) if kind == "csv" else read_json(stream))
        importing = Import(self, rows, **_pick(options, "update", "skip_invalid", "batch_size"))
        try:
            if options["batch"]:
                summary = importing.run()
            else:
                with transaction.atomic():
                    summary = importing.run()
        except Rejected as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"created {summary['created']}, updated {summary['updated']}, "
                f"skipped {summary['skipped']}"
            )
        )


def _pick(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: options[name] for name in names}


def read_csv(stream: TextIO) -> Iterator[Row]:
    reader = csv.DictReader(stream)
    if reader.fieldnames is None:  # reads the header line
        return
    line = reader.line_num + 1
    for record in reader:
        yield Row(line, {k: v for k, v in record.items() if k is not None})
        line = reader.line_num + 1


def read_json(stream: TextIO) -> Iterator[Row]:
    """A JSON array of objects, or JSON Lines; each row keeps the line its object starts on."""
    text = stream.read()
    decoder = json.JSONDecoder()
    pos, line = 0, 1

    def skip(chars: str) -> None:
        nonlocal pos, line
        while pos < len(text) and text[pos] in chars:
            line += text[pos] == "\n"
            pos += 1

    skip(" \t\r\n")
    array = text.startswith("[", pos)
    if array:
        pos += 1
    while True:
        skip(" \t\r\n," if array else " \t\r\n")
        if pos >= len(text) or (array and text[pos] == "]"):
            return
        start = line
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise CommandError(f"line {exc.lineno}: invalid JSON: {exc.msg}") from exc
        line += text.count("\n", pos, end)
        pos = end
        yield Row(start, value if isinstance(value, dict) else {"__not_an_object__": value})


class Import:
    """One run: resolve categories, validate every row, then write in batches."""

    def __init__(
        self,
        command: BaseCommand,
        rows: list[Row],
        *,
        update: bool,
        skip_invalid: bool,
        batch_size: int,
    ) -> None:
        self.out = command.stdout
        self.style = command.style
        self.rows = rows
        self.update = update
        self.skip_invalid = skip_invalid
        self.batch_size = max(1, batch_size)
        self.bad: dict[int, str] = {}
        self.progress = Progress(self.out, total=len(rows))

    def run(self) -> dict[str, int]:
        # Categories and validation: all or nothing, whatever --batch says.
        with transaction.atomic():
            valid_creates, valid_updates = self._prepare()
        # Each write is atomic: a transaction of its own with --batch, part of the import's else.
        # Each write is atomic: a transaction of its own with --batch, part of the import's else.
        for batch in valid_creates:
            items.bulk_create(batch.validated_data)
            self.progress.advance(len(batch.validated_data))
        for batch in valid_updates:
            changes = list(zip(batch.instances, batch.validated_data, strict=True))
            items.bulk_update(changes)
            self.progress.advance(len(changes))
        self.progress.done()
        created = sum(len(b.validated_data) for b in valid_creates)
        updated = sum(len(b.validated_data) for b in valid_updates)
        return {"created": created, "updated": updated, "skipped": len(self.bad)}

    def _prepare(self) -> tuple[list[BulkListSerializer], list[BulkListSerializer]]:
        """Create the missing categories and validate every row: the batches to write, or
        Rejected."""
        slugs = self._resolve_categories()
        existing = self._existing_skus() if self.update else {}
        creates: list[tuple[Row, dict[str, Any]]] = []
        updates: list[tuple[Row, dict[str, Any]]] = []
        first_line: dict[str, int] = {}
        for row in self.rows:
            data = self._item_data(row, slugs)
            if data is None:
                continue
            sku = str(data.get("sku", "")).strip().casefold()
            if sku and sku in first_line:
                self.bad[row.line] = f"sku: repeats line {first_line[sku]}"
                continue
            first_line.setdefault(sku, row.line)
            if sku in existing:
                updates.append((row, {**data, "uuid": existing[sku]}))
            else:
                creates.append((row, data))
        valid_creates = self._validate(creates, update=False)
        valid_updates = self._validate(updates, update=True)
        self._report_bad()
        return valid_creates, valid_updates

    def _resolve_categories(self) -> dict[str, str]:
        """Map every slug the file names to a category uuid, creating the missing ones."""
        wanted: dict[str, str] = {}
        for row in self.rows:
            slug = str(row.data.get("category") or "").strip()
            if slug:
                wanted.setdefault(slug, str(row.data.get("category_name") or "").strip())
        found = {c.slug: str(c.uuid) for c in Category.objects.filter(slug__in=list(wanted))}
        new = []
        for slug, name in wanted.items():
            if slug in found:
                continue
            serializer = CategorySerializer(
                data={"slug": slug, "name": name or slug.replace("-", " ").title()}
            )
            if serializer.is_valid():
                new.append(serializer.validated_data)
                continue
            for row in self.rows:
                if str(row.data.get("category") or "").strip() == slug:
                    self.bad[row.line] = f"category: {_flatten(serializer.errors)}"
        for category in categories.bulk_create(new) if new else []:
            found[category.slug] = str(category.uuid)
        return found

    def _existing_skus(self) -> dict[str, str]:
        skus = [str(row.data.get("sku", "")).strip() for row in self.rows]
        pairs = Item.objects.filter(sku__in=[s for s in skus if s]).values_list("sku", "uuid")
        return {sku.casefold(): str(uuid) for sku, uuid in pairs}

    def _item_data(self, row: Row, slugs: dict[str, str]) -> dict[str, Any] | None:
        if "__not_an_object__" in row.data:
            self.bad[row.line] = "expected an object"
            return None
        if row.line in self.bad:
            return None
        data = {k: row.data[k] for k in ITEM_FIELDS if k in row.data and row.data[k] != ""}
        slug = str(row.data.get("category") or "").strip()
        data["category"] = slugs.get(slug) if slug else None
        return data

    def _validate(
        self, pending: list[tuple[Row, dict[str, Any]]], *, update: bool
    ) -> list[BulkListSerializer]:
        """Validate in batches with the API's bulk serializer; record bad rows by line."""
        valid = []
        for start in range(0, len(pending), self.batch_size):
            batch = pending[start : start + self.batch_size]
            while batch:
                serializer = ItemSerializer(
                    Item.objects.all() if update else None, data=[d for _, d in batch], many=True
                )
                if serializer.is_valid():
                    valid.append(serializer)
                    break
                for (row, _), error in zip(batch, serializer.errors, strict=True):
                    if error:
                        self.bad[row.line] = _flatten(error)
                batch = [entry for entry, e in zip(batch, serializer.errors, strict=True) if not e]
        return valid

    def _report_bad(self) -> None:
        for line in sorted(self.bad):
            self.out.write(self.style.ERROR(f"line {line}: {self.bad[line]}"))
        if self.bad and not self.skip_invalid:
            raise Rejected(
                f"{len(self.bad)} invalid row(s); nothing imported "
                "(--skip-invalid writes the valid ones)."
            )


def _flatten(error: Any) -> str:
    if isinstance(error, dict):
        return "; ".join(f"{field}: {_flatten(detail)}" for field, detail in error.items())
    if isinstance(error, list):
        return " ".join(_flatten(detail) for detail in error)
    return str(error)


class Progress:
    """A bar on a terminal; plain periodic lines in a log or a pipe."""

    def __init__(self, out: Any, total: int) -> None:
        self.out = out
        self.total = max(total, 1)
        self.count = 0
        self.tty = getattr(getattr(out, "_out", sys.stdout), "isatty", lambda: False)()
        self.last_line = -1

    def advance(self, n: int) -> None:
        self.count += n
        share = self.count / self.total
        if self.tty:
            filled = int(share * 40)
            self.out.write(
                f"\r[{'#' * filled}{'.' * (40 - filled)}] {self.count}/{self.total}", ending=""
            )
            self.out.flush()
        elif int(share * 10) > self.last_line:
            self.last_line = int(share * 10)
            self.out.write(f"imported {self.count}/{self.total} rows ({share:.0%})")

    def done(self) -> None:
        if self.tty and self.count:
            self.out.write("")
