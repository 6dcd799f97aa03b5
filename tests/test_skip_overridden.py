"""``overridden_steps: skip``: an off-policy learner leaves the steps whose setpoints the shield
changed out of its replay buffer. Real MuJoCo maze with pushes, the shipped maze critic, real
SAC runs through the CLI (random behaviour: no gradient steps, so both runs act alike)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import robot_brain.cli as cli
from robot_brain.envs import make
from robot_brain.training.config import ConfigError, resolve_hyperparams

MAZE_CRITIC = "robot_brain/critics/maze"
STEPS = 1500
RANDOM = ["--set", "learning_starts=100000", "--set", "env_kwargs.disturbances=default",
          "--set", "eval_freq=0", "--set", f"save_freq={STEPS}", "--eval-episodes", 0, "--quiet"]


def run_cli(*argv: object) -> int:
    return cli.main([str(a) for a in argv])


def test_info_counts_the_ticks_the_shield_overrode():
    env = make("maze", shield=MAZE_CRITIC, disturbances="default")
    env.reset(seed=3)
    env.action_space.seed(3)
    ticks = env.unwrapped.loop.config.ticks_per_step
    counts, onsets = [], []
    for _ in range(400):
        _, _, term, trunc, info = env.step(env.action_space.sample())
        counts.append(info["overridden_ticks"])
        onsets.append(info["interventions"])
        if term or trunc:
            env.reset()
    env.close()
    counts_a, onsets_a = np.array(counts), np.array(onsets)
    assert ((counts_a >= 0) & (counts_a <= ticks)).all()
    assert (counts_a > 0).sum() > 10  # the pushes draw the critic
    assert (counts_a[onsets_a > 0] > 0).all()  # a step with a reflex onset ran overridden ticks
    assert (counts_a == 0).sum() > 100  # and most steps ran as commanded


def _buffer(run) -> dict[str, np.ndarray]:
    (path,) = sorted((run / "checkpoints").glob("*_replay.npz"))
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in ("observations", "actions")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for mode in ("keep", "skip"):
        run = tmp_path_factory.mktemp("runs") / mode
        assert run_cli("train", "maze", "--algo", "sac", "--steps", STEPS, "--seed", 2, "--shield",
                       MAZE_CRITIC, "--set", f"overridden_steps={mode}", "--out", run, *RANDOM) == 0
        out[mode] = run
    return out


def test_skip_leaves_exactly_the_overridden_steps_out(runs):
    m = {k: json.loads((run / "metrics.json").read_text()) for k, run in runs.items()}
    overridden = m["skip"]["overridden_steps"]
    assert overridden == m["keep"]["overridden_steps"] > 20  # the same random behaviour, pushed
    keep, skip = _buffer(runs["keep"]), _buffer(runs["skip"])
    assert len(keep["actions"]) == STEPS
    assert len(skip["actions"]) == STEPS - overridden
    # what skip stored is keep's record with the overridden steps taken out, in order
    j = 0
    for i in range(STEPS):
        if j < len(skip["actions"]) and np.array_equal(keep["actions"][i], skip["actions"][j]):
            assert np.array_equal(keep["observations"][i], skip["observations"][j])
            j += 1
    assert j == len(skip["actions"])


@pytest.mark.parametrize("algo, overrides, words", [
    ("ppo", ["overridden_steps=skip"], "off-policy"),
    ("sac", ["overridden_steps=skip", "n_envs=2"], "n_envs 1"),
    ("sac", ["overridden_steps=drop"], "overridden_steps"),
])
def test_skip_needs_one_env_of_an_off_policy_learner(algo, overrides, words):
    with pytest.raises(ConfigError, match=words):
        resolve_hyperparams("maze", algo, overrides=overrides)


def test_a_bad_setting_is_one_line_with_exit_2(tmp_path, capsys):
    assert run_cli("train", "maze", "--algo", "ppo", "--set", "overridden_steps=skip",
                   "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "off-policy" in err[0]
    assert not (tmp_path / "r").exists()
