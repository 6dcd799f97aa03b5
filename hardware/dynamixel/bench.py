"""Round-trip benchmarks of the bus and the backend against the virtual chain (timing lives here,
not in tests), in either control mode.

The virtual chain runs in a thread of the same process, so it shares the GIL with the bus: the
numbers bound the Python overhead of a tick, not what a real 1 Mbps bus gives (there, 6 replies
of 15 bytes plus the request take ~1.5 ms on the wire, plus each servo's return delay).

``python -m robot_brain.hardware.dynamixel.bench [--seconds S] [--mode current|position|both]``
prints both measurements as JSON. The full two-rate loop (controller, limits) on the bus is timed
by ``robot-brain bench --serial``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

from ..base import BackendError
from . import control_table as ct
from .backend import DynamixelBackend
from .bus import BusError, DynamixelBus
from .calibration import Calibration
from .virtual import Faults, VirtualServoChain

__all__ = ["BENCH_MODELS", "main", "measure_backend_tick", "measure_round_trip"]

#: The servo model each control mode is timed on: an XM430 in current mode, an XL430 (no current
#: control) in position mode.
BENCH_MODELS = {"current": ct.XM430_W350.model_number, "position": ct.XL430_W250.model_number}
_STATE_START = ct.PRESENT_CURRENT.address
_STATE_LEN = ct.PRESENT_POSITION.address + ct.PRESENT_POSITION.size - _STATE_START  # 10 bytes


def _summary(ticks_s: Sequence[float], seconds: float) -> dict[str, Any]:
    ms = sorted(t * 1e3 for t in ticks_s)
    n = len(ms)
    return {"ticks": n,
            "median_ms": statistics.median(ms) if ms else float("nan"),
            "p99_ms": ms[min(n - 1, int(0.99 * n))] if ms else float("nan"),
            "max_ms": ms[-1] if ms else float("nan"),
            "rate_hz": n / seconds}


def measure_round_trip(n_servos: int = 6, seconds: float = 5.0, *, faults: Faults | None = None,
                       timeout: float = 0.02, retries: int = 2, mode: str = "current") -> dict[str, Any]:
    """Run sync_read(Present_Current..Present_Position) + sync_write(Goal_Current), or with
    ``mode="position"`` + sync_write(Goal_Position) to XL430s, as fast as possible for
    ``seconds``; the per-tick time (median, p99, max) [ms], achieved rate [Hz], and the bus
    counters."""
    if mode not in BENCH_MODELS:
        raise ValueError(f"mode must be one of {', '.join(BENCH_MODELS)}, got {mode!r}")
    ids = list(range(1, n_servos + 1))
    ticks: list[float] = []
    errors = 0
    with VirtualServoChain(ids, BENCH_MODELS[mode], faults=faults) as chain, \
            DynamixelBus(chain.path, timeout=timeout, retries=retries) as bus:
        if mode == "position":
            bus.set_operating_mode(ids, ct.OperatingMode.POSITION)
            item = ct.GOAL_POSITION
            goal = {i: item.encode(chain.servos[i].ticks()) for i in ids}  # hold where they are
        else:
            bus.set_operating_mode(ids, ct.OperatingMode.CURRENT)
            item = ct.GOAL_CURRENT
            goal = {i: item.encode(0) for i in ids}
        bus.torque_enable(ids, True)
        t_end = time.perf_counter() + seconds
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end:
                break
            try:
                bus.sync_read(_STATE_START, _STATE_LEN, ids)
                bus.sync_write(item.address, item.size, goal)
            except BusError:
                errors += 1
            ticks.append(time.perf_counter() - t0)
        stats = bus.stats
    return {"n_servos": n_servos, "mode": mode, **_summary(ticks, seconds),
            "retries": stats.retries, "timeouts": stats.timeouts, "crc_errors": stats.crc_errors,
            "bus_errors": errors}


def measure_backend_tick(mode: str = "position", seconds: float = 5.0, n_servos: int = 6, *,
                         faults: Faults | None = None, stiffness: float = 10.0,
                         control_dt: float = 0.002) -> dict[str, Any]:
    """Time :class:`DynamixelBackend` ticks, unpaced: ``read()``, a joint spring-damper holding
    the start posture (``stiffness`` [N m/rad], a tenth of it as damping), ``write()``; a failed
    read is a ``hold()``, as in the control loop. In position mode ``write`` includes the torque
    to goal-position mapping (bound, speed limit, range). The brain's controller, limits and
    reflex are not in it (``robot-brain bench --serial`` times the whole loop)."""
    ids = list(range(1, n_servos + 1))
    model = BENCH_MODELS[mode] if mode in BENCH_MODELS else None
    if model is None:
        raise ValueError(f"mode must be one of {', '.join(BENCH_MODELS)}, got {mode!r}")
    ticks: list[float] = []
    with VirtualServoChain(ids, model) as chain:
        backend = DynamixelBackend(DynamixelBus(chain.path), Calibration.default(ids, model),
                                   control_dt=control_dt, control_mode=mode)
        holds = 0
        try:
            backend.activate()
            q0 = backend.read().q.copy()
            if faults is not None:
                chain.faults = faults
            clock = time.perf_counter
            t_start = clock()
            while (elapsed := clock() - t_start) < seconds:
                t0 = clock()
                try:
                    s = backend.read()
                    backend.write(stiffness * (q0 - s.q) - 0.1 * stiffness * s.dq)
                except BackendError:
                    backend.hold()
                    holds += 1
                ticks.append(clock() - t0)
            chain.faults = Faults()
            backend.deactivate()
        finally:
            backend.disconnect()
    return {"n_servos": n_servos, "mode": mode, **_summary(ticks, elapsed), "holds": holds,
            "read_errors": backend.read_errors, "goal_rate_limited": backend.goal_rate_limited}


def main(argv: Sequence[str] | None = None) -> int:
    """Print the round trip and the backend tick of each mode as JSON."""
    parser = argparse.ArgumentParser(prog="python -m robot_brain.hardware.dynamixel.bench",
                                     description="Time the Dynamixel bus and backend against the "
                                                 "virtual chain (6 servos on a pty).")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--mode", choices=("current", "position", "both"), default="both")
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error(f"argument --seconds: must be > 0, got {args.seconds}")
    modes = ("current", "position") if args.mode == "both" else (args.mode,)
    out = {m: {"round_trip": measure_round_trip(6, args.seconds, mode=m),
               "backend_tick": measure_backend_tick(m, args.seconds)} for m in modes}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
