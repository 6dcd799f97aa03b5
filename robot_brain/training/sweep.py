"""Seed sweeps and grids on Ray (``robot-brain sweep``): many ordinary runs, in parallel, resumable.

A sweep is the grid ``seeds x values`` of one task and algorithm. Every trial is an ordinary
``robot-brain train`` run in its own run directory (config, checkpoints, metrics), executed as a
child process of a Ray task, so a trial is exactly what a user would get by hand, and Ray only
schedules: on the local machine by default (an embedded Ray instance, nothing to start), or on a
cluster with ``address``.

- A trial whose directory holds a finished run of the requested length is skipped, so running
  the same command again completes a sweep instead of repeating it.
- A trial whose directory holds a checkpoint resumes from it (``train --resume``).
- A trial whose process dies (killed, out of memory, a lost node) fails its Ray task, which Ray
  retries (``retries`` times): the retry resumes from the last checkpoint.
- The child is bound to its Ray worker (``PR_SET_PDEATHSIG``): if the worker dies, the child
  gets SIGINT and stops (saving a checkpoint when it has the time), so no trial outlives the
  sweep. A run directory is never half-written: its files are written atomically, and a trial
  stopped at any instant resumes from its last checkpoint.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SweepError", "Trial", "parse_grid", "plan", "run_sweep", "trial_state"]


class SweepError(ValueError):
    """A sweep that cannot run (one line naming the problem)."""


@dataclass(frozen=True)
class Trial:
    """One run of the grid: a seed and one value per swept key."""

    task: str
    algo: str
    seed: int
    values: tuple[tuple[str, str], ...]  # (key, value text) of each swept key (two values or more)
    run_dir: Path
    steps: int | None = None
    extra: tuple[str, ...] = field(default=())  # further train arguments (--set k=v ..., --policy P)
    flags: tuple[str, ...] = field(default=())  # train options that also apply on resume (--eval-episodes)

    @property
    def label(self) -> str:
        return " ".join([f"seed={self.seed}", *(f"{k}={v}" for k, v in self.values)])

    def argv(self) -> list[str]:
        """The ``robot-brain train`` arguments of this trial (resume when it has a checkpoint)."""
        steps = [] if self.steps is None else ["--steps", str(self.steps)]
        if _has_checkpoint(self.run_dir):
            return ["train", "--resume", str(self.run_dir), *steps, *self.flags, "--quiet"]
        sets = [a for k, v in self.values for a in ("--set", f"{k}={v}")]
        return ["train", self.task, "--algo", self.algo, "--seed", str(self.seed), *steps, *self.extra,
                *sets, *self.flags, "--out", str(self.run_dir), "--quiet"]


def _has_checkpoint(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint to resume from."""
    return any((run_dir / "checkpoints").glob("*.json"))


def _split_values(text: str) -> list[str]:
    """``v1,v2,...`` split at the commas outside brackets and braces (``[16,16],[64,64]``)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out]


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``--set key=v1,v2`` items as (key, values); one value is a fixed setting of every trial."""
    grid = []
    for item in items:
        key, sep, text = item.partition("=")
        values = _split_values(text)
        if not sep or not key.strip() or any(not v for v in values):
            raise SweepError(f"argument --set: expected KEY=V1,V2,..., got {item!r}")
        if len(set(values)) != len(values):
            raise SweepError(f"argument --set: {key} lists a value twice: {text!r}")
        grid.append((key.strip(), values))
    return grid


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")[:60]


def plan(task: str, algo: str, seeds: Sequence[int], grid: Sequence[tuple[str, list[str]]], out: Path, *,
         steps: int | None = None, extra: Sequence[str] = ()) -> list[Trial]:
    """Every trial of ``seeds x grid`` with its run directory under ``out``."""
    fixed = [a for key, values in grid if len(values) == 1 for a in ("--set", f"{key}={values[0]}")]
    combos: list[tuple[tuple[str, str], ...]] = [()]
    for key, values in grid:
        if len(values) > 1:
            combos = [(*c, (key, v)) for c in combos for v in values]
    trials = []
    for combo in combos:
        for seed in seeds:
            name = "-".join([task, algo, *(_slug(f"{k}={v}") for k, v in combo), f"s{seed}"])
            trials.append(Trial(task, algo, int(seed), combo, out / name, steps, (*extra, *fixed)))
    return trials


