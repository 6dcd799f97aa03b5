"""Built-in policies: the protocol, the trivial ones, and the scripted policies' success rates
(issue 2's acceptance: scripted reach >= 9/10, scripted maze >= 5/10 without disturbances)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_brain.envs import Disturbances, make
from robot_brain.policies import (
    SCRIPTED,
    Policy,
    RandomPolicy,
    ScriptedMaze,
    ScriptedReach,
    ZeroPolicy,
    make_policy,
)


def _run(env, policy, seeds) -> list:
    """Episodes with ``policy`` on ``env`` (wrapped or not); returns each episode's metrics."""
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        policy.reset()
        while True:
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            if terminated or truncated:
                break
        out.append(env.unwrapped.episode)
    return out


def test_scripted_reach_succeeds_in_at_least_9_of_10():
    env = make("reach")
    episodes = _run(env, make_policy("scripted", env), range(10))
    assert sum(e.success for e in episodes) >= 9
    assert all(e.violations == 0 for e in episodes)


def test_scripted_reach_on_other_seeds():
    env = make("reach")
    episodes = _run(env, make_policy("scripted", env), range(100, 110))
    assert sum(e.success for e in episodes) >= 9


def test_scripted_maze_reaches_the_goal_without_disturbances():
    env = make("maze")
    episodes = _run(env, make_policy("scripted", env), range(10))
    assert sum(e.success for e in episodes) >= 5  # acceptance: at least half (all, in practice)
    assert all(e.violations == 0 for e in episodes)  # the nominal path never touches a wall
    assert all(e.steps < env.unwrapped.config.max_episode_steps for e in episodes if e.success)


@pytest.mark.slow
def test_under_disturbances_the_reflex_cuts_the_violations():
    """Pushes and shifted walls make the scripted maze policy hit walls; the hard-limit reflex
    cuts the violations by far while the goal is still reached."""
    results = {}
    for reflex in ("none", "limits"):
        env = make("maze", shield=reflex, disturbances=Disturbances.default())
        episodes = _run(env, make_policy("scripted", env), range(10))
        results[reflex] = (sum(e.success for e in episodes), sum(e.violations for e in episodes))
    (succ_off, viol_off), (succ_on, viol_on) = results["none"], results["limits"]
    assert viol_off >= 50  # clear violations without the reflex
    assert viol_on < viol_off / 3
    assert succ_on >= 7 and succ_off >= 7


def test_scripted_maze_follows_the_waypoints_in_order():
    env = make("maze").unwrapped
    policy = ScriptedMaze(env)
    obs, _ = env.reset(seed=0)
    policy.reset()
    visited = [policy.index]
    for _ in range(120):
        obs, *_ = env.step(policy.act(obs))
        if policy.index != visited[-1]:
            visited.append(policy.index)
    assert visited == list(range(1, len(visited) + 1)) and len(visited) >= 3
    policy.reset()
    assert policy.index == 1


def test_scripted_maze_stiffness_is_its_action():
    env = make("maze").unwrapped
    env.reset(seed=0)
    a = ScriptedMaze(env, stiffness=-0.5).act(None)
    assert a.shape == env.action_space.shape and env.action_space.contains(a)
    np.testing.assert_allclose(a[2:], -0.5)
    with pytest.raises(ValueError, match="stiffness"):
        ScriptedMaze(env, stiffness=2.0)


def test_scripted_reach_slows_down_near_the_goal():
    env = make("reach").unwrapped
    env.reset(seed=0)
    policy = ScriptedReach(env, slow_radius=0.05)
    env.goal = env.state.ee_pos + np.array([0.01, 0.0, 0.0])
    near = policy.act(None)
    env.goal = env.state.ee_pos + np.array([0.3, 0.0, 0.0])
    far = policy.act(None)
    assert far[0] == pytest.approx(1.0) and near[0] == pytest.approx(0.2)
    np.testing.assert_allclose(near[3:], 1.0)


def test_make_policy_names_and_errors():
    env = make("maze")
    assert isinstance(make_policy("scripted", env), ScriptedMaze)  # unwraps the env
    assert isinstance(make_policy("scripted", make("reach")), ScriptedReach)
    assert isinstance(make_policy("zero", env), ZeroPolicy)
    assert isinstance(make_policy("random", env, seed=0), RandomPolicy)
    for name in ("scripted", "zero", "random"):
        assert isinstance(make_policy(name, env, seed=0), Policy)
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        make_policy("nope", env)
    assert set(SCRIPTED) >= {type(env.unwrapped), type(make("reach").unwrapped)}


def test_random_policy_is_reproducible_and_in_bounds():
    env = make("maze")
    a = [make_policy("random", env, seed=4).act(None) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
    p = make_policy("random", env, seed=4)
    acts = np.array([p.act(None) for _ in range(50)])
    assert np.all(acts >= -1) and np.all(acts <= 1) and acts.std() > 0.3


def test_zero_policy_holds_still():
    env = make("maze")
    obs, _ = env.reset(seed=0)
    p0 = obs[:3].copy()
    policy = make_policy("zero", env)
    for _ in range(20):
        obs, *_ = env.step(policy.act(obs))
    assert np.linalg.norm(obs[:3] - p0) < 2e-3


# -- the circuit-prior hook (--policy ncap) ---------------------------------------------------------
def test_ncap_is_the_swimmers_circuit_and_other_tasks_are_told_which_have_one():
    from robot_brain.policies.ncap import CircuitPolicy

    swimmer = make("swimmer", links=8)
    policy = make_policy("ncap", swimmer)
    assert isinstance(policy, CircuitPolicy) and isinstance(policy, Policy)
    assert policy.circuit.n_joints == 7 and policy.circuit.n_parameters == 4  # default init, shared
    with pytest.raises(ValueError, match=r"'maze' has no circuit policy.*with a circuit: swimmer") as err:
        make_policy("ncap", make("maze"))
    assert "\n" not in str(err.value)


def test_a_task_registers_its_circuit_through_the_hook(monkeypatch):
    """What the wipe circuit will do: register a CircuitSpec for its task; make_policy('ncap')
    (and training's NcapPolicy) then build it for that task."""
    import types

    from robot_brain.policies import base

    built = []

    class Spec:
        name = "ncap"
        config_type = dict

        def build(self, options, observation_space, action_space):
            raise NotImplementedError

        def policy(self, env, options=None):
            built.append(type(env.unwrapped).__name__)
            return ZeroPolicy(env)

    module = types.ModuleType("fake_circuits")
    module.MAZE = Spec()
    monkeypatch.setitem(__import__("sys").modules, "fake_circuits", module)
    monkeypatch.setattr(base, "CIRCUITS", {**base.CIRCUITS})
    base.register_circuit("maze", "fake_circuits:MAZE")
    assert isinstance(make_policy("ncap", make("maze")), ZeroPolicy) and built == ["MazeEnv"]
    assert base.circuit_for("maze") is module.MAZE
    with pytest.raises(ValueError, match="module:attribute"):
        base.register_circuit("reach", "no_colon")
