"""Task registry: short CLI names, Gymnasium ids, one-line descriptions, "did you mean" errors.

The metadata comes from the task classes themselves (``name``, ``env_id``, ``description``,
``config_type``), so a task is described in one place; adding a task means adding its class to
:data:`TASK_CLASSES`.

Two families of tasks share the registry: the arm tasks (:class:`~.base.ImpedanceTaskEnv`: a
policy commands a variable-impedance controller under the two-rate loop and the reflex chosen by
``shield``) and plain Gymnasium tasks with no impedance layer (the ``swimmer``: joint torques,
no reflex; ``point-maze``: a 2-D point mass). :attr:`TaskSpec.impedance` says which; code that
needs an arm (its ``config_type.arm``,
its loop, its reflex) asks it first (:func:`arm_tasks`).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from .base import ImpedanceTaskEnv
from .maze import MazeEnv
from .peg_insertion import PegInsertionEnv
from .point_maze import PointMazeEnv
from .reach import ReachEnv, ServoReachEnv
from .reach_shared import ReachSharedEnv
from .swimmer import SwimmerEnv
from .wipe import WipeEnv

__all__ = ["TASKS", "TASK_CLASSES", "TaskSpec", "UnknownTaskError", "arm_tasks", "make", "resolve_task"]

#: A task class: an arm task (:class:`ImpedanceTaskEnv`) or a plain torque-driven task (the
#: swimmer). Every one carries ``name``, ``env_id``, ``description`` and ``config_type``.
TaskClass = type[ImpedanceTaskEnv] | type[SwimmerEnv] | type[PointMazeEnv]

TASK_CLASSES: tuple[TaskClass, ...] = (ReachEnv, MazeEnv, PegInsertionEnv, WipeEnv, ServoReachEnv,
                                       ReachSharedEnv, SwimmerEnv, PointMazeEnv)

# Shield specs a task without a reflex layer accepts (and ignores): the CLI passes its default
# ("limits") to every task; a critic directory would be a promise the task cannot keep.
_NO_REFLEX_SHIELDS = (None, "none", "limits")


@dataclass(frozen=True)
class TaskSpec:
    """What the CLI and the registry know of a task (read from its class)."""

    name: str  # short name used by the CLI
    env_id: str  # Gymnasium id
    env_class: TaskClass
    description: str

    @property
    def config_type(self) -> type[Any]:
        """The task's options (a dataclass; arm tasks' configs also name their ``arm``)."""
        return self.env_class.config_type

    @property
    def impedance(self) -> bool:
        """An arm task: actions command the impedance controller under the two-rate loop and a
        reflex (``shield``); ``False`` for tasks driven by joint torques directly."""
        return issubclass(self.env_class, ImpedanceTaskEnv)

    @property
    def max_episode_steps(self) -> int:
        return self.config_type().max_episode_steps

    @property
    def entry_point(self) -> str:
        return f"{self.env_class.__module__}:{self.env_class.__qualname__}"

    @classmethod
    def of(cls, env_class: TaskClass) -> TaskSpec:
        if not (env_class.name and env_class.env_id and env_class.description):
            raise ValueError(f"task class {env_class.__name__} must set name, env_id and description")
        return cls(env_class.name, env_class.env_id, env_class, env_class.description)


TASKS: dict[str, TaskSpec] = {c.name: TaskSpec.of(c) for c in TASK_CLASSES}


def arm_tasks() -> tuple[str, ...]:
    """Names of the arm tasks (:attr:`TaskSpec.impedance`), for code and tests that need an arm."""
    return tuple(name for name, spec in TASKS.items() if spec.impedance)


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
    A task without an impedance layer has no reflex: ``shield`` ``"none"`` or ``"limits"`` (the
    CLI's default) is accepted and dropped, a critic is refused.
    :raises ValueError: an unknown option (named, with a suggestion) or a bad value.
    """
    spec = resolve_task(name)
    if not spec.impedance and "shield" in kwargs:
        shield = kwargs.pop("shield")
        if shield not in _NO_REFLEX_SHIELDS:
            raise ValueError(f"task {spec.name!r} has no reflex layer (joint torques, no impedance "
                             f"controller): shield must be none or limits, got {shield!r}")
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
