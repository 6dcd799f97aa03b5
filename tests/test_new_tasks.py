"""The ``peg-insertion`` and ``wipe`` tasks: physics of success and violations, domain
randomisation, disturbances, vectorisation (the Gymnasium contract of every task is in
``test_envs.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_brain.envs import Disturbances, make
from robot_brain.envs.peg_insertion import PegInsertionEnv
from robot_brain.envs.wipe import WipeEnv
from robot_brain.policies import make_policy
from robot_brain.policies.scripted import SCRIPTED, ScriptedPegInsertion, ScriptedWipe

NEW_TASKS = ("peg-insertion", "wipe")


def _episode(env, policy, seed):
    env.reset(seed=seed)
    policy.reset()
    forces = []
    while True:
        _, _, terminated, truncated, info = env.step(policy.act(None))
        forces.append(env.normal_force if isinstance(env, WipeEnv) else info["contact_force"])
        if terminated or truncated:
            return env.episode, np.array(forces)


@pytest.mark.parametrize("task", NEW_TASKS)
def test_seeded_resets_are_reproducible_and_randomised(task):
    a, b = make(task).unwrapped, make(task).unwrapped
    oa, _ = a.reset(seed=7)
    ob, _ = b.reset(seed=7)
    np.testing.assert_array_equal(oa, ob)
    geom = "peg" if task == "peg-insertion" else "table"
    frictions, firsts = set(), []
    for seed in range(4):
        a.reset(seed=seed)
        gid = a.model.geom(geom).id
        frictions.add(round(float(a.model.geom_friction[gid, 0]), 6))
        firsts.append(a.hole_top[:2].copy() if task == "peg-insertion" else a.points[0].copy())
    assert len(frictions) == 4  # friction drawn per episode
    assert np.ptp(np.array(firsts), axis=0).max() > 0.005  # hole / path moves


def test_subproc_vec_env_steps_both_tasks():
    from stable_baselines3.common.vec_env import SubprocVecEnv

    for task in NEW_TASKS:
        venv = SubprocVecEnv([lambda t=task: make(t) for _ in range(2)])
        try:
            venv.seed(0)
            obs = venv.reset()
            assert obs.shape == (2, *make(task).observation_space.shape)
            actions = np.zeros((2, 6), dtype=np.float32)
            obs, rewards, _, infos = venv.step(actions)
            assert np.isfinite(obs).all() and rewards.shape == (2,)
            assert all("cost" in i for i in infos)
        finally:
            venv.close()


def test_scripted_peg_inserts_without_violations():
    env = PegInsertionEnv()
    policy = ScriptedPegInsertion(env)
    results = [_episode(env, policy, seed)[0] for seed in range(4)]
    assert sum(r.success for r in results) >= 3
    assert sum(r.violations for r in results) == 0
    # Success means the tip really is in the hole: below the block top, on the axis.
    assert env.insertion >= env.config.depth and env.lateral_error < env.config.clearance


def test_peg_cannot_go_through_the_block_and_slamming_is_a_violation():
    env = PegInsertionEnv(randomize=False, start_range=0.0, shield="none")
    env.reset(seed=0)
    # Offset 1.5 cm from the hole: the peg lands on the block, stiff and fast -> force violation.
    violations = 0
    for _ in range(60):
        d = env.hole_top + np.array([0.015, 0.0, -0.03]) - env.state.ee_pos
        a = np.concatenate([np.clip(d / env.config.max_step, -1, 1), np.ones(3)]).astype(np.float32)
        _, _, terminated, _, info = env.step(a)
        violations += info.get("violation") == "contact_force"
        assert not terminated
    assert env.insertion < 0.001  # resting on the block top, not inside
    assert violations > 0


def test_peg_wall_shift_moves_the_hole_but_not_the_observation():
    env = PegInsertionEnv(disturbances=Disturbances(wall_shift=0.004))
    env.reset(seed=1)
    block = env.model.body("block").id
    true_xy = env.backend.data.xpos[block][:2]
    assert np.linalg.norm(true_xy - env.hole_xy) > 1e-4
    obs = env._get_obs()
    np.testing.assert_allclose(obs[6:9], (env.goal - env.state.ee_pos) * 100.0)  # cm
    # The goal is on the nominal axis and below the success depth, so the pull towards it lasts
    # until success (a goal at the success depth left SAC stalled 3 mm short of it).
    np.testing.assert_allclose(env.goal[:2], env.hole_xy)
    assert env.block_top - env.goal[2] > env.config.depth


def test_scripted_wipe_tracks_the_force_and_covers_the_path():
    env = WipeEnv()
    policy = ScriptedWipe(env)
    ep, forces = _episode(env, policy, seed=0)
    assert ep.success and env.coverage >= env.config.success_coverage
    in_contact = forces[forces > 0.5]
    assert len(in_contact) > 20
    assert abs(np.median(in_contact) - env.config.target_force) < 0.5 * env.config.target_force
    assert ep.violations == 0


def test_wipe_lifting_off_after_touchdown_is_a_violation():
    env = WipeEnv(randomize=False)
    env.reset(seed=0)
    policy = ScriptedWipe(env)
    for _ in range(80):
        env.step(policy.act(None))
        if env.touched:
            break
    assert env.touched
    kinds = set()
    for _ in range(10):  # straight up at full step
        _, _, _, _, info = env.step(np.array([0, 0, 1, 0.5, 0.5, 0.5], dtype=np.float32))
        kinds.add(info.get("violation"))
    assert "left_surface" in kinds


def test_wipe_surface_stiffness_is_randomised():
    env = WipeEnv()
    refs = set()
    for seed in range(3):
        env.reset(seed=seed)
        refs.add(round(float(env.model.geom_solref[env.model.geom("table").id, 0]), 6))
    assert len(refs) == 3 and all(env.config.solref_range[0] <= r <= env.config.solref_range[1] for r in refs)


def test_scripted_policies_are_registered():
    assert SCRIPTED[PegInsertionEnv] is ScriptedPegInsertion and SCRIPTED[WipeEnv] is ScriptedWipe
    for task, cls in (("peg-insertion", ScriptedPegInsertion), ("wipe", ScriptedWipe)):
        assert isinstance(make_policy("scripted", make(task)), cls)


@pytest.mark.parametrize("kwargs", [{"clearance": 0.0}, {"depth": 0.05}, {"hole_range": -1.0},
                                    {"friction_range": (0.5, 0.1)}])
def test_peg_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PegInsertionEnv(**kwargs)


@pytest.mark.parametrize("kwargs", [{"target_force": 0.0}, {"solref_range": (0.001, 0.01)},
                                    {"n_points": 1}, {"success_coverage": 1.5}])
def test_wipe_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        WipeEnv(**kwargs)
