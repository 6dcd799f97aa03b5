"""Episode metrics: aggregation, tables (rich), plots (matplotlib) and videos (imageio).

Shared by the CLI verbs (``sim``, ``eval``, ``demo``, ``compare``) and the trainer, so every
command reports the same numbers under the same names. Per-episode records are the dicts of
:meth:`robot_brain.envs.EpisodeMetrics.as_dict` plus the rates measured by the runner
(``ticks``, ``wall_time_total``); :func:`aggregate` turns a list of them into one summary.

Heavy modules (matplotlib, imageio, PIL) are imported inside the functions that need them.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table

from robot_brain.fileio import atomic_savefig

if TYPE_CHECKING:
    from PIL import ImageFont

__all__ = [
    "VideoWriter",
    "aggregate",
    "aggregate_table",
    "caption_frame",
    "comparison_table",
    "episode_rates",
    "episodes_table",
    "iqm",
    "mean_ci",
    "plot_contact_force",
    "stratified_bootstrap",
    "tile_frames",
]


def _div(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def episode_rates(steps: int, ticks: int, sim_time: float, loop_wall: float,
                  total_wall: float) -> dict[str, float]:
    """Rates achieved in one run.

    ``policy_hz``/``control_hz`` are slow/fast ticks per second of *simulated* time (they must
    equal the configured rates); ``realtime_factor`` is sim time over wall time (policy included);
    ``control_hz_wall`` is how many fast ticks per wall-clock second the loop managed, i.e. the
    highest control rate this machine could pace in real time; ``env_steps_per_s`` is slow ticks
    (env steps) per wall-clock second.
    """
    return {
        "policy_hz": _div(steps, sim_time),
        "control_hz": _div(ticks, sim_time),
        "realtime_factor": _div(sim_time, total_wall),
        "control_hz_wall": _div(ticks, loop_wall),
        "env_steps_per_s": _div(steps, total_wall),
    }


def _sum_counts(episodes: Sequence[Mapping[str, Any]], key: str) -> dict[str, int]:
    total: Counter[str] = Counter()
    for ep in episodes:
        total.update(ep.get(key, {}))
    return dict(sorted(total.items()))


def aggregate(episodes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Summary of per-episode records (see module docstring); rates pool all episodes."""
    n = len(episodes)
    if n == 0:
        raise ValueError("aggregate() needs at least one episode")
    rets = np.array([ep["return"] for ep in episodes], dtype=np.float64)
    forces = np.array([ep["max_contact_force"] for ep in episodes], dtype=np.float64)
    steps = sum(ep["steps"] for ep in episodes)
    ticks = sum(ep["ticks"] for ep in episodes)
    sim_time = sum(ep["sim_time"] for ep in episodes)
    loop_wall = sum(ep["wall_time"] for ep in episodes)
    total_wall = sum(ep["wall_time_total"] for ep in episodes)
    violations = sum(ep["violations"] for ep in episodes)
    interventions = sum(ep["interventions"] for ep in episodes)
    return {
        "episodes": n,
        "success_rate": sum(bool(ep["success"]) for ep in episodes) / n,
        "return_mean": float(rets.mean()),
        "return_std": float(rets.std()),
        "violations_total": violations,
        "violations_per_episode": violations / n,
        "episodes_with_violation": sum(ep["violations"] > 0 for ep in episodes),
        "violations_by_kind": _sum_counts(episodes, "violations_by_kind"),
        "max_contact_force": float(forces.max()),
        "max_contact_force_mean": float(forces.mean()),
        "interventions_total": interventions,
        "interventions_per_episode": interventions / n,
        "interventions_by_reason": _sum_counts(episodes, "interventions_by_reason"),
        "limit_events": _sum_counts(episodes, "limit_events"),
        "pushes": sum(ep.get("pushes", 0) for ep in episodes),
        "steps": steps,
        "ticks": ticks,
        "sim_time": sim_time,
        "wall_time": loop_wall,
        "wall_time_total": total_wall,
        **episode_rates(steps, ticks, sim_time, loop_wall, total_wall),
    }


