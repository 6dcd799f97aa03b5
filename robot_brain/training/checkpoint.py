"""Checkpoints that survive a crash at any instant and load without executing pickled code.

A checkpoint ``NAME`` (``ckpt_<steps>`` in a run's ``checkpoints/``, ``best_model`` in ``best/``)
is

- ``NAME.zip``: the model in Stable-Baselines3's own format (``model.save``), so it also opens
  with ``SAC.load`` for users who trust the file;
- ``NAME_replay.npz`` (off-policy algorithms, newest periodic checkpoint only): the replay
  buffer as plain arrays;
- ``NAME_normalize.npz`` (``normalize: true``): the observation/return running statistics;
- ``NAME.json``: its metadata (package versions, checkpoint format, task, algorithm, observation
  and action shapes, counters, and the size and SHA-256 of each file above).

**Crash safety.** Every file is written with :func:`robot_brain.fileio.atomic_write` (temporary
file in the same folder, fsync, rename), so a file is either absent, its complete old version or
its complete new version. The JSON is written last: it marks the checkpoint complete, and the
digests in it tie it to exactly the files it was written with. Replacing a complete checkpoint
of the same name (the best model) first links its files into ``.replacing-NAME/``, removed once
the new JSON is written; a reader that finds ``NAME.json`` not matching its files (killed between
two renames) uses that previous version. Readers take the newest checkpoint whose files are
complete and match (:func:`select_checkpoint`), saying in one line what they skipped; files of a
checkpoint whose JSON was never written are removed by :func:`prune_incomplete`.

**Loading** never calls ``SAC.load``/``load_from_zip_file``: SB3 keeps part of its ``data``
entry (spaces, schedules, ...) as cloudpickle, and unpickling runs arbitrary code. Here the model
is rebuilt from the run's ``config.yaml`` (``yaml.safe_load``) and only the ``*.pth`` entries of
the zip are read, with ``torch.load(weights_only=True)`` (a restricted unpickler that only
accepts tensors and plain containers); counters come from the JSON metadata and the replay
buffer from ``np.load(allow_pickle=False)``. SB3's ``data`` entry is never decoded. File names
in the JSON are plain names of the checkpoint's own files (no separator, no ``..``, no absolute
path, no symbolic link), so a crafted JSON cannot make the loader open anything outside the run;
policy weights that are not finite are refused when loaded.

What remains trusted: the zip's ``.pth`` entries go through PyTorch's weights-only unpickler,
whose allow-list is PyTorch's to maintain; a hostile file can still make the loader allocate a
lot of memory. The digests detect damage and torn updates, not tampering (whoever can edit the
files can edit the JSON). Saving still uses SB3's ``save``, which cloudpickles some objects into
the zip's ``data`` entry; we never read them back.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from robot_brain.fileio import atomic_write, atomic_write_json

from .config import read_json_mapping
from .metrics import COUNTER_KEYS

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.buffers import ReplayBuffer
    from stable_baselines3.common.running_mean_std import RunningMeanStd
    from stable_baselines3.common.vec_env import VecNormalize

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "CheckpointError",
    "drop_replay",
    "find_checkpoint",
    "list_checkpoints",
    "open_checkpoint",
    "prune_incomplete",
    "read_meta",
    "read_policy_weights",
    "read_weights",
    "remove_checkpoint",
    "restore_model",
    "save_checkpoint",
    "select_checkpoint",
    "version_info",
]

CHECKPOINT_FORMAT = 1  # bump when the layout of a checkpoint changes (new keys are optional)
MIN_FORMAT = 1  # oldest format this version reads
_NAME = re.compile(r"^ckpt_(\d+)$")
# The files this module writes and may therefore remove: a checkpoint's data files, the
# temporary files of robot_brain.fileio.atomic_write (".<name>.<random>.tmp") and the backup
# folder of a replacement. Nothing else in a run is ever deleted here.
_STEM = r"(?:ckpt_\d+|best_model)"
_DATA_FILE = re.compile(rf"^({_STEM})(?:\.zip|_replay\.npz|_normalize\.npz)$")
_TEMP_FILE = re.compile(rf"^\.{_STEM}(?:\.zip|\.json|_replay\.npz|_normalize\.npz)\.[^/]+\.tmp$")
_BACKUP = ".replacing-"
_BACKUP_DIR = re.compile(rf"^\.replacing-({_STEM})$")


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
    """A complete checkpoint on disk (its metadata file exists and has been validated)."""

    zip_path: Path
    meta: dict[str, Any]

    @property
    def json_path(self) -> Path:
        return self.zip_path.with_suffix(".json")

    @property
    def steps(self) -> int:
        return int(self.meta["num_timesteps"])

    def sibling(self, key: str) -> Path | None:
        """The file named by ``meta[key]`` (``replay``, ``normalize``): a plain name, checked by
        :func:`read_meta`, so always inside the checkpoint's folder."""
        name = self.meta.get(key)
        return None if not name else self.zip_path.parent / name

    @property
    def files(self) -> list[str]:
        """Names of the checkpoint's data files (the zip first)."""
        return _listed(self.meta, self.zip_path.stem)


