"""``robot-brain tune TASK``: hyperparameter search with Optuna (TPE, median pruning) on Ray."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import EXIT_FAILURE, CliError, add_ray_options, nonneg_int, output_path, positive_int

NAME = "tune"
HELP = "search hyperparameters with Optuna (TPE sampler, median pruner), trials on Ray; resumable"
DESCRIPTION = """Search the hyperparameters of a learner on a task, RL Zoo's way: Optuna's TPE
sampler proposes a configuration, an ordinary training run (steps --steps, seed --seed) evaluates
it --evals times, and a trial whose evaluation falls below the median of the earlier trials at
the same step is pruned (stopped early). The objective is the last evaluation (mean return, or
the success rate with --metric success). The first trial of a new study is the task's shipped
configuration, so the table shows the default beside what the search found. Trials run in
parallel on Ray (--workers locally, or a cluster with --address). The study is kept in
DIR/study.db (SQLite): the same command again adds trials up to --trials, and trials that were
running resume from their checkpoints. The best configuration goes to DIR/best.yaml, which
'robot-brain train --config' takes; DIR/tune.png draws the search. Needs the scale extra:
pip install 'robot-brain[scale]'.

searched: sac/tqc/td3: learning_rate, batch_size, gamma, tau, learning_starts, train_freq (=
gradient_steps), net_arch (td3 also noise_std; crossq without tau and net_arch); ppo:
learning_rate, n_steps, batch_size, n_epochs, gamma, gae_lambda, clip_range, ent_coef, net_arch.
A key fixed with --set is not searched.

examples:
  robot-brain tune reach --algo sac --trials 12 --steps 10000
  robot-brain tune reach --algo sac --trials 20 --steps 10000   # resumes: adds 8 trials
  robot-brain train reach --algo sac --config runs/tune/reach-sac/best.yaml
  ray start --head --port 6379 && robot-brain tune reach --trials 50 --address 127.0.0.1:6379 --workers 8
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", metavar="TASK", help="task name, e.g. reach")
    p.add_argument("--algo", default="sac", metavar="ALGO",
                   help="sac (default), tqc, crossq, td3 or ppo")
    p.add_argument("--policy", default=None, metavar="POLICY", help="mlp or ncap (as for train)")
    p.add_argument("--trials", type=positive_int, default=20, metavar="N",
                   help="trials in the study, counting those of earlier calls (default: 20)")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N",
                   help="training steps of every trial (default: the task's n_timesteps)")
    p.add_argument("--evals", type=positive_int, default=4, metavar="N",
                   help="evaluations per trial, the points where pruning can stop it (default: 4)")
    p.add_argument("--metric", choices=("return", "success"), default="return",
                   help="the objective: mean return (default) or success rate of the last evaluation")
    p.add_argument("--pruner", choices=("median", "none"), default="median",
                   help="median: stop a trial below the median of earlier trials at the same step "
                        "(after the first third of its steps and --startup ended trials); none")
    p.add_argument("--startup", type=positive_int, default=5, metavar="N",
                   help="random trials before TPE models the results, and before pruning (default: 5)")
    p.add_argument("--seed", type=nonneg_int, default=0, metavar="S",
                   help="seed of the sampler and of every trial's training (default: 0)")
    p.add_argument("--config", default=None, metavar="FILE.yaml",
                   help="start every trial from this hyperparameter file (as for train)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of every trial, not searched (repeatable)")
    add_ray_options(p, retries=1)
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="the study, its trials' run directories and best.yaml (default: runs/tune/TASK-ALGO)")
    p.add_argument("--json", type=output_path((".json",)), default=None, metavar="FILE",
                   help="write every trial and the best configuration to FILE")


def _spec(args: argparse.Namespace) -> Any:
    from robot_brain.envs import resolve_task
    from robot_brain.envs.registry import UnknownTaskError
    from robot_brain.fileio import unwritable
    from robot_brain.training.config import ConfigError, check_algo, resolve_hyperparams
    from robot_brain.training.tune import TuneError, TuneSpec, space_for

    try:
        task = resolve_task(args.task).name
        algo = check_algo(args.algo)
        space_for(algo, {})  # a learner without a search space, before its configuration
        hp = resolve_hyperparams(task, algo, config_file=args.config, overrides=args.sets, policy=args.policy,
                                 steps=args.steps)
        space_for(algo, hp, args.sets)
    except (UnknownTaskError, ConfigError, TuneError) as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    out = args.out or Path("runs") / "tune" / f"{task}-{algo}"
    problem = unwritable(out, directory=True)
    if problem:
        raise CliError(f"argument --out: {problem}")
    steps = int(hp["n_timesteps"])
    if args.evals > steps:
        raise CliError(f"argument --evals: {args.evals} evaluations do not fit in {steps} steps")
    extra = [] if args.policy is None else ["--policy", args.policy]
    if args.config is not None:
        extra += ["--config", str(Path(args.config).resolve())]
    return TuneSpec(task=task, algo=algo, out=out, hyperparams=hp, trials=args.trials, steps=steps,
                    evals=args.evals, seed=args.seed, workers=args.workers, address=args.address,
                    retries=args.retries, metric=args.metric, pruner=args.pruner, startup=args.startup,
                    fixed=tuple(args.sets), extra=tuple(extra))


