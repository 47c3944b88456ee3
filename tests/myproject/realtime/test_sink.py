"""
The sink (myproject/realtime/sink.py), the one place a socket is written to, over Twisted's own
write buffer (fakes.Transport): a client that reads gets every frame in order, one that stops
reading is closed with 4408 once it leaves more than WS_MAX_BUFFER unread and nothing more is
kept for it, and a replay waits for the socket to drain (`room`).
"""

import asyncio
import json

import pytest
from autobahn.websocket.protocol import WebSocketProtocol

from myproject.realtime import publish
from myproject.realtime import sink as sink_module
from myproject.realtime.frames import Frame
from myproject.realtime.sink import Sink, frame_once
from tests.myproject.realtime.fakes import (
    FACTORY,
    FakeConsumer,
    ServedConsumer,
    reader,
    user_frame,
)

PAD = "x" * 10_000  # ~10 KB a frame: Twisted's buffer (64 KiB) holds six


@pytest.fixture(autouse=True)
def small_buffer(settings):
    settings.WS_MAX_BUFFER = 200_000


def framed(n: int) -> bytes:
    return frame_once(json.dumps({"n": n, "pad": PAD}), FACTORY)


def served(user=None) -> tuple[ServedConsumer, Sink]:
    consumer = ServedConsumer(user)
    return consumer, Sink(consumer)


def numbers(consumer: ServedConsumer) -> list[int]:
    return [text["n"] for text in consumer.transport.texts()]


def test_the_sink_takes_the_producer_seat_daphnes_http_channel_kept():
    """Twisted then pauses the sink, not the reading of the client, when writes back up."""
    consumer = ServedConsumer()
    http_channel = object()
    consumer.transport.registerProducer(http_channel, True)
    sink = Sink(consumer)
    assert consumer.transport.producer is sink
    assert consumer.transport.streamingProducer


def test_past_twisteds_buffer_the_sink_queues_and_the_client_gets_everything_in_order():
    consumer, sink = served()
    written = [framed(n) for n in range(12)]  # ~120 KB: over Twisted's 64 KiB
    for data in written:
        sink.write(data)
    assert sink.paused  # Twisted paused it: the rest waits in the sink
    assert sink.queue
    assert sink.backlog() == sum(map(len, written))  # all of it counted, wherever it waits
    consumer.transport.drain(30_000)
    assert sink.backlog() == sum(map(len, written)) - 30_000
    consumer.transport.drain()
    assert numbers(consumer) == list(range(12))
    assert (sink.backlog(), sink.paused, sink.closed) == (0, False, False)
    assert consumer.protocol.closed_with is None


def test_a_client_that_keeps_reading_is_never_closed_however_much_it_is_sent():
    consumer, sink = served()
    for n in range(100):  # ~1 MB in all, five times the limit
        sink.write(framed(n))
        if n % 10 == 9:
            consumer.transport.drain()
    assert numbers(consumer) == list(range(100))
    assert not sink.closed


def test_a_client_that_never_reads_is_closed_with_4408_and_nothing_more_is_kept():
    consumer, sink = served()
    for n in range(100):
        sink.write(framed(n))
    assert consumer.protocol.closed_with == sink_module.CLOSE_SLOW == 4408
    # The client may take its time reading what came before the close frame.
    assert consumer.protocol.closeHandshakeTimeout == sink_module.SLOW_CLOSE_TIMEOUT
    assert sink.closed
    assert (sink.queued, len(sink.queue)) == (0, 0)  # the sink holds nothing more
    held = consumer.transport.held()
    assert held < 200_000  # at most Twisted's buffer is left, for the close frame's grace
    sink.write(framed(100))
    assert consumer.transport.held() == held  # nothing more is written
    consumer.transport.drain()
    received = numbers(consumer)
    assert received == list(range(len(received)))  # what it did get: in order, no gap


def test_a_slow_client_within_the_buffer_is_not_closed():
    consumer, sink = served()
    for n in range(15):  # ~150 KB unread, under 200 KB
        sink.write(framed(n))
    assert not sink.closed
    consumer.transport.drain()
    assert numbers(consumer) == list(range(15))


def test_nothing_is_written_to_a_socket_that_is_closing():
    consumer, sink = served()
    consumer.protocol.state = WebSocketProtocol.STATE_CLOSING
    sink.write(framed(0))
    assert consumer.transport.held() == 0


async def test_send_frames_one_text_for_a_served_socket_and_hands_it_to_others():
    consumer, sink = served()
    await sink.send(json.dumps({"n": 7}))
    consumer.transport.drain()
    assert consumer.transport.texts() == [{"n": 7}]
    other = FakeConsumer()
    await Sink(other).send(json.dumps({"n": 8}))  # a socket that daphne does not serve
    assert other.texts == [{"n": 8}]


async def test_room_returns_at_once_while_the_socket_keeps_up():
    _, sink = served()
    sink.write(framed(0))
    await asyncio.wait_for(sink.room(), 1)
    await asyncio.wait_for(Sink(FakeConsumer()).room(), 1)  # not served: never waits


async def test_room_waits_until_the_client_drains():
    consumer, sink = served()
    for n in range(8):
        sink.write(framed(n))
    waiting = asyncio.ensure_future(sink.room())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    consumer.transport.drain()
    await asyncio.wait_for(waiting, 1)
    assert numbers(consumer) == list(range(8))


@pytest.mark.parametrize("how", ["overflow", "connection lost"])
async def test_a_replay_waiting_for_room_ends_when_the_socket_closes(how):
    _, sink = served()
    for n in range(8):
        sink.write(framed(n))
    waiting = asyncio.ensure_future(sink.room())
    await asyncio.sleep(0.01)
    if how == "overflow":
        for n in range(8, 30):
            sink.write(framed(n))
    else:
        sink.stopProducing()  # what Twisted says when the connection is lost
    await asyncio.wait_for(waiting, 1)
    assert sink.closed
    await asyncio.wait_for(sink.room(), 1)  # and nothing waits on it any more


def test_a_frames_public_variant_goes_to_anyone_but_staff_and_its_subject():
    subject, staff, other = reader(), reader(staff=True), reader()
    frame = user_frame(subject)
    plain = Frame("room", "E1", 1, publish.message({"n": 1}, None))
    assert Sink(FakeConsumer(subject)).variant(frame) == "frame"
    assert Sink(FakeConsumer(staff)).variant(frame) == "frame"
    assert Sink(FakeConsumer(other)).variant(frame) == "public"
    assert Sink(FakeConsumer()).variant(frame) == "public"  # anonymous
    assert Sink(FakeConsumer(other)).variant(plain) == "frame"  # no public view: one text
