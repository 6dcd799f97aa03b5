"""Pictures of a search: the graph grown over the workspace, and the scale benchmark.

Why: the graph is the agent's whole knowledge, so drawing it over the true walls shows at once
what was tried, what failed and what the agent believes; matplotlib (Agg, imported here only)
and atomic writes, so a picture is complete or absent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from robot_brain.fileio import atomic_savefig

from .graph import CognitiveGraph

__all__ = ["plot_scale", "plot_search"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_search(path: str | os.PathLike, graph: CognitiveGraph, *, walls: np.ndarray | None = None,
                trajectory: np.ndarray | None = None, start: np.ndarray | None = None,
                goal: np.ndarray | None = None, bounds: Any = None, title: str = "") -> Path:
    """Draw ``graph`` (visited places, candidate places, trusted, weakened and pruned edges) over
    ``walls`` (``(k, 4)`` boxes ``xlo, ylo, xhi, yhi``; only drawn, the search never reads them)
    with the ``trajectory`` actually taken; write ``path`` (``.png``, ``.svg`` ...) atomically."""
    plt = _pyplot()
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(6.4, 6.4))
    try:
        if walls is not None:
            for xlo, ylo, xhi, yhi in np.asarray(walls):
                ax.add_patch(Rectangle((xlo, ylo), xhi - xlo, yhi - ylo, color="0.1", lw=0, zorder=4))
        pairs, weight, fails = graph.edges()
        pos = graph.positions
        segments = pos[pairs] if len(pairs) else np.zeros((0, 2, 2))
        pruned = weight < graph.prune_below
        weakened = (fails > 0) & ~pruned
        trusted = ~pruned & ~weakened
        styles: tuple[tuple[np.ndarray, dict[str, Any]], ...] = (
            (trusted, {"colors": "tab:blue", "linewidths": 1.0, "alpha": 0.6, "label": "edge"}),
            (weakened, {"colors": "tab:orange", "linewidths": 1.6, "label": "weakened edge"}),
            (pruned, {"colors": "tab:red", "linewidths": 1.0, "linestyles": ":", "label": "pruned edge"}))
        for mask, style in styles:
            if mask.any():
                ax.add_collection(LineCollection(list(segments[mask]), **style))
        visited = graph.visited
        ax.scatter(*pos[visited].T, s=9, color="tab:blue", zorder=3, label="visited place")
        ax.scatter(*pos[~visited].T, s=9, facecolors="none", edgecolors="0.5", zorder=3,
                   label="candidate place")
        if trajectory is not None and len(trajectory):
            tr = np.asarray(trajectory)
            ax.plot(tr[:, 0], tr[:, 1], color="tab:green", lw=1.0, alpha=0.7, label="path taken", zorder=2)
        if start is not None:
            ax.plot(*np.asarray(start), marker="s", color="k", ms=8, label="start", zorder=5)
        if goal is not None:
            ax.plot(*np.asarray(goal), marker="*", color="gold", mec="k", ms=16, label="goal", zorder=5)
        if bounds is not None:
            low, high = (np.asarray(b, dtype=float) for b in bounds)
            ax.set_xlim(low[0], high[0])
            ax.set_ylim(low[1], high[1])
        else:
            ax.autoscale_view()
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=10)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=4, fontsize=7, frameon=False)
        fig.tight_layout()
        return atomic_savefig(fig, path, dpi=110)
    finally:
        plt.close(fig)


def plot_scale(path: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Planning time per call and memory against graph size (``bench.run_scale``'s result)."""
    plt = _pyplot()
    rows = result["rows"]
    nodes = [r["nodes"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    try:
        a1.plot(nodes, [r["plan_ms_median"] for r in rows], "o-", label="median")
        a1.plot(nodes, [r["plan_ms_p95"] for r in rows], "s--", label="95th percentile")
        a1.axhline(5.0, color="tab:red", lw=0.8, ls=":", label="5 ms budget")
        a1.set_xlabel("graph nodes")
        a1.set_ylabel("planning time per call [ms]")
        a1.set_yscale("log")
        a1.legend(fontsize=8)
        a2.plot(nodes, [r["graph_bytes"] / 2 ** 20 for r in rows], "o-")
        a2.set_xlabel("graph nodes")
        a2.set_ylabel("graph memory [MiB]")
        fig.suptitle(result.get("title", "cognitive graph: scale"), fontsize=10)
        fig.tight_layout()
        return atomic_savefig(fig, path, dpi=110)
    finally:
        plt.close(fig)
