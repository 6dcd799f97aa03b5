"""``robot-brain tasks``: the task names with a one-line description each."""

from __future__ import annotations

import argparse

NAME = "tasks"
HELP = "list the tasks"
DESCRIPTION = """List the tasks: short name (for 'sim', 'train' ...), Gymnasium id, steps per
episode and a one-line description.

example:
  robot-brain tasks
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from robot_brain.envs.registry import TASKS

    from ._common import console

    table = Table(title="tasks", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("gymnasium id", no_wrap=True)
    table.add_column("steps", justify="right")
    table.add_column("description")
    for spec in TASKS.values():
        table.add_row(spec.name, spec.env_id, str(spec.max_episode_steps), spec.description)
    console().print(table)
    return 0
