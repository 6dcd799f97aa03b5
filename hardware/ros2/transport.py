"""The one small interface the ROS 2 node logic talks through, and how to pick an implementation.

Two implementations speak the same ROS 2 wire protocol:

- :class:`~robot_brain.hardware.ros2.dds.DdsTransport`: Cyclone DDS from PyPI, no ROS install
  needed (ROS 2 topic names ``rt/...``, type names ``pkg::msg::dds_::Type_``, XCDR1). Its
  participants appear in ``ros2 topic list`` (not in ``ros2 node list``: they are no rclpy nodes).
- :class:`~robot_brain.hardware.ros2.rclpy_transport.RclpyTransport`: an rclpy node, used when
  rclpy imports (every ROS 2 install); this is what the launch files start.

Messages are the IDL structs of :mod:`robot_brain.hardware.ros2.messages` on both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "COMMAND_QOS", "STATE_QOS", "TRANSPORTS", "NetworkConfig", "Publisher", "Qos", "Subscription",
    "Transport", "check_topic", "make_transport", "rclpy_available",
]

TRANSPORTS = ("auto", "rclpy", "dds")


@dataclass(frozen=True)
class Qos:
    """The part of a ROS 2 QoS profile this package sets (durability is always VOLATILE).

    :param reliable: RELIABLE (``True``) or BEST_EFFORT. A RELIABLE writer matches readers of
        both kinds; a BEST_EFFORT writer matches only BEST_EFFORT readers.
    :param depth: KEEP_LAST history depth.
    """

    reliable: bool = True
    depth: int = 10


#: Commands: ROS default (RELIABLE, KEEP_LAST 10), what ros2_control's command subscribers expect.
COMMAND_QOS = Qos(reliable=True, depth=10)
#: State: sensor-data profile (BEST_EFFORT, KEEP_LAST 5), which matches RELIABLE and BEST_EFFORT
#: publishers alike (joint_state_broadcaster publishes RELIABLE).
STATE_QOS = Qos(reliable=False, depth=5)


@dataclass(frozen=True)
class NetworkConfig:
    """Where DDS traffic goes. From the robot config's ``dds`` block.

    :param domain_id: DDS domain (``ROS_DOMAIN_ID``), 0-232.
    :param interface: network interface to use (``lo`` keeps everything on this machine); empty:
        Cyclone's own choice (or ``CYCLONEDDS_URI`` when set).
    :param peers: unicast discovery peers (addresses); with ``multicast=False`` discovery only
        reaches them.
    :param multicast: allow multicast discovery (off on loopback: ``lo`` has no multicast).
    """

    domain_id: int = 0
    interface: str = ""
    peers: tuple[str, ...] = ()
    multicast: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.domain_id, bool) or not isinstance(self.domain_id, int) \
                or not 0 <= self.domain_id <= 232:
            raise ValueError(f"dds.domain_id must be an integer in [0, 232], got {self.domain_id!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.:\-]*", self.interface):
            raise ValueError(f"dds.interface must be an interface name or address, got {self.interface!r}")
        for p in self.peers:
            if not isinstance(p, str) or not re.fullmatch(r"[A-Za-z0-9_.:\-\[\]]+", p):
                raise ValueError(f"dds.peers must be addresses, got {p!r}")

    @classmethod
    def loopback(cls, domain_id: int = 0) -> NetworkConfig:
        """Everything on 127.0.0.1: interface ``lo``, multicast off, one unicast peer (tests)."""
        return cls(domain_id=domain_id, interface="lo", peers=("127.0.0.1",), multicast=False)

    def cyclone_xml(self) -> str | None:
        """The Cyclone DDS configuration for this network (``None``: leave Cyclone's default)."""
        if not self.interface and not self.peers and self.multicast:
            return None
        general = ""
        if self.interface:
            general += f'<Interfaces><NetworkInterface name="{self.interface}"/></Interfaces>'
        general += f"<AllowMulticast>{'true' if self.multicast else 'false'}</AllowMulticast>"
        peers = "".join(f'<Peer address="{p}"/>' for p in self.peers)
        discovery = "<ParticipantIndex>auto</ParticipantIndex>"
        if peers:
            discovery += f"<Peers>{peers}</Peers>"
        return (f'<CycloneDDS><Domain Id="any"><General>{general}</General>'
                f"<Discovery>{discovery}</Discovery></Domain></CycloneDDS>")


class Publisher(Protocol):
    def publish(self, msg: Any) -> None:
        """Send one message (an IDL struct of the publisher's type)."""
        ...


class Subscription(Protocol):
    def take(self) -> list[Any]:
        """Every message received since the last call, oldest first (never blocks)."""
        ...

    def wait(self, timeout: float) -> bool:
        """Block until a message is waiting or ``timeout`` seconds pass; ``True`` if one is."""
        ...


class Transport(Protocol):
    """Topics of one ROS 2 participant. ``topic`` is the ROS name (``/joint_states``)."""

    name: str  # "dds" or "rclpy"

    def publisher(self, topic: str, msg_type: type, qos: Qos = COMMAND_QOS) -> Publisher: ...

    def subscription(self, topic: str, msg_type: type, qos: Qos = STATE_QOS) -> Subscription: ...

    def close(self) -> None: ...


_TOPIC = re.compile(r"/?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*")


def check_topic(topic: str, what: str = "topic") -> str:
    """The absolute form of a ROS 2 topic name (``joint_states`` -> ``/joint_states``), or a
    one-line ``ValueError`` naming it (ROS names: letters, digits, ``_`` and ``/`` separators)."""
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
        raise ValueError(f"{what} {topic!r} is not a valid ROS 2 topic name (letters, digits, _ "
                         f"and / separators, starting with a letter)")
    return topic if topic.startswith("/") else "/" + topic


def rclpy_available() -> bool:
    """True when rclpy imports (a sourced ROS 2 install)."""
    try:
        import rclpy  # noqa: F401
    except ImportError:
        return False
    return True


def make_transport(kind: str = "auto", *, network: NetworkConfig | None = None,
                   node_name: str = "robot_brain") -> Transport:
    """A transport: ``"rclpy"``, ``"dds"``, or ``"auto"`` (rclpy when it imports, else DDS).

    :param network: DDS domain and interface (rclpy takes them from ``ROS_DOMAIN_ID`` and the
        RMW's own configuration instead; the domain is passed on).
    :raises ValueError: an unknown kind, or ``"rclpy"`` without rclpy.
    """
    if kind not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {kind!r}")
    network = network or NetworkConfig()
    if kind == "auto":
        kind = "rclpy" if rclpy_available() else "dds"
    if kind == "rclpy":
        if not rclpy_available():
            raise ValueError("transport 'rclpy' needs a sourced ROS 2 install (rclpy does not import "
                             "here); use --transport dds")
        from .rclpy_transport import RclpyTransport

        return RclpyTransport(node_name, domain_id=network.domain_id)
    from .dds import DdsTransport

    return DdsTransport(network)
