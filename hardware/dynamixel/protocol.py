"""Dynamixel Protocol 2.0: packets, byte stuffing, CRC-16, and a decoder that resynchronises.

Instruction packet: ``FF FF FD 00 | ID | LEN_L LEN_H | INSTR | params | CRC_L CRC_H`` with
``LEN = len(stuffed params) + 3``; a status packet is the same with ``INSTR = 0x55`` followed by an
error byte. Inside the body (from the ID to the last parameter), ``FF FF FD`` gets an extra
``FD`` (byte stuffing) so that no header appears in the middle of a packet. The CRC is CRC-16
(polynomial 0x8005, initial value 0, not reflected) over everything before it. Multi-byte values
are little-endian. ``tests/test_dynamixel_protocol.py`` checks the bytes against ROBOTIS's
``dynamixel-sdk``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "BROADCAST_ID", "HEADER", "MAX_ID", "Instruction", "Packet", "PacketDecoder", "ProtocolError",
    "StatusError", "crc16", "instruction_packet", "ping", "read", "reboot", "status_packet", "stuff",
    "sync_read", "sync_write", "unstuff", "write",
]

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_ID = 0xFC  # 253 (0xFD) is reserved, 254 (0xFE) is the broadcast id
_MAX_LENGTH = 0xFFFF


class Instruction(enum.IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REBOOT = 0x08
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83
    BULK_READ = 0x92
    BULK_WRITE = 0x93
    STATUS = 0x55


#: Status error codes (bits 0-6 of the error byte); bit 7 is the hardware-alert flag.
STATUS_ERRORS = {1: "result fail", 2: "instruction error", 3: "CRC error", 4: "data range error",
                 5: "data length error", 6: "data limit error", 7: "access error"}
HARDWARE_ALERT = 0x80


class ProtocolError(Exception):
    """A malformed packet or an argument the protocol cannot carry."""


class StatusError(ProtocolError):
    """A servo answered with an error in its status packet."""

    def __init__(self, servo_id: int, error: int) -> None:
        code = error & 0x7F
        what = STATUS_ERRORS.get(code, f"error {code}") if code else ""
        alert = "hardware alert" if error & HARDWARE_ALERT else ""
        super().__init__(f"servo {servo_id}: {' and '.join(x for x in (what, alert) if x)}")
        self.servo_id = servo_id
        self.error = error


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16 of Protocol 2.0 (polynomial 0x8005, initial value 0, no reflection)."""
    crc = 0
    for b in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Insert ``FD`` after every ``FF FF FD`` of ``body``."""
    return body.replace(b"\xff\xff\xfd", b"\xff\xff\xfd\xfd")


def unstuff(body: bytes) -> bytes:
    """Undo :func:`stuff`."""
    return body.replace(b"\xff\xff\xfd\xfd", b"\xff\xff\xfd")


def _check_id(servo_id: int, *, broadcast: bool = False) -> None:
    if not (0 <= servo_id <= MAX_ID or (broadcast and servo_id == BROADCAST_ID)):
        raise ProtocolError(f"servo id must be in 0..{MAX_ID}{' or 254' if broadcast else ''}, "
                            f"got {servo_id}")


def _packet(servo_id: int, instruction: int, params: bytes) -> bytes:
    # Stuffing applies to the instruction and the parameters (the SDK stuffs from the
    # instruction byte on; the id and length cannot form a header with them).
    body = stuff(bytes([instruction]) + params)
    length = len(body) + 2  # instruction and parameters (stuffed) + CRC
    if length > _MAX_LENGTH:
        raise ProtocolError(f"packet too long: {length} bytes")
    head = HEADER + bytes([servo_id, length & 0xFF, length >> 8]) + body
    crc = crc16(head)
    return head + bytes([crc & 0xFF, crc >> 8])


def instruction_packet(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """An instruction packet (``servo_id`` may be the broadcast id)."""
    _check_id(servo_id, broadcast=True)
    return _packet(servo_id, int(instruction), bytes(params))


def status_packet(servo_id: int, error: int = 0, params: bytes = b"") -> bytes:
    """A status packet (what a servo answers): instruction 0x55, the error byte, then data."""
    _check_id(servo_id)
    return _packet(servo_id, Instruction.STATUS, bytes([error & 0xFF]) + bytes(params))


def _u16(v: int) -> bytes:
    if not 0 <= v <= 0xFFFF:
        raise ProtocolError(f"value must fit 2 bytes, got {v}")
    return bytes([v & 0xFF, v >> 8])


def ping(servo_id: int) -> bytes:
    return instruction_packet(servo_id, Instruction.PING)


def read(servo_id: int, address: int, length: int) -> bytes:
    _check_id(servo_id)  # no broadcast read: the SDK's readTx refuses it (nothing would answer)
    return instruction_packet(servo_id, Instruction.READ, _u16(address) + _u16(length))


def write(servo_id: int, address: int, data: bytes) -> bytes:
    return instruction_packet(servo_id, Instruction.WRITE, _u16(address) + bytes(data))


def reboot(servo_id: int) -> bytes:
    return instruction_packet(servo_id, Instruction.REBOOT)


def sync_read(address: int, length: int, ids: Iterable[int]) -> bytes:
    ids = list(ids)
    for i in ids:
        _check_id(i)
    return instruction_packet(BROADCAST_ID, Instruction.SYNC_READ, _u16(address) + _u16(length) + bytes(ids))


def sync_write(address: int, length: int, data: Mapping[int, bytes]) -> bytes:
    params = _u16(address) + _u16(length)
    for i, d in data.items():
        _check_id(i)
        if len(d) != length:
            raise ProtocolError(f"sync_write data for servo {i} must be {length} bytes, got {len(d)}")
        params += bytes([i]) + bytes(d)
    return instruction_packet(BROADCAST_ID, Instruction.SYNC_WRITE, params)


@dataclass(frozen=True)
class Packet:
    """A decoded packet. For a status packet ``instruction`` is 0x55 and ``error`` the error byte
    (``params`` then excludes it); for an instruction packet ``error`` is ``None``."""

    servo_id: int
    instruction: int
    params: bytes
    error: int | None = None

    @property
    def is_status(self) -> bool:
        return self.instruction == Instruction.STATUS


class PacketDecoder:
    """Turns a byte stream into packets: tolerant of noise, truncation and bad CRCs.

    Bytes before a header are skipped (counted in :attr:`skipped`); a packet whose CRC does not
    match is dropped (:attr:`crc_errors`) and decoding resumes at the next header after its
    start, so one corrupted packet never hides the next good one. Never raises on input.
    """

    def __init__(self, max_length: int = 4096) -> None:
        self.buffer = bytearray()
        self.max_length = max_length
        self.skipped = 0
        self.crc_errors = 0
        self.malformed = 0

    def reset(self) -> None:
        self.buffer.clear()

    def feed(self, data: bytes) -> list[Packet]:
        """Add ``data``; return every complete, valid packet now in the buffer, in order."""
        buf = self.buffer
        buf += data
        out: list[Packet] = []
        while True:
            start = buf.find(HEADER)
            if start < 0:
                keep = 3 if len(buf) >= 3 else len(buf)  # a header may be split across reads
                self.skipped += len(buf) - keep
                del buf[: len(buf) - keep]
                return out
            if start:
                self.skipped += start
                del buf[:start]
            if len(buf) < 7:
                return out
            length = buf[5] | (buf[6] << 8)
            if length < 3 or length > self.max_length:
                self.malformed += 1
                del buf[:1]  # not a packet: look for the next header
                continue
            end = 7 + length
            if len(buf) < end:
                return out
            frame = bytes(buf[:end])
            if crc16(frame[:-2]) != (frame[-2] | (frame[-1] << 8)):
                self.crc_errors += 1
                del buf[:1]
                continue
            del buf[:end]
            body = unstuff(frame[7:-2])
            if not body:
                self.malformed += 1
                continue
            instr = body[0]
            if instr == Instruction.STATUS:
                if len(body) < 2:
                    self.malformed += 1
                    continue
                out.append(Packet(frame[4], instr, body[2:], body[1]))
            else:
                out.append(Packet(frame[4], instr, body[1:]))
