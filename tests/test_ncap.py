"""The NCAP swimming circuit: its equations unit by unit (oscillator, sensors, sign projection,
clamping), weight sharing and the ablation switches, checkpoints, and that the untrained circuit
swims where random actions do not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robot_brain.envs.swimmer import SwimmerEnv
from robot_brain.policies import Policy, RandomPolicy
from robot_brain.policies.ncap import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    CircuitPolicy,
    NcapCircuit,
    NcapConfig,
    load_circuit,
    save_circuit,
)


def _obs(q, t: float, velocities: int = 6) -> torch.Tensor:
    """A swimmer-like observation: joint angles, (ignored) velocities, step index last."""
    q = torch.as_tensor(q, dtype=torch.float64).reshape(-1)
    return torch.cat([q, torch.full((velocities,), 123.0, dtype=torch.float64),
                      torch.tensor([float(t)], dtype=torch.float64)])


def _circuit(n: int = 5, **options) -> NcapCircuit:
    return NcapCircuit(NcapConfig(n_joints=n, **options))


def _set(circuit: NcapCircuit, **weights: float) -> None:
    with torch.no_grad():
        for name, value in weights.items():
            getattr(circuit, name).fill_(value)


def _return(env: SwimmerEnv, policy: Policy, seed: int) -> float:
    obs, _ = env.reset(seed=seed)
    policy.reset()
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
        total += reward
        done = terminated or truncated
    return total


# -- the units ------------------------------------------------------------------------------------
@pytest.mark.parametrize("period", [60, 20, 7])
def test_oscillator_is_a_square_wave_of_the_period(period):
    circuit = _circuit(period=period)
    t = torch.arange(3 * period, dtype=torch.float32)
    o_d, o_v = circuit.oscillator(t)
    expected = ((np.arange(3 * period) % period) < period / 2).astype(np.float32)
    np.testing.assert_array_equal(o_d.numpy(), expected)
    np.testing.assert_array_equal(o_v.numpy(), 1.0 - expected)


def test_straight_body_only_the_head_follows_the_oscillator():
    circuit = _circuit()
    for t, head in ((0, 1.0), (29, 1.0), (30, -1.0), (59, -1.0), (60, 1.0)):
        a = circuit(_obs(np.zeros(5), t))
        np.testing.assert_array_equal(a.detach().numpy(), [head, 0, 0, 0, 0])


def test_proprioception_passes_the_previous_joints_bend_on():
    circuit = _circuit()
    full = 2 * math.pi / 6  # the sensor's range for 5 joints
    q = np.array([full, -0.5 * full, 0.25 * full, 3 * full, 0.0])  # the 4th beyond range: clipped
    act = circuit.forward_with_activity(_obs(q, 0))
    np.testing.assert_allclose(act.action.detach().numpy(), [1.0, 1.0, -0.5, 0.25, 1.0], atol=1e-6)
    np.testing.assert_allclose(act.b_d.detach().numpy(), [1.0, 1.0, 0.0, 0.25, 1.0], atol=1e-6)
    np.testing.assert_allclose(act.b_v.detach().numpy(), [0.0, 0.0, 0.5, 0.0, 0.0], atol=1e-6)


def test_sign_projection_zeroes_wrong_signed_weights_only_when_constrained():
    # Excitation and inhibition swapped: constrained, both act as 0 (no torque); unconstrained,
    # the head's torque is reversed.
    for constrained, head in ((True, 0.0), (False, -1.0)):
        circuit = _circuit(sign_constraints=constrained)
        _set(circuit, w_ipsi=-1.0, w_contra=1.0)
        weights = circuit.projected_weights()
        assert weights["w_ipsi"].item() == (0.0 if constrained else -1.0)
        assert weights["w_contra"].item() == (0.0 if constrained else 1.0)
        assert circuit(_obs(np.zeros(5), 0))[0].item() == head
        assert circuit.w_ipsi.item() == -1.0  # the projection leaves the parameter as it is


def test_units_are_clamped_to_0_1_and_torques_to_minus1_1():
    circuit = _circuit(sign_constraints=False)
    _set(circuit, w_osc=5.0, w_prop=3.0, w_ipsi=4.0, w_contra=2.0)  # large: inputs far beyond 1
    gen = torch.Generator().manual_seed(0)
    obs = torch.cat([torch.randn(256, 5, generator=gen) * 3, torch.zeros(256, 6),
                     torch.randint(0, 200, (256, 1), generator=gen).float()], dim=1)
    act = circuit.forward_with_activity(obs)
    for unit in (act.b_d, act.b_v, act.m_d, act.m_v):
        assert unit.min() >= 0.0 and unit.max() <= 1.0
    assert act.action.shape == (256, 5) and act.action.abs().max() <= 1.0
    assert (act.b_d == 1.0).any() and (act.m_v == 1.0).any()  # the clamp was reached


def test_batches_match_single_observations_and_gradients_reach_the_weights():
    circuit = _circuit()
    obs = torch.stack([_obs(np.linspace(-1, 1, 5) * s, t) for s, t in ((0.3, 0), (-0.7, 40), (1.0, 13))])
    batch = circuit(obs)
    for i in range(3):
        torch.testing.assert_close(batch[i], circuit(obs[i]))
    (batch * torch.tensor([1.0, -1.0, 0.5, 2.0, -0.3])).sum().backward()
    assert {n for n, p in circuit.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0} == {
        "w_osc", "w_prop", "w_ipsi"}
    # A joint's dorsal and ventral B-neurons are never active together, so under the sign
    # constraints contralateral inhibition only pushes an already silent muscle below 0: inert.
    assert circuit.w_contra.grad is not None and circuit.w_contra.grad.item() == 0.0
    free = _circuit(sign_constraints=False)
    _set(free, w_contra=0.5)
    (free(obs) * torch.tensor([1.0, -1.0, 0.5, 2.0, -0.3])).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in free.parameters())


def test_observation_too_short_is_refused():
    with pytest.raises(ValueError, match="5 joint angles"):
        _circuit()(torch.zeros(5))


# -- weight sharing, ablations, inits ------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 5, 9, 14])
def test_shared_weights_are_four_whatever_the_length_unshared_six_per_joint(n):
    assert _circuit(n).n_parameters == 4
    assert _circuit(n, shared_weights=False).n_parameters == 6 * n


def test_unshared_weights_act_per_joint():
    circuit = _circuit(shared_weights=False)
    _set(circuit, w_ipsi_d=0.5)
    with torch.no_grad():
        circuit.w_prop_d[2] = 0.0  # cut the wave between joints 2 and 3
    full = 2 * math.pi / 6
    a = circuit(_obs([full] * 5, 0)).detach().numpy()
    np.testing.assert_allclose(a, [0.5, 0.5, 0.5, 0.0, 0.5])


def test_without_oscillator_a_straight_body_stays_still():
    circuit = _circuit(oscillator=False)
    assert circuit.n_parameters == 3
    for t in range(0, 120, 7):
        assert circuit(_obs(np.zeros(5), t)).abs().max() == 0.0
    assert circuit(_obs([0.5, 0, 0, 0, 0], 0))[1] > 0  # proprioception still works


def test_without_proprioception_only_the_head_joint_is_driven():
    circuit = _circuit(proprioception=False)
    assert circuit.n_parameters == 3
    bent = np.array([0.9, -0.8, 0.7, -0.6, 0.5])
    for t in (0, 45):
        a = circuit(_obs(bent, t)).detach().numpy()
        assert abs(a[0]) == 1.0 and np.all(a[1:] == 0.0)


def test_inits():
    constant = _circuit().projected_weights()
    assert {k: v.item() for k, v in constant.items()} == {"w_osc": 1.0, "w_prop": 1.0, "w_ipsi": 1.0,
                                                          "w_contra": -1.0}
    rs = _circuit(9, shared_weights=False, init="random_sign", init_seed=1, sign_constraints=False)
    values = torch.cat([p.reshape(-1) for p in rs.parameters()])
    assert set(values.tolist()) == {-1.0, 1.0}
    un = [_circuit(9, shared_weights=False, init="uniform", init_seed=s) for s in (4, 4, 5)]
    for name, w in un[0].named_parameters():  # random magnitudes, the prescribed signs
        inside = (w >= -1) & (w <= 0) if name.startswith("w_contra") else (w >= 0) & (w <= 1)
        assert inside.all() and len(set(w.reshape(-1).tolist())) == w.numel()
    flat = [torch.cat([p.reshape(-1) for p in c.parameters()]) for c in un]
    assert torch.equal(flat[0], flat[1]) and not torch.equal(flat[0], flat[2])  # seeded


@pytest.mark.parametrize(("options", "field"), [({"init": "zeros"}, "init"), ({"period": 1}, "period"),
                                                ({"n_joints": 0}, "n_joints"),
                                                ({"oscillator": "yes"}, "oscillator")])
def test_bad_config_is_one_line_error(options, field):
    with pytest.raises(ValueError, match=field) as exc:
        NcapConfig(**options)
    assert "\n" not in str(exc.value)


# -- checkpoints ----------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path):
    circuit = _circuit(shared_weights=False, init="uniform", init_seed=2, period=40)
    save_circuit(circuit, tmp_path)
    assert (tmp_path / CONFIG_FILE).is_file() and (tmp_path / WEIGHTS_FILE).is_file()
    loaded = load_circuit(tmp_path)
    assert loaded.config == circuit.config
    obs = torch.stack([_obs(np.linspace(-1, 1, 5) * s, t) for s, t in ((0.3, 0), (-0.7, 25))])
    torch.testing.assert_close(loaded(obs), circuit(obs))


def test_unshared_checkpoint_for_another_length_is_refused(tmp_path):
    save_circuit(_circuit(5, shared_weights=False), tmp_path)
    with pytest.raises(ValueError) as exc:
        load_circuit(tmp_path, n_joints=9)
    msg = str(exc.value)
    assert "\n" not in msg and "5 joints" in msg and "9 joints" in msg and "unshared" in msg


def test_shared_checkpoint_transfers_to_a_longer_body(tmp_path):
    circuit = _circuit(5)
    _set(circuit, w_prop=0.8, w_contra=-0.6)
    save_circuit(circuit, tmp_path)
    env = SwimmerEnv(links=10)
    policy = CircuitPolicy.load(tmp_path, env)
    assert policy.circuit.n_joints == 9
    assert policy.circuit.w_prop.item() == pytest.approx(0.8)
    obs, _ = env.reset(seed=0)
    assert policy.act(obs).shape == (9,)


def test_weights_that_do_not_fit_or_are_not_tensors_are_refused(tmp_path):
    save_circuit(_circuit(5), tmp_path)
    torch.save({"w_osc": torch.ones(3)}, tmp_path / WEIGHTS_FILE)
    with pytest.raises(ValueError, match="do not fit"):
        load_circuit(tmp_path)
    torch.save({"w_osc": np.ones(3, dtype=object)}, tmp_path / WEIGHTS_FILE)  # needs unpickling
    with pytest.raises(ValueError, match="cannot read the circuit weights"):
        load_circuit(tmp_path)
    (tmp_path / CONFIG_FILE).write_text('{"format": "robot_brain.ncap", "version": 1, '
                                        '"config": {"n_joint": 5}}')
    with pytest.raises(ValueError, match="'n_joint'"):
        load_circuit(tmp_path)


# -- the policy on the swimmer --------------------------------------------------------------------
def test_circuit_policy_follows_the_protocol_and_is_deterministic():
    env = SwimmerEnv(links=4)
    policy = CircuitPolicy(env, NcapConfig(shared_weights=False))  # n_joints taken from the env
    assert isinstance(policy, Policy) and policy.circuit.n_parameters == 6 * 3
    obs, _ = env.reset(seed=0)
    a = policy.act(obs)
    assert a.dtype == np.float32 and a.shape == (3,) and env.action_space.contains(a)
    np.testing.assert_array_equal(a, policy.act(obs))
    with pytest.raises(ValueError, match="drives 5 joints, the env has 3"):
        CircuitPolicy(env, circuit=_circuit(5))
    with pytest.raises(ValueError, match="do not fit"):
        CircuitPolicy(env, state_dict={"w_osc": torch.tensor(1.0)})


def test_untrained_circuit_swims_better_than_random_actions():
    env = SwimmerEnv(links=6, max_episode_steps=200)
    circuit = [_return(env, CircuitPolicy(env), seed) for seed in range(2)]
    random = [_return(env, RandomPolicy(env, seed), seed) for seed in range(2)]
    assert min(circuit) > 3 * max(random)
    assert min(circuit) > 0.5 * 200 * 0.9  # ~0.7 of the step reward after the first swing


# -- the swimmer's circuit prior, activity and diagram ------------------------------------------------
def test_swimmer_circuit_spec_builds_from_the_spaces_with_options():
    from robot_brain.policies.ncap import SWIMMER_CIRCUIT

    env = SwimmerEnv(links=7)
    circuit = SWIMMER_CIRCUIT.build({"shared_weights": False}, env.observation_space, env.action_space)
    assert circuit.n_joints == 6 and circuit.n_parameters == 6 * 6
    with pytest.raises(ValueError, match="set by the body"):
        SWIMMER_CIRCUIT.build({"n_joints": 3}, env.observation_space, env.action_space)
    with pytest.raises(ValueError, match="unknown option 'sign'"):
        SWIMMER_CIRCUIT.build({"sign": False}, env.observation_space, env.action_space)
    import gymnasium as gym

    with pytest.raises(ValueError, match="step index last"):
        SWIMMER_CIRCUIT.build({}, gym.spaces.Box(-1, 1, (5,)), env.action_space)


def test_activity_recorder_records_the_first_episode_and_acts_unchanged(tmp_path):
    from robot_brain.policies.ncap import ActivityRecorder, plot_activity

    env = SwimmerEnv(links=5, max_episode_steps=40)
    policy = CircuitPolicy(env)
    recorder = ActivityRecorder(policy, policy.circuit, dt=env.dt)
    for seed in (0, 1):  # only the first episode is recorded
        obs, _ = env.reset(seed=seed)
        recorder.reset()
        for _ in range(40):
            action = recorder.act(obs)
            np.testing.assert_array_equal(action, policy.act(obs))
            obs, *_ = env.step(action)
    trace = recorder.trace()
    assert trace.b_d.shape == (40, 4) and trace.o_d.shape == (40,)
    np.testing.assert_array_equal(trace.o_d, (np.arange(40) % 60 < 30).astype(float))  # the clock
    torque = trace.m_d - trace.m_v
    assert np.abs(torque).max() <= 1.0 and np.abs(torque[:, 0]).max() == 1.0  # the head follows o_d
    path = plot_activity(trace, tmp_path / "sub" / "activity.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and [p.name for p in path.parent.iterdir()] == ["activity.png"]


def test_draw_circuit_writes_a_diagram(tmp_path):
    from robot_brain.policies.ncap import draw_circuit

    path = draw_circuit(tmp_path / "circuit.png", n_joints=3)
    assert path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="at least 2 joints"):
        draw_circuit(tmp_path / "x.png", n_joints=1)
