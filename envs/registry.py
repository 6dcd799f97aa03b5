"""Task registry: short CLI names, Gymnasium ids, one-line descriptions, "did you mean" errors."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import gymnasium as gym

__all__ = ["TASKS", "TaskSpec", "UnknownTaskError", "make", "resolve_task"]


@dataclass(frozen=True)
class TaskSpec:
    name: str  # short name used by the CLI
    env_id: str  # Gymnasium id
    entry_point: str
    description: str
    max_episode_steps: int


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("reach", "robot_brain/Reach-v0", "robot_brain.envs.reach:ReachEnv",
                 "free-space goal reaching with the tool tip (variable-impedance actions)", 100),
        TaskSpec("maze", "robot_brain/Maze-v0", "robot_brain.envs.maze:MazeEnv",
                 "guide a peg through a planar maze of walls on a table; wall contact above "
                 "the force limit is a violation (Bresa's contact-rich task)", 400),
        TaskSpec("peg-insertion", "robot_brain/PegInsertion-v0",
                 "robot_brain.envs.peg_insertion:PegInsertionEnv",
                 "insert the peg into a hole with 1 mm clearance from a randomised start; contact "
                 "force above the limit is a violation", 150),
        TaskSpec("wipe", "robot_brain/Wipe-v0", "robot_brain.envs.wipe:WipeEnv",
                 "keep a target normal force on a table while following a path; excessive force "
                 "or leaving the surface is a violation", 250),
    )
}


class UnknownTaskError(ValueError):
    """An unknown task name; the message carries a "did you mean" suggestion."""


def resolve_task(name: str) -> TaskSpec:
    """The spec of a short name or Gymnasium id, or :class:`UnknownTaskError` with a suggestion."""
    if name in TASKS:
        return TASKS[name]
    for spec in TASKS.values():
        if name == spec.env_id:
            return spec
    candidates = list(TASKS) + [s.env_id for s in TASKS.values()]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.4)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownTaskError(f"unknown task {name!r}{hint} (known: {', '.join(TASKS)})")


def make(name: str, **kwargs) -> gym.Env:
    """``gymnasium.make`` of a task by short name or id; keyword arguments go to the task.

    ``max_episode_steps`` is set on the task itself (``gymnasium.make`` would take it for a
    ``TimeLimit`` wrapper and leave the task's own, shorter limit in force).
    """
    spec = resolve_task(name)
    steps = kwargs.pop("max_episode_steps", None)
    if steps is not None and (int(steps) != steps or steps < 1):
        raise ValueError(f"max_episode_steps must be a positive integer, got {steps!r}")
    env = gym.make(spec.env_id, **kwargs)
    if steps is not None:
        env.unwrapped.max_episode_steps = int(steps)
    return env


def _register() -> None:
    for spec in TASKS.values():
        if spec.env_id not in gym.registry:
            gym.register(spec.env_id, entry_point=spec.entry_point,
                         max_episode_steps=None, disable_env_checker=True)


_register()
