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
                 "the force limit is a violation (Bresa's contact-rich task)", 200),
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
    """``gymnasium.make`` of a task by short name or id."""
    return gym.make(resolve_task(name).env_id, **kwargs)


def _register() -> None:
    for spec in TASKS.values():
        if spec.env_id not in gym.registry:
            gym.register(spec.env_id, entry_point=spec.entry_point,
                         max_episode_steps=None, disable_env_checker=True)


_register()
