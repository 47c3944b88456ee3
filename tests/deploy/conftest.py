"""
The split stack as operators run it: `make stack` started once per module, driven only from
outside (HTTP through nginx, signals, the stack script), `make stack-stop` at the end.
`make stack` binds the fixed ports 8088, 8000, 8001 and 8080: these tests are marked `stack`
and must run serially.
"""

import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.stack import (
    ADMIN_NAME,
    ADMIN_PASSWORD,
    NGINX,
    ROOT,
    STACK_DB,
    STACK_PORTS,
    PrivateRedis,
    Stack,
    answers,
    drop_database,
    make,
    mysql_config,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Under pytest-xdist with --dist loadgroup, every test on the stack's ports shares a worker.
    for item in items:
        if item.get_closest_marker("stack"):
            item.add_marker(pytest.mark.xdist_group("stack"))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    config = mysql_config()
    redis = PrivateRedis()
    env = {
        **os.environ,
        "DATABASE_URL": f"mysql://{config['USER'] or 'root'}:{config['PASSWORD'] or ''}"
        f"@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 3306}/{STACK_DB}",
        "REDIS_URL": redis.url,
    }
    # The stack brings its own production settings and secret key (generated into var/).
    for name in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_HTTPS", "DJANGO_NUM_PROXIES"):
        env.pop(name, None)
    # A stack left behind by an interrupted run would hold the ports.
    make("stack-stop", env)
    busy = [port for port in STACK_PORTS if answers(port)]
    if busy:
        pytest.fail(f"ports {busy} are in use by something other than the stack")
    drop_database(config)
    redis.start()
    try:
        make("stack", env)
        manage_env = {**env, "DJANGO_SECRET_KEY": "stack-test-manage"}
        manage_env["DJANGO_SUPERUSER_PASSWORD"] = ADMIN_PASSWORD
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "createsuperuser",
             "--noinput", "--name", ADMIN_NAME, "--email", f"{ADMIN_NAME}@example.com"],
            cwd=ROOT, env=manage_env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        response = httpx.post(
            f"{NGINX}/identity/token/",
            json={"username": ADMIN_NAME, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        yield Stack(env=env, redis=redis, token=response.json()["token"])
    finally:
        try:
            make("stack-stop", env)
        finally:
            redis.stop()
            drop_database(config)
