"""Checkpoints that load without executing pickled code.

A checkpoint ``NAME`` in a run's ``checkpoints/`` folder is

- ``NAME.zip``: the model in Stable-Baselines3's own format (``model.save``), so it also opens
  with ``SAC.load`` for users who trust the file;
- ``NAME.json``: its metadata (package versions, checkpoint format, task, algorithm, observation
  and action shapes, counters); written last, so a checkpoint without it is incomplete and ignored;
- ``NAME_replay.npz`` (off-policy algorithms): the replay buffer as plain arrays;
- ``NAME_normalize.npz`` (``normalize: true``): the observation/return running statistics.

**Loading** never calls ``SAC.load``/``load_from_zip_file``: SB3 keeps part of its ``data``
entry (spaces, schedules, ...) as cloudpickle, and unpickling runs arbitrary code. Here the model
is rebuilt from the run's ``config.yaml`` (``yaml.safe_load``) and only the ``*.pth`` entries of
the zip are read, with ``torch.load(weights_only=True)`` (a restricted unpickler that only
accepts tensors and plain containers); counters come from the JSON metadata and the replay
buffer from ``np.load(allow_pickle=False)``. SB3's ``data`` entry is never decoded.

What remains trusted: the zip's ``.pth`` entries go through PyTorch's weights-only unpickler,
whose allow-list is PyTorch's to maintain; a hostile file can still make the loader allocate a
lot of memory. Saving still uses SB3's ``save``, which cloudpickles some objects into the zip's
``data`` entry; we never read them back.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from robot_brain.fileio import atomic_write, atomic_write_json

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.buffers import ReplayBuffer
    from stable_baselines3.common.running_mean_std import RunningMeanStd
    from stable_baselines3.common.vec_env import VecNormalize

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "CheckpointError",
    "find_checkpoint",
    "list_checkpoints",
    "read_weights",
    "restore_model",
    "save_checkpoint",
    "version_info",
]

CHECKPOINT_FORMAT = 1  # bump when the layout of a checkpoint changes
MIN_FORMAT = 1  # oldest format this version reads
_NAME = re.compile(r"^ckpt_(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here; the message says why (one line)."""


def version_info() -> dict[str, str]:
    """Versions stored with every run and checkpoint."""
    import stable_baselines3
    import torch

    import robot_brain

    return {"robot_brain": robot_brain.__version__, "stable_baselines3": stable_baselines3.__version__,
            "torch": torch.__version__.split("+")[0]}


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint on disk (its metadata file exists)."""

    zip_path: Path
    meta: dict[str, Any]

    @property
    def steps(self) -> int:
        return int(self.meta["num_timesteps"])

    def sibling(self, key: str) -> Path | None:
        name = self.meta.get(key)
        return None if not name else self.zip_path.parent / name


# -- saving -----------------------------------------------------------------------------------
def _save_replay(buffer: ReplayBuffer, path: Path) -> None:
    """The filled part of an SB3 ``ReplayBuffer`` as plain arrays (no pickle)."""
    n = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {"pos": np.array(buffer.pos), "full": np.array(buffer.full),
              "buffer_size": np.array(buffer.buffer_size), "n_envs": np.array(buffer.n_envs)}
    for key in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        value = getattr(buffer, key, None)
        if value is not None:
            arrays[key] = value[:n]
    atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]  # numpy's stub: **arrays might fill allow_pickle


def _save_normalize(vec_normalize: VecNormalize, path: Path) -> None:
    # Box observations: one RunningMeanStd (SB3 types obs_rms for Dict spaces as well)
    rms, ret = cast("RunningMeanStd", vec_normalize.obs_rms), vec_normalize.ret_rms
    arrays = dict(obs_mean=rms.mean, obs_var=rms.var, obs_count=np.array(rms.count),
                  ret_mean=ret.mean, ret_var=ret.var, ret_count=np.array(ret.count),
                  clip_obs=np.array(vec_normalize.clip_obs),
                  clip_reward=np.array(vec_normalize.clip_reward),
                  epsilon=np.array(vec_normalize.epsilon))
    atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]  # numpy's stub: **arrays might fill allow_pickle


def save_checkpoint(model: BaseAlgorithm, directory: str | Path, name: str, meta: dict[str, Any], *,
                    replay: bool = True, vec_normalize: VecNormalize | None = None) -> Checkpoint:
    """Save ``model`` as checkpoint ``name`` in ``directory`` (see module docstring).

    :param meta: run metadata (task, algo, shapes ...); counters and versions are added here.
    :param replay: also save the replay buffer of an off-policy model.
    :param vec_normalize: the training ``VecNormalize`` wrapper, if any.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    zip_path = directory / f"{name}.zip"
    model.save(zip_path)
    full = {**meta, "format": CHECKPOINT_FORMAT, "versions": version_info(),
            "num_timesteps": int(model.num_timesteps), "n_updates": int(getattr(model, "_n_updates", 0)),
            "episode_num": int(getattr(model, "_episode_num", 0)), "replay": None, "normalize": None}
    buffer = getattr(model, "replay_buffer", None)
    if replay and buffer is not None:
        _save_replay(buffer, directory / f"{name}_replay.npz")
        full["replay"] = f"{name}_replay.npz"
    if vec_normalize is not None:
        _save_normalize(vec_normalize, directory / f"{name}_normalize.npz")
        full["normalize"] = f"{name}_normalize.npz"
    atomic_write_json(directory / f"{name}.json", full)
    return Checkpoint(zip_path, full)


