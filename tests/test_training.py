"""Training from the CLI, end to end on tiny budgets: train -> checkpoint -> resume -> eval -> sim,
plus configuration validation, safe checkpoint loading and one-line errors."""

from __future__ import annotations

import base64
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

import robot_brain.cli as cli

# Tiny nets and budgets: the plumbing is under test here, not learning.
TINY = ["--set", "policy_kwargs.net_arch=[16,16]", "--set", "learning_starts=50", "--set", "batch_size=32",
        "--set", "buffer_size=2000", "--set", "save_freq=100", "--set", "eval_freq=100",
        "--set", "eval_episodes=1"]


def run_cli(*argv: str) -> int:
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory):
    """A 200-step SAC run on reach (checkpoints every 100 steps, replay buffer saved)."""
    out = tmp_path_factory.mktemp("runs") / "reach-sac"
    code = cli.main(["train", "reach", "--algo", "sac", "--steps", "200", "--seed", "3", "--out", str(out),
                     "--eval-episodes", "1", "--quiet", *TINY])
    assert code == 0
    return out


def test_train_writes_a_complete_run(sac_run, capsys):
    cfg = yaml.safe_load((sac_run / "config.yaml").read_text())
    assert cfg["task"] == "reach" and cfg["algo"] == "sac" and cfg["seed"] == 3
    hp = cfg["hyperparams"]
    assert hp["n_timesteps"] == 200 and hp["policy_kwargs"] == {"net_arch": [16, 16]}
    assert hp["gamma"] == 0.95  # from the shipped reach.yaml
    assert cfg["versions"]["robot_brain"]
    metrics = json.loads((sac_run / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["num_timesteps"] == 200
    assert metrics["episodes"] and all(e["step"] <= 200 for e in metrics["episodes"])
    assert [e["step"] for e in metrics["evaluations"]] == [100, 200]
    elapsed = [e["elapsed"] for e in metrics["evaluations"]]  # training seconds when each was reached
    assert 0 < elapsed[0] < elapsed[1] <= metrics["elapsed"]
    assert metrics["final_evaluation"]["aggregate"]["episodes"] == 1
    ckpts = sorted(p.name for p in (sac_run / "checkpoints").iterdir())
    assert ckpts == ["ckpt_100.json", "ckpt_100.zip", "ckpt_200.json", "ckpt_200.zip", "ckpt_200_replay.npz"]
    with np.load(sac_run / "checkpoints" / "ckpt_200_replay.npz", allow_pickle=False) as rb:
        assert rb["observations"].shape == (200, 1, 9) and rb["actions"].shape == (200, 1, 6)
    assert (sac_run / "best" / "best_model.zip").is_file()
    assert any((sac_run / "tb").rglob("events.out.tfevents.*"))


def test_trained_policy_matches_the_sb3_model(sac_run):
    """The weights-only loader yields the same actions as SB3's own (trusting) loader."""
    from stable_baselines3 import SAC

    from robot_brain.envs import make
    from robot_brain.training.policy import load_trained_policy

    env = make("reach")
    policy = load_trained_policy(sac_run, env, which="last")
    reference = SAC.load(sac_run / "checkpoints" / "ckpt_200.zip", device="cpu")
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        expected, _ = reference.predict(obs, deterministic=True)
        np.testing.assert_allclose(policy.act(obs), expected, atol=1e-6)
        obs, *_ = env.step(policy.act(obs))


def test_resume_continues_from_the_last_checkpoint(sac_run, tmp_path):
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(sac_run, run)
    assert run_cli("train", "--resume", run, "--steps", "300", "--eval-episodes", "0", "--quiet") == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_timesteps"] == 300
    meta = json.loads((run / "checkpoints" / "ckpt_300.json").read_text())
    assert meta["num_timesteps"] == 300 and meta["n_updates"] > 200 - 50  # optimizer counters carried on
    with np.load(run / "checkpoints" / "ckpt_300_replay.npz", allow_pickle=False) as rb:
        assert len(rb["actions"]) == 300  # the 200 restored transitions plus 100 new ones
    assert not (run / "checkpoints" / "ckpt_200_replay.npz").exists()  # only the newest keeps one


def test_resumed_training_time_goes_on_from_the_checkpoint(sac_run):
    """The record continued from the step-100 checkpoint starts its clock where step 100 was
    reached, not at zero (so time-to-score counts every process of a resumed run)."""
    from robot_brain.training.metrics import new_metrics, read_metrics, resume_metrics

    kept = read_metrics(sac_run / "metrics.json")["evaluations"][0]
    assert kept["step"] == 100 and kept["elapsed"] > 0
    fresh = new_metrics("reach", "sac", 3, "limits")
    m, _ = resume_metrics(sac_run / "metrics.json", fresh, 100, None, "ckpt")
    assert m["elapsed"] == kept["elapsed"] and [e["step"] for e in m["evaluations"]] == [100]


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path, monkeypatch):
    from robot_brain.training import trainer
    from robot_brain.training.config import resolve_hyperparams
    from robot_brain.training.run import RunConfig

    hp = resolve_hyperparams("reach", "td3", steps=160, overrides=[
        "policy_kwargs.net_arch=[8,8]", "learning_starts=20", "batch_size=16", "buffer_size=500",
        "save_freq=0", "eval_freq=0"])
    config = RunConfig("reach", "td3", 0, "limits", hp)
    original = trainer.TrainingMonitor._on_step

    def interrupt_at_70(self):
        if self.num_timesteps == 70:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(trainer.TrainingMonitor, "_on_step", interrupt_at_70)
    result = trainer.train(config, tmp_path, progress=False)
    assert result.status == "interrupted" and result.num_timesteps == 70
    assert result.checkpoint.steps == 70 and result.checkpoint.sibling("replay").is_file()
    monkeypatch.setattr(trainer.TrainingMonitor, "_on_step", original)
    result = trainer.train(config, tmp_path, resume=True, progress=False)
    assert result.status == "finished" and result.num_timesteps == 160


def test_ppo_with_two_subprocess_envs(tmp_path):
    out = tmp_path / "ppo"
    code = run_cli("train", "reach", "--algo", "ppo", "--steps", "128", "--n-envs", "2", "--out", out,
                   "--set", "n_steps=64", "--set", "batch_size=32", "--set", "n_epochs=1",
                   "--set", "policy_kwargs.net_arch=[8,8]", "--set", "save_freq=64", "--set", "eval_freq=0",
                   "--eval-episodes", "1", "--quiet")
    assert code == 0
    meta = json.loads((out / "checkpoints" / "ckpt_128.json").read_text())
    assert meta["replay"] is None and meta["algo"] == "ppo"


def test_eval_and_sim_replay(sac_run, tmp_path, capsys):
    from robot_brain.envs import make
    from robot_brain.policies import Policy
    from robot_brain.rollout import run_episode
    from robot_brain.training import load_trained_policy

    out = tmp_path / "eval.json"
    assert run_cli("eval", sac_run, "--episodes", "2", "--json", out, "--quiet") == 0
    data = json.loads(out.read_text())
    assert data["aggregate"]["episodes"] == 2 and data["checkpoint_steps"] in (100, 200)
    assert "aggregate over 2 episodes" in capsys.readouterr().out
    env = make("reach")
    policy = load_trained_policy(sac_run, env)  # what `sim reach --policy RUN_DIR` uses
    assert isinstance(policy, Policy)
    result = run_episode(env, policy, seed=5)
    assert result.metrics["steps"] > 0


def test_plot_writes_an_image(sac_run, tmp_path):
    import shutil

    # Curve points come every 1000 steps: give a copy of the run synthetic points to draw.
    runs = []
    for seed in range(2):
        run = tmp_path / f"seed{seed}"
        shutil.copytree(sac_run, run)
        m = json.loads((run / "metrics.json").read_text())
        m["curve"] = [{"step": s, "return_mean": -10 + s / 100 + seed, "success_rate": s / 400,
                       "cost_mean": 0.1, "cumulative_violations": s // 100} for s in (100, 200, 300, 400)]
        (run / "metrics.json").write_text(json.dumps(m))
        runs.append(run)
    png = tmp_path / "curves.png"
    assert run_cli("plot", *runs, "--out", png) == 0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


# -- safety of checkpoint loading ---------------------------------------------------------------
class _Trap:
    """Unpickling this creates a file: proof that pickled code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _rewrite_zip(src: Path, dst: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, replace.get(name, zin.read(name)))


def _plant_zip(zip_path: Path, replace: dict[str, bytes]) -> None:
    """Replace entries of a checkpoint's zip *and* update the size and digest in its JSON, as an
    attacker who can write the run would: the digests detect damage, not tampering, so the
    loader's own defences are what is tested."""
    import hashlib

    tmp = zip_path.with_name("planted.zip")
    _rewrite_zip(zip_path, tmp, replace)
    tmp.replace(zip_path)
    meta_path = zip_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["files"][zip_path.name] = {"bytes": zip_path.stat().st_size,
                                    "sha256": hashlib.sha256(zip_path.read_bytes()).hexdigest()}
    meta_path.write_text(json.dumps(meta))


def test_loading_never_unpickles_the_data_entry(sac_run, tmp_path):
    import shutil

    from robot_brain.envs import make
    from robot_brain.training.policy import load_trained_policy

    run = tmp_path / "trapped"
    shutil.copytree(sac_run, run)
    marker = tmp_path / "pwned"
    zip_path = run / "checkpoints" / "ckpt_200.zip"
    with zipfile.ZipFile(zip_path) as z:
        data = json.loads(z.read("data"))
    payload = base64.b64encode(pickle.dumps(_Trap(marker))).decode()
    data["lr_schedule"] = {":type:": "<class 'function'>", ":serialized:": payload}
    _plant_zip(zip_path, {"data": json.dumps(data).encode()})
    policy = load_trained_policy(run, make("reach"), which="last")
    assert policy.steps == 200
    assert not marker.exists()
    from stable_baselines3 import SAC  # SB3's own loader does run it: the trap is real

    SAC.load(zip_path, device="cpu")
    assert marker.exists()


def test_a_pickled_object_in_the_weights_is_refused(sac_run, tmp_path):
    import shutil

    import torch

    from robot_brain.envs import make
    from robot_brain.training.checkpoint import CheckpointError
    from robot_brain.training.policy import load_trained_policy

    run = tmp_path / "bad-weights"
    shutil.copytree(sac_run, run)
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"x": _Trap(marker)}, buf)
    zip_path = run / "checkpoints" / "ckpt_200.zip"
    _plant_zip(zip_path, {"policy.pth": buf.getvalue()})
    with pytest.raises(CheckpointError, match=r"policy\.pth is not plain weights"):
        load_trained_policy(run, make("reach"), which="last")
    assert not marker.exists()


# -- incompatible checkpoints and versions ------------------------------------------------------
def _edit_meta(run: Path, **changes) -> None:
    path = run / "checkpoints" / "ckpt_200.json"
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "robot_brain":
            meta["versions"]["robot_brain"] = value
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


def test_other_task_obs_shape_and_format_are_refused(sac_run, tmp_path, capsys):
    import shutil

    from robot_brain.envs import make
    from robot_brain.training.checkpoint import CheckpointError
    from robot_brain.training.policy import load_trained_policy

    with pytest.raises(CheckpointError, match="trained on task 'reach', not 'maze'"):
        load_trained_policy(sac_run, make("maze"))
    run = tmp_path / "edited"
    shutil.copytree(sac_run, run)
    shutil.rmtree(run / "best")
    _edit_meta(run, obs_shape=[5])
    with pytest.raises(CheckpointError,
                       match=r"expects observations of shape \(5,\), the environment gives \(9,\)"):
        load_trained_policy(run, make("reach"))
    _edit_meta(run, obs_shape=[9], format=99, robot_brain="9.0.0")
    assert run_cli("eval", run, "--episodes", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has format 99 (robot-brain 9.0.0)" in err[0] and "upgrade robot-brain" in err[0]


def test_other_package_version_same_format_loads_with_a_note(sac_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "old-version"
    shutil.copytree(sac_run, run)
    shutil.rmtree(run / "best")
    _edit_meta(run, robot_brain="0.0.1")
    assert run_cli("eval", run, "--episodes", "1", "--quiet") == 0
    assert "note: checkpoint from robot-brain 0.0.1" in capsys.readouterr().out


# -- bad input: one line, exit 2 -----------------------------------------------------------------
@pytest.mark.parametrize(("argv", "message"), [
    (["train", "reach", "--algo", "dqn"], "unknown algorithm 'dqn'"),
    (["train", "reahc"], "did you mean 'reach'"),
    (["train", "--resume", "/nonexistent/run"], "run directory '/nonexistent/run' not found"),
    (["eval", "/nonexistent/run"], "run directory '/nonexistent/run' not found"),
    (["train", "reach", "--set", "learnin_rate=0.1"],
     "unknown key 'learnin_rate' for sac (did you mean 'learning_rate'?)"),
    (["train", "reach", "--set", "batch_size=big"], "batch_size expects an integer, got 'big'"),
    (["train", "reach", "--set", "env_kwargs.goal_tolerence=0.1"],
     "env_kwargs for reach: unknown key 'goal_tolerence'"),
    (["train", "reach", "--shield", "no-such-critic"], "--shield: 'no-such-critic' is neither"),
    (["train", "reach", "--set", "env_kwargs.max_step=5"],
     "env_kwargs for reach: ReachConfig.max_step = 5 is outside (0, 0.05] m"),
    (["train", "reach", "--set", "env_kwargs.shield=none"], "env_kwargs for reach: unknown key 'shield'"),
    (["plot", "/nonexistent/run"], "run directory '/nonexistent/run' not found"),
])
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_resume_refuses_another_task_and_config_changes(sac_run, capsys):
    assert run_cli("train", "maze", "--resume", sac_run) == 2
    assert "trained on task 'reach', not 'maze'" in capsys.readouterr().err
    assert run_cli("train", "--resume", sac_run, "--set", "gamma=0.9") == 2
    assert "cannot change it" in capsys.readouterr().err


def test_config_file_with_unknown_key_is_rejected(tmp_path, capsys):
    path = tmp_path / "hp.yaml"
    path.write_text("sac:\n  batch_size: 64\n  gama: 0.9\n")
    assert run_cli("train", "reach", "--config", path) == 2
    err = capsys.readouterr().err
    assert f"{path}: unknown key 'gama' for sac (did you mean 'gamma'?)" in err


def test_a_runs_config_yaml_reproduces_its_hyperparameters(sac_run):
    from robot_brain.training.config import ConfigError, resolve_hyperparams

    hp = resolve_hyperparams("reach", "sac", config_file=sac_run / "config.yaml")
    assert hp == yaml.safe_load((sac_run / "config.yaml").read_text())["hyperparams"]
    with pytest.raises(ConfigError, match="configuration of a sac run, not td3"):
        resolve_hyperparams("reach", "td3", config_file=sac_run / "config.yaml")


def test_config_precedence_file_then_set_then_flags(tmp_path):
    from robot_brain.training.config import resolve_hyperparams

    path = tmp_path / "hp.yaml"
    path.write_text("batch_size: 64\nlearning_rate: lin_0.001\npolicy_kwargs: {activation_fn: tanh}\n")
    hp = resolve_hyperparams("reach", "sac", config_file=path, overrides=["batch_size=128", "gamma=0.9"],
                             steps=1234, n_envs=2)
    assert hp["batch_size"] == 128 and hp["gamma"] == 0.9 and hp["n_timesteps"] == 1234 and hp["n_envs"] == 2
    assert hp["learning_rate"] == "lin_0.001"
    assert hp["policy_kwargs"] == {"net_arch": [256, 256], "activation_fn": "tanh"}  # merged


@pytest.mark.parametrize("algo", ["tqc", "crossq"])
def test_contrib_learners_train_resume_and_load_weights_only(algo, tmp_path):
    """TQC and CrossQ (sb3-contrib) go through the same run directory, checkpoint and safe loader
    as SB3's own: the weights-only policy acts as sb3-contrib's own (trusting) loader's does, and a
    resumed run carries its replay buffer on."""
    import sb3_contrib

    from robot_brain.envs import make
    from robot_brain.training.policy import load_trained_policy

    run = tmp_path / algo
    arch = "policy_kwargs.net_arch={pi: [16, 16], qf: [32, 32]}" if algo == "crossq" else \
        "policy_kwargs.net_arch=[16,16]"
    tiny = [*TINY[2:], "--set", arch]
    assert run_cli("train", "reach", "--algo", algo, "--steps", "200", "--seed", "1", "--out", run,
                   "--eval-episodes", "1", "--quiet", *tiny) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["algo"] == algo
    env = make("reach")
    policy = load_trained_policy(run, env, which="last")
    reference = getattr(sb3_contrib, "TQC" if algo == "tqc" else "CrossQ").load(
        run / "checkpoints" / "ckpt_200.zip", device="cpu")
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        expected, _ = reference.predict(obs, deterministic=True)
        np.testing.assert_allclose(policy.act(obs), expected, atol=1e-6)
        obs, *_ = env.step(policy.act(obs))
    env.close()
    assert run_cli("train", "--resume", run, "--steps", "300", "--eval-episodes", "0", "--quiet") == 0
    with np.load(run / "checkpoints" / "ckpt_300_replay.npz", allow_pickle=False) as rb:
        assert len(rb["actions"]) == 300


@pytest.mark.parametrize("task", ["reach", "maze", "peg-insertion", "wipe"])
@pytest.mark.parametrize("algo", ["sac", "ppo", "td3", "tqc", "crossq"])
def test_shipped_hyperparameters_build_a_model(task, algo):
    from robot_brain.training.algos import build_model
    from robot_brain.training.config import default_hyperparams
    from robot_brain.training.policy import _SpacesEnv
    from robot_brain.training.run import make_env

    hp = default_hyperparams(task, algo)
    assert hp["n_timesteps"] >= 10_000
    env = make_env(task, {}, "limits", monitor=False)
    model = build_model(algo, hp, _SpacesEnv(env.observation_space, env.action_space), inference=True)
    assert model.policy is not None
    env.close()


def test_a_task_trains_with_its_default_learner(tmp_path):
    """Without --algo a task trains with its file's default_algo (TQC on peg-insertion, the
    fastest to 90 % success there), and SAC where the file names none."""
    from robot_brain.training.config import task_default_algo

    assert task_default_algo("peg-insertion") == "tqc"
    assert task_default_algo("reach") == "sac" and task_default_algo("point-maze") == "sac"
    out = tmp_path / "peg"
    assert run_cli("train", "peg-insertion", "--steps", "60", "--eval-episodes", "0", "--quiet",
                   "--out", out, *TINY) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["algo"] == "tqc"


@pytest.mark.parametrize(("algo", "policy", "actor"), [
    ("ppo", "mlp", 6090), ("ppo", "ncap", 4), ("es", None, 4), ("sac", None, None), ("td3", None, None)])
def test_shipped_swimmer_hyperparameters_build_a_model(algo, policy, actor):
    """swimmer.yaml: the MLP sections normalise observations (the step index reaches 1000), the
    circuit sections do not (the circuit reads raw angles); the circuit's actor has 4 weights."""
    from robot_brain.training.algos import build_model
    from robot_brain.training.circuit_policy import parameter_counts
    from robot_brain.training.config import resolve_hyperparams
    from robot_brain.training.policy import _SpacesEnv
    from robot_brain.training.run import make_env

    hp = resolve_hyperparams("swimmer", algo, policy=policy)
    assert hp["n_timesteps"] >= 100_000
    assert hp["normalize"] is (hp["policy"] == "MlpPolicy")
    env = make_env("swimmer", {}, "limits", monitor=False)
    model = build_model(algo, hp, _SpacesEnv(env.observation_space, env.action_space), inference=True,
                        task="swimmer")
    if actor is not None:
        assert parameter_counts(model.policy)["actor"] == actor
    env.close()