def _listed(meta: dict[str, Any], stem: str) -> list[str]:
    if isinstance(meta.get("files"), dict):
        return list(meta["files"])
    return [f"{stem}.zip", *(meta[k] for k in ("replay", "normalize") if meta.get(k))]


# -- metadata ---------------------------------------------------------------------------------
def _nonneg_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _shape(x: Any) -> bool:
    return isinstance(x, list) and all(_nonneg_int(n) for n in x)


def _optional_str(x: Any) -> bool:
    return x is None or isinstance(x, str)


def _digest_entry(x: Any) -> bool:
    return (isinstance(x, dict) and _nonneg_int(x.get("bytes")) and isinstance(x.get("sha256"), str)
            and re.fullmatch(r"[0-9a-f]{64}", x["sha256"]) is not None)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _evaluation(x: Any) -> bool:
    return x is None or (isinstance(x, dict) and _nonneg_int(x.get("step"))
                         and all(_number(x.get(k)) for k in ("success_rate", "return_mean")))


# What each key of a checkpoint's JSON must hold (required keys, then optional ones): one table,
# so every reader gets the same one-line refusal instead of a KeyError or a TypeError.
_META_REQUIRED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "format": (_nonneg_int, "an integer"),
    "num_timesteps": (_nonneg_int, "an integer >= 0"),
    "n_updates": (_nonneg_int, "an integer >= 0"),
    "episode_num": (_nonneg_int, "an integer >= 0"),
    "task": (lambda x: isinstance(x, str), "a string"),
    "algo": (lambda x: isinstance(x, str), "a string"),
    "obs_shape": (_shape, "a list of integers"),
    "action_shape": (_shape, "a list of integers"),
    "versions": (lambda x: isinstance(x, dict), "a mapping"),
    "replay": (_optional_str, "a file name or null"),
    "normalize": (_optional_str, "a file name or null"),
}
_META_OPTIONAL: dict[str, tuple[Callable[[Any], bool], str]] = {
    "files": (lambda x: isinstance(x, dict) and all(_digest_entry(v) for v in x.values()),
              "a mapping of file names to {bytes, sha256}"),
    "counters": (lambda x: isinstance(x, dict) and all(_nonneg_int(x.get(k)) for k in COUNTER_KEYS),
                 f"a mapping of {', '.join(COUNTER_KEYS)} to integers >= 0"),
    "evaluation": (_evaluation, "an evaluation record"),
}


_SUFFIXES = (".zip", "_replay.npz", "_normalize.npz")


