"""``robot-brain sim point-maze --policy search``: the search runs through the same episode loop
as every policy (contacts fed back each step), reaches the goal untrained, and draws its graph."""

from __future__ import annotations

import json

from robot_brain.cli import main


def test_sim_point_maze_search_reaches_the_goal_and_plots_its_graph(tmp_path, capsys):
    report, plot = tmp_path / "run.json", tmp_path / "graph.png"
    assert main(["sim", "point-maze", "--policy", "search", "--episodes", "2", "--option", "size=5",
                 "--json", str(report), "--plot", str(plot), "--quiet"]) == 0
    episodes = json.loads(report.read_text())["episodes"]
    assert all(ep["success"] for ep in episodes)
    assert plot.stat().st_size > 10_000


def test_task_options_and_policies_are_checked_in_one_line(capsys):
    assert main(["sim", "point-maze", "--option", "sise=9", "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown option 'sise'" in err and "did you mean 'size'" in err and "\n" not in err
    assert main(["sim", "point-maze", "--option", "size", "--episodes", "1"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert main(["sim", "reach", "--policy", "search", "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no search policy; tasks with one: maze, point-maze" in err
