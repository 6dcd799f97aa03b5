"""A virtual chain of X-series servos behind a pty: test the bus without hardware.

:class:`VirtualServoChain` opens a pty pair, puts it in raw mode and serves Protocol 2.0 on the
master side from a background thread; the bus opens the slave path that :meth:`start` returns.
Each servo has a control table (a ``bytearray``) and a joint integrated in real time between
requests: inertia, viscous and Coulomb friction, optionally the gravity of a small link
(``m g l cos(q)``, ``q = 0`` horizontal), torque = torque constant x current. In CURRENT mode
``Goal_Current`` drives it. In POSITION and EXTENDED_POSITION mode the servo's own PD, from its
``Position_P_Gain`` and ``Position_D_Gain`` registers, sets the motor's PWM duty as the e-manual
describes (``KPP = P / 128`` PWM units per tick of error; the D term is taken here per tick/ms of
velocity, an assumption of the emulator), clipped to ``Goal_PWM`` and ``PWM_Limit``; the duty
drives the motor like a DC motor on a voltage, ``current = stall_current * (duty - speed /
no_load_speed)`` (the back-EMF is the servo's own damping), clipped to ``Current_Limit`` on a
model with current sensing. CURRENT_BASED_POSITION has a PD on the position that makes a
current (gains :class:`JointParams`) bounded by ``Goal_Current``; VELOCITY mode has a P loop on
the velocity. Torque off: no current, the joint coasts (and falls, with gravity).

Per model, as the real servos: a model without current sensing (XL430-W250) refuses the CURRENT
and CURRENT_BASED_POSITION modes (data range error) and has no ``Goal_Current`` or
``Current_Limit`` (a write there is an access error); address 126 is its ``Present_Load``, in
0.1 % of the stall torque. An XM430 in POSITION mode takes a ``Goal_Current`` write and ignores
it, as the e-manual says.

Position ticks: ``2048 + q / rad_per_tick + Homing_Offset`` (``q`` in rad, 0 horizontal).

Status error codes it answers: instruction error (2) for an unknown instruction, data length
error (5) for too few parameters, access error (7) for a write to a read-only item, to the EEPROM
area while torque is on, or outside the table, data range error (4) for a bad operating mode.
A set ``Hardware_Error_Status`` adds the hardware-alert bit (0x80) to every reply.

With an :class:`ArmPhysics` the joints are not independent: the servos drive one MuJoCo model of
the whole arm (gravity, the links' coupled inertia, the model's joint damping and limits), so a
rehearsal on the virtual chain behaves like the arm the brain models. A :class:`~.calibration.
Calibration` maps each joint to its servo (homing offset, direction), as on the real arm.

Faults (:class:`Faults`, seeded): dropped replies, a corrupted CRC, a hardware error raised (torque
goes off, as on a real servo), slow replies. ``chain.faults`` may be replaced while it runs.
"""

from __future__ import annotations

import math
import os
import random
import select
import socket
import threading
import time
import tty
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType

import mujoco
import numpy as np

from . import control_table as ct
from .calibration import Calibration
from .protocol import (
    BROADCAST_ID,
    HARDWARE_ALERT,
    Instruction,
    Packet,
    PacketDecoder,
    status_packet,
)

__all__ = ["ArmPhysics", "ChainStats", "Faults", "JointParams", "VirtualServo", "VirtualServoChain"]

_TABLE_SIZE = 147  # through Present_Temperature (146)
_READ_ONLY = ((0, 7), (70, 71), (120, 147))  # model number/info/firmware, hardware error, present_*
_RESULT_FAIL, _INSTRUCTION, _CRC, _RANGE, _LENGTH, _LIMIT, _ACCESS = 1, 2, 3, 4, 5, 6, 7
_CENTER = 2048
_G = 9.81
_SUBSTEP = 0.0005  # s


@dataclass
class Faults:
    """Faults of the chain, per reply, drawn from ``random.Random(seed)``.

    :param drop_rate: probability a reply is not sent.
    :param corrupt_rate: probability a reply's CRC is wrong.
    :param error_rate: probability the servo raises a hardware error (overload) before replying.
    :param delay: seconds to wait before replying.
    """

    drop_rate: float = 0.0
    corrupt_rate: float = 0.0
    error_rate: float = 0.0
    delay: float = 0.0
    seed: int = 0


