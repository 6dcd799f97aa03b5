"""The :class:`~.transport.Transport` as an rclpy node, for machines with a sourced ROS 2 install.

The rest of the package speaks the IDL structs of :mod:`.messages`; rclpy wants its own
generated classes (``sensor_msgs.msg.JointState``). :func:`to_ros` and :func:`from_ros` copy one
into the other field by field, driven by the IDL class's annotations, so one definition of each
message serves both transports. They are pure functions of the classes they are given, which is
what lets the tests check them with stand-in classes where rclpy cannot be installed (it is not
on PyPI).

rclpy is imported inside :class:`RclpyTransport` (and :func:`qos_profile`) only: importing this
module never needs ROS, and :func:`~.transport.make_transport` builds this transport only after
checking that rclpy imports.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import operator
import threading
import typing
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from cyclonedds.idl import IdlStruct
from cyclonedds.idl import types as idl_types

from .messages import ros_type_of
from .transport import COMMAND_QOS, STATE_QOS, Qos, check_topic

__all__ = ["RclpyTransport", "from_ros", "qos_profile", "ros_message_class", "to_ros"]

#: How an IDL message class maps to the rclpy class of the same ROS type.
Resolver = Callable[[type], type]


# --- field layout of an IDL struct ---------------------------------------------------------------

@dataclass(frozen=True)
class _Struct:
    cls: type


@dataclass(frozen=True)
class _Seq:
    elem: _Kind


@dataclass(frozen=True)
class _Scalar:
    py: type  # int, float, str or bool: what rclpy's setters insist on


_Kind: TypeAlias = "_Struct | _Seq | _Scalar"


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


# Exact Python scalars, as rclpy's setters insist; an int field refuses floats (no silent
# truncation), as the DDS transport's serialiser does.
_SCALAR: dict[type, Callable[[Any], Any]] = {int: operator.index, float: float, str: _as_str, bool: bool}


def _kind(tp: Any) -> _Kind:
    if isinstance(tp, type) and issubclass(tp, IdlStruct):
        return _Struct(tp)
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        for marker in meta:
            if isinstance(marker, (idl_types.sequence, idl_types.array)):
                return _Seq(_kind(marker.subtype))
        return _kind(base)
    if tp in (int, float, str, bool):
        return _Scalar(tp)
    raise TypeError(f"no ROS 2 conversion for the IDL field type {tp!r}")


@functools.cache
def _fields(idl_cls: type) -> tuple[tuple[str, _Kind], ...]:
    """``(name, kind)`` of each field of an IDL struct, in wire order (computed once per class:
    the conversions run per message, the annotations do not change)."""
    hints = typing.get_type_hints(idl_cls, include_extras=True)
    return tuple((f.name, _kind(hints[f.name])) for f in dataclasses.fields(idl_cls))


# --- conversion ----------------------------------------------------------------------------------

def ros_message_class(idl_cls: type) -> type:
    """The rclpy class of an IDL message class (``JointState`` -> ``sensor_msgs.msg.JointState``).

    :raises ImportError: the ROS package's Python messages are not installed (one line, with
        the fix).
    """
    pkg, _msg, name = ros_type_of(idl_cls).split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"the ROS 2 message {pkg}/msg/{name} does not import ({exc}); source a "
                          f"ROS 2 install that has {pkg}") from None


def _to_ros_value(value: Any, kind: _Kind, resolve: Resolver) -> Any:
    if isinstance(kind, _Struct):
        return to_ros(value, resolve(kind.cls), resolve)
    if isinstance(kind, _Seq):
        # A list of exact Python scalars: rclpy's setters accept it for every sequence field
        # (numpy arrays and numpy scalars they refuse), and it copies numpy input.
        return [_to_ros_value(v, kind.elem, resolve) for v in value]
    return _SCALAR[kind.py](value)


def to_ros(msg: Any, ros_cls: type, resolve: Resolver = ros_message_class) -> Any:
    """A new ``ros_cls`` (an rclpy message class) with the content of the IDL struct ``msg``.

    Fields are copied by name, recursively; nested messages are built from ``resolve(idl_cls)``
    (by default the rclpy class of that ROS type). Sequences become lists of Python scalars.
    """
    out = ros_cls()
    idl_cls: type = type(msg)
    for name, kind in _fields(idl_cls):
        setattr(out, name, _to_ros_value(getattr(msg, name), kind, resolve))
    return out


def _from_ros_value(value: Any, kind: _Kind) -> Any:
    if isinstance(kind, _Struct):
        return from_ros(value, kind.cls)
    if isinstance(kind, _Seq):  # rclpy hands array.array / numpy arrays / lists
        return [_from_ros_value(v, kind.elem) for v in value]
    return _SCALAR[kind.py](value)


def from_ros(ros_msg: Any, idl_cls: type) -> Any:
    """An ``idl_cls`` struct with the content of the rclpy message ``ros_msg`` (fields by name).

    Sequences become lists of Python scalars, so the result equals the struct the DDS transport
    would have received for the same bytes.
    """
    return idl_cls(**{name: _from_ros_value(getattr(ros_msg, name), kind)
                      for name, kind in _fields(idl_cls)})


def qos_profile(qos: Qos) -> Any:
    """The rclpy ``QoSProfile`` of a :class:`~.transport.Qos` (KEEP_LAST, VOLATILE, as the DDS
    transport sets them, so both transports match the same peers)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=qos.depth, durability=DurabilityPolicy.VOLATILE,
        reliability=ReliabilityPolicy.RELIABLE if qos.reliable else ReliabilityPolicy.BEST_EFFORT)


