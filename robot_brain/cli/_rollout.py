"""Run episodes of a task with a policy and record what the CLI reports (metrics, traces, frames).

The same runner serves ``sim`` and ``demo`` (and later ``eval``), so their numbers agree.
:class:`EpisodeRunner` advances one episode a policy step at a time, so several episodes can run
in lockstep (the demo tiles one episode per configuration into one video frame by frame) and
rendered frames go straight to a video writer instead of piling up in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_brain.report import caption_frame, episode_rates

from ._common import RenderError

__all__ = ["EpisodeResult", "EpisodeRunner", "progress", "run_episode"]


@dataclass
class EpisodeResult:
    """One episode: its metrics record and the per-step trace.

    ``metrics`` is :meth:`EpisodeMetrics.as_dict` plus ``seed``, ``ticks``, ``wall_time_total``
    (reset + policy + env steps, rendering excluded) and the rates of
    :func:`robot_brain.report.episode_rates`.
    """

    metrics: dict
    t: np.ndarray  # sim time at the end of each step [s]
    contact_force: np.ndarray  # max contact force on the tool during each step [N]
    cost: np.ndarray  # 1 on steps with a violation


class EpisodeRunner:
    """One episode of ``env`` under ``policy``, advanced by :meth:`step` until :attr:`done`.

    The env is reset with ``seed`` on construction. If the env was made with
    ``render_mode="rgb_array"``, :meth:`frame` returns the current picture, with a caption band
    (``caption`` plus live time, contact force, violations, interventions) when ``caption`` is
    given; the band turns red on a step with a violation.
    """

    def __init__(self, env, policy, seed: int, *, caption: str | None = None) -> None:
        self.env, self.policy, self.seed = env, policy, seed
        self.task = env.unwrapped
        self.caption = caption
        self.done = False
        self._t: list[float] = []
        self._force: list[float] = []
        self._cost: list[float] = []
        t0 = time.perf_counter()
        self._obs, _ = env.reset(seed=seed)
        policy.reset()
        self._wall = time.perf_counter() - t0

    def step(self) -> None:
        """One policy step (one slow tick of the loop)."""
        if self.done:
            raise RuntimeError("the episode is over")
        t0 = time.perf_counter()
        self._obs, _, terminated, truncated, info = self.env.step(self.policy.act(self._obs))
        self._wall += time.perf_counter() - t0
        self._t.append(self.task.backend.time)
        self._force.append(float(info["contact_force"]))
        self._cost.append(float(info["cost"]))
        self.done = bool(terminated or truncated)

    def frame(self) -> np.ndarray:
        """The rendered picture of the current state (with its caption)."""
        try:
            frame = self.env.render()
        except Exception as exc:  # any OpenGL failure: missing library, no display, bad MUJOCO_GL
            raise RenderError(exc) from exc
        if frame is None:
            raise RenderError(RuntimeError("the environment returned no frame"))
        if self.caption is None:
            return frame
        ep = self.task.episode
        force = self._force[-1] if self._force else 0.0
        status = (f"t={self.task.backend.time:5.2f}s F={force:5.1f}N viol={ep.violations} "
                  f"interv={sum(ep.interventions.values())}" + (" SUCCESS" if ep.success else ""))
        alert = bool(self._cost) and self._cost[-1] > 0
        return caption_frame(frame, [self.caption, status], alert=alert)

    def result(self) -> EpisodeResult:
        """Metrics and traces of the episode so far (call when :attr:`done`)."""
        ep, loop = self.task.episode, self.task.loop
        metrics = {"seed": self.seed, **ep.as_dict(), "ticks": loop.tick_count,
                   "wall_time_total": self._wall}
        metrics.update(episode_rates(ep.steps, loop.tick_count, ep.sim_time, ep.wall_time,
                                     self._wall))
        return EpisodeResult(metrics, np.array(self._t), np.array(self._force),
                             np.array(self._cost))


def run_episode(env, policy, seed: int, *, on_frame: Callable[[np.ndarray], None] | None = None,
                caption: str | None = None) -> EpisodeResult:
    """Run one episode; with ``on_frame``, render one frame after the reset and one per policy
    step (20 fps at the default 20 Hz policy) and hand each to ``on_frame``."""
    runner = EpisodeRunner(env, policy, seed, caption=caption)
    if on_frame is not None:
        on_frame(runner.frame())
    while not runner.done:
        runner.step()
        if on_frame is not None:
            on_frame(runner.frame())
    return runner.result()


def progress(total: int, desc: str):
    """A progress bar on stderr (tqdm), shown only on a terminal."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="ep", file=sys.stderr, disable=None, leave=False,
                dynamic_ncols=True)


def run_episodes(env, policy, *, episodes: int, seed: int, label: str,
                 video: str | None = None) -> tuple[list[dict], int]:
    """``episodes`` episodes (episode i seeded ``seed + i``) with a progress bar, rendered into
    ``video`` when given (frames encoded as they come). Returns the metrics records and the
    number of frames written."""
    import contextlib

    from robot_brain.report import VideoWriter

    records: list[dict] = []
    with contextlib.ExitStack() as stack:
        writer = None
        if video is not None:
            fps = env.unwrapped.metadata.get("render_fps", 20)
            writer = stack.enter_context(VideoWriter(video, fps=fps))
        with progress(episodes, label) as bar:
            for i in range(episodes):
                res = run_episode(env, policy, seed + i,
                                  on_frame=writer.append if writer is not None else None,
                                  caption=f"{label} | episode {i} (seed {seed + i})")
                records.append(res.metrics)
                bar.update(1)
    return records, (writer.frames if writer is not None else 0)


def print_episodes(con, records: list[dict], setting: str, *, quiet: bool, video: Path | None = None,
                   frames: int = 0) -> dict:
    """Print the per-episode table (unless ``quiet``), the aggregate and, when ``video`` was
    written, its path and frame count; return the aggregate."""
    from robot_brain import report

    agg = report.aggregate(records)
    if not quiet:
        con.print(report.episodes_table(records, title=f"episodes ({setting})"))
    con.print(report.aggregate_table(agg, title=f"aggregate over {len(records)} episodes ({setting})"))
    if video is not None:
        con.print(f"video: {video} ({frames} frames)")
    return agg
