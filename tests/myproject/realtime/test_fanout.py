"""
One frame written to many sockets (myproject/realtime/fanout.py): every live member gets it
once, as its reader may read it, framed once per variant for all the sockets daphne serves;
every live query gets a frame per row it sees; a listener that already has the frame gets
nothing; and a large delivery of rows yields to the event loop as it goes.
"""

import asyncio
import json
from types import SimpleNamespace

import pytest

from myproject.realtime import pacing
from myproject.realtime.fanout import deliver
from myproject.realtime.listeners import Follower, Member
from myproject.realtime.queries import QueryIndex
from myproject.realtime.sink import Sink
from tests.myproject.realtime.fakes import (
    FACTORY,
    FakeConsumer,
    ServedConsumer,
    named,
    people_frame,
    person,
    reader,
    user_frame,
)


def hub_of(members=(), followers=()) -> SimpleNamespace:
    """What the fan-out reads of a hub: its live members and its live queries."""
    queries = QueryIndex()
    for follower in followers:
        queries.add(follower.query, follower)
    return SimpleNamespace(members=dict.fromkeys(members), queries=queries)


def received(consumer) -> list[dict]:
    if isinstance(consumer, ServedConsumer):
        consumer.transport.drain()
        return consumer.transport.texts()
    return consumer.texts


async def test_every_member_gets_the_frame_once_as_its_reader_may(monkeypatch):
    framings = []
    prepare = FACTORY.prepareMessage
    monkeypatch.setattr(
        FACTORY, "prepareMessage", lambda data: [framings.append(data), prepare(data)][1]
    )
    staff, others = reader(staff=True), [reader() for _ in range(3)]
    frame = user_frame(others[0])  # the subject reads it in full
    served = [ServedConsumer(staff), *(ServedConsumer(user) for user in others)]
    elsewhere = [FakeConsumer(staff), FakeConsumer(others[1])]  # not served by daphne
    members = [Member(Sink(consumer)) for consumer in (*served, *elsewhere)]
    await deliver(hub_of(members), frame)
    await deliver(hub_of(members), frame)  # again (a read-back crossing pub/sub): not resent
    full, public = json.loads(frame.text("frame")), json.loads(frame.text("public"))
    assert [received(c) for c in (*served, *elsewhere)] == [
        [full], [full], [public], [public], [full], [public]
    ]  # fmt: skip
    assert len(framings) == 2  # the staff's text and the public one, framed once each
    assert all(member.seq == frame.seq for member in members)


async def test_a_member_that_already_has_the_frame_gets_nothing():
    consumer = FakeConsumer()
    member = Member(Sink(consumer))
    member.seq = 5  # brought up to date by a replay
    await deliver(hub_of([member]), people_frame([], seq=5))
    assert consumer.texts == []


async def test_each_live_query_gets_a_frame_per_row_it_sees():
    alice, bob = person("alice"), person("bob")
    frame = people_frame([(None, alice), (None, bob), (bob, {**bob, "name": "barbara"})], seq=2)
    staff, other, elsewhere, caught_up = (FakeConsumer(reader(staff=True)), ServedConsumer(),
                                          FakeConsumer(), FakeConsumer())  # fmt: skip
    followers = [
        Follower(Sink(staff), "mine", named("a")),
        Follower(Sink(other), "theirs", named("a")),  # the same query, another reader
        Follower(Sink(elsewhere), "z", named("z")),  # sees none of the rows
        Follower(Sink(caught_up), "late", named("b")),
    ]
    followers[-1].seq = 2  # has the frame already
    await deliver(hub_of(followers=followers), frame)
    seen = {
        name: [(t["type"], t["subscription"], t["data"]) for t in received(consumer)]
        for name, consumer in (("staff", staff), ("other", other), ("z", elsewhere),
                               ("late", caught_up))
    }  # fmt: skip
    assert seen["staff"] == [("person.created", "mine", alice),
                             ("person.entered", "mine", {**bob, "name": "barbara"})]  # fmt: skip
    public = [{"uuid": alice["uuid"], "name": "alice"}, {"uuid": bob["uuid"], "name": "barbara"}]
    assert seen["other"] == [("person.created", "theirs", public[0]),
                             ("person.entered", "theirs", public[1])]  # fmt: skip
    assert seen["z"] == seen["late"] == []


async def rival_turns_during(work) -> int:
    """How many turns another task of the loop had while `work` ran."""
    turns = 0

    async def bystander() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.ensure_future(bystander())
    await asyncio.sleep(0)
    start = turns
    await work
    during = turns - start
    other.cancel()
    return during


@pytest.mark.parametrize("work", ["testing many rows", "writing to many followers"])
async def test_a_large_delivery_of_rows_yields_to_the_loop_as_it_goes(monkeypatch, work):
    if work == "testing many rows":  # 50 rows, each seen by one of 50 queries
        rows = [(None, person(f"n{n:03}n")) for n in range(50)]
        queries = [named(f"n{n:03}n") for n in range(50)]
    else:  # one row, seen by one query that 50 sockets follow
        rows, queries = [(None, person("ann"))], [named("ann")] * 50
    followers = [Follower(Sink(FakeConsumer()), str(n), query) for n, query in enumerate(queries)]
    monkeypatch.setattr(pacing, "SLICE", 60.0)  # one slice for everything: no turn for others
    assert await rival_turns_during(deliver(hub_of(followers=followers), people_frame(rows))) == 0
    for follower in followers:
        follower.seq = 0
    monkeypatch.setattr(pacing, "SLICE", 0.0)  # every bit of work is a slice
    assert await rival_turns_during(deliver(hub_of(followers=followers), people_frame(rows))) > 10
    assert all(len(follower.sink.consumer.texts) == 2 for follower in followers)
