"""A constrained-MDP view of a task: the cost comes back separately from the reward.

``CMDPWrapper(env).step(a) -> (obs, reward, cost, terminated, truncated, info)`` (the
safety-gymnasium convention used by Lagrangian/CPO-style learners). The cost of a step is 1.0
when any configured constraint is violated during it, else 0.0; ``info["cost_terms"]`` says
which:

- ``contact_force``: the largest contact force on the tool during the step (the task's
  ``info["contact_force"]``, measured every fast tick) above ``force_limit`` [N];
- ``workspace``: the tool tip outside the box ``workspace_low``..``workspace_high`` [m] at the
  end of the step;
- ``joint_margin``: a joint closer than ``joint_margin`` [rad] to its limit at the end of the
  step.

The constraints build on the task's own settings: ``force_limit`` defaults to the task's
``config.force_limit`` (the one behind ``info["cost"]``); joint limits are those of the task's
hard-limit reflex (``task.limits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, SupportsFloat, cast

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    from robot_brain.envs import ImpedanceTaskEnv

__all__ = ["CMDPWrapper", "CostConfig"]


@dataclass(frozen=True)
class CostConfig:
    """Constraints of the CMDP (``None`` disables one).

    :param force_limit: contact force above which a step costs [N]; default: the task's.
    :param workspace_low: lower corner of the allowed tool box [m]; ``None``: no box.
    :param workspace_high: upper corner [m].
    :param joint_margin: distance to a joint limit that costs [rad]; ``None``: not checked.
    :param terminate: end the episode on the first costly step.
    """

    force_limit: float | None = None
    workspace_low: tuple[float, float, float] | None = None
    workspace_high: tuple[float, float, float] | None = None
    joint_margin: float | None = None
    terminate: bool = False

    def __post_init__(self) -> None:
        if self.force_limit is not None and not self.force_limit > 0:
            raise ValueError(f"force_limit must be > 0 N, got {self.force_limit}")
        if (self.workspace_low is None) != (self.workspace_high is None):
            raise ValueError("give both workspace_low and workspace_high, or neither")
        if self.workspace_low is not None:
            lo, hi = np.asarray(self.workspace_low, float), np.asarray(self.workspace_high, float)
            if lo.shape != (3,) or hi.shape != (3,) or np.any(lo >= hi):
                raise ValueError(f"workspace box must be 3-D with low < high, got "
                                 f"{self.workspace_low}, {self.workspace_high}")
        if self.joint_margin is not None and self.joint_margin < 0:
            raise ValueError(f"joint_margin must be >= 0 rad, got {self.joint_margin}")


class CMDPWrapper(gym.Wrapper):
    """Return the cost separately from the reward (see module docstring).

    :param env: a robot_brain task env (wrapped or not).
    :param costs: the constraints; default: contact force above the task's limit only.
    """

    def __init__(self, env: gym.Env, costs: CostConfig | None = None) -> None:
        super().__init__(env)
        self.costs = c = costs or CostConfig()
        task = cast("ImpedanceTaskEnv", env.unwrapped)
        self.force_limit = float(c.force_limit if c.force_limit is not None
                                 else task.config.force_limit)
        self._lo = None if c.workspace_low is None else np.asarray(c.workspace_low, float)
        self._hi = None if c.workspace_high is None else np.asarray(c.workspace_high, float)
        self._qlo: np.ndarray | None = None
        self._qhi: np.ndarray | None = None
        if c.joint_margin is not None:
            limits = task.limits
            if limits.q_min is None or limits.q_max is None:
                raise ValueError("joint_margin needs a task whose limits name its joint range")
            self._qlo = np.asarray(limits.q_min) + c.joint_margin
            self._qhi = np.asarray(limits.q_max) - c.joint_margin
        self.episode_cost = 0.0

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self.episode_cost = 0.0
        obs, info = self.env.reset(**kwargs)
        info = dict(info)
        info["cost"] = 0.0
        return obs, info

    def cost_terms(self, info: dict[str, Any]) -> dict[str, float]:
        """Each configured constraint's cost (0/1) for the step that produced ``info``."""
        state = cast("ImpedanceTaskEnv", self.env.unwrapped).state
        terms = {"contact_force": float(info.get("contact_force", 0.0) > self.force_limit)}
        if self._lo is not None:
            p = state.ee_pos
            terms["workspace"] = float(bool(np.any(p < self._lo) or np.any(p > self._hi)))
        if self._qlo is not None:
            q = state.q
            terms["joint_margin"] = float(bool(np.any(q < self._qlo) or np.any(q > self._qhi)))
        return terms

    def step(  # type: ignore[override]  # CMDP 6-tuple by design
        self, action: np.ndarray,
    ) -> tuple[np.ndarray, SupportsFloat, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        terms = self.cost_terms(info)
        cost = 1.0 if any(v > 0 for v in terms.values()) else 0.0
        info["cost_terms"] = terms
        info["cost"] = cost
        self.episode_cost += cost
        if cost and self.costs.terminate:
            terminated = True
        return obs, reward, cost, terminated, truncated, info
