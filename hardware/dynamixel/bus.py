"""A Dynamixel Protocol 2.0 bus over pyserial: request/reply with retries, sync read/write.

The port is opened with :func:`serial.serial_for_url`, so a device (``/dev/ttyUSB0``), a pty
(``/dev/pts/N``, e.g. :class:`~.virtual.VirtualServoChain`), ``socket://host:port`` and
``loop://`` all work. One control tick is one :meth:`DynamixelBus.sync_read` (one request, every
servo answers in turn: one round trip for all joints) plus one :meth:`DynamixelBus.sync_write`
(no reply).

Failures: a reply with a bad CRC, a malformed reply or no reply within ``timeout`` is retried up
to ``retries`` times, then :class:`BusError` (naming servo, instruction and what failed). A servo
that answers with an error byte raises :class:`~.protocol.StatusError` at once (not retried: it
is an answer); when only the hardware-alert bit is set the readings are still valid and come with
the exception (:class:`HardwareAlert`). Counters are in :attr:`DynamixelBus.stats`.

Not thread-safe: one bus belongs to one loop.
"""

from __future__ import annotations

import errno as _errno
import os
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import serial

from ..base import BackendError
from . import protocol as proto
from .control_table import OPERATING_MODE, TORQUE_ENABLE, OperatingMode, from_bytes
from .protocol import HARDWARE_ALERT, Instruction, Packet, PacketDecoder, StatusError

__all__ = ["BusError", "BusStats", "DynamixelBus", "HardwareAlert"]

_STATUS_OVERHEAD = 11  # header 4, id 1, length 2, instruction 1, error 1, CRC 2


class BusError(BackendError):
    """The bus could not be opened, or a servo did not answer (after the retries)."""


class HardwareAlert(StatusError):
    """A reply had only the hardware-alert bit set (read ``Hardware_Error_Status`` to see why).

    The request was carried out: :attr:`data` holds what was read (``{id: bytes}``)."""

    def __init__(self, servo_id: int, error: int, data: dict[int, bytes]) -> None:
        super().__init__(servo_id, error)
        self.data = data


@dataclass
class BusStats:
    requests: int = 0  # transactions that expect a reply (retries not included)
    writes: int = 0  # sync writes (no reply)
    retries: int = 0
    timeouts: int = 0  # attempts that ended without every reply
    crc_errors: int = 0  # attempts that ended on a reply with a bad CRC
    status_errors: int = 0
    bus_errors: int = 0


