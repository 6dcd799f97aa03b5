"""Real DDS traffic through :class:`DdsTransport`, on loopback only.

Every participant here uses ``NetworkConfig.loopback(domain)`` (interface ``lo``, multicast off,
unicast peer 127.0.0.1) with a domain id in 101..119, so nothing leaves this machine and other
suites running at the same time (other domain ranges) never see these topics. Each test takes
its own domain, and topics sit under a per-process namespace (two runs of this suite at once do
not mix). Waits poll with a deadline: discovery on loopback takes well under a second, and a
test only waits long when something is broken.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from robot_brain.hardware.ros2.dds import DdsTransport
from robot_brain.hardware.ros2.messages import Float64MultiArray, Header, JointState, String, Time
from robot_brain.hardware.ros2.transport import (
    COMMAND_QOS,
    STATE_QOS,
    NetworkConfig,
    Qos,
    check_topic,
    make_transport,
    rclpy_available,
)

DOMAINS = range(101, 120)  # this suite's share of DDS domain ids; keep every test inside it
# Topics live under a per-process namespace: two runs of this suite at once share the domains
# but never each other's messages.
NS = f"rb_test_{os.getpid()}"
DEADLINE = 10.0  # s; generous bound for discovery + delivery on a loaded machine
_next_domain = itertools.cycle(DOMAINS)


@pytest.fixture
def domain() -> int:
    """A domain id of this suite's range, a different one for each test (until it wraps)."""
    return next(_next_domain)


@pytest.fixture
def transports(domain: int) -> Iterator[Callable[[], DdsTransport]]:
    """A factory of loopback transports in ``domain``, all closed after the test."""
    made: list[DdsTransport] = []

    def make() -> DdsTransport:
        made.append(DdsTransport(NetworkConfig.loopback(domain)))
        return made[-1]

    yield make
    for tr in made:
        tr.close()


