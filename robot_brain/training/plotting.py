"""Learning curves of training runs from their ``metrics.json`` (matplotlib, Agg backend).

Runs are grouped by task, algorithm and shield; a group with several runs (seeds) is drawn as the
mean over runs with a band from the lowest to the highest run, on the step range all of its runs
cover (each run's curve is interpolated onto a common grid).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_brain.fileio import atomic_savefig

from .metrics import MetricsError, read_metrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PANELS", "PlotError", "load_curves", "plot_report", "plot_runs", "plot_tune"]

PANELS = (
    ("return_mean", "episode return"),
    ("success_rate", "success rate"),
    ("cost_mean", "cost per episode (violating steps)"),
    ("cumulative_violations", "cumulative violations during training"),
)


class PlotError(ValueError):
    """A run that cannot be plotted (one-line message)."""


def load_curves(run_dir: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a run (checked by :func:`.metrics.read_metrics`, so a damaged
    file is one line naming it), with at least one learning-curve point."""
    path = Path(run_dir) / "metrics.json"
    if not Path(run_dir).is_dir():
        raise PlotError(f"run directory {str(run_dir)!r} not found")
    if not path.exists() and not path.is_symlink():
        raise PlotError(f"{run_dir} has no metrics.json (not a training run?)")
    try:
        m = read_metrics(path)
    except MetricsError as exc:
        raise PlotError(str(exc)) from None
    if not m.get("curve"):
        raise PlotError(f"{run_dir} has no learning-curve points yet (fewer than 1000 steps trained)")
    return m


def _series(m: dict[str, Any], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(p["step"], p[key]) for p in m["curve"] if p.get(key) is not None]
    if not pts:
        return np.zeros(0), np.zeros(0)
    a = np.array(pts, dtype=np.float64)
    return a[:, 0], a[:, 1]


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(y) < 2:
        return y
    n = min(n, len(y))
    kernel = np.ones(n) / n
    padded = np.concatenate([np.full(n - 1, y[0]), y])
    return np.convolve(padded, kernel, mode="valid")


def _plot_evaluations(ax: Axes, groups: dict[str, list[tuple[Path, dict[str, Any]]]],
                      key: str = "success_rate") -> None:
    """Deterministic evaluations (``key``: success rate or mean return; mean over the runs that
    evaluated at each step) as dashed markers on that panel: the training episodes of the return
    panel carry the exploration noise, which differs between policies (a circuit's fixed 0.1 std,
    an MLP's learned one starting at 1)."""
    for i, runs in enumerate(groups.values()):
        by_step: dict[int, list[float]] = {}
        for _, m in runs:
            for e in m.get("evaluations") or []:
                by_step.setdefault(int(e["step"]), []).append(float(e[key]))
        if by_step:
            steps = sorted(by_step)
            ax.plot(steps, [np.mean(by_step[s]) for s in steps], linestyle="--", marker="o", markersize=3,
                    color=f"C{i}", alpha=0.7,  # one legend entry: the group colours say which is which
                    label="deterministic evaluation (dashed)" if i == 0 else "_nolegend_")
    if any(m.get("evaluations") for runs in groups.values() for _, m in runs):
        ax.legend(fontsize=8, loc="upper left")


