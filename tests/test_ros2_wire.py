"""Byte-exact wire tests of the ROS 2 messages (``robot_brain.hardware.ros2.messages``).

The oracle is ``rosbags``, an independent pure-Python implementation of ROS 2 CDR with the
message definitions of ROS 2 Humble: for every type in :data:`ROS_TYPES`, what our IDL struct
serialises must be exactly the bytes rosbags writes for the same content, each side must read
the other's bytes back to the same content, and the field layout must be the one rosbags knows.
Floats are compared bit for bit (NaN payloads, signed zeros), so "equal" below means "the same
message on the wire", not "numerically close".
"""

from __future__ import annotations

import dataclasses
import math
import re
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.base import Nodetype

from robot_brain.hardware.ros2.messages import (
    ROS_TYPES,
    Float64MultiArray,
    Header,
    JointState,
    MultiArrayDimension,
    MultiArrayLayout,
    Point,
    Pose,
    PoseStamped,
    Quaternion,
    String,
    Time,
    Twist,
    TwistStamped,
    Vector3,
    Wrench,
    WrenchStamped,
    ros_type_of,
    stamp_to_sec,
    time_from_sec,
)

TS = get_typestore(Stores.ROS2_HUMBLE)
CDR_LE_HEADER = b"\x00\x01\x00\x00"  # encapsulation: CDR (XCDR1), little endian, no options

INT32 = (-(2**31), 2**31 - 1)
UINT32 = (0, 2**32 - 1)
NAN_PAYLOAD = struct.unpack("<d", bytes.fromhex("01000000 0000f87f"))[0]
EXTREME = [math.nan, -math.nan, NAN_PAYLOAD, math.inf, -math.inf, -0.0, 0.0, 5e-324, -5e-324,
           2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308, 1e-300]
NAMES = ["ü2", "关节", "joint_1", "", "🤖 arm/elbow", "a" * 300, "tab\tand\nnewline"]


# --- oracle glue -------------------------------------------------------------------------------

def _fielddefs(ros_name: str) -> list[tuple[str, Any]]:
    return TS.fielddefs[ros_name][1]


def _to_rosbags_value(desc: Any, value: Any) -> Any:
    kind, detail = desc
    if kind == Nodetype.NAME:
        return to_rosbags(value, detail)
    if kind == Nodetype.SEQUENCE:
        (elem_kind, elem_detail), _bound = detail
        if elem_kind == Nodetype.BASE and elem_detail[0] != "string":
            return np.array(value, dtype=np.dtype(elem_detail[0]))  # rosbags: numpy for numbers
        return [_to_rosbags_value((elem_kind, elem_detail), v) for v in value]
    assert kind == Nodetype.BASE, f"field kind {kind} not used by these messages"
    return value


def to_rosbags(msg: Any, ros_name: str | None = None) -> Any:
    """The rosbags message with the content of our IDL struct ``msg``, built from rosbags' own
    field list (a field our class lacks fails here, one it has extra changes the bytes)."""
    ros_name = ros_name or ros_type_of(type(msg))
    kwargs = {name: _to_rosbags_value(desc, getattr(msg, name)) for name, desc in _fielddefs(ros_name)}
    return TS.types[ros_name](**kwargs)


def canon(obj: Any) -> Any:
    """A comparable form of a message from either side: floats as their 8 bytes."""
    if isinstance(obj, (float, np.floating)):
        return ("f64", struct.pack("<d", float(obj)))
    if isinstance(obj, np.ndarray):
        return [canon(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple)):
        return [canon(v) for v in obj]
    if dataclasses.is_dataclass(obj):
        return {f.name: canon(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.name.startswith("__")}
    assert isinstance(obj, (int, str)), type(obj)
    return obj


def rosbags_bytes(msg: Any) -> bytes:
    return bytes(TS.serialize_cdr(to_rosbags(msg), ros_type_of(type(msg))))


# --- cases ---------------------------------------------------------------------------------------

def _header(sec: int = 0, nanosec: int = 0, frame: str = "") -> Header:
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame)


