"""``SimRobot``: the MuJoCo arm exposed as a ros2_control robot, for rehearsing a deployment on
one machine (``robot-brain sim-robot``).

Like a ros2_control system with ``joint_state_broadcaster`` and one command controller, it
publishes ``sensor_msgs/JointState`` at ``state_hz`` (stamped with the wall clock, like the
controller manager's time) and takes either effort commands (``std_msgs/Float64MultiArray`` on
``/<effort_controller>/commands``, in the config's joint order) or, with the ``impedance``
interface, equilibrium pose + stiffness + damping for the impedance law it runs itself
(:class:`~robot_brain.hardware.MujocoImpedanceBackend`). Unlike a forward-command controller it
has a watchdog: without a fresh command for ``command_timeout`` it holds (gravity compensation
and damping), so a brain that dies does not leave a torque applied forever.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_brain.controllers.types import Command

from ..mujoco_backend import MujocoBackend
from .config import RobotConfig
from .messages import (
    Float64MultiArray,
    Header,
    JointState,
    PoseStamped,
    Vector3,
    Wrench,
    WrenchStamped,
    time_from_sec,
)
from .transport import COMMAND_QOS, STATE_QOS, Qos, Transport

if TYPE_CHECKING:
    from threading import Event

    from .recorder import FlightRecorder

__all__ = ["SimRobot"]


class SimRobot:
    """Serve ``backend`` (the simulated arm) on ``transport`` as the robot ``config`` describes.

    :param transport: the ROS 2 participant.
    :param config: joints, topics, rates, watchdog.
    :param backend: a :class:`MujocoBackend` (effort) or ``MujocoImpedanceBackend`` (impedance),
        already at its start posture; its ``dt`` is the physics/control period.
    :param recorder: records the published joint states and the commands received.
    """

    def __init__(self, transport: Transport, config: RobotConfig, backend: MujocoBackend, *,
                 recorder: FlightRecorder | None = None) -> None:
        if backend.interface != config.interface:
            raise ValueError(f"the robot config asks for the {config.interface} interface, the "
                             f"simulated arm has {backend.interface}")
        if backend.n_joints != config.n_joints:
            raise ValueError(f"the robot config names {config.n_joints} joints, the arm has "
                             f"{backend.n_joints}")
        self.transport, self.config, self.backend, self.recorder = transport, config, backend, recorder
        self.rejected: Counter[str] = Counter()
        self.commands = 0
        self.published = 0
        self.holding_ticks = 0
        # Largest change between consecutive commands received (the first one after a hold is
        # compared with the torque the hold applied) [N m]: what the brain's rate limit bounds.
        self.max_torque_step = 0.0
        self.max_resume_step = 0.0  # the same, for the first command after a hold only [N m]
        self.resumes = 0  # commands that ended a hold
        self.max_joint_speed = 0.0  # fastest joint while commanded [rad/s]
        self._state_pub = transport.publisher(config.joint_states_topic, JointState, STATE_QOS)
        self._wrench_pub = (transport.publisher(config.wrench_topic, WrenchStamped, STATE_QOS)
                            if config.wrench_topic else None)
        self._subs: dict[str, Any] = {}
        # With latency diagnostics every command is paired with its stamp in order: keep them all.
        cmd_qos = Qos(reliable=True, depth=10_000) if config.command_stamp_topic else COMMAND_QOS
        if config.interface == "effort":
            self._subs["command"] = transport.subscription(config.command_topic, Float64MultiArray,
                                                           cmd_qos)
        else:
            self._subs["pose"] = transport.subscription(config.pose_topic, PoseStamped, COMMAND_QOS)
            self._subs["stiffness"] = transport.subscription(config.stiffness_topic, Float64MultiArray,
                                                             COMMAND_QOS)
            self._subs["damping"] = transport.subscription(config.damping_topic, Float64MultiArray,
                                                           COMMAND_QOS)
        # Latency diagnostics (config.command_stamp_topic): when each answer arrived.
        self._stamps = (transport.subscription(config.command_stamp_topic, Header, cmd_qos)
                        if config.command_stamp_topic else None)
        self._arrivals: list[float] = []  # wall time each command arrived (effort interface)
        self._answers: list[tuple[float, bool]] = []  # (stamp of the state answered, is a hold)
        n = config.n_joints
        self._tau = np.zeros(n)
        self._last_command = -math.inf  # wall time of the last valid command
        self._pose: tuple[np.ndarray, np.ndarray] | None = None
        self._k = np.full(6, np.nan)
        self._d = np.full(6, np.nan)
        self._msg = JointState(header=Header(frame_id=""), name=list(config.joints))

    # -- commands ----------------------------------------------------------------------------
    def _vector(self, msg: Float64MultiArray, n: int, what: str) -> np.ndarray | None:
        v = np.asarray(msg.data, dtype=np.float64)
        if v.shape != (n,):
            self.rejected[f"{what}_length"] += 1
            return None
        if not np.isfinite(v).all():
            self.rejected[f"{what}_nonfinite"] += 1
            return None
        return v

    def _take_commands(self, now: float) -> None:
        if self.config.interface == "effort":
            self._take_efforts(now)
        else:
            self._take_setpoints(now)

    def _take_efforts(self, now: float) -> None:
        for msg in self._subs["command"].take():
            if self._stamps is not None:
                self._arrivals.append(time.time())
            v = self._vector(msg, self.config.n_joints, "command")
            if v is None:
                continue
            held = now - self._last_command > self.config.command_timeout
            ref = self.backend.read().tau if held else self._tau
            step = float(np.abs(v - ref).max())
            self.max_torque_step = max(self.max_torque_step, step)
            if held:
                self.max_resume_step = max(self.max_resume_step, step)
                self.resumes += 1
            self._tau[:] = v
            self._last_command = now
            self.commands += 1
            if self.recorder is not None:
                self.recorder.record(self.config.command_topic, msg, now)

    def _take_setpoints(self, now: float) -> None:
        for msg in self._subs["stiffness"].take():
            v = self._vector(msg, 6, "stiffness")
            if v is not None and (v >= 0).all():
                self._k[:] = v
        for msg in self._subs["damping"].take():
            v = self._vector(msg, 6, "damping")
            if v is not None and (v >= 0).all():
                self._d[:] = v
        for msg in self._subs["pose"].take():
            p, o = msg.pose.position, msg.pose.orientation
            pos = np.array([p.x, p.y, p.z])
            quat = np.array([o.w, o.x, o.y, o.z])  # ROS orders x, y, z, w
            norm = float(np.linalg.norm(quat))
            if not (np.isfinite(pos).all() and np.isfinite(quat).all() and norm > 0.5):
                self.rejected["pose_invalid"] += 1
                continue
            self._pose = (pos, quat / norm)
            if np.isfinite(self._k).all() and np.isfinite(self._d).all():
                self._last_command = now
                self.commands += 1

    def _setpoint(self) -> Command:
        assert self._pose is not None
        k = self._k
        # damping was sent as 2 zeta sqrt(K) (unit-mass convention): back to the damping ratio
        zeta = np.where(k > 1e-9, self._d / (2.0 * np.sqrt(np.maximum(k, 1e-9))), 1.0)
        return Command(k.copy(), np.clip(zeta, 0.0, 10.0), position=self._pose[0].copy(),
                       orientation=self._pose[1].copy())

    # -- the loop ----------------------------------------------------------------------------
    def _publish_state(self, now: float) -> None:
        s = self.backend.read()
        msg = self._msg
        msg.header.stamp = time_from_sec(now)
        msg.position, msg.velocity, msg.effort = s.q.tolist(), s.dq.tolist(), s.tau.tolist()
        self._state_pub.publish(msg)
        self.published += 1
        if self._wrench_pub is not None:
            w = s.wrench
            self._wrench_pub.publish(WrenchStamped(
                Header(msg.header.stamp, self.config.frame_id),
                Wrench(Vector3(*map(float, w[:3])), Vector3(*map(float, w[3:])))))
        if self.recorder is not None:
            self.recorder.record(self.config.joint_states_topic, msg, now)

    def tick(self, now: float) -> None:
        """One control period: take commands, apply the newest (or hold), step the physics."""
        b = self.backend
        self._take_commands(now)
        commanded = now - self._last_command <= self.config.command_timeout
        if not commanded:
            b.hold()
            self.holding_ticks += 1
        elif self.config.interface == "effort":
            b.write(self._tau)
        else:
            b.write_setpoint(self._setpoint())
        if commanded:
            self.max_joint_speed = max(self.max_joint_speed, float(np.abs(b.read().dq).max()))

    def _take_stamps(self) -> None:
        assert self._stamps is not None
        now = time.time()
        for h in self._stamps.take():
            self._answers.append((h.stamp.sec + h.stamp.nanosec * 1e-9, h.frame_id == "hold"))
            if self.config.interface != "effort":  # no command stream to time: the stamp's arrival
                self._arrivals.append(now)

    def _pace(self, deadline: float) -> None:
        """Wait for the next tick. With latency diagnostics on, commands (effort) or their
        stamps (impedance) are taken as they arrive, so each arrival is timed; a command takes
        effect at the next tick either way."""
        sub = self._subs.get("command", self._stamps)
        while (left := deadline - time.perf_counter()) > 0:
            if sub is not None and self._stamps is not None:
                if sub.wait(left):
                    if self.config.interface == "effort":
                        self._take_efforts(time.time())
                    self._take_stamps()
            elif left > 0.0002:
                time.sleep(left - 0.0002)

    def run(self, duration: float | None = None, stop: Event | None = None) -> None:
        """Serve in real time until ``duration`` seconds pass or ``stop`` is set.

        Paced by the wall clock at the backend's control period; joint states go out every
        ``control_hz / state_hz`` ticks (the first one at once).
        """
        b = self.backend
        b.activate()
        # Start with gravity compensation applied (as a robot whose brakes just opened under
        # its own controller): the hold ramps from the applied torque, and from zero the arm
        # would sag while it ramps.
        n = b.n_joints
        b.read()
        b.data.ctrl[:n] = b.data.qfrc_bias[:n]
        dt = b.dt
        every = max(1, round(1.0 / (self.config.state_hz * dt)))
        t0 = time.perf_counter()
        k = 0
        while (duration is None or k * dt < duration) and not (stop is not None and stop.is_set()):
            self._pace(t0 + k * dt)
            now = time.time()
            if k % every == 0:
                self._publish_state(now)
            self.tick(now)
            k += 1
        if self._stamps is not None:  # the answers still in flight
            self._take_commands(time.time())
            self._take_stamps()

    def latency(self) -> dict[str, Any] | None:
        """Round trips of the latency diagnostics: each command's arrival paired (in order) with
        the stamp of the state it answers. Percentiles [us] over answers (holds excluded),
        answers later than one control period, stale answers (a state not newer than the one
        answered before)."""
        if self._stamps is None:
            return None
        pairs = list(zip(self._arrivals, self._answers, strict=False))
        rt = np.array([arr - stamp for arr, (stamp, hold) in pairs if not hold]) * 1e6
        stamps = [stamp for _, (stamp, hold) in pairs if not hold]
        stale = sum(1 for a, b in itertools.pairwise(stamps) if b <= a)
        period_us = self.backend.dt * 1e6
        pct = (lambda p: float(np.percentile(rt, p))) if rt.size else (lambda p: math.nan)
        return {"answers": int(rt.size), "holds": len(pairs) - int(rt.size), "median_us": pct(50),
                "p99_us": pct(99), "max_us": float(rt.max()) if rt.size else math.nan,
                "late": int((rt > period_us).sum()), "stale_answers": stale,
                "unpaired": abs(len(self._arrivals) - len(self._answers)), "period_us": period_us,
                "worst": [(int(i), float(rt[i])) for i in np.argsort(rt)[::-1][:5]]}

    def status(self) -> dict[str, Any]:
        return {"latency": self.latency(),"published": self.published, "commands": self.commands,
                "rejected": dict(self.rejected), "holding_ticks": self.holding_ticks,
                "max_torque_step": self.max_torque_step, "max_resume_step": self.max_resume_step,
                "resumes": self.resumes, "max_joint_speed": self.max_joint_speed}
