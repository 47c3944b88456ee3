"""
Presence: which signed-in users have a socket in a group, over every daphne process, and who
comes and goes. Ephemeral, like signals: told through the channel layer, never numbered.

    await presence.join(consumer)      # its user's first socket: `presence.joined` to the others
    await presence.members(group)      # [{"uuid", "name", "sockets"}]
    await presence.leave(consumer)     # its user's last socket: `presence.left` to the rest

Where it is kept: in Redis, one Lua script per step (lua/presence_*.lua), so that two sockets of
one user joining on two processes make one `presence.joined`; without Redis (the embedded
default, one process), in the process. Every daphne renews its sockets' entries each HEARTBEAT
seconds; those of a daphne that died expire after TTL, and the next renewal of the group (by any
daphne with a socket there) drops them and announces their users' `presence.left`, once: the
script that drops an entry returns it to that one caller. So the members of a killed daphne are
gone within TTL + HEARTBEAT seconds. While Redis is away presence is not kept (a join or leave
then is logged and skipped); the renewals set it right when Redis is back.

The heartbeat also joins each socket's channel-layer group again: a socket that joined while
Redis was away hears its group once Redis is back.
"""

import asyncio
import collections
import contextlib
import logging
import time
import weakref
from pathlib import Path
from typing import Any

from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from myproject import redis_clients
from myproject.redis_clients import Script

logger = logging.getLogger(__name__)

TTL = 20.0  # seconds a socket's entry outlives its last renewal
HEARTBEAT = 5.0  # seconds between renewals (and sweeps of what expired)

LUA = Path(__file__).with_name("lua")
JOIN = Script(LUA / "presence_expire.lua", LUA / "presence_join.lua")
LEAVE = Script(LUA / "presence_leave.lua")
RENEW = Script(LUA / "presence_expire.lua", LUA / "presence_renew.lua")

Entry = tuple[str, str, str]  # ("<user>|<socket>", user, name)


