"""``metrics.json``: the learning record of a run, and how it stays consistent with checkpoints.

The record holds the learning curve (a point every 1000 steps), every training episode, every
periodic evaluation, the cumulative number of violating steps and the total number of episodes.

**Consistency with checkpoints.** The trainer writes ``metrics.json`` (atomically) after a
checkpoint's data files and *before* the JSON that marks the checkpoint complete, and that JSON
carries the counters of the same instant (:func:`counters`). So at every instant
``metrics.json`` covers at least the newest complete checkpoint; it may run ahead of it (killed
between the two writes), never behind. On resume :func:`resume_metrics` cuts it back to the
checkpoint's step and checks it against the checkpoint's counters; a ``metrics.json`` that is
missing, damaged or does not match is rebuilt from those counters (episode count, cumulative
violations) with a one-line note saying which records were lost -- never silently zeroed. The
note is also kept in the record (``gaps``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import read_json_mapping

__all__ = ["COUNTER_KEYS", "MetricsError", "counters", "new_metrics", "read_metrics", "resume_metrics"]

# The counters a checkpoint's JSON carries (see :func:`counters`).
COUNTER_KEYS = ("episodes", "episode_records", "evaluation_records", "cumulative_violations")


class MetricsError(ValueError):
    """A ``metrics.json`` that cannot be used (one line naming the file and the problem)."""


def new_metrics(task: str, algo: str, seed: int, shield: str) -> dict[str, Any]:
    """The empty record of a run that starts from step 0."""
    return {"task": task, "algo": algo, "seed": seed, "shield": shield, "status": "running",
            "num_timesteps": 0, "cumulative_violations": 0, "overridden_steps": 0, "episode_count": 0,
            "steps_per_second": 0.0,
            "elapsed": 0.0, "curve": [], "episodes": [], "evaluations": [], "best": None,
            "final_evaluation": None, "gaps": []}


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _num_or_none(x: Any) -> bool:
    return x is None or _num(x)


# What each list's records must hold (besides an integer "step"), so plotting and resuming can
# rely on it: a table, checked in one place. (Curve means are null before the first episode.)
_RECORD_FIELDS: dict[str, tuple[tuple[str, ...], Callable[[Any], bool]]] = {
    "curve": (("return_mean", "success_rate", "cost_mean", "cumulative_violations"), _num_or_none),
    "episodes": (("return", "cost"), _num),
    "evaluations": (("success_rate", "return_mean"), _num),
}
_TOP_FIELDS: dict[str, Callable[[Any], bool]] = {
    "num_timesteps": _int, "cumulative_violations": _int, "overridden_steps": _int, "episode_count": _int,
    "elapsed": lambda x: _num(x) and x >= 0,
    "gaps": lambda x: isinstance(x, list),
    "best": lambda x: x is None or (isinstance(x, dict) and _int(x.get("step"))),
}


def read_metrics(path: str | Path) -> dict[str, Any]:
    """A run's ``metrics.json``, checked: strict JSON, a mapping, the three record lists with
    an integer ``step`` and numeric fields in every record.

    :raises MetricsError: one line naming the file and the first problem.
    """
    path = Path(path)
    m = read_json_mapping(path, "metrics", MetricsError, "a metrics record (expected a mapping)")
    for key, (fields, ok) in _RECORD_FIELDS.items():
        records = m.get(key)
        if not isinstance(records, list):
            raise MetricsError(f"metrics {path}: {key} must be a list of records")
        for i, rec in enumerate(records):
            if not isinstance(rec, dict) or not _int(rec.get("step")):
                raise MetricsError(f"metrics {path}: {key}[{i}] has no integer step")
            bad = [f for f in fields if not ok(rec.get(f))]
            if bad:
                raise MetricsError(f"metrics {path}: {key}[{i}].{bad[0]} must be a number")
    for key, ok in _TOP_FIELDS.items():
        if key in m and not ok(m[key]):
            raise MetricsError(f"metrics {path}: {key} has a bad value {m[key]!r}")
    return m


def counters(metrics: dict[str, Any]) -> dict[str, int]:
    """What a checkpoint stores about the record at its step (see module docstring)."""
    return {"episodes": int(metrics.get("episode_count", len(metrics["episodes"]))),
            "episode_records": len(metrics["episodes"]),
            "evaluation_records": len(metrics["evaluations"]),
            "cumulative_violations": int(metrics.get("cumulative_violations", 0))}


def resume_metrics(path: str | Path, fresh: dict[str, Any], steps: int, saved: dict[str, int] | None,
                   label: str) -> tuple[dict[str, Any], list[str]]:
    """The record to continue from a checkpoint at ``steps`` with counters ``saved``
    (``None``: a checkpoint written before counters existed), and one-line notes.

    :param fresh: :func:`new_metrics` of the run (used when the file is unusable).
    :param label: the checkpoint, as named in the notes.
    """
    notes: list[str] = []
    try:
        m = read_metrics(path)
    except MetricsError as exc:
        m = fresh
        if saved is None:
            lost = "episodes and violations restart from zero (the checkpoint predates counters)"
        else:
            lost = (f"rebuilt from {label}'s counters ({saved['episodes']} episodes, "
                    f"{saved['cumulative_violations']} violating steps up to step {steps}); the "
                    f"per-episode records, learning curve and evaluations before it are lost")
        notes.append(f"{exc}: {lost}")
    else:
        for key in _RECORD_FIELDS:
            m[key] = [r for r in m[key] if r["step"] <= steps]
        # the training time up to the checkpoint, as the last record kept says (runs recorded
        # before records had it count from the resume)
        m["elapsed"] = max((float(r["elapsed"]) for key in ("curve", "evaluations") for r in m[key]
                            if _num(r.get("elapsed"))), default=0.0)
        # the steps the shield overrode, as the last curve point kept says (the curve lags the
        # checkpoint by less than one point's steps)
        m["overridden_steps"] = max((int(r["overridden_steps"]) for r in m["curve"]
                                     if _int(r.get("overridden_steps"))), default=0)
        m.setdefault("gaps", [])
        if saved is None:  # the old way: the curve's last point (may miss a few violations)
            m["cumulative_violations"] = m["curve"][-1]["cumulative_violations"] if m["curve"] else 0
            m["episode_count"] = len(m["episodes"])
        else:
            have = (len(m["episodes"]), len(m["evaluations"]))
            want = (saved["episode_records"], saved["evaluation_records"])
            if have != want:
                notes.append(f"metrics {path} holds {have[0]} episode records and {have[1]} evaluations up "
                             f"to step {steps}, {label} counted {want[0]} and {want[1]}: counters restored "
                             f"from the checkpoint, the missing records are lost")
    if saved is not None:
        m["episode_count"] = saved["episodes"]
        m["cumulative_violations"] = saved["cumulative_violations"]
    m["gaps"] = [*m.get("gaps", []), *({"step": steps, "lost": n} for n in notes)]
    m.update(status="running", final_evaluation=None, num_timesteps=steps)
    return m, notes
