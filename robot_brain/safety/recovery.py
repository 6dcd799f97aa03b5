"""The critic reflex: ``Q_risk`` checked on every intermediate setpoint, a recovery that fits the
hazard when it is high.

:class:`CriticReflex` is a :class:`robot_brain.safety.Reflex` for :class:`TwoRateLoop`. On every
``reflex_every``-th fast tick it evaluates ``r = Q_risk(s, a_hat)`` on the measured state and the
interpolator's setpoint ``a_hat``:

- ``r > eps_safe``: the current command is aborted (event ``critic``, value = ``r``, detail = the
  recovery executed) and a recovery setpoint is executed **on this same tick** (reaction latency:
  one control tick). The recovery is recomputed from the state on every tick while the reflex is
  engaged. It is one of the candidates (:data:`CANDIDATES`), chosen by the critic itself as in
  Recovery RL and Bresa (``argmin`` of ``Q_risk`` over the candidates its critic file offers,
  ``RiskModel.recoveries``, with ``margin`` as a prior against retreat-and-soften):

  - *retreat-and-soften* (:mod:`robot_brain.safety.retreat`, always on offer): the setpoint
    outside the obstacle (or the remembered wall: 1 cm out; against the arm's own doing, its
    press or its approach, the critic file's ``wall_retreat``, 3 mm for the maze), the
    stiffness capped (400 N/m); the answer to the arm's own setpoint behind a wall;
  - *brace* (:class:`BraceConfig`): stiffen (4000 N/m) and hold a point 5 mm from the tool
    away from the hazard, anchored when it is first on offer; the answer to a push, which a
    softened arm lets carry the tool into the wall. Pressed against a contact harder than
    ``BraceConfig.yield_force``, the anchor moves away from it until the wall carries no more
    (a push that pins the tool to a wall meets a growing spring, not a fixed pull it may
    exceed). On offer where the hazard began in free space with the tool not simply following
    its own setpoint (moving within about 18 degrees of its spring's pull is the arm's own
    approach of a wall it cannot see, which a stiff hold only delays), or in contact when the
    contact force is not the arm's own doing: what its spring
    does not explain reaches ``BraceConfig.push_force`` (a push, not the arm's setpoint behind
    the wall) and the tool is not leaving the contact (faster than
    ``BraceConfig.escape_speed``: pushed *out*, by a surface that moved onto it);
    ``BraceConfig.at_walls`` widens it to every wall. Looked at again on every tick
    it is not on offer, since a push can begin while the reflex is engaged at a wall. Once
    executed it is held for ``min_hold`` ticks and on while the tool is still
    pressed into a contact, and the hard limits underneath keep it through a contact above
    their limit when it pulls the tool off harder than their own retreat would
    (``LimitsReflex.check(bracing=True)``);
  - *soften*: the task's setpoint with the stiffness capped (400 N/m); the answer to the arm's
    own stiff approach of a surface it must touch (a peg onto its block, a wiping tool), which
    a retreat or a brace stalls;
  - *wall-soften*: the same setpoint, offered only against the arm's own press on a wall it
    touched a moment ago (no contact force held, a remembered wall, the tool at rest or simply
    following its own spring: no push), with the same ``margin`` prior as the others. At such a
    wall the retreat goes out along the remembered normal, which friction tilts against the
    command's pull along the wall (up to ``atan(mu)``), so every retreat moves the tool back
    along the wall; the soft press keeps the command's pull and lets the tool slide on. A
    critic offers ``soften`` or ``wall-soften``, not both (they share a candidate);
  - the critic's *learned recovery policy* (``use_learned``, off by default: trained to minimise
    this same critic, it finds the critic's blind spots; on the maze, walls shifted 4 cm, it
    raised violations from 0.4 to 14 per episode), which must also lie on the retreat's side of
    the tool;

  a NaN risk of any candidate executes retreat-and-soften, the one that needs no critic;
- the reflex stays engaged until the task setpoint's risk falls below ``release * eps_safe``
  (hysteresis, so it does not chatter at the threshold); the loop then ramps from the executed
  recovery setpoint to the command's target
  (:meth:`robot_brain.controllers.SetpointInterpolator.restart`), never jumps back to where
  the aborted ramp had got to;
- ``r`` is NaN (corrupt critic or features): event ``critic_fault`` and a hold setpoint (the
  current tool position at the commanded stiffness), never an exception.

The hard-limit reflex (``inner``, usually :class:`LimitsReflex`) stays in force underneath: the
critic decides, then the limits check the result; the loop's safety envelope caps whatever
stiffness a candidate asks for (a brace's stiffness is validated up to ``K_MAX``, the envelope's
ceiling).

The contact force the critic and the recoveries see is the reflex's :class:`ContactMemory` (peak
hold), updated on every tick.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from robot_brain.controllers.types import Command, RobotState

from .critic import _FAST, Block, RiskModel, check_recoveries, recovery_kernel, risk_kernel
from .events import EventLog
from .features import _memory_update
from .limits import LimitsReflex
from .reflex import Reflex
from .retreat import (
    BRACE_STATE,
    BraceConfig,
    RetreatConfig,
    brace_kernel,
    retreat_kernel,
    soften_kernel,
    still_or_own,
)

__all__ = ["BRACE_PRIOR", "CANDIDATES", "DEFAULT_BRACE", "CriticReflex"]

#: The brace candidate a :class:`CriticReflex` offers unless told otherwise.
DEFAULT_BRACE = BraceConfig()
#: Default ``margin``: a prior of 0.3 (in risk) in favour of the brace where it is on offer (a
#: push in free space). The shipped critic was trained on data without any recovery executed,
#: so it ranks the brace and the retreat from setpoints alone; it keeps a veto (a brace judged
#: riskier by more than 0.3 is not executed). Measured on exploration seeds, strong pushes
#: (12 episodes): 3.9 violations/episode with the limits alone, 3.8 with the plain argmin (0),
#: 1.3 with this prior, 2.3 with the brace forced.
BRACE_PRIOR = -0.3


@njit(cache=True, fastmath=_FAST)
def _check(wrench: np.ndarray, pos: np.ndarray, vel: np.ndarray, mem: np.ndarray, decay: float, dt: float,
           sp_pos: np.ndarray, sp_k: np.ndarray, cw: Block,
           sc: Block) -> float:  # pragma: no cover - compiled
    """One tick of the common path: update the contact memory, return the task setpoint's risk."""
    _memory_update(wrench, pos, mem, decay, dt)
    return risk_kernel(pos, vel, mem, sp_pos, sp_k, cw, sc)


