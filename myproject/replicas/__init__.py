"""
Read replicas: reads go to a MariaDB replica, writes and the reads that must see them to the
primary. Active when `DATABASE_REPLICA_URLS` names replicas (settings add one alias per URL,
`replica1`, ..., with `router.ReplicaRouter` and `middleware.ReplicaMiddleware`).

    GET  /catalog/items/            -> a replica (one per request, the same for all its queries)
    POST /catalog/items/            -> the primary, its validation and uniqueness checks included
    with replicas.primary():        -> the primary (the WebSocket `check` frames)
        check_field(...)

Where a read goes (`router`):
- the primary: inside a transaction on the primary (`atomic`), after a write in the same
  request, in an unsafe request (POST, PUT, PATCH, DELETE), under `primary()`;
- otherwise one healthy replica (`health`): a thread of each process asks every replica each
  second whether it replicates and how far behind it is; one that does not answer, does not
  replicate or is more than `DJANGO_REPLICA_MAX_LAG` seconds behind is skipped until it catches
  up. A replica that fails under a read (it was shut down a moment ago) is skipped at once, and
  a safe request that met the failure is served again from the primary (`middleware`): no error
  reaches the client while the primary is up.

Read-your-writes, whatever the lag: a response to a request that wrote carries the primary's
GTID after the write (`@@last_gtid`), signed, in a cookie and in the `X-Read-After` header (a
client without cookies may send the header back). The next request reads its replica if the
last health check saw that GTID applied there, the primary if the replica is held back or lags
by at least `DJANGO_REPLICA_GTID_WAIT` (the GTID could not arrive in time), and otherwise waits
for it on the replica (`MASTER_GTID_WAIT`, at most that long), else reads the primary.
`X-Stream-Position` asks the same of its read (`read_after`, myproject.realtime.rest):
every frame at or before the position carries its write's GTID into the topic's position, so a
client that resumes from there misses no write.

GTID positions are MariaDB's (`gtid`): `domain-server-sequence`, comma-separated across domains.
"""

from myproject.replicas.router import primary, read_after

__all__ = ["primary", "read_after"]
