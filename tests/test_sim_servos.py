"""``robot-brain sim-servos`` in its own process, reached from this one through its pty: the
virtual chain as a user tool (another process talks to it like to a real bus)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from robot_brain.cli import main
from robot_brain.hardware.dynamixel.bus import DynamixelBus


def test_another_process_talks_to_the_chain_through_the_printed_port():
    proc = subprocess.Popen([sys.executable, "-m", "robot_brain", "sim-servos", "--ids", "1", "2", "3",
                             "--duration", "20"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("sim-servos: 3 servos"), line
        port = line.rsplit(" on ", 1)[1].strip()
        with DynamixelBus(port) as bus:
            assert [bus.ping(i) for i in (1, 2, 3)] == [1020, 1020, 1020]
            assert set(bus.sync_read(132, 4, [1, 2, 3])) == {1, 2, 3}
    finally:
        proc.send_signal(2)  # Ctrl-C
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 130
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["handled"] >= 4


@pytest.mark.parametrize("args, needle", [
    (["--ids", "1", "1"], "appears twice"),
    (["--ids", "300"], "servo id in 0..252"),
    (["--model", "7"], "unknown model number 7"),
    (["--corrupt-rate", "1.5"], "probability"),
])
def test_bad_options_are_one_line_usage_errors(capsys, args, needle):
    assert main(["sim-servos", *args, "--duration", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


def test_runs_for_its_duration_and_reports(capsys):
    t0 = time.monotonic()
    assert main(["sim-servos", "--ids", "4", "--duration", "0.3"]) == 0
    assert time.monotonic() - t0 < 10
    assert '"packets": 0' in capsys.readouterr().out


def test_the_arm_served_on_tcp_runs_a_deploy_from_another_process(capsys):
    """``sim-servos --robot CFG --tcp 0`` in its own process: the servo arm (coupled MuJoCo
    physics) on socket://127.0.0.1:PORT, and deploy in this one drives it over the socket."""
    proc = subprocess.Popen([sys.executable, "-m", "robot_brain", "sim-servos", "--robot",
                             "launch/config/servo_arm.yaml", "--tcp", "0", "--duration", "60"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "the servo_arm arm of launch/config/servo_arm.yaml (6 servos" in line, line
        port = line.rsplit(" on ", 1)[1].strip()
        assert port.startswith("socket://127.0.0.1:")
        assert main(["deploy", "--robot", "launch/config/servo_arm.yaml", "--port", port,
                     "--policy", "zero", "--duration", "1"]) == 0
    finally:
        proc.send_signal(2)
        proc.communicate(timeout=20)
    assert "bus: " in capsys.readouterr().out


def test_a_taken_tcp_port_is_one_line(capsys):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["sim-servos", "--ids", "1", "--tcp", str(port), "--duration", "0.1"]) == 1
    err = capsys.readouterr().err.strip()
    assert f"argument --tcp: port {port}" in err and "\n" not in err
