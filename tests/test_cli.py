"""End-to-end tests of the ``robot-brain`` command line.

Most commands run in-process through ``main([...])`` (fast, output captured); exit codes of the
real console entry, ``python -m robot_brain`` and everything that renders run in a subprocess,
because MuJoCo chooses its OpenGL backend when it is first imported (the CLI chooses it before
that import; see ``robot_brain.render.gl``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robot_brain.cli import COMMANDS, build_parser, main
from robot_brain.fileio import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m robot_brain ARGS`` in a fresh interpreter, headless (no DISPLAY, MUJOCO_GL
    unset unless ``env`` sets it)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", "PYOPENGL_PLATFORM")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "robot_brain", *args], capture_output=True,
                          text=True, timeout=timeout, env=base, cwd=ROOT)


def test_tasks_lists_reach_and_maze(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "reach" in out and "maze" in out
    assert "robot_brain/Reach-v0" in out


def test_python_dash_m_works():
    proc = run_cli("tasks")
    assert proc.returncode == 0, proc.stderr
    assert "maze" in proc.stdout and "reach" in proc.stdout


def _verbs() -> list[str]:
    """Every verb the parser knows (read from the parser, so a new verb is covered at once)."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return list(sub.choices)


def test_the_parser_has_every_command_module():
    import importlib

    names = [importlib.import_module(f"robot_brain.cli.{m}").NAME for m in COMMANDS]
    assert _verbs() == names


