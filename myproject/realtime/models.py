"""The outbox: frames committed with the writes they announce (myproject.realtime.outbox)."""

from django.db import models
from django.utils import timezone


class Outbox(models.Model):
    """A frame waiting to be published. It is written in the transaction of the write it
    announces, so it exists exactly when the write committed, and deleted once published; its
    id is the frame's idempotency key (a retried publish keeps the frame's first seq) and its
    order (frames are published in id order)."""

    topic = models.CharField(max_length=100)
    payload = models.TextField()
    size = models.PositiveIntegerField(help_text="len(payload): batches stay within a budget")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "realtime_outbox"
        verbose_name_plural = "outbox"

    def __str__(self) -> str:
        return f"frame {self.pk} of {self.topic}"
