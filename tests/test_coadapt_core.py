"""The pieces of shared control (robot_brain.coadapt), each by its effect: what the goal belief
concludes from inputs, what command the arbiter sends and when it yields, how the assistance
ceiling moves, what the input guard lets through, how the simulated person steers, and what the
``reach-shared`` task reports. Only the env tests run MuJoCo."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from robot_brain.coadapt.arbitration import Arbiter, ArbitrationConfig, AssistAsNeeded
from robot_brain.coadapt.belief import BETA_RANGE, GoalBelief, fit_beta
from robot_brain.coadapt.sensing import (
    GuardConfig,
    HumanModel,
    HumanView,
    InputGuard,
    SimulatedHuman,
    make_input,
)
from robot_brain.envs import ReachSharedConfig, make

# Three goals in front of a tool at the origin: 45 deg left, straight ahead, 45 deg right.
TOOL = np.zeros(3)
GOALS = np.array([[0.2, -0.2, 0.0], [0.2, 0.0, 0.0], [0.2, 0.2, 0.0]])
# The reach-shared default layout and start (for the simulated person and fit_beta).
TASK_GOALS = np.array([[0.55, -0.2, 0.25], [0.58, 0.0, 0.25], [0.55, 0.2, 0.25]])
TASK_START = np.array([0.35, 0.0, 0.42])
DT = 0.05  # slow tick [s] (20 Hz)
STEP = 0.02  # largest displacement per tick [m]


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def cos(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def toward(goal: int, speed: float = 0.6, tool=TOOL, goals=GOALS) -> np.ndarray:
    return speed * unit(goals[goal] - tool)


def one_line_error(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    return msg


# -- GoalBelief --------------------------------------------------------------------------------
@pytest.mark.parametrize("goal", [0, 1, 2])
def test_inputs_toward_a_goal_make_it_the_map_with_rising_confidence(goal: int) -> None:
    belief = GoalBelief(GOALS)
    confidence = [belief.confidence]
    for _ in range(8):
        belief.update(TOOL, toward(goal))
        confidence.append(belief.confidence)
        assert belief.map_goal == goal
    assert confidence[1] > confidence[0] + 0.05  # the first input already says something
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(confidence))
    assert confidence[-1] > 0.9


def test_no_input_leaves_the_belief_unchanged() -> None:
    belief = GoalBelief(GOALS, prior=[0.5, 0.3, 0.2])
    belief.update(TOOL, toward(2))
    before = belief.probs.copy()
    for _ in range(20):
        belief.update(TOOL, None)
    np.testing.assert_array_equal(belief.probs, before)


def test_the_floor_lets_consistent_inputs_overturn_a_strong_prior() -> None:
    floor = 0.01
    belief = GoalBelief(GOALS, prior=[0.98, 0.01, 0.01], floor=floor)
    for _ in range(100):  # a long history of heading for goal 0
        belief.update(TOOL, toward(0))
        assert belief.probs.min() >= floor - 1e-12
    ticks = 0
    while belief.map_goal != 2:
        belief.update(TOOL, toward(2))
        ticks += 1
        assert ticks <= 6, "the floor should let goal 2 win back the belief within a few ticks"
    for _ in range(5):
        belief.update(TOOL, toward(2))
    assert belief.map_goal == 2 and belief.confidence > 0.9


def test_without_a_floor_the_same_history_is_not_overturned_quickly() -> None:
    belief = GoalBelief(GOALS, prior=[0.98, 0.01, 0.01], floor=0.0)
    for _ in range(100):
        belief.update(TOOL, toward(0))
    for _ in range(20):
        belief.update(TOOL, toward(2))
    assert belief.map_goal == 0  # what the floor above is for


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"goals": np.zeros((3, 2))}, "goals must be"),
    ({"goals": np.zeros((1, 3))}, "goals must be"),
    ({"goals": np.zeros(3)}, "goals must be"),
    ({"beta": 0.0}, "beta"),
    ({"beta": -1.0}, "beta"),
    ({"beta": math.nan}, "beta"),
    ({"beta": math.inf}, "beta"),
    ({"floor": 0.34}, "floor"),
    ({"floor": -0.01}, "floor"),
    ({"prior": [0.5, 0.5]}, "prior"),
    ({"prior": [1.0, -0.1, 0.1]}, "prior"),
    ({"prior": [0.0, 0.0, 0.0]}, "prior"),
    ({"prior": [math.nan, 1.0, 1.0]}, "prior"),
])
def test_bad_goals_prior_beta_or_floor_are_rejected(kwargs, match: str) -> None:
    args = {"goals": GOALS, **kwargs}
    with pytest.raises(ValueError, match=match) as info:
        GoalBelief(args.pop("goals"), **args)
    one_line_error(info)


# -- fit_beta ------------------------------------------------------------------------------------
def _steer(noise: float, seed: int, goal: int = 2, n: int = 60) -> list[tuple[np.ndarray, np.ndarray]]:
    """(tool, input) of a person heading for ``goal`` with heading noise ``noise`` (0: perfect)."""
    rng = np.random.default_rng(seed)
    x, out = TASK_START.copy(), []
    for _ in range(n):
        u = 0.6 * unit(unit(TASK_GOALS[goal] - x) + rng.normal(0.0, noise, 3))
        out.append((x.copy(), u))
        x = x + 0.2 * STEP * u
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_beta_trusts_a_straight_steerer_more_than_a_noisy_one(seed: int) -> None:
    clean = fit_beta(_steer(0.0, seed), TASK_GOALS, 2)
    noisy = fit_beta(_steer(1.0, seed), TASK_GOALS, 2)
    assert clean is not None and noisy is not None
    assert BETA_RANGE[0] <= noisy <= BETA_RANGE[1] and BETA_RANGE[0] <= clean <= BETA_RANGE[1]
    assert clean > 3 * noisy


def test_fit_beta_needs_five_real_inputs() -> None:
    samples = _steer(0.0, 0)
    assert fit_beta(samples[:4], TASK_GOALS, 2) is None
    assert fit_beta(samples[:5], TASK_GOALS, 2) is not None
    # Inputs of norm <= 0.05 (a hand resting on the device) are not evidence.
    resting = [(x, 0.01 * unit(u)) for x, u in samples]
    assert fit_beta(resting, TASK_GOALS, 2) is None


# -- Arbiter -------------------------------------------------------------------------------------
def _arbiter(**cfg) -> Arbiter:
    return Arbiter(ArbitrationConfig(**cfg), step=STEP, dt=DT)


def _confident(goal: int = 0) -> GoalBelief:
    prior = np.full(3, 0.01)
    prior[goal] = 0.98
    return GoalBelief(GOALS, prior=prior)


@pytest.mark.parametrize("mode", ["blend", "hindsight", "off"])
def test_no_input_holds_the_arm_whatever_the_belief(mode: str) -> None:
    arbiter = _arbiter(mode=mode)
    for belief in (_confident(0), GoalBelief(GOALS)):
        d = arbiter.decide(TOOL, None, belief, alpha_max=1.0)
        np.testing.assert_array_equal(d.command, np.zeros(3))
        assert d.alpha == 0.0 and d.authority == 1.0


def test_blend_with_a_confident_belief_pulls_the_command_toward_the_robots_approach() -> None:
    arbiter, belief = _arbiter(mode="blend"), _confident(0)
    assert belief.confidence > 0.85  # above c1: full assistance
    u = 0.6 * unit(unit(GOALS[0]) + np.array([0.0, 0.0, 0.8]))  # toward goal 0, drifting up
    d = arbiter.decide(TOOL, u, belief, alpha_max=0.7)
    assert d.alpha == pytest.approx(0.7)
    np.testing.assert_allclose(d.assist, unit(GOALS[0]))  # full robot speed, far from the goal
    np.testing.assert_allclose(d.command, 0.7 * d.assist + 0.3 * u)
    assert cos(d.command, GOALS[0]) > cos(u, GOALS[0]) + 0.1
    assert not d.disagree


def test_blend_assistance_scales_with_confidence_between_c0_and_c1() -> None:
    arbiter = _arbiter(mode="blend", c0=0.45, c1=0.85)
    belief = GoalBelief(GOALS, prior=[0.65, 0.2, 0.15], floor=0.0)
    d = arbiter.decide(TOOL, toward(0), belief, alpha_max=0.8)
    assert d.alpha == pytest.approx(0.8 * (0.65 - 0.45) / (0.85 - 0.45))


def test_blend_with_a_uniform_belief_passes_the_input_through() -> None:
    u = np.array([0.3, 0.1, -0.2])
    d = _arbiter(mode="blend").decide(TOOL, u, GoalBelief(GOALS), alpha_max=1.0)
    assert d.alpha == 0.0
    np.testing.assert_allclose(d.command, u)


def test_mode_off_sends_the_input_unchanged() -> None:
    u = np.array([0.0, 0.5, 0.2])  # not toward the believed goal 0
    d = _arbiter(mode="off").decide(TOOL, u, _confident(0), alpha_max=1.0)
    assert d.alpha == 0.0
    np.testing.assert_array_equal(d.command, u)


def test_persistent_opposition_makes_the_robot_yield_and_agreement_restores_it() -> None:
    arbiter, belief = _arbiter(mode="blend"), _confident(0)  # the robot is sure of goal 0
    against = -toward(0)
    authority = []
    for _ in range(20):  # one second of pushing against the robot's approach
        d = arbiter.decide(TOOL, against, belief, alpha_max=1.0)
        assert d.disagree
        authority.append(d.authority)
    assert min(authority[:3]) > 0.99  # a brief disagreement is not a reason to yield
    assert authority[-1] < 0.05
    assert d.alpha < 0.05
    np.testing.assert_allclose(d.command, against, atol=0.05)  # the person is in charge

    recovery = []
    for _ in range(80):  # four seconds of agreement
        d = arbiter.decide(TOOL, toward(0), belief, alpha_max=1.0)
        recovery.append(d.authority)
    assert recovery[4] < 0.2  # it comes back slowly, not at the first agreeing tick
    rising = recovery[10:]  # once the disagreement average has fallen below yield_level
    assert all(b > a for a, b in itertools.pairwise(rising))
    assert recovery[-1] > 0.85
    assert d.alpha > 0.85


def test_hindsight_assists_toward_what_two_likely_goals_share() -> None:
    goals = np.array([[0.2, 0.1, 0.0], [0.2, -0.1, 0.0]])  # both ahead (+x), either side of it
    belief = GoalBelief(goals)  # 50/50
    u = np.array([0.0, 0.0, 0.5])  # the person pushes up, not toward either goal
    d = _arbiter(mode="hindsight").decide(TOOL, u, belief, alpha_max=1.0)
    assert d.alpha > 0
    assert d.command[0] > 0.3  # forward, toward both goals
    assert abs(d.command[1]) < 1e-9  # favouring neither
    # Blending picks one of the two (the MAP of a tie) instead.
    b = _arbiter(mode="blend").decide(TOOL, u, belief, alpha_max=1.0)
    assert b.command[0] < d.command[0] and abs(b.command[1]) > 0.01


@pytest.mark.parametrize(("cfg", "match"), [
    ({"c0": 0.8, "c1": 0.8}, "c1 .* must exceed c0"),
    ({"c0": 0.9, "c1": 0.5}, "c1 .* must exceed c0"),
    ({"mode": "autopilot"}, "assistance mode must be one of blend, hindsight, off"),
    ({"c0": 1.5}, "c0"),
    ({"yield_tau": 0.0}, "yield_tau"),
])
def test_bad_arbitration_config_is_one_line(cfg, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        ArbitrationConfig(**cfg)
    one_line_error(info)


@pytest.mark.parametrize(("step", "dt"), [(0.0, DT), (STEP, 0.0), (-1.0, DT)])
def test_arbiter_needs_a_positive_step_and_period(step: float, dt: float) -> None:
    with pytest.raises(ValueError, match="step and dt must be positive"):
        Arbiter(step=step, dt=dt)


# -- AssistAsNeeded ------------------------------------------------------------------------------
def test_assist_as_needed_relaxes_when_the_person_manages() -> None:
    aan = AssistAsNeeded(forgetting=0.85, gain=0.8, dead_band=0.1)
    assert aan.update(0.5, 0.05) == pytest.approx(0.85 * 0.5)
    ceiling = 0.5
    for _ in range(5):
        nxt = aan.update(ceiling, 0.0)
        assert nxt < ceiling
        ceiling = nxt


def test_assist_as_needed_rises_with_a_large_error() -> None:
    aan = AssistAsNeeded(forgetting=0.85, gain=0.8, dead_band=0.1)
    assert aan.update(0.5, 0.6) == pytest.approx(0.85 * 0.5 + 0.8 * 0.5)
    assert aan.update(0.5, 0.6) > 0.5


def test_assist_as_needed_stays_between_low_and_high() -> None:
    aan = AssistAsNeeded(low=0.1, high=0.9)
    assert aan.update(0.9, 2.0) == 0.9
    assert aan.update(0.1, 0.0) == 0.1
    assert aan.update(0.5, 1e9) == 0.9


@pytest.mark.parametrize("error", [None, math.nan])
def test_assist_as_needed_keeps_the_ceiling_without_an_error(error) -> None:
    assert AssistAsNeeded().update(0.37, error) == pytest.approx(0.37)


def test_assist_as_needed_low_above_high_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"low .* must not exceed high"):
        AssistAsNeeded(low=0.8, high=0.2)


# -- InputGuard ----------------------------------------------------------------------------------
BAD_INPUTS = {
    "nan": ([math.nan, 0.0, 0.0], "non-finite"),
    "inf": ([0.0, -math.inf, 0.0], "non-finite"),
    "2-vector": ([0.1, 0.2], "wrong shape"),
    "4-vector": ([0.1, 0.2, 0.3, 0.4], "wrong shape"),
    "row": ([[0.1, 0.2, 0.3]], "wrong shape"),
    "scalar": (0.5, "wrong shape"),
    "absurd": ([6.0, 0.0, 0.0], "absurd magnitude"),
    "huge": ([1e6, 1e6, 1e6], "absurd magnitude"),
    "string": ("up", "not a vector"),
    "strings": (["a", "b", "c"], "not a vector"),
    "numeric strings": (["1", "0", "0"], "not a vector"),  # text is no command, even if it reads as one
    "object": (object(), "not a vector"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_the_guard_turns_a_faulty_input_into_no_input_and_counts_it(name: str) -> None:
    raw, why = BAD_INPUTS[name]
    guard = InputGuard()
    assert guard.filter(0.0, raw) is None
    assert guard.filter(0.05, raw) is None
    assert guard.rejected == {why: 2}
    assert guard.filter(0.1, [0.1, 0.0, 0.0]) is not None  # the next good input passes


def test_no_input_is_not_a_fault() -> None:
    guard = InputGuard()
    assert guard.filter(0.0, None) is None
    assert guard.rejected == {}


@pytest.mark.parametrize("norm", [1.0 + 1e-9, 1.5, 3.0, 5.0])
def test_inputs_above_full_speed_are_scaled_to_exactly_one(norm: float) -> None:
    direction = unit([1.0, -2.0, 0.5])
    u = InputGuard(GuardConfig(absurd=5.0)).filter(0.0, norm * direction)
    assert float(np.linalg.norm(u)) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(u, direction)


def test_inputs_within_full_speed_pass_unchanged_as_a_copy() -> None:
    raw = np.array([0.3, -0.4, 0.1])
    u = InputGuard().filter(0.0, raw)
    np.testing.assert_array_equal(u, raw)
    raw[0] = 99.0  # the source reusing its buffer cannot change what was let through
    assert u[0] == 0.3


def test_a_source_that_raises_is_no_input() -> None:
    class Broken:
        name = "broken"

        def read(self, view):
            raise OSError("device unplugged")

    guard = InputGuard()
    view = HumanView(t=0.0, tool=TOOL, goals=GOALS, speed=0.4)
    assert guard.read(Broken(), view) is None
    assert guard.rejected == {"source error": 1}


def test_stalled_only_after_the_timeout_without_valid_input() -> None:
    guard = InputGuard(GuardConfig(timeout_s=0.5))
    assert guard.filter(0.0, [0.2, 0.0, 0.0]) is not None
    stalled = {}
    for k in range(1, 13):
        t = k * DT
        guard.filter(t, [math.nan] * 3 if k % 2 else None)  # faults count as silence too
        stalled[round(t, 2)] = guard.stalled
    assert not any(v for t, v in stalled.items() if t <= 0.5)
    assert all(v for t, v in stalled.items() if t > 0.5 + 1e-9)
    guard.filter(0.7, [0.0, 0.2, 0.0])
    assert not guard.stalled  # a valid input ends it


def test_a_source_silent_from_the_start_stalls_too() -> None:
    guard = InputGuard(GuardConfig(timeout_s=0.3))
    guard.filter(10.0, None)  # the clock need not start at 0
    guard.filter(10.25, None)
    assert not guard.stalled
    guard.filter(10.35, None)
    assert guard.stalled
    guard.reset()
    guard.filter(20.0, None)
    assert not guard.stalled and guard.rejected == {}


@pytest.mark.parametrize(("cfg", "match"), [({"absurd": 0.5}, "absurd"), ({"absurd": math.inf}, "absurd"),
                                            ({"timeout_s": 0.0}, "timeout_s")])
def test_bad_guard_config_is_rejected(cfg, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GuardConfig(**cfg)


# -- the simulated person ------------------------------------------------------------------------
def _view(t: float, tool=TASK_START) -> HumanView:
    return HumanView(t=t, tool=np.asarray(tool, dtype=np.float64), goals=TASK_GOALS, speed=0.4)


def _reads(person: SimulatedHuman, n: int = 200, goal: int = 1, tool=TASK_START) -> list:
    person.set_goal(goal)
    return [person.read(_view(i * DT, tool)) for i in range(n)]


def _mean_cos(person: SimulatedHuman, n: int = 200, goal: int = 1) -> float:
    direction = TASK_GOALS[goal] - TASK_START
    return float(np.mean([cos(u, direction) for u in _reads(person, n, goal)]))


def test_the_simulated_person_is_reproducible_from_the_seed() -> None:
    model = HumanModel(noise=0.8, idle=0.2)
    a, b, c = (SimulatedHuman(model, seed=s) for s in (3, 3, 4))
    assert [a.choose_goal(3) for _ in range(20)] == [b.choose_goal(3) for _ in range(20)]
    for p in (a, b, c):
        p.reset(0)
    ra, rb, rc = _reads(a, 50), _reads(b, 50), _reads(c, 50)
    assert any(u is None for u in ra)  # idle 0.2: some lapses
    for x, y in zip(ra, rb, strict=True):
        assert (x is None and y is None) or np.array_equal(x, y)
    assert any((x is None) != (z is None) or (x is not None and not np.array_equal(x, z))
               for x, z in zip(ra, rc, strict=True))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_less_noise_means_inputs_closer_to_the_goal(seed: int) -> None:
    steady = SimulatedHuman(HumanModel(noise=0.1, noise_final=0.1), seed=seed)
    shaky = SimulatedHuman(HumanModel(noise=1.0, noise_final=1.0), seed=seed)
    steady.reset(0)
    shaky.reset(0)
    good, bad = _mean_cos(steady), _mean_cos(shaky)
    assert good > 0.95
    assert good > bad + 0.2


def test_noise_shrinks_with_practice_toward_its_final_level() -> None:
    m = HumanModel(noise=1.2, noise_final=0.2, learning_trials=5.0)
    levels = [m.noise_at(k) for k in range(40)]
    assert levels[0] == pytest.approx(1.2)
    assert all(b < a for a, b in itertools.pairwise(levels))
    assert levels[5] == pytest.approx(0.2 + 1.0 * math.exp(-1))
    assert levels[-1] == pytest.approx(0.2, abs=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_practice_is_the_persons_own_and_survives_a_new_session(seed: int) -> None:
    model = HumanModel(noise=1.5, noise_final=0.1, learning_trials=1.0)
    novice = SimulatedHuman(model, seed=seed)
    novice.reset(0)
    veteran = SimulatedHuman(model, seed=seed)
    for _ in range(10):
        veteran.reset(0)  # every session calls its first trial 0: the person still learns
    assert veteran.practice == 10
    assert _mean_cos(veteran) > _mean_cos(novice) + 0.2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extra_noise_makes_the_person_worse_from_the_next_trial(seed: int) -> None:
    rested = SimulatedHuman(HumanModel(noise=0.1, noise_final=0.1), seed=seed)
    tired = SimulatedHuman(HumanModel(noise=0.1, noise_final=0.1), seed=seed)
    rested.reset(0)
    tired.extra_noise = 1.5
    tired.reset(0)
    assert _mean_cos(tired) < _mean_cos(rested) - 0.2


def test_a_delayed_person_steers_from_where_they_saw_the_tool() -> None:
    exact = dict(noise=0.0, noise_final=0.0, slow_radius=0.01)
    slow = SimulatedHuman(HumanModel(delay=0.5, **exact), seed=0, control_hz=20.0)  # 10 ticks
    quick = SimulatedHuman(HumanModel(delay=0.0, **exact), seed=0, control_hz=20.0)
    a = TASK_START
    b = TASK_GOALS[1] + np.array([0.0, 0.0, 0.15])  # straight above goal 1
    for p in (slow, quick):
        p.set_goal(1)
        p.reset(0)
    for i in range(10):  # half a second at a
        for p in (slow, quick):
            p.read(_view(i * DT, a))
    from_a, from_b = 0.6 * unit(TASK_GOALS[1] - a), 0.6 * unit(TASK_GOALS[1] - b)
    # The tool has moved to b: the quick person heads straight down, the slow one as from a.
    np.testing.assert_allclose(quick.read(_view(0.5, b)), from_b, atol=1e-12)
    np.testing.assert_allclose(slow.read(_view(0.5, b)), from_a, atol=1e-12)
    for i in range(11, 21):
        late = slow.read(_view(i * DT, b))
    np.testing.assert_allclose(late, from_b, atol=1e-12)  # 0.5 s later they see it too


def test_goal_weights_bias_the_goal_the_person_chooses() -> None:
    only_two = SimulatedHuman(HumanModel(goal_weights=(0, 0, 1)), seed=0)
    assert {only_two.choose_goal(3) for _ in range(50)} == {2}
    mostly_zero = SimulatedHuman(HumanModel(goal_weights=(8, 1, 1)), seed=0)
    uniform = SimulatedHuman(HumanModel(), seed=0)
    picks = np.bincount([mostly_zero.choose_goal(3) for _ in range(600)], minlength=3) / 600
    even = np.bincount([uniform.choose_goal(3) for _ in range(600)], minlength=3) / 600
    assert picks[0] > 0.7
    assert np.all(np.abs(even - 1 / 3) < 0.07)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_goal_weights_for_another_number_of_goals_are_refused_by_name() -> None:
    person = SimulatedHuman(HumanModel(goal_weights=(0, 0, 1)), seed=0)
    with pytest.raises(ValueError, match="goal_weights"):
        person.choose_goal(2)


@pytest.mark.parametrize(("options", "field"), [
    ({"noise": -1.0}, "noise"),
    ({"noise_final": 9.0}, "noise_final"),
    ({"speed": 0.0}, "speed"),
    ({"delay": "slow"}, "delay"),
    ({"idle": 1.0}, "idle"),
    ({"bias": (0.9, 0.9, 0.0)}, "bias"),
    ({"bias": (0.1, 0.1)}, "bias"),
    ({"goal_weights": (1.0, -1.0, 1.0)}, "goal_weights"),
    ({"goal_weights": (0.0, 0.0, 0.0)}, "goal_weights"),
    ({"goal_weights": "often"}, "goal_weights"),
    ({"goal_weights": ((1, 2), (3, 4))}, "goal_weights"),
])
def test_bad_person_options_are_rejected_in_one_line_naming_the_field(options, field: str) -> None:
    with pytest.raises(ValueError, match=field) as info:
        HumanModel(**options)
    one_line_error(info)
    with pytest.raises(ValueError, match=field) as info:
        make_input("sim", options)
    one_line_error(info)


def test_make_input_builds_the_simulated_person_with_its_options() -> None:
    person = make_input("sim", {"noise": 0.0, "noise_final": 0.0, "delay": 0.0}, seed=5, control_hz=20.0)
    assert isinstance(person, SimulatedHuman)
    person.reset(0)
    np.testing.assert_allclose(_reads(person, 1, goal=0)[0], 0.6 * unit(TASK_GOALS[0] - TASK_START))


def test_make_input_rejects_unknown_sources_and_options() -> None:
    with pytest.raises(ValueError, match="unknown human input 'joystick'") as info:
        make_input("joystick")
    assert "sim, keyboard, spacemouse, ros2" in one_line_error(info)
    with pytest.raises(ValueError, match=r"unknown option 'nosie'.*did you mean 'noise'") as info:
        make_input("sim", {"nosie": 0.3})
    one_line_error(info)


# -- the reach-shared task -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_env():
    env = make("reach-shared")
    yield env
    env.close()


def _drive(env, target: np.ndarray, max_ticks: int = 200):
    """Steer the tool straight at ``target``; the last step's results and the ticks used."""
    task = env.unwrapped
    for tick in range(1, max_ticks + 1):
        move = np.clip((target - task.state.ee_pos) / task.config.max_step, -1, 1)
        out = env.step(np.concatenate([move, np.full(3, 0.5)]).astype(np.float32))
        if out[2] or out[3]:
            return out, tick
    return out, max_ticks


