"""``robot-brain train TASK --algo sac|ppo|td3|es [--policy mlp|ncap]``: train a policy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import CliError, add_links_option, add_shield_option, links_option, nonneg_int, positive_int

if TYPE_CHECKING:
    import gymnasium as gym

    from robot_brain.training.run import RunClaim, RunConfig

NAME = "train"
HELP = "train a task policy (SAC, PPO, TD3; evolution strategies for circuits)"
DESCRIPTION = """Train a policy for a task with Stable-Baselines3 (sac, ppo, td3) or evolution
strategies (es). --policy mlp (default) trains SB3's MLP; --policy ncap trains the task's circuit
prior (the swimmer's C. elegans circuit: 4 weights) with ppo (the circuit is the mean of a
Gaussian of fixed std) or es (antithetic perturbations of its weights). Hyperparameters come from
the task's YAML defaults shipped with the package (robot_brain/training/hyperparams/TASK.yaml;
a section ALGO-POLICY, e.g. ppo-ncap, for a policy other than the MLP), then --config
FILE.yaml, then --set key=value, then --steps/--n-envs/--policy/--links. The run directory
(default runs/TASK/ALGO-TIMESTAMP/) receives config.yaml (fully resolved), metrics.json,
TensorBoard logs (tb/), periodic checkpoints with the replay buffer (checkpoints/) and the best
evaluated model (best/). A progress bar shows return, success rate, cost per episode and the
cumulative violations; an evaluation table follows at the end. Ctrl-C saves a checkpoint;
--resume RUN_DIR continues from the newest complete one (a run killed before its first
checkpoint starts again from step 0). Every value is checked, and the model built once, before
anything is written; one process at a time can train into a run directory.

examples:
  robot-brain train reach --algo sac
  robot-brain train swimmer --policy ncap --algo ppo
  robot-brain train swimmer --policy ncap --algo es --links 6
  robot-brain train swimmer --policy mlp --algo ppo --steps 200000
  robot-brain train peg-insertion --algo sac --seed 1 --set learning_rate=3e-4
  robot-brain train maze --algo sac --shield none --out runs/maze/unshielded
  robot-brain train --resume runs/reach/sac-20260101-120000 --steps 80000
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", metavar="TASK", nargs="?", default=None,
                   help="task name or Gymnasium id (optional with --resume)")
    p.add_argument("--algo", default=None, metavar="ALGO",
                   help="sac, ppo, td3, tqc or crossq (sb3-contrib), or es (evolution strategies; "
                        "circuits only); default: the task's default_algo (tqc on peg-insertion, "
                        "else sac)")
    p.add_argument("--policy", default=None, metavar="POLICY",
                   help="mlp (SB3's MLP; default) or ncap (the task's circuit prior; default with es)")
    add_links_option(p)
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
    p.add_argument("--learn-critic", action="store_true",
                   help="with --shield CRITIC_DIR: keep training the critic on the run's own transitions "
                        "(every critic_update_freq steps; written to RUN_DIR/critic, which the evaluations "
                        "use); same as --set learn_critic=true")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run directory (default: runs/TASK/ALGO-TIMESTAMP)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint")
    p.add_argument("--eval-episodes", type=nonneg_int, default=None, metavar="N",
                   help="episodes of the final evaluation (default: eval_episodes of the config; 0 skips)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")


def _check_algo(algo: str) -> str:
    from robot_brain.training.config import ConfigError, check_algo

    try:
        return check_algo(algo)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _check_policy(policy: str) -> str:
    """The configuration's ``policy`` for ``--policy`` (``mlp``, ``ncap``)."""
    from robot_brain.training.config import ConfigError, check_policy

    try:
        return check_policy(policy)
    except ConfigError as exc:
        raise CliError(f"argument --policy: {exc}") from None


def _probe_env(task: str, env_kwargs: dict, shield: str,
               record_critic: bool = False) -> tuple[gym.Space, gym.Space]:
    """Build one env in this process, so a bad env_kwargs key fails here with one line and not
    inside a worker process; returns its observation and action spaces."""
    from robot_brain.training.run import make_env

    env = make_env(task, env_kwargs, shield, monitor=False, record_critic=record_critic)
    spaces = env.observation_space, env.action_space
    env.close()
    return spaces


