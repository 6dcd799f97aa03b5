"""Per-joint calibration of a Dynamixel arm, saved as JSON, and the unit conversions it implies.

A joint's angle is measured from the servo's position ticks on the host (the servo's own
``Homing_Offset`` is left alone)::

    q = direction * (ticks - 2048 - homing_offset) * 2 pi / 4096        [rad]

so ``homing_offset`` is the tick reading (minus the centre 2048) at the joint's zero, and
``direction = -1`` flips a joint mounted the other way round. Velocity, current and torque carry
the same sign: ``dq = direction * velocity_units * rad_s_per_unit`` and
``tau = direction * current_units * amp_per_unit * torque_constant`` (the model's units,
:func:`~.control_table.model_info`). ``range_min``/``range_max`` bound the joint [rad]; the
backend refuses to start outside them and never pushes a joint further out.

File format (``Calibration.save`` / ``Calibration.load``, written atomically)::

    {"version": 1,
     "joints": [{"name": "shoulder", "servo_id": 1, "model_number": 1020, "homing_offset": 0,
                 "direction": 1, "range_min": -1.5, "range_max": 1.5}, ...]}

Every field is checked where it enters; a bad file gives one ``ValueError`` line naming the file,
the joint and the bad value. (The design follows LeRobot's persisted motor calibration: homing
offset, drive direction, range.)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_brain.fileio import atomic_write_json
from robot_brain.params import param, validate

from .control_table import TICKS_PER_REV, ModelInfo, model_info
from .protocol import MAX_ID

__all__ = [
    "CENTER", "FORMAT_VERSION", "Calibration", "JointCalibration", "amp_to_current", "current_to_amp",
    "rad_s_to_velocity", "rad_to_ticks", "ticks_to_rad", "velocity_to_rad_s",
]

CENTER = 2048  # tick reading of a servo's mechanical centre
FORMAT_VERSION = 1
_TWO_PI = 2.0 * math.pi
_MAX_OFFSET = 1_044_479  # |Homing_Offset| limit of the X series (about 255 turns)


# -- conversions (scalars or numpy arrays) ---------------------------------------------------------
def ticks_to_rad(ticks: Any, homing_offset: Any = 0, direction: Any = 1,
                 ticks_per_rev: int = TICKS_PER_REV) -> Any:
    """Joint angle [rad] of a ``Present_Position`` reading."""
    return direction * (ticks - CENTER - homing_offset) * (_TWO_PI / ticks_per_rev)


def rad_to_ticks(q: Any, homing_offset: Any = 0, direction: Any = 1,
                 ticks_per_rev: int = TICKS_PER_REV) -> Any:
    """Position ticks of the joint angle ``q`` [rad] (rounded to whole ticks)."""
    return np.rint(direction * q * (ticks_per_rev / _TWO_PI) + CENTER + homing_offset).astype(np.int64)


def velocity_to_rad_s(units: Any, model: ModelInfo, direction: Any = 1) -> Any:
    """Joint velocity [rad/s] of a ``Present_Velocity`` reading."""
    return direction * units * model.rad_s_per_unit


def rad_s_to_velocity(dq: Any, model: ModelInfo, direction: Any = 1) -> Any:
    """``Goal_Velocity`` units (not rounded) of a joint velocity [rad/s]."""
    return direction * dq / model.rad_s_per_unit


def current_to_amp(units: Any, model: ModelInfo) -> Any:
    """Motor current [A] of ``Present/Goal_Current`` units (servo sign)."""
    return units * model.amp_per_unit


def amp_to_current(amp: Any, model: ModelInfo) -> Any:
    """``Goal_Current`` units (not rounded) of a motor current [A] (servo sign)."""
    return amp / model.amp_per_unit


# -- calibration -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JointCalibration:
    """Calibration of one joint (see the module docstring for the conventions)."""

    name: str = dataclasses.field(default="joint", metadata={"doc": "joint name, for messages"})
    servo_id: int = param(1, "Dynamixel id of the joint's servo", kind="int", low=0, high=MAX_ID)
    model_number: int = param(1020, "model number the servo must report (1020: XM430-W350)",
                              kind="int", low=0, high=0xFFFF)
    homing_offset: int = param(0, "tick reading minus 2048 at the joint's zero", kind="int",
                               low=-_MAX_OFFSET, high=_MAX_OFFSET, unit="ticks")
    direction: int = param(1, "+1, or -1 for a joint mounted the other way round", kind="int",
                           low=-1, high=1)
    range_min: float = param(-math.pi, "lowest joint angle (one turn each side of zero at most)",
                             low=-_TWO_PI, high=_TWO_PI, unit="rad")
    range_max: float = param(math.pi, "highest joint angle (one turn each side of zero at most)",
                             low=-_TWO_PI, high=_TWO_PI, unit="rad")

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"JointCalibration.name must be a non-empty string, got {self.name!r}")
        validate(self)
        if self.direction == 0:
            raise ValueError("JointCalibration.direction must be +1 or -1, got 0")
        if self.range_min >= self.range_max:
            raise ValueError(f"JointCalibration.range_min = {self.range_min!r} must be below "
                             f"range_max = {self.range_max!r}")

    @property
    def model(self) -> ModelInfo:
        return model_info(self.model_number)

    def to_rad(self, ticks: Any) -> Any:
        return ticks_to_rad(ticks, self.homing_offset, self.direction, self.model.ticks_per_rev)

    def to_ticks(self, q: Any) -> Any:
        return rad_to_ticks(q, self.homing_offset, self.direction, self.model.ticks_per_rev)

    def velocity_to_rad_s(self, units: Any) -> Any:
        return velocity_to_rad_s(units, self.model, self.direction)

    @property
    def torque_constant(self) -> float:
        """Joint torque per motor ampere [N m/A]; ``ValueError`` where the model's is unknown."""
        kt = self.model.torque_constant
        if kt is None or self.model.ma_per_unit is None:
            raise ValueError(f"joint {self.name!r}: servo model {self.model.name} has no known "
                             f"torque constant or no current control; torque control needs both")
        return kt

    def current_to_torque(self, units: Any) -> Any:
        """Joint torque [N m] of current units (servo sign -> joint sign)."""
        return self.direction * current_to_amp(units, self.model) * self.torque_constant

    def torque_to_current(self, tau: Any) -> Any:
        """Current units (not rounded) of a joint torque [N m]."""
        return self.direction * amp_to_current(tau / self.torque_constant, self.model)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_JOINT_KEYS = tuple(f.name for f in dataclasses.fields(JointCalibration))


