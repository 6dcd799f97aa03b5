"""The rclpy transport: conversions between our IDL structs and rclpy message classes, its
subscription queue, and (on a machine with ROS 2) real traffic with the DDS transport.

rclpy is not on PyPI, so most machines that run this suite cannot import it. The conversion
helpers are pure functions of the classes they are given, so they are tested here against
stand-ins built like the classes ``rosidl_generator_py`` generates: ``__slots__``, a
``get_fields_and_field_types()`` map in ROS's own spelling, defaults of the right kind, and
property setters that refuse what rclpy's refuse (a float in an int field, a numpy array or a
wrong class in a message field); sequences of doubles are stored as ``array.array('d')``, as
rclpy stores them. The stand-ins are installed as the modules ``sensor_msgs.msg`` etc., so the
importlib lookup of :func:`ros_message_class` is exercised too.
"""

from __future__ import annotations

import array
import functools
import math
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from robot_brain.hardware.ros2 import rclpy_transport
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
)
from robot_brain.hardware.ros2.rclpy_transport import from_ros, ros_message_class, to_ros
from robot_brain.hardware.ros2.transport import NetworkConfig

# --- stand-ins for rclpy's generated message classes ---------------------------------------------

# get_fields_and_field_types() of the real classes (ROS 2 Humble), the stand-ins' only input.
SPECS: dict[str, dict[str, str]] = {
    "builtin_interfaces/msg/Time": {"sec": "int32", "nanosec": "uint32"},
    "std_msgs/msg/Header": {"stamp": "builtin_interfaces/Time", "frame_id": "string"},
    "std_msgs/msg/String": {"data": "string"},
    "std_msgs/msg/MultiArrayDimension": {"label": "string", "size": "uint32", "stride": "uint32"},
    "std_msgs/msg/MultiArrayLayout": {"dim": "sequence<std_msgs/MultiArrayDimension>",
                                      "data_offset": "uint32"},
    "std_msgs/msg/Float64MultiArray": {"layout": "std_msgs/MultiArrayLayout", "data": "sequence<double>"},
    "sensor_msgs/msg/JointState": {"header": "std_msgs/Header", "name": "sequence<string>",
                                   "position": "sequence<double>", "velocity": "sequence<double>",
                                   "effort": "sequence<double>"},
    "geometry_msgs/msg/Vector3": {"x": "double", "y": "double", "z": "double"},
    "geometry_msgs/msg/Point": {"x": "double", "y": "double", "z": "double"},
    "geometry_msgs/msg/Quaternion": {"x": "double", "y": "double", "z": "double", "w": "double"},
    "geometry_msgs/msg/Pose": {"position": "geometry_msgs/Point", "orientation": "geometry_msgs/Quaternion"},
    "geometry_msgs/msg/PoseStamped": {"header": "std_msgs/Header", "pose": "geometry_msgs/Pose"},
    "geometry_msgs/msg/Wrench": {"force": "geometry_msgs/Vector3", "torque": "geometry_msgs/Vector3"},
    "geometry_msgs/msg/WrenchStamped": {"header": "std_msgs/Header", "wrench": "geometry_msgs/Wrench"},
    "geometry_msgs/msg/Twist": {"linear": "geometry_msgs/Vector3", "angular": "geometry_msgs/Vector3"},
    "geometry_msgs/msg/TwistStamped": {"header": "std_msgs/Header", "twist": "geometry_msgs/Twist"},
}
INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1)}


