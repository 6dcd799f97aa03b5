"""``robot-brain sim-robot --robot CFG``: the MuJoCo arm as a ros2_control robot (rehearsal)."""

from __future__ import annotations

import argparse
import json
import sys

from ._common import CliError, console
from ._ros import (
    add_robot_options,
    enter_realtime,
    open_recorder,
    open_transport,
    report_crashes,
    robot_config,
    terminate_as_interrupt,
)

NAME = "sim-robot"
HELP = "serve the simulated arm as a ros2_control robot (rehearse a deployment on one machine)"
DESCRIPTION = """Run the MuJoCo arm in real time as a ros2_control robot: it publishes
/joint_states at the config's state_hz and takes effort commands on
/<effort_controller>/commands (or, with interface: impedance, an equilibrium pose, stiffness and
damping for the impedance law it runs itself). A watchdog holds the arm (gravity compensation and
damping) when no command came for command_timeout seconds. Start 'robot-brain deploy' with the same
config in another terminal.

example:
  robot-brain sim-robot --robot launch/config/sim_arm.yaml --transport dds
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_robot_options(p, record_what="the published joint states and the commands received")
    p.add_argument("--start-q", type=float, nargs=7, default=None, metavar="Q",
                   help="start posture [rad] (default: the arm's home posture)")


def run(args: argparse.Namespace) -> int:
    import mujoco
    import numpy as np

    from robot_brain.envs import panda
    from robot_brain.hardware import MujocoBackend, MujocoImpedanceBackend
    from robot_brain.hardware.ros2.sim_robot import SimRobot

    cfg, _sections = robot_config(args)
    if cfg.n_joints != len(panda.JOINT_NAMES):
        raise CliError(f"robot config {args.robot}: the simulated arm has {len(panda.JOINT_NAMES)} "
                       f"joints, the config names {cfg.n_joints}")
    ticks = 1.0 / (panda.TIMESTEP * cfg.control_hz)
    if abs(ticks - round(ticks)) > 1e-9:
        raise CliError(f"control_hz = {cfg.control_hz:g}: the simulated arm's period must be a whole "
                       f"number of {panda.TIMESTEP * 1e3:g} ms physics steps")
    start = np.array(args.start_q if args.start_q is not None else panda.HOME_Q, dtype=np.float64)
    if not np.isfinite(start).all():
        raise CliError(f"argument --start-q: must be finite, got {args.start_q}")
    model = mujoco.MjModel.from_xml_string(panda.build_mjcf("", name="SimRobot"))
    cls = MujocoImpedanceBackend if cfg.interface == "impedance" else MujocoBackend
    backend = cls(model, control_dt=1.0 / cfg.control_hz, hold_damping=cfg.hold_damping)
    backend.set_state(start)
    recorder = open_recorder(args.record)
    report_crashes()
    enter_realtime(cfg)  # before DDS starts its threads, so they inherit it
    transport = open_transport(args.transport, cfg, "sim_robot")
    con = console()
    robot = SimRobot(transport, cfg, backend, recorder=recorder)
    print(f"sim-robot: serving {cfg.n_joints} joints ({cfg.interface}) on {cfg.joint_states_topic} "
          f"at {cfg.state_hz:g} Hz, DDS domain {cfg.dds.domain_id} ({transport.name})", flush=True)
    code = 0
    try:
        with terminate_as_interrupt():
            robot.run(args.duration)
    except KeyboardInterrupt:
        print("sim-robot: stopped", file=sys.stderr, flush=True)
        code = 130
    finally:
        backend.disconnect()
        transport.close()
        if recorder is not None:
            try:
                recorder.close()
            except OSError as exc:
                print(f"sim-robot: the flight recording could not be finished: {exc}", file=sys.stderr)
    status = robot.status()
    con.print(json.dumps(status), markup=False, highlight=False, soft_wrap=True)
    if recorder is not None:
        print(f"recorded: {recorder.path}", flush=True)
    return code
