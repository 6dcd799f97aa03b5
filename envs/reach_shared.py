"""``reach-shared``: reach one of several goals, the one a person has in mind (shared control).

The multi-goal reach of the shared-autonomy literature (Dragan & Srinivasa 2013; Javdani et al.
2015): a handful of candidate goals are known to everybody; which one the person is heading for
is not known to the robot. Each episode (a *trial*) has an **intended** goal, the one the person
was asked to reach (drawn at reset, or given with ``reset(options={"goal": i})``); it is drawn
in a different colour, so a person driving the arm in the viewer knows where to go. The robot's
side (:mod:`robot_brain.coadapt`) never reads it: it infers it from the person's input.

Observation: tool position (3), tool velocity (3), then every goal relative to the tool (3 K):
no goal is singled out. Action: as ``reach`` (target displacement and per-axis stiffness).
The episode ends when the tool comes within ``goal_tolerance`` of **any** goal: success if it is
the intended one; ``info["reached"]`` says which (-1: none yet).

Version history: v0 (initial; 3 goals 20 cm apart at x 0.55 m, start above x 0.35 m).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robot_brain.params import param
from robot_brain.runtime import StepStats

from .base import TaskConfig
from .reach import ReachEnv

__all__ = ["ReachSharedConfig", "ReachSharedEnv"]

_INTENDED_RGBA = "0.1 0.9 0.2 0.7"
_OTHER_RGBA = "0.9 0.6 0.1 0.35"


def _check_goals(goals: Any) -> tuple[tuple[float, float, float], ...]:
    """``goals`` as a tuple of (x, y, z) in the arm's reach box, or a one-line ValueError."""
    try:
        arr = np.asarray(goals, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"ReachSharedConfig.goals must be a list of [x, y, z] positions, "
                         f"got {goals!r}") from None
    if arr.ndim != 2 or arr.shape[1] != 3 or not 2 <= len(arr) <= 8:
        raise ValueError(f"ReachSharedConfig.goals must be 2 to 8 [x, y, z] positions, got {goals!r}")
    lo, hi = np.array([0.3, -0.3, 0.15]), np.array([0.65, 0.3, 0.5])
    if not np.isfinite(arr).all() or (arr < lo).any() or (arr > hi).any():
        raise ValueError(f"ReachSharedConfig.goals must lie in the reach box x 0.3-0.65, y -0.3-0.3, "
                         f"z 0.15-0.5 m, got {goals!r}")
    gaps = np.linalg.norm(arr[:, None] - arr[None], axis=-1) + np.eye(len(arr))
    if gaps.min() < 0.06:
        raise ValueError(f"ReachSharedConfig.goals must be at least 6 cm apart (three tolerances), "
                         f"got {goals!r}")
    return tuple((float(x), float(y), float(z)) for x, y, z in arr)


@dataclass(frozen=True)
class ReachSharedConfig(TaskConfig):
    """Options of ``reach-shared`` (besides :class:`TaskConfig`'s).

    :param goals: the candidate goals [m]; default: three goals 20 cm apart across the table.
    :param start: tool-tip start position [m]; :param start_jitter: its random offset per axis [m].
    :param goal_tolerance: distance at which a goal counts as reached [m].
    """

    goals: tuple[tuple[float, float, float], ...] = param(
        ((0.55, -0.2, 0.25), (0.58, 0.0, 0.25), (0.55, 0.2, 0.25)),
        "candidate goal positions, a list of [x, y, z]", kind="any", unit="m")
    start: tuple[float, float, float] = param((0.35, 0.0, 0.42), "tool-tip start position", kind="vec3",
                                              low=-1.0, high=1.2, unit="m")
    start_jitter: float = param(0.02, "random start offset per axis", low=0.0, high=0.05, unit="m")
    goal_tolerance: float = param(0.02, "distance at which a goal counts as reached", low=0.005,
                                  high=0.05, unit="m")
    max_episode_steps: int = param(200, "steps before truncation (10 s at 20 Hz)", kind="int", low=1,
                                   high=1_000_000)

    def __post_init__(self) -> None:
        super().__post_init__()
        goals = _check_goals(self.goals)
        object.__setattr__(self, "goals", goals)
        arr = np.array(goals)
        gap = float((np.linalg.norm(arr[:, None] - arr[None], axis=-1) + 1e9 * np.eye(len(arr))).min())
        if gap < 3 * self.goal_tolerance:  # one goal's region must not touch another's
            raise ValueError(f"ReachSharedConfig: goals {gap * 100:.1f} cm apart need goal_tolerance "
                             f"<= {gap / 3 * 100:.1f} cm (a third of the gap), got "
                             f"{self.goal_tolerance * 100:g} cm")