# --- the transport -------------------------------------------------------------------------------

class _RclpyPublisher:
    def __init__(self, publisher: Any, idl_cls: type, ros_cls: type) -> None:
        self._publisher = publisher
        self._idl_cls = idl_cls
        self._ros_cls = ros_cls

    def publish(self, msg: Any) -> None:
        if not isinstance(msg, self._idl_cls):
            raise TypeError(f"this publisher sends {self._idl_cls.__name__}, got {type(msg).__name__}")
        self._publisher.publish(to_ros(msg, self._ros_cls))


class _RclpySubscription:
    """Messages the executor thread delivered, converted, waiting for :meth:`take`.

    rclpy hands every message to a callback instead of keeping them in a reader cache as DDS
    does; the queue is bounded (``depth * 10``, oldest dropped and counted in ``dropped``) so a
    consumer that stops taking cannot grow memory without limit.
    """

    def __init__(self, idl_cls: type, maxlen: int) -> None:
        self._idl_cls = idl_cls
        self._queue: deque[Any] = deque(maxlen=maxlen)
        self._ready = threading.Condition()
        self.dropped = 0

    def on_message(self, ros_msg: Any) -> None:
        """Executor-thread callback: convert outside the lock, then queue and wake waiters."""
        msg = from_ros(ros_msg, self._idl_cls)
        with self._ready:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(msg)
            self._ready.notify_all()

    def take(self) -> list[Any]:
        with self._ready:
            out = list(self._queue)
            self._queue.clear()
        return out

    def wait(self, timeout: float) -> bool:
        with self._ready:
            return self._ready.wait_for(lambda: bool(self._queue), timeout=max(timeout, 0.0))


class RclpyTransport:
    """A ROS 2 node of its own (own context, own executor thread) publishing and subscribing
    the IDL structs of :mod:`.messages`.

    The node has a private rclpy context, so it neither needs nor disturbs a global
    ``rclpy.init()`` of the host program, and ``close()`` ends exactly what it started. A
    single-threaded executor spins in a daemon thread: the callbacks only convert and queue, so
    one thread keeps up, and the caller's loop never blocks on ROS.

    :param node_name: the node's name (``ros2 node list``).
    :param domain_id: ``ROS_DOMAIN_ID`` of the node's context (``rclpy.init(domain_id=)``: ROS 2
        Galactic or newer). Interface and peers come from the RMW's own configuration
        (``CYCLONEDDS_URI``, ``ROS_LOCALHOST_ONLY`` ...), not from a ``NetworkConfig``.
    """

    name = "rclpy"

    def __init__(self, node_name: str = "robot_brain", domain_id: int = 0) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self._rclpy = rclpy
        self._context = Context()
        rclpy.init(context=self._context, domain_id=domain_id)
        try:
            self._node = rclpy.create_node(node_name, context=self._context)
            self._executor = SingleThreadedExecutor(context=self._context)
            self._executor.add_node(self._node)
        except BaseException:
            rclpy.try_shutdown(context=self._context)
            raise
        self._closed = False
        self._entities: list[Any] = []
        self._thread = threading.Thread(target=self._spin, name=f"rclpy-{node_name}", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:
            if not self._closed:  # an error while running: let threading's excepthook report it
                raise

    def publisher(self, topic: str, msg_type: type, qos: Qos = COMMAND_QOS) -> _RclpyPublisher:
        ros_cls = ros_message_class(msg_type)
        pub = self._node.create_publisher(ros_cls, check_topic(topic), qos_profile(qos))
        self._entities.append(pub)
        return _RclpyPublisher(pub, msg_type, ros_cls)

    def subscription(self, topic: str, msg_type: type, qos: Qos = STATE_QOS) -> _RclpySubscription:
        sub = _RclpySubscription(msg_type, maxlen=max(qos.depth, 1) * 10)
        handle = self._node.create_subscription(ros_message_class(msg_type), check_topic(topic),
                                                sub.on_message, qos_profile(qos))
        self._entities.append(handle)
        return sub

    def close(self) -> None:
        """Stop the executor, destroy the node, shut the context down (idempotent)."""
        if self._closed:
            return
        self._closed = True
        # Executor first (it wakes and leaves spin()), so the node is not destroyed under a
        # running wait; the context last, so spin() does not end in ExternalShutdownException.
        self._executor.shutdown(timeout_sec=1.0)
        self._thread.join(timeout=2.0)
        self._entities.clear()
        self._node.destroy_node()
        self._rclpy.try_shutdown(context=self._context)

