"""The friction tilt taken out of the retreat direction (robot_brain.safety.retreat, the face of
robot_brain.safety.features.ContactMemory): unit cases here; on real MuJoCo contacts in
test_wall_normals.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_brain.controllers import Command, RobotState
from robot_brain.safety.features import FACE_GAP, ContactMemory
from robot_brain.safety.retreat import RetreatConfig, retreat_direction

MU = 0.15  # the maze's wall friction: a sliding contact's force leans atan(MU)


def _state(pos: tuple[float, float, float], force: tuple[float, float, float], t: float = 0.0) -> RobotState:
    return RobotState(t=t, q=np.zeros(7), dq=np.zeros(7), tau=np.zeros(7),
                      ee_pos=np.array(pos, dtype=float), ee_quat=np.array([1.0, 0, 0, 0]),
                      ee_vel=np.zeros(6), wrench=np.array([*force, 0.0, 0.0, 0.0]))


def _setpoint(pos: tuple[float, float, float]) -> Command:
    return Command(np.full(6, 1000.0), np.full(6, 1.0), np.array(pos, dtype=float), np.array([1.0, 0, 0, 0]))


def _tilted(f: float = 10.0) -> tuple[float, float, float]:
    # a wall facing +y, the tool pulled along +x: friction leans the force toward -x
    return (-MU * f / math.hypot(1, MU), f / math.hypot(1, MU), 0.0)


def _slid(travel: float) -> tuple[ContactMemory, RobotState]:
    """A memory that touched the face at x = 0.5 and slid ``travel`` along +x on it."""
    mem = ContactMemory()
    mem.update(_state((0.5, 0.1, 0.1), _tilted()))
    s = _state((0.5 + travel, 0.1, 0.1), _tilted())
    mem.update(s)
    return mem, s


def test_the_memory_keeps_where_the_face_was_first_touched() -> None:
    mem, _ = _slid(0.01)
    st = mem.state
    assert st[11:14] == pytest.approx([0.5, 0.1, 0.1])  # the face point: the first touch
    assert st[3:6] == pytest.approx([0.51, 0.1, 0.1])  # the wall point: the last one
    mem.update(_state((0.52, 0.1, 0.1), (10.0, 0.0, 0.0)))  # turned 90 degrees: another face
    assert st[11:14] == pytest.approx([0.52, 0.1, 0.1]) and st[14:17] == pytest.approx([1.0, 0.0, 0.0])
    for _ in range(int(FACE_GAP / mem.dt) + 5):  # long without contact, then the same way again
        mem.update(_state((0.6, 0.1, 0.1), (0.0, 0.0, 0.0)))
    mem.update(_state((0.6, 0.1, 0.1), (10.0, 0.0, 0.0)))
    assert st[11:14] == pytest.approx([0.6, 0.1, 0.1])  # a new face
    mem.reset()
    assert not st[11:17].any()


def test_after_sliding_along_the_face_the_retreat_is_along_its_normal() -> None:
    mem, s = _slid(0.01)
    sp = _setpoint((0.51, 0.09, 0.1))
    n, case = retreat_direction(s, sp, memory=mem.state)
    assert case == 0 and n == pytest.approx([0.0, 1.0, 0.0], abs=1e-9)
    raw, _ = retreat_direction(s, sp, RetreatConfig(slide_baseline=0.0), memory=mem.state)
    assert math.degrees(math.atan2(-raw[0], raw[1])) == pytest.approx(math.degrees(math.atan(MU)))
    # the same off the wall, from the remembered normal
    for _ in range(50):
        mem.update(_state((0.51, 0.11, 0.1), (0.0, 0.0, 0.0)))
    n, case = retreat_direction(_state((0.51, 0.11, 0.1), (0, 0, 0)), sp, memory=mem.state)
    assert case == 1 and n == pytest.approx([0.0, 1.0, 0.0], abs=1e-9)


@pytest.mark.parametrize("travel, config", [(0.003, RetreatConfig()),  # too short: the contact's give
                                            (0.01, RetreatConfig(max_tilt=5.0))])  # leans more than allowed
def test_short_travel_or_a_larger_lean_leaves_the_measured_direction(travel, config) -> None:
    mem, s = _slid(travel)
    n, _ = retreat_direction(s, _setpoint((0.5, 0.09, 0.1)), config, memory=mem.state)
    f = np.array(_tilted())
    assert n == pytest.approx(f / np.linalg.norm(f))


def test_travel_into_the_face_is_not_taken_for_sliding() -> None:
    # the tool moved 1 cm along the force (a face further in, or the contact's give): no correction
    mem = ContactMemory()
    mem.update(_state((0.5, 0.1, 0.1), _tilted()))
    s = _state((0.5 + 0.01 * _tilted()[0] / 10, 0.1 + 0.01 * _tilted()[1] / 10, 0.1), _tilted())
    mem.update(s)
    n, _ = retreat_direction(s, _setpoint((0.5, 0.09, 0.1)), memory=mem.state)
    f = np.array(_tilted())
    assert n == pytest.approx(f / np.linalg.norm(f))


def test_the_hard_limits_memoryless_retreat_is_unchanged() -> None:
    # the limits and the envelope feed this tick's force only: no face, no correction
    s = _state((0.51, 0.1, 0.1), _tilted())
    n, case = retreat_direction(s, _setpoint((0.51, 0.09, 0.1)))
    f = np.array(_tilted())
    assert case == 0 and n == pytest.approx(f / np.linalg.norm(f))


@pytest.mark.parametrize("field, value", [("slide_baseline", -0.001), ("slide_baseline", 0.1),
                                          ("max_tilt", -1.0), ("max_tilt", 50.0)])
def test_bad_settings_are_refused(field, value) -> None:
    with pytest.raises(ValueError, match=field):
        RetreatConfig(**{field: value})