class ReachSharedEnv(ReachEnv):
    """Reach the intended one of several goals (options: :class:`ReachSharedConfig`).

    ``goal`` (as in ``reach``) is the intended goal, so the scripted reach policy drives it
    unchanged; :attr:`goals` are all candidates and :attr:`intended` the intended one's index.
    """

    name: ClassVar[str] = "reach-shared"
    env_id: ClassVar[str] = "robot_brain/ReachShared-v0"
    description: ClassVar[str] = ("reach the goal a person has in mind among several (shared control, "
                                  "robot-brain sim reach-shared --human sim)")
    config_type: ClassVar[type[TaskConfig]] = ReachSharedConfig
    config: ReachSharedConfig  # type: ignore[assignment]  # a ReachConfig sibling, same fields used

    def __init__(self, config: ReachSharedConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._marker_geoms = [self.model.geom(f"goal{i}").id for i in range(len(self.goals))]
        self.reached = -1

    def _init_task(self) -> None:
        self.goals = np.array(self.config.goals)
        self.intended = 0
        self.goal = self.goals[0].copy()
        self.reached = -1
        self._requested: int | None = None

    def _world_xml(self) -> str:
        # The base's "goal" mocap body is kept (ReachEnv moves it) and hidden: the markers are here.
        markers = "".join(
            f'<body name="goal_marker{i}" pos="{x:g} {y:g} {z:g}"><geom name="goal{i}" type="sphere" '
            f'size="{self.config.goal_tolerance:g}" contype="0" conaffinity="0" rgba="{_OTHER_RGBA}"/></body>'
            for i, (x, y, z) in enumerate(self.config.goals))
        return ('<body name="goal" mocap="true" pos="0.5 0 0.45"><geom type="sphere" size="0.001" '
                'contype="0" conaffinity="0" rgba="0 0 0 0"/></body>' + markers)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a trial; ``options={"goal": i}`` sets the intended goal (default: drawn)."""
        goal = (options or {}).get("goal")
        if goal is not None and (isinstance(goal, bool) or not isinstance(goal, (int, np.integer))
                                 or not 0 <= goal < len(self.goals)):
            raise ValueError(f"reset option goal must be a goal index in [0, {len(self.goals) - 1}], "
                             f"got {goal!r}")
        self._requested = None if goal is None else int(goal)
        obs, info = super().reset(seed=seed, options=options)
        info["reached"] = -1
        return obs, info

    def _reset_task(self, rng: np.random.Generator) -> None:
        drawn = int(rng.integers(len(self.goals)))  # drawn always: the seed's stream stays the same
        self.intended = drawn if self._requested is None else self._requested
        self.goal = self.goals[self.intended].copy()
        self.reached = -1
        for i, gid in enumerate(self._marker_geoms):
            self.model.geom_rgba[gid] = [float(c) for c in
                                         (_INTENDED_RGBA if i == self.intended else _OTHER_RGBA).split()]

    def _start_q(self, rng: np.random.Generator) -> np.ndarray:
        tip = np.array(self.config.start) + rng.uniform(-1, 1, 3) * self.config.start_jitter
        return self.posture_for(tip)

    def _task_obs(self) -> np.ndarray:
        return (self.goals - self.state.ee_pos).ravel()

    def _update(self, stats: StepStats) -> None:
        dist = np.linalg.norm(self.goals - self.state.ee_pos, axis=1)
        near = int(np.argmin(dist))
        if self.reached < 0 and dist[near] < self.config.goal_tolerance:
            self.reached = near

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        info["reached"] = self.reached
        if self.reached >= 0 and not terminated:  # the wrong goal ends the trial too
            terminated, truncated = True, False
        return obs, reward, terminated, truncated, info

    def _is_success(self) -> bool:
        return self.reached == self.intended
