"""
The hub's state machine (myproject/realtime/hub.py) against a broker of the test's own, in
memory, whose every step the test decides: what is announced, what the history keeps, when the
connection comes back. The real brokers and the real daphne are tried elsewhere
(test_broker.py, test_resume.py, tests/hardening/).
"""

import asyncio

import pytest

from myproject.realtime import hub as hub_module
from myproject.realtime import hubs as hubs_module
from myproject.realtime import publish
from myproject.realtime.broker import Entry, Listening
from myproject.realtime.hubs import Hubs
from myproject.realtime.listeners import Follower, Member
from myproject.realtime.queries import LiveQuery, Resource, Term
from myproject.realtime.sink import Sink
from myproject.realtime.topics import Position
from tests.myproject.realtime.fakes import FakeConsumer

TOPIC = "room"


class FakeBroker:
    """One topic's numbering and history, in memory. Frames reach the hubs only when the test
    says (`announce`), as pub/sub would; `keep` is how many frames the history holds."""

    def __init__(self) -> None:
        self.epoch, self.seq, self.frames, self.keep = "E1", 0, {}, 1000
        self.on_frame = None
        self.connected = asyncio.Event()  # set: the listening connection is up
        self.history_calls = 0

    def publish(self, payload: str) -> int:
        self.seq += 1
        self.frames[self.seq] = payload
        for old in [seq for seq in self.frames if seq <= self.seq - self.keep]:
            del self.frames[old]
        return self.seq

    def announce(self, seq: int) -> None:
        self.on_frame(TOPIC, self.epoch, seq, self.frames[seq])

    def restart_empty(self, epoch: str) -> None:
        self.epoch, self.seq, self.frames = epoch, 0, {}

    async def aposition(self, topic: str) -> Position:
        return Position(self.epoch, self.seq)

    async def history(self, topic, epoch, after, until=None):
        self.history_calls += 1
        await asyncio.sleep(0)
        if epoch != self.epoch:
            return Position(self.epoch, self.seq), None
        last = self.seq if until is None else min(until, self.seq)
        wanted = range(after + 1, last + 1)
        if any(seq not in self.frames for seq in wanted):
            return Position(self.epoch, self.seq), None
        return Position(self.epoch, self.seq), [Entry(seq, self.frames[seq]) for seq in wanted]

    async def new_epoch(self, topic, stale):
        if self.epoch == stale:
            self.restart_empty(stale + "'")
        return Position(self.epoch, self.seq)

    async def listen(self, topics, on_frame, on_connected, listening: Listening) -> None:
        self.on_frame = on_frame
        await self.connected.wait()
        listening.confirm(topics())
        while True:
            while not listening.changes.empty():
                change, topic = listening.changes.get_nowait()
                if change == "+":
                    listening.confirm([topic])
            await asyncio.sleep(0.01)


@pytest.fixture
def broker(monkeypatch) -> FakeBroker:
    fake = FakeBroker()
    fake.connected.set()
    monkeypatch.setattr(hub_module, "broker", lambda: fake)
    monkeypatch.setattr(hubs_module, "broker", lambda: fake)
    return fake


def say(broker: FakeBroker, n: int, announce: bool = True) -> int:
    seq = broker.publish(publish.message({"n": n}, None))
    if announce:
        broker.announce(seq)
    return seq


async def ready_hub():
    """The topic's hub, once it listens and knows the position."""
    hub = Hubs().get(TOPIC)
    await asyncio.wait_for(hub.ready.wait(), 2)
    return hub


async def settled() -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.02)


def seen(consumer: FakeConsumer) -> list[tuple]:
    """What the socket received: greetings and messages, as (type, seq, recovered or n)."""
    out = []
    for frame in consumer.texts:
        if frame["type"] == "hello":
            out.append(("hello", frame["epoch"], frame["seq"], frame["recovered"]))
        else:
            out.append((frame["type"], frame["epoch"], frame["seq"], frame["message"]["n"]))
    return out


async def member(hub, since: Position | None = None) -> tuple[Member, FakeConsumer]:
    consumer = FakeConsumer()
    listener = Member(Sink(consumer))
    await hub.attach(listener, since)
    return listener, consumer


async def test_a_member_is_greeted_then_gets_each_frame_once_in_order(broker):
    hub = await ready_hub()
    say(broker, 0)
    await settled()
    _, consumer = await member(hub)
    await settled()
    seq = say(broker, 1)
    broker.announce(seq)  # pub/sub and a read-back crossing: a duplicate
    await settled()
    assert seen(consumer) == [("hello", "E1", 1, None), ("message", "E1", 2, 1)]


async def test_a_gap_is_filled_from_the_history_before_anything_later(broker):
    hub = await ready_hub()
    _, consumer = await member(hub)
    say(broker, 1, announce=False)  # lost on the way
    say(broker, 2)
    await settled()
    assert [frame[2:] for frame in seen(consumer)] == [(0, None), (1, 1), (2, 2)]


async def test_a_gap_the_history_lost_is_announced_before_the_next_frame(broker):
    broker.keep = 2
    hub = await ready_hub()
    _, consumer = await member(hub)
    for n in range(4):
        say(broker, n, announce=False)  # frames 1 and 2 fall out of the history
    say(broker, 4)
    await settled()
    assert seen(consumer) == [
        ("hello", "E1", 0, None),
        ("hello", "E1", 4, False),  # 1-4 cannot be had: read the data again
        ("message", "E1", 5, 4),
    ]


