"""Intermediate setpoints between slow ticks: Bresa's ``a_hat_k``.

A slow policy at 20 Hz jumps its target every 50 ms; stepping the impedance setpoint by that much
at once would be a force impulse. The interpolator ramps the setpoint from where it was to the new
target over ``steps`` fast ticks: linear in position, joint position and stiffness, a geodesic
(slerp) in orientation. The damping ratio and feed-forward wrench switch at once. The safety
reflex checks these intermediate setpoints, not only the slow command.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ._kernels import lerp
from .types import Command

__all__ = ["SetpointInterpolator"]


class SetpointInterpolator:
    """Ramp from the current setpoint to each new target over ``steps`` fast ticks.

    Usage: :meth:`reset` with the initial setpoint (e.g. the current pose), :meth:`set_target` on
    every slow tick, :meth:`step` on every fast tick. The returned setpoint is an internal buffer
    (real-time safe: no allocation per tick); copy it to keep it.

    :param steps: ticks over which a new target is reached (>= 1); usually control_hz/policy_hz.
    """

    def __init__(self, steps: int) -> None:
        if int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps}")
        self.steps = int(steps)
        self.setpoint: Command | None = None
        self._k = self.steps

    def reset(self, setpoint: Command) -> Command:
        """Set the setpoint immediately (no ramp) and return the internal setpoint."""
        sp = setpoint.copy()
        if sp.mode == "cartesian":
            self._lin = np.concatenate([sp.position, sp.stiffness])
            sp.position, sp.stiffness = self._lin[:3], self._lin[3:]
        else:
            assert sp.joint_position is not None  # joint mode
            n = sp.joint_position.size
            self._lin = np.concatenate([sp.joint_position, sp.stiffness])
            sp.joint_position, sp.stiffness = self._lin[:n], self._lin[n:]
        self.setpoint = sp
        self._start = self._lin.copy()
        self._delta = np.zeros_like(self._lin)
        self._quat0 = None if sp.orientation is None else sp.orientation.copy()
        self._quat1 = None if sp.orientation is None else sp.orientation.copy()  # restart()'s
        self._rotvec = np.zeros(3)
        self._rotate = False
        self._k = self._k0 = self.steps
        return sp

    def set_target(self, target: Command) -> None:
        """Begin a ramp from the current setpoint to ``target`` (same mode as the setpoint)."""
        sp = self.setpoint
        if sp is None or target.mode != sp.mode:
            self.reset(target)
            return
        self._start[:] = self._lin
        tgt = target.position if sp.mode == "cartesian" else target.joint_position
        assert tgt is not None  # the mode's target is set
        k = tgt.size
        self._delta[:k] = tgt - self._lin[:k]
        self._delta[k:] = target.stiffness - self._lin[k:]
        sp.damping_ratio[:] = target.damping_ratio
        if target.wrench is None:
            sp.wrench = None
        elif sp.wrench is None:
            sp.wrench = target.wrench.copy()
        else:
            sp.wrench[:] = target.wrench
        if sp.orientation is not None:
            assert self._quat0 is not None  # set with the orientation in reset()
            self._quat0[:] = sp.orientation
            # Rotation vector r (local frame) with quat0 * exp(r) = target orientation.
            mujoco.mju_subQuat(self._rotvec, target.orientation, self._quat0)
            self._rotate = bool(np.any(self._rotvec != 0.0))
        self._k = self._k0 = 0

    def step(self) -> Command:
        """Advance one fast tick and return the intermediate setpoint."""
        sp = self.setpoint
        assert sp is not None, "reset() first"
        if self._k < self.steps:
            self._k += 1
            s = (self._k - self._k0) / (self.steps - self._k0)
            lerp(self._start, self._delta, s, self._lin)
            if self._rotate:
                q = sp.orientation
                assert q is not None  # _rotate is only set for a Cartesian setpoint
                q[:] = self._quat0
                mujoco.mju_quatIntegrate(q, self._rotvec, s)
        return sp

    def restart(self, start: Command) -> Command:
        """Ramp again to the current target, from ``start`` (same mode as the setpoint), and
        return the first intermediate setpoint (the internal buffer), in place of the one
        :meth:`step` returned on this tick. No allocation.

        For a reflex that lets go in the middle of a command: the arm resumes from the setpoint
        the reflex executed instead of jumping to where the ramp has got to meanwhile (a jump of
        up to one whole command at the command's stiffness is an impact when the target lies
        behind the obstacle the reflex kept the tool from). The new ramp takes the ticks left of
        the current one (this one included), so the target is reached when the command expected
        it, but no fewer than ``steps // 2``: a reflex that lets go near the end of a ramp, or
        after it, must not hand back with a jump either. (Measured, maze, scripted policy, walls
        shifted 4 cm, seeds 3-5, violations vs the limits alone: +30 % jumping back, +30 % over
        the ticks left, +10 % with this floor and +10 % over a whole slow tick; the whole slow
        tick made the wipe critic's random episodes leave the surface 3.7x as often, its
        retreat's lift lasting into the next step.) Damping ratio and feed-forward wrench stay
        the target's.
        """
        sp = self.setpoint
        assert sp is not None, "reset() first"
        pos = start.position if sp.mode == "cartesian" else start.joint_position
        assert pos is not None and start.mode == sp.mode, "restart() from a setpoint of the same mode"
        k = pos.size
        self._delta += self._start  # the ramp's end, then the new ramp's delta from start
        self._start[:k] = pos
        self._start[k:] = start.stiffness
        self._delta -= self._start
        if sp.orientation is not None and start.orientation is not None:
            assert self._quat0 is not None and self._quat1 is not None  # set with the orientation
            q1 = self._quat1
            q1[:] = self._quat0
            mujoco.mju_quatIntegrate(q1, self._rotvec, 1.0)  # where the ramp ends
            self._quat0[:] = start.orientation
            mujoco.mju_subQuat(self._rotvec, q1, self._quat0)
            self._rotate = bool(np.any(self._rotvec != 0.0))
            sp.orientation[:] = start.orientation
        n = min(max(self.steps - self._k + 1, self.steps // 2, 1), self.steps)
        self._k = self._k0 = self.steps - n
        return self.step()

    @property
    def done(self) -> bool:
        """True once the latest target has been reached."""
        return self._k >= self.steps