def _check_model(config: RunConfig) -> tuple[int, ...] | None:
    """Validate the configuration fully before anything is written: the task's options (one
    env) and the model itself, built once on the spaces (:func:`check_model`). Returns the
    observation shape."""
    from robot_brain.training.algos import check_model

    obs_space, action_space = _probe_env(config.task, config.hyperparams["env_kwargs"], config.shield,
                                         bool(config.hyperparams.get("learn_critic")))
    check_model(config.algo, config.hyperparams, obs_space, action_space, task=config.task)
    return obs_space.shape


def _resume_config(args: argparse.Namespace) -> tuple[RunConfig, Path, RunClaim, str | None]:
    from robot_brain.training.checkpoint import check_compatible, select_checkpoint
    from robot_brain.training.run import claim_run, read_run_config

    if (args.config is not None or args.overrides or args.n_envs is not None or args.links is not None
            or args.learn_critic):
        raise CliError("--resume continues a run with its own config.yaml: --config, --set, --links, "
                       "--n-envs and --learn-critic cannot change it (only --steps can extend it)")
    run_dir = Path(args.resume)
    config = read_run_config(run_dir)
    if args.task is not None:
        from robot_brain.envs import resolve_task

        if resolve_task(args.task).name != config.task:
            raise CliError(f"run {run_dir} was trained on task {config.task!r}, not "
                           f"{resolve_task(args.task).name!r}")
    if args.algo is not None and _check_algo(args.algo) != config.algo:
        raise CliError(f"run {run_dir} was trained with {config.algo}, not {args.algo}")
    if args.policy is not None and _check_policy(args.policy) != config.hyperparams.get("policy"):
        raise CliError(f"run {run_dir} trains policy {config.hyperparams.get('policy')}, not "
                       f"{_check_policy(args.policy)} (--policy {args.policy})")
    if args.seed is not None and args.seed != config.seed:
        raise CliError(f"run {run_dir} uses seed {config.seed}; --seed cannot change it")
    if args.shield is not None and args.shield != config.shield:
        raise CliError(f"run {run_dir} was trained with --shield {config.shield}, not {args.shield}")
    if args.steps is not None:
        config.hyperparams["n_timesteps"] = args.steps
    obs_shape = _check_model(config)
    claim = claim_run(run_dir, new=False)
    try:  # under the claim: no other process is changing the checkpoints now
        ckpt, _ = select_checkpoint(run_dir, "last", training=True)  # the notes come from train()
        note = None if ckpt is None else check_compatible(ckpt, task=config.task, algo=config.algo,
                                                          obs_shape=obs_shape)
    except BaseException:
        claim.release()
        raise
    return config, run_dir, claim, note


def _new_config(args: argparse.Namespace) -> tuple[RunConfig, Path, RunClaim]:
    from robot_brain.envs import resolve_task
    from robot_brain.training.config import resolve_hyperparams, task_default_algo
    from robot_brain.training.run import RunConfig, claim_run, new_run_dir

    if args.task is None:
        raise CliError("missing TASK (or --resume RUN_DIR); see 'robot-brain tasks'")
    spec = resolve_task(args.task)
    task = spec.name
    algo = _check_algo(args.algo or task_default_algo(task))
    if args.policy is not None:
        _check_policy(args.policy)
    shield = args.shield or "limits"
    hp = resolve_hyperparams(task, algo, config_file=args.config, overrides=args.overrides,
                             steps=args.steps, n_envs=args.n_envs, policy=args.policy,
                             env_kwargs=links_option(args, spec))
    if args.learn_critic:
        hp["learn_critic"] = True
    if hp.get("learn_critic"):
        if shield in ("none", "limits"):
            raise CliError(f"--learn-critic keeps training a critic: give one with --shield CRITIC_DIR (a "
                           f"folder written by 'robot-brain train-critic'), not --shield {shield}")
        from robot_brain.critic_training.online import check_learnable

        try:
            check_learnable(shield)
        except ValueError as exc:  # CriticFileError too
            raise CliError(f"--learn-critic: {str(exc).splitlines()[0]}") from None
    config = RunConfig(task=task, algo=algo, seed=args.seed or 0, shield=shield, hyperparams=hp)
    _check_model(config)  # everything is validated before the run directory is created
    run_dir = new_run_dir(args.out, task, algo)
    return config, run_dir, claim_run(run_dir, new=True)


