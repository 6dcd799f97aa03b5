"""Shared pieces of the command line: one-line errors, option types, output and file helpers.

Every subcommand module (``tasks``, ``sim``, ``demo``, ``bench`` ...) exposes ``NAME``, ``HELP``,
``DESCRIPTION``, ``add_arguments(parser)`` and ``run(args) -> int``; :mod:`robot_brain.cli` wires
them into one parser. Heavy imports (mujoco, gymnasium, matplotlib) happen inside ``run`` so that
``--help`` answers at once and ``MUJOCO_GL`` can still be chosen before mujoco is imported.

Errors the user can fix (a bad option value, an unknown task) are raised as :class:`CliError`:
``main`` prints them as one line and exits with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "PROBABILITY",
    "SERVO_ID",
    "CliError",
    "CliParser",
    "add_links_option",
    "add_renderer_option",
    "add_rollout_options",
    "add_shield_option",
    "check_shield",
    "console",
    "finite_float",
    "links_option",
    "make_task_env",
    "nonneg_int",
    "number_in",
    "output_dir",
    "output_path",
    "positive_float",
    "positive_int",
    "save_results",
]

EXIT_USAGE = 2  # bad command line or option value (argparse's convention)
EXIT_FAILURE = 1  # the command ran but could not finish (e.g. no OpenGL for rendering)


class CliError(Exception):
    """An error the user can fix; printed as one line, exit code ``code`` (default 2)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


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


def number_in(kind: type, low: float, high: float, what: str) -> Callable[[str], Any]:
    """An argparse type for ``what`` (e.g. ``"a servo id"``): a ``kind`` in ``[low, high]``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} in {low:g}..{high:g}, got {text!r}")
        return value

    parse.__name__ = what.split()[-1]
    return parse


#: A Dynamixel servo id (253 is reserved, 254 is the broadcast id).
SERVO_ID = number_in(int, 0, 252, "a servo id")
#: A probability (fault rates).
PROBABILITY = number_in(float, 0.0, 1.0, "a probability")


def output_path(suffixes: tuple[str, ...]) -> Callable[[str], Path]:
    """An argparse type for an output file with one of ``suffixes`` (checked before any work)."""

    def parse(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"must name a {' or '.join(suffixes)} file, got {text!r}")
        from robot_brain.fileio import unwritable

        why = unwritable(path)
        if why is not None:
            raise argparse.ArgumentTypeError(why)
        return path

    parse.__name__ = "file"
    return parse


def output_dir(text: str) -> Path:
    """An argparse type for an output folder (created later; checked writable now)."""
    from robot_brain.fileio import unwritable

    path = Path(text)
    why = unwritable(path, directory=True)
    if why is not None:
        raise argparse.ArgumentTypeError(why)
    return path


def save_results(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` (atomically). Computed results are never lost: if the
    write fails now (the disk filled up, the folder went away), they are written to a file in
    the temporary folder instead and the command fails with one line saying where."""
    from robot_brain.fileio import atomic_write_json

    try:
        return atomic_write_json(path, data)
    except OSError as exc:
        import tempfile

        fd, fallback = tempfile.mkstemp(prefix=f"robot-brain-{Path(path).stem}-", suffix=".json")
        os.close(fd)
        atomic_write_json(fallback, data)
        raise CliError(f"could not write {path} ({exc.strerror or exc}); the results are in "
                       f"{fallback}", code=EXIT_FAILURE) from None


# -- output ----------------------------------------------------------------------------------
def console() -> Console:
    """A rich console on stdout; 120 columns wide when stdout is not a terminal (files, pipes,
    CI logs), where rich would otherwise assume 80 and squeeze the tables."""
    from rich.console import Console

    if "COLUMNS" not in os.environ and not sys.stdout.isatty():
        return Console(width=120)
    return Console()


# -- shared options ----------------------------------------------------------------------------
def check_shield(args: argparse.Namespace) -> None:
    """Normalise ``args.shield`` (``none``, ``limits`` or an existing critic directory) or raise a
    one-line :class:`CliError`. Called by ``main`` for every verb with ``--shield``, after the
    OpenGL choice (the check imports the safety package, and with it MuJoCo)."""
    spec = getattr(args, "shield", None)
    if spec is None:
        return
    from robot_brain.safety.shield import check_shield_spec

    try:
        args.shield = check_shield_spec(spec)
    except ValueError as exc:
        raise CliError(f"argument --shield: {exc}") from None


