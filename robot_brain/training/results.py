"""Results over many training runs, reported the way the field asks for (``robot-brain report``).

Agarwal et al. (NeurIPS 2021, "Deep RL at the edge of the statistical precipice", the ``rliable``
method): with a handful of seeds a mean is not a result. Report, for each method,

- the **interquartile mean** (IQM: the mean of the middle 50 % of all run x task scores), the
  median, the mean and the **optimality gap** (how far below a score of 1 the runs fall,
  ``mean(max(1 - x, 0))``), each with a 95 % **stratified bootstrap** interval (runs resampled
  with replacement within each task, 2000 times);
- **performance profiles**: the share of runs whose score exceeds ``tau``, for every ``tau``,
  tasks weighted equally, with bootstrap bands;
- **learning curves**: the IQM over runs at each evaluation step, with bootstrap bands;
- **sample efficiency**: the environment steps and the training time (wall clock, evaluations
  included) until a run's evaluation first reaches a success rate (90 % by default), per run and
  as the median over runs, a run that never reached it counting as slower than any that did;
- **safety**, as safe-RL papers report it (Recovery RL, SRL-VIC): the violating steps paid during
  training, the training episodes that succeeded per violating step, the final evaluation's
  violations per episode and peak contact force, each as a mean over runs with a 95 % bootstrap
  interval, and the cumulative violations against training steps (mean over runs, with bands).

Scores: a run's final evaluation (its last one if it has no final evaluation): the success rate
(``metric="success"``, already in [0, 1]) or the mean return (``metric="return"``), which for
aggregation across tasks is normalised per task between the lowest and the highest final return
of the runs in the report (a task with a single final return is left out of the aggregates:
there is nothing to normalise it against). Per task, the raw returns are reported too.

The ``rliable`` package would be the library for this, but version 1.2.0 does not import here
(its ``arch`` dependency fails against pandas 3: ``deprecate_kwarg() missing 1 required positional
argument``), so its estimators are implemented below with numpy, following its definitions
(IQM = ``scipy.stats.trim_mean(x, 0.25)``; percentile intervals).

Methods are told apart by what was chosen, not by file names: algorithm, policy, shield, and
every hyperparameter that differs from the task's shipped defaults (seeds and bookkeeping keys
aside), so the seeds of one configuration pool together on every task.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_brain.report import iqm, mean_ci, stratified_bootstrap

from .metrics import MetricsError, read_metrics

__all__ = ["METRICS", "SAFETY", "ReportError", "RunResult", "aggregates", "efficiency_summary", "find_runs",
           "iqm", "label_methods", "learning_curve", "load_run", "performance_profile", "report", "safety_of",
           "safety_summary", "stratified_bootstrap", "time_to_reach"]

METRICS = ("return", "success")
# Hyperparameters that do not make a different method (bookkeeping, budgets, seeds).
_NOT_METHOD = {"n_timesteps", "eval_freq", "eval_episodes", "save_freq", "n_envs", "vec_env"}

Scores = Mapping[str, np.ndarray]  # task -> the final scores of a method's runs on it


class ReportError(ValueError):
    """Runs that cannot be reported (one line naming the problem)."""


@dataclass
class RunResult:
    """What the report reads of one run directory."""

    path: Path
    task: str
    algo: str
    seed: int | None
    shield: str
    policy: str
    hyperparams: dict[str, Any]
    final: dict[str, float | None]  # "return", "success"
    curve: list[dict[str, float]]  # the evaluations: step, return_mean, success_rate (, elapsed)
    safety: dict[str, float | None] = field(default_factory=dict)  # see safety_of
    violations: list[tuple[int, int]] = field(default_factory=list)  # (step, cumulative violations)
    method: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    steps: int = 0  # environment steps trained
    elapsed: float | None = None  # seconds of training (None: recorded before runs kept time)


def _final(m: Mapping[str, Any]) -> dict[str, float | None]:
    final = m.get("final_evaluation")
    agg = final.get("aggregate") if isinstance(final, dict) else None
    if isinstance(agg, dict) and agg.get("return_mean") is not None:
        return {"return": float(agg["return_mean"]), "success": float(agg.get("success_rate", math.nan))}
    evals = m.get("evaluations") or []
    if evals:
        last = evals[-1]
        return {"return": float(last["return_mean"]), "success": float(last["success_rate"])}
    return {"return": None, "success": None}


#: The safety numbers of a run (:func:`safety_of`), in the order the report prints them.
SAFETY = ("training_violations", "successes_per_violation", "final_violations", "final_peak_force")


def safety_of(m: Mapping[str, Any]) -> dict[str, float | None]:
    """Violating steps during training, successful training episodes per violating step (``None``
    without violations), and the final evaluation's violations per episode and mean peak contact
    force [N] (``None`` without a final evaluation)."""
    viol = int(m.get("cumulative_violations") or 0)
    wins = sum(1 for e in m.get("episodes") or [] if isinstance(e, dict) and e.get("success"))
    final = m.get("final_evaluation")
    agg = final.get("aggregate") if isinstance(final, dict) else None
    agg = agg if isinstance(agg, dict) else {}

    def num(key: str) -> float | None:
        v = agg.get(key)
        return float(v) if isinstance(v, (int, float)) else None

    return {"training_violations": float(viol), "successes_per_violation": wins / viol if viol else None,
            "final_violations": num("violations_per_episode"),
            "final_peak_force": num("max_contact_force_mean")}


def load_run(path: str | Path) -> RunResult:
    """The run in ``path`` (a directory with ``metrics.json`` and ``config.yaml``).

    :raises ReportError: one line naming the directory and what is missing or damaged.
    """
    import yaml

    path = Path(path)
    try:
        m = read_metrics(path / "metrics.json")
    except MetricsError as exc:
        raise ReportError(str(exc)) from None
    try:
        cfg = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: config.yaml cannot be read ({exc})") from None
    hp = cfg.get("hyperparams") if isinstance(cfg, dict) else None
    if not (isinstance(hp, dict) and isinstance(cfg.get("task"), str) and isinstance(cfg.get("algo"), str)):
        raise ReportError(f"{path}: config.yaml has no task, algo and hyperparams (not a training run?)")
    final = _final(m)
    if final["return"] is None:
        raise ReportError(f"{path}: no evaluation yet (nothing to report)")
    seed = cfg.get("seed")
    return RunResult(path, cfg["task"], cfg["algo"], seed if isinstance(seed, int) else None,
                     str(cfg.get("shield", "limits")), str(hp.get("policy", "MlpPolicy")), hp, final,
                     [e for e in m.get("evaluations") or [] if isinstance(e, dict)], safety_of(m),
                     [(int(c["step"]), int(c["cumulative_violations"])) for c in m.get("curve") or []
                      if isinstance(c, dict) and "step" in c and "cumulative_violations" in c],
                     steps=int(m.get("num_timesteps") or 0), elapsed=_seconds(m.get("elapsed")))


def _seconds(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 else None


def time_to_reach(run: RunResult, rate: float) -> tuple[int | None, float | None]:
    """The step of ``run``'s first evaluation with a success rate of at least ``rate`` and the
    training seconds when it was reached; ``(None, None)`` if no evaluation got there (the
    seconds ``None`` too where the run did not record them)."""
    for e in run.curve:
        if float(e.get("success_rate", math.nan)) >= rate:
            return int(e["step"]), _seconds(e.get("elapsed"))
    return None, None


def _median_censored(values: Sequence[float | None]) -> float | None:
    """The median of ``values``, a ``None`` (never reached) counting as larger than any number;
    ``None`` when the median itself is one of them (most runs never reached)."""
    keyed = sorted(values, key=lambda v: math.inf if v is None else v)
    n = len(keyed)
    if n == 0:
        return None
    lo, hi = keyed[(n - 1) // 2], keyed[n // 2]
    return None if lo is None or hi is None else (float(lo) + float(hi)) / 2


def efficiency_summary(runs: Sequence[RunResult], rate: float) -> dict[str, Any]:
    """For ``runs`` (one task and method): each run's steps and seconds until its evaluation
    first reached success ``rate`` (``None``: never), how many reached it, the censored medians
    (:func:`_median_censored`), and the runs' budgets and whole training times."""
    reached = [time_to_reach(r, rate) for r in runs]
    steps = [s for s, _ in reached]
    seconds = [t for _, t in reached]
    untimed = sum(s is not None and t is None for s, t in reached)  # reached, time not recorded
    return {"rate": rate, "reached": sum(s is not None for s in steps), "runs": len(runs),
            "steps": steps, "seconds": seconds, "budget": [r.steps for r in runs],
            "steps_median": _median_censored(steps),
            "seconds_median": None if untimed else _median_censored(seconds), "untimed": untimed,
            "run_seconds": [r.elapsed for r in runs]}


