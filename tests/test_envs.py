"""Every registered task (parametrised over the registry, so a new task is covered the day it is
added): Gymnasium contract, registry metadata, reward terms; every arm task (``arm_tasks()``: the
impedance tasks, not the swimmer, whose own tests are tests/test_swimmer.py): determinism under
disturbances, the arm's info contract, bad actions, impedance configuration errors; then the
maze's walls with and without the reflex, and the disturbances (shifted walls, pushes).

Physics is checked by its effects: where the peg stops against a shifted wall, how far a push
moves the arm, what the contact force does when the reflex is on.
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robot_brain.envs import TASKS, Disturbances, ImpedanceTaskEnv, SwimmerEnv, make, resolve_task
from robot_brain.envs.maze import MazeEnv
from robot_brain.envs.reach import ReachEnv
from robot_brain.envs.registry import UnknownTaskError, arm_tasks

ALL_TASKS = tuple(TASKS)
ARM_TASKS = arm_tasks()  # tasks with an arm, an impedance layer and a reflex
INTO_WALL = np.array([1.0, 0.0, 1.0, 1.0], dtype=np.float32)  # maze: full step +x, stiffest


def _rollout(env, actions) -> tuple[list[np.ndarray], list[float], list[dict]]:
    obs, rewards, infos = [], [], []
    for a in actions:
        o, r, terminated, truncated, info = env.step(a)
        obs.append(o)
        rewards.append(r)
        infos.append(info)
        if terminated or truncated:
            break
    return obs, rewards, infos


# -- Gymnasium contract ---------------------------------------------------------------------------
@pytest.mark.parametrize("task", ALL_TASKS)
def test_check_env(task):
    env = make(task)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("task", ARM_TASKS)
def test_zero_action_steps_are_finite_and_shaped(task):
    env = make(task)
    obs, info = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and np.isfinite(obs).all()
    # Every task's reset info carries these (a task may add its own keys: reach-shared's "reached").
    assert {k: info[k] for k in ("is_success", "cost", "contact_force")} == {
        "is_success": False, "cost": 0.0, "contact_force": 0.0}
    start = env.unwrapped.state.ee_pos.copy()
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))
        assert obs.shape == env.observation_space.shape and obs.dtype == np.float64
        assert np.isfinite(obs).all() and np.isfinite(reward)
        assert not terminated and not truncated
    # Target = current pose: the arm holds still (gravity compensated).
    assert np.linalg.norm(env.unwrapped.state.ee_pos - start) < 2e-3


@pytest.mark.parametrize("task", ARM_TASKS)
def test_same_seed_same_episode_with_disturbances(task):
    """Same seed -> same observations, also with random pushes and shifted walls."""
    actions = np.random.default_rng(3).uniform(-1, 1, size=(40, len(make(task).action_space.low)))
    runs = []
    for _ in range(2):
        env = make(task, disturbances=Disturbances(push_rate=2.0, wall_shift=0.03))
        obs0, _ = env.reset(seed=11)
        obs, rewards, _ = _rollout(env, actions)
        runs.append((obs0, np.array(obs), np.array(rewards), env.unwrapped.episode.pushes))
    (o0a, oa, ra, pa), (o0b, ob, rb, pb) = runs
    np.testing.assert_array_equal(o0a, o0b)
    np.testing.assert_array_equal(oa, ob)
    np.testing.assert_array_equal(ra, rb)
    assert pa == pb and pa > 0


@pytest.mark.parametrize("task", ARM_TASKS)
def test_reward_is_the_sum_of_its_terms_and_info_contract(task):
    env = make(task, disturbances=Disturbances(push_rate=2.0))
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        _, reward, _, _, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        assert reward == pytest.approx(sum(info["reward_terms"].values()), abs=1e-12)
        assert {"cost", "is_success", "contact_force", "reward_terms", "interventions"} <= set(info)
        assert isinstance(info["is_success"], bool) and info["contact_force"] >= 0.0
        assert info["cost"] == (1.0 if "violation" in info else 0.0)


@pytest.mark.parametrize("task", ALL_TASKS)
def test_the_registry_reads_its_metadata_from_the_task(task):
    spec = TASKS[task]
    assert resolve_task(spec.env_id) is spec and spec.description == spec.env_class.description
    env = make(task)
    assert type(env.unwrapped) is spec.env_class and env.spec.id == spec.env_id
    assert env.unwrapped.config.max_episode_steps == spec.max_episode_steps
    env.close()


@pytest.mark.parametrize("task", ALL_TASKS)
def test_every_task_rewards_the_sum_of_its_terms_and_reports_cost_and_success(task):
    env = make(task)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(10):
        _, reward, _, _, info = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        assert reward == pytest.approx(sum(info["reward_terms"].values()), abs=1e-12)
        assert isinstance(info["is_success"], bool) and info["cost"] in (0.0, 1.0)
    env.close()


def test_arm_tasks_are_the_impedance_tasks_and_the_swimmer_is_not_one():
    assert set(ARM_TASKS) == {n for n, s in TASKS.items() if issubclass(s.env_class, ImpedanceTaskEnv)}
    assert {"reach", "maze", "peg-insertion", "wipe"} <= set(ARM_TASKS) and "swimmer" not in ARM_TASKS
    spec = TASKS["swimmer"]
    assert not spec.impedance and spec.env_class is SwimmerEnv and spec.max_episode_steps == 1000
    assert getattr(spec.config_type, "arm", None) is None  # code that needs an arm must ask first
    assert all(TASKS[t].config_type.arm is not None for t in ARM_TASKS)


def test_a_task_without_reflex_takes_no_critic_shield():
    """The CLI passes its default shield to every task: none/limits are accepted (the swimmer has
    no reflex to configure), a critic directory is refused in one line."""
    for shield in ("none", "limits"):
        env = make("swimmer", shield=shield, links=4)
        assert env.unwrapped.n_joints == 3
        env.close()
    with pytest.raises(ValueError, match="no reflex layer") as err:
        make("swimmer", shield="/some/critic")
    assert "\n" not in str(err.value)


def test_swimmer_options_reach_the_task_through_make():
    env = make("robot_brain/Swimmer-v0", links=10, max_episode_steps=3)
    assert env.unwrapped.n_joints == 9 and env.action_space.shape == (9,)
    env.reset(seed=0)
    _, _, infos = _rollout(env, [np.zeros(9, dtype=np.float32)] * 5)
    assert len(infos) == 3
    with pytest.raises(ValueError, match=r"links = 16 is outside \[3, 15\]"):
        make("swimmer", links=16)


def test_the_registry_has_the_four_arm_tasks():
    assert {"reach", "maze", "peg-insertion", "wipe"} <= set(TASKS)
    assert isinstance(make("maze").unwrapped, MazeEnv)
    assert isinstance(make("robot_brain/Reach-v0").unwrapped, ReachEnv)


@pytest.mark.parametrize("task", ARM_TASKS)
def test_every_option_is_validated_where_it_enters(task):
    """Unknown options are named with a suggestion; out-of-range impedance settings are refused
    with the field and its range (in the constructor, as through make and env_kwargs)."""
    with pytest.raises(ValueError, match=r"unknown option 'max_stp'.*did you mean 'max_step'"):
        make(task, max_stp=0.01)
    for bad in ({"fixed_stiffness": 1e12}, {"rot_stiffness": -100.0}, {"max_step": 1.0},
                {"stiffness_range": (10.0, float("inf"))}, {"damping_ratio": float("nan")},
                {"force_limit": 0.0}, {"policy_hz": 30.0}, {"disturbances": "lots"},
                {"max_episode_steps": 2.5}, {"terminate_on_violation": "yes"}):
        key = next(iter(bad))
        with pytest.raises(ValueError, match=key.split("_")[0]):
            TASKS[task].env_class(**bad)
    cfg = TASKS[task].config_type(max_step=0.01, stiffness_range=[200, 800])  # YAML spellings
    assert cfg.stiffness_range == (200.0, 800.0) and cfg.max_step == 0.01


@pytest.mark.parametrize(("name", "suggestion"), [("maez", "'maze'"), ("rech", "'reach'"),
                                                 ("robot_brain/Maze-v1", "'robot_brain/Maze-v0'")])
def test_unknown_task_suggests_the_closest(name, suggestion):
    with pytest.raises(UnknownTaskError, match=f"did you mean {suggestion}"):
        make(name)


def test_unknown_task_without_a_close_match_lists_the_known():
    with pytest.raises(UnknownTaskError, match="known: reach, maze, peg-insertion, wipe"):
        resolve_task("zzzzzzzz")


def test_max_episode_steps_reaches_the_task():
    env = make("maze", max_episode_steps=7)
    env.reset(seed=0)
    _, _, infos = _rollout(env, [np.zeros(4)] * 20)
    assert len(infos) == 7 and env.unwrapped.episode.steps == 7
    with pytest.raises(ValueError, match="max_episode_steps"):
        make("maze", max_episode_steps=0)


# -- bad actions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("task", ARM_TASKS)
def test_nonfinite_action_never_reaches_the_actuators(task, bad):
    """Every physics tick's actuator torque stays finite; the step is held and reported."""
    env = make(task)
    env.reset(seed=0)
    task_env = env.unwrapped
    backend = task_env.backend
    ctrl_log: list[np.ndarray] = []
    step = backend._step

    def recording_step(tau):
        step(tau)
        ctrl_log.append(backend.data.ctrl.copy())

    backend._step = recording_step  # every write and every hold goes through one physics step
    n = env.action_space.shape[0]
    good = np.full(n, 0.3)
    _rollout(env, [good] * 3)
    action = good.copy()
    action[0] = bad
    before = task_env.state.ee_pos.copy()
    _, _, _, _, info = env.step(action)
    ticks = task_env.loop_config.ticks_per_step
    assert "nonfinite_command" in info["events"]
    assert info["held_ticks"] == ticks  # the whole slow tick in hold
    assert np.linalg.norm(task_env.state.ee_pos - before) < 5e-3  # braked, not thrown
    _, _, _, _, info = env.step(good)  # the next good command is executed again
    assert info["held_ticks"] == 0
    assert len(ctrl_log) == 5 * ticks
    assert np.isfinite(np.array(ctrl_log)).all()


