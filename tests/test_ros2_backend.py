"""``Ros2Backend`` against a scripted robot over real DDS on loopback: what it accepts, what it
rejects and counts, what it sends and when it sends nothing.

The "robot" is a DDS participant of the test publishing hand-made ``JointState`` messages
(wrong names, NaN, old stamps ...) and reading what the backend publishes. Loopback only
(domain 171, interface lo, multicast off); topics sit under a per-test namespace.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import mujoco
import numpy as np
import pytest

from robot_brain.cli import main
from robot_brain.controllers import Command, RobotModel
from robot_brain.envs import panda
from robot_brain.hardware.base import BackendError, NotActiveError
from robot_brain.hardware.ros2.backend import Ros2Backend
from robot_brain.hardware.ros2.config import RobotConfig
from robot_brain.hardware.ros2.dds import DdsTransport
from robot_brain.hardware.ros2.messages import (
    Float64MultiArray,
    Header,
    JointState,
    PoseStamped,
    time_from_sec,
)
from robot_brain.hardware.ros2.transport import COMMAND_QOS, NetworkConfig

DOMAIN = 171
NET = NetworkConfig.loopback(DOMAIN)
NAMES = list(panda.JOINT_NAMES)
_ns = itertools.count()
MODEL = mujoco.MjModel.from_xml_string(panda.build_mjcf(""))


class Robot:
    """The test's side of the wire: publishes joint states, collects what the brain sends."""

    def __init__(self, cfg: RobotConfig) -> None:
        self.tr = DdsTransport(NET)
        self.cfg = cfg
        self.pub = self.tr.publisher(cfg.joint_states_topic, JointState)
        if cfg.interface == "effort":
            self.cmds = self.tr.subscription(cfg.command_topic, Float64MultiArray, COMMAND_QOS)
        else:
            self.poses = self.tr.subscription(cfg.pose_topic, PoseStamped, COMMAND_QOS)
            self.stiff = self.tr.subscription(cfg.stiffness_topic, Float64MultiArray, COMMAND_QOS)
            self.damp = self.tr.subscription(cfg.damping_topic, Float64MultiArray, COMMAND_QOS)
        self.t = time.time()

    def state(self, q: Any = panda.HOME_Q, *, names: list[str] | None = None, dq: Any = None,
              t: float | None = None, effort: Any = None) -> JointState:
        if t is None:
            self.t += 0.001
            t = self.t
        q = list(map(float, q))
        return JointState(Header(time_from_sec(t), ""), list(names or NAMES), q,
                          [0.0] * len(q) if dq is None else list(map(float, dq)),
                          [] if effort is None else list(map(float, effort)))

    def send(self, msg: JointState) -> None:
        self.pub.publish(msg)

    def commands(self, wait: float = 0.3) -> list[list[float]]:
        end, out = time.monotonic() + wait, []
        while time.monotonic() < end:
            self.cmds.wait(0.02)
            out += [list(m.data) for m in self.cmds.take()]
        return out


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[Ros2Backend, Robot]]]:
    made: list[Any] = []

    def build(*, dry_run: bool = False, **options: Any) -> tuple[Ros2Backend, Robot]:
        ns = f"rb{os.getpid()}_{next(_ns)}"
        options.setdefault("connect_timeout", 3.0)
        # The test sends commands at its own pace, not within a control period of each state:
        # a generous deadline (test_a_late_command_is_withheld checks the default one).
        options.setdefault("command_deadline", 1.0)
        cfg = RobotConfig(joints=tuple(NAMES), joint_states_topic=f"/{ns}/joint_states",
                          effort_controller=f"{ns}_effort", pose_topic=f"/{ns}/pose",
                          stiffness_topic=f"/{ns}/stiffness", damping_topic=f"/{ns}/damping",
                          dds=NET, **options)
        robot = Robot(cfg)
        tr = DdsTransport(NET)
        backend = Ros2Backend(tr, cfg, RobotModel(MODEL, "ee", 7), dry_run=dry_run)
        made.extend([backend, tr, robot.tr])
        return backend, robot

    yield build
    for m in made:
        if isinstance(m, Ros2Backend):
            m.disconnect()
        else:
            m.close()


