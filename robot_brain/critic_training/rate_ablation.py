"""Bresa's central ablation: the same critic checked every control tick vs once per decision step.

Recovery RL and SRL-VIC check their safety critic once per policy step (20 Hz here); Bresa checks
it inside the execution of the action, at the control rate. This benchmark runs the scripted maze
policy on the same seeded episodes (same wall shifts, same push schedule) under

- the hard limits alone,
- limits + the critic every fast tick (1 kHz),
- limits + the same critic every 50th fast tick (20 Hz, on the decision-step boundary),

- limits + the critic every fast tick with the previous recovery (retreat-and-soften or the
  learned recovery policy, no brace, released as soon as the risk falls): what the
  hazard-fitted recovery is measured against,

for several disturbance families, and reports violations per episode, peak contact force and
the **reaction latency**: from the onset of each push to the first reflex intervention of any
kind (the limits' or the critic's) within 0.5 s, in milliseconds (each push's onset and latency
are kept per episode, and the critic every tick is compared with the critic every step push by
push, on the pushes both answered: :func:`paired_latency`); and, per shield, the change in
violations against the limits alone with a 95 % bootstrap interval over episodes (paired: the
same seeds), and the change in success the same way, with the episodes gained and lost and an
exact McNemar test (:func:`paired_success`).

``python -m robot_brain.critic_training.rate_ablation [OUT.json] [--seeds 0 1 2] [--episodes 20]``
runs the documented setting; ``--seeds 3 4 5`` runs the same on held-out episodes;
``--held-out --seeds 7 8 9`` runs the limits against the critic every tick on further unseen
disturbance families (:data:`HELD_OUT_FAMILIES`); ``--all-families`` runs both sets so.
After a run (and for each ``--from`` file) one line pools every family's episode pairs
(:func:`pooled`): a small loss of success that no single family's few discordant episodes can
show. A family in which the limits alone violate
nothing has no relative change (``change_vs_limits`` is ``null``). ``--plot FILE.png`` draws
each critic's changes against the limits as a forest plot (:func:`plot`); with
``--from LABEL=RESULTS.json ...`` it draws earlier runs' results together instead of running.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_brain.envs import Disturbances, make
from robot_brain.fileio import atomic_write_json, unwritable
from robot_brain.policies import make_policy
from robot_brain.report import mean_ci, plot_intervals
from robot_brain.rollout import run_episode
from robot_brain.safety import REFLEX_REASONS, CriticReflex, LimitsReflex, load_critic

__all__ = ["FAMILIES", "HELD_OUT_FAMILIES", "HELD_OUT_SHIELDS", "SHIELDS", "check_blocks", "main",
           "paired_change", "paired_success", "plot", "pooled", "run"]

MAZE_CRITIC = Path(__file__).resolve().parents[1] / "critics" / "maze"
REACTION_WINDOW = 0.5  # s after a push onset in which an intervention counts as its reaction

#: Disturbance families: the benchmark's own, and three the shipped critic was not trained on
#: (it was trained under the benchmark's: pushes of 15-30 N, walls shifted up to 3 cm): stronger
#: pushes, larger wall shifts with the benchmark's pushes, and larger wall shifts alone (the
#: arm's own setpoint behind a wall it cannot see, the critic's hardest case).
FAMILIES: dict[str, Disturbances] = {
    "benchmark (15-30 N pushes, walls up to 3 cm)": Disturbances.default(),
    "strong pushes (35-50 N)": Disturbances(push_rate=0.5, push_force=(35.0, 50.0)),
    "larger wall shifts (up to 4 cm, 15-30 N pushes)": Disturbances(push_rate=0.5, wall_shift=0.04),
    "walls shifted up to 4 cm": Disturbances(wall_shift=0.04),
}
#: Further unseen conditions (``--held-out``), none of them used to design the critic or its
#: recovery: pushes stronger than the strong family, weaker than the training range, longer,
#: more frequent, a mixed range; walls shifted further and less. Run limits against the
#: critic every tick only (:data:`HELD_OUT_SHIELDS`), on seed blocks the design never used.
HELD_OUT_FAMILIES: dict[str, Disturbances] = {
    "very strong pushes (50-70 N)": Disturbances(push_rate=0.5, push_force=(50.0, 70.0)),
    "weak pushes (5-15 N, walls up to 3 cm)": Disturbances(push_rate=0.5, push_force=(5.0, 15.0),
                                                           wall_shift=0.03),
    "long pushes (0.3-0.6 s, 15-30 N, walls up to 3 cm)": Disturbances(
        push_rate=0.5, push_duration=(0.3, 0.6), wall_shift=0.03),
    "frequent pushes (1.5/s, 15-30 N, walls up to 3 cm)": Disturbances(push_rate=1.5, wall_shift=0.03),
    "walls shifted up to 5 cm": Disturbances(wall_shift=0.05),
    "mixed pushes (25-45 N, walls up to 2 cm)": Disturbances(push_rate=0.5, push_force=(25.0, 45.0),
                                                            wall_shift=0.02),
}
#: Shield label -> critic check period in fast ticks (``None``: the limits alone).
SHIELDS: dict[str, int | None] = {"limits": None, "critic every tick (1 kHz)": 1,
                                  "critic every step (20 Hz)": 50,
                                  "critic 1 kHz, previous recovery": -1}
#: A negative period: the critic every tick with the previous recovery (``PREVIOUS_RECOVERY``).
PREVIOUS_RECOVERY: dict[str, Any] = {"recoveries": ("retreat",), "use_learned": True, "min_hold": 0,
                                     "margin": 0.0}
#: The shields of ``--held-out``: the limits alone and the critic every tick.
HELD_OUT_SHIELDS: dict[str, int | None] = {"limits": None, "critic every tick (1 kHz)": 1}
N_BOOT = 2000  # bootstrap resamples of the paired change vs the limits


def _reflex(every: int | None, env: Any) -> Any:
    limits = LimitsReflex(env.unwrapped.limits)
    if every is None:
        return limits
    if every < 0:
        return CriticReflex(load_critic(MAZE_CRITIC), limits, reflex_every=-every, **PREVIOUS_RECOVERY)
    return CriticReflex(load_critic(MAZE_CRITIC), limits, reflex_every=every)


def paired_change(x: Sequence[float], ref: Sequence[float], n_boot: int = N_BOOT,
                  seed: int = 0) -> tuple[float, float, float]:
    """Relative change of the mean of ``x`` vs ``ref`` (paired per episode), with a 95 %
    percentile bootstrap interval over episodes: ``(change, low, high)``, e.g. -0.3 = 30 % fewer."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if b.sum() <= 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (n_boot, len(a)))
    sa, sb = a[idx].sum(1), b[idx].sum(1)
    ratio = np.where(sb > 0, sa / np.maximum(sb, 1e-12) - 1.0, np.nan)
    lo, hi = np.nanpercentile(ratio, [2.5, 97.5])
    return float(a.sum() / b.sum() - 1.0), float(lo), float(hi)


