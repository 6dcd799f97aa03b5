"""The critic reflex: ``Q_risk`` checked on every intermediate setpoint, recovery when it is high.

:class:`CriticReflex` is a :class:`robot_brain.safety.Reflex` for :class:`TwoRateLoop`. On every
``reflex_every``-th fast tick it evaluates ``r = Q_risk(s, a_hat)`` on the measured state and the
interpolator's setpoint ``a_hat``:

- ``r > eps_safe``: the current command is aborted (event ``critic``, value = ``r``) and a
  recovery setpoint is executed **on this same tick**: the controller's torque of the tick on
  which the risk first crosses the threshold already comes from the recovery setpoint (reaction
  latency: one control tick). The recovery is recomputed from the state on every tick while the
  reflex is engaged; it is the candidate with the lower critic risk among the learned recovery
  policy (if the critic file has one) and the built-in *retreat-and-soften* primitive;
- the reflex stays engaged until the task setpoint's risk falls below ``release * eps_safe``
  (hysteresis, so it does not chatter at the threshold); the loop then ramps the next command
  from the executed recovery setpoint;
- ``r`` is NaN (corrupt critic or features): event ``critic_fault`` and a hold setpoint (the
  current tool position at the commanded stiffness), never an exception.

The hard-limit reflex (``inner``, usually :class:`LimitsReflex`) stays in force underneath: the
critic decides, then the limits check the result.

The contact force the critic and the retreat see is the reflex's :class:`ContactMemory` (peak
hold), updated on every tick. Retreat-and-soften (:class:`RetreatConfig`): along the retreat
direction ``n`` (the held contact force, which points away from the obstacle; without contact,
against the tool's motion; at rest, against the setpoint error) the setpoint is put ``retreat``
metres outside the tool, pulling it away from the obstacle; the component across ``n`` is kept,
so a tool sliding along a wall keeps sliding; the translational stiffness is capped at
``soft_stiffness``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from robot_brain.controllers.types import Command, RobotState

from .critic import _FAST, RiskModel, _recovery, _risk
from .events import EventLog
from .features import MEMORY_SIZE, _memory_from_wrench, _memory_update
from .limits import Reflex

__all__ = ["CriticReflex", "RetreatConfig", "retreat_and_soften"]


@dataclass(frozen=True)
class RetreatConfig:
    """The built-in recovery primitive (every field: unit and reason).

    :param retreat: how far outside the tool the setpoint is put along the retreat direction [m];
        with ``soft_stiffness`` it sets the pull away from the obstacle (``K * retreat``).
    :param soft_stiffness: translational stiffness cap while recovering [N/m]; a remaining
        contact is pressed with at most ``K * (penetration)``.
    :param min_stiffness: translational stiffness floor while recovering [N/m]; the pull away
        from the obstacle is at least ``min_stiffness * retreat`` (0: no floor).
    :param min_force: held contact force above which the tool counts as in contact and the
        force direction is the retreat direction [N].
    :param min_speed: without contact, tool speed above which the retreat is against the motion
        [m/s] (below it, against the setpoint error).
    :param free_retreat: without contact, how far outside the tool the setpoint is put against
        the motion [m]; negative: keep the task setpoint's position (only the stiffness changes).
    :param brace_stiffness: without contact, stiffness floor [N/m] instead of the soft cap (a
        tool being pushed toward an obstacle is held stiffer, not softer); 0: soften as in
        contact.
    :param wall_recency: without contact, a remembered wall (``ContactMemory``) whose recency
        weight is at least this (0.3: touched within the last ~0.36 s) sets the retreat: the
        setpoint is kept ``retreat`` metres outside it (tool-independent), stiffness softened.
    """

    retreat: float = 0.01
    soft_stiffness: float = 400.0
    min_stiffness: float = 0.0
    min_force: float = 1.0
    min_speed: float = 0.01
    free_retreat: float = 0.01
    brace_stiffness: float = 0.0
    wall_recency: float = 0.3

    def __post_init__(self) -> None:
        if self.retreat < 0 or not self.soft_stiffness > 0:
            raise ValueError(f"need retreat >= 0 m and soft_stiffness > 0 N/m, got "
                             f"{self.retreat}, {self.soft_stiffness}")
        if not 0 <= self.min_stiffness <= self.soft_stiffness:
            raise ValueError(f"need 0 <= min_stiffness <= soft_stiffness, got {self.min_stiffness}, "
                             f"{self.soft_stiffness}")
        if self.min_force < 0 or self.min_speed < 0:
            raise ValueError("min_force and min_speed must be >= 0")


@njit(cache=True)
def _retreat(pos, vel, mem, sp_pos, sp_k, mask, retreat, soft_k, min_k, min_force, min_speed,
             free_retreat, brace_k, wall_recency, out_pos, out_k):  # pragma: no cover - compiled
    """Retreat-and-soften setpoint into ``out_*`` (may alias ``sp_*``); ``mem`` is a
    ``ContactMemory.state``. Three cases: in contact, near a remembered wall, free."""
    n0, n1, n2 = mem[0] * mask[0], mem[1] * mask[1], mem[2] * mask[2]
    m = math.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
    mode = 0  # 0: contact (relative to the tool), 1: remembered wall (relative to it), 2: free
    dist = retreat
    ref0, ref1, ref2 = pos[0], pos[1], pos[2]
    if m <= min_force:
        w0, w1, w2 = mem[6] * mask[0], mem[7] * mask[1], mem[8] * mask[2]
        mw = math.sqrt(w0 * w0 + w1 * w1 + w2 * w2)
        if mem[9] >= wall_recency and mw > 1e-9:
            mode = 1
            n0, n1, n2, m = w0, w1, w2, mw
            ref0, ref1, ref2 = mem[3], mem[4], mem[5]
        else:
            mode = 2
            dist = free_retreat
            n0, n1, n2 = -vel[0] * mask[0], -vel[1] * mask[1], -vel[2] * mask[2]
            m = math.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
            if m <= min_speed:
                n0 = (pos[0] - sp_pos[0]) * mask[0]
                n1 = (pos[1] - sp_pos[1]) * mask[1]
                n2 = (pos[2] - sp_pos[2]) * mask[2]
                m = math.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
    p0, p1, p2 = sp_pos[0], sp_pos[1], sp_pos[2]
    for i in range(3):
        k = sp_k[i]
        if mask[i] > 0.0:
            if mode < 2 or brace_k <= 0.0:
                k = min(max(k, min_k), soft_k)
            else:
                k = max(k, brace_k)
        out_k[i] = k
    out_pos[0], out_pos[1], out_pos[2] = p0, p1, p2
    if m > 1e-9 and dist >= 0.0:
        n0, n1, n2 = n0 / m, n1 / m, n2 / m
        e_n = (p0 - ref0) * n0 + (p1 - ref1) * n1 + (p2 - ref2) * n2
        shift = dist - e_n
        if mode == 1 and shift < 0.0:  # already outside the remembered wall: keep the task's
            shift = 0.0
        out_pos[0] = p0 + shift * n0
        out_pos[1] = p1 + shift * n1
        out_pos[2] = p2 + shift * n2


@njit(cache=True, fastmath=_FAST)
def _check(wrench, pos, vel, mem, decay, dt, sp_pos, sp_k, mean, inv_std, w1, b1, w2, b2, w3, b3,
           x, h1, h2):  # pragma: no cover - compiled
    """One tick of the common path: update the contact memory, return the task setpoint's risk."""
    _memory_update(wrench, pos, mem, decay, dt)
    return _risk(pos, vel, mem, sp_pos, sp_k, mean, inv_std, w1, b1, w2, b2, w3, b3, x, h1, h2)


