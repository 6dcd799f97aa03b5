"""``robot-brain calibrate``: record each joint's range by hand and write a calibration file."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import EXIT_FAILURE, SERVO_ID, CliError, output_path, positive_float

if TYPE_CHECKING:
    from robot_brain.hardware.dynamixel.bus import DynamixelBus
    from robot_brain.hardware.dynamixel.calibration import Calibration, JointCalibration

NAME = "calibrate"
HELP = "calibrate a Dynamixel arm by hand: record each joint's range, write a calibration file"
DESCRIPTION = """Connect to a Dynamixel bus, ping every servo, turn torque OFF on all of them (the
arm goes limp: hold it) and record each joint in turn while you move it by hand through its whole
range. Each joint's zero is put at the middle of the recorded range (homing offset = middle tick
- 2048, direction +1) and its limits at the recorded extremes. The calibration is written
atomically to --out (an existing file only with --yes) and printed as a table. Torque stays off
afterwards. Ctrl-C stops without writing anything.

With --robot CFG (a robot config with a serial section) the port, baud rate, joint names and
output file come from the config: servos 1..n drive its joints in order (or give --ids), and the
file is written where serial.calibration points, which is what deploy reads.

examples:
  robot-brain calibrate --robot my_arm.yaml
  robot-brain calibrate --port /dev/ttyUSB0 --ids 1 2 3 4 5 6 --out calibration.json
  robot-brain calibrate --port /dev/ttyUSB0 --ids 1 2 3 --names base shoulder elbow \\
      --out arm.json --yes
  robot-brain calibrate --port /dev/pts/5 --ids 1 2 --seconds-per-joint 5 --out cal.json
"""

MIN_RANGE = 0.1  # rad; a joint recorded over less did not move
_POLL_S = 0.005  # pause between two position reads


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--robot", default=None, metavar="CFG.yaml",
                   help="robot config with a serial section: port, baud rate, joint names and the "
                        "file to write come from it")
    p.add_argument("--port", default=None,
                   help="serial port of the bus (/dev/ttyUSB0, a pty, or a pyserial URL); "
                        "required without --robot")
    p.add_argument("--ids", type=SERVO_ID, nargs="+", default=None, metavar="ID",
                   help="servo ids, in joint order (required without --robot; with it: 1..n)")
    p.add_argument("--out", type=output_path((".json",)), default=None, metavar="FILE.json",
                   help="calibration file to write (atomically); required without --robot")
    p.add_argument("--names", nargs="+", default=None, metavar="NAME",
                   help="joint names, one per id (default: the config's joints, else joint<id>)")
    p.add_argument("--baudrate", type=int, default=None,
                   help="bus baud rate (default: the config's, else 1000000)")
    p.add_argument("--seconds-per-joint", type=positive_float, default=None, metavar="S",
                   help="record each joint for S seconds without a prompt (scripts, tests); "
                        "default: record until Enter")
    p.add_argument("--yes", action="store_true", help="overwrite --out if it exists")


def _from_robot(args: argparse.Namespace) -> None:
    """Fill --port, --ids, --names, --out and --baudrate from --robot where not given."""
    from robot_brain.hardware.dynamixel.config import SerialConfig

    from ._ros import robot_config

    cfg, sections = robot_config(argparse.Namespace(robot=args.robot))
    if "serial" not in sections:
        raise CliError(f"robot config {args.robot} has no serial section (a Dynamixel arm's config "
                       f"has one: see launch/config/servo_arm.yaml)")
    try:
        serial = SerialConfig.from_section(sections["serial"], args.robot)
    except ValueError as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    args.port = args.port or serial.port
    args.baudrate = args.baudrate or serial.baudrate
    args.names = args.names or list(cfg.joints)
    args.ids = args.ids or list(range(1, cfg.n_joints + 1))
    if args.out is None:
        try:
            args.out = output_path((".json",))(str(serial.calibration_path(args.robot)))
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"robot config {args.robot}: serial.calibration: {exc}") from None


def _check_args(args: argparse.Namespace) -> list[str]:
    """The joint names; one-line errors for the command line (before any bus work)."""
    if args.robot is not None:
        _from_robot(args)
    for opt in ("port", "ids", "out"):
        if getattr(args, opt) is None:
            raise CliError(f"argument --{opt}: required (or give --robot CFG)")
    args.baudrate = args.baudrate or 1_000_000
    if len(set(args.ids)) != len(args.ids):
        raise CliError(f"argument --ids: a servo id appears twice: {args.ids}")
    names = list(args.names) if args.names is not None else [f"joint{i}" for i in args.ids]
    if len(names) != len(args.ids):
        raise CliError(f"argument --names: {len(names)} names for {len(args.ids)} ids")
    if len(set(names)) != len(names) or any(not n.strip() for n in names):
        raise CliError(f"argument --names: names must be distinct and non-empty, got {names}")
    out = Path(args.out)
    if out.exists() and not args.yes:
        raise CliError(f"{out} exists; pass --yes to overwrite it")
    return names


def _ping_all(bus: DynamixelBus, ids: list[int]) -> dict[int, int]:
    """Model number of every servo; one line (exit 1) for a silent servo or an unknown model."""
    from robot_brain.hardware.dynamixel.control_table import MODELS, known_models

    models = {}
    for i in ids:
        try:
            models[i] = bus.ping(i)
        except Exception as exc:  # BusError, StatusError
            raise CliError(f"servo {i} does not answer on {bus.port}: {exc}", EXIT_FAILURE) from None
        if models[i] not in MODELS:
            raise CliError(f"servo {i} reports unknown model number {models[i]} "
                           f"(known: {known_models()})",
                           EXIT_FAILURE)
    return models


class _Recorder(threading.Thread):
    """Reads one servo's Present_Position in a loop, keeping the lowest and highest tick."""

    def __init__(self, bus: DynamixelBus, servo_id: int) -> None:
        super().__init__(name=f"calibrate-{servo_id}", daemon=True)
        self.bus, self.servo_id = bus, servo_id
        self.low: int | None = None
        self.high: int | None = None
        self.samples = 0
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        from robot_brain.hardware.dynamixel.bus import HardwareAlert
        from robot_brain.hardware.dynamixel.control_table import PRESENT_POSITION, from_bytes

        addr, size = PRESENT_POSITION.address, PRESENT_POSITION.size
        try:
            while not self.done.is_set():
                try:
                    data = self.bus.read(self.servo_id, addr, size)
                except HardwareAlert as alert:  # the reading is still valid
                    data = alert.data[self.servo_id]
                tick = from_bytes(data, signed=True)
                self.low = tick if self.low is None else min(self.low, tick)
                self.high = tick if self.high is None else max(self.high, tick)
                self.samples += 1
                time.sleep(_POLL_S)
        except Exception as exc:  # reported by the main thread
            self.error = exc


