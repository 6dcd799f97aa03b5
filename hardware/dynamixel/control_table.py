"""X-series control table (Protocol 2.0 firmware): addresses, sizes, operating modes, model units.

Addresses are those of the X-series e-manual (XM430 / XL430 / XC330 share them up to
``Present_Position``). Multi-byte values are little-endian; ``Goal_*`` and ``Present_*`` values
and ``Homing_Offset`` are signed. Helpers :func:`to_bytes` / :func:`from_bytes` convert.

Model numbers and unit constants: where a number is not checked against the ROBOTIS e-manual it
says so in :class:`ModelInfo.note`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = [
    "CURRENT_LIMIT", "FIRMWARE_VERSION", "GOAL_CURRENT", "GOAL_POSITION", "GOAL_PWM", "GOAL_VELOCITY",
    "HARDWARE_ERROR_STATUS", "HOMING_OFFSET", "ID", "MODELS", "MODEL_NUMBER", "OPERATING_MODE",
    "POSITION_D_GAIN", "POSITION_P_GAIN", "PRESENT_CURRENT", "PRESENT_INPUT_VOLTAGE",
    "PRESENT_POSITION", "PRESENT_TEMPERATURE", "PRESENT_VELOCITY", "PROFILE_ACCELERATION",
    "PROFILE_VELOCITY", "PWM_LIMIT", "PWM_MAX", "TICKS_PER_REV", "TORQUE_ENABLE", "XC330_M288",
    "XL430_W250", "XM430_W350", "HardwareError", "Item", "ModelInfo", "OperatingMode", "from_bytes",
    "model_info", "to_bytes",
]


@dataclass(frozen=True)
class Item:
    """One control-table entry: byte ``address``, ``size`` in bytes, whether it is ``signed``."""

    name: str
    address: int
    size: int
    signed: bool = False

    def encode(self, value: int) -> bytes:
        return to_bytes(value, self.size, self.signed)

    def decode(self, data: bytes) -> int:
        return from_bytes(data, self.signed)


# -- EEPROM area (writable only while torque is off) ------------------------------------------------
MODEL_NUMBER = Item("Model_Number", 0, 2)
FIRMWARE_VERSION = Item("Firmware_Version", 6, 1)
ID = Item("ID", 7, 1)
OPERATING_MODE = Item("Operating_Mode", 11, 1)
HOMING_OFFSET = Item("Homing_Offset", 20, 4, signed=True)
PWM_LIMIT = Item("PWM_Limit", 36, 2)
CURRENT_LIMIT = Item("Current_Limit", 38, 2)  # not on the XL430 (no current sensing)
# -- RAM area ---------------------------------------------------------------------------------------
TORQUE_ENABLE = Item("Torque_Enable", 64, 1)
HARDWARE_ERROR_STATUS = Item("Hardware_Error_Status", 70, 1)
# Position PID of (EXTENDED_)POSITION mode; the servo's own gains are KPD = D/16, KPP = P/128
# (e-manual), in PWM units per position tick (PWM_MAX = 100 % duty).
POSITION_D_GAIN = Item("Position_D_Gain", 80, 2)
POSITION_P_GAIN = Item("Position_P_Gain", 84, 2)
GOAL_PWM = Item("Goal_PWM", 100, 2, signed=True)
GOAL_CURRENT = Item("Goal_Current", 102, 2, signed=True)  # not on the XL430
GOAL_VELOCITY = Item("Goal_Velocity", 104, 4, signed=True)
# A non-zero profile makes the servo ramp to a new Goal_Position instead of servoing on it.
PROFILE_ACCELERATION = Item("Profile_Acceleration", 108, 4)
PROFILE_VELOCITY = Item("Profile_Velocity", 112, 4)
GOAL_POSITION = Item("Goal_Position", 116, 4, signed=True)
PRESENT_CURRENT = Item("Present_Current", 126, 2, signed=True)  # Present_Load on XL430
PRESENT_VELOCITY = Item("Present_Velocity", 128, 4, signed=True)
PRESENT_POSITION = Item("Present_Position", 132, 4, signed=True)
PRESENT_INPUT_VOLTAGE = Item("Present_Input_Voltage", 144, 2)
PRESENT_TEMPERATURE = Item("Present_Temperature", 146, 1)

#: First RAM address: writes below it are refused (access error) while torque is on.
RAM_START = TORQUE_ENABLE.address


class OperatingMode(enum.IntEnum):
    CURRENT = 0
    VELOCITY = 1
    POSITION = 3
    EXTENDED_POSITION = 4
    CURRENT_BASED_POSITION = 5
    PWM = 16


class HardwareError(enum.IntFlag):
    """Bits of ``Hardware_Error_Status`` (70)."""

    INPUT_VOLTAGE = 0x01
    OVERHEATING = 0x04
    MOTOR_ENCODER = 0x08
    ELECTRICAL_SHOCK = 0x10
    OVERLOAD = 0x20


TICKS_PER_REV = 4096
#: PWM units of 100 % duty (``PWM_Limit`` / ``Goal_PWM`` at most): the position loop's output scale.
PWM_MAX = 885


@dataclass(frozen=True)
class ModelInfo:
    """Units of one servo model.

    :attr ticks_per_rev: position ticks per output revolution.
    :attr rpm_per_unit: one unit of ``Goal/Present_Velocity`` [rev/min].
    :attr ma_per_unit: one unit of ``Goal/Present_Current`` [mA]; ``None`` where the model has no
        current sensing (XL430 reports ``Present_Load`` in 0.1 % instead).
    :attr torque_constant: output torque per ampere [N m/A], ``None`` where unknown. It is the
        stall torque divided by the stall current of the data sheet: an estimate, the real curve
        is not linear near stall.
    :attr stall_current: motor current at stall, full duty, at the nominal 12 V [A] (data sheet);
        ``None`` where unknown. With :attr:`torque_constant` it gives the stall torque, the scale of
        the position loop's output (see :meth:`position_stiffness`).
    :attr no_load_rpm: output speed at full duty and no load, at 12 V [rev/min]; with the stall
        torque it gives the motor's back-EMF damping (:attr:`back_emf_damping`).
    :attr position_p_gain: factory ``Position_P_Gain`` (the servo's own value is read on connect).
    """

    name: str
    model_number: int
    ticks_per_rev: int = TICKS_PER_REV
    rpm_per_unit: float = 0.229
    ma_per_unit: float | None = None
    torque_constant: float | None = None
    stall_current: float | None = None
    no_load_rpm: float | None = None
    position_p_gain: int = 800
    note: str = ""

    @property
    def current_control(self) -> bool:
        """Whether the servo senses current and so has the CURRENT and CURRENT_BASED_POSITION
        modes (the XL430 has neither: its position loop drives the motor's PWM directly)."""
        return self.ma_per_unit is not None

    @property
    def modes(self) -> frozenset[OperatingMode]:
        """The operating modes the servo accepts."""
        if self.current_control:
            return frozenset(OperatingMode)
        return frozenset(OperatingMode) - {OperatingMode.CURRENT, OperatingMode.CURRENT_BASED_POSITION}

    @property
    def stall_torque(self) -> float | None:
        """Output torque at stall and full duty [N m] (``None`` where unknown)."""
        if self.torque_constant is None or self.stall_current is None:
            return None
        return self.torque_constant * self.stall_current

    @property
    def back_emf_damping(self) -> float | None:
        """Output torque lost per rad/s at a fixed duty [N m s/rad]: stall torque over no-load
        speed (a PWM-driven DC motor's torque falls linearly from stall to no-load speed)."""
        tau = self.stall_torque
        if tau is None or not self.no_load_rpm:
            return None
        return tau / (self.no_load_rpm * 2.0 * math.pi / 60.0)

    @property
    def nm_per_unit(self) -> float | None:
        """Output torque of one ``Present_Current`` unit, or on a model without current sensing
        of one ``Present_Load`` unit (0.1 % of the stall torque) [N m]; ``None`` where unknown."""
        if self.ma_per_unit is not None:
            return None if self.torque_constant is None else self.amp_per_unit * self.torque_constant
        tau = self.stall_torque
        return None if tau is None else tau * 1e-3

    def position_stiffness(self, p_gain: float) -> float | None:
        """The joint stiffness of the servo's own position loop at ``Position_P_Gain`` ``p_gain``,
        at rest [N m/rad]; ``None`` where the stall torque is unknown.

        The loop's output is PWM duty: ``KPP * error`` PWM units, ``KPP = p_gain / 128`` per tick
        (e-manual). At rest a duty ``d`` (of :data:`PWM_MAX`) gives ``d`` times the stall torque,
        and one radian is ``ticks_per_rev / 2 pi`` ticks, so ``k = p_gain / 128 * stall_torque /
        PWM_MAX * ticks_per_rev / (2 pi)``: 5.5 N m/rad for an XL430-W250 at its factory gain
        640, 18.9 N m/rad for an XM430-W350 at 800. An estimate from the data sheet: it scales
        with the supply voltage and ignores the firmware's internal conversion factors.
        """
        tau = self.stall_torque
        if tau is None:
            return None
        return p_gain / 128.0 * tau / PWM_MAX * self.ticks_per_rev / (2.0 * math.pi)

    @property
    def rad_per_tick(self) -> float:
        return 2.0 * math.pi / self.ticks_per_rev

    @property
    def rad_s_per_unit(self) -> float:
        return self.rpm_per_unit * 2.0 * math.pi / 60.0

    @property
    def amp_per_unit(self) -> float:
        """Ampere per current unit; 1 mA where the model has no current unit."""
        return (self.ma_per_unit if self.ma_per_unit is not None else 1.0) * 1e-3


XM430_W350 = ModelInfo(
    "XM430-W350", 1020, ma_per_unit=2.69, torque_constant=4.1 / 2.3, stall_current=2.3,
    no_load_rpm=46.0, position_p_gain=800,
    note="model number and 2.69 mA/unit as in the e-manual / TurtleBot3 appendix; "
         "Kt = 4.1 N m / 2.3 A stall at 12 V (estimate); 46 rpm no load at 12 V; factory "
         "Position_P_Gain 800 (not verified here)")
XL430_W250 = ModelInfo(
    "XL430-W250", 1060, ma_per_unit=None, torque_constant=1.5 / 1.4, stall_current=1.4,
    no_load_rpm=57.0, position_p_gain=640,
    note="no current control (address 126 is Present_Load, 0.1 % of the stall torque); Kt = "
         "1.5 N m / 1.4 A stall at 12 V, 57 rpm no load at 12 V (estimates, not verified); "
         "factory Position_P_Gain 640 (not verified here)")
XC330_M288 = ModelInfo(
    "XC330-M288", 1240, ma_per_unit=1.0, torque_constant=None,
    note="model number from public code citing the e-manual, not checked here; 1 mA/unit not "
         "verified; torque constant unknown")

MODELS: dict[int, ModelInfo] = {m.model_number: m for m in (XM430_W350, XL430_W250, XC330_M288)}


def known_models() -> str:
    """The model numbers this package has units for, for error messages."""
    return ", ".join(f"{n} ({m.name})" for n, m in sorted(MODELS.items()))


def model_info(model_number: int) -> ModelInfo:
    """The units of ``model_number``; an unknown model gets XM430-like units under its number."""
    info = MODELS.get(model_number)
    if info is None:
        return ModelInfo(f"unknown model {model_number}", model_number, ma_per_unit=2.69,
                         torque_constant=None, note="unknown model: XM430 units assumed")
    return info


def to_bytes(value: int, size: int, signed: bool = False) -> bytes:
    """``value`` as ``size`` little-endian bytes (two's complement when ``signed``)."""
    return int(value).to_bytes(size, "little", signed=signed)


def from_bytes(data: bytes, signed: bool = False) -> int:
    """The integer of little-endian ``data``."""
    return int.from_bytes(data, "little", signed=signed)
