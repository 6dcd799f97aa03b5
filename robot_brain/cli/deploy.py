"""``robot-brain deploy --robot CFG``: run a shielded policy on a ros2_control robot, or on a
Dynamixel servo arm over its serial bus (``--transport serial``)."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from ._common import CliError, add_shield_option, console, make_task_env, nonneg_int, positive_float
from ._ros import (
    add_robot_options,
    enter_realtime,
    open_recorder,
    open_transport,
    report_crashes,
    robot_config,
    terminate_as_interrupt,
)

NAME = "deploy"
HELP = "run a shielded policy on a real arm (or a rehearsal robot) through ROS 2 or a serial servo bus"
DESCRIPTION = """Connect to a ros2_control robot and run a task's policy on it through the same
two-rate loop, reflex and safety envelope as in simulation: the robot's /joint_states pace the
loop; torques go to /<effort_controller>/commands (interface: effort) or the reflex-filtered
setpoint goes to the robot's own impedance controller (interface: impedance). Nothing is sent
until a fresh, plausible joint state has been read; a stale state, a NaN or Ctrl-C puts the arm
in hold (a hold command is streamed: a forward-command controller keeps its last command
forever). Status and reflex events are published on the config's status/events topics.

A robot config with a serial section (a Dynamixel arm) runs the same loop on the servo bus
instead, paced by the wall clock: torque is turned on only after every servo answered with the
expected model, the calibration file matched the config and a first state lay inside every
joint's calibrated range; on exit, a fault or Ctrl-C torque is disabled or held (serial.on_exit).

examples:
  robot-brain sim-robot --robot launch/config/sim_arm.yaml &        # a robot to talk to
  robot-brain deploy --robot launch/config/sim_arm.yaml --policy scripted --task reach
  robot-brain deploy --robot launch/config/panda.yaml --policy runs/reach/sac-... --dry-run
  robot-brain deploy --robot launch/config/servo_arm.yaml --transport serial --port /dev/ttyUSB0 \
      --policy scripted --task servo-reach
"""

_SAFE_STOP = 0.2  # s of streamed hold before disconnecting (the arm comes to rest first)
_HOLD_REASONS = ("stale_state", "read_error", "nonfinite_state")
#: The task a robot config's arm runs when --task is not given.
DEFAULT_TASK = {"panda": "reach", "servo_arm": "servo-reach"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_robot_options(p, record_what="joint states, commands, setpoints, stiffness and events",
                      transports=("auto", "rclpy", "dds", "serial"))
    p.add_argument("--port", default=None, metavar="PORT",
                   help="serial transport: the bus's port (/dev/ttyUSB0, the pty sim-servos prints, "
                        "or a pyserial URL such as socket://localhost:4000); default: the config's "
                        "serial.port")
    p.add_argument("--policy", default="zero", metavar="RUN_DIR|scripted|zero",
                   help="a training run directory (its best checkpoint), 'scripted' (the task's "
                        "hand-written policy) or 'zero' (hold the pose; default)")
    p.add_argument("--task", default=None, metavar="TASK",
                   help="the task whose observation and action mapping the policy uses (default: "
                        "the arm's: reach on the panda, servo-reach on the servo arm)")
    add_shield_option(p, "limits", "default: limits")
    p.add_argument("--dry-run", action="store_true",
                   help="compute and log torques/setpoints but publish no command")
    p.add_argument("--seed", type=nonneg_int, default=0, help="episode seed (the task's goal)")
    p.add_argument("--policy-hz", type=positive_float, default=None, metavar="HZ",
                   help="override the config's policy_hz")
    p.add_argument("--json", default=None, metavar="FILE", help="write the run's report to FILE")


def _envelope(sections: dict[str, Any], source: str, base: Any) -> Any:
    """The envelope section of the robot config over the arm's own bounds ``base``."""
    from robot_brain.params import replace_checked

    options = sections.get("envelope") or {}
    if not isinstance(options, dict):
        raise CliError(f"robot config {source}: envelope must be a mapping of EnvelopeConfig fields, "
                       f"got {options!r}")
    try:
        return replace_checked(base, options, "envelope")
    except (TypeError, ValueError) as exc:
        raise CliError(f"robot config {source}: {str(exc).splitlines()[0]}") from None


