"""robot_brain.search: the harmonic code's properties, the Hebbian memory, planning on known
graphs, and the search loop solving mazes it has never seen (no training, no map)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from robot_brain.envs.point_maze import PointMazeEnv, maze_route
from robot_brain.search import (
    BUDGET,
    NO_PATH,
    REACHED,
    CognitiveGraph,
    HarmonicCode,
    HarmonicConfig,
    HebbianMemory,
    SearchAgent,
    SearchConfig,
    SearchPolicy,
)
from robot_brain.search.bench import run_episode, run_scale

# -- the harmonic code ---------------------------------------------------------------------------


def test_similarity_depends_only_on_displacement():
    code = HarmonicCode()
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = rng.uniform(-3, 3, size=2)
        xs = rng.uniform(-50, 50, size=(30, 2))
        sims = code.similarity(code.encode(xs), code.encode(xs + d))
        assert np.ptp(sims) < 1e-9
        assert sims[0] == pytest.approx(float(code.kernel(d)), abs=1e-9)
    assert code.similarity(code.encode([1.0, 2.0]), code.encode([1.0, 2.0])) == pytest.approx(1.0)


def test_kernel_peaks_at_zero_and_decays_with_distance():
    code = HarmonicCode()
    far = code.kernel(np.array([[3.0, 0.0], [0.0, 4.0], [2.5, -2.5]]))
    near = code.kernel(np.array([[0.05, 0.0], [0.0, 0.05]]))
    assert (near > 0.9).all() and (np.abs(far) < 0.5).all()


def test_relative_composition_is_a_phase_rotation():
    code = HarmonicCode(HarmonicConfig(blur=0.0))
    rng = np.random.default_rng(1)
    x, d = rng.normal(size=2) * 5, rng.normal(size=2) * 3
    assert np.allclose(code.shift(code.encode(x), d), code.encode(x + d))
    assert np.allclose(code.encode(x) * code.encode(d), code.encode(x + d))
    assert np.allclose(np.abs(code.encode(x)), 1.0)  # unit modulus


def test_blur_widens_the_kernel():
    crisp, soft = HarmonicCode(), HarmonicCode().with_blur(0.3)
    d = np.array([0.4, 0.0])
    assert soft.kernel(d) > crisp.kernel(d) + 0.1


def test_code_in_three_dimensions_is_shift_invariant_too():
    code = HarmonicCode(HarmonicConfig(dim=3))
    x = np.random.default_rng(2).normal(size=(10, 3))
    sims = code.similarity(code.encode(x), code.encode(x + np.array([0.3, -0.2, 0.1])))
    assert np.ptp(sims) < 1e-9


def test_bad_code_options_are_one_line():
    with pytest.raises(ValueError, match="max_period") as e:
        HarmonicConfig(min_period=2.0, max_period=1.0)
    assert "\n" not in str(e.value)


# -- the Hebbian memory --------------------------------------------------------------------------


def test_hebbian_store_recall_and_anti_hebbian_delete():
    code = HarmonicCode()
    memory = HebbianMemory(code.size, 3)
    places = {(0.0, 0.0): [1.0, 0.0, 0.0], (5.0, 1.0): [0.0, 2.0, 0.0], (-3.0, 4.0): [0.0, 0.0, -1.0]}
    for x, v in places.items():
        memory.store(code.encode(np.array(x)), v)
    for x, v in places.items():
        assert np.allclose(memory.recall(code.encode(np.array(x))), v, atol=0.2)
    key = code.encode(np.array([5.0, 1.0]))
    memory.delete(key)
    assert np.allclose(memory.recall(key), 0.0, atol=1e-9)
    # the others survive the deletion
    assert np.allclose(memory.recall(code.encode(np.array([0.0, 0.0]))), [1, 0, 0], atol=0.25)
    assert np.allclose(memory.recall(code.encode(np.array([-3.0, 4.0]))), [0, 0, -1], atol=0.25)


def test_memory_generalises_to_near_keys_only():
    code = HarmonicCode()
    memory = HebbianMemory(code.size, 1)
    memory.store(code.encode(np.array([2.0, 2.0])), 1.0)
    assert memory.recall(code.encode(np.array([2.05, 2.0])))[0] > 0.9
    assert abs(memory.recall(code.encode(np.array([7.0, -3.0])))[0]) < 0.3


# -- the cognitive graph -------------------------------------------------------------------------


def _grid(n: int, blocked: set[tuple[int, int]] = frozenset()) -> CognitiveGraph:
    g = CognitiveGraph(HarmonicCode(), spacing=1.0)
    for i in range(n * n):
        g.add_node(np.array([i % n, i // n], dtype=float))
    for i in range(n * n):
        for j in ([i + 1] if i % n + 1 < n else []) + ([i + n] if i // n + 1 < n else []):
            if (i, j) not in blocked:
                g.add_edge(i, j)
    return g


def _bfs(g: CognitiveGraph, a: int, b: int) -> int:
    dist = {a: 0}
    frontier = [a]
    while frontier:
        nxt = []
        for u in frontier:
            for v in g.neighbors(u):
                if int(v) not in dist:
                    dist[int(v)] = dist[u] + 1
                    nxt.append(int(v))
        frontier = nxt
    return dist.get(b, -1)


def test_planning_finds_the_fewest_hops_on_known_graphs():
    rng = np.random.default_rng(3)
    n = 8
    edges = [(i, j) for i in range(n * n) for j in ([i + 1] if i % n + 1 < n else []) + (
        [i + n] if i // n + 1 < n else [])]
    blocked = {edges[k] for k in rng.choice(len(edges), size=30, replace=False)}
    g = _grid(n, blocked)
    for a, b in rng.integers(0, n * n, size=(20, 2)):
        plan = g.shortest_path(int(a), int(b))
        expected = _bfs(g, int(a), int(b))
        if expected < 0:
            assert not plan.found and plan.cost == np.inf
            continue
        assert len(plan.path) - 1 == expected
        assert plan.path[0] == a and plan.path[-1] == b
        assert all(g.has_edge(int(u), int(v)) for u, v in itertools.pairwise(plan.path))


def test_a_weakened_edge_makes_the_plan_take_a_detour_and_pruning_removes_it():
    g = _grid(3)  # 0 1 2 / 3 4 5 / 6 7 8
    assert list(g.shortest_path(0, 2).path) == [0, 1, 2]
    g.weaken(1, 2, 0.3)  # -log 0.3 = 1.2: the 4-hop detour costs more than 2 hops + 1.2
    assert list(g.shortest_path(0, 2).path) == [0, 1, 2]
    g.weaken(0, 1, 0.3)
    g.weaken(1, 2, 0.5)  # now 2 + 1.2 + 1.9 > 4: go round
    assert len(g.shortest_path(0, 2).path) == 5
    assert not g.weaken(4, 5, 0.5)  # 0.5 stays above prune_below = 0.1
    assert g.weaken(4, 5, 0.1)  # pruned
    assert 5 not in g.neighbors(4)
    stats = g.stats()
    assert stats["pruned_edges"] == 1 and stats["weakened_edges"] == 2 and stats["nodes"] == 9


def test_seeds_carry_initial_activation():
    g = _grid(5)
    # two seeds: node 4 (4 hops from 0) with cost 0, node 20 (4 hops) with cost 3: node 4 wins
    plan = g.plan(0, np.array([4, 20]), np.array([0.0, 3.0]))
    assert plan.path[-1] == 4 and plan.cost == pytest.approx(4.0)
    plan = g.plan(0, np.array([4, 20]), np.array([3.0, 0.0]))
    assert plan.path[-1] == 20


def test_place_recognition_by_key_similarity():
    g = _grid(6)
    node, sim = g.nearest(np.array([3.1, 1.95]))
    assert tuple(g.positions[node]) == (3.0, 2.0) and sim > 0.8


def test_planning_is_fast_at_2k_nodes():
    rows = run_scale((2000,), calls=30)["rows"]
    assert rows[0]["nodes"] >= 2000
    assert rows[0]["plan_ms_median"] < 5.0


# -- the search loop -----------------------------------------------------------------------------


def _solve(env: PointMazeEnv, seed: int = 0, config: SearchConfig | None = None) -> tuple[dict, SearchPolicy]:
    policy = SearchPolicy(env.bounds, config)
    return run_episode(env, policy, seed), policy


@pytest.mark.parametrize("size,maze_seed", [(5, 0), (5, 1), (7, 2)])
def test_solves_unseen_mazes_first_try(size, maze_seed):
    env = PointMazeEnv(size=size, maze_seed=maze_seed, max_episode_steps=3000)
    record, _ = _solve(env, maze_seed)
    assert record["success"], record
    assert record["edge_failures"] > 0  # it did learn from contacts: it had no map


def test_finds_another_way_when_a_wall_blocks_the_route_mid_episode():
    solved = 0
    for maze_seed in range(4):
        env = PointMazeEnv(size=6, maze_seed=maze_seed, loops=0.2, block_at_step=20, max_episode_steps=3000)
        record, _ = _solve(env, maze_seed)
        assert record["blocked"], "the option must have closed a corridor"
        solved += record["success"]
    assert solved == 4


def test_unreachable_goal_ends_with_no_path_after_exhaustive_search():
    env = PointMazeEnv(size=4, maze_seed=0, seal_goal=True, max_episode_steps=5000)
    record, policy = _solve(env)
    assert not record["success"]
    assert policy.status == NO_PATH == "no path after exhaustive search"
    assert record["steps"] < 5000  # ended by exhaustion, not by the budget
    # it tried every reachable candidate: it visited every cell it could reach
    visited = policy.agent.graph.positions[policy.agent.graph.visited]
    reachable = {(x, y) for x in range(4) for y in range(4) if env.route((x, y)) is None
                 and maze_route(env.vwalls, env.hwalls, env.start_cell, (x, y)) is not None}
    assert {env.cell_of(p) for p in visited} == reachable and len(reachable) > 1


def test_step_budget_is_respected():
    env = PointMazeEnv(size=9, maze_seed=0, max_episode_steps=100_000)
    policy = SearchPolicy(env.bounds, SearchConfig(max_steps=50))
    record = run_episode(env, policy, 0)
    assert policy.status == BUDGET and record["steps"] <= 52


def test_goal_outside_the_workspace_is_one_line():
    agent = SearchAgent(((0.0, 0.0), (5.0, 5.0)))
    with pytest.raises(ValueError, match="outside the workspace") as e:
        agent.reset(np.array([0.5, 0.5]), np.array([6.0, 1.0]))
    assert "\n" not in str(e.value)
    policy = SearchPolicy(((0.0, 0.0), (5.0, 5.0)))
    obs = np.zeros(14)
    obs[:2], obs[4:6] = 0.5, (2.0, -1.0)
    with pytest.raises(ValueError, match="outside the workspace"):
        policy.act(obs)


def test_agent_in_open_space_goes_straight_with_setpoints():
    """The core alone (no task): setpoints step along the lattice to the goal, one hop at a time."""
    agent = SearchAgent(((0.0, 0.0), (10.0, 10.0)), SearchConfig(spacing=1.0))
    pos = np.array([1.0, 1.0])
    agent.reset(pos, np.array([4.0, 3.0]))
    for _ in range(20):
        setpoint = agent.update(pos)
        assert np.abs(setpoint - pos).sum() <= 1.0 + 1e-9  # one lattice hop
        pos = setpoint
        if agent.status == REACHED:
            break
    assert agent.status == REACHED and agent.edge_attempts == 5 and agent.edge_failures == 0


def test_search_is_deterministic():
    runs = []
    for _ in range(2):
        env = PointMazeEnv(size=5, maze_seed=4, max_episode_steps=3000)
        record, policy = _solve(env, 4)
        runs.append((record["steps"], policy.agent.graph.n, np.asarray(policy.agent.trajectory)))
    assert runs[0][:2] == runs[1][:2] and np.array_equal(runs[0][2], runs[1][2])


def test_search_plot_is_written(tmp_path):
    from robot_brain.search.plot import plot_search

    env = PointMazeEnv(size=4, maze_seed=1, max_episode_steps=2000)
    _, policy = _solve(env, 1)
    agent = policy.agent
    out = plot_search(tmp_path / "g.png", agent.graph, walls=env.wall_boxes,
                      trajectory=np.asarray(agent.trajectory), start=agent.origin, goal=agent.goal,
                      bounds=env.bounds)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))
