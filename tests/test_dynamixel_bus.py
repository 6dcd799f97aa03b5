"""The Dynamixel bus over a real pty against the virtual servo chain: instructions, the motor
model's response to the commands, faults (retries, timeouts, CRC errors, status errors) and port
errors. Timing is not tested here (see ``hardware/dynamixel/bench.py``); only upper bounds on
how long a failure takes."""

from __future__ import annotations

import time

import pytest

from robot_brain.hardware.dynamixel import control_table as ct
from robot_brain.hardware.dynamixel.bus import BusError, DynamixelBus, HardwareAlert
from robot_brain.hardware.dynamixel.protocol import StatusError
from robot_brain.hardware.dynamixel.virtual import Faults, JointParams, VirtualServoChain

IDS = [1, 2, 3, 4, 5, 6]
POS = ct.PRESENT_POSITION


@pytest.fixture
def chain():
    with VirtualServoChain(IDS) as c:
        yield c


@pytest.fixture
def bus(chain):
    with DynamixelBus(chain.path, timeout=0.02, retries=2) as b:
        yield b


def positions(bus: DynamixelBus) -> dict[int, int]:
    return {i: POS.decode(d) for i, d in bus.sync_read(POS.address, POS.size, IDS).items()}


def currents(value_of: dict[int, int]) -> dict[int, bytes]:
    return {i: ct.GOAL_CURRENT.encode(v) for i, v in value_of.items()}


# -- instructions ---------------------------------------------------------------------------------
def test_ping_returns_model_number(bus):
    assert [bus.ping(i) for i in IDS] == [1020] * 6


def test_ping_other_model():
    with VirtualServoChain([7], model_number=ct.XL430_W250.model_number) as c, DynamixelBus(c.path) as b:
        assert b.ping(7) == 1060
        assert ct.MODELS[b.ping(7)].name == "XL430-W250"


def test_write_read_round_trip(bus):
    bus.write(3, ct.GOAL_POSITION.address, ct.GOAL_POSITION.encode(1234))
    assert ct.GOAL_POSITION.decode(bus.read(3, ct.GOAL_POSITION.address, 4)) == 1234
    bus.write(3, ct.HOMING_OFFSET.address, ct.HOMING_OFFSET.encode(-100))  # signed, EEPROM (torque off)
    assert ct.HOMING_OFFSET.decode(bus.read(3, ct.HOMING_OFFSET.address, 4)) == -100
    assert ct.from_bytes(bus.read(4, ct.HOMING_OFFSET.address, 4), signed=True) == 0  # only servo 3
    assert bus.read(5, ct.ID.address, 1) == bytes([5])
    assert bus.stats.requests == 6 and bus.stats.retries == 0


def test_sync_read_is_one_round_trip(bus, chain):
    before = (chain.stats.packets, chain.stats.replies)
    got = positions(bus)
    assert list(got) == IDS and set(got.values()) == {2048}  # q = 0 at tick 2048
    assert (chain.stats.packets, chain.stats.replies) == (before[0] + 1, before[1] + 6)
    assert bus.stats.requests == 1
    # A subset, in the order asked; several items at once.
    block = bus.sync_read(ct.PRESENT_CURRENT.address, 10, [5, 2])
    assert list(block) == [5, 2] and all(len(d) == 10 for d in block.values())


def test_goal_current_moves_joints_with_torque_on(bus, chain):
    bus.set_operating_mode(IDS, ct.OperatingMode.CURRENT)
    bus.torque_enable(IDS, True)
    start = positions(bus)
    sign = {i: 1 if i % 2 else -1 for i in IDS}
    bus.sync_write(ct.GOAL_CURRENT.address, 2, currents({i: 80 * sign[i] for i in IDS}))
    time.sleep(0.15)
    moved = {i: p - start[i] for i, p in positions(bus).items()}
    assert all(moved[i] * sign[i] > 20 for i in IDS), moved
    # Present_Current reports the commanded current (2.69 mA units), Present_Velocity its sign.
    cur = bus.sync_read(ct.PRESENT_CURRENT.address, 2, IDS)
    assert {i: ct.PRESENT_CURRENT.decode(d) for i, d in cur.items()} == {i: 80 * sign[i] for i in IDS}
    vel = bus.sync_read(ct.PRESENT_VELOCITY.address, 4, IDS)
    assert all(ct.PRESENT_VELOCITY.decode(vel[i]) * sign[i] > 0 for i in IDS)


def test_nothing_moves_with_torque_off(bus):
    bus.set_operating_mode(IDS, ct.OperatingMode.CURRENT)
    start = positions(bus)
    bus.sync_write(ct.GOAL_CURRENT.address, 2, currents(dict.fromkeys(IDS, 300)))
    time.sleep(0.1)
    assert positions(bus) == start
    cur = bus.sync_read(ct.PRESENT_CURRENT.address, 2, IDS)
    assert all(ct.PRESENT_CURRENT.decode(d) == 0 for d in cur.values())


