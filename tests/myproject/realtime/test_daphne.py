"""
What myproject/realtime/daphne.py changes, in a real daphne process, and only there: the
startup heap frozen out of garbage collection, full collections a tenth as often but soon
after a wave of closed sockets, and Twisted writes sent at once when nothing is queued
(make bench: fan-out), with a slow reader still getting every frame, in order; and every
socket closed with 4503 when daphne stops, even one accepted a moment before.
"""

import asyncio
import gc
import json
import signal
import subprocess
import weakref

import httpx
import pytest
import websockets
from asgiref.sync import async_to_sync
from twisted.internet.abstract import FileDescriptor

from myproject.realtime import daphne as daphne_module
from tests.factories import UserFactory, token_for
from tests.live import BIN, ROOT, daphne, free_port, server_env, stop_process, wait_ready

MESSAGES = 200
FILLER = "x" * 40_000  # 200 frames of ~40 KB: ~8 MB, far over what loopback buffers hold


@pytest.mark.django_db(transaction=True)
def test_daphne_freezes_the_startup_heap_spaces_full_collections_and_writes_at_once():
    with daphne(server_env(), app="tests.probe_asgi:application") as base:
        served = httpx.get(f"{base}/probe/", timeout=10).json()
    # Django, DRF, Channels and Twisted: ~100k objects, none walked by a collection again.
    assert served["frozen"] > 50_000
    assert served["threshold"][2] == daphne_module.FULL_COLLECTION_EVERY
    assert served["write"] == "myproject.realtime.daphne"


def test_importing_the_application_elsewhere_changes_nothing():
    import myproject.asgi  # noqa: F401

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[2] == 10
    assert FileDescriptor.write.__module__ == "twisted.internet.abstract"


async def _burst_to_a_slow_reader(url: str) -> list[str]:
    # max_queue=1: the reader stops reading its socket after one frame, so daphne's sends to
    # it fill the kernel's buffers and the rest waits in Twisted's queue.
    async with (
        websockets.connect(url, origin="http://localhost", max_queue=1) as reader,
        websockets.connect(url, origin="http://localhost", max_queue=None) as writer,
    ):
        for n in range(MESSAGES):
            await writer.send(json.dumps({"message": f"{n}:{FILLER}"}))
        await asyncio.sleep(1)  # the frames pile up in daphne meanwhile
        received = []
        while len(received) < MESSAGES:
            frame = json.loads(await asyncio.wait_for(reader.recv(), 10))
            if frame["type"] == "message":
                received.append(frame["message"])
        return received


@pytest.mark.django_db(transaction=True)
def test_a_slow_reader_gets_every_frame_in_order():
    """Within DJANGO_WS_MAX_BUFFER (raised here over the burst: a reader past it is closed with
    4408, tests/hardening/test_delivery.py), what the kernel does not take waits in order."""
    key = token_for(UserFactory())
    with daphne(server_env(DJANGO_WS_MAX_BUFFER=str(16 * 1024 * 1024))) as base:
        url = base.replace("http", "ws") + f"/identity/ws/check/burst/?token={key}"
        received = async_to_sync(_burst_to_a_slow_reader)(url)
    assert [message.split(":")[0] for message in received] == [str(n) for n in range(MESSAGES)]
    assert all(message.endswith(FILLER) for message in received)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


async def _close_sockets(count: int) -> bool:
    """Whether a garbage cycle is collected after `count` closes (automatic GC off)."""
    garbage = _Cycle()
    collected = weakref.ref(garbage)
    del garbage
    for _ in range(count):
        daphne_module.socket_closed()
    await asyncio.sleep(0.1)
    return collected() is None


@pytest.fixture
def collector_off():
    gc.disable()
    yield
    gc.enable()


def test_a_wave_of_closed_sockets_is_collected_soon_after(monkeypatch, collector_off):
    monkeypatch.setattr(daphne_module, "_closes", 0)  # as tune() leaves it
    monkeypatch.setattr(daphne_module, "COLLECT_AFTER_CLOSES", 3)
    monkeypatch.setattr(daphne_module, "COLLECT_DELAY", 0.01)
    assert not async_to_sync(_close_sockets)(2)
    assert async_to_sync(_close_sockets)(1)  # the third close
    assert daphne_module._closes == 0  # counting starts again


def test_closed_sockets_trigger_nothing_outside_daphne(monkeypatch, collector_off):
    monkeypatch.setattr(daphne_module, "COLLECT_AFTER_CLOSES", 1)
    monkeypatch.setattr(daphne_module, "COLLECT_DELAY", 0.01)
    assert daphne_module._closes is None
    assert not async_to_sync(_close_sockets)(5)


@pytest.mark.django_db(transaction=True)
def test_a_socket_accepted_just_before_a_sigterm_is_closed_with_4503():
    """For about a second after a WebSocket upgrade, daphne 4.2's shutdown raised KeyError
    before cancelling any application, and dropped every socket of the process without a
    close frame (myproject.realtime.daphne._shut_down_every_socket)."""
    port = free_port()
    app = "myproject.asgi:application"
    command = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), app]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=server_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    async def stopped_at_once() -> int | None:
        url = f"ws://127.0.0.1:{port}/catalog/ws/"
        async with websockets.connect(url, origin="http://localhost") as socket:
            assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "hello"
            proc.send_signal(signal.SIGTERM)  # what a deploy or a restart does
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 15)
            return closed.value.rcvd.code if closed.value.rcvd else None

    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz")
        assert async_to_sync(stopped_at_once)() == 4503
        assert proc.wait(15) == 0
    finally:
        stop_process(proc)
