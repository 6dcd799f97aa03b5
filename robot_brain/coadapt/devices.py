"""Real human input devices behind :class:`~.sensing.HumanInput`: the MuJoCo viewer's keyboard,
a 3Dconnexion SpaceMouse, and a ROS 2 ``geometry_msgs/TwistStamped`` topic.

Each source reports the commanded tool velocity as a fraction of ``view.speed`` (3,), or ``None``
when the human gives no input now. The sources map what their device says and nothing more: NaN,
absurd magnitudes and norms above 1 are :class:`~.sensing.InputGuard`'s to filter, so a source
never clips, and ``read`` never raises on a malformed message (it returns what came, or ``None``).

Each source goes quiet by itself when its human stops: a key is only held for ``hold_s`` after
its last press (the viewer reports no releases), the SpaceMouse only counts while it is sending
reports, and a twist is only followed while messages keep arriving. A frozen device or a dead
publisher therefore ends in "no input" (the robot holds), never in a command repeated forever.
"""

from __future__ import annotations

import importlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from robot_brain.hardware.ros2.messages import TwistStamped
from robot_brain.hardware.ros2.transport import (
    STATE_QOS,
    NetworkConfig,
    Subscription,
    Transport,
    check_topic,
    make_transport,
)

from .sensing import HumanView

__all__ = [
    "DEFAULT_TWIST_TOPIC", "KEY_AXES", "KEY_DOWN", "KEY_LEFT", "KEY_PAGE_DOWN", "KEY_PAGE_UP",
    "KEY_RIGHT", "KEY_SPACE", "KEY_UP", "KeyboardInput", "SpaceMouseInput", "TwistTopicInput",
]

Clock = Callable[[], float]

# GLFW key codes (glfw3.h), what ``mujoco.viewer.launch_passive(key_callback=...)`` passes.
KEY_SPACE = 32
KEY_RIGHT = 262
KEY_LEFT = 263
KEY_DOWN = 264
KEY_UP = 265
KEY_PAGE_UP = 266
KEY_PAGE_DOWN = 267

#: Key -> (axis, sign): up/down arrows move along x (away from / toward the base), left/right
#: along y (+y is left), page up/down along z.
KEY_AXES: dict[int, tuple[int, float]] = {
    KEY_UP: (0, 1.0), KEY_DOWN: (0, -1.0),
    KEY_LEFT: (1, 1.0), KEY_RIGHT: (1, -1.0),
    KEY_PAGE_UP: (2, 1.0), KEY_PAGE_DOWN: (2, -1.0),
}

DEFAULT_TWIST_TOPIC = "/robot_brain/human_twist"

# A SpaceNavigator sends a translation and a rotation report every 8 ms while its cap is
# displaced, zeros three times on release, then nothing (FreeSpacenav/spacenavd#108); a
# SpaceMouse Wireless every 16 ms. At a 20 Hz slow tick that is ~13 reports per tick, so each
# read drains the queue (else the command lags further behind the hand every tick), with a bound
# so a device that never stops answering cannot stall the tick.
_MAX_REPORTS_PER_READ = 256
_SPACEMOUSE_AXES = ("x", "y", "z")


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


# --- keyboard ------------------------------------------------------------------------------------

