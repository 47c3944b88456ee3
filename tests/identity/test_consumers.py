"""The check channel: handshakes, every frame type, every malformed frame, revocation."""

import json

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from identity.models import Token
from tests.factories import CategoryFactory, ItemFactory, token_for
from tests.ws import ORIGIN, body, connect, open_socket, quiet, receive, receive_type, send

pytestmark = pytest.mark.django_db(transaction=True)

CHECK = "/identity/ws/check/{}/"


@pytest.fixture
def token(user) -> str:
    return token_for(user)


# --- handshakes --------------------------------------------------------------------------


async def test_a_signed_in_user_connects(token):
    socket = await open_socket(CHECK.format("room1"), token)
    await socket.disconnect()


@pytest.mark.parametrize(
    ("path", "key", "headers"),
    [
        ("room1", None, [ORIGIN]),  # no user
        ("room1", "not-a-token", [ORIGIN]),  # bad token
        ("room1", "GOOD", [(b"origin", b"http://evil.example")]),  # foreign origin
        ("room1", "GOOD", []),  # no origin at all
        ("bad$name", "GOOD", [ORIGIN]),  # invalid group name
        ("x" * 101, "GOOD", [ORIGIN]),  # too long for the channel layer
        ("user.someone", "GOOD", [ORIGIN]),  # a private per-user group
        ("users%0A", "GOOD", [ORIGIN]),  # a trailing newline: not the topic `users`
    ],
)
async def test_handshakes_are_refused(token, path, key, headers):
    _, accepted, _ = await connect(CHECK.format(path), token if key == "GOOD" else key, headers)
    assert not accepted


async def test_a_disabled_user_is_refused(user):
    key = await sync_to_async(token_for)(user)
    user.enable = False
    await sync_to_async(user.save)()
    _, accepted, _ = await connect(CHECK.format("room1"), key)
    assert not accepted


async def test_unknown_paths_are_refused(token):
    _, accepted, _ = await connect("/identity/ws/nowhere/", token)
    assert not accepted


# --- messages ----------------------------------------------------------------------------


async def test_messages_reach_the_whole_group_and_nobody_else(user, staff):
    alice, root = await sync_to_async(token_for)(user), await sync_to_async(token_for)(staff)
    a1 = await open_socket(CHECK.format("room1"), alice)
    a2 = await open_socket(CHECK.format("room1"), root)
    outsider = await open_socket(CHECK.format("room2"), root)
    await send(a1, {"type": "message", "message": {"text": "hi", "n": [1, 2]}})
    expected = {"type": "message", "message": {"text": "hi", "n": [1, 2]}, "sender": str(user.uuid)}
    assert body(await receive(a1)) == expected
    assert body(await receive(a2)) == expected
    assert await quiet(outsider, 0.5)
    await send(a2, {"message": "bare frames work too"})
    assert (await receive(a1))["message"] == "bare frames work too"
    for socket in (a1, a2, outsider):
        await socket.disconnect()


# --- checks ------------------------------------------------------------------------------


async def check(socket, resource: str, field: str, value, id_=1) -> dict:
    await send(socket, {"type": "check", "id": id_, "resource": resource, "field": field,
                        "value": value})  # fmt: skip
    return await receive_type(socket, "check.result")


async def test_checks_validate_users_against_the_database(token, user):
    socket = await open_socket(CHECK.format("room1"), token)
    taken = await check(socket, "user", "email", user.email, id_="a")
    assert taken["id"] == "a"
    assert taken["field"] == "email"
    assert taken["ok"] is False
    assert any("already exists" in e for e in taken["errors"])
    free = await check(socket, "user", "email", "free@example.com", id_={"any": "json"})
    assert free == {"type": "check.result", "id": {"any": "json"}, "field": "email", "ok": True,
                    "errors": []}  # fmt: skip
    assert (await check(socket, "user", "email", "nope"))["ok"] is False
    assert (await check(socket, "user", "phone", "+14155550123"))["ok"] is True
    assert (await check(socket, "user", "phone", "12"))["ok"] is False
    weak = await check(socket, "user", "password", "12345678")
    assert weak["ok"] is False
    assert weak["errors"]
    assert (await check(socket, "user", "name", user.name))["ok"] is False
    await socket.disconnect()


async def test_checks_validate_items_and_categories(token):
    item = await sync_to_async(ItemFactory)(sku="TAKEN-1")
    await sync_to_async(CategoryFactory)(slug="taken")
    socket = await open_socket(CHECK.format("room1"), token)
    assert (await check(socket, "item", "sku", "TAKEN-1"))["ok"] is False
    assert (await check(socket, "item", "sku", "FREE-1"))["ok"] is True
    assert (await check(socket, "item", "price", "-1"))["ok"] is False
    assert (await check(socket, "item", "price", "10.50"))["ok"] is True
    assert (await check(socket, "item", "stock", -3))["ok"] is False
    assert (await check(socket, "item", "category", str(item.category_id)))["ok"] is True
    missing = await check(socket, "item", "category", "00000000-0000-0000-0000-000000000000")
    assert missing["ok"] is False
    assert (await check(socket, "category", "slug", "taken"))["ok"] is False
    assert (await check(socket, "category", "slug", "not a slug!"))["ok"] is False
    assert (await check(socket, "category", "slug", "fresh"))["ok"] is True
    await socket.disconnect()


