"""Position-only servos (XL430-W250: no current control) under the brain's torque commands,
against the virtual servo chain on a real pty.

The backend turns each commanded joint torque into the goal position whose spring, the servo's
own position loop, pushes that torque: ``q_goal = q + tau / k_servo``. Checked by effect:

- the emulator's servo behaves like one in POSITION mode (its P gain register sets its
  stiffness; an XL430 refuses current mode and has no ``Goal_Current``; an XM430 ignores one);
- the backend's session (configure, activate, write, hold, exit) sends the SDK's bytes;
- a torque becomes a goal offset of ``tau / k_servo``, bounded, speed-limited, inside the
  calibrated range; a NaN never reaches the bus; a hold puts the goal on the present position;
- the two-rate loop on a position-servo arm reaches a base step, and an external torque deflects
  the arm by ``torque / K`` of the commanded stiffness ``K``, not of the servo's.
"""

from __future__ import annotations

import dataclasses
import math
import time

import mujoco
import numpy as np
import pytest
from test_dynamixel_protocol import FakePort, _Sdk  # the SDK's bytes, one stand-in for its port

from robot_brain.controllers import Command, JointImpedance, RobotModel, TorqueLimiter
from robot_brain.envs import servo_arm
from robot_brain.hardware.base import BackendError
from robot_brain.hardware.dynamixel import control_table as ct
from robot_brain.hardware.dynamixel.backend import DynamixelBackend
from robot_brain.hardware.dynamixel.bus import DynamixelBus
from robot_brain.hardware.dynamixel.calibration import Calibration
from robot_brain.hardware.dynamixel.protocol import Instruction, PacketDecoder, StatusError
from robot_brain.hardware.dynamixel.virtual import ArmPhysics, JointParams, VirtualServoChain
from robot_brain.runtime import LoopConfig, TwoRateLoop, WallClock

IDS = [1, 2, 3, 4, 5, 6]
XL = ct.XL430_W250
XM = ct.XM430_W350
RPT = XL.rad_per_tick
K_XL = XL.position_stiffness(XL.position_p_gain)  # 5.5 N m/rad at the factory gain 640
assert K_XL is not None
DT = 0.002
HZ = 1.0 / DT
SHIPPED_CAL = "launch/config/servo_arm_xl430.calibration.json"


def cal(ids=IDS, model=XL.model_number, **range_) -> Calibration:
    return Calibration.default(ids, model, **({"range_min": -1.5, "range_max": 1.5} | range_))


def make(chain: VirtualServoChain, calibration: Calibration | None = None, **kw) -> DynamixelBackend:
    return DynamixelBackend(DynamixelBus(chain.path, timeout=0.02, retries=2), calibration or cal(),
                            control_dt=DT, **kw)


def goal_ticks(chain: VirtualServoChain) -> list[int]:
    return [s.get(ct.GOAL_POSITION) for s in chain.servos.values()]


def present_ticks(chain: VirtualServoChain) -> list[int]:
    return [s.ticks() for s in chain.servos.values()]


def torque_on(chain: VirtualServoChain) -> list[int]:
    return [s.table[ct.TORQUE_ENABLE.address] for s in chain.servos.values()]


def settle(seconds: float) -> None:
    time.sleep(seconds)


def barrier(be: DynamixelBackend) -> None:
    """Wait until the chain has handled the backend's last sync write (which gets no reply): it
    handles packets in order, so the reply to a later request means it has."""
    be.bus.ping(be.ids[0])


# -- the emulated servo ------------------------------------------------------------------------------
def test_stiffness_formula():
    # k = P / 128 * stall torque / 885 * 4096 / (2 pi)
    assert K_XL == pytest.approx(640 / 128 * 1.5 / 885 * 4096 / (2 * math.pi))
    assert K_XL == pytest.approx(5.52, abs=0.01)
    assert XM.position_stiffness(800) == pytest.approx(18.9, abs=0.1)
    assert ct.XC330_M288.position_stiffness(800) is None  # no stall torque known
    no_current = {ct.OperatingMode.CURRENT, ct.OperatingMode.CURRENT_BASED_POSITION}
    assert XL.modes == set(ct.OperatingMode) - no_current


