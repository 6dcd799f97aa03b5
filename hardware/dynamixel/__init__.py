"""Dynamixel servo buses (Protocol 2.0 over pyserial): the codec, the control table, the bus,
calibration, ``DynamixelBackend`` (torque as goal currents, or on position-only servos as the goal
positions their own loop turns into that torque) and a virtual servo chain to test and rehearse on.

Imported as ``robot_brain.hardware.dynamixel``. See ``docs/deploy_serial.md``.
"""
