"""Rehearse a deployment on one machine: ``robot-brain sim-robot`` plays the robot (MuJoCo arm,
its effort controller and joint state broadcaster) and ``robot-brain deploy`` runs the brain
against it over ROS 2, both with the same robot config.

    ros2 launch robot_brain sim.launch.py                         # config/sim_arm.yaml, DDS on lo
    ros2 launch robot_brain sim.launch.py policy:=scripted duration:=10 record:=rehearsal.mcap
    ros2 launch robot_brain sim.launch.py robot_config:=<share>/launch/config/sim_arm_impedance.yaml
    ros2 launch ./launch/sim.launch.py                            # from a checkout, no colcon build

The arguments are those of ``robot.launch.py`` (one definition, imported from it) with two other
defaults:

- ``robot_config``: ``config/sim_arm.yaml`` beside this file (joints joint1..joint7, effort
  interface, DDS on the loopback interface only).
- ``transport``: ``dds``. Only the DDS transport applies the config's ``dds`` block (interface
  ``lo``, multicast off, peer 127.0.0.1), so the rehearsal cannot leave this machine. An rclpy node
  instead follows the machine's RMW settings, which by default discover every host of the LAN on
  domain 0. That is the domain a real robot listens on, and it would receive the rehearsal's
  effort commands. ``transport:=rclpy`` rehearses the rclpy path of robot.launch.py. The nodes then
  get ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (``ROS_LOCALHOST_ONLY=1`` on Humble and older), so
  they too stay on this machine. Export the same variable in the shell where you run
  ``ros2 topic echo``.

``control_hz`` and ``duration`` go to both nodes: sim-robot steps its physics at the brain's fast
rate, and both stop together. ``record`` goes to the brain (its flight recorder). When either node
exits, the launch ends.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

# The repository's launch/ folder makes isort count ROS 2's `launch` as first-party.
# isort: off
from launch import LaunchDescription
from launch.actions import OpaqueFunction, Shutdown
from launch_ros.actions import Node
# isort: on

HERE = Path(__file__).resolve().parent
# Before Iron, ROS 2 knew only ROS_LOCALHOST_ONLY; from Iron on it is deprecated (with a warning).
OLD_DISTROS = ("foxy", "galactic", "humble")


def _robot_launch() -> ModuleType:
    """robot.launch.py beside this file, as a module (what ``ros2 launch`` does with a launch file)."""
    path = HERE / "robot.launch.py"
    spec = importlib.util.spec_from_file_location("robot_brain_robot_launch", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


robot = _robot_launch()


def localhost_env(context) -> dict[str, str]:
    """Environment that keeps rclpy nodes on this machine (empty for the DDS transport, which the
    config's ``dds`` block already keeps on ``lo``)."""
    if robot.value(context, "transport") == "dds":
        return {}
    if os.environ.get("ROS_DISTRO", "") in OLD_DISTROS:
        return {"ROS_LOCALHOST_ONLY": "1"}
    return {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


def sim_robot_arguments(context) -> list[str]:
    """The command line of ``robot-brain sim-robot`` (the verb and its flags)."""
    args = ["sim-robot", "--robot", robot.robot_config(context),
            "--transport", robot.value(context, "transport")]
    return args + robot.optional_flags(context, {"control_hz": "--control-hz",
                                                  "duration": "--duration"})


def sim_robot_node(context) -> Node:
    """The simulated robot as the node ``sim_robot``. The launch ends when it exits."""
    return Node(package=robot.PACKAGE, executable=robot.EXECUTABLE, name="sim_robot",
                parameters=[robot.robot_config(context)], arguments=sim_robot_arguments(context),
                output="screen", additional_env={**robot.UNBUFFERED, **localhost_env(context)},
                on_exit=Shutdown())


def _launch_setup(context, *args, **kwargs) -> list[Node]:
    # The robot first: the brain waits for its first state up to the config's connect_timeout.
    return [sim_robot_node(context), robot.deploy_node(context, additional_env=localhost_env(context))]


def generate_launch_description() -> LaunchDescription:
    arguments = robot.declare_arguments(robot_config=str(HERE / "config" / "sim_arm.yaml"),
                                        transport="dds")
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch_setup)])
