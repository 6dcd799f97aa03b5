"""``robot-brain sim TASK``: run episodes of a task under the two-rate loop and report metrics."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from . import _coadapt
from ._common import (
    CliError,
    add_links_option,
    add_rollout_options,
    add_shield_option,
    links_option,
    make_task_env,
    nonneg_int,
    output_path,
    positive_float,
    positive_int,
)

NAME = "sim"
HELP = "run episodes of a task in MuJoCo and print metrics"
DESCRIPTION = """Run episodes of a task (see 'robot-brain tasks') with a built-in policy under the
two-rate loop (20 Hz policy, 1 kHz reflex + impedance control) and print a metrics table:
return, success, violations (cost) by kind, max contact force, reflex interventions by reason,
and the policy/control rates achieved (sim time) with the real-time factor (wall clock).
Episode i uses seed SEED+i. A task without an impedance layer (the swimmer: joint torques)
runs without the two-rate loop and reflex. --policy ncap runs the task's circuit prior at its
default initialisation; --plot draws its units' activity in the first episode. --policy search
runs the cognitive-graph search (point-maze, maze); --plot then draws its graph.
--human SOURCE on reach-shared runs a co-adaptation session instead: a person (or the simulated
one) steers, the robot infers their goal and assists; per-trial success, time, effort,
assistance, goal-prediction accuracy and disagreement; --plot draws them over the trials.

examples:
  robot-brain sim reach --policy scripted --episodes 10
  robot-brain sim maze --disturb --shield none --stiffness 2000 --json out/maze.json
  robot-brain sim maze --episodes 1 --video out/maze.mp4     # offscreen, headless too
  robot-brain sim swimmer --policy ncap --links 10 --episodes 3
  robot-brain sim swimmer --policy ncap --episodes 1 --plot out/ncap_activity.png
  robot-brain sim swimmer --policy runs/swimmer/es-20260101-120000 --links 10 --video out/swim.mp4
  robot-brain sim point-maze --policy search --option size=9 --plot out/search.png
  robot-brain sim reach-shared --human sim --user alice --trials 20 --plot out/alice.png
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from robot_brain.policies import POLICY_NAMES

    p.add_argument("task", metavar="TASK", help="task name or Gymnasium id, e.g. reach, maze")
    p.add_argument("--policy", default=None, metavar="POLICY",
                   help=f"built-in policy ({', '.join(POLICY_NAMES)}; default: scripted, ncap for the "
                        f"swimmer) or a training run directory written by 'robot-brain train'")
    p.add_argument("--episodes", "--trials", dest="episodes", type=positive_int, default=5, metavar="N",
                   help="number of episodes (default: 5); the trials of a --human session")
    p.add_argument("--seed", type=nonneg_int, default=0, metavar="S",
                   help="seed of the first episode (default: 0)")
    add_shield_option(p, "limits", "default: limits")
    p.add_argument("--stiffness", type=positive_float, default=None, metavar="N/m",
                   help="fixed translational stiffness, ignoring the policy's stiffness actions "
                        "(the task's fixed_stiffness option, up to 5000 N/m)")
    add_links_option(p)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a task option (repeatable; 'robot-brain tasks --options TASK' lists them), "
                        "e.g. --option size=9 --option block_at_step=40 on point-maze")
    p.add_argument("--plot", type=output_path((".png", ".svg", ".pdf")), default=None, metavar="FILE.png",
                   help="a circuit policy (--policy ncap or a run trained with it): its oscillator, "
                        "B-neuron and muscle activity over the first episode beside the joint angles; "
                        "--policy search: its cognitive graph (places, edges, weakened and pruned "
                        "edges, the path taken) after the last episode")
    add_rollout_options(p)
    _coadapt.add_arguments(p)


def env_kwargs(args: argparse.Namespace, spec: Any = None) -> dict[str, Any]:
    """Keyword arguments of the task env for the options in ``args`` (``spec``: the task, for
    ``--links``)."""
    kwargs: dict[str, Any] = {"shield": args.shield, "renderer": args.renderer}
    if spec is not None:
        kwargs.update(links_option(args, spec))
    if args.disturb:
        kwargs["disturbances"] = "default"
    if args.stiffness is not None:
        kwargs["fixed_stiffness"] = args.stiffness
    if args.video is not None:
        kwargs["render_mode"] = "rgb_array"
    kwargs.update(task_options(getattr(args, "option", [])))
    return kwargs


