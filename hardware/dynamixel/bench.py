"""Round-trip benchmark of the bus against the virtual chain (timing lives here, not in tests).

The virtual chain runs in a thread of the same process, so it shares the GIL with the bus: the
numbers bound the Python overhead of a tick, not what a real 1 Mbps bus gives (there, 6 replies
of 15 bytes plus the request take ~1.5 ms on the wire, plus each servo's return delay).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from .bus import BusError, DynamixelBus
from .control_table import GOAL_CURRENT, PRESENT_CURRENT, PRESENT_POSITION, OperatingMode
from .virtual import Faults, VirtualServoChain

__all__ = ["measure_round_trip"]


def measure_round_trip(n_servos: int = 6, seconds: float = 5.0, *, faults: Faults | None = None,
                       timeout: float = 0.02, retries: int = 2) -> dict[str, Any]:
    """Run sync_read(Present_Current..Present_Position) + sync_write(Goal_Current) as fast as
    possible for ``seconds``; the per-tick time (median, p99, max) [ms], achieved rate [Hz],
    and the bus counters."""
    ids = list(range(1, n_servos + 1))
    start = PRESENT_CURRENT.address
    length = PRESENT_POSITION.address + PRESENT_POSITION.size - start  # current, velocity, position
    ticks: list[float] = []
    errors = 0
    with VirtualServoChain(ids, faults=faults) as chain, \
            DynamixelBus(chain.path, timeout=timeout, retries=retries) as bus:
        bus.set_operating_mode(ids, OperatingMode.CURRENT)
        bus.torque_enable(ids, True)
        zero = {i: GOAL_CURRENT.encode(0) for i in ids}
        t_end = time.perf_counter() + seconds
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end:
                break
            try:
                bus.sync_read(start, length, ids)
                bus.sync_write(GOAL_CURRENT.address, GOAL_CURRENT.size, zero)
            except BusError:
                errors += 1
            ticks.append(time.perf_counter() - t0)
        stats = bus.stats
    ms = sorted(t * 1e3 for t in ticks)
    n = len(ms)
    return {
        "n_servos": n_servos,
        "ticks": n,
        "median_ms": statistics.median(ms) if ms else float("nan"),
        "p99_ms": ms[min(n - 1, int(0.99 * n))] if ms else float("nan"),
        "max_ms": ms[-1] if ms else float("nan"),
        "rate_hz": n / seconds,
        "retries": stats.retries,
        "timeouts": stats.timeouts,
        "crc_errors": stats.crc_errors,
        "bus_errors": errors,
    }
