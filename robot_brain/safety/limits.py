"""The hard-limit reflex: checks every fast tick, needs no learning, is always on underneath.

It inspects the state and the intermediate setpoint ``a_hat`` and, when a limit is reached,
replaces the setpoint before the controller turns it into torque:

- **contact force** above ``contact_force`` [N]: abort the current command and retreat and
  soften (:mod:`robot_brain.safety.retreat`, with ``LimitsConfig.recovery``): the setpoint is put
  ``recovery.retreat`` metres from the tool along the contact force (away from the obstacle)
  with the translational stiffness capped at ``recovery.soft_stiffness``, until the next slow
  tick. One exception, asked for by the reflex above (``bracing=True``: the learned critic
  executing its brace against a push): a setpoint that already pulls the tool off the contact
  at least as hard as that retreat would (``K (sp - pos)`` along the force, at least
  ``soft_stiffness * retreat``) is kept, because softening it would let the push through (the
  event is still logged);
- **workspace box**: the setpoint is clipped into the box (the policy can never pull the arm out);
- **joint position margin**: near a joint limit the current command is aborted and the setpoint
  held at the current pose.

Torque and torque-rate limits are enforced after the controller by
:class:`robot_brain.controllers.TorqueLimiter`; the loop logs them as events too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from robot_brain.controllers._kernels import clip_box, first_outside
from robot_brain.controllers.types import Command, RobotState

from .events import EventLog
from .features import MEMORY_SIZE, _memory_from_wrench
from .retreat import RetreatConfig, pull_off, retreat_kernel

__all__ = ["LimitsConfig", "LimitsReflex"]

#: The hard limits' retreat: 1 cm along the force at 150 N/m at most. Softer than the critic's
#: recovery (400 N/m, which acts *before* contact and must keep tracking): this one answers a
#: contact already above the limit, so whatever contact remains is pressed gently. ``min_force``
#: is 0 so the force direction is always the retreat direction, whatever ``contact_force`` is.
LIMITS_RETREAT = RetreatConfig(retreat=0.01, soft_stiffness=150.0, min_force=0.0)


@dataclass(frozen=True)
class LimitsConfig:
    """Hard limits of the reflex (every field: unit and reason).

    :param contact_force: contact force on the tool that triggers retreat [N]; below Franka's
        default collision threshold (20 N) so the reflex acts before the robot faults.
    :param recovery: the retreat-and-soften settings used on a contact above ``contact_force``.
    :param workspace_low: lower corner of the allowed setpoint box [m] (world frame).
    :param workspace_high: upper corner [m].
    :param q_min: lower joint limits [rad]; ``None`` disables the joint check.
    :param q_max: upper joint limits [rad].
    :param joint_margin: distance to a joint limit that triggers a hold [rad].
    """

    contact_force: float = 15.0
    recovery: RetreatConfig = field(default=LIMITS_RETREAT)
    workspace_low: tuple[float, float, float] = (0.15, -0.5, 0.05)
    workspace_high: tuple[float, float, float] = (0.85, 0.5, 0.9)
    q_min: tuple[float, ...] | None = None
    q_max: tuple[float, ...] | None = None
    joint_margin: float = 0.05

    def __post_init__(self) -> None:
        if not (isinstance(self.contact_force, (int, float)) and 0 < self.contact_force < math.inf):
            raise ValueError(f"contact_force must be > 0 N and finite, got {self.contact_force!r}")
        if not isinstance(self.recovery, RetreatConfig):
            raise ValueError(f"recovery must be a RetreatConfig, got {self.recovery!r}")
        lo, hi = np.asarray(self.workspace_low, float), np.asarray(self.workspace_high, float)
        if lo.shape != (3,) or hi.shape != (3,) or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError(f"workspace_low/workspace_high must be 3 finite numbers each, got "
                             f"{self.workspace_low}, {self.workspace_high}")
        if np.any(lo >= hi):
            raise ValueError(f"workspace_low {self.workspace_low} must be below workspace_high "
                             f"{self.workspace_high} on every axis")
        if (self.q_min is None) != (self.q_max is None):
            raise ValueError("give both q_min and q_max, or neither")
        if not (isinstance(self.joint_margin, (int, float)) and 0 <= self.joint_margin < 0.5):
            raise ValueError(f"joint_margin must be in [0, 0.5) rad, got {self.joint_margin!r}")


class LimitsReflex:
    """Hard-limit reflex for Cartesian setpoints (see module docstring); a
    :class:`robot_brain.safety.Reflex`.

    :param config: the limits.
    """

    def __init__(self, config: LimitsConfig | None = None) -> None:
        self.config = c = config or LimitsConfig()
        self._lo = np.array(c.workspace_low, dtype=np.float64)
        self._hi = np.array(c.workspace_high, dtype=np.float64)
        self._qlo = None if c.q_min is None else np.asarray(c.q_min, dtype=np.float64) + c.joint_margin
        self._qhi = None if c.q_max is None else np.asarray(c.q_max, dtype=np.float64) - c.joint_margin
        self._rp = c.recovery.params()
        self._mask = np.ones(3)
        self._mem = np.zeros(MEMORY_SIZE)  # this tick's force only: the hard limit has no memory
        self._override: Command | None = None  # recovery setpoint until the next slow tick
        # The pull off the contact of this reflex's own retreat [N] (see ``check(bracing=...)``).
        self._retreat_pull = c.recovery.soft_stiffness * c.recovery.retreat
        self._kept = f"> {c.contact_force:g} N (brace kept: it pulls off the contact)"

    def reset(self, state: RobotState) -> None:
        self._override = None

    def new_command(self, command: Command) -> None:
        self._override = None

    @property
    def engaged(self) -> bool:
        """True while the current command is aborted."""
        return self._override is not None

    def _abort(self, setpoint: Command, state: RobotState) -> Command:
        """The override setpoint, moved onto the current pose (posture, for joint commands)."""
        if self._override is None:
            self._override = setpoint.copy()
        ov = self._override
        if ov.position is not None:
            ov.position[:] = state.ee_pos
        else:
            assert ov.joint_position is not None  # a joint-mode setpoint
            ov.joint_position[:] = state.q
        return ov

    def check(self, tick: int, state: RobotState, setpoint: Command, log: EventLog, *,
              bracing: bool = False) -> Command:
        """The :class:`Reflex` check. ``bracing``: the caller (a reflex above this one) executes a
        brace against a push this tick; a contact above the limit then keeps ``setpoint`` when it
        pulls the tool off the contact at least as hard as this reflex's retreat would (softening
        a brace lets the push through)."""
        c = self.config
        cartesian = setpoint.position is not None  # joint-mode setpoints: only the joint check
        f = state.contact_force
        if cartesian and f > c.contact_force:
            assert setpoint.position is not None  # cartesian
            if bracing and self._override is None and pull_off(
                    state.wrench, state.ee_pos, setpoint.position, setpoint.stiffness,
                    self._mask) >= self._retreat_pull:
                log.mark("contact_force", state.t, tick, f, self._kept)
            else:
                log.mark("contact_force", state.t, tick, f, f"> {c.contact_force:g} N")
                ov = self._abort(setpoint, state)
                assert ov.position is not None  # Cartesian, as the setpoint
                _memory_from_wrench(state.wrench, state.ee_pos, self._mem)
                retreat_kernel(state.ee_pos, state.ee_vel, self._mem, ov.position, ov.stiffness,
                               self._mask, self._rp, ov.position, ov.stiffness)
        if self._qlo is not None:
            assert self._qhi is not None  # LimitsConfig gives q_min and q_max together
            j = first_outside(state.q, self._qlo, self._qhi)
            if j >= 0:
                log.mark("joint_limit", state.t, tick, float(state.q[j]), f"joint {j + 1}")
                if self._override is None:
                    self._abort(setpoint, state)
        sp = self._override if self._override is not None else setpoint
        if cartesian:
            assert sp.position is not None  # the override is a copy of a Cartesian setpoint
            outside = clip_box(sp.position, self._lo, self._hi)
            if outside > 0.0:
                log.mark("workspace", state.t, tick, outside)
        return sp
