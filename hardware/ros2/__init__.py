"""ROS 2 for the real-robot path: messages, one transport interface (Cyclone DDS or rclpy), the
``Ros2Backend`` of a ros2_control robot, the robot configuration and the flight recorder.

Imported as ``robot_brain.hardware.ros2``. rclpy is optional: without it the DDS transport
speaks the same wire protocol (see :mod:`.transport`).
"""
