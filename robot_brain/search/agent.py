"""The search loop: behaviour as a search over a cognitive graph that changes as it is used.

Why a search and not a trained policy: a maze the agent has never seen, or a corridor that closes
mid-episode, is solved by trying the simplest behaviour first and learning from what happens,
with no training and no map. The loop (:class:`SearchAgent`), one call of :meth:`~SearchAgent.update`
per slow tick:

1. the graph holds visited places, candidate places on a lattice around them (``spacing`` apart,
   anchored at the start: no fixed origin) and transitions with a confidence; candidates are
   optimistic (untried edges get ``untried_weight``);
2. plan: spread activation from the goal and from the candidate places (each seeded with the
   cost of the straight lattice route from it to the goal, i.e. unknown space is assumed free),
   then follow its steepest ascent from the current place: the simplest path;
3. execute its first edge (the setpoint is the next place); success (within ``reach_tolerance``)
   strengthens the edge (Hebbian), marks the place visited and adds the candidates around it;
4. failure (a collision, a reflex intervention reported by the task, no progress for
   ``stall_steps`` steps, or ``edge_timeout`` steps on one edge) weakens the edge
   (anti-Hebbian, pruned below ``prune_below``), stores the failure in a Hebbian memory over the
   harmonic code (so untried edges near it start with less confidence), adds the place actually
   reached if it is a lattice place, returns to where it came from, and replans.

Each failure makes the failed path more expensive, so the paths are enumerated from simple to
complex; the lattice inside the workspace is finite and every failure lowers a confidence, so the
loop ends: at the goal (:data:`REACHED`), with :data:`NO_PATH` when no candidate place is
reachable any more, or with :data:`BUDGET` when ``max_steps`` is spent.

The agent knows only the workspace bounds, its position and the goal; the feedback it needs from
the world is two flags per tick (``collision``, ``intervention``), so any task that can report
them (the point maze's contacts, the arm's reflex interventions) can drive it with setpoints.
:class:`SearchPolicy` adapts it to the :class:`~robot_brain.policies.Policy` protocol for tasks
whose observation holds the position and the goal and whose action is a velocity command.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_brain.params import param, validate

from .graph import CognitiveGraph
from .harmonic import HarmonicCode, HarmonicConfig
from .memory import HebbianMemory

__all__ = ["BUDGET", "NO_PATH", "REACHED", "SEARCHING", "SearchAgent", "SearchConfig", "SearchPolicy"]

SEARCHING = "searching"
REACHED = "reached"
NO_PATH = "no path after exhaustive search"
BUDGET = "budget exhausted"


@dataclass(frozen=True)
class SearchConfig:
    """Options of :class:`SearchAgent` (the ones that matter most first).

    :param spacing: lattice step between candidate places [m]: the size of one behaviour
        primitive. About the corridor width is fastest; smaller resolves narrower gaps but
        multiplies the places to try.
    :param hop_cost: activation decay per hop (``exp(-hop_cost)``); relative to ``-log`` of the
        confidences it sets how long a detour is preferred to retrying a weakened edge.
    :param untried_weight: confidence of an edge never executed (optimism about unknown space).
    :param weaken: factor applied to a failed edge's confidence (anti-Hebbian).
    :param prune_below: confidence under which an edge is dropped; with the defaults an untried
        edge is dropped after one failure, a once-traversed one after two.
    :param generalise: how much a remembered failure lowers the confidence of untried edges near
        it (0 = off); its reach is the harmonic code's kernel width (``code.blur``).
    :param reach_tolerance: distance at which a place counts as reached [m].
    :param goal_tolerance: distance at which the goal counts as reached [m].
    :param stall_steps: ticks without ``progress`` [m] of approach before an edge counts as blocked.
    :param edge_timeout: most ticks one edge may take.
    :param max_steps: the step budget of an episode (then :data:`BUDGET`).
    :param code: the harmonic code of places (periods in metres).
    """

    spacing: float = param(0.5, "lattice step between candidate places", unit="m", low=0.0, low_open=True)
    hop_cost: float = param(1.0, "activation decay per hop (exp(-hop_cost))", low=0.0, low_open=True)
    untried_weight: float = param(0.5, "confidence of an edge never executed", low=0.0, high=1.0,
                                  low_open=True)
    weaken: float = param(0.25, "factor on a failed edge's confidence", low=0.0, high=1.0, low_open=True)
    prune_below: float = param(0.2, "confidence under which an edge is dropped", low=0.0, high=1.0,
                               low_open=True)
    generalise: float = param(0.3, "how much a failure lowers untried edges near it", low=0.0, high=1.0)
    reach_tolerance: float = param(0.1, "distance at which a place counts as reached", unit="m",
                                   low=0.0, low_open=True)
    goal_tolerance: float = param(0.2, "distance at which the goal counts as reached", unit="m",
                                  low=0.0, low_open=True)
    stall_steps: int = param(4, "ticks without progress before an edge is blocked", kind="int", low=1,
                             high=10_000)
    progress: float = param(0.01, "approach per tick that counts as progress", unit="m", low=0.0)
    edge_timeout: int = param(40, "most ticks one edge may take", kind="int", low=1, high=1_000_000)
    max_steps: int = param(20_000, "step budget of an episode", kind="int", low=1, high=100_000_000)
    code: HarmonicConfig = field(default_factory=HarmonicConfig)

    def __post_init__(self) -> None:
        validate(self)
        if self.untried_weight < self.prune_below:
            raise ValueError(f"SearchConfig.untried_weight = {self.untried_weight!r} must be >= "
                             f"prune_below = {self.prune_below!r} (untried edges would start pruned)")
        if not isinstance(self.code, HarmonicConfig):
            raise ValueError(f"SearchConfig.code must be a HarmonicConfig, got {type(self.code).__name__}")


def _as_bounds(bounds: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        low, high = (np.asarray(b, dtype=np.float64).reshape(-1) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be (low, high) corner vectors, got {bounds!r}") from None
    if low.shape != high.shape or not low.size or not (np.isfinite(low).all() and np.isfinite(high).all()) \
            or (high <= low).any():
        raise ValueError(f"bounds must be finite (low, high) with low < high, got {bounds!r}")
    return low, high


class SearchAgent:
    """The search loop (module docstring), driven by positions and failure flags, emitting setpoints.

    :param bounds: the workspace ``(low, high)`` corners [m]; candidate places stay strictly inside.
    :param config: options (default ``SearchConfig()``).
    """

    def __init__(self, bounds: Any, config: SearchConfig | None = None) -> None:
        self.config = cfg = config if config is not None else SearchConfig()
        self.low, self.high = _as_bounds(bounds)
        if self.low.size != cfg.code.dim:
            raise ValueError(f"bounds are {self.low.size}-D but SearchConfig.code.dim is {cfg.code.dim}")
        self.code = HarmonicCode(cfg.code)
        self.status = SEARCHING
        self.goal = np.zeros(self.low.size)

    # -- episode ---------------------------------------------------------------------------------
    def reset(self, position: np.ndarray, goal: np.ndarray) -> None:
        """Start a search from ``position`` to ``goal`` with an empty graph (no training, no map).

        :raises ValueError: a goal outside the workspace (one line).
        """
        cfg = self.config
        pos = self._point(position, "position")
        goal = self._point(goal, "goal")
        if (goal <= self.low).any() or (goal >= self.high).any():
            raise ValueError(f"goal {np.round(goal, 4).tolist()} is outside the workspace "
                             f"{self.low.tolist()}..{self.high.tolist()}")
        self.goal = goal
        self.origin = pos.copy()
        self.graph = CognitiveGraph(self.code, spacing=cfg.spacing, hop_cost=cfg.hop_cost,
                                    prune_below=cfg.prune_below)
        self.failures = HebbianMemory(self.code.size, 1)
        self._lattice: dict[tuple[int, ...], int] = {}
        self._unknown_hop = cfg.hop_cost - math.log(cfg.untried_weight)
        self.status = SEARCHING
        self.steps = 0
        self.edge_attempts = 0
        self.edge_failures = 0
        self.trajectory: list[np.ndarray] = [pos.copy()]
        self._target: int | None = None
        self._returning = False
        self._best = 0.0  # distance to the target at the best approach so far [m]
        self._stalled = 0  # ticks since that approach improved
        self._edge_steps = 0  # ticks on the edge being executed
        self._src = self._node_at(self._index(pos), visited=True)
        self.current = self._src
        goal_index = self._index(goal)
        if np.allclose(self._place(goal_index), goal, atol=1e-6 * cfg.spacing):
            self.goal_node = self._node_at(goal_index)
        else:
            self.goal_node = self.graph.add_node(goal)
        self._expand(self.current)

    def update(self, position: np.ndarray, *, collision: bool = False, intervention: bool = False
               ) -> np.ndarray:
        """One tick: judge the edge being executed from the new ``position`` and the failure flags
        of the last tick, learn from it, replan if needed; returns the setpoint (where to go now).
        After the search has ended the setpoint is the position itself (hold)."""
        pos = self._point(position, "position")
        self.steps += 1
        self.trajectory.append(pos.copy())
        if self.status != SEARCHING:
            return pos
        if np.linalg.norm(pos - self.goal) <= self.config.goal_tolerance:
            self.status = REACHED
            return self.goal.copy()
        if self.steps > self.config.max_steps:
            self.status = BUDGET
            return pos
        if self._target is not None:
            outcome = self._judge(pos, collision or intervention)
            if outcome is None:
                return self.graph.positions[self._target].copy()
            self._learn(pos, outcome)
        return self._next_setpoint(pos)

    # -- internals -------------------------------------------------------------------------------
    def _point(self, value: Any, label: str) -> np.ndarray:
        p = np.asarray(value, dtype=np.float64).reshape(-1)
        if p.shape != self.low.shape or not np.isfinite(p).all():
            raise ValueError(f"{label} must be {self.low.size} finite numbers, got {value!r}")
        return p

    def _index(self, p: np.ndarray) -> tuple[int, ...]:
        return tuple(int(i) for i in np.round((p - self.origin) / self.config.spacing))

    def _place(self, index: tuple[int, ...]) -> np.ndarray:
        return self.origin + np.asarray(index, dtype=np.float64) * self.config.spacing

    def _node_at(self, index: tuple[int, ...], *, visited: bool = False) -> int:
        node = self._lattice.get(index)
        if node is None:
            node = self._lattice[index] = self.graph.add_node(self._place(index), visited=visited)
        elif visited:
            self.graph.mark_visited(node)
        return node

    def _prior(self, a: int, b: int) -> float:
        """Confidence of a new, untried edge: optimistic, less so near remembered failures."""
        cfg = self.config
        mid = 0.5 * (self.graph.positions[a] + self.graph.positions[b])
        near_failure = float(np.clip(self.failures.recall(self.code.encode(mid))[0], 0.0, 1.0))
        return max(cfg.untried_weight * (1.0 - cfg.generalise * near_failure), cfg.prune_below)

    def _expand(self, node: int) -> None:
        """Add the candidate places around a visited ``node`` (inside the workspace) and the goal
        when it is within one hop."""
        cfg, g = self.config, self.graph
        base = self._index(g.positions[node])
        for axis in range(len(base)):
            for step in (-1, 1):
                index = tuple(i + step if k == axis else i for k, i in enumerate(base))
                p = self._place(index)
                if (p <= self.low).any() or (p >= self.high).any():
                    continue
                other = self._node_at(index)
                if not g.has_edge(node, other):
                    g.add_edge(node, other, self._prior(node, other))
        goal_near = np.linalg.norm(g.positions[node] - self.goal) <= cfg.spacing * (1 + 1e-9)
        if goal_near and self.goal_node != node and not g.has_edge(node, self.goal_node):
            g.add_edge(node, self.goal_node, self._prior(node, self.goal_node))

    def _judge(self, pos: np.ndarray, failed: bool) -> bool | None:
        """``True`` when the target is reached, ``False`` when the edge failed, else ``None``."""
        cfg = self.config
        assert self._target is not None
        d = float(np.linalg.norm(pos - self.graph.positions[self._target]))
        if d <= cfg.reach_tolerance:
            return True
        if failed:
            return False
        self._edge_steps += 1
        if d < self._best - cfg.progress:
            self._best, self._stalled = d, 0
        else:
            self._stalled += 1
        return None if self._stalled < cfg.stall_steps and self._edge_steps < cfg.edge_timeout else False

    def _learn(self, pos: np.ndarray, success: bool) -> None:
        g, src, dst = self.graph, self._src, self._target
        assert dst is not None
        self._target = None
        if self._returning:  # back at (or as near as possible to) the place we came from
            self._returning = False
            self.current = src
            return
        mid_key = self.code.encode(0.5 * (g.positions[src] + g.positions[dst]))
        if success:
            if self.failures.recall(mid_key)[0] > 0.5:  # a block that went away: forget it
                self.failures.delete(mid_key)
            g.strengthen(src, dst)
            g.mark_visited(dst)
            self.current = dst
            self._expand(dst)
            return
        self.edge_failures += 1
        g.weaken(src, dst, self.config.weaken)
        self.failures.store(mid_key, 1.0)
        reached = self._index(pos)
        node = self._lattice.get(reached)
        near = np.linalg.norm(self._place(reached) - pos) <= self.config.reach_tolerance
        if near and node not in (src, dst):  # got somewhere else on the way: remember it
            node = self._node_at(reached, visited=True)
            g.add_edge(src, node, 1.0)
            self._expand(node)
            self.current = node
            return
        self._go(src, pos, returning=True)

    def _go(self, target: int, pos: np.ndarray, *, returning: bool = False) -> None:
        self._target = target
        self._returning = returning
        self._best = float(np.linalg.norm(pos - self.graph.positions[target]))
        self._stalled = 0
        self._edge_steps = 0

    def _seeds(self) -> tuple[np.ndarray, np.ndarray]:
        """Unvisited places, each seeded with the cost of the straight lattice route to the goal."""
        g = self.graph
        seeds = np.flatnonzero(~g.visited)
        hops = np.abs(g.positions[seeds] - self.goal).sum(axis=1) / self.config.spacing
        costs = self._unknown_hop * hops
        costs[seeds == self.goal_node] = 0.0
        return seeds, costs

    def _next_setpoint(self, pos: np.ndarray) -> np.ndarray:
        if self._target is not None:  # returning after a failure
            return self.graph.positions[self._target].copy()
        seeds, costs = self._seeds()
        plan = self.graph.plan(self.current, seeds, costs)
        if len(plan.path) < 2:  # no seed reachable (a one-node path would be an unvisited current)
            self.status = NO_PATH
            return pos
        self._src = self.current
        self.edge_attempts += 1
        self._go(int(plan.path[1]), pos)
        return self.graph.positions[int(plan.path[1])].copy()

    def summary(self) -> dict[str, Any]:
        """Status, steps, edge attempts and failures, and the graph's growth statistics."""
        return {"status": self.status, "steps": self.steps, "edge_attempts": self.edge_attempts,
                "edge_failures": self.edge_failures, **self.graph.stats()}


