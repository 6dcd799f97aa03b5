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
    "CURRENT_LIMIT", "FIRMWARE_VERSION", "GOAL_CURRENT", "GOAL_POSITION", "GOAL_VELOCITY",
    "HARDWARE_ERROR_STATUS", "HOMING_OFFSET", "ID", "MODELS", "MODEL_NUMBER", "OPERATING_MODE",
    "PRESENT_CURRENT", "PRESENT_INPUT_VOLTAGE", "PRESENT_POSITION", "PRESENT_TEMPERATURE",
    "PRESENT_VELOCITY", "TICKS_PER_REV", "TORQUE_ENABLE", "XC330_M288", "XL430_W250", "XM430_W350",
    "HardwareError", "Item", "ModelInfo", "OperatingMode", "from_bytes", "model_info", "to_bytes",
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
CURRENT_LIMIT = Item("Current_Limit", 38, 2)
# -- RAM area ---------------------------------------------------------------------------------------
TORQUE_ENABLE = Item("Torque_Enable", 64, 1)
HARDWARE_ERROR_STATUS = Item("Hardware_Error_Status", 70, 1)
GOAL_CURRENT = Item("Goal_Current", 102, 2, signed=True)
GOAL_VELOCITY = Item("Goal_Velocity", 104, 4, signed=True)
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
    """

    name: str
    model_number: int
    ticks_per_rev: int = TICKS_PER_REV
    rpm_per_unit: float = 0.229
    ma_per_unit: float | None = None
    torque_constant: float | None = None
    note: str = ""

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
    "XM430-W350", 1020, ma_per_unit=2.69, torque_constant=4.1 / 2.3,
    note="model number and 2.69 mA/unit as in the e-manual / TurtleBot3 appendix; "
         "Kt = 4.1 N m / 2.3 A stall at 12 V (estimate)")
XL430_W250 = ModelInfo(
    "XL430-W250", 1060, ma_per_unit=None, torque_constant=1.5 / 1.4,
    note="no current control (address 126 is Present_Load); Kt = 1.5 N m / 1.4 A stall at "
         "12 V (estimate, not verified)")
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
