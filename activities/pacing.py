"""A per-process pacer: at most one vendor call per interval on each rate-limited queue.

Temporal paces each vendor queue for all workers together (``max_task_queue_activities_per_
second``), but its limiter may hand out two tasks close together when a queue starts, and a
call can reach the vendor later than its dispatch (a slow worker). Alvys blocks a caller for
3 minutes for two payment calls within one second, so each worker also keeps its own calls on
a queue at least one interval apart. The global budget is Temporal's; this only smooths.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping


class Pacer:
    def __init__(self, intervals: Mapping[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        self._intervals = dict(intervals)
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._clock = clock

    async def wait(self, queue: str) -> None:
        """Return when a call on ``queue`` may start (at once for queues without an interval)."""
        interval = self._intervals.get(queue, 0.0)
        if interval <= 0:
            return
        lock = self._locks.setdefault(queue, asyncio.Lock())
        async with lock:
            delay = self._next.get(queue, 0.0) - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next[queue] = self._clock() + interval
