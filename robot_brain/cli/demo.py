"""``robot-brain demo``: the maze under disturbances: no reflex, hard limits, hard limits + critic.

The README's main job. Every configuration in :data:`CONFIGS` runs the same episodes (same
seeds, hence the same goals, wall shifts and push schedule where the runs stay in step) of the
maze task with :meth:`Disturbances.default` (random pushes on the tool, shifted walls), driven by
the scripted maze policy, which does not know the walls moved. The output folder receives a
side-by-side video of one episode per configuration, a contact-force plot and ``metrics.json``.

The columns: stiff and compliant impedance without a reflex, stiff with the hard-limit reflex,
and stiff with the learned safety critic over the hard limits (the critic shipped for the task in
``robot_brain/critics/<task>``, or ``--critic DIR``). To compare another configuration, append
one :class:`DemoConfig` to :data:`CONFIGS`.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import CliError, add_renderer_option, make_task_env, nonneg_int, output_dir, positive_int

NAME = "demo"
HELP = "maze with disturbances: no reflex vs hard limits vs learned critic (video + plot)"
DESCRIPTION = """Run the maze task with random pushes and shifted walls under several
configurations (stiff or compliant impedance without a reflex, stiff with the hard-limit reflex,
stiff with the learned safety critic over the hard limits), the same seeds for each, print a
side-by-side table (success, violations, max contact force, interventions, return) and write
into --out:

  demo.mp4            one episode per configuration, side by side, with captions
  contact_force.png   contact force vs time and per-configuration distributions
  metrics.json        per-episode and aggregate metrics of every configuration

Takes about a minute on two CPU cores; needs no downloads. The video is rendered offscreen with
MuJoCo's OpenGL renderer when this machine can make a context (a display, EGL or OSMesa), else
with the built-in software renderer; one line says which.

examples:
  robot-brain demo
  robot-brain demo --out out/demo2 --episodes 20 --seed 100
  robot-brain demo --critic runs/maze/critic      # a critic you trained yourself
