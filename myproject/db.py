"""
`close_old_connections`: the one decorator for consumer code that touches the ORM.

A WebSocket lives for hours; a persistent MySQL connection idle past the server's
`wait_timeout` is dropped by the server, and the next query on it fails with
`(2006, 'MySQL server has gone away')`. Django cleans connections around each HTTP request,
and Channels (>= 4.2) before each consumer handler, but not around work that runs elsewhere:
middleware resolving a token at the handshake, Django's async ORM (`afirst`, `aget`), tasks a
consumer starts. Decorate every such function:

    @close_old_connections
    async def user_for_token(key): return await Token.objects.filter(...).afirst()

    @close_old_connections
    def run_check(...): ...   # called through sync_to_async

Before and after the call, connections that are broken, stale or past `CONN_MAX_AGE` are closed
(with `CONN_HEALTH_CHECKS` the next query pings first). It calls
`channels.db.close_old_connections` so that Channels' test communicators, which stub that name,
also stub this.
"""

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from channels import db as channels_db
from django.db import connections

F = TypeVar("F", bound=Callable[..., Any])


def _close() -> None:
    channels_db.close_old_connections()  # looked up per call, so test stubs apply


def close_old_connections(func: F) -> F:
    """Close stale database connections before and after `func` (sync or async)."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            # The ORM's thread: Django's async ORM and sync_to_async run there by default.
            await sync_to_async(_close)()
            try:
                return await func(*args, **kwargs)
            finally:
                await sync_to_async(_close)()

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _close()
        try:
            return func(*args, **kwargs)
        finally:
            _close()

    return wrapper  # type: ignore[return-value]


def close_after_asgi_request(**kwargs: Any) -> None:
    """Close the request thread's connections at the end of every HTTP request served over
    ASGI (daphne: probes, `make run`, the benchmarks' REST-through-daphne).

    Django's ASGI handler runs each request's sync code in a thread of its own, so a
    persistent connection (`CONN_MAX_AGE`) is never reused: it stays open until the garbage
    collector reaches the dead thread's connection object. Under load that exhausted MariaDB's
    `max_connections` (make bench). WebSocket consumers are unaffected: they share one thread
    and keep their connection."""
    connections.close_all()
