"""Hand-written task policies: baselines, demo drivers, and data sources for the safety critic."""

from __future__ import annotations

import numpy as np

from robot_brain.envs.reach import ReachEnv

__all__ = ["SCRIPTED", "ScriptedReach"]


class ScriptedReach:
    """Straight to the goal at full step, stiff (action stiffness +1)."""

    def __init__(self, env: ReachEnv, seed: int | None = None) -> None:
        self.env = env

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        env = self.env
        delta = env.goal - env.state.ee_pos
        a = np.ones(6, dtype=np.float32)
        a[:3] = np.clip(delta / env.max_step, -1.0, 1.0)
        return a


# Task env class -> scripted policy class (maze adds its own).
SCRIPTED: dict[type, type] = {ReachEnv: ScriptedReach}
