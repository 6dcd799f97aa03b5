"""``robot-brain compare TASK``: the same seeded episodes under several shields, side by side."""

from __future__ import annotations

import argparse
import contextlib
import math
from pathlib import Path
from typing import Any

from ._common import CliError, make_task_env, nonneg_int, output_path, positive_int

NAME = "compare"
HELP = "run the same episodes under several shields (no reflex, hard limits, a critic) and compare"
DESCRIPTION = """Run a policy on the same episodes of TASK under each shield given (default:
none, limits and the critic shipped for the task), with disturbances on by default (random
pushes and shifted walls). For seed s, episode i is seeded 1000*s + i, so every shield meets the
same wall shifts and push schedule. Prints, per shield: violations per episode (mean, and per
seed), change against the first shield, success rate, per-episode max contact force (mean / p95 /
max) and interventions per episode (all, and critic onsets). --json writes everything, --plot the
distribution of the per-episode max contact force. Timing of the critic and of the fast tick with
it: 'robot-brain bench --critic DIR'.

examples:
  robot-brain compare maze --episodes 10
  robot-brain compare maze --shield none --shield limits --shield runs/maze/critic \\
      --episodes 50 --seeds 0 1 2 --json out/compare.json --plot out/forces.png
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", metavar="TASK", help="task name or Gymnasium id, e.g. maze")
    p.add_argument("--shield", dest="shields", action="append", default=None, metavar="SPEC",
                   help="a shield to compare: 'none', 'limits' or a critic directory (repeatable; "
                        "default: none, limits and the task's shipped critic, if any)")
    p.add_argument("--episodes", type=positive_int, default=20, metavar="N",
                   help="episodes per seed and shield (default: 20)")
    p.add_argument("--seeds", type=nonneg_int, nargs="+", default=[0], metavar="S",
                   help="seeds; episode i of seed s uses 1000*s + i (default: 0)")
    p.add_argument("--policy", default="scripted", metavar="POLICY",
                   help="built-in policy or a training run directory (default: scripted)")
    p.add_argument("--no-disturb", dest="disturb", action="store_false",
                   help="no pushes or shifted walls (default: Disturbances.default())")
    p.add_argument("--json", type=output_path((".json",)), default=None, metavar="FILE",
                   help="write per-shield summaries and per-episode metrics to FILE (atomically)")
    p.add_argument("--plot", type=output_path((".png", ".svg", ".pdf")), default=None,
                   metavar="FILE.png", help="box plot of the per-episode max contact force")


def _summary(by_seed: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    import numpy as np

    eps = [e for x in by_seed.values() for e in x]
    v = np.array([e["violations"] for e in eps], dtype=float)
    f = np.array([e["max_contact_force"] for e in eps], dtype=float)
    return {
        "episodes": len(eps), "violations_per_episode": float(v.mean()),
        "violations_per_episode_by_seed": {s: float(np.mean([e["violations"] for e in x]))
                                           for s, x in by_seed.items()},
        "success_rate": float(np.mean([e["success"] for e in eps])),
        "max_force_mean": float(f.mean()), "max_force_p95": float(np.percentile(f, 95)),
        "max_force_max": float(f.max()),
        "interventions_per_episode": float(np.mean([e["interventions"] for e in eps])),
        "critic_per_episode": float(np.mean([e["interventions_by_reason"].get("critic", 0)
                                             for e in eps])),
        "max_contact_force": f.tolist(),
    }


def _label(spec: str) -> str:
    """A short column label: ``none``, ``limits`` or ``critic (DIR's name)``."""
    return spec if spec in ("none", "limits") else f"critic ({Path(spec).name})"


def _plot(path: Path, results: dict[str, dict[str, Any]], force_limit: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robot_brain.fileio import atomic_savefig

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.boxplot([r["max_contact_force"] for r in results.values()], showfliers=True)
    ax.set_xticks(range(1, len(results) + 1), list(results), rotation=10, fontsize=8)
    ax.axhline(force_limit, color="r", ls="--", lw=1, label=f"force limit {force_limit:g} N")
    ax.set(ylabel="max contact force per episode [N]", title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from robot_brain.rollout import run_episode
    from robot_brain.safety.shield import check_shield_spec

    from ._common import console, save_results
    from ._rollout import progress
    from .demo import shipped_critic
    from .sim import build_policy, resolve

    spec = resolve(args.task)
    shields = args.shields
    if shields is None:
        critic = shipped_critic(spec.name)
        shields = ["none", "limits", *([str(critic)] if critic is not None else [])]
    try:
        shields = list(dict.fromkeys(check_shield_spec(s) for s in shields))
    except ValueError as exc:
        raise CliError(f"argument --shield: {exc}") from None
    options: dict[str, Any] = {"disturbances": "default"} if args.disturb else {}
    results: dict[str, dict[str, Any]] = {}
    records: dict[str, dict[int, list[dict[str, Any]]]] = {}
    force_limit = math.nan
    with progress(len(shields) * len(args.seeds) * args.episodes, f"compare {spec.name}") as bar:
        for shield in shields:
            by_seed: dict[int, list[dict[str, Any]]] = {}
            with contextlib.ExitStack() as stack:
                env = make_task_env(spec.name, shield=shield, **options)
                stack.callback(env.close)
                force_limit = env.unwrapped.config.force_limit
                for s in args.seeds:
                    policy = build_policy(args.policy, env, s)
                    by_seed[s] = []
                    for i in range(args.episodes):
                        by_seed[s].append(run_episode(env, policy, 1000 * s + i).metrics)
                        bar.update(1)
            records[shield] = by_seed
            results[shield] = _summary(by_seed)
    base = results[shields[0]]["violations_per_episode"]
    title = (f"{spec.name}, policy {args.policy}{', disturbed' if args.disturb else ''}: "
             f"{args.episodes} episodes x seeds {' '.join(map(str, args.seeds))}")
    table = Table(title=title, title_justify="left")
    for col in ("shield", "violations/ep", "per seed", f"vs {_label(shields[0])}", "success",
                "max F [N] mean/p95/max", "interv./ep", "critic/ep"):
        table.add_column(col, justify="left" if col == "shield" else "right")
    for k, r in results.items():
        change = f"{(r['violations_per_episode'] / base - 1) * 100:+.0f} %" if base > 0 else "n/a"
        table.add_row(_label(k), f"{r['violations_per_episode']:.2f}",
                      " ".join(f"{v:.2f}" for v in r["violations_per_episode_by_seed"].values()),
                      "-" if k == shields[0] else change, f"{100 * r['success_rate']:.0f} %",
                      f"{r['max_force_mean']:.1f} / {r['max_force_p95']:.1f} / {r['max_force_max']:.1f}",
                      f"{r['interventions_per_episode']:.1f}", f"{r['critic_per_episode']:.1f}")
    con = console()
    con.print(table)
    if args.json is not None:
        save_results(args.json, {
            "command": "compare", "task": spec.name, "policy": args.policy, "episodes": args.episodes,
            "seeds": args.seeds, "disturb": args.disturb, "force_limit": force_limit,
            "results": results, "records": records})
        con.print(f"results: {args.json}")
    if args.plot is not None:
        _plot(args.plot, {_label(k): r for k, r in results.items()}, force_limit, title)
        con.print(f"plot: {args.plot}")
    return 0
