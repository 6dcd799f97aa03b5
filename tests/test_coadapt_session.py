"""Co-adaptation sessions on the real ``reach-shared`` task (MuJoCo, two-rate loop, reflex):
assistance against the person alone, what the profile learns and keeps, a faulty input device
from end to end, the robot giving way to a person who goes against the history, and the
``robot-brain sim reach-shared --human ...`` command line."""

from __future__ import annotations

import itertools
import json
import math

import gymnasium as gym
import numpy as np
import pytest

from robot_brain.cli import main
from robot_brain.coadapt.arbitration import ArbitrationConfig
from robot_brain.coadapt.memory import ProfileStore, UserProfile
from robot_brain.coadapt.sensing import HumanModel, SimulatedHuman
from robot_brain.coadapt.session import CoadaptSession, SessionConfig, TrialRecord
from robot_brain.envs import make


@pytest.fixture(scope="module")
def env():
    e = make("reach-shared")
    yield e
    e.close()


def _session(env, model: HumanModel, *, seed: int = 0, mode: str = "blend", profile=None, store=None,
             adapt: bool = True) -> CoadaptSession:
    return CoadaptSession(env, SimulatedHuman(model, seed=seed), profile or UserProfile("alice"),
                          store=store, config=SessionConfig(adapt=adapt),
                          arbitration=ArbitrationConfig(mode=mode))


# -- assistance helps ----------------------------------------------------------------------------
@pytest.mark.parametrize("human_seed", [0, 1, 2])
def test_blending_helps_a_shaky_person_succeed_more_often_and_sooner(env, human_seed: int) -> None:
    shaky = HumanModel(noise=0.6, noise_final=0.6)
    results = {}
    for mode in ("blend", "off"):
        session = _session(env, shaky, seed=human_seed, mode=mode, adapt=False)
        # The same three trials (one per goal, same episode seeds) with and without help.
        records = [session.trial(i, 100 * human_seed + i, goal=i) for i in range(3)]
        results[mode] = (sum(r.success for r in records), float(np.mean([r.time for r in records])),
                         [r.assistance for r in records])
    (won_blend, time_blend, assist), (won_off, time_off, no_assist) = results["blend"], results["off"]
    assert won_blend >= won_off + 1
    assert time_blend <= time_off - 1.0
    assert min(assist) > 0.1 and max(no_assist) == 0.0  # the help was there, and only with blend


# -- memory --------------------------------------------------------------------------------------
def test_the_profile_learns_the_persons_favourite_goal_and_is_saved(env, tmp_path) -> None:
    store = ProfileStore(tmp_path)
    profile = UserProfile("alice")
    steady = HumanModel(noise=0.15, noise_final=0.15, goal_weights=(0, 1, 0))
    session = _session(env, steady, profile=profile, store=store)
    records = session.run(4, seed=10)
    assert [r.goal for r in records] == [1, 1, 1, 1]  # the person's choice, not the env's draw
    assert all(r.success for r in records)
    prior = profile.goal_prior(3)
    assert int(np.argmax(prior)) == 1 and prior[1] > 0.6
    assert profile.trials == 4 and len(profile.errors) == 4 and profile.beta != 3.0
    # A steady person: assist-as-needed lowers the ceiling trial after trial.
    ceilings = [r.alpha_max for r in records] + [profile.alpha_max]
    assert all(b < a for a, b in itertools.pairwise(ceilings))
    loaded, note = ProfileStore(tmp_path).load("alice")
    assert note is None
    assert loaded.to_dict() == profile.to_dict()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.json"]


def test_the_assistance_ceiling_rises_for_a_person_who_needs_it(env) -> None:
    profile = UserProfile("bob", alpha_max=0.3)
    session = _session(env, HumanModel(noise=1.2, noise_final=1.2), seed=4, profile=profile)
    for i in range(2):
        session.trial(i, 40 + i, goal=i)
    assert profile.alpha_max > 0.3
    assert all(e > 0.1 for e in profile.errors)  # above the dead band: the person's own error


def test_without_adaptation_the_profile_is_left_alone_and_nothing_is_saved(env, tmp_path) -> None:
    profile = UserProfile("alice", beta=5.0, alpha_max=0.4, goal_counts=[2.0, 0.0, 1.0], trials=7)
    before = profile.to_dict()
    session = _session(env, HumanModel(noise=0.3), profile=profile, store=ProfileStore(tmp_path),
                       adapt=False)
    records = session.run(2, seed=0)
    assert len(records) == 2 and all(r.alpha_max == 0.4 and r.beta == 5.0 for r in records)
    assert profile.to_dict() == before
    assert list(tmp_path.iterdir()) == []


