"""robot_brain: a two-rate control stack for robot arms.

A slow task policy sends variable-impedance commands; a fast reflex layer checks every control
tick; impedance controllers turn setpoints into torques; the same loop drives MuJoCo or a real arm.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