async def test_a_new_epoch_is_announced_then_delivered_from_its_first_frame(broker):
    hub = await ready_hub()
    _, consumer = await member(hub)
    say(broker, 1)
    await settled()
    broker.restart_empty("E2")  # Redis came back empty; the next frames are numbered anew
    say(broker, 2, announce=False)
    say(broker, 3)
    await settled()
    assert seen(consumer) == [
        ("hello", "E1", 0, None),
        ("message", "E1", 1, 1),
        ("hello", "E2", 0, False),
        ("message", "E2", 1, 2),
        ("message", "E2", 2, 3),
    ]


async def test_a_hub_that_delivered_nothing_of_its_epoch_moves_on_silently(broker):
    """A topic read but never published to expires (meta TTL); its next frame starts a new
    epoch, and nothing of the old one can have been missed."""
    hub = await ready_hub()
    _, consumer = await member(hub)
    broker.restart_empty("E2")
    say(broker, 1)
    await settled()
    assert seen(consumer) == [("hello", "E1", 0, None), ("message", "E2", 1, 1)]


async def test_resuming_gets_the_missed_frames_from_the_ring_or_the_history_then_live(broker):
    for n in range(3):
        say(broker, n, announce=False)  # before the hub: only the history has them
    hub = await ready_hub()
    say(broker, 3)
    await settled()
    _, from_history = await member(hub, Position("E1", 1))
    _, from_ring = await member(hub, Position("E1", 3))
    say(broker, 4)
    await settled()
    assert [f[2:] for f in seen(from_history)] == [(1, True), (2, 1), (3, 2), (4, 3), (5, 4)]
    assert [f[2:] for f in seen(from_ring)] == [(3, True), (4, 3), (5, 4)]


async def test_a_crowd_resuming_together_reads_the_history_once(broker):
    broker_frames = [say(broker, n, announce=False) for n in range(50)]
    hub = await ready_hub()
    before = broker.history_calls
    crowd = await asyncio.gather(*(member(hub, Position("E1", 0)) for _ in range(20)))
    await settled()
    for _, consumer in crowd:
        assert [f[2] for f in seen(consumer)] == [0, *broker_frames]
    # Each socket checked its start (one small read), and the frames were read once for all.
    assert broker.history_calls - before <= 20 + 1


async def test_an_attach_that_times_out_leaves_nothing_behind(broker, monkeypatch):
    """The broker unreachable: the socket gives up (4503, or `unavailable` for a live query),
    and nothing of it stays in the hub once the broker is back: not matched, never sent to."""
    broker.connected.clear()  # the listening connection does not come up
    monkeypatch.setattr(hub_module, "ATTACH_TIMEOUT", 0.2)
    hub = Hubs().get(TOPIC)
    consumer = FakeConsumer()
    listener = Member(Sink(consumer))
    with pytest.raises(TimeoutError):
        await hub.attach(listener, None)
    broker.connected.set()
    await asyncio.wait_for(hub.ready.wait(), 2)
    say(broker, 1)
    await settled()
    assert hub.listeners() == []
    assert consumer.texts == []


async def test_a_listener_detached_before_its_greeting_was_written_is_never_added(broker):
    hub = await ready_hub()

    class Slow(FakeConsumer):
        async def send(self, text_data: str) -> None:
            await asyncio.sleep(0.05)
            await super().send(text_data)

    listener = Member(Sink(Slow()))
    attaching = asyncio.ensure_future(hub.attach(listener, None))
    await asyncio.sleep(0.01)
    hub.detach(listener)  # the socket closed meanwhile
    await attaching
    assert hub.listeners() == []


async def test_a_live_query_replay_past_its_budget_is_told_it_cannot_recover(broker, monkeypatch):
    monkeypatch.setattr(hub_module, "REPLAY_ROWS", 10)
    resource = Resource("thing", viewset=object, topic=TOPIC)
    query = LiveQuery(resource, [], [Term(("name",), "a")], key=("thing",))
    for _ in range(4):  # 4 writes of 5 rows each: 20 rows to test, over the budget
        rows = [(None, {"uuid": str(n), "name": "a"}) for n in range(5)]
        broker.publish(publish.event("thing.bulk_created", {}, changes=("thing", rows)))
    hub = await ready_hub()
    consumer = FakeConsumer()
    follower = Follower(Sink(consumer), "q", query)
    await hub.attach(follower, Position("E1", 0))
    await settled()
    types = [(f["type"], f.get("recovered")) for f in consumer.texts]
    assert types[0] == ("subscribed", True)
    assert ("subscribed", False) in types  # given up, and said so
    assert len([t for t, _ in types if t == "thing.created"]) <= 10
    assert follower in hub.queries.all_subscribers()  # live from now on


async def test_a_muted_member_resuming_hears_nothing_but_its_greeting(broker):
    """`?events=off`: the socket hears nothing of its topic but its `hello` (docs/websocket.md),
    whether or not it resumes with `?since=`."""
    for n in range(3):
        say(broker, n, announce=False)
    hub = await ready_hub()
    consumer = FakeConsumer()
    await hub.attach(Member(Sink(consumer), muted=True), Position("E1", 1))
    say(broker, 3)
    await settled()
    assert seen(consumer) == [("hello", "E1", 1, True)]
