"""Backends: the lifecycle contract, and the state the MuJoCo backend reports checked against
MuJoCo's own functions while the arm moves and presses on a table."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from conftest import ROT_K, TABLE_TOP

from robot_brain.envs import panda
from robot_brain.hardware import BackendError, Lifecycle, MockBackend, MujocoBackend, NotActiveError


@pytest.fixture
def arm_model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(panda.build_mjcf())


def _backends(model):
    return [MockBackend(7), MujocoBackend(model)]


# -- lifecycle ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mock", "mujoco"])
def test_lifecycle(arm_model, kind):
    b = MockBackend(7) if kind == "mock" else MujocoBackend(arm_model)
    tau = np.zeros(7)
    assert b.lifecycle is Lifecycle.UNCONFIGURED
    with pytest.raises(NotActiveError, match="configured"):
        b.read()  # read refused before configure
    with pytest.raises(NotActiveError, match="not active"):
        b.write(tau)
    b.configure()
    assert b.read().q.shape == (7,)  # configured: readable ...
    with pytest.raises(NotActiveError, match="inactive, not active"):
        b.write(tau)  # ... but commands refused
    b.activate()
    assert b.active
    b.write(tau)
    b.hold()
    assert b.holding
    b.write(tau)
    assert not b.holding  # a write ends the hold
    b.deactivate()
    assert b.lifecycle is Lifecycle.INACTIVE and b.holding  # deactivating holds first
    with pytest.raises(NotActiveError):
        b.write(tau)
    b.activate()
    b.disconnect()
    assert b.lifecycle is Lifecycle.FINALIZED
    for call in (lambda: b.write(tau), b.read):
        with pytest.raises(NotActiveError):
            call()
    with pytest.raises(BackendError, match="disconnected"):
        b.activate()  # disconnect is final
    b.disconnect()  # idempotent
    b.hold()  # a hold after disconnect is a no-op, never an error


def test_context_manager_ends_in_disconnect_even_on_error(arm_model):
    for b in _backends(arm_model):
        with pytest.raises(RuntimeError, match="boom"), b:
            assert b.active
            b.write(np.zeros(7))
            raise RuntimeError("boom")
        assert b.lifecycle is Lifecycle.FINALIZED


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_mujoco_write_refuses_nonfinite_torque(arm_model, bad):
    b = MujocoBackend(arm_model)
    b.activate()
    t0, qpos0 = b.time, b.data.qpos.copy()
    tau = np.zeros(7)
    tau[4] = bad
    with pytest.raises(ValueError, match="non-finite"):
        b.write(tau)
    assert b.time == t0  # nothing was stepped
    np.testing.assert_array_equal(b.data.qpos, qpos0)
    np.testing.assert_array_equal(b.data.ctrl, 0.0)


def test_mujoco_write_clips_to_torque_limits(arm_model):
    b = MujocoBackend(arm_model)
    b.activate()
    applied = b.write(np.full(7, 500.0))
    np.testing.assert_array_equal(applied, panda.TAU_MAX)  # returns what was actually applied
    np.testing.assert_array_equal(b.data.ctrl, panda.TAU_MAX)


def test_mujoco_backend_construction_errors(arm_model):
    with pytest.raises(ValueError, match="multiple of the model timestep"):
        MujocoBackend(arm_model, control_dt=0.0015)
    with pytest.raises(ValueError, match="site 'nope'"):
        MujocoBackend(arm_model, ee_site="nope")
    with pytest.raises(ValueError, match="body 'nope'"):
        MujocoBackend(arm_model, tool_body="nope")
    with pytest.raises(ValueError, match="hold_rate_max"):
        MujocoBackend(arm_model, hold_rate_max=0.0)
    assert MujocoBackend(arm_model, control_dt=0.004).substeps == 4


def test_mujoco_hold_brakes_to_rest_at_limited_torque_rate(arm_model):
    """The safe stop: from a fast swing, hold ramps the torque (<= 1000 N m/s) to gravity
    compensation + damping and brings the arm to rest near where it was."""
    b = MujocoBackend(arm_model)
    b.set_state(panda.HOME_Q, dq=[1.0, 0.5, -0.5, 0.5, 1.0, 1.0, 1.0])
    b.activate()
    b.read()
    ctrl = [b.data.ctrl[:7].copy()]
    for _ in range(1000):
        b.hold()
        ctrl.append(b.data.ctrl[:7].copy())
    assert np.abs(np.diff(ctrl, axis=0)).max() <= 1000.0 * b.dt + 1e-9
    assert np.abs(b.data.qvel[:7]).max() < 1e-2  # at rest
    assert np.abs(b.data.qpos[:7] - panda.HOME_Q).max() < 0.2


# -- RobotState from MuJoCo -----------------------------------------------------------------------
def test_ee_velocity_matches_mujoco_object_velocity(make_arm):
    """``ee_vel`` (lin, rot) equals ``mj_objectVelocity`` of the tool site while the arm moves."""
    arm = make_arm()
    m, d = arm.model, arm.data
    cmd = arm.hold_command(stiffness=(800.0, 800.0, 800.0, 30.0, 30.0, 30.0),
                           position=arm.loop.state.ee_pos + np.array([0.1, -0.15, -0.1]))
    site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, panda.EE_SITE)
    res = np.zeros(6)
    speeds = []
    for _ in range(10):
        arm.loop.step(cmd)
        s = arm.backend.read()  # fresh state for the current physics step
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_SITE, site, res, 0)  # (rot, lin), world
        np.testing.assert_allclose(s.ee_vel[:3], res[3:], atol=1e-12)
        np.testing.assert_allclose(s.ee_vel[3:], res[:3], atol=1e-12)
        np.testing.assert_allclose(s.ee_pos, d.site_xpos[site])
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[site])
        assert abs(abs(float(np.dot(quat, s.ee_quat))) - 1.0) < 1e-12
        speeds.append(np.linalg.norm(res[3:]))
    assert max(speeds) > 0.05  # it really moved


def _contact_force_on_tool(m: mujoco.MjModel, d: mujoco.MjData, tool_body: int) -> np.ndarray:
    """Sum of the contact forces acting on the tool body, world frame, from ``mj_contactForce``."""
    total, f6 = np.zeros(3), np.zeros(6)
    for i in range(d.ncon):
        c = d.contact[i]
        b1, b2 = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
        mujoco.mj_contactForce(m, d, i, f6)
        f_world = c.frame.reshape(3, 3).T @ f6[:3]  # force of geom1 on geom2
        if b2 == tool_body:
            total += f_world
        elif b1 == tool_body:
            total -= f_world
    return total


def test_wrench_equals_contact_force_when_pressing_on_a_table(make_arm):
    """Press the peg 3 cm into a table with K_z = 400 N/m: the reported wrench equals the contact
    force MuJoCo computes, it pushes up, and it balances the spring (|F_z| = K_z e_z)."""
    arm = make_arm(table=True)
    m, d = arm.model, arm.data
    k = np.array([1000.0, 1000.0, 400.0, ROT_K, ROT_K, ROT_K])
    target = np.array([0.4, 0.0, TABLE_TOP - 0.03])
    cmd = arm.hold_command(stiffness=k, position=target)
    arm.run(cmd, 2.5)
    expected = _contact_force_on_tool(m, d, arm.backend.tool_id)  # forces of the last step
    s = arm.backend.read()  # reports the last step's contact wrench
    assert expected[2] > 5.0  # really pressing, upward on the peg
    np.testing.assert_allclose(s.wrench[:3], expected, rtol=1e-6, atol=1e-6)
    assert s.contact_force == pytest.approx(np.linalg.norm(expected), rel=1e-6)
    spring_z = k[2] * (target[2] - s.ee_pos[2])  # controller's pull along z (negative: down)
    assert s.wrench[2] == pytest.approx(-spring_z, rel=0.02)  # static balance


def test_free_arm_reports_no_contact(make_arm):
    arm = make_arm(table=True)
    arm.run(arm.hold_command(), 0.2)
    s = arm.backend.read()
    assert s.contact_force == 0.0 and not s.wrench.any()


def test_impedance_backend_runs_the_law_itself_in_the_same_loop(arm_model):
    """The ``impedance`` interface in simulation: the loop hands the setpoint to the backend
    (no controller or limiter of the brain's), and the arm's own law holds it: a 20 N push
    along x against 1000 N/m deflects the tool by F/K = 2 cm."""
    from robot_brain.controllers import Command, TorqueLimiter
    from robot_brain.hardware import MujocoImpedanceBackend
    from robot_brain.runtime import TwoRateLoop

    backend = MujocoImpedanceBackend(arm_model)
    backend.set_state(panda.HOME_Q)
    backend.activate()
    start = backend.read().copy()

    class NoController:  # the loop must not call the brain's controller for this backend
        def torque(self, state, setpoint):
            raise AssertionError("the impedance backend makes the torque")

    limiter = TorqueLimiter(panda.TAU_MAX, panda.TAU_RATE_MAX, backend.dt)
    loop = TwoRateLoop(backend, NoController(), limiter)
    k = 1000.0
    hold = Command.cartesian(start.ee_pos, start.ee_quat, (k, k, k, 60.0, 60.0, 60.0))
    loop.reset(hold, tau0=backend.data.qfrc_bias[:7].copy())
    for _ in range(20):
        loop.step(hold)
    assert np.linalg.norm(loop.state.ee_pos - start.ee_pos) < 1e-3
    backend.apply_wrench([20.0, 0, 0, 0, 0, 0])
    for _ in range(60):  # 3 s: settled
        loop.step(hold)
    dx = loop.state.ee_pos[0] - start.ee_pos[0]
    assert dx == pytest.approx(20.0 / k, rel=0.1)
    assert backend.setpoint is not None and backend.setpoint.position is not None
    with pytest.raises(ValueError, match="Cartesian"):
        backend.write_setpoint(Command.joint(panda.HOME_Q))
    effort = MujocoBackend(arm_model)
    effort.activate()
    with pytest.raises(BackendError, match="takes torques"):
        effort.write_setpoint(hold)
