"""The two-rate loop: its schedule, and its answer to bad input (hold + event, never a raise).

Invariants 1 and 2 of the architecture: no NaN/inf ever reaches ``write``; a bad state or
command, a failed read or a stale state puts the backend in ``hold()`` and logs an event.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DOWN, build_arm, build_mock

from robot_brain.controllers import Command, TorqueLimiter
from robot_brain.envs import panda
from robot_brain.hardware import MockBackend
from robot_brain.runtime import LoopConfig, TwoRateLoop
from robot_brain.safety import LimitsReflex

RATES = [(20.0, 1000.0), (10.0, 500.0), (25.0, 100.0)]


def _good(x=0.5) -> Command:
    return Command.cartesian((x, 0.0, 0.4), DOWN, (800.0, 800.0, 800.0, 60.0, 60.0, 60.0))


def _assert_all_writes_finite(backend: MockBackend) -> None:
    assert backend.writes, "nothing was written at all"
    assert all(np.isfinite(w).all() for w in backend.writes)


# -- schedule -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("policy_hz", "control_hz"), RATES)
def test_fast_ticks_per_slow_tick_mock(policy_hz, control_hz):
    stack = build_mock(policy_hz=policy_hz, control_hz=control_hz)
    per_step = round(control_hz / policy_hz)
    for i in range(1, 6):
        stats = stack.loop.step(_good())
        assert stats.ticks == per_step
        assert len(stack.backend.writes) + stack.backend.holds == i * per_step
        assert stack.backend.reads == 1 + i * per_step  # one read per tick, plus the reset's
    assert stack.backend.holds == 0
    assert stack.loop.tick_count == 5 * per_step and stack.loop.step_count == 5
    assert stack.backend.t == pytest.approx(5 / policy_hz)


@pytest.mark.parametrize(("policy_hz", "control_hz"), RATES[:2])
def test_fast_ticks_per_slow_tick_mujoco(policy_hz, control_hz):
    """One backend write = one control period of physics, control_hz/policy_hz per slow tick."""
    arm = build_arm(policy_hz=policy_hz, control_hz=control_hz)
    cmd = arm.hold_command()
    t0 = arm.backend.time
    for i in range(1, 4):
        arm.loop.step(cmd)
        assert len(arm.backend.requested) == i * round(control_hz / policy_hz)
    assert arm.backend.holds == 0
    assert arm.backend.time - t0 == pytest.approx(3 / policy_hz)
    assert arm.backend.substeps == round(1000.0 / control_hz)  # 1 ms physics step


@pytest.mark.parametrize(("policy_hz", "control_hz"), [(30.0, 1000.0), (20.0, 1010.0), (2000.0, 1000.0)])
def test_non_integer_rate_ratio_is_refused(policy_hz, control_hz):
    with pytest.raises(ValueError, match="control_hz/policy_hz must be a positive integer"):
        LoopConfig(policy_hz=policy_hz, control_hz=control_hz)


@pytest.mark.parametrize("bad", [{"policy_hz": 0.0}, {"control_hz": -1.0}, {"state_timeout": 0.0}])
def test_bad_loop_config_is_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
        LoopConfig(**bad)


def test_backend_period_must_match_control_rate():
    backend = MockBackend(7, dt=0.002)
    limiter = TorqueLimiter(panda.TAU_MAX, panda.TAU_RATE_MAX, 0.001)
    with pytest.raises(ValueError, match="does not match control_hz"):
        TwoRateLoop(backend, object(), limiter, config=LoopConfig(control_hz=1000.0))


# -- non-finite commands and states -------------------------------------------------------------------
@pytest.mark.parametrize("field", ["position", "orientation", "stiffness", "damping_ratio"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_command_never_reaches_write(field, value):
    stack = build_mock()
    stack.loop.step(_good())
    writes_before = len(stack.backend.writes)
    bad = _good()
    getattr(bad, field)[1] = value
    stats = stack.loop.step(bad)  # must not raise
    assert stats.held_ticks == 50 and stack.backend.holds == 50
    assert len(stack.backend.writes) == writes_before  # nothing written during the bad step
    events = stack.loop.events.events
    assert [e.reason for e in events] == ["nonfinite_command"]  # one onset, not one per tick
    assert stack.loop.events.ticks["nonfinite_command"] == 50
    stack.loop.step(_good())  # the next good command is executed again
    assert len(stack.backend.writes) == writes_before + 50
    _assert_all_writes_finite(stack.backend)


def test_nonfinite_state_is_held_and_reported():
    stack = build_mock()
    stack.backend.inject_nan_at = {10, 11, 12, 40}
    stats = stack.loop.step(_good())
    assert stats.held_ticks == 4 and stack.backend.holds == 4
    assert len(stack.backend.writes) == 46
    reasons = [e.reason for e in stack.loop.events.events]
    assert reasons == ["nonfinite_state", "nonfinite_state"]  # two onsets: reads 10-12 and 40
    assert stack.loop.events.events[0].t > 0.0  # stamped with the last good time, not NaN
    _assert_all_writes_finite(stack.backend)


def test_nonfinite_torque_from_the_controller_is_held():
    stack = build_mock()

    class Broken:
        tau = np.full(7, np.nan)

        def torque(self, state, setpoint):
            return self.tau

    stack.loop.controller = Broken()
    stats = stack.loop.step(_good())
    assert stats.held_ticks == 50 and not stack.backend.writes
    assert [e.reason for e in stack.loop.events.events] == ["nonfinite_torque"]


def test_stale_state_holds_after_the_timeout():
    timeout = 0.02
    stack = build_mock(state_timeout=timeout)
    stack.loop.step(_good())
    writes = len(stack.backend.writes)
    stack.backend.freeze_time = True
    stats = stack.loop.step(_good())  # the clock stops: only the first read is fresh
    # Stale ticks are written until more than ``timeout`` has passed (20 ticks), then held.
    within = round(timeout / 0.001)
    assert stats.held_ticks == 50 - 1 - within
    assert len(stack.backend.writes) == writes + 1 + within
    assert [e.reason for e in stack.loop.events.events] == ["stale_state"]
    assert stack.loop.events.events[0].value > timeout
    stack.backend.freeze_time = False  # fresh state again: the loop resumes writing
    stats = stack.loop.step(_good())
    assert stats.held_ticks == 1  # the first read still carries the old timestamp
    _assert_all_writes_finite(stack.backend)


def test_failing_reads_hold_and_report():
    stack = build_mock()
    stack.backend.fail_reads = 3
    stats = stack.loop.step(_good())
    assert stats.held_ticks == 3 and stack.backend.holds == 3
    assert len(stack.backend.writes) == 47
    events = stack.loop.events.events
    assert [e.reason for e in events] == ["read_error"]
    assert stack.loop.events.ticks["read_error"] == 3


def test_random_faults_never_raise_and_never_write_nonfinite():
    """A storm of faults (NaN/inf commands, NaN states, failed reads, frozen clock) on a loop
    with the limits reflex: the loop never raises, every write is finite and every fault tick is
    answered by a hold."""
    rng = np.random.default_rng(1)
    stack = build_mock(reflex=LimitsReflex())
    backend = stack.backend
    for i in range(60):
        cmd = Command.cartesian(rng.uniform(-1, 1, 3), DOWN, rng.uniform(0, 3000, 6))
        kind = i % 6
        if kind == 1:
            cmd.position[rng.integers(3)] = rng.choice([np.nan, np.inf, -np.inf])
        elif kind == 2:
            cmd.stiffness[rng.integers(6)] = np.nan
        elif kind == 3:
            backend.inject_nan_at = set((backend.reads + rng.integers(1, 50, 5)).tolist())
        elif kind == 4:
            backend.fail_reads = int(rng.integers(1, 10))
        backend.freeze_time = kind == 5
        stats = stack.loop.step(cmd)
        assert stats.ticks == 50
    _assert_all_writes_finite(backend)
    assert len(backend.writes) + backend.holds == 60 * 50
    counts = stack.loop.events.counts()
    for reason in ("nonfinite_command", "nonfinite_state", "read_error", "stale_state"):
        assert counts[reason] > 0, reason


def test_resume_after_hold_is_rate_limited(make_arm):
    """After a hold the first torques ramp from what the hold applied (no jump back)."""
    arm = make_arm()
    far = arm.hold_command(stiffness=(3000.0, 3000.0, 3000.0, 200.0, 200.0, 200.0),
                           position=arm.loop.state.ee_pos + np.array([0.3, 0.3, -0.2]))
    arm.loop.step(far)  # large torques
    bad = far.copy()
    bad.position[0] = np.nan
    arm.loop.step(bad)  # held: the brake ramps toward gravity compensation + damping
    arm.loop.step(far)
    ctrl = np.array(arm.backend.ctrl)
    assert arm.backend.holds == 50
    assert np.abs(np.diff(ctrl, axis=0)).max() <= panda.TAU_RATE_MAX * 0.001 + 1e-9


def test_wall_clock_paces_ticks_and_counts_overruns():
    """The clock of a real robot: tick k starts no earlier than k periods after start(); a tick
    that starts more than a period late is an overrun (not caught up)."""
    import time

    from robot_brain.runtime import WallClock

    clock = WallClock()
    period = 0.002
    clock.start()
    t0 = time.perf_counter()
    starts = []
    for k in range(20):
        clock.wait(k, period)
        starts.append(time.perf_counter() - t0)
    assert all(s >= k * period - 1e-4 for k, s in enumerate(starts))
    assert clock.overruns == 0 or starts[-1] > 19 * period  # a loaded machine may only be late
    time.sleep(0.02)  # ten periods of work in one tick
    clock.wait(20, period)
    assert clock.overruns >= 1
    with pytest.raises(ValueError, match="spin"):
        WallClock(spin=-1.0)


def test_after_a_state_fault_the_setpoint_restarts_at_the_measured_pose():
    """A robot that stopped answering and came back somewhere else (restarted at another pose):
    the loop does not pull it toward the old setpoint, it restarts from where the tool is."""
    stack = build_mock(state_timeout=0.005)
    stack.loop.step(_good(0.52))  # the setpoint ramps to x = 0.52
    assert stack.loop.last_setpoint.position[0] == pytest.approx(0.52)
    stack.backend.freeze_time = True
    stack.loop.step(_good(0.52))  # no fresh state: held
    assert "stale_state" in [e.reason for e in stack.loop.events.events]
    stack.backend.ee_pos[:] = (0.3, 0.1, 0.35)  # the robot is back, elsewhere
    stack.backend.freeze_time = False
    for _ in range(3):
        stack.loop.tick()  # the rest of the aborted command is dropped, not resumed
    np.testing.assert_allclose(stack.loop.last_setpoint.position, (0.3, 0.1, 0.35))
    # The stiffness and damping of the command are kept; a new command ramps from here.
    np.testing.assert_allclose(stack.loop.last_setpoint.stiffness, _good().stiffness)
    near = Command.cartesian((0.32, 0.1, 0.35), DOWN, _good().stiffness)
    stack.loop.step(near)
    np.testing.assert_allclose(stack.loop.last_setpoint.position, (0.32, 0.1, 0.35))


class _OverrideFor:
    """A reflex that replaces the setpoint with ``override`` on ticks ``[first, last)`` and lets
    go after (a stand-in for a critic that engages and releases mid-command)."""

    def __init__(self, override: Command, first: int, last: int) -> None:
        self.override, self.first, self.last = override, first, last

    def reset(self, state) -> None:
        pass

    def new_command(self, command) -> None:
        pass

    def check(self, tick, state, setpoint, log):
        return self.override if self.first <= tick < self.last else setpoint


@pytest.mark.parametrize("release", [20, 45])
def test_a_reflex_that_lets_go_mid_command_hands_back_without_a_jump(release):
    """The reflex holds a soft setpoint 2 cm short of the ramp from tick 10 and lets go at tick
    ``release``: the executed setpoint resumes from the override and ramps on to the command's
    target in even ticks (over the rest of the slow tick, at least 25 ticks; a new command then
    ramps on from where it got), stiffness too. Before, it jumped back onto the aborted ramp
    (2-3 cm and 300-700 N/m at once)."""
    soft = Command.cartesian((0.48, 0.0, 0.4), DOWN, (200.0, 200.0, 200.0, 60.0, 60.0, 60.0))
    stack = build_mock(reflex=_OverrideFor(soft, 10, release))
    executed: list[np.ndarray] = []
    stack.loop.on_setpoint = lambda state, sp: executed.append(np.r_[sp.position, sp.stiffness[0]])
    target = _good(0.53)
    stack.loop.step(target)
    stack.loop.step(target)
    x = np.array(executed)
    np.testing.assert_allclose(x[release - 1], (0.48, 0.0, 0.4, 200.0))  # the override
    ramp = max(50 - release, 25)
    step = (np.r_[target.position, target.stiffness[0]] - x[release - 1]) / ramp
    even = min(ramp, 50 - release)  # the ticks of this command
    np.testing.assert_allclose(np.diff(x[release - 1:release + even], axis=0), np.tile(step, (even, 1)),
                               atol=1e-9)
    assert (np.abs(np.diff(x[release - 1:], axis=0)) <= np.abs(step) + 1e-9).all()  # never a jump
    np.testing.assert_allclose(x[-1], (0.53, 0.0, 0.4, 800.0))
