"""Run the brain on a real arm through ROS 2: one ``robot-brain deploy`` node.

    ros2 launch robot_brain robot.launch.py                  # config/panda.yaml, zero policy, dry run off
    ros2 launch robot_brain robot.launch.py dry_run:=true    # connect, read, check; command nothing
    ros2 launch robot_brain robot.launch.py policy:=runs/reach/ppo-20250101-120000 record:=flight.mcap
    ros2 launch ./launch/robot.launch.py robot_config:=my_arm.yaml   # from a checkout, no colcon build

Arguments (``ros2 launch ... --show-args`` lists them):

- ``robot_config``: the robot's ROS 2 parameter file, handed to the node as its parameters and to
  ``deploy --robot``. Default: ``config/panda.yaml`` beside this file. The path is found from
  ``__file__``, not the ament index, so the same file works in three places: the installed share
  directory (``share/robot_brain/launch/`` with ``launch/config/`` below it), a ``--symlink-install``
  (it resolves into the checkout), and a plain checkout started with ``ros2 launch ./launch/...``
  before any colcon build. ``get_package_share_directory`` works only in the first two, and it
  raises at load time when the package is not in the ament index.
- ``policy`` (``zero``), ``task`` (``reach``), ``shield`` (``limits``), ``transport`` (``rclpy``:
  under ``ros2 launch`` rclpy is always there, and the node then appears in ``ros2 node list`` and
  takes ROS_DOMAIN_ID like every other node).
- ``control_hz``, ``policy_hz``, ``duration``, ``record``: empty means the flag is not passed, so
  the robot config's rates apply, the brain runs until stopped, and nothing is recorded.
- ``dry_run`` (``false``): ``true`` passes ``--dry-run``.

The executable is the package's one console script, ``robot-brain`` (``robot_brain.cli:main``).
colcon's ament_python build installs it into ``<prefix>/lib/robot_brain/``, where launch_ros looks
(setup.cfg's ``install_scripts``/``script_dir``). A plain ``pip install`` puts it on PATH
(``bin/``) as before. launch_ros appends ``--ros-args ...`` to the command line, and the verbs
ignore everything after it.

``sim.launch.py`` reuses :func:`declare_arguments` and :func:`deploy_node` from this file, so the
rehearsal starts the brain exactly as this file does.
"""

from __future__ import annotations

from pathlib import Path

# The repository's launch/ folder makes isort count ROS 2's `launch` as first-party.
# isort: off
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
# isort: on

PACKAGE = "robot_brain"
EXECUTABLE = "robot-brain"  # the console script of pyproject.toml, in <prefix>/lib/robot_brain/
CONFIG_DIR = Path(__file__).resolve().parent / "config"
TRANSPORTS = ("auto", "rclpy", "dds")
BOOLEANS = ("true", "false")

# name -> (default, description). Defaults are strings, as on the ros2 launch command line.
ARGUMENTS: dict[str, tuple[str, str]] = {
    "robot_config": (str(CONFIG_DIR / "panda.yaml"),
                     "robot config: a ROS 2 parameter file (see launch/config/*.yaml)"),
    "policy": ("zero", "a run directory of 'robot-brain train', 'scripted' or 'zero' (hold still)"),
    "task": ("reach", "task whose observation and command mapping the policy uses"),
    "shield": ("limits", "fast-tick reflex: 'limits', 'none' or a critic directory"),
    "transport": ("rclpy", "ROS 2 transport: rclpy, dds (Cyclone DDS, no rclpy) or auto"),
    "control_hz": ("", "fast-tick rate [Hz]; empty: the robot config's control_hz"),
    "policy_hz": ("", "policy rate [Hz]; empty: the robot config's policy_hz"),
    "duration": ("", "stop after this many seconds; empty: run until stopped (Ctrl-C)"),
    "record": ("", "record a ROS 2 bag (MCAP) at this path; empty: no recording"),
    "dry_run": ("false", "true: connect and read state but command nothing"),
}
CHOICES = {"transport": TRANSPORTS, "dry_run": BOOLEANS}
# Node output reaches the screen line by line (Python block-buffers a pipe).
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}


def declare_arguments(**defaults: str) -> list[DeclareLaunchArgument]:
    """Every launch argument, with ``defaults`` overriding the defaults above (sim.launch.py)."""
    unknown = sorted(set(defaults) - set(ARGUMENTS))
    if unknown:
        raise ValueError(f"unknown launch argument {unknown[0]} (known: {', '.join(ARGUMENTS)})")
    out = []
    for name, (default, description) in ARGUMENTS.items():
        kwargs = {"choices": list(CHOICES[name])} if name in CHOICES else {}
        out.append(DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                         description=description, **kwargs))
    return out


def value(context, name: str) -> str:
    """The launch argument ``name`` as given (or defaulted), surrounding spaces removed."""
    return LaunchConfiguration(name).perform(context).strip()


def is_true(context, name: str) -> bool:
    """A true/false launch argument (``choices`` refuses other values before this runs)."""
    text = value(context, name).lower()
    if text not in BOOLEANS:
        raise ValueError(f"launch argument {name} must be true or false, got {text!r}")
    return text == "true"


def robot_config(context) -> str:
    """The robot config's path (``~`` expanded); a missing file stops the launch with one line."""
    path = Path(value(context, "robot_config")).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"launch argument robot_config: {path} does not exist")
    return str(path)


def optional_flags(context, flags: dict[str, str]) -> list[str]:
    """``[flag, value]`` for each launch argument of ``flags`` (argument -> flag) given non-empty."""
    out = []
    for name, flag in flags.items():
        text = value(context, name)
        if text:
            out += [flag, text]
    return out


def deploy_arguments(context) -> list[str]:
    """The command line of ``robot-brain deploy`` (the verb and its flags)."""
    args = ["deploy", "--robot", robot_config(context), "--transport", value(context, "transport"),
            "--policy", value(context, "policy"), "--task", value(context, "task"),
            "--shield", value(context, "shield")]
    args += optional_flags(context, {"control_hz": "--control-hz", "policy_hz": "--policy-hz",
                                     "duration": "--duration", "record": "--record"})
    if is_true(context, "dry_run"):
        args.append("--dry-run")
    return args


def deploy_node(context, *, additional_env: dict[str, str] | None = None) -> Node:
    """The brain: ``robot-brain deploy`` as the node ``robot_brain``. The launch ends when it exits."""
    return Node(package=PACKAGE, executable=EXECUTABLE, name="robot_brain",
                parameters=[robot_config(context)], arguments=deploy_arguments(context),
                output="screen", additional_env={**UNBUFFERED, **(additional_env or {})},
                on_exit=Shutdown())


def _launch_setup(context, *args, **kwargs) -> list[Node]:
    return [deploy_node(context)]


def generate_launch_description() -> LaunchDescription:
    # The node is built in an OpaqueFunction, after the arguments are known. Flags whose argument
    # is empty are then left out of the command line, which substitutions alone cannot express.
    return LaunchDescription([*declare_arguments(), OpaqueFunction(function=_launch_setup)])
