"""Which replicas may serve reads: a thread of each process checks every replica each second."""

import contextlib
import logging
import os
import threading
import time
from typing import Any

import MySQLdb
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0  # seconds between two checks of each replica
# A check older than this (the checking thread stuck on a replica that stopped answering)
# no longer vouches for the replica.
CHECK_VALID = 3 * CHECK_INTERVAL


class Health:
    """Which replicas may serve reads, as this process's checking thread last saw them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked: dict[str, tuple[float, str | None]] = {}  # alias -> (when, why not usable)
        self.pid: int | None = None
        self.connections: dict[str, Any] = {}

    def usable(self) -> list[str]:
        """The replicas that may serve reads now."""
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
