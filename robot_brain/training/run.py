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

import functools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .checkpoint import CheckpointError, version_info
from .config import ALGOS, ConfigError, validate_section

__all__ = [
    "SHIELD_CHOICES",
    "RunConfig",
    "make_env",
    "make_vec_env",
    "new_run_dir",
    "read_run_config",
    "write_run_config",
]

SHIELD_CHOICES = ("none", "limits")  # besides a path to a trained critic directory


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
    tmp = path.with_name(".config.yaml.tmp")
    tmp.write_text(header + body, encoding="utf-8")
    tmp.replace(path)
    return path


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


def _install_shield(env, shield: str):
    """Put a learned critic's reflex into the env's loop (``none``/``limits`` are set at
    construction through the env's ``reflex`` argument, which keeps each task's own limits)."""
    try:
        from robot_brain.safety.shield import install_shield, load_shield
    except ImportError:
        raise ConfigError(f"--shield {shield!r}: only 'none' and 'limits' are available "
                          f"(robot_brain.safety.shield is not installed)") from None
    try:
        reflex = load_shield(shield, env)
    except ValueError as exc:  # CriticFileError: a bad critic directory, named in the message
        raise ConfigError(str(exc).splitlines()[0] if str(exc) else f"--shield {shield!r}") from None
    install_shield(env, reflex)
    return env


def make_env(task: str, env_kwargs: dict[str, Any] | None = None, shield: str = "limits", *,
             render_mode: str | None = None, monitor: bool = True):
    """One task env with the shield applied (``none``: no reflex; ``limits``: the task's hard-limit
    reflex; a directory: a trained safety critic via ``robot_brain.safety.shield.load_shield``)."""
    from robot_brain.envs import make

    kwargs = dict(env_kwargs or {})
    dist = kwargs.get("disturbances")
    if dist is not None:  # YAML spelling: "default" or a mapping of Disturbances fields
        from robot_brain.envs import Disturbances

        try:
            kwargs["disturbances"] = (Disturbances.default() if dist == "default"
                                      else Disturbances(**{k: tuple(v) if isinstance(v, list) else v
                                                           for k, v in dict(dist).items()}))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"env_kwargs.disturbances: {exc}") from None
    if shield == "none":
        kwargs["reflex"] = None
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        env = make(task, **kwargs)
    except TypeError as exc:  # an unknown env_kwargs key
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        what = f"unknown key {bad.group(1)!r}" if bad else str(exc).splitlines()[0]
        raise ConfigError(f"env_kwargs for {task}: {what}") from None
    if shield not in SHIELD_CHOICES:
        env = _install_shield(env, shield)
    if monitor:
        from stable_baselines3.common.monitor import Monitor

        env = Monitor(env, info_keywords=("is_success",))
    return env


def _env_factory(task: str, env_kwargs: dict[str, Any], shield: str, seed: int, worker: bool = False):
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
                 vec_env: str = "subproc"):
    """``n_envs`` copies of the task (env ``i`` seeded ``seed + i``); ``SubprocVecEnv`` when
    ``n_envs > 1`` and ``vec_env == "subproc"``."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    subproc = n_envs > 1 and vec_env == "subproc"
    fns = [functools.partial(_env_factory, task, dict(env_kwargs), shield, seed + i, subproc)
           for i in range(n_envs)]
    return SubprocVecEnv(fns) if subproc else DummyVecEnv(fns)
