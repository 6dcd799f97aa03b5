"""``robot-brain sim reach-shared --human SOURCE``: a co-adaptation session from the command line.

The session itself is :class:`robot_brain.coadapt.session.CoadaptSession`; this module builds the
input source, loads the user's profile, opens the MuJoCo viewer for a person at the keys or a 3-D
mouse (paced to the wall clock), prints one table row per trial and writes the plot and JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Any

from ._common import EXIT_FAILURE, CliError, console, save_results

__all__ = ["add_arguments", "run_session"]

DEFAULT_PROFILES = Path("runs") / "users"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from robot_brain.coadapt.arbitration import ASSIST_MODES
    from robot_brain.coadapt.sensing import HUMAN_SOURCES

    g = p.add_argument_group("shared control (reach-shared)")
    g.add_argument("--human", choices=HUMAN_SOURCES, default=None,
                   help="run a co-adaptation session steered by this input: sim (a simulated person), "
                        "keyboard (arrow keys and page up/down in the MuJoCo viewer), spacemouse "
                        "(pyspacemouse), ros2 (geometry_msgs/TwistStamped on /robot_brain/human_twist)")
    g.add_argument("--user", default="guest", metavar="NAME",
                   help="whose profile to load and learn (default: guest)")
    g.add_argument("--profiles", type=Path, default=DEFAULT_PROFILES, metavar="DIR",
                   help=f"where user profiles live (default: {DEFAULT_PROFILES})")
    g.add_argument("--assist", choices=ASSIST_MODES, default="blend",
                   help="blend (confidence-based blending, default), hindsight (hindsight "
                        "optimisation), off (the human alone)")
    g.add_argument("--human-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the input (repeatable): the simulated person's model, e.g. "
                        "noise=1.2, delay=0.3, goal_weights=[3,1,1]; the topic of ros2, e.g. topic=/teleop")
    g.add_argument("--no-learn", action="store_true",
                   help="use the profile as it is: no learning, nothing saved")


def _user(args: argparse.Namespace) -> str:
    """The checked user name; with learning on, the profile folder checked writable (nothing is
    changed on disk here: usage errors must leave every file as it was)."""
    from robot_brain.coadapt.memory import validate_user
    from robot_brain.fileio import unwritable

    try:
        user = validate_user(args.user)
    except ValueError as exc:
        raise CliError(f"argument --user: {exc}") from None
    if not args.no_learn:
        problem = unwritable(args.profiles, directory=True)
        if problem:
            raise CliError(f"argument --profiles: {problem}")
    return user


def _profile(args: argparse.Namespace, user: str) -> tuple[Any, Any, str | None]:
    """The user's profile, the store to save it to (``None`` with ``--no-learn``) and the note
    on a corrupted file (kept aside as ``.corrupt`` unless ``--no-learn``)."""
    from robot_brain.coadapt.memory import ProfileStore

    store = ProfileStore(args.profiles)
    profile, note = store.load(user, keep_aside=not args.no_learn)
    return profile, (None if args.no_learn else store), note


def _viewer(env: Any, source: Any, required: bool) -> Any:
    """The MuJoCo viewer on the task's simulation (``None`` if it cannot open and is optional)."""
    try:
        import mujoco.viewer

        return mujoco.viewer.launch_passive(env.unwrapped.model, env.unwrapped.sim.data,
                                            key_callback=getattr(source, "key_callback", None))
    except Exception as exc:  # no display, no GLFW: one line, the person cannot see the arm
        if required:
            raise CliError(f"--human {source.name}: the MuJoCo viewer does not open here ({exc}); "
                           f"it needs a display (use --human sim or ros2 on a headless machine)",
                           EXIT_FAILURE) from None
        return None


def run_session(args: argparse.Namespace, spec: Any, env: Any) -> int:
    """Run ``args.episodes`` trials with the ``--human`` source on ``env``; print and save."""
    from robot_brain.coadapt.arbitration import ArbitrationConfig
    from robot_brain.coadapt.plot import plot_session
    from robot_brain.coadapt.sensing import make_input
    from robot_brain.coadapt.session import CoadaptSession, SessionConfig

    from ._rollout import progress
    from .sim import task_options

    if not hasattr(env.unwrapped, "goals"):
        raise CliError(f"--human needs a task with candidate goals (reach-shared), got {spec.name!r}")
    options = task_options(args.human_option, flag="--human-option")
    user = _user(args)
    try:
        source = make_input(args.human, options, seed=args.seed, control_hz=env.unwrapped.config.policy_hz)
    except ValueError as exc:
        raise CliError(f"argument --human-option: {str(exc).splitlines()[0]}") from None
    with contextlib.ExitStack() as stack:
        stack.callback(source.close)
        weights = getattr(getattr(source, "model", None), "goal_weights", None)
        if weights is not None and len(weights) != len(env.unwrapped.goals):
            raise CliError(f"argument --human-option: goal_weights has {len(weights)} entries, the task "
                           f"has {len(env.unwrapped.goals)} goals")
        profile, store, note = _profile(args, user)
        con = console()
        if note:
            con.print(note, markup=False, highlight=False)
        on_tick, writer = _per_tick(args, env, source, stack)
        session = CoadaptSession(env, source, profile, store=store,
                                 config=SessionConfig(adapt=not args.no_learn),
                                 arbitration=ArbitrationConfig(mode=args.assist), on_tick=on_tick)
        with progress(args.episodes, f"{spec.name} | {args.human} | {profile.user}") as bar:
            records = session.run(args.episodes, seed=args.seed, on_trial=lambda _r: bar.update(1))
    frames = writer.frames if writer is not None else 0
    rows = [r.as_dict() for r in records]
    setting = f"{spec.name}, human {args.human}, user {profile.user}, assistance {args.assist}"
    summary = _print_trials(con, rows, setting, quiet=args.quiet)
    if args.video is not None:
        con.print(f"video: {args.video} ({frames} frames)")
        note = env.unwrapped.renderer_note
        if note:
            con.print(note, markup=False, highlight=False, soft_wrap=True)
    if store is not None:
        con.print(f"profile: {store.path(profile.user)} (beta {profile.beta:.2f}, assistance ceiling "
                  f"{profile.alpha_max:.2f}, {profile.trials} trials)")
    if args.plot is not None:
        plot_session(rows, args.plot, title=f"co-adaptation: {setting}")
        con.print(f"plot: {args.plot}")
    if args.json is not None:
        save_results(args.json, {"command": "sim", "task": spec.name, "human": args.human,
                                 "user": profile.user, "assist": args.assist, "seed": args.seed,
                                 "trials": rows, "summary": summary, "profile": profile.to_dict()})
        con.print(f"metrics: {Path(args.json)}")
    return 0


