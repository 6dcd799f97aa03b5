"""The CLI's side of running episodes: progress bars, videos and the episode tables.

The episode loop itself is :mod:`robot_brain.rollout` (shared with the trainer and the critic
tools), so every command reports the same numbers.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from robot_brain.rollout import run_episode

__all__ = ["print_episodes", "progress", "run_episodes"]


def progress(total: int, desc: str) -> Any:
    """A progress bar on stderr (tqdm), shown only on a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="ep", file=sys.stderr, disable=None, leave=False,
                dynamic_ncols=True)


def run_episodes(env: Any, policy: Any, *, episodes: int, seed: int, label: str,
                 video: Path | None = None) -> tuple[list[dict[str, Any]], int]:
    """``episodes`` episodes (episode i seeded ``seed + i``) with a progress bar, rendered into
    ``video`` when given (frames encoded as they come). Returns the metrics records and the
    number of frames written."""
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


def print_episodes(con: Any, records: list[dict[str, Any]], setting: str, *, quiet: bool,
                   video: Path | None = None, frames: int = 0,
                   note: str | None = None) -> dict[str, Any]:
    """Print the per-episode table (unless ``quiet``), the aggregate and, when ``video`` was
    written, its path and frame count and the renderer ``note``; return the aggregate."""
    from robot_brain import report

    agg = report.aggregate(records)
    if not quiet:
        con.print(report.episodes_table(records, title=f"episodes ({setting})"))
    con.print(report.aggregate_table(agg, title=f"aggregate over {len(records)} episodes ({setting})"))
    if video is not None:
        con.print(f"video: {video} ({frames} frames)")
        if note:
            con.print(note, markup=False, highlight=False, soft_wrap=True)
    return agg