class FakeRosMessage:
    """Base of the stand-ins: the checks rclpy's generated setters make, table-driven."""

    __slots__: tuple[str, ...] = ()
    _fields_and_field_types: ClassVar[dict[str, str]] = {}
    registry: ClassVar[dict[str, type[FakeRosMessage]]] = {}  # "std_msgs/Header" -> class

    @classmethod
    def get_fields_and_field_types(cls) -> dict[str, str]:
        return dict(cls._fields_and_field_types)

    def __init__(self) -> None:
        for name, kind in self._fields_and_field_types.items():
            object.__setattr__(self, "_" + name, self._default(kind))

    @classmethod
    def _default(cls, kind: str) -> Any:
        if kind == "sequence<double>":
            return array.array("d")
        if kind.startswith("sequence<"):
            return []
        if kind in INT_RANGE:
            return 0
        if kind == "double":
            return 0.0
        if kind == "string":
            return ""
        return cls.registry[kind]()

    def __getattr__(self, name: str) -> Any:
        if name in type(self)._fields_and_field_types:
            return object.__getattribute__(self, "_" + name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        kind = type(self)._fields_and_field_types.get(name)
        if kind is None:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        object.__setattr__(self, "_" + name, self._checked(name, kind, value))

    def _checked(self, name: str, kind: str, value: Any) -> Any:
        if kind.startswith("sequence<"):
            elem = kind[len("sequence<"):-1]
            if elem == "double" and isinstance(value, array.array):
                assert value.typecode == "d", f"{name}: array typecode must be 'd'"
                return value
            assert isinstance(value, Sequence) and not isinstance(value, str), \
                f"{name}: must be a sequence, got {type(value).__name__}"  # numpy arrays are not
            items = [self._checked(name, elem, v) for v in value]
            return array.array("d", items) if elem == "double" else items
        if kind in INT_RANGE:
            lo, hi = INT_RANGE[kind]
            assert isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi, \
                f"{name}: must be an {kind}, got {value!r}"
        elif kind == "double":
            assert isinstance(value, float), f"{name}: must be a float, got {type(value).__name__}"
        elif kind == "string":
            assert isinstance(value, str), f"{name}: must be a str"
        else:
            assert isinstance(value, self.registry[kind]), f"{name}: must be a {kind}"
        return value


def _make_fake_modules() -> dict[str, types.ModuleType]:
    modules: dict[str, types.ModuleType] = {}
    for ros_name, fields in SPECS.items():
        pkg, _msg, name = ros_name.split("/")
        cls = type(name, (FakeRosMessage,), {"__slots__": tuple("_" + f for f in fields),
                                             "_fields_and_field_types": fields})
        FakeRosMessage.registry[f"{pkg}/{name}"] = cls
        modules.setdefault(pkg, types.ModuleType(pkg))
        module = modules.setdefault(f"{pkg}.msg", types.ModuleType(f"{pkg}.msg"))
        setattr(module, name, cls)
    return modules


FAKE_MODULES = _make_fake_modules()


@pytest.fixture
def fake_ros(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, types.ModuleType]]:
    """The stand-ins installed as ``sensor_msgs.msg`` etc. for one test."""
    for name, module in FAKE_MODULES.items():
        monkeypatch.setitem(sys.modules, name, module)
    yield FAKE_MODULES


def fake_class(ros_name: str) -> type:
    pkg, _msg, name = ros_name.split("/")
    return FakeRosMessage.registry[f"{pkg}/{name}"]


# --- conversions -------------------------------------------------------------------------------

def test_stand_ins_cover_every_message_and_its_fields() -> None:
    assert set(SPECS) == set(ROS_TYPES)
    for ros_name, cls in ROS_TYPES.items():
        assert list(SPECS[ros_name]) == list(cls.__dataclass_fields__), ros_name


def test_stand_ins_refuse_what_rclpy_refuses() -> None:
    """Otherwise the conversion tests below would prove little."""
    js = fake_class("sensor_msgs/msg/JointState")()
    for field, bad in [("position", np.array([1.0])), ("position", [1]), ("name", "ab"),
                       ("header", fake_class("builtin_interfaces/msg/Time")())]:
        with pytest.raises(AssertionError):
            setattr(js, field, bad)
    stamp = fake_class("builtin_interfaces/msg/Time")()
    for field, bad in [("sec", 1.0), ("sec", 2**31), ("nanosec", -1), ("sec", np.int32(1))]:
        with pytest.raises(AssertionError):
            setattr(stamp, field, bad)
    with pytest.raises(AttributeError):
        js.positions = [1.0]


def test_ros_message_class_resolves_by_ros_type_name(fake_ros: dict[str, Any]) -> None:
    for ros_name, cls in ROS_TYPES.items():
        assert ros_message_class(cls) is fake_class(ros_name)


def test_ros_message_class_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sensor_msgs.msg", None)  # "import sensor_msgs.msg" fails
    with pytest.raises(ImportError, match="sensor_msgs/msg/JointState does not import") as err:
        ros_message_class(JointState)
    assert "\n" not in str(err.value) and "source a ROS 2 install" in str(err.value)


