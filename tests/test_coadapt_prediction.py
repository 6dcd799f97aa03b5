"""The forward models (robot_brain.coadapt.prediction) against physics: the arm model's closed
form against a fine-step integration of the same ODE, and against the simulated Panda of the
``reach`` task driven through the real two-rate loop; the human model against the goal belief."""

from __future__ import annotations

import numpy as np
import pytest

from robot_brain.coadapt.prediction import ArmForwardModel, HumanInputPredictor
from robot_brain.controllers import Command
from robot_brain.envs import make

MASS = np.array([2.0, 3.0, 1.5])
X0 = np.array([0.4, 0.0, 0.3])
V0 = np.array([0.05, -0.1, 0.02])
TARGET = np.array([0.44, 0.02, 0.27])
SETPOINT = np.array([0.41, 0.0, 0.3])


def _integrate(mass: np.ndarray, x: np.ndarray, v: np.ndarray, r0: np.ndarray, r1: np.ndarray,
               ramp: float, k: np.ndarray, zeta: np.ndarray, dt: float, steps: int,
               h: float = 1e-5) -> np.ndarray:
    """The same ODE, ``m x'' = K (r(t) - x) - 2 zeta sqrt(K m) x'``, by the midpoint rule with
    a fine step ``h``: positions at ``dt, 2 dt, ...``. Rows of ``x`` etc. are independent cases."""
    damping = 2 * zeta * np.sqrt(k * mass)

    def setpoint(t: float) -> np.ndarray:
        return r1 if ramp == 0 or t >= ramp else r0 + (r1 - r0) * t / ramp

    def acc(t: float, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return (k * (setpoint(t) - x) - damping * v) / mass

    n = round(dt / h)
    out, t = [], 0.0
    for _ in range(steps):
        for _ in range(n):
            xm, vm = x + 0.5 * h * v, v + 0.5 * h * acc(t, x, v)
            x, v = x + h * vm, v + h * acc(t + 0.5 * h, xm, vm)
            t += h
        out.append(x)
    return np.array(out)


# Stiffness and damping ratio per axis: under-, critically and overdamped, undamped, nearly
# critical from both sides (the closed form switches formulas there), and a free axis (K = 0).
CASES = [
    (np.full(3, 800.0), np.ones(3)),
    (np.full(3, 800.0), np.array([0.3, 1.0, 2.5])),
    (np.array([0.0, 500.0, 3000.0]), np.array([1.0, 1.0 - 1e-6, 1.0 + 1e-6])),
    (np.full(3, 800.0), np.zeros(3)),
]


@pytest.mark.parametrize("ramp", [0.0, 0.05, 0.12])
def test_closed_form_matches_fine_step_integration(ramp: float) -> None:
    model = ArmForwardModel(MASS)
    dt, steps = 0.05, 4
    setpoint = None if ramp == 0 else SETPOINT
    ks = np.stack([k for k, _ in CASES])
    zs = np.stack([z for _, z in CASES])
    n = len(CASES)
    reference = _integrate(np.tile(MASS, (n, 1)), np.tile(X0, (n, 1)), np.tile(V0, (n, 1)),
                           np.tile(SETPOINT if ramp else TARGET, (n, 1)), np.tile(TARGET, (n, 1)),
                           ramp, ks, zs, dt, steps)  # (steps, n, 3)
    for i, (k, z) in enumerate(CASES):
        pred = model.predict(X0, V0, TARGET, k, z, dt, steps, setpoint=setpoint, ramp=ramp)
        assert pred.shape == (steps, 3)
        np.testing.assert_allclose(pred, reference[:, i], atol=1e-8, rtol=0)  # 10 nm


def test_velocities_are_the_derivative_of_positions() -> None:
    model = ArmForwardModel(MASS)
    h = 1e-6
    pos, vel = model.predict_state(X0, V0, TARGET, 800.0, 0.7, 0.01, 20, setpoint=SETPOINT, ramp=0.05)
    later = model.predict_state(X0, V0, TARGET, 800.0, 0.7, 0.01, 20, setpoint=SETPOINT, ramp=0.05)
    assert np.array_equal(pos, later[0])  # a pure function
    shifted = np.array([model.predict(X0, V0, TARGET, 800.0, 0.7, t + h, 1, setpoint=SETPOINT,
                                      ramp=0.05)[0] for t in 0.01 * np.arange(1, 21)])
    np.testing.assert_allclose((shifted - pos) / h, vel, atol=1e-4)


def test_long_horizons_stay_finite_and_settle_on_the_target() -> None:
    model = ArmForwardModel([0.5, 0.5, 0.5])
    for zeta in (0.2, 1.0, 3.0):  # the overdamped closed form would overflow cosh at 3000 s
        pos = model.predict(X0, V0, TARGET, 5000.0, zeta, 1.0, 3000)
        assert np.isfinite(pos).all()
        np.testing.assert_allclose(pos[-1], TARGET, atol=1e-12)


def test_a_free_axis_keeps_its_velocity() -> None:
    pos = ArmForwardModel(MASS).predict(X0, V0, TARGET, [0.0, 0.0, 0.0], 1.0, 0.1, 3,
                                        setpoint=SETPOINT, ramp=0.05)
    np.testing.assert_allclose(pos, X0 + V0 * np.array([[0.1], [0.2], [0.3]]), atol=1e-15)


@pytest.mark.parametrize("kwargs, match", [
    ({"x": [0.0, 0.0]}, r"x must have shape \(3,\)"),
    ({"v": [0.0, np.nan, 0.0]}, "v must be finite"),
    ({"target": np.zeros((3, 1))}, "target must have shape"),
    ({"stiffness": -1.0}, "stiffness must be >= 0"),
    ({"stiffness": [1.0, 2.0]}, "stiffness must have shape"),
    ({"zeta": -0.5}, "zeta must be >= 0"),
    ({"dt": 0.0}, "dt must be"),
    ({"dt": float("inf")}, "dt must be"),
    ({"steps": -1}, "steps must be"),
    ({"steps": 2.0}, "steps must be"),
    ({"ramp": -0.1}, "ramp must be"),
    ({"setpoint": [1.0]}, "setpoint must have shape"),
])
def test_bad_arguments_are_refused_in_one_line(kwargs: dict, match: str) -> None:
    args = {"x": X0, "v": V0, "target": TARGET, "stiffness": 800.0, "zeta": 1.0, "dt": 0.05,
            "steps": 3, **kwargs}
    with pytest.raises(ValueError, match=match) as info:
        ArmForwardModel(MASS).predict(**args)
    assert len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize("mass", [[1.0, 0.0, 1.0], [1.0, -2.0, 1.0], [1.0, 1.0], [np.inf, 1, 1]])
def test_bad_masses_are_refused(mass: list) -> None:
    with pytest.raises(ValueError, match="mass"):
        ArmForwardModel(mass)


# -- against the simulated arm ---------------------------------------------------------------
STIFFNESS = 800.0  # N/m, fixed: the reach task's mid range
TICKS = 8  # slow ticks compared (0.4 s at 20 Hz)
#: Largest error allowed between the predicted and the simulated tool position [m]. Measured
#: (MuJoCo 3.3, the Panda at home_q, 800 N/m, zeta 1, 4-5 cm moves over 0.4 s): at most 3.3 mm
#: for a step command, 2.9 mm for a ramped one; the model leaves out the off-diagonal task
#: inertia (coupling through the 60 N m/rad orientation spring), the change of the inertia along
#: the move, joint friction and the torque-rate limit.
BOUND = 0.006
MOVES = [(0.04, 0.0, 0.0), (0.0, -0.04, 0.0), (0.0, 0.0, -0.04), (0.03, -0.03, 0.02)]


@pytest.fixture(scope="module")
def reach():
    env = make("reach", fixed_stiffness=STIFFNESS)
    yield env.unwrapped
    env.close()


def _command(task, target: np.ndarray) -> Command:
    """A constant command as ``action_to_command`` builds it: ``target``, the task's stiffness,
    damping ratio and tool-down orientation."""
    cfg = task.config
    stiffness = np.array([STIFFNESS] * 3 + [cfg.rot_stiffness] * 3)
    return Command(stiffness, np.full(6, cfg.damping_ratio), position=np.array(target, dtype=float),
                   orientation=np.array(task.arm.tool_down, dtype=float))


def _simulate(task, target: np.ndarray) -> np.ndarray:
    """Tool positions after each of :data:`TICKS` slow ticks of the loop under the constant
    command to ``target``. A step of the setpoint trips the torque-rate limit for a few ticks
    (part of what the model leaves out); no reflex or envelope event may distort the run."""
    command = _command(task, target)
    positions = []
    for _ in range(TICKS):
        task.loop.step(command)
        positions.append(task.state.ee_pos.copy())
    events = {e.reason for e in task.loop.events.events} - {"torque_rate"}
    assert not events, f"events during the run: {sorted(events)}"
    return np.array(positions)


@pytest.mark.parametrize("move", MOVES)
@pytest.mark.parametrize("ramped", [False, True], ids=["step", "ramp"])
def test_prediction_matches_the_simulated_reach_task(reach, move: tuple, ramped: bool) -> None:
    """From rest, a target 4-5 cm away held at 800 N/m: the predicted tool position at each slow
    tick is within :data:`BOUND` of MuJoCo's. ``step``: the setpoint jumps to the target (the
    interpolator is reset onto it); ``ramp``: the loop's own interpolator ramps the setpoint
    over the first slow tick, which the model is told (``setpoint``, ``ramp``)."""
    task = reach
    task.reset(seed=0)
    dt = 1.0 / task.config.policy_hz
    x0 = task.state.ee_pos.copy()
    if ramped:  # settle at the test stiffness first, so that only the position ramps
        for _ in range(3):
            task.loop.step(_command(task, x0))
        x0 = task.state.ee_pos.copy()
    v0 = task.state.ee_vel[:3].copy()
    assert np.abs(v0).max() < 1e-4  # from rest
    target = x0 + np.array(move)
    model = ArmForwardModel.from_robot(task.robot)
    if ramped:
        pred = model.predict(x0, v0, target, STIFFNESS, task.config.damping_ratio, dt, TICKS,
                             setpoint=x0, ramp=dt)
    else:
        task.loop.interpolator.reset(_command(task, target))
        pred = model.predict(x0, v0, target, STIFFNESS, task.config.damping_ratio, dt, TICKS)
    sim = _simulate(task, target)
    err = np.linalg.norm(pred - sim, axis=1)
    assert err.max() < BOUND, f"prediction error {np.round(err * 1e3, 2).tolist()} mm"
    # And a useful prediction: far better than "the tool stays put" or "it is at the target".
    travelled = np.linalg.norm(sim - x0, axis=1)
    assert err.max() < 0.2 * travelled.max()
    assert err.max() < 0.3 * np.linalg.norm(sim - target, axis=1).max()


def test_the_ramp_is_worth_modelling(reach) -> None:
    """With the loop's ramp, predicting as if the setpoint had jumped is worse than telling the
    model about the ramp."""
    task = reach
    task.reset(seed=0)
    dt = 1.0 / task.config.policy_hz
    for _ in range(3):
        task.loop.step(_command(task, task.state.ee_pos.copy()))
    x0, v0 = task.state.ee_pos.copy(), task.state.ee_vel[:3].copy()
    target = x0 + np.array(MOVES[-1])
    model = ArmForwardModel.from_robot(task.robot)
    zeta = task.config.damping_ratio
    ramped = model.predict(x0, v0, target, STIFFNESS, zeta, dt, TICKS, setpoint=x0, ramp=dt)
    jumped = model.predict(x0, v0, target, STIFFNESS, zeta, dt, TICKS)
    sim = _simulate(task, target)
    assert np.abs(ramped - sim).max() < 0.7 * np.abs(jumped - sim).max()


def test_from_robot_uses_the_controllers_task_inertia(reach) -> None:
    reach.reset(seed=0)
    model = ArmForwardModel.from_robot(reach.robot)
    np.testing.assert_allclose(model.mass, np.diag(reach.robot.task_inertia())[:3])
    assert (model.mass > 0.5).all() and (model.mass < 50).all()  # kg: a Panda's tool


# -- the human ---------------------------------------------------------------------------------
GOALS = np.array([[0.5, 0.2, 0.3], [0.5, -0.2, 0.3], [0.3, 0.0, 0.5]])
TOOL = np.array([0.4, 0.0, 0.3])


def test_the_predicted_input_points_to_the_likely_goal() -> None:
    h = HumanInputPredictor()
    for _ in range(5):
        h.observe(np.array([0.3, 0.4, 0.0]))  # magnitude 0.5
    assert h.speed == pytest.approx(0.5)
    u = h.predict(TOOL, GOALS, [0.05, 0.9, 0.05])
    to_goal = (GOALS[1] - TOOL) / np.linalg.norm(GOALS[1] - TOOL)
    assert float(u @ to_goal) / np.linalg.norm(u) > 0.95
    # Certain of one goal: exactly the habitual speed toward it.
    np.testing.assert_allclose(h.predict(TOOL, GOALS, [0, 1, 0]), 0.5 * to_goal)
    # Probabilities need not be normalised.
    np.testing.assert_allclose(h.predict(TOOL, GOALS, [0, 4, 0]), 0.5 * to_goal)


def test_speed_is_a_moving_average_that_ignores_pauses() -> None:
    h = HumanInputPredictor(smoothing=0.5)
    assert h.speed == 0.0
    np.testing.assert_array_equal(h.predict(TOOL, GOALS, [1, 0, 0]), np.zeros(3))  # nothing seen
    h.observe(np.array([0.8, 0.0, 0.0]))  # the first input sets the average
    assert h.speed == pytest.approx(0.8)
    h.observe(None)  # no input: unchanged
    assert h.speed == pytest.approx(0.8)
    h.observe(np.array([0.0, 0.4, 0.0]))
    assert h.speed == pytest.approx(0.6)
    h.reset()
    assert h.speed == 0.0


def test_at_a_goal_it_contributes_no_direction() -> None:
    h = HumanInputPredictor()
    h.observe(np.array([1.0, 0.0, 0.0]))
    np.testing.assert_array_equal(h.predict(GOALS[0], GOALS, [1, 0, 0]), np.zeros(3))
    u = h.predict(GOALS[0], GOALS, [0.5, 0.5, 0])  # half at goal 0, half toward goal 1
    np.testing.assert_allclose(np.linalg.norm(u), 0.5)


@pytest.mark.parametrize("args, match", [
    ((TOOL, GOALS, [0.5, 0.5]), "probs must have shape"),
    ((TOOL, GOALS, [0.0, 0.0, 0.0]), "not all 0"),
    ((TOOL, GOALS, [1.0, -0.5, 0.5]), ">= 0"),
    ((TOOL, GOALS[0], [1.0]), "goals must have shape"),
    ((TOOL[:2], GOALS, [1, 0, 0]), "tool must have shape"),
])
def test_human_predictor_refuses_bad_arguments(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HumanInputPredictor().predict(*args)
    with pytest.raises(ValueError, match="u must"):
        HumanInputPredictor().observe(np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="smoothing"):
        HumanInputPredictor(smoothing=0.0)
