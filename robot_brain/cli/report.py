"""``robot-brain report DIR...``: many runs summarised with interval estimates (the rliable method)."""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path
from typing import Any

from ._common import CliError, output_path, positive_int

NAME = "report"
HELP = "aggregate runs over seeds and tasks: IQM, median, mean, optimality gap with 95 % CIs"
DESCRIPTION = """Summarise training runs the way the field reports them: for each method (algorithm,
policy, shield and every hyperparameter changed from the task's defaults; seeds pool together),
the interquartile mean, median, mean and optimality gap of the final evaluation scores with 95 %
stratified-bootstrap intervals, performance profiles, and learning curves (IQM over runs with
bands), sample efficiency (the steps and training time until a run's evaluation first reaches
the --reach success rate), and safety: violating steps paid in training, training successes per
violation, the final violations per episode and peak contact force, with intervals, and the
cumulative violations against steps. Each DIR is a run directory or a folder holding runs at any
depth. --metric return normalises returns per task between the lowest and highest run in the
report; --metric success uses success rates. Prints a per-task table and the aggregates; writes
report.json and PNGs to --out.

examples:
  robot-brain report runs/swimmer --bounds swimmer=0:1000
  robot-brain report runs/maze runs/peg-insertion --metric success --out out/report
  robot-brain report runs/algos --metric success --reach 0.8
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="run directories or folders of runs")
    p.add_argument("--metric", choices=("return", "success"), default="return",
                   help="score of a run: its final mean return (default) or success rate")
    p.add_argument("--out", type=Path, default=Path("out/report"), metavar="DIR",
                   help="where report.json and the PNGs go (default: out/report)")
    p.add_argument("--json", type=output_path((".json",)), default=None, metavar="FILE",
                   help="also write the report to FILE")
    p.add_argument("--bounds", action="append", default=[], metavar="TASK=LOW:HIGH",
                   help="returns that normalise to 0 and 1 on TASK (repeatable), e.g. swimmer=0:1000; "
                        "default: the lowest and highest final return in the report")
    p.add_argument("--reach", type=_rate, default=0.9, metavar="R",
                   help="success rate whose first evaluation counts as reached, for the sample "
                        "efficiency table (default: 0.9)")
    p.add_argument("--reps", type=positive_int, default=2000, metavar="N",
                   help="bootstrap resamples (default: 2000)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the bootstrap (default: 0)")


def _rate(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not 0 < x <= 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected a success rate in (0, 1], got {text!r}")
    return x


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _ci(value: float, ci: list[float]) -> str:
    return f"{_num(value)} [{_num(ci[0])}, {_num(ci[1])}]"


def _bounds(items: list[str]) -> dict[str, tuple[float, float]]:
    """``--bounds TASK=LOW:HIGH`` items as task -> (low, high) (checked further by the report)."""
    reference = {}
    for item in items:
        task, _, span = item.partition("=")
        low, _, high = span.partition(":")
        try:
            reference[task] = (float(low), float(high))
        except ValueError:
            raise CliError(f"argument --bounds: expected TASK=LOW:HIGH, got {item!r}") from None
    return reference


def _print(con: Any, result: dict[str, Any]) -> None:
    """The per-task table, then the aggregates (or why there are none)."""
    from rich.table import Table

    what = "success rate" if result["metric"] == "success" else "final return"
    table = Table(title=f"per task: {what} over runs (IQM with 95 % bootstrap interval)")
    for col in ("task", "method", "runs", "IQM [95 % CI]", "median", "mean", "min", "max"):
        table.add_column(col, justify="left" if col in ("task", "method") else "right")
    for r in result["per_task"]:
        table.add_row(r["task"], r["method"], str(r["runs"]), _ci(r["iqm"], r["iqm_ci"]),
                      *(f"{r[k]:.3g}" for k in ("median", "mean", "min", "max")))
    con.print(table)
    _print_efficiency(con, result)
    _print_safety(con, result)
    if result["note"]:
        con.print(result["note"], markup=False, highlight=False)
        return
    table = Table(title=f"aggregate over tasks ({result['normalisation']}), 95 % stratified bootstrap")
    for col in ("method", "runs", "IQM", "median", "mean", "optimality gap"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for a in result["aggregate"]:
        table.add_row(a["method"], str(a["runs"]),
                      *(_ci(a[k], a[f"{k}_ci"]) for k in ("iqm", "median", "mean", "optimality_gap")))
    con.print(table)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _print_efficiency(con: Any, result: dict[str, Any]) -> None:
    """Steps and training time until the first evaluation at the --reach success rate, per task
    and method: the median over runs (a run that never got there counts as slowest: "never"
    when most did not), then every run's; only when some run got there."""
    from rich.table import Table

    rows = result["per_task"]
    if not any(r["efficiency"]["reached"] for r in rows):  # e.g. a task without successes
        return
    rate = rows[0]["efficiency"]["rate"]
    table = Table(title=f"sample efficiency: first evaluation with success >= {100 * rate:g} % "
                        "(median over runs; per run, '-' = never)")
    for col in ("task", "method", "reached", "steps", "per run", "training time", "per run",
                "whole run (median)"):
        table.add_column(col, justify="left" if col in ("task", "method") else "right")
    for r in rows:
        e = r["efficiency"]
        steps = "never" if e["steps_median"] is None else _num(e["steps_median"])
        if e["untimed"]:
            time = "?"  # a run that reached it did not record its time (an older run)
        else:
            time = "never" if e["seconds_median"] is None else _duration(e["seconds_median"])
        whole = [t for t in e["run_seconds"] if t is not None]
        table.add_row(r["task"], r["method"], f"{e['reached']}/{e['runs']}", steps,
                      " ".join("-" if s is None else _num(s) for s in e["steps"]), time,
                      " ".join("-" if s is None else ("?" if t is None else _duration(t))
                               for s, t in zip(e["steps"], e["seconds"], strict=True)),
                      _duration(statistics.median(whole)) if whole else "?")
    con.print(table)


