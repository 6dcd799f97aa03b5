"""The search on the arm ``maze``: the cognitive-graph agent drives the peg through the impedance
action, and every reflex intervention and wall contact is an edge failure.

Why an adapter of its own: the arm's action is not a velocity but a variable-impedance command
(``[dx, dy, kx, ky]``: a target displacement of at most ``max_step`` per slow tick and a
stiffness), and the arm's failures come from the two-rate loop (the fast-tick reflex retreating
from a contact) rather than from a contact flag. So each slow tick :class:`MazeSearchPolicy`

- plans in the table plane over the maze's workspace (``env.bounds``: the free region inside the
  outer walls, shrunk by the peg's radius and a margin) -- never over the inner walls, which it
  learns by touch;
- turns the agent's setpoint into the normalised displacement ``clip((setpoint - tip) /
  max_step)``, soft on an edge never tried (``probe_stiffness``: a wall met there is pressed with
  less than the reflex force) and stiffer, so faster, on an edge it has traversed or is backing
  off along (``stiffness``: the scripted policy's);
- reports, through :meth:`MazeSearchPolicy.feedback`, every reflex intervention onset
  (``info["interventions"] > 0``) as ``intervention=True`` and a wall pushing back against the
  commanded motion (``info["contact_force"]`` and the end-of-step reaction against the heading
  above ``contact_force``) as ``collision=True``: both fail the edge being executed, so the agent
  weakens it and tries another way.

It reads from the env only what a robot would be told (the workspace corners, the goal, the step
size, its own tip position and contact wrench) -- not the waypoints, not the walls -- and imports
nothing from the task package (the search layer stays below the tasks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .agent import SearchAgent, SearchConfig
from .harmonic import HarmonicConfig

__all__ = ["MAZE_SEARCH", "PEG_RADIUS", "MazeSearchPolicy", "maze_policy"]

#: The agent's options for the arm maze (corridors 7 cm wide between 2 cm walls on a 9 cm pitch,
#: the tip starting on the first corridor's centre line 3.5 cm from the outer wall).
#:
#: - ``spacing`` 2.25 cm, anchored at the start: 4 lattice steps per corridor pitch, so each
#:   corridor centre line is a column and a wall blocks one or two columns; and the lattice has a
#:   row 1 cm from the outer walls at both ends (-14.75 and +14.5 cm), so a gap narrowed to 4 cm by
#:   ``wall_shift = 0.03`` (2 cm of free band for the peg centre) still has a row through it. At
#:   3 cm such gaps fell between rows (2 of 6 shifted mazes unsolved); at 2 cm every free
#:   corridor holds four columns to wander.
#: - ``reach_tolerance`` 8 mm: the impedance loop settles the tip to a few mm of its target;
#:   ``goal_tolerance`` 2 cm: inside the task's 3 cm.
#: - ``progress`` 2 mm in ``stall_steps`` 6 ticks: a free edge moves 3-6 mm a tick, but turning
#:   round from full speed takes a few ticks, which with 3 mm in 4 ticks failed free edges.
#: - the harmonic code's periods scaled to the 25 x 32 cm maze, so a remembered failure
#:   generalises over about one lattice step, not the whole maze.
MAZE_SEARCH = SearchConfig(
    spacing=0.0225, reach_tolerance=0.008, goal_tolerance=0.02, progress=0.002, stall_steps=6,
    edge_timeout=25, max_steps=100_000,
    code=HarmonicConfig(min_period=0.05, max_period=1.0),
)

PEG_RADIUS = 0.01  # m, the maze peg's radius (robot_brain.envs.panda.PEG_RADIUS; not imported here)


def _stiffness_action(value: Any, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1.0 <= value <= 1.0:
        raise ValueError(f"{label} must be a normalised action in [-1, 1], got {value!r}")
    return float(value)


class MazeSearchPolicy:
    """:class:`SearchAgent` driving the arm ``maze`` with impedance actions (module docstring).

    Use it as a policy (``reset()``, ``act(obs)``) and call :meth:`feedback` with every step's
    ``info`` (the rollout runner does); without feedback the agent still finds blocked edges by
    the lack of progress, only slower and pressing longer.

    :param env: the maze task (possibly wrapped): it must have ``bounds`` (the workspace corners in
        x/y), ``goal``, ``config.max_step`` and ``state`` (``ee_pos``, ``wrench``).
    :param config: the agent's options (default :data:`MAZE_SEARCH`).
    :param probe_stiffness: normalised stiffness action of both axes on an edge never traversed
        (0 -> ~450 N/m: a full 2 cm step pressed into a wall is ~9 N, under the maze's 10 N reflex
        force; stiffer probing met walls at 11-14 N, each a reflex intervention).
    :param stiffness: the same on an edge already traversed, and backing off after a failure
        (0.6 -> ~1100 N/m, the scripted policy's: ~5 mm a tick against ~3.4 at 0).
    :param contact_force: the wall reaction against the commanded motion above which a step
        counts as a wall contact (an edge failure) [N]; ``inf`` reports reflex interventions only.
    :param margin: clearance kept between the peg and the outer walls [m] (the agent plans over
        ``bounds`` shrunk by the peg radius plus this).
    """

    def __init__(self, env: Any, config: SearchConfig | None = None, *, probe_stiffness: float = 0.0,
                 stiffness: float = 0.6, contact_force: float = 3.0, margin: float = 0.002) -> None:
        self.probe_stiffness = _stiffness_action(probe_stiffness, "probe_stiffness")
        self.stiffness = _stiffness_action(stiffness, "stiffness")
        if isinstance(contact_force, bool) or not isinstance(contact_force, (int, float)) \
                or math.isnan(contact_force) or contact_force <= 0:
            raise ValueError(f"contact_force must be a positive number of newtons, got {contact_force!r}")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0.0 <= margin < 0.05:
            raise ValueError(f"margin must be in [0, 0.05) m, got {margin!r}")
        task = getattr(env, "unwrapped", env)
        missing = [name for name in ("bounds", "goal", "config", "state") if not hasattr(task, name)]
        if missing:
            raise ValueError(f"the maze search needs the task's {', '.join(missing)}; "
                             f"{type(task).__name__} has none")
        low, high = (np.asarray(b, dtype=np.float64)[:2] for b in task.bounds)
        inset = PEG_RADIUS + float(margin)
        self.bounds = (low + inset, high - inset)
        self.task = task
        self.agent = SearchAgent(self.bounds, config if config is not None else MAZE_SEARCH)
        self.contact_force = float(contact_force)
        self._heading = np.zeros(2)  # unit direction of the last commanded displacement
        self._started = False
        self._collision = self._intervention = False
        self.collisions = 0  # steps reported as wall contacts this episode
        self.interventions = 0  # steps with reflex intervention onsets this episode

    @property
    def status(self) -> str:
        """The search's status (``"searching"``, ``"reached"``, ``NO_PATH``, ``BUDGET``)."""
        return self.agent.status

    def reset(self) -> None:
        """A new episode: the agent restarts from an empty graph at the next :meth:`act` (no map
        carried over: the walls may have moved)."""
        self._started = False
        self._collision = self._intervention = False
        self._heading = np.zeros(2)
        self.collisions = self.interventions = 0

    def feedback(self, info: Mapping[str, Any]) -> None:
        """Report what the last step did: reflex intervention onsets (``info["interventions"]``)
        and wall contacts (``info["contact_force"]``, read with the reaction on the tool now)
        become the agent's ``intervention`` / ``collision`` flags at the next :meth:`act`."""
        intervention = float(info.get("interventions", 0) or 0) > 0 or bool(info.get("intervention", False))
        # A contact fails the edge only when the wall pushes back against the commanded motion:
        # the reaction left over from the last contact while the peg backs off or slides along a
        # wall is not a new block (counting it failed free edges and ended the search early).
        push_back = -float(np.dot(np.asarray(self.task.state.wrench, dtype=np.float64)[:2], self._heading))
        collision = (float(info.get("contact_force", 0.0) or 0.0) > self.contact_force
                     and push_back > self.contact_force)
        self._intervention |= intervention
        self._collision |= collision
        self.interventions += int(intervention)
        self.collisions += int(collision)

    def _on_known_edge(self) -> bool:
        """Whether the edge being executed has been traversed before, or is the way back after a
        failure (so no wall is expected on it)."""
        agent = self.agent
        target = getattr(agent, "_target", None)
        if agent.status != "searching" or target is None:
            return True
        return bool(getattr(agent, "_returning", False)) or agent.graph.weight(agent._src, target) >= 1.0

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The impedance action toward the agent's setpoint (``obs`` is not read: the tip and the
        goal come from the task, as for the scripted policies)."""
        task = self.task
        tip = np.asarray(task.state.ee_pos, dtype=np.float64)[:2]
        if not self._started:
            self.agent.reset(tip, np.asarray(task.goal, dtype=np.float64)[:2])
            self._started = True
        setpoint = self.agent.update(tip, collision=self._collision, intervention=self._intervention)
        self._collision = self._intervention = False
        delta = setpoint - tip
        dist = float(np.linalg.norm(delta))
        self._heading = delta / dist if dist > 1e-9 else np.zeros(2)
        a = np.full(4, self.stiffness if self._on_known_edge() else self.probe_stiffness, dtype=np.float32)
        a[:2] = np.clip(delta / float(task.config.max_step), -1.0, 1.0)
        return a

    def summary(self) -> dict[str, Any]:
        """The agent's summary plus the contacts and interventions fed back this episode."""
        return {**self.agent.summary(), "collisions_fed": self.collisions,
                "interventions_fed": self.interventions}


def maze_policy(env: Any, config: SearchConfig | None = None) -> MazeSearchPolicy:
    """``--policy search`` on the arm ``maze`` (a ``SEARCHERS`` factory): :class:`MazeSearchPolicy`
    with :data:`MAZE_SEARCH`."""
    return MazeSearchPolicy(env, config)