def _record(bus: DynamixelBus, name: str, servo_id: int, seconds: float | None) -> tuple[int, int]:
    """Lowest and highest tick of one joint while the user moves it."""
    rec = _Recorder(bus, servo_id)
    rec.start()
    try:
        if seconds is None:
            try:
                input(f"move joint {name} (servo {servo_id}) through its whole range, then press Enter ")
            except EOFError:
                raise CliError("no answer on stdin; use --seconds-per-joint S to record without "
                               "prompts") from None
        else:
            print(f"recording joint {name} (servo {servo_id}) for {seconds:g} s: move it through its "
                  f"whole range", flush=True)
            time.sleep(seconds)
    finally:
        rec.done.set()
        rec.join(timeout=5.0)
    if rec.error is not None:
        raise CliError(f"joint {name} (servo {servo_id}): reading its position failed: {rec.error}",
                       EXIT_FAILURE)
    if rec.low is None or rec.high is None:
        raise CliError(f"joint {name} (servo {servo_id}): no position was read", EXIT_FAILURE)
    return rec.low, rec.high


def _joint(name: str, servo_id: int, model_number: int, low: int, high: int) -> JointCalibration:
    """The calibration of a joint recorded between ticks ``low`` and ``high``."""
    from robot_brain.hardware.dynamixel.calibration import CENTER, JointCalibration
    from robot_brain.hardware.dynamixel.control_table import model_info

    rad_per_tick = model_info(model_number).rad_per_tick
    span = (high - low) * rad_per_tick
    if span < MIN_RANGE:
        raise CliError(f"joint {name} moved only {span:.3f} rad; move it through its range",
                       EXIT_FAILURE)
    middle = round((low + high) / 2)
    try:
        return JointCalibration(name, servo_id, model_number, middle - CENTER, 1,
                                (low - middle) * rad_per_tick, (high - middle) * rad_per_tick)
    except ValueError as exc:
        raise CliError(f"joint {name}: {exc}", EXIT_FAILURE) from None


def _print_table(cal: Calibration, out: Path) -> None:
    import math

    from rich.table import Table

    from ._common import console

    table = Table(title=f"calibration written to {out}")
    for col in ("joint", "servo", "model", "homing offset", "range min", "range max", "span"):
        table.add_column(col, justify="left" if col == "joint" else "right")
    for j in cal.joints:
        table.add_row(j.name, str(j.servo_id), f"{j.model_number} ({j.model.name})",
                      f"{j.homing_offset:+d}", f"{j.range_min:+.3f} rad ({math.degrees(j.range_min):+.1f}°)",
                      f"{j.range_max:+.3f} rad ({math.degrees(j.range_max):+.1f}°)",
                      f"{math.degrees(j.range_max - j.range_min):.1f}°")
    console().print(table)


def _calibrate(bus: DynamixelBus, ids: list[int], names: list[str], seconds: float | None) -> Calibration:
    from robot_brain.hardware.dynamixel.calibration import Calibration

    models = _ping_all(bus, ids)
    try:
        bus.torque_enable(ids, False)
    except Exception as exc:  # BusError, StatusError
        raise CliError(f"could not turn torque off: {exc}", EXIT_FAILURE) from None
    print(f"calibrate: torque is OFF on servos {' '.join(map(str, ids))}: the arm is limp, hold it "
          f"and move each joint by hand", flush=True)
    joints = []
    for name, i in zip(names, ids, strict=True):
        low, high = _record(bus, name, i, seconds)
        joints.append(_joint(name, i, models[i], low, high))
    return Calibration(tuple(joints))


def run(args: argparse.Namespace) -> int:
    from robot_brain.hardware.dynamixel.bus import BusError, DynamixelBus

    names = _check_args(args)
    bus = DynamixelBus(args.port, args.baudrate)
    try:
        bus.open()
    except BusError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    try:
        cal = _calibrate(bus, list(args.ids), names, args.seconds_per_joint)
    except KeyboardInterrupt:
        print("calibrate: interrupted; nothing written (torque stays off)", file=sys.stderr, flush=True)
        return 130
    finally:
        bus.close()
    try:
        cal.save(args.out)
    except OSError as exc:
        raise CliError(f"could not write {args.out} ({exc.strerror or exc})", EXIT_FAILURE) from None
    _print_table(cal, Path(args.out))
    return 0