def paired_success(x: Sequence[bool | float], ref: Sequence[bool | float], n_boot: int = N_BOOT,
                   seed: int = 0) -> dict[str, float | int]:
    """Success of ``x`` against ``ref`` on the same episodes: the difference of the success rates
    with a 95 % percentile bootstrap interval over episodes (paired), the discordant episodes
    (``gained``: ``x`` succeeded where ``ref`` failed; ``lost``: the reverse) and the exact
    two-sided McNemar p-value (a binomial test on the discordant episodes): the test of "equal
    success" that a per-shield interval cannot give, since most episodes agree."""
    a, b = np.asarray(x, dtype=bool), np.asarray(ref, dtype=bool)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"need the same non-zero number of episodes, got {len(a)} and {len(b)}")
    d = a.astype(np.float64) - b.astype(np.float64)
    idx = np.random.default_rng(seed).integers(0, len(d), (n_boot, len(d)))
    lo, hi = np.percentile(d[idx].mean(1), [2.5, 97.5])
    gained, lost = int((a & ~b).sum()), int((~a & b).sum())
    n, k = gained + lost, min(gained, lost)
    p = min(1.0, 2.0 * sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n) if n else 1.0
    return {"difference": float(d.mean()), "low": float(lo), "high": float(hi),
            "gained": gained, "lost": lost, "mcnemar_p": p}


def pooled(results: Mapping[str, Mapping[str, Any]],
           shield: str = "critic every tick (1 kHz)") -> dict[str, Any] | None:
    """``shield`` against the limits alone over every family of ``results`` that ran both,
    its episodes pooled: the change in violations (:func:`paired_change`) and in success
    (:func:`paired_success`) over all those episode pairs, with ``families`` and ``episodes``
    counted; ``None`` if no family ran both. A family's few discordant episodes cannot show a
    small loss of success; the pool can."""
    v, vref, s, sref, n = [], [], [], [], 0
    for key, row in results.items():
        family, label = key.rsplit(" / ", 1)
        ref = results.get(f"{family} / limits")
        if label != shield or ref is None or not all(
                isinstance(r.get(k), list) for r in (row, ref)
                for k in ("per_episode_violations", "per_episode_success")):
            continue
        v += row["per_episode_violations"]
        vref += ref["per_episode_violations"]
        s += row["per_episode_success"]
        sref += ref["per_episode_success"]
        n += 1
    if not n:
        return None
    return {"families": n, "episodes": len(v), "change_vs_limits": paired_change(v, vref),
            "success_vs_limits": paired_success(s, sref)}


