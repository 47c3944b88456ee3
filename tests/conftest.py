"""Fixtures shared by every test: clients signed in as a user or as staff, a clean cache."""

import asyncio
import inspect
import signal
import sys
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from identity.models import User
from tests.factories import StaffFactory, UserFactory, token_for
from tests.live import PrivateRedis
from tests.stack import free_stack_ports, stack, stack_ports  # noqa: F401 - the split stack


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Under pytest-xdist with --dist loadgroup, every test on the stack's fixed ports shares
    # one worker.
    for item in items:
        if item.get_closest_marker("stack"):
            item.add_marker(pytest.mark.xdist_group("stack"))
        if inspect.iscoroutinefunction(getattr(item, "function", None)):
            item.fixturenames.append("_end_leftover_tasks")
    # Tests that serve on the stack's ports themselves (`make run`, honcho) run before the
    # session's stack starts; the stack on the replicated stores takes the ports from it,
    # which it stops, so its tests run last.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("ha") is not None,
            item.get_closest_marker("before_stack") is None,
        )
    )


@pytest.fixture
async def _end_leftover_tasks() -> object:
    """End what an async test left running (hubs, listeners, sockets it did not close) before
    the event loop closes, and say which did not end at the first cancellation. pytest-asyncio
    cancels leftovers once and waits without a bound: a task that swallowed that cancellation
    (one run was seen to) would hold the suite until pytest-timeout fails it."""
    yield
    me = asyncio.current_task()
    for attempt in range(10):
        left = [task for task in asyncio.all_tasks() if task is not me and not task.done()]
        if not left:
            return
        if attempt:
            print(f"tasks still running after {attempt} cancellation(s): {left}", file=sys.stderr)
        for task in left:
            task.cancel()
        await asyncio.wait(left, timeout=2)


@pytest.fixture(autouse=True)
def _fast_hashing(settings: pytest.FixtureRequest) -> None:
    # Hashing speed is not under test; PBKDF2's 1M rounds would dominate the suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    # Throttle counters live in the shared cache (Redis under `make test`).
    cache.clear()


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db: None) -> User:
    return UserFactory(name="alice")


@pytest.fixture
def staff(db: None) -> User:
    return StaffFactory(name="root")


@pytest.fixture
def private_redis(settings) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, on a spare port, which it may stop, freeze (SIGSTOP)
    and restart; the application uses it for the test's duration."""
    server = PrivateRedis()
    server.start()
    settings.REDIS_URL = server.url
    yield server
    if server.proc is not None:
        server.proc.send_signal(signal.SIGCONT)
    server.stop()


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


@pytest.fixture
def user_client(user: User) -> APIClient:
    return client_for(user)


@pytest.fixture
def staff_client(staff: User) -> APIClient:
    return client_for(staff)
