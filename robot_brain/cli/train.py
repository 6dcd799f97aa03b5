"""``robot-brain train TASK --algo sac|ppo|td3``: train a policy with Stable-Baselines3."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import CliError, add_shield_option, nonneg_int, positive_int

if TYPE_CHECKING:
    from robot_brain.training.checkpoint import Checkpoint
    from robot_brain.training.run import RunConfig

NAME = "train"
HELP = "train a task policy with Stable-Baselines3 (SAC, PPO, TD3)"
DESCRIPTION = """Train a policy for a task with Stable-Baselines3. Hyperparameters come from the
task's YAML defaults shipped with the package (robot_brain/training/hyperparams/TASK.yaml),
then --config FILE.yaml, then --set key=value, then --steps/--n-envs. The run directory
(default runs/TASK/ALGO-TIMESTAMP/) receives config.yaml (fully resolved), metrics.json,
TensorBoard logs (tb/), periodic checkpoints with the replay buffer (checkpoints/) and the best
evaluated model (best/). A progress bar shows return, success rate, cost per episode and the
cumulative violations; an evaluation table follows at the end. Ctrl-C saves a checkpoint;
--resume RUN_DIR continues from the last one.

examples:
  robot-brain train reach --algo sac
  robot-brain train peg-insertion --algo sac --seed 1 --set learning_rate=3e-4
  robot-brain train maze --algo sac --shield none --out runs/maze/unshielded
  robot-brain train --resume runs/reach/sac-20260101-120000 --steps 80000
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", metavar="TASK", nargs="?", default=None,
                   help="task name or Gymnasium id (optional with --resume)")
    p.add_argument("--algo", default=None, metavar="ALGO", help="sac (default), ppo or td3")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N",
                   help="total environment steps (default: n_timesteps of the config)")
    p.add_argument("--seed", type=nonneg_int, default=None, metavar="S", help="random seed (default: 0)")
    p.add_argument("--n-envs", type=positive_int, default=None, metavar="K",
                   help="parallel environments (SubprocVecEnv when K > 1)")
    p.add_argument("--config", default=None, metavar="FILE.yaml",
                   help="hyperparameter file (sections per algorithm, or one flat section)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override one hyperparameter, e.g. --set batch_size=128 "
                        "--set policy_kwargs.net_arch=[64,64] (repeatable)")
    add_shield_option(p, None, "during training and evaluation (default: limits)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run directory (default: runs/TASK/ALGO-TIMESTAMP)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint")
    p.add_argument("--eval-episodes", type=nonneg_int, default=None, metavar="N",
                   help="episodes of the final evaluation (default: eval_episodes of the config; 0 skips)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")


def _check_algo(algo: str) -> str:
    from robot_brain.training.config import ConfigError, algo_class

    try:
        algo_class(algo)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    return algo


def _probe_env(task: str, env_kwargs: dict, shield: str) -> tuple[int, ...] | None:
    """Build one env in this process, so a bad env_kwargs key fails here with one line and not
    inside a worker process."""
    from robot_brain.training.run import make_env

    env = make_env(task, env_kwargs, shield, monitor=False)
    shape = env.observation_space.shape
    env.close()
    return shape


def _resume_config(args: argparse.Namespace) -> tuple[RunConfig, Path, Checkpoint, str | None]:
    from robot_brain.training.checkpoint import check_compatible, find_checkpoint
    from robot_brain.training.run import read_run_config

    if args.config is not None or args.overrides or args.n_envs is not None:
        raise CliError("--resume continues a run with its own config.yaml: --config, --set and "
                       "--n-envs cannot change it (only --steps can extend it)")
    run_dir = Path(args.resume)
    config = read_run_config(run_dir)
    if args.task is not None:
        from robot_brain.envs import resolve_task

        if resolve_task(args.task).name != config.task:
            raise CliError(f"run {run_dir} was trained on task {config.task!r}, not "
                           f"{resolve_task(args.task).name!r}")
    if args.algo is not None and _check_algo(args.algo) != config.algo:
        raise CliError(f"run {run_dir} was trained with {config.algo}, not {args.algo}")
    if args.seed is not None and args.seed != config.seed:
        raise CliError(f"run {run_dir} uses seed {config.seed}; --seed cannot change it")
    if args.shield is not None and args.shield != config.shield:
        raise CliError(f"run {run_dir} was trained with --shield {config.shield}, not {args.shield}")
    ckpt = find_checkpoint(run_dir)
    obs_shape = _probe_env(config.task, config.hyperparams["env_kwargs"], config.shield)
    note = check_compatible(ckpt, task=config.task, algo=config.algo, obs_shape=obs_shape)
    if args.steps is not None:
        config.hyperparams["n_timesteps"] = args.steps
    return config, run_dir, ckpt, note