def _params_text(params: dict[str, Any]) -> str:
    def one(key: str, v: Any) -> str:
        name = key.rsplit(".", 1)[-1]
        return f"{name}={v:.3g}" if isinstance(v, float) else f"{name}={v}"

    return " ".join(one(k, v) for k, v in params.items())


def _reporter(con: Any, metric: str) -> Callable[[str, dict[str, Any]], None]:
    """One line per trial started and ended."""

    def show(kind: str, info: dict[str, Any]) -> None:
        n = info["number"]
        if kind == "start":
            tag = " (the shipped configuration)" if info["baseline"] else ""
            line = f"  trial {n} started{tag}: {_params_text(info['params'])}"
        elif kind == "done":
            line = (f"  trial {n} complete: {metric} {info['value']:.4g} at step {info['step']} "
                    f"({(info.get('seconds') or 0) / 60:.1f} min)")
        elif kind == "pruned":
            value = "" if info["value"] is None else f": {metric} {info['value']:.4g}"
            at = info.get("pruned_at") or info["step"]
            line = f"  trial {n} pruned at step {at}{value} (below the median of earlier trials)"
        elif kind == "failed":
            line = f"  trial {n} failed: {info.get('error')}"
        else:
            return
        con.print(line, markup=False, highlight=False)

    return show


def _table(rows: list[dict[str, Any]], spec: Any) -> Any:
    """Every trial, the complete ones best first."""
    from rich.table import Table

    table = Table(title=f"{spec.task} / {spec.algo}: {len(rows)} trials, best first")
    for col in ("trial", "state", spec.metric, "last step", "parameters"):
        table.add_column(col, justify="right" if col in ("trial", spec.metric, "last step") else "left")
    ranked = sorted(rows, key=lambda r: (r["state"] != "complete", -(r["value"] or 0.0), r["number"]))
    for r in ranked:
        value = "" if r["value"] is None else f"{r['value']:.4g}"
        table.add_row(str(r["number"]) + (" *" if r["baseline"] else ""), r["state"], value,
                      str(r["last_step"] or ""), _params_text(r["params"]))
    return table


def run(args: argparse.Namespace) -> int:
    from robot_brain.training.plotting import plot_tune
    from robot_brain.training.tune import BEST_FILE, TuneError, run_tune

    from ._common import console, save_results

    spec = _spec(args)
    con = console()
    con.print(f"tune {spec.task} --algo {spec.algo}: {spec.trials} trials of {spec.steps} steps, "
              f"{spec.evals} evaluations each (objective: {spec.metric}), {spec.workers} at a time "
              f"-> {spec.out}")
    try:
        outcome = run_tune(spec, _reporter(con, spec.metric))
    except TuneError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    except KeyboardInterrupt:
        con.print("\ntune interrupted: ended trials are in the study, running ones stopped at their last "
                  "checkpoint; run the same command again to go on")
        return 130
    rows, c = outcome.trials, outcome.counts
    con.print(_table(rows, spec))
    con.print(f"{c['complete']} complete, {c['pruned']} pruned, {c['fail']} failed "
              f"(* the shipped configuration)")
    picture = plot_tune(rows, spec.out / "tune.png", metric=spec.metric) if rows else None
    if outcome.best is not None:
        best = spec.out / BEST_FILE
        value = outcome.best["value"]
        con.print(f"best: trial {outcome.best['number']}, {spec.metric} {value:.4g} -> {best}")
        con.print(f"train with it: robot-brain train {spec.task} --algo {spec.algo} --config {best}")
    if picture is not None:
        con.print(f"picture: {picture}")
    if args.json is not None:
        save_results(args.json, {"task": spec.task, "algo": spec.algo, "steps": spec.steps,
                                 "metric": spec.metric, "counts": c, "best": outcome.best,
                                 "best_yaml": str(outcome.best_yaml) if outcome.best_yaml else None,
                                 "trials": rows})
    return 0 if outcome.best is not None else EXIT_FAILURE
