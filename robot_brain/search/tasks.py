"""The search policy of each task that has one (``--policy search``), built from the task env.

A task gets one by an entry in :data:`robot_brain.policies.SEARCHERS` naming a factory here (or
elsewhere): ``factory(env) -> policy``. The policy only reads what a robot would know: the
workspace bounds, the goal and its own position; it learns the walls from what happens.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from .agent import SearchConfig, SearchPolicy

__all__ = ["point_maze_policy"]


def point_maze_policy(env: gym.Env, config: SearchConfig | None = None) -> Any:
    """The search on ``point-maze``: position and goal from the observation (slices 0:2 and
    4:6), the workspace from the task's bounds."""
    task = env.unwrapped
    bounds = getattr(task, "bounds", None)
    if bounds is None:
        raise ValueError(f"the point-maze search needs the task's workspace bounds, "
                         f"{type(task).__name__} has none")
    return SearchPolicy(bounds, config)
