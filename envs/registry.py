"""Task registry: short CLI names, Gymnasium ids, one-line descriptions, "did you mean" errors.

The metadata comes from the task classes themselves (``name``, ``env_id``, ``description``,
``config_type``), so a task is described in one place; adding a task means adding its class to
:data:`TASK_CLASSES`.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from .base import ImpedanceTaskEnv, TaskConfig
from .maze import MazeEnv
from .peg_insertion import PegInsertionEnv
from .reach import ReachEnv, ServoReachEnv
from .wipe import WipeEnv

__all__ = ["TASKS", "TASK_CLASSES", "TaskSpec", "UnknownTaskError", "make", "resolve_task"]

TASK_CLASSES: tuple[type[ImpedanceTaskEnv], ...] = (ReachEnv, MazeEnv, PegInsertionEnv, WipeEnv,
                                                   ServoReachEnv)


@dataclass(frozen=True)
class TaskSpec:
    """What the CLI and the registry know of a task (read from its class)."""

    name: str  # short name used by the CLI
    env_id: str  # Gymnasium id
    env_class: type[ImpedanceTaskEnv]
    description: str

    @property
    def config_type(self) -> type[TaskConfig]:
        return self.env_class.config_type

    @property
    def max_episode_steps(self) -> int:
        return self.config_type().max_episode_steps

    @property
    def entry_point(self) -> str:
        return f"{self.env_class.__module__}:{self.env_class.__qualname__}"

    @classmethod
    def of(cls, env_class: type[ImpedanceTaskEnv]) -> TaskSpec:
        if not (env_class.name and env_class.env_id and env_class.description):
            raise ValueError(f"task class {env_class.__name__} must set name, env_id and description")
        return cls(env_class.name, env_class.env_id, env_class, env_class.description)


TASKS: dict[str, TaskSpec] = {c.name: TaskSpec.of(c) for c in TASK_CLASSES}


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


def make(name: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` of a task by short name or id; keyword arguments are the task's
    options (fields of its config, e.g. ``max_step=0.01``) and the env's own arguments
    (``shield``, ``render_mode``, ``renderer``, ``width``, ``height``, ``config``).

    The options are gathered into the task's config here: ``gymnasium.make`` would take
    ``max_episode_steps`` for a ``TimeLimit`` wrapper and leave the task's own limit in force.
    :raises ValueError: an unknown option (named, with a suggestion) or a bad value.
    """
    spec = resolve_task(name)
    fields = {f.name for f in dataclasses.fields(spec.config_type)}
    if "max_episode_steps" in kwargs:
        config = kwargs.pop("config", None) or spec.config_type()
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in fields}
        kwargs["config"] = dataclasses.replace(config, **options)
    return gym.make(spec.env_id, **kwargs)


def _register() -> None:
    for spec in TASKS.values():
        if spec.env_id not in gym.registry:
            gym.register(spec.env_id, entry_point=spec.entry_point, max_episode_steps=None,
                         disable_env_checker=True)


_register()
