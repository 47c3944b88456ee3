"""
Where a read goes (myproject/replicas/router.py), without replicas and in the request state the
router keeps; reads on a real replica are in tests/deploy/test_ha.py.
"""

import os

import pytest

from catalog.models import Item
from myproject.replicas import primary, read_after
from myproject.replicas import router as replica_router
from myproject.replicas.health import Check, Health
from myproject.replicas.router import Reads, ReplicaRouter, _has_applied, _reads, reading


def test_without_replicas_every_read_goes_to_the_primary():
    with reading(Reads()):
        assert ReplicaRouter().db_for_read(Item) == "default"


def test_a_write_sends_the_requests_later_reads_to_the_primary():
    with reading(Reads()) as reads:
        assert ReplicaRouter().db_for_write(Item) == "default"
    assert reads.wrote


def test_read_after_merges_the_positions_a_request_must_see():
    read_after("0-1-5")  # outside a request: nothing to wait for
    with reading(Reads(after="0-1-7")) as reads:
        read_after("0-1-6")
        read_after("1-1-2")
        read_after(None)
    assert reads.after == "0-1-7,1-1-2"


def test_primary_sends_the_blocks_reads_to_the_primary():
    with primary():
        assert _reads.get().primary
    assert _reads.get() is None


@pytest.mark.parametrize(
    ("applied", "behind", "has_it", "waited"),
    [
        ("0-1-9", 1.0, True, False),  # already applied: read at once, even held back
        ("0-1-5", 1.0, False, False),  # held back (MASTER_DELAY) or lagging: to the primary
        ("0-1-5", 0.25, False, False),  # as far behind as a wait would last: to the primary
        ("0-1-5", 0.0, True, True),  # close: wait for it as before (here it arrives)
    ],
)
def test_a_position_is_waited_for_only_where_it_may_arrive_in_time(
    settings, monkeypatch, applied, behind, has_it, waited
):
    settings.DATABASE_REPLICAS = ["replica1"]
    settings.REPLICA_GTID_WAIT = 0.25
    health = Health()
    health.pid = os.getpid()  # no checking thread
    health._set("replica1", Check(None, applied=applied, behind=behind))
    monkeypatch.setattr(replica_router, "health", health)
    waits = []
    monkeypatch.setattr(replica_router, "_wait", lambda *args: waits.append(args) or True)
    assert _has_applied("replica1", "0-1-7") is has_it
    assert waits == ([("replica1", "0-1-7")] if waited else [])


def test_a_replica_no_check_vouches_for_is_not_waited_for(settings, monkeypatch):
    settings.DATABASE_REPLICAS = ["replica1"]
    health = Health()
    health.pid = os.getpid()
    monkeypatch.setattr(replica_router, "health", health)
    monkeypatch.setattr(replica_router, "_wait", lambda *args: pytest.fail("waited"))
    assert _has_applied("replica1", "0-1-7") is False