@dataclass
class JointParams:
    """The joint behind each servo (output side)."""

    inertia: float = 0.01  # kg m^2
    viscous: float = 0.05  # N m s/rad
    coulomb: float = 0.02  # N m
    link_mass: float = 0.0  # kg; 0 = no gravity
    link_length: float = 0.1  # m, to the link's centre of mass
    kp: float = 5.0  # A/rad, position loop
    kd: float = 0.3  # A s/rad
    kv: float = 0.5  # A s/rad, velocity loop


@dataclass
class ChainStats:
    packets: int = 0  # instruction packets received (any id)
    handled: int = 0  # packets that concerned a servo of the chain
    replies: int = 0
    dropped: int = 0
    corrupted: int = 0
    hardware_errors: int = 0
    status_errors: int = 0  # replies with an error code (not counting the alert bit)
    bad_packets: int = 0  # bytes the decoder skipped or packets with a bad CRC


@dataclass
class VirtualServo:
    servo_id: int
    model: ct.ModelInfo
    joint: JointParams
    q: float = 0.0  # rad
    v: float = 0.0  # rad/s
    current: float = 0.0  # A
    external: float = 0.0  # N m on the output, in the servo's sense (a hand or a load; tests)
    table: bytearray = field(default_factory=lambda: bytearray(_TABLE_SIZE))

    def __post_init__(self) -> None:
        self.initial_q = self.q
        self.reset_table()

    def reset_table(self) -> None:
        t = self.table
        m = self.model
        t[:] = bytes(_TABLE_SIZE)
        self.put(ct.MODEL_NUMBER, m.model_number)
        self.put(ct.FIRMWARE_VERSION, 46)
        self.put(ct.ID, self.servo_id)
        t[8] = 3  # Baud_Rate: 1 Mbps
        self.put(ct.OPERATING_MODE, int(ct.OperatingMode.POSITION))
        self.put(ct.PWM_LIMIT, ct.PWM_MAX)
        self.put(ct.GOAL_PWM, ct.PWM_MAX)
        self.put(ct.POSITION_P_GAIN, m.position_p_gain)
        if m.current_control:
            self.put(ct.CURRENT_LIMIT, 1193)
        self.put(ct.Item("Velocity_Limit", 44, 4), 200)
        self.put(ct.Item("Max_Position_Limit", 48, 4), 4095)
        self.put(ct.PRESENT_INPUT_VOLTAGE, 120)
        self.put(ct.PRESENT_TEMPERATURE, 35)
        self.put(ct.GOAL_POSITION, self.ticks())
        self.refresh()

    def put(self, item: ct.Item, value: int) -> None:
        self.table[item.address:item.address + item.size] = ct.to_bytes(value, item.size, item.signed)

    def get(self, item: ct.Item) -> int:
        return ct.from_bytes(bytes(self.table[item.address:item.address + item.size]), item.signed)

    def ticks(self, q: float | None = None) -> int:
        q = self.q if q is None else q
        return _CENTER + round(q / self.model.rad_per_tick) + self.get(ct.HOMING_OFFSET)

    def refresh(self) -> None:
        """Present_* from the joint state."""
        m = self.model
        self.put(ct.PRESENT_POSITION, self.ticks())
        self.put(ct.PRESENT_VELOCITY, round(self.v / m.rad_s_per_unit))
        if m.current_control:
            present = round(self.current / m.amp_per_unit)
        else:  # Present_Load: 0.1 % of the stall torque (= of the stall current)
            present = round(1000.0 * self.current / (m.stall_current or 1.0))
        self.put(ct.PRESENT_CURRENT, max(-32768, min(32767, present)))

    def command_current(self) -> float:
        """The motor current the servo's own controller makes [A] (at the present speed)."""
        if not self.table[ct.TORQUE_ENABLE.address]:
            return 0.0
        m, j = self.model, self.joint
        limit = self.get(ct.CURRENT_LIMIT) * m.amp_per_unit if m.current_control else math.inf
        mode = self.table[ct.OPERATING_MODE.address]
        if mode == ct.OperatingMode.CURRENT:
            i = self.get(ct.GOAL_CURRENT) * m.amp_per_unit
        elif mode == ct.OperatingMode.VELOCITY:
            i = j.kv * (self.get(ct.GOAL_VELOCITY) * m.rad_s_per_unit - self.v)
        elif mode in (ct.OperatingMode.POSITION, ct.OperatingMode.EXTENDED_POSITION):
            i = self._pwm_position_current()
        elif mode == ct.OperatingMode.CURRENT_BASED_POSITION:
            err = (self.get(ct.GOAL_POSITION) - self.ticks()) * m.rad_per_tick
            i = j.kp * err - j.kd * self.v
            limit = min(limit, abs(self.get(ct.GOAL_CURRENT)) * m.amp_per_unit)
        else:
            i = 0.0
        return max(-limit, min(limit, i))

    def _pwm_position_current(self) -> float:
        """POSITION mode: the servo's PD makes a PWM duty, the duty drives a DC motor whose
        back-EMF opposes the speed (see the module docstring). Called every physics step for
        every servo: the registers are read straight from the table."""
        t, m = self.table, self.model
        rad_per_tick = m.rad_per_tick
        ticks = _CENTER + round(self.q / rad_per_tick) + int.from_bytes(t[20:24], "little", signed=True)
        err_ticks = int.from_bytes(t[116:120], "little", signed=True) - ticks  # Goal_Position
        v_ticks_per_ms = self.v / rad_per_tick * 1e-3
        pwm = (int.from_bytes(t[84:86], "little") / 128.0 * err_ticks  # Position_P_Gain
               - int.from_bytes(t[80:82], "little") / 16.0 * v_ticks_per_ms)  # Position_D_Gain
        bound = min(int.from_bytes(t[36:38], "little"),  # PWM_Limit, Goal_PWM
                    abs(int.from_bytes(t[100:102], "little", signed=True)))
        duty = max(-bound, min(bound, pwm)) / ct.PWM_MAX
        stall = m.stall_current or 1.0
        no_load = (m.no_load_rpm or 60.0) * (2.0 * math.pi / 60.0)  # rad/s
        return stall * (duty - self.v / no_load)

    def step(self, dt: float) -> None:
        j = self.joint
        kt = self.model.torque_constant or 1.0
        self.current = self.command_current()
        tau = kt * self.current - j.viscous * self.v + self.external
        if j.link_mass:
            tau -= j.link_mass * _G * j.link_length * math.cos(self.q)
        if abs(self.v) < 1e-3 and abs(tau) <= j.coulomb:
            self.v = 0.0  # static friction holds
            return
        tau -= math.copysign(j.coulomb, self.v if self.v else tau)
        v_new = self.v + tau / j.inertia * dt
        if self.v and (v_new > 0) != (self.v > 0) and abs(kt * self.current) <= j.coulomb:
            v_new = 0.0  # friction stops the joint, it does not reverse it
        self.v = v_new
        self.q += self.v * dt


