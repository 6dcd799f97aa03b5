"""``robot-brain tasks``: the task names with a one-line description each, or one task's options."""

from __future__ import annotations

import argparse

NAME = "tasks"
HELP = "list the tasks (or one task's options)"
DESCRIPTION = """List the tasks: short name (for 'sim', 'train' ...), Gymnasium id, steps per
episode, what the actions command (an arm's impedance targets under the two-rate loop and
reflex, or direct commands with no impedance layer: joint torques, a velocity) and a one-line description.
With --options TASK: every option of that task (the keys of
'env_kwargs' in a training config, or keyword arguments of robot_brain.envs.make) with its
default, allowed range, unit and meaning.

examples:
  robot-brain tasks
  robot-brain tasks --options maze
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--options", default=None, metavar="TASK",
                        help="list the options of TASK instead")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from robot_brain.envs.registry import TASKS
    from robot_brain.params import describe

    from ._common import console
    from .sim import resolve

    if args.options is not None:
        spec = resolve(args.options)
        table = Table(title=f"options of {spec.name} ({spec.config_type.__name__})",
                      title_justify="left")
        table.add_column("option", style="bold", no_wrap=True)
        table.add_column("default")
        table.add_column("range and meaning")
        for name, default, doc in describe(spec.config_type):
            table.add_row(name, repr(default), doc)
        console().print(table)
        return 0
    table = Table(title="tasks", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("gymnasium id", no_wrap=True)
    table.add_column("steps", justify="right")
    table.add_column("actions", no_wrap=True)
    table.add_column("description")
    for spec in TASKS.values():
        actions = ("impedance + reflex" if spec.impedance
                   else getattr(spec.env_class, "action_kind", "direct commands"))
        table.add_row(spec.name, spec.env_id, str(spec.max_episode_steps), actions, spec.description)
    console().print(table)
    return 0
