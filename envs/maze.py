"""``maze``: guide the peg through a planar maze of walls on a table (Bresa's contact-rich task).

World: a table in front of the arm (top at ``TABLE_TOP``) and on it a serpentine maze of box
walls (centre lines ``MAZE_LOW``..``MAZE_HIGH`` in x/y): four outer walls and two inner walls
parallel to y with gaps at alternating ends, so the path runs up the first corridor, down the
second and up the third (corridors 7 cm wide between 2 cm walls, 9 cm apart). The peg tip starts
in one corner, ``START_HEIGHT`` above the table (below the top of the walls), and the goal (a
green disc, no collision) is in the far corner.

The action moves the tip in the table plane only (``action_axes = "xy"``: action = ``[dx, dy,
kx, ky]``, displacement scaled by ``max_step`` and per-axis stiffness on a log scale); the base
holds the height and the tool orientation with its hold stiffness.

Observation (12): tip position (3), tip linear velocity (3), goal - tip in x/y (2), next nominal
waypoint - tip in x/y (2; the waypoint after the nearest segment of the nominal path, the route a
planner would hand over -- the shifted walls are not in it), contact force on the tool in x/y
divided by 20 N (2; the wall reaction the policy can feel).

Reward terms (their sum is the reward, see ``info["reward_terms"]``):

- ``progress``: ``100 *`` (decrease of the remaining path length to the goal along the nominal
  waypoints, :meth:`MazeEnv.path_remaining`) [1/m] -- dense and potential-based: over an episode
  it sums to the path covered, so it cannot be farmed by going back and forth; 1 per centimetre
  keeps a step's reward of order 1 (at 10 per metre SAC made no progress in 10k steps);
- ``success``: ``+10`` on the step the goal is reached;
- ``contact``: ``-0.02 *`` the largest contact force of the step [1/N].

Success: tip within ``goal_tolerance`` (3 cm, in x/y) of the goal; the episode ends.
Violation: contact force above ``force_limit`` during a step (``info["violation"] =
"contact_force"``, ``info["cost"] = 1``). The hard-limit reflex of this task retreats from
contacts above ``reflex_force`` (default 10 N, below the 15 N force limit, so it acts before a
contact becomes a violation).

Walls stop the peg: pressed at up to ~1600 N/m it rests against the face. Pressing at the top of
the stiffness range (2000 N/m, ~40 N) for a second overpowers the wrist (12 N m joints), the tool
tilts and the peg can climb a wall -- every step of that is a contact-force violation.

Disturbances: ``wall_shift`` moves each inner wall by a random offset (up to that many metres in
x and in y) at every reset; :attr:`MazeEnv.waypoints` stays nominal (policies are not told).
Pushes come from the base class.

Version history: v0 (initial; the next-waypoint observation and the progress scale of 100 per
metre were added before the first release, for the shielded-training benchmark).
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from robot_brain.runtime import StepStats
from robot_brain.safety import LimitsConfig, Reflex

from . import panda
from .base import DOWN, ImpedanceTaskEnv

__all__ = ["MazeEnv"]

TABLE_TOP = 0.25  # m, height of the table surface
WALL_HEIGHT = 0.08  # m; the tip runs 1.5 cm up, so the wall face takes the peg side (no climbing over)
WALL_THICKNESS = 0.02  # m
START_HEIGHT = 0.015  # m, peg tip above the table
MAZE_LOW = (0.365, -0.17)  # m, x/y of the centre lines of the outer walls (lower corner)
MAZE_HIGH = (0.635, 0.17)  # m, upper corner
# Three corridors of pitch 9 cm: 7 cm free between walls, so the 2 cm peg on the centre line has
# 2.5 cm to either wall and Disturbances.default()'s 3 cm wall shift can reach into its path.
CORRIDOR = (MAZE_HIGH[0] - MAZE_LOW[0]) / 3 - WALL_THICKNESS  # m, free width of a corridor
# Wall contact time constant and damping ratio (MuJoCo solref): 20 ms is a slightly yielding wall
# (about 2 mm under 30 N), so an impact is spread over a few ticks as on a padded real maze rather
# than a one-tick spike of hundreds of newtons.
WALL_SOLREF = "0.02 1"
# Sliding friction of the walls (smooth painted wood on a metal peg); ``priority`` makes it the
# coefficient of every peg-wall contact instead of the larger of the two geoms'.
WALL_FRICTION = 0.15
INNER_WALLS = ("wall_inner1", "wall_inner2")  # the walls ``wall_shift`` moves


def _layout() -> tuple[list[tuple[str, tuple[float, float], tuple[float, float]]], np.ndarray]:
    """Walls as ``(name, centre xy, half-size xy)`` and the nominal waypoints (tip x/y)."""
    (x0, y0), (x1, y1) = MAZE_LOW, MAZE_HIGH
    t = WALL_THICKNESS / 2
    pitch = (x1 - x0) / 3
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    inner_len = (y1 - y0) - t - CORRIDOR  # from the outer wall's centre line to the gap
    walls = [
        ("wall_south", (x0, ym), (t, (y1 - y0) / 2 + t)),
        ("wall_north", (x1, ym), (t, (y1 - y0) / 2 + t)),
        ("wall_west", (xm, y0), ((x1 - x0) / 2 - t, t)),
        ("wall_east", (xm, y1), ((x1 - x0) / 2 - t, t)),
        # Inner walls parallel to y, leaving a corridor-wide gap at alternating ends (+y, -y).
        ("wall_inner1", (x0 + pitch, y0 + inner_len / 2), (t, inner_len / 2)),
        ("wall_inner2", (x0 + 2 * pitch, y1 - inner_len / 2), (t, inner_len / 2)),
    ]
    yl, yh = y0 + t + CORRIDOR / 2, y1 - t - CORRIDOR / 2  # turn points: centred in the gaps
    cx = [x0 + pitch / 2, x0 + 1.5 * pitch, x0 + 2.5 * pitch]  # corridor centre lines
    waypoints = np.array([
        (cx[0], yl), (cx[0], yh), (cx[1], yh), (cx[1], yl), (cx[2], yl), (cx[2], yh),
    ])
    return walls, waypoints


class MazeEnv(ImpedanceTaskEnv):
    """Planar peg maze on a table with variable-impedance x/y actions (see module docstring).

    :param goal_tolerance: success distance in x/y [m].
    :param reflex_force: contact force at which the default hard-limit reflex retreats [N]; only
        used when ``reflex="limits"`` and no ``limits`` are given.
    :param start_noise: largest random offset of the start position in x/y [m] (0: fixed start).
    :param max_episode_steps: steps before truncation (the scripted policy needs ~200 at
        ~1100 N/m, a 250 N/m arm ~370).
    :param reflex: as in :class:`ImpedanceTaskEnv`; ``"limits"`` builds the hard-limit reflex
        with ``reflex_force`` unless ``limits`` is given.
    :param limits: limits of the hard-limit reflex (overrides ``reflex_force``).
    :param kwargs: see :class:`ImpedanceTaskEnv` (``force_limit`` 15 N by default).
    """

    description = ("guide a peg through a planar maze of walls on a table; wall contact above "
                   "the force limit is a violation (Bresa's contact-rich task)")
    action_axes = "xy"
    camera: ClassVar[dict] = {"lookat": (0.5, 0.0, 0.27), "distance": 0.85, "azimuth": 180.0,
                              "elevation": -60.0}

    def __init__(self, *, goal_tolerance: float = 0.03, reflex_force: float = 10.0,
                 start_noise: float = 0.0, max_episode_steps: int = 400,
                 reflex: str | Reflex | None = "limits", limits: LimitsConfig | None = None,
                 **kwargs) -> None:
        if not goal_tolerance > 0:
            raise ValueError(f"goal_tolerance must be > 0 m, got {goal_tolerance}")
        if not reflex_force > 0:
            raise ValueError(f"reflex_force must be > 0 N, got {reflex_force}")
        if not 0 <= start_noise <= 0.03:
            raise ValueError(f"start_noise must be in [0, 0.03] m, got {start_noise}")
        self.goal_tolerance = float(goal_tolerance)
        self.start_noise = float(start_noise)
        walls, waypoints = _layout()
        self._walls = walls
        self.waypoints: np.ndarray = waypoints  # nominal path (x/y); the last one is the goal
        self.waypoints.flags.writeable = False
        self.goal: np.ndarray = waypoints[-1].copy()
        self.start_pos = np.array([*waypoints[0], TABLE_TOP + START_HEIGHT])
        self._seg = np.diff(waypoints, axis=0)
        self._seg_len = np.linalg.norm(self._seg, axis=1)
        self._tail_len = np.concatenate([np.cumsum(self._seg_len[::-1])[::-1][1:], [0.0]])
        if reflex == "limits" and limits is None:
            limits = LimitsConfig(contact_force=reflex_force, q_min=tuple(panda.Q_MIN),
                                  q_max=tuple(panda.Q_MAX))
        super().__init__(max_episode_steps=max_episode_steps, reflex=reflex, limits=limits, **kwargs)
        m = self.model
        self._inner_ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n) for n in INNER_WALLS]
        self._inner_nominal = m.body_pos[self._inner_ids].copy()
        self._remaining = self.path_remaining()

    # -- world ---------------------------------------------------------------------------------
    def _world_xml(self) -> str:
        zc = TABLE_TOP + WALL_HEIGHT / 2
        geoms = [
            f'<geom name="table" type="box" pos="0.5 0 {TABLE_TOP / 2:g}" '
            f'size="0.3 0.4 {TABLE_TOP / 2:g}" rgba="0.55 0.42 0.3 1" contype="1" conaffinity="1"/>'
        ]
        for name, (cx, cy), (hx, hy) in self._walls:
            geom = (f'<geom name="{name}" type="box" size="{hx:.4f} {hy:.4f} {WALL_HEIGHT / 2:g}" '
                    f'rgba="0.2 0.45 0.85 1" contype="1" conaffinity="1" '
                    f'friction="{WALL_FRICTION:g} 0.005 0.0001" priority="1" solref="{WALL_SOLREF}"')
            # Each inner wall is a static body of its own, so a shift moves the body: MuJoCo's
            # collision midphase keeps a per-body bounding-volume tree built at compile time, and
            # a geom moved inside the world body would fall outside it (missed contacts).
            if name in INNER_WALLS:
                geoms.append(f'<body name="{name}" pos="{cx:.4f} {cy:.4f} {zc:.4f}">{geom}/></body>')
            else:
                geoms.append(f'{geom} pos="{cx:.4f} {cy:.4f} {zc:.4f}"/>')
        gx, gy = self.waypoints[-1]
        geoms.append(f'<geom name="goal" type="cylinder" pos="{gx:.4f} {gy:.4f} {TABLE_TOP + 0.001:g}" '
                     f'size="{self.goal_tolerance:g} 0.001" rgba="0.1 0.9 0.2 0.6"/>')
        sx, sy = self.waypoints[0]
        geoms.append(f'<geom name="start" type="cylinder" pos="{sx:.4f} {sy:.4f} {TABLE_TOP + 0.001:g}" '
                     f'size="0.015 0.001" rgba="0.9 0.9 0.2 0.6"/>')
        return "".join(geoms)

    # -- episode -------------------------------------------------------------------------------
    def _reset_task(self, rng: np.random.Generator) -> None:
        shift = self.disturbances.wall_shift
        pos = self._inner_nominal.copy()
        if shift > 0:
            pos[:, :2] += rng.uniform(-shift, shift, size=(len(self._inner_ids), 2))
        self.model.body_pos[self._inner_ids] = pos
        # The arm reset that follows runs mj_forward, which places the moved walls.

    @property
    def wall_offsets(self) -> np.ndarray:
        """Current x/y offsets of the inner walls from their nominal positions [m], shape (2, 2)."""
        return (self.model.body_pos[self._inner_ids] - self._inner_nominal)[:, :2].copy()

    def _start_q(self, rng: np.random.Generator) -> np.ndarray:
        """Posture with the tip at the start (tool down), by inverse kinematics computed once; with
        ``start_noise`` each episode's offset start is solved from the cached nominal posture."""
        q_nominal = self.posture_for(self.start_pos)
        self.controller.q_null[:] = q_nominal  # keep the elbow where the episodes start
        if self.start_noise == 0:
            return q_nominal
        start = self.start_pos.copy()
        start[:2] += rng.uniform(-self.start_noise, self.start_noise, size=2)
        return self.robot.inverse_kinematics(start, DOWN, q0=q_nominal)

    def _reset_arm(self, q: np.ndarray) -> None:
        super()._reset_arm(q)
        self._remaining = self.path_remaining()

    # -- observation and reward ----------------------------------------------------------------
    def _task_obs(self) -> np.ndarray:
        s = self.loop.state
        xy = s.ee_pos[:2]
        waypoint = self.waypoints[self._nearest_segment(xy)[0] + 1]
        return np.concatenate([self.goal - xy, waypoint - xy, s.wrench[:2] / 20.0])

    def _nearest_segment(self, xy: np.ndarray) -> tuple[int, float, float]:
        """Nearest segment of the nominal waypoint polyline to ``xy``: its index, the fraction
        along it of the projection, and the distance to the projection [m]."""
        a = self.waypoints[:-1]
        u = np.clip(np.einsum("ij,ij->i", xy - a, self._seg) / self._seg_len**2, 0.0, 1.0)
        d = np.linalg.norm(xy - (a + u[:, None] * self._seg), axis=1)
        i = int(np.argmin(d))
        return i, float(u[i]), float(d[i])

    def path_remaining(self, xy: np.ndarray | None = None) -> float:
        """Length of the nominal path from ``xy`` (default: the tip) to the goal [m].

        The point is projected onto the nearest segment of the waypoint polyline; the result is
        the distance to that projection plus the path length after it.
        """
        p = self.loop.state.ee_pos[:2] if xy is None else np.asarray(xy, dtype=np.float64)
        i, u, d = self._nearest_segment(p)
        return float(d + (1.0 - u) * self._seg_len[i] + self._tail_len[i])

    @property
    def distance(self) -> float:
        """Distance of the tip to the goal in x/y [m]."""
        return float(np.linalg.norm(self.goal - self.loop.state.ee_pos[:2]))

    def _reward_terms(self, stats: StepStats) -> dict[str, float]:
        remaining = self.path_remaining()
        progress = self._remaining - remaining
        self._remaining = remaining
        return {
            "progress": 100.0 * progress,
            "success": 10.0 if self._is_success() else 0.0,
            "contact": -0.02 * stats.max_contact_force,
        }

    def _is_success(self) -> bool:
        return self.distance < self.goal_tolerance
