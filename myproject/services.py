"""
The one write path of a model: REST (single and bulk), admin and management commands all go
through it, so every committed write publishes the same event.

Each app declares one `ModelService` per model in its `services.py`:

    class ItemService(ModelService[Item]):
        model = Item
        resource = "item"
        topic = topics.CATALOG
        serializer_class = ItemSerializer

    items = ItemService()
    items.create({"sku": "A-1", ...})  # saved; "item.created" published on commit

Every event carries the written rows before and after the write (myproject.realtime.frames), so
that live queries can tell which subscriptions a row enters, leaves or stays in, and goes into
the outbox of the write's own transaction: committed means announced
(myproject.realtime.outbox). Bulk writes
cost a constant number of queries (`bulk_create`/`bulk_update` in batches of `BATCH_SIZE` rows,
fewer when long texts would overflow a statement) and publish `bulk_*` events with the uuids,
at most UUIDS_PER_EVENT each. Every method is atomic.
"""

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from django.db import models, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.serializers import BaseSerializer

from myproject.realtime import publish, topics

M = TypeVar("M", bound=models.Model)

# Rows per INSERT / UPDATE statement: large enough to be fast, small enough for the CASE WHEN
# of bulk_update; and at most about BATCH_BYTES of data (4 bytes a character, the most UTF-8
# and escaping take), as 500 rows of long texts would outgrow MySQL's max_allowed_packet
# (16 MiB on MariaDB by default), and a statement over it fails as if the database were gone.
BATCH_SIZE = 500
BATCH_BYTES = 4 * 1024 * 1024
# The most uuids one bulk event carries (a larger write publishes several), and about the most
# text: rows with long texts (a comment of 64k characters, before and after) make a smaller one.
UUIDS_PER_EVENT = 1000
EVENT_BYTES = 4 * 1024 * 1024


# A row as events carry it: its REST representation, before and after a write (None: absent).
Row = dict[str, Any] | None


