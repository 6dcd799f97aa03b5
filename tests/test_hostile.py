"""Hostile input: what a careful but hostile user types, plants or runs in parallel gets one
clear line and loses nothing (issue 9). Training runs have their own fault suite
(``test_training_faults.py``); the safety envelope its campaign (``test_envelope.py``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_critic import hand_critic

from robot_brain.cli import main
from robot_brain.envs import TASKS, make
from robot_brain.params import Param
from robot_brain.safety import CriticFileError, load_critic, save_critic

ROOT = Path(__file__).resolve().parents[1]


# -- every task option, every hostile value ---------------------------------------------------------
_HOSTILE = [float("nan"), float("inf"), -float("inf"), 1e12, -1e12, "abc", True, [1.0]]


def _fields():
    for name, spec in TASKS.items():
        for f in dataclasses.fields(spec.config_type):
            p = f.metadata.get("param")
            if isinstance(p, Param) and p.kind != "bool":
                yield name, f.name


@pytest.mark.parametrize(("task", "field"), list(_fields()))
def test_every_numeric_option_refuses_hostile_values_in_one_line(task, field):
    config_type = TASKS[task].config_type
    for value in _HOSTILE:
        with pytest.raises(ValueError) as err:
            config_type(**{field: value})
        msg = str(err.value)
        assert field in msg and "\n" not in msg, (field, value, msg)


def test_an_action_of_another_shape_is_refused_not_flattened():
    env = make("maze")
    env.reset(seed=0)
    for bad in (np.zeros((2, 2)), np.zeros(5), np.zeros((1, 4))):
        with pytest.raises(ValueError, match=r"action must have shape \(4,\)"):
            env.step(bad)
    env.close()


def test_a_closed_env_cannot_move_the_arm():
    env = make("maze")
    env.reset(seed=0)
    backend = env.unwrapped.backend
    env.close()
    assert backend.lifecycle.value == "finalized"
    q = backend.data.qpos.copy()
    with pytest.raises(RuntimeError, match="closed"):
        env.step(np.ones(4, dtype=np.float32))
    with pytest.raises(RuntimeError, match="closed"):
        env.reset(seed=1)
    np.testing.assert_array_equal(backend.data.qpos, q)
    env.close()  # twice is harmless


# -- critic files -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("edit", "match"), [
    ({"force_limit": -1.0}, "'force_limit' must be a number in"),
    ({"gamma_risk": 50}, "'gamma_risk' must be a number in"),
    ({"critic_dt": "fast"}, "'critic_dt' must be a number in"),
    ({"contact_memory": {"dt": 0.001, "tau": -1}}, "'contact_memory.tau'"),
    ({"hidden": [64, 10**9]}, "'hidden' must be two layer sizes"),
    ({"recoveries": ["brace"]}, "'recoveries' must be distinct names .* including 'retreat'"),
    ({"recoveries": ["retreat", "teleport"]}, "'recoveries' must be distinct names"),
    ({"recoveries": "retreat"}, "'recoveries' must be distinct names"),
    ({"recoveries": ["retreat", "retreat"]}, "'recoveries' must be distinct names"),
    ({"wall_retreat": 1.0}, "'wall_retreat': .*wall_retreat"),
    ({"wall_retreat": -0.001}, "'wall_retreat': .*wall_retreat"),
    ({"wall_retreat": "3 mm"}, "'wall_retreat'"),
    ({"wall_retreat": float("nan")}, "'wall_retreat'"),
])
def test_hostile_critic_metadata_is_refused(tmp_path, edit, match):
    save_critic(tmp_path / "c", hand_critic("pos_x", threshold=0.0))
    meta_path = tmp_path / "c" / "critic.json"
    meta = json.loads(meta_path.read_text())
    meta.update(edit)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CriticFileError, match=match) as err:
        load_critic(tmp_path / "c")
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def recovery_critic(tmp_path_factory):
    """A small critic with a learned recovery (random weights: only the files matter here)."""
    from test_critic import _random_arrays

    from robot_brain.critic_training import TransitionData
    from robot_brain.critic_training.learning import CriticConfig, CriticTrainer
    from robot_brain.safety.features import features_from_arrays

    rng = np.random.default_rng(0)
    x = features_from_arrays(*_random_arrays(rng, 100))
    data = TransitionData(x, np.zeros(100), x.copy(), np.zeros(100, bool), np.zeros(100, np.int64),
                          np.zeros(100), ["random"], {"force_limit": 15.0})
    tr = CriticTrainer(CriticConfig(hidden=(8, 8), rec_hidden=(8, 8)), seed=0, axes=(0, 1))
    tr.set_normalisation(data)
    tr.add(data)
    tr.train_recovery(2, data=data)
    d = tmp_path_factory.mktemp("critic") / "c"
    tr.save(d)
    return d


@pytest.mark.parametrize(("edit", "match"), [
    ({"k_min": "abc"}, "'recovery.k_min' must be a number"),
    ({"k_min": -5.0}, "'recovery.k_min' must be a number"),
    ({"k_max": 1e9}, "'recovery.k_max' must be a number"),
    ({"r_max": 0.5}, "'recovery.r_max' must be a number"),
    ({"k_min": 3000.0, "k_max": 200.0}, "k_min 3000.0 exceeds k_max"),
    ({"axes": [0, 0]}, "distinct"),
])
def test_hostile_recovery_settings_are_refused(recovery_critic, tmp_path, edit, match):
    import shutil

    d = tmp_path / "c"
    shutil.copytree(recovery_critic, d)
    meta = json.loads((d / "critic.json").read_text())
    meta["recovery"].update(edit)
    (d / "critic.json").write_text(json.dumps(meta))
    with pytest.raises(CriticFileError, match=match):
        load_critic(d)


def test_a_vanishing_input_scale_is_refused(tmp_path):
    save_critic(tmp_path / "c", hand_critic("pos_x", threshold=0.0))
    path = tmp_path / "c" / "critic.npz"
    with np.load(path) as z:
        arrays = dict(z)
    arrays["std"][3] = 1e-320  # would make the critic fire forever
    np.savez(path, **arrays)
    with pytest.raises(CriticFileError, match="'std' must be at least"):
        load_critic(tmp_path / "c")


# -- output paths: checked before the work, results never lost ---------------------------------------
@pytest.mark.parametrize("argv", [
    ["sim", "reach", "--episodes", "1", "--json", "/proc/robot-brain/x.json"],
    ["sim", "reach", "--episodes", "1", "--video", "/proc/robot-brain/x.mp4"],
    ["eval", "/nonexistent", "--json", "/proc/x.json"],
    ["bench", "--json", "/proc/x.json"],
    ["compare", "reach", "--json", "/proc/x.json"],
    ["plot", "/nonexistent", "--out", "/proc/x.png"],
    ["demo", "--out", "/proc/robot-brain-demo"],
])
def test_unwritable_outputs_are_refused_before_any_work(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "/proc" in err[0] and "Traceback" not in captured.err
    assert "episode" not in captured.out  # nothing ran


def test_an_output_that_is_a_folder_or_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["sim", "reach", "--json", str(tmp_path)]) == 2  # a folder named like a file
    assert main(["sim", "reach", "--json", str(tmp_path / "afile" / "x.json")]) == 2
    assert main(["demo", "--out", str(tmp_path / "afile")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_results_survive_a_write_that_fails_after_the_work(tmp_path):
    """The output folder vanished while the command ran: the results land in a temporary file
    and the one-line error says where."""
    from robot_brain.cli._common import CliError, save_results

    gone = tmp_path / "gone"
    gone.write_text("now a file, not a folder")
    with pytest.raises(CliError) as err:
        save_results(gone / "metrics.json", {"violations": 3})
    assert err.value.code == 1
    fallback = Path(str(err.value).rsplit("the results are in ", 1)[1])
    assert json.loads(fallback.read_text()) == {"violations": 3}
    fallback.unlink()


# -- parallel runs --------------------------------------------------------------------------------------
def test_two_runs_writing_the_same_video_do_not_mix(tmp_path):
    video = tmp_path / "same.mp4"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MUJOCO_GL")}
    cmd = [sys.executable, "-m", "robot_brain", "sim", "reach", "--episodes", "1", "--quiet",
           "--renderer", "software", "--video", str(video)]
    procs = [subprocess.Popen([*cmd, "--seed", str(s), "--json", str(tmp_path / f"{s}.json")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
             for s in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()
    import imageio.v2 as imageio

    frames = sum(1 for _ in imageio.get_reader(video))
    steps = {json.loads((tmp_path / f"{s}.json").read_text())["episodes"][0]["steps"] for s in (1, 2)}
    assert frames - 1 in steps  # the frames of one run, not both
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.json", "2.json", "same.mp4"]


def test_the_no_verb_message_names_verbs_as_typed(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "train-critic" in err and "train_critic" not in err
