"""The policy protocol, the trivial policies, the circuit-prior hook and :func:`make_policy`."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym
    from torch import nn

__all__ = ["CIRCUITS", "POLICY_NAMES", "SEARCHERS", "CircuitSpec", "Policy", "RandomPolicy", "ZeroPolicy",
           "circuit_for", "make_policy", "register_circuit"]

#: The built-in policies of :func:`make_policy` (and of ``--policy`` on the command line);
#: ``ncap`` is the task's circuit prior (:data:`CIRCUITS`) at its default initialisation.
POLICY_NAMES = ("scripted", "random", "zero", "ncap", "search")

#: The circuit prior of each task that has one, as ``"module:attribute"`` of a :class:`CircuitSpec`
#: (imported on first use, so listing them costs no torch import). A task gets a circuit by
#: adding its entry here or calling :func:`register_circuit`; ``sim --policy ncap`` and
#: ``train --policy ncap`` then work for it unchanged.
CIRCUITS: dict[str, str] = {"swimmer": "robot_brain.policies.ncap:SWIMMER_CIRCUIT",
                            "wipe": "robot_brain.policies.wipe_circuit:WIPE_CIRCUIT"}

#: The cognitive-graph search (``--policy search``, :mod:`robot_brain.search`) of each task that
#: has one, as ``"module:factory"`` with ``factory(env) -> Policy`` (imported on first use).
SEARCHERS: dict[str, str] = {"point-maze": "robot_brain.search.tasks:point_maze_policy",
                             "maze": "robot_brain.search.arm:maze_policy"}


@runtime_checkable
class Policy(Protocol):
    """``reset()`` at each episode start, then ``act(obs) -> action`` every slow tick."""

    def reset(self) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...


class CircuitSpec(Protocol):
    """What a task's circuit prior gives the rest of the stack (an object, registered in
    :data:`CIRCUITS`). The circuit itself is a torch module mapping observations
    (..., obs_dim) to actions (..., act_dim) inside the action space: the deterministic policy,
    the mean of PPO's Gaussian and the parameter vector of evolution strategies alike.

    ``config_type`` is the dataclass of its options (the ablation switches), given as a mapping
    in ``policy_kwargs.circuit`` of a training configuration.
    """

    name: str
    config_type: type

    def build(self, options: Mapping[str, Any], observation_space: gym.Space,
              action_space: gym.Space) -> nn.Module:
        """The circuit for these spaces at its configured initialisation.

        :raises ValueError: one line naming a bad option or spaces the circuit cannot drive.
        """
        ...

    def policy(self, env: gym.Env, options: Mapping[str, Any] | None = None) -> Policy:
        """The circuit as a :class:`Policy` for ``env`` (``sim --policy ncap``)."""
        ...


def register_circuit(task: str, target: str) -> None:
    """Give task ``task`` (its short name) the circuit prior ``target`` (``"module:attribute"`` of
    a :class:`CircuitSpec`), imported when first used."""
    if ":" not in target:
        raise ValueError(f"circuit target must be 'module:attribute', got {target!r}")
    CIRCUITS[task] = target


def circuit_for(task: str) -> CircuitSpec:
    """The circuit prior of task ``task``.

    :raises ValueError: one line naming the tasks that have a circuit.
    """
    target = CIRCUITS.get(task)
    if target is None:
        raise ValueError(f"task {task!r} has no circuit policy (ncap); tasks with a circuit: "
                         f"{', '.join(sorted(CIRCUITS))}")
    module, _, attribute = target.partition(":")
    return cast(CircuitSpec, getattr(importlib.import_module(module), attribute))


def task_name(env: gym.Env) -> str:
    """The short task name of a (possibly wrapped) task env: its class's ``name``."""
    task = env.unwrapped
    return str(getattr(task, "name", "") or type(task).__name__)


class ZeroPolicy:
    """Target = current pose, mid-range stiffness: the arm holds still (and yields to pushes)."""

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        self._action = np.zeros(cast("gym.spaces.Box", env.action_space).shape, dtype=np.float32)

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._action


class RandomPolicy:
    """Uniform random actions from a seeded generator (reproducible)."""

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        self.space = cast("gym.spaces.Box", env.action_space)
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(self.space.low, self.space.high).astype(np.float32)


def make_policy(name: str, env: gym.Env, seed: int | None = None) -> Policy:
    """Build a built-in policy by name for ``env`` (a task env, possibly wrapped).

    :raises ValueError: an unknown name, or no scripted policy / circuit for this task (one line).
    """
    if name == "ncap":
        return circuit_for(task_name(env)).policy(env)
    if name == "search":
        target = SEARCHERS.get(task_name(env))
        if target is None:
            raise ValueError(f"task {task_name(env)!r} has no search policy; tasks with one: "
                             f"{', '.join(sorted(SEARCHERS))}")
        module, _, factory = target.partition(":")
        return cast(Policy, getattr(importlib.import_module(module), factory)(env))
    from .scripted import SCRIPTED

    if name == "zero":
        return ZeroPolicy(env, seed)
    if name == "random":
        return RandomPolicy(env, seed)
    if name == "scripted":
        task = env.unwrapped
        for cls, policy in SCRIPTED.items():
            if isinstance(task, cls):
                return policy(task, seed)
        raise ValueError(f"no scripted policy for task {type(task).__name__}")
    raise ValueError(f"unknown policy {name!r} (choose from {', '.join(POLICY_NAMES)})")
