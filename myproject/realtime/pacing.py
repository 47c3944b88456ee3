"""
Long work in daphne's one event loop (testing many written rows against many live queries,
replaying a long history to a live query) is cut into slices of at most SLICE seconds, with a
turn for every other socket of the process between two slices; and replays run one at a time
(`one_at_a_time`). A socket's round trip takes a few turns of the loop: however many replays
are asked for, each turn waits for one slice of them at most, not for one slice of each.

    async with one_at_a_time():
        pacer = Pacer()
        for row in rows:
            test(row)
            await pacer.pace()      # yields once SLICE has passed since the last turn
"""

import asyncio
import time
import weakref

SLICE = 0.002  # seconds of work between two turns of the event loop


class Pacer:
    __slots__ = ("since",)

    def __init__(self) -> None:
        self.since = time.perf_counter()

    def due(self) -> bool:
        """Whether this slice has used its time (for generators, which cannot await)."""
        return time.perf_counter() - self.since > SLICE

    async def pace(self) -> None:
        if time.perf_counter() - self.since > SLICE:
            await asyncio.sleep(0)
            self.since = time.perf_counter()

    def restart(self) -> None:
        self.since = time.perf_counter()


_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def one_at_a_time() -> asyncio.Lock:
    """The running loop's lock for long work that may wait its turn (replays)."""
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock
