"""``robot-brain calibrate`` against a virtual servo chain on a pty: a thread plays the hand that
moves the joints, the written file is checked against the motion."""

from __future__ import annotations

import math
import threading

import pytest

from robot_brain.cli import main
from robot_brain.hardware.dynamixel import control_table as ct
from robot_brain.hardware.dynamixel.calibration import Calibration
from robot_brain.hardware.dynamixel.virtual import VirtualServoChain

RAD_PER_TICK = 2 * math.pi / 4096
RANGES = {1: (-1.0, 1.2), 2: (0.5, 2.0), 3: (-2.5, -0.3)}  # rad, what the "hand" sweeps


class Hand(threading.Thread):
    """Once torque is off on the servos ``wait_for``, sweeps every joint between its extremes (all at once, so
    whichever joint is being recorded sees its whole range)."""

    def __init__(self, chain: VirtualServoChain, ranges: dict[int, tuple[float, float]],
                 wait_for: list[int]) -> None:
        super().__init__(daemon=True)
        self.chain, self.ranges, self.wait_for = chain, ranges, wait_for
        self.stop = threading.Event()

    def run(self) -> None:
        torque = ct.TORQUE_ENABLE.address
        while any(self.chain.servos[i].table[torque] for i in self.wait_for):
            if self.stop.wait(0.002):
                return
        k = 0
        while not self.stop.is_set():
            for i, (lo, hi) in self.ranges.items():
                self.chain.set_position(i, (lo, (lo + hi) / 2, hi, (lo + hi) / 2)[k % 4])
            k += 1
            self.stop.wait(0.02)


@pytest.fixture
def chain():
    # joints start inside the swept ranges (the recording begins before the hand moves)
    c = VirtualServoChain(list(RANGES), initial_positions=[(lo + hi) / 2 for lo, hi in RANGES.values()])
    c.start()
    for s in c.servos.values():
        s.table[ct.TORQUE_ENABLE.address] = 1  # torque on at first: the verb must turn it off
    yield c
    c.stop()


def _torque_off(chain, ids) -> bool:
    return all(chain.servos[i].table[ct.TORQUE_ENABLE.address] == 0 for i in ids)


def _calibrate(chain, out, ids, *extra, ranges=RANGES, seconds="0.25"):
    hand = Hand(chain, ranges, [i for i in ids if i in chain.servos])
    hand.start()
    try:
        return main(["calibrate", "--port", chain.path, "--out", str(out), "--ids", *map(str, ids),
                     "--seconds-per-joint", seconds, *extra])
    finally:
        hand.stop.set()
        hand.join(2)


