"""
The one write path of a model: REST (single and bulk), admin and management commands all go
through it, so every committed write publishes the same event.

Each app declares one `ModelService` per model in its `services.py`:

    class ItemService(ModelService[Item]):
        model = Item
        resource = "item"
        group = events.CATALOG_GROUP
        serializer_class = ItemSerializer

    items = ItemService()
    items.create({"sku": "A-1", ...})  # saved; "item.created" published on commit

Bulk writes cost a constant number of queries (`bulk_create`/`bulk_update` in batches of
`BATCH_SIZE` rows, fewer when long texts would overflow a statement) and publish one `bulk_*`
event with the uuids. Every method is atomic.
"""

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from django.db import models, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.serializers import BaseSerializer

from myproject import events

M = TypeVar("M", bound=models.Model)

# Rows per INSERT / UPDATE statement: large enough to be fast, small enough for the CASE WHEN
# of bulk_update; and at most about BATCH_BYTES of data (4 bytes a character, the most UTF-8
# and escaping take), as 500 rows of long texts would outgrow MySQL's max_allowed_packet
# (16 MiB on MariaDB by default), and a statement over it fails as if the database were gone.
BATCH_SIZE = 500
BATCH_BYTES = 4 * 1024 * 1024


class ModelService(Generic[M]):
    model: ClassVar[type[models.Model]]
    resource: ClassVar[str]
    group: ClassVar[str]
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
        return json.loads(JSONRenderer().render(self.serializer_class(instance).data))

    @transaction.atomic
    def save(self, instance: M, *, created: bool) -> M:
        """Save an instance (built here, or changed by an admin form) and publish the event."""
        instance.save()
        self._publish("created" if created else "updated", self.represent(instance))
        return instance

    def create(self, fields: dict[str, Any]) -> M:
        return self.save(self.build(dict(fields)), created=True)

    def update(self, instance: M, fields: dict[str, Any]) -> M:
        self.assign(instance, dict(fields))
        return self.save(instance, created=False)

    @transaction.atomic
    def delete(self, instance: M) -> None:
        uuid = instance.pk
        instance.delete()
        self._publish("deleted", {"uuid": str(uuid)})

    @transaction.atomic
    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> list[M]:
        instances = [self.build(dict(row)) for row in rows]
        attnames = [f.attname for f in self.model._meta.concrete_fields]
        for batch in _batches(instances, attnames):
            self.model.objects.bulk_create(batch)
        self._publish_bulk("bulk_created", instances)
        return instances

    @transaction.atomic
    def bulk_update(self, changes: Sequence[tuple[M, dict[str, Any]]]) -> list[M]:
        """Apply each `(instance, fields)` pair and save them all in a few UPDATE statements."""
        touched: set[str] = set()
        for instance, fields in changes:
            self.assign(instance, dict(fields))
            touched.update(fields)
        instances = [instance for instance, _ in changes]
        if touched:
            touched.update(self._auto_now(instances))
            fields = self._concrete(touched)
            attnames = [self.model._meta.get_field(name).attname for name in fields]
            for batch in _batches(instances, attnames):
                self.model.objects.bulk_update(batch, fields)
        self._publish_bulk("bulk_updated", instances)
        return instances

    @transaction.atomic
    def bulk_delete(self, queryset: models.QuerySet) -> int:
        uuids = list(queryset.values_list("pk", flat=True))
        self.model.objects.filter(pk__in=uuids).delete()
        self._publish("bulk_deleted", {"uuids": [str(uuid) for uuid in uuids]})
        return len(uuids)

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

    def _publish_bulk(self, action: str, instances: Iterable[M]) -> None:
        self._publish(action, {"uuids": [str(instance.pk) for instance in instances]})

    def _publish(self, action: str, data: dict[str, Any]) -> None:
        events.publish_on_commit(self.group, events.event_type(self.resource, action), data)


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
