"""Hyperparameter search (``robot-brain tune``): Optuna's TPE sampler and median pruner over
ordinary training runs executed on Ray, the study kept in SQLite so that it resumes.

This is RL Zoo's recipe on this project's parts:

- a trial is a ``robot-brain train`` run in its own run directory (``trial-NNNN``), launched as
  a child process of a Ray task exactly as ``robot-brain sweep`` launches its trials
  (:func:`robot_brain.training.sweep.execute`), so a trial is resumable, retried from its
  checkpoint when its process dies, and inspectable like any run;
- the sampler proposes ``--set key=value`` overrides from a per-algorithm search space
  (:data:`SPACES`, RL Zoo's ranges narrowed to what fits a few thousand steps);
- every trial evaluates its deterministic policy ``evals`` times; each evaluation is reported to
  Optuna as it lands, and a trial whose evaluation falls below the median of the earlier trials
  at the same step is pruned: its process is stopped as Ctrl-C stops a run;
- the objective is the last evaluation (mean return by default, or the success rate);
- the first trial of a new study is the task's shipped configuration, so the search always has
  the default to beat, measured under the same budget and seed;
- the study lives in ``DIR/study.db`` (SQLite): running the same command again adds trials up to
  ``--trials``, and a trial that was running when the search stopped resumes from its checkpoint;
- the best configuration is written to ``DIR/best.yaml``, a file ``train --config`` takes.

The driver process owns the study (SQLite has one writer); the Ray tasks send their evaluations
through a small actor (:class:`_Mailbox`) that the driver drains every second, and read back
whether they were pruned.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError
from .run import claim_dir
from .sweep import SweepError, Trial, TrialFailed, execute, import_ray, ray_session

__all__ = ["SPACES", "Param", "TuneError", "TuneSpec", "best_config_yaml", "run_tune", "space_for"]

STUDY_FILE = "study.db"
BEST_FILE = "best.yaml"
LOCK_FILE = ".tune.lock"
METRICS = {"return": "return_mean", "success": "success_rate"}


class TuneError(SweepError):
    """A search that cannot run (one line naming the problem)."""


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: a key of the configuration (dotted for a nested one) with
    its choices (values as YAML text, so lists such as ``[64, 64]`` are choices too) or a
    float range; ``also`` are keys that take the same value (``gradient_steps`` follows
    ``train_freq``, RL Zoo's convention)."""

    key: str
    choices: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    also: tuple[str, ...] = ()

    def suggest(self, trial: Any) -> str:
        """The value Optuna's ``trial`` proposes, as the text of a ``--set``."""
        if self.choices:
            return self.text(trial.suggest_categorical(self.key, list(self.choices)))
        return self.text(trial.suggest_float(self.key, self.low, self.high, log=self.log))

    def text(self, value: Any) -> str:
        """An Optuna value of this parameter as the text of a ``--set``."""
        return str(value) if self.choices else repr(float(value))

    def encode(self, value: Any) -> str | float | None:
        """The Optuna parameter for a configuration value, or None when the space lacks it."""
        if self.choices:
            for c in self.choices:
                if yaml.safe_load(c) == value:
                    return c
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value) if self.low <= value <= self.high else None

    def overrides(self, text: str) -> list[str]:
        return [f"{k}={text}" for k in (self.key, *self.also)]


_NETS = ("[64, 64]", "[256, 256]", "[400, 300]")
_OFF_POLICY = (
    Param("learning_rate", low=1e-4, high=3e-3, log=True),
    Param("batch_size", ("64", "128", "256", "512")),
    Param("gamma", ("0.9", "0.95", "0.98", "0.99")),
    Param("learning_starts", ("100", "500", "1000", "2000")),
    Param("train_freq", ("1", "4", "8"), also=("gradient_steps",)),
)
_TAU = Param("tau", ("0.005", "0.01", "0.02", "0.05"))
_NET = Param("policy_kwargs.net_arch", _NETS)
SPACES: dict[str, tuple[Param, ...]] = {
    "sac": (*_OFF_POLICY, _TAU, _NET),
    "tqc": (*_OFF_POLICY, _TAU, _NET),
    "td3": (*_OFF_POLICY, _TAU, _NET, Param("noise_std", ("0.1", "0.2", "0.3", "0.5"))),
    # CrossQ has no target network (no tau) and separate actor/critic widths
    "crossq": _OFF_POLICY,
    "ppo": (
        Param("learning_rate", low=1e-5, high=1e-3, log=True),
        Param("n_steps", ("256", "512", "1024", "2048")),
        Param("batch_size", ("64", "128", "256")),
        Param("n_epochs", ("5", "10", "20")),
        Param("gamma", ("0.95", "0.98", "0.99", "0.995")),
        Param("gae_lambda", ("0.9", "0.95", "0.98")),
        Param("clip_range", ("0.1", "0.2", "0.3")),
        Param("ent_coef", ("0.0", "0.001", "0.01")),
        Param("policy_kwargs.net_arch", ("[64, 64]", "[128, 128]", "[256, 256]")),
    ),
}


