"""``robot-brain sweep``: grids of ordinary runs on a real local Ray instance (and a cluster
started on this machine), resumed after a killed trial, skipped when finished."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import robot_brain.cli as cli
from robot_brain.training.sweep import SweepError, parse_grid, plan

pytest.importorskip("ray")

TINY = ["--set", "learning_starts=50", "--set", "batch_size=32", "--set", "policy_kwargs.net_arch=[16,16]",
        "--set", "eval_freq=100", "--set", "save_freq=100", "--set", "eval_episodes=1"]


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_a_grid_is_seeds_times_swept_values_and_fixed_settings_apply_to_all(tmp_path) -> None:
    grid = parse_grid(["policy_kwargs.net_arch=[16,16],[32,32]", "gamma=0.9", "batch_size=32,64"])
    assert grid[0] == ("policy_kwargs.net_arch", ["[16,16]", "[32,32]"])  # commas inside [..] kept
    trials = plan("reach", "sac", [0, 1], grid, tmp_path)
    assert len(trials) == 2 * 2 * 2
    assert len({t.run_dir for t in trials}) == 8  # one directory each
    t = trials[0]
    assert t.values == (("policy_kwargs.net_arch", "[16,16]"), ("batch_size", "32"))  # swept keys only
    argv = t.argv()
    assert argv[:6] == ["train", "reach", "--algo", "sac", "--seed", "0"]
    assert "gamma=0.9" in argv and "batch_size=32" in argv and str(t.run_dir) in argv


@pytest.mark.parametrize(("items", "message"), [
    (["gamma"], "expected KEY=V1,V2"), (["gamma=0.9,"], "expected KEY=V1,V2"),
    (["gamma=0.9,0.9"], "lists a value twice")])
def test_bad_grids_are_refused(items, message) -> None:
    with pytest.raises(SweepError, match=message):
        parse_grid(items)


def test_a_bad_value_anywhere_in_the_grid_is_refused_before_anything_runs(tmp_path, capsys) -> None:
    code = cli.main(["sweep", "reach", "--seeds", "2", "--set", "gamma=0.9,7", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "gamma" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_a_cluster_address_nobody_answers_at_is_one_line_at_once(tmp_path, capsys) -> None:
    t0 = time.monotonic()
    code = cli.main(["sweep", "reach", "--seeds", "1", "--steps", "100", "--address", "127.0.0.1:1",
                     "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "no Ray cluster answers at 127.0.0.1:1" in err and len(err.splitlines()) == 1
    assert time.monotonic() - t0 < 30


def test_a_sweep_runs_every_seed_and_running_it_again_skips_them(tmp_path, capsys) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "reach", "--algo", "sac", "--seeds", "2", "--workers", "2", "--steps", "200",
            *TINY, "--out", str(out), "--json", str(tmp_path / "a.json")]
    assert cli.main(argv) == 0
    assert json.loads((tmp_path / "a.json").read_text())["counts"]["done"] == 2
    for s in (0, 1):
        m = _metrics(out / f"reach-sac-s{s}")
        assert m["status"] == "finished" and m["num_timesteps"] == 200 and m["seed"] == s
    assert cli.main(argv) == 0
    counts = json.loads((tmp_path / "a.json").read_text())["counts"]
    assert counts["skipped"] == 2 and counts["done"] == 0
    assert "2 already finished" in capsys.readouterr().out


def test_a_trial_killed_mid_run_resumes_from_its_checkpoint(tmp_path) -> None:
    """SIGKILL the training process of seed 0 once it has checkpoints: Ray retries the trial, the
    retry resumes from the last checkpoint, and both seeds finish intact."""
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "robot_brain", "sweep", "reach", "--seeds", "2", "--workers", "2",
           "--steps", "1200", *TINY, "--out", str(out)]
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and driver.poll() is None:
            if (out / "reach-sac-s0" / "checkpoints" / "ckpt_300.json").exists():
                for pid in os.listdir("/proc"):
                    try:
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    except OSError:
                        continue
                    if b"train" in cmdline and str(out / "reach-sac-s0").encode() in cmdline:
                        os.kill(int(pid), signal.SIGKILL)
                        killed = int(pid)
                        break
            time.sleep(0.2)
        text, _ = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert killed is not None, "the seed-0 training process was not found"
    assert driver.returncode == 0, text
    assert "exited with -9" in text or "retried" in text  # the failure was seen and retried
    for s in (0, 1):
        m = _metrics(out / f"reach-sac-s{s}")
        assert m["status"] == "finished" and m["num_timesteps"] == 1200
    from robot_brain.envs import make
    from robot_brain.training.policy import load_trained_policy

    env = make("reach")
    load_trained_policy(out / "reach-sac-s0", env, which="last")  # the resumed run loads
    env.close()


@pytest.mark.slow
def test_a_cluster_started_separately_gives_the_same_runs(tmp_path) -> None:
    ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    assert ray is not None
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    port = "6391"
    subprocess.run([ray, "start", "--head", "--port", port, "--num-cpus", "2", "--node-ip-address",
                    "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats"],
                   check=True, env=env, capture_output=True)
    try:
        common = ["sweep", "reach", "--seeds", "2", "--steps", "200", *TINY]
        assert cli.main([*common, "--out", str(tmp_path / "cluster"), "--address", f"127.0.0.1:{port}"]) == 0
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True)
    assert cli.main([*common, "--out", str(tmp_path / "local")]) == 0
    for s in (0, 1):
        a = _metrics(tmp_path / "cluster" / f"reach-sac-s{s}")
        b = _metrics(tmp_path / "local" / f"reach-sac-s{s}")
        assert a["num_timesteps"] == b["num_timesteps"] == 200
        final = [m["final_evaluation"]["aggregate"]["return_mean"] for m in (a, b)]
        assert final[0] == final[1]  # the same runs, bit for bit


def test_a_config_file_is_checked_before_anything_runs_and_given_to_every_trial(tmp_path, capsys) -> None:
    code = cli.main(["sweep", "reach", "--seeds", "1", "--config", str(tmp_path / "nope.yaml"),
                     "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "nope.yaml" in err and len(err.splitlines()) == 1
    cfg = tmp_path / "best.yaml"
    cfg.write_text("sac:\n  gamma: 0.9\n")
    trials = plan("reach", "sac", [0], [], tmp_path, extra=["--config", str(cfg)])
    assert trials[0].argv()[trials[0].argv().index("--config") + 1] == str(cfg)
