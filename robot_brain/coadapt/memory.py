"""Memory: what the robot keeps about each user between sessions.

A user who comes back should not start from scratch: the rationality ``beta`` fitted to how
they steer, the assistance ceiling ``alpha_max`` that assist-as-needed has arrived at, and which
goals they tend to go for all carry over. :class:`UserProfile` holds that; :class:`ProfileStore`
keeps one JSON file per user (``<directory>/<user>.json``).

The goal counts are Hebbian in the plain sense: every reached goal strengthens its own count,
and every count decays a little on each trial (``decay``, 0.95 by default, a memory of about 20
trials), so the prior follows a user whose habits change instead of freezing on their first
week. ``goal_prior`` turns the counts into a Dirichlet(1) posterior mean, so an unseen goal
never gets probability 0 and the intent belief can still move to it.

Files are plain JSON (never pickle: a profile directory may be shared, and loading must not run
code), written atomically (:func:`robot_brain.fileio.atomic_write_json`: a crash mid-write
leaves the old file). A damaged file never stops a session: :meth:`ProfileStore.load` moves it
aside as ``<user>.json.corrupt`` (nothing is lost; it can be inspected or repaired), starts from
defaults and says so in one line.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_brain.fileio import atomic_write_json

__all__ = ["FORMAT", "MAX_ERRORS", "ProfileStore", "UserProfile", "validate_user"]

#: Version of the profile file layout this code writes and reads.
FORMAT = 1
#: Per-trial errors kept in a profile (the most recent); enough for assist-as-needed's trend.
MAX_ERRORS = 50
#: Goals a profile may count; far above any task's, it keeps a damaged file from allocating.
_MAX_GOALS = 1024
#: Largest profile file read [bytes]; a real one is a few hundred bytes.
_MAX_FILE_BYTES = 1 << 20

_USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_FIELDS = ("format", "user", "beta", "alpha_max", "goal_counts", "trials", "errors")


def validate_user(name: str) -> str:
    """``name`` if it is a valid user name, else ``ValueError``.

    A user name becomes a file name, so it is restricted to ``[A-Za-z0-9][A-Za-z0-9_.-]{0,63}``:
    no path separators, no leading dot (no ``..``, no hidden files), no spaces.
    """
    if not isinstance(name, str) or _USER_RE.fullmatch(name) is None:
        raise ValueError(f"invalid user name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
                         f"starting with a letter or digit")
    return name


def _number(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> float:
    """``value`` as a float in the range, else one ``ValueError`` line naming ``name``."""
    rng = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number in {rng}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v > high or v < low or (low_open and v == low):
        raise ValueError(f"{name} must be a finite number in {rng}, got {value!r}")
    return v


def _numbers(name: str, value: Any, *, max_len: int | None = None) -> list[float]:
    """``value`` as a list of finite floats >= 0, else one ``ValueError`` line."""
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list of numbers >= 0, got {type(value).__name__}")
    if max_len is not None and len(value) > max_len:
        raise ValueError(f"{name} has {len(value)} entries, more than {max_len}")
    return [_number(f"{name}[{i}]", v, 0.0, math.inf) for i, v in enumerate(value)]


@dataclass
class UserProfile:
    """What the robot remembers about one user (validated on construction).

    :param user: the user's name (:func:`validate_user`).
    :param beta: Boltzmann rationality of the user's inputs, in (0, 100]: high = the user moves
        straight toward their goal, low = noisy inputs; fitted per user by the intent belief.
    :param alpha_max: assistance ceiling in [0, 1], the state of assist-as-needed (it grows when
        the user's error stays high and decays when they manage).
    :param goal_counts: recency-weighted count of reached goals, per goal index (>= 0).
    :param trials: trials completed with this user (the session counts them).
    :param errors: the user's error per trial, most recent last (the last :data:`MAX_ERRORS`).
    :param format: file layout version (:data:`FORMAT`).
    """

    user: str
    beta: float = 3.0
    alpha_max: float = 0.5
    goal_counts: list[float] = field(default_factory=list)
    trials: int = 0
    errors: list[float] = field(default_factory=list)
    format: int = FORMAT

    def __post_init__(self) -> None:
        validate_user(self.user)
        self.beta = _number("beta", self.beta, 0.0, 100.0, low_open=True)
        self.alpha_max = _number("alpha_max", self.alpha_max, 0.0, 1.0)
        self.goal_counts = _numbers("goal_counts", self.goal_counts, max_len=_MAX_GOALS)
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 0:
            raise ValueError(f"trials must be an integer >= 0, got {self.trials!r}")
        self.errors = _numbers("errors", self.errors)[-MAX_ERRORS:]
        if isinstance(self.format, bool) or self.format != FORMAT:
            raise ValueError(f"format {self.format!r} is not supported (this version reads {FORMAT})")

    # -- goals (Hebbian counts) --------------------------------------------------------------
    def goal_prior(self, k: int) -> np.ndarray:
        """Prior over ``k`` goals (k,): ``(counts + 1) / sum``, the mean of a Dirichlet(1)
        posterior. Counts beyond ``k`` are ignored and missing ones are 0, so a task with
        another number of goals still gets a prior (the stored counts are not changed)."""
        k = _goal_count(k)
        c = np.zeros(k)
        n = min(k, len(self.goal_counts))
        c[:n] = self.goal_counts[:n]
        c += 1.0
        return c / c.sum()

    def record_goal(self, index: int, k: int, decay: float = 0.95) -> None:
        """The user reached goal ``index`` of ``k``: every count is multiplied by ``decay``
        (older trials weigh less), then the reached goal's count grows by 1. The counts are
        resized to ``k`` (new goals start at 0).

        :param decay: forgetting per trial in (0, 1]; 1 keeps plain counts.
        """
        k = _goal_count(k)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < k:
            raise ValueError(f"goal index must be an integer in [0, {k - 1}], got {index!r}")
        d = _number("decay", decay, 0.0, 1.0, low_open=True)
        counts = (self.goal_counts + [0.0] * k)[:k]
        self.goal_counts = [c * d for c in counts]
        self.goal_counts[int(index)] += 1.0

    def record_error(self, e: float) -> None:
        """Append the user's error of one trial (finite, >= 0); only the last
        :data:`MAX_ERRORS` are kept. (``trials`` is the session's to count.)"""
        self.errors.append(_number("error", e, 0.0, math.inf))
        del self.errors[:-MAX_ERRORS]

    # -- files -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (a new dict; the lists are copies)."""
        return {"format": self.format, "user": self.user, "beta": self.beta,
                "alpha_max": self.alpha_max, "goal_counts": list(self.goal_counts),
                "trials": self.trials, "errors": list(self.errors)}

    @classmethod
    def from_dict(cls, d: Any, user: str | None = None) -> UserProfile:
        """A profile from :meth:`to_dict`'s data, checked field by field.

        :param user: the user the data must belong to (the file's name), if known.
        :raises ValueError: one line naming the first bad, missing or unknown field.
        """
        if not isinstance(d, dict):
            raise ValueError(f"a profile must be a JSON object, got {type(d).__name__}")
        unknown = sorted(str(key) for key in d if key not in _FIELDS)
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(_FIELDS)})")
        missing = [f for f in _FIELDS if f not in d]
        if missing:
            raise ValueError(f"missing field {missing[0]!r}")
        if isinstance(d["format"], bool) or d["format"] != FORMAT:
            raise ValueError(f"format {d['format']!r} is not supported (this version reads {FORMAT})")
        if not isinstance(d["user"], str):
            raise ValueError(f"user must be a string, got {d['user']!r}")
        if user is not None and d["user"] != user:
            raise ValueError(f"user {d['user']!r} does not match the file's user {user!r}")
        return cls(user=d["user"], beta=d["beta"], alpha_max=d["alpha_max"],
                   goal_counts=d["goal_counts"], trials=d["trials"], errors=d["errors"],
                   format=d["format"])


