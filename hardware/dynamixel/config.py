"""The ``serial`` section of a robot config: how ``deploy --transport serial`` reaches a
Dynamixel arm (``launch/config/servo_arm.yaml``).

It sits in the same ROS 2 parameter file as the rest of the robot config, under
``robot_brain: ros__parameters: serial:``; every key is declared below with its unit and range
and checked where it enters, with one line naming the key and the bad value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot_brain.params import param, replace_checked, validate

from .backend import CONTROL_MODES, ON_EXIT
from .bus import DynamixelBus
from .calibration import Calibration

__all__ = ["BAUD_RATES", "SerialConfig"]

#: Baud rates an X-series servo can be set to (its ``Baud_Rate`` item, 0-7).
BAUD_RATES = (9600, 57600, 115200, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 4_500_000)


@dataclass(frozen=True)
class SerialConfig:
    """The bus, the calibration file and what happens to the torque on exit.

    :param port: serial port of the bus: ``/dev/ttyUSB0``, a pty of ``robot-brain sim-servos``, or
        a pyserial URL (``socket://host:port``, ``rfc2217://...``); ``deploy --port`` overrides it.
    :param calibration: the calibration file (``robot-brain calibrate`` writes it); a relative path
        is relative to the robot config's folder.
    :param on_exit: ``disable`` (torque off on exit, a fault or Ctrl-C: the arm goes limp) or
        ``hold`` (the servos keep their present position with their own position loop).
    :param control_mode: ``auto`` (current control where every servo has it, else position),
        ``current`` or ``position`` (the commanded torque goes out as the goal position the
        servo's own position loop turns into it; see :mod:`.backend`).
    """

    port: str = field(default="/dev/ttyUSB0", metadata={"doc": "serial port or pyserial URL"})
    calibration: str = field(default="calibration.json", metadata={
        "doc": "calibration file (relative paths: from the robot config's folder)"})
    on_exit: str = field(default="disable", metadata={"doc": "disable or hold"})
    control_mode: str = field(default="auto", metadata={"doc": "auto, current or position"})
    baudrate: int = param(1_000_000, "bus baud rate (the servos' Baud_Rate)", kind="int", low=9600,
                          high=4_500_000, unit="bit/s")
    timeout: float = param(0.005, "time one request waits for its replies before a retry", low=0.0,
                           high=1.0, unit="s", low_open=True)
    retries: int = param(1, "extra attempts after a timeout or a corrupted reply; then the tick "
                         "holds", kind="int", low=0, high=10)
    max_current: float | None = param(None, "motor current bound on top of each servo's "
                                      "Current_Limit (empty: the servo's)", low=0.0, high=10.0,
                                      unit="A", low_open=True, optional=True)
    max_consecutive_failures: int = param(50, "deploy stops (torque per on_exit) after this many "
                                          "failed state reads in a row, each a held tick (0: never)",
                                          kind="int", low=0, high=100_000)
    hold_damping: float = param(0.5, "joint damping of the hold", low=0.0, high=10.0,
                                unit="N m s/rad")
    hold_current: float = param(0.5, "current bound of the hold and of on_exit: hold", low=0.0,
                                high=10.0, unit="A", low_open=True)
    position_p_gain: int | None = param(None, "position mode: Position_P_Gain written to every servo "
                                        "on connect; it sets the servos' stiffness (empty: keep "
                                        "theirs)", kind="int", low=1, high=16383, optional=True)
    max_goal_speed: float = param(6.0, "position mode: how fast a goal position may move (a "
                                  "servo's no-load speed is about 5-6 rad/s)", low=0.0, high=100.0,
                                  unit="rad/s", low_open=True)

    def __post_init__(self) -> None:
        for name in ("port", "calibration"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"serial.{name} must be a non-empty string, got {v!r}")
        if self.on_exit not in ON_EXIT:
            raise ValueError(f"serial.on_exit must be one of {', '.join(ON_EXIT)}, got {self.on_exit!r}")
        if self.control_mode not in CONTROL_MODES:
            raise ValueError(f"serial.control_mode must be one of {', '.join(CONTROL_MODES)}, "
                             f"got {self.control_mode!r}")
        validate(self)
        if self.baudrate not in BAUD_RATES:
            raise ValueError(f"serial.baudrate {self.baudrate} is not one a Dynamixel X servo supports "
                             f"({', '.join(map(str, BAUD_RATES))})")

    @classmethod
    def from_section(cls, section: Any, source: str, **overrides: Any) -> SerialConfig:
        """The config of a parsed ``serial`` section (``None``: the defaults) with ``overrides``.

        :raises ValueError: one line starting with ``robot config <source>``.
        """
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise ValueError(f"robot config {source}: serial must be a mapping of port, calibration, "
                             f"on_exit, baudrate, ...; got {section!r}")
        options = {**section, **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return replace_checked(cls(), options, "serial")
        except (TypeError, ValueError) as e:
            raise ValueError(f"robot config {source}: {str(e).splitlines()[0]}") from None

    def calibration_path(self, config_file: str | Path) -> Path:
        """The calibration file, a relative path taken from ``config_file``'s folder."""
        p = Path(self.calibration).expanduser()
        return p if p.is_absolute() else Path(config_file).resolve().parent / p

    def load_calibration(self, config_file: str | Path, joints: tuple[str, ...]) -> Calibration:
        """The calibration, checked against the robot config's joints (names, order, count).

        :raises ValueError: one line naming the file and what does not match.
        """
        path = self.calibration_path(config_file)
        if not path.is_file():
            raise ValueError(f"calibration {path} does not exist: write it with robot-brain calibrate "
                             f"--robot {config_file} (serial.calibration names it)")
        cal = Calibration.load(path)
        if tuple(cal.names) != tuple(joints):
            raise ValueError(f"calibration {path} names the joints {', '.join(cal.names)}; the robot "
                             f"config {config_file} names {', '.join(joints)} (same names, same order)")
        return cal

    def backend_options(self) -> dict[str, Any]:
        """The :class:`~.backend.DynamixelBackend` keyword arguments this section sets."""
        return {"on_exit": self.on_exit, "max_current": self.max_current,
                "hold_damping": self.hold_damping, "hold_current": self.hold_current,
                "control_mode": self.control_mode, "position_p_gain": self.position_p_gain,
                "max_goal_speed": self.max_goal_speed}

    def bus(self, port: str | None = None) -> DynamixelBus:
        """The (unopened) bus of this config; ``port`` overrides ``self.port``."""
        return DynamixelBus(port or self.port, self.baudrate, timeout=self.timeout, retries=self.retries)