def test_joint_state_round_trip(fake_ros: dict[str, Any]) -> None:
    msg = JointState(header=Header(stamp=Time(sec=-3, nanosec=999_999_999), frame_id="关节"),
                     name=["ü2", "关节", "j3"], position=[0.1, -0.0, math.inf], velocity=[],
                     effort=[1e-300, 2.0, -3.5])
    ros = to_ros(msg, ros_message_class(JointState))
    assert type(ros) is fake_class("sensor_msgs/msg/JointState")
    assert type(ros.header) is fake_class("std_msgs/msg/Header")
    assert (ros.header.stamp.sec, ros.header.stamp.nanosec, ros.header.frame_id) == (-3, 999_999_999, "关节")
    assert ros.name == ["ü2", "关节", "j3"]
    assert ros.position == array.array("d", [0.1, -0.0, math.inf]) and ros.velocity == array.array("d")
    back = from_ros(ros, JointState)
    assert back == msg
    assert type(back.position) is list and type(back.position[0]) is float
    assert math.copysign(1.0, back.position[1]) == -1.0


def test_pose_stamped_round_trip(fake_ros: dict[str, Any]) -> None:
    msg = PoseStamped(Header(Time(1_700_000_000, 5), "world"),
                      Pose(Point(0.5, -0.25, 1.0), Quaternion(0.0, 1.0, 0.0, 0.0)))
    ros = to_ros(msg, ros_message_class(PoseStamped))
    assert type(ros.pose.orientation) is fake_class("geometry_msgs/msg/Quaternion")
    assert (ros.pose.position.x, ros.pose.orientation.y) == (0.5, 1.0)
    assert from_ros(ros, PoseStamped) == msg


def test_float64_multi_array_round_trip_with_nested_layout(fake_ros: dict[str, Any]) -> None:
    msg = Float64MultiArray(
        layout=MultiArrayLayout(dim=[MultiArrayDimension("rows", 2, 6), MultiArrayDimension("ü", 3, 3)],
                                data_offset=2**32 - 1),
        data=[float(i) / 3 for i in range(6)])
    ros = to_ros(msg, ros_message_class(Float64MultiArray))
    assert [type(d) for d in ros.layout.dim] == [fake_class("std_msgs/msg/MultiArrayDimension")] * 2
    assert [(d.label, d.size, d.stride) for d in ros.layout.dim] == [("rows", 2, 6), ("ü", 3, 3)]
    assert ros.layout.data_offset == 2**32 - 1
    back = from_ros(ros, Float64MultiArray)
    assert back == msg
    assert all(type(d) is MultiArrayDimension for d in back.layout.dim)


@pytest.mark.parametrize("msg", [
    Time(5, 6), Header(Time(1, 2), "f"), String("ü2"), MultiArrayDimension("x", 1, 2),
    MultiArrayLayout([MultiArrayDimension()], 3), Float64MultiArray(), JointState(),
    Vector3(1.0, 2.0, 3.0), Point(-1.0, 0.0, 1.0), Quaternion(0.5, 0.5, 0.5, 0.5), Pose(),
    PoseStamped(), Wrench(Vector3(1.0, 0.0, 0.0), Vector3(0.0, 0.0, -1.0)),
    WrenchStamped(Header(Time(0, 1), "tool0"), Wrench(Vector3(math.nan, 0.0, 0.0))),
    Twist(Vector3(0.1, 0.0, -0.2), Vector3(0.0, 0.0, 1.0)),
    TwistStamped(Header(Time(3, 4), "base_link"), Twist(Vector3(0.05, math.nan, 0.0))),
], ids=lambda m: type(m).__name__)
def test_every_message_round_trips(fake_ros: dict[str, Any], msg: Any) -> None:
    ros = to_ros(msg, ros_message_class(type(msg)))
    back = from_ros(ros, type(msg))
    assert type(back) is type(msg)
    assert back.serialize() == msg.serialize()  # bytes: NaN compares equal to itself here


def test_numpy_content_is_handed_to_rclpy_as_python_scalars(fake_ros: dict[str, Any]) -> None:
    msg = JointState(name=["a", "b"], position=np.array([0.5, -1.5]),
                     velocity=[np.float64(2.0), np.float32(0.25)], effort=np.zeros(2))
    ros = to_ros(msg, ros_message_class(JointState))  # the stand-in refuses numpy arrays
    assert ros.position == array.array("d", [0.5, -1.5]) and ros.velocity == array.array("d", [2.0, 0.25])
    v = to_ros(Vector3(np.float64(1.0), np.float32(2.0), 3.0), ros_message_class(Vector3))
    assert (type(v.x), v.y) == (float, 2.0)
    t = to_ros(Time(sec=np.int32(4), nanosec=np.uint32(5)), ros_message_class(Time))
    assert (type(t.sec), t.sec, type(t.nanosec), t.nanosec) == (int, 4, int, 5)


