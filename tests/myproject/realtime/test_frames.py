"""
A frame as it travels (myproject/realtime/frames.py): each text is built once and shared by
every socket, with the frame's position appended; the public variant is another text; the
written rows are made once for every query; `size` grows with what the frame holds.
"""

import json
import uuid

from myproject.realtime import publish
from myproject.realtime.frames import Frame, with_position
from myproject.realtime.queries import Row
from myproject.realtime.topics import Position
from tests.myproject.realtime.fakes import FACTORY

SUBJECT = str(uuid.uuid4())


def user_frame(seq: int = 7) -> Frame:
    payload = publish.event(
        "user.updated",
        {"uuid": SUBJECT, "name": "alice", "email": "alice@example.com"},
        public={"uuid": SUBJECT, "name": "alice"},
        subject=SUBJECT,
        changes=("user", [({"uuid": SUBJECT, "name": "al"}, {"uuid": SUBJECT, "name": "alice"})]),
    )
    return Frame("users", "Xk2", seq, payload)


def test_the_text_is_the_frame_with_its_position_appended():
    frame = user_frame()
    assert json.loads(frame.text()) == {
        "type": "user.updated",
        "data": {"uuid": SUBJECT, "name": "alice", "email": "alice@example.com"},
        "topic": "users",
        "epoch": "Xk2",
        "seq": 7,
    }
    assert frame.position == Position("Xk2", 7)


def test_each_text_is_built_once_and_shared():
    frame = user_frame()
    assert frame.text() is frame.text("frame")
    assert frame.text("public") is frame.text("public")
    assert frame.prepared("frame", FACTORY) is frame.prepared("frame", FACTORY)  # framed once
    assert frame.prepared("frame", FACTORY).payloadHybi.endswith(frame.text().encode())


def test_the_public_variant_is_another_text_of_the_same_position():
    frame = user_frame()
    public = json.loads(frame.text("public"))
    assert public == {"type": "user.updated", "data": {"uuid": SUBJECT, "name": "alice"},
                      "topic": "users", "epoch": "Xk2", "seq": 7}  # fmt: skip
    assert frame.prepared("public", FACTORY) is not frame.prepared("frame", FACTORY)
    assert frame.has_public
    assert frame.subject == SUBJECT


def test_a_frame_without_a_public_view_or_rows_says_so():
    frame = Frame("room", "E1", 1, publish.message({"n": 1}, "someone"))
    assert not frame.has_public
    assert frame.subject is None
    assert frame.resource is None
    assert frame.rows == []


def test_the_written_rows_are_made_once_for_every_query():
    frame = user_frame()
    ((before, after),) = frame.rows
    assert frame.rows is frame.rows
    assert isinstance(before, Row)
    assert isinstance(after, Row)
    assert (before["name"], after["name"]) == ("al", "alice")
    assert frame.resource == "user"
    created = publish.event("user.created", {}, changes=("user", [(None, {"uuid": SUBJECT})]))
    assert Frame("users", "E1", 1, created).rows == [(None, {"uuid": SUBJECT})]


def test_with_position_appends_extra_keys_then_the_position():
    frame = Frame('a "quoted" topic', "E1", 3, publish.message({"n": 1}, None))
    text = with_position({"type": "thing.created"}, frame, subscription="q1")
    assert json.loads(text) == {"type": "thing.created", "subscription": "q1",
                                "topic": 'a "quoted" topic', "epoch": "E1", "seq": 3}  # fmt: skip


def test_size_grows_with_the_payload():
    small = Frame("room", "E1", 1, publish.message("x", None))
    large = Frame("room", "E1", 2, publish.message("x" * 10_000, None))
    assert small.size >= len(small.payload)
    assert large.size - small.size >= 10_000