def space_for(algo: str, hyperparams: Mapping[str, Any], fixed: Sequence[str] = ()) -> tuple[Param, ...]:
    """The search space of ``algo``, less the keys fixed by ``--set`` and the network sizes of
    the circuit policy (its size is the circuit's)."""
    if algo not in SPACES:
        raise TuneError(f"tune searches {', '.join(SPACES)}; {algo} has no search space "
                        f"(es trains circuits with a handful of weights: use 'robot-brain sweep --set')")
    keys = {item.partition("=")[0].strip() for item in fixed}
    circuit = hyperparams.get("policy") == "NcapPolicy"
    return tuple(p for p in SPACES[algo]
                 if not ({p.key, *p.also} & keys) and not (circuit and p.key.startswith("policy_kwargs.")))


def _lookup(hp: Mapping[str, Any], key: str) -> Any:
    node: Any = hp
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def baseline_params(space: Sequence[Param], hyperparams: Mapping[str, Any]) -> dict[str, Any] | None:
    """The shipped configuration as a point of ``space`` (None when one of its values lies
    outside the space, or a follower such as ``gradient_steps`` differs)."""
    params = {}
    for p in space:
        value = _lookup(hyperparams, p.key)
        enc = p.encode(value)
        if enc is None or any(_lookup(hyperparams, k) != value for k in p.also):
            return None
        params[p.key] = enc
    return params


@dataclass
class TuneSpec:
    """What ``robot-brain tune`` was asked (see :mod:`robot_brain.cli.tune`)."""

    task: str
    algo: str
    out: Path
    hyperparams: dict[str, Any]  # the resolved configuration every trial starts from
    trials: int = 20
    steps: int = 10_000
    evals: int = 4
    seed: int = 0
    workers: int = 2
    address: str | None = None
    retries: int = 1
    metric: str = "return"
    pruner: str = "median"
    startup: int = 5
    fixed: tuple[str, ...] = ()  # --set key=value of every trial
    extra: tuple[str, ...] = ()  # further train arguments (--policy, --config)

    @property
    def eval_freq(self) -> int:
        return max(1, math.ceil(self.steps / self.evals))

    def identity(self) -> dict[str, Any]:
        """What a study is a search of: resuming it with another of these is refused."""
        return {"task": self.task, "algo": self.algo, "steps": self.steps, "evals": self.evals,
                "seed": self.seed, "metric": self.metric, "fixed": sorted(self.fixed),
                "extra": list(self.extra)}


@dataclass
class TuneOutcome:
    counts: dict[str, int]
    trials: list[dict[str, Any]] = field(default_factory=list)  # every trial of the study
    best: dict[str, Any] | None = None
    best_yaml: Path | None = None


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise TuneError("robot-brain tune needs Optuna and Ray: pip install 'robot-brain[scale]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _open_study(optuna: Any, spec: TuneSpec) -> Any:
    name = f"{spec.task}-{spec.algo}"
    sampler = optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=spec.startup, constant_liar=True)
    if spec.pruner == "median":
        # RL Zoo: no pruning before a third of the evaluations, nor before `startup` trials ended
        pruner = optuna.pruners.MedianPruner(n_startup_trials=spec.startup,
                                             n_warmup_steps=spec.steps // 3)
    else:
        pruner = optuna.pruners.NopPruner()
    storage = f"sqlite:///{(spec.out / STUDY_FILE).resolve()}"
    try:
        study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                    direction="maximize", sampler=sampler, pruner=pruner)
    except Exception as exc:  # a corrupt or foreign database file: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TuneError(f"cannot open the study in {spec.out / STUDY_FILE}: {first} (move the file "
                        f"aside, or use another --out)") from None
    have = study.user_attrs.get("identity")
    want = json.loads(json.dumps(spec.identity()))
    if have is None:
        study.set_user_attr("identity", want)
    elif have != want:
        diff = sorted(k for k in want if have.get(k) != want.get(k))
        raise TuneError(f"{spec.out / STUDY_FILE} holds a search of another kind ({', '.join(diff)} differ: "
                        f"{', '.join(f'{k}={have.get(k)!r}' for k in diff)}); use another --out")
    return study


def _tune_trial(trial: Trial, number: int, metric: str, mailbox: Any) -> dict[str, Any]:
    """The body of a tune trial's Ray task: train, sending each new evaluation to ``mailbox``,
    and stop when the driver prunes the trial."""
    import ray

    sent = 0

    def poll() -> bool:
        nonlocal sent
        evals = _evaluations(trial.run_dir, metric)
        new, sent = evals[sent:], len(evals)
        return bool(ray.get(mailbox.poll.remote(number, new)))

    res = execute(trial, poll)
    res["evaluations"] = _evaluations(trial.run_dir, metric)
    return res