def test_rclpy_side_arrays_and_numpy_come_back_as_lists(fake_ros: dict[str, Any]) -> None:
    ros = fake_class("sensor_msgs/msg/JointState")()
    ros.name = ["x"]
    ros.position = array.array("d", [1.0])
    object.__setattr__(ros, "_velocity", np.array([2.0, 3.0]))  # some rclpy versions hand numpy
    back = from_ros(ros, JointState)
    assert back == JointState(name=["x"], position=[1.0], velocity=[2.0, 3.0], effort=[])
    assert all(type(v) is float for v in back.velocity)


def test_an_int_field_refuses_a_float_instead_of_truncating(fake_ros: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        to_ros(Time(sec=1.5, nanosec=0), ros_message_class(Time))
    with pytest.raises(TypeError):
        to_ros(String(data=5), ros_message_class(String))


def test_to_ros_uses_the_given_resolver_for_nested_messages() -> None:
    """No modules installed: the resolver alone decides the nested classes."""
    seen: list[type] = []

    def resolve(idl_cls: type) -> type:
        seen.append(idl_cls)
        return fake_class(next(k for k, v in ROS_TYPES.items() if v is idl_cls))

    msg = WrenchStamped(Header(Time(1, 2), "tool0"), Wrench(Vector3(1.0, 2.0, 3.0), Vector3()))
    ros = to_ros(msg, fake_class("geometry_msgs/msg/WrenchStamped"), resolve)
    assert seen == [Header, Time, Wrench, Vector3, Vector3]
    assert from_ros(ros, WrenchStamped) == msg


# --- the subscription queue and the publisher (no rclpy needed) ---------------------------------

def test_subscription_queue_takes_in_order_and_waits(fake_ros: dict[str, Any]) -> None:
    sub = rclpy_transport._RclpySubscription(String, maxlen=50)
    ros_string = fake_class("std_msgs/msg/String")
    assert sub.wait(0.0) is False and sub.take() == []
    t0 = time.monotonic()
    assert sub.wait(0.05) is False
    assert time.monotonic() - t0 >= 0.04

    def deliver() -> None:  # what the executor thread does
        for i in range(3):
            m = ros_string()
            m.data = f"m{i}"
            sub.on_message(m)

    threading.Timer(0.05, deliver).start()
    assert sub.wait(5.0) is True
    time.sleep(0.05)
    assert sub.wait(0.0) is True  # wait() does not consume
    assert sub.take() == [String("m0"), String("m1"), String("m2")]
    assert sub.take() == [] and sub.wait(0.0) is False


def test_subscription_queue_is_bounded_keeping_the_newest(fake_ros: dict[str, Any]) -> None:
    sub = rclpy_transport._RclpySubscription(String, maxlen=4)
    ros_string = fake_class("std_msgs/msg/String")
    for i in range(10):
        m = ros_string()
        m.data = str(i)
        sub.on_message(m)
    assert [m.data for m in sub.take()] == ["6", "7", "8", "9"]
    assert sub.dropped == 6


def test_publisher_converts_and_refuses_another_type(fake_ros: dict[str, Any]) -> None:
    sent: list[Any] = []
    pub = rclpy_transport._RclpyPublisher(types.SimpleNamespace(publish=sent.append), JointState,
                                          ros_message_class(JointState))
    pub.publish(JointState(name=["a"], position=[1.0]))
    assert type(sent[0]) is fake_class("sensor_msgs/msg/JointState") and sent[0].name == ["a"]
    with pytest.raises(TypeError, match="sends JointState, got String"):
        pub.publish(String("x"))


def test_module_imports_without_importing_rclpy() -> None:
    code = ("import sys; import robot_brain.hardware.ros2.rclpy_transport; "
            "assert 'rclpy' not in sys.modules, 'rclpy imported at module import'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- RclpyTransport's wiring, against a stand-in rclpy ----------------------------------------------

class _StubContext:
    def __init__(self) -> None:
        self.ok = False


class _StubRclpy:
    """Just enough of rclpy's API (Humble) for RclpyTransport: contexts, nodes, an executor that
    runs subscription callbacks on its own thread, QoS profiles; the calls are recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.topics: dict[str, list[tuple[_StubNode, Any]]] = {}  # topic -> (node, callback)
        self.spin_thread: threading.Thread | None = None
        modules = {name: types.ModuleType(name) for name in ("rclpy", "rclpy.context",
                                                              "rclpy.executors", "rclpy.qos")}
        vars(modules["rclpy"]).update(init=self.init, create_node=self.create_node,
                                      try_shutdown=self.try_shutdown)
        vars(modules["rclpy.context"]).update(Context=_StubContext)
        vars(modules["rclpy.executors"]).update(SingleThreadedExecutor=functools.partial(_StubExecutor, self))
        vars(modules["rclpy.qos"]).update(
            QoSProfile=lambda **kw: ",".join(f"{k}={v}" for k, v in sorted(kw.items())),
            HistoryPolicy=types.SimpleNamespace(KEEP_LAST="KEEP_LAST"),
            DurabilityPolicy=types.SimpleNamespace(VOLATILE="VOLATILE"),
            ReliabilityPolicy=types.SimpleNamespace(RELIABLE="RELIABLE", BEST_EFFORT="BEST_EFFORT"))
        self.modules = modules

    def init(self, *, context: _StubContext, domain_id: int) -> None:
        self.calls.append(f"init domain {domain_id}")
        context.ok = True

    def create_node(self, name: str, *, context: _StubContext) -> _StubNode:
        assert context.ok
        return _StubNode(self, name)

    def try_shutdown(self, *, context: _StubContext) -> None:
        self.calls.append("context.shutdown")
        context.ok = False


class _StubExecutor:
    def __init__(self, rclpy: _StubRclpy, *, context: _StubContext) -> None:
        self.rclpy, self.context = rclpy, context
        self.work: queue.Queue[tuple[Any, Any]] = queue.Queue()
        self.stopped = threading.Event()

    def add_node(self, node: _StubNode) -> None:
        node.executor = self

    def spin(self) -> None:
        self.rclpy.spin_thread = threading.current_thread()
        while self.context.ok and not self.stopped.is_set():
            try:
                callback, msg = self.work.get(timeout=0.01)
            except queue.Empty:
                continue
            callback(msg)

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        self.rclpy.calls.append("executor.shutdown")
        self.stopped.set()
        return True


class _StubNode:
    def __init__(self, rclpy: _StubRclpy, name: str) -> None:
        self.rclpy, self.name = rclpy, name
        self.executor: _StubExecutor | None = None

    def create_publisher(self, cls: type, topic: str, qos: str) -> Any:
        self.rclpy.calls.append(f"publisher {topic} {cls.__name__} {qos}")

        def publish(msg: Any) -> None:
            assert isinstance(msg, cls)
            for node, callback in self.rclpy.topics.get(topic, []):
                assert node.executor is not None
                node.executor.work.put((callback, msg))

        return types.SimpleNamespace(publish=publish)

    def create_subscription(self, cls: type, topic: str, callback: Any, qos: str) -> Any:
        self.rclpy.calls.append(f"subscription {topic} {cls.__name__} {qos}")
        self.rclpy.topics.setdefault(topic, []).append((self, callback))
        return object()

    def destroy_node(self) -> None:
        self.rclpy.calls.append("node.destroy")


def test_rclpy_transport_wiring_against_a_stand_in_rclpy(fake_ros: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from robot_brain.hardware.ros2.transport import COMMAND_QOS, STATE_QOS

    stub = _StubRclpy()
    for name, module in stub.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    tr = rclpy_transport.RclpyTransport("robot_brain_test", domain_id=42)
    try:
        assert tr.name == "rclpy"
        sub = tr.subscription("joint_states", JointState, STATE_QOS)
        pub = tr.publisher("/joint_states", JointState, COMMAND_QOS)
        assert stub.calls == [
            "init domain 42",
            "subscription /joint_states JointState "
            "depth=5,durability=VOLATILE,history=KEEP_LAST,reliability=BEST_EFFORT",
            "publisher /joint_states JointState "
            "depth=10,durability=VOLATILE,history=KEEP_LAST,reliability=RELIABLE",
        ]
        assert sub.wait(0.0) is False
        msgs = [JointState(name=["ü2"], position=[float(i)]) for i in range(3)]
        for m in msgs:
            pub.publish(m)
        assert sub.wait(5.0) is True
        end = time.monotonic() + 5.0
        got: list[Any] = []
        while len(got) < 3 and time.monotonic() < end:
            if sub.wait(0.05):
                got += sub.take()
        assert got == msgs  # converted on the executor thread, in order
        assert stub.spin_thread is not None and stub.spin_thread is not threading.current_thread()
        assert stub.spin_thread.daemon
        with pytest.raises(ValueError, match="not a valid ROS 2 topic name"):
            tr.publisher("bad name", JointState)
    finally:
        tr.close()
    tr.close()  # idempotent
    assert stub.calls[-3:] == ["executor.shutdown", "node.destroy", "context.shutdown"]
    assert stub.spin_thread is not None and not stub.spin_thread.is_alive()


# --- real rclpy (only where ROS 2 is installed) --------------------------------------------------

# Runs in its own process: rclpy's RMW may bring its own Cyclone DDS library, which must not meet
# the PyPI one of this process. Echoes the first JointState from /<ns>/in on /<ns>/out.
_RCLPY_ECHO = textwrap.dedent("""
    import sys, time
    from rclpy.qos import ReliabilityPolicy
    from robot_brain.hardware.ros2.messages import JointState
    from robot_brain.hardware.ros2.rclpy_transport import RclpyTransport, qos_profile
    from robot_brain.hardware.ros2.transport import COMMAND_QOS, STATE_QOS
    assert qos_profile(COMMAND_QOS).reliability == ReliabilityPolicy.RELIABLE
    assert qos_profile(STATE_QOS).reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos_profile(STATE_QOS).depth == STATE_QOS.depth
    tr = RclpyTransport("robot_brain_echo", domain_id=int(sys.argv[1]))
    sub = tr.subscription(f"/{sys.argv[3]}/in", JointState, STATE_QOS)
    pub = tr.publisher(f"/{sys.argv[3]}/out", JointState, COMMAND_QOS)
    end = time.monotonic() + float(sys.argv[2])
    got = []
    while not got and time.monotonic() < end:
        if sub.wait(0.05):
            got = sub.take()
    if not got:
        sys.exit(3)
    echo = got[0]
    echo.name = echo.name + ["echo"]
    while time.monotonic() < end:  # until the parent has it and ends this process
        pub.publish(echo)
        time.sleep(0.02)
    tr.close()
""")


def test_rclpy_transport_talks_to_the_dds_transport() -> None:
    pytest.importorskip("rclpy", reason="rclpy needs a ROS 2 install (not on PyPI); the DDS transport "
                                        "covers the wire here")
    from robot_brain.hardware.ros2.dds import DdsTransport
    from robot_brain.hardware.ros2.transport import COMMAND_QOS, STATE_QOS

    domain = 119  # this suite's range is 101..119 (tests/test_ros2_dds.py cycles through it)
    network = NetworkConfig.loopback(domain)
    ns = f"rb_rclpy_test_{os.getpid()}"  # concurrent runs of this suite share the domain, not topics
    env = dict(os.environ, CYCLONEDDS_URI=network.cyclone_xml() or "", ROS_LOCALHOST_ONLY="1",
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    child = subprocess.Popen([sys.executable, "-c", _RCLPY_ECHO, str(domain), "30", ns], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dds = DdsTransport(network)
    try:
        pub = dds.publisher(f"/{ns}/in", JointState, COMMAND_QOS)
        sub = dds.subscription(f"/{ns}/out", JointState, STATE_QOS)
        msg = JointState(header=Header(Time(7, 8), "关节"), name=["ü2"], position=[1.5], velocity=[-0.5],
                         effort=[])
        end = time.monotonic() + 25
        got: list[Any] = []
        while not got and time.monotonic() < end and child.poll() is None:
            pub.publish(msg)
            if sub.wait(0.05):
                got = sub.take()
        assert got, f"no echo from the rclpy node (exit {child.poll()})"
        assert got[0] == JointState(header=Header(Time(7, 8), "关节"), name=["ü2", "echo"], position=[1.5],
                                    velocity=[-0.5], effort=[])
    finally:
        dds.close()
        if child.poll() is None:
            child.kill()
        _out, err = child.communicate(timeout=30)
        if child.returncode not in (0, -9):
            pytest.fail(f"rclpy echo process failed ({child.returncode}): {err[-2000:]}")