def final_evaluation(run_dir: Path, config: RunConfig, episodes: int, seed: int) -> dict:
    """Evaluate the run's best policy (deterministic) on ``episodes`` fresh seeds; returns the
    aggregate and the episode records."""
    from robot_brain import report
    from robot_brain.rollout import run_episode
    from robot_brain.training.policy import load_trained_policy
    from robot_brain.training.run import make_env, run_shield

    env = make_env(config.task, config.hyperparams["env_kwargs"], run_shield(run_dir, config), monitor=False)
    try:
        policy = load_trained_policy(run_dir, env, which="best")
        records = [run_episode(env, policy, seed + i).metrics for i in range(episodes)]
    finally:
        env.close()
    return {"aggregate": report.aggregate(records), "episodes": records, "checkpoint_steps": policy.steps,
            "note": policy.note}


def run(args: argparse.Namespace) -> int:
    from robot_brain.envs.registry import UnknownTaskError
    from robot_brain.training.checkpoint import CheckpointError
    from robot_brain.training.config import ConfigError

    try:
        if args.resume is not None:
            config, run_dir, claim, note = _resume_config(args)
        else:
            config, run_dir, claim = _new_config(args)
            note = None
    except (ConfigError, CheckpointError, UnknownTaskError) as exc:
        raise CliError(str(exc)) from None
    with claim:  # held until training and the final evaluation are done
        return _train(args, config, run_dir, note, claim)


def _train(args: argparse.Namespace, config: RunConfig, run_dir: Path, note: str | None,
           claim: RunClaim) -> int:
    from robot_brain import report
    from robot_brain.fileio import atomic_write_json
    from robot_brain.training.checkpoint import CheckpointError
    from robot_brain.training.config import ConfigError
    from robot_brain.training.trainer import train

    from ._common import console

    con = console()
    hp = config.hyperparams
    if note:
        con.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    verb = "resuming" if args.resume else "training"
    policy = "the ncap circuit" if hp.get("policy") == "NcapPolicy" else "an MLP"
    from robot_brain.envs import resolve_task

    reflex = f"shield {config.shield}" if resolve_task(config.task).impedance else "no reflex layer"
    con.print(f"{verb} {config.task} ({policy}) with {config.algo.upper()} for {hp['n_timesteps']} steps "
              f"(seed {config.seed}, {reflex}, {hp['n_envs']} env(s)) -> {run_dir}")
    con.print(f"TensorBoard: tensorboard --logdir {run_dir / 'tb'}")
    try:
        result = train(config, run_dir, resume=args.resume is not None, progress=not args.quiet,
                       log=lambda s: print(s, file=sys.stderr, flush=True), claim=claim,
                       note=lambda s: con.print(f"note: {s}", markup=False, highlight=False, soft_wrap=True))
    except (ConfigError, CheckpointError) as exc:
        raise CliError(str(exc)) from None
    if result.status == "interrupted":
        con.print(f"interrupted at step {result.num_timesteps}: checkpoint {result.checkpoint.zip_path}; "
                  f"continue with: robot-brain train --resume {run_dir}")
        return 130
    m = result.metrics
    counts = m.get("parameters") or {}
    if counts:
        con.print(f"policy {hp.get('policy')}: {counts['actor']:,} trained actor parameters"
                  + (f" ({counts['critic']:,} in the critic)" if counts.get("critic") else ""))
    con.print(f"trained {result.num_timesteps} steps at {m['steps_per_second']:.0f} steps/s; "
              f"{m.get('episode_count', len(m['episodes']))} episodes, {m['cumulative_violations']} "
              f"violating steps during training")
    episodes = hp["eval_episodes"] if args.eval_episodes is None else args.eval_episodes
    if episodes > 0:
        try:
            final = final_evaluation(run_dir, config, episodes, seed=20_000 + config.seed)
        except (ConfigError, CheckpointError) as exc:
            raise CliError(str(exc)) from None
        if final["note"]:
            con.print(f"note: {final['note']}", markup=False, highlight=False, soft_wrap=True)
        m["final_evaluation"] = {"aggregate": final["aggregate"],
                                 "checkpoint_steps": final["checkpoint_steps"]}
        atomic_write_json(run_dir / "metrics.json", m)
        con.print(report.aggregate_table(
            final["aggregate"], title=f"evaluation of {run_dir} (checkpoint at step "
                                      f"{final['checkpoint_steps']}, {episodes} episodes)"))
    con.print(f"run: {run_dir}")
    return 0
