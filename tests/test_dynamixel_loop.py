"""The control loop on the Dynamixel bus: ``TwoRateLoop`` -> ``DynamixelBackend`` -> virtual chain
of 6 servos on a pty, with the 6-joint servo arm's model in the joint impedance controller.

Checked by effect: a joint-space step of the base joint is reached without any goal current
above the arm's torque limit, and a bus corrupting 5 % of its replies makes the loop hold on the
failed reads (counted events) without an exception escaping. The chain's physics is six
independent joints (inertia, friction, no gravity), not the arm the controller models, so the
gravity compensation pushes the pitch joints a few hundredths of a radian off their setpoints;
only the base joint (no gravity load) is checked for position. Timing lives in
``robot-brain bench --serial``, not here.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robot_brain.controllers import Command, JointImpedance, RobotModel, TorqueLimiter
from robot_brain.envs import servo_arm
from robot_brain.hardware.dynamixel.backend import DynamixelBackend
from robot_brain.hardware.dynamixel.bus import DynamixelBus
from robot_brain.hardware.dynamixel.calibration import Calibration
from robot_brain.hardware.dynamixel.control_table import XM430_W350
from robot_brain.hardware.dynamixel.virtual import Faults, VirtualServoChain
from robot_brain.runtime import LoopConfig, SimClock, TwoRateLoop, WallClock
from robot_brain.runtime.clock import Clock

IDS = [1, 2, 3, 4, 5, 6]
HZ = 500.0
DT = 1.0 / HZ
K = 10.0  # N m/rad, joint stiffness of the commands
KT = XM430_W350.torque_constant
assert KT is not None
# Measured on the development machine: the base joint ends 0.001-0.002 rad short of the target
# (Coulomb friction 0.02 N m / K = 0.002 rad, plus one goal-current unit of 4.8 mN m and the
# encoder's 1.5 mrad); 0.02 rad leaves room for a loaded machine.
TOL = 0.02  # rad


class RecordingBackend(DynamixelBackend):
    """DynamixelBackend that keeps every torque it was asked for and every torque it applied."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requested: list[np.ndarray] = []
        self.applied: list[np.ndarray] = []

    def _write(self, command: np.ndarray) -> np.ndarray:
        self.requested.append(np.array(command, dtype=np.float64))
        out = super()._write(command)
        self.applied.append(out.copy())
        return out


@pytest.fixture
def servo_model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(servo_arm.build_mjcf())


def make_loop(chain: VirtualServoChain, model: mujoco.MjModel,
              clock: Clock) -> tuple[TwoRateLoop, RecordingBackend]:
    # The goal-current bound is the arm's torque limit (floored to whole units), so rounding to
    # units never lands above TAU_MAX.
    backend = RecordingBackend(DynamixelBus(chain.path, timeout=0.02, retries=2), Calibration.default(IDS),
                               control_dt=DT, max_current=float(servo_arm.TAU_MAX.min()) / KT)
    backend.configure()
    loop = TwoRateLoop(backend, JointImpedance(RobotModel(model, servo_arm.EE_SITE, 6)),
                       TorqueLimiter(servo_arm.TAU_MAX, servo_arm.TAU_RATE_MAX, DT),
                       config=LoopConfig(policy_hz=20, control_hz=HZ), clock=clock)
    return loop, backend


def test_servo_arm_model_compiles_with_gravity_at_home(servo_model: mujoco.MjModel) -> None:
    assert servo_model.nv == len(servo_arm.JOINT_NAMES) == 6
    rm = RobotModel(servo_model, servo_arm.EE_SITE, 6)
    d = rm.data
    d.qpos[:] = servo_arm.HOME_Q
    mujoco.mj_forward(servo_model, d)
    g = rm.bias.copy()
    assert np.isfinite(g).all()
    assert np.abs(g).max() > 0.1  # the pitch joints carry the arm
    assert (np.abs(g) < servo_arm.TAU_MAX).all()  # and it can hold itself
    assert (servo_arm.Q_MIN < servo_arm.HOME_Q).all() and (servo_arm.HOME_Q < servo_arm.Q_MAX).all()


def test_loop_moves_base_joint_within_torque_limits(servo_model: mujoco.MjModel) -> None:
    with VirtualServoChain(IDS, initial_positions=servo_arm.HOME_Q) as chain:
        # Paced to wall time: the chain integrates its joints in real time, so loop time and the
        # chain's time agree (on a slow machine ticks overrun, the chain still gets its seconds).
        loop, backend = make_loop(chain, servo_model, WallClock())
        try:
            state = loop.reset(Command.joint(backend.read().q.copy(), stiffness=K))
            q0 = state.q.copy()
            np.testing.assert_allclose(q0, servo_arm.HOME_Q, atol=0.002)
            target = q0.copy()
            target[0] += 0.3
            cmd = Command.joint(target, stiffness=K)
            for _ in range(40):  # 2 s of loop time at 20 Hz
                loop.step(cmd)
            q = backend.read().q.copy()
            backend.deactivate()
        finally:
            backend.disconnect()
    assert abs(q[0] - target[0]) < TOL, f"base joint at {q[0]:.4f}, target {target[0]:.4f}"
    assert abs(chain.position(1) - target[0]) < TOL  # the servo itself, not only its report
    applied = np.array(backend.applied)
    requested = np.array(backend.requested)
    assert len(applied) == loop.tick_count == 1000  # no fault: every tick wrote
    assert (np.abs(applied) <= servo_arm.TAU_MAX + 1e-12).all(), np.abs(applied).max(axis=0)
    assert (np.abs(requested) <= servo_arm.TAU_MAX + 1e-12).all()
    assert np.abs(applied[:, 0]).max() > 0.1  # the base joint was driven, not just held
    assert loop.events.counts()["read_error"] == 0


def test_loop_holds_on_corrupted_replies(servo_model: mujoco.MjModel) -> None:
    # The faults start after the reset and stop before the deactivation: a failed read during
    # configure/reset or a failed confirmed write on the way out raises, by design, and would
    # make the test depend on the draw. The chain's generator is seeded once, at construction.
    with VirtualServoChain(IDS, faults=Faults(seed=3), initial_positions=servo_arm.HOME_Q) as chain:
        loop, backend = make_loop(chain, servo_model, SimClock())
        try:
            state = loop.reset(Command.joint(backend.read().q.copy(), stiffness=K))
            hold = Command.joint(state.q.copy(), stiffness=K)
            chain.faults = Faults(corrupt_rate=0.05, seed=3)
            held = 0
            for _ in range(20):  # 500 fast ticks
                held += loop.step(hold).held_ticks
            chain.faults = Faults()
            holds = backend.holds  # deactivate() adds one of its own
            backend.deactivate()
        finally:
            backend.disconnect()
    assert loop.tick_count == 500
    assert chain.stats.corrupted > 0
    read_errors = loop.events.ticks["read_error"]  # ticks held for a failed read
    assert read_errors > 0 and loop.events.counts()["read_error"] > 0
    assert read_errors == backend.read_errors == held
    assert holds == held
    assert backend.writes == 500 - held  # every other tick wrote
    assert (np.abs(np.array(backend.applied)) <= servo_arm.TAU_MAX + 1e-12).all()