def find_runs(paths: Iterable[str | Path]) -> tuple[list[RunResult], list[str]]:
    """Every run under ``paths`` (each a run directory or a folder holding runs at any depth),
    and one note per directory that looked like a run but could not be read."""
    runs, notes, seen = [], [], set()
    for p in paths:
        p = Path(p)
        if not p.is_dir():
            raise ReportError(f"{p} is not a directory")
        candidates = ([p] if (p / "metrics.json").exists()
                      else sorted(q.parent for q in p.rglob("metrics.json")))
        for d in candidates:
            if d.resolve() in seen:
                continue
            seen.add(d.resolve())
            try:
                runs.append(load_run(d))
            except ReportError as exc:
                notes.append(str(exc))
    if not runs:
        raise ReportError(f"no training runs (directories with metrics.json and config.yaml) under "
                          f"{', '.join(str(p) for p in paths)}")
    return runs, notes


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _overrides(run: RunResult) -> dict[str, Any]:
    """Hyperparameters of ``run`` that differ from its task's shipped defaults (method-defining
    keys only)."""
    from .config import ConfigError, resolve_hyperparams

    policy = "ncap" if run.policy == "NcapPolicy" else None
    try:  # the defaults as a run records them (run keys filled in), from this package's files
        defaults = _flatten(resolve_hyperparams(run.task, run.algo, policy=policy, steps=1))
    except (ConfigError, ValueError, OSError):
        defaults = {}
    ours = _flatten(run.hyperparams)
    return {k: v for k, v in sorted(ours.items())
            if k.split(".")[0] not in _NOT_METHOD and not k.endswith("seed")
            and defaults.get(k, object()) != v}