def _print_pooled(results: Mapping[str, Mapping[str, Any]], label: str = "") -> None:
    pool = pooled(results)
    if pool is None:
        return
    c, ps = pool["change_vs_limits"], pool["success_vs_limits"]
    print(f"{label}pooled over {pool['families']} families ({pool['episodes']} episode pairs), critic every "
          f"tick vs limits: violations {c[0]:+.0%} [{c[1]:+.0%}, {c[2]:+.0%}], success "
          f"{100 * ps['difference']:+.1f} points [{100 * ps['low']:+.1f}, {100 * ps['high']:+.1f}] "
          f"(+{ps['gained']}/-{ps['lost']} episodes, McNemar p {ps['mcnemar_p']:.2g})")


def _latencies(onsets: Sequence[float], events: Sequence[Any]) -> list[float | None]:
    """Per push: seconds from its onset to the first reflex intervention within the window."""
    times = sorted(e.t for e in events if e.reason in REFLEX_REASONS)
    out: list[float | None] = []
    for t0 in onsets:
        after = [t - t0 for t in times if t0 <= t < t0 + REACTION_WINDOW]
        out.append(min(after) if after else None)
    return out


def paired_latency(x: Sequence[Sequence[Sequence[Any]]],
                   ref: Sequence[Sequence[Sequence[Any]]]) -> dict[str, float | int] | None:
    """Reaction latency of one shield against another on the same pushes: ``x`` and ``ref`` hold
    per episode ``(onset s, latency ms or None)`` per push. Over the pushes both answered (the
    same episode and onset), how often ``x`` answered first (``earlier``), ``ref`` did
    (``later``), and the median of ``x - ref`` [ms]; ``None`` when no push was answered by both.
    A median over each shield's own answered pushes compares different pushes once the
    trajectories part; this compares each push with itself."""
    if len(x) != len(ref):
        raise ValueError(f"need the same episodes, got {len(x)} and {len(ref)}")
    d: list[float] = []
    for ex, er in zip(x, ref, strict=True):
        answered = {round(float(t), 6): lat for t, lat in er if lat is not None}
        for t, lat in ex:
            other = answered.get(round(float(t), 6))
            if lat is not None and other is not None:
                d.append(lat - other)
    if not d:
        return None
    a = np.asarray(d)
    return {"pushes": len(d), "earlier": float((a < 0).mean()), "later": float((a > 0).mean()),
            "median_difference_ms": float(np.median(a))}


