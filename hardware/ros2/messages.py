"""ROS 2 messages as Cyclone DDS IDL structs: the exact wire layout of the ROS 2 types we use.

Each class is a plain final struct named as ROS 2 names it on DDS (``<pkg>::msg::dds_::<Type>_``),
so :meth:`serialize` produces the XCDR1 little-endian bytes (with the ``00 01 00 00``
encapsulation header) that rclpy, ros2_control and ``ros2 bag`` exchange. ``tests/test_ros2_wire.py``
checks every type byte for byte against ``rosbags``, an independent implementation of ROS 2 CDR.

:data:`ROS_TYPES` maps the ROS type name (``sensor_msgs/msg/JointState``) to its class; bags and
the rclpy transport use it to move between the two namings.
"""

# No `from __future__ import annotations`: cyclonedds reads the field types at run time.
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cyclonedds.idl import IdlStruct
from cyclonedds.idl import types as t

if TYPE_CHECKING:  # what the IDL sequences hold, for the type checker
    Float64Seq = list[float]
    StringSeq = list[str]
else:  # the IDL markers cyclonedds builds the wire layout from
    Float64Seq = t.sequence[t.float64]
    StringSeq = t.sequence[str]

__all__ = [
    "ROS_TYPES", "Float64MultiArray", "Header", "JointState", "MultiArrayDimension",
    "MultiArrayLayout", "Point", "Pose", "PoseStamped", "Quaternion", "String", "Time", "Twist",
    "TwistStamped", "Vector3", "Wrench", "WrenchStamped", "ros_type_of", "stamp_to_sec", "time_from_sec",
]


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: t.int32 = 0
    nanosec: t.uint32 = 0


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class String(IdlStruct, typename="std_msgs::msg::dds_::String_"):
    data: str = ""


@dataclass
class MultiArrayDimension(IdlStruct, typename="std_msgs::msg::dds_::MultiArrayDimension_"):
    label: str = ""
    size: t.uint32 = 0
    stride: t.uint32 = 0


if TYPE_CHECKING:
    DimensionSeq = list[MultiArrayDimension]
else:
    DimensionSeq = t.sequence[MultiArrayDimension]


@dataclass
class MultiArrayLayout(IdlStruct, typename="std_msgs::msg::dds_::MultiArrayLayout_"):
    dim: DimensionSeq = field(default_factory=list)
    data_offset: t.uint32 = 0


@dataclass
class Float64MultiArray(IdlStruct, typename="std_msgs::msg::dds_::Float64MultiArray_"):
    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: Float64Seq = field(default_factory=list)


@dataclass
class JointState(IdlStruct, typename="sensor_msgs::msg::dds_::JointState_"):
    header: Header = field(default_factory=Header)
    name: StringSeq = field(default_factory=list)
    position: Float64Seq = field(default_factory=list)
    velocity: Float64Seq = field(default_factory=list)
    effort: Float64Seq = field(default_factory=list)


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0
    w: t.float64 = 1.0


@dataclass
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
class PoseStamped(IdlStruct, typename="geometry_msgs::msg::dds_::PoseStamped_"):
    header: Header = field(default_factory=Header)
    pose: Pose = field(default_factory=Pose)


@dataclass
class Wrench(IdlStruct, typename="geometry_msgs::msg::dds_::Wrench_"):
    force: Vector3 = field(default_factory=Vector3)
    torque: Vector3 = field(default_factory=Vector3)


@dataclass
class WrenchStamped(IdlStruct, typename="geometry_msgs::msg::dds_::WrenchStamped_"):
    header: Header = field(default_factory=Header)
    wrench: Wrench = field(default_factory=Wrench)


@dataclass
class Twist(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)


@dataclass
class TwistStamped(IdlStruct, typename="geometry_msgs::msg::dds_::TwistStamped_"):
    header: Header = field(default_factory=Header)
    twist: Twist = field(default_factory=Twist)


def _ros_name(cls: type) -> str:
    pkg, _msg, _dds, name = cls.__idl_typename__.split("::")  # type: ignore[attr-defined]
    return f"{pkg}/msg/{name.rstrip('_')}"


#: ROS 2 type name -> IDL class, for every message this package sends, receives or records.
ROS_TYPES: dict[str, type[IdlStruct]] = {
    _ros_name(c): c for c in (Time, Header, String, MultiArrayDimension, MultiArrayLayout,
                              Float64MultiArray, JointState, Vector3, Point, Quaternion, Pose,
                              PoseStamped, Wrench, WrenchStamped, Twist, TwistStamped)
}


def ros_type_of(cls: type) -> str:
    """The ROS 2 name of an IDL message class (``JointState`` -> ``sensor_msgs/msg/JointState``)."""
    return _ros_name(cls)


def time_from_sec(t_sec: float) -> Time:
    """A ``builtin_interfaces/Time`` for ``t_sec`` seconds (nanoseconds rounded, carried over)."""
    whole = math.floor(t_sec)
    ns = round((t_sec - whole) * 1e9)  # the fraction is exact; `t_sec * 1e9` is not near 1.7e9 s
    return Time(sec=whole + ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def stamp_to_sec(stamp: Time) -> float:
    """Seconds of a ``builtin_interfaces/Time``."""
    return stamp.sec + stamp.nanosec * 1e-9