def test_gravity_link_falls_without_torque_and_is_held_with_it():
    joint = JointParams(link_mass=0.2, link_length=0.1)
    with VirtualServoChain([1, 2], joint=joint) as c, DynamixelBus(c.path) as b:
        b.torque_enable([1], True)  # position mode: holds where it is
        time.sleep(0.2)
        p = {i: POS.decode(d) for i, d in b.sync_read(POS.address, 4, [1, 2]).items()}
        assert abs(p[1] - 2048) < 60  # small sag under a P controller
        assert p[2] < 2048 - 100  # falls towards hanging (q = -pi/2)
        assert c.position(2) < -0.2


def test_position_mode_tracks_goal(bus):
    bus.torque_enable([2], True)
    bus.write(2, ct.GOAL_POSITION.address, ct.GOAL_POSITION.encode(2048 + 512))
    time.sleep(0.4)
    assert abs(POS.decode(bus.read(2, POS.address, 4)) - 2560) < 40


def test_operating_mode_switch(bus):
    bus.set_operating_mode(IDS, ct.OperatingMode.CURRENT_BASED_POSITION)
    assert all(bus.read(i, ct.OPERATING_MODE.address, 1) == b"\x05" for i in IDS)
    bus.set_operating_mode([1], ct.OperatingMode.CURRENT)
    assert bus.read(1, ct.OPERATING_MODE.address, 1) == b"\x00"
    bus.torque_enable([1], True)
    with pytest.raises(BusError, match=r"servo 1: torque is on"):
        bus.set_operating_mode([1], ct.OperatingMode.POSITION)
    with pytest.raises(StatusError, match="access error") as e:  # the servo refuses it too
        bus.write(1, ct.OPERATING_MODE.address, b"\x03")
    assert e.value.servo_id == 1
    with pytest.raises(ValueError):
        bus.set_operating_mode([2], 2)  # not a mode


def test_reboot_clears_hardware_error(chain, bus):
    chain.faults = Faults(error_rate=1.0)
    with pytest.raises(HardwareAlert, match="servo 2: hardware alert") as e:
        bus.read(2, POS.address, 4)
    assert POS.decode(e.value.data[2]) == 2048  # the data came with the alert
    chain.faults = Faults()
    with pytest.raises(HardwareAlert):
        bus.ping(2)  # latched until reboot
    assert bus.read(1, ct.HARDWARE_ERROR_STATUS.address, 1) == b"\x00"
    bus.reboot(2)
    assert bus.read(2, ct.HARDWARE_ERROR_STATUS.address, 1) == b"\x00"
    assert bus.stats.status_errors == 2


# -- status errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(("call", "code"), [
    (lambda b: b.write(1, ct.MODEL_NUMBER.address, b"\x00\x00"), "access error"),  # read-only
    (lambda b: b.read(1, 140, 20), "access error"),  # past the table
    (lambda b: b.write(1, ct.OPERATING_MODE.address, b"\x07"), "data range error"),
])
def test_status_error(bus, call, code):
    with pytest.raises(StatusError, match=f"servo 1: {code}"):
        call(bus)
    assert bus.stats.status_errors == 1 and bus.stats.retries == 0
    assert bus.ping(1) == 1020  # the bus is still in step


def test_sync_read_status_error_names_servo(bus):
    with pytest.raises(StatusError, match="servo 1: access error"):
        bus.sync_read(140, 20, IDS)
    assert positions(bus)  # every reply was consumed: the next request is in step


# -- faults ---------------------------------------------------------------------------------------
def test_unknown_id_times_out_naming_it(bus):
    t0 = time.perf_counter()
    with pytest.raises(BusError, match=r"servo 42: PING failed after 3 attempts .*timeout"):
        bus.ping(42)
    assert time.perf_counter() - t0 < 3 * 0.02 * 2 + 0.05
    assert bus.stats.timeouts == 3 and bus.stats.retries == 2
    with pytest.raises(BusError, match=r"no reply from \[9\]"):
        bus.sync_read(POS.address, 4, [1, 9])


def test_corrupted_replies_are_retried_then_fail_fast():
    with VirtualServoChain(IDS, faults=Faults(corrupt_rate=1.0)) as c, \
            DynamixelBus(c.path, timeout=0.05, retries=3) as b:
        t0 = time.perf_counter()
        with pytest.raises(BusError, match="bad CRC"):
            b.sync_read(POS.address, 4, IDS)
        assert time.perf_counter() - t0 < 0.1  # every reply came: no waiting for the timeout
        assert b.stats.crc_errors == 4 and b.stats.retries == 3 and b.stats.timeouts == 0


