"""
Closing sockets when what opened them ends (myproject/realtime/revocation.py): a control frame
closes exactly the sockets of the groups it names, with 4401; the sweep asks the registered
check which credentials still stand and closes the others, by itself every period, at once when
control frames were lost, and not at all while the check cannot answer. The same with identity's
real credentials: tests/identity/test_credentials.py.
"""

import asyncio
from dataclasses import dataclass

import pytest

from myproject.realtime import publish, revocation
from myproject.realtime.frames import Frame
from myproject.realtime.revocation import Revocations, register_check
from myproject.realtime.topics import CONTROL


@dataclass(frozen=True)
class Credential:
    group: str


class Socket:
    """What revocation uses of a consumer: its credential and `close`."""

    def __init__(self, name: str | None) -> None:
        self.credential = Credential(f"credential:{name}") if name else None
        self.closed_with: int | None = None

    async def close(self, code: int) -> None:
        self.closed_with = code


@pytest.fixture
def checked(monkeypatch):
    """The credentials the registered check is asked about, each time; the test says which
    still stand (`standing`). The check identity registered comes back afterwards."""
    monkeypatch.setattr(revocation, "_check", revocation._check)
    monkeypatch.setattr(revocation, "_period", revocation._period)
    asked: list[set] = []
    standing: set = set()

    def check(credentials: set) -> set:
        asked.append(set(credentials))
        return credentials & standing

    register_check(check, every=60)
    return asked, standing


async def closed(socket: Socket) -> int | None:
    """The code `socket` is closed with within 3 s (None: still open)."""
    for _ in range(300):
        if socket.closed_with is not None:
            break
        await asyncio.sleep(0.01)
    return socket.closed_with


def revoke(*groups: str) -> Frame:
    return Frame(CONTROL, "E1", 1, publish.payload({"type": "revoke", "groups": list(groups)}))


async def test_a_control_frame_closes_exactly_the_sockets_of_its_groups(checked):
    revocations = Revocations()
    ending, staying, other = Socket("a"), Socket("b"), Socket(None)
    revocations.watch(ending, ["user:1", "credential:a"])
    revocations.watch(staying, ["user:1", "credential:b"])
    revocations.watch(other, ["user:2"])
    await revocations.revoke(revoke("credential:a", "user:9"))
    assert (ending.closed_with, staying.closed_with) == (revocation.CLOSE_REVOKED, None)
    await revocations.revoke(revoke("user:1"))
    assert staying.closed_with == 4401
    assert other.closed_with is None


async def test_an_unwatched_socket_is_closed_by_nothing(checked):
    revocations = Revocations()
    socket = Socket("a")
    revocations.watch(socket, ["user:1"])
    revocations.unwatch(socket, ["user:1"])
    await revocations.revoke(revoke("user:1"))
    await revocations.sweep()
    assert socket.closed_with is None
    assert revocations.groups == {}


async def test_the_sweep_closes_the_sockets_whose_credential_no_longer_stands(checked):
    asked, standing = checked
    revocations = Revocations()
    gone, kept, anonymous = Socket("gone"), Socket("kept"), Socket(None)
    standing.add(kept.credential)
    for socket in (gone, kept, anonymous):
        revocations.watch(socket, [])
    await revocations.sweep()
    assert asked == [{gone.credential, kept.credential}]  # one question for every socket
    assert (gone.closed_with, kept.closed_with, anonymous.closed_with) == (4401, None, None)
    await revocations.sweep()
    assert asked[-1] == {kept.credential}  # a closed socket is asked about no more


async def test_the_sweep_runs_by_itself_every_period(checked, monkeypatch):
    asked, _ = checked
    monkeypatch.setattr(revocation, "_period", 0.01)
    revocations = Revocations()
    socket = Socket("expired")
    revocations.watch(socket, [])
    assert await closed(socket) == 4401
    assert asked


async def test_lost_control_frames_sweep_at_once(checked):
    revocations = Revocations()  # the period: a minute
    socket = Socket("revoked-while-away")
    revocations.watch(socket, [])
    revocations.lost()
    assert await closed(socket) == 4401


async def test_a_check_that_fails_closes_nothing(checked):
    def database_down(credentials: set) -> set:
        raise ConnectionError("MariaDB is away")

    register_check(database_down, every=60)
    revocations = Revocations()
    socket = Socket("a")
    revocations.watch(socket, [])
    await revocations.sweep()
    assert socket.closed_with is None
    assert socket in revocations.sockets  # asked about again at the next sweep
