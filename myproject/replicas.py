"""
Read replicas: reads go to a MariaDB replica, writes and the reads that must see them to the
primary. Active when `DATABASE_REPLICA_URLS` names replicas (settings add one alias per URL,
`replica1`, ..., with `ReplicaRouter` and `ReplicaMiddleware`).

    GET  /catalog/items/            -> a replica (one per request, the same for all its queries)
    POST /catalog/items/            -> the primary, its validation and uniqueness checks included
    with replicas.primary():        -> the primary (the WebSocket `check` frames)
        check_field(...)

Where a read goes:
- the primary: inside a transaction on the primary (`atomic`), after a write in the same
  request, in an unsafe request (POST, PUT, PATCH, DELETE), under `primary()`;
- otherwise one healthy replica: a thread of each process asks every replica each second
  whether it replicates and how far behind it is; one that does not answer, does not replicate
  or is more than `DJANGO_REPLICA_MAX_LAG` seconds behind is skipped until it catches up. A
  replica that fails under a read (it was shut down a moment ago) is skipped at once, and a
  safe request that met the failure is served again from the primary: no error reaches the
  client while the primary is up.

Read-your-writes, whatever the lag: a response to a request that wrote carries the primary's
GTID after the write (`@@last_gtid`), signed, in a cookie and in the `X-Read-After` header (a
client without cookies may send the header back). The next request's replica first waits for
that GTID (`MASTER_GTID_WAIT`, at most `DJANGO_REPLICA_GTID_WAIT` seconds), else reads the
primary. `X-Stream-Position` asks the same of its read (`read_after`, myproject.realtime.rest):
every frame at or before the position carries its write's GTID into the topic's position, so a
client that resumes from there misses no write.

GTID positions are MariaDB's: `domain-server-sequence`, comma-separated across domains.
"""

import contextlib
import contextvars
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import MySQLdb
from django.conf import settings
from django.core import signing
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
)
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHECK_INTERVAL = 1.0  # seconds between two checks of each replica
# A check older than this (the checking thread stuck on a replica that stopped answering)
# no longer vouches for the replica.
CHECK_VALID = 3 * CHECK_INTERVAL
COOKIE = "read_after"
HEADER = "X-Read-After"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# How long a read-your-writes GTID is kept: far longer than any lag a replica may have and still
# be used (REPLICA_MAX_LAG), so after that any replica in use has the write.
READ_AFTER_TTL = 60
POSITION = re.compile(r"^\d{1,10}-\d{1,10}-\d{1,20}(,\d{1,10}-\d{1,10}-\d{1,20}){0,63}$")


# --- GTID positions ----------------------------------------------------------------------


def merge(*positions: str | None) -> str | None:
    """The position that covers all of `positions`: the highest sequence of each domain.
    (The realtime broker's publish script does the same in Lua for a topic's frames.)"""
    best: dict[str, tuple[int, str]] = {}
    for position in positions:
        for gtid in (position or "").split(","):
            if not gtid:
                continue
            domain, _, sequence = gtid.split("-")
            if domain not in best or int(sequence) > best[domain][0]:
                best[domain] = (int(sequence), gtid)
    return ",".join(gtid for _, gtid in best.values()) or None


def committed_position() -> str | None:
    """The GTID of the last transaction this thread committed on the primary, when replicas
    are in use (None otherwise, or if it cannot be read: the read then is not waited for)."""
    if not settings.DATABASE_REPLICAS:
        return None
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        if not getattr(connection, "mysql_is_mariadb", False):
            return None  # no @@last_gtid (and no replica is used: Health._check)
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@last_gtid")
            (gtid,) = cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("no GTID for the last write: %s", exc)
        return None
    return gtid if gtid and POSITION.match(gtid) else None


# --- where a read goes -------------------------------------------------------------------


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
def primary() -> Iterator[None]:
    """Every read in the block goes to the primary."""
    token = _reads.set(Reads(primary=True))
    try:
        yield
    finally:
        _reads.reset(token)


def or_primary(read: Callable[[], T | None]) -> T | None:
    """`read()`, asked again of the primary if the replica has nothing (yet): for lookups
    whose miss would refuse a client (a token created a moment ago)."""
    found = read()
    if found is None and settings.DATABASE_REPLICAS:
        with primary():
            found = read()
    return found


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
        if not _wait(reads.replica, reads.after):
            reads.primary = True
            return DEFAULT_DB_ALIAS
        reads.waited = reads.after
    return reads.replica


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
    """Reads to a replica when they may (see the module docstring), everything else to the
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
    primary (ReplicaMiddleware)."""
    try:
        return execute(sql, params, many, context)
    except (OperationalError, InterfaceError) as exc:
        health.failed(context["connection"].alias, exc)
        reads = _reads.get()
        if reads is not None:
            reads.failed = True
        raise


