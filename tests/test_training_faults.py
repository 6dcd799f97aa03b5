"""Fault injection for training runs: a standing suite, so crash safety stays fixed.

- ``kill -9`` of a real ``python -m robot_brain train`` at random instants (seeded delays) and at
  each kind of write boundary (a SIGKILL the process sends itself in the middle of, or right
  after, the N-th atomic write of a given file), then the invariants: no finished file is
  truncated, every complete checkpoint loads, ``metrics.json`` is never behind the newest
  checkpoint and agrees with its counters, ``eval`` works or says in one line why not, and
  ``train --resume`` continues (or restarts a run killed before its first checkpoint) and
  finishes;
- damaged, truncated and planted run files of each type (including a path-traversal file name
  and pickles where weights belong): one line each, nothing outside the run opened, nothing
  unpickled;
- two ``train --out SAME`` at once; hostile hyperparameters (including NaN/inf spellings).

Real SB3 training and real files throughout; nothing is mocked. The write-boundary kills use a
small launcher that wraps ``robot_brain.fileio.atomic_write`` to send SIGKILL at the chosen
write -- the process dies exactly as it would under ``kill -9`` there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import robot_brain.cli as cli

# Tiny networks, a save every 25 steps and an evaluation every 50: many writes per second, so
# random kills land in and around saves. Reach episodes are 100 steps.
TINY = ["--set", "policy_kwargs.net_arch=[8,8]", "--set", "learning_starts=20", "--set", "batch_size=16",
        "--set", "buffer_size=5000", "--set", "save_freq=25", "--set", "eval_freq=50",
        "--set", "eval_episodes=1"]
FOREVER = 1_000_000  # steps of a run that is always killed before it ends
SEED = 20240611  # the kill delays of the default campaign

# Launcher: argv = MODE A B C robot-brain-args...
# MODE "kill" (A = file-name pattern, B = n, C = phase): the n-th atomic write of a file matching
# the pattern is interrupted by SIGKILL -- phase "mid": half its bytes are in the temporary file
# (fsynced), the rename never happens; "after": the write completes (renamed), then SIGKILL.
# MODE "delay" (A = module, B = function, C = seconds): the function sleeps after returning, to
# widen a race window deterministically.
LAUNCHER = r'''
import importlib, os, re, signal, sys, time

mode, a, b, c = sys.argv[1:5]
if mode == "kill":
    import robot_brain.fileio as fileio

    pattern, nth, phase = re.compile(a), int(b), c
    original = fileio.atomic_write
    seen = 0

    def atomic_write(path, write):
        global seen
        if pattern.search(os.path.basename(os.fspath(path))):
            seen += 1
            if seen == nth:
                if phase == "mid":
                    def partial(f):
                        write(f)
                        f.flush()
                        f.truncate(f.tell() // 2)
                        f.flush()
                        os.fsync(f.fileno())
                        os.kill(os.getpid(), signal.SIGKILL)
                    return original(path, partial)
                result = original(path, write)
                os.kill(os.getpid(), signal.SIGKILL)
                return result
        return original(path, write)

    fileio.atomic_write = atomic_write
else:
    module = importlib.import_module(a)
    original = getattr(module, b)

    def delayed(*args, **kwargs):
        result = original(*args, **kwargs)
        time.sleep(float(c))
        return result

    setattr(module, b, delayed)
from robot_brain.cli import main  # after the patch: the training modules import fileio lazily

sys.exit(main(sys.argv[5:]))
'''


def train_argv(out: Path, steps: int, seed: int = 0, *extra: str) -> list[str]:
    return ["train", "reach", "--algo", "sac", "--steps", str(steps), "--seed", str(seed), "--out", str(out),
            "--quiet", "--eval-episodes", "1", *TINY, *extra]


def resume_argv(run: Path, steps: int) -> list[str]:
    return ["train", "--resume", str(run), "--steps", str(steps), "--quiet", "--eval-episodes", "1"]


@dataclass
class Outcome:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.rc == -signal.SIGKILL


def command(argv: list[str], cwd: Path, launcher: tuple[str, ...] | None = None) -> list[str]:
    if launcher is None:
        return [sys.executable, "-m", "robot_brain", *argv]
    script = cwd / "launcher.py"
    script.write_text(LAUNCHER)
    return [sys.executable, str(script), *launcher, *argv]


def spawn(argv: list[str], cwd: Path, *, kill_after: float | None = None,
          killer: tuple[str, int, str] | None = None, timeout: float = 180) -> Outcome:
    """Run robot-brain in a fresh Python process; SIGKILL it after ``kill_after`` seconds, or let
    the launcher kill it at a write (``killer`` = pattern, n, phase)."""
    launcher = None if killer is None else ("kill", killer[0], str(killer[1]), killer[2])
    t0 = time.monotonic()
    proc = subprocess.Popen(command(argv, cwd, launcher), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=timeout)
    return Outcome(proc.returncode, out, err, time.monotonic() - t0)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in err
    return lines[0]


# -- the invariants ---------------------------------------------------------------------------
def stem_of(path: Path) -> str:
    """The checkpoint a data file belongs to (``ckpt_50_replay.npz`` -> ``ckpt_50``)."""
    return path.name.split("_replay")[0].split("_normalize")[0].removesuffix(".zip")


def _policy_loads(run: Path, js: Path) -> None:
    from robot_brain.training.algos import SpacesEnv, build_model
    from robot_brain.training.checkpoint import open_checkpoint, restore_model
    from robot_brain.training.run import make_env, read_run_config

    ckpt = open_checkpoint(js)
    config = read_run_config(run)
    env = make_env(config.task, config.hyperparams["env_kwargs"], config.shield, monitor=False)
    model = build_model(config.algo, config.hyperparams, SpacesEnv(env.observation_space, env.action_space),
                        inference=True)
    env.close()
    restore_model(model, ckpt, policy_only=True)


def audit(run: Path) -> dict[str, Any]:
    """Check the invariants of a run after a kill; return what the kill left there."""
    state: dict[str, Any] = {"config": (run / "config.yaml").is_file(), "complete": [], "temp": [],
                             "orphans": [], "torn_best": False, "metrics_ahead": 0}
    if run.is_dir():
        _check_files(run, state)
        newest = _check_checkpoints(run, state)
        if newest is not None:
            _check_metrics(run, newest, state)
    return state


def _check_files(run: Path, state: dict[str, Any]) -> None:
    """No finished file is truncated: every JSON parses, every archive opens with valid CRCs."""
    for path in sorted(run.rglob("*")):
        rel = path.relative_to(run)
        if path.is_dir() or rel.parts[0] == "tb" or path.name == ".lock":
            continue
        if path.name.endswith(".tmp"):
            state["temp"].append(str(rel))
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in (".zip", ".npz"):
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, rel
            js = path.with_name(stem_of(path) + ".json")
            if not js.exists() or path.name not in json.loads(js.read_text())["files"]:
                state["orphans"].append(str(rel))
        elif path.name == "config.yaml":
            assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict)


def _check_checkpoints(run: Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """Every complete checkpoint loads (a best model torn between its two renames: its backup);
    returns the metadata of the newest periodic one."""
    from robot_brain.training.checkpoint import CheckpointError, open_checkpoint

    newest = None
    for js in sorted(run.rglob("*.json")):
        rel = js.relative_to(run)
        if js.name == "metrics.json" or rel.parts[0] == "tb" or ".replacing-" in str(rel):
            continue
        try:
            _policy_loads(run, js)
        except CheckpointError:
            backup = js.parent / ".replacing-best_model" / "best_model.json"
            assert js.name == "best_model.json" and backup.exists(), f"complete checkpoint {rel} is unusable"
            _policy_loads(run, backup)
            state["torn_best"] = True
            continue
        state["complete"].append(str(rel))
        meta = open_checkpoint(js).meta
        if js.parent.name == "checkpoints":
            # SB3 counts episodes itself: the trainer's counter must agree at every checkpoint
            assert meta["counters"]["episodes"] == meta["episode_num"], rel
            if newest is None or meta["num_timesteps"] > newest["num_timesteps"]:
                newest = meta
    return newest


def _check_metrics(run: Path, newest: dict[str, Any], state: dict[str, Any]) -> None:
    """metrics.json is never behind the newest complete checkpoint, and agrees with it."""
    from robot_brain.training.metrics import read_metrics

    m = read_metrics(run / "metrics.json")
    assert m["num_timesteps"] >= newest["num_timesteps"]
    upto = [e for e in m["episodes"] if e["step"] <= newest["num_timesteps"]]
    assert len(upto) == newest["counters"]["episode_records"]
    state["metrics_ahead"] = m["num_timesteps"] - newest["num_timesteps"]


def eval_or_one_line(run: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run_cli(capsys, "eval", run, "--episodes", "1", "--quiet")
    if code == 0:
        return "eval ok" + (" (with a note)" if "note:" in out else "")
    assert code == 2, err
    return "eval: " + one_line(err)


def finish(run: Path, capsys: pytest.CaptureFixture[str], extra: int = 50) -> tuple[str, dict[str, Any]]:
    """``train --resume`` to ``extra`` steps past the newest checkpoint; must finish; returns
    its stdout and the final metrics."""
    from robot_brain.training.checkpoint import list_checkpoints

    ckpts = list_checkpoints(run / "checkpoints")
    target = (ckpts[-1].steps if ckpts else 0) + extra
    code, out, err = run_cli(capsys, *resume_argv(run, target))
    assert code == 0, err
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "finished" and m["num_timesteps"] == target
    # nothing lost: every episode SB3 counted has its record, and nothing is left over
    meta = json.loads((run / "checkpoints" / f"ckpt_{target}.json").read_text())
    assert m["episode_count"] == meta["episode_num"] == meta["counters"]["episodes"]
    if not m["gaps"]:
        assert len(m["episodes"]) == m["episode_count"]
    state = audit(run)
    assert not state["temp"] and not state["orphans"] and not state["torn_best"], state
    assert not list(run.rglob(".replacing-*"))
    return out, m


def describe(state: dict[str, Any]) -> str:
    if not state["config"]:
        return "killed before config.yaml"
    steps = [int(c.split("ckpt_")[1].split(".")[0]) for c in state["complete"] if "ckpt_" in c]
    parts = [f"newest checkpoint {max(steps) if steps else 'none'}"]
    for key in ("temp", "orphans"):
        if state[key]:
            parts.append(f"{len(state[key])} {key} ({', '.join(state[key])})")
    if state["torn_best"]:
        parts.append("best model torn between its renames (backup used)")
    if state["metrics_ahead"]:
        parts.append(f"metrics.json {state['metrics_ahead']} steps ahead")
    return "; ".join(parts)


def kill_campaign(tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int, kills: int,
                  delays: tuple[float, float]) -> list[str]:
    """``kills`` SIGKILLs at random instants (seeded) of one run, new or resumed, each followed by
    the invariants and ``eval``; then the run is resumed to its end."""
    rng = random.Random(seed)
    run = tmp_path / "run"
    report = []
    for k in range(kills):
        delay = round(rng.uniform(*delays), 2)
        argv = resume_argv(run, FOREVER) if (run / "config.yaml").exists() else train_argv(run, FOREVER)
        outcome = spawn(argv, tmp_path, kill_after=delay)
        assert outcome.killed, outcome.stderr
        state = audit(run)
        report.append(f"kill {k} at {delay:.2f} s ({argv[1]}): {describe(state)}; "
                      f"{eval_or_one_line(run, capsys)}")
    if not (run / "config.yaml").exists():
        assert run_cli(capsys, *train_argv(run, 50))[0] == 0
    _, m = finish(run, capsys)
    report.append(f"resumed to the end: step {m['num_timesteps']}, {m['episode_count']} episodes, "
                  f"{len(m['gaps'])} gap(s)")
    return report


# -- kill -9 at random instants -------------------------------------------------------------------
def test_kill_9_at_random_instants_leaves_a_usable_run(tmp_path, capsys):
    report = kill_campaign(tmp_path, capsys, SEED, kills=3, delays=(2.0, 7.0))
    with capsys.disabled():
        print("\n" + "\n".join(report))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_kill_9_campaign(tmp_path, capsys, seed):
    """The long version: 8 random kills per seed, then random write-boundary kills."""
    report = kill_campaign(tmp_path, capsys, 1000 + seed, kills=8, delays=(1.0, 9.0))
    rng = random.Random(2000 + seed)
    files = [r"^config\.yaml$", r"^ckpt_\d+\.zip$", r"^ckpt_\d+_replay\.npz$", r"^metrics\.json$",
             r"^ckpt_\d+\.json$", r"^best_model\.zip$", r"^best_model\.json$"]
    for k in range(6):
        pattern, nth, phase = rng.choice(files), rng.randint(1, 4), rng.choice(("mid", "after"))
        run = tmp_path / f"boundary{k}"
        outcome = spawn(train_argv(run, 300), tmp_path, killer=(pattern, nth, phase))
        state = audit(run)
        report.append(f"write {pattern} #{nth} {phase}: {'killed' if outcome.killed else 'not reached'}; "
                      f"{describe(state)}; {eval_or_one_line(run, capsys)}")
        if (run / "config.yaml").exists():
            finish(run, capsys)
    with capsys.disabled():
        print("\n" + "\n".join(report))


# -- kill -9 at each kind of write boundary -------------------------------------------------------
@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A finished 100-step run (checkpoints at 50, 75, 100; replay with the newest; a best)."""
    out = tmp_path_factory.mktemp("base") / "run"
    assert cli.main([str(a) for a in train_argv(out, 100)]) == 0
    return out