def plain_name(name: Any, stem: str, where: str) -> str:
    """``name`` if it is one of the file names of checkpoint ``stem`` (``stem.zip``,
    ``stem_replay.npz``, ``stem_normalize.npz``): a plain name, so a path recorded in a run
    file (a separator, ``..``, an absolute path) can never lead out of its folder.

    :raises CheckpointError: naming ``where`` and the value.
    """
    if not (isinstance(name, str) and name in {stem + suffix for suffix in _SUFFIXES}):
        raise CheckpointError(f"{where}: {name!r} is not a plain file name of checkpoint {stem} "
                              f"(expected {stem}.zip, {stem}_replay.npz or {stem}_normalize.npz)")
    return name


def read_meta(json_path: str | Path) -> dict[str, Any]:
    """The validated metadata of a checkpoint (every key of the tables above checked, every file
    name plain).

    :raises CheckpointError: one line naming the file and the key.
    """
    json_path = Path(json_path)
    meta = read_json_mapping(json_path, "checkpoint metadata", CheckpointError,
                             "a robot-brain checkpoint")
    newer = isinstance(meta.get("format"), int) and meta["format"] > CHECKPOINT_FORMAT
    # a newer format is refused by check_compatible with "upgrade robot-brain"; only the keys
    # needed to say so are checked here
    required = {k: _META_REQUIRED[k] for k in ("format", "num_timesteps")} if newer else _META_REQUIRED
    for key, (ok, expect) in required.items():
        if key not in meta:
            raise CheckpointError(f"checkpoint metadata {json_path} lacks key {key!r}")
        if not ok(meta[key]):
            raise CheckpointError(f"checkpoint metadata {json_path}: {key} must be {expect}, "
                                  f"got {meta[key]!r}")
    for key, (ok, expect) in _META_OPTIONAL.items():
        if key in meta and not ok(meta[key]):
            raise CheckpointError(f"checkpoint metadata {json_path}: {key} must be {expect}")
    stem = json_path.stem
    for key in ("replay", "normalize"):
        if meta.get(key) is not None:
            plain_name(meta[key], stem, f"checkpoint metadata {json_path}: {key}")
    for name in meta.get("files") or {}:
        plain_name(name, stem, f"checkpoint metadata {json_path}: files")
    m = _NAME.match(stem)
    if m and int(m.group(1)) != meta["num_timesteps"]:
        raise CheckpointError(f"checkpoint metadata {json_path} says step {meta['num_timesteps']}, "
                              f"its name step {m.group(1)}")
    return meta


def _file_problem(folder: Path, name: str, files: dict[str, Any] | None) -> str | None:
    """Why ``folder/name`` is not the complete file its checkpoint was written with (or None)."""
    path = folder / name
    if path.is_symlink():
        return f"{path} is a symbolic link"
    if not path.is_file():
        return f"{path} is missing"
    if files is None:  # metadata from before the digests: the archive's own CRCs must hold
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except Exception as exc:  # zipfile raises many types for damaged archives
            return f"{path} is not a readable archive ({type(exc).__name__})"
        return None if bad is None else f"{path} is damaged (entry {bad})"
    want = files.get(name)
    if want is None:
        return f"{path} is not listed in its metadata"
    size = path.stat().st_size
    if size < want["bytes"]:
        return f"{path} is truncated ({size} of {want['bytes']} bytes)"
    if size != want["bytes"]:
        return f"{path} has {size} bytes, its metadata says {want['bytes']} (replaced?)"
    if _sha256(path) != want["sha256"]:
        return f"{path} does not match its metadata (SHA-256 differs: damaged or replaced)"
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_checkpoint(json_path: str | Path, *, training: bool = False) -> Checkpoint:
    """The checkpoint described by ``json_path`` if it is complete: metadata valid and every
    file it needs present and matching (the replay buffer only when ``training``).

    :raises CheckpointError: one line naming the first file that is missing, damaged or not
        the one the metadata was written with.
    """
    json_path = Path(json_path)
    meta = read_meta(json_path)
    ckpt = Checkpoint(json_path.with_suffix(".zip"), meta)
    if isinstance(meta.get("format"), int) and meta["format"] > CHECKPOINT_FORMAT:
        return ckpt  # refused by check_compatible, with the versions
    files = meta.get("files") if isinstance(meta.get("files"), dict) else None
    needed = [ckpt.zip_path.name, *(meta[k] for k in ("normalize", "replay")
                                     if meta.get(k) and (k != "replay" or training))]
    for name in needed:
        problem = _file_problem(json_path.parent, name, files)
        if problem is not None:
            raise CheckpointError(problem)
    return ckpt