def _cases() -> list[Any]:
    layout = MultiArrayLayout(dim=[MultiArrayDimension("rows", 2, 6), MultiArrayDimension("关节", 3, 3)],
                              data_offset=1)
    n = 500
    many = [f"joint_{i}" for i in range(n)]
    cases: list[Any] = [cls() for cls in ROS_TYPES.values()]  # every default, empty sequences
    cases += [
        Time(sec=INT32[0], nanosec=UINT32[1]), Time(sec=INT32[1], nanosec=0),
        Time(sec=-1, nanosec=999_999_999),
        _header(1_700_000_000, 123_456_789, "ü2"), _header(-5, 1, "关节"), _header(0, 0, "x" * 1000),
        String("hello"), String("ab"), String("é"), String("🤖"),  # 1-4 byte UTF-8, odd lengths
        MultiArrayDimension("", *UINT32), MultiArrayDimension("ü2", UINT32[1], UINT32[1]),
        layout, MultiArrayLayout(dim=[], data_offset=UINT32[1]),
        Float64MultiArray(layout=layout, data=[1.0, -2.5, 3.25, 4.0, 5.0, 6.0]),
        Float64MultiArray(layout=MultiArrayLayout(), data=EXTREME),
        Float64MultiArray(data=[float(i) / 7 for i in range(10_000)]),
        JointState(header=_header(3, 4, "base"), name=["ü2", "关节"], position=[0.1, -0.2],
                   velocity=[], effort=[math.inf, -0.0]),
        JointState(header=_header(frame="关节"), name=NAMES, position=EXTREME, velocity=[1.0], effort=[]),
        JointState(name=many, position=[i * 1e-3 for i in range(n)], velocity=[-i * 1.5 for i in range(n)],
                   effort=[math.nan] * n),
        JointState(name=["a", "bc", "def", "ghij", "klmno"]),  # every string padding 0..3
        Vector3(math.nan, math.inf, -math.inf), Point(-0.0, 5e-324, 1.7976931348623157e308),
        Quaternion(0.0, 0.0, 0.0, 1.0), Quaternion(NAN_PAYLOAD, -1.0, 0.5, -0.5),
        Pose(Point(1.0, 2.0, 3.0), Quaternion(0.5, 0.5, 0.5, 0.5)),
        PoseStamped(_header(-1, 5, "world/ü"), Pose(Point(0.3, -0.1, 0.5), Quaternion(1.0, 0.0, 0.0, 0.0))),
        Wrench(Vector3(1.0, 2.0, 3.0), Vector3(-4.0, -5.0, math.nan)),
        WrenchStamped(_header(7, 8, "tool0"), Wrench(Vector3(0.1, 0.2, 0.3), Vector3(math.inf, 0.0, 0.0))),
        Twist(Vector3(0.1, -0.2, 0.3), Vector3(-0.0, math.nan, -math.inf)),
        TwistStamped(_header(9, 10, "base_link"), Twist(Vector3(0.05, 0.0, -0.02), Vector3(0.0, 0.0, 1.5))),
    ]
    return cases


CASES = _cases()


def _id(msg: Any) -> str:
    return type(msg).__name__


def test_every_type_has_a_case_beyond_its_default() -> None:
    covered = {type(m) for m in CASES if m != type(m)()}
    assert set(ROS_TYPES.values()) <= covered


# --- names and layout ------------------------------------------------------------------------------

@pytest.mark.parametrize("ros_name", sorted(ROS_TYPES))
def test_dds_type_name_is_the_ros2_one(ros_name: str) -> None:
    cls = ROS_TYPES[ros_name]
    pkg, _msg, name = ros_name.split("/")
    assert cls.__idl_typename__ == f"{pkg}::msg::dds_::{name}_"
    assert re.fullmatch(r"[a-z_]+::msg::dds_::[A-Z][A-Za-z0-9]*_", cls.__idl_typename__)
    assert ros_type_of(cls) == ros_name


def test_ros_type_names_are_the_ones_rosbags_knows() -> None:
    assert set(ROS_TYPES) <= set(TS.types)
    assert len(set(ROS_TYPES.values())) == len(ROS_TYPES)


@pytest.mark.parametrize("ros_name", sorted(ROS_TYPES))
def test_field_names_and_order_match_rosbags(ros_name: str) -> None:
    ours = [f.name for f in dataclasses.fields(ROS_TYPES[ros_name])]
    assert ours == [name for name, _ in _fielddefs(ros_name)]


# --- bytes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("msg", CASES, ids=_id)
def test_serialize_equals_rosbags(msg: Any) -> None:
    ours = msg.serialize()
    assert ours[:4] == CDR_LE_HEADER
    assert ours == rosbags_bytes(msg)


@pytest.mark.parametrize("msg", CASES, ids=_id)
def test_deserialize_reads_rosbags_bytes(msg: Any) -> None:
    back = type(msg).deserialize(rosbags_bytes(msg))
    assert type(back) is type(msg)
    assert canon(back) == canon(msg)