@dataclass(frozen=True)
class Calibration:
    """The calibration of an arm: one :class:`JointCalibration` per joint, in joint order."""

    joints: tuple[JointCalibration, ...]

    def __post_init__(self) -> None:
        joints = tuple(self.joints)
        object.__setattr__(self, "joints", joints)
        if not joints:
            raise ValueError("a calibration needs at least one joint")
        for j in joints:
            if not isinstance(j, JointCalibration):
                raise ValueError(f"Calibration.joints must hold JointCalibration, got {j!r}")
        for attr, what in (("servo_id", "servo id"), ("name", "joint name")):
            seen: dict[Any, str] = {}
            for j in joints:
                key = getattr(j, attr)
                if key in seen:
                    raise ValueError(f"joint {j.name!r}: duplicate {what} {key!r} (also joint {seen[key]!r})")
                seen[key] = j.name

    def __len__(self) -> int:
        return len(self.joints)

    @property
    def ids(self) -> list[int]:
        return [j.servo_id for j in self.joints]

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    @classmethod
    def default(cls, ids: Sequence[int], model_number: int = 1020, *, range_min: float = -math.pi,
                range_max: float = math.pi) -> Calibration:
        """Uncalibrated joints ``joint<id>`` (offset 0, direction +1) on the servos ``ids``."""
        return cls(tuple(JointCalibration(f"joint{i}", i, model_number, 0, 1, range_min, range_max)
                         for i in ids))

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "joints": [j.to_dict() for j in self.joints]}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the calibration as JSON, atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "calibration") -> Calibration:
        """Build from parsed JSON; errors are one line starting with ``source``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected an object with 'version' and 'joints', got "
                             f"{type(data).__name__}")
        bad = sorted(set(data) - {"version", "joints"})
        if bad:
            raise ValueError(f"{source}: unknown key {bad[0]!r} (known: version, joints)")
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise ValueError(f"{source}: version {version!r} is not supported (expected {FORMAT_VERSION})")
        rows = data.get("joints")
        if not isinstance(rows, list) or not rows:
            raise ValueError(f"{source}: 'joints' must be a non-empty list, got {rows!r}")
        joints = []
        for k, row in enumerate(rows):
            label = f"joint {k}"
            if isinstance(row, Mapping) and isinstance(row.get("name"), str):
                label = f"joint {row['name']!r}"
            if not isinstance(row, Mapping):
                raise ValueError(f"{source}: {label}: expected an object, got {row!r}")
            unknown = sorted(set(row) - set(_JOINT_KEYS))
            if unknown:
                raise ValueError(f"{source}: {label}: unknown key {unknown[0]!r} "
                                 f"(known: {', '.join(_JOINT_KEYS)})")
            missing = [key for key in _JOINT_KEYS if key not in row]
            if missing:
                raise ValueError(f"{source}: {label}: missing key {missing[0]!r}")
            try:
                joints.append(JointCalibration(**row))
            except ValueError as e:
                raise ValueError(f"{source}: {label}: {e}") from None
        try:
            return cls(tuple(joints))
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibration:
        """Read a calibration file; one-line ``ValueError`` naming the file for any problem."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ValueError(f"{path}: cannot read calibration ({e.strerror or type(e).__name__})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
        return cls.from_dict(data, str(path))
