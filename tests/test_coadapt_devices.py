"""The human input devices of :mod:`robot_brain.coadapt.devices`, by their effect on ``read``.

- Keyboard: key events go straight into :meth:`KeyboardInput.key_callback`, as the MuJoCo
  viewer would call it, with a fake clock (no viewer, no waiting).
- SpaceMouse: ``pyspacemouse`` is MOCKED (a fake module in ``sys.modules``): no 3-D mouse and
  no HID library can exist on a test machine. The fake follows the library's two APIs (1.x:
  ``open()`` returns the device or ``None``, ``read()`` a new namedtuple per report; 2.x:
  ``open()`` raises when nothing is connected, ``read()`` returns one state object updated in
  place), one HID report per ``read()`` call as the real device does.
- Twist topic: REAL DDS traffic. A :class:`DdsTransport` publisher and the input's own
  subscription meet on ``NetworkConfig.loopback(domain)`` (interface ``lo``, multicast off,
  unicast peer 127.0.0.1), so nothing leaves this machine; the domains 181..189 are this suite's
  own (tests/test_ros2_dds.py uses 101..119, the backend and deploy suites 161..171), one per
  test, and topics sit under a per-process namespace.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import threading
import time
import types
from collections import namedtuple
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from robot_brain.coadapt.devices import (
    DEFAULT_TWIST_TOPIC,
    KEY_DOWN,
    KEY_LEFT,
    KEY_PAGE_DOWN,
    KEY_PAGE_UP,
    KEY_RIGHT,
    KEY_SPACE,
    KEY_UP,
    KeyboardInput,
    SpaceMouseInput,
    TwistTopicInput,
)
from robot_brain.coadapt.sensing import HumanInput, HumanView
from robot_brain.hardware.ros2.dds import DdsTransport
from robot_brain.hardware.ros2.messages import Header, Twist, TwistStamped, Vector3
from robot_brain.hardware.ros2.transport import COMMAND_QOS, NetworkConfig

VIEW = HumanView(t=0.0, tool=np.zeros(3), goals=np.zeros((2, 3)), speed=0.2)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --- keyboard ------------------------------------------------------------------------------------

@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keys(clock: FakeClock) -> KeyboardInput:
    return KeyboardInput(clock=clock)


def test_key_codes_are_glfws() -> None:
    """The viewer passes GLFW codes; ours must be the same numbers."""
    glfw = pytest.importorskip("glfw")
    assert (KEY_UP, KEY_DOWN, KEY_LEFT, KEY_RIGHT, KEY_PAGE_UP, KEY_PAGE_DOWN, KEY_SPACE) == (
        glfw.KEY_UP, glfw.KEY_DOWN, glfw.KEY_LEFT, glfw.KEY_RIGHT, glfw.KEY_PAGE_UP,
        glfw.KEY_PAGE_DOWN, glfw.KEY_SPACE)


def test_every_source_is_a_human_input(keys: KeyboardInput) -> None:
    assert isinstance(keys, HumanInput)
    assert keys.name == "keyboard"


def test_nothing_pressed_is_no_input(keys: KeyboardInput) -> None:
    assert keys.read(VIEW) is None


@pytest.mark.parametrize(("key", "expected"), [
    (KEY_UP, [1.0, 0.0, 0.0]), (KEY_DOWN, [-1.0, 0.0, 0.0]),
    (KEY_LEFT, [0.0, 1.0, 0.0]), (KEY_RIGHT, [0.0, -1.0, 0.0]),
    (KEY_PAGE_UP, [0.0, 0.0, 1.0]), (KEY_PAGE_DOWN, [0.0, 0.0, -1.0]),
])
def test_each_key_commands_its_axis(keys: KeyboardInput, key: int, expected: list[float]) -> None:
    keys.key_callback(key)
    np.testing.assert_array_equal(keys.read(VIEW), expected)


def test_a_press_lasts_hold_s_then_decays_to_no_input(keys: KeyboardInput, clock: FakeClock) -> None:
    keys.key_callback(KEY_UP)
    clock.t += 0.24
    np.testing.assert_array_equal(keys.read(VIEW), [1.0, 0.0, 0.0])
    clock.t += 0.02  # 0.26 s after the press
    assert keys.read(VIEW) is None


def test_key_repeats_keep_a_held_key_alive(keys: KeyboardInput, clock: FakeClock) -> None:
    """The OS repeats a held key; each repeat restarts hold_s, so a long press never drops out."""
    for _ in range(30):  # 3 s of repeats every 0.1 s
        keys.key_callback(KEY_LEFT)
        clock.t += 0.1
        np.testing.assert_array_equal(keys.read(VIEW), [0.0, 1.0, 0.0])
    clock.t += 0.2  # released: 0.3 s since the last repeat
    assert keys.read(VIEW) is None


def test_hold_s_and_gain_are_settings(clock: FakeClock) -> None:
    keys = KeyboardInput(gain=0.4, hold_s=1.0, clock=clock)
    keys.key_callback(KEY_PAGE_DOWN)
    clock.t += 0.9
    np.testing.assert_allclose(keys.read(VIEW), [0.0, 0.0, -0.4])
    clock.t += 0.2
    assert keys.read(VIEW) is None


def test_keys_on_different_axes_combine_at_the_same_speed(keys: KeyboardInput, clock: FakeClock) -> None:
    keys.key_callback(KEY_UP)
    clock.t += 0.1
    keys.key_callback(KEY_RIGHT)
    got = keys.read(VIEW)
    assert got is not None
    np.testing.assert_allclose(got, np.array([1.0, -1.0, 0.0]) / math.sqrt(2))
    keys.key_callback(KEY_PAGE_UP)
    got = keys.read(VIEW)
    assert got is not None
    np.testing.assert_allclose(got, np.array([1.0, -1.0, 1.0]) / math.sqrt(3))
    clock.t += 0.2  # UP (0.3 s ago) has lapsed, RIGHT and PAGE_UP (0.2 s) have not
    got = keys.read(VIEW)
    assert got is not None
    np.testing.assert_allclose(got, np.array([0.0, -1.0, 1.0]) / math.sqrt(2))


def test_on_one_axis_the_latest_press_wins(keys: KeyboardInput) -> None:
    keys.key_callback(KEY_UP)
    keys.key_callback(KEY_DOWN)
    np.testing.assert_array_equal(keys.read(VIEW), [-1.0, 0.0, 0.0])


def test_space_stops_everything_then_decays(keys: KeyboardInput, clock: FakeClock) -> None:
    keys.key_callback(KEY_UP)
    keys.key_callback(KEY_LEFT)
    clock.t += 0.1
    keys.key_callback(KEY_SPACE)
    np.testing.assert_array_equal(keys.read(VIEW), [0.0, 0.0, 0.0])  # an explicit "stay"
    clock.t += 0.24
    np.testing.assert_array_equal(keys.read(VIEW), [0.0, 0.0, 0.0])
    clock.t += 0.02
    assert keys.read(VIEW) is None


def test_a_key_after_space_moves_again(keys: KeyboardInput) -> None:
    keys.key_callback(KEY_SPACE)
    keys.key_callback(KEY_PAGE_UP)
    np.testing.assert_array_equal(keys.read(VIEW), [0.0, 0.0, 1.0])


def test_other_keys_are_ignored(keys: KeyboardInput) -> None:
    for code in (ord("A"), 256, 0, -1, 10_000):  # a letter, ESC, nonsense
        keys.key_callback(code)
    assert keys.read(VIEW) is None


def test_reset_forgets_held_keys(keys: KeyboardInput) -> None:
    keys.key_callback(KEY_UP)
    keys.reset(1)
    assert keys.read(VIEW) is None
    keys.key_callback(KEY_SPACE)
    keys.reset(2)
    assert keys.read(VIEW) is None
    keys.close()


def test_presses_from_the_viewer_thread_combine_with_reads(keys: KeyboardInput) -> None:
    """Presses arrive on other threads while the loop reads: every read sees a whole command
    (one of the three the presses can make), and the two axes end up combined."""
    allowed = [np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0]),
               np.array([1.0, 0.0, -1.0]) / math.sqrt(2)]
    start = threading.Barrier(3)

    def press(code: int) -> None:
        start.wait()
        for _ in range(2000):
            keys.key_callback(code)

    threads = [threading.Thread(target=press, args=(c,)) for c in (KEY_UP, KEY_PAGE_DOWN)]
    for th in threads:
        th.start()
    start.wait()
    pressing, pressed = True, False
    while pressing:  # read at least once after both threads are done
        pressing = any(th.is_alive() for th in threads)
        got = keys.read(VIEW)
        if got is None:
            assert not pressed  # the clock stands still: once pressed, a key stays held
            continue
        pressed = True
        assert any(np.allclose(got, a) for a in allowed), got
    for th in threads:
        th.join()
    np.testing.assert_allclose(keys.read(VIEW), allowed[2])


@pytest.mark.parametrize("kwargs", [{"hold_s": 0.0}, {"hold_s": math.nan}, {"gain": -1.0},
                                    {"gain": math.inf}])
def test_keyboard_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        KeyboardInput(**kwargs)


# --- SpaceMouse (pyspacemouse mocked: no device and no HID library can exist here) --------------

State1 = namedtuple("State1", ["t", "x", "y", "z", "roll", "pitch", "yaw", "buttons"])


class State2:
    """pyspacemouse 2.x's state: one mutable object, updated in place by each report."""

    def __init__(self) -> None:
        self.t = self.x = self.y = self.z = self.roll = self.pitch = self.yaw = 0.0
        self.buttons = [0, 0]


