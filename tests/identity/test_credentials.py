"""
Sockets end with what opened them, beyond logging out and deleting (test_consumers.py): staff
status taken away, a password changed by any path, a ticket whose token or session has ended,
and what a session ticket leaves in Redis. In process, on the real ASGI application, the suite's
MariaDB and Redis; tests/hardening/test_sockets.py tries the same through nginx.
"""

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.test import Client
from rest_framework.test import APIClient

from identity.models import Token, User
from identity.services import users
from myproject.realtime.hubs import hubs
from tests.conftest import client_for
from tests.factories import PASSWORD, StaffFactory, token_for
from tests.ws import ORIGIN, connect, open_socket, quiet

pytestmark = pytest.mark.django_db(transaction=True)

ROOM = "/identity/ws/check/room/"
USERS = "/identity/ws/check/users/"
NEW_PASSWORD = "brand-New-secret-7"


def session_of(user: User) -> str:
    """The key of a new session signed in as `user` (as the admin's login makes one)."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def cookie(session_key: str) -> list[tuple[bytes, bytes]]:
    return [ORIGIN, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}".encode())]


async def open_with_session(path: str, session_key: str):
    socket, accepted, detail = await connect(path, headers=cookie(session_key))
    assert accepted, detail
    await socket.receive_from(timeout=3)  # hello
    return socket


async def close_code(socket) -> int:
    """The code the socket is closed with within 3 s, past the frames before it."""
    while True:
        output = await socket.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            return output["code"]


def ticket_of(client: APIClient) -> str:
    response = client.post("/identity/ws-ticket/")
    assert response.status_code == 200, response.content
    return response.json()["ticket"]


def session_client(session_key: str) -> APIClient:
    client = APIClient()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return client


def redis_contents() -> bytes:
    """Every key and value in the suite's Redis database, whatever their types."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    read = {
        b"string": client.get, b"list": lambda key: client.lrange(key, 0, -1),
        b"hash": client.hgetall, b"set": client.smembers,
        b"zset": lambda key: client.zrange(key, 0, -1), b"stream": client.xrange,
    }  # fmt: skip
    found = [key + repr(read[client.type(key)](key)).encode() for key in client.scan_iter()]
    client.close()
    return b"\n".join(found)


@pytest.fixture
def demoted(db: None) -> User:
    """Staff, about to be staff no more."""
    return StaffFactory(name="demoted")


@pytest.fixture
def superuser(db: None) -> User:
    return StaffFactory(name="super", is_superuser=True)


# --- staff status taken away -------------------------------------------------------------------


def demote(how: str, user: User, superuser: User) -> None:
    """Take `user`'s staff status away as a superuser would: over REST (single, bulk), in the
    admin's change form."""
    if how == "admin":
        client = Client()
        client.force_login(superuser)
        form = {"name": user.name, "email": user.email, "date_joined_0": "2020-01-01",
                "date_joined_1": "00:00:00", "enable": "on"}  # fmt: skip
        response = client.post(f"/admin/identity/user/{user.pk}/change/", form)
        assert response.status_code == 302, response.content
        return
    client = client_for(superuser)
    if how == "single":
        response = client.patch(f"/identity/users/{user.pk}/", {"is_staff": False})
    else:
        response = client.patch("/identity/users/", [{"uuid": str(user.pk), "is_staff": False}])
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("how", ["single", "bulk", "admin"])
async def test_taking_staff_status_away_closes_the_users_sockets_and_keeps_its_tokens(
    demoted, superuser, how
):
    key = await sync_to_async(token_for)(demoted)
    staff_socket = await open_socket(USERS, key)
    await sync_to_async(demote)(how, demoted, superuser)
    assert await close_code(staff_socket) == 4401
    assert await Token.objects.filter(user=demoted).aexists()  # the token stays...
    reopened = await open_socket(USERS, key)  # ...and opens a socket of a plain user
    await reopened.disconnect()