class ArmPhysics:
    """The arm behind a chain's servos, integrated as one MuJoCo model.

    :param model: the arm; its first ``len(ids)`` DoFs are the joints, in the chain's id order
        (the order of ``ids``), driven by the servos' torques (``qfrc_applied``).
    :param calibration: maps each joint to its servo's angle: ``servo = direction * joint +
        homing_offset`` (ticks); default: offset 0, direction +1.
    """

    def __init__(self, model: mujoco.MjModel, calibration: Calibration | None = None) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.calibration = calibration
        self._backlog = 0.0  # s of real time not yet integrated (less than one step)

    def bind(self, servos: list[VirtualServo]) -> None:
        n = len(servos)
        if self.model.nv < n:
            raise ValueError(f"the arm model has {self.model.nv} joints, the chain {n} servos")
        cal = self.calibration
        if cal is not None and cal.ids != [s.servo_id for s in servos]:
            raise ValueError(f"the calibration's servo ids {cal.ids} are not the chain's "
                             f"{[s.servo_id for s in servos]}")
        self.servos = servos
        self.direction = np.array([float(j.direction) for j in cal.joints]) if cal else np.ones(n)
        self.offset = (np.array([j.homing_offset * j.model.rad_per_tick for j in cal.joints])
                       if cal else np.zeros(n))  # rad, on the servo side
        self.kt = np.array([s.model.torque_constant or 1.0 for s in servos])

    def place(self, q: Iterable[float]) -> None:
        """Put the joints at ``q`` [rad] at rest, and the servos with them."""
        d = self.data
        n = len(self.servos)
        d.qpos[:n] = list(q)
        d.qvel[:] = 0.0
        mujoco.mj_forward(self.model, d)
        self._sync()

    def place_servo(self, k: int, q_servo: float) -> None:
        """Put the ``k``-th servo's joint where the servo reads ``q_servo`` [rad], at rest."""
        q = self.data.qpos[: len(self.servos)].copy()
        q[k] = (q_servo - self.offset[k]) / self.direction[k]
        self.place(q)

    def _sync(self) -> None:
        n = len(self.servos)
        qs = self.direction * self.data.qpos[:n] + self.offset
        vs = self.direction * self.data.qvel[:n]
        for s, q, v in zip(self.servos, qs, vs, strict=True):
            s.q, s.v = float(q), float(v)

    def advance(self, dt: float) -> None:
        """Integrate ``dt`` seconds of real time in whole model steps (the rest carries over)."""
        m, d = self.model, self.data
        h = m.opt.timestep
        self._backlog += dt
        steps = int(self._backlog / h)
        self._backlog -= steps * h
        n = len(self.servos)
        external = self.direction * np.array([s.external for s in self.servos])  # steady pushes
        for _ in range(steps):
            current = np.array([s.command_current() for s in self.servos])
            d.qfrc_applied[:n] = self.direction * self.kt * current + external
            mujoco.mj_step(m, d)
            self._sync()
            for s, i in zip(self.servos, current, strict=True):
                s.current = float(i)


