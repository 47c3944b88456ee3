"""
`X-Stream-Position` on REST reads: the position of the resource's topic, read before the query.

A client that loads a page and then connects with `?since=<that position>` misses nothing in
between: a write whose frame is at or before the position committed before the position was
read, so before the query, which sees it; any later write's frame comes after the position.
With database replicas the query must also run where those writes have arrived: the position
carries the GTID that covers them, which the read waits for (myproject.replicas).

While the broker is unreachable, asking it would cost every read the connect timeout: after a
failure, reads go without the header for a moment (their clients resume with `recovered: false`
at worst).
"""

import logging
import sqlite3
import time
from typing import Any

from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.response import Response

from myproject import replicas
from myproject.realtime.broker import broker
from myproject.realtime.topics import Position

logger = logging.getLogger(__name__)

HEADER = "X-Stream-Position"
UNREACHABLE_BACKOFF = 2.0  # seconds without asking the broker after it failed


class _Reachability:
    """When this process may ask the broker again after a failure."""

    retry_at = 0.0


_broker_state = _Reachability()


def current_position(topic: str) -> Position | None:
    """The topic's position for a REST response, or None while the broker is unreachable."""
    if time.monotonic() < _broker_state.retry_at:
        return None
    try:
        return broker().position(topic)
    except (RedisError, OSError, sqlite3.Error) as exc:
        logger.warning("no stream position for %s: %s", topic, exc)
        _broker_state.retry_at = time.monotonic() + UNREACHABLE_BACKOFF
        return None


class StreamPositionMixin:
    """For viewsets whose `service.topic` names the topic of their rows."""

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        position = _position_for_read(self.service.topic)
        return _with(super().list(request, *args, **kwargs), position)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        position = _position_for_read(self.service.topic)
        return _with(super().retrieve(request, *args, **kwargs), position)


def _position_for_read(topic: str) -> Position | None:
    position = current_position(topic)
    if position is not None:
        replicas.read_after(position.gtid)
    return position


def _with(response: Response, position: Position | None) -> Response:
    if position is not None and response.status_code < 300:
        response[HEADER] = str(position)
    return response