def _goal_count(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= _MAX_GOALS:
        raise ValueError(f"number of goals must be an integer in [1, {_MAX_GOALS}], got {k!r}")
    return int(k)


class ProfileStore:
    """One JSON file per user in ``directory`` (created on the first save).

    :param directory: where the profiles live (e.g. ``runs/users``).
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, user: str) -> Path:
        """The file of ``user`` (the name is validated: it cannot leave ``directory``)."""
        return self.directory / f"{validate_user(user)}.json"

    def load(self, user: str, *, keep_aside: bool = True) -> tuple[UserProfile, str | None]:
        """The stored profile of ``user`` and ``None``; defaults and ``None`` for a new user.

        A file that cannot be used (unreadable, not UTF-8, bad JSON, wrong fields, a folder in
        its place ...) never raises: it is renamed to ``<user>.json.corrupt`` (``.corrupt.1``,
        ``.corrupt.2`` ... when that exists) and the defaults come back with a one-line note
        saying what was wrong and where the file went, for the session to show. With
        ``keep_aside=False`` (a session that saves nothing) the file is left where it is.

        :raises ValueError: only for an invalid user name.
        """
        p = self.path(user)
        if not os.path.lexists(p):
            return UserProfile(user), None
        try:
            return UserProfile.from_dict(_read_json(p), user), None
        except (OSError, ValueError, RecursionError) as exc:  # JSON/Unicode errors are ValueErrors
            reason = _reason(exc)
        if not keep_aside:  # a read-only session: report, leave the file where it is
            return UserProfile(user), f"profile {p} is corrupted ({reason}): left as it is, using defaults"
        note = f"profile {p} is corrupted ({reason}): {_keep_aside(p)}, starting from defaults"
        return UserProfile(user), note

    def save(self, profile: UserProfile) -> Path:
        """Write ``profile`` to its file atomically (readers and a crash see the old file or the
        new one, never a mix); returns the path. The profile is checked first, so a file is
        never written that :meth:`load` would refuse.

        :raises ValueError: the profile's fields were changed to invalid values.
        :raises OSError: the file cannot be written (the old one is left as it was).
        """
        data = UserProfile.from_dict(profile.to_dict()).to_dict()
        return atomic_write_json(self.path(profile.user), data)


def _read_json(p: Path) -> Any:
    """The JSON content of ``p``; ``OSError``/``ValueError`` with a short reason otherwise."""
    if p.is_dir():
        raise ValueError("a folder, not a file")
    size = p.stat().st_size
    if size > _MAX_FILE_BYTES:
        raise ValueError(f"{size} bytes, more than a profile's {_MAX_FILE_BYTES}")
    raw = p.read_bytes()
    if not raw.strip():
        raise ValueError("empty file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"bad JSON at line {exc.lineno}: {exc.msg}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    if isinstance(exc, OSError):
        return f"cannot read it: {exc.strerror or type(exc).__name__}"
    return str(exc)


def _keep_aside(p: Path) -> str:
    """Rename ``p`` to the first free ``<name>.corrupt[.N]``; say where it went (or why not)."""
    for n in range(1000):
        kept = p.with_name(f"{p.name}.corrupt" + (f".{n}" if n else ""))
        if os.path.lexists(kept):
            continue
        try:
            os.rename(p, kept)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            return f"could not keep it aside ({why}; the next save replaces it)"
        return f"kept as {kept.name}"
    return "could not keep it aside (1000 .corrupt copies exist; the next save replaces it)"