# -- tables ------------------------------------------------------------------------------------
def _kinds(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "-"


def _f(x: float, fmt: str = ".2f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def episodes_table(episodes: Sequence[Mapping[str, Any]], title: str = "episodes") -> Table:
    """One row per episode."""
    t = Table(title=title, title_justify="left")
    for name in ("ep", "seed", "steps", "return", "success", "violations", "max F [N]",
                 "interventions", "pushes"):
        t.add_column(name, justify="left" if name in ("violations", "interventions") else "right")
    for i, ep in enumerate(episodes):
        viol = str(ep["violations"])
        if ep["violations"]:
            viol += f" ({_kinds(ep['violations_by_kind'])})"
        interv = str(ep["interventions"])
        if ep["interventions"]:
            interv += f" ({_kinds(ep['interventions_by_reason'])})"
        t.add_row(str(i), str(ep.get("seed", "")), str(ep["steps"]), _f(ep["return"]),
                  "[green]yes[/]" if ep["success"] else "[red]no[/]", viol,
                  _f(ep["max_contact_force"], ".1f"), interv, str(ep.get("pushes", 0)))
    return t


def _summary_rows(agg: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        ("success rate", f"{agg['success_rate']:.0%} ({round(agg['success_rate'] * agg['episodes'])}"
                         f"/{agg['episodes']})"),
        ("return", f"{_f(agg['return_mean'])} +/- {_f(agg['return_std'])}"),
        ("violations / episode", f"{agg['violations_per_episode']:.2f}  "
                                 f"({_kinds(agg['violations_by_kind'])})"),
        ("max contact force [N]", f"{_f(agg['max_contact_force'], '.1f')} "
                                  f"(episode mean {_f(agg['max_contact_force_mean'], '.1f')})"),
        ("interventions / episode", f"{agg['interventions_per_episode']:.2f}  "
                                    f"({_kinds(agg['interventions_by_reason'])})"),
        ("limit events", _kinds(agg["limit_events"])),
        ("pushes", str(agg["pushes"])),
    ]


def aggregate_table(agg: Mapping[str, Any], title: str = "aggregate") -> Table:
    """Key-value summary of :func:`aggregate`, with the achieved rates."""
    t = Table(title=title, title_justify="left")
    t.add_column("metric")
    t.add_column("value")
    for k, v in _summary_rows(agg):
        t.add_row(k, v)
    t.add_row("policy rate (sim time)", f"{_f(agg['policy_hz'], '.1f')} Hz")
    t.add_row("control rate (sim time)", f"{_f(agg['control_hz'], '.0f')} Hz")
    t.add_row("real-time factor", f"{_f(agg['realtime_factor'], '.2f')}x "
                                  f"({_f(agg['env_steps_per_s'], '.0f')} env steps/s)")
    t.add_row("control rate achievable (wall clock)", f"{_f(agg['control_hz_wall'], '.0f')} Hz")
    return t


COMPARISON_ROWS: tuple[tuple[str, str, str], ...] = (
    # (row label, aggregate key, format)
    ("success rate", "success_rate", ".0%"),
    ("violations / episode", "violations_per_episode", ".2f"),
    ("episodes with a violation", "episodes_with_violation", "d"),
    ("max contact force [N]", "max_contact_force", ".1f"),
    ("mean episode max force [N]", "max_contact_force_mean", ".1f"),
    ("interventions / episode", "interventions_per_episode", ".2f"),
    ("return (mean)", "return_mean", ".2f"),
    ("pushes", "pushes", "d"),
)


def comparison_table(results: Mapping[str, Mapping[str, Any]], title: str = "") -> Table:
    """Configurations side by side (one column each), rows as in :data:`COMPARISON_ROWS`."""
    t = Table(title=title or None, title_justify="left")
    t.add_column("metric")
    for label in results:
        t.add_column(label, justify="right")
    for label, key, fmt in COMPARISON_ROWS:
        t.add_row(label, *(_f(agg[key], fmt) for agg in results.values()))
    return t


# -- plots -------------------------------------------------------------------------------------
def _finish(fig: Any, path: Path, title: str) -> Path:
    """Title, lay out, write ``fig`` to ``path`` atomically and free it."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
    return path


def plot_contact_force(path: str | Path, traces: Sequence[tuple[str, np.ndarray, np.ndarray]],
                       max_forces: Mapping[str, Sequence[float]],
                       violations: Mapping[str, Sequence[int]], force_limit: float,
                       title: str = "") -> Path:
    """Contact force vs time (one trace per configuration, force limit dashed), plus the
    distribution of per-episode max force and the violations per episode of each configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [2.2, 1, 1]})
    ax = axes[0]
    for label, t, f in traces:
        ax.plot(t, f, label=label, lw=1.2)
    ax.axhline(force_limit, color="k", ls="--", lw=1, label=f"force limit {force_limit:g} N")
    ax.set_xlabel("time [s]")
    ax.set_ylabel("max contact force per policy step [N]")
    ax.set_title("contact force, first episode")
    ax.legend(fontsize=8, loc="upper right")
    labels = list(max_forces)
    ax = axes[1]
    ax.boxplot([list(max_forces[k]) for k in labels], showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20, ha="right", fontsize=8)
    ax.axhline(force_limit, color="k", ls="--", lw=1)
    ax.set_ylabel("episode max contact force [N]")
    ax.set_title("max contact force per episode")
    ax = axes[2]
    means = [float(np.mean(violations[k])) for k in labels]
    ax.bar(range(len(labels)), means, color=[f"C{i}" for i in range(len(labels))])
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("violations per episode (mean)")
    ax.set_title("violations")
    return _finish(fig, path, title)


