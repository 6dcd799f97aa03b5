"""Backends: the robot behind the ros2_control-style ``Backend`` lifecycle (MuJoCo, a mock).

Imported as ``robot_brain.hardware``. Depends on ``robot_brain.controllers`` for types only.
"""

from .base import Backend, BackendError, Lifecycle, NotActiveError
from .mock import MockBackend
from .mujoco_backend import MujocoBackend, MujocoImpedanceBackend

__all__ = ["Backend", "BackendError", "Lifecycle", "MockBackend", "MujocoBackend", "MujocoImpedanceBackend",
           "NotActiveError"]