class VirtualServoChain:
    """Servos ``ids`` on one emulated bus (a pty); see the module docstring.

    :param initial_positions: joint angles at start [rad], one per id (default 0).
    :param arm: the arm behind the servos (default: each servo drives its own joint,
        :class:`JointParams`).
    """

    def __init__(self, ids: Iterable[int], model_number: int = 1020, *, faults: Faults | None = None,
                 joint: JointParams | None = None, initial_positions: Iterable[float] | None = None,
                 arm: ArmPhysics | None = None) -> None:
        ids = list(ids)
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate servo ids: {ids}")
        model = ct.model_info(model_number)
        q0 = list(initial_positions) if initial_positions is not None else [0.0] * len(ids)
        if len(q0) != len(ids):
            raise ValueError(f"{len(q0)} initial positions for {len(ids)} servos")
        jp = joint or JointParams()
        self.servos = {i: VirtualServo(i, model, jp, q=q) for i, q in zip(ids, q0, strict=True)}
        self.arm = arm
        if arm is not None:
            arm.bind(list(self.servos.values()))
            arm.place(q0)
            for s in self.servos.values():
                s.reset_table()
        self.faults = faults if faults is not None else Faults()
        self.stats = ChainStats()
        self._rng = random.Random(self.faults.seed)
        self._master = -1
        self._slave = -1
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last = 0.0
        self.path = ""

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, tcp_port: int | None = None) -> str:
        """Serve the chain; the port to open with the bus: a pty's slave path, or with
        ``tcp_port`` a ``socket://127.0.0.1:PORT`` URL (loopback only; one client at a time,
        a new connection replaces the old one; ``tcp_port=0`` picks a free port)."""
        if self._thread is not None:
            return self.path
        if tcp_port is None:
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)
            self.path = os.ttyname(self._slave)
        else:
            self._listener = socket.create_server(("127.0.0.1", tcp_port))
            self.path = f"socket://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop.clear()
        self._last = time.perf_counter()
        self._thread = threading.Thread(target=self._serve, name="virtual-dynamixel", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self._master = self._slave = -1
        for sock in (self._client, self._listener):
            if sock is not None:
                sock.close()
        self._client = self._listener = None

    def __enter__(self) -> VirtualServoChain:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- state (for tests; read from another thread, values are only floats) ----------------------
    def position(self, servo_id: int) -> float:
        return self.servos[servo_id].q

    def velocity(self, servo_id: int) -> float:
        return self.servos[servo_id].v

    def set_position(self, servo_id: int, q: float) -> None:
        """Put joint ``servo_id`` at ``q`` [rad], at rest (a hand moving the arm, for tests)."""
        s = self.servos[servo_id]
        if self.arm is not None:
            self.arm.place_servo(list(self.servos).index(servo_id), float(q))
            return
        s.v = 0.0
        s.q = float(q)

    def push(self, servo_id: int, torque: float) -> None:
        """Apply a steady external torque [N m] to joint ``servo_id``, in the servo's sense (a
        hand or a load on the arm, for tests); 0 removes it."""
        self.servos[servo_id].external = float(torque)

    # -- server -----------------------------------------------------------------------------------
    def _receive(self, decoder: PacketDecoder) -> bytes | None:
        """The bytes the bus sent within 10 ms (b"" if none); None when the pty is gone. On TCP,
        accepts a (new) client and treats a closed connection as no data."""
        if self._listener is None:
            ready, _, _ = select.select([self._master], [], [], 0.01)
            if not ready:
                return b""
            try:
                return os.read(self._master, 4096)
            except OSError:  # slave side gone
                return None
        listener = self._listener
        client = self._client
        watch = [listener.fileno()] + ([client.fileno()] if client is not None else [])
        ready, _, _ = select.select(watch, [], [], 0.01)
        if listener.fileno() in ready:
            if self._client is not None:
                self._client.close()
            self._client, _ = self._listener.accept()
            self._client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            decoder.reset()
            return b""
        if self._client is None or self._client.fileno() not in ready:
            return b""
        try:
            data = self._client.recv(4096)
        except OSError:
            data = b""
        if not data:  # the client hung up: wait for the next one
            self._client.close()
            self._client = None
        return data

    def _send(self, data: bytes) -> bool:
        try:
            if self._listener is None:
                os.write(self._master, data)
            elif self._client is not None:
                self._client.sendall(data)
        except OSError:
            return self._listener is not None  # a TCP client may come back; a pty does not
        return True

    def _serve(self) -> None:
        decoder = PacketDecoder()
        while not self._stop.is_set():
            data = self._receive(decoder)
            self._advance()
            if data is None:
                break
            if not data:
                continue
            before = decoder.skipped + decoder.crc_errors + decoder.malformed
            packets = decoder.feed(data)
            self.stats.bad_packets += decoder.skipped + decoder.crc_errors + decoder.malformed - before
            out = bytearray()
            for p in packets:
                if p.error is None:
                    out += self._handle(p)
            if out:
                if self.faults.delay > 0:
                    time.sleep(self.faults.delay)
                if not self._send(bytes(out)):
                    break

    def _advance(self) -> None:
        now = time.perf_counter()
        dt = min(now - self._last, 1.0)  # a stalled thread does not explode the model
        self._last = now
        if self.arm is not None:
            self.arm.advance(dt)
            for s in self.servos.values():
                s.refresh()
            return
        n = max(1, math.ceil(dt / _SUBSTEP))
        h = dt / n
        for s in self.servos.values():
            for _ in range(n):
                s.step(h)
            s.refresh()

    def _handle(self, p: Packet) -> bytes:
        self.stats.packets += 1
        sid, instr, params = p.servo_id, p.instruction, p.params
        if instr == Instruction.SYNC_READ:
            return self._sync_read(params)
        if instr == Instruction.SYNC_WRITE:
            self._sync_write(params)
            return b""
        if sid == BROADCAST_ID:
            if instr == Instruction.PING:
                return b"".join(self._reply(s, 0, self._ping_data(s)) for s in self.servos.values())
            targets = list(self.servos.values())
        elif sid in self.servos:
            targets = [self.servos[sid]]
        else:
            return b""
        self.stats.handled += 1
        out = b""
        for s in targets:
            error, data = self._execute(s, instr, params)
            if sid != BROADCAST_ID:
                out += self._reply(s, error, data)
        return out

    def _execute(self, s: VirtualServo, instr: int, params: bytes) -> tuple[int, bytes]:
        if instr == Instruction.PING:
            return 0, self._ping_data(s)
        if instr == Instruction.READ:
            if len(params) != 4:
                return _LENGTH, b""
            addr, length = params[0] | params[1] << 8, params[2] | params[3] << 8
            if addr + length > _TABLE_SIZE:
                return _ACCESS, b""
            return 0, bytes(s.table[addr:addr + length])
        if instr == Instruction.WRITE:
            if len(params) < 3:
                return _LENGTH, b""
            return self._write(s, params[0] | params[1] << 8, params[2:]), b""
        if instr == Instruction.REBOOT:
            s.reset_table()
            s.current = 0.0
            return 0, b""
        return _INSTRUCTION, b""

    @staticmethod
    def _ping_data(s: VirtualServo) -> bytes:
        return ct.to_bytes(s.model.model_number, 2) + bytes([s.table[ct.FIRMWARE_VERSION.address]])

    def _write(self, s: VirtualServo, addr: int, data: bytes) -> int:
        end = addr + len(data)
        if end > _TABLE_SIZE:
            return _ACCESS
        for lo, hi in _READ_ONLY:
            if addr < hi and end > lo:
                return _ACCESS
        if addr < ct.RAM_START and s.table[ct.TORQUE_ENABLE.address]:
            return _ACCESS
        mode_at = ct.OPERATING_MODE.address
        if addr <= mode_at < end and data[mode_at - addr] not in s.model.modes:
            return _RANGE  # not a mode, or one the model does not have (current on an XL430)
        if not s.model.current_control:
            for item in (ct.GOAL_CURRENT, ct.CURRENT_LIMIT):  # no such items on the model
                if addr < item.address + item.size and end > item.address:
                    return _ACCESS
        te = ct.TORQUE_ENABLE.address
        if addr <= te < end and data[te - addr] and s.table[ct.HARDWARE_ERROR_STATUS.address]:
            return _RESULT_FAIL  # torque cannot come on while a hardware error is latched
        if addr <= te < end and data[te - addr] and not s.table[te]:
            # Torque on: a position-mode servo starts by holding where it is.
            s.put(ct.GOAL_POSITION, s.ticks())
        s.table[addr:end] = data
        return 0

    def _sync_read(self, params: bytes) -> bytes:
        if len(params) < 5:
            return b""
        addr, length = params[0] | params[1] << 8, params[2] | params[3] << 8
        out = b""
        for sid in params[4:]:
            s = self.servos.get(sid)
            if s is None:
                continue
            self.stats.handled += 1
            if addr + length > _TABLE_SIZE:
                out += self._reply(s, _ACCESS, b"")
            else:
                out += self._reply(s, 0, bytes(s.table[addr:addr + length]))
        return out

    def _sync_write(self, params: bytes) -> None:
        if len(params) < 4:
            return
        addr, length = params[0] | params[1] << 8, params[2] | params[3] << 8
        body = params[4:]
        for k in range(0, len(body) - length, length + 1):
            s = self.servos.get(body[k])
            if s is not None:
                self.stats.handled += 1
                self._write(s, addr, body[k + 1:k + 1 + length])

    def _reply(self, s: VirtualServo, error: int, data: bytes) -> bytes:
        f, rng, st = self.faults, self._rng, self.stats
        if f.error_rate and rng.random() < f.error_rate:
            s.table[ct.HARDWARE_ERROR_STATUS.address] |= ct.HardwareError.OVERLOAD
            s.table[ct.TORQUE_ENABLE.address] = 0
            st.hardware_errors += 1
        if f.drop_rate and rng.random() < f.drop_rate:
            st.dropped += 1
            return b""
        if error:
            st.status_errors += 1
            data = b""
        if s.table[ct.HARDWARE_ERROR_STATUS.address]:
            error |= HARDWARE_ALERT
        packet = status_packet(s.servo_id, error, data)
        if f.corrupt_rate and rng.random() < f.corrupt_rate:
            st.corrupted += 1
            packet = packet[:-1] + bytes([packet[-1] ^ 0xFF])
        st.replies += 1
        return packet
