"""The safety envelope: what no command, configuration, reflex or learned recovery can get past.

Unit checks of each bound on synthetic states; then its effects on the real arm (a hostile
command that asks for a lunge, a reflex that asks for absurd stiffness); then a randomised
campaign over task configurations (at the extremes of what validation allows), actions, shields
and pushes, checking the documented bounds on every control tick (a short one here, a longer
one marked ``slow``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import DOWN, ROT_K, TABLE_TOP

from robot_brain.controllers import Command, RobotState
from robot_brain.envs import TASKS, ArmSpec, Disturbances, make, panda, servo_arm
from robot_brain.safety import EnvelopeConfig, EventLog, SafetyEnvelope

CFG = EnvelopeConfig()
# Documented in docs/safety.md ("The safety envelope"): the reaction margins of the campaign.
SPEED_BOUND = CFG.max_speed  # the tool tip never moves faster (pushes up to 30 N)
# N, mean contact force over any 50 ms (impact impulses included): the 60 N ceiling plus the
# reaction margin (the 20 ms force filter, then torques that unwind at 1000 N m/s at most).
SUSTAINED_FORCE_BOUND = 90.0


def _state(pos=(0.5, 0.0, 0.3), vel=(0.0, 0.0, 0.0), quat=DOWN, force=(0.0, 0.0, 0.0),
           q=None, dq=None) -> RobotState:
    ee_vel = np.zeros(6)
    ee_vel[:3] = vel
    wrench = np.zeros(6)
    wrench[:3] = force
    return RobotState(0.0, np.zeros(7) if q is None else np.asarray(q, float),
                      np.zeros(7) if dq is None else np.asarray(dq, float), np.zeros(7),
                      np.array(pos, float), np.array(quat, float), ee_vel, wrench)


def _sp(pos=(0.5, 0.0, 0.3), k=(800.0, 800.0, 800.0, ROT_K, ROT_K, ROT_K), zeta=1.0, quat=DOWN) -> Command:
    return Command.cartesian(pos, quat, k, zeta)


def _spring_energy(state: RobotState, sp: Command) -> float:
    e = sp.position - state.ee_pos
    return 0.5 * float(np.sum(sp.stiffness[:3] * e * e))


def _spring_force(state: RobotState, sp: Command) -> float:
    return float(np.linalg.norm(sp.stiffness[:3] * (sp.position - state.ee_pos)))


def _angle(q1, q2) -> float:
    return 2.0 * math.acos(min(1.0, abs(float(np.dot(q1, q2)))))


# -- each bound ---------------------------------------------------------------------------------
def test_a_setpoint_inside_the_envelope_passes_unchanged():
    env, log = SafetyEnvelope(), EventLog()
    sp = _sp(pos=(0.51, 0.0, 0.3))
    assert env.apply(0, _state(), sp, log) is sp and not log.events


def test_stiffness_and_damping_are_capped():
    env, log = SafetyEnvelope(), EventLog()
    sp = _sp(pos=(0.5, 0.0, 0.3), k=(1e12, -5.0, 900.0, 1e6, 10.0, 10.0), zeta=(0.0, 9.0, 1, 1, 1, 1))
    out = env.apply(0, _state(), sp, log)
    np.testing.assert_allclose(out.stiffness, [CFG.max_stiffness, 0.0, 900.0, CFG.max_rot_stiffness, 10, 10])
    np.testing.assert_allclose(out.damping_ratio[:2], CFG.damping_ratio)
    assert [e.reason for e in log.events] == ["stiffness_limit"]
    assert sp.stiffness[0] == 1e12  # the caller's setpoint is not changed


def test_lead_spring_energy_and_spring_force_pull_the_setpoint_toward_the_tool():
    """Whichever binds first: the lead (soft springs), the energy (middling), the force (stiff)."""
    env = SafetyEnvelope()
    s = _state()

    def k(value: float) -> tuple[float, ...]:
        return (value, value, value, ROT_K, ROT_K, ROT_K)

    soft = env.apply(0, s, _sp(pos=(1.5, 0.0, 0.3), k=k(100.0)), EventLog())
    assert np.linalg.norm(soft.position - s.ee_pos) == pytest.approx(CFG.max_lead)
    middling = env.apply(1, s, _sp(pos=(0.56, 0.0, 0.3), k=k(1000.0)), EventLog())
    assert _spring_energy(s, middling) == pytest.approx(CFG.max_spring_energy)
    stiff = env.apply(2, s, _sp(pos=(0.54, 0.0, 0.3), k=k(5000.0)), EventLog())
    assert _spring_force(s, stiff) == pytest.approx(CFG.max_spring_force)
    for out in (soft, middling, stiff):  # the pull keeps its direction
        d = out.position - s.ee_pos
        np.testing.assert_allclose(d / np.linalg.norm(d), [1.0, 0.0, 0.0], atol=1e-12)
        assert _spring_force(s, out) <= CFG.max_spring_force * (1 + 1e-12)
        assert _spring_energy(s, out) <= CFG.max_spring_energy * (1 + 1e-12)


def test_orientation_lead_is_cut_to_the_bound():
    env, log = SafetyEnvelope(), EventLog()
    flipped = (0.0, 0.0, 1.0, 0.0)  # the tool turned 180 degrees about y
    out = env.apply(0, _state(), _sp(quat=flipped), log)
    assert _angle(out.orientation, DOWN) == pytest.approx(CFG.max_rot_lead, abs=1e-9)
    assert np.linalg.norm(out.orientation) == pytest.approx(1.0)
    assert "setpoint_lead" in [e.reason for e in log.events]


def test_over_speed_brakes_with_hysteresis():
    env, log = SafetyEnvelope(), EventLog()
    fast = _state(vel=(0.0, CFG.brake_engage * CFG.max_speed + 0.01, 0.0))
    out = env.apply(0, fast, _sp(pos=(0.52, 0.03, 0.3), k=(50.0, 50, 50, 5, 5, 5)), log)
    np.testing.assert_allclose(out.position, fast.ee_pos)  # no pull
    assert (out.stiffness[:3] >= CFG.brake_stiffness).all()
    assert (out.damping_ratio >= CFG.brake_damping_ratio).all()
    assert [e.reason for e in log.events] == ["velocity_limit"]
    between = _state(vel=(0.0, 0.5 * (CFG.brake_engage + CFG.brake_release) * CFG.max_speed, 0.0))
    sp = _sp(pos=(0.52, 0.0, 0.3))
    assert env.apply(1, between, sp, log) is not sp  # still braking above the release speed
    slow = _state(vel=(0.0, 0.5 * CFG.brake_release * CFG.max_speed, 0.0))
    assert env.apply(2, slow, sp, log) is sp
    assert env.apply(3, between, sp, log) is sp  # not braking: engages only above brake_engage


def test_force_ceiling_retreats_until_the_next_command():
    """The ceiling acts on the contact force filtered over 20 ms: a one-tick impulse of a stiff
    touch does not abort a command; a press above the ceiling does, within about one filter time
    constant, and the retreat holds until the next slow tick."""
    env, log = SafetyEnvelope(), EventLog()
    press = _sp(pos=(0.5, 0.0, 0.28))
    assert env.apply(0, _state(force=(0.0, 0.0, 8 * CFG.max_contact_force)), press, log) is press
    for tick in range(1, 60):  # the impulse decays away, then a steady press at twice the ceiling
        force = (0.0, 0.0, 0.0 if tick < 30 else 2 * CFG.max_contact_force)
        out = env.apply(tick, _state(force=force), press, log)
        if out is not press:
            break
    assert 30 < tick <= 30 + 1.5 * CFG.force_filter / 0.001
    assert out.position[2] > 0.3 + 0.009 and (out.stiffness[:3] <= 150.0).all()  # up, soft
    held = out.position.copy()
    out = env.apply(100, _state(), press, log)  # force gone: the retreat holds ...
    np.testing.assert_allclose(out.position, held)
    env.new_command()  # ... until the next slow tick
    assert env.apply(101, _state(), press, log) is press
    assert [e.reason for e in log.events] == ["force_ceiling"]


def test_joint_setpoints():
    env, log = SafetyEnvelope(EnvelopeConfig(max_joint_speed=(2.0,) * 7)), EventLog()
    q = np.zeros(7)
    out = env.apply(0, _state(q=q), Command.joint(np.full(7, 1.0), 1e6), log)
    np.testing.assert_allclose(out.stiffness, CFG.max_joint_stiffness)
    np.testing.assert_allclose(out.joint_position, CFG.max_joint_lead)
    out = env.apply(1, _state(q=q, dq=[0, 0, 3.0, 0, 0, 0, 0]), Command.joint(np.full(7, 0.1), 100.0), log)
    np.testing.assert_allclose(out.joint_position, q)  # a joint too fast: hold the posture
    assert {e.reason for e in log.events} == {"stiffness_limit", "setpoint_lead", "velocity_limit"}


@pytest.mark.parametrize(("kwargs", "match"), [({"max_speed": 0.0}, "max_speed"),
                                              ({"max_stiffness": 1e9}, "max_stiffness"),
                                              ({"max_spring_energy": float("nan")}, "max_spring_energy"),
                                              ({"damping_ratio": (2.0, 3.0)}, "damping_ratio"),
                                              ({"brake_release": 0.9}, "brake_release")])
def test_bad_envelope_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EnvelopeConfig(**kwargs)


# -- effects on the arm -------------------------------------------------------------------------
def test_a_command_one_metre_away_does_not_make_the_arm_lunge(make_arm):
    """A stiff command 1 m away, executed at once (policy rate = control rate): without an
    envelope this is a lunge; with it the tool moves at most at the speed limit and the spring
    never holds more than the energy and force bounds."""
    arm = make_arm(policy_hz=1000.0)
    start = arm.loop.state.ee_pos.copy()
    lunge = arm.hold_command(stiffness=(5000.0,) * 3 + (ROT_K,) * 3, position=start + np.array([0, 1.0, 0]))
    speeds, energies = [], []
    for _ in range(1500):  # 1.5 s
        arm.loop.step(lunge)
        speeds.append(np.linalg.norm(arm.loop.state.ee_vel[:3]))
        energies.append(_spring_energy(arm.loop.state, arm.loop.last_setpoint))
    assert max(speeds) <= SPEED_BOUND
    assert max(energies) <= CFG.max_spring_energy * (1 + 1e-9)
    assert arm.loop.state.ee_pos[1] - start[1] > 0.2  # it still goes where it is told, safely
    assert arm.loop.events.counts()["setpoint_lead"] >= 1


def test_a_reflex_asking_for_absurd_stiffness_is_capped(make_arm):
    """A reflex (or learned recovery) returning a setpoint with 1e9 N/m and a target inside the
    table: the executed setpoint is capped, the press stays within the spring-energy bound."""

    class Hostile:
        def reset(self, state):
            pass

        def new_command(self, command):
            pass

        def check(self, tick, state, setpoint, log):
            setpoint.stiffness[:3] = 1e9
            setpoint.position[2] = TABLE_TOP - 0.1
            return setpoint

    arm = make_arm(table=True, reflex=Hostile())
    start = arm.loop.state.ee_pos.copy()
    arm.run(arm.hold_command(position=[start[0], start[1], TABLE_TOP + 0.01]), 1.5)
    sp = arm.loop.last_setpoint
    assert (sp.stiffness[:3] <= CFG.max_stiffness).all()
    assert _spring_energy(arm.loop.state, sp) <= CFG.max_spring_energy * (1 + 1e-9)
    assert _spring_force(arm.loop.state, sp) <= CFG.max_spring_force * (1 + 1e-9)
    # Pressed with the envelope's spring, not 1e9 N/m x 10 cm.
    assert arm.loop.state.contact_force < 2 * CFG.max_contact_force
    assert {"stiffness_limit", "setpoint_lead"} <= set(arm.loop.events.counts())


# -- the randomised campaign ---------------------------------------------------------------------
def _high(task: str, option: str) -> float:
    """The largest value the task's config accepts for ``option`` (its declared bound)."""
    f = next(f for f in dataclasses.fields(TASKS[task].config_type) if f.name == option)
    return float(f.metadata["param"].high)


