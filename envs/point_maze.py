"""``point-maze``: a 2-D point mass in a procedurally generated continuous maze.

Why a custom integrator and not MuJoCo: the walls are axis-aligned boxes and the body a disc, so
exact swept collision against the boxes is a few vectorised numpy lines (about 0.3 ms a step on
a 9x9 maze, the 8 wall rays included); mazes, and walls closing mid-episode, change without
rebuilding a model.

Maze: ``size x size`` square cells of ``cell_size`` metres; the workspace is
``[0, size * cell_size]^2``. The layout is a perfect maze from a randomised depth-first search
(every cell reachable by exactly one route), then a fraction ``loops`` of the remaining inner
walls is removed (more than one route). ``maze_seed`` fixes the layout; without it each reset
draws a new one from the reset seed. The start is the centre of cell ``(0, 0)``, the goal the
centre of the opposite corner cell. ``block_at_step = K`` closes, after step ``K``, an opening on
the shortest route from the body's cell to the goal that leaves the goal reachable (none is
closed when every opening on the route is a bridge); ``seal_goal`` walls the goal cell in.

Walls: ``vwalls[i, j]`` is the wall on the line ``x = i * cell_size`` along row ``j``
(shape ``(size + 1, size)``), ``hwalls[i, j]`` the wall on the line ``y = j * cell_size`` along
column ``i`` (shape ``(size, size + 1)``); each is a box ``wall_thickness`` thick, long enough to
close the corners. :attr:`PointMazeEnv.wall_boxes` lists them as ``(xlo, ylo, xhi, yhi)`` rows
(for plots; a search agent must not read them).

Dynamics: the action is a velocity command in [-1, 1]^2 (times ``max_speed``) tracked with a time
constant of 0.05 s; one step is 0.1 s in 4 substeps, each moving the disc (radius 0.1 m) along x
then y and stopping it at the first wall in the way (the blocked velocity component is zeroed).

Observation (float64, 14 numbers): position (2) [m], velocity (2) [m/s], goal position (2) [m],
distances to the nearest wall along 8 rays (0, 45, ..., 315 degrees; from the body's centre,
capped at ``ray_range``) [m].

Reward: ``progress`` (decrease of the straight-line distance to the goal, per metre) plus
``success`` (``success_bonus`` on reaching the goal, which ends the episode); ``info`` carries
``is_success``, ``collision`` (a wall stopped the body this step), ``cost`` (1.0 on a collision),
``blocked`` (the mid-episode wall is in place) and ``reward_terms``.

Version history: v0 (initial).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from robot_brain.params import param, validate

__all__ = ["PointMazeConfig", "PointMazeEnv", "generate_maze", "maze_route"]

from .common import check_render, task_config

DT = 0.1  # s, one env step
SUBSTEPS = 4  # collision substeps per step
VELOCITY_TAU = 0.05  # s, time constant of the velocity tracking
RADIUS = 0.1  # m, the body's radius
N_RAYS = 8
Cell = tuple[int, int]


@dataclass(frozen=True)
class PointMazeConfig:
    """Options of ``point-maze`` (layout and dynamics: the module docstring).

    :param size: cells per side (the three benchmark sizes are 5, 7 and 9).
    :param cell_size: side of one cell [m] (the corridor width).
    :param loops: fraction of the inner walls left by the perfect maze that is removed.
    :param maze_seed: seed of a fixed layout; ``None`` draws one from each reset's seed.
    :param max_episode_steps: steps (of 0.1 s) before truncation.
    :param block_at_step: close an opening on the current shortest route after this step
        (``None``: never).
    :param seal_goal: wall the goal cell in (an unreachable goal).
    :param max_speed: speed of a full action [m/s].
    :param goal_radius: distance to the goal's centre that counts as success [m].
    :param success_bonus: reward on reaching the goal.
    :param ray_range: range of the wall sensor's rays [m].
    :param wall_thickness: thickness of the walls [m].
    """

    size: int = param(5, "cells per side", kind="int", low=2, high=50)
    cell_size: float = param(1.0, "side of one cell (corridor width)", unit="m", low=0.3, high=10.0)
    loops: float = param(0.0, "fraction of the remaining inner walls removed (more routes)", low=0.0,
                         high=1.0)
    maze_seed: int | None = param(None, "seed of a fixed layout (None: drawn at each reset)", kind="int",
                                  low=0, high=2**31 - 1, optional=True)
    max_episode_steps: int = param(2000, "steps of 0.1 s before truncation", kind="int", low=1,
                                   high=10_000_000)
    block_at_step: int | None = param(None, "close an opening on the shortest route after this step",
                                      kind="int", low=0, high=10_000_000, optional=True)
    seal_goal: bool = param(False, "wall the goal cell in (unreachable goal)", kind="bool")
    max_speed: float = param(2.0, "speed of a full action", unit="m/s", low=0.0, high=10.0, low_open=True)
    goal_radius: float = param(0.25, "distance to the goal that counts as success", unit="m", low=0.01,
                               high=1.0)
    success_bonus: float = param(10.0, "reward on reaching the goal", low=0.0, high=1000.0)
    ray_range: float = param(2.0, "range of the wall sensor's rays", unit="m", low=0.1, high=100.0)
    wall_thickness: float = param(0.1, "thickness of the walls", unit="m", low=0.01, high=0.2)

    def __post_init__(self) -> None:
        validate(self)
        clearance = self.cell_size - self.wall_thickness - 2 * RADIUS
        if clearance <= 0.05:
            raise ValueError(f"PointMazeConfig.cell_size = {self.cell_size!r} leaves no room for the "
                             f"body between walls {self.wall_thickness!r} thick (needs > "
                             f"{self.wall_thickness + 2 * RADIUS + 0.05:g} m)")


def _neighbors(cell: Cell, size: int) -> list[Cell]:
    x, y = cell
    return [(a, b) for a, b in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1))
            if 0 <= a < size and 0 <= b < size]


def _wall_between(a: Cell, b: Cell) -> tuple[str, int, int]:
    """``("v", i, j)`` or ``("h", i, j)``: the wall separating adjacent cells ``a`` and ``b``."""
    (ax, ay), (bx, by) = a, b
    if ay == by:
        return ("v", max(ax, bx), ay)
    return ("h", ax, max(ay, by))


def generate_maze(size: int, rng: np.random.Generator, loops: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A ``size x size`` maze: randomised depth-first search (a perfect maze: every cell reachable
    by exactly one route), then a fraction ``loops`` of the remaining inner walls removed.

    :returns: ``(vwalls (size + 1, size), hwalls (size, size + 1))`` booleans (module docstring).
    """
    vwalls = np.ones((size + 1, size), dtype=bool)
    hwalls = np.ones((size, size + 1), dtype=bool)
    walls = {"v": vwalls, "h": hwalls}
    seen = np.zeros((size, size), dtype=bool)
    stack: list[Cell] = [(0, 0)]
    seen[0, 0] = True
    while stack:
        cell = stack[-1]
        fresh = [n for n in _neighbors(cell, size) if not seen[n]]
        if not fresh:
            stack.pop()
            continue
        nxt = fresh[int(rng.integers(len(fresh)))]
        kind, i, j = _wall_between(cell, nxt)
        walls[kind][i, j] = False
        seen[nxt] = True
        stack.append(nxt)
    if loops > 0:
        inner = [("v", i, j) for i in range(1, size) for j in range(size) if vwalls[i, j]]
        inner += [("h", i, j) for i in range(size) for j in range(1, size) if hwalls[i, j]]
        count = round(loops * len(inner))
        for k in rng.permutation(len(inner))[:count]:
            kind, i, j = inner[k]
            walls[kind][i, j] = False
    return vwalls, hwalls


