"""The policy protocol, the trivial policies and :func:`make_policy`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym

__all__ = ["POLICY_NAMES", "Policy", "RandomPolicy", "ZeroPolicy", "make_policy"]

#: The built-in policies of :func:`make_policy` (and of ``--policy`` on the command line).
POLICY_NAMES = ("scripted", "random", "zero")


@runtime_checkable
class Policy(Protocol):
    """``reset()`` at each episode start, then ``act(obs) -> action`` every slow tick."""

    def reset(self) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...


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
    """Build a built-in policy by name for ``env`` (a task env, possibly wrapped)."""
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
