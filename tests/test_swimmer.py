"""The N-link swimmer: Gymnasium contract, observation layout, configuration errors, and the
physics by its effects (a coasting body slows down, a travelling wave swims, the reversed wave
swims backwards)."""

from __future__ import annotations

import math
import warnings

import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robot_brain.envs.swimmer import CONTROL_DT, TARGET_SPEED, SwimmerConfig, SwimmerEnv

# check_env warns about every Box with infinite bounds; body velocities have no physical bound,
# so these two warnings are the honest price of the observation space (Gymnasium's own MuJoCo
# envs get them too). Any other warning fails the test.
UNBOUNDED = ("minimum value is -infinity", "maximum value is infinity")


def _wave(env: SwimmerEnv, steps: int, direction: int, period: int = 60, lag: float = 1.0) -> np.ndarray:
    """Forward speed [m/s] per step under sinusoidal joint torques whose phase lags by ``lag`` rad
    per joint from head to tail (``direction=+1``) or from tail to head (``-1``)."""
    speeds = []
    joints = np.arange(env.n_joints)
    for t in range(steps):
        a = np.sin(2 * math.pi * t / period - direction * lag * joints).astype(np.float32)
        _, _, _, _, info = env.step(a)
        speeds.append(info["speed"])
    return np.array(speeds)


# -- Gymnasium contract ---------------------------------------------------------------------------
def test_check_env_passes_without_avoidable_warnings():
    env = SwimmerEnv()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    other = [str(w.message) for w in caught if not any(u in str(w.message) for u in UNBOUNDED)]
    assert other == []


@pytest.mark.parametrize("links", [3, 6, 15])
def test_spaces_follow_the_number_of_links(links):
    env = SwimmerEnv(links=links)
    assert env.n_joints == links - 1 == env.model.nu
    assert env.action_space.shape == (links - 1,) and env.action_space.dtype == np.float32
    assert env.observation_space.shape == (4 * links,) and env.observation_space.dtype == np.float64
    # dm_control's joint range: +-360/links degrees.
    np.testing.assert_allclose(env._joint_range[:, 1], math.radians(360.0 / links))


def test_observation_layout_joint_angles_velocities_step_index():
    env = SwimmerEnv()
    obs, info = env.reset(seed=3)
    n = env.n_joints
    np.testing.assert_array_equal(obs[:n], env.joint_angles)
    assert obs[-1] == 0.0 and info["is_success"] is False
    np.testing.assert_array_equal(obs[n:-1], 0.0)  # reset at rest
    for k in range(1, 4):
        obs, _, _, _, info = env.step(np.full(n, 0.5, dtype=np.float32))
        assert obs[-1] == float(k) == env.step_index
    np.testing.assert_array_equal(obs[:n], env.joint_angles)
    head_vx, head_vy = obs[n], obs[n + 1]  # head first, (vx, vy, wz) in the head frame
    assert head_vy == pytest.approx(-info["speed"])
    assert head_vx != 0.0 or head_vy != 0.0


def test_reset_is_seeded_random_pose_at_rest():
    env = SwimmerEnv()
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    np.testing.assert_array_equal(a, b)
    headings, angles = [], []
    for seed in range(40):
        obs, _ = env.reset(seed=seed)
        headings.append(env.data.qpos[env._qpos_root[2]])
        angles.append(obs[: env.n_joints])
        np.testing.assert_array_equal(env.data.qpos[env._qpos_root[:2]], 0.0)  # slides at 0
        np.testing.assert_array_equal(env.data.qvel, 0.0)
    limit = math.radians(360.0 / env.links)
    assert np.abs(angles).max() <= limit and np.abs(angles).max() > 0.8 * limit
    assert min(headings) < -2.0 and max(headings) > 2.0 and np.abs(headings).max() <= math.pi


def test_same_seed_and_actions_give_the_same_episode():
    runs = []
    for _ in range(2):
        env = SwimmerEnv()
        env.reset(seed=11)
        rng = np.random.default_rng(0)
        runs.append([env.step(rng.uniform(-1, 1, env.n_joints).astype(np.float32))[0] for _ in range(20)])
    np.testing.assert_array_equal(runs[0], runs[1])