def _random_episode(seed: int, steps: int, push: float = 30.0, arm: ArmSpec = panda.ARM
                    ) -> dict[str, float]:
    """One episode of a random task of ``arm`` at random (valid, often extreme) options, each up
    to the bound the task's config declares, with a random shield, random pushes of up to
    ``push`` N and random actions (uniform, bang-bang or held); the largest tool speed, 50-ms mean
    contact force, spring energy, spring force and stiffness over every tick."""
    rng = np.random.default_rng(seed)
    task = str(rng.choice([t for t, spec in TASKS.items() if getattr(spec.config_type, "arm", None) is arm]))
    k_max, rot_max, step_max = (_high(task, o) for o in ("stiffness_range", "rot_stiffness", "max_step"))
    lo = float(np.exp(rng.uniform(0.0, np.log(k_max))))
    options = {"stiffness_range": (lo, float(min(k_max, lo * np.exp(rng.uniform(0, 5))))),
               "rot_stiffness": float(rng.uniform(rot_max / 300, rot_max)),
               "damping_ratio": float(rng.uniform(0.2, 3.0)),
               "max_step": float(rng.uniform(step_max / 50, step_max)),
               "disturbances": Disturbances(push_rate=float(rng.uniform(0, 2)), push_force=(0.0, push),
                                            wall_shift=0.03)}
    if rng.random() < 0.5:
        options["fixed_stiffness"] = float(rng.choice([0.0, k_max, rng.uniform(0.0, k_max)]))
    env = make(task, shield=str(rng.choice(["none", "limits"])), **options)
    loop = env.unwrapped.loop
    worst = {"speed": 0.0, "force50": 0.0, "energy": 0.0, "spring": 0.0, "stiffness": 0.0}
    window: list[float] = []
    tick = loop.tick

    def measured_tick() -> None:
        tick()
        s, sp = loop.state, loop.last_setpoint
        worst["speed"] = max(worst["speed"], float(np.linalg.norm(s.ee_vel[:3])))
        window.append(float(s.contact_force))
        del window[:-50]
        worst["force50"] = max(worst["force50"], sum(window) / 50)
        if not loop.backend.holding and sp.position is not None:
            worst["energy"] = max(worst["energy"], _spring_energy(s, sp))
            worst["spring"] = max(worst["spring"], _spring_force(s, sp))
            worst["stiffness"] = max(worst["stiffness"], float(sp.stiffness[:3].max()))

    loop.tick = measured_tick  # type: ignore[method-assign]
    try:
        env.reset(seed=seed)
        n = env.action_space.shape[0]
        kind, held = rng.integers(3), np.zeros(n)
        for i in range(steps):
            if i % 10 == 0:
                held = rng.choice([-1.0, 1.0], n)
            a = (rng.uniform(-1, 1, n), rng.choice([-1.0, 1.0], n), held)[kind]
            _, _, terminated, truncated, _ = env.step(a.astype(np.float32))
            if terminated or truncated:
                env.reset(seed=seed + 10_000 + i)
    finally:
        env.close()
    return worst


