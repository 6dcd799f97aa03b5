"""Hand-written task policies: baselines, demo drivers, and data sources for the safety critic.

They read the task's public attributes (goal, nominal waypoints) and the arm state rather than
the observation vector, so they stay correct when an observation layout changes. They are not
told about disturbances (pushes, shifted walls).
"""

from __future__ import annotations

import numpy as np

from robot_brain.envs.maze import MazeEnv
from robot_brain.envs.reach import ReachEnv

__all__ = ["SCRIPTED", "ScriptedMaze", "ScriptedReach"]


def _toward(delta: np.ndarray, slow_radius: float) -> np.ndarray:
    """Normalised displacement action toward ``delta``: full step far away, proportional (and
    so without overshoot) inside ``slow_radius``."""
    dist = float(np.linalg.norm(delta))
    if dist < 1e-9:
        return np.zeros_like(delta)
    speed = min(1.0, dist / slow_radius)  # fraction of max_step
    return np.clip(delta / dist * speed, -1.0, 1.0)


class ScriptedReach:
    """Straight to the goal, stiff (action stiffness +1), slowing down inside 5 cm of the goal.

    :param env: the reach task (unwrapped). :param seed: unused (deterministic).
    :param slow_radius: distance below which the step shrinks in proportion [m].
    """

    def __init__(self, env: ReachEnv, seed: int | None = None, slow_radius: float = 0.05) -> None:
        self.env = env
        self.slow_radius = slow_radius

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        env = self.env
        a = np.ones(6, dtype=np.float32)
        a[:3] = _toward(env.goal - env.state.ee_pos, self.slow_radius)
        return a


class ScriptedMaze:
    """Follow the maze's nominal waypoints at moderate stiffness.

    Advances to the next waypoint when the tip is within ``advance_radius`` of the current one,
    and slows down near each turn so the corner is not cut into a wall. It does not know the
    wall shift of the episode and does not react to contact: keeping the peg off the walls is
    left to the impedance (compliance) and the reflex layer, which is what the demo compares.

    :param env: the maze task (unwrapped). :param seed: unused (deterministic).
    :param stiffness: normalised stiffness action in [-1, 1] (0.6 -> ~1100 N/m with the default
        range).
    :param advance_radius: distance to a waypoint at which the next one becomes the target [m].
    :param slow_radius: distance below which the step shrinks in proportion [m].
    """

    def __init__(self, env: MazeEnv, seed: int | None = None, stiffness: float = 0.6,
                 advance_radius: float = 0.015, slow_radius: float = 0.04) -> None:
        if not -1.0 <= stiffness <= 1.0:
            raise ValueError(f"stiffness must be a normalised action in [-1, 1], got {stiffness}")
        self.env = env
        self.stiffness = float(stiffness)
        self.advance_radius = float(advance_radius)
        self.slow_radius = float(slow_radius)
        self.index = 1

    def reset(self) -> None:
        self.index = 1

    def act(self, obs: np.ndarray) -> np.ndarray:
        env = self.env
        wps = env.waypoints
        tip = env.state.ee_pos[:2]
        while self.index < len(wps) - 1 and np.linalg.norm(wps[self.index] - tip) < self.advance_radius:
            self.index += 1
        a = np.full(4, self.stiffness, dtype=np.float32)
        a[:2] = _toward(wps[self.index] - tip, self.slow_radius)
        return a


# Task env class -> scripted policy class.
SCRIPTED: dict[type, type] = {ReachEnv: ScriptedReach, MazeEnv: ScriptedMaze}