@njit(cache=True, fastmath=_FAST)
def _recover_kernel(pos, vel, mem, sp_pos, sp_k, mask, rp, rec_pos, rec_k, alt_pos, alt_k,
                    use_learned, mean, inv_std, w1, b1, w2, b2, w3, b3, x, h1, h2, rw1, rb1, rw2,
                    rb2, rw3, rb3, axes, lp, rh1, rh2, ro, risks):  # pragma: no cover - compiled
    """Recovery candidates for one tick: retreat-and-soften into ``rec_*`` and, with
    ``use_learned``, the learned recovery into ``alt_*``; returns 1 when the learned one is to
    be executed (on the primitive's side of the tool and less risky), else 0. ``risks`` gets
    (risk of rec, risk of alt)."""
    for i in range(3, sp_k.shape[0]):
        rec_k[i] = sp_k[i]
        alt_k[i] = sp_k[i]
    _retreat(pos, vel, mem, sp_pos, sp_k, mask, rp[0], rp[1], rp[2], rp[3], rp[4], rp[5], rp[6],
             rp[7], rec_pos, rec_k)
    risks[0] = np.nan
    risks[1] = np.nan
    if not use_learned:
        return 0
    for i in range(3):
        alt_pos[i] = sp_pos[i]
        alt_k[i] = sp_k[i]
    _recovery(pos, vel, mem, sp_pos, sp_k, mean, inv_std, rw1, rb1, rw2, rb2, rw3, rb3, axes, lp[0],
              lp[1], lp[2], x, rh1, rh2, ro, alt_pos, alt_k)
    side = 0.0
    for i in range(3):
        side += (alt_pos[i] - pos[i]) * (rec_pos[i] - pos[i])
    r_rec = _risk(pos, vel, mem, rec_pos, rec_k, mean, inv_std, w1, b1, w2, b2, w3, b3, x, h1, h2)
    r_alt = _risk(pos, vel, mem, alt_pos, alt_k, mean, inv_std, w1, b1, w2, b2, w3, b3, x, h1, h2)
    risks[0] = r_rec
    risks[1] = r_alt
    # The learned setpoint must lie on the primitive's side of the tool (away from the obstacle):
    # a critic can be wrong far from its data and an optimiser finds those places. Then it must
    # also be the less risky of the two (a NaN compares False: the primitive stays).
    return 1 if (side > 0.0 and r_alt < r_rec) else 0


