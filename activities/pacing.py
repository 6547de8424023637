"""A per-process pacer: vendor calls on each rate-limited endpoint kept to an even schedule.

Temporal paces each vendor queue for all workers together (the queue's rate limit, or
``max_task_queue_activities_per_second``), but its limiter may hand out two tasks close
together when a queue starts, and a call can reach the vendor later than its dispatch (a slow
worker). Alvys blocks a caller for 3 minutes for two payment calls within one second, so each
worker also keeps its own calls on an endpoint on an even schedule. The global budget is
Temporal's; this only smooths.

The schedule is anchored on itself: the next call's slot is the previous slot plus the
interval (or now, when the pacer was idle), not the moment the previous call actually began.
A late wake-up (an event loop busy for a few milliseconds) therefore delays one call, not
every call after it, which is what kept the measured use of the budget below its aim
(docs/benchmarks.md). So that an anchored schedule can never put two calls closer than the
vendor allows, a call also waits ``min_gap`` after the previous call's actual start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping


class Pacer:
    """Pacing per key (a vendor queue's name): ``intervals`` seconds between slots, and at least
    ``min_gaps`` seconds (default: none) between actual starts."""

    def __init__(
        self,
        intervals: Mapping[str, float],
        clock: Callable[[], float] = time.monotonic,
        *,
        min_gaps: Mapping[str, float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._intervals = dict(intervals)
        self._min_gaps = dict(min_gaps or {})
        self._slot: dict[str, float] = {}
        self._started: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._clock = clock
        self._sleep = sleep

    async def wait(self, key: str) -> None:
        """Return when a call on ``key`` may start (at once for keys without an interval)."""
        interval = self._intervals.get(key, 0.0)
        if interval <= 0:
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            now = self._clock()
            # The slot after the previous one, or now when idle (no catching up on idle time).
            previous = self._slot.get(key)
            slot = now if previous is None else max(previous + interval, now)
            start = max(slot, self._started.get(key, -float("inf")) + self._min_gaps.get(key, 0.0))
            if start > now:
                await self._sleep(start - now)
            self._slot[key] = slot
            self._started[key] = self._clock()