def _campaign(seeds: range, steps: int, arm: ArmSpec = panda.ARM, push: float = 30.0,
              speed: float = SPEED_BOUND, force50: float = SUSTAINED_FORCE_BOUND) -> None:
    cfg = arm.envelope
    worst = [_random_episode(s, steps, push, arm) for s in seeds]
    for key, bound in (("speed", speed), ("force50", force50),
                       ("energy", cfg.max_spring_energy * (1 + 1e-9)),
                       ("spring", cfg.max_spring_force * (1 + 1e-9)),
                       ("stiffness", cfg.max_stiffness * (1 + 1e-9))):  # up to rounding
        top = max(range(len(worst)), key=lambda i: worst[i][key])
        assert worst[top][key] <= bound, (key, worst[top][key], "seed", seeds[top])


def test_random_campaign_stays_inside_the_envelope():
    _campaign(range(20), steps=40)


def test_random_campaign_on_the_servo_arm_stays_inside_its_envelope():
    """The servo arm's own, smaller envelope (10 N, 0.5 m/s, 500 N/m) holds against any option
    its tasks accept and pushes of up to 8 N (half what its 3 N m servos can resist at the tip)."""
    cfg = servo_arm.ARM.envelope
    _campaign(range(12), steps=40, arm=servo_arm.ARM, push=8.0, speed=cfg.max_speed,
              force50=1.5 * cfg.max_contact_force)


@pytest.mark.slow
def test_long_random_campaign_stays_inside_the_envelope():
    _campaign(range(1000, 1400), steps=80)