def copy_run(base: Path, dst: Path) -> Path:
    shutil.copytree(base, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


def poison_best(run: Path) -> None:
    """Make the best model's recorded score the worst possible, so the next evaluation replaces
    it (the score is metadata; the files it digests are unchanged)."""
    path = run / "best" / "best_model.json"
    meta = json.loads(path.read_text())
    meta["evaluation"].update(success_rate=0.0, return_mean=-1e9)
    path.write_text(json.dumps(meta))


# (pattern, n, phase, start from: "new" run or a resumed copy of base_run with a poisoned best)
BOUNDARIES = {
    "after config.yaml, before any checkpoint": (r"^config\.yaml$", 1, "after", "new"),
    "after a checkpoint's zip, before its JSON": (r"^ckpt_\d+\.zip$", 2, "after", "new"),
    "in the middle of a replay buffer": (r"^ckpt_\d+_replay\.npz$", 2, "mid", "new"),
    "after metrics.json, before the checkpoint JSON": (r"^metrics\.json$", 2, "after", "new"),
    "after a checkpoint JSON, before pruning": (r"^ckpt_\d+\.json$", 2, "after", "new"),
    "in the middle of replacing best_model.zip": (r"^best_model\.zip$", 1, "mid", "resume"),
    "between best_model.zip and best_model.json": (r"^best_model\.zip$", 1, "after", "resume"),
}


@pytest.mark.parametrize("where", list(BOUNDARIES))
def test_kill_9_at_a_write_boundary(where, tmp_path, capsys, base_run):
    from robot_brain.training.checkpoint import select_checkpoint

    pattern, nth, phase, start = BOUNDARIES[where]
    if start == "new":
        run = tmp_path / "run"
        argv = train_argv(run, FOREVER)
    else:
        run = copy_run(base_run, tmp_path / "run")
        poison_best(run)
        argv = resume_argv(run, FOREVER)
    outcome = spawn(argv, tmp_path, killer=(pattern, nth, phase))
    assert outcome.killed, f"the kill point was not reached: {outcome.stderr[-500:]}"
    state = audit(run)
    note = eval_or_one_line(run, capsys)
    if where.startswith("after config.yaml"):  # D: a run without checkpoint is not a dead end
        assert state["config"] and not state["complete"]
        code, _, err = run_cli(capsys, *train_argv(run, 50))
        assert code == 2 and "use --resume" in one_line(err)
        assert note.startswith("eval: ") and "no complete checkpoint" in note
    elif where.startswith("after a checkpoint's zip"):  # H: an orphan
        assert state["orphans"] == ["checkpoints/ckpt_50.zip"]
    elif "middle of a replay" in where:  # the temporary file, no partial replay buffer
        assert len(state["temp"]) == 1 and state["temp"][0].startswith("checkpoints/.ckpt_50_replay.npz.")
    elif where.startswith("after metrics.json"):  # E: metrics ahead, never behind
        assert state["metrics_ahead"] == 25
    elif "middle of replacing" in where:  # A: the old best model is intact and still used
        ckpt, skipped = select_checkpoint(run, "best")
        assert ckpt is not None and ckpt.json_path == run / "best" / "best_model.json" and skipped is None
        assert note == "eval ok"
    elif where.startswith("between best_model.zip"):  # A: torn pair -> the previous best
        assert state["torn_best"]
        ckpt, skipped = select_checkpoint(run, "best")
        assert ckpt is not None and ".replacing-best_model" in str(ckpt.zip_path) and skipped
        assert note == "eval ok (with a note)"
    out, _ = finish(run, capsys)
    if state["temp"] or state["orphans"]:
        assert "leftover file(s) of an interrupted save" in out
    if where.startswith("after config.yaml"):
        assert "no complete checkpoint: starting it from step 0" in out
    assert "lost" not in out  # nothing was lost at any of these points


# -- parallel writers -----------------------------------------------------------------------------
def test_two_trainings_into_one_directory(tmp_path):
    """C: two ``train --out SAME`` at once: one trains, the other gets one line and writes
    nothing (the seed in config.yaml is the seed of every checkpoint). Both pass the early
    "already holds a run" check and then wait 2 s, so the race is certain, not a matter of
    milliseconds."""
    run = tmp_path / "same"
    race = ("delay", "robot_brain.training.run", "new_run_dir", "2")
    procs = [subprocess.Popen(command(train_argv(run, 50, seed), tmp_path, race), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(p.wait(timeout=180), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "already holds a run" in one_line(loser) or "in use by another" in one_line(loser)
    seed = yaml.safe_load((run / "config.yaml").read_text())["seed"]
    winner = 1 + [code for code, _ in results].index(0)
    assert seed == winner
    for js in (run / "checkpoints").glob("ckpt_*.json"):
        assert json.loads(js.read_text())["seed"] == seed


def test_a_claimed_run_is_left_alone(base_run, tmp_path, capsys):
    from robot_brain.training.run import claim_run

    run = copy_run(base_run, tmp_path / "run")
    with claim_run(run, new=False):
        before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in run.rglob("*")}
        code, _, err = run_cli(capsys, *resume_argv(run, 200))
        assert code == 2 and "in use by another 'robot-brain train' process" in one_line(err)
        fresh = tmp_path / "fresh"
        with claim_run(fresh, new=True):
            code, _, err = run_cli(capsys, *train_argv(fresh, 50))
            assert code == 2 and "in use" in one_line(err)
            assert sorted(p.name for p in fresh.iterdir()) == [".lock"]
        assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in run.rglob("*")} == before


# -- damaged, truncated and planted run files -----------------------------------------------------
class _Trap:
    """Unpickling this creates a file: proof that pickled code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant(path: Path, data: bytes) -> None:
    """Replace a checkpoint file and update its size and digest in the checkpoint's JSON, as an
    attacker with write access would (the digests detect damage, not tampering)."""
    path.write_bytes(data)
    meta_path = path.with_name(stem_of(path) + ".json")
    meta = json.loads(meta_path.read_text())
    meta["files"][path.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    meta_path.write_text(json.dumps(meta))


def edit_json(path: Path, **changes: Any) -> None:
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if value is KeyError:
            del meta[key]
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


@pytest.fixture
def opened():
    """Paths opened (Python's ``open`` audit event) while the test runs."""
    seen: list[str] = []
    _AUDIT.append(seen)
    yield seen
    _AUDIT.remove(seen)


_AUDIT: list[list[str]] = []


def _audit_hook(event: str, args: tuple) -> None:
    if event == "open" and _AUDIT and isinstance(args[0], (str, bytes, os.PathLike)):
        for seen in _AUDIT:
            seen.append(os.fsdecode(args[0]))


sys.addaudithook(_audit_hook)


def only(run: Path, *keep: int) -> Path:
    """Remove the periodic checkpoints except ``keep``."""
    for js in (run / "checkpoints").glob("ckpt_*.json"):
        if int(js.stem.split("_")[1]) not in keep:
            for f in (run / "checkpoints").glob(js.stem + "[._]*"):
                f.unlink()
    return run


def test_empty_best_model_falls_back_to_the_last_checkpoint(base_run, tmp_path, capsys):
    """A: the state a kill -9 used to leave (a 0-byte best_model.zip beside a valid JSON)."""
    run = copy_run(base_run, tmp_path / "run")
    (run / "best" / "best_model.zip").write_bytes(b"")
    code, out, _ = run_cli(capsys, "eval", run, "--episodes", "1", "--quiet")
    assert code == 0
    assert "note: best/best_model.zip is truncated (0 of " in out
    assert "bytes): using checkpoints/ckpt_100.zip (step 100)" in out
    code, out, err = run_cli(capsys, *resume_argv(run, 150))
    assert code == 0, err  # trains, and its final evaluation does not crash
    assert "the next evaluation writes a new best model" in out
    from robot_brain.training.checkpoint import select_checkpoint

    ckpt, skipped = select_checkpoint(run, "best")  # the evaluation at 150 wrote a new one
    assert skipped is None and ckpt is not None and ckpt.json_path == run / "best" / "best_model.json"
    assert ckpt.meta["evaluation"]["step"] == 150


@pytest.mark.parametrize("damage", ["empty", "truncated", "missing"])
@pytest.mark.parametrize("which", ["zip", "replay"])
def test_damaged_newest_checkpoint(which, damage, base_run, tmp_path, capsys):
    """B: with an older checkpoint, resume and eval fall back to it, naming the damaged file in
    one line; alone, it is a one-line error naming the file (never a traceback)."""
    name = "ckpt_100.zip" if which == "zip" else "ckpt_100_replay.npz"
    for alone in (False, True):
        run = copy_run(base_run, tmp_path / f"run-{alone}")
        if alone:
            only(run, 100)
        path = run / "checkpoints" / name
        if damage == "missing":
            path.unlink()
        else:
            path.write_bytes(b"" if damage == "empty" else path.read_bytes()[: path.stat().st_size // 2])
        code, out, err = run_cli(capsys, *resume_argv(run, 150))
        if alone:
            assert code == 2 and str(path) in one_line(err)
        else:
            assert code == 0, err
            assert f"note: checkpoints/{name} is {'missing' if damage == 'missing' else 'truncated'}" in out
            assert ": using checkpoints/ckpt_75.zip (step 75)" in out
        code, out, err = run_cli(capsys, "eval", run, "--checkpoint", "last", "--episodes", "1", "--quiet")
        if which == "replay":  # eval needs no replay buffer
            assert code == 0
        elif alone:
            assert code == 2 and str(path) in one_line(err)
        else:
            assert code == 0


@pytest.mark.parametrize(("change", "message"), [
    ({"task": KeyError}, "lacks key 'task'"),
    ({"num_timesteps": "abc"}, "num_timesteps must be an integer >= 0, got 'abc'"),
    ({"num_timesteps": None}, "num_timesteps must be an integer >= 0, got None"),
    ({"replay": "../../../../../etc/passwd"}, "is not a plain file name of checkpoint ckpt_100"),
    ({"replay": "../../outside.npz"}, "is not a plain file name"),  # a valid buffer, if followed
    ({"replay": "OUTSIDE"}, "is not a plain file name"),  # its absolute path
    ({"normalize": "..\\..\\outside.npz"}, "is not a plain file name"),
    ({"replay": "ckpt_75_replay.npz"}, "is not a plain file name"),  # another checkpoint's file
    ({"counters": {"episodes": -1}}, "counters must be a mapping"),
])
def test_bad_checkpoint_metadata(change, message, base_run, tmp_path, capsys, opened):
    """B/G: every problem in a checkpoint's JSON is one line naming the file and the key; a
    file name that leads out of the run is refused before anything is opened."""
    run = only(copy_run(base_run, tmp_path / "run"), 100)
    outside = tmp_path / "outside.npz"
    shutil.copy(run / "checkpoints" / "ckpt_100_replay.npz", outside)  # a valid target
    if change.get("replay") == "OUTSIDE":
        change = {"replay": str(outside)}
    edit_json(run / "checkpoints" / "ckpt_100.json", **change)
    opened.clear()
    for argv in (resume_argv(run, 150), ["eval", run, "--checkpoint", "last", "--episodes", "1"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2
        line = one_line(err)
        assert message in line and "ckpt_100.json" in line
    assert not any(p in (str(outside), "/etc/passwd") or p.startswith(str(tmp_path / "outside"))
                   for p in opened)


def test_planted_symlink_is_not_followed(base_run, tmp_path, capsys, opened):
    run = only(copy_run(base_run, tmp_path / "run"), 100)
    outside = tmp_path / "outside.npz"
    replay = run / "checkpoints" / "ckpt_100_replay.npz"
    shutil.move(replay, outside)
    replay.symlink_to(outside)
    opened.clear()
    code, _, err = run_cli(capsys, *resume_argv(run, 150))
    assert code == 2 and "ckpt_100_replay.npz is a symbolic link" in one_line(err)
    assert str(outside) not in opened


def test_pickles_where_weights_and_arrays_belong_are_not_unpickled(base_run, tmp_path, capsys):
    import torch

    marker = tmp_path / "pwned"
    run = only(copy_run(base_run, tmp_path / "run"), 100)
    # a pickled object in place of the policy weights
    zip_path = run / "checkpoints" / "ckpt_100.zip"
    buf = io.BytesIO()
    torch.save({"x": _Trap(marker)}, buf)
    raw = io.BytesIO()
    with zipfile.ZipFile(zip_path) as zin, zipfile.ZipFile(raw, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, buf.getvalue() if name == "policy.pth" else zin.read(name))
    plant(zip_path, raw.getvalue())
    code, _, err = run_cli(capsys, "eval", run, "--checkpoint", "last", "--episodes", "1")
    assert code == 2 and "entry policy.pth is not plain weights" in one_line(err)
    # a pickled object array in the replay buffer
    run2 = only(copy_run(base_run, tmp_path / "run2"), 100)
    rb = io.BytesIO()
    arrays = dict(np.load(run2 / "checkpoints" / "ckpt_100_replay.npz"))
    arrays["actions"] = np.array([_Trap(marker)], dtype=object)
    np.savez(rb, **arrays)
    plant(run2 / "checkpoints" / "ckpt_100_replay.npz", rb.getvalue())
    code, _, err = run_cli(capsys, *resume_argv(run2, 150))
    assert code == 2 and "replay buffer" in one_line(err) and "ckpt_100_replay.npz" in one_line(err)
    # a raw pickle in place of the replay buffer
    plant(run2 / "checkpoints" / "ckpt_100_replay.npz", pickle.dumps(_Trap(marker)))
    code, _, err = run_cli(capsys, *resume_argv(run2, 150))
    assert code == 2 and "is unreadable" in one_line(err)
    assert not marker.exists()


def test_nan_policy_weights_are_refused_when_loaded(base_run, tmp_path, capsys):
    """G: eval and sim --policy name the file in one line (refused at load time)."""
    import torch

    run = copy_run(base_run, tmp_path / "run")
    shutil.rmtree(run / "best")
    zip_path = run / "checkpoints" / "ckpt_100.zip"
    with zipfile.ZipFile(zip_path) as zin:
        entries = {n: zin.read(n) for n in zin.namelist()}
    weights = torch.load(io.BytesIO(entries["policy.pth"]), weights_only=True)
    next(v for k, v in weights.items() if k.endswith("mu.weight"))[0, 0] = float("nan")
    buf = io.BytesIO()
    torch.save(weights, buf)
    entries["policy.pth"] = buf.getvalue()
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zout:
        for name, data in entries.items():
            zout.writestr(name, data)
    plant(zip_path, raw.getvalue())
    for argv in (["eval", run, "--episodes", "1"], ["sim", "reach", "--policy", run, "--episodes", "1"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and f"{zip_path} holds non-finite policy weights" in one_line(err)


@pytest.mark.parametrize("content", [b"", b'{"task": "reach", "curve": [', b"\xff\xfe{}", b"[1, 2]",
                                     b'{"curve": [], "episodes": [{"step": "abc"}], "evaluations": []}'])
def test_bad_metrics_are_rebuilt_from_the_checkpoint(content, base_run, tmp_path, capsys):
    """E: a damaged metrics.json is rebuilt from the checkpoint's counters with a one-line note
    (never silently zeroed); plot says what is wrong in one line."""
    run = copy_run(base_run, tmp_path / "run")
    before = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_bytes(content)
    code, _, err = run_cli(capsys, "plot", run, "--out", tmp_path / "c.png")
    assert code == 2 and "metrics.json" in one_line(err)
    code, out, err = run_cli(capsys, *resume_argv(run, 125))
    assert code == 0, err
    notes = [line for line in out.splitlines() if line.startswith("note: metrics")]
    assert len(notes) == 1 and "rebuilt from ckpt_100's counters" in notes[0] and "lost" in notes[0]
    m = json.loads((run / "metrics.json").read_text())
    assert m["episode_count"] >= before["episode_count"] > 0  # continued from the counters
    assert m["cumulative_violations"] >= before["cumulative_violations"]
    assert m["gaps"] and m["gaps"][0]["step"] == 100
    assert m["best"] is not None  # from the best model itself


def test_metrics_ahead_of_the_checkpoint_are_cut_back(base_run, tmp_path, capsys):
    """E: records after the checkpoint (a kill between metrics.json and the checkpoint JSON)
    are dropped on resume, the rest kept; counters agree, no note."""
    run = only(copy_run(base_run, tmp_path / "run"), 75)
    code, out, err = run_cli(capsys, *resume_argv(run, 100))
    assert code == 0, err
    assert "lost" not in out
    m = json.loads((run / "metrics.json").read_text())
    meta = json.loads((run / "checkpoints" / "ckpt_100.json").read_text())
    assert m["episode_count"] == len(m["episodes"]) == meta["episode_num"]
    assert [e["step"] for e in m["evaluations"]] == [50, 100]


def test_orphans_and_temporary_files_are_pruned(base_run, tmp_path, capsys):
    """H: files of checkpoints whose JSON was never written and stray temporary files go at
    the next resume; files that are not checkpoint names stay."""
    run = copy_run(base_run, tmp_path / "run")
    ck = run / "checkpoints"
    shutil.copy(ck / "ckpt_100.zip", ck / "ckpt_125.zip")
    shutil.copy(ck / "ckpt_100_replay.npz", ck / "ckpt_150_replay.npz")
    shutil.copy(ck / "ckpt_100.zip", ck / "ckpt_75_replay.npz")  # not listed by ckpt_75.json
    for junk in (ck / ".ckpt_125.zip.k2j3h4.tmp", ck / ".ckpt_125.json.a8sd7f.tmp",
                 run / "best" / ".best_model.zip.zz9.tmp", run / ".metrics.json.x1y2.tmp"):
        junk.write_bytes(b"partial")
    keep = [ck / "notes.txt", ck / "ckpt_100.zip.bak", run / "mine.tmp", ck / ".other.zip.abc.tmp"]
    for path in keep:
        path.write_text("not a checkpoint")
    code, out, err = run_cli(capsys, *resume_argv(run, 100))  # nothing to train: prune and finish
    assert code == 0, err
    assert "removed 7 leftover file(s) of an interrupted save" in out
    assert all(path.exists() for path in keep)
    names = sorted(p.name for p in ck.iterdir() if p not in keep)
    assert names == ["ckpt_100.json", "ckpt_100.zip", "ckpt_100_replay.npz", "ckpt_50.json", "ckpt_50.zip",
                     "ckpt_75.json", "ckpt_75.zip"]
    assert sorted(p.name for p in (run / "best").iterdir()) == ["best_model.json", "best_model.zip"]


# -- bad run files and configurations: one line, exit 2 --------------------------------------------
@pytest.mark.parametrize(("old", "new", "message"), [
    (b"\nshield: limits", b"\nshield: limits \xff", "is not UTF-8 text"),
    (b"seed: 0", b"seed: abc", "seed must be an integer >= 0, got 'abc'"),
    (b"task: reach", b"task: reech", "unknown task 'reech'"),
    (b"n_timesteps: 100", b"n_timesteps: abc", "n_timesteps expects an integer, got 'abc'"),
    (b"n_timesteps: 100", b"n_timesteps: null", "n_timesteps expects an integer, got None"),
    (b"gamma: 0.95", b"gamma: 2", "gamma must be in (0, 1], got 2"),
    (b"  save_freq: 25\n", b"", None),  # a missing run key gets its default
])
def test_bad_run_config_is_one_line(old, new, message, base_run, tmp_path, capsys):
    """G: a run's config.yaml that is not UTF-8, has a bad seed, task or value: one line."""
    run = copy_run(base_run, tmp_path / "run")
    path = run / "config.yaml"
    raw = path.read_bytes()
    assert old in raw
    path.write_bytes(raw.replace(old, new))
    for argv in (resume_argv(run, 125), ["eval", run, "--episodes", "1", "--quiet"]):
        code, _, err = run_cli(capsys, *argv)
        if message is None:
            assert code == 0, err
        else:
            assert code == 2 and message in one_line(err) and "config.yaml" in one_line(err)


def test_non_utf8_files_are_one_line(base_run, tmp_path, capsys):
    """G: --config file and a checkpoint JSON that are not UTF-8."""
    cfg = tmp_path / "hp.yaml"
    cfg.write_bytes(b"sac:\n  gamma: 0.9 \xff\n")
    code, _, err = run_cli(capsys, "train", "reach", "--config", cfg, "--out", tmp_path / "x")
    assert code == 2 and "is not UTF-8 text" in one_line(err) and not (tmp_path / "x").exists()
    run = only(copy_run(base_run, tmp_path / "run"), 100)
    (run / "checkpoints" / "ckpt_100.json").write_bytes(b"\xff\xfe{}")
    code, _, err = run_cli(capsys, "eval", run, "--checkpoint", "last")
    assert code == 2 and "ckpt_100.json is not UTF-8 text" in one_line(err)


def test_a_run_without_checkpoint_restarts_from_step_0(base_run, tmp_path, capsys):
    """D: config.yaml but no checkpoint (killed before the first one): --out refuses with a
    pointer to --resume, and --resume starts it from step 0 with its own config."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(base_run / "config.yaml", run / "config.yaml")
    code, _, err = run_cli(capsys, *train_argv(run, 50))
    assert code == 2 and "use --resume" in one_line(err)
    code, out, err = run_cli(capsys, *resume_argv(run, 50))
    assert code == 0, err
    assert "has no complete checkpoint: starting it from step 0 with its config.yaml" in out
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 0


# -- hostile hyperparameters ----------------------------------------------------------------------
HOSTILE = [
    ("policy_kwargs.net_arch=[64,\"a\"]", "net_arch must be a list of layer sizes >= 1"),
    ("policy_kwargs.net_arch=[-1]", "net_arch must be a list of layer sizes >= 1"),
    ("policy_kwargs.net_arch=[0]", "net_arch must be a list of layer sizes >= 1"),
    ("policy_kwargs.net_arch={pi: [8], bad: [8]}", "net_arch must be"),
    ("learning_rate=-1", "learning_rate must be > 0, got -1"),
    ("learning_rate=0", "learning_rate must be > 0, got 0"),
    ("learning_rate=.nan", "learning_rate must be finite"),
    ("learning_rate=.NaN", "learning_rate must be finite"),
    ("learning_rate=nan", "learning_rate must be finite"),
    ("learning_rate=.inf", "learning_rate must be finite"),
    ("learning_rate=-.inf", "learning_rate must be finite"),
    ("learning_rate=1e999", "learning_rate must be finite"),
    ("learning_rate=lin_-0.001", "learning_rate must be > 0, got 'lin_-0.001'"),
    ("learning_rate=lin_nan", "learning_rate must be finite"),
    ("batch_size=0", "batch_size must be >= 1, got 0"),
    ("buffer_size=0", "buffer_size must be >= 1, got 0"),
    ("gamma=2", "gamma must be in (0, 1], got 2"),
    ("gamma=0", "gamma must be in (0, 1], got 0"),
    ("gamma=.nan", "gamma must be finite"),
    ("tau=0", "tau must be in (0, 1], got 0"),
    ("tau=1.5", "tau must be in (0, 1], got 1.5"),
    ("learning_starts=-1", "learning_starts must be >= 0"),
    ("train_freq=0", "train_freq must be an integer >= 1"),
    ("gradient_steps=0", "gradient_steps must be >= 1 or -1, got 0"),
    ("ent_coef=-0.1", "ent_coef must be >= 0"),
    ("ent_coef=auto_-1", "ent_coef must be >= 0"),
    ("ent_coef=.inf", "ent_coef must be finite"),
    ("policy_kwargs.log_std_init=.nan", "policy_kwargs.log_std_init must be finite"),
    ("policy_kwargs.n_critics=0", "policy_kwargs.n_critics must be >= 1"),
]


@pytest.mark.parametrize(("setting", "message"), HOSTILE)
def test_hostile_hyperparameters_are_refused_before_anything_is_written(setting, message, tmp_path, capsys):
    """D/F: refused with one line naming the key, and no run directory is created."""
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "reach", "--out", out, "--steps", "100", "--set", setting)
    assert code == 2 and message in one_line(err)
    assert not out.exists()


@pytest.mark.parametrize(("algo", "settings", "message"), [
    ("ppo", ["n_steps=0"], "n_steps must be >= 1"),
    ("ppo", ["batch_size=1", "n_steps=8"], "do not build a ppo model (AssertionError: `batch_size` must be"),
    ("ppo", ["gae_lambda=1.5"], "gae_lambda must be in [0, 1]"),
    ("ppo", ["clip_range=0"], "clip_range must be > 0"),
    ("ppo", ["max_grad_norm=-1"], "max_grad_norm must be > 0"),
    ("td3", ["noise_std=.inf"], "noise_std must be finite"),
    ("td3", ["policy_delay=0"], "policy_delay must be >= 1"),
    ("sac", ["ent_coef=abc"], "ent_coef must be >= 0, 'auto'"),
])
def test_hostile_hyperparameters_of_each_algorithm(algo, settings, message, tmp_path, capsys):
    out = tmp_path / "run"
    sets = [a for s in settings for a in ("--set", s)]
    code, _, err = run_cli(capsys, "train", "reach", "--algo", algo, "--out", out, "--steps", "100", *sets)
    assert code == 2 and message in one_line(err)
    assert not out.exists()


def test_library_train_leaves_no_run_behind_when_the_model_cannot_be_built(tmp_path):
    """D from Python: ``train()`` writes ``config.yaml`` only once the model is built, so a
    configuration SB3 refuses (PPO batch_size 1 with n_steps 8) leaves no run to resume."""
    from robot_brain.training.config import resolve_hyperparams
    from robot_brain.training.run import RunConfig
    from robot_brain.training.trainer import train

    hp = resolve_hyperparams("reach", "ppo", overrides=["batch_size=1", "n_steps=8", "vec_env=dummy"],
                             steps=100)
    run = tmp_path / "run"
    with pytest.raises(AssertionError, match="batch_size"):
        train(RunConfig("reach", "ppo", 0, "limits", hp), run, progress=False)
    assert not (run / "config.yaml").exists()