# -- finding ----------------------------------------------------------------------------------
def _read_meta(json_path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint metadata {json_path} is unreadable ({exc})") from None
    if not isinstance(meta, dict) or "num_timesteps" not in meta:
        raise CheckpointError(f"checkpoint metadata {json_path} is not a robot-brain checkpoint")
    return meta


def list_checkpoints(directory: str | Path) -> list[Checkpoint]:
    """Complete periodic checkpoints (``ckpt_<steps>``) in ``directory``, oldest first."""
    directory = Path(directory)
    out = []
    if directory.is_dir():
        for js in directory.glob("ckpt_*.json"):
            if _NAME.match(js.stem) and js.with_suffix(".zip").is_file():
                out.append(Checkpoint(js.with_suffix(".zip"), _read_meta(js)))
    return sorted(out, key=lambda c: c.steps)


def find_checkpoint(run_dir: str | Path, which: str = "last") -> Checkpoint:
    """The ``last`` periodic checkpoint, or the ``best`` (falling back to the last) of a run."""
    run_dir = Path(run_dir)
    if which == "best":
        js = run_dir / "best" / "best_model.json"
        if js.is_file() and js.with_suffix(".zip").is_file():
            return Checkpoint(js.with_suffix(".zip"), _read_meta(js))
    ckpts = list_checkpoints(run_dir / "checkpoints")
    if not ckpts:
        raise CheckpointError(f"run directory {run_dir} has no complete checkpoint")
    return ckpts[-1]


# -- loading ----------------------------------------------------------------------------------
def check_compatible(ckpt: Checkpoint, *, task: str | None = None, algo: str | None = None,
                     obs_shape: tuple[int, ...] | None = None,
                     action_shape: tuple[int, ...] | None = None) -> str | None:
    """Refuse a checkpoint that cannot work here; returns a note when it comes from another
    package version but can be loaded (same checkpoint format).

    :raises CheckpointError: other format, task, algorithm or observation/action shape.
    """
    meta = ckpt.meta
    fmt = meta.get("format")
    theirs = (meta.get("versions") or {}).get("robot_brain", "unknown")
    ours = version_info()["robot_brain"]
    if not isinstance(fmt, int) or fmt > CHECKPOINT_FORMAT or fmt < MIN_FORMAT:
        raise CheckpointError(
            f"checkpoint {ckpt.zip_path} has format {fmt} (robot-brain {theirs}); robot-brain {ours} "
            f"reads formats {MIN_FORMAT}..{CHECKPOINT_FORMAT}"
            + ("; upgrade robot-brain" if isinstance(fmt, int) and fmt > CHECKPOINT_FORMAT else ""))
    if task is not None and meta.get("task") != task:
        raise CheckpointError(f"checkpoint {ckpt.zip_path} was trained on task {meta.get('task')!r}, "
                              f"not {task!r}")
    if algo is not None and meta.get("algo") != algo:
        raise CheckpointError(f"checkpoint {ckpt.zip_path} was trained with {meta.get('algo')}, not {algo}")
    for what, want in (("observation", obs_shape), ("action", action_shape)):
        have = meta.get(f"{what[:3] if what == 'observation' else what}_shape")
        if want is not None and (have is None or tuple(have) != tuple(want)):
            raise CheckpointError(f"checkpoint {ckpt.zip_path} expects {what}s of shape "
                                  f"{tuple(have) if have else None}, the environment gives {tuple(want)}")
    if theirs != ours:
        return (f"checkpoint from robot-brain {theirs}, this is {ours}; loaded (same checkpoint "
                f"format {fmt})")
    return None


def read_weights(zip_path: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """State dicts (``policy``, optimizers ...) and PyTorch variables of an SB3 zip, read with
    ``torch.load(weights_only=True)``; the pickled ``data`` entry is not touched."""
    import torch

    params: dict[str, Any] = {}
    variables = None
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for name in archive.namelist():
                if not name.endswith(".pth"):
                    continue
                raw = io.BytesIO(archive.read(name))
                try:
                    obj = torch.load(raw, map_location="cpu", weights_only=True)
                except Exception as exc:  # the weights-only unpickler refused something
                    raise CheckpointError(f"{zip_path}: entry {name} is not plain weights "
                                          f"({str(exc).splitlines()[0][:120]})") from None
                if name in ("pytorch_variables.pth", "tensors.pth"):
                    variables = obj
                else:
                    params[name[: -len(".pth")]] = obj
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{zip_path} is not a readable checkpoint archive ({exc})") from None
    if "policy" not in params:
        raise CheckpointError(f"{zip_path} holds no policy weights")
    return params, variables


def _load_replay(buffer: ReplayBuffer, path: Path) -> None:
    with np.load(path, allow_pickle=False) as data:
        n_envs = int(data["n_envs"])
        if n_envs != buffer.n_envs:
            raise CheckpointError(f"replay buffer {path} was recorded with {n_envs} envs, "
                                  f"this run has {buffer.n_envs}")
        n = len(data["actions"])
        if n > buffer.buffer_size:
            raise CheckpointError(f"replay buffer {path} holds {n} transitions, more than "
                                  f"buffer_size {buffer.buffer_size}")
        for key in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
            if key in data and getattr(buffer, key, None) is not None:
                target = getattr(buffer, key)
                if data[key].shape[1:] != target.shape[1:]:
                    raise CheckpointError(f"replay buffer {path}: {key} has shape {data[key].shape[1:]}, "
                                          f"expected {target.shape[1:]}")
                target[:n] = data[key]
        full = bool(data["full"]) and n == buffer.buffer_size
        buffer.full = full
        buffer.pos = int(data["pos"]) if full else n % buffer.buffer_size


def _load_normalize(vec_normalize: VecNormalize, path: Path) -> None:
    obs_rms = cast("RunningMeanStd", vec_normalize.obs_rms)  # Box observations (see _save_normalize)
    with np.load(path, allow_pickle=False) as d:
        obs_rms.mean = d["obs_mean"]
        obs_rms.var = d["obs_var"]
        obs_rms.count = float(d["obs_count"])
        vec_normalize.ret_rms.mean = d["ret_mean"]
        vec_normalize.ret_rms.var = d["ret_var"]
        vec_normalize.ret_rms.count = float(d["ret_count"])


def restore_model(model: BaseAlgorithm, ckpt: Checkpoint, *, policy_only: bool = False,
                  replay: bool = True, vec_normalize: VecNormalize | None = None) -> None:
    """Load a checkpoint's weights (and, for training, optimizer states, counters, replay buffer
    and normalisation statistics) into a model built from the same configuration."""
    import torch

    params, variables = read_weights(ckpt.zip_path)
    try:
        if policy_only:
            model.policy.load_state_dict(params["policy"])
        else:
            model.set_parameters(params, exact_match=True, device="cpu")
            for name, value in (variables or {}).items():
                target: Any = model
                for part in name.split("."):
                    target = getattr(target, part)
                with torch.no_grad():
                    target.data.copy_(value.data if hasattr(value, "data") else value)
    except (RuntimeError, ValueError, KeyError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {ckpt.zip_path} does not fit the network of this run's "
                              f"configuration ({first})") from None
    if policy_only:
        return
    model.num_timesteps = int(ckpt.meta["num_timesteps"])
    model._n_updates = int(ckpt.meta.get("n_updates", 0))
    model._episode_num = int(ckpt.meta.get("episode_num", 0))
    rb = ckpt.sibling("replay")
    buffer = getattr(model, "replay_buffer", None)  # off-policy algorithms have one
    if replay and rb is not None and buffer is not None:
        if not rb.is_file():
            raise CheckpointError(f"checkpoint {ckpt.zip_path}: replay buffer {rb.name} is missing")
        _load_replay(buffer, rb)
    norm = ckpt.sibling("normalize")
    if vec_normalize is not None and norm is not None and norm.is_file():
        _load_normalize(vec_normalize, norm)


def load_normalize_stats(ckpt: Checkpoint) -> dict[str, np.ndarray] | None:
    """Observation statistics of a checkpoint trained with ``normalize: true`` (else ``None``)."""
    path = ckpt.sibling("normalize")
    if path is None or not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as d:
        return {k: np.array(d[k]) for k in ("obs_mean", "obs_var", "clip_obs", "epsilon")}
