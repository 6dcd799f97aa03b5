"""``peg-insertion``: insert the peg into a hole with about 1 mm of clearance.

World: a table in front of the arm (top at ``TABLE_TOP``) carrying a square block with a square
hole through it, built from four boxes (the table is the bottom of the hole). The hole is
``2 * (PEG_RADIUS + clearance / 2)`` wide, so the 1 cm-radius capsule peg has ``clearance`` of
play in total (0.5 mm on each side at the default 1 mm). The rounded peg tip slides into the hole
when the lateral stiffness is low enough for the chamfer-like contact to centre it: this is the
task where variable impedance pays.

Observation (12): tip position (3), tip linear velocity (3), goal - tip in centimetres (3; the
goal is the centre of the *bottom* of the nominal hole, see ``goal`` and ``wall_shift``), contact
force on the tool divided by 20 N (3).

Action (6): target displacement in x/y/z (scaled by ``max_step``) and per-axis stiffness (log
scale, see :class:`ImpedanceTaskEnv`).

Reward terms (their sum is the reward, see ``info["reward_terms"]``):

- ``distance``: ``-10 *`` (lateral distance tip-hole axis + height of the tip above the bottom
  of the hole), every step [1/m] (dense; rewards of order 1, as in ``reach``). The goal lies
  below the success depth so that the pull towards it does not fade before success is reached;
- ``success``: ``+10`` on the step the target depth is reached;
- ``contact``: ``-0.02 *`` the largest contact force of the step [1/N].

Success: the tip is inside the hole (lateral distance to the axis below the clearance plus 2 mm)
at least ``depth`` below the top of the block; the episode ends.
Violation: contact force above ``force_limit`` (``info["violation"] = "contact_force"``). The
default hard-limit reflex retreats above ``reflex_force`` (below the force limit).

Domain randomisation (``randomize=True``, on by default): the hole position is drawn in a square
of half-width ``hole_range`` around ``HOLE_XY``, the friction coefficient of peg and block from
``friction_range``; the peg tip starts ``START_HEIGHT`` above the block with a random lateral
offset of up to ``start_range``. Disturbances: pushes come from the base class; ``wall_shift``
moves the hole by up to that many metres *without* the observation being told (it still reports
the nominal position), as a position error of a real fixture would.

Version history: v0 (initial; goal and reward measured from the hole bottom since the SAC
benchmark showed policies stalling 3 mm short of a goal placed at the success depth).
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from robot_brain.runtime import StepStats
from robot_brain.safety import LimitsConfig, Reflex

from . import panda
from .base import ImpedanceTaskEnv

__all__ = ["PegInsertionEnv"]

TABLE_TOP = 0.25  # m, height of the table surface
BLOCK_HEIGHT = 0.04  # m, height of the block (= depth of the hole)
BLOCK_HALF = 0.05  # m, half-width of the block
HOLE_XY = (0.5, 0.0)  # m, nominal hole centre
START_HEIGHT = 0.04  # m, peg tip above the block top at the start
FORCE_SCALE = 20.0  # N, contact force normalisation in the observation


class PegInsertionEnv(ImpedanceTaskEnv):
    """Peg-in-hole with variable-impedance x/y/z actions (see module docstring).

    :param clearance: total play between peg and hole [m] (hole width = peg diameter + clearance).
    :param depth: insertion depth below the block top that counts as success [m].
    :param randomize: draw hole position, friction and start offset at every reset.
    :param hole_range: half-width of the square the hole centre is drawn from [m].
    :param start_range: largest lateral offset of the start from the hole axis [m].
    :param friction_range: range of the sliding friction coefficient of peg and block.
    :param reflex_force: contact force at which the default hard-limit reflex retreats [N]; only
        used when ``reflex="limits"`` and no ``limits`` are given.
    :param kwargs: see :class:`ImpedanceTaskEnv`.
    """

    description = ("insert the peg into a hole with 1 mm clearance from a randomised start; contact "
                   "force above the limit is a violation")
    action_axes = "xyz"
    camera: ClassVar[dict] = {"lookat": (0.5, 0.0, 0.3), "distance": 0.7, "azimuth": 150.0,
                              "elevation": -30.0}

    def __init__(self, *, clearance: float = 0.001, depth: float = 0.025, randomize: bool = True,
                 hole_range: float = 0.03, start_range: float = 0.03,
                 friction_range: tuple[float, float] = (0.2, 0.6), reflex_force: float = 12.0,
                 force_limit: float = 20.0, max_step: float = 0.01, max_episode_steps: int = 150,
                 reflex: str | Reflex | None = "limits", limits: LimitsConfig | None = None,
                 **kwargs) -> None:
        if not 0 < clearance <= 0.01:
            raise ValueError(f"clearance must be in (0, 0.01] m, got {clearance}")
        if not 0 < depth < BLOCK_HEIGHT:
            raise ValueError(f"depth must be in (0, {BLOCK_HEIGHT}) m, got {depth}")
        if not 0 <= hole_range <= 0.1:
            raise ValueError(f"hole_range must be in [0, 0.1] m, got {hole_range}")
        if not 0 <= start_range <= 0.1:
            raise ValueError(f"start_range must be in [0, 0.1] m, got {start_range}")
        flo, fhi = friction_range
        if not 0 < flo <= fhi:
            raise ValueError(f"friction_range must satisfy 0 < low <= high, got {friction_range}")
        if not reflex_force > 0:
            raise ValueError(f"reflex_force must be > 0 N, got {reflex_force}")
        self.clearance = float(clearance)
        self.depth = float(depth)
        self.randomize = bool(randomize)
        self.hole_range = float(hole_range)
        self.start_range = float(start_range)
        self.friction_range = (float(flo), float(fhi))
        self.hole_half = panda.PEG_RADIUS + self.clearance / 2  # half-width of the hole
        self.hole_xy = np.array(HOLE_XY, dtype=np.float64)  # nominal (observed) hole centre
        self._true_xy = self.hole_xy.copy()  # where the hole really is (differs with wall_shift)
        self._start_tip = np.array([*HOLE_XY, TABLE_TOP + BLOCK_HEIGHT + START_HEIGHT])
        if reflex == "limits" and limits is None:
            limits = LimitsConfig(contact_force=reflex_force, q_min=tuple(panda.Q_MIN),
                                  q_max=tuple(panda.Q_MAX))
        super().__init__(reflex=reflex, limits=limits, force_limit=force_limit, max_step=max_step,
                         max_episode_steps=max_episode_steps, **kwargs)
        m = self.model
        self._block_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "block")
        self._block_geoms = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"block_{s}")
                             for s in ("n", "s", "e", "w")]
        self._peg_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "peg")
        self._mocap = int(m.body_mocapid[self._block_body])

    # -- world ---------------------------------------------------------------------------------
    @property
    def block_top(self) -> float:
        """Height of the block top = the hole's entry [m]."""
        return TABLE_TOP + BLOCK_HEIGHT

    def _world_xml(self) -> str:
        h = self.hole_half
        wall = (BLOCK_HALF - h) / 2  # half-thickness of each side of the block
        off = h + wall  # centre of each side from the hole axis
        hz = BLOCK_HEIGHT / 2
        # Two full-length sides (n/s along x) and two short ones (e/w) closing the square.
        sides = {
            "n": ((off, 0.0), (wall, BLOCK_HALF)),
            "s": ((-off, 0.0), (wall, BLOCK_HALF)),
            "e": ((0.0, off), (h, wall)),
            "w": ((0.0, -off), (h, wall)),
        }
        geoms = "".join(
            f'<geom name="block_{k}" type="box" pos="{x:.5f} {y:.5f} 0" size="{sx:.5f} {sy:.5f} {hz:g}" '
            f'rgba="0.2 0.45 0.85 1" contype="1" conaffinity="1" friction="0.4 0.005 0.0001"/>'
            for k, ((x, y), (sx, sy)) in sides.items()
        )
        return (
            f'<geom name="table" type="box" pos="0.5 0 {TABLE_TOP / 2:g}" size="0.3 0.4 {TABLE_TOP / 2:g}" '
            f'rgba="0.55 0.42 0.3 1" contype="1" conaffinity="1"/>'
            f'<body name="block" mocap="true" pos="{HOLE_XY[0]:g} {HOLE_XY[1]:g} {TABLE_TOP + hz:g}">'
            f"{geoms}"
            f'<geom name="hole_mark" type="cylinder" size="{h:.5f} 0.0005" pos="0 0 {-hz + 0.001:g}" '
            f'rgba="0.1 0.9 0.2 0.8"/></body>'
        )

    # -- episode -------------------------------------------------------------------------------
    def _reset_task(self, rng: np.random.Generator) -> None:
        m = self.model
        if self.randomize:
            self.hole_xy = np.array(HOLE_XY) + rng.uniform(-self.hole_range, self.hole_range, size=2)
            mu = rng.uniform(*self.friction_range)
            offset = rng.uniform(-1.0, 1.0, size=2)
            offset *= self.start_range / max(1.0, float(np.linalg.norm(offset)))  # within a disc
        else:
            self.hole_xy = np.array(HOLE_XY, dtype=np.float64)
            mu = float(np.mean(self.friction_range))
            offset = np.zeros(2)
        shift = self.disturbances.wall_shift
        self._true_xy = self.hole_xy + (rng.uniform(-shift, shift, size=2) if shift > 0 else 0.0)
        m.geom_friction[self._block_geoms, 0] = mu
        m.geom_friction[self._peg_geom, 0] = mu
        # The block is a mocap body: moving it needs no recompilation. The arm reset that follows
        # runs mj_resetData (which copies body_pos into mocap_pos) and mj_forward, so the model's
        # body_pos is what places it.
        pos = [*self._true_xy, TABLE_TOP + BLOCK_HEIGHT / 2]
        m.body_pos[self._block_body] = pos
        self.backend.data.mocap_pos[self._mocap] = pos
        self._start_tip = np.array([*(self.hole_xy + offset), self.block_top + START_HEIGHT])

    def _start_q(self, rng: np.random.Generator) -> np.ndarray:
        return self.posture_for(self._start_tip)

    # -- observation and reward ----------------------------------------------------------------
    @property
    def hole_top(self) -> np.ndarray:
        """Observed (nominal) centre of the hole entry [m]."""
        return np.array([*self.hole_xy, self.block_top])

    @property
    def goal(self) -> np.ndarray:
        """Observed (nominal) centre of the bottom of the hole: where the tip is sent [m]."""
        return np.array([*self.hole_xy, TABLE_TOP])

    @property
    def lateral_error(self) -> float:
        """Distance of the tip from the *true* hole axis in x/y [m]."""
        return float(np.linalg.norm(self.loop.state.ee_pos[:2] - self._true_xy))

    @property
    def insertion(self) -> float:
        """How far the tip is below the block top [m] (negative above it)."""
        return self.block_top - float(self.loop.state.ee_pos[2])

    def _task_obs(self) -> np.ndarray:
        s = self.loop.state
        # The goal error in centimetres: the 0.5 mm of play must be resolvable next to positions
        # of ~0.5 m (in metres it was a 1e-3 signal and SAC never learned to centre).
        return np.concatenate([(self.goal - s.ee_pos) * 100.0, s.wrench[:3] / FORCE_SCALE])

    def _distance(self) -> float:
        """Lateral distance to the hole axis plus height above the hole bottom [m]."""
        tip = self.loop.state.ee_pos
        lateral = float(np.linalg.norm(tip[:2] - self.hole_xy))
        height = max(0.0, float(tip[2]) - TABLE_TOP)
        return lateral + height

    def _reward_terms(self, stats: StepStats) -> dict[str, float]:
        # Distance in units of 10 cm, paid every step (as in reach): rewards of order 1 keep
        # SAC's entropy bonus from drowning the last millimetres; a potential difference alone
        # (10 per metre over a whole episode) left SAC at 0 % success after 30k steps.
        return {
            "distance": -10.0 * self._distance(),
            "success": 10.0 if self._is_success() else 0.0,
            "contact": -0.02 * stats.max_contact_force,
        }

    def _is_success(self) -> bool:
        return self.insertion >= self.depth and self.lateral_error < self.clearance + 0.002