def test_the_intended_goal_is_drawn_per_seed_and_can_be_set(shared_env) -> None:
    task = shared_env.unwrapped
    drawn = {}
    for seed in range(12):
        shared_env.reset(seed=seed)
        drawn[seed] = task.intended
    assert len(set(drawn.values())) >= 2  # not always the same goal
    shared_env.reset(seed=7)
    assert task.intended == drawn[7]  # the seed decides
    obs_drawn, _ = shared_env.reset(seed=7)
    other = (drawn[7] + 1) % 3
    obs_set, info = shared_env.reset(seed=7, options={"goal": other})
    assert task.intended == other and info["reached"] == -1
    np.testing.assert_array_equal(task.goal, task.goals[other])
    np.testing.assert_array_equal(obs_set[:3], obs_drawn[:3])  # the seed's start is kept


@pytest.mark.parametrize("goal", [3, -1, True, 1.0, "1"])
def test_a_bad_goal_index_is_rejected(shared_env, goal) -> None:
    with pytest.raises(ValueError, match="goal index in \\[0, 2\\]"):
        shared_env.reset(seed=0, options={"goal": goal})


def test_the_observation_holds_every_goal_relative_to_the_tool(shared_env) -> None:
    task = shared_env.unwrapped
    obs, _ = shared_env.reset(seed=3, options={"goal": 1})
    assert obs.shape == (6 + 3 * 3,)
    tool = task.state.ee_pos.copy()  # (the state is a live view)
    np.testing.assert_allclose(obs[:3], tool)
    assert np.linalg.norm(tool - TASK_START) < 0.02 * math.sqrt(3) + 1e-3  # start with jitter
    np.testing.assert_allclose(obs[6:].reshape(3, 3), TASK_GOALS - tool)
    for _ in range(4):
        obs, *_ = shared_env.step(np.array([1, 0, 0, 0, 0, 0], dtype=np.float32))
    moved = task.state.ee_pos
    assert moved[0] > tool[0] + 3e-3
    np.testing.assert_allclose(obs[6:].reshape(3, 3), TASK_GOALS - moved)


