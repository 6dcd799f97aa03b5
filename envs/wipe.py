"""``wipe``: press on a table with a target normal force while following a path across it.

World: a table in front of the arm (top at ``TABLE_TOP``). Each episode draws a straight path of
``path_length`` metres on the table (random direction and centre), marked by ``n_points`` discs
spaced evenly along it; a disc turns green once it is *wiped*: the tip passed within
``wipe_radius`` of it in x/y while pressing with a normal force within ``force_band`` (relative)
of ``target_force``. The tip starts ``START_HEIGHT`` above the first point.

Observation (14): tip position (3), tip linear velocity (3), next unwiped point - tip in x/y (2),
last point - tip in x/y (2), normal force / target force (1), tip height above the table (1),
coverage (fraction of points wiped, 1), time since the episode began [s] (1, last). The time
lets a policy know how much of the episode is left, and drives the rhythm of a circuit prior
(:mod:`robot_brain.policies.wipe_circuit`).

Action (6): target displacement in x/y/z (scaled by ``max_step``) and per-axis stiffness (log
scale). The normal force is set through impedance: target below the surface times z stiffness.

Reward terms (their sum is the reward, see ``info["reward_terms"]``):

- ``coverage``: ``10 *`` the fraction of points newly wiped this step;
- ``progress``: ``5 *`` decrease of the remaining path length from the tip (distance to the next
  unwiped point plus the path after it; potential based) [1/m];
- ``force``: ``-0.2 * min(1, |F_n - F*| / F*)`` every step (force tracking);
- ``success``: ``+5`` on the step coverage reaches ``success_coverage``.

Success: coverage at least ``success_coverage``; the episode ends.
Violations (``info["violation"]``): ``contact_force`` (contact force above ``force_limit``) and,
once the tip has touched the table, ``left_surface`` (tip more than ``lift_tolerance`` above the
table top).

Domain randomisation (``randomize=True``, default): path direction and centre, friction of the
table (``friction_range``) and its contact stiffness: the time constant of its ``solref`` is
drawn from ``solref_range`` (a larger time constant is a softer surface). Disturbances: pushes
come from the base class; ``wall_shift`` raises or lowers the table by up to that many metres
(capped at 1 cm) without the observation's height being corrected, as an uncalibrated surface.

Version history: v0 (initial); v1 (the episode time appended to the observation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import mujoco
import numpy as np

from robot_brain.params import param
from robot_brain.render import Camera
from robot_brain.runtime import StepStats

from .base import ImpedanceTaskEnv, TaskConfig
from .world import TABLE_TOP, table_xml

__all__ = ["WipeConfig", "WipeEnv"]

TABLE_THICKNESS = 0.04  # m, the table is a slab (its top is the nominal surface)
START_HEIGHT = 0.02  # m, tip above the table at the start
PATH_CENTRE = (0.5, 0.0)  # m, nominal centre of the path
MAX_SURFACE_SHIFT = 0.01  # m, largest unobserved table height error (wall_shift is capped here)


@dataclass(frozen=True)
class WipeConfig(TaskConfig):
    """Options of ``wipe`` (besides :class:`TaskConfig`'s).

    :param target_force: normal force to keep on the table [N].
    :param force_band: relative tolerance of the normal force for a point to count as wiped.
    :param path_length: length of the path [m]. :param n_points: points along the path.
    :param wipe_radius: x/y distance at which the tip wipes a point [m].
    :param success_coverage: fraction of wiped points that solves the task.
    :param lift_tolerance: height above the table that counts as leaving the surface [m].
    :param randomize: draw path, friction and surface stiffness at every reset.
    :param friction_range: range of the table's sliding friction coefficient.
    :param solref_range: range of the time constant of the table's contact ``solref`` [s]; at
        least twice the 1 ms timestep for a stable contact.
    """

    target_force: float = param(5.0, "normal force to keep on the table", low=0.0, high=50.0,
                                unit="N", low_open=True)
    force_band: float = param(0.6, "relative tolerance of the normal force for a wipe", low=0.0,
                              high=1.0, low_open=True)
    path_length: float = param(0.2, "length of the path", low=0.0, high=0.4, unit="m", low_open=True)
    n_points: int = param(11, "points along the path", kind="int", low=2, high=200)
    wipe_radius: float = param(0.02, "x/y distance at which the tip wipes a point", low=0.0,
                               high=0.1, unit="m", low_open=True)
    success_coverage: float = param(0.9, "fraction of wiped points that solves the task", low=0.0,
                                    high=1.0, low_open=True)
    lift_tolerance: float = param(0.005, "height above the table that counts as leaving it",
                                  low=0.0, high=0.05, unit="m", low_open=True)
    randomize: bool = param(True, "draw path, friction and surface stiffness at every reset",
                            kind="bool")
    friction_range: tuple[float, float] = param((0.1, 0.3), "sliding friction of the table",
                                                kind="pair", low=0.01, high=2.0)
    solref_range: tuple[float, float] = param(
        (0.015, 0.04), "time constant of the table's contact (>= 2 physics steps for stability)",
        kind="pair", low=0.002, high=0.5, unit="s")
    reflex_force: float = param(15.0, "contact force at which the hard-limit reflex retreats "
                                "(below the 20 N force limit)", low=0.0, high=200.0, unit="N",
                                low_open=True)
    force_limit: float = param(20.0, "contact force above which a step is a violation", low=0.0,
                               high=200.0, unit="N", low_open=True)
    max_episode_steps: int = param(250, "steps before truncation", kind="int", low=1, high=1_000_000)


class WipeEnv(ImpedanceTaskEnv):
    """Force-controlled wiping along a path (see module docstring; options: :class:`WipeConfig`)."""

    name: ClassVar[str] = "wipe"
    env_id: ClassVar[str] = "robot_brain/Wipe-v1"
    description: ClassVar[str] = ("keep a target normal force on a table while following a path; "
                                  "excessive force or leaving the surface is a violation")
    config_type: ClassVar[type[TaskConfig]] = WipeConfig
    config: WipeConfig
    action_axes: ClassVar[str] = "xyz"
    camera: ClassVar[Camera] = Camera(lookat=(0.5, 0.0, 0.27), distance=0.9, azimuth=160.0,
                                      elevation=-45.0)

    def __init__(self, config: WipeConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        m = self.model
        self._table = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "table")
        self._table_pos = m.geom_pos[self._table].copy()
        self._sites = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, f"wipe_{i}")
                       for i in range(self.config.n_points)]

    def _init_task(self) -> None:
        cfg = self.config
        half = cfg.path_length / 2
        # A straight path along x through the centre until the first reset draws one.
        self.points = np.stack([np.linspace(-half, half, cfg.n_points) + PATH_CENTRE[0],
                                np.full(cfg.n_points, PATH_CENTRE[1])], axis=1)
        self.wiped = np.zeros(cfg.n_points, dtype=bool)
        self.touched = False  # the tip has been on the table this episode
        self._surface = TABLE_TOP  # true height of the table top this episode
        self._remaining = 0.0
        self._progress = 0.0  # path covered during the last step [m] (set by _update)
        self._newly = 0  # points wiped during the last step (set by _update)
        self._start_tip = np.array([*self.points[0], TABLE_TOP + START_HEIGHT])

    # -- world ---------------------------------------------------------------------------------
    def _world_xml(self) -> str:
        sites = "".join(
            f'<site name="wipe_{i}" type="cylinder" size="0.006 0.0005" '
            f'pos="{x:.4f} {y:.4f} {TABLE_TOP + 0.0006:g}" rgba="0.9 0.2 0.2 0.9"/>'
            for i, (x, y) in enumerate(self.points)
        )
        return table_xml(thickness=TABLE_THICKNESS, attrs=' friction="0.2 0.005 0.0001"') + sites

    # -- episode -------------------------------------------------------------------------------
    def _reset_task(self, rng: np.random.Generator) -> None:
        m, cfg = self.model, self.config
        if cfg.randomize:
            angle = rng.uniform(-np.pi / 4, np.pi / 4)  # around the y axis (across the arm)
            centre = np.array(PATH_CENTRE) + rng.uniform([-0.05, -0.05], [0.05, 0.05])
            mu = rng.uniform(*cfg.friction_range)
            timeconst = rng.uniform(*cfg.solref_range)
        else:
            angle, centre = 0.0, np.array(PATH_CENTRE, dtype=np.float64)
            mu = float(np.mean(cfg.friction_range))
            timeconst = float(np.mean(cfg.solref_range))
        direction = np.array([np.sin(angle), np.cos(angle)])
        s = np.linspace(-cfg.path_length / 2, cfg.path_length / 2, cfg.n_points)
        self.points = centre + s[:, None] * direction
        self.wiped[:] = False
        self.touched = False
        shift = min(cfg.disturbances.wall_shift, MAX_SURFACE_SHIFT)
        self._surface = TABLE_TOP + (rng.uniform(-shift, shift) if shift > 0 else 0.0)
        m.geom_pos[self._table] = self._table_pos + np.array([0.0, 0.0, self._surface - TABLE_TOP])
        m.geom_friction[self._table, 0] = mu
        m.geom_solref[self._table, 0] = timeconst
        for sid, (x, y) in zip(self._sites, self.points, strict=True):
            m.site_pos[sid] = [x, y, self._surface + 0.0006]
            m.site_rgba[sid] = [0.9, 0.2, 0.2, 0.9]
        self._start_tip = np.array([*self.points[0], TABLE_TOP + START_HEIGHT])

    def _start_q(self, rng: np.random.Generator) -> np.ndarray:
        return self.posture_for(self._start_tip)

    def _reset_arm(self, q: np.ndarray) -> None:
        super()._reset_arm(q)
        self._remaining = self.path_remaining()

    # -- measurements --------------------------------------------------------------------------
    @property
    def normal_force(self) -> float:
        """Force the table pushes up on the tool [N] (0 without contact)."""
        return max(0.0, float(self.state.wrench[2]))

    @property
    def height(self) -> float:
        """Tip height above the nominal table top [m] (what the policy observes)."""
        return float(self.state.ee_pos[2]) - TABLE_TOP

    @property
    def coverage(self) -> float:
        """Fraction of the path's points wiped so far."""
        return float(self.wiped.mean())

    @property
    def next_index(self) -> int:
        """Index of the first unwiped point (the last point once all are wiped)."""
        idx = np.flatnonzero(~self.wiped)
        return int(idx[0]) if len(idx) else self.config.n_points - 1

    def path_remaining(self) -> float:
        """Distance from the tip to the next unwiped point plus the path after it [m]."""
        i, n = self.next_index, self.config.n_points
        tip = self.state.ee_pos[:2]
        spacing = self.config.path_length / (n - 1)
        return float(np.linalg.norm(self.points[i] - tip)) + spacing * (n - 1 - i)

    def _task_obs(self) -> np.ndarray:
        tip = self.state.ee_pos[:2]
        return np.concatenate([self.points[self.next_index] - tip, self.points[-1] - tip,
                               [self.normal_force / self.config.target_force, self.height,
                                self.coverage, self.episode.steps / self.config.policy_hz]])

    # -- reward --------------------------------------------------------------------------------
    def _wipe(self) -> int:
        """Mark the points under the tip as wiped if the force is in the band; returns how many."""
        cfg = self.config
        f = self.normal_force
        if abs(f - cfg.target_force) > cfg.force_band * cfg.target_force:
            return 0
        near = np.linalg.norm(self.points - self.state.ee_pos[:2], axis=1) < cfg.wipe_radius
        new = near & ~self.wiped
        self.wiped |= new
        for i in np.flatnonzero(new):
            self.model.site_rgba[self._sites[i]] = [0.1, 0.9, 0.2, 0.9]
        return int(new.sum())

    def _update(self, stats: StepStats) -> None:
        """Touch-down, points wiped and path progress of the step (read by reward and violation)."""
        if stats.max_contact_force > 0.5 * self.config.target_force:
            self.touched = True
        self._newly = self._wipe()
        remaining = self.path_remaining()
        self._progress = self._remaining - remaining
        self._remaining = remaining

    def _reward_terms(self, stats: StepStats) -> dict[str, float]:
        cfg = self.config
        err = abs(self.normal_force - cfg.target_force) / cfg.target_force
        return {
            "coverage": 10.0 * self._newly / cfg.n_points,
            "progress": 5.0 * self._progress,
            "force": -0.2 * min(1.0, err),
            "success": 5.0 if self._is_success() else 0.0,
        }

    def _is_success(self) -> bool:
        return self.coverage >= self.config.success_coverage - 1e-9

    def _violation(self, stats: StepStats) -> str | None:
        if stats.max_contact_force > self.config.force_limit:
            return "contact_force"
        if self.touched and float(self.state.ee_pos[2]) - self._surface > self.config.lift_tolerance:
            return "left_surface"
        return None
