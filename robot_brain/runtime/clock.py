"""Clocks of the loop: simulated time (as fast as possible) or wall time (paced, real robots)."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SimClock", "WallClock"]


class Clock(Protocol):
    """Paces fast ticks: ``start()`` at reset, ``wait(tick, period)`` before tick ``tick``."""

    def start(self) -> None: ...

    def wait(self, tick: int, period: float) -> None: ...


class SimClock:
    """No pacing: the backend's own time (MuJoCo's ``data.time``) is the clock."""

    def start(self) -> None:
        pass

    def wait(self, tick: int, period: float) -> None:
        pass


class WallClock:
    """Paces ticks to wall time with ``time.perf_counter``; counts overruns (ticks that started
    more than one period late, which it does not try to catch up).

    Sleeps coarsely, then spins the last ``spin`` seconds for sub-millisecond accuracy. This is
    the clock of a loop that drives a real robot.

    :param spin: final busy-wait window [s].
    """

    def __init__(self, spin: float = 0.0002) -> None:
        if not 0 <= spin < 0.01:
            raise ValueError(f"spin must be in [0, 0.01) s, got {spin}")
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
