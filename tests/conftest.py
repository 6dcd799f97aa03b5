"""Shared fixtures: a small arm world with the real control stack, and a recording mock stack.

``make_arm`` builds the same pipeline the tasks use (Panda MJCF -> MujocoBackend ->
CartesianImpedance -> TorqueLimiter -> TwoRateLoop), optionally with a table and the limits
reflex, with every torque handed to ``backend.write`` recorded, so tests can check physics and
limits by their effects.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np
import pytest

from robot_brain.controllers import CartesianImpedance, Command, RobotModel, TorqueLimiter
from robot_brain.envs import panda
from robot_brain.hardware import MockBackend, MujocoBackend
from robot_brain.runtime import LoopConfig, TwoRateLoop
from robot_brain.safety import LimitsConfig, LimitsReflex, Reflex

DOWN = (0.0, 1.0, 0.0, 0.0)  # tool pointing down (180 deg about x), as in the tasks
TABLE_TOP = 0.2  # m, height of the table surface in the ``table=True`` world
ROT_K = 60.0  # N m/rad, rotational stiffness the tasks use

# Several tests stop a child process with SIGINT, as Ctrl-C would. A shell that starts pytest in
# the background (`pytest &` in a script) leaves SIGINT ignored, every child inherits the ignore,
# and those children would never see the Ctrl-C. A handler (unlike an ignore) is reset to the
# default in a child, so installing Python's own makes the children's Ctrl-C work wherever pytest
# was started.
signal.signal(signal.SIGINT, signal.default_int_handler)


def table_xml(top: float = TABLE_TOP) -> str:
    """A table whose top is at ``top`` [m], in reach of the peg, colliding with it."""
    return (f'<geom name="table" type="box" pos="0.5 0 {top - 0.02}" size="0.3 0.4 0.02" '
            f'contype="1" conaffinity="1" rgba="0.6 0.5 0.4 1"/>')


class RecordingMujocoBackend(MujocoBackend):
    """MujocoBackend that records what ``write`` was asked to send (``requested``) and the
    actuator torque of every physics tick, writes and holds alike (``ctrl``)."""

    def __init__(self, model: mujoco.MjModel, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.requested: list[np.ndarray] = []
        self.ctrl: list[np.ndarray] = []
        self.holds = 0

    def _write(self, command: np.ndarray) -> np.ndarray:
        self.requested.append(np.array(command, dtype=np.float64))
        return super()._write(command)

    def _hold(self) -> None:
        self.holds += 1
        super()._hold()

    def _step(self, tau: np.ndarray) -> None:
        super()._step(tau)
        self.ctrl.append(self.data.ctrl[: self.n_joints].copy())


@dataclass
class Arm:
    """The arm stack of one test: physics, model, controller, limiter, loop."""

    model: mujoco.MjModel
    backend: RecordingMujocoBackend
    robot: RobotModel
    controller: CartesianImpedance
    limiter: TorqueLimiter
    loop: TwoRateLoop

    @property
    def data(self) -> mujoco.MjData:
        return self.backend.data

    def hold_command(self, stiffness=(1000.0, 1000.0, 1000.0, ROT_K, ROT_K, ROT_K),
                     damping_ratio: float = 1.0, position=None) -> Command:
        """Cartesian command holding the current tool pose (or ``position``), tool down."""
        pos = self.loop.state.ee_pos.copy() if position is None else position
        return Command.cartesian(pos, DOWN, stiffness, damping_ratio)

    def reset(self, command: Command | None = None) -> Command:
        """Start the loop from the current pose with gravity compensation already applied."""
        self.backend.activate()
        state = self.backend.read()
        cmd = command or Command.cartesian(state.ee_pos.copy(), DOWN,
                                           (1000.0, 1000.0, 1000.0, ROT_K, ROT_K, ROT_K))
        self.loop.reset(cmd, tau0=self.robot.bias.copy())
        return cmd

    def run(self, command: Command, seconds: float) -> None:
        """Send ``command`` at every slow tick for ``seconds`` of simulated time."""
        for _ in range(round(seconds * self.loop.config.policy_hz)):
            self.loop.step(command)

    def trace(self, command: Command, seconds: float) -> np.ndarray:
        """Like :meth:`run`, returning the tool-tip position after every slow tick, (steps, 3).

        Build the arm with ``policy_hz == control_hz`` for one sample per fast tick (and a setpoint
        that jumps at once: the interpolator then ramps over a single tick).
        """
        out = []
        for _ in range(round(seconds * self.loop.config.policy_hz)):
            self.loop.step(command)
            out.append(self.loop.state.ee_pos.copy())
        return np.array(out)


def build_arm(*, table: bool = False, reflex: Reflex | str | None = None, policy_hz: float = 20.0,
              control_hz: float = 1000.0, q0=None, k_null: float | None = None) -> Arm:
    """Arm at ``q0`` (default: home) under the full two-rate stack; see module docstring."""
    xml = panda.build_mjcf(table_xml() if table else "", name="test_arm")
    model = mujoco.MjModel.from_xml_string(xml)
    config = LoopConfig(policy_hz=policy_hz, control_hz=control_hz)
    backend = RecordingMujocoBackend(model, control_dt=config.control_dt)
    q0 = panda.HOME_Q if q0 is None else np.asarray(q0, dtype=np.float64)
    backend.set_state(q0)
    robot = backend.robot_model
    controller = CartesianImpedance(robot)
    controller.q_null[:] = q0
    if k_null is not None:
        controller.k_null[:] = k_null
    limiter = TorqueLimiter(panda.TAU_MAX, panda.TAU_RATE_MAX, config.control_dt)
    if reflex == "limits":
        reflex = LimitsReflex(LimitsConfig(q_min=tuple(panda.Q_MIN), q_max=tuple(panda.Q_MAX)))
    loop = TwoRateLoop(backend, controller, limiter, reflex=reflex, config=config)
    arm = Arm(model, backend, robot, controller, limiter, loop)
    arm.reset()
    return arm


@pytest.fixture
def make_arm() -> Callable[..., Arm]:
    """Factory fixture: ``make_arm(table=False, reflex=None, policy_hz=20, control_hz=1000)``."""
    return build_arm


class EchoController:
    """Joint PD toward zero with preallocated output: a stand-in controller for loop tests on the
    mock backend (the loop, not the control law, is under test there)."""

    def __init__(self, n: int = 7, gain: float = 1.0) -> None:
        self.tau = np.zeros(n)
        self.gain = gain
        self.calls = 0

    def torque(self, state, setpoint: Command) -> np.ndarray:
        self.calls += 1
        np.multiply(state.q, -self.gain, out=self.tau)
        # Pass the setpoint's numbers on, so a non-finite setpoint would show up in the torque.
        self.tau[:3] += 1e-3 * setpoint.position if setpoint.position is not None else 0.0
        self.tau[0] += 1e-3 * setpoint.stiffness[0]
        return self.tau


@dataclass
class MockStack:
    backend: MockBackend
    controller: EchoController
    limiter: TorqueLimiter
    loop: TwoRateLoop


def build_mock(*, policy_hz: float = 20.0, control_hz: float = 1000.0,
               state_timeout: float = 0.02, reflex: Reflex | None = None) -> MockStack:
    """The loop on a :class:`MockBackend` (records writes and holds) with a stand-in controller."""
    config = LoopConfig(policy_hz=policy_hz, control_hz=control_hz, state_timeout=state_timeout)
    backend = MockBackend(7, dt=config.control_dt, ee_pos=(0.5, 0.0, 0.4), ee_quat=DOWN)
    controller = EchoController()
    limiter = TorqueLimiter(panda.TAU_MAX, panda.TAU_RATE_MAX, config.control_dt)
    loop = TwoRateLoop(backend, controller, limiter, reflex=reflex, config=config)
    loop.reset(Command.cartesian((0.5, 0.0, 0.4), DOWN))
    return MockStack(backend, controller, limiter, loop)


@pytest.fixture
def make_mock() -> Callable[..., MockStack]:
    """Factory fixture: ``make_mock(policy_hz=20, control_hz=1000, state_timeout=0.02)``."""
    return build_mock