def test_action_of_wrong_shape_is_refused():
    env = make("maze")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(6))


# -- maze: walls, contact and the reflex ---------------------------------------------------------
def _drive_into_wall(shield, steps: int = 20):
    env = make("maze", shield=shield).unwrapped
    env.reset(seed=0)
    _, _, infos = _rollout(env, [INTO_WALL] * steps)
    return env, infos


def test_pressing_into_a_wall_without_reflex_is_a_contact_force_violation():
    env, infos = _drive_into_wall("none")
    violations = [i for i in infos if "violation" in i]
    assert violations and all(i["violation"] == "contact_force" for i in violations)
    assert all(i["contact_force"] > env.config.force_limit and i["cost"] == 1.0 for i in violations)
    assert env.episode.violation_kinds["contact_force"] == len(violations)
    # No reflex, so no reflex intervention (the safety envelope underneath may still bound the
    # spring: setpoint_lead).
    assert not set(env.episode.interventions) & {"contact_force", "critic", "workspace", "joint_limit"}


def test_the_limits_reflex_intervenes_and_lowers_the_contact_force():
    off, _ = _drive_into_wall("none")
    on, infos_on = _drive_into_wall("limits")
    assert on.episode.interventions["contact_force"] > 0
    assert any(i["interventions"] > 0 for i in infos_on)
    assert on.episode.max_contact_force < 0.6 * off.episode.max_contact_force
    assert on.episode.violations < off.episode.violations / 3
    # After the first contact the retreat keeps the force near the reflex threshold.
    late = [i["contact_force"] for i in infos_on[10:]]
    assert max(late) < on.config.force_limit