def task_options(items: list[str], flag: str = "--option") -> dict[str, Any]:
    """``KEY=VALUE`` strings as options (values read as YAML scalars: 9, 0.5, true, [1, 2]);
    their owner checks names and values; ``flag`` names the option in errors."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"argument {flag}: expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise CliError(f"argument {flag}: cannot read the value of {item!r}") from None
    return out


def build_policy(name: str, env: Any, seed: int) -> Any:
    """A built-in policy by name, or the trained policy of a run directory."""
    from robot_brain.policies import POLICY_NAMES, make_policy

    try:
        if name in POLICY_NAMES:
            return make_policy(name, env, seed=seed)
        from robot_brain.training import load_trained_policy

        return load_trained_policy(name, env)
    except ValueError as exc:
        raise CliError(f"argument --policy: {exc}") from None


def resolve(task: str) -> Any:
    """The task spec of ``task``, or a one-line "did you mean" error."""
    from robot_brain.envs import resolve_task
    from robot_brain.envs.registry import UnknownTaskError

    try:
        return resolve_task(task)
    except UnknownTaskError as exc:
        raise CliError(str(exc)) from None


def _activity_recorder(policy: Any, env: Any) -> Any:
    """``policy`` wrapped to record its circuit's activity (``--plot``), or a one-line error if
    it has no circuit to show."""
    from robot_brain.policies.ncap import ActivityRecorder, NcapCircuit

    circuit = getattr(policy, "circuit", None)
    if not isinstance(circuit, NcapCircuit):
        raise CliError("argument --plot: shows the activity of the ncap circuit: use --policy ncap or a "
                       "run trained with --policy ncap")
    return ActivityRecorder(policy, circuit, dt=float(getattr(env.unwrapped, "dt", 1.0)))


def _plot_search(path: str, policy: Any, env: Any, title: str) -> None:
    """The search's cognitive graph after the last episode, over the task's walls (drawn only:
    the search never reads them)."""
    import numpy as np

    from robot_brain.search.plot import plot_search

    agent, task = policy.agent, env.unwrapped
    plot_search(path, agent.graph, walls=getattr(task, "wall_boxes", None),
                trajectory=np.asarray(agent.trajectory), start=agent.origin, goal=agent.goal,
                bounds=getattr(task, "bounds", None), title=title)


def run(args: argparse.Namespace) -> int:
    from robot_brain.policies import POLICY_NAMES

    from ._common import console, save_results
    from ._rollout import print_episodes, run_episodes

    spec = resolve(args.task)
    if args.human is not None:
        if args.policy is not None:
            raise CliError("--policy and --human exclude each other: with --human the person steers, "
                           "helped by the co-adaptation arbiter")
        env = make_task_env(spec.name, **env_kwargs(args, spec))
        try:
            return _coadapt.run_session(args, spec, env)
        finally:
            env.close()
    if args.policy is None:
        args.policy = "scripted" if spec.impedance else "ncap"
    if args.policy not in POLICY_NAMES and not Path(args.policy).is_dir():
        raise CliError(f"argument --policy: {args.policy!r} is neither a built-in policy "
                       f"({', '.join(POLICY_NAMES)}) nor a training run directory")
    env = make_task_env(spec.name, **env_kwargs(args, spec))
    with contextlib.ExitStack() as stack:
        stack.callback(env.close)
        policy = build_policy(args.policy, env, args.seed)
        searching = getattr(policy, "agent", None) is not None  # --plot draws its graph instead
        recorder = _activity_recorder(policy, env) if args.plot is not None and not searching else None
        episodes, frames = run_episodes(env, recorder or policy, episodes=args.episodes, seed=args.seed,
                                        label=f"{spec.name} | {args.policy}", video=args.video)
        note = env.unwrapped.renderer_note
        links = getattr(env.unwrapped, "links", None)
    con = console()
    reflex = (f"shield {args.shield}" if spec.impedance
              else f"{getattr(spec.env_class, 'action_kind', 'direct commands')}, no reflex layer")
    setting = (f"{spec.name}{f' ({links} links)' if links else ''}, policy {args.policy}, {reflex}"
               f"{', disturbed' if args.disturb else ''}"
               f"{f', K = {args.stiffness:g} N/m' if args.stiffness is not None else ''}")
    agg = print_episodes(con, episodes, setting, quiet=args.quiet, video=args.video, frames=frames,
                         note=note)
    if args.plot is not None and searching:
        last = episodes[-1]
        outcome = f"goal in {last['steps']} steps" if last.get("success") else policy.agent.status
        _plot_search(args.plot, policy, env, f"{setting}, last episode: {outcome}")
        con.print(f"plot: {args.plot}")
    if recorder is not None:
        from robot_brain.policies.ncap import plot_activity

        plot_activity(recorder.trace(), args.plot,
                      title=f"circuit activity: {setting}, episode 0 (seed {args.seed})")
        con.print(f"plot: {args.plot}")
    if args.json is not None:
        save_results(args.json, {
            "command": "sim", "task": spec.name, "env_id": spec.env_id, "policy": args.policy, "links": links,
            "seed": args.seed, "shield": args.shield, "disturb": args.disturb,
            "stiffness": args.stiffness, "episodes": episodes, "aggregate": agg,
        })
        con.print(f"metrics: {Path(args.json)}")
    return 0
