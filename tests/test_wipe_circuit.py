"""The wipe circuit prior (robot_brain.policies.wipe_circuit): each unit's equation, the ablation
switches, and its effect on the real task (MuJoCo, the two-rate loop, the reflex): untrained, it
wipes the path without a violation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_brain.envs import make
from robot_brain.policies.wipe_circuit import (
    DESIGNED,
    OBS_SIZE,
    WIPE_CIRCUIT,
    WipeCircuit,
    WipeCircuitConfig,
)


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():  # the equations are read here, not trained
        yield


def _obs(sf: float = 1.0, h: float = 0.0, d: tuple[float, float] = (0.05, 0.0),
         t: float = 0.0) -> torch.Tensor:
    o = torch.zeros(OBS_SIZE, dtype=torch.float64)
    o[6:8] = torch.tensor(d)
    o[10], o[11], o[13] = sf, h, t
    return o


def test_eight_weights_one_per_connection_type():
    c = WipeCircuit()
    assert c.n_parameters == len(DESIGNED) == 8


def test_oscillator_alternates_forward_and_back_strokes_with_its_period():
    c = WipeCircuit(WipeCircuitConfig(period=1.0))
    fwd = [float(c(_obs(t=t))[0]) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert fwd[0] == fwd[1] == fwd[4] == pytest.approx(DESIGNED["fwd"])  # toward the point (+x)
    assert fwd[2] == fwd[3] == pytest.approx(-DESIGNED["back"])  # the back stroke
    flat = WipeCircuit(WipeCircuitConfig(oscillator=False))
    assert float(flat(_obs(t=0.75))[0]) == pytest.approx(DESIGNED["fwd"])


def test_strokes_only_on_the_table_and_toward_the_next_point():
    c = WipeCircuit()
    assert float(c(_obs(h=0.01))[:2].abs().max()) == 0.0  # in the air: no stroke
    a = c(_obs(d=(0.0, -0.04)))
    assert float(a[0]) == 0.0 and float(a[1]) < 0  # along -y, where the point is
    near = c(_obs(d=(0.002, 0.0)))
    assert float(near[0]) == pytest.approx(0.2 * DESIGNED["fwd"])  # shrinks inside 1 cm


def test_touch_presses_below_the_target_force_and_withdraws_far_above():
    c = WipeCircuit()
    z = {sf: float(c(_obs(sf=sf))[2]) for sf in (0.0, 0.5, 1.0, 1.5, 3.0)}
    assert z[0.5] < 0 and z[1.0] < 0  # pressing down on the table
    assert z[1.0] < z[1.5] < 0  # above the target force the press relaxes (inhibition)
    assert z[3.0] > 0  # three times the target: the withdrawal unit lifts the tip
    # In the air the approach unit speeds the descent up with height, clamped at 2 cm.
    air = [float(c(_obs(sf=0.0, h=h))[2]) for h in (0.0, 0.01, 0.02, 0.05)]
    assert air[0] > air[1] > air[2] == air[3]


def test_sign_constraints_project_a_weight_that_crossed_zero():
    c = WipeCircuit()
    with torch.no_grad():
        c.w["relax"].fill_(0.4)  # an inhibitory weight pushed positive (by a gradient, say)
    assert float(c.weight("relax")) == 0.0
    free = WipeCircuit(WipeCircuitConfig(sign_constraints=False))
    with torch.no_grad():
        free.w["relax"].fill_(0.4)
    assert float(free.weight("relax")) == pytest.approx(0.4)


def test_inits_and_bad_options():
    u = WipeCircuit(WipeCircuitConfig(init="uniform", init_seed=3))
    for name, w in u.w.items():  # random sizes, the designed signs
        assert 0 <= float(w) * np.sign(DESIGNED[name]) <= 1
    r = WipeCircuit(WipeCircuitConfig(init="random_sign", init_seed=3))
    assert sorted(abs(float(w)) for w in r.w.values()) == sorted(abs(v) for v in DESIGNED.values())
    with pytest.raises(ValueError, match="init must be one of"):
        WipeCircuitConfig(init="zeros")
    with pytest.raises(ValueError, match="period"):
        WIPE_CIRCUIT.config({"period": 0.0})


def test_the_circuit_refuses_another_task():
    env = make("reach")
    with pytest.raises(ValueError, match="the wipe circuit drives the wipe task"):
        WIPE_CIRCUIT.policy(env)


def test_wipe_observation_ends_with_the_episode_time():
    env = make("wipe")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (OBS_SIZE,) and obs[-1] == 0.0
    for _ in range(3):
        obs, *_ = env.step(np.zeros(6, dtype=np.float32))
    assert obs[-1] == pytest.approx(3 / env.unwrapped.config.policy_hz)


def test_untrained_circuit_wipes_the_path_without_a_violation():
    env = make("wipe")
    task = env.unwrapped
    policy = WIPE_CIRCUIT.policy(env)
    for seed in (100, 101, 102):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            done = terminated or truncated
        assert task.episode.success, (seed, task.coverage)
        assert task.episode.violations == 0
