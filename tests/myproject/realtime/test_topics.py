"""Names clients give: a topic (a group's name) and a position are read whole, so that a
trailing line break (which `$` lets through) never makes a name of its own."""

import pytest

from myproject.realtime.topics import Position, is_public


@pytest.mark.parametrize("name", ["users\n", "room\n", "room\n\n", "x" * 81, "user.someone"])
def test_a_name_with_a_line_break_or_out_of_bounds_is_no_topic(name):
    assert not is_public(name)


def test_chat_rooms_and_the_event_topics_are_topics():
    assert all(is_public(name) for name in ("room", "users", "catalog", "a.b-c_9", "x" * 80))


@pytest.mark.parametrize("text", ["abc\n:5", "abc:5\n", "abc:", ":5"])
def test_a_position_with_a_line_break_is_unreadable(text):
    assert Position.parse(text) is None
