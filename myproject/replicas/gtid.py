"""MariaDB GTID positions: `domain-server-sequence`, comma-separated across replication domains."""

import logging
import re

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

POSITION = re.compile(r"^\d{1,10}-\d{1,10}-\d{1,20}(,\d{1,10}-\d{1,10}-\d{1,20}){0,63}$")


def merge(*positions: str | None) -> str | None:
    """The position that covers all of `positions`: the highest sequence of each domain.

    The realtime broker's publish script (myproject/realtime/broker/lua/publish.lua) merges a
    topic's GTIDs the same way in Lua: there the merge must be atomic with numbering the frame,
    inside Redis, so it cannot call this one."""
    best: dict[str, tuple[int, str]] = {}
    for position in positions:
        for gtid in (position or "").split(","):
            if not gtid:
                continue
            domain, _, sequence = gtid.split("-")
            if domain not in best or int(sequence) > best[domain][0]:
                best[domain] = (int(sequence), gtid)
    return ",".join(gtid for _, gtid in best.values()) or None


def covers(applied: str | None, wanted: str) -> bool:
    """Whether position `applied` includes every transaction of position `wanted`."""
    have = _sequences(applied)
    return all(have.get(domain, -1) >= sequence for domain, sequence in _sequences(wanted).items())


def _sequences(position: str | None) -> dict[str, int]:
    """The highest sequence of each domain of `position`."""
    sequences: dict[str, int] = {}
    for gtid in (position or "").split(","):
        if gtid:
            domain, _, sequence = gtid.split("-")
            sequences[domain] = max(sequences.get(domain, -1), int(sequence))
    return sequences


def committed_position() -> str | None:
    """The GTID of the last transaction this thread committed on the primary, when replicas
    are in use (None otherwise, or if it cannot be read: the read then is not waited for)."""
    gtid = primary_variable("@@last_gtid")
    return gtid if gtid and POSITION.match(gtid) else None


def primary_variable(variable: str) -> str | None:
    """A GTID variable of the primary (`@@last_gtid`, `@@GLOBAL.gtid_binlog_pos`), when
    replicas are in use on MariaDB; None otherwise, or if it cannot be read (logged)."""
    if not settings.DATABASE_REPLICAS:
        return None
    connection = connections[DEFAULT_DB_ALIAS]
    if not getattr(connection, "mysql_is_mariadb", False):
        return None  # no such variable (and no replica is used: health.Health._check)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {variable}")
            (value,) = cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("%s not read: %s", variable, exc)
        return None
    return value or None
