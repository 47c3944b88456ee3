"""
GTID positions for read-your-writes and exact stream positions (myproject/replicas.py), and how
the broker keeps the highest of its frames' (against the suite's real Redis). The router itself
runs against real replication in tests/deploy/test_ha.py.
"""

import uuid

import pytest

from myproject.realtime.broker import RedisBroker
from myproject.replicas import merge


@pytest.mark.parametrize(
    ("positions", "merged"),
    [
        (("0-1-5", "0-1-3"), "0-1-5"),
        (("0-1-3", "0-2-5"), "0-2-5"),  # a new primary (server 2) continues the domain's sequence
        (("0-1-5,1-2-7", "1-2-9", None), "0-1-5,1-2-9"),
        ((None, ""), None),
    ],
)
def test_a_merged_position_covers_each_domains_highest(positions, merged):
    assert merge(*positions) == merged


def test_a_topics_position_carries_the_gtid_that_covers_its_frames():
    store, name = RedisBroker(), f"t-{uuid.uuid4().hex[:10]}"
    assert store.position(name).gtid is None
    # Publishers commit in one order and publish in another: the position keeps the highest.
    store.publish([(name, '{"frame": {}}')] * 3, ["0-1-12", "0-1-10", None])
    assert store.position(name).gtid == "0-1-12"
    store.publish([(name, '{"frame": {}}')], ["1-1-4"])
    position = store.position(name)
    assert position.gtid == merge("0-1-12", "1-1-4") == "0-1-12,1-1-4"
    assert str(position) == f"{position.epoch}:4"  # not part of the position's text
