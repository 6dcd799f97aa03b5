"""Episodes of a task under a policy: the one episode loop of the project.

Every verb and tool that runs episodes (``sim``, ``eval``, ``demo``, ``compare``, the trainer's
evaluations, critic data collection) goes through :class:`EpisodeRunner`, so their numbers are
measured the same way. It advances one episode a policy step at a time, so several episodes can
run in lockstep (the demo films one episode per configuration side by side) and rendered frames
can go straight to a video writer instead of piling up in memory.

Two kinds of env: an arm task (it has a two-rate ``loop`` and keeps its own ``episode``
metrics, contact forces and reflex interventions included) and any other Gymnasium env (the
swimmer), whose record is counted here from what ``step`` returns, with the same keys (no
contact force, no interventions; one control tick per step), so tables and aggregates read both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import gymnasium as gym
import numpy as np

from robot_brain.policies.base import Policy
from robot_brain.report import caption_frame, episode_rates

__all__ = ["EpisodeResult", "EpisodeRunner", "run_episode"]


@dataclass
class EpisodeResult:
    """One episode: its metrics record and the per-step trace.

    ``metrics`` is :meth:`robot_brain.envs.EpisodeMetrics.as_dict` plus ``seed``, ``ticks``,
    ``wall_time_total`` (reset + policy + env steps, rendering excluded) and the rates of
    :func:`robot_brain.report.episode_rates`.
    """

    metrics: dict[str, Any]
    t: np.ndarray  # sim time at the end of each step [s]
    contact_force: np.ndarray  # max contact force on the tool during each step [N]
    cost: np.ndarray  # 1 on steps with a violation


class EpisodeRunner:
    """One episode of ``env`` under ``policy``, advanced by :meth:`step` until :attr:`done`.

    The env is reset with ``seed`` on construction (then ``policy.reset()``). If the env was made
    with ``render_mode="rgb_array"``, :meth:`frame` returns the current picture, with a caption
    band (``caption`` plus live time, contact force, violations, interventions) when ``caption``
    is given; the band turns red on a step with a violation.

    :param on_step: called after every step with that step's ``info``.
    """

    def __init__(self, env: gym.Env, policy: Policy, seed: int, *, caption: str | None = None,
                 on_step: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.env, self.policy, self.seed = env, policy, seed
        # The task env (an ImpedanceTaskEnv: backend, episode, loop; or a plain env); this layer
        # may not import robot_brain.envs, not even for annotations (tests/test_architecture.py).
        self.task: Any = env.unwrapped
        self.arm = hasattr(self.task, "loop") and hasattr(self.task, "episode")
        self.caption = caption
        self.on_step = on_step
        # A policy that learns from each step's outcome (contacts, reflex interventions) has
        # feedback(info); the wrapper of a recorder passes it on.
        self._feedback: Callable[[dict[str, Any]], None] | None = getattr(policy, "feedback", None)
        self.done = False
        self._t: list[float] = []
        self._force: list[float] = []
        self._cost: list[float] = []
        # A plain env's record (an arm task keeps its own in ``task.episode``).
        self._ret = 0.0
        self._success = False
        self._env_wall = 0.0
        t0 = time.perf_counter()
        self._obs, _ = env.reset(seed=seed)
        policy.reset()
        self._wall = time.perf_counter() - t0

    def step(self) -> None:
        """One policy step (one slow tick of the loop)."""
        if self.done:
            raise RuntimeError("the episode is over")
        t0 = time.perf_counter()
        action = self.policy.act(self._obs)
        t1 = time.perf_counter()
        self._obs, reward, terminated, truncated, info = self.env.step(action)
        t2 = time.perf_counter()
        if self._feedback is not None:  # a policy that learns from what happened (search)
            self._feedback(info)
        self._wall += t2 - t0
        self._env_wall += t2 - t1
        self._ret += float(reward)
        self._success = self._success or bool(info.get("is_success", False))
        self._t.append(self.task.state.t if self.arm else len(self._t) * self._dt + self._dt)
        self._force.append(float(info.get("contact_force", 0.0)))
        self._cost.append(float(info.get("cost", 0.0)))
        self.done = bool(terminated or truncated)
        if self.on_step is not None:
            self.on_step(info)

    def frame(self) -> np.ndarray:
        """The rendered picture of the current state (with its caption)."""
        frame = cast("np.ndarray | None", self.env.render())  # the tasks render rgb_array frames
        if frame is None:
            raise RuntimeError("the environment returned no frame (make it with render_mode='rgb_array')")
        if self.caption is None:
            return frame
        if not self.arm:
            t = self._t[-1] if self._t else 0.0
            return caption_frame(frame, [self.caption, f"t={t:5.2f}s return={self._ret:7.2f}"])
        ep = self.task.episode
        force = self._force[-1] if self._force else 0.0
        status = (f"t={self.task.state.t:5.2f}s F={force:5.1f}N viol={ep.violations} "
                  f"interv={sum(ep.interventions.values())}" + (" SUCCESS" if ep.success else ""))
        alert = bool(self._cost) and self._cost[-1] > 0
        return caption_frame(frame, [self.caption, status], alert=alert)

    @property
    def _dt(self) -> float:
        """Duration of one step of a plain env [s] (its ``dt``; NaN when it has none)."""
        return float(getattr(self.task, "dt", float("nan")))

    def _plain_record(self) -> dict[str, Any]:
        """The record of a plain env, with the arm tasks' keys: no contact force, no reflex, one
        control tick per step."""
        steps = len(self._t)
        violations = int(sum(c > 0 for c in self._cost))
        return {"return": self._ret, "steps": steps, "success": self._success,
                "violations": violations, "violations_by_kind": {"cost": violations} if violations else {},
                "max_contact_force": max(self._force, default=0.0), "interventions": 0,
                "interventions_by_reason": {}, "limit_events": {}, "pushes": 0,
                "sim_time": steps * self._dt, "wall_time": self._env_wall, "ticks": steps}

    def result(self) -> EpisodeResult:
        """Metrics and traces of the episode so far (call when :attr:`done`)."""
        if self.arm:
            ep, loop = self.task.episode, self.task.loop
            metrics = {"seed": self.seed, **ep.as_dict(), "ticks": loop.tick_count,
                       "wall_time_total": self._wall}
        else:
            metrics = {"seed": self.seed, **self._plain_record(), "wall_time_total": self._wall}
        metrics.update(episode_rates(metrics["steps"], metrics["ticks"], metrics["sim_time"],
                                     metrics["wall_time"], self._wall))
        return EpisodeResult(metrics, np.array(self._t), np.array(self._force),
                             np.array(self._cost))


def run_episode(env: gym.Env, policy: Policy, seed: int, *,
                on_frame: Callable[[np.ndarray], None] | None = None, caption: str | None = None,
                on_step: Callable[[dict[str, Any]], None] | None = None) -> EpisodeResult:
    """Run one episode; with ``on_frame``, render one frame after the reset and one per policy
    step (20 fps at the default 20 Hz policy) and hand each to ``on_frame``."""
    runner = EpisodeRunner(env, policy, seed, caption=caption, on_step=on_step)
    if on_frame is not None:
        on_frame(runner.frame())
    while not runner.done:
        runner.step()
        if on_frame is not None:
            on_frame(runner.frame())
    return runner.result()
