"""The hard-limit reflex: checks every fast tick, needs no learning, is always on underneath.

It inspects the state and the intermediate setpoint ``a_hat`` and, when a limit is reached,
replaces the setpoint before the controller turns it into torque:

- **contact force** above ``contact_force`` [N]: abort the current command and *retreat and
  soften*: move the setpoint ``retreat`` metres from the current tool position along the contact
  force (away from the obstacle) and lower the translational stiffness to ``soft_stiffness``,
  until the next slow tick;
- **workspace box**: the setpoint is clipped into the box (the policy can never pull the arm out);
- **joint position margin**: near a joint limit the current command is aborted and the setpoint
  held at the current pose.

Torque and torque-rate limits are enforced after the controller by
:class:`robot_brain.controllers.TorqueLimiter`; the loop logs them as events too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_brain.controllers._kernels import clip_box, first_outside
from robot_brain.controllers.types import Command, RobotState

from .events import EventLog

__all__ = ["LimitsConfig", "LimitsReflex", "Reflex"]


class Reflex:
    """Interface of a fast-tick reflex (limits, learned critic ...).

    ``check`` is called on every fast tick with the measured state and the intermediate setpoint
    and returns the setpoint to execute (the same object when nothing is wrong). It must be
    real-time safe: no allocation in the common path, no I/O, no exceptions.
    """

    def reset(self, state: RobotState) -> None:
        """Called when the loop is reset."""

    def new_command(self, command: Command) -> None:
        """Called at each slow tick with the policy's new command."""

    def check(self, tick: int, state: RobotState, setpoint: Command, log: EventLog) -> Command:
        raise NotImplementedError


@dataclass(frozen=True)
class LimitsConfig:
    """Hard limits of the reflex (every field: unit and reason).

    :param contact_force: contact force on the tool that triggers retreat [N]; below Franka's
        default collision threshold (20 N) so the reflex acts before the robot faults.
    :param retreat: distance the setpoint backs off along the contact force [m].
    :param soft_stiffness: translational stiffness while retreating [N/m]; low, so a remaining
        contact is pressed gently.
    :param workspace_low: lower corner of the allowed setpoint box [m] (world frame).
    :param workspace_high: upper corner [m].
    :param q_min: lower joint limits [rad]; ``None`` disables the joint check.
    :param q_max: upper joint limits [rad].
    :param joint_margin: distance to a joint limit that triggers a hold [rad].
    """

    contact_force: float = 15.0
    retreat: float = 0.01
    soft_stiffness: float = 150.0
    workspace_low: tuple[float, float, float] = (0.15, -0.5, 0.05)
    workspace_high: tuple[float, float, float] = (0.85, 0.5, 0.9)
    q_min: tuple[float, ...] | None = None
    q_max: tuple[float, ...] | None = None
    joint_margin: float = 0.05

    def __post_init__(self) -> None:
        if not self.contact_force > 0:
            raise ValueError(f"contact_force must be > 0 N, got {self.contact_force}")
        if self.retreat < 0 or self.soft_stiffness < 0:
            raise ValueError("retreat and soft_stiffness must be >= 0")
        if np.any(np.asarray(self.workspace_low) >= np.asarray(self.workspace_high)):
            raise ValueError(f"workspace_low {self.workspace_low} must be below workspace_high "
                             f"{self.workspace_high} on every axis")


class LimitsReflex(Reflex):
    """Hard-limit reflex for Cartesian setpoints (see module docstring).

    :param config: the limits.
    """

    def __init__(self, config: LimitsConfig | None = None) -> None:
        self.config = c = config or LimitsConfig()
        self._lo = np.array(c.workspace_low, dtype=np.float64)
        self._hi = np.array(c.workspace_high, dtype=np.float64)
        self._qlo = None if c.q_min is None else np.asarray(c.q_min, dtype=np.float64) + c.joint_margin
        self._qhi = None if c.q_max is None else np.asarray(c.q_max, dtype=np.float64) - c.joint_margin
        self._override: Command | None = None  # recovery setpoint until the next slow tick

    def reset(self, state: RobotState) -> None:
        self._override = None

    def new_command(self, command: Command) -> None:
        self._override = None

    @property
    def engaged(self) -> bool:
        """True while the current command is aborted."""
        return self._override is not None

    def _abort(self, setpoint: Command, state: RobotState) -> Command:
        if self._override is None:
            self._override = setpoint.copy()
        ov = self._override
        if ov.position is not None:
            ov.position[:] = state.ee_pos
        else:  # joint-mode setpoint: hold the current posture
            ov.joint_position[:] = state.q
        return ov

    def check(self, tick: int, state: RobotState, setpoint: Command, log: EventLog) -> Command:
        c = self.config
        cartesian = setpoint.position is not None  # joint-mode setpoints: only the joint check
        f = state.contact_force
        if cartesian and f > c.contact_force:
            log.mark("contact_force", state.t, tick, f, f"> {c.contact_force:g} N")
            ov = self._abort(setpoint, state)
            ov.position += state.wrench[:3] * (c.retreat / f)
            np.minimum(ov.stiffness[:3], c.soft_stiffness, out=ov.stiffness[:3])
        if self._qlo is not None:
            j = first_outside(state.q, self._qlo, self._qhi)
            if j >= 0:
                log.mark("joint_limit", state.t, tick, float(state.q[j]), f"joint {j + 1}")
                if self._override is None:
                    self._abort(setpoint, state)
        sp = self._override if self._override is not None else setpoint
        if cartesian:
            outside = clip_box(sp.position, self._lo, self._hi)
            if outside > 0.0:
                log.mark("workspace", state.t, tick, outside)
        return sp
