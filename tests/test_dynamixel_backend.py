"""DynamixelBackend and its calibration against the virtual servo chain on a real pty (6 servos):
the lifecycle (no torque before activate), units checked by their effect on the motor model,
calibration offset/direction, one-line errors for bad input, exit behaviour, and a faulty bus."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import numpy as np
import pytest

from robot_brain.hardware.base import BackendError, NotActiveError
from robot_brain.hardware.dynamixel import control_table as ct
from robot_brain.hardware.dynamixel.backend import DynamixelBackend
from robot_brain.hardware.dynamixel.bus import DynamixelBus
from robot_brain.hardware.dynamixel.calibration import (
    Calibration,
    JointCalibration,
    rad_to_ticks,
    ticks_to_rad,
)
from robot_brain.hardware.dynamixel.virtual import Faults, VirtualServoChain

IDS = [1, 2, 3, 4, 5, 6]
XM = ct.XM430_W350
KT = XM.torque_constant
assert KT is not None
RPT = XM.rad_per_tick


def cal(ids=IDS, **overrides) -> Calibration:
    base = Calibration.default(ids, range_min=-1.5, range_max=1.5)
    if not overrides:
        return base
    return Calibration(tuple(dataclasses.replace(j, **overrides) if k == 0 else j
                             for k, j in enumerate(base.joints)))


@pytest.fixture
def chain():
    with VirtualServoChain(IDS) as c:
        yield c


def make(chain: VirtualServoChain, calibration: Calibration | None = None, **kw) -> DynamixelBackend:
    bus = DynamixelBus(chain.path, timeout=0.02, retries=2)
    return DynamixelBackend(bus, calibration or cal(), control_dt=0.002, **kw)


def torque_enable(chain: VirtualServoChain) -> list[int]:
    return [s.table[ct.TORQUE_ENABLE.address] for s in chain.servos.values()]


def goal_current(chain: VirtualServoChain) -> list[int]:
    return [s.get(ct.GOAL_CURRENT) for s in chain.servos.values()]


# -- calibration -----------------------------------------------------------------------------------
def test_conversions_round_trip():
    ticks = np.array([0, 1024, 2048, 3000, 4095])
    q = ticks_to_rad(ticks, homing_offset=100, direction=-1)
    assert q[2] == pytest.approx(100 * RPT)
    assert np.array_equal(rad_to_ticks(q, homing_offset=100, direction=-1), ticks)
    j = JointCalibration("a", 1, 1020, 0, -1, -1.0, 1.0)
    assert j.to_rad(2048 + 1024) == pytest.approx(-math.pi / 2)
    assert j.velocity_to_rad_s(10) == pytest.approx(-10 * XM.rad_s_per_unit)
    assert j.current_to_torque(100) == pytest.approx(-100 * 2.69e-3 * KT)
    assert j.torque_to_current(j.current_to_torque(100)) == pytest.approx(100)


def test_calibration_save_load_round_trip(tmp_path):
    c = cal(homing_offset=-321, direction=-1)
    path = c.save(tmp_path / "arm.json")
    assert Calibration.load(path) == c
    assert json.loads(path.read_text())["joints"][0]["homing_offset"] == -321


@pytest.mark.parametrize("edit, expect", [
    (lambda d: d["joints"][1].update(range_min=9.0), "joint 'joint2'.*range_min = 9.0 is outside"),
    (lambda d: d["joints"][0].update(range_min=1.0, range_max=0.5),
     "joint 'joint1'.*range_min = 1.0 must be below"),
    (lambda d: d["joints"][2].update(speed=3), "joint 'joint3': unknown key 'speed'"),
    (lambda d: d.update(extra=1), "unknown key 'extra'"),
    (lambda d: d["joints"][3].update(servo_id="4"), "joint 'joint4'.*servo_id must be an integer.*'4'"),
    (lambda d: d["joints"][0].update(direction=0), "joint 'joint1'.*direction must be \\+1 or -1"),
    (lambda d: d["joints"][5].update(servo_id=1), "joint 'joint6': duplicate servo id 1"),
    (lambda d: d["joints"][1].pop("range_max"), "joint 'joint2': missing key 'range_max'"),
])
def test_calibration_file_errors_are_one_line(tmp_path, edit, expect):
    data = cal().to_dict()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=expect) as e:
        Calibration.load(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path))


def test_calibration_unreadable_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read calibration"):
        Calibration.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"x\.json: not valid JSON"):
        Calibration.load(tmp_path / "x.json")


# -- lifecycle -------------------------------------------------------------------------------------
def test_lifecycle_torque_only_after_activate(chain):
    be = make(chain)
    with pytest.raises(NotActiveError):
        be.read()
    be.configure()
    assert torque_enable(chain) == [0] * 6
    assert all(s.table[ct.OPERATING_MODE.address] == ct.OperatingMode.CURRENT for s in chain.servos.values())
    s = be.read()
    assert s.q.shape == (6,) and np.allclose(s.q, 0.0, atol=RPT)
    assert np.all(s.ee_pos == 0) and np.all(s.wrench == 0)
    with pytest.raises(NotActiveError):
        be.write(np.zeros(6))
    be.activate()
    assert torque_enable(chain) == [1] * 6
    be.disconnect()
    assert torque_enable(chain) == [0] * 6
    assert not be.bus.is_open


def test_positive_torque_moves_joint_and_sets_current(chain):
    with make(chain) as be:
        tau = np.zeros(6)
        tau[2] = 0.3
        q0 = be.read().q[2]
        end = time.monotonic() + 0.15
        while time.monotonic() < end:
            be.read()
            sent = be.write(tau)
            time.sleep(0.002)
        state = be.read()
        assert state.q[2] > q0 + 0.02
        assert abs(state.q[0]) < 0.01  # the others stay (zero current, Coulomb friction)
        units = tau[2] / KT / XM.amp_per_unit
        assert abs(chain.servos[3].get(ct.PRESENT_CURRENT) - units) <= 1
        assert sent[2] == pytest.approx(0.3, abs=KT * XM.amp_per_unit)
        assert state.tau[2] == pytest.approx(0.3, abs=KT * XM.amp_per_unit)


def test_write_clips_to_current_limits(chain):
    with make(chain, max_current=1.0) as be:
        be.read()
        sent = be.write(np.array([100.0, -100.0, 0, 0, 0, 0]))
        bound = math.floor(1.0 / XM.amp_per_unit)
        time.sleep(0.01)
        assert goal_current(chain)[:2] == [bound, -bound]
        assert sent[0] == pytest.approx(bound * XM.amp_per_unit * KT)
        assert sent[1] == pytest.approx(-sent[0])


def test_write_at_range_limit_is_zeroed(chain):
    c = Calibration(tuple(dataclasses.replace(j, range_min=-0.2, range_max=0.2) for j in cal().joints))
    with make(chain, c) as be:
        be.read()
        be._state.q[0] = 0.25  # as if the joint had gone past its maximum
        be._state.q[1] = -0.25
        sent = be.write(np.array([0.3, -0.3, 0.3, 0, 0, 0]))
        assert sent[0] == 0.0 and sent[1] == 0.0 and sent[2] > 0
        be.read()
        sent = be.write(np.array([-0.3, 0.3, 0, 0, 0, 0]))  # back toward the range: allowed
        assert sent[0] < 0 and sent[1] > 0


def test_calibration_offset_and_direction(chain):
    chain.servos[1].q = 0.1
    chain.servos[1].refresh()
    c = cal(homing_offset=100, direction=-1)
    with make(chain, c) as be:
        q = be.read().q[0]
    assert q == pytest.approx(-(0.1 - 100 * RPT), abs=RPT)
    with make(chain, cal(homing_offset=100)) as be:
        assert be.read().q[0] == pytest.approx(0.1 - 100 * RPT, abs=RPT)


def test_direction_flips_torque(chain):
    with make(chain, cal(direction=-1)) as be:
        be.read()
        be.write(np.array([0.2, 0, 0, 0, 0, 0]))
        time.sleep(0.01)
        assert goal_current(chain)[0] == -round(0.2 / KT / XM.amp_per_unit)
        time.sleep(0.1)
        assert be.read().q[0] > 0.005  # the joint still moves the way the torque says


# -- bad input -------------------------------------------------------------------------------------
def one_line_error(be: DynamixelBackend, match: str) -> str:
    with pytest.raises(BackendError, match=match) as e:
        be.configure()
    msg = str(e.value)
    assert "\n" not in msg
    be.disconnect()
    return msg


def test_unknown_servo_id(chain):
    msg = one_line_error(make(chain, cal([1, 2, 3, 4, 5, 7])), "joint 'joint7' \\(servo 7\\) does not answer")
    assert chain.path in msg
    assert torque_enable(chain) == [0] * 6


def test_wrong_model_number():
    with VirtualServoChain(IDS, model_number=ct.XL430_W250.model_number) as chain:
        one_line_error(make(chain), "joint 'joint1' \\(servo 1\\) is a XL430-W250 \\(model 1060\\); "
                                    "the calibration expects XM430-W350 \\(model 1020\\)")
        assert torque_enable(chain) == [0] * 6


def test_model_without_torque_constant_refused(chain):
    with pytest.raises(ValueError, match="no known torque constant"):
        make(chain, cal(model_number=ct.XC330_M288.model_number))


def test_out_of_range_calibration():
    with pytest.raises(ValueError, match=r"range_max = 7\.0 is outside"):
        JointCalibration("j", 1, 1020, 0, 1, 0.0, 7.0)


def test_state_outside_range_at_configure():
    with VirtualServoChain(IDS, initial_positions=[0, 0, 0, 2.0, 0, 0]) as chain:
        msg = one_line_error(make(chain), "joint 'joint4' \\(servo 4\\) is at 2.000 rad, outside")
        assert "nothing was enabled" in msg
        assert torque_enable(chain) == [0] * 6


def test_port_that_does_not_exist():
    be = DynamixelBackend(DynamixelBus("/dev/does-not-exist-42"), cal(), control_dt=0.002)
    with pytest.raises(BackendError, match="cannot open Dynamixel bus /dev/does-not-exist-42"):
        be.configure()


def test_bad_constructor_arguments(chain):
    with pytest.raises(ValueError, match="on_exit"):
        make(chain, on_exit="park")
    with pytest.raises(ValueError, match="max_current"):
        make(chain, max_current=-1.0)


def test_nan_torque_refused_nothing_sent(chain):
    with make(chain) as be:
        be.read()
        be.write(np.full(6, 0.05))
        time.sleep(0.01)
        before = goal_current(chain)
        writes = be.bus.stats.writes
        for bad in (np.array([0.1, math.nan, 0, 0, 0, 0]), np.full(6, math.inf), np.zeros(5)):
            with pytest.raises(ValueError, match="refused"):
                be.write(bad)
        time.sleep(0.01)
        assert goal_current(chain) == before and be.bus.stats.writes == writes


# -- exit ------------------------------------------------------------------------------------------
def test_hold_damps_against_velocity(chain):
    with make(chain) as be:
        chain.servos[1].v = 1.0  # the joint moves
        time.sleep(0.005)
        be.read()
        be.hold()
        time.sleep(0.01)
        g = goal_current(chain)
        assert g[0] < 0 and abs(g[0]) <= math.floor(be.hold_current / XM.amp_per_unit)
        assert be.holding


def test_disconnect_hold_keeps_torque(chain):
    be = make(chain, on_exit="hold")
    be.activate()
    be.disconnect()
    assert torque_enable(chain) == [1] * 6
    s = chain.servos[2]
    assert s.table[ct.OPERATING_MODE.address] == ct.OperatingMode.CURRENT_BASED_POSITION
    assert abs(s.get(ct.GOAL_POSITION) - s.get(ct.PRESENT_POSITION)) <= 2


def test_reactivate_after_hold_exit(chain):
    be = make(chain, on_exit="hold")
    be.activate()
    be.deactivate()
    be.activate()
    assert chain.servos[1].table[ct.OPERATING_MODE.address] == ct.OperatingMode.CURRENT
    assert torque_enable(chain) == [1] * 6
    be.disconnect()


# -- faults ----------------------------------------------------------------------------------------
def test_corrupted_replies_are_retried():
    with VirtualServoChain(IDS, faults=Faults(corrupt_rate=0.05, seed=3)) as chain:
        be = make(chain)
        for _ in range(5):  # configure itself may meet a fault that outlasts the retries
            try:
                be.activate()
                break
            except BackendError:
                be.disconnect()
                be = make(chain)
        assert be.active
        errors = 0
        for _ in range(500):
            try:
                be.read()
            except BackendError:
                errors += 1
                be.hold()
                continue
            be.write(np.full(6, 0.01))
        be.disconnect()
    stats = be.bus.stats
    assert stats.retries > 50  # ~26 % of the sync reads need at least one retry
    assert errors == be.read_errors and errors <= 30  # ~0.26**3 = 2 % get through the retries
    assert be.reads + errors == 500 and be.writes == be.reads
