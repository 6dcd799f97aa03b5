"""The safety envelope: bounds no command, configuration, reflex or learned recovery can move.

Every fast tick, after the reflex and before the controller, :class:`SafetyEnvelope` checks the
setpoint the controller is about to track against fixed bounds of what the arm may do, and
rewrites it when it asks for more. The loop always runs it: a task's ``shield="none"`` removes
the reflex, never the envelope. What it bounds (defaults of :class:`EnvelopeConfig`):

- **stiffness** (event ``stiffness_limit``): translational stiffness in [0, 5000] N/m (the
  Cartesian controller's validated range), rotational in [0, 300] N m/rad, damping ratio in
  [0.2, 3]; joint setpoints: joint stiffness in [0, 600] N m/rad;
- **setpoint lead and spring energy** (event ``setpoint_lead``): the setpoint lies at most
  ``max_lead`` (5 cm) from the tool, its orientation at most ``max_rot_lead`` (0.5 rad) from the
  tool's, and the energy in the translational spring, ``1/2 sum K_i e_i^2``, is at most
  ``max_spring_energy`` (2 J): the setpoint is pulled toward the tool until it is. The static
  force the controller can press with is then ``sqrt(2 K E_max)``: 85 N at 1800 N/m, 141 N at
  the 5000 N/m ceiling, whatever the command. (Joint setpoints: at most ``max_joint_lead`` from
  the measured posture.)
- **speed** (event ``velocity_limit``): the tool tip stays under ``max_speed`` (1 m/s): above
  ``brake_engage * max_speed`` (or a joint above its limit) the setpoint is put on the tool (no
  pull) with at least ``brake_stiffness`` and an overdamped damping ratio, so the impedance's
  damping brakes the arm, until the speed is back under ``brake_release * max_speed``;
- **contact force** (event ``force_ceiling``): when the contact force, low-passed over
  ``force_filter`` (20 ms, as a wrist F/T sensor's filter would), exceeds ``max_contact_force``
  (60 N, above every task's violation limit and reflex threshold), the command is aborted and the
  setpoint retreats 1 cm along the force with the stiffness capped at 150 N/m (the hard limits'
  retreat), until the next slow tick: no command keeps pressing harder than that. The filter is
  there because a stiff contact delivers its force as one-tick impulses of hundreds of newtons
  even when it presses gently; a ceiling on the raw force would abort every touch.

What these bound: the kinetic energy the arm brings into a contact (speed), the work the spring
can do on an obstacle (energy), how long it can press hard (force ceiling). What they cannot
bound is the peak of an impact: a contact reached at speed ``v`` peaks at about ``v m / tau``
(``m`` the arm's effective mass, ``tau`` the contact's time constant) on the tick it happens,
which only a lower speed near obstacles reduces (``docs/safety.md`` has the measured numbers). A
task's own contact-force limit (retreat above ``reflex_force``) is the hard-limit reflex's job,
on top.

Real-time safe: one compiled call per tick, preallocated buffers, no exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from robot_brain.controllers._kernels import quat_error
from robot_brain.controllers.impedance import K_MAX
from robot_brain.controllers.types import Command, RobotState
from robot_brain.params import param, validate

from .events import EventLog
from .features import MEMORY_SIZE, _memory_from_wrench
from .limits import LIMITS_RETREAT
from .retreat import retreat_kernel

__all__ = ["EnvelopeConfig", "SafetyEnvelope"]

# Bits returned by the kernels.
_STIFFNESS, _LEAD, _SPEED, _FORCE = 1, 2, 4, 8


@dataclass(frozen=True)
class EnvelopeConfig:
    """The bounds of the safety envelope (every field: unit and reason).

    :param max_stiffness: translational stiffness ceiling [N/m]; the Cartesian controller's
        validated range (stable at 1 kHz with the arm's task-space inertia).
    :param max_rot_stiffness: rotational stiffness ceiling [N m/rad].
    :param max_joint_stiffness: joint stiffness ceiling of joint setpoints [N m/rad].
    :param damping_ratio: allowed range of the damping ratio (below it the arm rings, above it
        the damping term amplifies velocity noise).
    :param max_lead: largest distance of the setpoint from the tool [m]; bounds the spring's
        pull of a soft spring, which the energy bound allows to reach far.
    :param max_rot_lead: largest angle between the setpoint's and the tool's orientation [rad].
    :param max_joint_lead: largest distance of a joint setpoint from the measured posture [rad].
    :param max_spring_energy: largest energy in the translational spring, ``1/2 sum K_i e_i^2``
        [J]; with the speed limit it bounds the work a command can do on an obstacle.
    :param max_spring_force: largest force of the translational spring, ``|K e|`` [N]: what a
        command can press with at rest; about what the wrist can hold (12 N m at ~0.2 m), so a
        stiff spring cannot overpower the wrist and tilt the tool.
    :param max_speed: tool tip speed limit [m/s] (Franka's Cartesian limit is 1.7 m/s;
        collaborative practice keeps well under it).
    :param max_joint_speed: per-joint speed limits [rad/s]; ``None``: not checked.
    :param max_contact_force: ceiling of the filtered contact force [N]; above every task's
        violation limit (15-20 N) and reflex threshold, so it only acts when those are off or
        overwhelmed.
    :param force_filter: time constant of the contact force's low-pass filter [s].
    :param brake_stiffness: stiffness floor while braking [N/m]; with ``brake_damping_ratio``
        it sets the braking damping ``2 zeta sqrt(K Lambda)`` (about 270 N s/m for the arm's
        ~3 kg: a 30 N push then moves the tool at ~0.1 m/s).
    :param brake_damping_ratio: damping-ratio floor while braking (overdamped: the brake should
        not spring back).
    :param brake_rot_stiffness: rotational stiffness floor while braking [N m/rad] (the tip also
        moves when the tool turns about the wrist).
    :param brake_engage: the brake comes on above this fraction of ``max_speed``: the torque-rate
        limit (1000 N m/s) makes braking torque take ~10-30 ms to build, and the speed keeps
        rising meanwhile.
    :param brake_release: once on, the brake stays on until the speed falls below this fraction
        of ``max_speed`` (hysteresis: a brake that lets go at the limit chatters there, and every
        new engagement is late again).
    """

    max_stiffness: float = param(K_MAX, "translational stiffness ceiling", low=0.0, high=K_MAX,
                                 unit="N/m", low_open=True)
    max_rot_stiffness: float = param(300.0, "rotational stiffness ceiling", low=0.0, high=1000.0,
                                     unit="N m/rad", low_open=True)
    max_joint_stiffness: float = param(600.0, "joint stiffness ceiling", low=0.0, high=5000.0,
                                       unit="N m/rad", low_open=True)
    damping_ratio: tuple[float, float] = param((0.2, 3.0), "allowed damping ratios", kind="pair",
                                               low=0.0, high=10.0, low_open=True)
    max_lead: float = param(0.05, "setpoint distance from the tool", low=0.0, high=0.5, unit="m",
                            low_open=True)
    max_rot_lead: float = param(0.5, "setpoint angle from the tool's orientation", low=0.0,
                                high=math.pi, unit="rad", low_open=True)
    max_joint_lead: float = param(0.3, "joint setpoint distance from the posture", low=0.0,
                                  high=math.pi, unit="rad", low_open=True)
    max_spring_energy: float = param(1.0, "energy in the translational spring", low=0.0, high=100.0,
                                     unit="J", low_open=True)
    max_spring_force: float = param(60.0, "force of the translational spring", low=0.0, high=500.0,
                                    unit="N", low_open=True)
    max_speed: float = param(1.0, "tool tip speed", low=0.0, high=5.0, unit="m/s", low_open=True)
    max_joint_speed: tuple[float, ...] | None = None
    brake_stiffness: float = param(1000.0, "stiffness floor while braking", low=0.0, high=K_MAX,
                                   unit="N/m", low_open=True)
    brake_damping_ratio: float = param(2.5, "damping-ratio floor while braking", low=1.0, high=10.0)
    brake_rot_stiffness: float = param(50.0, "rotational stiffness floor while braking", low=0.0,
                                       high=1000.0, unit="N m/rad", low_open=True)
    brake_engage: float = param(0.7, "fraction of max_speed that engages the brake", low=0.0,
                                high=1.0, low_open=True)
    brake_release: float = param(0.5, "fraction of max_speed that releases the brake", low=0.0,
                                 high=1.0, low_open=True)
    max_contact_force: float = param(60.0, "ceiling of the filtered contact force", low=0.0,
                                     high=500.0, unit="N", low_open=True)
    force_filter: float = param(0.02, "time constant of the contact force's filter", low=0.0,
                                high=1.0, unit="s", low_open=True)

    def __post_init__(self) -> None:
        validate(self)
        lo, hi = self.damping_ratio
        if not lo <= 1 <= hi:
            raise ValueError(f"EnvelopeConfig.damping_ratio must include 1 (critical damping), got "
                             f"{self.damping_ratio!r}")
        if self.brake_damping_ratio > hi:
            raise ValueError(f"EnvelopeConfig.brake_damping_ratio must be at most the damping ratio "
                             f"range's top {hi:g}, got {self.brake_damping_ratio!r}")
        if self.brake_stiffness > self.max_stiffness or self.brake_rot_stiffness > self.max_rot_stiffness:
            raise ValueError("EnvelopeConfig: the brake's stiffness must be within the ceilings")
        if self.brake_release > self.brake_engage:
            raise ValueError(f"EnvelopeConfig.brake_release must be in (0, brake_engage], got "
                             f"{self.brake_release!r}")
        if self.max_joint_speed is not None:
            dq = np.asarray(self.max_joint_speed, dtype=np.float64)
            if dq.ndim != 1 or not (np.isfinite(dq).all() and (dq > 0).all()):
                raise ValueError(f"EnvelopeConfig.max_joint_speed must be positive finite "
                                 f"numbers, got {self.max_joint_speed!r}")

    def params(self) -> np.ndarray:
        """The bounds as the compiled kernels' parameter block (indices used by the kernels:
        0 K, 1 K_rot, 2-3 damping ratio, 4 lead, 5 rot lead, 6 energy, 7 speed, 8 brake damping
        ratio, 9 brake K, 10 joint K, 11 joint lead, 12 brake K_rot, 13 release, 14 engage,
        15 spring force)."""
        return np.array([self.max_stiffness, self.max_rot_stiffness, self.damping_ratio[0],
                         self.damping_ratio[1], self.max_lead, self.max_rot_lead,
                         self.max_spring_energy, self.max_speed, self.brake_damping_ratio,
                         self.brake_stiffness, self.max_joint_stiffness, self.max_joint_lead,
                         self.brake_rot_stiffness, self.brake_release, self.brake_engage,
                         self.max_spring_force])


@njit(cache=True)
def _cap_gains(sp_k: np.ndarray, sp_zeta: np.ndarray, n_first: int, k_first: float, k_rest: float,
               z_lo: float, z_hi: float, out_k: np.ndarray,
               out_zeta: np.ndarray) -> int:  # pragma: no cover - compiled
    """Stiffness into [0, ceiling] (``k_first`` for the first ``n_first`` entries, ``k_rest``
    after them: translational then rotational, or all joints), damping ratio into range."""
    flags = 0
    for i in range(sp_k.shape[0]):
        cap = k_first if i < n_first else k_rest
        k = sp_k[i]
        if not k <= cap:  # also catches NaN (the loop refuses non-finite commands before)
            if not k <= cap * (1.0 + 1e-9):  # rounding of a stiffness at the ceiling is fine
                flags |= _STIFFNESS
            k = cap
        elif k < 0.0:
            k = 0.0
            flags |= _STIFFNESS
        out_k[i] = k
        z = sp_zeta[i]
        if z < z_lo or z > z_hi:
            z = min(max(z, z_lo), z_hi)
            flags |= _STIFFNESS
        out_zeta[i] = z
    return flags


@njit(cache=True)
def _pull_in(pos: np.ndarray, sp_pos: np.ndarray, k: np.ndarray, lead: float, e_max: float,
             f_max: float, out_pos: np.ndarray) -> int:  # pragma: no cover - compiled
    """The setpoint on the line to the tool, as far as the lead, the spring energy and the
    spring force allow (the first that binds)."""
    e0, e1, e2 = sp_pos[0] - pos[0], sp_pos[1] - pos[1], sp_pos[2] - pos[2]
    scale = 1.0
    d = math.sqrt(e0 * e0 + e1 * e1 + e2 * e2)
    if d > lead:
        scale = lead / d
    energy = 0.5 * (k[0] * e0 * e0 + k[1] * e1 * e1 + k[2] * e2 * e2) * scale * scale
    if energy > e_max:
        scale *= math.sqrt(e_max / energy)
    fx, fy, fz = k[0] * e0 * scale, k[1] * e1 * scale, k[2] * e2 * scale
    force = math.sqrt(fx * fx + fy * fy + fz * fz)
    if force > f_max:
        scale *= f_max / force
    out_pos[0] = pos[0] + scale * e0
    out_pos[1] = pos[1] + scale * e1
    out_pos[2] = pos[2] + scale * e2
    return _LEAD if scale < 1.0 else 0


@njit(cache=True)
def _turn_in(quat: np.ndarray, sp_quat: np.ndarray, rot_lead: float,
             out_quat: np.ndarray) -> int:  # pragma: no cover - compiled
    """The orientation setpoint at most ``rot_lead`` from the tool's: ``q_err = q_d * conj(q)``
    cut to that angle about the same axis."""
    for i in range(4):
        out_quat[i] = sp_quat[i]
    qw, qx, qy, qz = quat_error(sp_quat, quat)
    s = math.sqrt(qx * qx + qy * qy + qz * qz)
    if 2.0 * math.atan2(s, qw) <= rot_lead or s <= 1e-12:
        return 0
    h = 0.5 * rot_lead
    c, sn = math.cos(h), math.sin(h) / s
    ax, ay, az = qx * sn, qy * sn, qz * sn  # the error rotation cut to rot_lead
    w2, x2, y2, z2 = quat[0], quat[1], quat[2], quat[3]
    out_quat[0] = c * w2 - ax * x2 - ay * y2 - az * z2
    out_quat[1] = c * x2 + ax * w2 + ay * z2 - az * y2
    out_quat[2] = c * y2 - ax * z2 + ay * w2 + az * x2
    out_quat[3] = c * z2 + ax * y2 - ay * x2 + az * w2
    return _LEAD


@njit(cache=True)
def _cartesian(pos: np.ndarray, quat: np.ndarray, vel: np.ndarray, sp_pos: np.ndarray,
               sp_quat: np.ndarray, sp_k: np.ndarray, sp_zeta: np.ndarray, p: np.ndarray,
               braking: bool, out_pos: np.ndarray, out_quat: np.ndarray, out_k: np.ndarray,
               out_zeta: np.ndarray) -> int:  # pragma: no cover - compiled
    """Envelope of a Cartesian setpoint into ``out_*`` (a copy, changed where a bound binds);
    returns the bits of the bounds that bound. ``p``: :meth:`EnvelopeConfig.params`;
    ``braking``: the brake was on last tick (it stays on down to ``brake_release * max_speed``)."""
    flags = _cap_gains(sp_k, sp_zeta, 3, p[0], p[1], p[2], p[3], out_k, out_zeta)
    v = math.sqrt(vel[0] * vel[0] + vel[1] * vel[1] + vel[2] * vel[2])
    if v > p[7] * (p[13] if braking else p[14]):  # brake: no pull, overdamped, stiff enough
        for i in range(3):
            out_pos[i] = pos[i]
        for i in range(4):
            out_quat[i] = quat[i]
        for i in range(6):  # the tip also moves when the tool turns: brake rotation too
            out_k[i] = max(out_k[i], p[9] if i < 3 else min(p[12], p[1]))
            out_zeta[i] = max(out_zeta[i], p[8])
        return flags | _SPEED
    flags |= _pull_in(pos, sp_pos, out_k, p[4], p[6], p[15], out_pos)
    return flags | _turn_in(quat, sp_quat, p[5], out_quat)


@njit(cache=True)
def _joint(q: np.ndarray, dq: np.ndarray, sp_q: np.ndarray, sp_k: np.ndarray,
           sp_zeta: np.ndarray, dq_max: np.ndarray, p: np.ndarray, out_q: np.ndarray,
           out_k: np.ndarray, out_zeta: np.ndarray) -> int:  # pragma: no cover - compiled
    """Envelope of a joint setpoint (stiffness ceiling, lead, joint speed) into ``out_*``."""
    lead = p[11]
    flags = _cap_gains(sp_k, sp_zeta, q.shape[0], p[10], p[10], p[2], p[3], out_k, out_zeta)
    fast = False
    for i in range(q.shape[0]):
        if dq_max.shape[0] > 0 and abs(dq[i]) > dq_max[i]:
            fast = True
    for i in range(q.shape[0]):
        if fast:
            out_q[i] = q[i]
            out_zeta[i] = max(out_zeta[i], 1.0)
        else:
            e = sp_q[i] - q[i]
            if e > lead:
                e = lead
                flags |= _LEAD
            elif e < -lead:
                e = -lead
                flags |= _LEAD
            out_q[i] = q[i] + e
    return flags | (_SPEED if fast else 0)


class SafetyEnvelope:
    """The envelope of every setpoint the loop executes (see module docstring).

    :param config: the bounds.
    :param dt: control period [s] (one :meth:`apply` per tick; for the force filter).
    """

    def __init__(self, config: EnvelopeConfig | None = None, dt: float = 0.001) -> None:
        self.config = c = config or EnvelopeConfig()
        if not 0 < dt <= 0.1:
            raise ValueError(f"dt must be a control period in (0, 0.1] s, got {dt}")
        self._alpha = min(1.0, dt / c.force_filter)  # one step of the force's low-pass filter
        self.contact_force = 0.0  # the filtered contact force [N]
        self._p = c.params()
        self._dq_max = (np.zeros(0) if c.max_joint_speed is None
                        else np.asarray(c.max_joint_speed, dtype=np.float64))
        self._src: Command | None = None  # the setpoint object the output buffer mirrors
        self._out: Command | None = None
        self._retreating = False  # the force ceiling aborted the command (until the next one)
        self._braking = False  # the speed brake is on
        self._retreat_pos = np.zeros(3)  # the retreat setpoint held until the next command
        self._retreat_k = np.zeros(3)
        self._rp = LIMITS_RETREAT.params()
        self._mask = np.ones(3)
        self._mem = np.zeros(MEMORY_SIZE)
        self.last_flags = 0  # bits of the bounds that bound on the last tick
        self._detail = {_SPEED: f"> {c.max_speed:g} m/s",
                        _FORCE: f"> {c.max_contact_force:g} N",
                        _LEAD: f"lead > {c.max_lead:g} m or spring > {c.max_spring_energy:g} J",
                        _STIFFNESS: f"K > {c.max_stiffness:g} N/m or damping ratio outside "
                                    f"{c.damping_ratio}"}

    def _bind(self, setpoint: Command) -> Command:
        """The output buffer for ``setpoint`` (a copy of its layout, made again only when the
        loop hands over another setpoint object whose mode or shapes differ)."""
        out = self._out
        if setpoint is not self._src:
            self._src = setpoint
            if (out is None or out.mode != setpoint.mode
                    or out.stiffness.shape != setpoint.stiffness.shape):
                out = self._out = setpoint.copy()
        assert out is not None
        out.wrench = setpoint.wrench  # shared, not copied: the envelope does not change it
        return out

    def reset(self) -> None:
        """The loop was reset."""
        self._retreating = False
        self._braking = False
        self.contact_force = 0.0

    def new_command(self) -> None:
        """A new slow tick: a retreat of the force ceiling ends (as the hard limits' does)."""
        self._retreating = False

    def apply(self, tick: int, state: RobotState, setpoint: Command, log: EventLog) -> Command:
        """The setpoint to execute: ``setpoint`` itself within the envelope, else a bounded copy
        (an event per bound that bound). Real-time safe: no allocation in the common path."""
        out = self._bind(setpoint)
        if setpoint.position is not None:
            assert setpoint.orientation is not None and out.position is not None  # Cartesian
            assert out.orientation is not None
            flags = _cartesian(state.ee_pos, state.ee_quat, state.ee_vel, setpoint.position,
                               setpoint.orientation, setpoint.stiffness, setpoint.damping_ratio,
                               self._p, self._braking, out.position, out.orientation,
                               out.stiffness, out.damping_ratio)
            self.contact_force += (state.contact_force - self.contact_force) * self._alpha
            f = self.contact_force
            if f > self.config.max_contact_force:
                # The hard limits' retreat-and-soften from this tick's force: the command is
                # aborted (the setpoint onto the tool, then 1 cm along the force, soft) until
                # the next slow tick.
                self._retreating = True
                self._retreat_pos[:] = state.ee_pos
                self._retreat_k[:] = out.stiffness[:3]
                _memory_from_wrench(state.wrench, state.ee_pos, self._mem)
                retreat_kernel(state.ee_pos, state.ee_vel, self._mem, self._retreat_pos,
                               self._retreat_k, self._mask, self._rp, self._retreat_pos,
                               self._retreat_k)
                log.mark("force_ceiling", state.t, tick, f, self._detail[_FORCE])
            if self._retreating and not flags & _SPEED:  # braking comes first
                out.position[:] = self._retreat_pos
                out.stiffness[:3] = self._retreat_k
                flags |= _FORCE
        else:
            assert setpoint.joint_position is not None and out.joint_position is not None
            flags = _joint(state.q, state.dq, setpoint.joint_position, setpoint.stiffness,
                           setpoint.damping_ratio, self._dq_max, self._p, out.joint_position,
                           out.stiffness, out.damping_ratio)
        self.last_flags = flags
        self._braking = bool(flags & _SPEED)
        if not flags:
            return setpoint
        if flags & _SPEED:
            v = state.ee_vel
            log.mark("velocity_limit", state.t, tick, math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]),
                     self._detail[_SPEED])
        if flags & _LEAD:
            log.mark("setpoint_lead", state.t, tick, 0.0, self._detail[_LEAD])
        if flags & _STIFFNESS:
            log.mark("stiffness_limit", state.t, tick, float(setpoint.stiffness.max()),
                     self._detail[_STIFFNESS])
        return out