@njit(cache=True)
def _pressed(mem: np.ndarray, rp: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Whether the held contact force of ``mem`` is above the retreat's ``min_force`` (``rp``)."""
    return mem[0] * mem[0] + mem[1] * mem[1] + mem[2] * mem[2] > rp[3] * rp[3]


#: Recovery candidates (the kernel's row indices). On a tie the retreat wins, then the brace,
#: soften and the learned one, in the order :func:`_recover` rates them.
CANDIDATES: tuple[str, ...] = ("retreat", "brace", "learned", "soften")
_RETREAT, _BRACE, _LEARNED, _SOFTEN = 0, 1, 2, 3
#: How the soften candidate is offered (``soften`` of :func:`_recover`): not at all, everywhere
#: (``"soften"``), or only against the arm's own press on a remembered wall (``"wall-soften"``);
#: either way with the ``margin`` prior.
SOFTEN_OFF, SOFTEN_ANY, SOFTEN_AT_WALL = 0, 1, 2


@njit(cache=True, fastmath=_FAST)
def _recover(
        pos: np.ndarray, vel: np.ndarray, mem: np.ndarray, sp_pos: np.ndarray, sp_k: np.ndarray,
        mask: np.ndarray, rp: np.ndarray, bp: np.ndarray, bs: np.ndarray, use_brace: bool,
        use_learned: bool, soften: int, margin: float, cw: Block, rw: Block, sc: Block,
        cpos: np.ndarray, ck: np.ndarray, risks: np.ndarray) -> int:  # pragma: no cover - compiled
    """Recovery candidates for one tick, each into its row of ``cpos``/``ck`` (see
    :data:`CANDIDATES`): retreat-and-soften always; with ``use_brace`` the brace; with
    ``use_learned`` the learned recovery policy; the soften primitive as ``soften`` says
    (:data:`SOFTEN_ANY`, :data:`SOFTEN_AT_WALL`) (``bs``: the brace's state, see
    :func:`brace_kernel`; a candidate not on offer is not evaluated). Returns the row to
    execute: the lowest critic risk, where every candidate other than retreat-and-soften
    counts ``margin`` more than its risk (negative: a prior in its favour over the retreat;
    among themselves they compete on risk alone), and the learned one must also lie
    on the primitive's side of the tool (else its risk reads ``inf``). ``risks`` gets each
    candidate's risk (NaN: not evaluated). Any NaN risk (a corrupt critic) executes
    retreat-and-soften, the one candidate that does not depend on the critic.
    """
    ns = sp_k.shape[0]
    for j in range(cpos.shape[0]):
        risks[j] = np.nan
        for i in range(3, ns):
            ck[j, i] = sp_k[i]
    retreat_kernel(pos, vel, mem, sp_pos, sp_k, mask, rp, cpos[_RETREAT], ck[_RETREAT])
    if not (use_brace or use_learned or soften != SOFTEN_OFF):
        return _RETREAT
    best = _RETREAT
    score = risks[_RETREAT] = risk_kernel(pos, vel, mem, cpos[_RETREAT], ck[_RETREAT], cw, sc)
    if score != score:
        return _RETREAT
    for j in (_BRACE, _SOFTEN, _LEARNED):
        r = _candidate(j, pos, vel, mem, sp_pos, sp_k, mask, rp, bp, bs, use_brace, use_learned,
                       soften, cw, rw, sc, cpos, ck)
        if r == _NOT_OFFERED:
            continue
        risks[j] = r
        if r != r:
            return _RETREAT
        if r + margin < score:
            best, score = j, r + margin
    return best


_NOT_OFFERED = -1.0  # a risk no candidate can have


@njit(cache=True)
def _own_press(pos: np.ndarray, vel: np.ndarray, mem: np.ndarray, sp_pos: np.ndarray, mask: np.ndarray,
               rp: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Whether the hazard is the arm's own press on a wall it touched a moment ago (where
    wall-soften is on offer): no contact force held (``min_force``), a wall remembered with at
    least ``wall_recency``, and the tool at rest (``min_speed``) or following its own spring."""
    if _pressed(mem, rp) or mem[9] < rp[7]:
        return False
    return still_or_own(pos, vel, sp_pos, mask, rp)


@njit(cache=True, fastmath=_FAST)
def _candidate(j: int, pos: np.ndarray, vel: np.ndarray, mem: np.ndarray, sp_pos: np.ndarray,
               sp_k: np.ndarray, mask: np.ndarray, rp: np.ndarray, bp: np.ndarray, bs: np.ndarray,
               use_brace: bool, use_learned: bool, soften: int, cw: Block, rw: Block, sc: Block,
               cpos: np.ndarray, ck: np.ndarray) -> float:  # pragma: no cover - compiled
    """Fill candidate ``j``'s row of ``cpos``/``ck`` and return its risk (``inf``: a learned
    setpoint on the wrong side), or ``_NOT_OFFERED``."""
    if j == _BRACE:
        offered = use_brace and brace_kernel(pos, vel, mem, sp_pos, sp_k, mask, rp, bp, bs, cpos[j],
                                             ck[j])
        if not offered:
            return _NOT_OFFERED
    elif j == _SOFTEN:
        if soften == SOFTEN_OFF or (soften == SOFTEN_AT_WALL and not _own_press(pos, vel, mem, sp_pos,
                                                                                 mask, rp)):
            return _NOT_OFFERED
        soften_kernel(sp_pos, sp_k, mask, rp, cpos[j], ck[j])
    else:
        return _learned(pos, vel, mem, sp_pos, sp_k, cw, rw, sc, cpos, ck) if use_learned else _NOT_OFFERED
    return risk_kernel(pos, vel, mem, cpos[j], ck[j], cw, sc)


@njit(cache=True, fastmath=_FAST)
def _learned(pos: np.ndarray, vel: np.ndarray, mem: np.ndarray, sp_pos: np.ndarray, sp_k: np.ndarray,
             cw: Block, rw: Block, sc: Block, cpos: np.ndarray,
             ck: np.ndarray) -> float:  # pragma: no cover - compiled
    """The learned recovery into its row (after the retreat's); returns its risk, or ``inf``
    when it does not lie on the retreat's side of the tool (away from the obstacle): a critic
    can be wrong far from its data and an optimiser finds those places."""
    alt_pos, alt_k = cpos[_LEARNED], ck[_LEARNED]
    for i in range(3):
        alt_pos[i] = sp_pos[i]
        alt_k[i] = sp_k[i]
    recovery_kernel(pos, vel, mem, sp_pos, sp_k, cw, rw, sc, alt_pos, alt_k)
    r = risk_kernel(pos, vel, mem, alt_pos, alt_k, cw, sc)
    side = 0.0
    rec_pos = cpos[_RETREAT]
    for i in range(3):
        side += (alt_pos[i] - pos[i]) * (rec_pos[i] - pos[i])
    return r if (side > 0.0 or r != r) else np.inf


class CriticReflex:
    """Learned safety critic in the fast loop, with a recovery that fits the hazard; hard limits
    underneath (a :class:`robot_brain.safety.Reflex`).

    :param model: the exported critic (:func:`robot_brain.safety.load_critic`).
    :param inner: the reflex that checks the result (usually :class:`LimitsReflex`); ``None``
        for the critic alone.
    :param eps_safe: risk threshold; default: the one stored with the critic.
    :param release: the reflex disengages when the task setpoint's risk falls below
        ``release * eps_safe`` (0 < release <= 1).
    :param reflex_every: evaluate the critic every this many fast ticks (1 = every tick, the
        default; ``control_hz / reflex_hz``).
    :param retreat: the retreat-and-soften candidate (and the retreat direction of the brace);
        default: :class:`RetreatConfig`'s, with the critic file's ``wall_retreat`` if it has one.
    :param brace: the settings of the brace candidate (when ``recoveries`` offers it).
    :param recoveries: the primitives on offer, from ``("retreat", "brace", "soften",
        "wall-soften")`` (retreat-and-soften always among them, soften and wall-soften not
        both); default: the critic file's (:attr:`RiskModel.recoveries`).
    :param use_learned: also offer the critic's learned recovery policy when it has one (off by
        default: trained to minimise this very critic, it finds the critic's blind spots).
    :param margin: a candidate replaces retreat-and-soften only when its risk is lower by more
        than this (-1 < margin < 1); negative: a prior in favour of the other candidates, which
        are then executed unless the critic judges them riskier by more than ``-margin``.
        (Wall-soften once competed on risk alone; with the prior, on the maze, scripted policy,
        seeds 70000-79019, successes against the limits' 143 / 177 / 111 rose from 139 to 146
        with larger wall shifts, 181 to 184 on the benchmark, 111 to 113 with walls alone.)
    :param min_hold: a brace, once executed, stays engaged for at least this many fast ticks
        after the reflex engaged (a push lasts 0.1-0.3 s: a brace that let go as soon as it had
        slowed the tool would give way to the push step by step; retreat-and-soften releases as
        soon as the risk falls, as before).
    :param axes: Cartesian axes recovery may move; default: the critic's recovery axes, else all.
    """

    def __init__(self, model: RiskModel, inner: Reflex | None = None, *, eps_safe: float | None = None,
                 release: float = 0.7, reflex_every: int = 1, retreat: RetreatConfig | None = None,
                 brace: BraceConfig = DEFAULT_BRACE, use_learned: bool = False,
                 margin: float = BRACE_PRIOR, min_hold: int = 100,
                 recoveries: Sequence[str] | None = None,
                 axes: tuple[int, ...] | None = None) -> None:
        self.model = model
        self.inner = inner
        self.eps_safe = float(model.eps_safe if eps_safe is None else eps_safe)
        if not 0.0 < self.eps_safe < 1.0:
            raise ValueError(f"eps_safe must be in (0, 1), got {self.eps_safe}")
        if not 0.0 < release <= 1.0:
            raise ValueError(f"release must be in (0, 1], got {release}")
        if int(reflex_every) != reflex_every or reflex_every < 1:
            raise ValueError(f"reflex_every must be a positive integer, got {reflex_every}")
        if not -1.0 < margin < 1.0:
            raise ValueError(f"margin must be in (-1, 1), got {margin}")
        if int(min_hold) != min_hold or min_hold < 0:
            raise ValueError(f"min_hold must be a non-negative integer number of ticks, got {min_hold}")
        if not isinstance(brace, BraceConfig):
            raise ValueError(f"brace must be a BraceConfig, got {brace!r}")
        recoveries = tuple(model.recoveries if recoveries is None else recoveries)
        check_recoveries(recoveries)
        self.release = float(release) * self.eps_safe
        self.reflex_every = int(reflex_every)
        if retreat is None:  # the critic file may choose the distance from a wall (its task's)
            retreat = (RetreatConfig() if model.wall_retreat is None
                       else RetreatConfig(wall_retreat=model.wall_retreat))
        self.retreat = retreat
        self.brace = brace
        self.recoveries = recoveries
        self._use_brace = "brace" in recoveries
        self._soften = (SOFTEN_ANY if "soften" in recoveries
                        else SOFTEN_AT_WALL if "wall-soften" in recoveries else SOFTEN_OFF)
        self.use_learned = bool(use_learned) and model.has_recovery
        self.margin = float(margin)
        self.min_hold = int(min_hold)
        self._held = 0  # ticks since the reflex engaged
        if axes is None:
            axes = tuple(int(a) for a in model.recovery_axes) if model.has_recovery else (0, 1, 2)
        self.mask = np.zeros(3)
        self.mask[list(axes)] = 1.0
        self.memory = model.contact_memory()
        self.engaged = False
        self.last_risk = 0.0
        self.last_choice = ""  # the candidate (CANDIDATES) executed on the last recovery tick
        self.last_risks = np.full(len(CANDIDATES), np.nan)  # each candidate's risk on that tick
        self._src: Command | None = None  # the setpoint object the buffers are bound to
        self._cands: tuple[Command, ...] = ()
        self._cpos = np.zeros((len(CANDIDATES), 3))
        self._ck = np.zeros((len(CANDIDATES), 6))
        self._hold: Command | None = None
        self._bs = np.full(BRACE_STATE, np.nan)  # the brace's state (brace_kernel)
        self._ran_task = True  # the loop executed the task setpoint last tick (else: in _bs)
        self._details = tuple(f"risk > {self.eps_safe:g} ({what})" for what in
                              ("retreat-and-soften", "brace", "learned recovery", "soften"))
        self._detail_nan = "critic output is NaN: holding the current pose"
        self._rp = self.retreat.params()
        self._bp = brace.params()
        self._cw, self._rw, self._sc = model.blocks

    def set_model(self, model: RiskModel) -> None:
        """Rate with ``model`` from the next tick on: an online update of the same critic
        (:mod:`robot_brain.critic_training.online`). The threshold, the recovery axes and the
        contact memory stay as they are.

        :raises ValueError: ``model`` keeps its contact memory with another time constant.
        """
        if model.contact_memory().tau != self.memory.tau:
            raise ValueError(f"the new critic's contact memory (tau {model.contact_memory().tau} s) differs "
                             f"from the one in force ({self.memory.tau} s)")
        self.model = model
        self.use_learned = self.use_learned and model.has_recovery
        self._cw, self._rw, self._sc = model.blocks

    # -- Reflex interface -------------------------------------------------------------------------
    def reset(self, state: RobotState) -> None:
        self.memory.reset()
        self.engaged = False
        self._bs[:] = np.nan
        self._ran_task = True
        self.last_risk = 0.0
        if self.inner is not None:
            self.inner.reset(state)

    def new_command(self, command: Command) -> None:
        if self.inner is not None:
            self.inner.new_command(command)

    def _bind(self, setpoint: Command) -> None:
        """(Re)build the recovery setpoints around ``setpoint``: position and stiffness are rows
        of this reflex's candidate buffers, orientation/damping/feed-forward shared with it (never
        copied per tick). Runs when the loop hands over a new setpoint object (after a reset or an
        intervention)."""
        ns = setpoint.stiffness.shape[0]
        if self._ck.shape[1] != ns:
            self._ck = np.zeros((len(CANDIDATES), ns))
        self._cpos[:] = setpoint.position
        self._ck[:] = setpoint.stiffness
        self._cands = tuple(Command(self._ck[j], setpoint.damping_ratio, self._cpos[j],
                                    setpoint.orientation, None, setpoint.wrench)
                            for j in range(len(CANDIDATES)))
        self._hold = Command(np.array(setpoint.stiffness), setpoint.damping_ratio,
                             np.array(setpoint.position), setpoint.orientation, None, setpoint.wrench)
        self._src = setpoint

    def check(self, tick: int, state: RobotState, setpoint: Command, log: EventLog) -> Command:
        """Real-time safe: no I/O, no exception; no allocation in the common path (the
        recovery buffers are bound once per setpoint object, see :meth:`_bind`)."""
        if setpoint.position is None:  # joint-mode setpoint: only the inner reflex applies
            return setpoint if self.inner is None else self.inner.check(tick, state, setpoint, log)
        out = setpoint
        bracing = False
        mem = self.memory
        if tick % self.reflex_every == 0 or self.engaged:
            r = _check(state.wrench, state.ee_pos, state.ee_vel, mem.state, mem.decay, mem.dt,
                       setpoint.position, setpoint.stiffness, self._cw, self._sc)
            self.last_risk = r
            # A brace holds for min_hold ticks, and on while the push still presses the tool
            # into something: let go mid-push and the task setpoint would hand the tool to it.
            hold = self.last_choice == "brace" and (self._held < self.min_hold
                                                    or _pressed(mem.state, self._rp))
            if r > self.eps_safe or (self.engaged and (r >= self.release or hold)):
                if not self.engaged:
                    self._held = 0
                self._held += 1
                out, choice = self._recover(state, setpoint)
                bracing = choice == _BRACE
                log.mark("critic", state.t, tick, r, self._details[choice])
                self.engaged = True
            elif r != r:  # NaN: a corrupt critic (or state) must not move the arm
                out = self._hold_here(state, setpoint)
                log.mark("critic_fault", state.t, tick, r, self._detail_nan)
                self._release()
            else:
                self._release()
        else:
            _memory_update(state.wrench, state.ee_pos, mem.state, mem.decay, mem.dt)
        if self.inner is None:
            res = out
        elif bracing and isinstance(self.inner, LimitsReflex):
            res = self.inner.check(tick, state, out, log, bracing=True)
        else:
            res = self.inner.check(tick, state, out, log)
        self._ran_task = res is setpoint
        if not self._ran_task and res.position is not None:  # the brace's push estimate needs it
            self._bs[5:8] = res.position
            self._bs[8:11] = res.stiffness[:3]
        return res

    def _release(self) -> None:
        self.engaged = False
        self._bs[0] = self._bs[4] = np.nan

    def _stale(self, setpoint: Command) -> bool:
        rec = self._cands[0]
        return (self._src is not setpoint or rec.orientation is not setpoint.orientation
                or rec.damping_ratio is not setpoint.damping_ratio or rec.wrench is not setpoint.wrench
                or rec.stiffness.shape != setpoint.stiffness.shape)

    def _hold_here(self, state: RobotState, setpoint: Command) -> Command:
        if not self._cands or self._stale(setpoint):
            self._bind(setpoint)
        hold = self._hold
        assert hold is not None and hold.position is not None  # made by _bind
        hold.position[:] = state.ee_pos
        hold.stiffness[:] = setpoint.stiffness
        return hold

    def _recover(self, state: RobotState, setpoint: Command) -> tuple[Command, int]:
        if not self._cands or self._stale(setpoint):
            self._bind(setpoint)
        assert setpoint.position is not None  # check() handles joint setpoints before this
        if self._ran_task:
            self._bs[5:8] = setpoint.position
            self._bs[8:11] = setpoint.stiffness[:3]
        self._bs[11:14] = state.wrench[:3]
        choice = _recover(state.ee_pos, state.ee_vel, self.memory.state, setpoint.position,
                          setpoint.stiffness, self.mask, self._rp, self._bp, self._bs,
                          self._use_brace, self.use_learned, self._soften, self.margin, self._cw,
                          self._rw, self._sc, self._cpos, self._ck, self.last_risks)
        self.last_choice = CANDIDATES[choice]
        return self._cands[choice], choice