def test_truncates_at_max_episode_steps():
    env = SwimmerEnv(max_episode_steps=5)
    env.reset(seed=0)
    flags = [env.step(np.zeros(env.n_joints, dtype=np.float32))[2:4] for _ in range(5)]
    assert flags == [(False, False)] * 4 + [(False, True)]
    assert env.dt == CONTROL_DT


# -- configuration errors -------------------------------------------------------------------------
@pytest.mark.parametrize("links", [2, 16, 0])
def test_links_out_of_range_is_one_line_error(links):
    with pytest.raises(ValueError) as exc:
        SwimmerEnv(links=links)
    msg = str(exc.value)
    assert "\n" not in msg and "links" in msg and repr(links) in msg and "[3, 15]" in msg


def test_links_must_be_an_integer_and_unknown_options_are_named():
    with pytest.raises(ValueError, match="links"):
        SwimmerConfig(links=6.5)
    with pytest.raises(ValueError, match=r"'lnks'.*did you mean 'links'"):
        SwimmerEnv(lnks=6)
    with pytest.raises(ValueError, match="SwimmerConfig"):
        SwimmerEnv(config=object())  # type: ignore[arg-type]


def test_bad_actions_are_refused():
    env = SwimmerEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([0, 0, np.nan, 0, 0], dtype=np.float32))


# -- physics and reward ---------------------------------------------------------------------------
def test_straight_unactuated_body_coasts_to_rest():
    env = SwimmerEnv()
    env.reset(seed=0)
    env.data.qpos[:] = 0.0  # straight, heading 0 (nose along -y)
    env.data.qvel[:] = 0.0
    env.data.qvel[env._qpos_root[1]] = -0.2  # 0.2 m/s forward
    env.data.qvel[env._qpos_root[0]] = 0.05  # and drifting sideways
    mujoco.mj_forward(env.model, env.data)
    speeds, lateral = [env.forward_speed], [env.data.qvel[env._qpos_root[0]]]
    for _ in range(300):
        env.step(np.zeros(env.n_joints, dtype=np.float32))
        speeds.append(env.forward_speed)
        lateral.append(env.data.qvel[env._qpos_root[0]])
    assert np.all(np.diff(speeds) <= 0) and 0 <= speeds[-1] < 0.15 * speeds[0]
    assert abs(lateral[100]) < 0.05 * lateral[0]  # broadside drag is far larger
    np.testing.assert_allclose(env.joint_angles, 0.0, atol=1e-9)  # nothing bends it


def test_travelling_wave_swims_forward_and_the_reversed_wave_backward():
    env = SwimmerEnv()
    env.reset(seed=1)
    forward = _wave(env, 200, +1)[50:]
    env.reset(seed=1)
    backward = _wave(env, 200, -1)[50:]
    assert forward.mean() > 0.03
    assert backward.mean() < -0.03


def test_reward_is_bounded_clipped_speed():
    env = SwimmerEnv()
    env.reset(seed=2)
    rewards = []
    joints = np.arange(env.n_joints)
    for t in range(150):
        a = np.sin(2 * math.pi * t / 60 - joints).astype(np.float32)
        _, reward, _, _, info = env.step(a)
        assert 0.0 <= reward <= 1.0
        assert reward == pytest.approx(np.clip(info["speed"] / TARGET_SPEED, 0, 1))
        assert reward == sum(info["reward_terms"].values())
        assert info["is_success"] is False and info["cost"] == 0.0
        rewards.append(reward)
    assert 0.0 < np.mean(rewards) < 1.0


def test_software_render_draws_the_body():
    env = SwimmerEnv(render_mode="rgb_array", renderer="software", width=64, height=48)
    env.reset(seed=0)
    frame = env.render()
    assert frame is not None and frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 1  # not a blank picture
    assert env.renderer_note is not None
    env.close()
    env.close()
    assert SwimmerEnv().render() is None
