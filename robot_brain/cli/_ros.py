"""Shared pieces of the ROS 2 verbs (``deploy``, ``sim-robot``): options, the robot config,
the transport, the flight recorder and a clean stop on SIGINT/SIGTERM.

``ros2 launch`` starts these verbs as nodes and appends ``--ros-args ...``: everything from
``--ros-args`` on is ROS's and is dropped before the verb's own options are parsed (parameters
come from the ``--robot`` file, which is the same file the launch file hands ROS).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import CliError, positive_float

if TYPE_CHECKING:
    from robot_brain.hardware.ros2.config import RobotConfig
    from robot_brain.hardware.ros2.recorder import FlightRecorder
    from robot_brain.hardware.ros2.transport import Transport

__all__ = ["add_robot_options", "enter_realtime", "open_recorder", "open_transport", "report_crashes",
           "robot_config", "strip_ros_args", "terminate_as_interrupt"]


def strip_ros_args(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--ros-args ... [--]`` (what launch_ros appends to a node's arguments)."""
    out: list[str] = []
    skipping = False
    for a in argv:
        if a == "--ros-args":
            skipping = True
        elif skipping and a == "--":
            skipping = False
        elif not skipping:
            out.append(a)
    return out


def add_robot_options(p: argparse.ArgumentParser, *, record_what: str,
                      transports: tuple[str, ...] = ("auto", "rclpy", "dds")) -> None:
    """``--robot``, ``--transport``, ``--record``, ``--duration``, ``--control-hz``."""
    p.add_argument("--robot", required=True, metavar="CFG.yaml",
                   help="robot config: a ROS 2 parameter file (see launch/config/)")
    serial = (" A config with a serial section (a servo arm) uses the serial bus."
              if "serial" in transports else "")
    p.add_argument("--transport", choices=transports, default="auto",
                   help="rclpy when it imports (a sourced ROS 2), else Cyclone DDS speaking the "
                        f"ROS 2 wire protocol (auto, default); or force one.{serial}")
    p.add_argument("--record", default=None, metavar="BAG",
                   help=f"flight recorder: write {record_what} to a rosbag2 (MCAP) directory BAG "
                        f"(a name ending in .mcap names the directory without it)")
    p.add_argument("--duration", type=positive_float, default=None, metavar="S",
                   help="stop after S seconds (default: run until Ctrl-C)")
    p.add_argument("--control-hz", type=positive_float, default=None, metavar="HZ",
                   help="override the config's control_hz")


def robot_config(args: argparse.Namespace, **overrides: Any) -> tuple[RobotConfig, dict[str, Any]]:
    """The validated robot config of ``--robot`` (with the command line's overrides) and the
    file's other sections (``envelope``); a bad file is a one-line :class:`CliError`."""
    from robot_brain.hardware.ros2.config import SECTIONS, RobotConfig, read_parameters

    if getattr(args, "control_hz", None) is not None:
        overrides["control_hz"] = args.control_hz
    try:
        params = read_parameters(args.robot)
        sections = {k: params.pop(k) for k in SECTIONS if k in params}
        cfg = RobotConfig().with_options(**{**params, **overrides})
    except (TypeError, ValueError) as exc:
        msg = str(exc).splitlines()[0]
        prefix = "" if msg.startswith("robot config") else f"robot config {args.robot}: "
        raise CliError(prefix + msg) from None
    return cfg, sections


def report_crashes() -> None:
    """On a hard crash (a SIGSEGV inside a C library: DDS, MuJoCo) print every thread's Python
    stack to stderr before dying, instead of a bare exit code: the one trace a deploy log keeps
    of a fault that no test on this machine reproduces at will. A no-op without a real stderr
    (the verbs run in-process, captured)."""
    if faulthandler.is_enabled():
        return
    with contextlib.suppress(AttributeError, ValueError, OSError):
        faulthandler.enable()


def enter_realtime(cfg: RobotConfig) -> bool:
    """Apply the config's ``realtime_priority`` to this thread (and the threads it starts
    later); if the system refuses, say so in one line on stderr and run on at normal priority,
    as ros2_control does. Returns whether the loop runs at real-time priority."""
    from robot_brain.runtime import use_realtime_priority

    why_not = use_realtime_priority(cfg.realtime_priority)
    if why_not is not None:
        print(f"warning: realtime_priority {cfg.realtime_priority} not applied, running at normal "
              f"priority: {why_not}", file=sys.stderr, flush=True)
    return cfg.realtime_priority > 0 and why_not is None


def open_transport(kind: str, cfg: RobotConfig, node_name: str) -> Transport:
    """The ROS 2 transport (``--transport``) in the config's DDS domain; errors are one line.
    Enter the config's real-time priority first (:func:`enter_realtime`), so DDS's own threads
    inherit it."""
    from robot_brain.hardware.ros2.transport import make_transport

    try:
        return make_transport(kind, network=cfg.dds, node_name=node_name)
    except ValueError as exc:
        raise CliError(f"argument --transport: {exc}") from None
    except Exception as exc:  # DDS could not start (e.g. no such network interface)
        raise CliError(f"cannot join DDS domain {cfg.dds.domain_id} on network interface "
                       f"{cfg.dds.interface or '(default)'}: "
                       f"{str(exc).splitlines()[0]}", code=1) from None


def open_recorder(path: str | None) -> FlightRecorder | None:
    """The flight recorder of ``--record`` (refused before any work if it cannot be written)."""
    if path is None:
        return None
    from robot_brain.hardware.ros2.recorder import FlightRecorder

    try:
        return FlightRecorder(Path(path))
    except (OSError, ValueError) as exc:
        raise CliError(f"argument --record: {exc}") from None


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``ros2 launch`` shutting a node down, ``kill``) raises KeyboardInterrupt like
    Ctrl-C, so both end in the same safe stop."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests): leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
