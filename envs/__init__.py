"""MuJoCo worlds and Gymnasium tasks of robot_brain (imported as ``robot_brain.envs``).

Tasks are registered with Gymnasium under the ``robot_brain/`` namespace on import, and listed by
short name in :data:`TASKS` for the CLI (``robot-brain tasks``).
"""

from __future__ import annotations

from .base import Disturbances, EpisodeMetrics, ImpedanceTaskEnv
from .registry import TASKS, TaskSpec, make, resolve_task

__all__ = ["TASKS", "Disturbances", "EpisodeMetrics", "ImpedanceTaskEnv", "TaskSpec", "make",
           "resolve_task"]