def _connect(backend: Ros2Backend, robot: Robot, first: JointState | None = None) -> None:
    """Publish a good state until the backend has configured (discovery takes a moment)."""
    import threading

    done = threading.Event()

    def feed() -> None:
        while not done.is_set():
            robot.send(first if first is not None else robot.state())
            time.sleep(0.005)

    th = threading.Thread(target=feed, daemon=True)
    th.start()
    try:
        backend.configure()
    finally:
        done.set()
        th.join()
    backend.activate()


def _settle(backend: Ros2Backend, robot: Robot, msgs: list[JointState]) -> None:
    for m in msgs:
        robot.send(m)
    time.sleep(0.15)
    backend.read()


def test_nothing_is_sent_before_a_plausible_state_and_connect_names_what_came(make):
    backend, robot = make(connect_timeout=1.0)
    wrong = robot.state(names=[n.upper() for n in NAMES])
    import threading

    stop = threading.Event()
    th = threading.Thread(target=lambda: [robot.send(wrong) or time.sleep(0.01)
                                          for _ in iter(stop.is_set, True)], daemon=True)
    th.start()
    with pytest.raises(BackendError, match=r"no plausible .*joint_states.*Rejected: joint_names \d+"):
        backend.configure()
    stop.set()
    th.join()
    with pytest.raises(NotActiveError):
        backend.write(np.zeros(7))
    assert robot.commands(0.2) == []


def test_joint_order_comes_from_the_names_and_extra_joints_are_ignored(make):
    backend, robot = make()
    _connect(backend, robot)
    q = np.arange(7) * 0.1
    names = [*NAMES[::-1], "finger_joint"]  # reversed, plus a gripper joint
    _settle(backend, robot, [robot.state([*q[::-1], 0.04], names=names, effort=np.arange(8.0))])
    s = backend.read()
    np.testing.assert_allclose(s.q, q)
    np.testing.assert_allclose(s.tau, np.arange(8.0)[:7][::-1])
    # Forward kinematics of the measured posture: the tool where the model puts it.
    d = mujoco.MjData(MODEL)
    d.qpos[:7] = q
    mujoco.mj_kinematics(MODEL, d)
    np.testing.assert_allclose(s.ee_pos, d.site("ee").xpos, atol=1e-12)


@pytest.mark.parametrize("bad, reason", [
    (lambda r: r.state(names=NAMES[:6], q=panda.HOME_Q[:6]), "joint_names"),  # a joint missing
    (lambda r: r.state(names=[*NAMES[:6], "elbow"]), "joint_names"),  # an unknown joint
    (lambda r: r.state(names=[*NAMES[:6], NAMES[0]]), "joint_names"),  # a name twice
    (lambda r: JointState(Header(time_from_sec(r.t + 1), ""), NAMES, [0.0] * 6, [], []), "lengths"),
    (lambda r: r.state([math.nan, *panda.HOME_Q[1:]]), "nonfinite"),
    (lambda r: r.state(dq=[math.inf] + [0.0] * 6), "nonfinite"),
    (lambda r: r.state(t=r.t - 0.5), "out_of_order"),  # older than the last accepted
    (lambda r: r.state(t=r.t), "out_of_order"),  # the same stamp twice
    (lambda r: r.state(dq=[50.0] + [0.0] * 6), "implausible"),
])
def test_bad_states_are_rejected_counted_and_move_nothing(make, bad, reason):
    backend, robot = make()
    _connect(backend, robot)
    good = backend.read().copy()
    backend.write(np.ones(7))  # answers the good state
    before = len(robot.commands(0.3))
    _settle(backend, robot, [bad(robot)])
    assert backend.rejected[reason] >= 1, backend.rejected
    s = backend.read()
    np.testing.assert_array_equal(s.q, good.q)  # the state did not change ...
    assert s.t == good.t
    backend.write(np.full(7, 2.0))  # ... so a command computed now is not sent
    assert backend.skipped >= 1 and len(robot.commands(0.3)) == 0 and before >= 1


