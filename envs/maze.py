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

Blocked route (``reroute=True``, off by default): the first inner wall's gap moves to the other
(-y) end, next to the start, so the corridor the nominal route turns through is closed: the
nominal waypoints now lead up the first corridor into a dead end, and the goal is reached the
other way, along the bottom through both inner walls' gaps and up the third corridor. It is the
arm's "a wall moved to block the learned route" case: a policy that learned (or was handed) the
nominal route fails, one that searches can recover. Everything a policy is told stays nominal --
:attr:`MazeEnv.waypoints`, the next-waypoint observation and the ``progress`` reward's path --
and ``wall_shift`` moves the inner walls about their rerouted places.
:attr:`MazeEnv.bounds` is the free region inside the outer walls (what a planner that does not
know the inner walls may plan over).

Version history: v0 (initial; the next-waypoint observation and the progress scale of 100 per
metre were added before the first release, for the shielded-training benchmark; the ``reroute``
option was added later without a version bump: it is off by default, the observation and
everything with default options are unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import mujoco
import numpy as np

from robot_brain.params import param
from robot_brain.render import Camera
from robot_brain.runtime import StepStats

from .base import DOWN, ImpedanceTaskEnv, TaskConfig
from .world import TABLE_TOP, table_xml

__all__ = ["MazeConfig", "MazeEnv"]

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


def _layout(reroute: bool = False) -> tuple[list[tuple[str, tuple[float, float], tuple[float, float]]],
                                            np.ndarray]:
    """Walls as ``(name, centre xy, half-size xy)`` and the nominal waypoints (tip x/y).

    ``reroute``: the first inner wall's gap is at the -y end (like the second's) instead of +y,
    which blocks the nominal route; the waypoints stay the nominal ones.
    """
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
        ("wall_inner1", (x0 + pitch, (y1 - inner_len / 2) if reroute else (y0 + inner_len / 2)),
         (t, inner_len / 2)),
        ("wall_inner2", (x0 + 2 * pitch, y1 - inner_len / 2), (t, inner_len / 2)),
    ]
    yl, yh = y0 + t + CORRIDOR / 2, y1 - t - CORRIDOR / 2  # turn points: centred in the gaps
    cx = [x0 + pitch / 2, x0 + 1.5 * pitch, x0 + 2.5 * pitch]  # corridor centre lines
    waypoints = np.array([
        (cx[0], yl), (cx[0], yh), (cx[1], yh), (cx[1], yl), (cx[2], yl), (cx[2], yh),
    ])
    return walls, waypoints


@dataclass(frozen=True)
class MazeConfig(TaskConfig):
    """Options of ``maze`` (besides :class:`TaskConfig`'s).

    :param goal_tolerance: success distance in x/y [m].
    :param start_noise: largest random offset of the start position in x/y [m] (0: fixed start).
    :param reroute: block the nominal route and open another (module docstring); policies are
        not told (the waypoints, observation and progress reward stay nominal).
    """

    goal_tolerance: float = param(0.03, "success distance in x/y", low=0.0, high=0.1, unit="m",
                                  low_open=True)
    start_noise: float = param(0.0, "largest random offset of the start in x/y", low=0.0,
                               high=0.03, unit="m")
    reflex_force: float = param(10.0, "contact force at which the hard-limit reflex retreats "
                                "(below the 15 N force limit)", low=0.0, high=200.0, unit="N",
                                low_open=True)
    # The scripted policy needs ~200 steps at ~1100 N/m, a 250 N/m arm ~370.
    max_episode_steps: int = param(400, "steps before truncation", kind="int", low=1, high=1_000_000)
    reroute: bool = param(False, "move the first inner wall's gap to the other end: the nominal "
                          "route is blocked, the goal is reached another way (the waypoints stay "
                          "nominal)", kind="bool")