def test_reaching_another_goal_ends_the_trial_as_a_failure(shared_env) -> None:
    shared_env.reset(seed=1, options={"goal": 0})
    (_, _, terminated, truncated, info), ticks = _drive(shared_env, TASK_GOALS[2])
    assert terminated and not truncated and ticks < 200
    assert info["reached"] == 2 and info["is_success"] is False
    assert np.linalg.norm(shared_env.unwrapped.state.ee_pos - TASK_GOALS[2]) < 0.02


def test_reaching_the_intended_goal_is_success(shared_env) -> None:
    shared_env.reset(seed=1, options={"goal": 1})
    (_, _, terminated, _, info), ticks = _drive(shared_env, TASK_GOALS[1])
    assert terminated and ticks < 200
    assert info["reached"] == 1 and info["is_success"] is True


def test_a_custom_goal_layout_is_used(shared_env) -> None:
    goals = [[0.45, -0.15, 0.3], [0.45, 0.15, 0.3]]
    env = make("reach-shared", goals=goals)
    try:
        obs, _ = env.reset(seed=0, options={"goal": 1})
        assert obs.shape == (6 + 2 * 3,)
        np.testing.assert_allclose(obs[6:].reshape(2, 3), np.array(goals) - obs[:3])
        (_, _, terminated, _, info), _ = _drive(env, np.array(goals[1]))
        assert terminated and info["reached"] == 1 and info["is_success"]
    finally:
        env.close()