def test_calibration_matches_the_motion(chain, tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert _calibrate(chain, out, [1, 2, 3], "--names", "base", "shoulder", "elbow") == 0
    cal = Calibration.load(out)
    assert cal.names == ["base", "shoulder", "elbow"] and cal.ids == [1, 2, 3]
    for j, (lo, hi) in zip(cal.joints, RANGES.values(), strict=True):
        assert j.model_number == 1020 and j.direction == 1
        assert abs(j.homing_offset - (lo + hi) / 2 / RAD_PER_TICK) <= 2
        assert j.range_min == pytest.approx(-(hi - lo) / 2, abs=3 * RAD_PER_TICK)
        assert j.range_max == pytest.approx((hi - lo) / 2, abs=3 * RAD_PER_TICK)
        # q = 0 at the middle of the recorded range, the extremes at range_min/max
        assert float(j.to_rad(2048 + round((lo + hi) / 2 / RAD_PER_TICK))) == pytest.approx(0, abs=2e-3)
    assert _torque_off(chain, [1, 2, 3])
    printed = capsys.readouterr().out
    assert "torque is OFF" in printed and "shoulder" in printed and "homing offset" in printed


def test_overwrites_only_with_yes(chain, tmp_path):
    out = tmp_path / "cal.json"
    out.write_text("old")
    assert _calibrate(chain, out, [1], "--yes", seconds="0.15") == 0
    assert Calibration.load(out).ids == [1]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    return err


def test_missing_servo_is_one_line_and_writes_nothing(chain, tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert _calibrate(chain, out, [1, 2, 7]) == 1
    assert "servo 7 does not answer" in _one_line(capsys)
    assert not out.exists()


def test_a_joint_that_does_not_move_is_named(chain, tmp_path, capsys):
    out = tmp_path / "cal.json"
    ranges = {1: RANGES[1], 3: RANGES[3]}  # the hand leaves joint 2 alone
    assert _calibrate(chain, out, [1, 2], ranges=ranges, seconds="0.15") == 1
    assert "joint joint2 moved only 0.000 rad; move it through its range" in _one_line(capsys)
    assert not out.exists()
    assert _torque_off(chain, [1, 2])


@pytest.mark.parametrize("setup, needle", [
    ("existing", "exists; pass --yes"),
    ("unwritable", "is not a folder"),
    ("names", "2 names for 1 ids"),
])
def test_bad_output_or_options_fail_before_any_bus_work(tmp_path, capsys, setup, needle):
    out = tmp_path / "cal.json"
    extra = []
    if setup == "existing":
        out.write_text("old")
    elif setup == "unwritable":
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "cal.json"
    else:
        extra = ["--names", "a", "b"]
    # a port that does not exist: had the bus been touched, the error would be about it
    assert main(["calibrate", "--port", str(tmp_path / "no-such-port"), "--ids", "1",
                 "--out", str(out), "--seconds-per-joint", "0.1", *extra]) == 2
    assert needle in _one_line(capsys)
    assert setup != "existing" or out.read_text() == "old"


def test_ctrl_c_writes_nothing_and_leaves_torque_off(chain, tmp_path, capsys, monkeypatch):
    def interrupt(prompt=""):
        assert "move joint joint1 (servo 1) through its whole range, then press Enter" in prompt
        raise KeyboardInterrupt

    monkeypatch.setattr("builtins.input", interrupt)
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--port", chain.path, "--ids", "1", "2", "--out", str(out)]) == 130
    assert "nothing written" in capsys.readouterr().err
    assert not out.exists()
    assert _torque_off(chain, [1, 2])


def test_prompted_recording_ends_on_enter(chain, tmp_path, monkeypatch):
    import time

    def enter(prompt=""):
        time.sleep(0.2)
        return ""

    monkeypatch.setattr("builtins.input", enter)
    out = tmp_path / "cal.json"
    hand = Hand(chain, RANGES, [2])
    hand.start()
    try:
        assert main(["calibrate", "--port", chain.path, "--ids", "2", "--out", str(out)]) == 0
    finally:
        hand.stop.set()
        hand.join(2)
    (j,) = Calibration.load(out).joints
    assert j.range_max - j.range_min == pytest.approx(1.5, abs=3 * RAD_PER_TICK)


def test_robot_config_gives_port_names_and_the_file_deploy_reads(chain, tmp_path, capsys):
    """``--robot CFG``: names from the config's joints, servos 1..n, the file written where
    serial.calibration points (relative to the config), which deploy then loads."""
    import yaml

    from robot_brain.hardware.dynamixel.config import SerialConfig

    cfg = tmp_path / "arm.yaml"
    cfg.write_text(yaml.safe_dump({"robot_brain": {"ros__parameters": {
        "arm": "servo_arm", "joints": ["base", "shoulder", "elbow"],
        "serial": {"port": chain.path, "calibration": "cal/arm.json"}}}}))
    (tmp_path / "cal").mkdir()
    hand = Hand(chain, RANGES, [1, 2, 3])
    hand.start()
    try:
        assert main(["calibrate", "--robot", str(cfg), "--seconds-per-joint", "0.25"]) == 0
    finally:
        hand.stop.set()
        hand.join(2)
    written = tmp_path / "cal" / "arm.json"
    cal = SerialConfig(calibration="cal/arm.json").load_calibration(cfg, ("base", "shoulder", "elbow"))
    assert cal.ids == [1, 2, 3] and Calibration.load(written) == cal
    assert _torque_off(chain, [1, 2, 3])
    # a config without a serial section is refused before any bus work
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({"robot_brain": {"ros__parameters": {"joints": ["a"]}}}))
    assert main(["calibrate", "--robot", str(bare)]) == 2
    assert "has no serial section" in capsys.readouterr().err


def test_an_xl430_arm_calibrates_and_its_backend_runs_in_position_mode(tmp_path):
    """Position-only servos calibrate like the others (torque off, the hand sweeps), and the file
    they get makes a backend that runs them in position mode, holding where the hand left them."""
    from robot_brain.hardware.dynamixel.backend import DynamixelBackend
    from robot_brain.hardware.dynamixel.bus import DynamixelBus

    xl = ct.XL430_W250.model_number
    c = VirtualServoChain(list(RANGES), xl, initial_positions=[(lo + hi) / 2 for lo, hi in RANGES.values()])
    with c:
        out = tmp_path / "cal.json"
        assert _calibrate(c, out, [1, 2, 3]) == 0
        cal = Calibration.load(out)
        assert {j.model_number for j in cal.joints} == {xl}
        for i, (lo, hi) in RANGES.items():
            c.set_position(i, (lo + hi) / 2 + 0.1)
        with DynamixelBackend(DynamixelBus(c.path), cal, control_dt=0.002) as be:
            assert be.control_mode == "position"
            q = be.read().q.copy()
            be.hold()
            threading.Event().wait(0.2)
            after = be.read().q
        assert _torque_off(c, [1, 2, 3])
    assert q == pytest.approx([0.1] * 3, abs=3 * RAD_PER_TICK)  # the calibration applies
    assert after == pytest.approx(q, abs=0.01)