def _policy(spec: str, env: Any, seed: int) -> Any:
    from robot_brain.policies import make_policy

    if spec in ("zero", "scripted"):
        try:
            return make_policy(spec, env, seed)
        except ValueError as exc:
            raise CliError(f"argument --policy: {exc}") from None
    if not Path(spec).is_dir():
        raise CliError(f"argument --policy: {spec!r} is not a run directory, 'scripted' or 'zero'")
    from robot_brain.training.policy import load_trained_policy

    try:
        return load_trained_policy(spec, env)
    except (OSError, ValueError) as exc:
        raise CliError(f"argument --policy: {str(exc).splitlines()[0]}") from None


class _Reporter:
    """Publishes status and events (on ROS 2), prints holds, keeps the run's record."""

    def __init__(self, transport: Any, cfg: Any, backend: Any, recorder: Any, source: str) -> None:
        from robot_brain.hardware.ros2.messages import String

        self._String = String
        self.cfg, self.backend, self.recorder, self.source = cfg, backend, recorder, source
        self.status_pub = transport.publisher(cfg.status_topic, String) if transport else None
        self.events_pub = transport.publisher(cfg.events_topic, String) if transport else None
        self.n_events = 0
        self.next_status = 0.0
        self.holds: list[dict[str, Any]] = []

    def _send(self, pub: Any, topic: str, data: dict[str, Any]) -> None:
        msg = self._String(json.dumps(data))
        if pub is not None:
            pub.publish(msg)
        if self.recorder is not None:
            self.recorder.record(topic, msg, time.time())

    def events(self, loop: Any) -> None:
        events = loop.events.events
        for e in events[self.n_events:]:
            data = {"reason": e.reason, "t": e.t, "tick": e.tick, "value": e.value}
            if e.reason in _HOLD_REASONS:
                lats = getattr(self.backend, "hold_latencies", None)
                lat = lats[-1] if lats else None
                data["since_last_state"] = lat
                self.holds.append(data)
                if lats is not None:
                    print(f"deploy: HOLD ({e.reason}): no fresh {self.source} for "
                          f"{(lat or 0.0) * 1e3:.0f} ms (state_timeout "
                          f"{self.cfg.state_timeout * 1e3:.0f} ms); streaming a hold command until "
                          f"the robot answers again", flush=True)
            self._send(self.events_pub, self.cfg.events_topic, data)
        self.n_events = len(events)

    def status(self, extra: dict[str, Any]) -> None:
        """Publish the status at ``status_hz`` (built only when it is due: this runs between
        fast ticks)."""
        if self.status_pub is None:
            return
        now = time.monotonic()
        if now >= self.next_status:
            self.next_status = now + 1.0 / self.cfg.status_hz
            self._send(self.status_pub, self.cfg.status_topic,
                       {"time": time.time(), **self.backend.status(), **extra})


def _tap(recorder: Any, cfg: Any, joint_states: bool) -> Any:
    """The loop's setpoint tap of the flight recorder: every executed setpoint, and with
    ``joint_states`` (a robot not read through ROS) every measured state too. Each is stamped
    with its state's time and logged at wall time, the events' bag time: a serial arm's state
    time is ``time.monotonic()``, and a bag on two clocks put its events 1.8e9 s after its states."""
    from robot_brain.hardware.ros2.recorder import record_joint_state, record_setpoint

    names = list(cfg.joints)

    def tap(state: Any, sp: Any) -> None:
        now = time.time()
        if joint_states:
            record_joint_state(recorder, now, names, state.q, state.dq, state.tau,
                               cfg.joint_states_topic, stamp=state.t)
        if sp.position is not None:
            record_setpoint(recorder, now, sp.position, sp.orientation, sp.stiffness,
                            sp.damping_ratio, cfg.frame_id, stamp=state.t)

    return tap


def _servo_mode(backend: Any) -> str:
    """", servos in current mode" or ", servos in position mode" (goal positions the servos turn
    into the torques) for a servo bus; "" for other backends."""
    mode = getattr(backend, "control_mode", None)
    return f", servos in {mode} mode" if mode else ""


def _arm_and_task(cfg: Any, task: str | None, source: str) -> tuple[Any, str]:
    """The config's arm model and the task to run on it (one line if they do not fit)."""
    from robot_brain.envs import ARMS, resolve_task

    arm = ARMS.get(cfg.arm)
    if arm is None:
        raise CliError(f"robot config {source}: unknown arm {cfg.arm!r} (known: {', '.join(ARMS)})")
    if cfg.n_joints != arm.n_joints:
        raise CliError(f"robot config {source}: the {arm.name} model has {arm.n_joints} joints, "
                       f"the config names {cfg.n_joints}")
    name = task or DEFAULT_TASK[arm.name]
    try:
        spec = resolve_task(name)
    except ValueError as exc:
        raise CliError(f"argument --task: {exc}") from None
    task_arm = getattr(spec.config_type, "arm", None)  # None: not an arm task (the swimmer)
    if task_arm is not arm:
        fits = [t for t, s in _tasks().items() if getattr(s.config_type, "arm", None) is arm]
        runs_on = f"runs on the {task_arm.name} arm" if task_arm is not None else "is not an arm task"
        raise CliError(f"argument --task: {spec.name} {runs_on}; the robot config's arm is {arm.name} "
                       f"(its tasks: {', '.join(fits)})")
    return arm, spec.name