def _keys(group: str) -> list[str]:
    base = f"myproject:presence:{{{group}}}"
    return [f"{base}:sockets", f"{base}:users", f"{base}:names"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> list[dict[str, str]]:
    return [{"uuid": _text(flat[i]), "name": _text(flat[i + 1])} for i in range(0, len(flat), 2)]


class RedisStore:
    async def join(self, group: str, entry: Entry) -> tuple[bool, list[dict[str, str]]]:
        client = redis_clients.async_client()
        first, left = await JOIN.run(client, _keys(group), [*entry, int(TTL * 1000)])
        return bool(first), _pairs(left)

    async def leave(self, group: str, entry: Entry) -> bool:
        client = redis_clients.async_client()
        last, _ = await LEAVE.run(client, _keys(group), [entry[0], entry[1]])
        return bool(last)

    async def renew(
        self, group: str, entries: list[Entry]
    ) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        client = redis_clients.async_client()
        args = [int(TTL * 1000), *(part for entry in entries for part in entry)]
        left, flat = await RENEW.run(client, _keys(group), args)
        members = [
            {"uuid": _text(flat[i]), "name": _text(flat[i + 2]), "sockets": int(flat[i + 1])}
            for i in range(0, len(flat), 3)
        ]
        return _pairs(left), members


class LocalStore:
    """The same, in the process (no Redis: one daphne)."""

    def __init__(self) -> None:
        # group -> member -> (user, name, until)
        self.groups: dict[str, dict[str, tuple[str, str, float]]] = {}

    def _expire(self, group: str) -> list[dict[str, str]]:
        entries = self.groups.setdefault(group, {})
        users_before = {user: name for user, name, _ in entries.values()}
        now = time.monotonic()
        for member, (_, _, until) in list(entries.items()):
            if until < now:
                del entries[member]
        users_after = {user for user, _, _ in entries.values()}
        return [{"uuid": u, "name": n} for u, n in users_before.items() if u not in users_after]

    async def join(self, group: str, entry: Entry) -> tuple[bool, list[dict[str, str]]]:
        left = self._expire(group)
        entries = self.groups[group]
        first = all(user != entry[1] for user, _, _ in entries.values())
        entries[entry[0]] = (entry[1], entry[2], time.monotonic() + TTL)
        return first, left

    async def leave(self, group: str, entry: Entry) -> bool:
        entries = self.groups.get(group, {})
        if entries.pop(entry[0], None) is None:
            return False
        return all(user != entry[1] for user, _, _ in entries.values())

    async def renew(
        self, group: str, entries: list[Entry]
    ) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        left = self._expire(group)
        held = self.groups[group]
        for member, user, name in entries:
            held[member] = (user, name, time.monotonic() + TTL)
        sockets = collections.Counter(user for user, _, _ in held.values())
        names = {user: name for user, name, _ in held.values()}
        return left, [{"uuid": u, "name": names[u], "sockets": n} for u, n in sockets.items()]


_local = LocalStore()


def store() -> RedisStore | LocalStore:
    return RedisStore() if redis_clients.enabled() else _local


def entry_of(consumer: Any) -> Entry:
    user = consumer.user
    return (f"{user.pk}|{consumer.socket_id}", str(user.pk), user.get_username())


async def join(consumer: Any) -> None:
    """Count the socket in its group's presence; tell the group if its user just came."""
    group, entry = consumer.topic, entry_of(consumer)
    _roster().add(group, consumer)
    try:
        first, left = await store().join(group, entry)
    except (RedisError, OSError) as exc:
        logger.warning("presence of %s not kept, Redis unreachable: %s", group, exc)
        return
    if first:
        member = {"uuid": entry[1], "name": entry[2]}
        await announce(group, "presence.joined", member, origin=consumer.channel_name)
    for member in left:
        await announce(group, "presence.left", member)


async def leave(consumer: Any) -> None:
    """The socket is gone; tell the group if it was its user's last there."""
    group, entry = consumer.topic, entry_of(consumer)
    _roster().discard(group, consumer)
    try:
        last = await store().leave(group, entry)
    except (RedisError, OSError) as exc:
        logger.warning("presence of %s not updated, Redis unreachable: %s", group, exc)
        return
    if last:
        await announce(group, "presence.left", {"uuid": entry[1], "name": entry[2]})


async def members(group: str) -> list[dict[str, Any]]:
    """The users with a socket in `group` now, over every process (expired ones dropped, and
    announced as gone)."""
    left, found = await store().renew(group, [])
    for member in left:
        await announce(group, "presence.left", member)
    return sorted(found, key=lambda member: (member["name"], member["uuid"]))


async def announce(group: str, type_: str, member: dict[str, str], origin: str = "") -> None:
    """`presence.joined` or `presence.left` to every socket of the group (but `origin`)."""
    layer = get_channel_layer()
    if layer is None:
        return
    with contextlib.suppress(RedisError, OSError):  # ephemeral: lost with Redis, not retried
        await layer.group_send(group, {"type": type_, "member": member, "origin": origin})


class _Roster:
    """This event loop's sockets with presence, by group, and the heartbeat that renews them."""

    def __init__(self) -> None:
        self.groups: dict[str, weakref.WeakSet[Any]] = {}
        self.task: asyncio.Task | None = None

    def add(self, group: str, consumer: Any) -> None:
        self.groups.setdefault(group, weakref.WeakSet()).add(consumer)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._beat())

    def discard(self, group: str, consumer: Any) -> None:
        sockets = self.groups.get(group)
        if sockets is not None:
            sockets.discard(consumer)
            if not sockets:
                del self.groups[group]

    async def _beat(self) -> None:
        while self.groups:
            await asyncio.sleep(HEARTBEAT)
            for group, sockets in list(self.groups.items()):
                with contextlib.suppress(RedisError, OSError):
                    left, _ = await store().renew(group, [entry_of(c) for c in list(sockets)])
                    for member in left:
                        await announce(group, "presence.left", member)
                for consumer in list(sockets):
                    await consumer.join_layer_groups()


_rosters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Roster] = (
    weakref.WeakKeyDictionary()
)


def _roster() -> _Roster:
    loop = asyncio.get_running_loop()
    roster = _rosters.get(loop)
    if roster is None:
        roster = _rosters[loop] = _Roster()
    return roster
