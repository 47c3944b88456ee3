"""
Presence (myproject/realtime/presence.py) on the check channel, in-process against the suite's
real Redis and channels_redis: who is in a group, who comes and who goes, and the members of a
process that died, which expire. Across two daphne processes: tests/deploy/test_channel_layer.py.
"""

import pytest
from asgiref.sync import sync_to_async

from myproject.realtime import presence
from tests.factories import UserFactory, token_for
from tests.ws import open_socket, receive, send

pytestmark = pytest.mark.django_db(transaction=True)


async def new_user(name: str) -> tuple[str, str]:
    user = await sync_to_async(UserFactory)(name=name)
    return str(user.pk), await sync_to_async(token_for)(user)


async def members(socket) -> list[dict]:
    await send(socket, {"type": "presence"})
    while True:
        frame = await receive(socket)
        if frame["type"] == "presence":
            return frame["members"]


async def next_presence(socket) -> dict:
    return await receive(socket, presence=True)


async def test_presence_lists_the_users_in_the_group_with_their_sockets():
    group = "/identity/ws/check/lobby/"
    ann, ann_token = await new_user("ann")
    bob, bob_token = await new_user("bob")
    sockets = [await open_socket(group, ann_token), await open_socket(group, ann_token),
               await open_socket(group, bob_token)]  # fmt: skip
    assert await members(sockets[2]) == [
        {"uuid": ann, "name": "ann", "sockets": 2},
        {"uuid": bob, "name": "bob", "sockets": 1},
    ]
    for socket in sockets:
        await socket.disconnect()


async def test_a_users_first_socket_is_announced_and_its_last_one_leaving_too():
    group = "/identity/ws/check/comings/"
    ann, ann_token = await new_user("ann")
    bob, bob_token = await new_user("bob")
    watcher = await open_socket(group, bob_token)
    first = await open_socket(group, ann_token)
    joined = await next_presence(watcher)
    assert joined == {"type": "presence.joined", "member": {"uuid": ann, "name": "ann"}}
    assert "seq" not in joined  # ephemeral: not numbered
    second = await open_socket(group, ann_token)  # not her first: nothing to tell
    await first.disconnect()  # not her last either
    assert await watcher.receive_nothing(timeout=0.5)  # no presence frame at all
    await second.disconnect()
    left = await next_presence(watcher)
    assert left == {"type": "presence.left", "member": {"uuid": ann, "name": "ann"}}
    assert await members(watcher) == [{"uuid": bob, "name": "bob", "sockets": 1}]
    await watcher.disconnect()


async def test_the_members_of_a_process_that_died_expire_and_are_announced_gone(monkeypatch):
    """A daphne killed outright says nothing: its sockets' entries are renewed no more, and the
    group drops them after presence.TTL, telling the sockets still there."""
    monkeypatch.setattr(presence, "TTL", 1.0)
    monkeypatch.setattr(presence, "HEARTBEAT", 0.2)  # this process's own sockets stay
    group = "ghosts"
    _, token = await new_user("bob")
    watcher = await open_socket(f"/identity/ws/check/{group}/", token)
    # A socket of another process, which dies: joined once, never renewed.
    first, _ = await presence.store().join(group, ("ghost-uuid|s1", "ghost-uuid", "ghost"))
    assert first
    names = [m["name"] for m in await members(watcher)]
    assert names == ["bob", "ghost"]
    # The next renewal after the TTL drops it, and tells the group.
    left = await next_presence(watcher)
    assert left == {"type": "presence.left", "member": {"uuid": "ghost-uuid", "name": "ghost"}}
    assert [m["name"] for m in await members(watcher)] == ["bob"]
    await watcher.disconnect()


async def test_without_redis_presence_is_kept_in_the_process(settings):
    settings.REDIS_URL = ""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.WS_LOCAL_HISTORY = settings.BASE_DIR / "var" / "test-presence.db"
    group = "/identity/ws/check/alone/"
    ann, ann_token = await new_user("ann")
    _, bob_token = await new_user("bob")
    watcher = await open_socket(group, bob_token)
    socket = await open_socket(group, ann_token)
    assert await next_presence(watcher) == {
        "type": "presence.joined", "member": {"uuid": ann, "name": "ann"},
    }  # fmt: skip
    assert [m["name"] for m in await members(watcher)] == ["ann", "bob"]
    await socket.disconnect()
    assert (await next_presence(watcher))["type"] == "presence.left"
    await watcher.disconnect()