def publish_until_received(pub: Any, sub: Any, msg: Any, deadline: float = DEADLINE) -> list[Any]:
    """Publish ``msg`` until ``sub`` has data (discovery takes a moment), then take it all."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        pub.publish(msg)
        if sub.wait(0.05):
            return sub.take()
    raise AssertionError(f"nothing received within {deadline} s")


def wait_matched(pub: Any, sub: Any, probe: Any, deadline: float = DEADLINE) -> None:
    """Wait until reader and writer have discovered each other, then drain the probes."""
    publish_until_received(pub, sub, probe, deadline)
    time.sleep(0.05)  # a probe still in flight lands now, not in the test's own take()
    sub.take()


def take_until(sub: Any, n: int, deadline: float = DEADLINE) -> list[Any]:
    """Take from ``sub`` until ``n`` messages have arrived (or the deadline passes)."""
    got: list[Any] = []
    end = time.monotonic() + deadline
    while len(got) < n and time.monotonic() < end:
        if sub.wait(0.05):
            got += sub.take()
    return got


# --- traffic -------------------------------------------------------------------------------------

def test_joint_state_crosses_between_two_participants(transports: Callable[[], DdsTransport]) -> None:
    a, b = transports(), transports()
    sub = b.subscription(f"/{NS}/joint_states", JointState, STATE_QOS)
    pub = a.publisher(f"{NS}/joint_states", JointState, COMMAND_QOS)  # relative name: same topic
    msg = JointState(header=Header(stamp=Time(sec=12, nanosec=345), frame_id="base_ü"),
                     name=["ü2", "关节", "j3"], position=[0.1, -0.2, math.inf],
                     velocity=[], effort=[1e-300, -0.0, 3.5])
    got = publish_until_received(pub, sub, msg)
    assert got and all(g == msg for g in got)
    assert math.copysign(1.0, got[0].effort[1]) == -1.0


def test_reliable_publisher_matches_best_effort_subscription(
        transports: Callable[[], DdsTransport]) -> None:
    a, b = transports(), transports()
    sub = b.subscription(f"/{NS}/state", String, Qos(reliable=False, depth=5))
    pub = a.publisher(f"/{NS}/state", String, Qos(reliable=True, depth=10))
    assert publish_until_received(pub, sub, String("matched"))[-1] == String("matched")


def test_best_effort_publisher_does_not_reach_reliable_subscription(
        transports: Callable[[], DdsTransport]) -> None:
    """The reverse direction is incompatible QoS in DDS (and ROS 2): nothing arrives."""
    a, b = transports(), transports()
    reliable_sub = b.subscription(f"/{NS}/mismatch", String, COMMAND_QOS)
    best_effort_sub = b.subscription(f"/{NS}/mismatch", String, STATE_QOS)
    pub = a.publisher(f"/{NS}/mismatch", String, STATE_QOS)
    publish_until_received(pub, best_effort_sub, String("x"))  # discovery has happened
    for _ in range(5):
        pub.publish(String("x"))
    assert not reliable_sub.wait(0.2)
    assert reliable_sub.take() == []


def test_wait_times_out_then_reports_waiting_data(transports: Callable[[], DdsTransport]) -> None:
    a, b = transports(), transports()
    sub = b.subscription(f"/{NS}/cmd", Float64MultiArray, COMMAND_QOS)
    pub = a.publisher(f"/{NS}/cmd", Float64MultiArray, COMMAND_QOS)
    t0 = time.monotonic()
    assert sub.wait(0.1) is False
    assert 0.08 <= time.monotonic() - t0 < 2.0
    assert sub.wait(0.0) is False
    assert sub.take() == []
    wait_matched(pub, sub, Float64MultiArray(data=[-1.0]))
    assert sub.wait(0.0) is False  # drained
    pub.publish(Float64MultiArray(data=[1.0, 2.0]))
    assert sub.wait(DEADLINE) is True
    assert sub.wait(0.0) is True  # still waiting: wait() does not consume
    assert sub.take() == [Float64MultiArray(data=[1.0, 2.0])]
    assert sub.wait(0.0) is False
    assert sub.take() == []


def test_take_drains_in_publication_order(transports: Callable[[], DdsTransport]) -> None:
    a, b = transports(), transports()
    sub = b.subscription(f"/{NS}/seq", Float64MultiArray, COMMAND_QOS)  # RELIABLE: none may be lost
    pub = a.publisher(f"/{NS}/seq", Float64MultiArray, COMMAND_QOS)
    wait_matched(pub, sub, Float64MultiArray(data=[-1.0]))
    for i in range(COMMAND_QOS.depth):
        pub.publish(Float64MultiArray(data=[float(i)]))
    got = take_until(sub, COMMAND_QOS.depth)
    assert [m.data[0] for m in got] == [float(i) for i in range(COMMAND_QOS.depth)]
    assert sub.take() == []


def test_keep_last_depth_keeps_the_newest(transports: Callable[[], DdsTransport]) -> None:
    a, b = transports(), transports()
    sub = b.subscription(f"/{NS}/burst", Float64MultiArray, Qos(reliable=True, depth=3))
    pub = a.publisher(f"/{NS}/burst", Float64MultiArray, Qos(reliable=True, depth=20))
    wait_matched(pub, sub, Float64MultiArray(data=[-1.0]))
    for i in range(12):
        pub.publish(Float64MultiArray(data=[float(i)]))
    time.sleep(0.2)  # let the burst land; the reader keeps only the last 3
    got = [m.data[0] for m in sub.take()]
    assert got == [9.0, 10.0, 11.0]


def test_close_leaves_the_domain_while_handles_are_still_held(
        transports: Callable[[], DdsTransport]) -> None:
    """A backend keeps its publisher objects as attributes; close() must still end the
    participant so the robot side sees the writer go."""
    a, b = transports(), transports()
    sub = b.subscription(f"/{NS}/bye", String, STATE_QOS)
    pub = a.publisher(f"/{NS}/bye", String, COMMAND_QOS)
    publish_until_received(pub, sub, String("hi"))

    def matched() -> int:
        return int(sub._reader.get_subscription_matched_status().current_count)

    assert matched() == 1
    a.close()
    a.close()  # idempotent
    gc.collect()
    end = time.monotonic() + DEADLINE
    while matched() and time.monotonic() < end:
        time.sleep(0.01)
    assert matched() == 0
    with pytest.raises(Exception):  # noqa: B017 - cyclonedds' DDSException: the writer is gone
        pub.publish(String("after close"))


_CHILD = textwrap.dedent("""
    import sys, time
    from robot_brain.hardware.ros2.dds import DdsTransport
    from robot_brain.hardware.ros2.messages import Header, JointState, String
    from robot_brain.hardware.ros2.transport import COMMAND_QOS, STATE_QOS, NetworkConfig
    tr = DdsTransport(NetworkConfig.loopback(int(sys.argv[1])))
    pub = tr.publisher(f"/{sys.argv[3]}/joint_states", JointState, COMMAND_QOS)
    ack = tr.subscription(f"/{sys.argv[3]}/ack", String, STATE_QOS)
    msg = JointState(header=Header(frame_id="关节"), name=["ü2", "b"], position=[1.5, -2.5])
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        pub.publish(msg)
        if ack.wait(0.02) and String("done") in ack.take():
            tr.close()
            sys.exit(0)
    sys.exit(3)
