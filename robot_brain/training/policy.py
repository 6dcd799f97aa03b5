"""Trained policies behind the :class:`robot_brain.policies.Policy` protocol (``reset``/``act``).

:func:`load_trained_policy` rebuilds the network from the run's ``config.yaml`` and loads only
the policy weights of a checkpoint with PyTorch's weights-only loader (see
:mod:`robot_brain.training.checkpoint`), after checking that the checkpoint was trained on the
same task with the same observation and action shapes.

A circuit policy (``policy: NcapPolicy``, trained with PPO or ES) is rebuilt for the env at hand
and only its circuit's weights are loaded (the critic is not needed to act): a circuit with
shared weights trained on a 6-link swimmer drives a 10-link one unchanged; weights that do not
fit the circuit the run's configuration describes for this env are refused in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import gymnasium as gym
import numpy as np

from .algos import SpacesEnv, build_model
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    check_compatible,
    load_normalize_stats,
    read_policy_weights,
    restore_model,
    select_checkpoint,
)
from .run import read_run_config

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.policies import BasePolicy
    from torch import nn

__all__ = ["TrainedPolicy", "load_trained_policy", "task_of_env"]


_SpacesEnv = SpacesEnv  # the old private name (tests and callers that imported it)


class TrainedPolicy:
    """A trained SB3 policy acting deterministically on raw task observations.

    :param policy: the SB3 policy network (``model.policy``).
    :param obs_stats: observation normalisation (mean, var, clip, epsilon) of a run trained with
        ``normalize: true``, else ``None``.
    :param run_dir: the run it came from. :param steps: env steps it was trained for.
    :param note: a compatibility note (another package version), if any.
    :param circuit: the circuit of a circuit policy (its actions are this module's output), for
        ``sim --plot``; ``None`` for an MLP.
    """

    def __init__(self, policy: BasePolicy, obs_stats: dict[str, np.ndarray] | None = None, *,
                 run_dir: Path | None = None, steps: int = 0, note: str | None = None,
                 circuit: nn.Module | None = None) -> None:
        self.policy = policy
        self.obs_stats = obs_stats
        self.run_dir = run_dir
        self.steps = steps
        self.note = note
        self.circuit = circuit

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
    circuit = config.hyperparams.get("policy") == "NcapPolicy"
    # a circuit is rebuilt for this env, so its shapes may differ (transfer); its weights decide
    version_note = check_compatible(ckpt, algo=config.algo,
                                    obs_shape=None if circuit else env.observation_space.shape,
                                    action_shape=None if circuit else env.action_space.shape)
    note = "; ".join(n for n in (skipped, version_note) if n) or None
    stub = _SpacesEnv(env.observation_space, env.action_space)
    try:
        model = build_model(config.algo, config.hyperparams, stub, seed=0, inference=True, task=config.task)
    except ValueError as exc:  # a circuit that cannot drive this env, an option it refuses
        raise CheckpointError(f"the policy of run {run_dir} cannot be built for this environment "
                              f"({str(exc).splitlines()[0]})") from None
    if circuit:
        _restore_circuit(model, ckpt, run_dir, tuple(env.action_space.shape or ()))
    else:
        restore_model(model, ckpt, policy_only=True)
    model.policy.set_training_mode(False)
    return TrainedPolicy(model.policy, load_normalize_stats(ckpt), run_dir=run_dir, steps=ckpt.steps,
                         note=note, circuit=getattr(model.policy, "action_net", None) if circuit else None)


def _restore_circuit(model: BaseAlgorithm, ckpt: Checkpoint, run_dir: Path,
                     action_shape: tuple[int, ...]) -> None:
    """Load only the circuit's weights of ``ckpt`` into ``model``'s circuit (built for this env).

    :raises CheckpointError: no circuit weights, or weights that do not fit this circuit (one
        line naming the trained and the present action shapes).
    """
    from .circuit_policy import circuit_state

    state = circuit_state(read_policy_weights(ckpt))
    if not state:
        raise CheckpointError(f"checkpoint {ckpt.zip_path} holds no circuit weights (action_net.*)")
    circuit = cast("nn.Module", model.policy.action_net)
    try:
        circuit.load_state_dict(state)
    except RuntimeError as exc:
        trained = tuple(ckpt.meta.get("action_shape") or ())
        lines = str(exc).strip().splitlines()
        why = " ".join(line.strip() for line in lines[:3])[:300]
        transfer = ("; only circuits with shared weights transfer to a body of another length"
                    if trained != action_shape else "")
        raise CheckpointError(f"the circuit weights of run {run_dir} (trained for actions of shape "
                              f"{trained}) do not fit the circuit its config.yaml describes for actions of "
                              f"shape {action_shape} ({why}){transfer}") from None
