"""
What an attacker tries against the WebSocket side, through nginx against the split stack:
writing to the event topics, flooding messages, racing the per-user socket cap, leaking places
with crashes, and keeping sockets open after logout, deletion or expiry of what opened them.
"""

import asyncio
import json
import math
import os
import signal
import subprocess
import time
import uuid

import httpx
import pytest
import websockets
from asgiref.sync import async_to_sync

from tests.live import alive
from tests.stack import (
    DAPHNE_PORTS,
    NGINX,
    ROOT,
    Stack,
    from_address,
    login,
    new_account,
    pid_file,
    wait_for,
)

pytestmark = pytest.mark.stack

WS = NGINX.replace("http", "ws")
ORIGIN = "http://localhost"
PASSWORD = "sockets-User-secret-42"
CAP = 50  # DJANGO_WS_MAX_SOCKETS_PER_USER's default, which the stack runs with


def new_user(stack: Stack, address: str) -> tuple[str, str]:
    """A fresh user and a token for it: (name, token)."""
    name = f"sock-{uuid.uuid4().hex[:10]}"
    response = httpx.post(
        f"{NGINX}/identity/users/", headers=stack.auth, timeout=30,
        json={"name": name, "email": f"{name}@example.com", "password": PASSWORD},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return name, login(name, PASSWORD, address=address)


def uuid_of(stack: Stack, name: str) -> str:
    response = httpx.get(f"{NGINX}/identity/users/?search={name}", headers=stack.auth, timeout=30)
    (user,) = response.json()["results"]
    return user["uuid"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


async def frame(socket: websockets.ClientConnection, type_: str, timeout: float = 10) -> dict:
    while True:
        received = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        if received["type"] == type_:
            return received


async def closed_with(socket: websockets.ClientConnection, timeout: float) -> int | None:
    """The close code the server sends within `timeout` (frames before it are skipped)."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            await asyncio.wait_for(socket.recv(), max(0.01, deadline - time.monotonic()))
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def try_open(url: str) -> websockets.ClientConnection | None:
    try:
        return await websockets.connect(url, origin=ORIGIN, open_timeout=20)
    except websockets.InvalidStatus as refused:
        if refused.response.status_code != 403:
            raise
        return None


async def open_many(url: str, count: int) -> list[websockets.ClientConnection]:
    """`count` handshakes at once; the sockets that were accepted."""
    results = await asyncio.gather(*(try_open(url) for _ in range(count)))
    return [socket for socket in results if socket is not None]


async def close_all(sockets: list[websockets.ClientConnection]) -> None:
    await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)


def check_url(token: str, group: str = "room") -> str:
    return f"{WS}/identity/ws/check/{group}/?token={token}"


# --- event topics, messages ---------------------------------------------------------------


@pytest.mark.parametrize("topic", ["catalog", "users"])
def test_event_topics_are_read_only(stack, topic):
    _, token = new_user(stack, "127.0.0.41")

    async def scenario() -> tuple[dict, bool]:
        async with (
            websockets.connect(f"{WS}/catalog/ws/", origin=ORIGIN) as listener,
            websockets.connect(check_url(token, topic), origin=ORIGIN) as writer,
        ):
            await writer.send(json.dumps({"type": "message", "message": "fake sale!"}))
            error = await frame(writer, "error")
            try:
                await frame(listener, "message", timeout=1)
            except TimeoutError:
                return error, False
            return error, True

    error, heard = async_to_sync(scenario)()
    assert error["code"] == "read_only"
    assert not heard, "a message reached the catalog stream"


def test_messages_are_rate_limited_per_user_across_its_sockets(stack):
    _, token = new_user(stack, "127.0.0.42")

    async def scenario() -> tuple[int, int]:
        # Two rooms: each socket hears only its own messages (or their errors).
        rooms = [check_url(token, f"flood-{uuid.uuid4().hex[:6]}") for _ in range(2)]
        async with (
            websockets.connect(rooms[0], origin=ORIGIN) as one,
            websockets.connect(rooms[1], origin=ORIGIN) as two,
        ):
            for socket in (one, two):
                assert await frame_or_error(socket) == "hello"
            started = time.monotonic()
            for n in range(30):
                await (one if n % 2 else two).send(json.dumps({"message": n}))
            answers = []
            for socket in (one, two):
                for _ in range(15):
                    answers.append(await frame_or_error(socket))
            elapsed = time.monotonic() - started
            limited = sum(a == "rate_limited" for a in answers)
            return limited, math.ceil(elapsed * 20)  # tokens refilled meanwhile (20/s)

    limited, refilled = async_to_sync(scenario)()
    # 30 messages at once against a bucket of 20 (plus what refilled while they were sent).
    assert 10 - refilled <= limited <= 10
    assert limited > 0


async def frame_or_error(socket: websockets.ClientConnection) -> str:
    """The sender's own copy of its message, or an error's code."""
    received = json.loads(await asyncio.wait_for(socket.recv(), 10))
    return received.get("code", received["type"])


# --- the per-user socket cap --------------------------------------------------------------


def test_70_concurrent_handshakes_get_exactly_the_cap(stack):
    _, token = new_user(stack, "127.0.0.43")

    async def scenario() -> int:
        sockets = await open_many(check_url(token), 70)
        try:
            return len(sockets)
        finally:
            await close_all(sockets)

    assert async_to_sync(scenario)() == CAP


def test_places_come_back_after_a_restart_at_once_and_after_a_crash_within_a_minute(stack):
    _, token = new_user(stack, "127.0.0.44")
    url = check_url(token)

    async def fill_then(action: str) -> None:
        sockets = await open_many(url, CAP)
        assert len(sockets) == CAP
        await asyncio.sleep(3)  # the consumers are up (see docs/operations.md, known issues)
        if action == "restart":  # SIGTERM: daphne cancels its consumers
            await asyncio.to_thread(stack.script, "restart-daphne")
        else:  # SIGKILL: nothing runs, the places must expire
            pid = pid_file(f"daphne-{DAPHNE_PORTS[0]}")
            os.kill(pid, signal.SIGKILL)
            await asyncio.to_thread(wait_for, lambda: not alive(pid), 10, "daphne survived")
            await asyncio.to_thread(stack.script, "restart-daphne", str(DAPHNE_PORTS[0]))
        await close_all(sockets)

    async def count_places() -> int:
        sockets = await open_many(url, CAP)
        await close_all(sockets)
        return len(sockets)

    async_to_sync(fill_then)("restart")
    assert async_to_sync(count_places)() == CAP, "a graceful restart kept places"

    async_to_sync(fill_then)("kill")
    killed = time.monotonic()
    assert async_to_sync(count_places)() < CAP, "the killed daphne's sockets held no place"
    while async_to_sync(count_places)() < CAP:
        assert time.monotonic() - killed < 75, "a killed daphne's places were not freed"
        time.sleep(5)


# --- sockets end with what opened them ------------------------------------------------------


def test_logging_out_closes_the_sockets_of_that_token_only(stack):
    name, first = new_user(stack, "127.0.0.45")
    second = login(name, PASSWORD, address="127.0.0.46")  # another device

    async def scenario() -> tuple[int | None, str]:
        async with (
            websockets.connect(check_url(first), origin=ORIGIN) as ending,
            websockets.connect(check_url(second), origin=ORIGIN) as staying,
        ):
            await asyncio.sleep(0.5)
            response = await asyncio.to_thread(
                httpx.delete, f"{NGINX}/identity/token/", headers=auth(first), timeout=30
            )
            assert response.status_code == 204
            code = await closed_with(ending, 10)
            await staying.send(json.dumps({"message": "still here"}))
            return code, (await frame(staying, "message"))["message"]

    assert async_to_sync(scenario)() == (4401, "still here")


@pytest.mark.parametrize("how", ["single", "bulk"])
def test_deleting_a_user_closes_its_sockets(stack, how):
    name, token = new_user(stack, "127.0.0.47")
    if how == "single":
        url = f"{NGINX}/identity/users/{uuid_of(stack, name)}/"
    else:
        url = f"{NGINX}/identity/users/?search={name}"

    async def scenario() -> int | None:
        async with websockets.connect(check_url(token), origin=ORIGIN) as socket:
            await asyncio.sleep(0.5)
            response = await asyncio.to_thread(httpx.delete, url, headers=stack.auth, timeout=30)
            assert response.status_code == 204, response.text
            return await closed_with(socket, 10)

    assert async_to_sync(scenario)() == 4401


def test_an_expired_token_is_refused_and_its_sockets_close_within_a_minute(stack):
    name, token = new_user(stack, "127.0.0.48")

    async def scenario() -> int | None:
        async with websockets.connect(check_url(token), origin=ORIGIN) as socket:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(_age_tokens_of, stack, uuid_of(stack, name), days=31)
            return await closed_with(socket, 65)

    assert async_to_sync(scenario)() == 4401
    response = httpx.get(f"{NGINX}/identity/users/", headers=auth(token), timeout=30)
    assert response.status_code == 401


def _age_tokens_of(stack: Stack, user_id: str, days: int) -> None:
    """Backdate a user's tokens in the stack's database, as if they were `days` old."""
    statement = (
        f"UPDATE identity_token SET created = created - INTERVAL {days} DAY "
        f"WHERE user_id = '{uuid.UUID(user_id).hex}'"
    )
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "dbshell", "--", "-e", statement],
        cwd=ROOT, env={**stack.env, "DJANGO_SECRET_KEY": "x"}, check=True,
        capture_output=True, timeout=30,
    )  # fmt: skip


# --- tickets ---------------------------------------------------------------------------------


def test_a_ticket_opens_one_socket_and_lives_with_its_token(stack):
    _, token = new_user(stack, "127.0.0.49")
    response = httpx.post(f"{NGINX}/identity/ws-ticket/", headers=auth(token), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 30
    url = f"{WS}/identity/ws/check/room/?ticket={response.json()['ticket']}"
    assert httpx.post(f"{NGINX}/identity/ws-ticket/", timeout=30).status_code == 401

    async def scenario() -> tuple[bool, int | None]:
        async with websockets.connect(url, origin=ORIGIN) as socket:
            again = await try_open(url)
            await asyncio.to_thread(
                httpx.delete, f"{NGINX}/identity/token/", headers=auth(token), timeout=30
            )
            return again is not None, await closed_with(socket, 10)

    reused, code = async_to_sync(scenario)()
    assert not reused, "a ticket opened a second socket"
    assert code == 4401, "the ticket's socket outlived the token it was issued with"


# --- staff taken away, passwords changed, tickets after their credential ---------------------


@pytest.mark.parametrize("how", ["single", "bulk"])
def test_a_socket_opened_as_staff_closes_when_staff_status_is_taken_away(stack, how):
    """It was staff at the handshake: it heard every user's email, phone and comment in events
    and could search on email in live queries, and went on doing so once demoted."""
    demoted = new_account(stack, "demoted", address="127.0.0.71", staff=True)
    if how == "single":
        request = {"method": "PATCH", "url": f"{NGINX}/identity/users/{demoted.uuid}/",
                   "json": {"is_staff": False}}  # fmt: skip
    else:
        request = {"method": "PATCH", "url": f"{NGINX}/identity/users/",
                   "json": [{"uuid": demoted.uuid, "is_staff": False}]}  # fmt: skip

    async def scenario() -> int | None:
        async with websockets.connect(check_url(demoted.token, "users"), origin=ORIGIN) as socket:
            await frame(socket, "hello")
            response = await asyncio.to_thread(
                httpx.request, **request, headers=stack.auth, timeout=30
            )
            assert response.status_code == 200, response.text
            return await closed_with(socket, 10)

    assert async_to_sync(scenario)() == 4401
    # Its token stays: the same token opens a socket again, as a plain user's.
    response = httpx.get(f"{NGINX}/identity/users/", headers=demoted.auth, timeout=30)
    assert response.status_code == 200


def test_a_ticket_taken_before_logging_out_is_refused(stack):
    _, token = new_user(stack, "127.0.0.72")
    response = httpx.post(f"{NGINX}/identity/ws-ticket/", headers=auth(token), timeout=30)
    assert response.status_code == 200, response.text
    url = f"{WS}/identity/ws/check/room/?ticket={response.json()['ticket']}"
    logout = httpx.delete(f"{NGINX}/identity/token/", headers=auth(token), timeout=30)
    assert logout.status_code == 204
    assert async_to_sync(try_open)(url) is None


def admin_session(client: httpx.Client, name: str, password: str) -> str:
    """Sign in to the admin through nginx (as a browser does); the session cookie."""
    client.get(f"{NGINX}/admin/login/")
    signed_in = client.post(f"{NGINX}/admin/login/", data={
        "username": name, "password": password, "next": "/admin/",
        "csrfmiddlewaretoken": client.cookies["csrftoken"],
    })  # fmt: skip
    assert signed_in.status_code == 302, signed_in.text
    return f"sessionid={client.cookies['sessionid']}"


def test_a_password_changed_in_a_shell_closes_the_admins_socket_and_voids_its_tickets(stack):
    """`manage.py changepassword` and a shell's set_password() and save() bypass the user
    service: the admin's socket stayed open, and a ticket its session had taken still opened
    one, as sessions were checked for existence, not against the current password."""
    staff = new_account(stack, "pwchange", address="127.0.0.73", staff=True)
    with from_address("127.0.0.73") as client:
        session = admin_session(client, staff.name, staff.password)
        ticket = client.post(f"{NGINX}/identity/ws-ticket/",
                             headers={"X-CSRFToken": client.cookies["csrftoken"]})  # fmt: skip
    assert ticket.status_code == 200, ticket.text
    ticket_url = f"{WS}/identity/ws/check/room/?ticket={ticket.json()['ticket']}"
    change = (
        "from identity.models import User; "
        f"user = User.objects.get(name='{staff.name}'); "
        "user.set_password('changed-Secret-42'); user.save()"
    )

    async def scenario() -> tuple[int | None, bool]:
        cookie = {"Cookie": session}
        url = f"{WS}/identity/ws/check/room/"
        async with websockets.connect(url, origin=ORIGIN, additional_headers=cookie) as socket:
            await frame(socket, "hello")
            await asyncio.to_thread(stack.manage, "shell", "-c", change)
            code = await closed_with(socket, 10)
        return code, await try_open(ticket_url) is not None

    code, ticket_opened = async_to_sync(scenario)()
    assert code == 4401, "the admin's socket outlived the password it was opened with"
    assert not ticket_opened, "a ticket outlived the password of the session it came from"


# --- names -----------------------------------------------------------------------------------


def test_a_group_name_with_a_trailing_newline_is_refused(stack):
    """`users%0A` once passed the name check (`$` matches before a final newline): a chat room
    named like the read-only `users` topic, with a line break for the log."""
    _, token = new_user(stack, "127.0.0.70")

    async def handshake(group: str) -> int:
        try:
            async with websockets.connect(check_url(token, group), origin=ORIGIN) as socket:
                await socket.close()
                return 101
        except websockets.InvalidStatus as refused:
            return refused.response.status_code

    assert async_to_sync(handshake)("users%0A") == 403
    assert async_to_sync(handshake)("users") == 101