@pytest.mark.parametrize("command", _verbs())
def test_every_command_has_help_with_an_example(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "example" in out and f"robot-brain {command}" in out


def test_sim_help_lists_the_policy_registry(capsys):
    from robot_brain.policies import POLICY_NAMES

    assert main(["sim", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert all(name in out for name in POLICY_NAMES)


def test_tasks_options_lists_every_config_field(capsys):
    import dataclasses

    from robot_brain.envs import TASKS

    for name, spec in TASKS.items():
        assert main(["tasks", "--options", name]) == 0
        out = capsys.readouterr().out
        for f in dataclasses.fields(spec.config_type):
            assert f.name in out, (name, f.name)
    assert main(["tasks", "--options", "maez"]) == 2


def test_sim_reach_scripted_writes_metrics_json(tmp_path, capsys):
    path = tmp_path / "sub" / "reach.json"
    assert main(["sim", "reach", "--policy", "scripted", "--episodes", "2", "--seed", "3",
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "success rate" in out and "control rate" in out
    data = json.loads(path.read_text())
    assert [f.name for f in path.parent.iterdir()] == ["reach.json"]  # no temp file left over
    eps, agg = data["episodes"], data["aggregate"]
    assert [e["seed"] for e in eps] == [3, 4]
    for e in eps:
        for key in ("return", "success", "steps", "violations", "violations_by_kind",
                    "max_contact_force", "interventions", "interventions_by_reason", "ticks"):
            assert key in e
        # The loop runs exactly control_hz/policy_hz fast ticks per slow tick.
        assert e["ticks"] == 50 * e["steps"]
    # The aggregate is consistent with the episodes it summarises.
    assert agg["episodes"] == 2
    assert agg["success_rate"] == pytest.approx(np.mean([e["success"] for e in eps]))
    assert agg["violations_total"] == sum(e["violations"] for e in eps)
    assert agg["max_contact_force"] == max(e["max_contact_force"] for e in eps)
    # Rates are measured in simulated time: they must be the configured ones.
    assert agg["policy_hz"] == pytest.approx(20.0, rel=1e-3)
    assert agg["control_hz"] == pytest.approx(1000.0, rel=1e-3)
    assert agg["realtime_factor"] > 0 and agg["control_hz_wall"] > 0


def test_acceptance_sim_reach_scripted_ten_episodes(tmp_path):
    """Issue 2: `robot-brain sim reach --policy scripted --episodes 10` succeeds in >= 9 of 10."""
    path = tmp_path / "reach10.json"
    assert main(["sim", "reach", "--policy", "scripted", "--episodes", "10", "--quiet",
                 "--json", str(path)]) == 0
    agg = json.loads(path.read_text())["aggregate"]
    assert agg["episodes"] == 10 and agg["success_rate"] >= 0.9


def test_sim_is_reproducible_from_the_seed(tmp_path):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for p in paths:
        assert main(["sim", "reach", "--policy", "random", "--episodes", "1", "--seed", "7",
                     "--quiet", "--json", str(p)]) == 0
    a, b = (json.loads(p.read_text())["episodes"][0] for p in paths)
    assert a["return"] == b["return"] and a["steps"] == b["steps"]


def test_sim_options_reach_the_env(tmp_path):
    """--shield none removes the reflex (so no intervention can occur); --disturb pushes."""
    path = tmp_path / "m.json"
    assert main(["sim", "reach", "--policy", "zero", "--episodes", "1", "--shield", "none",
                 "--disturb", "--stiffness", "300", "--quiet", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    ep = data["episodes"][0]
    assert data["shield"] == "none" and data["stiffness"] == 300.0
    assert ep["interventions"] == 0
    assert ep["pushes"] > 0  # 0.5 pushes/s over a 5 s episode


BAD_INPUTS = [
    (["sim", "reech"], "did you mean 'reach'"),
    (["sim", "maz"], "did you mean 'maze'"),
    (["sim", "reach", "--episodes", "-1"], "--episodes"),
    (["sim", "reach", "--episodes", "0"], "--episodes"),
    (["sim", "reach", "--episodes", "abc"], "--episodes"),
    (["sim", "reach", "--seed", "-3"], "--seed"),
    (["sim", "reach", "--policy", "smart"], "--policy"),
    (["sim", "reach", "--shield", "maybe"], "--shield"),
    (["sim", "reach", "--stiffness", "nan"], "--stiffness"),
    (["sim", "reach", "--stiffness", "-5"], "--stiffness"),
    (["sim", "reach", "--stiffness", "1e6"], "fixed_stiffness = 1000000.0 is outside [0, 5000] N/m"),
    (["sim", "reach", "--renderer", "vulkan"], "--renderer"),
    (["compare", "maze", "--shield", "nowhere"], "--shield"),
    (["compare", "maze", "--episodes", "0"], "--episodes"),
    (["tasks", "--options", "maez"], "did you mean 'maze'"),
    (["sim", "reach", "--json", "out.txt"], "--json"),
    (["sim", "reach", "--video", "out.avi"], "--video"),
    (["sim"], "TASK"),
    (["demo", "--episodes", "0"], "--episodes"),
    (["demo", "--task", "reech"], "did you mean 'reach'"),
    (["bench", "--seconds", "0"], "--seconds"),
    (["bench", "--seconds", "inf"], "--seconds"),
    (["bogus"], "invalid choice"),
    ([], "choose a command"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD_INPUTS,
                         ids=[" ".join(a) or "(none)" for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2(argv, expected, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_bad_input_exit_code_of_the_real_process():
    proc = run_cli("sim", "reech")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "did you mean 'reach'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_atomic_write_json_is_strict_json(tmp_path):
    path = atomic_write_json(tmp_path / "x.json", {"a": np.float64(1.5), "b": float("nan"),
                                                   "c": np.arange(3), "d": {"e": np.int64(2)}})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": None, "c": [0, 1, 2], "d": {"e": 2}}
    assert list(tmp_path.iterdir()) == [path]
    assert path.stat().st_mode & 0o044  # readable by others like any file (mkstemp makes 0600)


def test_sim_video_renders_headless(tmp_path):
    """Offscreen video without a display, whatever OpenGL this machine has: one frame per policy
    step plus the first, the arm visibly moves, and one line names the renderer."""
    import imageio.v2 as imageio

    video, metrics = tmp_path / "reach.mp4", tmp_path / "reach.json"
    proc = run_cli("sim", "reach", "--episodes", "1", "--video", str(video), "--json", str(metrics),
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "rendering with" in proc.stdout
    steps = json.loads(metrics.read_text())["episodes"][0]["steps"]
    frames = [f for f in imageio.get_reader(video)]  # list() would trust its len(): inf
    assert len(frames) == steps + 1
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 1.0


# OpenGL made unusable for real, on any machine: MuJoCo's OSMesa backend refuses to load under a
# PyOpenGL platform other than its own, and without libOSMesa it cannot load at all.
BROKEN_GL = {"MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "egl"}


def test_no_opengl_means_the_software_renderer_and_one_line_saying_so(tmp_path):
    import imageio.v2 as imageio

    video = tmp_path / "v.mp4"
    proc = run_cli("sim", "reach", "--episodes", "1", "--video", str(video), "--quiet", env=BROKEN_GL)
    assert proc.returncode == 0, proc.stderr
    note = [ln for ln in proc.stdout.splitlines() if "rendering with" in ln]
    assert len(note) == 1 and "software renderer" in note[0] and "libosmesa6" in note[0]
    frames = [f for f in imageio.get_reader(video)]
    assert len(frames) > 10 and frames[0].std() > 10  # a picture, not a blank frame
    assert "Traceback" not in proc.stderr


def test_forcing_opengl_without_it_is_one_clear_error(tmp_path):
    """``--renderer opengl`` where no context can be made: the cure in one line, exit 1, no
    partial video."""
    proc = run_cli("sim", "reach", "--episodes", "1", "--video", str(tmp_path / "v.mp4"),
                   "--renderer", "opengl", env=BROKEN_GL)
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "libosmesa6" in err[0] and "--renderer software" in err[0]
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("gl", ["osmesa", "egl", "nonsense"])
def test_verbs_that_do_not_render_ignore_any_mujoco_gl(gl):
    """A MUJOCO_GL that would break MuJoCo's import (no library, a misspelt value) does not
    touch the verbs that draw nothing, and they load no OpenGL."""
    proc = run_cli("tasks", env={"MUJOCO_GL": gl})
    assert proc.returncode == 0 and "maze" in proc.stdout, proc.stderr
    code = ("import sys\nfrom robot_brain.cli import main\nmain(['sim', 'reach', '--episodes', '1', "
            "'--quiet'])\nprint('OpenGL' in sys.modules, 'mujoco.osmesa' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**env, "MUJOCO_GL": gl}, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False False"


def _opengl_here() -> bool:
    """Whether MuJoCo's OpenGL renderer can make a context on this machine (probed as the CLI
    does, in a child process)."""
    code = "from robot_brain.render.gl import prepare_gl; print(prepare_gl(renders=True))"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", "PYOPENGL_PLATFORM")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                         env=env, cwd=ROOT)
    return out.returncode == 0 and out.stdout.strip().splitlines()[-1] not in ("disable", "None")


def test_with_opengl_the_video_is_mujocos_3d_rendering(tmp_path):
    if not _opengl_here():
        pytest.skip("no OpenGL backend can make a context on this machine (covered by the "
                    "software-renderer tests)")
    proc = run_cli("sim", "reach", "--episodes", "1", "--video", str(tmp_path / "v.mp4"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "MuJoCo's OpenGL renderer" in proc.stdout


def test_demo_smoke_without_video(tmp_path, capsys):
    """The demo pipeline on the quick reach task: every configuration runs the same seeds,
    configurations without a reflex never report interventions, files are written. (The maze
    critic is task-agnostic in its inputs, so it runs on reach here to exercise the wiring.)"""
    from robot_brain.cli.demo import CONFIGS, shipped_critic

    out = tmp_path / "demo"
    assert main(["demo", "--task", "reach", "--episodes", "1", "--seed", "5", "--no-video",
                 "--out", str(out), "--critic", str(shipped_critic("maze"))]) == 0
    printed = capsys.readouterr().out
    for cfg in CONFIGS:
        assert cfg.label in printed
    data = json.loads((out / "metrics.json").read_text())
    configs = data["configurations"]
    assert [c["config"]["label"] for c in configs] == [c.label for c in CONFIGS]
    for c in configs:
        assert [e["seed"] for e in c["episodes"]] == [5]
        if c["config"]["shield"] == "none":
            assert c["aggregate"]["interventions_total"] == 0
    assert (out / "contact_force.png").stat().st_size > 10_000
    assert not (out / "demo.mp4").exists()


def test_demo_configurations_cover_the_comparison():
    from robot_brain.cli.demo import CONFIGS, shipped_critic

    kinds = {(c.stiffness > 1000, c.shield) for c in CONFIGS}
    assert {(True, "none"), (False, "none"), (True, "limits"), (True, "critic")} <= kinds
    assert len({c.label for c in CONFIGS}) == len(CONFIGS)
    assert shipped_critic("maze") is not None  # the default demo shows the critic column
    assert shipped_critic("reach") is None


def test_demo_leaves_out_the_critic_column_without_a_critic(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--task", "reach", "--episodes", "1", "--no-video", "--out", str(out)]) == 0
    labels = [c["config"]["label"] for c in json.loads((out / "metrics.json").read_text())
              ["configurations"]]
    assert labels and not any("critic" in label for label in labels)
    assert main(["demo", "--critic", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "--critic" in capsys.readouterr().err


@pytest.mark.parametrize("env", [{}, BROKEN_GL], ids=["machine-opengl", "no-opengl"])
def test_demo_writes_video_plot_and_metrics(tmp_path, env):
    """The README's main job in short form (one episode of the quick task per configuration),
    with whatever OpenGL this machine has and with none: table, video, plot and metrics."""
    import imageio.v2 as imageio

    out = tmp_path / "demo"
    proc = run_cli("demo", "--task", "reach", "--episodes", "1", "--out", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "success rate" in proc.stdout and "rendering with" in proc.stdout
    for name in ("demo.mp4", "contact_force.png", "metrics.json"):
        assert (out / name).stat().st_size > 0
    frame = next(iter(imageio.get_reader(out / "demo.mp4")))
    assert frame.shape[1] == 2 * 320 and frame.std() > 10  # configurations side by side
    data = json.loads((out / "metrics.json").read_text())
    assert data["task"] == "reach" and len(data["configurations"]) == 3


@pytest.mark.slow
def test_demo_maze_writes_video_plot_and_metrics(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--episodes", "1", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in ("demo.mp4", "contact_force.png", "metrics.json"):
        assert (out / name).stat().st_size > 0
    data = json.loads((out / "metrics.json").read_text())
    assert data["task"] == "maze" and len(data["configurations"]) == 4


def test_bench_measures_and_reports(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--task", "reach", "--seconds", "0.3", "--json", str(path)]) == 0
    assert "mj_step" in capsys.readouterr().out
    res = json.loads(path.read_text())
    assert res["mj_step"]["calls"] >= 2000 and res["fast_tick"]["calls"] >= 2000
    assert res["mj_step_at_rest"]["calls"] >= 2000
    # A fast tick contains one physics step, so it cannot be cheaper than mj_step alone.
    assert res["fast_tick"]["median_us"] > res["mj_step"]["median_us"]
    assert res["fast_tick_ratio"] == pytest.approx(res["fast_tick"]["median_us"]
                                                   / res["mj_step"]["median_us"])
    assert res["targets"]["fast_tick_ratio_pass"] == (res["fast_tick_ratio"] <= 4.0)
    assert res["env_steps"]["steps"] >= 100


def test_compare_runs_the_same_episodes_under_each_shield(tmp_path, capsys):
    """`compare` (the safety benchmark under the CLI): every shield meets the same seeded episodes
    (seed 1000 s + i), no reflex never intervenes, the JSON and plot are written atomically."""
    path, plot = tmp_path / "cmp.json", tmp_path / "forces.png"
    assert main(["compare", "reach", "--shield", "none", "--shield", "limits", "--episodes", "2",
                 "--seeds", "0", "3", "--json", str(path), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "violations/ep" in out and "vs none" in out
    data = json.loads(path.read_text())
    assert list(data["results"]) == ["none", "limits"] and data["disturb"] is True
    for shield, by_seed in data["records"].items():
        assert {s: [e["seed"] for e in eps] for s, eps in by_seed.items()} == {
            "0": [0, 1], "3": [3000, 3001]}, shield
    none = data["results"]["none"]
    assert none["episodes"] == 4 and none["interventions_per_episode"] == 0
    assert none["violations_per_episode"] == pytest.approx(np.mean(
        [e["violations"] for eps in data["records"]["none"].values() for e in eps]))
    assert plot.stat().st_size > 5_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp.json", "forces.png"]
