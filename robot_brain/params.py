"""Declared, validated parameters of configuration dataclasses.

A configuration (task options, later deployment settings) is a frozen dataclass whose fields are
declared with :func:`param`: a default, a unit, an allowed range and a one-line reason. Calling
:func:`validate` in ``__post_init__`` checks every declared field where it enters (constructor,
``dataclasses.replace``, YAML ``env_kwargs``, ``--set``), converts YAML spellings (an int where a
float is meant, a list where a tuple is meant) and raises one ``ValueError`` line that names the
field, the bad value and the allowed range. :func:`describe` lists the parameters for help texts.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Param", "describe", "param", "replace_checked", "validate"]

T = TypeVar("T")


@dataclass(frozen=True)
class Param:
    """How one configuration field is checked.

    :param kind: ``"float"``, ``"int"``, ``"bool"``, ``"pair"`` (a ``(low, high)`` range of
        numbers), ``"vec3"`` (three numbers) or ``"any"`` (checked by the class itself).
    :param low: smallest allowed number (``None``: no bound). :param high: largest.
    :param unit: SI unit for messages and help. :param doc: what it is and why the bounds.
    :param optional: ``None`` is allowed.
    :param low_open: the bound ``low`` itself is not allowed (``> low``).
    """

    kind: str = "float"
    low: float | None = None
    high: float | None = None
    unit: str = ""
    doc: str = ""
    optional: bool = False
    low_open: bool = False

    def bounds(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        unit = f" {self.unit}" if self.unit else ""
        return f"{'(' if self.low_open else '['}{lo}, {hi}]{unit}"


def param(default: Any, doc: str, *, kind: str = "float", low: float | None = None,
          high: float | None = None, unit: str = "", optional: bool = False,
          low_open: bool = False) -> Any:
    """A dataclass field with a :class:`Param` declaration (see module docstring)."""
    meta = Param(kind, low, high, unit, doc, optional, low_open)
    return dataclasses.field(default=default, metadata={"param": meta})


def _number(owner: str, name: str, value: Any, p: Param, integer: bool = False) -> float | int:
    where = f"{owner}.{name}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be {'an integer' if integer else 'a number'} in "
                         f"{p.bounds()}, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite, got {value!r}")
    if integer and value != int(value):
        raise ValueError(f"{where} must be an integer in {p.bounds()}, got {value!r}")
    v = int(value) if integer else float(value)
    too_low = p.low is not None and (v <= p.low if p.low_open else v < p.low)
    if too_low or (p.high is not None and v > p.high):
        raise ValueError(f"{where} = {value!r} is outside {p.bounds()} ({p.doc})")
    return v


def _numbers(owner: str, name: str, value: Any, p: Param, n: int) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != n:
        raise ValueError(f"{owner}.{name} must be {n} numbers, got {value!r}")
    return tuple(_number(owner, f"{name}[{i}]", v, p) for i, v in enumerate(value))


def _checked(owner: str, name: str, value: Any, p: Param) -> Any:
    if value is None and p.optional:
        return None
    if p.kind == "float":
        return _number(owner, name, value, p)
    if p.kind == "int":
        return _number(owner, name, value, p, integer=True)
    if p.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{owner}.{name} must be true or false, got {value!r}")
        return value
    if p.kind == "pair":
        lo, hi = _numbers(owner, name, value, p, 2)
        if lo > hi:
            raise ValueError(f"{owner}.{name} must be a range (low, high) with low <= high, got {value!r}")
        return (lo, hi)
    if p.kind == "vec3":
        return _numbers(owner, name, value, p, 3)
    return value


def validate(obj: Any, convert: Mapping[str, Callable[[Any], Any]] | None = None) -> None:
    """Check (and normalise in place) every :func:`param` field of the frozen dataclass ``obj``.

    :param convert: field name -> function turning a user spelling into the field's type (e.g.
        ``"default"`` into a ``Disturbances``); applied before the check.
    :raises ValueError: one line naming the first bad field.
    """
    owner = type(obj).__name__
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if convert and f.name in convert:
            value = convert[f.name](value)
        p = f.metadata.get("param")
        if p is not None:
            value = _checked(owner, f.name, value, p)
        object.__setattr__(obj, f.name, value)


def replace_checked(config: T, options: Mapping[str, Any], owner: str) -> T:
    """``dataclasses.replace(config, **options)`` with one-line errors: an unknown option is named
    with a suggestion and the list of known ones; a bad value by :func:`validate`.

    :param owner: what the options belong to, for messages (e.g. ``"task 'maze'"``).
    """
    names = [f.name for f in dataclasses.fields(config)]  # type: ignore[arg-type]
    for key in options:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown option {key!r} of {owner}{hint} (known: {', '.join(names)})")
    return dataclasses.replace(config, **options)  # type: ignore[type-var]


def describe(config_type: type) -> list[tuple[str, Any, str]]:
    """``(name, default, "range unit: reason")`` of each declared field, for help texts."""
    rows = []
    for f in dataclasses.fields(config_type):
        p = f.metadata.get("param")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        if p is None:
            rows.append((f.name, default, (f.metadata.get("doc") or "")))
        elif p.kind in ("float", "int", "pair", "vec3"):
            rows.append((f.name, default, f"{p.bounds()}: {p.doc}"))
        else:
            rows.append((f.name, default, p.doc))
    return rows
