"""``MujocoBackend``: the simulated arm behind the same ``Backend`` contract as a real one.

One ``write()`` advances the physics by one control period. MuJoCo's step is split around the
controller (``mj_step1`` in ``read()``, ``mj_step2`` in ``write()``) so the kinematics, mass
matrix and bias forces the controller uses are those of the state it reads, computed once.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mujoco
import numpy as np
from numba import njit

from robot_brain.controllers._kernels import _quat_from_mat, clip_finite, limit_torque
from robot_brain.controllers.impedance import CartesianImpedance
from robot_brain.controllers.model import RobotModel
from robot_brain.controllers.types import Command, RobotState

from .base import Backend

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["MujocoBackend", "MujocoImpedanceBackend"]


@njit(cache=True)
def _site_state(xmat: np.ndarray, cvel: np.ndarray, cfrc: np.ndarray, xfrc: np.ndarray,
                xipos: np.ndarray, com: np.ndarray, ee_pos: np.ndarray, ee_quat: np.ndarray,
                ee_vel: np.ndarray, wrench: np.ndarray) -> float:  # pragma: no cover
    """End-effector quantities from MuJoCo's com-based spatial vectors (one compiled call).

    ``cvel``/``cfrc`` are (rot, lin) / (torque, force) about the tree's centre of mass ``com``.
    ``cfrc`` (``cfrc_ext``) also holds the applied perturbation ``xfrc`` (force and torque at the
    body's centre of mass ``xipos``), which is removed so that the wrench is the one from contacts
    with the environment. Writes the tool-tip twist (lin, rot), the contact wrench (force, torque
    about the tip) and the orientation quaternion; returns the contact force magnitude.
    """
    _quat_from_mat(xmat, ee_quat)
    rx, ry, rz = ee_pos[0] - com[0], ee_pos[1] - com[1], ee_pos[2] - com[2]
    wx, wy, wz = cvel[0], cvel[1], cvel[2]
    ee_vel[0] = cvel[3] + wy * rz - wz * ry
    ee_vel[1] = cvel[4] + wz * rx - wx * rz
    ee_vel[2] = cvel[5] + wx * ry - wy * rx
    ee_vel[3], ee_vel[4], ee_vel[5] = wx, wy, wz
    px, py, pz = xfrc[0], xfrc[1], xfrc[2]
    ax, ay, az = xipos[0] - com[0], xipos[1] - com[1], xipos[2] - com[2]
    fx, fy, fz = cfrc[3] - px, cfrc[4] - py, cfrc[5] - pz
    tx = cfrc[0] - xfrc[3] - (ay * pz - az * py)
    ty = cfrc[1] - xfrc[4] - (az * px - ax * pz)
    tz = cfrc[2] - xfrc[5] - (ax * py - ay * px)
    wrench[0], wrench[1], wrench[2] = fx, fy, fz
    wrench[3] = tx - ry * fz + rz * fy
    wrench[4] = ty - rz * fx + rx * fz
    wrench[5] = tz - rx * fy + ry * fx
    return math.sqrt(fx * fx + fy * fy + fz * fz)


class MujocoBackend(Backend):
    """Simulated torque-controlled arm (effort interface).

    :param model: compiled model; the arm's joints must be its first ``n_joints`` DoFs.
    :param n_joints: number of arm joints/actuators.
    :param ee_site: site whose pose/twist is reported as the end-effector.
    :param tool_body: body whose external (contact) wrench is reported as ``state.wrench``.
    :param control_dt: control period [s]; a multiple of the model timestep (default: one step).
    :param hold_damping: joint damping of the safe stop [N m s/rad].
    :param hold_rate_max: torque-rate limit of the safe stop [N m/s] (Franka's 1000 N m/s): a hold
        ramps from the torque being applied to the braking torque instead of jumping to it, so a
        fault in the middle of a fast motion does not slam the joints; ``None`` = no limit.
    """

    interface = "effort"

    def __init__(self, model: mujoco.MjModel, *, n_joints: int = 7, ee_site: str = "ee",
                 tool_body: str = "tool", control_dt: float | None = None,
                 hold_damping: float = 20.0, hold_rate_max: float | None = 1000.0) -> None:
        super().__init__()
        self.model = model
        self.data = mujoco.MjData(model)
        self.n_joints = n_joints
        sim_dt = model.opt.timestep
        self.dt = sim_dt if control_dt is None else float(control_dt)
        ratio = self.dt / sim_dt
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"control_dt={self.dt} is not a positive multiple of the model "
                             f"timestep {sim_dt}")
        self.substeps = round(ratio)
        self.site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, ee_site)
        self.tool_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, tool_body)
        if self.site_id < 0:
            raise ValueError(f"site {ee_site!r} not found in the model")
        if self.tool_id < 0:
            raise ValueError(f"body {tool_body!r} not found in the model")
        lo, hi = model.actuator_ctrlrange[:n_joints].T
        self.tau_max = np.minimum(-lo, hi)
        self.hold_damping = hold_damping
        if hold_rate_max is not None and not hold_rate_max > 0:
            raise ValueError(f"hold_rate_max must be > 0 N m/s or None, got {hold_rate_max}")
        rate = math.inf if hold_rate_max is None else float(hold_rate_max)
        self._hold_delta = np.full(n_joints, rate * self.dt)  # largest torque change per hold tick
        self._hold_prev = np.zeros(n_joints)
        self.robot_model = RobotModel(model, ee_site, n_joints, data=self.data)
        d = self.data
        n = n_joints
        self._applied = np.zeros(n)
        self._state = RobotState(
            t=0.0, q=d.qpos[:n], dq=d.qvel[:n], tau=d.ctrl[:n], ee_pos=d.site_xpos[self.site_id],
            ee_quat=np.array([1.0, 0, 0, 0]), ee_vel=np.zeros(6), wrench=np.zeros(6),
        )
        self._ctrl = d.ctrl[:n]
        self._site_xmat = d.site_xmat[self.site_id]
        self._cfrc = d.cfrc_ext[self.tool_id]
        self._cvel = d.cvel[self.tool_id]
        self._xfrc = d.xfrc_applied[self.tool_id]
        self._xipos = d.xipos[self.tool_id]
        self._com = d.subtree_com[model.body_rootid[self.tool_id]]  # cvel/cfrc_ext reference point
        self._fresh = False  # True when mj_step1 ran for the current state

    # -- sim-only helpers --------------------------------------------------------------------
    def set_state(self, q: ArrayLike, dq: ArrayLike | None = None) -> None:
        """Teleport the arm (resets); clears external forces and recomputes everything."""
        d = self.data
        mujoco.mj_resetData(self.model, d)
        d.qpos[: self.n_joints] = q
        if dq is not None:
            d.qvel[: self.n_joints] = dq
        mujoco.mj_forward(self.model, d)
        self._fresh = False

    def apply_wrench(self, wrench: ArrayLike) -> None:
        """Apply an external force/torque [N, N m] (world frame) at the tool body until changed."""
        w = self.data.xfrc_applied[self.tool_id]
        w[:] = wrench
        # cfrc_ext (read by the next read(), which subtracts the applied wrench) was computed by
        # the last step with the old wrench: recompute it so a push's onset or end does not read
        # as a one-tick contact force of the push's size.
        mujoco.mj_rnePostConstraint(self.model, self.data)

    @property
    def time(self) -> float:
        return float(self.data.time)

    # -- backend hooks -----------------------------------------------------------------------
    def _configure(self) -> None:
        mujoco.mj_forward(self.model, self.data)

    def _read(self) -> RobotState:
        m, d, s = self.model, self.data, self._state
        if not self._fresh:
            mujoco.mj_step1(m, d)
            self._fresh = True
        s.t = d.time
        # The contact wrench comes from the last step's constraint forces (one tick old, like a
        # real F/T sensor). Applied pushes (apply_wrench) are excluded: they are disturbances
        # the robot does not sense directly (a real wrist sensor would also feel the hand).
        s.contact_force = _site_state(self._site_xmat, self._cvel, self._cfrc, self._xfrc,
                                      self._xipos, self._com, s.ee_pos, s.ee_quat, s.ee_vel,
                                      s.wrench)
        return s

    def _step(self, tau: np.ndarray) -> None:
        m, d = self.model, self.data
        if not self._fresh:
            mujoco.mj_step1(m, d)
        self._ctrl[:] = tau
        mujoco.mj_step2(m, d)
        if self.substeps > 1:
            for _ in range(self.substeps - 1):
                mujoco.mj_step(m, d)
        self._fresh = False

    def _write(self, command: np.ndarray) -> np.ndarray:
        if not clip_finite(command, self.tau_max, self._applied):
            raise ValueError("write() refused a non-finite torque command")
        self._step(self._applied)
        return self._applied

    def _hold(self) -> None:
        """Brake: gravity compensation plus joint damping (zero torque if the state is corrupt),
        approached at ``hold_rate_max`` from the torque applied on the previous tick."""
        m, d = self.model, self.data
        if not self._fresh:
            mujoco.mj_step1(m, d)
            self._fresh = True
        n = self.n_joints
        tau = d.qfrc_bias[:n] - self.hold_damping * d.qvel[:n]
        if not np.isfinite(tau).all():
            tau = np.zeros(n)
        self._hold_prev[:] = self._ctrl  # ramp from what the actuators apply now
        limit_torque(tau, self._hold_prev, self.tau_max, self._hold_delta, self._applied)
        self._step(self._applied)


class MujocoImpedanceBackend(MujocoBackend):
    """The simulated arm with the ``impedance`` interface: it runs the Cartesian impedance law
    itself at every physics tick, as a Franka runs its own 1 kHz impedance controller, and
    takes the brain's reflex-filtered setpoints (:meth:`write_setpoint`) instead of torques.

    Takes the arguments of :class:`MujocoBackend`; the law's null-space posture is the arm's
    posture at :meth:`set_state` (or the model's initial one).
    """

    interface = "impedance"

    def __init__(self, model: mujoco.MjModel, **kwargs: float | int | str | None) -> None:
        super().__init__(model, **kwargs)  # type: ignore[arg-type]
        self.controller = CartesianImpedance(self.robot_model)
        self.setpoint: Command | None = None  # the last setpoint received

    def set_state(self, q: ArrayLike, dq: ArrayLike | None = None) -> None:
        super().set_state(q, dq)
        self.controller.q_null[:] = self.data.qpos[: self.n_joints]

    def _write_setpoint(self, setpoint: Command) -> Command:
        if setpoint.position is None or setpoint.orientation is None:
            raise ValueError("the impedance interface takes Cartesian setpoints (position + orientation)")
        if not setpoint.is_finite():
            raise ValueError("write_setpoint() refused a non-finite setpoint")
        state = self._read()  # the state of this tick (computed once: _read() caches mj_step1)
        tau = self.controller.torque(state, setpoint)
        self._write(tau)
        self.setpoint = setpoint
        return setpoint