async def test_the_sweep_closes_a_socket_opened_as_staff_once_its_user_is_staff_no_more(demoted):
    key = await sync_to_async(token_for)(demoted)
    as_staff = await open_socket(USERS, key)
    await User.objects.filter(pk=demoted.pk).aupdate(is_staff=False)  # nothing announced
    as_plain = await open_socket(USERS, key)
    await hubs().revocations.sweep()
    assert await close_code(as_staff) == 4401
    assert await quiet(as_plain, 0.3)
    await as_plain.disconnect()


# --- passwords ---------------------------------------------------------------------------------


def change_password(how: str, user: User) -> None:
    if how == "service":  # REST set_password/, the admin's form for another user
        users.set_password(user, NEW_PASSWORD)
    elif how == "save":  # manage.py changepassword, a shell
        user.set_password(NEW_PASSWORD)
        user.save()
    else:  # the admin's own password-change view: Django's form, not the service
        client = Client()
        client.force_login(user)
        response = client.post("/admin/password_change/", {
            "old_password": PASSWORD, "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        })  # fmt: skip
        assert response.status_code == 302, response.content


@pytest.mark.parametrize("how", ["service", "save", "admin_own_form"])
async def test_a_password_change_by_any_path_closes_every_socket_of_the_user(staff, user, how):
    by_token = await open_socket(ROOM, await sync_to_async(token_for)(staff))
    by_session = await open_with_session(ROOM, await sync_to_async(session_of)(staff))
    bystander = await open_socket(ROOM, await sync_to_async(token_for)(user))
    await sync_to_async(change_password)(how, staff)
    assert await close_code(by_token) == 4401
    assert await close_code(by_session) == 4401
    assert await quiet(bystander, 0.3)
    await bystander.disconnect()


async def test_setting_a_password_through_the_service_still_deletes_every_token(user):
    await sync_to_async(token_for)(user)
    await sync_to_async(users.set_password)(user, NEW_PASSWORD)
    assert not await Token.objects.filter(user=user).aexists()


async def test_saving_a_user_without_changing_its_password_closes_nothing(user):
    socket = await open_socket(ROOM, await sync_to_async(token_for)(user))
    user.comment = "noted"
    await sync_to_async(user.save)()
    await sync_to_async(users.update)(user, {"phone": "+14155550123"})
    assert await quiet(socket, 0.5)
    await socket.disconnect()


async def test_the_sweep_closes_a_session_socket_once_its_password_changed_unannounced(user, staff):
    socket = await open_with_session(ROOM, await sync_to_async(session_of)(user))
    other = await open_with_session(ROOM, await sync_to_async(session_of)(staff))
    password = await sync_to_async(make_password)(NEW_PASSWORD)
    await User.objects.filter(pk=user.pk).aupdate(password=password)  # nothing announced
    await hubs().revocations.sweep()
    assert await close_code(socket) == 4401
    assert await quiet(other, 0.3)
    await other.disconnect()


# --- tickets ---------------------------------------------------------------------------------


async def test_a_ticket_taken_before_logging_out_opens_nothing(user):
    key = await sync_to_async(token_for)(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    ticket = await sync_to_async(ticket_of)(client)
    assert (await sync_to_async(client.delete)("/identity/token/")).status_code == 204
    _, accepted, _ = await connect(f"{ROOM}?ticket={ticket}")
    assert not accepted


async def test_a_session_ticket_opens_nothing_once_the_password_changed(user):
    session_key = await sync_to_async(session_of)(user)
    ticket = await sync_to_async(ticket_of)(session_client(session_key))
    await sync_to_async(change_password)("save", user)
    _, accepted, _ = await connect(f"{ROOM}?ticket={ticket}")
    assert not accepted


async def test_a_session_ticket_opens_a_socket_and_keeps_the_session_key_out_of_redis(user):
    session_key = await sync_to_async(session_of)(user)
    ticket = await sync_to_async(ticket_of)(session_client(session_key))
    stored = await sync_to_async(redis_contents)()
    assert b"ws-ticket:" in stored
    assert session_key.encode() not in stored
    socket = await open_socket(f"{ROOM}?ticket={ticket}")
    await socket.disconnect()
