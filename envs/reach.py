"""``reach``: move the tool tip to a random goal in free space.

Observation: tool position (3), tool linear velocity (3), goal - tool (3).
Action: target displacement (3, scaled by ``max_step``) and per-axis stiffness (3, log scale).
Success: tool within ``goal_tolerance`` of the goal (the episode ends).

Version history: v0 (initial; goal box x 0.35-0.6, y -0.2-0.2, z 0.2-0.45 m, all reachable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robot_brain.params import param
from robot_brain.runtime import StepStats

from .base import ImpedanceTaskEnv, TaskConfig

__all__ = ["ReachConfig", "ReachEnv"]


@dataclass(frozen=True)
class ReachConfig(TaskConfig):
    """Options of ``reach`` (besides :class:`TaskConfig`'s).

    :param goal_low: lower corner of the goal box [m]. :param goal_high: upper corner [m]. The
        default box lies inside the arm's reach with the tool pointing down (goals beyond
        x = 0.6 m at z = 0.6 m are not reachable in that orientation).
    :param goal_tolerance: success distance [m].
    """

    goal_low: tuple[float, float, float] = param((0.35, -0.2, 0.2), "lower corner of the goal box",
                                                 kind="vec3", low=-1.0, high=1.2, unit="m")
    goal_high: tuple[float, float, float] = param((0.6, 0.2, 0.45), "upper corner of the goal box",
                                                  kind="vec3", low=-1.0, high=1.2, unit="m")
    goal_tolerance: float = param(0.02, "success distance", low=0.0, high=0.2, unit="m", low_open=True)
    max_episode_steps: int = param(100, "steps before truncation", kind="int", low=1, high=1_000_000)

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(lo > hi for lo, hi in zip(self.goal_low, self.goal_high, strict=True)):
            raise ValueError(f"ReachConfig: goal_low {self.goal_low} must not exceed goal_high "
                             f"{self.goal_high} on any axis")


class ReachEnv(ImpedanceTaskEnv):
    """Free-space goal reaching with variable impedance (options: :class:`ReachConfig`)."""

    name: ClassVar[str] = "reach"
    env_id: ClassVar[str] = "robot_brain/Reach-v0"
    description: ClassVar[str] = "free-space goal reaching with the tool tip (variable-impedance actions)"
    config_type: ClassVar[type[TaskConfig]] = ReachConfig
    config: ReachConfig

    def __init__(self, config: ReachConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._goal_body = self.model.body("goal").id

    def _init_task(self) -> None:
        self.goal_low = np.array(self.config.goal_low)
        self.goal_high = np.array(self.config.goal_high)
        self.goal = (self.goal_low + self.goal_high) / 2

    def _world_xml(self) -> str:
        return ('<body name="goal" mocap="true" pos="0.5 0 0.45">'
                '<geom type="sphere" size="0.02" rgba="0.1 0.9 0.2 0.5"/></body>')

    def _reset_task(self, rng: np.random.Generator) -> None:
        self.goal = rng.uniform(self.goal_low, self.goal_high)
        # The arm reset that follows runs mj_resetData, which copies the model's body_pos into
        # mocap_pos: move the marker in the model so the rendered goal is the sampled one.
        self.model.body_pos[self._goal_body] = self.goal
        if self.sim is not None:
            self.sim.data.mocap_pos[0] = self.goal

    def _task_obs(self) -> np.ndarray:
        return self.goal - self.state.ee_pos

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.goal - self.state.ee_pos))

    def _reward_terms(self, stats: StepStats) -> dict[str, float]:
        # Distance in units of 10 cm: rewards of order 1 keep SAC's entropy bonus from drowning
        # the last centimetres of the approach.
        return {
            "distance": -10.0 * self.distance,
            "success": 10.0 if self._is_success() else 0.0,
            "contact": -0.01 * stats.max_contact_force,
        }

    def _is_success(self) -> bool:
        return self.distance < self.config.goal_tolerance
