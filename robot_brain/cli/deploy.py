"""``robot-brain deploy --robot CFG``: run a shielded policy on a ros2_control robot."""

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
from ._ros import add_robot_options, open_recorder, open_transport, robot_config, terminate_as_interrupt

NAME = "deploy"
HELP = "run a shielded policy on a real arm (or sim-robot) through ROS 2"
DESCRIPTION = """Connect to a ros2_control robot and run a task's policy on it through the same
two-rate loop, reflex and safety envelope as in simulation: the robot's /joint_states pace the
loop; torques go to /<effort_controller>/commands (interface: effort) or the reflex-filtered
setpoint goes to the robot's own impedance controller (interface: impedance). Nothing is sent
until a fresh, plausible joint state has been read; a stale state, a NaN or Ctrl-C puts the arm
in hold (a hold command is streamed: a forward-command controller keeps its last command
forever). Status and reflex events are published on the config's status/events topics.

examples:
  robot-brain sim-robot --robot launch/config/sim_arm.yaml &        # a robot to talk to
  robot-brain deploy --robot launch/config/sim_arm.yaml --policy scripted --task reach
  robot-brain deploy --robot launch/config/panda.yaml --policy runs/reach/sac-... --dry-run
"""

_SAFE_STOP = 0.2  # s of streamed hold before disconnecting (the arm comes to rest first)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_robot_options(p, record_what="joint states, commands, setpoints, stiffness and events")
    p.add_argument("--policy", default="zero", metavar="RUN_DIR|scripted|zero",
                   help="a training run directory (its best checkpoint), 'scripted' (the task's "
                        "hand-written policy) or 'zero' (hold the pose; default)")
    p.add_argument("--task", default="reach", metavar="TASK",
                   help="the task whose observation and action mapping the policy uses (default: reach)")
    add_shield_option(p, "limits", "default: limits")
    p.add_argument("--dry-run", action="store_true",
                   help="compute and log torques/setpoints but publish no command")
    p.add_argument("--seed", type=nonneg_int, default=0, help="episode seed (the task's goal)")
    p.add_argument("--policy-hz", type=positive_float, default=None, metavar="HZ",
                   help="override the config's policy_hz")
    p.add_argument("--json", default=None, metavar="FILE", help="write the run's report to FILE")


def _envelope(sections: dict[str, Any], source: str) -> Any:
    from robot_brain.params import replace_checked
    from robot_brain.safety.envelope import EnvelopeConfig

    options = sections.get("envelope") or {}
    if not isinstance(options, dict):
        raise CliError(f"robot config {source}: envelope must be a mapping of EnvelopeConfig fields, "
                       f"got {options!r}")
    try:
        return replace_checked(EnvelopeConfig(), options, "envelope")
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
    """Publishes status and events, prints holds, keeps the run's record."""

    def __init__(self, transport: Any, cfg: Any, backend: Any, recorder: Any) -> None:
        from robot_brain.hardware.ros2.messages import String

        self._String = String
        self.cfg, self.backend, self.recorder = cfg, backend, recorder
        self.status_pub = transport.publisher(cfg.status_topic, String)
        self.events_pub = transport.publisher(cfg.events_topic, String)
        self.n_events = 0
        self.next_status = 0.0
        self.holds: list[dict[str, Any]] = []

    def _send(self, pub: Any, topic: str, data: dict[str, Any]) -> None:
        msg = self._String(json.dumps(data))
        pub.publish(msg)
        if self.recorder is not None:
            self.recorder.record(topic, msg, time.time())

    def events(self, loop: Any) -> None:
        events = loop.events.events
        for e in events[self.n_events:]:
            data = {"reason": e.reason, "t": e.t, "tick": e.tick, "value": e.value}
            if e.reason in ("stale_state", "read_error", "nonfinite_state"):
                lat = self.backend.hold_latencies[-1] if self.backend.hold_latencies else None
                data["since_last_state"] = lat
                self.holds.append(data)
                print(f"deploy: HOLD ({e.reason}): no fresh {self.cfg.joint_states_topic} for "
                      f"{(lat or 0.0) * 1e3:.0f} ms (state_timeout {self.cfg.state_timeout * 1e3:.0f} ms)"
                      f"; streaming a hold command until the robot answers again", flush=True)
            self._send(self.events_pub, self.cfg.events_topic, data)
        self.n_events = len(events)

    def status(self, extra: dict[str, Any]) -> None:
        """Publish the status at ``status_hz`` (built only when it is due: this runs between
        fast ticks)."""
        now = time.monotonic()
        if now >= self.next_status:
            self.next_status = now + 1.0 / self.cfg.status_hz
            self._send(self.status_pub, self.cfg.status_topic,
                       {"time": time.time(), **self.backend.status(), **extra})


def _setpoint_tap(recorder: Any, frame_id: str) -> Any:
    from robot_brain.hardware.ros2.recorder import record_setpoint

    def tap(state: Any, sp: Any) -> None:
        if sp.position is not None:
            record_setpoint(recorder, state.t, sp.position, sp.orientation, sp.stiffness,
                            sp.damping_ratio, frame_id)

    return tap


