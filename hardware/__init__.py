"""Backends: the simulated arm (MuJoCo) and, in later issues, ROS 2 and serial servo buses.

Imported as ``robot_brain.hardware``. Depends on ``robot_brain.controllers`` for types only.
"""

from .base import Backend, BackendError, Lifecycle, NotActiveError
from .mock import MockBackend
from .mujoco_backend import MujocoBackend

__all__ = ["Backend", "BackendError", "Lifecycle", "MockBackend", "MujocoBackend", "NotActiveError"]
