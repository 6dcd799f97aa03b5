"""Shared pieces of the command line: one-line errors, option types, output and file helpers.

Every subcommand module (``tasks``, ``sim``, ``demo``, ``bench`` ...) exposes ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; :mod:`robot_brain.cli` wires them into one
parser. Heavy imports (mujoco, gymnasium, matplotlib) happen inside ``run`` so that ``--help``
and ``tasks`` answer at once and ``MUJOCO_GL`` can still be chosen before mujoco is imported.

Errors the user can fix (a bad option value, an unknown task) are raised as :class:`CliError`:
``main`` prints them as one line and exits with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "EXIT_USAGE",
    "CliError",
    "CliParser",
    "RenderError",
    "atomic_write_json",
    "console",
    "ensure_headless_gl",
    "finite_float",
    "jsonable",
    "nonneg_int",
    "output_path",
    "positive_float",
    "positive_int",
]

EXIT_USAGE = 2  # bad command line or option value (argparse's convention)
EXIT_FAILURE = 1  # the command ran but could not finish (e.g. no OpenGL for rendering)

OSMESA_HINT = ("install the software renderer with `apt-get install -y libosmesa6` and set "
               "MUJOCO_GL=osmesa")


class CliError(Exception):
    """An error the user can fix; printed as one line, exit code ``code`` (default 2)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class RenderError(CliError):
    """Offscreen rendering is unavailable (no OpenGL backend); exit code 1."""

    def __init__(self, cause: BaseException) -> None:
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        gl = os.environ.get("MUJOCO_GL", "<unset>")
        super().__init__(f"offscreen rendering failed (MUJOCO_GL={gl}: {detail[:160]}); "
                         f"{OSMESA_HINT}", code=EXIT_FAILURE)


class CliParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose usage errors are one line (plus a pointer to ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (try '{self.prog} --help')\n")


# -- option types (argparse ``type=``): the message names the rule, argparse names the option --
def _number(text: str, kind: type) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (episode counts)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nonneg_int(text: str) -> int:
    """An integer >= 0 (seeds: numpy refuses negative seeds)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def finite_float(text: str) -> float:
    """Any finite number."""
    return _number(text, float)


def positive_float(text: str) -> float:
    """A finite number > 0 (durations, stiffness)."""
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value:g}")
    return value


def output_path(suffixes: tuple[str, ...]):
    """An argparse type for an output file with one of ``suffixes`` (checked before any work)."""

    def parse(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"must name a {' or '.join(suffixes)} file, got {text!r}")
        if path.exists() and path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a directory, expected a file")
        return path

    parse.__name__ = "file"
    return parse


# -- output ----------------------------------------------------------------------------------
def console():
    """A rich console on stdout; 120 columns wide when stdout is not a terminal (files, pipes,
    CI logs), where rich would otherwise assume 80 and squeeze the tables."""
    from rich.console import Console

    if "COLUMNS" not in os.environ and not sys.stdout.isatty():
        return Console(width=120)
    return Console()


# -- files -------------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python and non-finite floats into None
    (strict JSON has no NaN/inf)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy array or scalar
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` (made JSON-able) as JSON atomically (see :mod:`robot_brain.fileio`)."""
    from robot_brain.fileio import atomic_write_json as write

    return write(path, jsonable(data))


# -- rendering ---------------------------------------------------------------------------------
def ensure_headless_gl() -> str | None:
    """Choose the software OpenGL backend (OSMesa) on a machine without a display.

    MuJoCo picks its OpenGL backend once, when ``mujoco`` is first imported, so this must run
    before that import. It only sets ``MUJOCO_GL`` when the user has not set it and there is no
    ``DISPLAY``/``WAYLAND_DISPLAY``; returns the value in force (``None`` = MuJoCo's default).
    """
    if "MUJOCO_GL" not in os.environ and not (os.environ.get("DISPLAY")
                                              or os.environ.get("WAYLAND_DISPLAY")):
        if "mujoco" not in sys.modules:
            os.environ["MUJOCO_GL"] = "osmesa"
            os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    return os.environ.get("MUJOCO_GL")


def check_shield(spec: str) -> str:
    """``--shield``: ``none``, ``limits`` or an existing critic directory, else a one-line error."""
    if spec in ("none", "limits"):
        return spec
    if Path(spec).is_dir():
        return str(Path(spec))
    raise CliError(f"--shield {spec!r}: expected 'none', 'limits' or a trained critic directory "
                   f"(no such directory)")


def add_rollout_options(p: argparse.ArgumentParser) -> None:
    """Options shared by the commands that run episodes (``sim``, ``eval``)."""
    p.add_argument("--disturb", action="store_true",
                   help="random pushes on the tool and shifted obstacles (Disturbances.default())")
    p.add_argument("--json", type=output_path((".json",)), default=None, metavar="FILE",
                   help="write per-episode and aggregate metrics to FILE (atomically)")
    p.add_argument("--video", type=output_path((".mp4",)), default=None, metavar="FILE.mp4",
                   help="render all episodes offscreen into an MP4, one frame per policy step")
    p.add_argument("--quiet", action="store_true", help="print only the aggregate table")