def test_the_peg_does_not_pass_through_a_wall():
    """Pressed at 1600 N/m (~32 N) for 4 s the peg stays in its corridor, at its height."""
    env = make("maze", shield="none").unwrapped
    env.reset(seed=0)
    _rollout(env, [np.array([1.0, 0.0, 0.8, 0.8])] * 80)
    face = env.model.body("wall_inner1").pos[0] - 0.01  # wall centre - half thickness
    assert env.episode.violations > 40  # pressing the whole time
    assert face - 0.012 < env.state.ee_pos[0] < face  # against the wall, on its side
    assert env.state.ee_pos[2] == pytest.approx(0.265, abs=2e-3)


def test_wall_shift_moves_the_inner_walls_but_not_the_waypoints():
    nominal = make("maze").unwrapped
    nominal.reset(seed=0)
    env = make("maze", disturbances=Disturbances(wall_shift=0.03)).unwrapped
    offsets = []
    for seed in range(4):
        env.reset(seed=seed)
        off = env.wall_offsets
        assert np.all(np.abs(off) <= 0.03) and np.any(np.abs(off) > 1e-3)
        for k, name in enumerate(("wall_inner1", "wall_inner2")):
            moved = env.backend.data.geom(name).xpos[:2] - nominal.backend.data.geom(name).xpos[:2]
            np.testing.assert_allclose(moved, off[k], atol=1e-9)
        offsets.append(off)
        np.testing.assert_array_equal(env.waypoints, nominal.waypoints)
    assert len({tuple(o.ravel()) for o in offsets}) == 4
    np.testing.assert_array_equal(nominal.wall_offsets, 0.0)