def _print_safety(con: Any, result: dict[str, Any]) -> None:
    """Safety per task and method (mean over runs [95 % CI]); only tasks where something was
    violated or touched."""
    from rich.table import Table

    from robot_brain.training.results import SAFETY

    rows = [r for r in result["per_task"]
            if any((r["safety"][k]["mean"] or 0) > 0 for k in ("training_violations", "final_peak_force"))]
    if not rows:
        return
    table = Table(title="safety: mean over runs [95 % bootstrap interval]")
    heads = ("violating steps in training", "training successes per violation", "final violations / episode",
             "final peak force [N]")
    for col in ("task", "method", *heads):
        table.add_column(col, justify="left" if col in ("task", "method") else "right")
    for r in rows:
        cells = []
        for key in SAFETY:
            v = r["safety"][key]
            cells.append("-" if v["mean"] is None else _ci(v["mean"], v["ci"])
                         + ("" if v["n"] == r["runs"] else f" ({v['n']} runs)"))
        table.add_row(r["task"], r["method"], *cells)
    con.print(table)


def run(args: argparse.Namespace) -> int:
    from robot_brain.fileio import unwritable
    from robot_brain.training.plotting import plot_report
    from robot_brain.training.results import ReportError, find_runs, report

    from ._common import console, save_results

    reference = _bounds(args.bounds)
    problem = unwritable(args.out, directory=True)
    if problem:
        raise CliError(f"argument --out: {problem}")
    try:
        runs, notes = find_runs(args.dirs)
        result: dict[str, Any] = report(runs, args.metric, reps=args.reps, seed=args.seed,
                                        reference=reference, reach=args.reach)
    except ReportError as exc:
        raise CliError(str(exc)) from None
    con = console()
    for note in notes:
        con.print(f"skipped: {note}", markup=False, highlight=False)
    _print(con, result)
    save_results(args.out / "report.json", result)
    for path in plot_report(result, args.out):
        con.print(f"plot: {path}")
    if args.json is not None:
        save_results(args.json, result)
    con.print(f"report: {args.out / 'report.json'}")
    return 0