def run(families: Mapping[str, Disturbances] | None = None, shields: Mapping[str, int | None] | None = None,
        seeds: Sequence[int] = (0, 1, 2), episodes: int = 20) -> dict[str, Any]:
    """Every family x shield on the same episodes (episode i of seed s: seed 1000 s + i)."""
    out: dict[str, Any] = {}
    for family, dist in (families or FAMILIES).items():
        env = make("maze", disturbances=dist)
        task: Any = env.unwrapped  # the maze task (ImpedanceTaskEnv)
        try:
            policy = make_policy("scripted", env)
            base: list[float] | None = None
            base_success: list[float] | None = None
            by_period: dict[int, tuple[str, list[list[list[Any]]]]] = {}  # critic rows' pushes
            for label, every in (shields or SHIELDS).items():
                task.set_shield(_reflex(every, env))
                violations, peaks, success, lat, missed = [], [], [], [], 0
                per_push: list[list[list[Any]]] = []
                t0 = time.perf_counter()
                for s in seeds:
                    for i in range(episodes):
                        res = run_episode(env, policy, 1000 * s + i)
                        m = res.metrics
                        violations.append(m["violations"])
                        peaks.append(m["max_contact_force"])
                        success.append(float(m["success"]))
                        onsets = task.episode.push_onsets
                        per_push.append([])
                        for t, x in zip(onsets, _latencies(onsets, task.loop.events.events),
                                        strict=True):
                            per_push[-1].append([float(t), None if x is None else 1e3 * x])
                            if x is None:
                                missed += 1
                            else:
                                lat.append(1e3 * x)
                row: dict[str, Any] = {"episodes": len(violations), "violations": mean_ci(violations),
                                       "success": mean_ci(success),
                       "peak_force_mean": float(np.mean(peaks)),
                       "peak_force_p95": float(np.percentile(peaks, 95)),
                       "peak_force_max": float(np.max(peaks)),
                       "pushes": len(lat) + missed, "pushes_without_reaction": missed,
                       "latency_ms_median": float(np.median(lat)) if lat else None,
                       "latency_ms_p90": float(np.percentile(lat, 90)) if lat else None,
                       "seconds": time.perf_counter() - t0,
                       "per_episode_violations": [float(v) for v in violations]}
                row["per_episode_success"] = success
                row["per_push_latency_ms"] = per_push
                if every is not None and every > 0:
                    by_period[every] = (label, per_push)
                if every is None:
                    base, base_success = [float(v) for v in violations], success
                    change_txt = ""
                else:
                    row["change_vs_limits"] = paired_change(violations, base) if base else None
                    c = row["change_vs_limits"]
                    if c is None:
                        change_txt = ""
                    elif math.isnan(c[0]):  # no violation under the limits: no ratio to take
                        row["change_vs_limits"] = None
                        change_txt = "  vs limits: n/a (none under the limits)"
                    else:
                        change_txt = f"  vs limits {c[0]:+.0%} [{c[1]:+.0%}, {c[2]:+.0%}]"
                    if base_success is not None:
                        ps = row["success_vs_limits"] = paired_success(success, base_success)
                        change_txt += (f", success {100 * ps['difference']:+.0f} points "
                                       f"[{100 * ps['low']:+.0f}, {100 * ps['high']:+.0f}] "
                                       f"(+{ps['gained']}/-{ps['lost']} episodes, "
                                       f"McNemar p {ps['mcnemar_p']:.2f})")
                out[f"{family} / {label}"] = row
                lat_txt = "-" if row["latency_ms_median"] is None else f"{row['latency_ms_median']:.0f} ms"
                print(f"{family:45s} {label:28s} violations/ep {row['violations'][0]:5.2f} "
                      f"[{row['violations'][1]:.2f}, {row['violations'][2]:.2f}]  success "
                      f"{row['success'][0]:.0%}  peak p95 {row['peak_force_p95']:5.1f} N  latency {lat_txt} "
                      f"({missed}/{row['pushes']} pushes unanswered){change_txt}", flush=True)
            _print_tick_vs_step(family, by_period, out)
        finally:
            env.close()
    return out


def _print_tick_vs_step(family: str, by_period: Mapping[int, tuple[str, list[Any]]],
                        out: dict[str, Any]) -> None:
    """The critic every tick against the critic checked more rarely, push by push
    (:func:`paired_latency`), stored in the tick row as ``latency_vs_<label>``."""
    if 1 not in by_period:
        return
    tick_label, tick = by_period[1]
    for every, (label, pushes) in sorted(by_period.items()):
        if every == 1:
            continue
        cmp = paired_latency(tick, pushes)
        out[f"{family} / {tick_label}"][f"latency_vs_{label}"] = cmp
        if cmp is not None:
            print(f"{family:45s} {tick_label} vs {label}, on the {cmp['pushes']} pushes both "
                  f"answered: first on {cmp['earlier']:.0%}, later on {cmp['later']:.0%}, median "
                  f"difference {cmp['median_difference_ms']:+.0f} ms", flush=True)


def plot(sets: Mapping[str, Mapping[str, Any]], path: Path,
         skip: Sequence[str] = ("critic 1 kHz, previous recovery",)) -> Path:
    """Each critic's change in violations and in success against the limits alone, with their
    95 % intervals, per family, for one or several results of :func:`run` (``sets``: label ->
    results, e.g. one per seed set): a forest plot, the 30 % target dashed. Shields in ``skip``
    are left out (by default the previous recovery, whose +1000 % would squash the rest)."""
    rows = []
    for label, results in sets.items():
        for key, row in results.items():
            family, shield = key.rsplit(" / ", 1)
            if "change_vs_limits" not in row or shield in skip:  # (the limits' own row)
                continue
            c, ps = row["change_vs_limits"], row.get("success_vs_limits")
            rows.append((f"{family} [{label}]" if len(sets) > 1 else family, shield,
                         None if c is None else tuple(100.0 * x for x in c),
                         None if ps is None else tuple(100.0 * ps[k] for k in ("difference", "low", "high"))))
    if not rows:
        raise ValueError("no critic row to draw (only the limits')")
    return plot_intervals(path, rows, "violations per episode vs the limits alone [%], 95 % CI",
                          "success vs the limits alone [points], 95 % CI", left_ref=-30.0,
                          title="the maze critic against the hard limits alone "
                                "(scripted policy, paired episodes)")


