"""ROS 2 over Cyclone DDS without rclpy: the wire protocol of ``rmw_cyclonedds_cpp``.

A ROS topic ``/joint_states`` is the DDS topic ``rt/joint_states`` carrying the IDL struct
``sensor_msgs::msg::dds_::JointState_`` (:mod:`.messages`), XCDR1 little-endian; QoS as ROS 2
sets it. Anything speaking ROS 2 over DDS (rclpy, ros2_control, ``ros2 topic echo``) reads what
this writes and the other way round.
"""

from __future__ import annotations

import threading
from typing import Any

from cyclonedds.core import InstanceState, Policy, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.core import Qos as DdsQos
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from .transport import COMMAND_QOS, STATE_QOS, NetworkConfig, Qos, check_topic

__all__ = ["DdsTransport"]

# Cyclone allows one configuration per domain and process: keep the Domain objects alive here.
_DOMAINS: dict[int, tuple[str | None, Domain | None]] = {}
_LOCK = threading.Lock()


def _dds_qos(qos: Qos) -> DdsQos:
    rel = (Policy.Reliability.Reliable(duration(milliseconds=100)) if qos.reliable
           else Policy.Reliability.BestEffort)
    return DdsQos(rel, Policy.Durability.Volatile, Policy.History.KeepLast(qos.depth))


def _domain(network: NetworkConfig) -> None:
    xml = network.cyclone_xml()
    with _LOCK:
        known = _DOMAINS.get(network.domain_id)
        if known is not None:
            if known[0] != xml:
                raise ValueError(f"DDS domain {network.domain_id} is already configured differently "
                                 f"in this process")
            return
        _DOMAINS[network.domain_id] = (xml, Domain(network.domain_id, xml) if xml else None)


class _DdsPublisher:
    def __init__(self, writer: DataWriter) -> None:
        self._writer = writer

    def publish(self, msg: Any) -> None:
        self._writer.write(msg)


class _DdsSubscription:
    def __init__(self, participant: DomainParticipant, reader: DataReader, msg_type: type) -> None:
        self._reader = reader
        self._type = msg_type
        cond = ReadCondition(reader, SampleState.NotRead | ViewState.Any | InstanceState.Alive)
        self._waitset = WaitSet(participant)
        self._waitset.attach(cond)

    def take(self) -> list[Any]:
        # Lifecycle notices (a writer that left disposes its instance) come as InvalidSample
        # objects without data: only messages are returned.
        return [s for s in self._reader.take(N=64) if isinstance(s, self._type)]

    def wait(self, timeout: float) -> bool:
        return self._waitset.wait(duration(seconds=max(timeout, 0.0))) > 0


class DdsTransport:
    """One DDS participant in ``network``'s domain, publishing and subscribing ROS 2 topics.

    :param network: domain id, interface, discovery peers (:class:`NetworkConfig`).
    """

    name = "dds"

    def __init__(self, network: NetworkConfig | None = None) -> None:
        self.network = network = network or NetworkConfig()
        _domain(network)
        self._participant: DomainParticipant | None = DomainParticipant(network.domain_id)
        self._topics: dict[str, Topic] = {}
        self._entities: list[Any] = []

    @property
    def participant(self) -> DomainParticipant:
        if self._participant is None:
            raise RuntimeError("the DDS transport is closed")
        return self._participant

    def _topic(self, topic: str, msg_type: type) -> Topic:
        name = "rt" + check_topic(topic)
        known = self._topics.get(name)
        if known is None:
            known = self._topics[name] = Topic(self.participant, name, msg_type)
        elif known.data_type is not msg_type:  # pragma: no cover - a programming error
            raise ValueError(f"topic {topic} is already used with another type")
        return known

    def publisher(self, topic: str, msg_type: type, qos: Qos = COMMAND_QOS) -> _DdsPublisher:
        writer = DataWriter(self.participant, self._topic(topic, msg_type), qos=_dds_qos(qos))
        self._entities.append(writer)
        return _DdsPublisher(writer)

    def subscription(self, topic: str, msg_type: type, qos: Qos = STATE_QOS) -> _DdsSubscription:
        reader = DataReader(self.participant, self._topic(topic, msg_type), qos=_dds_qos(qos))
        self._entities.append(reader)
        return _DdsSubscription(self.participant, reader, msg_type)

    def close(self) -> None:
        """Leave the domain (the other side sees this participant's writers go)."""
        self._entities.clear()
        self._topics.clear()
        participant, self._participant = self._participant, None
        if participant is not None:
            # Delete it now: cyclonedds deletes an entity only when its last Python reference
            # goes, and the publishers and subscriptions handed out hold it. Deleting the
            # participant deletes its readers and writers too (using them then raises).
            participant.__del__()