# -- video -------------------------------------------------------------------------------------
CAPTION_HEIGHT = 32  # px; keeps 240-px frames at a multiple of 16 rows for the H.264 encoder


def _font(size: int = 12) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def caption_frame(frame: np.ndarray, lines: Sequence[str], alert: bool = False) -> np.ndarray:
    """``frame`` (H, W, 3) with a caption band of up to two lines above it; the band turns red
    when ``alert`` (e.g. a violation on this step)."""
    from PIL import Image, ImageDraw

    w = frame.shape[1]
    band = Image.new("RGB", (w, CAPTION_HEIGHT), (150, 20, 20) if alert else (25, 25, 30))
    draw = ImageDraw.Draw(band)
    font = _font(12)
    for i, line in enumerate(lines[:2]):
        draw.text((4, 2 + 15 * i), line, fill=(255, 255, 255), font=font)
    return np.concatenate([np.asarray(band), frame[..., :3]], axis=0)


def tile_frames(frames: Sequence[np.ndarray], cols: int | None = None) -> np.ndarray:
    """Tile equally sized frames into a grid (``cols`` default: side by side up to 2, else a
    near-square grid); empty cells are black."""
    n = len(frames)
    if n == 0:
        raise ValueError("tile_frames() needs at least one frame")
    cols = cols or (n if n <= 2 else math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    h, w, c = frames[0].shape
    out = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i, f in enumerate(frames):
        r, k = divmod(i, cols)
        out[r * h:(r + 1) * h, k * w:(k + 1) * w] = f
    return out


class VideoWriter:
    """Incremental H.264 MP4 writer (imageio + its bundled ffmpeg): frames are encoded as they
    arrive, so long videos need no memory. The file is written under a temporary name and moved
    into place by :meth:`close`, so an interrupted run leaves no truncated video; use it as a
    context manager (an exception discards the file).

    :param path: the ``.mp4`` to write. :param fps: frames per second.
    """

    def __init__(self, path: str | Path, fps: float = 20.0) -> None:
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary name of its own (mkstemp): two runs writing the same video never share it.
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".tmp{self.path.suffix}",
                                   dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = imageio.get_writer(self._tmp, fps=fps, codec="libx264", quality=7,
                                          macro_block_size=16, ffmpeg_log_level="error")
        self.frames = 0

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it into place (``ValueError`` if no frame was written)."""
        self._writer.close()
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            raise ValueError("a video needs at least one frame")
        os.replace(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

# -- interval estimates (shared by every benchmark and by ``robot-brain report``) ---------------
def iqm(x: np.ndarray) -> float:
    """Interquartile mean: the mean after cutting ``int(0.25 n)`` scores from each end (as
    ``scipy.stats.trim_mean(x, 0.25)``)."""
    x = np.sort(np.asarray(x, dtype=np.float64).ravel())
    cut = int(0.25 * len(x))
    return float(x[cut:len(x) - cut].mean())


def stratified_bootstrap(scores: Mapping[str, Any], func: Callable[[Any], Any], *, reps: int = 2000,
                         seed: int = 0, by_task: bool = False) -> tuple[Any, Any, Any]:
    """``func`` of the scores, and its 95 % percentile interval over ``reps`` resamples drawing
    values with replacement within each stratum (``scores``: stratum -> values; one stratum is
    the plain bootstrap). ``func`` gets the pooled values, or with ``by_task`` the list of the
    strata's arrays (e.g. to weight tasks equally)."""
    rng = np.random.default_rng(seed)
    strata = [np.asarray(v, dtype=np.float64) for v in scores.values()]

    def apply(parts: list[np.ndarray]) -> Any:
        return func(parts if by_task else np.concatenate(parts))

    point = apply(strata)
    draws = np.asarray([apply([t[rng.integers(0, len(t), len(t))] for t in strata]) for _ in range(reps)],
                       dtype=np.float64)
    return point, np.percentile(draws, 2.5, axis=0), np.percentile(draws, 97.5, axis=0)


def mean_ci(values: Sequence[float], reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` and its 95 % percentile-bootstrap interval (NaNs when empty)."""
    if len(values) == 0:
        return (float("nan"),) * 3
    point, low, high = stratified_bootstrap({"": values}, np.mean, reps=reps, seed=seed)
    return float(point), float(low), float(high)


def plot_intervals(path: str | Path, rows: Sequence[tuple[str, str, tuple[float, float, float] | None,
                                                     tuple[float, float, float] | None]],
                   left: str, right: str, left_ref: float | None = None, title: str = "") -> Path:
    """A forest plot in two panels: per row a point estimate with its interval ``(value, low,
    high)`` on the left and another on the right (``None``: nothing drawn), one colour per
    series. ``rows`` are ``(row label, series, left, right)``; rows with the same label share a
    line. A vertical line marks 0, a dashed one ``left_ref`` (e.g. a target) on the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = list(dict.fromkeys(r[0] for r in rows))
    series = list(dict.fromkeys(r[1] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.42 * len(labels) + 1.6), sharey=True,
                             gridspec_kw={"width_ratios": [1.4, 1]})
    step = 0.6 / max(len(series), 1)
    for r_label, name, *values in rows:
        k = series.index(name)
        y = labels.index(r_label) + (k - (len(series) - 1) / 2) * step
        for ax, v in zip(axes, values, strict=True):
            if v is not None:
                ax.errorbar(v[0], y, xerr=[[v[0] - v[1]], [v[2] - v[0]]], fmt="o", ms=4, capsize=2,
                            color=f"C{k}", label=name)
    for ax, xlabel in zip(axes, (left, right), strict=True):
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    if left_ref is not None:
        axes[0].axvline(left_ref, color="k", ls="--", lw=0.8)
    axes[0].set_yticks(range(len(labels)), labels, fontsize=8)
    axes[0].invert_yaxis()
    handles, names = axes[0].get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    axes[1].legend(unique.values(), unique.keys(), fontsize=8, loc="lower right")
    return _finish(fig, path, title)
