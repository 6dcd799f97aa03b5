"""``robot-brain deploy --transport serial``: the shipped servo-arm config, end to end, against
the virtual servo chain on a real pty (the servos are emulated: no hardware here).

The chain drives one MuJoCo model of the servo arm (gravity, coupled links), so a run is judged
by its effect on that arm: the scripted policy reaches its goals through the two-rate loop on
the bus, torque is off (or the servos hold) after the run, a dry run never turns torque on, a
bus that stops answering ends the run with exit code 1, and bad input is one line before any
torque. Each run is a few seconds of wall-clock control at 500 Hz.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

from robot_brain.cli import main
from robot_brain.envs import servo_arm
from robot_brain.hardware.dynamixel import control_table as ct
from robot_brain.hardware.dynamixel.bus import DynamixelBus
from robot_brain.hardware.dynamixel.calibration import Calibration
from robot_brain.hardware.dynamixel.virtual import ArmPhysics, Faults, VirtualServoChain

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "launch" / "config" / "servo_arm.yaml"
CALIBRATION = ROOT / "launch" / "config" / "servo_arm.calibration.json"
XL430_CONFIG = ROOT / "launch" / "config" / "servo_arm_xl430.yaml"
XL430_CALIBRATION = ROOT / "launch" / "config" / "servo_arm_xl430.calibration.json"


def _chain(model_number: int = 1020, calibration: Path = CALIBRATION) -> VirtualServoChain:
    """The shipped config's virtual arm: six servos driving the servo arm's MuJoCo model."""
    cal = Calibration.load(calibration)
    physics = ArmPhysics(mujoco.MjModel.from_xml_string(servo_arm.build_mjcf()), cal)
    return VirtualServoChain(cal.ids, model_number, arm=physics, initial_positions=servo_arm.HOME_Q)


def _torque_on(chain: VirtualServoChain) -> list[int]:
    return [s.table[ct.TORQUE_ENABLE.address] for s in chain.servos.values()]


def _config(tmp_path: Path, *, base: tuple[Path, Path] = (CONFIG, CALIBRATION), **serial: object) -> Path:
    """A copy of a shipped config and its calibration (``base``) with ``serial`` keys changed."""
    config, calibration = base
    doc = yaml.safe_load(config.read_text())
    doc["robot_brain"]["ros__parameters"]["serial"].update(serial)
    shutil.copy(calibration, tmp_path / calibration.name)
    out = tmp_path / "arm.yaml"
    out.write_text(yaml.safe_dump(doc))
    return out


def test_scripted_reach_on_the_virtual_arm_then_torque_off(tmp_path, capsys):
    report = tmp_path / "run.json"
    with _chain() as chain:
        code = main(["deploy", "--robot", str(CONFIG), "--port", chain.path, "--policy", "scripted",
                     "--duration", "9", "--seed", "3", "--json", str(report)])
        torque_after = _torque_on(chain)
    assert code == 0, capsys.readouterr().err
    run = json.loads(report.read_text())
    assert run["transport"] == "serial"
    finished = [ep for ep in run["episodes"] if ep["success"]]
    assert len(finished) >= 2, run["episodes"]  # 2-4 s per reach; 9 s of run
    assert all(ep["goal_distance"] < 0.01 for ep in finished)
    # The emulator answers from a thread of this process: on a machine busy with other jobs a
    # reply can miss its deadline even after the retries. Each such tick holds (by design); a
    # handful in 4500 reads is load, more would be a fault.
    assert run["backend"]["read_errors"] <= 0.01 * run["backend"]["reads"], run["backend"]
    assert run["backend"]["writes"] > 2000  # 500 Hz for 9 s, less the holds
    assert torque_after == [0] * 6  # on_exit: disable


def test_on_exit_hold_leaves_the_servos_holding_the_arm_up(tmp_path):
    cfg = _config(tmp_path, on_exit="hold")
    with _chain() as chain:
        assert main(["deploy", "--robot", str(cfg), "--port", chain.path, "--policy", "zero",
                     "--duration", "1.5"]) == 0
        assert _torque_on(chain) == [1] * 6
        modes = {s.table[ct.OPERATING_MODE.address] for s in chain.servos.values()}
        assert modes == {int(ct.OperatingMode.CURRENT_BASED_POSITION)}
        q = []
        for _ in range(3):
            q.append(np.array([chain.position(i) for i in chain.servos]))
            threading.Event().wait(0.5)
    # The servos' own position loop settles a few hundredths of a radian under the arm's weight
    # (its P gain against gravity) and then holds; with torque off the shoulder would fall to its
    # stop, 1.6 rad away.
    assert np.abs(q[2] - q[1]).max() < 0.005
    assert np.abs(q[2] - q[0]).max() < 0.1


def test_dry_run_never_turns_torque_on(tmp_path):
    seen: list[int] = []
    with _chain() as chain:
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                seen.extend(_torque_on(chain))
                stop.wait(0.005)

        t = threading.Thread(target=watch)
        t.start()
        try:
            code = main(["deploy", "--robot", str(CONFIG), "--port", chain.path, "--policy", "scripted",
                         "--dry-run", "--duration", "1"])
        finally:
            stop.set()
            t.join()
        writes = chain.stats.handled
    assert code == 0
    assert seen and max(seen) == 0
    assert writes > 100  # it did read the arm all along


def _once_running(chain: VirtualServoChain, fault: Callable[[], None]) -> threading.Thread:
    """A thread that injects ``fault`` once the loop runs (1000 packets served, about 1 s of the
    500 Hz loop), whatever the machine's speed."""
    def wait_then_fault() -> None:
        while chain.stats.packets < 1000 and chain.path:
            threading.Event().wait(0.01)
        fault()

    t = threading.Thread(target=wait_then_fault, daemon=True)
    t.start()
    return t