def _tasks() -> dict[str, Any]:
    from robot_brain.envs import TASKS

    return TASKS


def _serial_backend(args: argparse.Namespace, cfg: Any, sections: dict[str, Any],
                    arm: Any) -> tuple[Any, int]:
    """The Dynamixel backend of the config's serial section and its consecutive-failure limit;
    bad input is one line, before any bus work."""
    import mujoco

    from robot_brain.controllers import RobotModel
    from robot_brain.hardware.dynamixel.backend import DynamixelBackend
    from robot_brain.hardware.dynamixel.config import SerialConfig

    try:
        serial = SerialConfig.from_section(sections.get("serial"), args.robot, port=args.port)
        calibration = serial.load_calibration(args.robot, cfg.joints)
    except ValueError as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    port = serial.port
    if port.startswith("/") and not Path(port).exists():
        what = "argument --port" if args.port else f"robot config {args.robot}: serial.port"
        raise CliError(f"{what}: {port} does not exist (is the adapter plugged in? ls /dev/ttyUSB* "
                       f"/dev/ttyACM*)")
    model = RobotModel(mujoco.MjModel.from_xml_string(arm.build_mjcf("")), arm.ee_site, arm.n_joints)
    try:
        backend = DynamixelBackend(serial.bus(), calibration, control_dt=1.0 / cfg.control_hz,
                                   robot_model=model, dry_run=args.dry_run, **serial.backend_options())
    except ValueError as exc:  # e.g. control_mode: current on a servo model without current control
        raise CliError(f"calibration {serial.calibration_path(args.robot)}: "
                       f"{str(exc).splitlines()[0]}") from None
    return backend, serial.max_consecutive_failures


def _check_args(args: argparse.Namespace, cfg: Any, sections: dict[str, Any]) -> tuple[bool, Any, str]:
    """Whether the run is on a serial bus, the arm and the task (one-line errors first)."""
    serial = args.transport == "serial" or (args.transport == "auto" and "serial" in sections)
    if args.port is not None and not serial:
        raise CliError("argument --port: only the serial transport has a port (the robot config has "
                       "no serial section; pass --transport serial)")
    arm, task_name = _arm_and_task(cfg, args.task, args.robot)
    if args.policy not in ("zero", "scripted") and not Path(args.policy).is_dir():
        raise CliError(f"argument --policy: {args.policy!r} is not a run directory, 'scripted' or 'zero'")
    return serial, arm, task_name


def _ros_backend(args: argparse.Namespace, cfg: Any, arm: Any, recorder: Any) -> tuple[Any, Any]:
    """The ROS 2 transport and the backend on it."""
    import mujoco

    from robot_brain.controllers import RobotModel
    from robot_brain.hardware.ros2.backend import Ros2Backend

    transport = open_transport(args.transport, cfg, "robot_brain")
    model = RobotModel(mujoco.MjModel.from_xml_string(arm.build_mjcf("")), arm.ee_site, cfg.n_joints)
    backend = Ros2Backend(transport, cfg, model, dry_run=args.dry_run, recorder=recorder)
    print(f"deploy: waiting for {cfg.joint_states_topic} (DDS domain {cfg.dds.domain_id}, "
          f"{transport.name} transport, up to {cfg.connect_timeout:g} s)", flush=True)
    return transport, backend