def test_lossy_link_loop_keeps_running_then_dead_link_fails_quickly():
    faults = Faults(corrupt_rate=0.05, drop_rate=0.005, seed=3)
    timeout, retries = 0.01, 2
    with VirtualServoChain(IDS, faults=faults) as c, \
            DynamixelBus(c.path, timeout=timeout, retries=retries) as b:
        b.set_operating_mode(IDS, ct.OperatingMode.CURRENT)
        b.torque_enable(IDS, True)
        zero = currents(dict.fromkeys(IDS, 0))
        errors = ok = 0
        for _ in range(2000):
            try:
                b.sync_read(ct.PRESENT_CURRENT.address, 10, IDS)
                ok += 1
            except BusError:
                errors += 1
            b.sync_write(ct.GOAL_CURRENT.address, 2, zero)
        assert ok + errors == 2000
        assert b.stats.retries > 100 and b.stats.crc_errors > 100  # ~26 % of attempts hit one
        assert errors == b.stats.bus_errors and errors < 60  # ~1.8 % fail all three attempts
        assert c.stats.corrupted > 0 and c.stats.dropped > 0

        c.faults = Faults(drop_rate=1.0)  # the chain goes silent
        for _ in range(5):
            t0 = time.perf_counter()
            with pytest.raises(BusError, match=r"servos \[1, 2, 3, 4, 5, 6\]: SYNC_READ .*timeout"):
                b.sync_read(POS.address, 4, IDS)
            assert time.perf_counter() - t0 < (retries + 1) * timeout * 1.5 + 0.02
        c.faults = Faults()
        assert len(b.sync_read(POS.address, 4, IDS)) == 6  # and recovers


def test_slow_replies_within_timeout_are_fine():
    with VirtualServoChain([1], faults=Faults(delay=0.005)) as c, DynamixelBus(c.path, timeout=0.05) as b:
        assert b.ping(1) == 1020 and b.stats.retries == 0


def test_chain_ignores_other_ids(chain, bus):
    handled = chain.stats.handled
    with pytest.raises(BusError):
        bus.write(99, ct.GOAL_CURRENT.address, ct.GOAL_CURRENT.encode(5))
    assert chain.stats.handled == handled
    bus.sync_write(ct.GOAL_CURRENT.address, 2, {1: ct.GOAL_CURRENT.encode(7), 99: b"\x01\x00"})
    assert ct.GOAL_CURRENT.decode(bus.read(1, ct.GOAL_CURRENT.address, 2)) == 7


# -- ports ----------------------------------------------------------------------------------------
def test_missing_port_names_it():
    with pytest.raises(BusError, match=r"cannot open Dynamixel bus /dev/does-not-exist-42: No such file"):
        DynamixelBus("/dev/does-not-exist-42").open()


def test_busy_port(chain, bus):
    with pytest.raises(BusError, match=f"{chain.path}: port is busy"):
        DynamixelBus(chain.path).open()


def test_closed_bus_refuses(chain):
    b = DynamixelBus(chain.path)
    with pytest.raises(BusError, match="not open"):
        b.ping(1)


def test_loop_url_opens():
    # loop:// echoes the request back: an instruction packet is not a reply, so it times out.
    with DynamixelBus("loop://", timeout=0.005, retries=0) as b, pytest.raises(BusError, match="timeout"):
        b.ping(1)


# -- the emulator against ROBOTIS's own SDK (an independent client) --------------------------------
def test_virtual_chain_answers_dynamixel_sdk(chain, monkeypatch):
    sdk = pytest.importorskip("dynamixel_sdk")
    # The SDK waits about 34 ms for a reply, busy-polling the port while holding the GIL the
    # emulator's thread needs to answer: on a loaded machine that can run out. 200 ms of slack.
    monkeypatch.setattr(sdk.port_handler, "LATENCY_TIMER", 100)
    port = sdk.PortHandler(chain.path)
    assert port.openPort() and port.setBaudRate(1_000_000)
    try:
        packet = sdk.PacketHandler(2.0)
        model, result, error = packet.ping(port, 3)
        assert (model, result, error) == (1020, sdk.COMM_SUCCESS, 0)
        result, error = packet.write4ByteTxRx(port, 3, ct.GOAL_POSITION.address, 3000)
        assert (result, error) == (sdk.COMM_SUCCESS, 0)
        group = sdk.GroupSyncRead(port, packet, POS.address, 4)
        for i in IDS:
            assert group.addParam(i)
        assert group.txRxPacket() == sdk.COMM_SUCCESS
        assert [group.getData(i, POS.address, 4) for i in IDS] == [2048] * 6
        value, result, error = packet.read4ByteTxRx(port, 3, ct.GOAL_POSITION.address)
        assert (value, result, error) == (3000, sdk.COMM_SUCCESS, 0)
    finally:
        port.closePort()


def test_permission_denied_names_the_cure(monkeypatch):
    """A device the user may not open. The tests run as root here, which may open anything, so
    pyserial's own failure is raised in its place (the exception pyserial raises for EACCES)."""
    import errno

    import serial

    def denied(url, **kwargs):
        raise serial.SerialException(errno.EACCES, f"could not open port {url}: [Errno 13] "
                                                   f"Permission denied: '{url}'")

    monkeypatch.setattr(serial, "serial_for_url", denied)
    with pytest.raises(BusError) as e:
        DynamixelBus("/dev/ttyUSB0").open()
    msg = str(e.value)
    assert msg.startswith("cannot open Dynamixel bus /dev/ttyUSB0: permission denied")
    assert "dialout" in msg and "\n" not in msg
