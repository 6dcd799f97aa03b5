"""The picture of a co-adaptation session: how the help and the person's performance move together
over the trials (one column of panels, trials on the shared x axis).

Why a picture: assist-as-needed is a trajectory (help relaxing as the person improves, rising
when they get worse), which a table of numbers hides. matplotlib (Agg, imported here only) and an
atomic write, so a picture is complete or absent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_brain.fileio import atomic_savefig

__all__ = ["plot_session"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _values(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])


def plot_session(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str = "",
                 compare: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                 marks: Mapping[int, str] | None = None) -> Path:
    """Draw a session's trial records (:meth:`TrialRecord.as_dict`): assistance (mean share and
    ceiling), time and success, the person's own error, goal-prediction accuracy; write ``path``.

    :param compare: other sessions' records by label (e.g. ``{"human alone": rows}``), drawn
        thinner on the time and success panels.
    :param marks: trial index -> label of an event drawn as a vertical line (e.g. noise added).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(4, 1, figsize=(7.5, 8.5), sharex=True)
    trials = _values(rows, "trial")
    ax = axes[0]
    ax.plot(trials, _values(rows, "alpha_max"), "o-", color="tab:blue", label="assistance ceiling")
    ax.plot(trials, _values(rows, "assistance"), "s--", color="tab:cyan", label="mean robot share")
    ax.set_ylabel("assistance")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper right", fontsize=8)

    ax = axes[1]
    series = {"assisted": rows, **(compare or {})}
    for i, (label, rs) in enumerate(series.items()):
        t = _values(rs, "trial")
        ok = np.array([bool(r.get("success")) for r in rs])
        time = _values(rs, "time")
        style = dict(lw=2.0 if i == 0 else 1.0, alpha=1.0 if i == 0 else 0.7)
        line, = ax.plot(t, time, "-", label=label, **style)
        ax.plot(t[~ok], time[~ok], "x", color=line.get_color(), ms=8)
    ax.set_ylabel("trial time [s]\n(x: failed)")
    ax.legend(loc="upper right", fontsize=8)

    ax = axes[2]
    ax.plot(trials, _values(rows, "human_error"), "o-", color="tab:red")
    ax.set_ylabel("person's error\n(1 - cos)")

    ax = axes[3]
    ax.plot(trials, 100 * _values(rows, "accuracy"), "o-", color="tab:green", label="ticks right")
    half = [np.nan if r.get("accuracy_half") is None else 100.0 * bool(r["accuracy_half"]) for r in rows]
    ax.plot(trials, half, "k^", ms=5, label="right at half distance")
    ax.set_ylabel("goal prediction [%]")
    ax.set_ylim(-5, 105)
    ax.set_xlabel("trial")
    ax.legend(loc="lower right", fontsize=8)
    for trial, label in (marks or {}).items():
        for a in axes:
            a.axvline(trial - 0.5, color="0.4", ls=":", lw=1)
        axes[0].text(trial - 0.4, 1.0, label, fontsize=8, va="top")
    for a in axes:
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = atomic_savefig(fig, path)
    plt.close(fig)
    return out
