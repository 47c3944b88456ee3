"""
GTID positions for read-your-writes and exact stream positions (myproject/replicas/gtid.py).
The router itself runs against real replication in tests/deploy/test_ha.py.
"""

import pytest

from myproject.replicas.gtid import POSITION, covers, merge


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


@pytest.mark.parametrize(
    ("text", "valid"),
    [("0-1-5", True), ("0-1-5,1-2-9", True), ("", False), ("0-1", False), ("0-1-5;", False)],
)
def test_only_a_well_formed_position_is_taken_from_a_client(text, valid):
    assert bool(POSITION.match(text)) is valid


@pytest.mark.parametrize(
    ("applied", "wanted", "covered"),
    [
        ("0-1-5", "0-1-5", True),
        ("0-1-7", "0-1-5", True),
        ("0-1-4", "0-1-5", False),
        ("0-2-9", "0-1-5", True),  # the domain's sequence, whichever server wrote it
        ("0-1-9", "0-1-5,1-1-2", False),  # a domain the replica has not seen
        ("0-1-9,1-1-3", "0-1-5,1-1-2", True),
        (None, "0-1-5", False),
    ],
)
def test_a_position_covers_another_if_it_has_each_of_its_domains_sequences(
    applied, wanted, covered
):
    assert covers(applied, wanted) is covered