def label_methods(runs: Sequence[RunResult]) -> None:
    """Give every run its method label (see module docstring)."""
    for run in runs:
        run.overrides = _overrides(run)
        policy = run.policy.removesuffix("Policy").lower()
        label = run.algo + ("" if policy == "mlp" else f"-{policy}")
        if run.shield != "limits":
            label += f" shield={Path(run.shield).name}"
        if run.overrides:
            label += " " + ",".join(f"{k.removeprefix('policy_kwargs.')}={v}"
                                    for k, v in run.overrides.items())
        run.method = label


# -- the estimators -------------------------------------------------------------------------------
def aggregates(x: np.ndarray) -> dict[str, float]:
    """IQM, median, mean and optimality gap (threshold 1) of pooled scores ``x``."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return {"iqm": iqm(x), "median": float(np.median(x)), "mean": float(x.mean()),
            "optimality_gap": float(np.maximum(1.0 - x, 0.0).mean())}


def performance_profile(scores: Scores, taus: np.ndarray, *, reps: int = 2000, seed: int = 0
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share of runs scoring above each ``tau`` (tasks weighted equally) and its 95 % band."""
    def profile(pooled_by_task: list[np.ndarray]) -> np.ndarray:
        return np.mean([(t[:, None] > taus[None]).mean(axis=0) for t in pooled_by_task], axis=0)

    point, low, high = stratified_bootstrap(scores, profile, reps=reps, seed=seed, by_task=True)
    return np.asarray(point), np.asarray(low), np.asarray(high)


def learning_curve(runs: Sequence[RunResult], key: str, *, reps: int = 1000, seed: int = 0
                   ) -> dict[str, list[float]]:
    """IQM over ``runs`` (one task) of evaluation ``key`` at each step they all reached, with its
    bootstrap band."""
    by_step: dict[int, list[float]] = {}
    for run in runs:
        for e in run.curve:
            if e.get(key) is not None:
                by_step.setdefault(int(e["step"]), []).append(float(e[key]))
    steps = [s for s in sorted(by_step) if len(by_step[s]) == len(runs)]
    out: dict[str, list[float]] = {"step": [], "iqm": [], "low": [], "high": []}
    for s in steps:
        point, lo, hi = stratified_bootstrap({"task": np.array(by_step[s])}, iqm, reps=reps, seed=seed)
        for k, v in zip(("step", "iqm", "low", "high"), (s, point, lo, hi), strict=True):
            out[k].append(float(v))
    return out


