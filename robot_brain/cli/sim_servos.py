"""``robot-brain sim-servos``: a virtual Dynamixel servo chain on a pty, to point a bus at."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from ._common import PROBABILITY, SERVO_ID, CliError, number_in, positive_float

NAME = "sim-servos"
HELP = "serve a virtual Dynamixel servo chain (Protocol 2.0) on a pty, for rehearsals and tests"
DESCRIPTION = """Emulate a chain of Dynamixel X-series servos on the master side of a pseudo-terminal and
print the port to open: anything speaking Protocol 2.0 (robot_brain's DynamixelBus, ROBOTIS's
dynamixel-sdk, another process) talks to it as to a real bus. Each servo has a control table and
a simple motor model (current to torque, inertia, friction); faults can be injected per reply.
Runs until Ctrl-C (or --duration) and prints what it served.

With --robot CFG it emulates the robot config's arm: the servos of its calibration file drive one
MuJoCo model of the whole arm (gravity, coupled links, joint limits), starting at the arm's home
pose; point `deploy --robot CFG --port PTY` at it for a full rehearsal.

examples:
  robot-brain sim-servos --robot launch/config/servo_arm.yaml
  robot-brain sim-servos --ids 1 2 3 4 5 6
  robot-brain sim-servos --ids 1 2 3 --corrupt-rate 0.05 --drop-rate 0.01 --seed 3
  robot-brain sim-servos --robot launch/config/servo_arm.yaml --tcp 4000   # socket://127.0.0.1:4000
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--robot", default=None, metavar="CFG.yaml",
                   help="emulate this robot config's arm (its serial calibration gives the servos)")
    p.add_argument("--ids", type=SERVO_ID, nargs="+", default=None, metavar="ID",
                   help="servo ids of the chain, each its own joint (default: 1 2 3 4 5 6; "
                        "not with --robot)")
    p.add_argument("--model", type=int, default=1020, metavar="N",
                   help="model number every servo reports (default: 1020, XM430-W350)")
    p.add_argument("--drop-rate", type=PROBABILITY, default=0.0, metavar="P", help="replies not sent")
    p.add_argument("--corrupt-rate", type=PROBABILITY, default=0.0, metavar="P",
                   help="replies with a bad CRC")
    p.add_argument("--error-rate", type=PROBABILITY, default=0.0, metavar="P",
                   help="replies with the hardware-error bit (the servo turns torque off)")
    p.add_argument("--delay", type=positive_float, default=None, metavar="S", help="reply delay [s]")
    p.add_argument("--seed", type=int, default=0, help="seed of the faults (default: 0)")
    p.add_argument("--tcp", type=number_in(int, 0, 65535, "a TCP port"), default=None, metavar="PORT",
                   help="serve on socket://127.0.0.1:PORT instead of a pty (loopback only; 0: any "
                        "free port), for a process that cannot open a pty (another container, "
                        "pyserial's URL handlers)")
    p.add_argument("--duration", type=positive_float, default=None, metavar="S",
                   help="stop after S seconds (default: run until Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    from robot_brain.hardware.dynamixel.control_table import MODELS, known_models
    from robot_brain.hardware.dynamixel.virtual import Faults, VirtualServoChain

    if args.robot is not None and args.ids is not None:
        raise CliError("argument --ids: not with --robot (the robot's calibration file lists its servos)")
    if args.ids is not None and len(set(args.ids)) != len(args.ids):
        raise CliError(f"argument --ids: a servo id appears twice: {args.ids}")
    if args.model not in MODELS:
        raise CliError(f"argument --model: unknown model number {args.model} (known: {known_models()})")
    faults = Faults(drop_rate=args.drop_rate, corrupt_rate=args.corrupt_rate,
                    error_rate=args.error_rate, delay=args.delay or 0.0, seed=args.seed)
    if args.robot is not None:
        chain, what = _robot_chain(args.robot, faults)
    else:
        ids = args.ids or [1, 2, 3, 4, 5, 6]
        chain = VirtualServoChain(ids, args.model, faults=faults)
        what = f"{len(ids)} servos (ids {' '.join(map(str, ids))}, model {args.model})"
    try:
        port = chain.start(tcp_port=args.tcp)
    except OSError as exc:  # the TCP port is taken, or no pty can be opened
        what = f"argument --tcp: port {args.tcp}" if args.tcp is not None else "cannot open a pty"
        raise CliError(f"{what}: {exc.strerror or exc}", code=1) from None
    print(f"sim-servos: {what} on {port}", flush=True)
    code = 0
    try:
        end = None if args.duration is None else time.monotonic() + args.duration
        while end is None or time.monotonic() < end:
            time.sleep(0.05)
    except KeyboardInterrupt:
        print("sim-servos: stopped", file=sys.stderr, flush=True)
        code = 130
    finally:
        chain.stop()
    print(json.dumps(dataclasses.asdict(chain.stats)), flush=True)
    return code


def _robot_chain(robot: str, faults: Any) -> tuple[Any, str]:
    """The virtual chain of a robot config's arm (one-line errors for a bad config)."""
    import mujoco

    from robot_brain.envs import ARMS
    from robot_brain.hardware.dynamixel.config import SerialConfig
    from robot_brain.hardware.dynamixel.virtual import ArmPhysics, VirtualServoChain

    from ._ros import robot_config

    cfg, sections = robot_config(argparse.Namespace(robot=robot))
    arm = ARMS.get(cfg.arm)
    if arm is None:
        raise CliError(f"robot config {robot}: unknown arm {cfg.arm!r} (known: {', '.join(ARMS)})")
    try:
        serial = SerialConfig.from_section(sections.get("serial"), robot)
        cal = serial.load_calibration(robot, cfg.joints)
    except ValueError as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    if len(cal) != arm.n_joints:
        raise CliError(f"robot config {robot}: the {arm.name} model has {arm.n_joints} joints, the "
                       f"calibration {len(cal)}")
    models = {j.model_number for j in cal.joints}
    if len(models) != 1:
        raise CliError(f"calibration {serial.calibration_path(robot)}: sim-servos emulates one servo "
                       f"model, the calibration names {sorted(models)}")
    physics = ArmPhysics(mujoco.MjModel.from_xml_string(arm.build_mjcf("")), cal)
    chain = VirtualServoChain(cal.ids, models.pop(), faults=faults, arm=physics,
                              initial_positions=arm.home_q)
    return chain, (f"the {arm.name} arm of {robot} ({len(cal)} servos, ids "
                   f"{' '.join(map(str, cal.ids))}, at its home pose)")