def test_xl430_refuses_current_mode_and_has_no_goal_current():
    with VirtualServoChain([1], XL.model_number) as chain, DynamixelBus(chain.path) as bus:
        with pytest.raises(StatusError, match="servo 1: data range error"):
            bus.set_operating_mode([1], ct.OperatingMode.CURRENT)
        with pytest.raises(StatusError, match="servo 1: access error"):
            bus.write(1, ct.GOAL_CURRENT.address, ct.GOAL_CURRENT.encode(100))
        bus.sync_write(ct.GOAL_CURRENT.address, 2, {1: ct.GOAL_CURRENT.encode(100)})  # no reply...
        assert bus.read(1, ct.GOAL_CURRENT.address, 2) == b"\x00\x00"  # ...and not taken
        assert bus.read(1, ct.OPERATING_MODE.address, 1)[0] == ct.OperatingMode.POSITION


@pytest.mark.parametrize("p_gain", [640, 1280])
def test_position_servo_tracks_its_goal_with_the_stiffness_of_its_p_gain(p_gain):
    """One XL430 on a free joint (inertia, friction, no gravity): it reaches a goal 200 ticks
    away, and a steady external torque then deflects it by torque / k_servo(P)."""
    with VirtualServoChain([1], XL.model_number, joint=JointParams(coulomb=0.0)) as chain, \
            DynamixelBus(chain.path) as bus:
        bus.write(1, ct.POSITION_P_GAIN.address, ct.POSITION_P_GAIN.encode(p_gain))
        bus.torque_enable([1], True)
        goal = 2048 + 200
        bus.write(1, ct.GOAL_POSITION.address, ct.GOAL_POSITION.encode(goal))
        settle(0.6)
        reached = chain.servos[1].ticks()
        chain.push(1, 0.1)
        settle(0.6)
        deflection = chain.position(1) - (goal - 2048) * RPT
    assert abs(reached - goal) <= 2
    k = XL.position_stiffness(p_gain)
    assert k is not None
    # 0.018 rad at 640, 0.009 at 1280; the encoder's tick (1.5 mrad) is the tolerance
    assert deflection == pytest.approx(0.1 / k, abs=1.5 * RPT)


def test_xm430_in_position_mode_ignores_goal_current():
    with VirtualServoChain([1], XM.model_number) as chain, DynamixelBus(chain.path) as bus:
        bus.set_operating_mode([1], ct.OperatingMode.POSITION)
        bus.torque_enable([1], True)
        bus.write(1, ct.GOAL_CURRENT.address, ct.GOAL_CURRENT.encode(800))  # accepted (e-manual)...
        settle(0.2)
        assert abs(chain.position(1)) < 2 * RPT  # ...and ignored: the servo holds its goal


# -- the backend ----------------------------------------------------------------------------------
@pytest.fixture
def chain():
    with VirtualServoChain(IDS, XL.model_number) as c:
        yield c


def test_auto_mode_is_position_for_xl430_and_configure_sets_it_up(chain):
    for s in chain.servos.values():  # a motion profile left on by another program
        s.put(ct.PROFILE_VELOCITY, 50)
    be = make(chain)
    assert be.control_mode == "position"
    be.configure()
    try:
        assert torque_on(chain) == [0] * 6  # nothing enabled by configure
        servos = list(chain.servos.values())
        assert {s.table[ct.OPERATING_MODE.address] for s in servos} == {ct.OperatingMode.POSITION}
        assert {s.get(ct.PROFILE_VELOCITY) for s in servos} == {0}
        np.testing.assert_allclose(be.position_stiffness, K_XL)
        np.testing.assert_allclose(be.limit_torque, XL.stall_torque)  # PWM_Limit 885: all of it
        be.activate()
        assert torque_on(chain) == [1] * 6
        assert goal_ticks(chain) == present_ticks(chain)  # no model: no gravity offset
    finally:
        be.disconnect()
    assert torque_on(chain) == [0] * 6