class KeyboardInput:
    """Arrow keys and page up/down in the MuJoCo viewer steer the tool; space stops it.

    Pass :meth:`key_callback` to ``mujoco.viewer.launch_passive(..., key_callback=...)``. The
    viewer reports presses (and the OS's key repeats) but no releases, so a key commands its
    direction for ``hold_s`` after its last press and then decays to no input: holding a key
    keeps it alive through the repeats, letting go ends it within ``hold_s``. Keys on different
    axes combine (up + left moves diagonally); on one axis the latest press wins. The command
    has norm ``gain`` whatever the number of keys, so a diagonal is not faster than a straight
    line. Space is an explicit stop: a zero command (the human says "stay", which the
    arbitration may treat otherwise than silence) for ``hold_s``, then no input.

    Thread-safe: :meth:`key_callback` runs on the viewer thread, :meth:`read` on the loop's.

    :param gain: norm of the command while keys are held (a fraction of the task's top speed).
    :param hold_s: how long one press lasts [s]. The OS's first repeat comes 250-600 ms after
        the press, so a short ``hold_s`` stutters once at the start of a long press; a long one
        coasts longer after the release.
    :param clock: monotonic time source [s] (injectable for tests).
    """

    name = "keyboard"

    def __init__(self, *, gain: float = 1.0, hold_s: float = 0.25,
                 clock: Clock = time.monotonic) -> None:
        self.gain = _positive("gain", gain)
        self.hold_s = _positive("hold_s", hold_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._pressed: list[tuple[float, float] | None] = [None, None, None]  # (sign, press time)
        self._stopped_at: float | None = None

    def key_callback(self, keycode: int) -> None:
        """Viewer-thread callback for one press or repeat; keys without a meaning here are
        ignored (the viewer's own keys keep working)."""
        now = self._clock()
        with self._lock:
            if keycode == KEY_SPACE:
                self._pressed = [None, None, None]
                self._stopped_at = now
            elif keycode in KEY_AXES:
                axis, sign = KEY_AXES[keycode]
                self._pressed[axis] = (sign, now)
                self._stopped_at = None

    def reset(self, trial: int) -> None:
        """Forget every press: a key held at the end of one trial does not steer the next."""
        with self._lock:
            self._pressed = [None, None, None]
            self._stopped_at = None

    def read(self, view: HumanView) -> np.ndarray | None:
        now = self._clock()
        with self._lock:
            held = [(axis, p[0]) for axis, p in enumerate(self._pressed)
                    if p is not None and now - p[1] < self.hold_s]
            stopped = self._stopped_at is not None and now - self._stopped_at < self.hold_s
        if held:
            command = np.zeros(3)
            for axis, sign in held:
                command[axis] = sign
            return self.gain * command / np.linalg.norm(command)
        return np.zeros(3) if stopped else None

    def close(self) -> None:
        """Nothing to release: the viewer owns the keyboard."""


# --- SpaceMouse ----------------------------------------------------------------------------------

def _import_pyspacemouse() -> Any:
    try:
        return importlib.import_module("pyspacemouse")
    except ImportError:
        raise ValueError("--human spacemouse needs pyspacemouse: pip install pyspacemouse") from None
    except OSError as exc:  # easyhid loads the hidapi C library when imported
        raise ValueError(f"pyspacemouse does not load ({exc}); install the hidapi library "
                         f"(Debian/Ubuntu: sudo apt install libhidapi-dev)") from None


class SpaceMouseInput:
    """A 3Dconnexion SpaceMouse through ``pyspacemouse`` (``pip install pyspacemouse``).

    The cap's translation (``x, y, z`` in [-1, 1]) becomes the command: each robot axis takes
    the device axis ``axes[i]`` times ``signs[i]``, then a deadband (a resting cap never reads
    exactly 0) rescaled so the command starts at 0 at the deadband's edge and full deflection
    is still full speed, times ``gain``. A cap inside the deadband on all three axes is no input.
    So is a device that has sent nothing for ``stale_s``: it reports continuously while the
    cap is displaced, so silence means it rests or went away. Rotations and buttons are not used.

    The device is opened here (both pyspacemouse APIs: 1.x ``open()`` returning the device or
    ``None``, 2.x returning it or raising), so a missing library or device fails at
    construction with a one-line ``ValueError`` naming the fix, not in the first trial.

    :param deadband: per-axis deadband, a fraction of full deflection in [0, 1).
    :param signs: sign (or scale) per robot axis, to match the device to the robot's base frame.
    :param axes: which device axis drives robot x, y, z (a permutation of ``"x", "y", "z"``).
    :param gain: scale of the command (full deflection commands ``gain`` of the top speed).
    :param stale_s: how long without a report before the device counts as silent [s].
    :param device: pyspacemouse's device name (``"SpaceMouse Compact"``); ``None``: the first found.
    :param clock: monotonic time source [s] (injectable for tests).
    :raises ValueError: pyspacemouse missing, or no device opened.
    """

    name = "spacemouse"

    def __init__(self, *, deadband: float = 0.05, signs: tuple[float, float, float] = (1.0, 1.0, 1.0),
                 axes: tuple[str, str, str] = _SPACEMOUSE_AXES, gain: float = 1.0,
                 stale_s: float = 0.25, device: str | None = None,
                 clock: Clock = time.monotonic) -> None:
        if isinstance(deadband, bool) or not isinstance(deadband, (int, float)) \
                or not 0.0 <= deadband < 1.0:
            raise ValueError(f"deadband must be in [0, 1), got {deadband!r}")
        if len(signs) != 3 or not all(isinstance(s, (int, float)) and math.isfinite(s) for s in signs):
            raise ValueError(f"signs must be 3 finite numbers, got {signs!r}")
        if sorted(axes) != sorted(_SPACEMOUSE_AXES):
            raise ValueError(f"axes must be a permutation of x, y, z, got {axes!r}")
        self.deadband = float(deadband)
        self.signs = np.asarray(signs, dtype=np.float64)
        self.axes = tuple(axes)
        self.gain = _positive("gain", gain)
        self.stale_s = _positive("stale_s", stale_s)
        self._clock = clock
        self._device = self._open(device)
        self._last_t: float | None = None  # the device's timestamp of the last report seen
        self._raw = np.zeros(3)  # device x, y, z of the last report, robot axis order
        self._heard_at = -math.inf  # local time a new report last came in

    @staticmethod
    def _open(device: str | None) -> Any:
        psm = _import_pyspacemouse()
        hint = ("check that it is plugged in and that /dev/hidraw* is readable (a udev rule, "
                "see pyspacemouse's README)")
        try:
            opened = psm.open(device=device) if device else psm.open()
        except Exception as exc:  # 2.x raises (RuntimeError, ValueError); hidapi raises OSError
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"no SpaceMouse opened ({first}); {hint}") from None
        if opened is None:  # 1.x returns None (and prints why)
            raise ValueError(f"no SpaceMouse opened; {hint}")
        return opened

    def _drain(self) -> bool:
        """Read every report waiting; ``True`` if at least one was new. A report stamps the
        state with a new ``t``; an unchanged ``t`` means nothing was waiting."""
        fresh = False
        for _ in range(_MAX_REPORTS_PER_READ):
            state = self._device.read()
            if state is None:  # 1.x: the device is not open
                break
            t = state.t
            if self._last_t is not None and t == self._last_t:
                break
            self._last_t = t
            # Copy now: pyspacemouse 2.x hands the same state object back, updated in place.
            self._raw = np.array([getattr(state, a) for a in self.axes], dtype=np.float64)
            fresh = True
        return fresh

    def reset(self, trial: int) -> None:
        """Drop what the device said before this trial; a cap held now reports again within
        milliseconds."""
        self._drain()
        self._heard_at = -math.inf

    def read(self, view: HumanView) -> np.ndarray | None:
        """The cap's translation as a command, or ``None`` at rest or when silent.

        Whatever pyspacemouse raises when the device goes away (unplugged) is passed on: a
        device fault, not "no input".
        """
        now = self._clock()
        if self._drain():
            self._heard_at = now
        if now - self._heard_at > self.stale_s:
            return None
        magnitude = np.abs(self._raw)
        if not np.any(magnitude > self.deadband):
            return None
        shaped = np.where(magnitude > self.deadband,
                          np.sign(self._raw) * (magnitude - self.deadband) / (1.0 - self.deadband), 0.0)
        return self.gain * self.signs * shaped

    def close(self) -> None:
        """Close the device (idempotent)."""
        device, self._device = self._device, _ClosedDevice()
        device.close()


