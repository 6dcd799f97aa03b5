"""Clocks of the loop: simulated time (as fast as possible) or wall time (paced, real robots)."""

from __future__ import annotations

import time

__all__ = ["Clock", "SimClock", "WallClock"]


class Clock:
    """Paces fast ticks. ``start()`` at reset, ``wait(k)`` before tick ``k``."""

    realtime = False

    def start(self) -> None:
        pass

    def wait(self, tick: int, period: float) -> None:
        pass


class SimClock(Clock):
    """No pacing: the backend's own time (MuJoCo's ``data.time``) is the clock."""


class WallClock(Clock):
    """Paces ticks to wall time with ``time.perf_counter``; counts overruns (late ticks).

    Sleeps coarsely, then spins the last ``spin`` seconds for sub-millisecond accuracy.

    :param spin: final busy-wait window [s].
    """

    realtime = True

    def __init__(self, spin: float = 0.0002) -> None:
        self.spin = spin
        self.overruns = 0
        self._t0 = time.perf_counter()

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self.overruns = 0

    def wait(self, tick: int, period: float) -> None:
        deadline = self._t0 + tick * period
        now = time.perf_counter()
        if now > deadline + period:
            self.overruns += 1
            return
        if deadline - now > self.spin:
            time.sleep(deadline - now - self.spin)
        while time.perf_counter() < deadline:
            pass
