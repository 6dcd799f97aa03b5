"""The flight recorder of ``deploy`` and ``sim-robot`` (``--record PATH``): a rosbag2 bag (MCAP
storage) of what the robot said and what the brain did, readable by ``ros2 bag`` and Foxglove.

The bag is written with ``rosbags`` (``rosbags.rosbag2.Writer``, rosbag2 format version 9, MCAP
storage), never by hand. A bag is a folder: ``--record run`` and ``--record run.mcap`` both
give the folder ``run/`` holding ``run.mcap`` and ``metadata.yaml`` (:func:`bag_dir`).

**Cheap on the fast loop.** :meth:`FlightRecorder.record` only appends ``(topic, t, msg)`` to a
bounded queue (well under a microsecond); a background thread serializes the messages
(``msg.serialize()``, the CDR bytes rosbag2 stores) and writes them. When the writer falls behind
and the queue is full, ``record`` drops the message and counts it (:attr:`~FlightRecorder.dropped`)
rather than block the loop. ``record`` never raises. The message object is kept until it is
written: do not change it after handing it over. The writer thread works in batches of a few
messages and sleeps briefly between them, so a control thread waiting for the GIL waits for one
batch at most rather than Python's 5 ms switch interval. Serializing costs the writer 10-30 us
per message (cyclonedds' pure-Python CDR): five topics at 1 kHz keep it busy ~10-15% of a core.

**Crash safety** (a crash at any instant loses no finished file): the bag is written inside the
staging folder ``<dir>.partial/`` and moved to ``<dir>`` by :meth:`FlightRecorder.close`, so a
folder named ``<dir>`` is always a complete bag. A ``kill -9`` leaves only ``<dir>.partial/``
(its MCAP file holds the chunks handed to the OS so far, at most ``flush_every`` old, but no
summary or index: tools that read MCAP record by record, such as ``mcap recover``, can salvage
them; ``read_bag`` refuses it). An existing ``<dir>`` (or a ``<dir>.partial`` left by an
interrupted recording) is refused unless ``overwrite=True``; the old bag is then replaced only
when the new one is complete.

**Topics** the deploy side records, so that ``robot-brain replay`` can rely on them:
``/joint_states`` (sensor_msgs/JointState, as received), the effort command
(std_msgs/Float64MultiArray, ``/<effort_controller>/commands``), and the brain's own
:data:`SETPOINT_TOPIC` (geometry_msgs/PoseStamped: the setpoint executed on each fast tick,
``header.stamp`` = the time of the state it was computed for), :data:`STIFFNESS_TOPIC` and
:data:`DAMPING_RATIO_TOPIC` (std_msgs/Float64MultiArray, 6 values each: x, y, z, rx, ry, rz), and
:data:`EVENTS_TOPIC` / :data:`STATUS_TOPIC` (std_msgs/String, JSON). :func:`record_setpoint` records
the three setpoint topics of one tick.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from robot_brain.fileio import unwritable

from .messages import (
    ROS_TYPES,
    Float64MultiArray,
    Header,
    JointState,
    Point,
    Pose,
    PoseStamped,
    Quaternion,
    ros_type_of,
    time_from_sec,
)

__all__ = [
    "DAMPING_RATIO_TOPIC",
    "EVENTS_TOPIC",
    "JOINT_STATES_TOPIC",
    "SETPOINT_TOPIC",
    "STATUS_TOPIC",
    "STIFFNESS_TOPIC",
    "FlightRecorder",
    "bag_dir",
    "bag_message_count",
    "read_bag",
    "record_joint_state",
    "record_setpoint",
]

log = logging.getLogger(__name__)

#: The robot's joint states (``sensor_msgs/JointState``), recorded as received.
JOINT_STATES_TOPIC = "/joint_states"
#: The setpoint executed on each fast tick (``geometry_msgs/PoseStamped``, quaternion x, y, z, w;
#: ``header.stamp`` = the time of the state it was computed for).
SETPOINT_TOPIC = "/robot_brain/setpoint"
#: Its 6 stiffnesses (``std_msgs/Float64MultiArray``: N/m x3, N m/rad x3).
STIFFNESS_TOPIC = "/robot_brain/stiffness"
#: Its 6 damping ratios (``std_msgs/Float64MultiArray``, dimensionless).
DAMPING_RATIO_TOPIC = "/robot_brain/damping_ratio"
#: One reflex or fault event per message (``std_msgs/String``, JSON).
EVENTS_TOPIC = "/robot_brain/events"
#: The brain's status (``std_msgs/String``, JSON).
STATUS_TOPIC = "/robot_brain/status"

PARTIAL_SUFFIX = ".partial"
_REPLACED = ".replaced"  # inside the staging folder: the old bag while an overwrite completes
_BATCH = 4  # messages written between two releases of the GIL by the writer thread
_YIELD_S = 50e-6  # pause of the writer thread between batches
_POLL_S = 0.005  # how often an idle writer thread looks at the queue
_ERRORS_KEPT = 5


def bag_dir(path: str | os.PathLike) -> Path:
    """The bag folder ``path`` names: ``run.mcap`` -> ``run`` (the folder that holds
    ``run.mcap`` and ``metadata.yaml``); any other path is the folder itself."""
    p = Path(path)
    if p.suffix.lower() == ".mcap" and p.stem:
        return p.with_suffix("")
    return p


def _is_bag_dir(p: Path) -> bool:
    """True for a folder that holds only what a rosbag2 bag holds (so it may be replaced)."""
    if not p.is_dir():
        return False
    entries = list(p.iterdir())
    return bool(entries) and all(
        e.is_file() and (e.name == "metadata.yaml" or e.suffix in (".mcap", ".db3", ".zstd"))
        for e in entries)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)


class FlightRecorder:
    """Record ROS 2 messages into a rosbag2 bag (MCAP) from a fast loop, without blocking it.

    ``FlightRecorder(path)`` checks the path, creates ``<dir>.partial/`` and starts the writer
    thread; :meth:`record` queues a message; :meth:`close` (or leaving the ``with`` block) writes
    the rest, finishes the bag and moves it to ``<dir>``.

    :param path: the bag folder, or ``<dir>.mcap`` naming it (:func:`bag_dir`).
    :param overwrite: replace an existing bag at ``<dir>`` (when the new one is complete) and a
        ``<dir>.partial`` left by an interrupted recording; without it both are refused.
    :param max_queue: messages waiting for the writer at most; beyond, :meth:`record` drops
        them and counts them in :attr:`dropped` (the default is several seconds of a 1 kHz loop
        recording five topics).
    :param flush_every: seconds between two hand-overs of the written messages to the
        operating system (an MCAP chunk each), so a crash loses at most about this much.
    :raises ValueError: one line naming the path: it exists, or cannot be written.
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False,
                 max_queue: int = 50_000, flush_every: float = 1.0) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        if not flush_every > 0:
            raise ValueError(f"flush_every must be > 0 s, got {flush_every}")
        self.flush_every = float(flush_every)
        self.path = bag_dir(path)
        self.partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        self.overwrite = overwrite
        self.max_queue = int(max_queue)
        self._check_paths()

        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self._typestore = get_typestore(Stores.ROS2_HUMBLE)
        try:
            if overwrite and self.partial.exists():
                shutil.rmtree(self.partial)
            self.partial.mkdir(parents=True)  # also the claim: a second recorder here fails
        except FileExistsError:
            raise ValueError(f"{self.partial} appeared while starting the recording "
                             "(another recorder?); choose another path") from None
        except OSError as exc:
            raise ValueError(f"cannot create {self.partial} ({exc.strerror or exc})") from None
        # The bag inside the staging folder is named like the final one, so its file is
        # <dir>.mcap and metadata.yaml says so: the finished folder is moved, never edited.
        self._writer = Writer(self.partial / self.path.name, version=9,
                              storage_plugin=StoragePlugin.MCAP)
        try:
            self._writer.open()
        except Exception as exc:
            shutil.rmtree(self.partial, ignore_errors=True)
            raise ValueError(f"cannot start the bag in {self.partial} ({exc})") from None

        self._queue: collections.deque[tuple[str, float, Any]] = collections.deque()
        self._connections: dict[str, tuple[Any, type]] = {}  # topic -> (connection, msg class)
        self._producer_drops: dict[int, int] = {}  # thread id -> drops (one writer per key)
        self._writer_drops = 0  # written by the writer thread only
        self._recorded = 0  # written by the writer thread only
        self.errors: list[str] = []  # the first few messages that could not be written, why
        self.failure: BaseException | None = None  # why the writer stopped (e.g. disk full)
        self._accepting = True
        self._stop = threading.Event()
        self._close_calls = itertools.count()  # next() is atomic: the first close() gets 0
        self._close_threads: list[int] = []  # thread ids of the close() calls, in order
        self._closed = threading.Event()
        self._close_error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name=f"flight-recorder:{self.path.name}",
                                        daemon=True)
        self._thread.start()

    def _check_paths(self) -> None:
        p, partial = self.path, self.partial
        if p.exists() or p.is_symlink():
            if not self.overwrite:
                raise ValueError(f"{p} exists; record to another path or remove it first")
            if not _is_bag_dir(p):
                raise ValueError(f"{p} exists and is not a bag; not overwriting it")
        if (partial.exists() or partial.is_symlink()) and not self.overwrite:
            raise ValueError(f"{partial} exists (an interrupted recording?); move or remove it "
                             "first")
        why = unwritable(partial, directory=True)
        if why is not None:
            raise ValueError(f"cannot record to {p}: {why}")

    # -- the fast side -------------------------------------------------------------------
    def record(self, topic: str, msg: Any, t: float) -> None:
        """Queue ``msg`` (a message of :mod:`.messages`) on ``topic`` with the bag time stamp
        ``t`` [s] (usually ``time.time()``). Never blocks and never raises: when the queue is
        full or the recorder is closed, the message is dropped and counted."""
        q = self._queue
        if self._accepting and len(q) < self.max_queue:
            q.append((topic, t, msg))
        else:
            tid = threading.get_ident()
            d = self._producer_drops
            d[tid] = d.get(tid, 0) + 1

    @property
    def dropped(self) -> int:
        """Messages handed to :meth:`record` that are not in the bag: queue full, recorder
        closed, a message that could not be serialized, or a failed writer."""
        return sum(list(self._producer_drops.values())) + self._writer_drops

    @property
    def recorded(self) -> int:
        """Messages written to the bag so far."""
        return self._recorded

    @property
    def pending(self) -> int:
        """Messages queued and not yet written."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- the writer thread ---------------------------------------------------------------
    def _error(self, text: str) -> None:
        self._writer_drops += 1
        if len(self.errors) < _ERRORS_KEPT:
            self.errors.append(text)
            log.warning("flight recorder %s: %s", self.path, text)

    def _write_one(self, topic: str, t: float, msg: Any) -> None:
        entry = self._connections.get(topic)
        cls = msg.cls if type(msg) is _Deferred else type(msg)
        if entry is None:
            if cls not in ROS_TYPES.values():
                self._error(f"{topic}: {cls.__name__} is not a ROS 2 message type of "
                            "robot_brain.hardware.ros2.messages")
                return
            try:
                conn = self._writer.add_connection(topic, ros_type_of(cls), typestore=self._typestore)
            except Exception as exc:  # a topic name rosbag2 refuses, an unknown type
                self._error(f"{topic}: cannot add the topic ({exc})")
                self._connections[topic] = (None, cls)
                return
            entry = self._connections[topic] = (conn, cls)
        conn, expected = entry
        if conn is None:
            self._writer_drops += 1
            return
        if cls is not expected:
            self._error(f"{topic}: a {cls.__name__} on a topic of {expected.__name__}")
            return
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t >= 0):
            self._error(f"{topic}: time stamp {t!r} is not a finite time >= 0")
            return
        try:
            if type(msg) is _Deferred:
                msg = msg.build(*msg.args)
            data = msg.serialize()
        except Exception as exc:
            self._error(f"{topic}: cannot serialize the {cls.__name__} ({exc})")
            return
        self._writer.write(conn, round(t * 1e9), data)  # an OSError ends the writer (see _run)
        self._recorded += 1

    def _drain(self, limit: int | None) -> int:
        """Write up to ``limit`` queued messages (all with ``None``); returns how many."""
        q = self._queue
        n = 0
        while q and (limit is None or n < limit):
            topic, t, msg = q.popleft()
            if self.failure is not None:
                self._writer_drops += 1
            else:
                try:
                    self._write_one(topic, t, msg)
                except Exception as exc:  # the storage failed (disk full, folder removed)
                    self.failure = exc
                    self._writer_drops += 1
                    log.error("flight recorder %s: writing failed (%s); recording stopped",
                              self.path, exc)
            n += 1
        return n

    def _flush(self) -> None:
        """End the current MCAP chunk and hand the file's buffer to the OS: a process killed
        later keeps these messages in ``<dir>.partial`` (rosbags itself closes a chunk only
        every MiB, and buffers the file)."""
        storage = getattr(self._writer, "storage", None)
        chunk = getattr(storage, "chunk", None)
        if chunk is None or not hasattr(storage, "close_chunk") or not chunk.msgs:
            return
        try:
            storage.close_chunk()  # type: ignore[union-attr]
            storage.bio.flush()  # type: ignore[union-attr]
        except Exception as exc:  # the storage failed (disk full, folder removed)
            self.failure = exc
            log.error("flight recorder %s: writing failed (%s); recording stopped", self.path, exc)

    def _run(self) -> None:
        # Started by a loop at real-time priority (RobotConfig.realtime_priority), this thread
        # inherited it; writing the bag is not real-time work, so it gives the priority back.
        if hasattr(os, "sched_getscheduler") and os.sched_getscheduler(0) != os.SCHED_OTHER:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        q = self._queue
        stop = self._stop
        next_flush = time.monotonic() + self.flush_every
        while True:
            if self.failure is None and time.monotonic() >= next_flush:
                self._flush()
                next_flush = time.monotonic() + self.flush_every
            if q and stop.is_set():  # closing: the loop is done, write the rest at once
                self._drain(None)
            elif q:
                self._drain(_BATCH)
                # Let the control loop have the GIL between batches: a thread that only
                # releases it every switch interval (5 ms) would stall a 1 kHz loop.
                time.sleep(_YIELD_S)
            elif stop.is_set():  # close(): the queue is empty, no more will come
                return
            else:
                stop.wait(_POLL_S)

    # -- closing -------------------------------------------------------------------------
    def close(self) -> Path:
        """Write what is queued, finish the bag and move it to its final name; returns it.

        Idempotent and safe from a ``finally`` block or a signal handler: a second call
        (also one that interrupts the first on the same thread) does nothing more and returns
        the bag's path. Messages recorded after the close began are dropped and counted.

        :raises OSError: the bag could not be finished (disk full, folder removed ...); what was
            written stays in ``<dir>.partial``, named in the message.
        """
        me = threading.get_ident()
        self._close_threads.append(me)  # before the claim: see below
        if next(self._close_calls) != 0:
            # A later call. On another thread: wait for the first to finish. On the thread of
            # the first call (a signal handler that interrupted it, or a call after it): the
            # first one finishes, or has finished; waiting here would wait forever.
            if self._close_threads.count(me) < 2:
                self._closed.wait()
            if self._close_error is not None:
                raise self._close_error
            return self.path
        try:
            self._accepting = False
            self._stop.set()
            self._thread.join()
            self._drain(None)  # anything appended while the thread was stopping
            self._finish()
            self._writer_drops += len(self._queue)  # appended by a thread that raced the close
        except Exception as exc:  # OSError, or rosbags' WriterError
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._close_error = OSError(
                f"could not finish the recording {self.path} ({why}); what was written is in "
                f"{self.partial}")
        finally:
            self._closed.set()
        if self._close_error is not None:
            raise self._close_error
        return self.path

    def _finish(self) -> None:
        w = self._writer
        inner = self.partial / self.path.name
        if self.failure is not None:
            w.abort()
            raise OSError(f"writing failed: {self.failure}")
        w.set_custom_data("robot_brain.recorded", str(self._recorded))
        w.set_custom_data("robot_brain.dropped", str(self.dropped))
        w.close()
        for f in inner.iterdir():  # on disk before the rename makes the bag "finished"
            _fsync(f)
        _fsync(inner)
        p = self.path
        if p.exists() or p.is_symlink():
            if not (self.overwrite and _is_bag_dir(p)):
                raise OSError(f"{p} appeared during the recording; not replacing it")
            os.rename(p, self.partial / _REPLACED)  # kept until the new bag is in place
        os.rename(inner, p)
        _fsync(p.parent)
        shutil.rmtree(self.partial, ignore_errors=True)  # the bag is finished whatever happens

    def __enter__(self) -> FlightRecorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # an exception is on its way: do not replace it by a failure to close
            self.close()
        except OSError as close_exc:
            log.error("%s", close_exc)

    def __repr__(self) -> str:
        return (f"FlightRecorder({str(self.path)!r}, recorded={self.recorded}, "
                f"dropped={self.dropped}, closed={self.closed})")


class _Deferred:
    """A message to be built by the writer thread (keeps the building off the fast loop)."""

    __slots__ = ("args", "build", "cls")

    def __init__(self, cls: type, build: Callable[..., Any], args: tuple) -> None:
        self.cls = cls
        self.build = build
        self.args = args


def _values(values: Any, n: int, what: str) -> list[float]:
    out = np.asarray(values, dtype=np.float64).reshape(-1).tolist()  # a copy: live buffers ok
    if len(out) != n:
        raise ValueError(f"{what} must have {n} values, got {len(out)}")
    return out


def _pose_stamped(p: list[float], q: list[float], stamp: float, frame_id: str) -> PoseStamped:
    return PoseStamped(header=Header(stamp=time_from_sec(stamp), frame_id=frame_id),
                       pose=Pose(position=Point(x=p[0], y=p[1], z=p[2]),
                                 orientation=Quaternion(x=q[1], y=q[2], z=q[3], w=q[0])))


def _float64_array(data: list[float]) -> Float64MultiArray:
    return Float64MultiArray(data=data)


def record_setpoint(rec: FlightRecorder, t: float, position: Any, quat_wxyz: Any, stiffness: Any,
                    damping_ratio: Any, frame_id: str = "", *, stamp: float | None = None) -> None:
    """Record one executed setpoint on :data:`SETPOINT_TOPIC`, :data:`STIFFNESS_TOPIC` and
    :data:`DAMPING_RATIO_TOPIC`, all with bag time ``t`` [s].

    :param position: tool position [m] (3 values).
    :param quat_wxyz: orientation, w x y z as :class:`~robot_brain.controllers.Command` holds it
        (the PoseStamped is written in ROS order x y z w).
    :param stiffness: 6 stiffnesses (N/m x3, N m/rad x3); ``damping_ratio``: 6 ratios.
    :param frame_id: frame of the pose (the robot's base).
    :param stamp: ``header.stamp`` of the pose [s]: the time of the state the setpoint was
        computed for (default ``t``).

    The values are copied now (live buffers may be passed); the messages are built by the
    writer thread, so this costs a few microseconds. Raises ``ValueError`` on a wrong number of
    values (a programming error, not a run-time condition).
    """
    p = _values(position, 3, "position")
    q = _values(quat_wxyz, 4, "quat_wxyz")
    k = _values(stiffness, 6, "stiffness")
    z = _values(damping_ratio, 6, "damping_ratio")
    rec.record(SETPOINT_TOPIC, _Deferred(PoseStamped, _pose_stamped,
                                         (p, q, t if stamp is None else stamp, frame_id)), t)
    rec.record(STIFFNESS_TOPIC, _Deferred(Float64MultiArray, _float64_array, (k,)), t)
    rec.record(DAMPING_RATIO_TOPIC, _Deferred(Float64MultiArray, _float64_array, (z,)), t)


def _resolve_bag(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists() and bag_dir(p).is_dir():
        p = bag_dir(p)  # run.mcap naming the folder run/
    if p.is_file() and p.suffix.lower() == ".mcap" and (p.parent / "metadata.yaml").is_file():
        p = p.parent  # the MCAP file inside a bag folder: read the bag
    if not p.exists():
        hint = ""
        partial = bag_dir(p).with_name(bag_dir(p).name + PARTIAL_SUFFIX)
        if partial.exists():
            hint = f" ({partial} is an interrupted recording, not a finished bag)"
        raise ValueError(f"no bag at {path}{hint}")
    if p.is_dir() and not (p / "metadata.yaml").is_file():
        what = ("an interrupted recording" if p.name.endswith(PARTIAL_SUFFIX)
                else "not a rosbag2 bag")
        raise ValueError(f"{p} is {what} (no metadata.yaml)")
    return p


def _rosbags_decode(typestore: Any, msgtype: str, raw: bytes) -> Any:
    return typestore.deserialize_cdr(raw, msgtype)


def read_bag(path: str | os.PathLike, topics: Iterable[str] | None = None, *,
             progress: Callable[[int], object] | None = None) -> dict[str, list[tuple[float, Any]]]:
    """Every message of a bag, by topic: ``{topic: [(t, msg), ...]}`` in bag order, ``t`` the
    bag time stamp [s].

    Types of :data:`~.messages.ROS_TYPES` are read into those classes; other types known to
    ``rosbags`` (ROS 2 Humble) are read into ``rosbags``' own message classes; others are
    skipped.

    :param path: a bag folder, ``<dir>.mcap`` naming it, or an MCAP file.
    :param topics: read only these topics (default: all).
    :param progress: called with the number of messages read since its last call (every 1000
        messages and at the end), for progress bars; the total is :func:`bag_message_count`.
    :raises ValueError: one line: no bag there, or a damaged one.
    """
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    p = _resolve_bag(path)
    wanted = None if topics is None else set(topics)
    out: dict[str, list[tuple[float, Any]]] = {}
    typestore = None
    try:
        with Reader(p) as reader:
            conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
            for c in conns:
                out.setdefault(c.topic, [])
            decoders: dict[int, Callable[[bytes], Any] | None] = {}
            for c in conns:
                cls = ROS_TYPES.get(c.msgtype)
                if cls is not None:
                    decoders[c.id] = cls.deserialize
                    continue
                if typestore is None:
                    typestore = get_typestore(Stores.ROS2_HUMBLE)
                if c.msgtype in typestore.types:
                    decoders[c.id] = functools.partial(_rosbags_decode, typestore, c.msgtype)
                else:
                    decoders[c.id] = None
            n = 0
            if conns:
                for conn, ts_ns, raw in reader.messages(connections=conns):
                    decode = decoders[conn.id]
                    if decode is not None:
                        out[conn.topic].append((ts_ns * 1e-9, decode(bytes(raw))))
                    n += 1
                    if progress is not None and n % 1000 == 0:
                        progress(1000)
            if progress is not None and n % 1000:
                progress(n % 1000)
    except Exception as exc:  # rosbags' ReaderError, truncated data, a CDR that does not parse
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{p}: damaged or unreadable bag ({text})") from None
    return out


def bag_message_count(path: str | os.PathLike, topics: Iterable[str] | None = None) -> int:
    """How many messages the bag holds (on ``topics``, default all), from its index."""
    from rosbags.rosbag2 import Reader

    p = _resolve_bag(path)
    wanted = None if topics is None else set(topics)
    try:
        with Reader(p) as reader:
            return sum(c.msgcount for c in reader.connections
                       if wanted is None or c.topic in wanted)
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{p}: damaged or unreadable bag ({text})") from None


def _joint_state(names: list[str], q: list[float], dq: list[float], tau: list[float],
                 stamp: float) -> JointState:
    return JointState(header=Header(stamp=time_from_sec(stamp)), name=names, position=q,
                      velocity=dq, effort=tau)


def record_joint_state(rec: FlightRecorder, t: float, names: Sequence[str], q: Any, dq: Any,
                       tau: Any, topic: str = JOINT_STATES_TOPIC, *, stamp: float | None = None) -> None:
    """Record one measured joint state (``sensor_msgs/JointState``) of a robot that is not read
    through ROS (a serial servo arm), so its bag replays like a ROS robot's. ``t`` is the bag
    time [s]; ``stamp`` the ``header.stamp``, the time the state was measured (default ``t``).
    Copies the values now and builds the message on the writer thread, like
    :func:`record_setpoint`."""
    n = len(names)
    rec.record(topic, _Deferred(JointState, _joint_state,
                                (list(names), _values(q, n, "q"), _values(dq, n, "dq"),
                                 _values(tau, n, "tau"), t if stamp is None else stamp)), t)
