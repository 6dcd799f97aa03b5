"""Kinematics and dynamics of the arm from its MJCF (Jacobian, mass matrix, bias forces).

In simulation the :class:`RobotModel` shares the simulator's ``MjData`` (``live=True``): the
backend's ``read()`` has already run MuJoCo's position/velocity stage, so nothing is recomputed.
On real hardware it owns a private ``MjData`` and :meth:`update` feeds it the measured ``q, dq``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mujoco
import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .types import RobotState

__all__ = ["RobotModel"]

# MuJoCo 4 dropped ``MjData.qM``: ``mj_fullM(m, d, dst)``; MuJoCo 3.x has ``mj_fullM(m, dst, qM)``.
_FULLM_TAKES_DATA = not hasattr(mujoco.MjData, "qM")


class RobotModel:
    """Rigid-body model of an arm whose joints are the first ``n`` DoFs of an MJCF model.

    :param model: compiled MuJoCo model (the same MJCF as in simulation).
    :param site: name of the end-effector site the Cartesian controller regulates.
    :param n_joints: number of arm joints (their DoFs must come first in the model).
    :param data: an ``MjData`` to share (simulation); a private one is made when omitted.
    """

    def __init__(self, model: mujoco.MjModel, site: str, n_joints: int = 7,
                 data: mujoco.MjData | None = None) -> None:
        self.model = model
        self.live = data is not None
        self.data = data if data is not None else mujoco.MjData(model)
        self.n = n_joints
        self.site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
        if self.site_id < 0:
            raise ValueError(f"site {site!r} not found in the model")
        if model.nv < n_joints:
            raise ValueError(f"model has {model.nv} DoFs, fewer than n_joints={n_joints}")
        nv = model.nv
        # Preallocated work arrays (real-time safe use below).
        # Jacobians over all nv DoFs; the arm's are the first n columns (no copy per tick).
        self.jac = np.zeros((6, nv))  # rows: linear (3), angular (3)
        self.jac_minv = np.zeros((6, nv))  # J M^-1 (rows), M symmetric
        self._jac_lin, self._jac_ang = self.jac[:3], self.jac[3:]
        self._site_xpos = self.data.site_xpos[self.site_id]
        self._site_xmat = self.data.site_xmat[self.site_id]
        self._bias = self.data.qfrc_bias[:n_joints]
        self.mass = np.zeros((nv, nv))

    # -- state feeding (real hardware) -------------------------------------------------------
    def update(self, state: RobotState) -> None:
        """Recompute kinematics and dynamics at the measured ``q, dq`` (no-op when live)."""
        if not self.live:
            self._feed(state)

    def _feed(self, state: RobotState) -> None:
        d = self.data
        d.qpos[: self.n] = state.q
        d.qvel[: self.n] = state.dq
        mujoco.mj_fwdPosition(self.model, d)
        mujoco.mj_fwdVelocity(self.model, d)

    def measure(self, state: RobotState) -> None:
        """A real arm's state: compute kinematics and dynamics at the measured ``state.q`` and
        ``state.dq`` and write the tool's pose and twist into ``state`` (``ee_pos``,
        ``ee_quat``, ``ee_vel``). The model keeps them until the next call, so a hold uses the
        last good state's."""
        self._feed(state)
        state.ee_pos[:] = self._site_xpos
        mujoco.mju_mat2Quat(state.ee_quat, self._site_xmat)
        jac, _ = self.jacobians()
        state.ee_vel[:] = jac[:, : self.n] @ state.dq

    # -- quantities (real-time safe: no allocation) ------------------------------------------
    def jacobians(self) -> tuple[np.ndarray, np.ndarray]:
        """Site Jacobian ``J`` and ``J M^-1``, each (6 x nv); the arm's are the first n columns."""
        m, d = self.model, self.data
        mujoco.mj_jacSite(m, d, self._jac_lin, self._jac_ang, self.site_id)
        mujoco.mj_solveM(m, d, self.jac_minv, self.jac)
        return self.jac, self.jac_minv

    @property
    def bias(self) -> np.ndarray:
        """Gravity + Coriolis/centrifugal joint torques ``c(q, dq) + g(q)`` [N m] (a view)."""
        return self._bias

    def mass_matrix(self) -> np.ndarray:
        """Joint-space inertia ``M(q)`` including rotor armature (n x n, a view of a buffer)."""
        if _FULLM_TAKES_DATA:
            mujoco.mj_fullM(self.model, self.data, self.mass)
        else:  # pragma: no cover - MuJoCo 3.x
            mujoco.mj_fullM(self.model, self.mass, self.data.qM)
        return self.mass[: self.n, : self.n]

    def site_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position (3,) and rotation matrix (flattened 9,) as views."""
        return self._site_xpos, self._site_xmat

    def inverse_kinematics(self, pos: ArrayLike, quat: ArrayLike | None = None,
                           q0: ArrayLike | None = None, *, iters: int = 200,
                           tol: float = 1e-5, damping: float = 1e-3) -> np.ndarray:
        """Joint positions putting the site at ``pos`` (and ``quat``, w x y z, if given).

        Damped least squares on a private ``MjData`` (the live state is not touched), starting
        from ``q0`` (default: the current posture). Raises ``ValueError`` if it does not converge.
        """
        m = self.model
        d = mujoco.MjData(m)
        n = self.n
        d.qpos[:] = self.data.qpos
        if q0 is not None:
            d.qpos[:n] = q0
        pos = np.asarray(pos, dtype=np.float64)
        jac = np.zeros((6, m.nv))
        err = np.zeros(6)
        cur = np.zeros(4)
        neg = np.zeros(4)
        dq = np.zeros(m.nv)
        rows = 6 if quat is not None else 3
        for _ in range(iters):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            err[:3] = pos - d.site_xpos[self.site_id]
            if quat is not None:
                mujoco.mju_mat2Quat(cur, d.site_xmat[self.site_id])
                mujoco.mju_negQuat(neg, cur)
                dqu = np.zeros(4)
                mujoco.mju_mulQuat(dqu, np.asarray(quat, dtype=np.float64), neg)
                mujoco.mju_quat2Vel(err[3:], dqu, 1.0)
            if np.linalg.norm(err[:rows]) < tol:
                return d.qpos[:n].copy()
            mujoco.mj_jacSite(m, d, jac[:3], jac[3:], self.site_id)
            j = jac[:rows, :n]
            dq[:n] = j.T @ np.linalg.solve(j @ j.T + damping * np.eye(rows), err[:rows])
            mujoco.mj_integratePos(m, d.qpos, dq, 1.0)
            np.clip(d.qpos[:n], m.jnt_range[:n, 0], m.jnt_range[:n, 1], out=d.qpos[:n])
        raise ValueError(f"inverse kinematics did not converge to {pos.tolist()} "
                         f"(residual {np.linalg.norm(err[:rows]):.2e})")

    def task_inertia(self) -> np.ndarray:
        """Task-space inertia ``Lambda = (J M^-1 J^T)^-1`` (6 x 6), for analysis and tests."""
        j, jm = self.jacobians()
        n = self.n
        return np.linalg.inv(jm[:, :n] @ j[:, :n].T + 1e-6 * np.eye(6))