def safety_summary(runs: Sequence[RunResult], *, reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Mean [95 % CI] over ``runs`` (one task and method) of each :data:`SAFETY` number (runs
    without it left out, ``n`` says how many counted), and the mean cumulative violations at each
    curve step every run reached, with its band."""
    out: dict[str, Any] = {}
    for key in SAFETY:
        vals = [float(v) for r in runs if (v := r.safety.get(key)) is not None]
        point, lo, hi = mean_ci(vals, reps=reps, seed=seed)
        out[key] = {"mean": None if not vals else point, "ci": None if not vals else [lo, hi], "n": len(vals)}
    by_step: dict[int, list[float]] = {}
    for run in runs:
        for step, v in run.violations:
            by_step.setdefault(step, []).append(float(v))
    curve: dict[str, list[float]] = {"step": [], "mean": [], "low": [], "high": []}
    for step in sorted(s for s, v in by_step.items() if len(v) == len(runs)):
        point, lo, hi = mean_ci(by_step[step], reps=max(200, reps // 4), seed=seed)
        for k, v in zip(("step", "mean", "low", "high"), (step, point, lo, hi), strict=True):
            curve[k].append(float(v))
    out["violation_curve"] = curve
    return out


# -- the report -----------------------------------------------------------------------------------
Bounds = Mapping[str, tuple[float, float]]  # task -> (low, high) returns


def _normalised(runs: Sequence[RunResult], metric: str, reference: Bounds | None = None
                ) -> dict[str, dict[str, np.ndarray]]:
    """method -> task -> normalised scores (see module docstring); ``reference``: task -> the
    (low, high) returns that map to 0 and 1 (default: the lowest and highest run's)."""
    key = "success" if metric == "success" else "return"
    bounds: dict[str, tuple[float, float]] = {}
    for task in {r.task for r in runs}:
        vals = [float(v) for r in runs if r.task == task and (v := r.final[key]) is not None]
        bounds[task] = (min(vals), max(vals)) if vals else (0.0, 1.0)
    bounds.update(reference or {})
    out: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        v = r.final[key]
        if v is None or not math.isfinite(v):
            continue
        if metric == "return":
            lo, hi = bounds[r.task]
            if hi <= lo:  # one final return on this task: nothing to normalise it against
                continue
            v = (v - lo) / (hi - lo)
        out.setdefault(r.method, {}).setdefault(r.task, []).append(float(v))
    return {m: {t: np.array(v) for t, v in d.items()} for m, d in out.items()}


def report(runs: Sequence[RunResult], metric: str = "return", *, reps: int = 2000, seed: int = 0,
           reference: Bounds | None = None, reach: float = 0.9) -> dict[str, Any]:
    """Per-task raw results and cross-task aggregates of ``runs`` (labels set here); JSON-able.

    :param reference: task -> (low, high): the returns normalised to 0 and 1 on that task (e.g. a
        random policy's and the best possible, as in the Atari literature); default: the lowest
        and highest final return of the runs in the report.
    :param reach: the success rate whose first evaluation counts as "reached" in the sample
        efficiency (:func:`efficiency_summary`), in (0, 1].
    """
    if metric not in METRICS:
        raise ReportError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not (isinstance(reach, (int, float)) and 0 < reach <= 1):
        raise ReportError(f"the success rate to reach must be in (0, 1], got {reach!r}")
    for task, (low, high) in (reference or {}).items():
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ReportError(f"reference returns of {task}: need low < high, got {low:g}:{high:g}")
    label_methods(runs)
    key = "success" if metric == "success" else "return"
    per_task: list[dict[str, Any]] = []
    for task in sorted({r.task for r in runs}):
        for method in sorted({r.method for r in runs if r.task == task}):
            mine = [r for r in runs if r.task == task and r.method == method]
            vals = np.array([r.final[key] for r in mine if r.final[key] is not None], dtype=np.float64)
            if len(vals) == 0:
                continue
            point, lo, hi = stratified_bootstrap({task: vals}, iqm, reps=reps, seed=seed)
            curve = learning_curve(mine, "success_rate" if metric == "success" else "return_mean",
                                   reps=max(200, reps // 4), seed=seed)
            per_task.append({"task": task, "method": method, "runs": len(vals),
                             "seeds": sorted(r.seed for r in mine if r.seed is not None),
                             "iqm": point, "iqm_ci": [float(lo), float(hi)], "median": float(np.median(vals)),
                             "mean": float(vals.mean()), "min": float(vals.min()), "max": float(vals.max()),
                             "curve": curve, "safety": safety_summary(mine, reps=reps, seed=seed),
                             "efficiency": efficiency_summary(mine, reach),
                             "dirs": [str(r.path) for r in mine]})
    scores = _normalised(runs, metric, reference)
    note = None if scores else ("no aggregate across tasks: no task has two different final returns "
                                "to normalise between (add runs, give --bounds, or use --metric success)")
    taus = np.linspace(0.0, 1.0, 51)
    agg: list[dict[str, Any]] = []
    for method, by_task in sorted(scores.items()):
        point, lo, hi = stratified_bootstrap(by_task, lambda x: np.array(list(aggregates(x).values())),
                                             reps=reps, seed=seed)
        prof, plo, phi = performance_profile(by_task, taus, reps=reps, seed=seed)
        names = list(aggregates(np.zeros(1)))
        agg.append({"method": method, "tasks": sorted(by_task),
                    "runs": int(sum(len(v) for v in by_task.values())),
                    **{n: float(point[i]) for i, n in enumerate(names)},
                    **{f"{n}_ci": [float(lo[i]), float(hi[i])] for i, n in enumerate(names)},
                    "profile": {"tau": taus.tolist(), "share": prof.tolist(), "low": plo.tolist(),
                                "high": phi.tolist()}})
    given = "; ".join(f"{t} between {lo:g} and {hi:g}" for t, (lo, hi) in sorted((reference or {}).items()))
    norm = ("success rate" if metric == "success" else
            f"return per task: {given + '; other tasks' if given else 'each task'} between the lowest "
            f"and highest final return")
    return {"metric": metric, "normalisation": norm,
            "reps": reps, "per_task": per_task, "aggregate": agg, "note": note}
