"""Build a Stable-Baselines3 model from a resolved configuration (plain YAML data).

Everything that is not plain data in SB3 (schedules, activation functions, action noise, the
task's circuit for ``policy: NcapPolicy``) is made here from its YAML spelling, so a run's
``config.yaml`` is enough to rebuild its model and no Python object ever has to be unpickled from
a checkpoint.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from .config import OFF_POLICY, RUN_KEYS, ConfigError, algo_class, check_algo

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv
    from torch import nn

__all__ = ["SpacesEnv", "algo_kwargs", "build_model", "check_model", "linear_schedule"]


class SpacesEnv(gym.Env):
    """An env with only the spaces: enough for SB3 to build a network, nothing to simulate."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self.observation_space.sample(), 0.0, True, False, {}


class LinearSchedule:
    """``initial * progress_remaining`` (RL Zoo's ``lin_<value>``); a class, not a closure, so
    it is plain to read back and compare."""

    def __init__(self, initial: float) -> None:
        self.initial = float(initial)

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial

    def __repr__(self) -> str:
        return f"lin_{self.initial:g}"


def linear_schedule(initial: float) -> LinearSchedule:
    return LinearSchedule(initial)


def _activation(name: str) -> type[nn.Module]:
    import torch.nn as nn

    return {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU,
            "gelu": nn.GELU}[name]


def algo_kwargs(algo: str, hp: dict[str, Any], n_actions: int, task: str | None = None) -> dict[str, Any]:
    """Constructor keyword arguments of the SB3 class from the resolved hyperparameters.

    :param task: the task (its circuit is built for ``policy: NcapPolicy``).
    :raises ConfigError: ``NcapPolicy`` for a task without a circuit, or without ``task``.
    """
    kwargs = {k: v for k, v in hp.items() if k not in RUN_KEYS}
    for key in ("learning_rate", "clip_range"):
        value = kwargs.get(key)
        if isinstance(value, str):
            kwargs[key] = linear_schedule(float(value[4:]))
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    pk = dict(kwargs.get("policy_kwargs") or {})
    if "activation_fn" in pk:
        pk["activation_fn"] = _activation(pk["activation_fn"])
    if hp.get("policy") == "NcapPolicy":
        from robot_brain.policies import circuit_for

        if task is None:
            raise ConfigError("policy NcapPolicy needs the task, to build its circuit")
        try:
            pk["circuit_spec"] = circuit_for(task)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if pk:
        kwargs["policy_kwargs"] = pk
    else:
        kwargs.pop("policy_kwargs", None)
    if hp.get("overridden_steps") == "skip" and algo in OFF_POLICY:
        from .buffers import SkipOverriddenReplayBuffer

        kwargs["replay_buffer_class"] = SkipOverriddenReplayBuffer
    noise = hp.get("noise_type")
    if noise is not None and algo in OFF_POLICY:
        from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

        std = float(hp.get("noise_std", 0.1))
        cls = NormalActionNoise if noise == "normal" else OrnsteinUhlenbeckActionNoise
        kwargs["action_noise"] = cls(mean=np.zeros(n_actions), sigma=std * np.ones(n_actions))
    return kwargs


def build_model(algo: str, hp: dict[str, Any], env: gym.Env | VecEnv, *, seed: int | None = None,
                tensorboard_log: str | None = None, inference: bool = False,
                task: str | None = None) -> BaseAlgorithm:
    """A fresh model of ``algo`` for ``env`` (a VecEnv or a Gymnasium env): an SB3 algorithm, or
    :class:`.es.EvolutionStrategies` (an SB3 ``BaseAlgorithm`` too).

    :param inference: build only what acting needs (a one-transition replay buffer), for loading
        a trained policy.
    :param task: the task's short name: needed for ``policy: NcapPolicy`` (its circuit).
    """
    check_algo(algo)
    shape = env.action_space.shape
    assert shape is not None  # a Box action space
    kwargs = algo_kwargs(algo, hp, int(np.prod(shape)), task)
    if inference:
        if algo in OFF_POLICY:
            kwargs["buffer_size"] = 1
            kwargs["learning_starts"] = 0
        elif algo == "ppo":
            kwargs["n_steps"] = max(2, int(kwargs.get("batch_size", 64)))
    policy: Any = hp.get("policy", "MlpPolicy")
    if policy == "NcapPolicy" and algo == "ppo":
        from .circuit_policy import NcapActorCriticPolicy

        policy = NcapActorCriticPolicy
    return algo_class(algo)(policy, env, seed=seed, verbose=0, device="cpu",
                            tensorboard_log=tensorboard_log, **kwargs)


# Buffer sizes used by :func:`check_model`: the constructor's checks see the same values except
# these, so a valid configuration with a 1e6-transition buffer is checked without allocating it.
_CHECK_CAPS = {"buffer_size": 64, "n_steps": 64}


def check_model(algo: str, hp: dict[str, Any], observation_space: gym.Space, action_space: gym.Space,
                task: str | None = None) -> None:
    """Build the model once on the task's spaces (no simulation) and act once.

    Called before a run directory is written: a value the declarative rules of
    :mod:`.config` let through but SB3 or PyTorch refuse (a PPO ``batch_size`` of 1, an
    ``ent_coef`` string SB3 cannot read, a network torch cannot build) fails here with one line,
    instead of crashing after ``config.yaml`` exists and leaving a run that cannot start.

    :raises ConfigError: naming the algorithm and the first line of the library's reason.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    checked = dict(hp)
    for key, cap in _CHECK_CAPS.items():
        if isinstance(checked.get(key), int) and not (algo == "ppo" and key == "buffer_size"):
            checked[key] = min(checked[key], cap)
    n_envs = int(hp.get("n_envs", 1))
    venv = DummyVecEnv([lambda: SpacesEnv(observation_space, action_space)] * n_envs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build_model(algo, checked, venv, seed=0, task=task)
            model.predict(np.stack([observation_space.sample()] * n_envs), deterministic=True)
    except ConfigError:
        raise
    except Exception as exc:  # anything the constructor or a forward pass refuses
        lines = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
        raise ConfigError(f"these hyperparameters do not build a {algo} model ({reason})") from None
    finally:
        venv.close()
