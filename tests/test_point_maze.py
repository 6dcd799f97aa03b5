"""The point-maze task: the generator, the physics (walls stop the body), the options."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robot_brain.envs.point_maze import PointMazeConfig, PointMazeEnv, generate_maze, maze_route


def _reachable(vwalls: np.ndarray, hwalls: np.ndarray) -> int:
    size = vwalls.shape[1]
    cells = [(x, y) for x in range(size) for y in range(size)]
    return sum(maze_route(vwalls, hwalls, (0, 0), cell) is not None for cell in cells)


@pytest.mark.parametrize("size", [5, 7, 9])
def test_every_cell_is_reachable_and_the_maze_is_perfect(size):
    for seed in range(5):
        vwalls, hwalls = generate_maze(size, np.random.default_rng(seed))
        assert _reachable(vwalls, hwalls) == size * size
        # a perfect maze is a spanning tree: exactly size^2 - 1 openings
        openings = (~vwalls[1:-1]).sum() + (~hwalls[:, 1:-1]).sum()
        assert openings == size * size - 1
        assert vwalls[[0, -1]].all() and hwalls[:, [0, -1]].all()  # closed outside


def test_loops_add_routes():
    vwalls, hwalls = generate_maze(7, np.random.default_rng(0), loops=0.3)
    assert (~vwalls[1:-1]).sum() + (~hwalls[:, 1:-1]).sum() > 7 * 7 - 1
    assert _reachable(vwalls, hwalls) == 49


def test_generator_is_reproducible_from_its_seed():
    a = generate_maze(9, np.random.default_rng(11), loops=0.1)
    b = generate_maze(9, np.random.default_rng(11), loops=0.1)
    c = generate_maze(9, np.random.default_rng(12), loops=0.1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    e1, e2 = PointMazeEnv(size=7), PointMazeEnv(size=7)
    e1.reset(seed=3)
    e2.reset(seed=3)
    assert np.array_equal(e1.wall_boxes, e2.wall_boxes)
    e2.reset(seed=4)
    assert not np.array_equal(e1.wall_boxes, e2.wall_boxes)


def test_check_env_and_seed_determinism():
    env = PointMazeEnv(size=5)
    check_env(env, skip_render_check=True)
    rollouts = []
    for _ in range(2):
        env.reset(seed=7)
        actions = np.random.default_rng(0).uniform(-1, 1, size=(40, 2))
        rollouts.append(np.array([env.step(a)[0] for a in actions]))
    assert np.array_equal(*rollouts)


def test_walls_stop_the_body_and_count_as_cost():
    env = PointMazeEnv(size=5, maze_seed=0)
    env.reset(seed=0)
    # push toward the outer wall at x = 0 for a while: the body stops at radius + half thickness
    costs = []
    for _ in range(10):
        obs, _, _, _, info = env.step(np.array([-1.0, 0.0]))
        costs.append(info["cost"])
        assert info["collision"] == (info["cost"] == 1.0)
    assert obs[0] == pytest.approx(0.05 + 0.1, abs=1e-5)
    assert sum(costs) >= 8
    assert obs[2] == 0.0  # the blocked velocity component is zeroed
    # the ray pointing at -x sees the wall right there
    assert obs[6 + 4] == pytest.approx(obs[0] - 0.05, abs=1e-6)


def test_reward_is_the_sum_of_its_terms_and_success_ends_the_episode():
    env = PointMazeEnv(size=2, maze_seed=0, loops=1.0)  # a 2x2 with no inner walls
    obs, _ = env.reset(seed=0)
    for _ in range(50):
        direction = obs[4:6] - obs[0:2]
        obs, reward, terminated, _, info = env.step(np.clip(direction * 3, -1, 1))
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
        if terminated:
            break
    assert terminated and info["is_success"] and info["reward_terms"]["success"] == 10.0


def test_block_at_step_closes_a_corridor_on_the_route_but_keeps_the_goal_reachable():
    env = PointMazeEnv(size=7, maze_seed=1, loops=0.2, block_at_step=3)
    env.reset(seed=1)
    before = env.route()
    for _ in range(3):
        *_, info = env.step(np.zeros(2))
    assert info["blocked"] and env.blocked_wall is not None
    after = env.route()
    assert after is not None and after != before


def test_seal_goal_walls_the_goal_in():
    env = PointMazeEnv(size=5, maze_seed=0, seal_goal=True)
    env.reset(seed=0)
    assert env.route() is None


def test_options_are_validated_in_one_line():
    for bad in ({"size": 1}, {"loops": 1.5}, {"cell_size": 0.3}, {"max_speed": -1.0}):
        with pytest.raises(ValueError) as e:
            PointMazeEnv(**bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="did you mean 'size'"):
        PointMazeEnv(sise=5)
    assert PointMazeEnv(config=PointMazeConfig(size=3)).config.size == 3


def test_render_draws_walls_body_and_goal():
    env = PointMazeEnv(size=3, render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.shape == (240, 240, 3)
    assert (img == (20, 20, 20)).all(axis=2).any()
    assert (img == (40, 80, 220)).all(axis=2).any() and (img == (40, 170, 60)).all(axis=2).any()
