"""
What a hub delivers to (myproject/realtime/listeners.py): a Member is greeted with `hello` and
reads each frame as its reader may (the public variant for others than staff and the subject),
framed once for every socket; a Follower is greeted with `subscribed` and gets a frame per row
its query sees (`row_frame`), with the row reduced to its public view for others than staff and
the row itself.
"""

import json

from myproject.realtime.listeners import Follower, Member, row_frame
from myproject.realtime.sink import Sink, frame_once
from myproject.realtime.topics import Position
from tests.myproject.realtime.fakes import (
    FakeConsumer,
    ServedConsumer,
    named,
    people_frame,
    person,
    reader,
    user_frame,
)

ALICE = person("alice")
SUBJECT = reader()


def test_a_member_is_greeted_with_hello_and_the_position():
    member = Member(Sink(FakeConsumer()))
    assert json.loads(member.greeting("room", Position("E1", 3), True)) == {
        "type": "hello", "topic": "room", "epoch": "E1", "seq": 3, "recovered": True,
    }  # fmt: skip


def test_a_member_reads_each_frame_as_its_reader_may():
    frame = user_frame(SUBJECT)
    texts = {
        who: [json.loads(text) for text in Member(Sink(FakeConsumer(user))).texts(frame)]
        for who, user in (("subject", SUBJECT), ("staff", reader(staff=True)), ("other", reader()))
    }
    assert texts["subject"] == texts["staff"] == [json.loads(frame.text("frame"))]
    assert texts["other"] == [json.loads(frame.text("public"))]
    assert "email" not in texts["other"][0]["data"]


def test_members_reading_the_same_variant_share_one_framed_text():
    frame = user_frame(SUBJECT)
    first, second = (Member(Sink(ServedConsumer(reader()))) for _ in range(2))
    staff = Member(Sink(ServedConsumer(reader(staff=True))))
    assert first.wire(frame) is second.wire(frame)
    assert first.wire(frame) == frame_once(frame.text("public"), first.sink.protocol.factory)
    assert staff.wire(frame) == frame_once(frame.text("frame"), staff.sink.protocol.factory)


def test_a_follower_is_greeted_with_subscribed_and_its_id():
    follower = Follower(Sink(FakeConsumer()), "q1", named("a"))
    assert json.loads(follower.greeting("people", Position("E1", 3), None)) == {
        "type": "subscribed", "id": "q1", "topic": "people", "epoch": "E1", "seq": 3,
        "recovered": None,
    }  # fmt: skip


def test_a_follower_gets_a_frame_per_row_its_query_sees():
    bob, carla = person("bob"), person("carla")
    frame = people_frame([(None, ALICE), (None, bob), (carla, {**carla, "name": "carl"}),
                          (ALICE, None)])  # fmt: skip
    follower = Follower(Sink(FakeConsumer(reader(staff=True))), "q1", named("a"))
    texts = [json.loads(text) if text else None for text in follower.texts(frame)]
    assert [(t["type"], t["data"]["uuid"]) if t else None for t in texts] == [
        ("person.created", ALICE["uuid"]),
        None,  # bob: not in the list, before or after
        ("person.updated", carla["uuid"]),
        ("person.deleted", ALICE["uuid"]),
    ]
    assert texts[0]["subscription"] == "q1"
    assert (texts[0]["topic"], texts[0]["epoch"], texts[0]["seq"]) == ("people", "E1", 1)
    assert texts[3]["data"] == {"uuid": ALICE["uuid"]}  # a deleted row: its uuid alone
    assert follower.cost(frame) == 4


def test_a_follower_ignores_the_frames_of_another_resource():
    frame = people_frame([(None, ALICE)], resource="pet")
    follower = Follower(Sink(FakeConsumer()), "q1", named("a"))
    assert list(follower.texts(frame)) == []
    assert follower.cost(frame) == 0


def test_a_row_frame_shows_the_row_to_staff_and_to_itself_and_its_public_view_to_others():
    frame = people_frame([(None, ALICE)])
    (before, after), query = frame.rows[0], named("a")

    def seen_by(user) -> dict:
        follower = Follower(Sink(FakeConsumer(user)), "q1", query)
        return json.loads(row_frame(frame, follower, "created", before, after))["data"]

    itself = reader()
    itself.pk = ALICE["uuid"]
    assert seen_by(reader(staff=True)) == seen_by(itself) == ALICE
    assert seen_by(reader()) == seen_by(None) == {"uuid": ALICE["uuid"], "name": "alice"}
