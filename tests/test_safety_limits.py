"""The hard-limit reflex and the event log: unit checks on synthetic states, then the reflex in
the loop with the peg pressed onto a table (real MuJoCo contact)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DOWN, ROT_K, TABLE_TOP

from robot_brain.controllers import Command, RobotState
from robot_brain.envs import panda
from robot_brain.safety import REFLEX_REASONS, EventLog, LimitsConfig, LimitsReflex

CFG = LimitsConfig(q_min=tuple(panda.Q_MIN), q_max=tuple(panda.Q_MAX))


def _state(t=0.0, ee_pos=(0.5, 0.0, 0.3), force=(0.0, 0.0, 0.0), q=panda.HOME_Q) -> RobotState:
    wrench = np.zeros(6)
    wrench[:3] = force
    return RobotState(t, np.array(q, dtype=np.float64), np.zeros(7), np.zeros(7),
                      np.array(ee_pos, dtype=np.float64), np.array(DOWN), np.zeros(6), wrench)


def _setpoint(pos=(0.5, 0.0, 0.25), k=1200.0) -> Command:
    return Command.cartesian(pos, DOWN, (k, k, k, ROT_K, ROT_K, ROT_K))


# -- contact force: retreat and soften --------------------------------------------------------------
def test_contact_force_retreats_along_the_force_and_softens():
    reflex, log = LimitsReflex(CFG), EventLog()
    sp = _setpoint()
    original = sp.copy()
    force = np.array([6.0, 0.0, 18.0])  # > 15 N, pushing the tool up and along +x
    s = _state(force=force)
    out = reflex.check(0, s, sp, log)
    log.end_tick()
    assert out is not sp and reflex.engaged
    expected = s.ee_pos + CFG.recovery.retreat * force / np.linalg.norm(force)  # away from the obstacle
    np.testing.assert_allclose(out.position, expected)
    np.testing.assert_allclose(out.stiffness[:3], CFG.recovery.soft_stiffness)
    np.testing.assert_allclose(out.stiffness[3:], ROT_K)  # rotation untouched
    np.testing.assert_array_equal(sp.position, original.position)  # the command is not mutated
    np.testing.assert_array_equal(sp.stiffness, original.stiffness)
    assert [e.reason for e in log.events] == ["contact_force"]
    assert log.events[0].value == pytest.approx(np.linalg.norm(force))


def test_soft_stiffness_never_raises_a_lower_stiffness():
    reflex = LimitsReflex(CFG)
    out = reflex.check(0, _state(force=(0, 0, 20)), _setpoint(k=100.0), EventLog())
    np.testing.assert_allclose(out.stiffness[:3], 100.0)


def test_contact_event_is_logged_once_per_onset():
    reflex, log = LimitsReflex(CFG), EventLog()
    sp = _setpoint()
    forces = [20.0] * 30 + [5.0] * 10 + [25.0] * 5  # two separate contacts
    for tick, f in enumerate(forces):
        reflex.check(tick, _state(t=tick * 1e-3, force=(0, 0, f)), sp, log)
        log.end_tick()
    assert [e.reason for e in log.events] == ["contact_force", "contact_force"]
    assert [e.tick for e in log.events] == [0, 40]
    assert log.ticks["contact_force"] == 35
    assert log.interventions() == 2


def test_retreat_lasts_until_the_next_command():
    reflex, log = LimitsReflex(CFG), EventLog()
    sp = _setpoint()
    out = reflex.check(0, _state(force=(0, 0, 30)), sp, log)
    held = out.position.copy()
    out2 = reflex.check(1, _state(force=(0, 0, 1)), sp, log)  # force gone: still retreating
    assert out2 is out
    np.testing.assert_array_equal(out2.position, held)
    reflex.new_command(sp)  # the next slow tick
    assert not reflex.engaged
    assert reflex.check(2, _state(), sp, log) is sp


def test_below_threshold_passes_the_setpoint_through():
    reflex, log = LimitsReflex(CFG), EventLog()
    sp = _setpoint()
    assert reflex.check(0, _state(force=(0, 0, 14.9)), sp, log) is sp
    assert not log.events


# -- workspace box ------------------------------------------------------------------------------
def test_workspace_clips_the_setpoint_into_the_box():
    reflex, log = LimitsReflex(CFG), EventLog()
    sp = _setpoint(pos=(1.2, -0.7, 0.3))
    out = reflex.check(0, _state(), sp, log)
    np.testing.assert_allclose(out.position, [CFG.workspace_high[0], CFG.workspace_low[1], 0.3])
    assert [e.reason for e in log.events] == ["workspace"]
    assert log.events[0].value == pytest.approx(1.2 - CFG.workspace_high[0])  # largest excess
    log.end_tick()
    inside = _setpoint(pos=(0.5, 0.0, 0.3))
    assert reflex.check(1, _state(), inside, log) is inside
    np.testing.assert_allclose(inside.position, [0.5, 0.0, 0.3])
    assert len(log.events) == 1


# -- joint margin ---------------------------------------------------------------------------------
def test_joint_margin_aborts_and_holds_the_current_pose():
    reflex, log = LimitsReflex(CFG), EventLog()
    q = panda.HOME_Q.copy()
    q[3] = panda.Q_MAX[3] - 0.5 * CFG.joint_margin  # within the margin of joint 4
    s = _state(q=q, ee_pos=(0.42, 0.01, 0.33))
    sp = _setpoint(pos=(0.6, 0.0, 0.2))
    out = reflex.check(0, s, sp, log)
    assert out is not sp and reflex.engaged
    np.testing.assert_allclose(out.position, s.ee_pos)  # hold where it is
    assert [(e.reason, e.detail) for e in log.events] == [("joint_limit", "joint 4")]
    assert log.events[0].value == pytest.approx(q[3])


def test_joint_margin_applies_to_joint_setpoints():
    reflex, log = LimitsReflex(CFG), EventLog()
    q = panda.HOME_Q.copy()
    q[0] = panda.Q_MIN[0] + 0.01
    sp = Command.joint(panda.HOME_Q + 0.5, 100.0)
    out = reflex.check(0, _state(q=q, force=(0, 0, 100.0)), sp, log)
    np.testing.assert_allclose(out.joint_position, q)  # hold the current posture
    assert [e.reason for e in log.events] == ["joint_limit"]  # contact check is Cartesian only
    assert reflex.check(1, _state(), Command.joint(panda.HOME_Q, 100.0), EventLog()) is out


def test_joint_check_off_without_limits():
    reflex, log = LimitsReflex(LimitsConfig()), EventLog()
    q = panda.HOME_Q.copy()
    q[0] = 10.0
    sp = _setpoint()
    assert reflex.check(0, _state(q=q), sp, log) is sp


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"contact_force": 0.0}, "contact_force"),
    ({"recovery": 0.01}, "recovery"),
    ({"contact_force": float("inf")}, "contact_force"),
    ({"joint_margin": -0.1}, "joint_margin"),
    ({"workspace_low": (0.9, -0.5, 0.05)}, "workspace_low"),
])
def test_bad_limits_config_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LimitsConfig(**kwargs)


# -- event log ----------------------------------------------------------------------------------
def test_event_log_counts_onsets_and_ticks():
    log = EventLog()
    pattern = ["a", "a", None, "a", "b", "b", "b"]
    for tick, reason in enumerate(pattern):
        if reason:
            log.mark(reason, tick * 0.001, tick, value=float(tick))
            log.mark(reason, tick * 0.001, tick)  # a second mark in the same tick is ignored
        log.end_tick()
    assert [(e.reason, e.tick) for e in log.events] == [("a", 0), ("a", 3), ("b", 4)]
    assert log.counts() == {"a": 2, "b": 1}
    assert log.ticks == {"a": 3, "b": 3}
    assert log.events[1].as_dict() == {"t": 0.003, "tick": 3, "reason": "a", "value": 3.0, "detail": ""}
    assert log.interventions() == 0  # "a"/"b" are not reflex reasons
    log.mark(REFLEX_REASONS[0], 0.01, 10)
    assert log.interventions() == 1
    log.clear()
    assert not log.events and not log.ticks


# -- in the loop, on a table ----------------------------------------------------------------------
def _press(make_arm, reflex):
    """Hold above the table, then command the peg 5 cm into it at K = 2000 N/m for 1 s."""
    arm = make_arm(table=True, reflex=reflex)
    k = (2000.0, 2000.0, 2000.0, ROT_K, ROT_K, ROT_K)
    arm.run(arm.hold_command(stiffness=k, position=np.array([0.4, 0.0, TABLE_TOP + 0.02])), 1.0)
    arm.loop.events.clear()
    press = arm.hold_command(stiffness=k, position=np.array([0.4, 0.0, TABLE_TOP - 0.05]))
    forces = []
    for _ in range(20):
        arm.loop.step(press)
        forces.append(arm.backend.read().contact_force)
    return arm, np.array(forces)


def test_reflex_relieves_a_policy_that_presses_into_the_table(make_arm):
    """Without the reflex the arm presses as hard as the safety envelope lets it (K e = 100 N
    asked; the spring-energy bound allows sqrt(2 K E_max) = 63 N and the force ceiling retreats
    above 60 N); with it each slow tick that pushes in starts one contact event, the setpoint
    retreats upward and the force is relieved."""
    from robot_brain.safety import EnvelopeConfig

    _, f_off = _press(make_arm, None)
    arm_on, f_on = _press(make_arm, "limits")
    assert 25.0 < f_off[-10:].mean() < EnvelopeConfig().max_contact_force + 5  # pressing, bounded
    counts = arm_on.loop.events.counts()
    assert 0 < counts["contact_force"] <= 20  # at most one onset per slow tick
    assert arm_on.loop.events.ticks["contact_force"] < 0.5 * 20 * 50
    assert f_on[-10:].mean() < 0.2 * f_off[-10:].mean()
    sp = arm_on.loop.last_setpoint
    assert sp.position[2] > TABLE_TOP  # the executed setpoint retreated above the surface
    np.testing.assert_allclose(sp.stiffness[:3], CFG.recovery.soft_stiffness)


def test_event_reasons_are_documented_and_emitted():
    """Every reason the code marks is in exactly one documented list, and every documented reason
    is marked somewhere (no reason that can never happen, none that nobody knows of)."""
    import re
    from pathlib import Path

    from robot_brain.safety import FAULT_REASONS, LIMIT_REASONS

    root = Path(__file__).resolve().parents[1]
    emitted = set()
    for folder in ("robot_brain", "envs", "controllers", "hardware"):
        for path in (root / folder).rglob("*.py"):
            emitted |= set(re.findall(r"""(?:\.mark|_hold)\(\s*["'](\w+)["']""", path.read_text()))
    documented = [*REFLEX_REASONS, *LIMIT_REASONS, *FAULT_REASONS]
    assert len(documented) == len(set(documented))
    assert emitted == set(documented)
    docs = (root / "docs" / "safety.md").read_text() + (root / "docs" / "architecture.md").read_text()
    assert all(f"`{r}`" in docs for r in documented)