class DynamixelBus:
    """A Protocol 2.0 bus on ``port`` (a device path or a pyserial URL).

    :param timeout: time for the replies of one attempt [s].
    :param retries: extra attempts after a timeout or a bad reply.
    """

    def __init__(self, port: str, baudrate: int = 1_000_000, *, timeout: float = 0.02,
                 retries: int = 2) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.retries = retries
        self.stats = BusStats()
        self._ser: Any = None
        self._decoder = PacketDecoder()
        self._sync_read_cache: dict[tuple[int, int, tuple[int, ...]], bytes] = {}

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._ser is not None

    def open(self) -> DynamixelBus:
        if self._ser is not None:
            return self
        # Reads block for a slice of the timeout at most, so a transaction ends close to it.
        slice_s = max(self.timeout / 4.0, 0.001)
        kwargs: dict[str, Any] = {"baudrate": self.baudrate, "timeout": slice_s, "write_timeout": 1.0}
        if "://" not in self.port:
            kwargs["exclusive"] = True  # a second process on the same bus is refused ("busy")
        try:
            self._ser = serial.serial_for_url(self.port, **kwargs)
        except (serial.SerialException, OSError, ValueError) as e:
            raise BusError(f"cannot open Dynamixel bus {self.port}: {_reason(e)}") from e
        sock = getattr(self._ser, "_socket", None)  # socket:// (pyserial keeps it private)
        if sock is not None:
            # A sync write gets no reply, so its segment waits for a delayed ACK (40 ms) and,
            # under Nagle's algorithm, holds back the next request: far past a tick.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._decoder.reset()
        return self

    def close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            ser.close()

    def __enter__(self) -> DynamixelBus:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- instructions -----------------------------------------------------------------------------
    def ping(self, servo_id: int) -> int:
        """The model number of ``servo_id``."""
        reply = self._transact(proto.ping(servo_id), (servo_id,), 3, Instruction.PING)
        return from_bytes(reply[servo_id][:2])

    def read(self, servo_id: int, address: int, length: int) -> bytes:
        return self._transact(proto.read(servo_id, address, length), (servo_id,), length,
                              Instruction.READ)[servo_id]

    def write(self, servo_id: int, address: int, data: bytes) -> None:
        self._transact(proto.write(servo_id, address, data), (servo_id,), 0, Instruction.WRITE)

    def reboot(self, servo_id: int) -> None:
        """Reboot ``servo_id`` (clears a hardware error; torque comes back off)."""
        self._transact(proto.reboot(servo_id), (servo_id,), 0, Instruction.REBOOT)

    def sync_read(self, address: int, length: int, ids: Sequence[int]) -> dict[int, bytes]:
        """``length`` bytes from ``address`` of every servo in ``ids``: one request, one round trip."""
        key = (address, length, tuple(ids))
        packet = self._sync_read_cache.get(key)
        if packet is None:
            packet = proto.sync_read(address, length, key[2])
            if len(self._sync_read_cache) > 64:
                self._sync_read_cache.clear()
            self._sync_read_cache[key] = packet
        return self._transact(packet, key[2], length, Instruction.SYNC_READ)

    def sync_write(self, address: int, length: int, data: Mapping[int, bytes]) -> None:
        """Write ``data[id]`` (``length`` bytes each) at ``address`` of every servo; no reply."""
        packet = proto.sync_write(address, length, data)
        self._port().write(packet)
        self.stats.writes += 1

    def torque_enable(self, ids: Iterable[int], on: bool = True) -> None:
        """Torque on for each servo, one confirmed write each (a servo with a latched hardware
        error refuses); or torque off for all of them.

        Torque off goes out first as one sync write, which needs no reply: on a bus that has
        lost its replies, or in the middle of a fault, every servo still gets it. The confirmed
        writes that follow raise :class:`BusError` if a servo did not answer.
        """
        ids = list(ids)
        if not on:
            self.sync_write(TORQUE_ENABLE.address, 1, {i: b"\x00" for i in ids})
        value = bytes([1 if on else 0])
        for i in ids:
            self.write(i, TORQUE_ENABLE.address, value)

    def set_operating_mode(self, ids: Iterable[int], mode: int) -> None:
        """Set ``Operating_Mode`` of each servo. It is in the EEPROM area: torque must be off
        (a servo with torque on refuses; this raises :class:`BusError` before trying)."""
        mode = int(OperatingMode(mode))
        for i in ids:
            if self.read(i, TORQUE_ENABLE.address, 1)[0]:
                raise BusError(f"servo {i}: torque is on; turn it off before changing the operating "
                               f"mode (Operating_Mode is in the EEPROM area)")
            self.write(i, OPERATING_MODE.address, bytes([mode]))

    # -- internals --------------------------------------------------------------------------------
    def _port(self) -> Any:
        if self._ser is None:
            raise BusError(f"Dynamixel bus {self.port} is not open")
        return self._ser

    def _transact(self, packet: bytes, ids: Sequence[int], nparams: int,
                  instruction: Instruction) -> dict[int, bytes]:
        ser = self._port()
        stats = self.stats
        stats.requests += 1
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                stats.retries += 1
            if ser.in_waiting:  # leftovers (late replies of an earlier attempt)
                ser.reset_input_buffer()
            self._decoder.reset()
            ser.write(packet)
            got, reason = self._collect(ser, ids, nparams)
            if got is not None:
                return _check_status(got, stats)
        stats.bus_errors += 1
        who = f"servo {ids[0]}" if len(ids) == 1 else f"servos {list(ids)}"
        raise BusError(f"{who}: {instruction.name} failed after {self.retries + 1} attempts on "
                       f"{self.port}: {reason}")

    def _collect(self, ser: Any, ids: Sequence[int], nparams: int,
                 ) -> tuple[dict[int, Packet] | None, str]:
        """The status packets of ``ids`` for one attempt, or ``None`` and why not."""
        decoder = self._decoder
        crc_before = decoder.crc_errors
        want = len(ids)
        got: dict[int, Packet] = {}
        bad = 0
        need = want * (_STATUS_OVERHEAD + nparams)
        deadline = time.perf_counter() + self.timeout
        while True:
            data = ser.read(need if need > 0 else max(ser.in_waiting, 1))
            if data:
                need -= len(data)
                for p in decoder.feed(data):
                    sid = p.servo_id
                    if p.error is None or sid not in ids or sid in got:
                        continue
                    if p.error == 0 and len(p.params) != nparams:
                        bad += 1  # malformed: a reply of another request or a broken servo
                        continue
                    got[sid] = p
                if len(got) == want:
                    return got, ""
                crc = decoder.crc_errors - crc_before
                if crc + bad and len(got) + crc + bad >= want:
                    break  # every reply is in, some broken: retry now rather than wait
            if time.perf_counter() >= deadline:
                break
        crc = decoder.crc_errors - crc_before
        missing = [i for i in ids if i not in got]
        if crc:
            self.stats.crc_errors += 1
            return None, f"{crc} reply(s) with a bad CRC (no valid reply from {missing})"
        if bad:
            self.stats.crc_errors += 1
            return None, f"malformed reply (no valid reply from {missing})"
        self.stats.timeouts += 1
        return None, f"timeout after {self.timeout * 1e3:.0f} ms (no reply from {missing})"


def _check_status(got: dict[int, Packet], stats: BusStats) -> dict[int, bytes]:
    out = {sid: p.params for sid, p in got.items()}
    for sid, p in got.items():
        if p.error:
            stats.status_errors += 1
            if p.error == HARDWARE_ALERT:
                raise HardwareAlert(sid, p.error, out)
            raise StatusError(sid, p.error or 0)
    return out


def _reason(e: BaseException) -> str:
    """A short reason for a failed open (pyserial wraps the OSError in its message)."""
    code = getattr(e, "errno", None)
    if isinstance(code, int) and code:
        if code == _errno.EBUSY or code == _errno.EAGAIN:
            return "port is busy (in use by another process)"
        if code == _errno.EACCES:
            return ("permission denied (add your user to the dialout group: sudo usermod -aG "
                    "dialout $USER, then log in again)")
        return os.strerror(code)
    text = str(e)
    if "exclusively lock" in text:
        return "port is busy (locked by another process)"
    return text.splitlines()[0] if text else type(e).__name__