"""

STIFF = 1800.0  # N/m: a stiff position-controlled arm (Franka's default Cartesian stiffness is ~2000)
COMPLIANT = 500.0  # N/m: a 2 cm setpoint lead into a wall presses with ~10 N, under the 15 N limit
FPS = 20  # video frames per second: one per policy step at 20 Hz


@dataclass(frozen=True)
class DemoConfig:
    """One column of the demo.

    :param label: short name (table column, video caption, plot legend).
    :param stiffness: fixed translational stiffness [N/m] (the policy's stiffness action is ignored).
    :param shield: ``"none"``, ``"limits"`` or ``"critic"`` (the task's learned safety critic over
        its hard limits: ``--critic DIR`` or the one shipped in ``robot_brain/critics/<task>``).
    :param policy: built-in policy name.
    :param description: one line for the metrics file.
    """

    label: str
    stiffness: float
    shield: str = "none"
    policy: str = "scripted"
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "stiffness": self.stiffness, "shield": self.shield,
                "policy": self.policy, "description": self.description}


CONFIGS: list[DemoConfig] = [
    DemoConfig("stiff", STIFF, "none", description="stiff impedance, no reflex"),
    DemoConfig("compliant", COMPLIANT, "none", description="compliant impedance, no reflex"),
    DemoConfig("stiff+limits", STIFF, "limits", description="stiff impedance, hard-limit reflex"),
    DemoConfig("stiff+limits+critic", STIFF, "critic",
               description="stiff impedance, learned safety critic over the hard-limit reflex"),
]


def shipped_critic(task: str) -> Path | None:
    """The critic shipped with the package for ``task`` (``robot_brain/critics/<task>``), if any."""
    path = Path(__file__).resolve().parent.parent / "critics" / task
    return path if (path / "critic.json").is_file() else None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=output_dir, default=Path("out/demo"), metavar="DIR",
                   help="output folder (default: out/demo)")
    p.add_argument("--episodes", type=positive_int, default=8, metavar="N",
                   help="episodes per configuration (default: 8)")
    p.add_argument("--seed", type=nonneg_int, default=0, metavar="S",
                   help="seed of the first episode; episode i uses S+i in every configuration")
    p.add_argument("--task", default="maze", metavar="TASK",
                   help="task to run (default: maze; 'reach' gives a quick smoke test)")
    p.add_argument("--no-video", dest="video", action="store_false",
                   help="skip rendering (no demo.mp4)")
    add_renderer_option(p)
    p.add_argument("--critic", type=Path, default=None, metavar="DIR",
                   help="safety critic for the critic column (default: the one shipped for the "
                        "task, written by 'robot-brain train-critic'; the column is left out "
                        "when there is none)")


def _make_envs(configs: list[DemoConfig], task: str, args: argparse.Namespace,
               critic_dir: Path | None, disturbances: Any, stack: contextlib.ExitStack) -> tuple[list, list]:
    """One env and policy per configuration (closed by ``stack``)."""
    from robot_brain.policies import make_policy

    envs, policies = [], []
    for cfg in configs:
        shield = str(critic_dir) if cfg.shield == "critic" else cfg.shield
        env = make_task_env(task, fixed_stiffness=cfg.stiffness, shield=shield,
                            disturbances=disturbances, renderer=args.renderer,
                            render_mode="rgb_array" if args.video else None)
        stack.callback(env.close)
        try:
            policies.append(make_policy(cfg.policy, env, seed=args.seed))
        except ValueError as exc:
            raise CliError(f"demo configuration {cfg.label!r}: {exc}") from None
        envs.append(env)
    return envs, policies


def run(args: argparse.Namespace) -> int:
    from robot_brain import report
    from robot_brain.envs import Disturbances
    from robot_brain.rollout import EpisodeRunner, run_episode

    from ._common import console, save_results
    from ._rollout import progress
    from .sim import resolve

    spec = resolve(args.task)
    critic_dir = args.critic if args.critic is not None else shipped_critic(spec.name)
    if args.critic is not None and not args.critic.is_dir():
        raise CliError(f"argument --critic: {str(args.critic)!r} is not a critic directory")
    configs = [c for c in CONFIGS if c.shield != "critic" or critic_dir is not None]
    con = console()
    disturbances = Disturbances.default()
    seeds = [args.seed + i for i in range(args.episodes)]
    out: Path = args.out
    t_start = time.perf_counter()
    episodes: dict[str, list[dict]] = {cfg.label: [] for cfg in configs}
    traces = []
    with contextlib.ExitStack() as stack, progress(len(configs) * len(seeds), "demo") as bar:
        envs, policies = _make_envs(configs, spec.name, args, critic_dir, disturbances, stack)
        force_limit = envs[0].unwrapped.config.force_limit
        # The first seed of every configuration runs in lockstep, filmed side by side.
        runners = [EpisodeRunner(env, policy, seeds[0], caption=f"{cfg.label} (K={cfg.stiffness:g} N/m)")
                   for cfg, env, policy in zip(configs, envs, policies, strict=True)]
        note = None
        if args.video:
            with report.VideoWriter(out / "demo.mp4", fps=FPS) as writer:
                _film_in_lockstep(runners, writer)
            note = envs[0].unwrapped.renderer_note
        else:
            for runner in runners:
                while not runner.done:
                    runner.step()
        for cfg, runner in zip(configs, runners, strict=True):
            res = runner.result()
            traces.append((cfg.label, res.t, res.contact_force))
            episodes[cfg.label].append(res.metrics)
            bar.update(1)
        for cfg, env, policy in zip(configs, envs, policies, strict=True):
            for seed in seeds[1:]:
                episodes[cfg.label].append(run_episode(env, policy, seed).metrics)
                bar.update(1)
    elapsed = time.perf_counter() - t_start
    results: dict[str, dict[str, Any]] = {
        cfg.label: {"config": cfg.as_dict(), "episodes": episodes[cfg.label],
                    "aggregate": report.aggregate(episodes[cfg.label])} for cfg in configs}

    aggs = {label: r["aggregate"] for label, r in results.items()}
    title = (f"{spec.name} with pushes and shifted walls: {len(seeds)} episodes per configuration, "
             f"seeds {seeds[0]}..{seeds[-1]}, force limit {force_limit:g} N")
    con.print(report.comparison_table(aggs, title=title))

    out.mkdir(parents=True, exist_ok=True)
    # The numbers first: if anything later fails, they are already on disk.
    metrics = save_results(out / "metrics.json", {
        "command": "demo", "task": spec.name, "env_id": spec.env_id, "seeds": seeds,
        "force_limit": force_limit, "disturbances": disturbances.__dict__,
        "wall_time": elapsed, "configurations": list(results.values()),
    })
    written = [out / "demo.mp4"] if args.video else []
    written.append(report.plot_contact_force(
        out / "contact_force.png", traces,
        {k: [e["max_contact_force"] for e in r["episodes"]] for k, r in results.items()},
        {k: [e["violations"] for e in r["episodes"]] for k, r in results.items()},
        force_limit, title=title))
    written.append(metrics)
    con.print(f"wrote {', '.join(str(p) for p in written)}  ({elapsed:.0f} s)")
    if note:
        con.print(note, markup=False, highlight=False, soft_wrap=True)
    return 0


def _film_in_lockstep(runners: list[Any], writer: Any) -> None:
    """Step the episodes together, writing one tiled frame (one tile per configuration) per
    policy step; an episode that has ended keeps showing its last picture, and the final
    picture is held for one second."""
    from robot_brain.report import tile_frames

    last = [r.frame() for r in runners]
    writer.append(tile_frames(last))
    while not all(r.done for r in runners):
        for i, r in enumerate(runners):
            if not r.done:
                r.step()
                last[i] = r.frame()
        writer.append(tile_frames(last))
    final = tile_frames(last)
    for _ in range(FPS):
        writer.append(final)
