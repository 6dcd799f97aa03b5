"""``reach``: move the tool tip to a random goal in free space.

Observation: tool position (3), tool linear velocity (3), goal - tool (3).
Action: target displacement (3, scaled by ``max_step``) and per-axis stiffness (3, log scale).
Success: tool within ``goal_tolerance`` of the goal (the episode ends).

Version history: v0 (initial; goal box x 0.35-0.6, y -0.2-0.2, z 0.2-0.45 m, all reachable).
"""

from __future__ import annotations

import numpy as np

from robot_brain.runtime import StepStats

from .base import ImpedanceTaskEnv

__all__ = ["ReachEnv"]


class ReachEnv(ImpedanceTaskEnv):
    """Free-space goal reaching with variable impedance.

    :param goal_low: lower corner of the goal box [m]. :param goal_high: upper corner [m]. The
        default box lies inside the arm's reach with the tool pointing down (goals beyond
        x = 0.6 m at z = 0.6 m are not reachable in that orientation).
    :param goal_tolerance: success distance [m].
    :param kwargs: see :class:`ImpedanceTaskEnv`.
    """

    description = "free-space goal reaching with the tool tip (variable-impedance actions)"

    def __init__(self, *, goal_low=(0.35, -0.2, 0.2), goal_high=(0.6, 0.2, 0.45),
                 goal_tolerance: float = 0.02, max_episode_steps: int = 100, **kwargs) -> None:
        self.goal_low = np.asarray(goal_low, dtype=np.float64)
        self.goal_high = np.asarray(goal_high, dtype=np.float64)
        if self.goal_low.shape != (3,) or np.any(self.goal_low > self.goal_high):
            raise ValueError(f"goal box must be 3-D with low <= high, got {goal_low}, {goal_high}")
        if not goal_tolerance > 0:
            raise ValueError(f"goal_tolerance must be > 0 m, got {goal_tolerance}")
        self.goal_tolerance = float(goal_tolerance)
        self.goal = (self.goal_low + self.goal_high) / 2
        super().__init__(max_episode_steps=max_episode_steps, **kwargs)
        self._goal_body = self.model.body("goal").id

    def _world_xml(self) -> str:
        return ('<body name="goal" mocap="true" pos="0.5 0 0.45">'
                '<geom type="sphere" size="0.02" rgba="0.1 0.9 0.2 0.5"/></body>')

    def _reset_task(self, rng: np.random.Generator) -> None:
        self.goal = rng.uniform(self.goal_low, self.goal_high)
        # The arm reset that follows runs mj_resetData, which copies the model's body_pos into
        # mocap_pos: move the marker in the model so the rendered goal is the sampled one.
        self.model.body_pos[self._goal_body] = self.goal
        self.backend.data.mocap_pos[0] = self.goal

    def _task_obs(self) -> np.ndarray:
        return self.goal - self.loop.state.ee_pos

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.goal - self.loop.state.ee_pos))

    def _reward_terms(self, stats: StepStats) -> dict[str, float]:
        # Distance in units of 10 cm: rewards of order 1 keep SAC's entropy bonus from drowning
        # the last centimetres of the approach.
        return {
            "distance": -10.0 * self.distance,
            "success": 10.0 if self._is_success() else 0.0,
            "contact": -0.01 * stats.max_contact_force,
        }

    def _is_success(self) -> bool:
        return self.distance < self.goal_tolerance