def _new_config(args: argparse.Namespace) -> tuple[RunConfig, Path]:
    from robot_brain.envs import resolve_task
    from robot_brain.training.config import resolve_hyperparams
    from robot_brain.training.run import RunConfig, new_run_dir

    if args.task is None:
        raise CliError("missing TASK (or --resume RUN_DIR); see 'robot-brain tasks'")
    task = resolve_task(args.task).name
    algo = _check_algo(args.algo or "sac")
    shield = args.shield or "limits"
    hp = resolve_hyperparams(task, algo, config_file=args.config, overrides=args.overrides,
                             steps=args.steps, n_envs=args.n_envs)
    _probe_env(task, hp["env_kwargs"], shield)
    config = RunConfig(task=task, algo=algo, seed=args.seed or 0, shield=shield, hyperparams=hp)
    return config, new_run_dir(args.out, task, algo)


def final_evaluation(run_dir: Path, config: RunConfig, episodes: int, seed: int) -> dict:
    """Evaluate the run's best policy (deterministic) on ``episodes`` fresh seeds; returns the
    aggregate and the episode records."""
    from robot_brain import report
    from robot_brain.rollout import run_episode
    from robot_brain.training.policy import load_trained_policy
    from robot_brain.training.run import make_env

    env = make_env(config.task, config.hyperparams["env_kwargs"], config.shield, monitor=False)
    try:
        policy = load_trained_policy(run_dir, env, which="best")
        records = [run_episode(env, policy, seed + i).metrics for i in range(episodes)]
    finally:
        env.close()
    return {"aggregate": report.aggregate(records), "episodes": records, "checkpoint_steps": policy.steps}


def run(args: argparse.Namespace) -> int:
    from robot_brain.envs.registry import UnknownTaskError
    from robot_brain.training.checkpoint import CheckpointError
    from robot_brain.training.config import ConfigError

    try:
        if args.resume is not None:
            config, run_dir, _, note = _resume_config(args)
        else:
            config, run_dir = _new_config(args)
            note = None
    except (ConfigError, CheckpointError, UnknownTaskError) as exc:
        raise CliError(str(exc)) from None
    return _train(args, config, run_dir, note)


def _train(args: argparse.Namespace, config: RunConfig, run_dir: Path, note: str | None) -> int:
    from robot_brain import report
    from robot_brain.fileio import atomic_write_json
    from robot_brain.training.trainer import train

    from ._common import console

    con = console()
    hp = config.hyperparams
    if note:
        con.print(f"note: {note}")
    verb = "resuming" if args.resume else "training"
    con.print(f"{verb} {config.task} with {config.algo.upper()} for {hp['n_timesteps']} steps "
              f"(seed {config.seed}, shield {config.shield}, {hp['n_envs']} env(s)) -> {run_dir}")
    con.print(f"TensorBoard: tensorboard --logdir {run_dir / 'tb'}")
    result = train(config, run_dir, resume=args.resume is not None, progress=not args.quiet,
                   log=lambda s: print(s, file=sys.stderr, flush=True))
    for line in result.notes:
        if not line.startswith("resumed"):
            con.print(f"note: {line}")
    if result.status == "interrupted":
        con.print(f"interrupted at step {result.num_timesteps}: checkpoint {result.checkpoint.zip_path}; "
                  f"continue with: robot-brain train --resume {run_dir}")
        return 130
    m = result.metrics
    con.print(f"trained {result.num_timesteps} steps at {m['steps_per_second']:.0f} steps/s; "
              f"{len(m['episodes'])} episodes, {m['cumulative_violations']} violating steps during training")
    episodes = hp["eval_episodes"] if args.eval_episodes is None else args.eval_episodes
    if episodes > 0:
        final = final_evaluation(run_dir, config, episodes, seed=20_000 + config.seed)
        m["final_evaluation"] = {"aggregate": final["aggregate"],
                                 "checkpoint_steps": final["checkpoint_steps"]}
        atomic_write_json(run_dir / "metrics.json", m)
        con.print(report.aggregate_table(
            final["aggregate"], title=f"evaluation of {run_dir} (checkpoint at step "
                                      f"{final['checkpoint_steps']}, {episodes} episodes)"))
    con.print(f"run: {run_dir}")
    return 0
