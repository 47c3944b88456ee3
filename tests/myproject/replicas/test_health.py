"""
Which replicas may serve reads (myproject/replicas/health.py), checked against the suite's
MariaDB, which replicates from nothing; a replica that does is checked in tests/deploy/test_ha.py.
"""

import os

import pytest

from myproject.replicas.health import Check, Health


@pytest.fixture
def health() -> Health:
    checked = Health()
    checked.pid = os.getpid()  # no checking thread: the test checks by hand
    return checked


@pytest.mark.django_db
def test_a_server_that_does_not_replicate_is_not_used(health, settings):
    settings.DATABASE_REPLICAS = ["default"]
    assert health._check("default") == Check("not replicating (no SHOW SLAVE STATUS)")
    health._set("default", health._check("default"))
    assert health.usable() == []


def test_a_replica_checked_usable_is_used_until_it_fails_a_read(health, settings):
    settings.DATABASE_REPLICAS = ["replica1"]
    assert health.usable() == []  # not checked yet
    health._set("replica1", Check(None, applied="0-1-5", behind=1.0))
    assert health.usable() == ["replica1"]
    assert (health.last_check("replica1").applied, health.last_check("replica1").behind) == (
        "0-1-5",
        1.0,
    )
    health.failed("replica1", OSError("gone"))
    assert health.usable() == []
    assert health.last_check("replica1") is None
