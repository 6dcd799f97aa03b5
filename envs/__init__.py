"""MuJoCo worlds and Gymnasium tasks of robot_brain (imported as ``robot_brain.envs``).

Tasks are registered with Gymnasium under the ``robot_brain/`` namespace on import, and listed by
short name in :data:`TASKS` for the CLI (``robot-brain tasks``).
"""

from __future__ import annotations

from .base import Disturbances, EpisodeMetrics, ImpedanceTaskEnv, TaskConfig
from .maze import MazeConfig, MazeEnv
from .peg_insertion import PegInsertionConfig, PegInsertionEnv
from .reach import ReachConfig, ReachEnv
from .registry import TASK_CLASSES, TASKS, TaskSpec, make, resolve_task
from .wipe import WipeConfig, WipeEnv

__all__ = [
    "TASKS",
    "TASK_CLASSES",
    "Disturbances",
    "EpisodeMetrics",
    "ImpedanceTaskEnv",
    "MazeConfig",
    "MazeEnv",
    "PegInsertionConfig",
    "PegInsertionEnv",
    "ReachConfig",
    "ReachEnv",
    "TaskConfig",
    "TaskSpec",
    "WipeConfig",
    "WipeEnv",
    "make",
    "resolve_task",
]
