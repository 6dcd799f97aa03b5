"""Variable-impedance controllers, setpoint interpolation and torque limits.

Imported as ``robot_brain.controllers``. Depends on numpy and mujoco (kinematics) only; never on
envs or hardware.
"""

from .impedance import CartesianImpedance, CartesianImpedanceConfig, JointImpedance
from .interpolator import SetpointInterpolator
from .limits import TorqueLimiter
from .model import RobotModel
from .types import Command, RobotState

__all__ = [
    "CartesianImpedance",
    "CartesianImpedanceConfig",
    "Command",
    "JointImpedance",
    "RobotModel",
    "RobotState",
    "SetpointInterpolator",
    "TorqueLimiter",
]