def _open(vwalls: np.ndarray, hwalls: np.ndarray, a: Cell, b: Cell) -> bool:
    kind, i, j = _wall_between(a, b)
    return not (vwalls if kind == "v" else hwalls)[i, j]


def maze_route(vwalls: np.ndarray, hwalls: np.ndarray, start: Cell, goal: Cell) -> list[Cell] | None:
    """The shortest route of cells from ``start`` to ``goal`` (breadth-first), or ``None``."""
    size = vwalls.shape[1]
    parent: dict[Cell, Cell] = {start: start}
    frontier = [start]
    while frontier:
        nxt: list[Cell] = []
        for cell in frontier:
            if cell == goal:
                route = [cell]
                while route[-1] != start:
                    route.append(parent[route[-1]])
                return route[::-1]
            for n in _neighbors(cell, size):
                if n not in parent and _open(vwalls, hwalls, cell, n):
                    parent[n] = cell
                    nxt.append(n)
        frontier = nxt
    return None


class PointMazeEnv(gym.Env):
    """Reach the goal of a continuous maze with a point mass (options: :class:`PointMazeConfig`;
    layout, dynamics, observation and reward: the module docstring).

    :param config: the configuration (default ``PointMazeConfig()``).
    :param render_mode: ``"rgb_array"`` (a top-down picture drawn with numpy) or ``None``.
    :param options: fields of ``config`` to change (``PointMazeEnv(size=9, loops=0.1)``).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": round(1.0 / DT)}  # noqa: RUF012

    name: ClassVar[str] = "point-maze"
    env_id: ClassVar[str] = "robot_brain/PointMaze-v0"
    description: ClassVar[str] = "2-D point mass in a generated continuous maze (walls may move mid-episode)"
    config_type: ClassVar[type[PointMazeConfig]] = PointMazeConfig

    def __init__(self, config: PointMazeConfig | None = None, *, render_mode: str | None = None,
                 renderer: str = "auto", width: int = 320, height: int = 240,
                 **options: Any) -> None:
        # ``renderer``, ``width`` and ``height`` are the arm tasks' render options, accepted so
        # the CLI treats every task alike; this task draws its own top-down picture with numpy
        # (80 px per cell, whatever the renderer), so they change nothing once checked.
        self.config = cfg = task_config(self, config, options)
        check_render(render_mode, renderer, width, height)
        self.render_mode = render_mode
        side = cfg.size * cfg.cell_size
        #: the workspace ``(low, high)`` corners [m] (what a search agent may know)
        self.bounds = (np.zeros(2), np.full(2, side))
        self.start_cell: Cell = (0, 0)
        self.goal_cell: Cell = (cfg.size - 1, cfg.size - 1)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        low = np.concatenate([[0.0, 0.0], [-cfg.max_speed] * 2, [0.0, 0.0], np.zeros(N_RAYS)])
        high = np.concatenate([[side, side], [cfg.max_speed] * 2, [side, side],
                               np.full(N_RAYS, cfg.ray_range)])
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float64)
        angles = np.arange(N_RAYS) * 2 * math.pi / N_RAYS
        self._rays = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        self.pos = self.cell_center(self.start_cell)
        self.vel = np.zeros(2)
        self.goal = self.cell_center(self.goal_cell)
        self.blocked_wall: tuple[str, int, int] | None = None
        self._t = 0
        self._new_layout(np.random.default_rng(cfg.maze_seed if cfg.maze_seed is not None else 0))

    # -- maze ------------------------------------------------------------------------------------
    def cell_center(self, cell: Cell) -> np.ndarray:
        """Centre of cell ``(x, y)`` [m]."""
        return (np.asarray(cell, dtype=np.float64) + 0.5) * self.config.cell_size

    def cell_of(self, position: np.ndarray) -> Cell:
        """The cell holding ``position`` (clipped to the maze)."""
        i = np.clip(np.floor(np.asarray(position) / self.config.cell_size), 0, self.config.size - 1)
        return (int(i[0]), int(i[1]))

    def route(self, start: Cell | None = None) -> list[Cell] | None:
        """The shortest route of cells from ``start`` (default: the body's cell) to the goal."""
        return maze_route(self.vwalls, self.hwalls, start or self.cell_of(self.pos), self.goal_cell)

    def _new_layout(self, rng: np.random.Generator) -> None:
        cfg = self.config
        self.vwalls, self.hwalls = generate_maze(cfg.size, rng, cfg.loops)
        if cfg.seal_goal:
            for n in _neighbors(self.goal_cell, cfg.size):
                self._set_wall(_wall_between(self.goal_cell, n), True)
        self._boxes()

    def _set_wall(self, wall: tuple[str, int, int], present: bool) -> None:
        kind, i, j = wall
        (self.vwalls if kind == "v" else self.hwalls)[i, j] = present

    def _boxes(self) -> None:
        """Wall boxes, and the same grown by the body's radius (for collisions)."""
        c, t = self.config.cell_size, self.config.wall_thickness / 2
        vi, vj = np.nonzero(self.vwalls)
        hi, hj = np.nonzero(self.hwalls)
        v = np.stack([vi * c - t, vj * c - t, vi * c + t, (vj + 1) * c + t], axis=1)
        h = np.stack([hi * c - t, hj * c - t, (hi + 1) * c + t, hj * c + t], axis=1)
        self.wall_boxes: np.ndarray = np.concatenate([v, h]).astype(np.float64)
        self._grown = self.wall_boxes + np.array([-RADIUS, -RADIUS, RADIUS, RADIUS])

    def _block_route(self) -> None:
        """Close an opening on the shortest route that keeps the goal reachable (module docstring)."""
        here = self.cell_of(self.pos)
        route = self.route(here)
        if route is None:
            return
        candidates = []
        for a, b in itertools.pairwise(route):
            if max(abs(a[0] - here[0]), abs(a[1] - here[1])) <= 1:  # too close to the body
                continue
            wall = _wall_between(a, b)
            self._set_wall(wall, True)
            if self.route(here) is not None:
                candidates.append(wall)
            self._set_wall(wall, False)
        if candidates:
            self.blocked_wall = candidates[int(self.np_random.integers(len(candidates)))]
            self._set_wall(self.blocked_wall, True)
            self._boxes()

    # -- physics ---------------------------------------------------------------------------------
    def _move(self, delta: np.ndarray) -> bool:
        """Move by ``delta`` along x then y, stopping at walls; returns whether a wall stopped it."""
        hit = False
        for axis in (0, 1):
            d = delta[axis]
            if d == 0.0:
                continue
            other = 1 - axis
            boxes = self._grown
            across = (boxes[:, other] < self.pos[other]) & (self.pos[other] < boxes[:, other + 2])
            p = self.pos[axis]
            if d > 0:
                face = boxes[across, axis]
                face = face[face >= p - 1e-9]
                limit = face.min() - 1e-6 if face.size else np.inf
                new = min(p + d, limit)
            else:
                face = boxes[across, axis + 2]
                face = face[face <= p + 1e-9]
                limit = face.max() + 1e-6 if face.size else -np.inf
                new = max(p + d, limit)
            if new != p + d:
                hit = True
                self.vel[axis] = 0.0
            self.pos[axis] = new
        return hit

    def _ray_distances(self) -> np.ndarray:
        """Distance from the centre to the first wall along each ray (slab test), capped."""
        b = self.wall_boxes
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / self._rays  # (R, 2)
            t1 = (b[None, :, 0:2] - self.pos) * inv[:, None, :]
            t2 = (b[None, :, 2:4] - self.pos) * inv[:, None, :]
        t_near = np.nanmax(np.minimum(t1, t2), axis=2)
        t_far = np.nanmin(np.maximum(t1, t2), axis=2)
        hit = (t_near <= t_far) & (t_far >= 0)
        dist = np.where(hit, np.maximum(t_near, 0.0), np.inf).min(axis=1)
        return np.minimum(dist, self.config.ray_range)

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.pos, self.vel, self.goal, self._ray_distances()])

    # -- gym API ---------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        cfg = self.config
        if cfg.maze_seed is not None:
            self._new_layout(np.random.default_rng(cfg.maze_seed))
        else:
            self._new_layout(np.random.default_rng(int(self.np_random.integers(2 ** 63))))
        self.pos = self.cell_center(self.start_cell)
        self.vel = np.zeros(2)
        self.goal = self.cell_center(self.goal_cell)
        self.blocked_wall = None
        self._t = 0
        self._distance = float(np.linalg.norm(self.goal - self.pos))
        return self._get_obs(), {"is_success": False, "collision": False, "cost": 0.0, "blocked": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        cfg = self.config
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {a.shape}")
        command = np.clip(np.nan_to_num(a, nan=0.0), -1.0, 1.0) * cfg.max_speed  # NaN: hold still
        alpha = 1.0 - math.exp(-DT / SUBSTEPS / VELOCITY_TAU)
        collision = False
        for _ in range(SUBSTEPS):
            self.vel += alpha * (command - self.vel)
            collision |= self._move(self.vel * (DT / SUBSTEPS))
        self._t += 1
        if cfg.block_at_step is not None and self._t == cfg.block_at_step:
            self._block_route()
        distance = float(np.linalg.norm(self.goal - self.pos))
        success = distance <= cfg.goal_radius
        terms = {"progress": self._distance - distance, "success": cfg.success_bonus if success else 0.0}
        self._distance = distance
        info = {"is_success": success, "collision": collision, "cost": 1.0 if collision else 0.0,
                "blocked": self.blocked_wall is not None, "reward_terms": terms}
        truncated = not success and self._t >= cfg.max_episode_steps
        return self._get_obs(), float(sum(terms.values())), success, truncated, info

    @property
    def step_index(self) -> int:
        return self._t

    #: What the CLI prints about the renderer (none: the picture is drawn with numpy).
    renderer_note: str | None = None
    #: What an action is, for ``robot-brain tasks``.
    action_kind: ClassVar[str] = "velocity command"

    def render(self) -> np.ndarray | None:
        """A top-down picture (white floor, black walls, green goal, blue body), 20 px per 0.25 m."""
        if self.render_mode != "rgb_array":
            return None
        scale = 80.0 / self.config.cell_size  # px per metre
        side = round(self.config.size * self.config.cell_size * scale)
        ys, xs = np.mgrid[0:side, 0:side]
        px = (xs + 0.5) / scale
        py = (side - 1 - ys + 0.5) / scale  # y up
        img = np.full((side, side, 3), 255, dtype=np.uint8)
        for xlo, ylo, xhi, yhi in self.wall_boxes:
            img[(px >= xlo) & (px <= xhi) & (py >= ylo) & (py <= yhi)] = (20, 20, 20)
        for centre, r, colour in ((self.goal, self.config.goal_radius, (40, 170, 60)),
                                  (self.pos, RADIUS, (40, 80, 220))):
            img[(px - centre[0]) ** 2 + (py - centre[1]) ** 2 <= r * r] = colour
        return img