class _ClosedDevice:
    """What a closed :class:`SpaceMouseInput` reads from: nothing, like 1.x's closed device."""

    def read(self) -> None:
        return None

    def close(self) -> None:
        pass


# --- ROS 2 twist topic ---------------------------------------------------------------------------

class TwistTopicInput:
    """The linear part of a ``geometry_msgs/msg/TwistStamped`` topic (a teleop node, a VR
    controller, another machine), divided by ``view.speed``.

    Each read takes every message that arrived and follows the latest; when none has arrived
    for ``timeout_s`` (by this machine's receive time: publishers' clocks need not agree with
    ours) the human counts as silent. The twist is taken in the task's base frame;
    ``header.frame_id`` and the angular part are not interpreted. The subscription is
    BEST_EFFORT, which matches RELIABLE and BEST_EFFORT publishers alike.

    :param topic: the ROS 2 topic (relative names are made absolute).
    :param transport: ``"auto"`` (rclpy when it imports, else DDS), ``"rclpy"`` or ``"dds"``.
    :param network: DDS domain and interface (:class:`NetworkConfig`); ``None``: the default.
    :param timeout_s: how long the latest message stays valid [s].
    :param clock: monotonic time source [s] (injectable for tests).
    :param node_name: the rclpy node's name (the DDS transport has none).
    :raises ValueError: an invalid topic or timeout, an unknown transport, rclpy asked for but absent.
    """

    name = "ros2"  # as ``--human ros2`` names it

    def __init__(self, topic: str = DEFAULT_TWIST_TOPIC, *, transport: str = "auto",
                 network: NetworkConfig | None = None, timeout_s: float = 0.3,
                 clock: Clock = time.monotonic, node_name: str = "robot_brain_human") -> None:
        self.topic = check_topic(topic, "human twist topic")
        self.timeout_s = _positive("timeout_s", timeout_s)
        self._clock = clock
        self._transport: Transport | None = make_transport(transport, network=network,
                                                           node_name=node_name)
        try:
            self._sub: Subscription | None = self._transport.subscription(self.topic, TwistStamped,
                                                                          STATE_QOS)
        except BaseException:
            self._transport.close()  # leave the graph: no half-built participant lingers
            raise
        self._velocity: np.ndarray | None = None  # linear velocity of the latest message [m/s]
        self._received_at = -math.inf
        self.received = 0  # messages taken since construction (diagnostics)

    def reset(self, trial: int) -> None:
        """Drop what arrived before this trial: an old twist must not steer a new trial."""
        if self._sub is not None:
            self._sub.take()
        self._velocity = None
        self._received_at = -math.inf

    def read(self, view: HumanView) -> np.ndarray | None:
        now = self._clock()
        messages = self._sub.take() if self._sub is not None else []
        if messages:
            self.received += len(messages)
            self._velocity = self._linear(messages[-1])
            self._received_at = now
        if self._velocity is None or now - self._received_at > self.timeout_s:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):  # speed 0 or NaN: the guard's job
            return self._velocity / np.float64(view.speed)

    @staticmethod
    def _linear(msg: Any) -> np.ndarray | None:
        """The linear velocity of a message, or ``None`` if it has none a number can be read
        from (a malformed message is no input, never an exception in the loop)."""
        try:
            lin = msg.twist.linear
            return np.array([lin.x, lin.y, lin.z], dtype=np.float64)
        except (AttributeError, TypeError, ValueError):
            return None

    def close(self) -> None:
        """Leave the ROS 2 graph (idempotent); ``read`` reports no input afterwards."""
        transport, self._transport, self._sub = self._transport, None, None
        if transport is not None:
            transport.close()
