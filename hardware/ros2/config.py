"""The robot configuration of ``deploy`` and ``sim-robot``: one validated, frozen dataclass read
from a ROS 2 parameter file (``launch/config/*.yaml``).

The file is what ``ros2 launch`` hands a node (``<node>: ros__parameters: {...}``); the block of
the node ``robot_brain`` (or the wildcard ``/**``) is read, so the same file configures the
launch files and the CLI. Every field is checked where it enters with a one-line error naming
the key and the bad value (:mod:`robot_brain.params`); unknown keys are refused with a
suggestion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robot_brain.params import param, replace_checked, validate

from .transport import NetworkConfig, check_topic

__all__ = ["INTERFACES", "NODE_KEYS", "SECTIONS", "RobotConfig", "load_robot_config", "read_parameters"]

INTERFACES = ("effort", "impedance")
NODE_KEYS = ("robot_brain", "/**")  # the parameter blocks read, in this order
SECTIONS = ("envelope", "serial")  # parameter sections validated by their owners (the deploy command)


def _names(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{what} must be a non-empty list of names, got {value!r}")
    out = []
    for v in value:
        if not isinstance(v, str) or not v.strip() or v != v.strip():
            raise ValueError(f"{what} must hold non-empty names without surrounding spaces, got {v!r}")
        out.append(v)
    if len(set(out)) != len(out):
        dup = sorted({v for v in out if out.count(v) > 1})
        raise ValueError(f"{what} names a joint twice: {', '.join(dup)}")
    return tuple(out)


def _network(value: Any) -> NetworkConfig:
    if isinstance(value, NetworkConfig):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"dds must be a mapping of domain_id, interface, peers, multicast; got {value!r}")
    known = {f.name for f in dataclasses.fields(NetworkConfig)}
    bad = sorted(set(value) - known)
    if bad:
        raise ValueError(f"unknown key dds.{bad[0]} (known: {', '.join(sorted(known))})")
    kw = dict(value)
    if "peers" in kw:
        peers = kw["peers"]
        if isinstance(peers, str) or not isinstance(peers, (list, tuple)):
            raise ValueError(f"dds.peers must be a list of addresses, got {peers!r}")
        kw["peers"] = tuple(peers)
    if "multicast" in kw and not isinstance(kw["multicast"], bool):
        raise ValueError(f"dds.multicast must be true or false, got {kw['multicast']!r}")
    if "interface" in kw and not isinstance(kw["interface"], str):
        raise ValueError(f"dds.interface must be a name such as lo or eth0, got {kw['interface']!r}")
    return NetworkConfig(**kw)


@dataclass(frozen=True)
class RobotConfig:
    """How to reach one ros2_control robot, and the loop's rates (every field: unit and reason).

    :param arm: the arm model the brain computes kinematics and dynamics with (``panda``,
        ``servo_arm``); the deploy command checks the name and that the task runs on that arm.
    :param joints: the joints in the order of the effort controller's ``joints`` parameter (the
        order of the command array); ``/joint_states`` may list them in any order and with extra
        joints (a gripper), which are ignored.
    :param interface: ``effort`` (the brain's impedance controller computes torques and streams
        them to a ``JointGroupEffortController``) or ``impedance`` (the brain streams the
        reflex-filtered setpoint to an impedance controller running on the robot).
    :param effort_controller: name of the effort controller: commands go to
        ``/<effort_controller>/commands``.
    :param joint_states_topic: the robot's joint states (``joint_state_broadcaster``).
    :param wrench_topic: a ``geometry_msgs/WrenchStamped`` of the tool's force/torque sensor, in
        the base frame; empty: no force sensing (contact force reads 0).
    :param pose_topic: impedance interface: equilibrium pose (``geometry_msgs/PoseStamped``).
    :param stiffness_topic: impedance interface: 6 stiffnesses (``std_msgs/Float64MultiArray``,
        N/m x3, N m/rad x3).
    :param damping_topic: impedance interface: 6 dampings ``2 zeta sqrt(K)`` (unit-mass
        convention, as franka_ros's examples), ``std_msgs/Float64MultiArray``.
    :param status_topic: status of the brain (``std_msgs/String``, JSON), at ``status_hz``.
    :param events_topic: one reflex or fault event per message (``std_msgs/String``, JSON).
    :param frame_id: frame of the poses the brain sends (the robot's base).
    :param command_stamp_topic: latency diagnostics: after each command (not holds) a
        ``std_msgs/Header`` stamped with the joint state the command answers; empty: off.

    Numbers (rates, timeouts, hold gains) are declared with their units and ranges below and
    listed with ``robot-brain deploy --help``'s pointer to ``docs/deploy_ros2.md``.
    """

    arm: str = field(default="panda", metadata={"doc": "arm model: panda or servo_arm"})
    joints: tuple[str, ...] = field(default=tuple(f"joint{i}" for i in range(1, 8)),
                                    metadata={"doc": "joint names in the controller's order"})
    interface: str = field(default="effort", metadata={"doc": "effort or impedance"})
    effort_controller: str = field(default="effort_controller",
                                   metadata={"doc": "commands go to /<effort_controller>/commands"})
    joint_states_topic: str = field(default="/joint_states", metadata={"doc": "sensor_msgs/JointState"})
    wrench_topic: str = field(default="", metadata={"doc": "geometry_msgs/WrenchStamped; empty: none"})
    pose_topic: str = field(default="/cartesian_impedance_controller/equilibrium_pose",
                            metadata={"doc": "impedance interface: equilibrium pose"})
    stiffness_topic: str = field(default="/cartesian_impedance_controller/stiffness",
                                 metadata={"doc": "impedance interface: 6 stiffnesses"})
    damping_topic: str = field(default="/cartesian_impedance_controller/damping",
                               metadata={"doc": "impedance interface: 6 dampings 2 zeta sqrt(K)"})
    status_topic: str = field(default="/robot_brain/status", metadata={"doc": "std_msgs/String JSON"})
    events_topic: str = field(default="/robot_brain/events", metadata={"doc": "std_msgs/String JSON"})
    frame_id: str = field(default="base", metadata={"doc": "frame of the poses sent"})
    command_stamp_topic: str = field(default="", metadata={
        "doc": "latency diagnostics: after each command, a std_msgs/Header stamped with the joint "
               "state it answers (empty: off; robot-brain bench --ros2 uses it)"})
    control_hz: float = param(1000.0, "fast-tick rate of the loop (and of sim-robot's physics)",
                              low=50.0, high=1000.0, unit="Hz")
    policy_hz: float = param(20.0, "slow-tick rate of the policy", low=1.0, high=100.0, unit="Hz")
    state_hz: float = param(1000.0, "sim-robot: rate it publishes /joint_states at", low=10.0,
                            high=1000.0, unit="Hz")
    status_hz: float = param(10.0, "rate of the status topic", low=0.1, high=100.0, unit="Hz")
    state_timeout: float = param(0.05, "deploy holds when no fresh joint state came for this long",
                                 low=0.0, high=1.0, unit="s", low_open=True)
    command_timeout: float = param(0.05, "sim-robot holds when no command came for this long "
                                   "(its watchdog)", low=0.0, high=1.0, unit="s", low_open=True)
    hold_stream: float = param(0.2, "how long deploy streams its hold command while the robot "
                               "sends no state; then it sends nothing until a fresh state comes (a "
                               "restarted robot never gets a command computed for the old one)",
                               low=0.0, high=10.0, unit="s")
    realtime_priority: int = param(0, "SCHED_FIFO priority of deploy's and sim-robot's loop and "
                                   "of their DDS threads (1-99, ros2_control runs at 50; 0: normal "
                                   "scheduling); refused (no permission) it warns and runs on",
                                   kind="int", low=0, high=99)
    busy_wait: bool = param(False, "poll for the next joint state instead of sleeping until it "
                            "comes (one busy core; lower and steadier latency)", kind="bool")
    command_deadline: float | None = param(
        None, "a command not out within this time of its state's arrival is withheld (stale); "
        "empty: one control period", low=0.0, high=1.0, unit="s", low_open=True, optional=True)
    connect_timeout: float = param(5.0, "how long deploy waits for the first plausible state",
                                   low=0.0, high=120.0, unit="s", low_open=True)
    max_state_age: float = param(0.0, "reject a state stamped longer ago than this on our clock "
                                 "(0: off, for robots whose clock is not synchronised)",
                                 low=0.0, high=10.0, unit="s")
    max_joint_speed: float = param(10.0, "a joint state faster than this is implausible and "
                                   "rejected", low=0.0, high=100.0, unit="rad/s", low_open=True)
    hold_damping: float = param(20.0, "joint damping of the hold (effort interface)", low=0.0,
                                high=200.0, unit="N m s/rad")
    hold_stiffness: float = param(1500.0, "translational stiffness of the hold (impedance "
                                  "interface)", low=0.0, high=5000.0, unit="N/m")
    hold_rot_stiffness: float = param(60.0, "rotational stiffness of the hold (impedance "
                                      "interface)", low=0.0, high=300.0, unit="N m/rad")
    dds: NetworkConfig = field(default_factory=NetworkConfig,
                               metadata={"doc": "domain_id, interface, peers, multicast"})

    def __post_init__(self) -> None:
        validate(self, {"joints": lambda v: _names(v, "joints"), "dds": _network})
        if not isinstance(self.arm, str) or not self.arm:
            raise ValueError(f"arm must be the name of an arm model such as panda, got {self.arm!r}")
        if self.interface not in INTERFACES:
            raise ValueError(f"interface must be one of {', '.join(INTERFACES)}, got {self.interface!r}")
        for name in ("joint_states_topic", "pose_topic", "stiffness_topic", "damping_topic",
                     "status_topic", "events_topic"):
            object.__setattr__(self, name, check_topic(getattr(self, name), name))
        for name in ("wrench_topic", "command_stamp_topic"):  # optional topics
            if getattr(self, name):
                object.__setattr__(self, name, check_topic(getattr(self, name), name))
        check_topic(self.effort_controller, "effort_controller")
        if not isinstance(self.frame_id, str):
            raise ValueError(f"frame_id must be a string, got {self.frame_id!r}")
        ratio = self.control_hz / self.policy_hz
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(f"control_hz/policy_hz must be a whole number, got "
                             f"{self.control_hz:g}/{self.policy_hz:g}")

    @property
    def command_topic(self) -> str:
        """``/<effort_controller>/commands``."""
        return check_topic(self.effort_controller) + "/commands"

    @property
    def n_joints(self) -> int:
        return len(self.joints)

    def with_options(self, **options: Any) -> RobotConfig:
        """A copy with ``options`` changed (checked like the file's keys)."""
        return replace_checked(self, options, "the robot config")


def read_parameters(path: str | Path) -> dict[str, Any]:
    """The ``ros__parameters`` of the node ``robot_brain`` (or ``/**``) in a parameter file.

    :raises ValueError: one line naming the file and what is wrong with it.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"robot config {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"robot config {p} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"robot config {p} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, Mapping):
        raise ValueError(f"robot config {p} must hold '<node>: ros__parameters: {{...}}', got "
                         f"{type(doc).__name__}")
    block = next((doc[k] for k in NODE_KEYS if k in doc), None)
    if not isinstance(block, Mapping) or not isinstance(block.get("ros__parameters"), Mapping):
        raise ValueError(f"robot config {p} has no 'robot_brain: ros__parameters:' block "
                         f"(top-level keys: {', '.join(map(str, doc)) or 'none'})")
    return dict(block["ros__parameters"])


def load_robot_config(path: str | Path, **overrides: Any) -> RobotConfig:
    """Read and validate a robot config (a ROS 2 parameter file; see module docstring).

    Sections of other parts (:data:`SECTIONS`: the deploy command's ``envelope``) are skipped
    here; their owners validate them.

    :raises ValueError: one line naming the file and the bad key or value.
    """
    params = read_parameters(path)
    for key in SECTIONS:
        params.pop(key, None)
    try:
        return RobotConfig().with_options(**{**params, **overrides})
    except (TypeError, ValueError) as e:
        raise ValueError(f"robot config {path}: {e}") from None
