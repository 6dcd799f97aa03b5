"""MuJoCo worlds and Gymnasium tasks of robot_brain (imported as ``robot_brain.envs``).

Tasks are registered with Gymnasium under the ``robot_brain/`` namespace on import, and listed by
short name in :data:`TASKS` for the CLI (``robot-brain tasks``).
"""

from __future__ import annotations

from . import panda, servo_arm
from .base import Disturbances, EpisodeMetrics, ImpedanceTaskEnv, TaskConfig
from .maze import MazeConfig, MazeEnv
from .peg_insertion import PegInsertionConfig, PegInsertionEnv
from .point_maze import PointMazeConfig, PointMazeEnv
from .reach import ReachConfig, ReachEnv, ServoReachConfig, ServoReachEnv
from .reach_shared import ReachSharedConfig, ReachSharedEnv
from .registry import TASK_CLASSES, TASKS, TaskSpec, make, resolve_task
from .swimmer import SwimmerConfig, SwimmerEnv
from .wipe import WipeConfig, WipeEnv
from .world import ArmSpec

#: The arm models, by the name robot configs give them (``arm: servo_arm``).
ARMS: dict[str, ArmSpec] = {a.name: a for a in (panda.ARM, servo_arm.ARM)}

__all__ = [
    "ARMS",
    "TASKS",
    "TASK_CLASSES",
    "ArmSpec",
    "Disturbances",
    "EpisodeMetrics",
    "ImpedanceTaskEnv",
    "MazeConfig",
    "MazeEnv",
    "PegInsertionConfig",
    "PegInsertionEnv",
    "PointMazeConfig",
    "PointMazeEnv",
    "ReachConfig",
    "ReachEnv",
    "ReachSharedConfig",
    "ReachSharedEnv",
    "ServoReachConfig",
    "ServoReachEnv",
    "SwimmerConfig",
    "SwimmerEnv",
    "TaskConfig",
    "TaskSpec",
    "WipeConfig",
    "WipeEnv",
    "make",
    "resolve_task",
]
