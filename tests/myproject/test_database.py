"""
The real path to MariaDB: settings, persistent connections that survive the server dropping
them, and a JSON 503 (not an HTML 500) while the database is unreachable. Served by a real
uWSGI process: Django's test client bypasses the per-request connection checks.
"""

import time

import httpx
import pytest
from django.db import connection, connections

from tests.factories import StaffFactory, token_for
from tests.live import server_env, uwsgi


@pytest.mark.django_db
def test_the_suite_runs_against_mariadb():
    assert connection.vendor == "mysql", "run the suite with `make test` (DATABASE_URL=mysql://...)"
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@sql_mode, @@character_set_connection")
        sql_mode, charset = cursor.fetchone()
    assert "STRICT_TRANS_TABLES" in sql_mode
    assert charset == "utf8mb4"


def _status(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS LIKE %s", [name])
        return int(cursor.fetchone()[1])


@pytest.mark.django_db(transaction=True)
def test_request_after_the_server_dropped_an_idle_connection_succeeds():
    headers = {"Authorization": f"Token {token_for(StaffFactory())}"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.wait_timeout")
        (saved,) = cursor.fetchone()
    with uwsgi(server_env()) as base:
        try:
            # The worker's first query opens its persistent connection with a 2 s timeout.
            with connection.cursor() as cursor:
                cursor.execute("SET GLOBAL wait_timeout = 2")
            assert httpx.get(f"{base}/identity/users/", headers=headers).status_code == 200
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET GLOBAL wait_timeout = %s", [saved])
            connections.close_all()  # sessions opened meanwhile keep the 2 s
        aborted = _status("Aborted_clients")
        time.sleep(4)
        assert _status("Aborted_clients") > aborted, "the server should have dropped it"
        response = httpx.get(f"{base}/identity/users/", headers=headers)
        assert response.status_code == 200, response.text


@pytest.mark.django_db(transaction=True)
def test_database_outage_is_a_json_503_with_retry_after():
    env = server_env(DATABASE_URL="mysql://root@127.0.0.1:1/nowhere")
    with uwsgi(env) as base:
        response = httpx.get(f"{base}/identity/users/", headers={"Authorization": "Token abc"})
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        assert response.headers["retry-after"]
        assert "database" in response.json()["detail"]
        assert httpx.get(f"{base}/healthz").status_code == 200
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("error")
