"""``wipe``: press on a table with a target normal force while following a path across it.

World: a table in front of the arm (top at ``TABLE_TOP``). Each episode draws a straight path of
``path_length`` metres on the table (random direction and centre), marked by ``n_points`` discs
spaced evenly along it; a disc turns green once it is *wiped*: the tip passed within
``wipe_radius`` of it in x/y while pressing with a normal force within ``force_band`` (relative)
of ``target_force``. The tip starts ``START_HEIGHT`` above the first point.

Observation (13): tip position (3), tip linear velocity (3), next unwiped point - tip in x/y (2),
last point - tip in x/y (2), normal force / target force (1), tip height above the table (1),
coverage (fraction of points wiped, 1).

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

Version history: v0 (initial).
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from robot_brain.runtime import StepStats
from robot_brain.safety import LimitsConfig, Reflex

from . import panda
from .base import ImpedanceTaskEnv

__all__ = ["WipeEnv"]

TABLE_TOP = 0.25  # m, nominal height of the table surface
TABLE_HALF_HEIGHT = 0.02  # m, the table is a slab
START_HEIGHT = 0.02  # m, tip above the table at the start
PATH_CENTRE = (0.5, 0.0)  # m, nominal centre of the path
MAX_SURFACE_SHIFT = 0.01  # m, largest unobserved table height error (wall_shift is capped here)


class WipeEnv(ImpedanceTaskEnv):
    """Force-controlled wiping along a path (see module docstring).

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
    :param reflex_force: contact force at which the default hard-limit reflex retreats [N].
    :param kwargs: see :class:`ImpedanceTaskEnv`.
    """

    description = ("keep a target normal force on a table while following a path; excessive force "
                   "or leaving the surface is a violation")
    action_axes = "xyz"
    camera: ClassVar[dict] = {"lookat": (0.5, 0.0, 0.27), "distance": 0.9, "azimuth": 160.0,
                              "elevation": -45.0}

    def __init__(self, *, target_force: float = 5.0, force_band: float = 0.6, path_length: float = 0.2,
                 n_points: int = 11, wipe_radius: float = 0.02, success_coverage: float = 0.9,
                 lift_tolerance: float = 0.005, randomize: bool = True,
                 friction_range: tuple[float, float] = (0.1, 0.3),
                 solref_range: tuple[float, float] = (0.015, 0.04), reflex_force: float = 15.0,
                 force_limit: float = 20.0, max_episode_steps: int = 250,
                 reflex: str | Reflex | None = "limits", limits: LimitsConfig | None = None,
                 **kwargs) -> None:
        if not target_force > 0:
            raise ValueError(f"target_force must be > 0 N, got {target_force}")
        if not 0 < force_band < 1:
            raise ValueError(f"force_band must be in (0, 1), got {force_band}")
        if not 0 < path_length <= 0.4:
            raise ValueError(f"path_length must be in (0, 0.4] m, got {path_length}")
        if not n_points >= 2:
            raise ValueError(f"n_points must be >= 2, got {n_points}")
        if not wipe_radius > 0:
            raise ValueError(f"wipe_radius must be > 0 m, got {wipe_radius}")
        if not 0 < success_coverage <= 1:
            raise ValueError(f"success_coverage must be in (0, 1], got {success_coverage}")
        if not lift_tolerance > 0:
            raise ValueError(f"lift_tolerance must be > 0 m, got {lift_tolerance}")
        flo, fhi = friction_range
        if not 0 < flo <= fhi:
            raise ValueError(f"friction_range must satisfy 0 < low <= high, got {friction_range}")
        slo, shi = solref_range
        if not 0.002 <= slo <= shi:
            raise ValueError(f"solref_range must satisfy 0.002 <= low <= high (s), got {solref_range}")
        self.target_force = float(target_force)
        self.force_band = float(force_band)
        self.path_length = float(path_length)
        self.n_points = int(n_points)
        self.wipe_radius = float(wipe_radius)
        self.success_coverage = float(success_coverage)
        self.lift_tolerance = float(lift_tolerance)
        self.randomize = bool(randomize)
        self.friction_range = (float(flo), float(fhi))
        self.solref_range = (float(slo), float(shi))
        half = self.path_length / 2
        self.points = np.stack([np.linspace(-half, half, self.n_points) + PATH_CENTRE[0],
                                np.full(self.n_points, PATH_CENTRE[1])], axis=1)
        self.wiped = np.zeros(self.n_points, dtype=bool)
        self.touched = False  # the tip has been on the table this episode
        self._surface = TABLE_TOP  # true height of the table top this episode
        self._remaining = 0.0
        self._start_tip = np.array([*self.points[0], TABLE_TOP + START_HEIGHT])
        if reflex == "limits" and limits is None:
            limits = LimitsConfig(contact_force=reflex_force, q_min=tuple(panda.Q_MIN),
                                  q_max=tuple(panda.Q_MAX))
        super().__init__(reflex=reflex, limits=limits, force_limit=force_limit,
                         max_episode_steps=max_episode_steps, **kwargs)
        m = self.model
        self._table = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "table")
        self._table_pos = m.geom_pos[self._table].copy()
        self._sites = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, f"wipe_{i}")
                       for i in range(self.n_points)]

    # -- world ---------------------------------------------------------------------------------
    def _world_xml(self) -> str:
        sites = "".join(
            f'<site name="wipe_{i}" type="cylinder" size="0.006 0.0005" '
            f'pos="{x:.4f} {y:.4f} {TABLE_TOP + 0.0006:g}" rgba="0.9 0.2 0.2 0.9"/>'
            for i, (x, y) in enumerate(self.points)
        )
        return (f'<geom name="table" type="box" pos="0.5 0 {TABLE_TOP - TABLE_HALF_HEIGHT:g}" '
                f'size="0.3 0.4 {TABLE_HALF_HEIGHT:g}" rgba="0.55 0.42 0.3 1" contype="1" '
                f'conaffinity="1" friction="0.2 0.005 0.0001"/>{sites}')

    # -- episode -------------------------------------------------------------------------------
    def _reset_task(self, rng: np.random.Generator) -> None:
        m = self.model
        if self.randomize:
            angle = rng.uniform(-np.pi / 4, np.pi / 4)  # around the y axis (across the arm)
            centre = np.array(PATH_CENTRE) + rng.uniform([-0.05, -0.05], [0.05, 0.05])
            mu = rng.uniform(*self.friction_range)
            timeconst = rng.uniform(*self.solref_range)
        else:
            angle, centre = 0.0, np.array(PATH_CENTRE, dtype=np.float64)
            mu = float(np.mean(self.friction_range))
            timeconst = float(np.mean(self.solref_range))
        direction = np.array([np.sin(angle), np.cos(angle)])
        s = np.linspace(-self.path_length / 2, self.path_length / 2, self.n_points)
        self.points = centre + s[:, None] * direction
        self.wiped[:] = False
        self.touched = False
        shift = min(self.disturbances.wall_shift, MAX_SURFACE_SHIFT)
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
        return max(0.0, float(self.loop.state.wrench[2]))

    @property
    def height(self) -> float:
        """Tip height above the nominal table top [m] (what the policy observes)."""
        return float(self.loop.state.ee_pos[2]) - TABLE_TOP

    @property
    def coverage(self) -> float:
        """Fraction of the path's points wiped so far."""
        return float(self.wiped.mean())

    @property
    def next_index(self) -> int:
        """Index of the first unwiped point (the last point once all are wiped)."""
        idx = np.flatnonzero(~self.wiped)
        return int(idx[0]) if len(idx) else self.n_points - 1

    def path_remaining(self) -> float:
        """Distance from the tip to the next unwiped point plus the path after it [m]."""
        i = self.next_index
        tip = self.loop.state.ee_pos[:2]
        spacing = self.path_length / (self.n_points - 1)
        return float(np.linalg.norm(self.points[i] - tip)) + spacing * (self.n_points - 1 - i)

    def _task_obs(self) -> np.ndarray:
        tip = self.loop.state.ee_pos[:2]
        return np.concatenate([self.points[self.next_index] - tip, self.points[-1] - tip,
                               [self.normal_force / self.target_force, self.height, self.coverage]])

    # -- reward --------------------------------------------------------------------------------
    def _wipe(self) -> int:
        """Mark the points under the tip as wiped if the force is in the band; returns how many."""
        f = self.normal_force
        if abs(f - self.target_force) > self.force_band * self.target_force:
            return 0
        near = np.linalg.norm(self.points - self.loop.state.ee_pos[:2], axis=1) < self.wipe_radius
        new = near & ~self.wiped
        self.wiped |= new
        for i in np.flatnonzero(new):
            self.model.site_rgba[self._sites[i]] = [0.1, 0.9, 0.2, 0.9]
        return int(new.sum())

    def _reward_terms(self, stats: StepStats) -> dict[str, float]:
        if stats.max_contact_force > 0.5 * self.target_force:
            self.touched = True
        newly = self._wipe()
        remaining = self.path_remaining()
        progress = self._remaining - remaining
        self._remaining = remaining
        err = abs(self.normal_force - self.target_force) / self.target_force
        return {
            "coverage": 10.0 * newly / self.n_points,
            "progress": 5.0 * progress,
            "force": -0.2 * min(1.0, err),
            "success": 5.0 if self._is_success() else 0.0,
        }

    def _is_success(self) -> bool:
        return self.coverage >= self.success_coverage - 1e-9

    def _violation(self, stats: StepStats) -> str | None:
        if stats.max_contact_force > self.force_limit:
            return "contact_force"
        if self.touched and float(self.loop.state.ee_pos[2]) - self._surface > self.lift_tolerance:
            return "left_surface"
        return None
