"""``robot-brain plot RUN_DIR...``: learning curves of training runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import CliError, output_path

NAME = "plot"
HELP = "plot learning curves (return, success, cost, cumulative violations) of runs"
DESCRIPTION = """Plot the learning curves recorded in the metrics.json of training runs: episode
return, success rate, cost per episode and cumulative violations during training, against
environment steps. Runs with the same task, algorithm and shield are one group: several seeds
give the mean with a band (min..max across seeds); different groups are different lines.

examples:
  robot-brain plot runs/reach/sac-* --out docs/img/reach_sac.png
  robot-brain plot runs/maze/shielded-* runs/maze/unshielded-* --out maze_shield.png
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="run directories")
    p.add_argument("--out", type=output_path((".png", ".svg", ".pdf")), default=Path("learning_curves.png"),
                   metavar="FILE.png", help="output image (default: learning_curves.png)")
    p.add_argument("--smooth", type=int, default=5, metavar="N",
                   help="moving average over N curve points (default: 5; 1 = raw)")
    p.add_argument("--title", default=None, help="figure title")


def run(args: argparse.Namespace) -> int:
    from robot_brain.training.plotting import PlotError, plot_runs

    from ._common import console

    if args.smooth < 1:
        raise CliError(f"argument --smooth: must be at least 1, got {args.smooth}")
    try:
        groups = plot_runs(args.run_dirs, args.out, smooth=args.smooth, title=args.title)
    except PlotError as exc:
        raise CliError(str(exc)) from None
    con = console()
    for label, runs in groups.items():
        con.print(f"{label}: {len(runs)} run(s)")
    con.print(f"plot: {args.out}")
    return 0