@pytest.mark.parametrize("msg", CASES, ids=_id)
def test_rosbags_reads_our_bytes(msg: Any) -> None:
    back = TS.deserialize_cdr(msg.serialize(), ros_type_of(type(msg)))
    assert canon(back) == canon(msg)


def test_nan_payload_and_negative_zero_survive_bit_exact() -> None:
    msg = Vector3(NAN_PAYLOAD, -0.0, math.nan)
    back = Vector3.deserialize(rosbags_bytes(msg))
    assert struct.pack("<d", back.x) == struct.pack("<d", NAN_PAYLOAD)
    assert math.copysign(1.0, back.y) == -1.0
    assert math.isnan(back.z)


def test_out_of_range_integer_is_refused_not_wrapped() -> None:
    with pytest.raises(Exception):  # noqa: B017 - cyclonedds raises struct.error; any error will do
        Time(sec=2**31, nanosec=0).serialize()
    with pytest.raises(Exception):  # noqa: B017
        Time(sec=0, nanosec=-1).serialize()


# --- property test ---------------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
_BASE = {
    "int32": st.integers(*INT32),
    "uint32": st.integers(*UINT32),
    "float64": st.floats(allow_nan=True, allow_infinity=True, width=64),
    "string": _TEXT,
}


def _field_strategy(desc: Any) -> st.SearchStrategy[Any]:
    kind, detail = desc
    if kind == Nodetype.NAME:
        return message_strategy(detail)
    if kind == Nodetype.SEQUENCE:
        return st.lists(_field_strategy(detail[0]), max_size=6)
    assert kind == Nodetype.BASE and detail[0] in _BASE, f"no strategy for {desc}"
    return _BASE[detail[0]]


def message_strategy(ros_name: str) -> st.SearchStrategy[Any]:
    """Our IDL struct with any content rosbags' definition of ``ros_name`` allows."""
    fields = {name: _field_strategy(desc) for name, desc in _fielddefs(ros_name)}
    return st.builds(ROS_TYPES[ros_name], **fields)


@pytest.mark.parametrize("ros_name", sorted(ROS_TYPES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_content_round_trips_byte_exact(ros_name: str, data: st.DataObject) -> None:
    msg = data.draw(message_strategy(ros_name))
    ours = msg.serialize()
    theirs = rosbags_bytes(msg)
    assert ours == theirs
    assert canon(type(msg).deserialize(theirs)) == canon(msg)
    assert canon(TS.deserialize_cdr(ours, ros_name)) == canon(msg)


# --- time helpers ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "sec", "nanosec"), [
    (0.0, 0, 0),
    (1.5, 1, 500_000_000),
    (1.9999999999, 2, 0),  # rounds up to the next second: carried, never nanosec == 1e9
    (2.0000000004, 2, 0),
    (0.9999999996, 1, 0),
    (0.999999999, 0, 999_999_999),
    (-1.5, -2, 500_000_000),  # ROS convention: nanosec in [0, 1e9), sec floors
    (-0.0000000001, 0, 0),
    (-1e-9, -1, 999_999_999),
    (1_700_000_000.25, 1_700_000_000, 250_000_000),
])
def test_time_from_sec(seconds: float, sec: int, nanosec: int) -> None:
    stamp = time_from_sec(seconds)
    assert (stamp.sec, stamp.nanosec) == (sec, nanosec)
    assert isinstance(stamp.sec, int) and isinstance(stamp.nanosec, int)


@given(st.floats(min_value=-2.0**31, max_value=2.0**31 - 1, allow_nan=False))
def test_time_round_trip_within_float_resolution(seconds: float) -> None:
    stamp = time_from_sec(seconds)
    assert 0 <= stamp.nanosec < 1_000_000_000
    assert abs(stamp_to_sec(stamp) - seconds) <= max(0.6e-9, 4 * math.ulp(seconds))


@given(st.integers(-(2**20), 2**20), st.integers(0, 999_999_999))
def test_stamp_round_trip_exact_where_a_float_holds_nanoseconds(sec: int, nanosec: int) -> None:
    stamp = Time(sec=sec, nanosec=nanosec)
    assert time_from_sec(stamp_to_sec(stamp)) == stamp


def test_stamp_to_sec() -> None:
    assert stamp_to_sec(Time(sec=-2, nanosec=500_000_000)) == -1.5
    assert stamp_to_sec(Time(sec=3, nanosec=0)) == 3.0
    assert stamp_to_sec(time_from_sec(1.9999999999)) == 2.0
