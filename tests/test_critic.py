"""The learned safety critic: features, torch/numpy parity, calibration on held-out maze data,
safe file loading, and the critic reflex in the fast loop (one-tick reaction, NaN -> hold, fewer
violations).

Hand-made critics (weights set by hand so the risk is a known function of one feature) test the
reflex mechanics independently of learning; a small critic trained on real maze transitions
tests the learning.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DOWN, ROT_K, TABLE_TOP

from robot_brain.controllers import Command, RobotState
from robot_brain.critic_training import TransitionData, collect
from robot_brain.critic_training.learning import CriticConfig, CriticTrainer, evaluate_critic, roc_auc
from robot_brain.safety import (
    FEATURE_NAMES,
    N_FEATURES,
    CriticFileError,
    CriticReflex,
    EventLog,
    LimitsReflex,
    RetreatConfig,
    RiskModel,
    critic_features,
    load_critic,
    save_critic,
)
from robot_brain.safety.critic import META_FILE, TORCH_FILE, WEIGHTS_FILE
from robot_brain.safety.features import (
    N_STATE_FEATURES,
    WALL_TAU,
    ContactMemory,
    features_from_arrays,
    setpoint_features,
)

IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}


# -- helpers ------------------------------------------------------------------------------------------
def _state(pos=(0.5, 0.0, 0.3), vel=(0.0, 0.0, 0.0), force=(0.0, 0.0, 0.0), t=0.0) -> RobotState:
    wrench = np.zeros(6)
    wrench[:3] = force
    ee_vel = np.zeros(6)
    ee_vel[:3] = vel
    return RobotState(t, np.zeros(7), np.zeros(7), np.zeros(7), np.array(pos, dtype=np.float64),
                      np.array(DOWN), ee_vel, wrench)


def _setpoint(pos=(0.5, 0.0, 0.3), k=800.0) -> Command:
    return Command.cartesian(pos, DOWN, (k, k, k, ROT_K, ROT_K, ROT_K))


def hand_critic(feature: str, threshold: float, sign: float = 1.0, gain: float = 40.0,
                eps_safe: float = 0.5, hidden: int = 4) -> RiskModel:
    """A critic whose risk is ``sigmoid(gain * relu(sign * x_feature) - gain * threshold)``:
    above 0.5 exactly when ``sign * x_feature > threshold`` (inputs not standardised)."""
    a = {"mean": np.zeros(N_FEATURES), "std": np.ones(N_FEATURES),
         "w1": np.zeros((2 * hidden, N_FEATURES)), "b1": np.zeros(2 * hidden),
         "w2": np.zeros((2, hidden, hidden)), "b2": np.zeros((2, hidden)),
         "w3": np.zeros((2, hidden)), "b3": np.full(2, -gain * threshold)}
    for head in range(2):
        a["w1"][head * hidden, IDX[feature]] = sign
        a["w2"][head, 0, 0] = 1.0
        a["w3"][head, 0] = gain
    meta = {"eps_safe": eps_safe, "gamma_risk": 0.9, "critic_dt": 0.01, "force_limit": 15.0,
            "recovery": None}
    return RiskModel(a, meta)


def _random_arrays(rng, n):
    pos = rng.uniform([0.3, -0.2, 0.2], [0.7, 0.2, 0.4], (n, 3))
    vel = rng.normal(0, 0.1, (n, 3))
    force = rng.normal(0, 10, (n, 3)) * (rng.random((n, 1)) < 0.5)
    sp = pos + rng.normal(0, 0.01, (n, 3))
    k = np.exp(rng.uniform(math.log(100), math.log(2000), (n, 3)))
    return pos, vel, force, sp, k


# -- features ------------------------------------------------------------------------------------------
def test_compiled_features_match_the_numpy_and_torch_versions():
    rng = np.random.default_rng(0)
    n = 50
    pos, vel, force, sp, k = _random_arrays(rng, n)
    point = pos + rng.normal(0, 0.01, (n, 3))
    normal = rng.normal(size=(n, 3))
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    recency = rng.random(n)
    batch = features_from_arrays(pos, vel, force, sp, k, point, normal, recency)
    out = np.empty(N_FEATURES)
    for i in range(n):
        s = _state(pos[i], vel[i], rng.normal(size=3))  # the raw force is not used with a memory
        c = Command.cartesian(sp[i], DOWN, (*k[i], ROT_K, ROT_K, ROT_K))
        mem = np.r_[force[i], point[i], normal[i], recency[i], 0.0]
        np.testing.assert_allclose(critic_features(s, c, out, mem), batch[i], rtol=1e-12, atol=1e-12)
    t = [torch.as_tensor(a) for a in (force, vel, sp - pos, k, batch[:, 10:13], batch[:, 13:14])]
    np.testing.assert_allclose(setpoint_features(*t, xp=torch).numpy(), batch[:, 14:], atol=1e-12)
    # Meaning of the contact features: pressing into a wall is negative "press"; a setpoint
    # behind a remembered wall is a negative "wall_sp_gap".
    x = features_from_arrays([0.5, 0, 0.3], [0, 0, -0.1], [0, 0, 20.0], [0.5, 0, 0.28], [1000] * 3,
                             [0.5, 0, 0.29], [0, 0, 1.0], [1.0])[0]
    assert x[IDX["press"]] < -1.0 and x[IDX["approach"]] < 0
    assert x[IDX["wall_gap"]] == pytest.approx(0.5) and x[IDX["wall_sp_gap"]] == pytest.approx(-0.5)


def test_contact_memory_holds_a_chattering_contact_and_remembers_the_wall():
    mem = ContactMemory(dt=0.001, tau=0.02)
    spikes = [(0, 0, 30.0) if k % 7 == 0 else (0, 0, 0) for k in range(70)]  # 1-tick impulses
    held = [mem.update(_state(pos=(0.5, 0.0, 0.25), force=f))[2] for f in spikes]
    assert min(held) > 30.0 * math.exp(-7 / 20) - 1e-9  # never drops to zero between impulses
    for _ in range(100):  # the tool leaves the surface
        mem.update(_state(pos=(0.5, 0.0, 0.27)))
    age = (100 + 69 % 7) * 1e-3
    assert mem.force[2] == pytest.approx(30.0 * math.exp(-age / 0.02), rel=1e-6)
    np.testing.assert_allclose(mem.state[3:9], [0.5, 0.0, 0.25, 0.0, 0.0, 1.0])  # where, which way
    assert mem.state[9] == pytest.approx(math.exp(-age / WALL_TAU))
    x = critic_features(_state(pos=(0.5, 0.0, 0.27)), _setpoint(pos=(0.5, 0.0, 0.24)),
                        np.empty(N_FEATURES), mem.state)
    assert x[IDX["wall_gap"]] > 0 > x[IDX["wall_sp_gap"]]  # backed off, but the setpoint is behind


# -- metrics -------------------------------------------------------------------------------------------
def test_roc_auc_equals_the_pairwise_probability():
    rng = np.random.default_rng(1)
    s = np.round(rng.random(300), 1)  # many ties
    y = rng.random(300) < 0.3
    pos, neg = s[y], s[~y]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (
        len(pos) * len(neg))
    assert roc_auc(s, y) == pytest.approx(pairwise)
    assert roc_auc([0.1, 0.2, 0.9], [0, 0, 1]) == 1.0
    assert roc_auc([0.9, 0.2, 0.1], [0, 0, 1]) == 0.0
    assert math.isnan(roc_auc([0.1, 0.2], [0, 0]))


# -- torch vs run time ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def random_trainer():
    """A trainer with random weights and a recovery policy (no training needed for parity)."""
    rng = np.random.default_rng(2)
    pos, vel, force, sp, k = _random_arrays(rng, 400)
    x = features_from_arrays(pos, vel, force, sp, k)
    data = TransitionData(x, (rng.random(400) < 0.1).astype(float), x[::-1].copy(),
                          np.zeros(400, bool), np.repeat(np.arange(4), 100), np.zeros(400),
                          ["random"] * 4, {"force_limit": 15.0})
    tr = CriticTrainer(CriticConfig(hidden=(32, 24), rec_hidden=(16, 8)), seed=0, axes=(0, 1))
    tr.set_normalisation(data)
    tr.add(data)
    tr.fit(5)
    tr.train_recovery(5, data=data)
    return tr, data


def test_numpy_kernel_matches_torch_critic(random_trainer):
    tr, _ = random_trainer
    model = tr.export()
    rng = np.random.default_rng(3)
    pos, vel, force, sp, k = _random_arrays(rng, 200)
    point = pos + rng.normal(0, 0.01, (200, 3))
    normal = rng.normal(size=(200, 3))
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    recency = rng.random(200) * (rng.random(200) < 0.5)
    x = features_from_arrays(pos, vel, force, sp, k, point, normal, recency)
    expected = tr.predict(x)
    got = np.array([model.risk(_state(pos[i], vel[i]),
                               Command.cartesian(sp[i], DOWN, (*k[i], ROT_K, ROT_K, ROT_K)),
                               np.r_[force[i], point[i], normal[i], recency[i], 0.0])
                    for i in range(200)])
    assert np.max(np.abs(got - expected)) < 1e-5
    assert np.max(np.abs(model.risk_batch(x) - expected)) < 1e-5
    assert 0.01 < expected.std()  # a meaningful comparison: the risks differ between inputs


def test_numpy_recovery_matches_torch_recovery(random_trainer):
    tr, data = random_trainer
    model = tr.export()
    f = data.features[:50]
    off_np, k_np = model.recovery_batch(f[:, :N_STATE_FEATURES])
    z = ((torch.as_tensor(f) - tr.critic.mean) / tr.critic.std)[:, :N_STATE_FEATURES]
    with torch.no_grad():
        off, k = tr.recovery(z)
    np.testing.assert_allclose(off_np, off.numpy(), atol=1e-9)
    np.testing.assert_allclose(k_np, k.numpy(), rtol=1e-9)
    x = np.empty(N_FEATURES)
    for i in range(50):  # the compiled path, from a state and a memory
        s = _state(f[i, 0:3], f[i, 3:6])
        mem = np.r_[f[i, 6:9] * 15.0, f[i, 0:3], 0.0, 0.0, 1.0, 0.5, 0.2]
        out = _setpoint(pos=(9.0, 9.0, 9.0), k=1.0)
        critic_features(s, out, x, mem)
        off_i, k_i = model.recovery_batch(x[None, :N_STATE_FEATURES])
        assert model.recover(s, out, mem)
        np.testing.assert_allclose(out.position[:2], f[i, :2] + off_i[0], atol=1e-9)
        assert out.position[2] == 9.0 and out.stiffness[2] == 1.0  # only the recovery axes move
        np.testing.assert_allclose(out.stiffness[:2], k_i[0], rtol=1e-9)


# -- learning on real maze data ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def maze_critic():
    """A small critic trained on 9 maze episodes (random, scripted, perturbed; reflex off,
    pushes and shifted walls), with 3 episodes held out."""
    torch.set_num_threads(1)
    data = collect("maze", 9, seed=500, progress=False)
    train, test = data.split(1 / 3, seed=0)
    tr = CriticTrainer(CriticConfig(hidden=(48, 48)), seed=0, axes=(0, 1), meta=data.meta)
    tr.set_normalisation(train)
    tr.add(train)
    tr.fit(1500)
    return tr, data, train, test


def test_collected_data_holds_violations_and_consistent_transitions(maze_critic):
    _, data, _, _ = maze_critic
    assert data.n_episodes == 9 and set(data.episode_policy) == {"random", "scripted", "perturbed"}
    assert data.cost.sum() >= 20  # violations are plentiful with the reflex off
    assert np.isfinite(data.features).all()
    # cost is the force label of its own interval, and x' of a transition is x of the next one.
    np.testing.assert_array_equal(data.cost, (data.force > data.meta["force_limit"]).astype(float))
    same = data.episode[1:] == data.episode[:-1]
    np.testing.assert_allclose(data.next_features[:-1][same], data.features[1:][same])
    assert data.meta["critic_dt"] == pytest.approx(0.01)


def test_trained_critic_ranks_violations_above_safe_transitions(maze_critic):
    tr, _, _, test = maze_critic
    assert test.cost.sum() >= 5
    risk = tr.export().risk_batch(test.features)
    m = evaluate_critic(risk, test, tr.config.gamma_risk)
    assert m["auc"] >= 0.9, m
    assert risk[test.cost > 0].mean() > 3 * risk[test.cost == 0].mean()


def test_online_update_keeps_learning(maze_critic):
    tr, _, train, _ = maze_critic
    tr2 = CriticTrainer(tr.config, seed=1, axes=(0, 1))
    tr2.set_normalisation(train)
    half = train.subset(train.episode < np.median(train.episode))
    tr2.add(half)
    tr2.fit(200)
    n = len(tr2.buffer)
    tr2.add(train.subset(train.episode >= np.median(train.episode)))  # new transitions arrive
    assert len(tr2.buffer) == n + int((train.episode >= np.median(train.episode)).sum())
    tr2.fit(200)
    assert tr2.steps_done == 400


# -- files ------------------------------------------------------------------------------------------------
@pytest.fixture
def critic_dir(tmp_path, random_trainer) -> Path:
    d = tmp_path / "critic"
    random_trainer[0].save(d)
    return d


def test_save_and_load_round_trip(critic_dir, random_trainer):
    model = load_critic(critic_dir)
    meta = json.loads((critic_dir / META_FILE).read_text())
    assert meta["feature_names"] == list(FEATURE_NAMES) and meta["hidden"] == [32, 24]
    assert meta["shapes"]["w1"] == [64, N_FEATURES]
    x = random_trainer[1].features
    np.testing.assert_allclose(model.risk_batch(x), random_trainer[0].predict(x), atol=1e-12)
    assert model.has_recovery and list(model.recovery_axes) == [0, 1]
    resumed = CriticTrainer.load(critic_dir)
    np.testing.assert_allclose(resumed.predict(x), random_trainer[0].predict(x))
    assert not list(critic_dir.glob(".*tmp"))  # atomic writes leave no temporary files


def test_missing_files_are_named(tmp_path, critic_dir):
    with pytest.raises(CriticFileError, match="nowhere"):
        load_critic(tmp_path / "nowhere")
    (critic_dir / WEIGHTS_FILE).unlink()
    with pytest.raises(CriticFileError, match=r"critic\.npz.*not found"):
        load_critic(critic_dir)
    (critic_dir / META_FILE).unlink()
    with pytest.raises(CriticFileError, match=r"critic\.json.*not found"):
        load_critic(critic_dir)


def test_corrupted_files_are_refused_with_the_file_name(critic_dir):
    weights = critic_dir / WEIGHTS_FILE
    weights.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(CriticFileError, match=r"critic\.npz: not a valid \.npz"):
        load_critic(critic_dir)
    (critic_dir / META_FILE).write_text("{ not json")
    with pytest.raises(CriticFileError, match=r"critic\.json: not valid JSON"):
        load_critic(critic_dir)


def test_wrong_shape_names_file_array_and_expected_shape(critic_dir):
    path = critic_dir / WEIGHTS_FILE
    with np.load(path) as z:
        arrays = dict(z)
    arrays["w1"] = arrays["w1"][:, :-1]  # one input feature missing
    np.savez(path, **arrays)
    with pytest.raises(CriticFileError) as err:
        load_critic(critic_dir)
    msg = str(err.value)
    assert str(path) in msg and "'w1'" in msg and f"(64, {N_FEATURES})" in msg
    assert "\n" not in msg


def test_non_finite_weights_are_refused(critic_dir):
    path = critic_dir / WEIGHTS_FILE
    with np.load(path) as z:
        arrays = dict(z)
    arrays["b2"][0, 0] = np.nan
    np.savez(path, **arrays)
    with pytest.raises(CriticFileError, match="'b2' holds NaN"):
        load_critic(critic_dir)


class _Payload:
    """Unpickling this runs code (creates the marker file): loading must never do it."""

    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_loading_never_unpickles(critic_dir, tmp_path):
    marker = tmp_path / "pwned"
    _Payload.marker = marker
    path = critic_dir / WEIGHTS_FILE
    with np.load(path) as z:
        arrays = dict(z)
    arrays["w3"] = np.array([_Payload()], dtype=object)  # np.savez pickles object arrays
    np.savez(path, **arrays)
    with pytest.raises(CriticFileError, match=r"'w3'.*unpickling"):
        load_critic(critic_dir)
    torch_path = critic_dir / TORCH_FILE
    torch_path.write_bytes(pickle.dumps({"critic": _Payload()}))
    with pytest.raises(CriticFileError, match=r"critic\.pt: cannot be loaded safely"):
        CriticTrainer.load(critic_dir)
    assert not marker.exists()


# -- the reflex in the loop -------------------------------------------------------------------------------
class _RecordingController:
    """Wraps the impedance controller; records the setpoint of every torque it computes."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.setpoints: list[tuple[np.ndarray, np.ndarray]] = []

    def torque(self, state, setpoint):
        self.setpoints.append((setpoint.position.copy(), setpoint.stiffness.copy()))
        return self.inner.torque(state, setpoint)


