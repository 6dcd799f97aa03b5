"""The controllers, proved by their physical effect on the simulated arm (real MuJoCo physics).

Every test runs the full two-rate stack (interpolator -> controller -> torque limiter ->
MujocoBackend) and measures what the arm does: deflection under a known force, step response,
drift under gravity, torque sequences, joint stiffness.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from conftest import DOWN, ROT_K

from robot_brain.controllers import (
    CartesianImpedance,
    Command,
    JointImpedance,
    RobotModel,
    SetpointInterpolator,
    TorqueLimiter,
)
from robot_brain.envs import panda
from robot_brain.runtime import LoopConfig, TwoRateLoop

AXES = "xyz"


def stiff(k_trans: float, k_rot: float = ROT_K) -> tuple[float, ...]:
    return (k_trans,) * 3 + (k_rot,) * 3


# -- Cartesian stiffness: deflection = F / K -------------------------------------------------------
@pytest.mark.parametrize("k", [300.0, 1000.0])
@pytest.mark.parametrize("axis", [0, 1, 2], ids=list(AXES))
def test_steady_state_deflection_is_force_over_stiffness(make_arm, k, axis):
    """A constant force F on the tool moves it by F/K along F (gravity compensated), per axis."""
    arm = make_arm()
    cmd = arm.hold_command(stiffness=stiff(k))
    arm.run(cmd, 0.5)
    p0 = arm.loop.state.ee_pos.copy()  # no-force equilibrium
    force = 8.0 * (1 if axis != 1 else -1)
    wrench = np.zeros(6)
    wrench[axis] = force
    arm.backend.apply_wrench(wrench)
    arm.run(cmd, 2.5)
    state = arm.loop.state
    deflection = state.ee_pos - p0
    expected = force / k
    assert deflection[axis] == pytest.approx(expected, rel=0.10), (
        f"K={k} N/m, F={force} N on {AXES[axis]}: deflection {deflection[axis]:.5f} m, "
        f"expected {expected:.5f} m")
    # The other axes stay put (within 10 % of the stepped axis' deflection).
    others = np.delete(deflection, axis)
    assert np.abs(others).max() < 0.1 * abs(expected)
    assert np.linalg.norm(state.ee_vel[:3]) < 1e-3  # it is a steady state


@pytest.mark.parametrize("axis", [0, 1, 2], ids=list(AXES))
def test_rotational_deflection_is_torque_over_stiffness(make_arm, axis):
    """A pure torque T on the tool turns it by T/K_rot about that axis; the tip does not move."""
    k_rot = 30.0
    arm = make_arm()
    cmd = arm.hold_command(stiffness=stiff(1000.0, k_rot))
    arm.run(cmd, 0.5)
    q0, p0 = arm.loop.state.ee_quat.copy(), arm.loop.state.ee_pos.copy()
    wrench = np.zeros(6)
    wrench[3 + axis] = 1.0
    arm.backend.apply_wrench(wrench)
    arm.run(cmd, 2.0)
    s = arm.loop.state
    q_err, neg, rotvec = np.zeros(4), np.zeros(4), np.zeros(3)
    mujoco.mju_negQuat(neg, q0)
    mujoco.mju_mulQuat(q_err, s.ee_quat, neg)
    mujoco.mju_quat2Vel(rotvec, q_err, 1.0)  # world-frame rotation q0 -> q1
    assert rotvec[axis] == pytest.approx(1.0 / k_rot, rel=0.10)
    assert np.linalg.norm(s.ee_pos - p0) < 1e-4


# -- Step response -------------------------------------------------------------------------------
def _step_response(make_arm, k: float, axis: int, step: float, zeta: float) -> np.ndarray:
    """Normalised response (0 -> 1) of ``axis`` to a setpoint jump of ``step`` metres.

    ``policy_hz == control_hz`` makes the interpolator ramp over a single tick, i.e. a true jump.
    """
    arm = make_arm(policy_hz=1000.0)
    p0 = arm.loop.state.ee_pos.copy()
    target = p0.copy()
    target[axis] += step
    trace = arm.trace(arm.hold_command(stiffness=stiff(k), damping_ratio=zeta, position=target), 1.5)
    return (trace[:, axis] - p0[axis]) / step


@pytest.mark.parametrize("k", [300.0, 1000.0])
@pytest.mark.parametrize("axis", [0, 1, 2], ids=list(AXES))
def test_critically_damped_step_has_no_overshoot(make_arm, k, axis):
    """zeta = 1: a 5 cm setpoint jump overshoots by at most 5 % of the step."""
    x = _step_response(make_arm, k, axis, 0.05, 1.0)
    assert x.max() - 1.0 <= 0.05, f"overshoot {100 * (x.max() - 1):.1f} % of the step"
    assert x[-1] > 0.95  # and it does get there


def test_underdamped_step_overshoots(make_arm):
    """The overshoot check can fail: zeta = 0.3 overshoots by well over 5 %."""
    x = _step_response(make_arm, 1000.0, 0, 0.05, 0.3)
    assert x.max() - 1.0 > 0.08


# -- Gravity compensation --------------------------------------------------------------------------
def test_gravity_compensation_floats_with_zero_stiffness(make_arm):
    """Zero translational and rotational stiffness at home: the tip moves < 2 mm in 2 s."""
    arm = make_arm()
    p0 = arm.loop.state.ee_pos.copy()
    trace = arm.trace(arm.hold_command(stiffness=0.0), 2.0)
    drift = np.linalg.norm(trace - p0, axis=1).max()
    assert drift < 0.002, f"tool drifted {1000 * drift:.2f} mm"


def test_without_bias_compensation_the_arm_falls(make_arm):
    """Control for the test above: the same run minus the bias torques drifts by far more."""
    arm = make_arm()
    controller = arm.controller

    class NoBias:
        def torque(self, state, setpoint):
            tau = controller.torque(state, setpoint)
            tau -= controller.model.bias
            return tau

    arm.loop.controller = NoBias()
    p0 = arm.loop.state.ee_pos.copy()
    trace = arm.trace(arm.hold_command(stiffness=0.0), 0.5)
    assert np.linalg.norm(trace - p0, axis=1).max() > 0.02


# -- Torque and torque-rate limits -------------------------------------------------------------------
def test_torque_and_rate_limits_never_exceeded(make_arm):
    """Violent random commands (far targets, random orientations, stiffness up to 5000 N/m, some
    NaN commands that force holds): every actuator torque of every physics tick stays within
    TAU_MAX, and changes by at most 1000 N m/s * dt from one tick to the next."""
    rng = np.random.default_rng(0)
    arm = make_arm()
    tau0 = arm.limiter.prev.copy()  # the loop starts from gravity compensation
    for i in range(40):
        quat = rng.normal(size=4)
        k = np.concatenate([rng.uniform(0, 5000, 3), rng.uniform(0, 300, 3)])
        cmd = Command.cartesian(rng.uniform([-0.8, -0.8, -0.2], [0.8, 0.8, 1.2]),
                                quat / np.linalg.norm(quat), k, rng.uniform(0.1, 2.0))
        if i % 10 == 7:
            cmd.position[0] = np.nan  # the loop holds for this slow tick
        arm.loop.step(cmd)
    ctrl = np.array([tau0, *arm.backend.ctrl])
    assert len(ctrl) == 1 + 40 * 50
    assert arm.backend.holds == 4 * 50
    counts = arm.loop.events.counts()
    assert counts["torque_limit"] > 0 and counts["torque_rate"] > 0  # the limits were engaged
    assert np.all(np.abs(ctrl) <= panda.TAU_MAX + 1e-9)
    max_step = panda.TAU_RATE_MAX * arm.loop.config.control_dt
    rate = np.abs(np.diff(ctrl, axis=0)).max()
    assert rate <= max_step + 1e-9, f"torque changed by {rate} N m in one tick"


def test_torque_limiter_clips_rate_then_magnitude():
    lim = TorqueLimiter([10.0, 10.0], 1000.0, 0.001)
    lim.reset([0.0, 9.5])
    out = lim(np.array([5.0, 50.0]))
    np.testing.assert_allclose(out, [1.0, 10.0])  # rate-limited to +1, then saturated at 10
    assert lim.flags == 1 | 2
    out = lim(np.array([np.nan, -np.inf]))
    np.testing.assert_allclose(out, [1.0, 10.0])  # non-finite: the previous torque is kept
    assert lim.flags & 4
    with pytest.raises(ValueError, match="tau_max"):
        TorqueLimiter([10.0, 0.0], 1000.0, 0.001)
    with pytest.raises(ValueError, match="dt"):
        TorqueLimiter([10.0], 1000.0, 0.0)


# -- Damping law --------------------------------------------------------------------------------
def test_damping_is_two_zeta_sqrt_k_lambda(make_arm):
    """The damping the controller used equals 2 zeta sqrt(K_i Lambda_ii) with Lambda from the model."""
    arm = make_arm()
    k = np.array([300.0, 1000.0, 2000.0, 10.0, 60.0, 300.0])
    zeta = np.array([1.0, 0.7, 1.0, 0.5, 1.0, 1.2])
    cmd = Command.cartesian(arm.loop.state.ee_pos, DOWN, k, zeta)
    state = arm.backend.read()
    arm.controller.torque(state, cmd)
    lam = arm.robot.task_inertia()
    np.testing.assert_allclose(arm.controller.damping, 2 * zeta * np.sqrt(k * np.diag(lam)), rtol=1e-4)


def test_null_space_posture_does_not_move_the_tool(make_arm):
    """A strong posture spring toward a different elbow angle: the tool tip stays within 1 mm,
    while the elbow does move (the dynamically consistent projector at work)."""
    arm = make_arm(k_null=30.0)
    arm.controller.q_null[2] += 0.3  # swing the redundant elbow
    p0 = arm.loop.state.ee_pos.copy()
    q_start = arm.loop.state.q.copy()
    trace = arm.trace(arm.hold_command(stiffness=stiff(1000.0)), 2.0)
    assert np.linalg.norm(trace - p0, axis=1).max() < 1e-3
    assert abs(arm.loop.state.q[2] - q_start[2]) > 0.05


# -- Joint impedance -----------------------------------------------------------------------------
def _joint_loop(backend, robot):
    config = LoopConfig(policy_hz=20.0, control_hz=1000.0)
    limiter = TorqueLimiter(panda.TAU_MAX, panda.TAU_RATE_MAX, config.control_dt)
    return TwoRateLoop(backend, JointImpedance(robot), limiter, config=config)


def test_joint_impedance_holds_a_joint_target(make_arm):
    arm = make_arm()
    loop = _joint_loop(arm.backend, arm.robot)
    q_target = panda.HOME_Q + np.array([0.2, -0.1, 0.15, 0.2, -0.3, 0.2, 0.3])
    k = np.array([300.0, 300.0, 300.0, 300.0, 50.0, 50.0, 50.0])
    loop.reset(Command.joint(panda.HOME_Q, k), tau0=arm.robot.bias.copy())
    cmd = Command.joint(q_target, k)
    for _ in range(40):  # 2 s
        loop.step(cmd)
    np.testing.assert_allclose(loop.state.q, q_target, atol=2e-3)
    assert np.abs(loop.state.dq).max() < 1e-2


def test_joint_stiffness_deflection(make_arm):
    """A constant joint torque tau on joint 4 deflects it by tau/K."""
    arm = make_arm()
    loop = _joint_loop(arm.backend, arm.robot)
    k = np.full(7, 200.0)
    cmd = Command.joint(panda.HOME_Q, k)
    loop.reset(cmd, tau0=arm.robot.bias.copy())
    arm.data.qfrc_applied[3] = 5.0
    for _ in range(40):
        loop.step(cmd)
    assert loop.state.q[3] - panda.HOME_Q[3] == pytest.approx(5.0 / 200.0, rel=0.05)


# -- Model --------------------------------------------------------------------------------------
def test_inverse_kinematics_reaches_targets(make_arm):
    arm = make_arm()
    robot: RobotModel = arm.robot
    for target in ([0.45, 0.1, 0.3], [0.35, -0.2, 0.45], [0.6, 0.0, 0.25]):
        q = robot.inverse_kinematics(target, quat=DOWN, q0=panda.HOME_Q)
        arm.backend.set_state(q)
        s = arm.backend.read()
        assert np.linalg.norm(s.ee_pos - target) < 1e-4
        assert abs(abs(float(np.dot(s.ee_quat, DOWN))) - 1.0) < 1e-6
        assert np.all(q >= panda.Q_MIN) and np.all(q <= panda.Q_MAX)
    with pytest.raises(ValueError, match="did not converge"):
        robot.inverse_kinematics([3.0, 0.0, 0.3], iters=50)


def test_cartesian_impedance_rejects_bad_null_posture(make_arm):
    from robot_brain.controllers import CartesianImpedanceConfig

    arm = make_arm()
    with pytest.raises(ValueError, match="q_null"):
        CartesianImpedance(arm.robot, CartesianImpedanceConfig(q_null=(0.0, 0.0)))


# -- Interpolator -------------------------------------------------------------------------------
def _quat(axis, angle):
    q = np.zeros(4)
    mujoco.mju_axisAngle2Quat(q, np.asarray(axis, dtype=np.float64), angle)
    return q


def test_interpolator_reaches_target_on_a_straight_line():
    steps = 50
    interp = SetpointInterpolator(steps)
    start = Command.cartesian([0.3, 0.0, 0.4], DOWN, stiff(200.0, 20.0))
    q_goal = np.zeros(4)
    mujoco.mju_mulQuat(q_goal, _quat([0, 0, 1], 0.8), np.array(DOWN))
    target = Command.cartesian([0.5, -0.1, 0.2], q_goal, stiff(1200.0, 80.0), damping_ratio=0.7)
    interp.reset(start)
    interp.set_target(target)
    p0, p1 = start.position, target.position
    angles = []
    for i in range(1, steps + 1):
        sp = interp.step()
        s = i / steps
        np.testing.assert_allclose(sp.position, p0 + s * (p1 - p0), atol=1e-12)  # on the line
        np.testing.assert_allclose(sp.stiffness, start.stiffness + s * (target.stiffness - start.stiffness))
        np.testing.assert_allclose(sp.damping_ratio, 0.7)  # switches at once
        angles.append(2 * np.arccos(min(1.0, abs(float(np.dot(sp.orientation, DOWN))))))
        assert interp.done == (i == steps)
    np.testing.assert_array_equal(sp.position, p1)  # exactly, after ``steps`` ticks
    assert abs(abs(float(np.dot(sp.orientation, q_goal))) - 1.0) < 1e-12
    np.testing.assert_allclose(np.diff(angles), 0.8 / steps, rtol=1e-6)  # slerp: constant rate
    sp = interp.step()  # holds once there
    np.testing.assert_array_equal(sp.position, p1)


def test_interpolator_joint_mode_and_retarget():
    interp = SetpointInterpolator(4)
    interp.reset(Command.joint(np.zeros(7), 100.0))
    interp.set_target(Command.joint(np.ones(7), 200.0))
    interp.step()
    interp.step()
    np.testing.assert_allclose(interp.setpoint.joint_position, 0.5)
    interp.set_target(Command.joint(-np.ones(7), 200.0))  # new target mid-ramp: from 0.5
    for _ in range(4):
        sp = interp.step()
    np.testing.assert_allclose(sp.joint_position, -1.0)
    np.testing.assert_allclose(sp.stiffness, 200.0)
    with pytest.raises(ValueError, match="steps"):
        SetpointInterpolator(0)
    with pytest.raises(ValueError, match="steps"):
        SetpointInterpolator(2.5)


@pytest.mark.parametrize("at_tick, ramp", [(10, 41), (40, 25), (50, 25)])
def test_interpolator_restart_ramps_from_the_executed_setpoint_to_the_target(at_tick, ramp):
    """A reflex lets go on tick ``at_tick`` of a 50-tick ramp, having executed a setpoint off the
    line: the new ramp starts there (no jump) and reaches the target by the end of the slow tick,
    in no fewer than 25 ticks (after the ramp has ended too), orientation included."""
    steps = 50
    interp = SetpointInterpolator(steps)
    q_goal = np.zeros(4)
    mujoco.mju_mulQuat(q_goal, _quat([0, 0, 1], 0.6), np.array(DOWN))
    target = Command.cartesian([0.5, -0.1, 0.2], q_goal, stiff(1200.0, 80.0))
    interp.reset(Command.cartesian([0.3, 0.0, 0.4], DOWN, stiff(200.0, 20.0)))
    interp.set_target(target)
    for _ in range(at_tick):
        interp.step()
    executed = Command.cartesian([0.25, 0.05, 0.45], _quat([1, 0, 0], np.pi), stiff(400.0, 20.0))
    sp = interp.restart(executed)
    first = (target.position - executed.position) / ramp
    np.testing.assert_allclose(sp.position, executed.position + first, atol=1e-12)
    k0, k1 = executed.stiffness, target.stiffness
    np.testing.assert_allclose(sp.stiffness, k0 + (k1 - k0) / ramp)
    for i in range(2, ramp + 1):
        prev = sp.position.copy()
        sp = interp.step()
        np.testing.assert_allclose(sp.position - prev, first, atol=1e-12)  # even steps, no jump
        assert interp.done == (i == ramp)
    np.testing.assert_allclose(sp.position, target.position, atol=1e-12)
    np.testing.assert_allclose(sp.stiffness, target.stiffness)
    assert abs(abs(float(np.dot(sp.orientation, q_goal))) - 1.0) < 1e-9


def test_command_shapes_are_checked():
    with pytest.raises(ValueError, match="stiffness"):
        Command.cartesian([0, 0, 0], stiffness=[1.0, 2.0])
    with pytest.raises(ValueError, match="position"):
        Command.cartesian([0, 0])
    c = Command.cartesian([0, 0, 0], stiffness=100.0)
    assert c.stiffness.shape == (6,) and c.is_finite()
    c.stiffness[4] = np.inf
    assert not c.is_finite()