def test_p_gain_and_max_current_from_the_config(chain):
    with make(chain, position_p_gain=1280, max_current=0.5) as be:
        assert {s.get(ct.POSITION_P_GAIN) for s in chain.servos.values()} == {1280}
        np.testing.assert_allclose(be.position_stiffness, 2 * K_XL)
        np.testing.assert_allclose(be.limit_torque, 0.5 * XL.torque_constant)


def test_current_mode_on_a_servo_without_it_is_one_line(chain):
    with pytest.raises(ValueError, match="joint 'joint1': servo model XL430-W250 has no current "
                                         "control; run it in position mode") as e:
        make(chain, control_mode="current")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="has no known stall torque"):
        make(chain, cal(model=ct.XC330_M288.model_number), control_mode="position")


def test_zero_p_gain_is_one_line_and_nothing_enabled(chain):
    chain.servos[4].put(ct.POSITION_P_GAIN, 0)
    be = make(chain)
    with pytest.raises(BackendError, match=r"joint 'joint4' \(servo 4\) has Position_P_Gain 0") as e:
        be.configure()
    assert "\n" not in str(e.value)
    be.disconnect()
    assert torque_on(chain) == [0] * 6


def test_torque_becomes_a_goal_offset_of_tau_over_k(chain):
    with make(chain) as be:
        q = be.read().q.copy()
        tau = np.array([0.05, -0.05, 0.0, 0.04, 0.0, 0.0])  # offsets of 4.7-5.9 ticks: no speed limit
        sent = be.write(tau)
        barrier(be)
        expected = np.rint((q + tau / K_XL) / RPT).astype(int) + 2048
        assert goal_ticks(chain) == list(expected)
        # what was sent is the torque of whole ticks: within half a tick of k_servo
        np.testing.assert_allclose(sent, tau, atol=0.5 * RPT * K_XL + 1e-9)
        # The servo pushes the way the torque says. The chain's physics runs on wall time, so
        # push for 0.3 s of it (not a count of writes: a loaded machine sleeps longer per write
        # and a count left the margin at 7 %); 0.3 s moves joint 1 about 0.03 rad.
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            be.read()
            be.write(tau)
            time.sleep(DT)
        moved = be.read().q - q
    assert moved[0] > 0.01 and moved[1] < -0.01 and moved[3] > 0.005  # (Coulomb friction: 0.02 N m)
    assert abs(moved[2]) < 2 * RPT


def sent_goals(be: DynamixelBackend) -> list[np.ndarray]:
    """Record the goal ticks of every ``Goal_Position`` sync write the backend sends."""
    goals: list[np.ndarray] = []
    sync_write = be.bus.sync_write

    def spy(address: int, length: int, data):
        if address == ct.GOAL_POSITION.address:
            goals.append(np.array([ct.GOAL_POSITION.decode(data[i]) for i in be.ids]))
        return sync_write(address, length, data)

    be.bus.sync_write = spy  # type: ignore[method-assign]
    return goals


def test_goal_speed_limit_torque_bound_and_calibrated_range(chain):
    c = cal(range_min=-0.2, range_max=0.2)
    with make(chain, c, max_goal_speed=3.0, max_current=1.0) as be:
        step = 3.0 * DT  # rad per write
        bound = 1.0 * XL.torque_constant
        goals = sent_goals(be)
        for _ in range(150):  # 0.3 s of writes pushing hard toward +
            s = be.read()
            sent = be.write(np.full(6, 100.0))
            # no more spring than the torque bound (give or take the goal's rounding to a tick)
            assert (sent <= bound + 0.5 * RPT * K_XL + 1e-9).all()
            assert (s.q + sent / K_XL <= 0.2 + 0.5 * RPT).all()
            time.sleep(DT)
        q = be.read().q
        limited = be.goal_rate_limited
    ticks = np.array(goals[:150])
    assert len(ticks) == 150
    assert np.diff(ticks, axis=0).max() <= math.ceil(step / RPT)  # 6 mrad: 4 ticks a write
    assert ticks.max() <= 2048 + round(0.2 / RPT)  # the goal never left the range
    assert limited > 0
    np.testing.assert_allclose(q, 0.2, atol=0.01)  # the joints stop at the range's end