class MazeEnv(ImpedanceTaskEnv):
    """Planar peg maze on a table with variable-impedance x/y actions (see module docstring;
    options: :class:`MazeConfig`)."""

    name: ClassVar[str] = "maze"
    env_id: ClassVar[str] = "robot_brain/Maze-v0"
    description: ClassVar[str] = ("guide a peg through a planar maze of walls on a table; wall contact "
                                  "above the force limit is a violation (Bresa's contact-rich task)")
    config_type: ClassVar[type[TaskConfig]] = MazeConfig
    config: MazeConfig
    action_axes: ClassVar[str] = "xy"
    camera: ClassVar[Camera] = Camera(lookat=(0.5, 0.0, 0.27), distance=0.85, azimuth=180.0,
                                      elevation=-60.0)

    def __init__(self, config: MazeConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        m = self.model
        self._inner_ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n) for n in INNER_WALLS]
        self._inner_nominal = m.body_pos[self._inner_ids].copy()
        self._remaining = self.path_remaining()

    def _init_task(self) -> None:
        walls, waypoints = _layout(self.config.reroute)
        self._walls = walls
        self.waypoints: np.ndarray = waypoints  # nominal path (x/y); the last one is the goal
        self.waypoints.flags.writeable = False
        self.goal: np.ndarray = waypoints[-1].copy()
        self.start_pos = np.array([*waypoints[0], TABLE_TOP + START_HEIGHT])
        self._seg = np.diff(waypoints, axis=0)
        self._seg_len = np.linalg.norm(self._seg, axis=1)
        self._tail_len = np.concatenate([np.cumsum(self._seg_len[::-1])[::-1][1:], [0.0]])
        self._progress = 0.0  # path covered during the last step [m] (set by _update)
        self._remaining = 0.0  # nominal path left to the goal [m] (set at reset and by _update)

    # -- world ---------------------------------------------------------------------------------
    def _world_xml(self) -> str:
        zc = TABLE_TOP + WALL_HEIGHT / 2
        geoms = [table_xml()]
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
                     f'size="{self.config.goal_tolerance:g} 0.001" rgba="0.1 0.9 0.2 0.6"/>')
        sx, sy = self.waypoints[0]
        geoms.append(f'<geom name="start" type="cylinder" pos="{sx:.4f} {sy:.4f} {TABLE_TOP + 0.001:g}" '
                     f'size="0.015 0.001" rgba="0.9 0.9 0.2 0.6"/>')
        return "".join(geoms)

    # -- episode -------------------------------------------------------------------------------
    def _reset_task(self, rng: np.random.Generator) -> None:
        shift = self.config.disturbances.wall_shift
        pos = self._inner_nominal.copy()
        if shift > 0:
            pos[:, :2] += rng.uniform(-shift, shift, size=(len(self._inner_ids), 2))
        self.model.body_pos[self._inner_ids] = pos
        # The arm reset that follows runs mj_forward, which places the moved walls.

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The free region inside the outer walls in x/y, ``(low, high)`` corners [m]: the maze's
        workspace for a planner that does not know the inner walls (the peg tip must stay
        ``PEG_RADIUS`` inside it)."""
        t = WALL_THICKNESS / 2
        return np.array(MAZE_LOW) + t, np.array(MAZE_HIGH) - t

    @property
    def wall_offsets(self) -> np.ndarray:
        """Current x/y offsets of the inner walls from their nominal positions [m], shape (2, 2)."""
        return (self.model.body_pos[self._inner_ids] - self._inner_nominal)[:, :2].copy()

    def _start_q(self, rng: np.random.Generator) -> np.ndarray:
        """Posture with the tip at the start (tool down), by inverse kinematics computed once; with
        ``start_noise`` each episode's offset start is solved from the cached nominal posture."""
        q_nominal = self.posture_for(self.start_pos)
        self.controller.q_null[:] = q_nominal  # keep the elbow where the episodes start
        noise = self.config.start_noise
        if noise == 0:
            return q_nominal
        start = self.start_pos.copy()
        start[:2] += rng.uniform(-noise, noise, size=2)
        return self.robot.inverse_kinematics(start, DOWN, q0=q_nominal)

    def _reset_arm(self, q: np.ndarray) -> None:
        super()._reset_arm(q)
        self._remaining = self.path_remaining()

    # -- observation and reward ----------------------------------------------------------------
    def _task_obs(self) -> np.ndarray:
        s = self.state
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
        p = self.state.ee_pos[:2] if xy is None else np.asarray(xy, dtype=np.float64)
        i, u, d = self._nearest_segment(p)
        return float(d + (1.0 - u) * self._seg_len[i] + self._tail_len[i])

    @property
    def distance(self) -> float:
        """Distance of the tip to the goal in x/y [m]."""
        return float(np.linalg.norm(self.goal - self.state.ee_pos[:2]))

    def _update(self, stats: StepStats) -> None:
        remaining = self.path_remaining()
        self._progress = self._remaining - remaining
        self._remaining = remaining

    def _reward_terms(self, stats: StepStats) -> dict[str, float]:
        return {
            "progress": 100.0 * self._progress,
            "success": 10.0 if self._is_success() else 0.0,
            "contact": -0.02 * stats.max_contact_force,
        }

    def _is_success(self) -> bool:
        return self.distance < self.config.goal_tolerance
