"""Variable-impedance controllers, setpoint interpolation and torque limits.

Imported as ``robot_brain.controllers``. Depends on numpy and mujoco (kinematics) only; never on
envs or hardware.
"""

from .impedance import K_MAX, CartesianImpedance, CartesianImpedanceConfig, Controller, JointImpedance
from .interpolator import SetpointInterpolator
from .limits import TorqueLimiter
from .model import RobotModel
from .types import Command, RobotState

__all__ = [
    "K_MAX",
    "CartesianImpedance",
    "CartesianImpedanceConfig",
    "Command",
    "Controller",
    "JointImpedance",
    "RobotModel",
    "RobotState",
    "SetpointInterpolator",
    "TorqueLimiter",
]