def test_old_stamps_are_rejected_when_the_clocks_are_synchronised(make):
    backend, robot = make(max_state_age=0.5)
    _connect(backend, robot)
    time.sleep(0.8)
    # Newer than the last state, but stamped 0.8 s ago on a synchronised clock: a delayed
    # message, refused.
    _settle(backend, robot, [robot.state()])
    assert backend.rejected["old_stamp"] == 1, backend.rejected
    robot.t = time.time()
    _settle(backend, robot, [robot.state()])  # a fresh one is taken again
    assert backend.rejected["old_stamp"] == 1 and backend.accepted >= 2


def test_a_command_is_sent_once_per_state_and_never_nonfinite(make):
    backend, robot = make()
    _connect(backend, robot)
    backend.write(np.full(7, 1.5))
    backend.write(np.full(7, 2.5))  # same state: withheld
    with pytest.raises(ValueError, match="non-finite"):
        backend.write(np.array([np.nan] * 7))
    got = robot.commands()
    assert got == [[1.5] * 7] and backend.skipped == 1


def test_the_default_deadline_is_one_control_period(make):
    backend, _ = make(command_deadline=None, control_hz=500.0, policy_hz=20.0)
    assert backend._deadline == pytest.approx(0.002)


def test_a_late_command_is_withheld(make):
    backend, robot = make(command_deadline=0.02)
    _connect(backend, robot)
    time.sleep(0.05)  # the command is computed 50 ms after its state arrived: stale
    backend.write(np.ones(7))
    assert backend.late == 1 and backend.sent == 0 and robot.commands() == []
    _settle(backend, robot, [robot.state()])  # a fresh state: the next command goes out
    backend.write(np.ones(7))
    assert backend.sent == 1 and robot.commands() == [[1.0] * 7]


def test_dry_run_publishes_nothing(make):
    backend, robot = make(dry_run=True)
    _connect(backend, robot)
    backend.write(np.ones(7))
    assert backend.sent == 1 and robot.commands() == []


def test_hold_streams_a_ramped_gravity_hold_then_goes_silent(make):
    backend, robot = make(hold_stream=1.0)
    _connect(backend, robot)
    backend.write(np.zeros(7))
    robot.commands(0.2)
    backend.hold()
    backend.hold()
    got = robot.commands()
    assert len(got) == 2
    gravity = np.asarray(backend.model.bias)  # the hold's target at rest: gravity compensation
    step = np.abs(np.asarray(got[0])).max()
    assert step == pytest.approx(min(1.0, np.abs(gravity).max()))  # 1000 N m/s * 1 ms
    assert np.all(np.abs(np.diff(got, axis=0)) <= 1.0 + 1e-12)
    time.sleep(1.0)  # longer than hold_stream without any state: the robot is taken for gone
    backend.hold()
    assert robot.commands() == [] and backend.silent == 1


def test_impedance_interface_sends_pose_stiffness_and_damping(make):
    backend, robot = make(interface="impedance")
    _connect(backend, robot)
    sp = Command.cartesian([0.4, 0.1, 0.3], (0.0, 1.0, 0.0, 0.0), [400, 400, 400, 30, 30, 30], 0.7)
    backend.write_setpoint(sp)
    end = time.monotonic() + 3
    poses: list[Any] = []
    while time.monotonic() < end and not poses:
        robot.poses.wait(0.05)
        poses += robot.poses.take()
    (pose,) = poses
    assert (pose.pose.position.x, pose.pose.position.y, pose.pose.position.z) == (0.4, 0.1, 0.3)
    o = pose.pose.orientation
    assert (o.x, o.y, o.z, o.w) == (1.0, 0.0, 0.0, 0.0)  # ROS orders x, y, z, w
    time.sleep(0.1)
    (k,) = robot.stiff.take()
    (d,) = robot.damp.take()
    np.testing.assert_allclose(k.data, [400, 400, 400, 30, 30, 30])
    np.testing.assert_allclose(d.data, 2 * 0.7 * np.sqrt(k.data))
    with pytest.raises(BackendError, match="impedance interface"):
        backend.write(np.zeros(7))