""")


def test_another_process_is_received_and_hears_back(transports: Callable[[], DdsTransport],
                                                     domain: int) -> None:
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(domain), str(DEADLINE + 5), NS],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        tr = transports()
        sub = tr.subscription(f"/{NS}/joint_states", JointState, STATE_QOS)
        ack = tr.publisher(f"/{NS}/ack", String, COMMAND_QOS)
        got = take_until(sub, 1, DEADLINE + 5)  # includes the child's interpreter start-up
        assert got, f"nothing from the child process: {child.poll()=}"
        assert got[0] == JointState(header=Header(frame_id="关节"), name=["ü2", "b"], position=[1.5, -2.5])
        end = time.monotonic() + DEADLINE
        while child.poll() is None and time.monotonic() < end:
            ack.publish(String("done"))
            time.sleep(0.02)
        _out, err = child.communicate(timeout=DEADLINE)
        assert child.returncode == 0, err
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


# --- configuration -----------------------------------------------------------------------------

def test_loopback_config_stays_on_lo() -> None:
    net = NetworkConfig.loopback(105)
    assert (net.domain_id, net.interface, net.peers, net.multicast) == (105, "lo", ("127.0.0.1",), False)
    xml = net.cyclone_xml()
    assert xml is not None
    root = ET.fromstring(xml)
    assert [e.get("name") for e in root.iter("NetworkInterface")] == ["lo"]
    assert root.findtext(".//AllowMulticast") == "false"
    assert [e.get("address") for e in root.iter("Peer")] == ["127.0.0.1"]
    assert NetworkConfig().cyclone_xml() is None  # Cyclone's own default (or CYCLONEDDS_URI)


@pytest.mark.parametrize("bad", [-1, 233, 1000, True, 1.0, "5", None])
def test_network_config_rejects_bad_domain(bad: Any) -> None:
    with pytest.raises(ValueError, match="domain_id"):
        NetworkConfig(domain_id=bad)


@pytest.mark.parametrize("bad", ['lo"/><Peer address="10.0.0.1', "eth 0", "lo;rm", "lo\n", "é0"])
def test_network_config_rejects_bad_interface(bad: str) -> None:
    """An interface name goes into Cyclone's XML: quotes and markup must never get there."""
    with pytest.raises(ValueError, match="interface"):
        NetworkConfig(interface=bad)


@pytest.mark.parametrize("bad", ["", "10.0.0.1 10.0.0.2", '1.2.3.4"/>', 5])
def test_network_config_rejects_bad_peer(bad: Any) -> None:
    with pytest.raises(ValueError, match="peers"):
        NetworkConfig(peers=(bad,))


@pytest.mark.parametrize("ok", [0, 232, 101])
def test_network_config_accepts_domain_range_ends(ok: int) -> None:
    assert NetworkConfig(domain_id=ok, interface="eth0.1", peers=("[::1]", "robot-pc.local")).domain_id == ok


def test_make_transport_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="transport must be one of auto, rclpy, dds, got 'bogus'"):
        make_transport("bogus", network=NetworkConfig.loopback(DOMAINS[0]))


@pytest.mark.skipif(rclpy_available(), reason="rclpy imports here: the transport would start")
def test_make_transport_rclpy_without_rclpy_is_a_one_line_error() -> None:
    with pytest.raises(ValueError) as err:
        make_transport("rclpy", network=NetworkConfig.loopback(DOMAINS[0]))
    assert "\n" not in str(err.value)
    assert "rclpy" in str(err.value) and "--transport dds" in str(err.value)


@pytest.mark.skipif(rclpy_available(), reason="with rclpy, 'auto' picks the rclpy transport")
@pytest.mark.parametrize("kind", ["dds", "auto"])
def test_make_transport_dds(kind: str, domain: int) -> None:
    tr = make_transport(kind, network=NetworkConfig.loopback(domain))
    try:
        assert isinstance(tr, DdsTransport) and tr.name == "dds"
        assert tr.network == NetworkConfig.loopback(domain)
    finally:
        tr.close()


def test_one_domain_cannot_get_two_configurations(transports: Callable[[], DdsTransport],
                                                  domain: int) -> None:
    transports()  # configures `domain` as loopback in this process
    with pytest.raises(ValueError, match="configured differently"):
        DdsTransport(NetworkConfig(domain_id=domain, interface="lo", peers=("127.0.0.2",),
                                   multicast=False))


@pytest.mark.parametrize(("name", "absolute"), [
    ("joint_states", "/joint_states"),
    ("/joint_states", "/joint_states"),
    ("/effort_controller/commands", "/effort_controller/commands"),
    ("robot_brain/setpoint_2", "/robot_brain/setpoint_2"),
    ("A1/b_C", "/A1/b_C"),
])
def test_check_topic_normalises(name: str, absolute: str) -> None:
    assert check_topic(name) == absolute


@pytest.mark.parametrize("bad", ["", "/", "//x", "a//b", "a/", "/a/", "1abc", "/a/2b", "a b", "a-b",
                                 "~/x", "a.b", "ü2", "/x\n", None, 5])
def test_check_topic_rejects(bad: Any) -> None:
    with pytest.raises(ValueError, match="not a valid ROS 2 topic name") as err:
        check_topic(bad, what="joint_states_topic")
    assert str(err.value).startswith("joint_states_topic ")
    assert "\n" not in str(err.value).replace(repr(bad), "")


def test_transport_refuses_a_bad_topic_name(transports: Callable[[], DdsTransport]) -> None:
    tr = transports()
    with pytest.raises(ValueError, match="not a valid ROS 2 topic name"):
        tr.publisher("bad topic", String)
    with pytest.raises(ValueError, match="not a valid ROS 2 topic name"):
        tr.subscription("/a//b", String)
