"""End to end over real DDS traffic on loopback: ``sim-robot`` in one process, ``deploy`` in
another, as a user rehearses a deployment on one machine.

Everything stays on 127.0.0.1 (interface lo, multicast off, a unicast peer: the configuration of
docs/deploy_ros2.md); each test uses its own DDS domain so nothing crosses between tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)


def _config(tmp_path: Path, domain: int, **extra: object) -> Path:
    lines = ["robot_brain:", "  ros__parameters:",
             f"    dds: {{domain_id: {domain}, interface: lo, peers: [127.0.0.1], multicast: false}}"]
    lines += [f"    {k}: {json.dumps(v)}" for k, v in extra.items()]
    path = tmp_path / f"robot_{domain}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _start(*args: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CYCLONEDDS_URI", None)  # the config's loopback settings, nothing inherited
    return subprocess.Popen([sys.executable, "-m", "robot_brain", *args], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, env=env)


def _wait_for(path: Path, text: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path.name} after {timeout} s:\n{path.read_text()}")


def _status(log: Path) -> dict:
    line = [ln for ln in log.read_text().splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


@pytest.mark.parametrize("interface", ["effort", "impedance"])
def test_shielded_policy_reaches_the_goal_over_dds(tmp_path, interface):
    cfg = _config(tmp_path, 161 if interface == "effort" else 163, interface=interface)
    robot = _start("sim-robot", "--robot", str(cfg), "--transport", "dds", "--duration", "60",
                   log=tmp_path / "robot.log")
    try:
        out = tmp_path / "deploy.json"
        bag = tmp_path / "run.mcap"
        done = subprocess.run(
            [sys.executable, "-m", "robot_brain", "deploy", "--robot", str(cfg), "--transport", "dds",
             "--policy", "scripted", "--task", "reach", "--shield", "limits", "--seed", "2",
             "--json", str(out), "--record", str(bag)],
            capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        robot.send_signal(signal.SIGINT)
        robot.wait(timeout=20)
    report = json.loads(out.read_text())
    (ep,) = report["episodes"]
    assert ep["success"] and ep["goal_distance"] < 0.02, report
    b = report["backend"]
    assert b["accepted"] > 500 and b["rejected"] == {} and b["sent"] > 500
    # Commands reach the robot: it was driven (not holding) for most of the run.
    st = _status(tmp_path / "robot.log")
    assert st["commands"] > 0.8 * b["sent"] - 50, st
    # The flight recorder holds every topic, readable by an independent ROS 2 bag reader.
    from rosbags.rosbag2 import Reader

    from robot_brain.hardware.ros2.recorder import bag_dir

    with Reader(bag_dir(bag)) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    topics = ["/joint_states", "/robot_brain/setpoint", "/robot_brain/stiffness",
              "/robot_brain/damping_ratio", "/robot_brain/status"]
    if interface == "effort":
        topics.append("/effort_controller/commands")
    for topic in topics:
        assert counts.get(topic, 0) > 0, (topic, counts)


def test_a_brain_stalled_past_the_robots_watchdog_resumes_without_a_jump(tmp_path):
    """The deploy process is stopped (SIGSTOP) for 0.2 s in the middle of a reach: longer than
    the robot's 50 ms watchdog, which holds the arm on its own and moves the applied torque
    away from the brain's last command. The brain sees the gap across processes and ramps its
    next torque from the torque the robot reports (the ramp itself:
    test_ros2_backend::test_a_torque_after_the_robots_watchdog_held_ramps_from_the_torque_it_reports).
    The step the robot then receives depends on how far its hold moved while the state and the
    command were in flight: 0.97-1.00 N m on a quiet machine (1.2-2.0 N m before the ramp), 2.2
    N m once under a loaded CI run, so it is reported, not bounded, here."""
    cfg = _config(tmp_path, 163, state_timeout=0.05)
    robot = _start("sim-robot", "--robot", str(cfg), "--transport", "dds", log=tmp_path / "robot.log")
    out = tmp_path / "deploy.json"
    deploy = _start("deploy", "--robot", str(cfg), "--transport", "dds", "--policy", "scripted",
                    "--task", "reach", "--duration", "5", "--json", str(out), log=tmp_path / "deploy.log")
    try:
        _wait_for(tmp_path / "deploy.log", "connected", 30)
        time.sleep(1.5)  # the arm is moving toward the goal
        deploy.send_signal(signal.SIGSTOP)
        time.sleep(0.2)
        deploy.send_signal(signal.SIGCONT)
        deploy.wait(timeout=60)
        robot.send_signal(signal.SIGINT)
        robot.wait(timeout=20)
    finally:
        for p in (robot, deploy):
            if p.poll() is None:
                p.kill()
    assert deploy.returncode == 0, (tmp_path / "deploy.log").read_text()
    st = _status(tmp_path / "robot.log")
    report = json.loads(out.read_text())
    assert st["resumes"] >= 2 and st["holding_ticks"] > 100, st  # the watchdog held mid-run
    assert report["backend"]["watchdog_resumes"] >= 1, report["backend"]
    print("max resume step [N m]:", st["max_resume_step"])


def test_deploy_holds_when_the_robot_dies_and_resumes_without_a_jump(tmp_path):
    timeout = 0.05
    cfg = _config(tmp_path, 162, state_timeout=timeout)
    robot = _start("sim-robot", "--robot", str(cfg), "--transport", "dds", log=tmp_path / "robot1.log")
    out = tmp_path / "deploy.json"
    deploy = _start("deploy", "--robot", str(cfg), "--transport", "dds", "--policy", "scripted",
                    "--task", "reach", "--duration", "8", "--json", str(out),
                    "--record", str(tmp_path / "flight.mcap"), log=tmp_path / "deploy.log")
    robot2 = None
    try:
        _wait_for(tmp_path / "deploy.log", "connected", 30)
        time.sleep(1.5)  # the arm is moving toward the goal
        robot.kill()  # SIGKILL: no goodbye on the wire
        robot.wait()
        _wait_for(tmp_path / "deploy.log", "HOLD (stale_state)", 5)
        time.sleep(0.5)
        # The robot comes back at its home posture, away from where the arm was.
        robot2 = _start("sim-robot", "--robot", str(cfg), "--transport", "dds",
                        log=tmp_path / "robot2.log")
        deploy.wait(timeout=60)
        robot2.send_signal(signal.SIGINT)
        robot2.wait(timeout=20)
    finally:
        for p in (robot, deploy, robot2):
            if p is not None and p.poll() is None:
                p.kill()
    assert deploy.returncode == 0, (tmp_path / "deploy.log").read_text()
    report = json.loads(out.read_text())
    (hold,) = report["holds"]  # one hold, for the stale state, and it said so
    assert hold["reason"] == "stale_state"
    assert timeout <= hold["since_last_state"] <= timeout + 0.05, hold
    # It resumed: states from the new robot were accepted and commands sent to it ...
    st = _status(tmp_path / "robot2.log")
    assert st["commands"] > 1000, st
    # ... without a jump: consecutive commands differ by at most the brain's rate limit per tick
    # (1000 N m/s: 1 N m), also at the hand-over from the robot's own hold (plus what that hold
    # changed during the 1-2 ticks of round trip), and the arm moved slowly.
    assert st["max_torque_step"] <= 1.1, str({k: v for k, v in st.items() if k != "latency"})
    assert st["max_joint_speed"] < 1.0, st
    assert report["backend"]["rejected"] == {}
    # The flight recording holds the hold event, readable by an independent bag reader.
    from rosbags.rosbag2 import Reader

    from robot_brain.hardware.ros2.messages import String

    with Reader(tmp_path / "flight") as reader:
        events = [json.loads(String.deserialize(bytes(raw)).data)["reason"]
                  for conn, _t, raw in reader.messages() if conn.topic == "/robot_brain/events"]
    assert events.count("stale_state") == 1, events


def test_ctrl_c_holds_the_arm_and_still_reports(tmp_path):
    cfg = _config(tmp_path, 164)
    robot = _start("sim-robot", "--robot", str(cfg), "--transport", "dds", log=tmp_path / "robot.log")
    out = tmp_path / "deploy.json"
    deploy = _start("deploy", "--robot", str(cfg), "--transport", "dds", "--policy", "zero",
                    "--json", str(out), log=tmp_path / "deploy.log")
    try:
        _wait_for(tmp_path / "deploy.log", "connected", 30)
        time.sleep(1.0)
        deploy.send_signal(signal.SIGINT)  # Ctrl-C
        code = deploy.wait(timeout=30)
        # (once in CI, 2026-12-03: -11, a segfault before the handler printed; the log now
        # holds the Python stacks of such a crash)
        assert code == 130, (tmp_path / "deploy.log").read_text()
    finally:
        for p in (deploy, robot):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                p.wait(timeout=20)
    log = (tmp_path / "deploy.log").read_text()
    assert "interrupted: holding the arm" in log and "Traceback" not in log
    report = json.loads(out.read_text())
    assert report["interrupted"] is True
    b = report["backend"]
    assert b["holding"] and b["lifecycle"] == "finalized"  # it left the arm in hold
    # The hold was streamed: 0.2 s of it at 1 kHz before disconnecting (one per state).
    assert b["holds_sent"] >= 100, b


def test_a_hard_crash_leaves_a_python_stack_in_the_log(tmp_path):
    """deploy and sim-robot call report_crashes(): a SIGSEGV inside a C library prints every
    thread's Python stack instead of a bare exit code -11 (a real segfault, in a subprocess)."""
    code = ("from robot_brain.cli._ros import report_crashes\n"
            "report_crashes()\n"
            "import ctypes\n"
            "def inside_the_loop():\n"
            "    ctypes.string_at(0)\n"
            "inside_the_loop()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGSEGV
    assert "Segmentation fault" in r.stderr and "inside_the_loop" in r.stderr
