"""Run directories: layout, the resolved ``config.yaml``, environments with the shield applied.

A run lives in ``runs/<task>/<algo>-<timestamp>/``::

    config.yaml          the fully resolved configuration (task, algo, seed, shield, hyperparams)
                         plus the package versions that wrote it
    metrics.json         learning curve, episodes, evaluations, final evaluation, throughput
    checkpoints/         ckpt_<steps>.zip/.json (+ _replay.npz): periodic and last checkpoints
    best/                best_model.zip/.json: best periodic evaluation (success, then return)
    tb/                  TensorBoard event files
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import yaml

from robot_brain.fileio import atomic_write_text

from .checkpoint import CheckpointError, version_info
from .config import ALGOS, ConfigError, validate_section

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

__all__ = [
    "RunConfig",
    "make_env",
    "make_vec_env",
    "new_run_dir",
    "read_run_config",
    "write_run_config",
]


@dataclass(frozen=True)
class RunConfig:
    """What a run is: enough to rebuild its environments and model (``config.yaml``)."""

    task: str
    algo: str
    seed: int
    shield: str
    hyperparams: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "algo": self.algo, "seed": self.seed, "shield": self.shield,
                "hyperparams": self.hyperparams, "versions": version_info()}


def new_run_dir(out: str | Path | None, task: str, algo: str) -> Path:
    """``out`` if given (must not hold a run already), else ``runs/<task>/<algo>-<timestamp>``
    (with a numeric suffix if that exists)."""
    if out is not None:
        path = Path(out)
        if (path / "config.yaml").exists():
            raise ConfigError(f"--out {path} already holds a run; use --resume {path} to continue it")
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = Path("runs") / task / f"{algo}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = base, 1
    while path.exists():
        path = base.with_name(f"{base.name}-{i}")
        i += 1
    path.mkdir(parents=True)
    return path


def write_run_config(run_dir: Path, config: RunConfig) -> Path:
    path = run_dir / "config.yaml"
    header = ("# Resolved configuration of this run (robot-brain train). Reproduce with:\n"
              f"#   robot-brain train {config.task} --algo {config.algo} --seed {config.seed} "
              f"--shield {config.shield} --config {path}\n")
    body = yaml.safe_dump(config.as_dict(), sort_keys=False, default_flow_style=None)
    return atomic_write_text(path, header + body)


def read_run_config(run_dir: str | Path) -> RunConfig:
    """The configuration of an existing run (``yaml.safe_load``; every key validated)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {str(run_dir)!r} not found")
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a training run (no config.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise CheckpointError(f"{path} is not valid YAML") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a run configuration")
    known = {"task", "algo", "seed", "shield", "hyperparams", "versions"}
    for key in data:
        if key not in known:
            raise ConfigError(f"{path}: unknown key {key!r}")
    missing = [k for k in ("task", "algo", "hyperparams") if k not in data]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
    algo = data["algo"]
    if algo not in ALGOS:
        raise CheckpointError(f"{path}: unknown algorithm {algo!r}")
    hp = validate_section(algo, data["hyperparams"], str(path))
    return RunConfig(task=str(data["task"]), algo=algo, seed=int(data.get("seed", 0)),
                     shield=str(data.get("shield", "limits")), hyperparams=hp)


def make_env(task: str, env_kwargs: dict[str, Any] | None = None, shield: str = "limits", *,
             render_mode: str | None = None, renderer: str = "auto", monitor: bool = True) -> gym.Env:
    """One task env with its options (``env_kwargs``: fields of the task's config, e.g.
    ``max_step`` or ``disturbances``) and the shield (a spec: ``none``, ``limits`` or a critic
    directory; see :mod:`robot_brain.safety.shield`).

    :raises ConfigError: an unknown or bad option, or a bad shield (one line naming it).
    """
    from robot_brain.envs import make, resolve_task
    from robot_brain.safety import CriticFileError

    spec = resolve_task(task)
    kwargs = dict(env_kwargs or {})
    known = [f.name for f in dataclasses.fields(spec.config_type)]
    for key in kwargs:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"env_kwargs for {spec.name}: unknown key {key!r}{hint} "
                              f"(see 'robot-brain tasks --options {spec.name}')")
    try:
        env = make(spec.name, shield=shield, render_mode=render_mode, renderer=renderer, **kwargs)
    except CriticFileError as exc:  # a bad critic directory, named in the message
        raise ConfigError(f"shield: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:  # a bad option value: one line naming it
        raise ConfigError(f"env_kwargs for {spec.name}: {str(exc).splitlines()[0]}") from None
    if monitor:
        from stable_baselines3.common.monitor import Monitor

        env = Monitor(env, info_keywords=("is_success",))
    return env


def _env_factory(task: str, env_kwargs: dict[str, Any], shield: str, seed: int,
                 worker: bool = False) -> gym.Env:
    if worker:
        # Ctrl-C reaches the whole process group: the main process turns it into a checkpoint, so
        # the env workers must stay alive (SB3's worker loop would exit on KeyboardInterrupt).
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = make_env(task, env_kwargs, shield)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def make_vec_env(task: str, env_kwargs: dict[str, Any], shield: str, *, n_envs: int, seed: int,
                 vec_env: str = "subproc") -> VecEnv:
    """``n_envs`` copies of the task (env ``i`` seeded ``seed + i``); ``SubprocVecEnv`` when
    ``n_envs > 1`` and ``vec_env == "subproc"``."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    subproc = n_envs > 1 and vec_env == "subproc"
    fns: list[Callable[[], gym.Env]] = [
        functools.partial(_env_factory, task, dict(env_kwargs), shield, seed + i, subproc)
        for i in range(n_envs)]
    return SubprocVecEnv(fns) if subproc else DummyVecEnv(fns)
