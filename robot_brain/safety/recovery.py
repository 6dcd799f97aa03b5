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
hold), updated on every tick. The built-in recovery is :mod:`robot_brain.safety.retreat` (the same
primitive the hard limits use) with this reflex's :class:`RetreatConfig`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from robot_brain.controllers.types import Command, RobotState

from .critic import _FAST, Block, RiskModel, recovery_kernel, risk_kernel
from .events import EventLog
from .features import _memory_update
from .reflex import Reflex
from .retreat import RetreatConfig, retreat_kernel

__all__ = ["CriticReflex"]


@njit(cache=True, fastmath=_FAST)
def _check(wrench: np.ndarray, pos: np.ndarray, vel: np.ndarray, mem: np.ndarray, decay: float, dt: float,
           sp_pos: np.ndarray, sp_k: np.ndarray, cw: Block,
           sc: Block) -> float:  # pragma: no cover - compiled
    """One tick of the common path: update the contact memory, return the task setpoint's risk."""
    _memory_update(wrench, pos, mem, decay, dt)
    return risk_kernel(pos, vel, mem, sp_pos, sp_k, cw, sc)


@njit(cache=True, fastmath=_FAST)
def _recover(pos: np.ndarray, vel: np.ndarray, mem: np.ndarray, sp_pos: np.ndarray, sp_k: np.ndarray,
             mask: np.ndarray, rp: np.ndarray, rec_pos: np.ndarray, rec_k: np.ndarray,
             alt_pos: np.ndarray, alt_k: np.ndarray, use_learned: bool, cw: Block,
             rw: Block, sc: Block, risks: np.ndarray) -> int:  # pragma: no cover - compiled
    """Recovery candidates for one tick: retreat-and-soften into ``rec_*`` and, with
    ``use_learned``, the learned recovery into ``alt_*``; returns 1 when the learned one is to
    be executed (on the primitive's side of the tool and less risky), else 0. ``risks`` gets
    (risk of rec, risk of alt)."""
    for i in range(3, sp_k.shape[0]):
        rec_k[i] = sp_k[i]
        alt_k[i] = sp_k[i]
    retreat_kernel(pos, vel, mem, sp_pos, sp_k, mask, rp, rec_pos, rec_k)
    risks[0] = np.nan
    risks[1] = np.nan
    if not use_learned:
        return 0
    for i in range(3):
        alt_pos[i] = sp_pos[i]
        alt_k[i] = sp_k[i]
    recovery_kernel(pos, vel, mem, sp_pos, sp_k, cw, rw, sc, alt_pos, alt_k)
    side = 0.0
    for i in range(3):
        side += (alt_pos[i] - pos[i]) * (rec_pos[i] - pos[i])
    r_rec = risk_kernel(pos, vel, mem, rec_pos, rec_k, cw, sc)
    r_alt = risk_kernel(pos, vel, mem, alt_pos, alt_k, cw, sc)
    risks[0] = r_rec
    risks[1] = r_alt
    # The learned setpoint must lie on the primitive's side of the tool (away from the obstacle):
    # a critic can be wrong far from its data and an optimiser finds those places. Then it must
    # also be the less risky of the two (a NaN compares False: the primitive stays).
    return 1 if (side > 0.0 and r_alt < r_rec) else 0


class CriticReflex:
    """Learned safety critic in the fast loop, with recovery; hard limits underneath (a
    :class:`robot_brain.safety.Reflex`).

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
        self._detail_retreat = f"risk > {self.eps_safe:g} (retreat-and-soften)"
        self._detail_learned = f"risk > {self.eps_safe:g} (learned recovery)"
        self._detail_nan = "critic output is NaN: holding the current pose"
        self._rp = self.retreat.params()
        self._cw, self._rw, self._sc = model.blocks

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
                       setpoint.position, setpoint.stiffness, self._cw, self._sc)
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
        assert rec is not None  # callers check it first
        return (self._src is not setpoint or rec.orientation is not setpoint.orientation
                or rec.damping_ratio is not setpoint.damping_ratio or rec.wrench is not setpoint.wrench
                or rec.stiffness.shape != setpoint.stiffness.shape)

    def _hold_here(self, state: RobotState, setpoint: Command) -> Command:
        if self._rec is None or self._stale(setpoint):
            self._bind(setpoint)
        hold = self._hold
        assert hold is not None and hold.position is not None  # made by _bind
        hold.position[:] = state.ee_pos
        hold.stiffness[:] = setpoint.stiffness
        return hold

    def _recover(self, state: RobotState, setpoint: Command) -> Command:
        if self._rec is None or self._stale(setpoint):
            self._bind(setpoint)
        rec, alt = self._rec, self._alt
        assert rec is not None and alt is not None  # made by _bind
        assert setpoint.position is not None  # check() handles joint setpoints before this
        assert rec.position is not None and alt.position is not None
        choice = _recover(state.ee_pos, state.ee_vel, self.memory.state, setpoint.position,
                          setpoint.stiffness, self.mask, self._rp, rec.position, rec.stiffness,
                          alt.position, alt.stiffness, self.use_learned, self._cw, self._rw,
                          self._sc, self.last_risks)
        if choice == 1:
            self.last_choice = "learned"
            return alt
        self.last_choice = "retreat"
        return rec
