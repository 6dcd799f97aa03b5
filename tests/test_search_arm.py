"""The search on the arm ``maze`` (robot_brain.search.arm) and the maze's ``reroute`` option.

What is checked: ``reroute`` blocks the nominal route and opens another while everything a policy
is told (waypoints, goal, observation) stays nominal and the default maze is unchanged; the
nominal-route follower then fails where the search, untrained and not told the walls, reaches the
goal without a contact-force violation; a reflex intervention reaches the agent as an edge
failure; a contact left over while backing off does not.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from robot_brain.envs import make
from robot_brain.envs.maze import MazeEnv
from robot_brain.policies.scripted import ScriptedMaze
from robot_brain.search.arm import MAZE_SEARCH, MazeSearchPolicy, maze_policy

STEPS = 1600  # the search needs ~1100 steps on the rerouted maze (the task's default limit is 400)


def _episode(env: Any, policy: Any, seed: int = 0) -> dict[str, Any]:
    obs, _ = env.reset(seed=seed)
    policy.reset()
    feedback = getattr(policy, "feedback", None)
    while True:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        if feedback is not None:
            feedback(info)
        if terminated or truncated:
            return env.unwrapped.episode.as_dict()


# -- the reroute option ------------------------------------------------------------------------
def _inner(env: MazeEnv) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {name: (env.model.body(name).pos[:2].copy(), env.model.geom(name).size[:2].copy())
            for name in ("wall_inner1", "wall_inner2")}


def test_default_maze_layout_is_unchanged():
    """The default walls are where they always were (pinned numbers), and ``reroute=False`` is
    the same world as no option at all."""
    env = make("maze").unwrapped
    walls = _inner(env)
    np.testing.assert_allclose(walls["wall_inner1"][0], [0.455, -0.04], atol=1e-9)
    np.testing.assert_allclose(walls["wall_inner2"][0], [0.545, 0.04], atol=1e-9)
    np.testing.assert_allclose(walls["wall_inner1"][1], [0.01, 0.13], atol=1e-9)
    assert env._world_xml() == make("maze", reroute=False).unwrapped._world_xml()
    assert not env.config.reroute


def test_reroute_moves_the_first_gap_and_keeps_what_policies_are_told():
    nominal = make("maze").unwrapped
    env = make("maze", reroute=True).unwrapped
    moved, kept = _inner(env), _inner(nominal)
    # The first inner wall now runs from the +y outer wall, leaving its gap at -y next to the
    # start (like the second's); the second wall is where it was.
    np.testing.assert_allclose(moved["wall_inner1"][0], [0.455, 0.04], atol=1e-9)
    np.testing.assert_allclose(moved["wall_inner2"][0], kept["wall_inner2"][0])
    np.testing.assert_array_equal(env.waypoints, nominal.waypoints)
    np.testing.assert_array_equal(env.goal, nominal.goal)
    # The nominal turn from the first corridor into the second now crosses the wall.
    (x, y), (_, hy) = moved["wall_inner1"]
    turn = nominal.waypoints[1:3]  # (cx0, yh) -> (cx1, yh)
    assert y - hy < turn[0, 1] < y + hy and turn[0, 0] < x < turn[1, 0]
    obs_n, _ = nominal.reset(seed=0)
    obs_r, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs_r, obs_n, atol=1e-9)  # the same start and observation
    low, high = env.bounds
    np.testing.assert_allclose(low, [0.375, -0.16])
    np.testing.assert_allclose(high, [0.625, 0.16])


def test_wall_shift_moves_the_rerouted_walls_about_their_new_places():
    env = make("maze", reroute=True, disturbances={"wall_shift": 0.03}).unwrapped
    env.reset(seed=1)
    off = env.wall_offsets
    assert np.any(np.abs(off) > 1e-3) and np.all(np.abs(off) <= 0.03)
    np.testing.assert_allclose(env.model.body("wall_inner1").pos[:2], np.array([0.455, 0.04]) + off[0],
                               atol=1e-9)


# -- search against the nominal follower -------------------------------------------------------
def test_on_the_rerouted_maze_the_nominal_follower_fails_and_the_search_reaches_the_goal():
    env = make("maze", reroute=True, max_episode_steps=STEPS)
    scripted = _episode(env, ScriptedMaze(env.unwrapped))
    assert not scripted["success"]  # it presses into the closed turn until truncated
    policy = MazeSearchPolicy(env)
    search = _episode(env, policy)
    assert search["success"] and policy.status == "searching"  # the task ended it at 3 cm
    # Measured: 0 violations (max contact force ~12 N: the reflex retreats at 10 N), ~30
    # reflex interventions, each fed back as an edge failure.
    assert search["violations"] == 0
    assert search["max_contact_force"] < env.unwrapped.config.force_limit
    summary = policy.summary()
    assert summary["edge_failures"] > 0 and summary["pruned_edges"] > 0  # it learned walls by touch
    assert policy.interventions == search["interventions"]


def test_search_policy_does_not_read_the_walls():
    """The agent's workspace is the outer walls' inside, shrunk by the peg; no node of its graph
    is placed from the inner walls (the lattice is anchored at the start)."""
    env = make("maze", reroute=True)
    policy = maze_policy(env)
    low, high = env.unwrapped.bounds
    np.testing.assert_allclose(policy.bounds[0], low + 0.012)
    np.testing.assert_allclose(policy.bounds[1], high - 0.012)
    assert policy.agent.config is MAZE_SEARCH


# -- feedback ---------------------------------------------------------------------------------
def test_a_reflex_intervention_fails_the_edge_being_executed():
    """Probing stiffly (2000 N/m: ~40 N against a wall) with contact reports off, the first
    reflex retreat is what fails the edge: on the very next tick the agent counts a failure and
    the edge it was executing is weakened (an untried edge: pruned)."""
    env = make("maze", max_episode_steps=200)
    policy = MazeSearchPolicy(env, probe_stiffness=1.0, stiffness=1.0, contact_force=float("inf"))
    obs, _ = env.reset(seed=0)
    policy.reset()
    agent = policy.agent
    for _ in range(200):
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        edge, failures = (agent._src, agent._target), agent.edge_failures
        policy.feedback(info)
        if info["interventions"] > 0 and edge[1] is not None and not agent._returning:
            break
        assert not (terminated or truncated)
    else:
        pytest.fail("no reflex intervention while probing stiffly")
    assert policy.collisions == 0  # contact reports are off: the reflex is the only signal
    weight = agent.graph.weight(*edge)
    policy.act(obs)
    assert agent.edge_failures == failures + 1
    assert agent.graph.weight(*edge) < weight
    assert agent.graph.weight(*edge) < agent.graph.prune_below


class _StubTask:
    """Just what MazeSearchPolicy reads from a task (for feedback without physics)."""

    def __init__(self) -> None:
        self.bounds = (np.array([0.0, 0.0]), np.array([0.3, 0.3]))
        self.goal = np.array([0.25, 0.25])
        self.config = SimpleNamespace(max_step=0.02)
        self.state = SimpleNamespace(ee_pos=np.array([0.05, 0.05, 0.1]), wrench=np.zeros(6))

    @property
    def unwrapped(self) -> _StubTask:
        return self


def test_only_a_wall_pushing_against_the_motion_counts_as_a_collision():
    task = _StubTask()
    policy = MazeSearchPolicy(task)
    action = policy.act(np.zeros(12))
    heading = action[:2] / np.linalg.norm(action[:2])
    assert np.all(np.abs(action[:2]) <= 1.0) and action[2] == action[3] == policy.probe_stiffness
    task.state.wrench = np.array([*(5.0 * heading), 0, 0, 0, 0])  # pushed along: backing off
    policy.feedback({"contact_force": 5.0, "interventions": 0})
    assert policy.collisions == 0
    task.state.wrench = np.array([*(-5.0 * heading), 0, 0, 0, 0])  # pushed back: a wall ahead
    policy.feedback({"contact_force": 5.0, "interventions": 0})
    policy.feedback({"contact_force": 0.0, "interventions": 2})
    assert policy.collisions == 1 and policy.interventions == 1
    failures = policy.agent.edge_failures
    policy.act(np.zeros(12))
    assert policy.agent.edge_failures == failures + 1


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"probe_stiffness": 2.0}, "probe_stiffness"), ({"stiffness": -1.5}, "stiffness"),
    ({"contact_force": 0.0}, "contact_force"), ({"contact_force": float("nan")}, "contact_force"),
    ({"margin": -0.01}, "margin"),
])
def test_bad_options_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MazeSearchPolicy(_StubTask(), **kwargs)


def test_a_task_without_a_workspace_is_refused():
    with pytest.raises(ValueError, match="bounds"):
        MazeSearchPolicy(SimpleNamespace(goal=np.zeros(2), config=None, state=None))