def _per_tick(args: argparse.Namespace, env: Any, source: Any,
              stack: contextlib.ExitStack) -> tuple[Any, Any]:
    """What runs after every slow tick: the viewer and the wall-clock pacing for a person (not
    for the simulated one), the video frames with ``--video``. Returns the callback (``None``:
    nothing to do) and the video writer (``None`` without ``--video``)."""
    ticks = []
    if args.human != "sim":
        viewer = _viewer(env, source, required=args.human in ("keyboard", "spacemouse"))
        if viewer is not None:
            stack.callback(viewer.close)
        ticks.append(_paced(env.unwrapped.config.policy_hz, viewer))
    writer = None
    if args.video is not None:
        from robot_brain.report import VideoWriter

        writer = stack.enter_context(VideoWriter(args.video, fps=env.unwrapped.metadata["render_fps"]))
        ticks.append(lambda: writer.append(_frame(env)))
    if not ticks:
        return None, writer

    def on_tick() -> None:
        for tick in ticks:
            tick()
    return on_tick, writer


def _frame(env: Any) -> Any:
    """The current picture with a caption: time, the intended goal, the trial's state."""
    from robot_brain.report import caption_frame

    task = env.unwrapped
    status = f"t={task.state.t:5.2f}s  goal {task.intended} (green)" + (
        f"  reached {task.reached}" if task.reached >= 0 else "")
    return caption_frame(env.render(), ["reach-shared | shared control", status])


def _paced(rate_hz: float, viewer: Any) -> Any:
    """A per-tick callback holding the session to the wall clock (a person steers in real time)
    and redrawing the viewer."""
    period = 1.0 / rate_hz
    nxt = [time.monotonic() + period]

    def tick() -> None:
        if viewer is not None:
            if not viewer.is_running():
                raise KeyboardInterrupt  # the person closed the window: stop like Ctrl-C
            viewer.sync()
        delay = nxt[0] - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        nxt[0] = max(nxt[0] + period, time.monotonic())
    return tick


def _print_trials(con: Any, rows: list[dict[str, Any]], setting: str, *, quiet: bool) -> dict[str, Any]:
    """One row per trial and a summary line; returns the summary."""
    import numpy as np
    from rich.table import Table

    def fmt(value: Any, spec: str = ".2f") -> str:
        return "-" if value is None else format(value, spec)

    if not quiet:
        table = Table(title=f"trials ({setting})")
        for col in ("trial", "goal", "reached", "ok", "time s", "effort", "assist", "ceiling",
                    "goal pred.", "at half", "disagree", "viol."):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(str(r["trial"]), str(r["goal"]), str(r["reached"]), "yes" if r["success"] else "NO",
                          fmt(r["time"]), fmt(r["effort"]), fmt(r["assistance"]), fmt(r["alpha_max"]),
                          f"{100 * r['accuracy']:.0f}%",
                          "-" if r["accuracy_half"] is None else ("yes" if r["accuracy_half"] else "no"),
                          f"{100 * r['disagreement']:.0f}%", str(r["violations"]))
        con.print(table)
    half = [r["accuracy_half"] for r in rows if r["accuracy_half"] is not None]
    summary: dict[str, Any] = {
        "trials": len(rows), "success_rate": float(np.mean([r["success"] for r in rows])),
        "mean_time": float(np.mean([r["time"] for r in rows])),
        "mean_time_success": (float(np.mean([r["time"] for r in rows if r["success"]]))
                              if any(r["success"] for r in rows) else None),
        "mean_effort": float(np.mean([r["effort"] for r in rows])),
        "mean_assistance": float(np.mean([r["assistance"] for r in rows])),
        "accuracy_at_half": float(np.mean(half)) if half else None,
        "violations": int(sum(r["violations"] for r in rows)),
        "rejected_inputs": int(sum(r["rejected_inputs"] for r in rows)),
    }
    at_half = summary["accuracy_at_half"]
    acc = "-" if at_half is None else f"{100 * at_half:.0f}%"
    con.print(f"{setting}: success {100 * summary['success_rate']:.0f}% ({len(rows)} trials), mean time "
              f"{summary['mean_time']:.2f} s, effort {summary['mean_effort']:.2f}, assistance "
              f"{summary['mean_assistance']:.2f}, goal prediction right at half distance {acc}, "
              f"violations {summary['violations']}")
    return summary
