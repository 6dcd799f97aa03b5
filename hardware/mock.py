"""A mock backend for tests of the loop and the lifecycle: no physics, records every call.

The state is a unit-mass double integrator per joint driven by the written torque, so loops
that use it still close; faults (NaN state, frozen state, failing reads) can be injected.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robot_brain.controllers.types import RobotState

from .base import Backend, BackendError

__all__ = ["MockBackend"]


class MockBackend(Backend):
    """Records ``writes`` and ``holds``; ``inject_nan_at``/``freeze_time``/``fail_reads`` fault it.

    The tool pose it reports is fixed (it has no kinematics): put it where the commands of a test
    are, or the loop's safety envelope sees a setpoint far from the tool and pulls it in.

    :param n_joints: number of joints.
    :param dt: control period [s].
    :param ee_pos: the tool position it reports [m].
    :param ee_quat: the tool orientation it reports (w, x, y, z).
    """

    interface = "effort"

    def __init__(self, n_joints: int = 7, dt: float = 0.001, *,
                 ee_pos: Sequence[float] = (0.0, 0.0, 0.0),
                 ee_quat: Sequence[float] = (1.0, 0.0, 0.0, 0.0)) -> None:
        super().__init__()
        self.ee_pos = np.array(ee_pos, dtype=np.float64)
        self.ee_quat = np.array(ee_quat, dtype=np.float64)
        self.n_joints = n_joints
        self.dt = dt
        self.t = 0.0
        self.q = np.zeros(n_joints)
        self.dq = np.zeros(n_joints)
        self.tau = np.zeros(n_joints)
        self.writes: list[np.ndarray] = []
        self.holds = 0
        self.reads = 0
        self.inject_nan_at: set[int] = set()  # read indices that return a NaN joint position
        self.freeze_time = False
        self.fail_reads = 0  # number of upcoming reads that raise BackendError

    def _read(self) -> RobotState:
        self.reads += 1
        if self.fail_reads > 0:
            self.fail_reads -= 1
            raise BackendError("mock read failure")
        q = self.q.copy()
        if self.reads in self.inject_nan_at:
            q[0] = np.nan
        return RobotState(self.t, q, self.dq.copy(), self.tau.copy(), self.ee_pos.copy(),
                          self.ee_quat.copy(), np.zeros(6), np.zeros(6))

    def _advance(self, tau: np.ndarray) -> None:
        self.tau[:] = tau
        self.dq += tau * self.dt
        self.q += self.dq * self.dt
        if not self.freeze_time:
            self.t += self.dt

    def _write(self, command: np.ndarray) -> np.ndarray:
        applied = np.array(command, dtype=np.float64)
        self.writes.append(applied)
        self._advance(applied)
        return applied

    def _hold(self) -> None:
        self.holds += 1
        self.dq[:] = 0.0
        self._advance(np.zeros(self.n_joints))
