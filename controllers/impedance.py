"""Variable-impedance controllers: a command (target + stiffness + damping ratio) -> joint torques.

Both controllers compensate gravity and Coriolis forces with the model's bias torques, so with
zero stiffness the arm floats in place; the Cartesian one adds a null-space posture spring that
keeps the redundant elbow near a preferred configuration without moving the end-effector.
Time is not read here: controllers are pure functions of (state, setpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from . import _kernels
from .model import RobotModel
from .types import Command, RobotState

__all__ = ["K_MAX", "CartesianImpedance", "CartesianImpedanceConfig", "Controller", "JointImpedance"]

#: Highest translational stiffness the Cartesian controller is validated for [N/m]: at 1 kHz with
#: the arm's task-space inertia the discrete spring stays well inside its stability margin, and
#: Franka's own Cartesian impedance tops out in the same range.
K_MAX = 5000.0


@runtime_checkable
class Controller(Protocol):
    """What the fast loop asks of a controller: joint torques for a setpoint at a state.

    ``torque`` is called on every fast tick and must be real-time safe (no allocation, no I/O);
    it may return a view of an internal buffer, valid until the next call.
    """

    def torque(self, state: RobotState, setpoint: Command) -> np.ndarray:
        """Joint torques [N m] for ``setpoint`` at ``state``."""
        ...


@dataclass(frozen=True)
class CartesianImpedanceConfig:
    """Settings of :class:`CartesianImpedance`.

    :param q_null: preferred joint posture for the null space [rad]; ``None`` = the arm's posture
        at construction.
    :param k_null: null-space posture stiffness [N m/rad]; small, it only shapes the elbow.
    :param d_null: null-space joint damping [N m s/rad].
    """

    q_null: tuple[float, ...] | None = None
    k_null: float = 10.0
    d_null: float = 2.0


class CartesianImpedance:
    """6-D Cartesian impedance with variable per-axis stiffness and damping ratio.

    ``tau = J^T (K e - D xdot + w_ff) + (I - J^T Lambda J M^-1) tau_null + c(q, dq) + g(q)``

    where ``e`` stacks the position error and the rotation vector of ``q_d * q^-1`` (quaternion
    orientation error), ``D_i = 2 zeta_i sqrt(K_i Lambda_ii)`` and ``Lambda = (J M^-1 J^T)^-1`` is
    the task-space inertia. See ``docs/controllers.md``.

    :param model: the arm's :class:`RobotModel`.
    :param config: null-space settings.
    """

    def __init__(self, model: RobotModel, config: CartesianImpedanceConfig | None = None) -> None:
        self.model = model
        self.config = config or CartesianImpedanceConfig()
        n = model.n
        qn = self.config.q_null
        self.q_null = np.array(qn if qn is not None else model.data.qpos[:n], dtype=np.float64)
        if self.q_null.shape != (n,):
            raise ValueError(f"q_null must have {n} entries, got {self.q_null.shape[0]}")
        self.k_null = np.full(n, self.config.k_null)
        self.d_null = np.full(n, self.config.d_null)
        self._posture = tuple(_kernels.Posture(self.q_null, self.k_null, self.d_null))
        self.tau = np.zeros(n)
        self.damping = np.zeros(6)  # last damping used per axis [N s/m, N m s/rad]
        self._zero6 = np.zeros(6)

    def torque(self, state: RobotState, setpoint: Command) -> np.ndarray:
        """Joint torques [N m] for ``setpoint`` at ``state`` (a view of an internal buffer).

        Real-time safe: no allocation beyond the compiled kernel's stack arrays, no I/O.
        """
        m = self.model
        m.update(state)
        jac, jac_minv = m.jacobians()
        pos, rot = m.site_pose()
        ff = setpoint.wrench if setpoint.wrench is not None else self._zero6
        assert setpoint.position is not None and setpoint.orientation is not None  # Cartesian mode
        _kernels.cartesian_impedance(
            jac, jac_minv, m.bias, state.q, state.dq, pos, rot, setpoint.position,
            setpoint.orientation, setpoint.stiffness, setpoint.damping_ratio, ff, self._posture,
            self.tau, self.damping,
        )
        return self.tau


class JointImpedance:
    """Joint impedance ``tau = K (q_d - q) - D dq + c(q, dq) + g(q)``, ``D_i = 2 zeta_i sqrt(K_i M_ii)``.

    :param model: the arm's :class:`RobotModel`.
    """

    def __init__(self, model: RobotModel) -> None:
        self.model = model
        self.tau = np.zeros(model.n)

    def torque(self, state: RobotState, setpoint: Command) -> np.ndarray:
        """Joint torques [N m] for a joint-mode ``setpoint`` (a view of an internal buffer)."""
        m = self.model
        m.update(state)
        mass_diag = np.diag(m.mass_matrix())
        assert setpoint.joint_position is not None  # joint mode
        _kernels.joint_impedance(mass_diag, m.bias, state.q, state.dq, setpoint.joint_position,
                                 setpoint.stiffness, setpoint.damping_ratio, self.tau)
        return self.tau
