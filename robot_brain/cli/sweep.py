"""``robot-brain sweep TASK``: a grid of seeds x values, each trial an ordinary run, on Ray."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import EXIT_FAILURE, CliError, add_ray_options, nonneg_int, output_path, positive_int

NAME = "sweep"
HELP = "run seeds x values of a task in parallel on Ray (local, or a cluster); resumable"
DESCRIPTION = """Run the grid of training runs seeds x values (--set KEY=V1,V2,... per swept key; a
single value is a setting of every run) in parallel on Ray: an embedded local Ray instance by
default (nothing to start), an existing cluster with --address. Every trial is an ordinary run
directory under --out (config, checkpoints, metrics; 'robot-brain report DIR' summarises them).
A failed or killed trial is retried from its last checkpoint; Ctrl-C stops the sweep, leaving
every finished run complete and the others at their last checkpoint; running the same command
again skips finished trials and resumes the others. Needs Ray: pip install 'robot-brain[scale]'.

examples:
  robot-brain sweep reach --algo sac --seeds 4 --workers 2
  robot-brain sweep reach --algo sac --seeds 3 --set learning_rate=3e-4,1e-3 --out runs/sweeps/lr
  robot-brain sweep reach --seeds 3 --config runs/tune/reach-sac/best.yaml --out runs/sweeps/tuned
  ray start --head --port 6379 && robot-brain sweep reach --seeds 4 --address 127.0.0.1:6379
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", metavar="TASK", help="task name, e.g. reach")
    p.add_argument("--algo", default=None, metavar="ALGO",
                   help="learner (as for train; default: the task's, as for train)")
    p.add_argument("--policy", default=None, metavar="POLICY", help="mlp or ncap (as for train)")
    p.add_argument("--seeds", type=positive_int, default=None, metavar="N", help="seeds 0..N-1 (default: 3)")
    p.add_argument("--seed-list", type=nonneg_int, nargs="+", default=None, metavar="S",
                   help="these seeds instead of 0..N-1")
    p.add_argument("--config", default=None, metavar="FILE.yaml",
                   help="start every trial from this hyperparameter file (as for train; e.g. the "
                        "best.yaml of 'robot-brain tune')")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V1,V2",
                   help="a hyperparameter and its values (repeatable; the grid is their product); "
                        "commas inside [..] or {..} belong to one value")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N",
                   help="training steps of every trial (default: the task's)")
    add_ray_options(p, retries=2)
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="where the run directories go (default: runs/sweeps/TASK-ALGO)")
    p.add_argument("--json", type=output_path((".json",)), default=None, metavar="FILE",
                   help="write the trials and their outcome to FILE")


def run(args: argparse.Namespace) -> int:
    from robot_brain.envs import resolve_task
    from robot_brain.envs.registry import UnknownTaskError
    from robot_brain.fileio import unwritable
    from robot_brain.training.config import (
        ConfigError,
        apply_overrides,
        check_algo,
        resolve_hyperparams,
        task_default_algo,
    )
    from robot_brain.training.sweep import SweepError, parse_grid, plan, run_sweep

    from ._common import console, save_results

    try:
        task = resolve_task(args.task).name
        algo = check_algo(args.algo or task_default_algo(task))
        grid = parse_grid(args.sets)
        base = resolve_hyperparams(task, algo, config_file=args.config, policy=args.policy, steps=args.steps)
        for key, values in grid:  # every value checked before anything runs
            for v in values:
                apply_overrides(algo, base, [f"{key}={v}"])
    except (UnknownTaskError, ConfigError, SweepError, ValueError) as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    seeds = list(args.seed_list) if args.seed_list else list(range(args.seeds or 3))
    out = args.out or Path("runs") / "sweeps" / f"{task}-{algo}"
    problem = unwritable(out, directory=True)
    if problem:
        raise CliError(f"argument --out: {problem}")
    extra = [] if args.policy is None else ["--policy", args.policy]
    if args.config is not None:  # absolute: the trials run in Ray workers, possibly elsewhere
        extra += ["--config", str(Path(args.config).resolve())]
    trials = plan(task, algo, seeds, grid, out, steps=args.steps, extra=extra)
    con = console()
    con.print(f"sweep: {len(trials)} trials ({len(seeds)} seeds"
              + "".join(f" x {len(v)} {k}" for k, v in grid if len(v) > 1) + f") -> {out}")

    def show(counts: dict[str, int], res: dict[str, Any] | None) -> None:
        running = min(counts["pending"], args.workers if not args.address else counts["pending"])
        if res is not None:
            extra_txt = f" ({res['error']})" if res.get("error") else ""
            con.print(f"  {res['status']:8s} {res['label']}{extra_txt}", markup=False, highlight=False)
        if sys.stderr.isatty():
            print(f"\r  running {running}, waiting {counts['pending'] - running}, done {counts['done']}, "
                  f"skipped {counts['skipped']}, failed {counts['failed']}   ", end="", file=sys.stderr,
                  flush=True)

    try:
        outcome = run_sweep(trials, workers=args.workers, address=args.address, retries=args.retries,
                            on_update=show)
    except SweepError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    except KeyboardInterrupt:
        con.print("\nsweep interrupted: finished runs are complete, the others stopped at their last "
                  "checkpoint; run the same command again to go on")
        return 130
    counts = outcome["counts"]
    con.print(f"sweep done: {counts['done']} trained, {counts['skipped']} already finished, "
              f"{counts['failed']} failed -> {out}  (summary: robot-brain report {out})")
    if args.json is not None:
        save_results(args.json, {"task": task, "algo": algo, "seeds": seeds, "grid": grid,
                                 "out": str(out), **outcome})
    return 0 if counts["failed"] == 0 else EXIT_FAILURE
