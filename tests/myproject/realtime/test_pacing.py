"""
Long work in slices (myproject/realtime/pacing.py): a loop that paces itself lets the other
tasks of the event loop run between its slices, a slice not yet used up does not yield, and
replays take the running loop's one lock in turn.
"""

import asyncio
import threading
import time

import pytest

from myproject.realtime import pacing
from myproject.realtime.pacing import Pacer, one_at_a_time


async def test_a_long_loop_that_paces_itself_lets_another_task_run_in_between():
    ticks = []

    async def bystander() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0)

    other = asyncio.ensure_future(bystander())
    await asyncio.sleep(0)
    ticks.clear()
    pacer, turns_during = Pacer(), []
    end = time.perf_counter() + 0.05  # 50 ms of work: ~25 slices of 2 ms
    while time.perf_counter() < end:
        sum(range(1000))  # a row tested
        turns_during.append(len(ticks))
        await pacer.pace()
    other.cancel()
    assert turns_during[-1] >= 2  # the bystander ran between slices, not only after


async def test_pace_does_not_yield_before_the_slice_is_used_up(monkeypatch):
    monkeypatch.setattr(pacing, "SLICE", 60.0)
    ran = asyncio.Event()
    asyncio.get_running_loop().call_soon(ran.set)
    pacer = Pacer()
    for _ in range(100):
        await pacer.pace()
    assert not ran.is_set()
    assert not pacer.due()


async def test_due_tells_a_generator_when_to_pause_and_restart_starts_a_new_slice(monkeypatch):
    pacer = Pacer()
    monkeypatch.setattr(pacing, "SLICE", 60.0)
    assert not pacer.due()
    monkeypatch.setattr(pacing, "SLICE", 0.001)
    time.sleep(0.005)
    assert pacer.due()
    monkeypatch.setattr(pacing, "SLICE", 60.0)
    pacer.restart()
    assert not pacer.due()


async def test_replays_take_the_running_loops_one_lock_in_turn():
    assert one_at_a_time() is one_at_a_time()
    order = []

    async def replay(name: str) -> None:
        async with one_at_a_time():
            order.append(f"{name} starts")
            await asyncio.sleep(0.01)
            order.append(f"{name} ends")

    await asyncio.gather(replay("a"), replay("b"))
    assert order == ["a starts", "a ends", "b starts", "b ends"]


def test_each_event_loop_has_its_own_lock():
    """Another loop (another thread's) never waits for this one's replays."""

    async def lock() -> asyncio.Lock:
        return one_at_a_time()

    locks = []
    thread = threading.Thread(target=lambda: locks.append(asyncio.run(lock())))
    thread.start()
    thread.join(5)
    assert locks[0] is not asyncio.run(lock())


def test_one_at_a_time_needs_a_running_loop():
    with pytest.raises(RuntimeError):
        one_at_a_time()