class _Spy:
    """Outermost reflex: records the task setpoint each tick and the critic's risk of it."""

    def __init__(self, reflex: CriticReflex) -> None:
        self.reflex = reflex
        self.rows: list[tuple[int, np.ndarray, float, np.ndarray]] = []

    def reset(self, state):
        self.reflex.reset(state)

    def new_command(self, command):
        self.reflex.new_command(command)

    def check(self, tick, state, setpoint, log):
        task = setpoint.position.copy()
        out = self.reflex.check(tick, state, setpoint, log)
        self.rows.append((tick, task, self.reflex.last_risk, out.position.copy()))
        return out


def test_reaction_latency_is_one_control_tick(make_arm):
    # Risk > 0.5 once the setpoint is more than 4 mm below the tool (err_z < -0.2).
    model = hand_critic("err_z", threshold=0.2, sign=-1.0, eps_safe=0.5)
    critic = CriticReflex(model, None, retreat=RetreatConfig(retreat=0.005, soft_stiffness=300.0),
                          recoveries=("retreat",))  # retreat-and-soften only (others: test_recovery.py)
    spy = _Spy(critic)
    arm = make_arm(reflex=spy)
    rec = _RecordingController(arm.controller)
    arm.loop.controller = rec
    start = arm.loop.state.ee_pos.copy()
    arm.loop.step(arm.hold_command(position=start - [0.0, 0.0, 0.03]))  # 3 cm down in 50 ms
    ticks = [r[0] for r in spy.rows]
    assert ticks == list(range(len(ticks))) and len(rec.setpoints) == len(ticks)
    first = next(i for i, r in enumerate(spy.rows) if r[2] > 0.5)
    assert first > 0
    # The tick before: the controller got the task setpoint (risk below the threshold).
    np.testing.assert_array_equal(rec.setpoints[first - 1][0], spy.rows[first - 1][1])
    # The very tick the risk first exceeds eps_safe: the torque comes from the recovery setpoint.
    task_sp, recovery_sp = spy.rows[first][1], spy.rows[first][3]
    np.testing.assert_array_equal(rec.setpoints[first][0], recovery_sp)
    assert recovery_sp[2] > task_sp[2] + 0.004  # backed off upward, away from the motion
    assert np.all(rec.setpoints[first][1][:3] <= 300.0)  # and softened
    events = [e for e in arm.loop.events.events if e.reason == "critic"]
    assert events and events[0].tick == spy.rows[first][0] and events[0].value > 0.5
    assert len(arm.backend.requested) >= first + 1  # that torque was written on that tick


