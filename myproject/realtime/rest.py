"""
`X-Stream-Position` on REST reads: the position of the resource's topic, read before the query.

A client that loads a page and then connects with `?since=<that position>` misses nothing in
between: a write whose frame is at or before the position committed before the position was
read, so before the query, which sees it; any later write's frame comes after the position.
With database replicas the query must also run where those writes have arrived: the position
carries the GTID that covers them, which the read waits for (myproject.replicas).
"""

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from myproject import replicas
from myproject.realtime.broker import current_position

HEADER = "X-Stream-Position"


class StreamPositionMixin:
    """For viewsets whose `service.topic` names the topic of their rows."""

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        position = _position_for_read(self.service.topic)
        return _with(super().list(request, *args, **kwargs), position)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        position = _position_for_read(self.service.topic)
        return _with(super().retrieve(request, *args, **kwargs), position)


def _position_for_read(topic: str) -> object:
    position = current_position(topic)
    if position is not None:
        replicas.read_after(position.gtid)
    return position


def _with(response: Response, position: object) -> Response:
    if position is not None and response.status_code < 300:
        response[HEADER] = str(position)
    return response