class SearchPolicy:
    """:class:`SearchAgent` as a policy (``reset()``, ``act(obs)``) for a task whose observation
    holds the position and the goal and whose action is a velocity command in [-1, 1].

    Contacts and reflex interventions reach the agent through :meth:`feedback` (call it with each
    step's ``info``); without it the agent still detects blocked edges by the lack of progress.

    :param bounds: the workspace ``(low, high)`` corners [m].
    :param config: the agent's options.
    :param position: slice of the observation holding the position.
    :param goal: slice of the observation holding the goal.
    :param gain: action per metre of distance to the setpoint (saturates at 1).
    """

    def __init__(self, bounds: Any, config: SearchConfig | None = None, *,
                 position: slice = slice(0, 2), goal: slice = slice(4, 6), gain: float = 4.0) -> None:
        if not (math.isfinite(gain) and gain > 0):
            raise ValueError(f"gain must be a positive number, got {gain!r}")
        self.agent = SearchAgent(bounds, config)
        self._pos, self._goal, self.gain = position, goal, float(gain)
        self._started = False
        self._collision = self._intervention = False

    @property
    def status(self) -> str:
        return self.agent.status

    def reset(self) -> None:
        self._started = False
        self._collision = self._intervention = False

    def feedback(self, info: Mapping[str, Any]) -> None:
        """Report what the last step did (``info["collision"]``, ``info["intervention"]`` or
        ``info["reflex"]``); used by the next :meth:`act`."""
        self._collision |= bool(info.get("collision", False))
        self._intervention |= bool(info.get("intervention", False) or info.get("reflex", False))

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        pos = obs[self._pos]
        if not self._started:
            self.agent.reset(pos, obs[self._goal])
            self._started = True
        setpoint = self.agent.update(pos, collision=self._collision, intervention=self._intervention)
        self._collision = self._intervention = False
        return np.clip(self.gain * (setpoint - pos), -1.0, 1.0).astype(np.float32)