def test_nan_critic_holds_and_never_raises(make_arm):
    model = hand_critic("pos_x", threshold=0.0)
    model.arrays["w3"][0, 0] = np.nan  # a corrupted critic
    bad = RiskModel(model.arrays, model.meta)
    arm = make_arm(reflex=CriticReflex(bad, LimitsReflex()))
    start = arm.loop.state.ee_pos.copy()
    target = arm.hold_command(position=start + np.array([0.05, 0.0, 0.0]))  # 5 cm away
    arm.run(target, 0.5)
    assert math.isnan(bad.risk(arm.loop.state, target))
    assert all(np.isfinite(t).all() for t in arm.backend.requested)
    assert np.linalg.norm(arm.loop.state.ee_pos - start) < 0.005  # held, did not follow
    faults = [e for e in arm.loop.events.events if e.reason == "critic_fault"]
    assert len(faults) == 1 and math.isnan(faults[0].value)
    assert arm.loop.events.ticks["critic_fault"] == 500


def test_critic_reflex_relieves_a_pressing_contact(make_arm):
    """Peg pushed 3 cm into the table at 1000 N/m (30 N without a reflex): a critic that flags
    "the setpoint lies behind the surface just touched" makes the reflex hold the setpoint
    outside the remembered surface, so the steps above the 15 N limit become few (impacts of
    re-contact remain once the memory fades: this hand-made critic knows nothing else)."""
    over, final = {}, {}
    for name in ("none", "critic"):
        model = hand_critic("wall_sp_gap", threshold=0.25, sign=-1.0, eps_safe=0.5)
        arm = make_arm(table=True, reflex=CriticReflex(model, None) if name == "critic" else None)
        start = arm.loop.state.ee_pos.copy()
        arm.run(arm.hold_command(position=[start[0], start[1], TABLE_TOP + 0.01]), 1.0)
        arm.loop.events.clear()
        press = arm.hold_command(position=[start[0], start[1], TABLE_TOP - 0.03])
        peaks = []
        for _ in range(30):  # 1.5 s
            arm.loop.step(press)
            peaks.append(arm.loop.stats.max_contact_force)
        over[name] = sum(p > 15.0 for p in peaks)
        final[name] = (arm.loop.state.contact_force, arm.loop.events.counts()["critic"])
    assert final["none"][0] > 25.0 and over["none"] >= 25  # the physics: pressing at ~30 N
    assert final["critic"][1] >= 3  # the critic intervened on each re-contact
    assert over["critic"] <= over["none"] // 2