def test_nan_torque_refused_goal_kept(chain):
    with make(chain) as be:
        be.read()
        be.write(np.full(6, 0.03))
        barrier(be)
        before, writes = goal_ticks(chain), be.bus.stats.writes
        for bad in (np.array([0.1, math.nan, 0, 0, 0, 0]), np.full(6, -math.inf), np.zeros(5)):
            with pytest.raises(ValueError, match="refused"):
                be.write(bad)
        barrier(be)
        assert goal_ticks(chain) == before and be.bus.stats.writes == writes


def test_hold_puts_the_goal_on_the_present_position(chain):
    with make(chain, hold_damping=0.0) as be:
        for _ in range(40):
            be.read()
            be.write(np.full(6, 0.05))
            time.sleep(DT)
        q = be.read().q.copy()
        assert (np.array(goal_ticks(chain)) > np.rint(q / RPT) + 2048).all()  # pushing ahead
        be.hold()
        barrier(be)
        goals = goal_ticks(chain)
        time.sleep(0.2)
        after = be.read().q
    # no model, no damping: the hold's goal is exactly where the joints were read
    assert goals == list(np.rint(q / RPT).astype(int) + 2048)
    np.testing.assert_allclose(after, q, atol=0.01)  # and there they stay


@pytest.mark.parametrize("on_exit", ["disable", "hold"])
def test_exit(chain, on_exit):
    be = make(chain, on_exit=on_exit)
    with be:
        for _ in range(20):
            be.read()
            be.write(np.full(6, 0.04))
            time.sleep(DT)
    assert torque_on(chain) == ([1] * 6 if on_exit == "hold" else [0] * 6)
    assert {s.table[ct.OPERATING_MODE.address] for s in chain.servos.values()} == {ct.OperatingMode.POSITION}
    if on_exit == "hold":
        q = np.array([chain.position(i) for i in IDS])
        np.testing.assert_allclose(np.array(goal_ticks(chain)) - 2048, q / RPT, atol=3)
        time.sleep(0.2)
        np.testing.assert_allclose([chain.position(i) for i in IDS], q, atol=0.01)


def test_dry_run_never_writes_a_goal_or_torque(chain):
    before = goal_ticks(chain)
    with make(chain, dry_run=True) as be:
        for _ in range(10):
            be.read()
            sent = be.write(np.full(6, 0.05))
        be.hold()
    assert (sent > 0).all()  # computed...
    assert goal_ticks(chain) == before and torque_on(chain) == [0] * 6  # ...never sent


# -- bytes on the wire ------------------------------------------------------------------------------
def _sdk_packet(instruction: int, servo_id: int, params: bytes) -> bytes:
    """The packet ``dynamixel_sdk`` sends for the same instruction and arguments."""
    sdk, port = _Sdk(), FakePort()  # no reply: only what the SDK sends matters
    word = params[0] | params[1] << 8 if len(params) >= 2 else 0
    length = params[2] | params[3] << 8 if len(params) >= 4 else 0
    if instruction == Instruction.PING:
        sdk.ping(port, servo_id)
    elif instruction == Instruction.READ:
        sdk.readTx(port, servo_id, word, length)
    elif instruction == Instruction.WRITE:
        sdk.writeTxOnly(port, servo_id, word, len(params) - 2, list(params[2:]))
    elif instruction == Instruction.SYNC_READ:
        sdk.syncReadTx(port, word, length, list(params[4:]), len(params) - 4, False)
    elif instruction == Instruction.SYNC_WRITE:
        sdk.syncWriteTxOnly(port, word, length, list(params[4:]), len(params) - 4)
    else:
        raise AssertionError(f"unexpected instruction 0x{instruction:02x}")
    assert len(port.written) == 1
    return port.written[0]


