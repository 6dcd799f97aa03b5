"""``robot-brain bench --ros2``: the state-to-torque round trip over DDS on loopback.

Two processes, as a deployment rehearsal runs them: ``sim-robot`` publishes ``/joint_states`` at
the control rate and ``deploy`` (the full two-rate loop: limits reflex, envelope, impedance
controller, torque limiter; hold-still policy) answers each state with a torque. With the
config's ``command_stamp_topic`` the brain says which state each torque answers, and the robot
side measures, per answer, the time from publishing the state to receiving its answer (one
machine, one clock). Reported per rate: median, p99 and max round trip, answers later than one
period (deadline misses), states never answered, stale answers (a torque for a state older than
one already answered: must be 0), and the brain's own counters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["measure_round_trip"]

DOMAIN = 199  # loopback only; a domain of its own


def _config(folder: Path, hz: float, realtime_priority: int = 0) -> Path:
    path = folder / f"bench_{hz:g}.yaml"
    path.write_text(
        "robot_brain:\n  ros__parameters:\n"
        f"    control_hz: {hz:g}\n    state_hz: {hz:g}\n    policy_hz: 20.0\n"
        f"    realtime_priority: {realtime_priority:d}\n"
        "    command_stamp_topic: /robot_brain/command_stamp\n"
        f"    dds: {{domain_id: {DOMAIN}, interface: lo, peers: [127.0.0.1], multicast: false}}\n")
    return path


def _run_rate(folder: Path, hz: float, seconds: float, realtime_priority: int) -> dict[str, Any]:
    cfg = _config(folder, hz, realtime_priority)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CYCLONEDDS_URI", None)
    cmd = [sys.executable, "-m", "robot_brain"]
    robot_log = folder / f"robot_{hz:g}.log"
    with robot_log.open("w") as log:
        robot = subprocess.Popen([*cmd, "sim-robot", "--robot", str(cfg), "--transport", "dds"],
                                 stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        out = folder / f"deploy_{hz:g}.json"
        done = subprocess.run([*cmd, "deploy", "--robot", str(cfg), "--transport", "dds", "--policy",
                               "zero", "--duration", f"{seconds:g}", "--json", str(out)],
                              capture_output=True, text=True, env=env, timeout=seconds + 120)
        if done.returncode != 0:
            raise RuntimeError(f"deploy failed at {hz:g} Hz: {done.stderr.strip() or done.stdout}")
    finally:
        robot.send_signal(signal.SIGINT)
        robot.wait(timeout=30)
    status = json.loads([ln for ln in robot_log.read_text().splitlines() if ln.startswith("{")][-1])
    brain = json.loads(out.read_text())
    warnings = [ln for ln in (done.stderr + robot_log.read_text()).splitlines()
                if ln.startswith("warning: realtime_priority")]
    return {"control_hz": hz, "seconds": seconds, "realtime_priority": brain["realtime_priority"],
            "realtime_refused": warnings[:1], "round_trip": status["latency"],
            "brain": brain["backend"], "brain_events": brain["events"]}


def measure_round_trip(rates: Sequence[float], seconds: float,
                       realtime_priority: int = 0) -> list[dict[str, Any]]:
    """One measurement of ``seconds`` per rate in ``rates`` (each a sim-robot + deploy pair),
    both processes at ``realtime_priority`` (SCHED_FIFO; 0: normal scheduling)."""
    with tempfile.TemporaryDirectory(prefix="robot-brain-bench-") as tmp:
        results = []
        for hz in rates:
            results.append(_run_rate(Path(tmp), hz, seconds, realtime_priority))
            time.sleep(0.5)  # let the previous pair's participants leave the domain
        return results