# --- malformed frames: an error frame each, and the socket stays open -----------------------


MALFORMED = [
    ("not json", "invalid_json"),
    ("[1, 2]", "not_an_object"),
    ("42", "not_an_object"),
    ('"text"', "not_an_object"),
    ('{"type": "dance"}', "unknown_type"),
    ("{}", "unknown_type"),
    ('{"type": "message"}', "missing_keys"),
    ('{"type": "check", "id": 1}', "missing_keys"),
    ('{"type": "check", "id": 1, "resource": "planet", "field": "x", "value": 1}',
     "unknown_resource"),
    ('{"type": "check", "id": 1, "resource": "user", "field": "nope", "value": 1}',
     "unknown_field"),
    ('{"type": "check", "id": 1, "resource": "user", "field": "uuid", "value": 1}',
     "unknown_field"),
    ('{"type": "check", "id": 1, "resource": "user", "field": ["email"], "value": 1}',
     "unknown_field"),
    ('{"message": ' + "[" * 40 + "]" * 40 + "}", "too_deep"),
    ("[" * 5000 + "]" * 5000, "invalid_json"),
]  # fmt: skip


async def test_malformed_frames_get_error_frames_and_the_socket_stays_open(token):
    socket = await open_socket(CHECK.format("room1"), token)
    for text, code in MALFORMED:
        await socket.send_to(text_data=text)
        frame = await receive(socket)
        assert frame["type"] == "error", text
        assert frame["code"] == code, text
        assert frame["detail"]
    await socket.send_to(bytes_data=b"\x00\x01binary")
    assert (await receive(socket))["code"] == "binary"
    await send(socket, {"message": "x" * 70000})
    assert (await receive(socket))["code"] == "too_large"
    await send(socket, {"message": "still here"})
    assert (await receive(socket))["message"] == "still here"
    await socket.disconnect()


async def test_checks_over_the_rate_get_an_error_frame(token, settings):
    settings.WS_CHECK_RATE = "3/min"
    socket = await open_socket(CHECK.format("room1"), token)
    for _ in range(3):
        assert (await check(socket, "user", "email", "a@example.com"))["type"] == "check.result"
    await send(socket, {"type": "check", "id": 4, "resource": "user", "field": "email",
                        "value": "a@example.com"})  # fmt: skip
    assert (await receive(socket))["code"] == "rate_limited"
    await send(socket, {"message": "messages are not rate limited"})
    assert (await receive(socket))["type"] == "message"
    await socket.disconnect()


# --- revocation --------------------------------------------------------------------------


async def revoke_via_api(action: str, user, staff) -> None:
    from tests.conftest import client_for

    client = await sync_to_async(client_for)(staff)
    url = f"/identity/users/{user.uuid}/"
    if action == "disable":
        response = await sync_to_async(client.patch)(url, {"enable": False}, format="json")
        assert response.status_code == 200
    else:
        response = await sync_to_async(client.post)(
            f"{url}set_password/", {"password": "brand-New-secret-7"}, format="json"
        )
        assert response.status_code == 204


@pytest.mark.parametrize("action", ["disable", "set_password"])
async def test_revoking_a_user_closes_its_sockets_with_4401(user, staff, action):
    key = await sync_to_async(token_for)(user)
    victim = await open_socket(CHECK.format("room1"), key)
    bystander = await open_socket(CHECK.format("room1"), await sync_to_async(token_for)(staff))
    await revoke_via_api(action, user, staff)
    assert await victim.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
    assert not await sync_to_async(Token.objects.filter(user=user).exists)()
    await send(bystander, {"message": "unaffected"})
    assert (await receive_type(bystander, "message"))["message"] == "unaffected"
    await bystander.disconnect()


# --- the users group hears every user change ------------------------------------------------