@pytest.mark.parametrize(("goals", "match"), [
    ([[0.5, 0.0, 0.3], [0.52, 0.0, 0.3]], "at least 6 cm apart"),
    ([[0.9, 0.0, 0.3], [0.5, 0.0, 0.3]], "reach box"),
    ([[0.5, 0.0, 0.05], [0.5, 0.2, 0.3]], "reach box"),
    ([[0.5, 0.0, math.nan], [0.5, 0.2, 0.3]], "reach box"),
    ([[0.5, 0.0], [0.5, 0.2]], "2 to 8"),
    ([[0.5, 0.0, 0.3]], "2 to 8"),
    ([[0.5, 0.0, 0.3]] * 9, "2 to 8"),
    ("left", "list of \\[x, y, z\\] positions"),
    ([[0.5, "x", 0.3], [0.5, 0.2, 0.3]], "list of \\[x, y, z\\] positions"),
])
def test_bad_goal_layouts_are_rejected_in_one_line(goals, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        ReachSharedConfig(goals=goals)
    assert "ReachSharedConfig.goals" in one_line_error(info)


def test_goal_regions_may_not_touch() -> None:
    """Goals 10 cm apart allow a tolerance of a third of that, not more."""
    goals = [[0.5, -0.05, 0.3], [0.5, 0.05, 0.3]]
    assert ReachSharedConfig(goals=goals, goal_tolerance=0.03).goal_tolerance == 0.03
    with pytest.raises(ValueError, match=r"goal_tolerance <= 3\.3 cm"):
        ReachSharedConfig(goals=goals, goal_tolerance=0.04)