class ModelService(Generic[M]):
    model: ClassVar[type[models.Model]]
    resource: ClassVar[str]
    topic: ClassVar[str]
    serializer_class: ClassVar[type[BaseSerializer]]

    def build(self, fields: dict[str, Any]) -> M:
        """An unsaved instance from validated fields; override for fields needing care."""
        return self.model(**fields)

    def assign(self, instance: M, fields: dict[str, Any]) -> None:
        """Apply validated fields to an instance; override for fields needing care."""
        for name, value in fields.items():
            setattr(instance, name, value)

    def represent(self, instance: M) -> dict[str, Any]:
        """The REST representation, which the event carries too, as plain JSON types."""
        return self.represent_many([instance])[0]

    def represent_many(self, instances: Sequence[M]) -> list[dict[str, Any]]:
        """`represent` for many rows at once: one serializer for all of them, as a serializer's
        fields are built anew for each instance (~0.5 ms a row; make bench: bulk, import)."""
        data = self.serializer_class(instances, many=True).data
        return json.loads(JSONRenderer().render(data))

    def public(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """What a reader who is neither staff nor the row itself sees of a row; None: all."""
        return None

    def stored(self, instance: M) -> Row:
        """The row as the database holds it now (an admin form changes the instance first)."""
        current = self.model._default_manager.filter(pk=instance.pk).first()
        return self.represent(current) if current is not None else None

    @transaction.atomic
    def save(self, instance: M, *, created: bool, before: Row = None) -> M:
        """Save an instance (built here, or changed by an admin form) and publish the event."""
        if not created and before is None:
            before = self.stored(instance)
        instance.save()
        self._publish("created" if created else "updated", [(before, self.represent(instance))])
        return instance

    def create(self, fields: dict[str, Any]) -> M:
        return self.save(self.build(dict(fields)), created=True)

    def update(self, instance: M, fields: dict[str, Any]) -> M:
        before = self.represent(instance)
        self.assign(instance, dict(fields))
        return self.save(instance, created=False, before=before)

    @transaction.atomic
    def delete(self, instance: M) -> None:
        before = self.represent(instance)
        instance.delete()
        self._publish("deleted", [(before, None)])

    @transaction.atomic
    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> list[M]:
        instances = [self.build(dict(row)) for row in rows]
        attnames = [f.attname for f in self.model._meta.concrete_fields]
        for batch in _batches(instances, attnames):
            self.model.objects.bulk_create(batch)
        self._publish("bulk_created", [(None, after) for after in self.represent_many(instances)])
        return instances

    @transaction.atomic
    def bulk_update(self, changes: Sequence[tuple[M, dict[str, Any]]]) -> list[M]:
        """Apply each `(instance, fields)` pair and save them all in a few UPDATE statements."""
        touched: set[str] = set()
        instances = [instance for instance, _ in changes]
        befores = self.represent_many(instances)
        for instance, fields in changes:
            self.assign(instance, dict(fields))
            touched.update(fields)
        if touched:
            touched.update(self._auto_now(instances))
            fields = self._concrete(touched)
            attnames = [self.model._meta.get_field(name).attname for name in fields]
            for batch in _batches(instances, attnames):
                self.model.objects.bulk_update(batch, fields)
        rows = zip(befores, self.represent_many(instances), strict=True)
        self._publish("bulk_updated", list(rows))
        return instances

    @transaction.atomic
    def bulk_delete(self, queryset: models.QuerySet) -> list[Any]:
        """Delete the rows of `queryset`; returns their primary keys."""
        instances = list(queryset)
        uuids = [instance.pk for instance in instances]
        befores = self.represent_many(instances)
        self.model.objects.filter(pk__in=uuids).delete()
        self._publish("bulk_deleted", [(before, None) for before in befores])
        return uuids

    def _auto_now(self, instances: Iterable[M]) -> list[str]:
        """`bulk_update` skips `auto_now`; stamp those fields as `save()` would."""
        names = [f.name for f in self.model._meta.concrete_fields if getattr(f, "auto_now", False)]
        now = timezone.now()
        for instance in instances:
            for name in names:
                setattr(instance, name, now)
        return names

    def _concrete(self, names: set[str]) -> list[str]:
        """Only concrete, non-primary-key fields can be bulk-updated."""
        concrete = {f.name for f in self.model._meta.concrete_fields if not f.primary_key}
        return sorted(names & concrete)

    def _publish(self, action: str, rows: Sequence[tuple[Row, Row]]) -> None:
        """The event of a write, into the write's outbox (myproject.realtime.outbox). A single
        row's event carries its representation (its public one beside it, if readers differ);
        a bulk write's events carry uuids, one event per UUIDS_PER_EVENT rows and at most about
        EVENT_BYTES: a 200k-row write is many modest frames, not one that every socket must
        swallow whole."""
        type_ = topics.event_type(self.resource, action)
        if not action.startswith("bulk_"):
            ((before, after),) = rows
            data = after if after is not None else {"uuid": before["uuid"]}
            publish.event_on_commit(
                self.topic, type_, data, public=self.public(data), subject=data["uuid"],
                changes=(self.resource, rows),
            )  # fmt: skip
            return
        frames: list[tuple[str, str]] = []
        for start in range(0, len(rows), UUIDS_PER_EVENT):
            frames += self._bulk_events(type_, rows[start : start + UUIDS_PER_EVENT])
        publish.events_on_commit(frames)

    def _bulk_events(self, type_: str, rows: Sequence[tuple[Row, Row]]) -> list[tuple[str, str]]:
        """One bulk event for `rows`, or several if its payload would outgrow EVENT_BYTES."""
        uuids = [(after or before)["uuid"] for before, after in rows]
        text = publish.event(type_, {"uuids": uuids}, changes=(self.resource, rows))
        if len(text) <= EVENT_BYTES or len(rows) == 1:
            return [(self.topic, text)]
        half = len(rows) // 2
        return self._bulk_events(type_, rows[:half]) + self._bulk_events(type_, rows[half:])


def _batches(instances: Sequence[M], attnames: Sequence[str]) -> Iterator[list[M]]:
    """`instances` in runs of at most `BATCH_SIZE` rows and about `BATCH_BYTES` of data."""
    batch: list[M] = []
    size = 0
    for instance in instances:
        row = sum(_bytes(getattr(instance, name)) for name in attnames)
        if batch and (len(batch) == BATCH_SIZE or size + row > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(instance)
        size += row
    if batch:
        yield batch


def _bytes(value: object) -> int:
    """At most what a value takes in a statement: 4 bytes a character (UTF-8, escaping)."""
    return len(value) * 4 if isinstance(value, str) else 16
