"""The shield: which reflex a loop runs with, from one spec. The one resolver of ``--shield``.

A *shield spec* is

- ``"none"``   -> no reflex (torque limits stay in force; for comparisons only);
- ``"limits"`` -> the hard-limit reflex (:class:`LimitsReflex`) with the given limits;
- a path       -> a critic directory (``critic.json`` + ``critic.npz``, from
  ``robot-brain train-critic``): :class:`CriticReflex` over the hard-limit reflex;
- a :class:`Reflex` object -> used as it is (custom reflexes, tests).

:func:`check_shield_spec` validates a spec without loading anything (the CLI's option type);
:func:`build_shield` turns it into the reflex. The task env owns the result: it hands it to its
loop (``env.set_shield(spec)``), and nothing else holds a reflex.
"""

from __future__ import annotations

import os
from pathlib import Path

from .critic import CriticFileError, load_critic
from .limits import LimitsConfig, LimitsReflex
from .recovery import CriticReflex
from .reflex import Reflex

__all__ = ["SHIELD_NAMES", "ShieldSpec", "build_shield", "check_shield_spec", "shield_label"]

#: The named shields; any other spec is a critic directory.
SHIELD_NAMES = ("none", "limits")

#: A shield: a name, a critic directory, a reflex object, or ``None`` (no reflex).
ShieldSpec = str | os.PathLike | Reflex | None


def check_shield_spec(spec: str | os.PathLike) -> str:
    """``spec`` normalised (``"none"``, ``"limits"`` or a critic directory path), or
    :class:`CriticFileError` with one line naming the bad value."""
    text = os.fspath(spec)
    if text in SHIELD_NAMES:
        return text
    path = Path(text)
    if not path.is_dir():
        raise CriticFileError(f"{text!r} is neither {' nor '.join(repr(n) for n in SHIELD_NAMES)} "
                              f"nor a critic directory written by 'robot-brain train-critic'")
    return str(path)


def shield_label(spec: ShieldSpec) -> str:
    """A short name of ``spec`` for tables and metadata."""
    if spec is None:
        return "none"
    if isinstance(spec, (str, os.PathLike)):
        return os.fspath(spec)
    return type(spec).__name__


def build_shield(spec: ShieldSpec, limits: LimitsConfig, *, eps_safe: float | None = None) -> Reflex | None:
    """The reflex named by ``spec`` (see module docstring).

    :param spec: ``"none"`` (or ``None``), ``"limits"``, a critic directory, or a reflex.
    :param limits: the hard limits of the task the shield protects (the critic runs over them).
    :param eps_safe: override of the critic's stored threshold.
    :raises CriticFileError: not a shield name and not a valid critic directory (one line naming
        the file).
    """
    if spec is None:
        return None
    if not isinstance(spec, (str, os.PathLike)):
        if not isinstance(spec, Reflex):
            raise TypeError(f"a shield is 'none', 'limits', a critic directory or a Reflex, got "
                            f"{type(spec).__name__}")
        return spec
    text = check_shield_spec(spec)
    if text == "none":
        return None
    if text == "limits":
        return LimitsReflex(limits)
    return CriticReflex(load_critic(text), LimitsReflex(limits), eps_safe=eps_safe)
