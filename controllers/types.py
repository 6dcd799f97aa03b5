"""Messages of the control stack: what the robot is doing (:class:`RobotState`) and what it is asked
to do (:class:`Command`). One definition each; SI units throughout (m, rad, N, N m, N/m, N m/rad).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ._kernels import all_finite

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Command", "RobotState"]


def _vec(x: ArrayLike, n: int, name: str) -> np.ndarray:
    a = np.array(x, dtype=np.float64).reshape(-1)
    if a.size == 1 and n > 1:
        a = np.full(n, float(a[0]))
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {np.shape(x)}")
    return a


@dataclass
class RobotState:
    """Measured state of an arm at time ``t``.

    Backends may return a *live* state whose arrays are views of their internal buffers (the fast
    loop allocates nothing); it is valid until the next ``write``. Call :meth:`copy` to keep one.

    :param t: time of the measurement [s] (sim time or wall time, as the backend's clock says).
    :param q: joint positions [rad], shape (n,).
    :param dq: joint velocities [rad/s], shape (n,).
    :param tau: last applied joint torques [N m], shape (n,).
    :param ee_pos: end-effector (tool tip) position in the base/world frame [m], shape (3,).
    :param ee_quat: end-effector orientation, unit quaternion (w, x, y, z).
    :param ee_vel: end-effector twist (linear [m/s], angular [rad/s]) in the world frame, shape (6,).
    :param wrench: external wrench acting on the tool (force [N], torque [N m]) in the world frame,
        shape (6,); zeros when the backend has no force sensing.
    :param contact_force: magnitude of the force part of ``wrench`` [N]; backends set it with the
        wrench (computed once per tick, read by the loop, the reflex and the task).
    """

    t: float
    q: np.ndarray
    dq: np.ndarray
    tau: np.ndarray
    ee_pos: np.ndarray
    ee_quat: np.ndarray
    ee_vel: np.ndarray
    wrench: np.ndarray = field(default_factory=lambda: np.zeros(6))
    contact_force: float = 0.0

    def __post_init__(self) -> None:
        if self.contact_force == 0.0 and self.wrench.any():
            self.contact_force = float(np.linalg.norm(self.wrench[:3]))

    def is_finite(self) -> bool:
        """True when every number in the state is finite (no NaN/inf from a sensor or the sim)."""
        return math.isfinite(self.t) and all_finite(self.q, self.dq, self.ee_pos, self.wrench)

    def copy(self) -> RobotState:
        """A snapshot that later backend steps do not change."""
        return RobotState(
            float(self.t), np.array(self.q), np.array(self.dq), np.array(self.tau),
            np.array(self.ee_pos), np.array(self.ee_quat), np.array(self.ee_vel), np.array(self.wrench),
            contact_force=float(self.contact_force),
        )


@dataclass
class Command:
    """A variable-impedance command: target plus stiffness and damping ratio.

    Cartesian mode (``position`` set): the tool tip is pulled toward ``position``/``orientation``
    by a spring of per-axis ``stiffness`` (3 translational [N/m], 3 rotational [N m/rad]) with
    damping ``2 * damping_ratio * sqrt(K * Lambda)``. Joint mode (``joint_position`` set): per-joint
    springs [N m/rad]. ``wrench`` is an optional Cartesian feed-forward force/torque [N, N m].

    Use :meth:`cartesian` and :meth:`joint` to build one; shapes are checked there.
    """

    stiffness: np.ndarray
    damping_ratio: np.ndarray
    position: np.ndarray | None = None
    orientation: np.ndarray | None = None
    joint_position: np.ndarray | None = None
    wrench: np.ndarray | None = None

    @property
    def mode(self) -> str:
        return "joint" if self.joint_position is not None else "cartesian"

    @classmethod
    def cartesian(
        cls,
        position: ArrayLike,
        orientation: ArrayLike = (1.0, 0.0, 0.0, 0.0),
        stiffness: ArrayLike = (500.0, 500.0, 500.0, 50.0, 50.0, 50.0),
        damping_ratio: ArrayLike = 1.0,
        wrench: ArrayLike | None = None,
    ) -> Command:
        """Cartesian impedance command; scalar stiffness/damping ratio apply to all six axes."""
        return cls(
            stiffness=_vec(stiffness, 6, "stiffness"),
            damping_ratio=_vec(damping_ratio, 6, "damping_ratio"),
            position=_vec(position, 3, "position"),
            orientation=_vec(orientation, 4, "orientation"),
            wrench=None if wrench is None else _vec(wrench, 6, "wrench"),
        )

    @classmethod
    def joint(cls, joint_position: ArrayLike, stiffness: ArrayLike = 100.0,
              damping_ratio: ArrayLike = 1.0) -> Command:
        """Joint impedance command for an arm with ``len(joint_position)`` joints."""
        q = np.array(joint_position, dtype=np.float64).reshape(-1)
        n = q.size
        return cls(
            stiffness=_vec(stiffness, n, "stiffness"),
            damping_ratio=_vec(damping_ratio, n, "damping_ratio"),
            joint_position=q,
        )

    def is_finite(self) -> bool:
        """True when every number in the command is finite."""
        parts = (self.stiffness, self.damping_ratio, self.position, self.orientation,
                 self.joint_position, self.wrench)
        return all(p is None or bool(np.isfinite(p).all()) for p in parts)

    def copy(self) -> Command:
        def c(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.array(a, dtype=np.float64)

        return Command(np.array(self.stiffness, dtype=np.float64),
                       np.array(self.damping_ratio, dtype=np.float64), c(self.position),
                       c(self.orientation), c(self.joint_position), c(self.wrench))