def add_shield_option(p: argparse.ArgumentParser, default: str | None, what: str) -> None:
    """``--shield SPEC`` (checked by :func:`check_shield`); ``what`` ends the help text."""
    p.add_argument("--shield", default=default, metavar="SPEC",
                   help="fast-tick reflex: 'limits' (hard-limit reflex), 'none' (no reflex; torque "
                        "limits stay in force) or a critic directory written by 'robot-brain "
                        f"train-critic' (learned critic over the hard limits); {what}")


def add_renderer_option(p: argparse.ArgumentParser) -> None:
    """``--renderer auto|opengl|software`` for the verbs that write videos."""
    from robot_brain.render import RENDERERS  # light: numpy and the camera only

    p.add_argument("--renderer", choices=RENDERERS, default="auto",
                   help="video renderer: MuJoCo's OpenGL renderer when a context can be made, else "
                        "the software renderer (auto, default); or force one")


def add_rollout_options(p: argparse.ArgumentParser) -> None:
    """Options shared by the commands that run episodes (``sim``, ``eval``)."""
    p.add_argument("--disturb", action="store_true",
                   help="random pushes on the tool and shifted obstacles (Disturbances.default())")
    p.add_argument("--json", type=output_path((".json",)), default=None, metavar="FILE",
                   help="write per-episode and aggregate metrics to FILE (atomically)")
    p.add_argument("--video", type=output_path((".mp4",)), default=None, metavar="FILE.mp4",
                   help="render all episodes offscreen into an MP4, one frame per policy step")
    add_renderer_option(p)
    p.add_argument("--quiet", action="store_true", help="print only the aggregate table")


def add_ray_options(p: argparse.ArgumentParser, *, retries: int) -> None:
    """Where the trials of ``sweep`` and ``tune`` run: ``--workers``, ``--address``, ``--retries``."""
    p.add_argument("--workers", type=positive_int, default=2, metavar="N",
                   help="trials at a time (default: 2; on the local machine, one CPU each)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="an existing Ray cluster (HOST:PORT of 'ray start --head', or ray://HOST:PORT)")
    p.add_argument("--retries", type=nonneg_int, default=retries, metavar="N",
                   help=f"times a failed trial is retried from its checkpoint (default: {retries})")


def add_links_option(p: argparse.ArgumentParser) -> None:
    """``--links N``: the swimmer's number of body segments (a task option, checked by the task:
    see :func:`links_option`)."""
    p.add_argument("--links", type=_integer, default=None, metavar="N",
                   help="swimmer only: body segments, head included (3..15; joints = N - 1; default 6)")


def _integer(text: str) -> int:
    return int(_number(text, int))


def links_option(args: argparse.Namespace, spec: Any) -> dict[str, Any]:
    """The task options ``--links`` stands for, for task ``spec`` (a ``TaskSpec``; ``{}`` when not
    given); its range is the task's own: its config refuses a value outside it, in one line naming
    the value and the range.

    :raises CliError: a value outside the range, or a task without a ``links`` option.
    """
    links = getattr(args, "links", None)
    if links is None:
        return {}
    import dataclasses

    if "links" not in {f.name for f in dataclasses.fields(spec.config_type)}:
        raise CliError(f"argument --links: task {spec.name!r} has no body segments to set "
                       f"(--links is an option of the swimmer)")
    try:
        spec.config_type(links=links)
    except ValueError as exc:
        raise CliError(f"argument --links: {str(exc).splitlines()[0]}") from None
    return {"links": links}


def make_task_env(task: str, **kwargs: Any) -> Any:
    """``robot_brain.envs.make`` with one-line errors: a bad option or shield becomes a
    :class:`CliError` naming it."""
    from robot_brain.envs import make

    try:
        return make(task, **kwargs)
    except ValueError as exc:
        raise CliError(str(exc).splitlines()[0]) from None
