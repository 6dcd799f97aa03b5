"""``robot-brain sim TASK``: run episodes of a task under the two-rate loop and report metrics."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from ._common import CliError, add_rollout_options, check_shield, nonneg_int, positive_float, positive_int

NAME = "sim"
HELP = "run episodes of a task in MuJoCo and print metrics"
DESCRIPTION = """Run episodes of a task (see 'robot-brain tasks') with a built-in policy under the
two-rate loop (20 Hz policy, 1 kHz reflex + impedance control) and print a metrics table:
return, success, violations (cost) by kind, max contact force, reflex interventions by reason,
and the policy/control rates achieved (sim time) with the real-time factor (wall clock).
Episode i uses seed SEED+i.

examples:
  robot-brain sim reach --policy scripted --episodes 10
  robot-brain sim maze --disturb --shield none --stiffness 2000 --json out/maze.json
  robot-brain sim maze --episodes 1 --video out/maze.mp4     # offscreen, headless too
"""

# The names of robot_brain.policies.POLICY_NAMES, kept here so '--help' needs no MuJoCo import
# (tests check the two agree).
POLICIES = ("scripted", "random", "zero")
MAX_STIFFNESS = 5000.0  # N/m, the Cartesian controller's validated range


def stiffness(text: str) -> float:
    """``--stiffness``: a translational stiffness in (0, MAX_STIFFNESS] N/m."""
    value = positive_float(text)
    if value > MAX_STIFFNESS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_STIFFNESS:g} N/m, got {value:g}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", metavar="TASK", help="task name or Gymnasium id, e.g. reach, maze")
    p.add_argument("--policy", default="scripted", metavar="POLICY",
                   help=f"built-in policy ({', '.join(POLICIES)}; default: scripted) or a training "
                        f"run directory written by 'robot-brain train'")
    p.add_argument("--episodes", type=positive_int, default=5, metavar="N",
                   help="number of episodes (default: 5)")
    p.add_argument("--seed", type=nonneg_int, default=0, metavar="S",
                   help="seed of the first episode (default: 0)")
    p.add_argument("--shield", default="limits", metavar="SPEC",
                   help="fast-tick reflex: 'limits' (hard-limit reflex, default), 'none' (no "
                        "reflex; torque limits stay in force) or a critic directory written by "
                        "'robot-brain train-critic' (learned critic over the hard limits)")
    p.add_argument("--stiffness", type=stiffness, default=None, metavar="N/m",
                   help=f"fixed translational stiffness, ignoring the policy's stiffness actions "
                        f"(0 < K <= {MAX_STIFFNESS:g})")
    add_rollout_options(p)


def env_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of the task env for the options in ``args``."""
    from robot_brain.envs import Disturbances

    kwargs: dict = {"reflex": None if args.shield == "none" else "limits"}
    if args.disturb:
        kwargs["disturbances"] = Disturbances.default()
    if args.stiffness is not None:
        kwargs["fixed_stiffness"] = args.stiffness
    if args.video is not None:
        kwargs["render_mode"] = "rgb_array"
    return kwargs


def install_critic(env, critic_dir: str) -> None:
    """Put the learned critic of ``critic_dir`` (over the hard limits) into the task env."""
    from robot_brain.safety.shield import install_shield, load_shield

    try:
        install_shield(env, load_shield(critic_dir, env))
    except ValueError as exc:
        raise CliError(f"argument --shield: {exc}") from None


def build_policy(name: str, env, seed: int):
    """A built-in policy by name, or the trained policy of a run directory."""
    from robot_brain.policies import make_policy

    try:
        if name in POLICIES:
            return make_policy(name, env, seed=seed)
        from robot_brain.training import load_trained_policy

        return load_trained_policy(name, env)
    except ValueError as exc:
        raise CliError(f"argument --policy: {exc}") from None


def check_inputs(args: argparse.Namespace):
    """The task spec and shield of ``args``; one-line errors for an unknown task, shield or policy."""
    from robot_brain.envs import resolve_task
    from robot_brain.envs.registry import UnknownTaskError

    try:
        spec = resolve_task(args.task)
    except UnknownTaskError as exc:
        raise CliError(str(exc)) from None
    shield = check_shield(args.shield)
    if args.policy not in POLICIES and not Path(args.policy).is_dir():
        raise CliError(f"argument --policy: {args.policy!r} is neither a built-in policy "
                       f"({', '.join(POLICIES)}) nor a training run directory")
    return spec, shield


def run(args: argparse.Namespace) -> int:
    if args.video is not None:
        from ._common import ensure_headless_gl

        ensure_headless_gl()  # before mujoco is imported

    from robot_brain.envs import make

    from ._common import atomic_write_json, console
    from ._rollout import print_episodes, run_episodes

    spec, shield = check_inputs(args)
    env = make(spec.name, **env_kwargs(args))
    with contextlib.ExitStack() as stack:
        stack.callback(env.close)
        if shield not in ("none", "limits"):
            install_critic(env, shield)
        policy = build_policy(args.policy, env, args.seed)
        episodes, frames = run_episodes(env, policy, episodes=args.episodes, seed=args.seed,
                                        label=f"{spec.name} | {args.policy}", video=args.video)
    con = console()
    setting = (f"{spec.name}, policy {args.policy}, shield {args.shield}"
               f"{', disturbed' if args.disturb else ''}"
               f"{f', K = {args.stiffness:g} N/m' if args.stiffness is not None else ''}")
    agg = print_episodes(con, episodes, setting, quiet=args.quiet, video=args.video, frames=frames)
    if args.json is not None:
        atomic_write_json(args.json, {
            "command": "sim", "task": spec.name, "env_id": spec.env_id, "policy": args.policy,
            "seed": args.seed, "shield": args.shield, "disturb": args.disturb,
            "stiffness": args.stiffness, "episodes": episodes, "aggregate": agg,
        })
        con.print(f"metrics: {Path(args.json)}")
    return 0