def retreat_and_soften(state: RobotState, setpoint: Command, out: Command,
                       config: RetreatConfig | None = None, mask: np.ndarray | None = None,
                       memory: np.ndarray | None = None) -> Command:
    """Write the retreat-and-soften setpoint for ``(state, setpoint)`` into ``out`` (position and
    translational stiffness; the rest of ``out`` is left alone) and return ``out``.

    :param mask: 1.0 on the Cartesian axes the retreat may move (default: all three).
    :param memory: a ``ContactMemory.state``; default: this tick's measured force only.
    """
    c = config or RetreatConfig()
    m = np.ones(3) if mask is None else mask
    if memory is None:
        memory = np.empty(MEMORY_SIZE)
        _memory_from_wrench(state.wrench, state.ee_pos, memory)
    _retreat(state.ee_pos, state.ee_vel, memory, setpoint.position, setpoint.stiffness, m,
             c.retreat, c.soft_stiffness, c.min_stiffness, c.min_force, c.min_speed,
             c.free_retreat, c.brace_stiffness, c.wall_recency, out.position, out.stiffness)
    return out


class CriticReflex(Reflex):
    """Learned safety critic in the fast loop, with recovery; hard limits underneath.

    :param model: the exported critic (:func:`robot_brain.safety.load_critic`).
    :param inner: the reflex that checks the result (usually :class:`LimitsReflex`); ``None``
        for the critic alone.
    :param eps_safe: risk threshold; default: the one stored with the critic.
    :param release: the reflex disengages when the task setpoint's risk falls below
        ``release * eps_safe`` (0 < release <= 1).
    :param reflex_every: evaluate the critic every this many fast ticks (1 = every tick, the
        default; ``control_hz / reflex_hz``).
    :param retreat: the built-in recovery primitive.
    :param use_learned: use the critic's learned recovery policy when it has one.
    :param axes: Cartesian axes recovery may move; default: the critic's recovery axes, else all.
    """

    def __init__(self, model: RiskModel, inner: Reflex | None = None, *, eps_safe: float | None = None,
                 release: float = 0.7, reflex_every: int = 1, retreat: RetreatConfig | None = None,
                 use_learned: bool = True, axes: tuple[int, ...] | None = None) -> None:
        self.model = model
        self.inner = inner
        self.eps_safe = float(model.eps_safe if eps_safe is None else eps_safe)
        if not 0.0 < self.eps_safe < 1.0:
            raise ValueError(f"eps_safe must be in (0, 1), got {self.eps_safe}")
        if not 0.0 < release <= 1.0:
            raise ValueError(f"release must be in (0, 1], got {release}")
        if int(reflex_every) != reflex_every or reflex_every < 1:
            raise ValueError(f"reflex_every must be a positive integer, got {reflex_every}")
        self.release = float(release) * self.eps_safe
        self.reflex_every = int(reflex_every)
        self.retreat = retreat or RetreatConfig()
        self.use_learned = bool(use_learned) and model.has_recovery
        if axes is None:
            axes = tuple(int(a) for a in model.recovery_axes) if model.has_recovery else (0, 1, 2)
        self.mask = np.zeros(3)
        self.mask[list(axes)] = 1.0
        self.memory = model.contact_memory()
        self.engaged = False
        self.last_risk = 0.0
        self.last_choice = ""  # "learned" or "retreat": the recovery executed on the last tick
        self.last_risks = np.full(2, np.nan)  # risk of the (retreat, learned) candidates
        self._src: Command | None = None  # the setpoint object the buffers are bound to
        self._rec: Command | None = None
        self._alt: Command | None = None
        self._hold: Command | None = None
        r = self.retreat
        self._detail_retreat = f"risk > {self.eps_safe:g} (retreat-and-soften)"
        self._detail_learned = f"risk > {self.eps_safe:g} (learned recovery)"
        self._detail_nan = "critic output is NaN: holding the current pose"
        self._rp = np.array([r.retreat, r.soft_stiffness, r.min_stiffness, r.min_force, r.min_speed,
                             r.free_retreat, r.brace_stiffness, r.wall_recency])
        self._cargs = (*model.critic_arrays, *model.scratch)
        rw1, rb1, rw2, rb2, rw3, rb3, axes_arr, lp, rh1, rh2, ro = model.recovery_arrays
        self._rargs = (*model.critic_arrays, *model.scratch, rw1, rb1, rw2, rb2, rw3, rb3,
                       axes_arr, lp, rh1, rh2, ro, self.last_risks)

    # -- Reflex interface -------------------------------------------------------------------------
    def reset(self, state: RobotState) -> None:
        self.memory.reset()
        self.engaged = False
        self.last_risk = 0.0
        if self.inner is not None:
            self.inner.reset(state)

    def new_command(self, command: Command) -> None:
        if self.inner is not None:
            self.inner.new_command(command)

    def _bind(self, setpoint: Command) -> None:
        """(Re)build the recovery setpoints around ``setpoint``: own position and stiffness
        arrays, orientation/damping/feed-forward shared with it (never copied per tick). Runs
        when the loop hands over a new setpoint object (after a reset or an intervention)."""
        def make() -> Command:
            return Command(np.array(setpoint.stiffness), setpoint.damping_ratio,
                           np.array(setpoint.position), setpoint.orientation, None, setpoint.wrench)

        self._rec, self._alt, self._hold = make(), make(), make()
        self._src = setpoint

    def check(self, tick: int, state: RobotState, setpoint: Command, log: EventLog) -> Command:
        """Real-time safe: no I/O, no exception; no allocation in the common path (the
        recovery buffers are bound once per setpoint object, see :meth:`_bind`)."""
        if setpoint.position is None:  # joint-mode setpoint: only the inner reflex applies
            return setpoint if self.inner is None else self.inner.check(tick, state, setpoint, log)
        out = setpoint
        mem = self.memory
        if tick % self.reflex_every == 0 or self.engaged:
            r = _check(state.wrench, state.ee_pos, state.ee_vel, mem.state, mem.decay, mem.dt,
                       setpoint.position, setpoint.stiffness, *self._cargs)
            self.last_risk = r
            if r > self.eps_safe or (self.engaged and r >= self.release):
                out = self._recover(state, setpoint)
                log.mark("critic", state.t, tick, r,
                         self._detail_learned if self.last_choice == "learned" else self._detail_retreat)
                self.engaged = True
            elif r != r:  # NaN: a corrupt critic (or state) must not move the arm
                out = self._hold_here(state, setpoint)
                log.mark("critic_fault", state.t, tick, r, self._detail_nan)
                self.engaged = False
            else:
                self.engaged = False
        else:
            _memory_update(state.wrench, state.ee_pos, mem.state, mem.decay, mem.dt)
        return out if self.inner is None else self.inner.check(tick, state, out, log)

    def _stale(self, setpoint: Command) -> bool:
        rec = self._rec
        return (self._src is not setpoint or rec.orientation is not setpoint.orientation
                or rec.damping_ratio is not setpoint.damping_ratio or rec.wrench is not setpoint.wrench
                or rec.stiffness.shape != setpoint.stiffness.shape)

    def _hold_here(self, state: RobotState, setpoint: Command) -> Command:
        if self._rec is None or self._stale(setpoint):
            self._bind(setpoint)
        hold = self._hold
        hold.position[:] = state.ee_pos
        hold.stiffness[:] = setpoint.stiffness
        return hold

    def _recover(self, state: RobotState, setpoint: Command) -> Command:
        if self._rec is None or self._stale(setpoint):
            self._bind(setpoint)
        rec, alt = self._rec, self._alt
        choice = _recover_kernel(state.ee_pos, state.ee_vel, self.memory.state, setpoint.position,
                                 setpoint.stiffness, self.mask, self._rp, rec.position, rec.stiffness,
                                 alt.position, alt.stiffness, self.use_learned, *self._rargs)
        if choice == 1:
            self.last_choice = "learned"
            return alt
        self.last_choice = "retreat"
        return rec