def test_a_bus_that_stops_answering_ends_the_run(tmp_path, capsys):
    with _chain() as chain:
        _once_running(chain, lambda: setattr(chain, "faults", Faults(drop_rate=1.0)))
        code = main(["deploy", "--robot", str(CONFIG), "--port", chain.path, "--policy", "zero",
                     "--duration", "30"])
        torque_after = _torque_on(chain)
    err = capsys.readouterr().err
    assert code == 1
    assert re.search(r"failed \d+ reads in a row \(serial.max_consecutive_failures 50\)", err), err
    assert "did not confirm the stop" in err  # the torque-off write got no reply: said, not hidden
    assert torque_after == [0] * 6  # yet it reached the servos (only their replies were lost)


@pytest.mark.parametrize("change, needle", [
    ({"task": "reach"}, "reach runs on the panda arm; the robot config's arm is servo_arm"),
    ({"port": "/dev/ttyUSB97"}, "argument --port: /dev/ttyUSB97 does not exist"),
    ({"calibration": "missing.json"}, "missing.json does not exist: write it with robot-brain calibrate"),
    ({"baudrate": 123}, "SerialConfig.baudrate = 123 is outside"),
    ({"on_exit": "drop"}, "serial.on_exit must be one of disable, hold, got 'drop'"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_input_is_one_line_before_any_bus_work(tmp_path, capsys, change, needle):
    args = ["deploy", "--policy", "zero", "--duration", "1"]
    if "task" in change:
        args += ["--robot", str(CONFIG), "--port", "/dev/null", "--task", change["task"]]
    elif "port" in change:
        args += ["--robot", str(CONFIG), "--port", change["port"]]
    else:
        args += ["--robot", str(_config(tmp_path, **change)), "--port", "/dev/null"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err, err


@pytest.mark.parametrize("edit, needle", [
    (lambda rows: rows[2].update(range_min=9.0), "joint 'elbow_pitch': JointCalibration.range_min"),
    (lambda rows: rows.reverse(), "names the joints wrist_yaw, wrist_roll"),
    (lambda rows: [r.update(model_number=1240) for r in rows],
     "servo model XC330-M288 has no known torque constant or no current control"),
])
def test_a_bad_calibration_file_is_one_line(tmp_path, capsys, edit, needle):
    cfg = _config(tmp_path)
    data = json.loads((tmp_path / CALIBRATION.name).read_text())
    edit(data["joints"])
    (tmp_path / CALIBRATION.name).write_text(json.dumps(data))
    assert main(["deploy", "--robot", str(cfg), "--port", "/dev/null", "--policy", "zero"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err, err


def test_missing_servo_wrong_model_and_busy_port_are_one_line_and_nothing_moves(capsys):
    with _chain_without_servo_6() as chain:
        assert main(["deploy", "--robot", str(CONFIG), "--port", chain.path, "--policy", "zero"]) == 1
        assert _torque_on(chain) == [0] * 5
    err = capsys.readouterr().err.strip()
    assert "joint 'wrist_yaw' (servo 6) does not answer" in err and "\n" not in err, err

    with _chain(model_number=1060) as chain:  # XL430-W250 where an XM430-W350 is expected
        assert main(["deploy", "--robot", str(CONFIG), "--port", chain.path, "--policy", "zero"]) == 1
        assert _torque_on(chain) == [0] * 6
    err = capsys.readouterr().err.strip()
    assert "is a XL430-W250 (model 1060); the calibration expects XM430-W350" in err, err

    with _chain() as chain, DynamixelBus(chain.path):  # another program holds the port
        assert main(["deploy", "--robot", str(CONFIG), "--port", chain.path, "--policy", "zero"]) == 1
        assert _torque_on(chain) == [0] * 6
    err = capsys.readouterr().err.strip()
    assert "port is busy" in err and "\n" not in err, err


def _chain_without_servo_6() -> VirtualServoChain:
    """Five servos answer; the sixth (id 6) is missing from the bus."""
    return VirtualServoChain([1, 2, 3, 4, 5], 1020, initial_positions=servo_arm.HOME_Q[:5])


def test_a_servo_hardware_error_stops_the_run_and_names_the_error(tmp_path, capsys):
    report = tmp_path / "run.json"
    with _chain() as chain:
        def overload() -> None:  # servo 3 latches an overload, as a real one does: torque off
            s = chain.servos[3]
            s.table[ct.HARDWARE_ERROR_STATUS.address] = int(ct.HardwareError.OVERLOAD)
            s.table[ct.TORQUE_ENABLE.address] = 0

        _once_running(chain, overload)
        code = main(["deploy", "--robot", str(CONFIG), "--port", chain.path, "--policy", "zero",
                     "--duration", "30", "--json", str(report)])
        torque_after = _torque_on(chain)
    err = capsys.readouterr().err
    assert code == 1
    assert ("joint 'elbow_pitch' (servo 3) reports a hardware error: overload "
            "(Hardware_Error_Status 0x20)") in err
    assert json.loads(report.read_text())["stopped"] == {"reason": "hardware_error", "servo": 3, "status": 32}
    assert torque_after == [0] * 6  # the others were disabled too


def test_the_flight_recording_replays_on_the_servo_arm_model(tmp_path, capsys):
    """``--record`` on a serial arm writes every measured joint state and setpoint; ``replay``
    drives the servo arm's MuJoCo model with the setpoints. The virtual arm is that same model
    behind the bus, so the two tool paths agree to a millimetre: the record, the bus, the units
    and the calibration add no error of their own.

    That holds for a run in which the loop did only what the setpoints say. On a loaded machine
    (the virtual chain answers from a thread of this process) a read can fail after its retries,
    a held tick, or late ticks can let the arm outrun the envelope's velocity limit, a clamp;
    the replay reproduces neither, and the paths part by centimetres (docs/benchmarks.md, "A bus
    that drops replies"). Such a run says nothing about the units, so it is run again, up to
    three times in all."""
    unreplayable = {"read_error", "velocity_limit"}
    for attempt in range(3):
        bag, run, report = (tmp_path / f"run{attempt}", tmp_path / f"run{attempt}.json",
                            tmp_path / f"replay{attempt}.json")
        with _chain() as chain:
            assert main(["deploy", "--robot", str(CONFIG), "--port", chain.path, "--policy", "scripted",
                         "--duration", "4", "--record", str(bag), "--json", str(run)]) == 0
        assert main(["replay", str(bag), "--robot", str(CONFIG), "--control-hz", "500",
                     "--json", str(report)]) == 0
        gap = json.loads(report.read_text())
        if not unreplayable & {e["label"] for e in gap["events"]}:
            break
    else:
        pytest.fail(f"every run had a {' or '.join(sorted(unreplayable))}: the machine is too loaded")
    # Every tick that wrote a torque recorded its state (a loaded machine runs fewer ticks).
    writes = json.loads(run.read_text())["backend"]["writes"]
    assert gap["arm"] == "servo_arm" and gap["joint_states"] == writes > 1000
    # 0.7 mm on a quiet machine (docs/benchmarks.md); the bound leaves room for late ticks on a
    # loaded one (the replay steps at an even 500 Hz, the virtual arm in real time).
    assert gap["tool_error_max_m"] < 0.005, gap["tool_error_max_m"]
    assert not gap["parted"]
    # The events are on the joint states' time line: the first tick's clamps at 0 s, each at
    # the time of its state, not when the loop reported it (up to a slow step later).
    times = [e["t_s"] for e in gap["events"]]
    assert times and times[0] == pytest.approx(0.0, abs=1e-6), times
    assert all(0.0 <= t < gap["duration_s"] + 0.1 for t in times), times


# -- position-only servos (XL430-W250) ------------------------------------------------------------
def _xl430_chain() -> VirtualServoChain:
    return _chain(ct.XL430_W250.model_number, XL430_CALIBRATION)


def test_xl430_arm_reaches_goals_in_position_mode_then_torque_off(tmp_path, capsys):
    """The shipped XL430 config: the brain's torques go out as goal positions, the scripted
    policy reaches its goals through them, and torque is off after the run."""
    report = tmp_path / "run.json"
    with _xl430_chain() as chain:
        code = main(["deploy", "--robot", str(XL430_CONFIG), "--port", chain.path, "--policy",
                     "scripted", "--duration", "8", "--seed", "3", "--json", str(report)])
        torque_after = _torque_on(chain)
        modes = {s.table[ct.OPERATING_MODE.address] for s in chain.servos.values()}
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "servos in position mode" in out
    run = json.loads(report.read_text())
    assert run["backend"]["control_mode"] == "position"
    finished = [ep for ep in run["episodes"] if ep["success"]]
    assert len(finished) >= 1, run["episodes"]  # 3.5-4.5 s per reach; 8 s of run
    assert all(ep["goal_distance"] < 0.01 for ep in finished)
    assert run["backend"]["read_errors"] <= 0.01 * run["backend"]["reads"], run["backend"]
    assert run["backend"]["writes"] > 2000  # 500 Hz for 8 s, less the holds
    assert modes == {int(ct.OperatingMode.POSITION)}
    assert torque_after == [0] * 6  # on_exit: disable


def test_xl430_on_exit_hold_keeps_the_arm_up_in_position_mode(tmp_path):
    cfg = _config(tmp_path, base=(XL430_CONFIG, XL430_CALIBRATION), on_exit="hold")
    with _xl430_chain() as chain:
        assert main(["deploy", "--robot", str(cfg), "--port", chain.path, "--policy", "zero",
                     "--duration", "1.5"]) == 0
        assert _torque_on(chain) == [1] * 6
        modes = {s.table[ct.OPERATING_MODE.address] for s in chain.servos.values()}
        assert modes == {int(ct.OperatingMode.POSITION)}  # no mode switch on the way out
        q = []
        for _ in range(3):
            q.append(np.array([chain.position(i) for i in chain.servos]))
            threading.Event().wait(0.5)
    # The last goal carries the gravity offset, so the servos hold the arm where it was; with
    # torque off the shoulder would fall to its stop, 1.6 rad away.
    assert np.abs(q[2] - q[1]).max() < 0.005
    assert np.abs(q[2] - q[0]).max() < 0.02


@pytest.mark.parametrize("serial, needle", [
    ({"control_mode": "current"},
     "joint 'base_yaw': servo model XL430-W250 has no current control; run it in position mode"),
    ({"control_mode": "pwm"}, "serial.control_mode must be one of auto, current, position, got 'pwm'"),
    ({"position_p_gain": 0}, "SerialConfig.position_p_gain = 0 is outside [1, 16383]"),
    ({"max_goal_speed": 0}, "SerialConfig.max_goal_speed = 0 is outside (0, 100] rad/s"),
])
def test_bad_position_mode_settings_are_one_line(tmp_path, capsys, serial, needle):
    cfg = _config(tmp_path, base=(XL430_CONFIG, XL430_CALIBRATION), **serial)
    assert main(["deploy", "--robot", str(cfg), "--port", "/dev/null", "--policy", "zero"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err, err