def _evaluations(run_dir: Path, metric: str) -> list[tuple[int, float]]:
    """(step, value) of the run's periodic evaluations written so far (``metrics.json``)."""
    try:
        m = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        return [(int(e["step"]), float(e[METRICS[metric]])) for e in m.get("evaluations") or []
                if e.get(METRICS[metric]) is not None]
    except (OSError, ValueError, KeyError, TypeError):
        return []


class _Mailbox:
    """Evaluations from the trials to the driver, prune decisions back (a Ray actor)."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, int, float]] = []
        self.pruned: set[int] = set()

    def poll(self, number: int, evaluations: list[tuple[int, float]]) -> bool:
        self.reports.extend((number, step, value) for step, value in evaluations)
        return number in self.pruned

    def drain(self) -> list[tuple[int, int, float]]:
        out, self.reports = self.reports, []
        return out

    def prune(self, number: int) -> None:
        self.pruned.add(number)


def _trial_of(spec: TuneSpec, number: int, params: Mapping[str, Any], space: Sequence[Param]) -> Trial:
    """The run of trial ``number`` with ``params`` (Optuna's values of ``space``)."""
    values = []
    for p in space:
        if p.key in params:
            values += [(k, p.text(params[p.key])) for k in (p.key, *p.also)]
    every = (*spec.extra, *(a for item in spec.fixed for a in ("--set", item)),
             "--set", f"eval_freq={spec.eval_freq}", "--set", f"save_freq={spec.eval_freq}")
    return Trial(spec.task, spec.algo, spec.seed, tuple(values), spec.out / f"trial-{number:04d}", spec.steps,
                 every, flags=("--eval-episodes", "0"))


def run_tune(spec: TuneSpec, on_event: Callable[[str, dict[str, Any]], None] | None = None) -> TuneOutcome:
    """Run the search until the study holds ``spec.trials`` ended trials; Ctrl-C stops it (the
    running trials keep their checkpoints and resume with the next call) and re-raises.

    ``on_event(kind, info)`` hears ``"start"``, ``"report"``, ``"done"``, ``"pruned"`` and
    ``"failed"``, with the trial's number, parameters and values.
    """
    optuna = _import_optuna()
    import_ray("tune")
    space = space_for(spec.algo, spec.hyperparams, spec.fixed)
    spec.out.mkdir(parents=True, exist_ok=True)
    try:
        claim = claim_dir(spec.out, "robot-brain tune", lock_name=LOCK_FILE)
    except ConfigError as exc:
        raise TuneError(str(exc)) from None
    with claim:
        study = _open_study(optuna, spec)
        return _search(optuna, study, spec, space, on_event or (lambda kind, info: None))


def _search(optuna: Any, study: Any, spec: TuneSpec, space: Sequence[Param],
            on_event: Callable[[str, dict[str, Any]], None]) -> TuneOutcome:
    TrialState = optuna.trial.TrialState
    if not study.trials:
        base = baseline_params(space, spec.hyperparams)
        if base is not None:  # the default to beat, under the same budget
            study.enqueue_trial(base, user_attrs={"baseline": True})
    # trials left running by a search that stopped resume from their checkpoints (Optuna has no
    # public handle from a stored trial back to a live one; Trial(study, id) is its own way)
    queue: list[Any] = [optuna.trial.Trial(study, t._trial_id) for t in study.trials
                        if t.state == TrialState.RUNNING]
    ended = sum(t.state.is_finished() for t in study.trials)
    to_ask = max(0, spec.trials - ended - len(queue))
    with ray_session(spec.workers, spec.address, "tune") as (ray, running):
        mailbox = ray.remote(num_cpus=0)(_Mailbox).remote()
        task = ray.remote(num_cpus=1, max_retries=spec.retries,
                          retry_exceptions=[TrialFailed])(_tune_trial)
        while queue or to_ask or running:
            while len(running) < spec.workers and (queue or to_ask):
                if queue:
                    ot = queue.pop(0)
                else:
                    ot = study.ask()
                    to_ask -= 1
                    for p in space:  # every parameter drawn now, in the order of the space
                        p.suggest(ot)
                run = _trial_of(spec, ot.number, ot.params, space)
                running[task.remote(run, ot.number, spec.metric, mailbox)] = ot
                on_event("start", {"number": ot.number, "params": dict(ot.params),
                                   "baseline": bool(ot.user_attrs.get("baseline"))})
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            _prune_step(ray, mailbox, running, spec.steps, on_event)
            for ref in done:
                _finish(ray, ref, running.pop(ref), study, TrialState, on_event)
    return _outcome(study, spec, space)


def _prune_step(ray: Any, mailbox: Any, running: Mapping[Any, Any], steps: int,
                on_event: Callable[[str, dict[str, Any]], None]) -> None:
    """Report the evaluations that arrived; prune the trials the pruner gives up on (not at the
    last evaluation: the run is over by then, and its value is worth more than a prune)."""
    by_number = {ot.number: ot for ot in running.values()}
    for number, step, value in ray.get(mailbox.drain.remote()):
        ot = by_number.get(number)
        if ot is None or not math.isfinite(value):
            continue
        with warnings.catch_warnings():  # a resumed trial re-sends steps it reported before
            warnings.simplefilter("ignore")
            ot.report(value, step)
        on_event("report", {"number": number, "step": step, "value": value})
        if step < steps and not ot.user_attrs.get("pruned_at") and ot.should_prune():
            ot.set_user_attr("pruned_at", step)
            mailbox.prune.remote(number)


def _finish(ray: Any, ref: Any, ot: Any, study: Any, TrialState: Any,
            on_event: Callable[[str, dict[str, Any]], None]) -> None:
    info: dict[str, Any] = {"number": ot.number, "params": dict(ot.params)}
    try:
        res = ray.get(ref)
    except Exception as exc:  # the trial's own failure, after its retries
        info["error"] = str(exc).strip().splitlines()[-1]
        study.tell(ot, state=TrialState.FAIL)
        on_event("failed", info)
        return
    evals = res.get("evaluations") or []
    info.update(run_dir=res["run_dir"], evaluations=evals, seconds=res.get("seconds"))
    if res["status"] == "stopped":
        info["pruned_at"] = ot.user_attrs.get("pruned_at")
        study.tell(ot, state=TrialState.PRUNED)
        info["step"], info["value"] = (evals[-1] if evals else (0, None))
        on_event("pruned", info)
    elif not evals:
        info["error"] = "the run finished without an evaluation"
        study.tell(ot, state=TrialState.FAIL)
        on_event("failed", info)
    else:
        info["step"], info["value"] = evals[-1]
        study.tell(ot, evals[-1][1])
        on_event("done", info)


def _row(t: Any, out: Path) -> dict[str, Any]:
    return {"number": t.number, "state": t.state.name.lower(), "value": t.value,
            "params": dict(t.params), "baseline": bool(t.user_attrs.get("baseline")),
            "last_step": max(t.intermediate_values) if t.intermediate_values else None,
            "intermediate": {int(k): float(v) for k, v in sorted(t.intermediate_values.items())},
            "run_dir": str(out / f"trial-{t.number:04d}")}


def _outcome(study: Any, spec: TuneSpec, space: Sequence[Param]) -> TuneOutcome:
    rows = [_row(t, spec.out) for t in study.trials]
    counts = {s: sum(r["state"] == s for r in rows) for s in ("complete", "pruned", "fail", "running")}
    complete = [r for r in rows if r["state"] == "complete"]
    out = TuneOutcome(counts, rows)
    if complete:
        best = max(complete, key=lambda r: r["value"])
        out.best = best
        out.best_yaml = spec.out / BEST_FILE
        from robot_brain.fileio import atomic_write_text

        atomic_write_text(out.best_yaml, best_config_yaml(spec, space, best, rows))
    return out


def best_config_yaml(spec: TuneSpec, space: Sequence[Param], best: Mapping[str, Any],
                     rows: Sequence[Mapping[str, Any]]) -> str:
    """The text of ``best.yaml``: a section for the algorithm with the searched values of the
    best trial and the settings every trial shared (``--set``), for ``train --config``."""
    from .config import apply_overrides  # parsed and nested as train parses --set

    items = list(spec.fixed)
    for p in space:
        if p.key in best["params"]:
            items += p.overrides(p.text(best["params"][p.key]))
    section = apply_overrides(spec.algo, {}, items)
    base = [r for r in rows if r["baseline"] and r["state"] == "complete"]
    metric = f"{spec.metric} of the last evaluation"
    shipped = (f"; the shipped configuration (trial {base[0]['number']}): {base[0]['value']:.4g}"
               if base else "")
    lines = [f"# robot-brain tune {spec.task} --algo {spec.algo}: the best of "
             f"{sum(r['state'] in ('complete', 'pruned') for r in rows)} trials ({spec.steps} steps each, "
             f"seed {spec.seed})",
             f"# trial {best['number']}: {metric} {best['value']:.4g}{shipped}",
             f"# use: robot-brain train {spec.task} --algo {spec.algo} --config {spec.out / BEST_FILE}",
             "# (keys not listed here keep the task's shipped defaults)"]
    return "\n".join(lines) + "\n" + yaml.safe_dump({spec.algo: section}, sort_keys=False)
