"""The per-worker pacer: an even schedule that late wake-ups do not stretch, and never two calls
closer than the vendor's minimum gap."""

from __future__ import annotations

import asyncio
import itertools

from activities.pacing import Pacer


class LateClock:
    """A fake clock whose sleeps overshoot by ``late`` seconds (a busy event loop)."""

    def __init__(self, late: float) -> None:
        self.now = 0.0
        self.late = late

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds + self.late


def starts(pacer: Pacer, clock: LateClock, n: int, key: str = "q") -> list[float]:
    async def run() -> list[float]:
        out = []
        for _ in range(n):
            await pacer.wait(key)
            out.append(clock.now)
        return out

    return asyncio.run(run())


def test_late_wake_ups_do_not_accumulate() -> None:
    clock = LateClock(late=0.02)
    pacer = Pacer({"q": 1.02}, clock, min_gaps={"q": 1.0}, sleep=clock.sleep)
    times = starts(pacer, clock, 61)
    # 60 intervals of 1.02 s: 61.2 s, give or take one wake-up's lateness (not 60 of them).
    assert abs((times[-1] - times[0]) - 61.2) <= 0.021
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0  # the vendor's minimum gap holds whatever the lateness


def test_the_minimum_gap_holds_when_a_slot_was_missed() -> None:
    clock = LateClock(late=0.0)
    pacer = Pacer({"q": 1.0}, clock, min_gaps={"q": 0.9}, sleep=clock.sleep)

    async def run() -> list[float]:
        await pacer.wait("q")
        first = clock.now
        clock.now += 1.5  # this call's start was late (the slot at 1.0 passed)
        await pacer.wait("q")
        second = clock.now
        await pacer.wait("q")
        return [first, second, clock.now]

    first, second, third = asyncio.run(run())
    assert first == 0.0
    assert second == 1.5  # at once: its slot had passed
    assert third == 2.5  # the slot after 1.5 (now-anchored after a miss), not 2.0 (0.5 s after)


def test_an_idle_pacer_does_not_catch_up() -> None:
    clock = LateClock(late=0.0)
    pacer = Pacer({"q": 1.0}, clock, sleep=clock.sleep)

    async def run() -> list[float]:
        await pacer.wait("q")
        clock.now = 100.0  # idle for a long time
        out = []
        for _ in range(3):
            await pacer.wait("q")
            out.append(clock.now)
        return out

    assert asyncio.run(run()) == [100.0, 101.0, 102.0]  # no burst for the idle minutes


def test_keys_without_an_interval_are_not_paced() -> None:
    clock = LateClock(late=0.0)
    pacer = Pacer({"q": 1.0}, clock, sleep=clock.sleep)
    assert starts(pacer, clock, 5, key="other") == [0.0] * 5