def test_reflex_every_n_ticks_skips_evaluations():
    model = hand_critic("pos_x", threshold=100.0, gain=0.01)  # risk moves with x, stays low
    reflex = CriticReflex(model, None, reflex_every=4)
    log = EventLog()
    seen = []
    for tick in range(20):
        reflex.check(tick, _state(pos=(0.3 + 0.01 * tick, 0.0, 0.3)), _setpoint(), log)
        seen.append(reflex.last_risk)
    changed = [t for t in range(1, 20) if seen[t] != seen[t - 1]]
    assert changed == [4, 8, 12, 16] and not reflex.engaged


def test_eps_and_release_validation():
    model = hand_critic("pos_x", threshold=0.0)
    with pytest.raises(ValueError, match="eps_safe"):
        CriticReflex(model, eps_safe=1.5)
    with pytest.raises(ValueError, match="release"):
        CriticReflex(model, release=0.0)
    with pytest.raises(ValueError, match="reflex_every"):
        CriticReflex(model, reflex_every=0)


def test_save_critic_of_a_hand_made_model_loads_back(tmp_path):
    model = hand_critic("press", threshold=0.3, sign=-1.0)
    save_critic(tmp_path / "c", model)
    loaded = load_critic(tmp_path / "c")
    s, sp = _state(force=(0, 0, 20.0)), _setpoint(pos=(0.5, 0.0, 0.27))
    assert loaded.risk(s, sp) == pytest.approx(model.risk(s, sp)) and loaded.risk(s, sp) > 0.5


def test_trained_critic_reduces_maze_violations(maze_critic):
    """Scripted maze policy with pushes and shifted walls (6 episodes, ~10 s): the small critic
    of the fixture over the maze's hard limits cuts violations to under half of no reflex."""
    from robot_brain.envs import Disturbances, make
    from robot_brain.policies import make_policy
    from robot_brain.rollout import run_episode

    tr, _, _, _ = maze_critic
    totals = {}
    for name in ("none", "critic"):
        env = make("maze", disturbances=Disturbances.default(), shield="none")
        if name == "critic":
            env.unwrapped.set_shield(CriticReflex(tr.export(), LimitsReflex(env.unwrapped.limits)))
        policy = make_policy("scripted", env, 0)
        totals[name] = sum(run_episode(env, policy, ep).metrics["violations"] for ep in range(6))
    assert totals["critic"] < 0.5 * totals["none"], totals
