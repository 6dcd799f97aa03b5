"""Benchmarks of the search: the maze suite (success, steps to goal) and the graph's scale.

Why here: the acceptance numbers of docs/search.md come from these two functions, so anyone can
rerun them; this module (unlike the search core) drives the ``point-maze`` task.

``python -c "from robot_brain.search.bench import main; main()"`` runs both with the documented
settings and writes their JSON and pictures under ``out/search``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from robot_brain.envs.point_maze import PointMazeEnv
from robot_brain.fileio import atomic_write_json

from .agent import SearchConfig, SearchPolicy
from .graph import CognitiveGraph
from .harmonic import HarmonicCode

__all__ = ["main", "run_episode", "run_scale", "run_suite"]


def run_episode(env: PointMazeEnv, policy: SearchPolicy, seed: int) -> dict[str, Any]:
    """One episode of ``policy`` on ``env`` (contacts fed back every step); its record."""
    obs, _ = env.reset(seed=seed)
    policy.reset()
    info: dict[str, Any] = {}
    collisions = 0
    blocked = False
    t0 = time.perf_counter()
    while True:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        policy.feedback(info)
        collisions += int(info["collision"])
        blocked |= bool(info["blocked"])
        if terminated or truncated or policy.status not in ("searching", "reached"):
            break
    summary = policy.agent.summary()
    return {"success": bool(info["is_success"]), "steps": env.step_index, "status": policy.status,
            "collisions": collisions, "blocked": blocked, "route_cells": len(env.route(env.start_cell) or []),
            "wall_seconds": time.perf_counter() - t0, "edge_attempts": summary["edge_attempts"],
            "edge_failures": summary["edge_failures"], "nodes": summary["nodes"],
            "mean_plan_ms": summary["mean_plan_ms"]}


def _percentiles(values: list[int]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    if not a.size:
        return {}
    return {"min": float(a.min()), "p25": float(np.percentile(a, 25)), "median": float(np.median(a)),
            "p75": float(np.percentile(a, 75)), "max": float(a.max()), "mean": float(a.mean())}


def run_suite(sizes: tuple[int, ...] = (5, 7, 9), mazes_per_size: int = 7, *, seed: int = 0,
              max_steps: int = 3000, loops: float = 0.0, block_at_step: int | None = None,
              config: SearchConfig | None = None, plot_dir: str | os.PathLike | None = None
              ) -> dict[str, Any]:
    """Run the search, first try and untrained, on ``mazes_per_size`` generated mazes of each size
    (maze seeds ``seed, seed + 1, ...``), each episode within ``max_steps``.

    :param block_at_step: close a corridor of the shortest route after this step (with
        ``loops > 0`` so another route exists).
    :param plot_dir: also draw the graph of each size's first maze there (``search_<size>.png``).
    :returns: ``{"episodes": [...], "summary": {...}}`` with the success rate and the
        distribution of steps to goal, overall and per size.
    """
    episodes = []
    for size in sizes:
        for k in range(mazes_per_size):
            maze_seed = seed + k
            env = PointMazeEnv(size=size, maze_seed=maze_seed, loops=loops, block_at_step=block_at_step,
                               max_episode_steps=max_steps)
            policy = SearchPolicy(env.bounds, config)
            record = run_episode(env, policy, seed=maze_seed)
            episodes.append({"size": size, "maze_seed": maze_seed, **record})
            if plot_dir is not None and k == 0:
                from .plot import plot_search

                agent = policy.agent
                plot_search(Path(plot_dir) / f"search_{size}x{size}.png", agent.graph, walls=env.wall_boxes,
                            trajectory=np.asarray(agent.trajectory), start=agent.origin, goal=agent.goal,
                            bounds=env.bounds, title=f"{size}x{size} maze (seed {maze_seed}): "
                            f"{record['status'] if not record['success'] else 'goal'} in {record['steps']} "
                            f"steps, {record['edge_failures']} failed edges")
    summary: dict[str, Any] = {"mazes": len(episodes), "max_steps": max_steps, "loops": loops,
                               "block_at_step": block_at_step}
    for key, rows in [("all", episodes), *((f"size_{s}", [e for e in episodes if e["size"] == s])
                                           for s in sizes)]:
        ok = [e for e in rows if e["success"]]
        summary[key] = {"mazes": len(rows), "success_rate": len(ok) / len(rows) if rows else 0.0,
                        "steps_to_goal": _percentiles([e["steps"] for e in ok]),
                        "collisions_mean": float(np.mean([e["collisions"] for e in rows])) if rows else 0.0}
    return {"episodes": episodes, "summary": summary}


def _lattice_graph(nodes: int, rng: np.random.Generator, visited_fraction: float = 0.7,
                   pruned_fraction: float = 0.2) -> CognitiveGraph:
    """A search-like graph of about ``nodes`` places: a square lattice, some edges pruned (walls),
    most places visited, the rest candidates."""
    side = int(np.ceil(np.sqrt(nodes)))
    g = CognitiveGraph(HarmonicCode(), spacing=1.0, capacity=side * side)
    for i in range(side * side):
        g.add_node(np.array([i % side, i // side], dtype=float), visited=rng.random() < visited_fraction)
    for i in range(side * side):
        x, y = i % side, i // side
        for j in ([i + 1] if x + 1 < side else []) + ([i + side] if y + 1 < side else []):
            g.add_edge(i, j, 1.0)
            if rng.random() < pruned_fraction:
                g.weaken(i, j, 0.01)
    return g


def run_scale(node_counts: tuple[int, ...] = (250, 500, 1000, 2000, 5000, 10000), *, calls: int = 50,
              seed: int = 0) -> dict[str, Any]:
    """Planning time per call (the agent's plan: spread from every candidate place and the goal,
    steepest ascent from a visited place) and graph memory as the graph grows."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in node_counts:
        g = _lattice_graph(n, rng)
        goal = g.positions[-1]
        starts = rng.choice(np.flatnonzero(g.visited), size=calls)
        times = []
        for start in starts:
            t0 = time.perf_counter()
            seeds = np.flatnonzero(~g.visited)
            costs = 1.7 * np.abs(g.positions[seeds] - goal).sum(axis=1)
            g.plan(int(start), seeds, costs)
            times.append(time.perf_counter() - t0)
        ms = 1e3 * np.asarray(times)
        rows.append({"nodes": g.n, "edges": g.stats()["edges"], "graph_bytes": g.nbytes,
                     "plan_ms_median": float(np.median(ms)), "plan_ms_p95": float(np.percentile(ms, 95)),
                     "plan_ms_max": float(ms.max())})
    return {"rows": rows, "calls": calls, "title": "cognitive graph: planning time and memory"}


def main(out: str | os.PathLike = "out/search") -> dict[str, Any]:
    """The documented benchmark runs: the suite (21 mazes, three sizes), the same with a corridor
    closed mid-episode (mazes with loops), and the scale run; JSON and pictures under ``out``."""
    from .plot import plot_scale

    out = Path(out)
    suite = run_suite(plot_dir=out)
    atomic_write_json(out / "suite.json", suite)
    blocked = run_suite(loops=0.15, block_at_step=40)
    atomic_write_json(out / "suite_blocked.json", blocked)
    scale = run_scale()
    atomic_write_json(out / "scale.json", scale)
    plot_scale(out / "search_scale.png", scale)
    result = {"suite": suite["summary"], "blocked": blocked["summary"], "scale": scale["rows"]}
    atomic_write_json(out / "summary.json", result)
    return result
