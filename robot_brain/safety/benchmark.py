"""Benchmark of the reflex layers: no reflex vs hard limits vs hard limits + learned critic.

``python -m robot_brain.safety.benchmark maze --critic runs/maze/critic --episodes 50 --seeds 0 1 2``
runs the same policy on the same episodes (seed ``1000 * s + i``: same wall shifts and push
schedule for every shield) with ``Disturbances.default()`` and prints, per shield, violations per
episode (mean over all episodes, and per seed), success rate, max contact force (mean / p95 /
max over episodes) and interventions per episode; then the timing rows: the critic's evaluation
cost (median, p99) and the fast tick with each shield against raw ``mj_step``.
``--json FILE`` writes everything, ``--plot FILE.png`` the max-contact-force distribution.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["compare_shields", "main", "time_fast_tick"]


def _episodes(task: str, spec: str, policy: str, episodes: int, seed: int, disturbances,
              critic_kwargs: dict) -> list[dict[str, Any]]:
    from robot_brain.envs import make
    from robot_brain.policies import make_policy

    from .shield import install_shield, load_shield

    env = make(task, disturbances=disturbances)
    try:
        install_shield(env, load_shield(spec, env, **(critic_kwargs if spec not in ("none", "limits")
                                                      else {})))
        pol = make_policy(policy, env, seed)
        out = []
        for i in range(episodes):
            obs, _ = env.reset(seed=1000 * seed + i)
            pol.reset()
            done = False
            while not done:
                obs, _, term, trunc, _ = env.step(pol.act(obs))
                done = term or trunc
            out.append(env.unwrapped.episode.as_dict())
        return out
    finally:
        env.close()


def _summary(eps: list[dict[str, Any]], by_seed: dict[int, list[dict]]) -> dict[str, Any]:
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
        "steps_per_episode": float(np.mean([e["steps"] for e in eps])),
        "max_contact_force": f.tolist(),
    }


def compare_shields(task: str, shields: Sequence[str], *, policy: str = "scripted",
                    episodes: int = 50, seeds: Sequence[int] = (0, 1, 2), disturbances=None,
                    critic_kwargs: dict | None = None, progress: bool = True) -> dict[str, Any]:
    """Run every shield spec (``none``, ``limits``, a critic directory) on the same episodes."""
    from tqdm.auto import tqdm

    from robot_brain.envs import Disturbances

    dist = disturbances if disturbances is not None else Disturbances.default()
    results: dict[str, Any] = {}
    bar = tqdm(total=len(shields) * len(seeds), desc=f"benchmark {task}", unit="run",
               disable=not progress)
    for spec in shields:
        by_seed = {}
        for s in seeds:
            by_seed[s] = _episodes(task, spec, policy, episodes, s, dist, critic_kwargs or {})
            bar.update(1)
        all_eps = [e for x in by_seed.values() for e in x]
        results[spec] = _summary(all_eps, by_seed)
    bar.close()
    return results


def time_fast_tick(task: str, spec: str, slow_ticks: int = 300) -> dict[str, float]:
    """Wall time of one fast tick [us] of ``task`` under shield ``spec`` while the scripted
    policy moves (each slow tick of the loop timed and divided by its fast ticks; the policy is
    not timed), and of a raw ``mj_step`` of the same model."""
    import mujoco

    from robot_brain.envs import make
    from robot_brain.policies import make_policy

    from .shield import install_shield, load_shield

    env = make(task)
    try:
        install_shield(env, load_shield(spec, env))
        u = env.unwrapped
        pol = make_policy("scripted", env, 0)
        obs, _ = env.reset(seed=0)
        pol.reset()
        per_tick = []
        n = u.loop.config.ticks_per_step
        while len(per_tick) < slow_ticks:
            cmd = u.action_to_command(pol.act(obs))
            t0 = time.perf_counter()
            u.loop.step(cmd)
            per_tick.append((time.perf_counter() - t0) / n)
            obs = u._get_obs()
            if u._is_success():
                obs, _ = env.reset(seed=len(per_tick))
                pol.reset()
        data = mujoco.MjData(u.model)
        data.qpos[:] = u.backend.data.qpos
        raw = []
        for _ in range(3000):
            t0 = time.perf_counter()
            mujoco.mj_step(u.model, data)
            raw.append(time.perf_counter() - t0)
        t = np.array(per_tick) * 1e6
        r = np.array(raw) * 1e6
        return {"tick_median_us": float(np.median(t)), "tick_p99_us": float(np.percentile(t, 99)),
                "mj_step_median_us": float(np.median(r)),
                "ratio": float(np.median(t) / np.median(r))}
    finally:
        env.close()


def time_critic(critic_dir: str, n: int = 20000) -> dict[str, float]:
    """Median/p99 [us] of one critic evaluation (features + both heads) on maze-like inputs."""
    from robot_brain.controllers import Command, RobotState

    from .critic import load_critic
    from .features import ContactMemory

    model = load_critic(critic_dir)
    mem = ContactMemory()
    rng = np.random.default_rng(0)
    states = [RobotState(0.0, np.zeros(7), np.zeros(7), np.zeros(7),
                         rng.uniform([0.35, -0.17, 0.26], [0.63, 0.17, 0.27]),
                         np.array([0.0, 1, 0, 0]), np.r_[rng.normal(0, 0.1, 3), np.zeros(3)],
                         np.r_[rng.normal(0, 5, 3), np.zeros(3)]) for _ in range(64)]
    sp = Command.cartesian((0.5, 0.0, 0.265), (0.0, 1, 0, 0), (700, 700, 1500, 60, 60, 60))
    times = []
    for i in range(n):
        s = states[i % 64]
        t0 = time.perf_counter()
        mem.update(s)
        model.risk(s, sp, mem.state)
        times.append(time.perf_counter() - t0)
    t = np.array(times[100:]) * 1e6
    return {"critic_median_us": float(np.median(t)), "critic_p99_us": float(np.percentile(t, 99))}


def _plot(path: Path, results: dict[str, Any], names: dict[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    data = [results[k]["max_contact_force"] for k in results]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(results) + 1), [names[k] for k in results])
    ax.axhline(15.0, color="r", ls="--", lw=1, label="force limit 15 N")
    ax.set(ylabel="max contact force per episode [N]", title="maze, scripted policy, pushes + "
                                                            "shifted walls")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m robot_brain.safety.benchmark",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("task")
    p.add_argument("--critic", required=True, help="critic directory (train-critic --out)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--policy", default="scripted")
    p.add_argument("--eps-safe", type=float, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None)
    p.add_argument("--no-timing", action="store_true")
    args = p.parse_args(argv)
    if args.episodes < 1 or not args.seeds:
        p.error("--episodes must be >= 1 and --seeds non-empty")
    from rich.console import Console
    from rich.table import Table

    shields = ["none", "limits", str(args.critic)]
    names = {"none": "no reflex", "limits": "hard limits", str(args.critic): "limits + critic"}
    kw = {} if args.eps_safe is None else {"eps_safe": args.eps_safe}
    res = compare_shields(args.task, shields, policy=args.policy, episodes=args.episodes,
                          seeds=args.seeds, critic_kwargs=kw)
    base = res["none"]["violations_per_episode"]
    table = Table(title=f"{args.task}, policy {args.policy}, Disturbances.default(), "
                        f"{args.episodes} episodes x seeds {args.seeds}")
    for col in ("shield", "violations/ep", "per seed", "vs no reflex", "success", "max F mean/p95/max [N]",
                "interventions/ep", "critic/ep"):
        table.add_column(col, justify="right" if col != "shield" else "left")
    for k, r in res.items():
        red = (1 - r["violations_per_episode"] / base) * 100 if base > 0 else math.nan
        table.add_row(names[k], f"{r['violations_per_episode']:.2f}",
                      " ".join(f"{v:.2f}" for v in r["violations_per_episode_by_seed"].values()),
                      "-" if k == "none" else f"{-red:+.0f} %", f"{100 * r['success_rate']:.0f} %",
                      f"{r['max_force_mean']:.1f} / {r['max_force_p95']:.1f} / {r['max_force_max']:.1f}",
                      f"{r['interventions_per_episode']:.1f}", f"{r['critic_per_episode']:.1f}")
    con = Console(width=140)
    con.print(table)
    out: dict[str, Any] = {"task": args.task, "policy": args.policy, "episodes": args.episodes,
                           "seeds": args.seeds, "results": res}
    if not args.no_timing:
        timing = {"critic": time_critic(str(args.critic))}
        for k in shields:
            timing[names[k]] = time_fast_tick(args.task, k)
        out["timing"] = timing
        t = Table(title="timing (this machine)")
        t.add_column("row")
        t.add_column("median [us]", justify="right")
        t.add_column("p99 [us]", justify="right")  # fast tick: p99 of slow-tick averages
        t.add_column("x raw mj_step", justify="right")
        c = timing["critic"]
        t.add_row("critic evaluation (memory + features + twin heads)", f"{c['critic_median_us']:.1f}",
                  f"{c['critic_p99_us']:.1f}", "")
        for k in shields:
            row = timing[names[k]]
            t.add_row(f"fast tick, {names[k]}", f"{row['tick_median_us']:.1f}", f"{row['tick_p99_us']:.1f}",
                      f"{row['ratio']:.2f}")
        t.add_row("raw mj_step", f"{timing[names['none']]['mj_step_median_us']:.1f}", "", "1.00")
        con.print(t)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=float))
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        _plot(args.plot, res, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