def trial_state(trial: Trial) -> str:
    """``"finished"`` (nothing to do), ``"partial"`` (a checkpoint to resume) or ``"new"``."""
    try:
        m = json.loads((trial.run_dir / "metrics.json").read_text(encoding="utf-8"))
        cfg_steps = None
        if trial.steps is None:
            import yaml

            cfg = yaml.safe_load((trial.run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
            cfg_steps = (cfg.get("hyperparams") or {}).get("n_timesteps")
        wanted = trial.steps if trial.steps is not None else cfg_steps
        if m.get("status") == "finished" and wanted is not None and m.get("num_timesteps", 0) >= wanted:
            return "finished"
    except (OSError, ValueError, AttributeError):
        pass
    return "partial" if _has_checkpoint(trial.run_dir) else "new"


class TrialFailed(RuntimeError):
    """A trial's process ended without finishing (Ray retries the task)."""


def _bind_to_parent() -> None:  # runs in the child between fork and exec
    # A Ray worker blocks SIGINT, and a blocked mask survives exec: unblocked and default here,
    # the child's Ctrl-C path runs (a checkpoint, then exit) when it is stopped or orphaned.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG: SIGINT when the Ray worker dies


def execute(trial: Trial, poll: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run one trial to the end in a child process (the body of the Ray task).

    :param poll: called every second while the child trains; when it returns True the child is
        stopped as Ctrl-C stops a run (it saves a checkpoint) and the trial ends ``"stopped"``
        (``robot-brain tune`` prunes trials this way).
    """
    if trial_state(trial) == "finished":
        return {"label": trial.label, "run_dir": str(trial.run_dir), "status": "skipped"}
    trial.run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = trial.run_dir.parent / f".{trial.run_dir.name}.log"
    t0 = time.perf_counter()
    bind = _bind_to_parent if sys.platform == "linux" else None
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "robot_brain", *trial.argv()], stdout=out,
                                stderr=subprocess.STDOUT, preexec_fn=bind,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            while proc.poll() is None:
                try:
                    proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    if poll is not None and poll():
                        _stop(proc)
                        return {"label": trial.label, "run_dir": str(trial.run_dir), "status": "stopped",
                                "seconds": time.perf_counter() - t0}
        except BaseException:  # KeyboardInterrupt from ray.cancel: the child stops with us
            _stop(proc)
            raise
    if proc.returncode != 0 or trial_state(trial) != "finished":
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        tail = text.strip().splitlines()[-1:]
        raise TrialFailed(f"{trial.label}: train exited with {proc.returncode}"
                          f"{': ' + tail[0] if tail else ''} (log {log})")
    return {"label": trial.label, "run_dir": str(trial.run_dir), "status": "done",
            "seconds": time.perf_counter() - t0}


def _stop(proc: subprocess.Popen, grace: float = 60.0) -> None:
    """Stop a child ``train`` as Ctrl-C does (it checkpoints and exits), killed after ``grace`` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_sweep(trials: Sequence[Trial], *, workers: int, address: str | None = None, retries: int = 2,
              on_update: Callable[[dict[str, int], dict[str, Any] | None], None] | None = None
              ) -> dict[str, Any]:
    """Run ``trials`` on Ray (``workers`` at a time; a cluster at ``address``); the outcome of
    each. Ctrl-C cancels what runs (the trials keep their last checkpoints) and re-raises."""
    import_ray("sweep")
    counts = {"pending": 0, "done": 0, "skipped": 0, "failed": 0}
    results: dict[str, Any] = {}
    todo = []
    for t in trials:
        if trial_state(t) == "finished":
            counts["skipped"] += 1
            results[t.label] = {"label": t.label, "run_dir": str(t.run_dir), "status": "skipped"}
        else:
            todo.append(t)
    if not todo:
        return {"counts": counts, "trials": results}
    with ray_session(workers, address, "sweep") as (ray, refs):
        _on_ray(ray, refs, todo, counts, results, retries=retries, on_update=on_update)
    return {"counts": counts, "trials": results}


def _check_reachable(address: str) -> None:
    """A one-line error at once for a cluster address nobody answers at (Ray itself would keep
    retrying for minutes)."""
    import socket

    if address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise SweepError(f"--address must be HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise SweepError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                         f"'ray start --head' or leave out --address for a local one") from None


def import_ray(command: str) -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SweepError(f"robot-brain {command} needs Ray: pip install 'robot-brain[scale]'") from None
    return ray


def start_ray(workers: int, address: str | None, command: str) -> Any:
    """Ray, connected to the cluster at ``address`` or to a new local instance of ``workers``
    CPUs (its node address on loopback); ``ray.shutdown()`` is the caller's."""
    ray = import_ray(command)
    init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if address:
        _check_reachable(address)
        init["address"] = address
    else:  # an embedded instance on this machine, its node address on loopback
        init["num_cpus"] = workers
        init["_node_ip_address"] = "127.0.0.1"
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local instance: no token files written
    try:
        ray.init(**init)
    except Exception as exc:  # ConnectionError, RuntimeError ...: one line either way
        raise SweepError(f"cannot start or reach Ray{' at ' + address if address else ''}: {exc}") from None
    return ray


@contextmanager
def ray_session(workers: int, address: str | None, command: str) -> Iterator[tuple[Any, dict[Any, Any]]]:
    """Ray for a batch of trials (:func:`start_ray`) and the map of its in-flight tasks, which
    the caller keeps: Ctrl-C cancels those (their trials keep their last checkpoints, their
    processes stop with their workers) and re-raises; Ray is shut down on the way out."""
    ray = start_ray(workers, address, command)
    in_flight: dict[Any, Any] = {}
    try:
        yield ray, in_flight
    except KeyboardInterrupt:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise
    finally:
        ray.shutdown()


def _on_ray(ray: Any, refs: dict[Any, Any], todo: Sequence[Trial], counts: dict[str, int],
            results: dict[str, Any], *, retries: int,
            on_update: Callable[[dict[str, int], dict[str, Any] | None], None] | None) -> None:
    """Submit ``todo`` to Ray (their tasks into ``refs``) and collect the outcomes into
    ``counts`` and ``results``."""
    task: Any = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=[TrialFailed])(execute)
    refs.update({task.remote(t): t for t in todo})
    counts["pending"] = len(refs)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
        for ref in done:
            t = refs[ref]
            try:
                res = ray.get(ref)
            except Exception as exc:  # the trial's own failure, after its retries
                res = {"label": t.label, "run_dir": str(t.run_dir), "status": "failed",
                       "error": str(exc).strip().splitlines()[-1]}
            results[t.label] = res
            counts[res["status"]] += 1
            counts["pending"] -= 1
            if on_update is not None:
                on_update(counts, res)
        if on_update is not None and not done:
            on_update(counts, None)