async def test_the_users_group_receives_user_events_as_each_reader_may_read_them(
    user, token, staff
):
    """Staff read every field, others the public ones, except of their own record (issue 14:
    contact details were in every signed-in page's events)."""
    from identity.serializers import public_representation
    from tests.conftest import client_for

    plain = await open_socket(CHECK.format("users"), token)
    full = await open_socket(CHECK.format("users"), await sync_to_async(token_for)(staff))
    client = await sync_to_async(client_for)(staff)
    response = await sync_to_async(client.post)(
        "/identity/users/", {"name": "newbie", "email": "newbie@example.com"}, format="json"
    )
    assert (await receive_type(full, "user.created"))["data"] == response.json()
    seen = (await receive_type(plain, "user.created"))["data"]
    assert seen == public_representation(response.json())
    assert "email" not in seen
    assert "password" not in json.dumps(seen)
    await sync_to_async(client.patch)(
        f"/identity/users/{user.uuid}/", {"comment": "about alice"}, format="json"
    )
    own = (await receive_type(plain, "user.updated"))["data"]
    assert (own["email"], own["comment"]) == (user.email, "about alice")  # one's own, in full
    for socket in (plain, full):
        await socket.disconnect()


async def test_sockets_per_user_are_capped(user, settings):
    settings.WS_MAX_SOCKETS_PER_USER = 2
    key = await sync_to_async(token_for)(user)
    first = await open_socket(CHECK.format("r1"), key)
    second = await open_socket(CHECK.format("r2"), key)
    _, accepted, _ = await connect(CHECK.format("r3"), key)
    assert not accepted
    await first.disconnect()
    third = await open_socket(CHECK.format("r3"), key)  # a slot came free
    for socket in (second, third):
        await socket.disconnect()


# --- event topics, message rate --------------------------------------------------------------


@pytest.mark.parametrize("topic", ["users", "catalog"])
async def test_event_topics_refuse_messages(token, topic):
    socket = await open_socket(CHECK.format(topic), token)
    await send(socket, {"type": "message", "message": "fake"})
    assert (await receive(socket))["code"] == "read_only"
    await socket.disconnect()


async def test_messages_are_rate_limited_per_user_over_all_its_sockets(user, settings):
    settings.WS_MESSAGE_RATE = "3/min"
    first = await open_socket(CHECK.format("room1"), await sync_to_async(token_for)(user))
    second = await open_socket(CHECK.format("room2"), await sync_to_async(token_for)(user))
    answers = []
    for n in range(5):
        socket = first if n % 2 else second
        await send(socket, {"message": n})
        answers.append((await receive(socket)).get("code", "sent"))
    assert answers == ["sent", "sent", "sent", "rate_limited", "rate_limited"]
    for socket in (first, second):
        await socket.disconnect()


# --- what a socket lives on ---------------------------------------------------------------------


async def test_a_ticket_opens_one_socket(user):
    from identity import tickets
    from identity.credentials import of_token

    token = await sync_to_async(Token.objects.issue)(user)
    ticket = await sync_to_async(tickets.issue)(user, of_token(token[0]))
    socket = await open_socket(f"{CHECK.format('room1')}?ticket={ticket}")
    _, accepted, _ = await connect(f"{CHECK.format('room1')}?ticket={ticket}")
    assert not accepted, "a ticket opened a second socket"
    _, accepted, _ = await connect(f"{CHECK.format('room1')}?ticket=forged")
    assert not accepted
    await socket.disconnect()


async def test_logging_out_closes_only_the_sockets_of_that_token(user):
    first = await sync_to_async(token_for)(user)
    second = await sync_to_async(token_for)(user)
    ending = await open_socket(CHECK.format("room1"), first)
    staying = await open_socket(CHECK.format("room1"), second)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert (await sync_to_async(client.delete)("/identity/token/")).status_code == 204
    assert await ending.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
    await send(staying, {"message": "still here"})
    assert (await receive_type(staying, "message"))["message"] == "still here"
    await staying.disconnect()


@pytest.mark.parametrize("how", ["single", "bulk"])
async def test_deleting_a_user_closes_its_sockets(user, staff, how):
    from tests.conftest import client_for

    socket = await open_socket(CHECK.format("room1"), await sync_to_async(token_for)(user))
    client = await sync_to_async(client_for)(staff)
    url = (
        f"/identity/users/{user.uuid}/"
        if how == "single"
        else f"/identity/users/?search={user.name}"
    )
    assert (await sync_to_async(client.delete)(url)).status_code == 204
    assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}


async def test_the_sweep_closes_sockets_whose_token_expired(user):
    from datetime import timedelta

    from myproject.realtime.hubs import hubs

    expiring = await open_socket(CHECK.format("room1"), await sync_to_async(token_for)(user))
    fresh = await open_socket(CHECK.format("room1"), await sync_to_async(token_for)(user))
    oldest = await sync_to_async(Token.objects.order_by("created").first)()
    await Token.objects.filter(pk=oldest.pk).aupdate(created=oldest.created - timedelta(days=31))
    await hubs().revocations.sweep()
    assert await expiring.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
    assert await quiet(fresh, 0.3)
    await fresh.disconnect()


# --- group names ----------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["users\n", "room\n"])
def test_broadcast_refuses_a_group_name_with_a_line_break(group):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="not a valid group name"):
        call_command("broadcast", group, '{"text": "forged"}')
