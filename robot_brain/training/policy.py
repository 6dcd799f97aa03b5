"""Trained policies behind the :class:`robot_brain.policies.Policy` protocol (``reset``/``act``).

:func:`load_trained_policy` rebuilds the network from the run's ``config.yaml`` and loads only
the policy weights of a checkpoint with PyTorch's weights-only loader (see
:mod:`robot_brain.training.checkpoint`), after checking that the checkpoint was trained on the
same task with the same observation and action shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from .algos import SpacesEnv, build_model
from .checkpoint import (
    CheckpointError,
    check_compatible,
    load_normalize_stats,
    restore_model,
    select_checkpoint,
)
from .run import read_run_config

if TYPE_CHECKING:
    from stable_baselines3.common.policies import BasePolicy

__all__ = ["TrainedPolicy", "load_trained_policy", "task_of_env"]


_SpacesEnv = SpacesEnv  # the old private name (tests and callers that imported it)


class TrainedPolicy:
    """A trained SB3 policy acting deterministically on raw task observations.

    :param policy: the SB3 policy network (``model.policy``).
    :param obs_stats: observation normalisation (mean, var, clip, epsilon) of a run trained with
        ``normalize: true``, else ``None``.
    :param run_dir: the run it came from. :param steps: env steps it was trained for.
    :param note: a compatibility note (another package version), if any.
    """

    def __init__(self, policy: BasePolicy, obs_stats: dict[str, np.ndarray] | None = None, *,
                 run_dir: Path | None = None, steps: int = 0, note: str | None = None) -> None:
        self.policy = policy
        self.obs_stats = obs_stats
        self.run_dir = run_dir
        self.steps = steps
        self.note = note

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if self.obs_stats is not None:
            s = self.obs_stats
            obs = np.clip((obs - s["obs_mean"]) / np.sqrt(s["obs_var"] + s["epsilon"]),
                          -s["clip_obs"], s["clip_obs"])
        action, _ = self.policy.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.float32)


def task_of_env(env: gym.Env) -> str | None:
    """The short task name of a registered task env (``None`` if it has no registered id)."""
    from robot_brain.envs import TASKS

    env_id = getattr(getattr(env, "spec", None), "id", None) or getattr(
        getattr(env.unwrapped, "spec", None), "id", None)
    for spec in TASKS.values():
        if env_id in (spec.env_id, spec.name):
            return spec.name
    return None


def load_trained_policy(run_dir: str | Path, env: gym.Env, which: str = "best") -> TrainedPolicy:
    """The trained policy of a run, for ``env`` (``robot-brain sim TASK --policy RUN_DIR``).

    :param which: ``best`` (best evaluation; the last checkpoint if there was none) or ``last``;
        a checkpoint whose files are damaged or incomplete is passed over for the next newest
        complete one, which the policy's ``note`` names.
    :raises CheckpointError: missing run, no complete checkpoint, other task, other
        observation/action shape, another checkpoint format, non-finite weights, or weights that
        do not fit the configured network (one-line message naming the file).
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    ckpt, skipped = select_checkpoint(run_dir, which)
    if ckpt is None:
        raise CheckpointError(f"run directory {run_dir} has no complete checkpoint")
    task = task_of_env(env)
    if task is not None and task != config.task:
        raise CheckpointError(f"run {run_dir} was trained on task {config.task!r}, not {task!r}")
    version_note = check_compatible(ckpt, algo=config.algo, obs_shape=env.observation_space.shape,
                                    action_shape=env.action_space.shape)
    note = "; ".join(n for n in (skipped, version_note) if n) or None
    stub = _SpacesEnv(env.observation_space, env.action_space)
    model = build_model(config.algo, config.hyperparams, stub, seed=0, inference=True)
    restore_model(model, ckpt, policy_only=True)
    model.policy.set_training_mode(False)
    return TrainedPolicy(model.policy, load_normalize_stats(ckpt), run_dir=run_dir, steps=ckpt.steps,
                         note=note)