def test_a_session_is_reproducible_from_its_seeds(env) -> None:
    def run() -> list[dict]:
        session = _session(env, HumanModel(noise=0.5, idle=0.1), seed=9)
        return [r.as_dict() for r in session.run(2, seed=21)]

    assert run() == run()


# -- a faulty input device -----------------------------------------------------------------------
class FaultySource:
    """After ``good_ticks`` ticks of steady input toward goal 1: NaN for 10 ticks, then absurd
    vectors (1e6) for 10, then a read that raises for 10, then silence."""

    name = "faulty"

    def __init__(self, good_ticks: int = 0) -> None:
        self.good_ticks = good_ticks
        self.ticks = 0

    def reset(self, trial: int) -> None:
        self.ticks = 0

    def read(self, view):
        k, self.ticks = self.ticks - self.good_ticks, self.ticks + 1
        if k < 0:
            d = view.goals[1] - view.tool
            return 0.8 * d / np.linalg.norm(d)
        if k < 10:
            return np.array([math.nan, 0.5, 0.0])
        if k < 20:
            return np.array([1e6, 1e6, -1e6]) * (1 if k % 2 else -1)
        if k < 30:
            raise OSError("device read failed")
        return None

    def close(self) -> None:
        pass


class ActionLog(gym.Wrapper):
    """Records every action the env is sent."""

    def __init__(self, env) -> None:
        super().__init__(env)
        self.actions: list[np.ndarray] = []

    def step(self, action):
        self.actions.append(np.array(action, dtype=np.float64))
        return self.env.step(action)


def test_a_faulty_device_never_moves_the_arm(env) -> None:
    logged = ActionLog(env)
    session = CoadaptSession(logged, FaultySource(), UserProfile("carol"), config=SessionConfig(adapt=False))
    ticks = []
    session.on_tick = lambda: ticks.append(1)
    record: TrialRecord = session.trial(0, seed=3, goal=1)
    end = session.task.state.ee_pos.copy()
    start = env.reset(seed=3, options={"goal": 1})[0][:3]  # the same episode's start
    assert len(logged.actions) == len(ticks) == 200  # the whole trial ran (and timed out)
    assert all(np.isfinite(a).all() for a in logged.actions)
    assert max(float(np.abs(a[:3]).max()) for a in logged.actions) == 0.0  # every command: hold
    assert record.max_command_step < 0.001  # the tool never jumped (a hold moves it by microns)
    assert np.linalg.norm(end - start) < 0.005  # ... nor drifted off over the 10 s
    assert record.rejected_inputs == 30  # NaN, absurd and raising reads; silence is not a fault
    assert record.stalled_ticks >= 180  # silent from the first tick: stalled after 0.5 s
    assert record.reached == -1 and not record.success and record.input_share == 0.0


def test_the_arm_stops_when_a_working_device_starts_failing(env) -> None:
    task = env.unwrapped
    positions = []

    def on_tick() -> None:
        positions.append(task.state.ee_pos.copy())

    session = CoadaptSession(env, FaultySource(good_ticks=30), UserProfile("carol"),
                             config=SessionConfig(adapt=False), on_tick=on_tick)
    record = session.trial(0, seed=5, goal=1)
    positions = np.array(positions)
    assert np.linalg.norm(positions[29] - positions[0]) > 0.03  # it was moving
    # Faults from tick 30 on: the arm stops within a centimetre and stays there.
    assert np.linalg.norm(positions[-1] - positions[29]) < 0.01
    assert np.linalg.norm(positions[-1] - positions[40]) < 0.001
    assert record.rejected_inputs == 30 and record.stalled_ticks > 100


# -- the robot gives way -------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "seed"), [("blend", 0), ("blend", 1), ("blend", 2), ("hindsight", 3)])
def test_a_person_going_against_the_history_gets_there(env, mode: str, seed: int) -> None:
    history = UserProfile("dave", goal_counts=[50.0, 0.0, 0.0], alpha_max=1.0)
    assert history.goal_prior(3)[0] > 0.95
    session = _session(env, HumanModel(noise=0.1, noise_final=0.1), seed=seed, mode=mode, profile=history,
                       adapt=False)
    record = session.trial(0, seed, goal=2)
    assert record.reached == 2 and record.success
    assert record.accuracy > 0.8  # the belief followed the person, not the history
    assert record.assistance > 0.3  # ... and helped them once it had


# -- the command line ----------------------------------------------------------------------------
def _sim(tmp_path, *extra: str) -> list[str]:
    return ["sim", "reach-shared", "--human", "sim", "--trials", "1", "--profiles", str(tmp_path / "users"),
            "--quiet", *extra]