def test_a_shifted_wall_stops_the_peg_where_it_now_is():
    """The peg, pushed gently toward +x, comes to rest against the first inner wall; shifting the
    wall by dx moves that resting place by dx (the collision follows the moved wall)."""
    env = make("maze", shield="none", fixed_stiffness=300.0,
               disturbances=Disturbances(wall_shift=0.03)).unwrapped
    rest, shift = [], []
    for seed in range(3):
        env.reset(seed=seed)
        _rollout(env, [INTO_WALL] * 25)
        assert env.state.contact_force > 1.0  # resting against the wall
        rest.append(env.state.ee_pos[0])
        shift.append(env.wall_offsets[0, 0])
    np.testing.assert_allclose(np.diff(rest), np.diff(shift), atol=1.5e-3)


def test_maze_geometry_and_path_length():
    env = make("maze").unwrapped
    env.reset(seed=0)
    wps = env.waypoints
    assert not wps.flags.writeable
    np.testing.assert_allclose(env.state.ee_pos[:2], wps[0], atol=1e-4)  # starts at the start
    assert env.state.ee_pos[2] == pytest.approx(0.265, abs=1e-3)  # 1.5 cm above the table
    total = np.linalg.norm(np.diff(wps, axis=0), axis=1).sum()
    assert env.path_remaining() == pytest.approx(total, abs=1e-3)
    assert env.path_remaining(wps[-1]) == pytest.approx(0.0)
    assert env.path_remaining(wps[2]) == pytest.approx(total - np.linalg.norm(np.diff(wps[:3], axis=0),
                                                                              axis=1).sum())
    obs, *_ = env.step(np.zeros(4))
    tip = env.state.ee_pos[:2]
    np.testing.assert_allclose(obs[6:8], env.goal - tip)
    np.testing.assert_allclose(obs[8:10], wps[1] - tip)  # on the first segment: heading for wps[1]
    np.testing.assert_allclose(obs[10:12], env.state.wrench[:2] / 20.0)
    assert obs.shape == (12,)
    # Past the first turn the next waypoint is the third one.
    env.backend.set_state(env.posture_for(np.array([*(wps[1] + wps[2]) / 2, env.state.ee_pos[2]])))
    env.loop.state = env.backend.read()
    np.testing.assert_allclose(env._get_obs()[8:10], wps[2] - env.state.ee_pos[:2])


def test_maze_start_noise_varies_the_start():
    env = make("maze", start_noise=0.01).unwrapped
    starts = []
    for seed in range(3):
        env.reset(seed=seed)
        starts.append(env.state.ee_pos[:2].copy())
        assert np.all(np.abs(starts[-1] - env.waypoints[0]) <= 0.0101)
    assert np.ptp(np.array(starts), axis=0).max() > 1e-3


@pytest.mark.parametrize("kwargs", [{"goal_tolerance": 0.0}, {"reflex_force": -1.0},
                                    {"start_noise": 0.5}, {"limits": "strict"}])
def test_maze_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MazeEnv(**kwargs)


# -- pushes ---------------------------------------------------------------------------------------
def test_pushes_move_the_arm_and_are_not_contact():
    """With push_rate > 0 the tool is pushed (it moves though the action holds still), and a push
    in free space is not reported as a contact force (it is not a wall)."""
    moved = {}
    for rate in (0.0, 4.0):
        env = make("reach", disturbances=Disturbances(push_rate=rate)).unwrapped
        env.reset(seed=2)
        start = env.state.ee_pos.copy()
        obs, _, infos = _rollout(env, [np.zeros(6)] * 30)
        moved[rate] = max(np.linalg.norm(o[:3] - start) for o in obs)
        assert all(i["contact_force"] == 0.0 for i in infos)
        if rate == 0.0:
            assert env.episode.pushes == 0
        else:
            assert env.episode.pushes >= 2
    assert moved[0.0] < 1e-3 < 5e-3 < moved[4.0]