class ReplicaMiddleware:
    """Sets each request's reads up (an unsafe method reads the primary; a client's
    `read_after` GTID is waited for) and hands a client that wrote the GTID of its write."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Check the replicas from the start: until the first check a process reads the primary.
        health.start()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        safe = request.method in SAFE_METHODS
        reads = Reads(primary=not safe, after=_client_position(request))
        token = _reads.set(reads)
        try:
            response = self.get_response(request)
            if reads.failed and safe and response.status_code >= 500:
                # The replica failed under this read (and is skipped now): serve it again from
                # the primary rather than answer with the error.
                reads.primary = True
                reads.failed = False
                response = self.get_response(request)
            if reads.wrote or (not safe and response.status_code < 400):
                _hand_position(request, response)
        finally:
            _reads.reset(token)
        return response


def _signer() -> signing.Signer:
    return signing.get_cookie_signer(salt=COOKIE + "myproject.replicas")


def _client_position(request: HttpRequest) -> str | None:
    for value in (request.headers.get(HEADER), request.COOKIES.get(COOKIE)):
        if not value:
            continue
        try:
            position = _signer().unsign(value, max_age=READ_AFTER_TTL)
        except signing.BadSignature:
            continue
        if POSITION.match(position):
            return position
    return None


def _hand_position(request: HttpRequest, response: HttpResponse) -> None:
    position = merge(_client_position(request), committed_position())
    if position is None:
        return
    value = _signer().sign(position)
    response[HEADER] = value
    response.set_cookie(
        COOKIE,
        value,
        max_age=READ_AFTER_TTL,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


# --- replica health ----------------------------------------------------------------------


class Health:
    """Which replicas may serve reads, as this process's checking thread last saw them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked: dict[str, tuple[float, str | None]] = {}  # alias -> (when, why not usable)
        self.pid: int | None = None
        self.connections: dict[str, Any] = {}

    def usable(self) -> list[str]:
        self.start()
        now = time.monotonic()
        with self.lock:
            return [
                alias
                for alias in settings.DATABASE_REPLICAS
                if (checked := self.checked.get(alias)) is not None
                and checked[1] is None
                and now - checked[0] < CHECK_VALID
            ]

    def failed(self, alias: str, exc: Exception) -> None:
        """A replica failed a request's read: skip it until its next check says otherwise."""
        self._set(alias, f"failed under a read: {exc}")

    def _set(self, alias: str, problem: str | None) -> None:
        with self.lock:
            previous = self.checked.get(alias, (0.0, "not checked yet"))[1]
            self.checked[alias] = (time.monotonic(), problem)
        if problem is not None and previous is None:
            logger.warning("replica %s skipped: %s", alias, problem)
        elif problem is None and previous is not None:
            logger.info("replica %s in use (was: %s)", alias, previous)

    def start(self) -> None:
        """Start this process's checking thread, if it has none yet (a forked child, uWSGI
        without lazy-apps, starts its own)."""
        if self.pid != os.getpid():
            with self.lock:
                if self.pid != os.getpid():
                    self.pid = os.getpid()
                    self.connections = {}
                    threading.Thread(target=self._run, name="replica health", daemon=True).start()

    def _run(self) -> None:
        while True:
            for alias in settings.DATABASE_REPLICAS:
                self._set(alias, self._check(alias))
            time.sleep(CHECK_INTERVAL)

    def _check(self, alias: str) -> str | None:
        """Why replica `alias` may not serve reads now; None if it may."""
        try:
            connection = self.connections.get(alias)
            if connection is None:
                params = connections[alias].get_connection_params()
                params.update(connect_timeout=1, read_timeout=2)
                connection = self.connections[alias] = MySQLdb.connect(**params)
            if "MariaDB" not in connection.get_server_info():
                return "not MariaDB (read-your-writes needs its GTID functions)"
            cursor = connection.cursor()
            cursor.execute("SHOW SLAVE STATUS")
            row = cursor.fetchone()
            columns = [column[0] for column in cursor.description or ()]
            cursor.close()
        except MySQLdb.Error as exc:
            connection = self.connections.pop(alias, None)
            if connection is not None:
                with contextlib.suppress(MySQLdb.Error):
                    connection.close()
            return f"unreachable: {exc}"
        if row is None:
            return "not replicating (no SHOW SLAVE STATUS)"
        status = dict(zip(columns, row, strict=True))
        lag = status.get("Seconds_Behind_Master")
        if status.get("Slave_SQL_Running") != "Yes" or lag is None:
            error = status.get("Last_SQL_Error") or status.get("Last_IO_Error") or "stopped"
            return f"not replicating: {error}"
        if lag > settings.REPLICA_MAX_LAG:
            return f"{lag} s behind the primary"
        return None


health = Health()
