"""``Ros2Backend``: a ros2_control robot behind the same :class:`Backend` contract as the sim.

Reads ``sensor_msgs/JointState`` (and optionally a ``WrenchStamped``) and writes either joint
torques to a ``JointGroupEffortController`` (``std_msgs/Float64MultiArray`` in the controller's
joint order) or, with the ``impedance`` interface, the equilibrium pose, stiffness and damping of
an impedance controller running on the robot. Tool pose, twist and the model terms come from the
arm's MJCF fed the measured joints (:class:`RobotModel`).

What it guarantees, whatever arrives on the wire:

- nothing is sent before a fresh, plausible state has been read (``configure`` waits for one);
- a state with the wrong joints, a NaN, an implausible speed, an out-of-order or (optionally)
  an old stamp is rejected and counted by reason (:attr:`rejected`); the loop sees no new state;
- a torque or setpoint is only sent for a state that is new since the last send: a tick whose
  state did not arrive in time is a deadline miss (:attr:`deadline_misses`) and sends nothing,
  and a command not ready within ``command_deadline`` (default: one control period) of its
  state's arrival is withheld (:attr:`late`), so no command computed from an old state ever
  leaves; the loop holds when states stay away;
- ``hold()`` *streams* a safe command (gravity compensation plus damping at the last good state,
  or the measured pose at a soft stiffness), because a forward-command controller keeps its last
  command forever; it is rate-limited from the last torque sent. When no state has come for
  ``hold_stream`` seconds the robot is taken for gone and nothing more is sent until a fresh state
  arrives: a robot that restarts elsewhere is never sent a hold computed for its old posture.
- a torque sent after a gap longer than the robot's ``command_timeout`` (the brain stalled; the
  robot's watchdog has held since) is ramped from the torque the robot reports, not from the
  last one sent (:attr:`watchdog_resumes`).

``read()`` waits up to one control period for the next state, so the robot's state stream paces
the loop (use it with :class:`robot_brain.runtime.SimClock`-style no-wait pacing; the deploy
command does).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_brain.controllers.model import RobotModel
from robot_brain.controllers.types import Command, RobotState

from ..base import Backend, BackendError
from .config import RobotConfig
from .messages import (
    Float64MultiArray,
    Header,
    JointState,
    Point,
    Pose,
    PoseStamped,
    Quaternion,
    WrenchStamped,
    stamp_to_sec,
    time_from_sec,
)
from .transport import COMMAND_QOS, STATE_QOS, Transport

if TYPE_CHECKING:
    from .recorder import FlightRecorder

__all__ = ["REJECT_REASONS", "Ros2Backend"]

#: Why a joint state can be rejected (keys of :attr:`Ros2Backend.rejected`).
REJECT_REASONS = ("joint_names", "lengths", "nonfinite", "out_of_order", "old_stamp", "implausible")

_HOLD_RATE = 1000.0  # N m/s: Franka's torque-rate limit, for the hold's ramp from the last torque


class Ros2Backend(Backend):
    """A ros2_control robot reached through ``transport`` (DDS or rclpy).

    :param transport: the ROS 2 participant (:func:`~.transport.make_transport`).
    :param config: topics, joints, interface, timeouts (:class:`RobotConfig`).
    :param model: kinematics/dynamics of the arm (its own ``MjData``, fed the measured state);
        its joints are ``config.joints`` in order.
    :param dry_run: compute and log everything but publish no command.
    :param recorder: a :class:`~.recorder.FlightRecorder` for the joint states and commands.
    :param now: the clock the stamps are compared with (``time.time``; tests pass their own).
    """

    def __init__(self, transport: Transport, config: RobotConfig, model: RobotModel, *,
                 dry_run: bool = False, recorder: FlightRecorder | None = None,
                 now: Callable[[], float] = time.time) -> None:
        super().__init__()
        if model.n != config.n_joints:
            raise ValueError(f"the robot config names {config.n_joints} joints, the arm model has {model.n}")
        self.transport = transport
        self.config = config
        self.model = model
        # The task's controller shares this model: the kinematics are computed once per accepted
        # state, here, and the model is "live" for everyone else (update() is a no-op).
        self.robot_model = model
        model.live = True
        self.interface = config.interface
        self.n_joints = n = config.n_joints
        self.dt = 1.0 / config.control_hz
        self.dry_run = dry_run
        self.recorder = recorder
        self._now = now
        self.rejected: Counter[str] = Counter()
        self.received = 0
        self.accepted = 0
        self.deadline_misses = 0  # ticks whose state did not arrive within one period
        self.sent = 0  # commands published (or, dry run, computed)
        # first torques after a gap longer than the robot's command_timeout, ramped from the
        # torque its watchdog hold applied (the state's effort) instead of the last one sent
        self.watchdog_resumes = 0
        self._t_published = -math.inf  # self._now() of the last torque published
        self.skipped = 0  # commands not sent because no new state came since the last one
        self.silent = 0  # holds not sent: no state for longer than hold_stream
        self.holds_sent = 0  # hold commands streamed
        self.late = 0  # commands withheld: not ready within command_deadline of their state
        self._deadline = config.command_deadline or 1.0 / config.control_hz
        self.last_receive = -math.inf  # our clock at the last accepted state
        self.hold_latencies: list[float] = []  # per hold onset: time since the last accepted state [s]
        self._index: np.ndarray | None = None  # message order -> config order, cached per name list
        self._index_key: tuple[str, ...] = ()
        self._state = RobotState(0.0, np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(3),
                                 np.array([1.0, 0, 0, 0]), np.zeros(6), np.zeros(6))
        self._have_state = False
        self.holding_streak = False  # the last command sent was a hold
        self._new = False  # a state arrived since the last command was sent
        self._last_t = -math.inf
        self._wrench = np.zeros(6)
        self._tau_sent = np.zeros(n)
        self._hold_tau = np.zeros(n)
        self._pubs: dict[str, Any] = {}
        self._states: Any = None
        self._wrenches: Any = None
        self._cmd = Float64MultiArray(data=[0.0] * n)
        # Brain-side latency: state accepted -> its command published [s], last 2**16 commands.
        self._t_accept = 0.0
        self._latency = np.zeros(1 << 16)
        self._n_latency = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def _configure(self) -> None:
        cfg, tr = self.config, self.transport
        self._states = tr.subscription(cfg.joint_states_topic, JointState, STATE_QOS)
        if cfg.wrench_topic:
            self._wrenches = tr.subscription(cfg.wrench_topic, WrenchStamped, STATE_QOS)
        if cfg.interface == "effort":
            self._pubs["command"] = tr.publisher(cfg.command_topic, Float64MultiArray, COMMAND_QOS)
        else:
            self._pubs["pose"] = tr.publisher(cfg.pose_topic, PoseStamped, COMMAND_QOS)
            self._pubs["stiffness"] = tr.publisher(cfg.stiffness_topic, Float64MultiArray, COMMAND_QOS)
            self._pubs["damping"] = tr.publisher(cfg.damping_topic, Float64MultiArray, COMMAND_QOS)
        if cfg.command_stamp_topic:
            self._pubs["stamp"] = tr.publisher(cfg.command_stamp_topic, Header, COMMAND_QOS)
        deadline = time.monotonic() + cfg.connect_timeout
        while not self._have_state:
            left = deadline - time.monotonic()
            if left <= 0:
                why = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items()))
                raise BackendError(
                    f"no plausible {cfg.joint_states_topic} with joints {', '.join(cfg.joints)} within "
                    f"{cfg.connect_timeout:g} s ({self.transport.name} transport, DDS domain "
                    f"{cfg.dds.domain_id}): is the robot running?"
                    + (f" Rejected: {why}." if why else f" Received {self.received} messages."))
            self._states.wait(min(left, 0.1))
            self._drain()
        self._new = True

    def _disconnect(self) -> None:
        self._pubs.clear()
        self._states = self._wrenches = None

    # -- state -------------------------------------------------------------------------------
    def _reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def _order(self, names: list[str]) -> np.ndarray | None:
        key = tuple(names)
        if key != self._index_key:
            pos = {name: i for i, name in enumerate(names)}
            if len(pos) != len(names) or any(j not in pos for j in self.config.joints):
                return None
            self._index = np.array([pos[j] for j in self.config.joints], dtype=np.intp)
            self._index_key = key
        return self._index

    def _accept(self, msg: JointState) -> bool:
        """Check one joint state; on success it becomes the current state."""
        self.received += 1
        idx = self._order(list(msg.name))
        if idx is None:
            self._reject("joint_names")
            return False
        m = len(msg.name)
        if len(msg.position) != m or len(msg.velocity) not in (0, m) or len(msg.effort) not in (0, m):
            self._reject("lengths")
            return False
        q = np.asarray(msg.position, dtype=np.float64)[idx]
        dq = np.asarray(msg.velocity, dtype=np.float64)[idx] if msg.velocity else np.zeros(self.n_joints)
        tau = np.asarray(msg.effort, dtype=np.float64)[idx] if msg.effort else np.zeros(self.n_joints)
        t = stamp_to_sec(msg.header.stamp)
        if not (np.isfinite(q).all() and np.isfinite(dq).all() and np.isfinite(tau).all()
                and math.isfinite(t)):
            self._reject("nonfinite")
            return False
        if t <= self._last_t:
            self._reject("out_of_order")
            return False
        now = self._now()
        if self.config.max_state_age > 0 and now - t > self.config.max_state_age:
            self._reject("old_stamp")
            return False
        if np.abs(dq).max(initial=0.0) > self.config.max_joint_speed:
            self._reject("implausible")
            return False
        s = self._state
        s.t, s.q[:], s.dq[:], s.tau[:] = t, q, dq, tau
        self._last_t = t
        self.last_receive = now
        self._t_accept = time.perf_counter()
        self._kinematics()
        self._have_state = self._new = True
        self.accepted += 1
        if self.recorder is not None:
            self.recorder.record(self.config.joint_states_topic, msg, t)
        return True

    def _kinematics(self) -> None:
        """Tool pose and twist, Jacobian, mass matrix and bias terms at the accepted state (the
        model keeps them until the next accepted state: a hold uses the last good one)."""
        s = self._state
        self.model.measure(s)
        s.wrench[:] = self._wrench
        s.contact_force = float(np.linalg.norm(self._wrench[:3]))

    def _drain(self) -> None:
        if self._wrenches is not None:
            for w in self._wrenches.take():
                v = (w.wrench.force.x, w.wrench.force.y, w.wrench.force.z,
                     w.wrench.torque.x, w.wrench.torque.y, w.wrench.torque.z)
                if all(math.isfinite(x) for x in v):
                    self._wrench[:] = v
                else:
                    self._reject("nonfinite")
        for msg in self._states.take():
            self._accept(msg)

    def _read(self) -> RobotState:
        if self._states is None:
            raise BackendError("the ROS 2 backend is disconnected")
        self._drain()
        if not self._new:  # wait for the robot's next state, at most one control period
            if self.config.busy_wait:
                end = time.perf_counter() + self.dt
                while not self._new and time.perf_counter() < end:
                    self._drain()
            elif self._states.wait(self.dt):
                self._drain()
            if not self._new:
                self.deadline_misses += 1
        return self._state

    @property
    def fresh(self) -> bool:
        """A state arrived since the last command was sent."""
        return self._new

    # -- commands ----------------------------------------------------------------------------
    def _publish_torque(self, tau: np.ndarray) -> None:
        self._t_published = self._now()
        self._tau_sent[:] = tau
        self._cmd.data = tau.tolist()
        if not self.dry_run:
            self._pubs["command"].publish(self._cmd)
        self.sent += 1
        if self.recorder is not None:
            self.recorder.record(self.config.command_topic, Float64MultiArray(data=tau.tolist()),
                                 self._state.t)

    def _answered(self, hold: bool = False) -> None:
        """Latency diagnostics: say which state the command just sent answers (``frame_id``
        ``hold`` marks a hold, which answers no state); one stamp per command, in order."""
        if not hold:
            self._latency[self._n_latency & 0xFFFF] = time.perf_counter() - self._t_accept
            self._n_latency += 1
        pub = self._pubs.get("stamp")
        if pub is not None and not self.dry_run:
            pub.publish(Header(time_from_sec(self._state.t), "hold" if hold else ""))

    def _fresh_enough(self) -> bool:
        """May a command computed from the current state go out? Not if that state was already
        answered, nor if its deadline passed (then the command is stale: withheld, counted)."""
        if not self._new:
            self.skipped += 1
            return False
        if time.perf_counter() - self._t_accept > self._deadline:
            self._new = False
            self.late += 1
            return False
        return True

    def _write(self, command: np.ndarray) -> np.ndarray:
        if self.interface != "effort":
            raise BackendError("this robot has the impedance interface: send setpoints (write_setpoint)")
        tau = np.asarray(command, dtype=np.float64)
        if tau.shape != (self.n_joints,) or not np.isfinite(tau).all():
            raise ValueError("write() refused a non-finite or wrongly sized torque command")
        if not self._fresh_enough():
            return self._tau_sent
        self._new = False
        self.holding_streak = False
        if self._now() - self._t_published > self.config.command_timeout and self.sent:
            # The brain stalled past the robot's watchdog, which has held since: ramp from the
            # torque that hold applies, as after a hold of our own, not from the last one sent
            # (the caller's rate limiter goes on from what this returns).
            step = _HOLD_RATE * self.dt
            tau = np.clip(tau, self._state.tau - step, self._state.tau + step)
            self.watchdog_resumes += 1
        self._publish_torque(tau)
        self._answered()
        return self._tau_sent

    def _publish_setpoint(self, position: np.ndarray, quat: np.ndarray, stiffness: np.ndarray,
                          damping_ratio: np.ndarray) -> None:
        stamp = time_from_sec(self._state.t)
        pose = PoseStamped(Header(stamp, self.config.frame_id),
                           Pose(Point(*map(float, position)),
                                Quaternion(float(quat[1]), float(quat[2]), float(quat[3]), float(quat[0]))))
        k = np.asarray(stiffness, dtype=np.float64)
        damping = 2.0 * np.asarray(damping_ratio, dtype=np.float64) * np.sqrt(k)  # unit-mass convention
        if not self.dry_run:
            self._pubs["pose"].publish(pose)
            self._pubs["stiffness"].publish(Float64MultiArray(data=k.tolist()))
            self._pubs["damping"].publish(Float64MultiArray(data=damping.tolist()))
        self.sent += 1  # (the deploy command's setpoint tap records setpoints, holds included)

    def _write_setpoint(self, setpoint: Command) -> Command:
        if self.interface != "impedance":
            return super()._write_setpoint(setpoint)
        if setpoint.position is None or setpoint.orientation is None:
            raise ValueError("the impedance interface takes Cartesian setpoints (position + orientation)")
        if not setpoint.is_finite() or setpoint.stiffness.shape != (6,):
            raise ValueError("write_setpoint() refused a non-finite or malformed setpoint")
        if not self._fresh_enough():
            return setpoint
        self._new = False
        self.holding_streak = False
        self._publish_setpoint(setpoint.position, setpoint.orientation, setpoint.stiffness,
                               setpoint.damping_ratio)
        self._answered()
        return setpoint

    def _hold(self) -> None:
        """Stream the safe command of the last good state (see module docstring)."""
        if not self._have_state:
            return  # nothing was ever sent and nothing is known: send nothing
        now = self._now()
        if not self.holding_streak:
            self.hold_latencies.append(now - self.last_receive)
        self.holding_streak = True
        self._new = False
        if now - self.last_receive > self.config.hold_stream:
            self.silent += 1  # the robot is gone: whatever answers next gets nothing stale
            return
        self.holds_sent += 1
        if self.interface == "effort":
            step = _HOLD_RATE * self.dt
            # gravity + Coriolis compensation and joint damping at the last accepted state
            np.subtract(self.model.bias, self.config.hold_damping * self._state.dq, out=self._hold_tau)
            target = self._hold_tau if np.isfinite(self._hold_tau).all() else self._tau_sent
            self._publish_torque(np.clip(target, self._tau_sent - step, self._tau_sent + step))
            self._answered(hold=True)
        else:
            pos, quat = self._state.ee_pos, self._state.ee_quat  # the last accepted state
            k = np.array([self.config.hold_stiffness] * 3 + [self.config.hold_rot_stiffness] * 3)
            self._publish_setpoint(pos, quat, k, np.ones(6))
            self._answered(hold=True)

    # -- reporting ---------------------------------------------------------------------------
    def status(self, latency: bool = False) -> dict[str, Any]:
        """Counters for the status topic and the end-of-run report; with ``latency`` also
        ``brain_latency_us``, the time from accepting a state to publishing its command (median
        and p99 of the last 65536; a few milliseconds to compute: not for every tick)."""
        out: dict[str, Any] = {
            "received": self.received, "accepted": self.accepted, "rejected": dict(self.rejected),
            "deadline_misses": self.deadline_misses, "sent": self.sent, "skipped_stale": self.skipped,
            "late_withheld": self.late, "holds_sent": self.holds_sent, "silent_holds": self.silent,
            "watchdog_resumes": self.watchdog_resumes,
            "holding": self.holding,
            "lifecycle": self.lifecycle.value, "dry_run": self.dry_run}
        if latency:
            lat = self._latency[: min(self._n_latency, self._latency.size)] * 1e6
            out["brain_latency_us"] = ({"median": float(np.median(lat)),
                                        "p99": float(np.percentile(lat, 99))} if lat.size else None)
        return out
