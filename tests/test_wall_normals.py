"""The friction-tilt diagnostic (robot_brain.critic_training.wall_normals): real MuJoCo contacts
on the maze's axis-aligned walls, the shipped maze critic over the hard limits."""

from __future__ import annotations

import math

import pytest

from robot_brain.critic_training.wall_normals import axis_tilt_deg, main, measure
from robot_brain.envs.maze import WALL_FRICTION


def test_axis_tilt_is_the_angle_to_the_nearest_horizontal_axis() -> None:
    assert axis_tilt_deg([1.0, 0.0, 0.3]) == 0.0
    assert axis_tilt_deg([0.0, -2.0]) == 0.0
    assert axis_tilt_deg([1.0, -1.0]) == pytest.approx(45.0)
    assert axis_tilt_deg([-0.15, 1.0]) == pytest.approx(math.degrees(math.atan(0.15)))
    assert math.isnan(axis_tilt_deg([0.0, 0.0, 1.0]))


def test_friction_tilts_the_measured_force_by_up_to_the_friction_angle() -> None:
    # Coulomb friction: a sliding contact's force leans atan(mu) from the face's normal, never
    # more (away from the walls' ends, whose corners are genuinely diagonal)
    r = measure("walls", seeds=(0,), episodes=1)
    angle = math.degrees(math.atan(WALL_FRICTION))
    assert r["friction_angle_deg"] == pytest.approx(angle)
    c = r["contact_force"]
    assert c["ticks"] > 500
    assert c["p75"] <= angle + 0.5
    assert c["p90"] == pytest.approx(angle, abs=0.5)  # the sliding ticks sit on the cone's edge
    rem, ret = r["remembered_normal_engaged"], r["retreat_direction_engaged"]
    assert rem["ticks"] > 0  # the critic held a recovery at a wall
    # its retreat leans less than the remembered normal: the tilt is taken out once the tool has
    # slid along the face
    assert ret["ticks"] >= rem["ticks"] and ret["share_over_4deg"] < rem["share_over_4deg"]
    assert ret["median"] <= rem["median"] + 0.1


def test_an_unknown_family_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="unknown family 'nope'"):
        measure("nope")
    with pytest.raises(SystemExit) as e:
        main(["--episodes", "0"])
    assert e.value.code == 2
    assert "--episodes must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--seeds", "0", "-1"])
    assert e.value.code == 2
    assert "--seeds must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--recoveries", "retreat,soften,wall-soften"])
    assert e.value.code == 2
    assert "not both soften and wall-soften" in capsys.readouterr().err
