"""Run directories: layout, the resolved ``config.yaml``, environments with the shield applied.

A run lives in ``runs/<task>/<algo>-<timestamp>/``::

    config.yaml          the fully resolved configuration (task, algo, seed, shield, hyperparams)
                         plus the package versions that wrote it
    metrics.json         learning curve, episodes, evaluations, final evaluation, throughput
    checkpoints/         ckpt_<steps>.zip/.json (+ _replay.npz): periodic and last checkpoints
    best/                best_model.zip/.json: best periodic evaluation (success, then return)
    tb/                  TensorBoard event files
    .lock                held (``flock``) by the process training the run: see :func:`claim_run`

A run is claimed before anything is written into it (:func:`claim_run`): two processes
training into one directory would interleave their checkpoints, so the second one gets a
one-line error and writes nothing. The claim is an advisory lock on ``.lock``, which the kernel
releases when its process ends, however it ends, so a killed run never leaves a stale claim.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import yaml

from robot_brain.fileio import atomic_write_text

from .checkpoint import CheckpointError, version_info
from .config import ALGOS, ConfigError, read_text, with_run_defaults

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

__all__ = [
    "LOCK_NAME",
    "RunClaim",
    "RunConfig",
    "claim_dir",
    "claim_run",
    "make_env",
    "make_vec_env",
    "new_run_dir",
    "prune_run_temp",
    "read_run_config",
    "run_shield",
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


def run_shield(run_dir: str | Path, config: RunConfig) -> str:
    """The shield a run's policy is evaluated with: with ``learn_critic``, the critic the run
    learned (``RUN_DIR/critic``) once it has written one; else the shield it was started with."""
    learned = Path(run_dir) / "critic"
    if config.hyperparams.get("learn_critic") and (learned / "critic.json").is_file():
        return str(learned)
    return config.shield


def new_run_dir(out: str | Path | None, task: str, algo: str) -> Path:
    """``out`` if given (must not hold a run already), else ``runs/<task>/<algo>-<timestamp>``
    (with a numeric suffix if that exists; created exclusively, so two runs started in the same
    second get two directories). Call it only once the configuration is validated: it creates
    the directory. The claim (:func:`claim_run`) checks ``out`` again under the lock."""
    if out is not None:
        path = Path(out)
        if (path / "config.yaml").exists():
            raise ConfigError(f"--out {path} already holds a run; use --resume {path} to continue it")
        _make_dir(path)
        return path
    base = Path("runs") / task / f"{algo}-{time.strftime('%Y%m%d-%H%M%S')}"
    _make_dir(base.parent)
    path, i = base, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            path = base.with_name(f"{base.name}-{i}")
            i += 1


def _make_dir(path: Path) -> None:
    """``mkdir -p`` with a one-line error (``--out`` naming a file, no permission ...)."""
    from robot_brain.fileio import make_dir

    if (why := make_dir(path)) is not None:
        raise ConfigError(f"cannot create run directory: {why}")


LOCK_NAME = ".lock"


def _lock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


class RunClaim:
    """The exclusive claim of one process on a run directory (see the module docstring);
    released by :meth:`release`, on leaving a ``with`` block, or by the kernel when the process
    ends."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir = run_dir
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def claim_dir(directory: Path, command: str, *, what: str = "folder", lock_name: str = LOCK_NAME) -> RunClaim:
    """An exclusive lock of this process on an existing ``directory`` (a ``lock_name`` file in
    it), released by the claim or by the kernel when the process ends.

    :raises ConfigError: one line: the lock file cannot be made, or another ``command`` process
        holds the claim.
    """
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(directory / lock_name, flags, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot claim {what} {directory} ({exc.strerror})") from None
    try:
        _lock(fd)
    except OSError:
        os.close(fd)
        raise ConfigError(f"{what} {directory} is in use by another '{command}' process; "
                          f"wait for it to end (or stop it) first") from None
    return RunClaim(directory, fd)


def claim_run(run_dir: str | Path, *, new: bool) -> RunClaim:
    """Claim ``run_dir`` for training, before anything is written into it.

    :param new: a new run: the directory is created if needed and must not hold a run yet
        (checked under the lock, so of two processes started with the same ``--out`` exactly
        one trains and the other gets an error having written nothing).
    :raises ConfigError: another process holds the claim, or (``new``) the directory already
        holds a run.
    :raises CheckpointError: (not ``new``) the directory does not exist.
    """
    run_dir = Path(run_dir)
    if new:
        _make_dir(run_dir)
    elif not run_dir.is_dir():
        raise CheckpointError(f"run directory {str(run_dir)!r} not found")
    claim = claim_dir(run_dir, "robot-brain train", what="run directory")
    if new and (run_dir / "config.yaml").exists():
        claim.release()
        raise ConfigError(f"--out {run_dir} already holds a run; use --resume {run_dir} to continue it")
    return claim


_RUN_TEMP = re.compile(r"^\.(?:config\.yaml|metrics\.json)\.[^/]+\.tmp$")


def prune_run_temp(run_dir: str | Path) -> list[str]:
    """Remove temporary files that :func:`robot_brain.fileio.atomic_write` left in the run's
    top folder when its process was killed mid-write (``.metrics.json.<random>.tmp``); only
    these names. Call it while holding the run's claim."""
    removed = []
    run_dir = Path(run_dir)
    for path in run_dir.iterdir() if run_dir.is_dir() else ():
        if _RUN_TEMP.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def write_run_config(run_dir: Path, config: RunConfig) -> Path:
    path = run_dir / "config.yaml"
    header = ("# Resolved configuration of this run (robot-brain train). Reproduce with:\n"
              f"#   robot-brain train {config.task} --algo {config.algo} --seed {config.seed} "
              f"--shield {config.shield} --config {path}\n")
    body = yaml.safe_dump(config.as_dict(), sort_keys=False, default_flow_style=None)
    return atomic_write_text(path, header + body)


def _load_run_yaml(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {str(run_dir)!r} not found")
    path = run_dir / "config.yaml"
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"{run_dir} is not a training run (no config.yaml)")
    try:
        data = yaml.safe_load(read_text(path, "run configuration", CheckpointError))
    except (yaml.YAMLError, RecursionError):
        raise CheckpointError(f"{path} is not valid YAML") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a run configuration")
    return path, data


def read_run_config(run_dir: str | Path) -> RunConfig:
    """The configuration of an existing run (``yaml.safe_load``; every key validated: the task
    must exist, the seed be an integer >= 0, the hyperparameters pass the same checks as a new
    run's).

    :raises CheckpointError: no run there, or a file that is not a run configuration.
    :raises ConfigError: a bad key or value (one line naming the file and the key).
    """
    from robot_brain.envs import resolve_task

    path, data = _load_run_yaml(Path(run_dir))
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
    if not isinstance(data["task"], str):
        raise ConfigError(f"{path}: task must be a task name, got {data['task']!r}")
    try:
        task = resolve_task(data["task"]).name
    except ValueError as exc:  # UnknownTaskError, with a suggestion
        raise ConfigError(f"{path}: {exc}") from None
    seed, shield = data.get("seed", 0), data.get("shield", "limits")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"{path}: seed must be an integer >= 0, got {seed!r}")
    if not isinstance(shield, str):
        raise ConfigError(f"{path}: shield must be none, limits or a critic directory, got {shield!r}")
    hp = with_run_defaults(algo, data["hyperparams"], str(path))
    return RunConfig(task=task, algo=algo, seed=seed, shield=shield, hyperparams=hp)


