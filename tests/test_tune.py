"""``robot-brain tune``: Optuna's TPE and median pruner over ordinary runs on a real local Ray
instance; the study resumes from SQLite, pruned trials stop early, best.yaml feeds ``train``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import robot_brain.cli as cli
from robot_brain.training.config import resolve_hyperparams
from robot_brain.training.tune import (
    STUDY_FILE,
    Param,
    TuneError,
    TuneSpec,
    baseline_params,
    best_config_yaml,
    space_for,
)

optuna = pytest.importorskip("optuna")
pytest.importorskip("ray")


def test_the_space_leaves_out_fixed_keys_and_the_circuit_s_network_sizes() -> None:
    hp = resolve_hyperparams("reach", "sac")
    keys = {p.key for p in space_for("sac", hp)}
    assert {"learning_rate", "batch_size", "gamma", "tau", "policy_kwargs.net_arch"} <= keys
    fixed = space_for("sac", hp, ["gamma=0.9", "gradient_steps=2"])
    assert "gamma" not in {p.key for p in fixed} and "train_freq" not in {p.key for p in fixed}
    circuit = resolve_hyperparams("swimmer", "ppo", policy="ncap")
    assert not any(p.key.startswith("policy_kwargs") for p in space_for("ppo", circuit))
    with pytest.raises(TuneError, match="es has no search space"):
        space_for("es", circuit)


def test_the_shipped_configuration_is_a_point_of_the_space_and_only_when_it_fits() -> None:
    hp = resolve_hyperparams("reach", "sac")
    space = space_for("sac", hp)
    base = baseline_params(space, hp)
    assert base is not None
    assert base["learning_rate"] == hp["learning_rate"] and base["batch_size"] == str(hp["batch_size"])
    assert base["policy_kwargs.net_arch"] == "[256, 256]"
    assert baseline_params(space, {**hp, "learning_rate": 0.5}) is None  # outside the float range
    assert baseline_params(space, {**hp, "gradient_steps": 4}) is None  # the follower disagrees


def test_every_sampled_value_is_one_train_accepts() -> None:
    for algo in ("sac", "td3", "ppo", "crossq", "tqc"):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
        space = space_for(algo, resolve_hyperparams("reach", algo))
        for _ in range(5):
            trial = study.ask()
            sets = [s for p in space for s in p.overrides(p.suggest(trial))]
            got = resolve_hyperparams("reach", algo, overrides=sets)  # validated like train's --set
            for p in space:
                assert p.encode(_get(got, p.key)) is not None
            study.tell(trial, 0.0)
    assert Param("gamma", ("0.9", "0.99")).encode(0.5) is None


def _get(hp: dict, key: str):
    for part in key.split("."):
        hp = hp[part]
    return hp


def test_best_yaml_is_a_config_train_takes(tmp_path: Path) -> None:
    hp = resolve_hyperparams("reach", "sac")
    space = space_for("sac", hp, ["eval_episodes=3"])
    spec = TuneSpec(task="reach", algo="sac", out=tmp_path, hyperparams=hp, fixed=("eval_episodes=3",))
    best = {"number": 4, "value": -12.5, "baseline": False, "state": "complete",
            "params": {"learning_rate": 0.0004, "batch_size": "64", "gamma": "0.99", "learning_starts": "500",
                       "train_freq": "4", "tau": "0.005", "policy_kwargs.net_arch": "[64, 64]"}}
    base = {**best, "number": 0, "value": -20.0, "baseline": True}
    path = tmp_path / "best.yaml"
    path.write_text(best_config_yaml(spec, space, best, [base, best]))
    assert "-12.5" in path.read_text() and "-20" in path.read_text()  # both values in the header
    got = resolve_hyperparams("reach", "sac", config_file=path)
    assert got["learning_rate"] == 0.0004 and got["batch_size"] == 64 and got["gamma"] == 0.99
    assert got["train_freq"] == 4 and got["gradient_steps"] == 4 and got["eval_episodes"] == 3
    assert got["policy_kwargs"]["net_arch"] == [64, 64]
    assert got["buffer_size"] == hp["buffer_size"]  # what was not searched keeps the default


def test_bad_requests_are_one_line_before_anything_is_written(tmp_path: Path, capsys) -> None:
    out = tmp_path / "t"
    assert cli.main(["tune", "reach", "--algo", "es", "--out", str(out)]) == 2
    assert "no search space" in capsys.readouterr().err
    assert cli.main(["tune", "reach", "--steps", "3", "--evals", "4", "--out", str(out)]) == 2
    assert "--evals" in capsys.readouterr().err
    assert cli.main(["tune", "reach", "--set", "gamma=banana", "--out", str(out)]) == 2
    assert "gamma" in capsys.readouterr().err
    assert not out.exists()


def test_a_study_of_another_kind_in_the_folder_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "t"
    out.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{out / STUDY_FILE}", study_name="reach-sac",
                                direction="maximize")
    study.set_user_attr("identity", {"task": "reach", "algo": "sac", "steps": 999})
    code = cli.main(["tune", "reach", "--steps", "600", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "steps" in err and "another kind" in err


def test_a_damaged_study_file_is_one_line_and_left_as_it_was(tmp_path: Path, capsys) -> None:
    out = tmp_path / "t"
    out.mkdir()
    junk = bytes(range(256)) * 8
    (out / STUDY_FILE).write_bytes(junk)
    assert cli.main(["tune", "reach", "--steps", "600", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot open the study" in err
    assert (out / STUDY_FILE).read_bytes() == junk


def test_trials_below_the_median_are_pruned_early_and_a_stopped_search_resumes(tmp_path: Path,
                                                                               capsys) -> None:
    """A study seeded with five finished trials that scored far above anything a short run can
    reach, and one trial left running by a search that stopped: the resumed trial and one new
    trial run for real, and both are pruned at their first evaluation past the warm-up, long
    before their budget, their runs kept resumable."""
    out = tmp_path / "t"
    steps, evals = 1200, 3
    fixed = ("learning_starts=100", "eval_episodes=1", "batch_size=32", "policy_kwargs.net_arch=[16,16]")
    argv = ["tune", "reach", "--trials", "7", "--steps", str(steps), "--evals", str(evals), "--workers", "2",
            *(a for f in fixed for a in ("--set", f)), "--out", str(out), "--json", str(tmp_path / "t.json")]
    hp = resolve_hyperparams("reach", "sac", overrides=fixed, steps=steps)
    spec = TuneSpec(task="reach", algo="sac", out=out, hyperparams=hp, trials=7, steps=steps, evals=evals,
                    fixed=fixed)
    out.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{(out / STUDY_FILE).resolve()}", study_name="reach-sac",
                                direction="maximize")
    study.set_user_attr("identity", json.loads(json.dumps(spec.identity())))
    space = space_for("sac", hp, spec.fixed)
    dists = {}
    for _ in range(5):
        t = study.ask()
        for p in space:
            p.suggest(t)
        dists = {k: d for k, d in study.trials[-1].distributions.items()}
        for step in (400, 800, 1200):
            t.report(1e6, step)
        study.tell(t, 1e6)
    stale = study.ask({k: v for k, v in dists.items()})  # left RUNNING, as by a killed search
    stale_number = stale.number

    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    result = json.loads((tmp_path / "t.json").read_text())
    real = [r for r in result["trials"] if r["number"] >= 5]
    assert [r["number"] for r in real] == [stale_number, stale_number + 1], text
    assert all(r["state"] == "pruned" for r in real), text
    assert result["counts"] == {"complete": 5, "pruned": 2, "fail": 0, "running": 0}, text
    for r in real:
        run = Path(r["run_dir"])
        m = json.loads((run / "metrics.json").read_text())
        # pruned at its first evaluation past the warm-up (the line below) and stopped soon
        # after (a loaded machine may let it reach the next one), not run to its budget
        assert r["last_step"] < steps and m["num_timesteps"] < steps, text
        assert m["status"] == "interrupted" and any((run / "checkpoints").glob("*.json")), text
    assert (out / "best.yaml").exists() and (out / "tune.png").stat().st_size > 0
    assert f"trial {stale_number} pruned at step 400" in text


@pytest.mark.slow
def test_a_search_on_a_cluster_started_separately_finds_the_same_trials(tmp_path: Path) -> None:
    """The same small search on a Ray cluster started with ``ray start --head`` (then stopped)
    and on the embedded instance: the same sampled configurations, the same values."""
    import os
    import shutil
    import subprocess
    import sys

    ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    assert ray is not None
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    port = "6392"
    common = ["tune", "reach", "--trials", "2", "--steps", "300", "--evals", "1", "--workers", "1",
              "--set", "learning_starts=50", "--set", "eval_episodes=1", "--set", "batch_size=32"]
    subprocess.run([ray, "start", "--head", "--port", port, "--num-cpus", "2", "--node-ip-address",
                    "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats"],
                   check=True, env=env, capture_output=True)
    try:
        assert cli.main([*common, "--out", str(tmp_path / "cluster"), "--json", str(tmp_path / "c.json"),
                         "--address", f"127.0.0.1:{port}"]) == 0
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True)
    assert cli.main([*common, "--out", str(tmp_path / "local"), "--json", str(tmp_path / "l.json")]) == 0
    cluster, local = (json.loads((tmp_path / f).read_text())["trials"] for f in ("c.json", "l.json"))
    assert [t["state"] for t in cluster] == ["complete", "complete"]
    assert [t["params"] for t in cluster] == [t["params"] for t in local]
    assert [t["value"] for t in cluster] == [t["value"] for t in local]  # the same runs, bit for bit


def test_a_second_search_on_the_same_folder_is_one_line(tmp_path: Path, capsys) -> None:
    import fcntl
    import os

    out = tmp_path / "t"
    out.mkdir()
    fd = os.open(out / ".tune.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running search holds it
    try:
        assert cli.main(["tune", "reach", "--steps", "600", "--out", str(out)]) == 1
    finally:
        os.close(fd)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "in use by another 'robot-brain tune' process" in err
    assert not (out / STUDY_FILE).exists()
