"""``robot-brain eval RUN_DIR``: evaluate a trained policy (table, optional video and JSON)."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from ._common import (
    CliError,
    add_links_option,
    add_rollout_options,
    add_shield_option,
    links_option,
    nonneg_int,
    positive_int,
)

NAME = "eval"
HELP = "evaluate a trained policy from a run directory"
DESCRIPTION = """Evaluate the policy of a training run (its best evaluated checkpoint by default)
on fresh episodes of its task with deterministic actions, and print the metrics table:
success rate, return, violations (cost) by kind, max contact force, reflex interventions.
The shield defaults to the one the run was trained with; --shield none/limits/CRITIC_DIR
evaluates the same policy under another reflex. Episode i uses seed SEED+i. --links N evaluates a
swimmer policy on a body of N segments: a circuit with shared weights transfers unchanged.

examples:
  robot-brain eval runs/reach/sac-20260101-120000 --episodes 20
  robot-brain eval runs/maze/sac-20260101-120000 --shield none --disturb
  MUJOCO_GL=osmesa robot-brain eval runs/peg-insertion/sac-1 --episodes 2 --video out/peg.mp4
  robot-brain eval runs/swimmer/ppo-20260101-120000 --links 10 --episodes 5
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by 'robot-brain train'")
    p.add_argument("--episodes", type=positive_int, default=10, metavar="N",
                   help="number of episodes (default: 10)")
    p.add_argument("--seed", type=nonneg_int, default=100_000, metavar="S",
                   help="seed of the first episode (default: 100000, unseen in training)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="best evaluated checkpoint (default) or the last one")
    add_shield_option(p, None, "default: the one the run was trained with")
    add_links_option(p)
    add_rollout_options(p)


def run(args: argparse.Namespace) -> int:
    from robot_brain.envs import resolve_task
    from robot_brain.training.checkpoint import CheckpointError
    from robot_brain.training.config import ConfigError
    from robot_brain.training.policy import load_trained_policy
    from robot_brain.training.run import make_env, read_run_config

    from ._common import console, save_results
    from ._rollout import print_episodes, run_episodes

    run_dir = Path(args.run_dir)
    try:
        config = read_run_config(run_dir)
        shield = args.shield if args.shield is not None else config.shield
        env_kwargs = dict(config.hyperparams["env_kwargs"])
        env_kwargs.update(links_option(args, resolve_task(config.task)))
        if args.disturb:
            env_kwargs["disturbances"] = "default"
        env = make_env(config.task, env_kwargs, shield, monitor=False, renderer=args.renderer,
                       render_mode="rgb_array" if args.video is not None else None)
    except (ConfigError, CheckpointError) as exc:
        raise CliError(str(exc)) from None
    con = console()
    with contextlib.ExitStack() as stack:
        stack.callback(env.close)
        try:
            policy = load_trained_policy(run_dir, env, which=args.checkpoint)
        except (ConfigError, CheckpointError) as exc:
            raise CliError(str(exc)) from None
        if policy.note:
            con.print(f"note: {policy.note}", markup=False, highlight=False, soft_wrap=True)
        label = f"{config.task}/{config.algo}@{policy.steps} | shield {shield}"
        episodes, frames = run_episodes(env, policy, episodes=args.episodes, seed=args.seed,
                                        label=label, video=args.video)
        note = getattr(env.unwrapped, "renderer_note", None)
    setting = (f"{config.task}, {config.algo} checkpoint at step {policy.steps}, shield {shield}"
               f"{', disturbed' if args.disturb else ''}")
    agg = print_episodes(con, episodes, setting, quiet=args.quiet, video=args.video, frames=frames,
                         note=note)
    if args.json is not None:
        save_results(args.json, {
            "command": "eval", "run_dir": str(run_dir), "task": config.task, "algo": config.algo,
            "checkpoint": args.checkpoint, "checkpoint_steps": policy.steps, "shield": shield,
            "seed": args.seed, "disturb": args.disturb, "episodes": episodes, "aggregate": agg,
        })
        con.print(f"metrics: {Path(args.json)}")
    return 0