class FakeSpaceMouse:
    """A device with a queue of HID reports; ``read()`` processes at most one, as the real one
    does (one ``hid.read`` per call), stamping the state with a new ``t``."""

    def __init__(self, in_place: bool) -> None:
        self.in_place = in_place
        self.pending: list[tuple[float, float, float]] = []
        self._stamp = itertools.count(1)
        self.state: Any = State2() if in_place else State1(-1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, [0, 0])
        self.reads = 0
        self.closed = 0

    def send(self, *reports: tuple[float, float, float]) -> None:
        self.pending += reports

    def read(self) -> Any:
        self.reads += 1
        if self.pending:
            x, y, z = self.pending.pop(0)
            t = float(next(self._stamp))
            if self.in_place:
                self.state.t, self.state.x, self.state.y, self.state.z = t, x, y, z
            else:
                self.state = self.state._replace(t=t, x=x, y=y, z=z)
        return self.state

    def close(self) -> None:
        self.closed += 1


@pytest.fixture(params=["1.x", "2.x"])
def mouse(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FakeSpaceMouse:
    """The fake device behind a fake ``pyspacemouse`` module, in both API generations."""
    device = FakeSpaceMouse(in_place=request.param == "2.x")
    module = types.ModuleType("pyspacemouse")
    module.opened_with = []  # type: ignore[attr-defined]

    def open_(**kwargs: Any) -> FakeSpaceMouse:
        module.opened_with.append(kwargs)  # type: ignore[attr-defined]
        return device

    module.open = open_  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyspacemouse", module)
    return device


def make_mouse(clock: FakeClock, **kwargs: Any) -> SpaceMouseInput:
    return SpaceMouseInput(clock=clock, **kwargs)


def test_missing_pyspacemouse_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspacemouse", None)  # `import pyspacemouse` fails
    with pytest.raises(ValueError,
                       match=r"^--human spacemouse needs pyspacemouse: pip install pyspacemouse$"):
        SpaceMouseInput()


def test_no_device_is_a_one_line_error_1x(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("pyspacemouse")
    module.open = lambda **kwargs: None  # type: ignore[attr-defined]  # 1.x: None, prints why
    monkeypatch.setitem(sys.modules, "pyspacemouse", module)
    with pytest.raises(ValueError, match="no SpaceMouse opened") as err:
        SpaceMouseInput()
    assert "\n" not in str(err.value)


def test_no_device_is_a_one_line_error_2x(monkeypatch: pytest.MonkeyPatch) -> None:
    def open_(**kwargs: Any) -> Any:
        raise RuntimeError("No connected or supported devices found.\nmore detail")

    module = types.ModuleType("pyspacemouse")
    module.open = open_  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyspacemouse", module)
    with pytest.raises(ValueError, match=r"no SpaceMouse opened \(No connected or supported devices "
                                         r"found\.\); check that it is plugged in") as err:
        SpaceMouseInput()
    assert "\n" not in str(err.value)


def test_spacemouse_is_a_human_input(mouse: FakeSpaceMouse, clock: FakeClock) -> None:
    src = make_mouse(clock)
    assert isinstance(src, HumanInput)
    assert src.name == "spacemouse"
    assert sys.modules["pyspacemouse"].opened_with == [{}]  # type: ignore[attr-defined]


def test_device_name_is_passed_to_open(mouse: FakeSpaceMouse, clock: FakeClock) -> None:
    make_mouse(clock, device="SpaceMouse Compact")
    assert sys.modules["pyspacemouse"].opened_with == [  # type: ignore[attr-defined]
        {"device": "SpaceMouse Compact"}]


def test_no_report_yet_is_no_input(mouse: FakeSpaceMouse, clock: FakeClock) -> None:
    assert make_mouse(clock).read(VIEW) is None


def test_translation_maps_through_the_deadband(mouse: FakeSpaceMouse, clock: FakeClock) -> None:
    src = make_mouse(clock)
    mouse.send((0.5, -0.04, -1.0))
    got = src.read(VIEW)
    assert got is not None
    # 0.5 -> (0.5 - 0.05) / 0.95: 0 at the deadband's edge, 1 at full deflection
    np.testing.assert_allclose(got, [0.45 / 0.95, 0.0, -1.0])


def test_a_resting_cap_is_no_input(mouse: FakeSpaceMouse, clock: FakeClock) -> None:
    src = make_mouse(clock)
    mouse.send((0.03, -0.049, 0.01))  # sensor noise of a cap at rest
    assert src.read(VIEW) is None


def test_axes_signs_and_gain_are_settings(mouse: FakeSpaceMouse, clock: FakeClock) -> None:
    src = make_mouse(clock, axes=("y", "x", "z"), signs=(-1.0, 1.0, 0.5), gain=0.5, deadband=0.0)
    mouse.send((0.2, 0.6, -0.4))
    np.testing.assert_allclose(src.read(VIEW), [-0.3, 0.1, -0.1])


def test_every_waiting_report_is_read_and_the_last_counts(mouse: FakeSpaceMouse, clock: FakeClock) -> None:
    """~13 reports arrive per 20 Hz tick; one read per tick would fall further behind each tick."""
    src = make_mouse(clock, deadband=0.0)
    mouse.send(*[(0.01 * i, 0.0, 0.0) for i in range(1, 41)])
    np.testing.assert_allclose(src.read(VIEW), [0.4, 0.0, 0.0])
    assert not mouse.pending


def test_a_silent_device_goes_stale(mouse: FakeSpaceMouse, clock: FakeClock) -> None:
    """While displaced the cap reports every 8-16 ms; silence means it is gone or resting."""
    src = make_mouse(clock, stale_s=0.25)
    mouse.send((0.0, 0.0, 0.8))
    assert src.read(VIEW) is not None
    clock.t += 0.2
    assert src.read(VIEW) is not None  # no new report yet, still within stale_s
    clock.t += 0.1
    assert src.read(VIEW) is None
    mouse.send((0.0, 0.0, 0.8))  # reports again
    assert src.read(VIEW) is not None


def test_reset_drops_the_previous_trial(mouse: FakeSpaceMouse, clock: FakeClock) -> None:
    src = make_mouse(clock)
    mouse.send((0.9, 0.0, 0.0))
    src.reset(1)
    assert src.read(VIEW) is None
    mouse.send((0.0, 0.9, 0.0))
    got = src.read(VIEW)
    assert got is not None and got[1] > 0.8 and got[0] == 0.0


def test_close_closes_the_device_once(mouse: FakeSpaceMouse, clock: FakeClock) -> None:
    src = make_mouse(clock)
    src.close()
    src.close()
    assert mouse.closed == 1
    mouse.send((0.9, 0.0, 0.0))
    assert src.read(VIEW) is None


@pytest.mark.parametrize("kwargs", [{"deadband": 1.0}, {"deadband": -0.1}, {"signs": (1.0, 1.0)},
                                    {"signs": (1.0, math.nan, 1.0)}, {"axes": ("x", "x", "z")},
                                    {"axes": ("x", "y", "roll")}, {"stale_s": 0.0}, {"gain": 0.0}])
def test_spacemouse_settings_are_checked(mouse: FakeSpaceMouse, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SpaceMouseInput(**kwargs)


# --- ROS 2 twist topic over real loopback DDS ----------------------------------------------------

DOMAINS = range(181, 190)  # this suite's DDS domains (see the module docstring)
NS = f"rb_coadapt_test_{os.getpid()}"
DEADLINE = 10.0  # s; discovery on loopback takes well under a second
_next_domain = itertools.cycle(DOMAINS)


@pytest.fixture
def network() -> NetworkConfig:
    return NetworkConfig.loopback(next(_next_domain))


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Register things with a ``close()`` to close after the test, pass or fail."""
    made: list[Any] = []

    def register(obj: Any) -> Any:
        made.append(obj)
        return obj

    yield register
    for obj in reversed(made):
        obj.close()


def twist(x: float, y: float, z: float, frame: str = "base") -> TwistStamped:
    return TwistStamped(Header(frame_id=frame),
                        Twist(linear=Vector3(x, y, z), angular=Vector3(0.0, 0.0, 9.0)))


def read_until(src: TwistTopicInput, pub: Any, msg: TwistStamped, accept: Callable[[np.ndarray], bool],
               deadline: float = DEADLINE) -> np.ndarray:
    """Publish ``msg`` until a read returns a command ``accept`` takes (discovery takes a moment)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        pub.publish(msg)
        time.sleep(0.01)
        got = src.read(VIEW)
        if got is not None and accept(got):
            return got
    raise AssertionError(f"no accepted command within {deadline} s")


def test_twist_arrives_as_a_fraction_of_the_top_speed(network: NetworkConfig,
                                                      closing: Callable[[Any], Any]) -> None:
    src = closing(TwistTopicInput(f"{NS}/human_twist", transport="dds", network=network))
    assert src.topic == f"/{NS}/human_twist"  # relative names are made absolute
    assert isinstance(src, HumanInput)
    assert src.name == "ros2"
    pub = closing(DdsTransport(network)).publisher(f"/{NS}/human_twist", TwistStamped, COMMAND_QOS)
    assert src.read(VIEW) is None  # nothing published yet
    got = read_until(src, pub, twist(0.1, -0.05, 0.02), lambda g: True)
    np.testing.assert_allclose(got, [0.5, -0.25, 0.1])  # m/s over VIEW.speed = 0.2 m/s
    # The latest message wins over what was received before.
    got = read_until(src, pub, twist(0.0, 0.0, -0.3), lambda g: g[2] < 0)
    np.testing.assert_allclose(got, [0.0, 0.0, -1.5])  # not clipped: the guard's job
    assert src.received >= 2


def test_twist_goes_stale_after_timeout(network: NetworkConfig, closing: Callable[[Any], Any]) -> None:
    clock = FakeClock()
    src = closing(TwistTopicInput(f"/{NS}/stale", transport="dds", network=network, timeout_s=0.3,
                                  clock=clock))
    pub = closing(DdsTransport(network)).publisher(f"/{NS}/stale", TwistStamped, COMMAND_QOS)
    read_until(src, pub, twist(0.2, 0.0, 0.0), lambda g: True)
    time.sleep(0.1)  # probes still in flight land now
    src.read(VIEW)
    clock.t += 0.29
    np.testing.assert_allclose(src.read(VIEW), [1.0, 0.0, 0.0])
    clock.t += 0.02  # 0.31 s since the last message arrived
    assert src.read(VIEW) is None
    got = read_until(src, pub, twist(0.0, 0.1, 0.0), lambda g: True)  # the publisher is back
    np.testing.assert_allclose(got, [0.0, 0.5, 0.0])


def test_twist_stale_with_the_real_clock(network: NetworkConfig, closing: Callable[[Any], Any]) -> None:
    src = closing(TwistTopicInput(f"/{NS}/real_clock", transport="dds", network=network, timeout_s=0.1))
    pub = closing(DdsTransport(network)).publisher(f"/{NS}/real_clock", TwistStamped, COMMAND_QOS)
    read_until(src, pub, twist(0.2, 0.0, 0.0), lambda g: True)
    time.sleep(0.3)
    src.read(VIEW)  # takes anything still in flight
    time.sleep(0.15)
    assert src.read(VIEW) is None


def test_nan_twist_is_passed_on_not_raised(network: NetworkConfig, closing: Callable[[Any], Any]) -> None:
    """A malformed command is the InputGuard's to refuse; the source reports what came."""
    src = closing(TwistTopicInput(f"/{NS}/nan", transport="dds", network=network))
    pub = closing(DdsTransport(network)).publisher(f"/{NS}/nan", TwistStamped, COMMAND_QOS)
    got = read_until(src, pub, twist(math.nan, math.inf, 0.1), lambda g: True)
    assert math.isnan(got[0]) and got[1] == math.inf and got[2] == pytest.approx(0.5)


def test_reset_drops_the_previous_trials_twist(network: NetworkConfig,
                                               closing: Callable[[Any], Any]) -> None:
    src = closing(TwistTopicInput(f"/{NS}/reset", transport="dds", network=network, timeout_s=5.0))
    pub = closing(DdsTransport(network)).publisher(f"/{NS}/reset", TwistStamped, COMMAND_QOS)
    read_until(src, pub, twist(0.2, 0.0, 0.0), lambda g: True)
    time.sleep(0.1)
    src.reset(1)
    assert src.read(VIEW) is None
    got = read_until(src, pub, twist(0.0, 0.0, 0.1), lambda g: True)
    np.testing.assert_allclose(got, [0.0, 0.0, 0.5])


def test_close_leaves_and_reads_no_input(network: NetworkConfig) -> None:
    src = TwistTopicInput(f"/{NS}/close", transport="dds", network=network)
    src.close()
    src.close()
    assert src.read(VIEW) is None
    src.reset(2)


def test_twist_topic_and_settings_are_checked() -> None:
    assert DEFAULT_TWIST_TOPIC == "/robot_brain/human_twist"
    with pytest.raises(ValueError, match="human twist topic '/bad topic' is not a valid ROS 2 topic"):
        TwistTopicInput("/bad topic", transport="dds")
    with pytest.raises(ValueError, match="timeout_s"):
        TwistTopicInput(timeout_s=0.0, transport="dds")
    with pytest.raises(ValueError, match="transport must be one of"):
        TwistTopicInput(transport="zmq")
