"""Atomic file writes: readers see the old file or the complete new one, never a partial one.

One implementation for every file the project writes (metrics, configs, checkpoints, critics,
replay buffers): a temporary file in the same folder, flushed and fsynced, then ``os.replace``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_savefig", "atomic_write", "atomic_write_json", "atomic_write_text", "jsonable",
           "unwritable"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then replace ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual file mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars/arrays become Python numbers and lists, paths
    strings, tuples lists, and non-finite floats ``None`` (strict JSON has no NaN/inf)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy array or scalar
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def atomic_write_json(path: str | os.PathLike, data: Any, *, indent: int = 2) -> Path:
    """Write ``data`` (made :func:`jsonable`) as strict JSON atomically."""
    return atomic_write_text(path, json.dumps(jsonable(data), indent=indent, allow_nan=False) + "\n")


def atomic_savefig(fig: Any, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a matplotlib figure atomically; the format follows the suffix (``.png``, ``.svg``,
    ``.pdf``)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi))


def unwritable(path: str | os.PathLike, *, directory: bool = False) -> str | None:
    """Why ``path`` (a file, or with ``directory`` a folder) cannot be written, or ``None``.

    Checked for real and without side effects: the nearest existing folder on the way must be a
    folder in which a temporary file (or, when folders are still to be made, a temporary
    folder) can be created and removed. Commands call it before their work, so a typo in an
    output path costs nothing.
    """
    p = Path(path)
    if directory and p.exists() and not p.is_dir():
        return f"{p} exists and is not a folder"
    if not directory and p.is_dir():
        return f"{p} is a folder, not a file"
    target = p if directory else p.parent
    existing = target
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        if existing == target:
            fd, probe = tempfile.mkstemp(prefix=".robot-brain-probe.", dir=existing)
            os.close(fd)
            os.unlink(probe)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".robot-brain-probe.", dir=existing))
    except OSError as exc:
        return f"cannot write in {existing} ({exc.strerror or type(exc).__name__})"
    return None


def make_dir(path: str | os.PathLike) -> str | None:
    """``mkdir -p path``; returns why it could not (a file of that name, no permission ...) as
    one line, or ``None`` once the folder exists."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        return f"{p} exists and is not a folder"
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {p} ({exc.strerror or type(exc).__name__})"
    return None
