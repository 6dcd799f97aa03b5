"""Dynamixel servo buses (Protocol 2.0 over pyserial): the codec, the bus, a virtual servo chain.

Imported as ``robot_brain.hardware.dynamixel``. See ``docs/deploy_serial.md``.
"""