def run(args: argparse.Namespace) -> int:
    from robot_brain.hardware.base import BackendError
    from robot_brain.runtime import WallClock

    overrides = {"policy_hz": args.policy_hz} if args.policy_hz is not None else {}
    cfg, sections = robot_config(args, **overrides)
    serial, arm, task_name = _check_args(args, cfg, sections)
    envelope = _envelope(sections, args.robot, arm.envelope)
    transport = None
    max_failures = 0  # 0: no limit (ROS 2: the state timeout holds)
    report_crashes()
    realtime = enter_realtime(cfg)  # before any thread starts (DDS's), so they inherit it
    if serial:
        backend, max_failures = _serial_backend(args, cfg, sections, arm)
        source = f"state from the bus on {backend.bus.port}"
    _warm_up(task_name, cfg)
    recorder = open_recorder(args.record)
    if serial:
        print(f"deploy: connecting to {len(backend.ids)} servos on {backend.bus.port} "
              f"({backend.bus.baudrate} bit/s)", flush=True)
    else:
        transport, backend = _ros_backend(args, cfg, arm, recorder)
        source = cfg.joint_states_topic
    con = console()
    env = None
    reporter = None
    record: dict[str, Any] = {"episodes": [], "interrupted": False, "transport": "serial" if serial
                              else transport.name if transport is not None else None,
                              "realtime_priority": cfg.realtime_priority if realtime else 0}
    code = 0
    try:
        with terminate_as_interrupt():
            # With --duration an episode ends on success or termination only, not on the task's
            # step limit (a hold-still run is one episode).
            episode_limit = {"max_episode_steps": 1_000_000} if args.duration is not None else {}
            try:
                if not serial:  # wait for the robot's first plausible state
                    backend.configure()
                # The task activates the backend. A servo bus is configured right there, just
                # before torque comes on: its torque is off from configure to activate, and an
                # arm with torque off sags under gravity.
                env = make_task_env(task_name, backend=backend, shield=args.shield, envelope=envelope,
                                    policy_hz=cfg.policy_hz, control_hz=cfg.control_hz,
                                    disturbances="none", **episode_limit)
            except BackendError as exc:
                raise CliError(str(exc), code=1) from None
            dry = _servo_mode(backend) + (", DRY RUN (nothing sent)" if args.dry_run else "")
            print(f"deploy: connected; {cfg.interface} interface, {cfg.control_hz:g} Hz loop, "
                  f"{cfg.policy_hz:g} Hz policy, task {task_name}{dry}", flush=True)
            task = env.unwrapped
            # The robot config's state timeout, not the simulator's default.
            task.loop.config = dataclasses.replace(task.loop.config, state_timeout=cfg.state_timeout)
            if serial:  # a bus answers at once: the wall clock paces the loop (ROS: the robot's states)
                task.loop.clock = WallClock()
            policy = _policy(args.policy, env, args.seed)
            reporter = _Reporter(transport, cfg, backend, recorder, source)
            if recorder is not None:
                task.loop.on_setpoint = _tap(recorder, cfg, joint_states=serial)
            # Everything built so far lives until the end: keep the cyclic garbage collector off it,
            # so its passes in the loop stay short.
            gc.collect()
            gc.freeze()
            code = _episodes(args, env, policy, reporter, backend, record, max_failures)
    except BackendError as exc:  # a fault outside the loop's own handling (e.g. during a reset)
        record["stopped"] = {"reason": "backend_error", "error": str(exc)}
        print(f"deploy: stopping: {exc}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        record["interrupted"] = True
        print("deploy: interrupted: holding the arm", file=sys.stderr, flush=True)
        code = 130
    finally:
        if not _shut_down(backend, env, 1.0 / cfg.control_hz):
            code = code or 1
        if transport is not None:
            transport.close()
        _close_recorder(recorder)
    record["backend"] = backend.status(latency=True)
    record["holds"] = list(reporter.holds) if reporter is not None else []
    record["events"] = dict(env.unwrapped.loop.events.counts()) if env is not None else {}
    _report(con, record, recorder)
    if args.json:
        from ._common import save_results

        save_results(args.json, record)
    return code


def _episodes(args: argparse.Namespace, env: Any, policy: Any, reporter: _Reporter, backend: Any,
              record: dict[str, Any], max_failures: int) -> int:
    """Run episodes until --duration (or one episode); the exit code (1: the bus was lost)."""
    task = env.unwrapped
    t0 = time.monotonic()
    seed = args.seed
    lost = False
    while not lost:
        obs, _ = env.reset(seed=seed)
        policy.reset()
        done = False
        info: dict[str, Any] = {}
        while not done:
            obs, _r, term, trunc, info = env.step(policy.act(obs))
            done = term or trunc
            reporter.events(task.loop)
            reporter.status({"episode": len(record["episodes"]), "step": task.episode.steps,
                             "success": bool(info.get("is_success", False))})
            lost = ((max_failures > 0 and backend.consecutive_failures >= max_failures)
                    or getattr(backend, "hardware_error", None) is not None)
            if lost or (args.duration is not None and time.monotonic() - t0 >= args.duration):
                break
        ep = task.episode.as_dict()
        # Ticks that started more than a period late (the wall clock pacing a serial bus).
        ep["late_ticks"] = getattr(task.loop.clock, "overruns", None)
        ep["goal_distance"] = (float(((task.goal - task.state.ee_pos) ** 2).sum() ** 0.5)
                               if hasattr(task, "goal") else None)
        record["episodes"].append(ep)
        if args.duration is None or time.monotonic() - t0 >= args.duration:
            break
        seed += 1
    if not lost:
        return 0
    if backend.hardware_error is not None:  # a servo turned its torque off: the arm is not whole
        servo, bits = backend.hardware_error
        record["stopped"] = {"reason": "hardware_error", "servo": servo, "status": bits}
        print(f"deploy: stopping: {backend.fault}", file=sys.stderr, flush=True)
        return 1
    record["stopped"] = {"reason": "bus_lost", "failed_reads": backend.consecutive_failures}
    print(f"deploy: the bus on {backend.bus.port} failed {backend.consecutive_failures} reads in a "
          f"row (serial.max_consecutive_failures {max_failures}): stopping with the arm in "
          f"{backend.on_exit}", file=sys.stderr, flush=True)
    return 1


def _warm_up(task: str, cfg: Any) -> None:
    """Run one slow tick of the task in simulation before connecting: the loop's compiled
    kernels load on their first call (a fraction of a second), which must not happen between a
    real state and its command."""
    env = make_task_env(task, policy_hz=cfg.policy_hz, control_hz=cfg.control_hz, disturbances="none")
    try:
        env.reset(seed=0)
        env.step(env.action_space.sample() * 0.0)
    finally:
        env.close()


def _close_recorder(recorder: Any) -> None:
    """Finish the bag; a bag that cannot be finished is said in one line (the run is done)."""
    if recorder is None:
        return
    try:
        recorder.close()
    except OSError as exc:
        print(f"deploy: the flight recording could not be finished: {exc}", file=sys.stderr)


def _shut_down(backend: Any, env: Any, period: float) -> bool:
    """Stream the hold, then release the robot (its exit state: hold or torque off); False, with
    one line said, when the robot did not confirm it."""
    from robot_brain.hardware.base import BackendError

    _safe_stop(backend, period)
    try:
        if env is not None:
            env.close()
        else:
            backend.disconnect()
    except BackendError as exc:
        print(f"deploy: the robot did not confirm the stop ({exc}); check the arm",
              file=sys.stderr, flush=True)
        return False
    return True


def _safe_stop(backend: Any, period: float) -> None:
    """Stream the hold for a moment, one per control period, so the arm is at rest under a hold
    command when we leave."""
    if not backend.active:
        return
    end = time.monotonic() + _SAFE_STOP
    try:
        while (now := time.monotonic()) < end:
            backend.read()
            backend.hold()
            time.sleep(max(0.0, period - (time.monotonic() - now)))
    except Exception:
        pass


def _report(con: Any, record: dict[str, Any], recorder: Any) -> None:
    from rich.table import Table

    t = Table(title="deploy")
    for col in ("episode", "steps", "success", "goal distance [m]", "max force [N]", "interventions"):
        t.add_column(col)
    for i, ep in enumerate(record["episodes"]):
        gd = ep.get("goal_distance")
        t.add_row(str(i), str(ep["steps"]), str(ep["success"]), "-" if gd is None else f"{gd:.4f}",
                  f"{ep['max_contact_force']:.1f}", str(ep["interventions"]))
    con.print(t)
    b = record["backend"]
    if record["transport"] == "serial":
        bus = b["bus"]
        what = "goal-position" if b.get("control_mode") == "position" else "torque"
        con.print(f"bus: {b['reads']} state reads, {b['read_errors']} failed after their retries "
                  f"(each a held tick); {b['writes']} {what} writes, {b['holds']} holds; "
                  f"{bus['retries']} retries ({bus['timeouts']} timeouts, {bus['crc_errors']} "
                  f"corrupted replies); ticks more than a period late: "
                  f"{sum(ep['late_ticks'] or 0 for ep in record['episodes'])}",
                  markup=False, highlight=False)
    else:
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(b["rejected"].items())) or "none"
        con.print(f"joint states: {b['accepted']} accepted of {b['received']} (rejected: {rejected}); "
                  f"commands sent: {b['sent']}; states missed (no new state within a period): "
                  f"{b['deadline_misses']}; commands withheld: {b['skipped_stale']} for an answered "
                  f"state, {b['late_withheld']} past their deadline", markup=False, highlight=False)
    if recorder is not None:
        con.print(f"recorded: {recorder.path}", markup=False, highlight=False)
