"""Which replicas may serve reads: a thread of each process checks every replica each second."""

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import MySQLdb
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0  # seconds between two checks of each replica
# A check older than this (the checking thread stuck on a replica that stopped answering)
# no longer vouches for the replica.
CHECK_VALID = 3 * CHECK_INTERVAL


@dataclass(frozen=True)
class Check:
    """What one check of a replica saw. `applied` and `behind` let a read that must see a
    position go where it is without waiting it out (router)."""

    problem: str | None  # why the replica may not serve reads; None if it may
    applied: str | None = None  # @@gtid_slave_pos: every transaction the replica has applied
    behind: float = 0.0  # seconds it is behind the primary or held back (MASTER_DELAY)
    at: float = 0.0  # time.monotonic() of the check


class Health:
    """Which replicas may serve reads, as this process's checking thread last saw them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked: dict[str, Check] = {}
        self.pid: int | None = None
        self.connections: dict[str, Any] = {}

    def usable(self) -> list[str]:
        """The replicas that may serve reads now."""
        self.start()
        with self.lock:
            return [alias for alias in settings.DATABASE_REPLICAS if self._usable(alias)]

    def last_check(self, alias: str) -> Check | None:
        """The last check of replica `alias`, if it still vouches for the replica."""
        with self.lock:
            return self.checked[alias] if self._usable(alias) else None

    def _usable(self, alias: str) -> bool:
        checked = self.checked.get(alias)
        return (
            checked is not None
            and checked.problem is None
            and time.monotonic() - checked.at < CHECK_VALID
        )

    def failed(self, alias: str, exc: Exception) -> None:
        """A replica failed a request's read: skip it until its next check says otherwise."""
        self._set(alias, Check(f"failed under a read: {exc}"))

    def _set(self, alias: str, check: Check) -> None:
        problem = check.problem
        with self.lock:
            previous = self.checked.get(alias, Check("not checked yet")).problem
            self.checked[alias] = replace(check, at=time.monotonic())
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

    def _check(self, alias: str) -> Check:
        """Whether replica `alias` may serve reads now, and how far it is."""
        try:
            connection = self.connections.get(alias)
            if connection is None:
                params = connections[alias].get_connection_params()
                params.update(connect_timeout=1, read_timeout=2)
                connection = self.connections[alias] = MySQLdb.connect(**params)
            if "MariaDB" not in connection.get_server_info():
                return Check("not MariaDB (read-your-writes needs its GTID functions)")
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
            return Check(f"unreachable: {exc}")
        if row is None:
            return Check("not replicating (no SHOW SLAVE STATUS)")
        status = dict(zip(columns, row, strict=True))
        lag = status.get("Seconds_Behind_Master")
        if status.get("Slave_SQL_Running") != "Yes" or lag is None:
            error = status.get("Last_SQL_Error") or status.get("Last_IO_Error") or "stopped"
            return Check(f"not replicating: {error}")
        if lag > settings.REPLICA_MAX_LAG:
            return Check(f"{lag} s behind the primary")
        behind = max(lag, status.get("SQL_Delay") or 0)
        return Check(None, applied=status.get("Gtid_Slave_Pos") or None, behind=float(behind))


health = Health()
