"""Where each read goes: the primary, or a replica that has what the read must see (see the
package docstring). Only the primary is written to and migrated."""

import contextlib
import contextvars
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
)
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from myproject.replicas.gtid import covers, merge
from myproject.replicas.health import health


@dataclass
class Reads:
    """What the reads of one request (or one `primary()` block) may use."""

    primary: bool = False  # every read on the primary
    wrote: bool = False  # a write was routed: later reads see it on the primary
    after: str | None = None  # a GTID position the replica must have applied
    replica: str | None = None  # the request's replica, once chosen
    waited: str | None = None  # the position the replica was seen to have applied
    failed: bool = False  # the replica failed under a read of this request


_reads: contextvars.ContextVar[Reads | None] = contextvars.ContextVar("reads", default=None)


@contextlib.contextmanager
def reading(reads: Reads) -> Iterator[Reads]:
    """The reads in the block follow `reads` (a request's: ReplicaMiddleware)."""
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


def primary() -> contextlib.AbstractContextManager[Reads]:
    """Every read in the block goes to the primary."""
    return reading(Reads(primary=True))


def read_after(position: str | None) -> None:
    """The current request's replica reads must see every write up to `position`."""
    reads = _reads.get()
    if reads is not None and position:
        reads.after = merge(reads.after, position)


def _database_for_read() -> str:
    if not settings.DATABASE_REPLICAS or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    reads = _reads.get()
    if reads is None:  # outside a request: a consumer, a management command
        usable = health.usable()
        return random.choice(usable) if usable else DEFAULT_DB_ALIAS  # noqa: S311
    if reads.primary or reads.wrote:
        return DEFAULT_DB_ALIAS
    if reads.replica is None:
        reads.replica = _connected_replica()
        if reads.replica is None:
            reads.primary = True
            return DEFAULT_DB_ALIAS
    if reads.after and reads.after != reads.waited:
        if not _has_applied(reads.replica, reads.after):
            reads.primary = True
            return DEFAULT_DB_ALIAS
        reads.waited = reads.after
    return reads.replica


def _has_applied(alias: str, position: str) -> bool:
    """Whether replica `alias` has applied `position`, waiting for it only when it may arrive
    within REPLICA_GTID_WAIT: what the last health check saw answers at once a replica that
    already has it, or one held back (MASTER_DELAY) or lagging by at least the wait, where
    waiting would only delay the read that then goes to the primary anyway."""
    check = health.last_check(alias)
    if check is not None and covers(check.applied, position):
        return True
    if check is None or check.behind >= settings.REPLICA_GTID_WAIT:
        return False
    return _wait(alias, position)


def _connected_replica() -> str | None:
    """A healthy replica whose connection answers (a persistent connection the replica dropped
    is replaced, or the replica skipped)."""
    candidates = health.usable()
    random.shuffle(candidates)
    for alias in candidates:
        connection = connections[alias]
        try:
            connection.close_if_health_check_failed()
            connection.ensure_connection()
        except DatabaseError as exc:
            health.failed(alias, exc)
            continue
        return alias
    return None


def _wait(alias: str, position: str) -> bool:
    """Whether replica `alias` applied `position` within REPLICA_GTID_WAIT seconds."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT MASTER_GTID_WAIT(%s, %s)", [position, settings.REPLICA_GTID_WAIT]
            )
            (result,) = cursor.fetchone()
    except DatabaseError:
        return False  # the execute wrapper below has noted the failure
    return result == 0


class ReplicaRouter:
    """Reads to a replica when they may (see the package docstring), everything else to the
    primary. The replicas are the primary's database: relations between their objects hold,
    and only the primary is migrated."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        return _database_for_read()

    def db_for_write(self, model: type, **hints: Any) -> str:
        reads = _reads.get()
        if reads is not None:
            reads.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: object, obj2: object, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


@receiver(connection_created)
def _watch_replica(sender: Any, connection: Any, **kwargs: Any) -> None:
    wrappers = connection.execute_wrappers
    if connection.alias in settings.DATABASE_REPLICAS and _noting not in wrappers:
        wrappers.append(_noting)


def _noting(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict) -> Any:
    """A replica's query failed: skip the replica, and serve the request again from the
    primary (middleware.ReplicaMiddleware)."""
    try:
        return execute(sql, params, many, context)
    except (OperationalError, InterfaceError) as exc:
        health.failed(context["connection"].alias, exc)
        reads = _reads.get()
        if reads is not None:
            reads.failed = True
        raise