# -- saving -----------------------------------------------------------------------------------
def _describe(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": _sha256(path)}


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


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # no hard links on this file system: a copy, written atomically
        data = src.read_bytes()
        atomic_write(dst, lambda f: f.write(data))


def _set_aside(directory: Path, name: str) -> Path | None:
    """Before files of checkpoint ``name`` are overwritten: keep its complete version in
    ``.replacing-NAME/`` (hard links, JSON last), or un-mark a damaged one by removing its JSON.
    Returns the backup folder to remove once the new version is complete."""
    json_path = directory / f"{name}.json"
    backup = directory / f"{_BACKUP}{name}"
    try:
        current = open_checkpoint(json_path) if json_path.exists() else None
    except CheckpointError:
        current = None
    if current is None:
        json_path.unlink(missing_ok=True)  # a damaged version: never mark new files with it
        return backup if backup.exists() else None  # an older backup stays until we are done
    shutil.rmtree(backup, ignore_errors=True)
    backup.mkdir()
    for fname in [*current.files, json_path.name]:  # the JSON last: it marks the backup complete
        if (directory / fname).is_file():
            _link_or_copy(directory / fname, backup / fname)
    return backup


def save_checkpoint(model: BaseAlgorithm, directory: str | Path, name: str, meta: dict[str, Any], *,
                    replay: bool = True, vec_normalize: VecNormalize | None = None,
                    counters: dict[str, int] | None = None, extra: dict[str, Any] | None = None,
                    before_commit: Callable[[], None] | None = None) -> Checkpoint:
    """Save ``model`` as checkpoint ``name`` in ``directory`` (see module docstring).

    :param meta: run metadata (task, algo, shapes ...); counters, versions and digests are added.
    :param replay: also save the replay buffer of an off-policy model.
    :param vec_normalize: the training ``VecNormalize`` wrapper, if any.
    :param counters: the trainer's counters at this step (episodes, violations ...), kept in the
        JSON so that metrics lost in a crash are rebuilt from them, never silently zeroed.
    :param extra: more metadata (the best model's evaluation record).
    :param before_commit: called after the data files are written and before the JSON that
        marks them complete (the trainer writes ``metrics.json`` there, so ``metrics.json`` is
        never behind the newest complete checkpoint).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    backup = _set_aside(directory, name)
    zip_path = directory / f"{name}.zip"
    # atomic_write's file is an io.BufferedWriter; SB3 writes its zip into it without closing it
    atomic_write(zip_path, lambda f: model.save(cast(io.BufferedIOBase, f)))
    files = {zip_path.name: _describe(zip_path)}
    full = {**meta, **(extra or {}), "format": CHECKPOINT_FORMAT, "versions": version_info(),
            "num_timesteps": int(model.num_timesteps), "n_updates": int(getattr(model, "_n_updates", 0)),
            "episode_num": int(getattr(model, "_episode_num", 0)), "replay": None, "normalize": None}
    if counters is not None:
        full["counters"] = {k: int(v) for k, v in counters.items()}
    buffer = getattr(model, "replay_buffer", None)
    if replay and buffer is not None:
        _save_replay(buffer, directory / f"{name}_replay.npz")
        full["replay"] = f"{name}_replay.npz"
    if vec_normalize is not None:
        _save_normalize(vec_normalize, directory / f"{name}_normalize.npz")
        full["normalize"] = f"{name}_normalize.npz"
    for key in ("replay", "normalize"):
        if full[key]:
            files[full[key]] = _describe(directory / full[key])
    full["files"] = files
    if before_commit is not None:
        before_commit()
    atomic_write_json(directory / f"{name}.json", full)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    return Checkpoint(zip_path, full)


def drop_replay(ckpt: Checkpoint) -> Checkpoint:
    """Remove the replay buffer of an older checkpoint (only the newest keeps one): the JSON is
    rewritten without it first, so a crash in between leaves an orphan file (pruned later),
    never a JSON naming a missing file."""
    name = ckpt.meta.get("replay")
    if not name:
        return ckpt
    meta = {**ckpt.meta, "replay": None}
    if isinstance(meta.get("files"), dict):
        meta["files"] = {k: v for k, v in meta["files"].items() if k != name}
    atomic_write_json(ckpt.json_path, meta)
    (ckpt.zip_path.parent / name).unlink(missing_ok=True)
    return Checkpoint(ckpt.zip_path, meta)


def remove_checkpoint(ckpt: Checkpoint) -> None:
    """Delete a checkpoint: its JSON first (it stops being complete), then its files."""
    ckpt.json_path.unlink(missing_ok=True)
    for name in ckpt.files:
        (ckpt.zip_path.parent / name).unlink(missing_ok=True)


def prune_incomplete(directory: str | Path) -> list[str]:
    """Remove what interrupted saves left in ``directory``: data files of a checkpoint whose
    JSON was never written (or that its JSON does not list), temporary files of
    :func:`robot_brain.fileio.atomic_write`, and replacement backups no longer needed. Only
    names this module writes are touched; a checkpoint whose JSON exists but is damaged is left
    as it is (it is not an orphan). Returns the names removed.
    """
    directory = Path(directory)
    removed: list[str] = []
    if not directory.is_dir():
        return removed
    for path in sorted(directory.iterdir()):
        name = path.name
        backup = _BACKUP_DIR.match(name)
        if backup and path.is_dir() and not path.is_symlink():
            try:
                open_checkpoint(directory / f"{backup.group(1)}.json")
            except CheckpointError:
                continue  # the replacement did not complete: this is the complete version
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name + "/")
        elif _TEMP_FILE.match(name) and not path.is_dir():
            path.unlink(missing_ok=True)
            removed.append(name)
        elif (data := _DATA_FILE.match(name)) and not path.is_dir():
            js = directory / f"{data.group(1)}.json"
            if js.exists() or js.is_symlink():
                try:
                    if name in _listed(read_meta(js), data.group(1)):
                        continue
                except CheckpointError:
                    continue  # damaged metadata: not ours to judge here
            path.unlink(missing_ok=True)
            removed.append(name)
    return removed


# -- finding ----------------------------------------------------------------------------------
def list_checkpoints(directory: str | Path) -> list[Checkpoint]:
    """Periodic checkpoints (``ckpt_<steps>``) in ``directory`` whose metadata is valid, oldest
    first (their files are not verified; :func:`select_checkpoint` does that)."""
    out = []
    for js in _periodic_jsons(Path(directory)):
        try:
            out.append(Checkpoint(js.with_suffix(".zip"), read_meta(js)))
        except CheckpointError:
            continue
    return sorted(out, key=lambda c: c.steps)


def _periodic_jsons(directory: Path) -> Iterator[Path]:
    if directory.is_dir():
        for js in directory.glob("ckpt_*.json"):
            if _NAME.match(js.stem):
                yield js


def _candidates(run_dir: Path, which: str, training: bool) -> list[Path]:
    """Metadata files to try, best first: the best model (for ``best``), then the periodic
    checkpoints newest first; each followed by its replacement backup."""
    names: list[tuple[Path, str]] = []
    if which == "best" and not training:
        names.append((run_dir / "best", "best_model"))
    ck = run_dir / "checkpoints"
    steps: set[int] = set()
    if ck.is_dir():
        for path in ck.iterdir():
            m = re.match(rf"^(?:{re.escape(_BACKUP)})?ckpt_(\d+)(?:\.json)?$", path.name)
            if m:
                steps.add(int(m.group(1)))
    names += [(ck, f"ckpt_{n}") for n in sorted(steps, reverse=True)]
    out = []
    for folder, name in names:
        for js in (folder / f"{name}.json", folder / f"{_BACKUP}{name}" / f"{name}.json"):
            if js.exists() or js.is_symlink():
                out.append(js)
    return out


def select_checkpoint(run_dir: str | Path, which: str = "last", *,
                      training: bool = False) -> tuple[Checkpoint | None, str | None]:
    """The newest complete checkpoint of a run (``best``: the best model first) and a one-line
    note naming what was skipped and why (``None`` when nothing was).

    :param training: the checkpoint will be resumed: its replay buffer must be complete too.
    :returns: ``(None, None)`` when the run has no checkpoint at all.
    :raises CheckpointError: checkpoints exist but none is complete (naming each problem).
    """
    run_dir = Path(run_dir)
    skipped: list[str] = []
    for js in _candidates(run_dir, which, training):
        try:
            ckpt = open_checkpoint(js, training=training)
        except CheckpointError as exc:
            skipped.append(str(exc))
            continue
        if not skipped:
            return ckpt, None
        prefix = f"{run_dir}{os.sep}"  # the note names files within the run, to stay short
        reasons = "; ".join(s.replace(prefix, "") for s in skipped)
        return ckpt, f"{reasons}: using {str(ckpt.zip_path).replace(prefix, '')} (step {ckpt.steps})"
    if skipped:
        hint = "; delete the damaged checkpoint files to start the run again from step 0" if training else ""
        raise CheckpointError(f"run {run_dir} has no usable checkpoint: {'; '.join(skipped)}{hint}")
    return None, None


def find_checkpoint(run_dir: str | Path, which: str = "last") -> Checkpoint:
    """The ``last`` complete periodic checkpoint, or the ``best`` (falling back to the last) of
    a run (:func:`select_checkpoint` without the note)."""
    ckpt, _ = select_checkpoint(run_dir, which)
    if ckpt is None:
        raise CheckpointError(f"run directory {run_dir} has no complete checkpoint")
    return ckpt


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:120]}" if text else type(exc).__name__


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
    except CheckpointError:
        raise
    except Exception as exc:  # zipfile/zlib raise many types for a damaged archive
        raise CheckpointError(f"{zip_path} is not a readable checkpoint archive "
                              f"({_first_line(exc)})") from None
    if not isinstance(params.get("policy"), dict):
        raise CheckpointError(f"{zip_path} holds no policy weights")
    return params, variables


def _check_finite(policy: dict[str, Any], zip_path: Path) -> None:
    """Refuse policy weights with NaN or infinite values (a diverged training): acting with them
    would give NaN actions, which the controllers would have to catch."""
    import torch

    for key, value in policy.items():
        if not torch.is_tensor(value):
            raise CheckpointError(f"{zip_path}: policy entry {key!r} is not a tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{zip_path} holds non-finite policy weights ({key}: NaN or inf); "
                                  f"the training diverged before this checkpoint")


def read_policy_weights(ckpt: Checkpoint) -> dict[str, Any]:
    """The policy's state dict of a checkpoint (weights-only, finite), for loading a part of it
    (a circuit into a body of another length).

    :raises CheckpointError: unreadable or non-finite weights (one line naming the file).
    """
    params, _ = read_weights(ckpt.zip_path)
    _check_finite(params["policy"], ckpt.zip_path)
    return params["policy"]


_REPLAY_KEYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _load_replay(buffer: ReplayBuffer, path: Path) -> None:
    try:
        with np.load(path, allow_pickle=False) as data:
            _fill_replay(buffer, data, path)
    except CheckpointError:
        raise
    except Exception as exc:  # np.load/zipfile on a damaged or foreign file
        raise CheckpointError(f"replay buffer {path} is unreadable ({_first_line(exc)})") from None


def _fill_replay(buffer: ReplayBuffer, data: Any, path: Path) -> None:
    n_envs = int(data["n_envs"])
    if n_envs != buffer.n_envs:
        raise CheckpointError(f"replay buffer {path} was recorded with {n_envs} envs, "
                              f"this run has {buffer.n_envs}")
    n = len(data["actions"])
    if n > buffer.buffer_size:
        raise CheckpointError(f"replay buffer {path} holds {n} transitions, more than "
                              f"buffer_size {buffer.buffer_size}")
    for key in _REPLAY_KEYS:
        if key in data and getattr(buffer, key, None) is not None:
            target = getattr(buffer, key)
            if data[key].shape != (n, *target.shape[1:]):
                raise CheckpointError(f"replay buffer {path}: {key} has shape {data[key].shape}, "
                                      f"expected {(n, *target.shape[1:])}")
            target[:n] = data[key]
    full = bool(data["full"]) and n == buffer.buffer_size
    buffer.full = full
    buffer.pos = int(data["pos"]) % buffer.buffer_size if full else n % buffer.buffer_size


def _load_normalize(vec_normalize: VecNormalize, path: Path) -> None:
    obs_rms = cast("RunningMeanStd", vec_normalize.obs_rms)  # Box observations (see _save_normalize)
    stats = _read_normalize(path)
    obs_rms.mean, obs_rms.var, obs_rms.count = stats["obs_mean"], stats["obs_var"], float(stats["obs_count"])
    ret = vec_normalize.ret_rms
    ret.mean, ret.var, ret.count = stats["ret_mean"], stats["ret_var"], float(stats["ret_count"])


def _read_normalize(path: Path) -> dict[str, np.ndarray]:
    keys = ("obs_mean", "obs_var", "obs_count", "ret_mean", "ret_var", "ret_count", "clip_obs", "epsilon")
    try:
        with np.load(path, allow_pickle=False) as d:
            return {k: np.array(d[k]) for k in keys}
    except Exception as exc:  # np.load/zipfile on a damaged or foreign file
        raise CheckpointError(f"normalisation statistics {path} are unreadable "
                              f"({_first_line(exc)})") from None


def restore_model(model: BaseAlgorithm, ckpt: Checkpoint, *, policy_only: bool = False,
                  replay: bool = True, vec_normalize: VecNormalize | None = None) -> None:
    """Load a checkpoint's weights (and, for training, optimizer states, counters, replay buffer
    and normalisation statistics) into a model built from the same configuration.

    :raises CheckpointError: unreadable or non-finite weights, weights that do not fit the
        network, a missing or damaged replay buffer (one line naming the file).
    """
    import torch

    params, variables = read_weights(ckpt.zip_path)
    _check_finite(params["policy"], ckpt.zip_path)
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
    except (RuntimeError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {ckpt.zip_path} does not fit the network of this run's "
                              f"configuration ({_first_line(exc)})") from None
    if policy_only:
        return
    model.num_timesteps = int(ckpt.meta["num_timesteps"])
    model._n_updates = int(ckpt.meta.get("n_updates", 0))
    model._episode_num = int(ckpt.meta.get("episode_num", 0))
    rb = ckpt.sibling("replay")
    buffer = getattr(model, "replay_buffer", None)  # off-policy algorithms have one
    if replay and rb is not None and buffer is not None:
        if not rb.is_file() or rb.is_symlink():
            raise CheckpointError(f"checkpoint {ckpt.zip_path}: replay buffer {rb} is missing")
        _load_replay(buffer, rb)
    norm = ckpt.sibling("normalize")
    if vec_normalize is not None and norm is not None and norm.is_file():
        _load_normalize(vec_normalize, norm)


def load_normalize_stats(ckpt: Checkpoint) -> dict[str, np.ndarray] | None:
    """Observation statistics of a checkpoint trained with ``normalize: true`` (else ``None``)."""
    path = ckpt.sibling("normalize")
    if path is None or not path.is_file():
        return None
    return _read_normalize(path)
