"""
Which replicas may serve reads (myproject/replicas/health.py), checked against the suite's
MariaDB, which replicates from nothing; a replica that does is checked in tests/deploy/test_ha.py.
"""

import os

import pytest

from myproject.replicas.health import Health


@pytest.fixture
def health() -> Health:
    checked = Health()
    checked.pid = os.getpid()  # no checking thread: the test checks by hand
    return checked


@pytest.mark.django_db
def test_a_server_that_does_not_replicate_is_not_used(health, settings):
    settings.DATABASE_REPLICAS = ["default"]
    assert health._check("default") == "not replicating (no SHOW SLAVE STATUS)"
    health._set("default", health._check("default"))
    assert health.usable() == []


def test_a_replica_checked_usable_is_used_until_it_fails_a_read(health, settings):
    settings.DATABASE_REPLICAS = ["replica1"]
    assert health.usable() == []  # not checked yet
    health._set("replica1", None)
    assert health.usable() == ["replica1"]
    health.failed("replica1", OSError("gone"))
    assert health.usable() == []