def test_a_corrupted_profile_is_kept_aside_and_replaced(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    users = tmp_path / "users"
    users.mkdir()
    junk = b"{ this is not json"
    (users / "alice.json").write_bytes(junk)
    assert main(_sim(tmp_path, "--user", "alice")) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "alice.json is corrupted" in out and "kept as alice.json.corrupt" in out
    assert (users / "alice.json.corrupt").read_bytes() == junk
    profile, note = ProfileStore(users).load("alice")
    assert note is None and profile.trials == 1


def test_no_learn_reports_a_corrupted_profile_and_leaves_it_alone(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    users = tmp_path / "users"
    users.mkdir()
    (users / "alice.json").write_bytes(b"\x00\x01 junk")
    assert main(_sim(tmp_path, "--user", "alice", "--no-learn")) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "alice.json is corrupted" in out and "left as it is" in out
    assert sorted(p.name for p in users.iterdir()) == ["alice.json"]
    assert (users / "alice.json").read_bytes() == b"\x00\x01 junk"


CLI_ERRORS = [
    (["--user", "../x"], "argument --user: invalid user name '../x'"),
    (["--user", ".hidden"], "argument --user: invalid user name"),
    (["--human-option", "noise=-1"], "argument --human-option: HumanModel.noise = -1 is outside"),
    (["--human-option", "nosie=1"], "did you mean 'noise'"),
    (["--human-option", "goal_weights=[1,-1,1]"], "goal_weights"),
    (["--policy", "scripted"], "--policy and --human exclude each other"),
    (["--assist", "autopilot"], "--assist"),
    (["--human", "joystick"], "--human"),
]


@pytest.mark.parametrize(("extra", "expected"), CLI_ERRORS, ids=[" ".join(a) for a, _ in CLI_ERRORS])
def test_bad_session_arguments_are_one_line_exit_2(extra, expected: str, tmp_path, capsys,
                                                   monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(_sim(tmp_path, *extra)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "users").exists() and not (tmp_path / "x.json").exists()  # nothing written


def test_human_on_a_task_without_goals_is_one_line_exit_2(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["sim", "reach", "--human", "sim", "--trials", "1", "--profiles", str(tmp_path / "users"),
                 "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "--human needs a task with candidate goals (reach-shared), got 'reach'" in lines[0]


def test_a_malformed_human_option_names_its_own_flag(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(_sim(tmp_path, "--human-option", "noise")) == 2
    err = capsys.readouterr().err
    assert "--human-option" in err and "KEY=VALUE" in err


def test_a_bad_human_option_touches_no_profile(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    users = tmp_path / "users"
    users.mkdir()
    (users / "alice.json").write_bytes(b"{ damaged")
    assert main(_sim(tmp_path, "--user", "alice", "--human-option", "noise=-1")) == 2
    assert sorted(p.name for p in users.iterdir()) == ["alice.json"]  # a usage error changes nothing
    assert "corrupted" not in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_goal_weights_that_do_not_match_the_task_are_one_line_exit_2(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = _sim(tmp_path, "--human-option", "goal_weights=[0,0,1]", "--option",
                "goals=[[0.55,-0.2,0.25],[0.55,0.2,0.25]]")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "goal_weights" in err and len(err.strip().splitlines()) == 1


TRIAL_KEYS = {"trial", "seed", "goal", "reached", "success", "time", "effort", "input_share", "assistance",
              "alpha_max", "accuracy", "accuracy_half", "disagreement", "authority_min", "human_error",
              "beta", "prediction", "violations", "interventions", "rejected_inputs", "stalled_ticks",
              "max_command_step"}


def test_json_has_a_record_per_trial_and_plot_writes_a_png(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    report, plot = tmp_path / "alice.json", tmp_path / "alice.png"
    argv = _sim(tmp_path, "--user", "alice", "--seed", "4", "--json", str(report), "--plot", str(plot))
    argv[argv.index("--trials") + 1] = "2"
    assert main(argv) == 0
    data = json.loads(report.read_text())
    assert data["task"] == "reach-shared" and data["human"] == "sim" and data["user"] == "alice"
    trials = data["trials"]
    assert len(trials) == 2
    for i, t in enumerate(trials):
        assert TRIAL_KEYS <= set(t)
        assert t["trial"] == i and t["seed"] == 4 + i
        assert t["success"] == (t["reached"] == t["goal"]) and 0 <= t["goal"] < 3
        assert 0.0 < t["time"] <= 10.0 + 1e-6 and 0.0 <= t["assistance"] <= t["alpha_max"] + 1e-9
    assert data["summary"]["trials"] == 2
    assert data["summary"]["success_rate"] == pytest.approx(np.mean([t["success"] for t in trials]))
    stored, _ = ProfileStore(tmp_path / "users").load("alice")
    assert data["profile"] == stored.to_dict() and stored.trials == 2
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_no_learn_saves_nothing(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(_sim(tmp_path, "--user", "erin", "--no-learn")) == 0
    assert not (tmp_path / "users").exists()