def make_env(task: str, env_kwargs: dict[str, Any] | None = None, shield: str = "limits", *,
             render_mode: str | None = None, renderer: str = "auto", monitor: bool = True,
             record_critic: bool = False) -> gym.Env:
    """One task env with its options (``env_kwargs``: fields of the task's config, e.g.
    ``max_step`` or ``disturbances``) and the shield (a spec: ``none``, ``limits`` or a critic
    directory; see :mod:`robot_brain.safety.shield`). ``record_critic`` records the critic's
    transitions for online updates (:class:`robot_brain.critic_training.online.CriticDataRecorder`;
    the shield must be a critic).

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
    if record_critic:
        from robot_brain.critic_training.online import CriticDataRecorder

        try:
            env = CriticDataRecorder(env)
        except ValueError as exc:
            raise ConfigError(f"learn_critic: {exc}") from None
    if monitor:
        from stable_baselines3.common.monitor import Monitor

        env = Monitor(env, info_keywords=("is_success",))
    return env


def _env_factory(task: str, env_kwargs: dict[str, Any], shield: str, seed: int,
                 worker: bool = False, record_critic: bool = False) -> gym.Env:
    if worker:
        # Ctrl-C reaches the whole process group: the main process turns it into a checkpoint, so
        # the env workers must stay alive (SB3's worker loop would exit on KeyboardInterrupt).
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = make_env(task, env_kwargs, shield, record_critic=record_critic)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def make_vec_env(task: str, env_kwargs: dict[str, Any], shield: str, *, n_envs: int, seed: int,
                 vec_env: str = "subproc", record_critic: bool = False) -> VecEnv:
    """``n_envs`` copies of the task (env ``i`` seeded ``seed + i``); ``SubprocVecEnv`` when
    ``n_envs > 1`` and ``vec_env == "subproc"``; ``record_critic`` as in :func:`make_env`."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    subproc = n_envs > 1 and vec_env == "subproc"
    fns: list[Callable[[], gym.Env]] = [
        functools.partial(_env_factory, task, dict(env_kwargs), shield, seed + i, subproc, record_critic)
        for i in range(n_envs)]
    return SubprocVecEnv(fns) if subproc else DummyVecEnv(fns)