def run(args: argparse.Namespace) -> int:
    import mujoco

    from robot_brain.controllers import RobotModel
    from robot_brain.envs import panda
    from robot_brain.hardware.base import BackendError
    from robot_brain.hardware.ros2.backend import Ros2Backend

    overrides = {"policy_hz": args.policy_hz} if args.policy_hz is not None else {}
    cfg, sections = robot_config(args, **overrides)
    envelope = _envelope(sections, args.robot)
    if cfg.n_joints != len(panda.JOINT_NAMES):
        raise CliError(f"robot config {args.robot}: the arm model has {len(panda.JOINT_NAMES)} joints, "
                       f"the config names {cfg.n_joints}")
    if args.policy not in ("zero", "scripted") and not Path(args.policy).is_dir():
        raise CliError(f"argument --policy: {args.policy!r} is not a run directory, 'scripted' or 'zero'")
    _warm_up(args.task, cfg)
    recorder = open_recorder(args.record)
    transport = open_transport(args.transport, cfg, "robot_brain")
    model = RobotModel(mujoco.MjModel.from_xml_string(panda.build_mjcf("")), "ee", cfg.n_joints)
    backend = Ros2Backend(transport, cfg, model, dry_run=args.dry_run, recorder=recorder)
    con = console()
    print(f"deploy: waiting for {cfg.joint_states_topic} (DDS domain {cfg.dds.domain_id}, "
          f"{transport.name} transport, up to {cfg.connect_timeout:g} s)", flush=True)
    env = None
    record: dict[str, Any] = {"episodes": [], "interrupted": False}
    code = 0
    try:
        with terminate_as_interrupt():
            try:
                backend.configure()
            except BackendError as exc:
                raise CliError(str(exc), code=1) from None
            print(f"deploy: connected; {cfg.interface} interface, {cfg.control_hz:g} Hz loop, "
                  f"{cfg.policy_hz:g} Hz policy{', DRY RUN (nothing published)' if args.dry_run else ''}",
                  flush=True)
            # With --duration an episode ends on success or termination only, not on the task's
            # step limit (a hold-still run is one episode).
            episode_limit = {"max_episode_steps": 1_000_000} if args.duration is not None else {}
            env = make_task_env(args.task, backend=backend, shield=args.shield, envelope=envelope,
                                policy_hz=cfg.policy_hz, control_hz=cfg.control_hz,
                                disturbances="none", **episode_limit)
            task = env.unwrapped
            # The robot config's state timeout, not the simulator's default.
            task.loop.config = dataclasses.replace(task.loop.config, state_timeout=cfg.state_timeout)
            policy = _policy(args.policy, env, args.seed)
            reporter = _Reporter(transport, cfg, backend, recorder)
            if recorder is not None:
                task.loop.on_setpoint = _setpoint_tap(recorder, cfg.frame_id)
            # Everything built so far lives until the end: keep the cyclic garbage collector off it,
            # so its passes in the loop stay short.
            gc.collect()
            gc.freeze()
            t0 = time.monotonic()
            seed = args.seed
            while True:
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
                    if args.duration is not None and time.monotonic() - t0 >= args.duration:
                        break
                ep = task.episode.as_dict()
                ep["goal_distance"] = (float(((task.goal - task.state.ee_pos) ** 2).sum() ** 0.5)
                                       if hasattr(task, "goal") else None)
                record["episodes"].append(ep)
                if args.duration is None or time.monotonic() - t0 >= args.duration:
                    break
                seed += 1
    except KeyboardInterrupt:
        record["interrupted"] = True
        print("deploy: interrupted: holding the arm", file=sys.stderr, flush=True)
        code = 130
    finally:
        _safe_stop(backend)
        if env is not None:
            env.close()
        else:
            backend.disconnect()
        transport.close()
        _close_recorder(recorder)
    record["backend"] = backend.status(latency=True)
    record["holds"] = [h for h in getattr(locals().get("reporter"), "holds", [])]
    record["events"] = dict(env.unwrapped.loop.events.counts()) if env is not None else {}
    _report(con, record, recorder)
    if args.json:
        from ._common import save_results

        save_results(args.json, record)
    return code


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


def _safe_stop(backend: Any) -> None:
    """Stream the hold for a moment so the arm is at rest under a hold command when we leave."""
    if not backend.active:
        return
    end = time.monotonic() + _SAFE_STOP
    try:
        while time.monotonic() < end:
            backend.read()
            backend.hold()
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
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(b["rejected"].items())) or "none"
    con.print(f"joint states: {b['accepted']} accepted of {b['received']} (rejected: {rejected}); "
              f"commands sent: {b['sent']}; states missed (no new state within a period): "
              f"{b['deadline_misses']}; commands withheld: {b['skipped_stale']} for an answered "
              f"state, {b['late_withheld']} past their deadline", markup=False, highlight=False)
    if recorder is not None:
        con.print(f"recorded: {recorder.path}", markup=False, highlight=False)