def _not_results(obj: Any) -> str | None:
    """Why ``obj`` (a parsed JSON file) is not what :func:`run` writes, or ``None``."""

    def numbers(v: Any, n: int) -> bool:
        return (isinstance(v, list) and len(v) == n
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v))

    if not isinstance(obj, dict) or not obj:
        return "expected an object of 'family / shield' rows"
    for key, row in obj.items():
        if " / " not in key or not isinstance(row, dict):
            return f"row {key!r}"
        c, ps = row.get("change_vs_limits"), row.get("success_vs_limits")
        if c is not None and not numbers(c, 3):
            return f"{key}: change_vs_limits"
        if ps is not None and not (isinstance(ps, dict)
                                   and numbers([ps.get(k) for k in ("difference", "low", "high")], 3)):
            return f"{key}: success_vs_limits"
    return None


def check_blocks(p: argparse.ArgumentParser, seeds: Sequence[int], episodes: int) -> None:
    """Usage error (exit 2, one line) for seed blocks or an episode count no episode can have."""
    if episodes < 1:
        p.error(f"--episodes must be >= 1, got {episodes}")
    if min(seeds) < 0:
        p.error(f"--seeds must be >= 0 (episode seeds are 1000 s + i), got {min(seeds)}")


def _draw_from(p: argparse.ArgumentParser, sources: Sequence[str], path: Path) -> dict[str, Any]:
    """``--plot PATH --from LABEL=FILE ...``: draw earlier results, print each one's pool."""
    sets = {}
    for src in sources:
        label, _, file = src.rpartition("=")
        try:
            results = json.loads(Path(file).read_text())
        except (OSError, ValueError) as exc:
            p.error(f"--from {src}: cannot read results ({str(exc).splitlines()[0]})")
        if (why := _not_results(results)) is not None:
            p.error(f"--from {src}: not the results of this benchmark ({why})")
        sets[label or Path(file).stem] = results
    try:
        print(f"wrote {plot(sets, path)}")
    except ValueError as exc:
        p.error(f"--from: {exc}")
    for label, results in sets.items():
        _print_pooled(results, f"{label}: ")
    return sets


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m robot_brain.critic_training.rate_ablation",
                                description="Bresa's rate ablation on the maze (module docstring).")
    p.add_argument("out", nargs="?", type=Path, default=Path("out/critic/rate_ablation.json"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seed blocks: episode i of block s has seed 1000 s + i (default: 0 1 2; "
                        "held-out check: 3 4 5)")
    p.add_argument("--episodes", type=int, default=20, help="episodes per seed block")
    p.add_argument("--held-out", action="store_true",
                   help="the further unseen families (HELD_OUT_FAMILIES), limits against the critic "
                        "every tick only")
    p.add_argument("--all-families", action="store_true",
                   help="every family of both sets (FAMILIES and HELD_OUT_FAMILIES), limits against "
                        "the critic every tick only")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                   help="also draw each critic's change against the limits (a forest plot)")
    p.add_argument("--from", dest="sources", nargs="+", default=None, metavar="LABEL=FILE.json",
                   help="with --plot: draw earlier results instead of running (one label per file)")
    a = p.parse_args(argv)
    for flag, path in (("--plot", a.plot), ("out", None if a.sources is not None else a.out)):
        if path is not None and (why := unwritable(path)) is not None:
            p.error(f"{flag}: {why}")
    if a.sources is not None:
        if a.plot is None:
            p.error("--from draws earlier results: give --plot FILE.png too")
        return _draw_from(p, a.sources, a.plot)
    check_blocks(p, a.seeds, a.episodes)
    if a.held_out and a.all_families:
        p.error("--held-out and --all-families: give one (--all-families includes the held-out families)")
    if a.all_families:
        results = run({**FAMILIES, **HELD_OUT_FAMILIES}, HELD_OUT_SHIELDS, seeds=a.seeds,
                      episodes=a.episodes)
    elif a.held_out:
        results = run(HELD_OUT_FAMILIES, HELD_OUT_SHIELDS, seeds=a.seeds, episodes=a.episodes)
    else:
        results = run(seeds=a.seeds, episodes=a.episodes)
    atomic_write_json(a.out, results)
    print(f"wrote {a.out}")
    _print_pooled(results)
    if a.plot is not None:
        print(f"wrote {plot({'seeds ' + ' '.join(map(str, a.seeds)): results}, a.plot)}")
    return results


if __name__ == "__main__":
    main()
