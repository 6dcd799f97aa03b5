"""Clocks of the loop: simulated time (as fast as possible) or wall time (paced, real robots)."""

from __future__ import annotations

import os
import time
from typing import Protocol

__all__ = ["Clock", "SimClock", "WallClock", "use_realtime_priority"]


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


def use_realtime_priority(priority: int) -> str | None:
    """Run the calling thread, and every thread it starts afterwards, under Linux's ``SCHED_FIFO``
    at ``priority`` (1-99; 0: leave the scheduling alone), as ros2_control's controller manager
    runs its loop. Threads started later (a DDS participant's) inherit it, so call it first.

    A real-time thread is not preempted by ordinary ones: on a machine busy with other work the
    loop still wakes when its joint state arrives. Returns ``None`` when applied (or 0), else
    why not, in one line (it needs root, ``CAP_SYS_NICE`` or an ``rtprio`` limit).
    """
    if priority <= 0:
        return None
    if not hasattr(os, "sched_setscheduler"):
        return "this platform has no SCHED_FIFO scheduling"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:
        return (f"SCHED_FIFO refused ({exc.strerror or exc}): it needs root, CAP_SYS_NICE or an "
                f"rtprio limit of at least {priority}")
    return None
