"""
`X-Stream-Position` on REST reads (myproject/realtime/rest.py), with the suite's broker (Redis):
lists and single rows carry their topic's position, read before the query; an error carries
none; while the broker is unreachable reads go without it and do not ask again for a moment.
That a socket resuming from it misses nothing: tests/myproject/realtime/test_resume.py.
"""

import time

import pytest
from django.db import connection
from redis.exceptions import ConnectionError as RedisConnectionError

from catalog.views import ItemViewSet
from myproject.realtime import rest
from myproject.realtime.broker import broker
from myproject.realtime.topics import Position
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

ITEMS = "/catalog/items/"
TOPIC = ItemViewSet.service.topic


@pytest.fixture(autouse=True)
def reachable(monkeypatch):
    """The broker is taken as reachable when the test starts, and as it was afterwards."""
    monkeypatch.setattr(rest._broker_state, "retry_at", 0.0)


class Recorded:
    """The real broker, noting in `events` when the position is read."""

    def __init__(self, events: list[str], fails: bool = False) -> None:
        self.events, self.fails = events, fails

    def position(self, topic: str) -> Position:
        self.events.append(f"position of {topic}")
        if self.fails:
            raise RedisConnectionError("Redis is away")
        return broker().position(topic)


def test_lists_and_rows_carry_their_topics_position(anon):
    item = ItemFactory()
    expected = str(broker().position(TOPIC))
    listed = anon.get(ITEMS)
    retrieved = anon.get(f"{ITEMS}{item.uuid}/")
    assert listed.headers[rest.HEADER] == retrieved.headers[rest.HEADER] == expected
    assert Position.parse(expected) is not None


def test_the_position_is_read_before_the_query(anon, monkeypatch):
    """So a write the query does not see is a frame after the position."""
    ItemFactory()
    events: list[str] = []
    monkeypatch.setattr(rest, "broker", lambda: Recorded(events))

    def noted(execute, sql, params, many, context):
        events.append("query" if sql.lstrip().upper().startswith("SELECT") else "other")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(noted):
        assert anon.get(ITEMS).status_code == 200
    assert events.index(f"position of {TOPIC}") < events.index("query")


def test_the_position_is_what_replica_reads_wait_for(anon, monkeypatch):
    waited = []
    monkeypatch.setattr(rest.replicas, "read_after", waited.append)
    monkeypatch.setattr(rest, "current_position", lambda topic: Position("E1", 4, gtid="0-1-42"))
    assert anon.get(ITEMS).headers[rest.HEADER] == "E1:4"
    assert waited == ["0-1-42"]


def test_an_error_carries_no_position(anon):
    response = anon.get(f"{ITEMS}00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert rest.HEADER not in response.headers


def test_while_the_broker_is_unreachable_reads_go_without_and_ask_again_later(anon, monkeypatch):
    events: list[str] = []
    monkeypatch.setattr(rest, "broker", lambda: Recorded(events, fails=True))
    first, second = anon.get(ITEMS), anon.get(ITEMS)
    assert (first.status_code, second.status_code) == (200, 200)
    assert rest.HEADER not in first.headers
    assert rest.HEADER not in second.headers
    assert len(events) == 1  # the second read did not wait for the broker again
    monkeypatch.setattr(rest._broker_state, "retry_at", time.monotonic() - 1)  # a moment later
    monkeypatch.setattr(rest, "broker", broker)  # and the broker is back
    assert anon.get(ITEMS).headers[rest.HEADER] == str(broker().position(TOPIC))
