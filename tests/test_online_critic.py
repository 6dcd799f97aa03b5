"""``train --shield CRITIC --learn-critic``: the critic keeps learning from the run's own
transitions (real MuJoCo maze with pushes, real SAC loop, real critic training), is saved with the
run in the safe format, resumes, and a critic that knew little ranks violations far better after
a few thousand steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import robot_brain.cli as cli
from robot_brain.critic_training.dataset import TransitionData, collect
from robot_brain.critic_training.learning import CriticTrainer, roc_auc
from robot_brain.safety import load_critic

MAZE_CRITIC = "robot_brain/critics/maze"


def run_cli(*argv: object) -> int:
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def weak_critic(tmp_path_factory):
    """A critic trained on 3 episodes: it has seen violations, but ranks new ones near chance."""
    out = tmp_path_factory.mktemp("critics") / "weak"
    assert run_cli("train-critic", "maze", "--out", out, "--episodes", 3, "--steps", 300,
                   "--recovery-steps", 0, "--seed", 5, "--quiet") == 0
    return out


@pytest.fixture(scope="module")
def held_out() -> TransitionData:
    data = collect("maze", 6, seed=77, progress=False)
    assert data.cost.sum() > 50  # pushes and random behaviour: plenty of violations to rank
    return data


ONLINE = ["--set", "critic_update_freq=500", "--set", "learning_starts=100000",  # random behaviour, fast
          "--set", "env_kwargs.disturbances=default", "--set", "eval_freq=100000", "--set", "save_freq=1000",
          "--eval-episodes", 0, "--quiet"]


@pytest.fixture(scope="module")
def online_run(tmp_path_factory, weak_critic):
    out = tmp_path_factory.mktemp("runs") / "online"
    assert run_cli("train", "maze", "--algo", "sac", "--steps", 3000, "--seed", 1, "--shield", weak_critic,
                   "--learn-critic", "--out", out, *ONLINE) == 0
    return out


def test_the_run_learns_the_critic_and_saves_it_safely(online_run, weak_critic):
    cfg = yaml.safe_load((online_run / "config.yaml").read_text())
    assert cfg["hyperparams"]["learn_critic"] is True and cfg["shield"] == str(weak_critic)
    metrics = json.loads((online_run / "metrics.json").read_text())
    updates = metrics["critic_updates"]
    assert [u["step"] for u in updates] == [500, 1000, 1500, 2000, 2500, 3000]
    assert sum(u["violating"] for u in updates) > 0  # the pushes reached the run's own data
    start = load_critic(weak_critic).meta["train_steps"]
    learned = load_critic(online_run / "critic")  # json + npz, no unpickling
    assert learned.meta["train_steps"] == start + 6 * 250
    assert (online_run / "critic" / "critic.pt").is_file()


def test_online_updates_rank_unseen_violations_far_better(online_run, weak_critic, held_out):
    """Measured: held-out ROC AUC 0.58 before, 0.97 after 3000 steps (6 updates)."""
    before = roc_auc(load_critic(weak_critic).risk_batch(held_out.features), held_out.cost)
    after = roc_auc(load_critic(online_run / "critic").risk_batch(held_out.features), held_out.cost)
    assert before < 0.75 and after > 0.85 and after > before + 0.15, (before, after)


def test_resume_continues_the_learned_critic(online_run, tmp_path):
    run = tmp_path / "resumed"
    import shutil

    shutil.copytree(online_run, run)
    steps = load_critic(run / "critic").meta["train_steps"]
    assert run_cli("train", "--resume", run, "--steps", 3500, "--quiet", "--eval-episodes", 0) == 0
    assert load_critic(run / "critic").meta["train_steps"] == steps + 250  # one more update, from there


def test_the_evaluations_run_with_the_learned_critic(online_run):
    from robot_brain.training.run import read_run_config, run_shield

    assert run_shield(online_run, read_run_config(online_run)) == str(online_run / "critic")


def test_an_imported_critic_predicts_exactly_as_the_file():
    """A critic folder without its torch state (the shipped ones) continues from its weights."""
    model = load_critic(MAZE_CRITIC)
    trainer = CriticTrainer.from_model(model)
    again = trainer.export()
    for name, arr in model.arrays.items():
        np.testing.assert_array_equal(again.arrays[name], arr)
    x = model.arrays["mean"] + np.random.default_rng(0).normal(size=(64, model.arrays["mean"].size)) * \
        model.arrays["std"]
    np.testing.assert_allclose(trainer.predict(x), model.risk_batch(x), rtol=1e-9, atol=1e-12)


def test_the_recorder_closes_episodes_and_hands_each_transition_once(weak_critic):
    from robot_brain.training.run import make_env

    env = make_env("maze", {}, str(weak_critic), monitor=False,
                   record_critic=True)
    try:
        for seed in (0, 1):
            env.reset(seed=seed)
            for _ in range(30):
                env.step(env.action_space.sample())
        env.reset(seed=2)  # the second episode is cut by this reset and still counts
        data = env.get_wrapper_attr("critic_transitions")()
        assert data.n_episodes == 2 and len(data) > 100
        assert not data.done.any()  # neither ended in success
        assert len(env.get_wrapper_attr("critic_transitions")()) == 0  # handed over once
    finally:
        env.close()


def test_damaged_offline_data_is_one_line_and_leaves_no_run(weak_critic, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(weak_critic, bad)
    (bad / "transitions.npz").write_bytes((weak_critic / "transitions.npz").read_bytes()[:1000])
    assert run_cli("train", "maze", "--learn-critic", "--shield", bad, "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a valid transition file" in err[0], err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "maze", "--learn-critic"], "give one with --shield CRITIC_DIR"),
    (["train", "maze", "--learn-critic", "--shield", MAZE_CRITIC], "transitions.npz not found"),
    (["train", "maze", "--set", "learn_critic=true", "--shield", "none"], "not --shield none"),
    (["train", "maze", "--learn-critic", "--shield", "robot_brain"], "critic metadata not found"),
    (["train", "--resume", "runs/x", "--learn-critic"], "--learn-critic cannot change it"),
    (["train", "maze", "--set", "critic_update_freq=0", "--shield", MAZE_CRITIC], "critic_update_freq"),
])
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