def test_a_position_mode_session_sends_the_sdk_bytes():
    """Every packet of configure, activate, writes, a hold and the exit, byte for byte as the
    SDK sends it. Servo 1's zero sits below tick 0, so its goals are negative (FF bytes)."""
    c = Calibration(tuple(dataclasses.replace(j, homing_offset=-2100) if j.servo_id == 1 else j
                          for j in cal().joints))
    start = [-2086 * RPT, 0, 0, 0, 0, 0]  # servo side: tick -38, joint 14 ticks
    with VirtualServoChain(IDS, XL.model_number, initial_positions=start) as chain:
        be = make(chain, c, position_p_gain=700)
        sent: list[bytes] = []
        be.bus.open()
        port = be.bus._ser
        write = port.write

        def spy(data: bytes) -> int | None:
            sent.append(bytes(data))
            return write(data)

        port.write = spy
        with be:
            for k in range(30):
                be.read()
                be.write(np.full(6, 0.1 if k < 20 else -0.1))
            be.hold()
        assert min(goal_ticks(chain)) < 0
    decoder = PacketDecoder()
    packets = [p for chunk in sent for p in decoder.feed(chunk)]
    assert decoder.crc_errors == decoder.skipped == 0
    kinds = {p.instruction for p in packets}
    assert {Instruction.PING, Instruction.READ, Instruction.WRITE, Instruction.SYNC_READ,
            Instruction.SYNC_WRITE} <= kinds
    goal_writes = [p for p in packets if p.instruction == Instruction.SYNC_WRITE
                   and p.params[:2] == ct.GOAL_POSITION.address.to_bytes(2, "little")]
    assert len(goal_writes) >= 32  # 2 on activate, 30 writes, the hold
    # sync write parameters: address (2), length (2), then per servo its id and 4 bytes
    assert any(int.from_bytes(p.params[5:9], "little", signed=True) < 0 for p in goal_writes)
    for chunk in sent:
        for p in PacketDecoder().feed(chunk):
            assert chunk == _sdk_packet(p.instruction, p.servo_id, p.params), chunk.hex(" ")


# -- the loop on a position-servo arm -------------------------------------------------------------
def _arm_chain() -> tuple[VirtualServoChain, Calibration]:
    c = Calibration.load(SHIPPED_CAL)
    physics = ArmPhysics(mujoco.MjModel.from_xml_string(servo_arm.build_mjcf()), c)
    return VirtualServoChain(c.ids, XL.model_number, arm=physics, initial_positions=servo_arm.HOME_Q), c


def _settled(loop: TwoRateLoop, be: DynamixelBackend, stiffness: float) -> np.ndarray:
    """Reset the loop at the measured pose and hold it for 0.5 s; the pose it settled at. (The
    virtual arm powers up with torque off, like a real one: it sags until torque comes on, and
    is still moving when the loop starts.)"""
    hold = Command.joint(loop.reset(Command.joint(be.read().q.copy(), stiffness=stiffness)).q.copy(),
                         stiffness=stiffness)
    for _ in range(10):
        loop.step(hold)
    return be.read().q.copy()


def _loop(chain: VirtualServoChain, c: Calibration) -> tuple[TwoRateLoop, DynamixelBackend]:
    model = RobotModel(mujoco.MjModel.from_xml_string(servo_arm.build_mjcf()), servo_arm.EE_SITE, 6)
    be = make(chain, c, robot_model=model, max_current=1.12)  # 1.2 N m: 80 % of the XL430's stall
    be.configure()
    limiter = TorqueLimiter(servo_arm.TAU_MAX, servo_arm.TAU_RATE_MAX, DT)
    loop = TwoRateLoop(be, JointImpedance(model), limiter, config=LoopConfig(policy_hz=20, control_hz=HZ),
                       clock=WallClock())
    return loop, be


