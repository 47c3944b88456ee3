"""
GTID positions for read-your-writes and exact stream positions (myproject/replicas.py). The
router itself runs against real replication in tests/deploy/test_ha.py.
"""

import pytest

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