@pytest.mark.parametrize("body, needle", [
    ("robot_brain:\n  ros__parameters:\n    jionts: [a]\n", "did you mean 'joints'"),
    ("robot_brain:\n  ros__parameters:\n    joints: [a, a, b, c, d, e, f]\n", "names a joint twice: a"),
    ("robot_brain:\n  ros__parameters:\n    dds: {domain_id: 999}\n", "dds.domain_id"),
    ("robot_brain:\n  ros__parameters:\n    control_hz: .nan\n", "control_hz must be finite"),
    ("robot_brain:\n  ros__parameters:\n    interface: torque\n", "interface must be one of"),
    ("robot_brain:\n  ros__parameters:\n    realtime_priority: 100\n", "realtime_priority = 100 is outside"),
    ("robot_brain:\n  ros__parameters:\n    realtime_priority: 50.5\n", "must be an integer"),
    ("robot_brain:\n  ros__parameters:\n    joints: [a, b]\n", "the config names 2"),
    ("robot_brain:\n  ros__parameters:\n    envelope: {max_speed: 50}\n", "max_speed"),
    ("robot_brain:\n  ros__parameters:\n    envelope: {max_sped: 0.5}\n", "did you mean 'max_speed'"),
    ("something_else: {}\n", "no 'robot_brain: ros__parameters:' block"),
    ("robot_brain: [\n", "not valid YAML"),
])
@pytest.mark.parametrize("verb", ["deploy", "sim-robot"])
def test_config_mistakes_are_one_line_usage_errors(tmp_path, capsys, body, needle, verb):
    if verb == "sim-robot" and "envelope" in body:
        pytest.skip("the envelope is the deploy command's section")
    cfg = tmp_path / "robot.yaml"
    cfg.write_text(body)
    assert main([verb, "--robot", str(cfg), "--transport", "dds"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err, err


def test_a_missing_robot_is_a_clear_failure_not_a_hang(tmp_path, capsys):
    cfg = tmp_path / "robot.yaml"
    cfg.write_text("robot_brain:\n  ros__parameters:\n    connect_timeout: 0.5\n"
                   f"    joint_states_topic: /nobody_{os.getpid()}/joint_states\n"
                   f"    dds: {{domain_id: {DOMAIN}, interface: lo, peers: [127.0.0.1], multicast: false}}\n")
    t0 = time.monotonic()
    assert main(["deploy", "--robot", str(cfg), "--transport", "dds"]) == 1
    assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err
    assert "is the robot running?" in err and "Traceback" not in err


def test_sim_robot_applies_commands_refuses_bad_ones_and_its_watchdog_holds():
    from robot_brain.hardware import MujocoBackend
    from robot_brain.hardware.ros2.sim_robot import SimRobot

    ns = f"rb{os.getpid()}_{next(_ns)}"
    cfg = RobotConfig(joint_states_topic=f"/{ns}/joint_states", effort_controller=f"{ns}_effort",
                      command_timeout=0.05, dds=NET)
    arm = MujocoBackend(mujoco.MjModel.from_xml_string(panda.build_mjcf("")))
    arm.set_state(panda.HOME_Q)
    robot_tr, brain_tr = DdsTransport(NET), DdsTransport(NET)
    try:
        robot = SimRobot(robot_tr, cfg, arm)
        arm.activate()
        pub = brain_tr.publisher(cfg.command_topic, Float64MultiArray)
        tau = np.linspace(1.0, 7.0, 7) * 0.1
        end = time.monotonic() + 5
        while robot.commands == 0 and time.monotonic() < end:  # until discovery is done
            pub.publish(Float64MultiArray(data=tau.tolist()))
            time.sleep(0.01)
            robot.tick(time.time())
        assert robot.commands > 0
        np.testing.assert_allclose(arm.data.ctrl[:7], tau)  # applied as sent
        pub.publish(Float64MultiArray(data=(2 * tau).tolist()))
        pub.publish(Float64MultiArray(data=[1.0] * 6))  # wrong length
        pub.publish(Float64MultiArray(data=[math.nan] * 7))
        time.sleep(0.03)
        robot.tick(time.time())
        assert robot.rejected == {"command_length": 1, "command_nonfinite": 1}
        np.testing.assert_allclose(arm.data.ctrl[:7], 2 * tau)  # the last good one, not the bad
        held = robot.holding_ticks
        robot.tick(time.time() + 0.06)  # no command for longer than the watchdog's timeout
        assert robot.holding_ticks == held + 1 and arm.holding
    finally:
        robot_tr.close()
        brain_tr.close()


@pytest.mark.parametrize("busy_wait", [False, True])
def test_read_waits_one_period_for_the_next_state_then_counts_a_miss(make, busy_wait):
    backend, robot = make(busy_wait=busy_wait)
    _connect(backend, robot)
    time.sleep(0.05)
    backend.read()  # whatever was still in flight from the connect
    backend.write(np.zeros(7))  # ... is answered
    misses = backend.deadline_misses
    t0 = time.perf_counter()
    backend.read()  # nothing new comes: one period (1 ms) of waiting, then a miss
    assert backend.deadline_misses == misses + 1 and time.perf_counter() - t0 >= 0.001
    robot.send(robot.state(q=panda.HOME_Q + 0.01))
    end = time.monotonic() + 3
    while backend.accepted < 2 and time.monotonic() < end:
        backend.read()
    np.testing.assert_allclose(backend.read().q, panda.HOME_Q + 0.01)


def test_a_torque_after_the_robots_watchdog_held_ramps_from_the_torque_it_reports(make):
    """Within the robot's command_timeout the brain's torque goes out as computed. After a gap
    longer than that (the brain stalled; the robot's watchdog has held since) it ramps from the
    torque the robot reports, 1000 N m/s x 1 ms, not from the last one sent."""
    backend, robot = make(command_timeout=0.5)
    _connect(backend, robot)
    backend.write(np.full(7, 5.0))
    _settle(backend, robot, [robot.state(effort=[2.0] * 7)])  # 0.15 s: within the watchdog
    backend.write(np.full(7, 5.0))
    assert backend.watchdog_resumes == 0
    time.sleep(0.6)  # the brain stalls past the watchdog; the robot's hold applies 2 N m
    _settle(backend, robot, [robot.state(effort=[2.0] * 7)])
    applied = backend.write(np.full(7, 5.0))
    assert backend.watchdog_resumes == 1
    np.testing.assert_allclose(applied, 3.0)
    assert robot.commands() == [[5.0] * 7, [5.0] * 7, [3.0] * 7]


_SCHEDULER = """
import json, os, sys, tempfile, time
from pathlib import Path
from robot_brain.hardware.ros2.recorder import FlightRecorder
from robot_brain.runtime import use_realtime_priority
why = use_realtime_priority(int(sys.argv[1]))
with tempfile.TemporaryDirectory() as tmp:
    rec = FlightRecorder(Path(tmp) / "run")  # its writer thread starts now
    time.sleep(0.2)
    writer = os.sched_getscheduler(rec._thread.native_id)
    rec.close()
print(json.dumps({"why_not": why, "fifo": os.sched_getscheduler(0) == os.SCHED_FIFO,
                  "priority": os.sched_getparam(0).sched_priority,
                  "writer_normal": writer == os.SCHED_OTHER}))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="no SCHED_FIFO on this platform")
@pytest.mark.parametrize("priority", [0, 10])
def test_realtime_priority_is_applied_or_says_why_not(priority):
    """In a process of its own (a real-time test runner could starve the machine): SCHED_FIFO at
    the priority asked for, or a one-line reason and normal scheduling; 0 leaves it alone. The
    flight recorder's writer thread, started afterwards, gives the priority back."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SCHEDULER, str(priority)], capture_output=True,
                         text=True, timeout=60, check=True)
    got = json.loads(out.stdout)
    assert got["writer_normal"], got
    if priority == 0 or got["why_not"] is not None:
        assert not got["fifo"] and got["priority"] == 0, got
        assert priority == 0 or ("SCHED_FIFO refused" in got["why_not"] and "\n" not in got["why_not"])
    else:
        assert got["fifo"] and got["priority"] == priority, got


def test_a_refused_realtime_priority_warns_in_one_line_and_runs_on(monkeypatch, capsys):
    from robot_brain.cli._ros import enter_realtime

    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert enter_realtime(RobotConfig(realtime_priority=50)) is False
    err = capsys.readouterr().err.strip()
    assert err.startswith("warning: realtime_priority 50 not applied, running at normal priority")
    assert "Operation not permitted" in err and "\n" not in err
    assert enter_realtime(RobotConfig()) is False and capsys.readouterr().err == ""  # 0: off, silent