# Measured on the development machine: the base joint ends within 0.001 rad of the target (one
# encoder tick), the pitch joints within 0.002 rad of their start; 0.02 rad leaves room for a
# loaded machine (late ticks, the wall clock catching up).
TOL = 0.02  # rad


def test_loop_reaches_a_base_step_on_the_position_servo_arm():
    chain, c = _arm_chain()
    with chain:
        loop, be = _loop(chain, c)
        try:
            q0 = _settled(loop, be, 10.0)
            target = q0.copy()
            target[0] += 0.3
            cmd = Command.joint(target, stiffness=10.0)
            for _ in range(40):  # 2 s
                loop.step(cmd)
            q = be.read().q.copy()
            be.deactivate()
        finally:
            be.disconnect()
    assert be.control_mode == "position"
    assert abs(q[0] - target[0]) < TOL, f"base at {q[0]:.4f}, target {target[0]:.4f}"
    assert abs(chain.position(1) - target[0]) < TOL  # the servo itself
    np.testing.assert_allclose(q[1:], q0[1:], atol=TOL)  # the pitch joints held up against gravity
    # A read the emulator answers too late on a loaded machine is a held tick (by design): a
    # handful in 1250 is load, more would be a fault.
    assert loop.tick_count == 1250 and be.writes + loop.events.ticks["read_error"] == 1250
    assert loop.events.ticks["read_error"] <= 12


@pytest.mark.parametrize("stiffness", [3.0, 20.0])
def test_an_external_torque_deflects_the_arm_by_the_commanded_stiffness(stiffness):
    """A steady 0.2 N m on the base joint (a hand): the arm gives way by 0.2 / K of the
    commanded K (0.067 rad at 3 N m/rad, 0.01 at 20), not by 0.2 / k_servo (0.036 rad, whatever
    K): the servo's spring only carries the host's impedance law."""
    push = 0.2
    chain, c = _arm_chain()
    with chain:
        loop, be = _loop(chain, c)
        try:
            q0 = _settled(loop, be, stiffness)
            hold = Command.joint(q0.copy(), stiffness=stiffness)
            chain.push(1, push)
            for _ in range(24):  # 1.2 s
                loop.step(hold)
            deflection = be.read().q[0] - q0[0]
            be.deactivate()
        finally:
            be.disconnect()
    # Tolerance: Coulomb friction of the chain's joint model is absent in the arm physics; the goal
    # is whole ticks (1.5 mrad x k_servo = 8 mN m) and the encoder reads whole ticks: 2 ticks + 10 %.
    assert deflection == pytest.approx(push / stiffness, rel=0.1, abs=2 * RPT)


def test_a_nan_command_holds_the_position_servo_arm():
    chain, c = _arm_chain()
    with chain:
        loop, be = _loop(chain, c)
        try:
            q0 = _settled(loop, be, 10.0)
            bad = q0.copy()
            bad[2] = math.nan
            for _ in range(10):  # 0.5 s of a NaN target
                loop.step(Command.joint(bad, stiffness=10.0))
            q = be.read().q.copy()
            goals = np.array(goal_ticks(chain))
            be.deactivate()
        finally:
            be.disconnect()
    assert loop.events.counts()["nonfinite_command"] >= 1
    assert be.holds >= 10 * int(HZ / 20) - 1  # every tick held
    np.testing.assert_allclose(q, q0, atol=TOL)  # the arm stayed where it was
    lo = np.array([round(j.range_min / RPT) for j in c.joints]) + 2048
    hi = np.array([round(j.range_max / RPT) for j in c.joints]) + 2048
    assert ((goals >= lo) & (goals <= hi)).all()