def _policy_of(run_dir: Path, m: dict[str, Any]) -> str:
    """The run's policy class name (``MlpPolicy``, ``NcapPolicy``): from ``metrics.json``, else
    from its ``config.yaml`` (runs written before the record had it), else ``MlpPolicy``."""
    if isinstance(m.get("policy"), str):
        return str(m["policy"])
    try:
        import yaml

        hp = (yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}).get("hyperparams")
    except (OSError, ValueError, AttributeError):  # no or unreadable config: the MLP, as before
        return "MlpPolicy"
    policy = hp.get("policy") if isinstance(hp, dict) else None
    return policy if isinstance(policy, str) else "MlpPolicy"


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path, *, smooth: int = 5,
              title: str | None = None) -> dict[str, list[Path]]:
    """Plot the runs into ``out``; returns the groups (label -> run directories)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for rd in run_dirs:
        m = load_curves(rd)
        policy = _policy_of(Path(rd), m)
        shown = "" if policy == "MlpPolicy" else f" {policy}"  # a circuit and an MLP are two groups
        label = f"{m.get('task')}/{m.get('algo')}{shown} shield={m.get('shield')}"
        groups.setdefault(label, []).append((Path(rd), m))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for (key, name), ax in zip(PANELS, axes.flat, strict=True):
        for i, (label, runs) in enumerate(groups.items()):
            color = f"C{i}"
            series = [_series(m, key) for _, m in runs]
            series = [(x, _smooth(y, smooth if key != "cumulative_violations" else 1))
                      for x, y in series if len(x)]
            if not series:
                continue
            if len(series) == 1:
                x, y = series[0]
                ax.plot(x, y, color=color, label=f"{label} (1 run)")
                continue
            lo = max(x[0] for x, _ in series)
            hi = min(x[-1] for x, _ in series)
            if hi <= lo:
                continue
            grid = np.linspace(lo, hi, 200)
            ys = np.array([np.interp(grid, x, y) for x, y in series])
            ax.plot(grid, ys.mean(axis=0), color=color, label=f"{label} (mean of {len(series)} runs)")
            ax.fill_between(grid, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.2, linewidth=0)
        if key in ("success_rate", "return_mean"):
            _plot_evaluations(ax, groups, key)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        if key == "success_rate":
            ax.set_ylim(-0.02, 1.02)
    for ax in axes[1]:
        ax.set_xlabel("environment steps")
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.suptitle(title or "learning curves (rolling mean over the last 50 episodes; "
                          "band: min..max over runs)",
                 fontsize=11)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_savefig(fig, out, dpi=110)
    plt.close(fig)
    return {label: [rd for rd, _ in runs] for label, runs in groups.items()}


def plot_report(result: dict[str, Any], out: str | Path) -> list[Path]:
    """The pictures of :func:`robot_brain.training.results.report` in folder ``out``: interval
    estimates of the aggregates and performance profiles (when there are aggregates), learning
    curves per task (IQM with 95 % bands), and the cumulative violations during training (mean
    with 95 % bands) for tasks where runs violated. Returns the files written (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    files: list[Path] = []
    if result["aggregate"]:
        files += _plot_aggregates(plt, result, out)
    methods = [a["method"] for a in result["aggregate"]]
    tasks = sorted({r["task"] for r in result["per_task"]})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for r in (r for r in result["per_task"] if r["task"] == task):
            c = r["curve"]
            if not c["step"]:
                continue
            color = f"C{methods.index(r['method'])}" if r["method"] in methods else None
            ax.plot(c["step"], c["iqm"], color=color, label=f"{r['method']} ({r['runs']} runs)")
            ax.fill_between(c["step"], c["low"], c["high"], color=color, alpha=0.2)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("environment steps")
        what = "success rate" if result["metric"] == "success" else "return"
        ax.set_ylabel(f"evaluation {what} (IQM)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    files.append(_finish(plt, fig, out / "report_curves.png"))
    touched = sorted({r["task"] for r in result["per_task"] if r["safety"]["violation_curve"]["step"]
                      and r["safety"]["training_violations"]["mean"]})
    if touched:
        fig, axes = plt.subplots(1, len(touched), figsize=(5.5 * len(touched), 3.8), squeeze=False)
        for ax, task in zip(axes[0], touched, strict=True):
            for i, r in enumerate(r for r in result["per_task"] if r["task"] == task):
                c = r["safety"]["violation_curve"]
                color = f"C{methods.index(r['method'])}" if r["method"] in methods else f"C{i}"
                ax.plot(c["step"], c["mean"], color=color, label=f"{r['method']} ({r['runs']} runs)")
                ax.fill_between(c["step"], c["low"], c["high"], color=color, alpha=0.2)
            ax.set_title(task, fontsize=10)
            ax.set_xlabel("environment steps")
            ax.set_ylabel("cumulative violating steps (mean)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        files.append(_finish(plt, fig, out / "report_violations.png"))
    return files


def plot_tune(rows: Sequence[dict[str, Any]], path: str | Path, *, metric: str = "return") -> Path:
    """The search of ``robot-brain tune`` in one picture: each trial's objective in the order
    the trials ended with the best so far (left), and every trial's evaluations over steps,
    pruned trials in grey ending where they were stopped (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    what = "success rate" if metric == "success" else "return"
    done = [r for r in rows if r["state"] == "complete"]
    pruned = [r for r in rows if r["state"] == "pruned" and r["intermediate"]]
    if done:
        n = [r["number"] for r in done]
        v = [r["value"] for r in done]
        left.plot(n, v, "o", color="C0", label="complete")
        left.step(n, np.maximum.accumulate(v), where="post", color="C1", label="best so far")
        for r in done:
            if r["baseline"]:
                left.plot([r["number"]], [r["value"]], "s", mfc="none", mec="k", ms=10,
                          label="shipped configuration")
    if pruned:
        left.plot([r["number"] for r in pruned], [list(r["intermediate"].values())[-1] for r in pruned],
                  "x", color="0.5", label="pruned (last evaluation)")
    left.set_xlabel("trial")
    left.set_ylabel(f"{what} (last evaluation)")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    palette = [f"C{i}" for i in range(10) if i != 7]  # C7 is grey, the colour of pruned trials
    for i, r in enumerate(r for r in rows if r["intermediate"]):
        steps, values = zip(*r["intermediate"].items(), strict=True)
        pruned = r["state"] == "pruned"
        right.plot(steps, values, marker=".", lw=0.8 if pruned else 1.2,
                   color="0.6" if pruned else palette[i % len(palette)])
    right.set_xlabel("environment steps")
    right.set_ylabel(f"evaluation {what}")
    right.set_title("evaluations per trial (grey: pruned)", fontsize=10)
    right.grid(alpha=0.3)
    return _finish(plt, fig, Path(path))


def _finish(plt: Any, fig: Any, path: Path) -> Path:
    """Lay ``fig`` out, write it to ``path`` atomically and release it."""
    fig.tight_layout()
    written = atomic_savefig(fig, path)
    plt.close(fig)
    return written


def _plot_aggregates(plt: Any, result: dict[str, Any], out: Path) -> list[Path]:
    """Interval estimates of the aggregates and performance profiles, one colour per method."""
    agg = result["aggregate"]
    metric = "success rate" if result["metric"] == "success" else "normalised return"
    names = (("iqm", "IQM"), ("median", "median"), ("mean", "mean"), ("optimality_gap", "optimality gap"))
    files = []
    fig, axes = plt.subplots(1, 4, figsize=(13, 0.6 * len(agg) + 1.6), sharey=True)
    for ax, (key, title) in zip(axes, names, strict=True):
        for i, a in enumerate(agg):
            lo, hi = a[f"{key}_ci"]
            ax.barh(i, hi - lo, left=lo, height=0.6, color=f"C{i}", alpha=0.7)
            ax.plot([a[key]] * 2, [i - 0.3, i + 0.3], color="k", lw=1.5)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(metric)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(agg)), [a["method"] for a in agg], fontsize=8)
    fig.suptitle(f"aggregates over runs and tasks, 95 % stratified bootstrap intervals "
                 f"({result['reps']} resamples)", fontsize=10)
    files.append(_finish(plt, fig, out / "report_intervals.png"))

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, a in enumerate(agg):
        p = a["profile"]
        ax.plot(p["tau"], p["share"], color=f"C{i}", label=f"{a['method']} ({a['runs']} runs)")
        ax.fill_between(p["tau"], p["low"], p["high"], color=f"C{i}", alpha=0.2)
    ax.set_xlabel(f"{metric} threshold tau")
    ax.set_ylabel("share of runs with score > tau")
    ax.set_title("performance profiles (95 % bands)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    files.append(_finish(plt, fig, out / "report_profiles.png"))
    return files
