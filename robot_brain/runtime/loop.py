"""``TwoRateLoop``: the one fast loop, for simulation and real robots alike.

Slow tick (``policy_hz``): a new :class:`Command` arrives. Fast ticks (``control_hz``, exactly
``control_hz / policy_hz`` per slow tick)::

    state = backend.read()                  # RobotState
    a_hat = interpolator.step()             # intermediate setpoint toward the command
    a_hat = reflex.check(tick, state, a_hat, events)   # hard limits; learned critic over them
    a_hat = envelope.apply(tick, state, a_hat, events) # speed, stiffness, spring energy: always
    tau   = controller.torque(state, a_hat) # variable impedance + bias compensation
    tau   = limiter(tau)                    # torque and torque-rate limits, NaN filtered
    backend.write(tau)                      # sim: mj_step; ROS 2: effort command; serial: goal

A reflex that lets go in the middle of a command hands back smoothly: the interpolator ramps
from the setpoint the reflex executed last to the command's target
(:meth:`SetpointInterpolator.restart`: by the end of the slow tick, in no less than half of
one), instead of jumping to where the aborted ramp had got to (a jump of up to a whole command
at the command's stiffness, an impact when the target lies behind an obstacle the reflex had
kept the tool from). After a slow tick with an intervention, the next command ramps from the
executed setpoint likewise.

A backend with the ``impedance`` interface gets the setpoint instead (``backend.write_setpoint(
a_hat)``): the robot's own impedance controller makes the torque; the reflex and the envelope
protect it the same way.

Faults never raise out of a fast tick: a non-finite state or command, a failed or stale read,
or a non-finite torque puts the backend in ``hold()`` and logs an event (invariants 1 and 2).
After a hold for a bad or missing state (a robot that stopped answering and came back), the
setpoint is put back on the measured tool pose before the loop writes again, so the arm resumes
from where it is instead of springing toward where it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot_brain.controllers import Command, Controller, RobotState, SetpointInterpolator, TorqueLimiter
from robot_brain.controllers.limits import NONFINITE, RATE_LIMITED, SATURATED
from robot_brain.hardware.base import Backend, BackendError
from robot_brain.safety.envelope import EnvelopeConfig, SafetyEnvelope
from robot_brain.safety.events import EventLog
from robot_brain.safety.reflex import Reflex

from .clock import Clock, SimClock

__all__ = ["LoopConfig", "StepStats", "TwoRateLoop"]


@dataclass(frozen=True)
class LoopConfig:
    """Rates and fault handling of the loop.

    :param policy_hz: slow-tick rate of the task policy [Hz].
    :param control_hz: fast-tick rate of reflex + controller [Hz]; an integer multiple of
        ``policy_hz``.
    :param state_timeout: longest time without a fresh state before the backend is held [s].
    """

    policy_hz: float = 20.0
    control_hz: float = 1000.0
    state_timeout: float = 0.02

    def __post_init__(self) -> None:
        if not (self.policy_hz > 0 and self.control_hz > 0):
            raise ValueError(f"rates must be positive, got policy_hz={self.policy_hz}, "
                             f"control_hz={self.control_hz}")
        ratio = self.control_hz / self.policy_hz
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"control_hz/policy_hz must be a positive integer, got "
                             f"{self.control_hz:g}/{self.policy_hz:g} = {ratio:g}")
        if self.state_timeout <= 0:
            raise ValueError(f"state_timeout must be > 0 s, got {self.state_timeout}")

    @property
    def ticks_per_step(self) -> int:
        return round(self.control_hz / self.policy_hz)

    @property
    def control_dt(self) -> float:
        return 1.0 / self.control_hz


@dataclass
class StepStats:
    """What happened during one slow tick (the env turns this into reward, cost and info)."""

    ticks: int = 0
    held_ticks: int = 0
    # ticks whose setpoint the reflex or the envelope changed (a learner may leave such steps out
    # of its replay buffer: the outcome was not its action's)
    overridden_ticks: int = 0
    max_contact_force: float = 0.0
    wall_time: float = 0.0  # seconds spent in the slow tick (excluding the policy)


class TwoRateLoop:
    """Run commands through interpolation, reflex, controller and limits at the control rate.

    :param backend: the robot (sim or real); its ``dt`` must equal ``1/control_hz``.
    :param controller: a :class:`robot_brain.controllers.Controller` (e.g. CartesianImpedance).
    :param limiter: torque/torque-rate limiter applied to every torque before ``write``.
    :param reflex: fast-tick :class:`robot_brain.safety.Reflex` (e.g. ``LimitsReflex``); the
        loop owns it (tasks change it with ``env.set_shield``); ``None`` runs without one (only
        for comparisons; limits on torque stay in force).
    :param config: rates and timeouts.
    :param clock: :class:`SimClock` (default) or :class:`WallClock` for real robots.
    :param envelope: the bounds of :class:`robot_brain.safety.SafetyEnvelope`, applied after the
        reflex on every tick whatever the reflex (default: :class:`EnvelopeConfig`'s).
    """

    def __init__(self, backend: Backend, controller: Controller, limiter: TorqueLimiter, *,
                 reflex: Reflex | None = None, config: LoopConfig | None = None,
                 clock: Clock | None = None, envelope: EnvelopeConfig | None = None) -> None:
        self.config = cfg = config or LoopConfig()
        if abs(backend.dt - cfg.control_dt) > 1e-12:
            raise ValueError(f"backend dt {backend.dt} s does not match control_hz "
                             f"{cfg.control_hz:g} (dt {cfg.control_dt} s)")
        self.backend = backend
        self.controller = controller
        self.limiter = limiter
        self.reflex = reflex
        self.envelope = SafetyEnvelope(envelope, dt=cfg.control_dt)
        self.clock = clock or SimClock()
        self.interpolator = SetpointInterpolator(cfg.ticks_per_step)
        self.events = EventLog()
        self.tick_count = 0
        self.step_count = 0
        self.state: RobotState | None = None
        self.last_setpoint: Command | None = None  # the setpoint executed on the last tick
        # Called with (state, setpoint) on every tick that executes a setpoint (a flight
        # recorder's tap); None costs one attribute check.
        self.on_setpoint: Callable[[RobotState, Command], None] | None = None
        self._last_t = -np.inf
        self._stale_ticks = 0
        self._command_ok = True
        self._intervened = False
        self._reflexed = False  # the reflex changed the setpoint on the last tick
        self._resume = False  # True after a hold: the next write restarts the rate limiter
        self._reseat = False  # True after a state fault: the setpoint restarts at the measured pose
        self._impedance = backend.interface == "impedance"
        self.stats = StepStats()
        self._dt = cfg.control_dt

    # -- lifecycle ---------------------------------------------------------------------------
    def reset(self, setpoint: Command, tau0: np.ndarray | None = None) -> RobotState:
        """Start from ``setpoint`` (usually the current pose) with torques ``tau0`` applied."""
        self.backend.activate()
        self.state = self.backend.read()
        self.interpolator.reset(setpoint)
        self.last_setpoint = self.interpolator.setpoint
        self.limiter.reset(tau0)
        if self.reflex is not None:
            self.reflex.reset(self.state)
        self.envelope.reset()
        self.events.clear()
        self.tick_count = self.step_count = 0
        self._last_t = -np.inf
        self._stale_ticks = 0
        self._intervened = self._reflexed = False
        self._resume = False
        self._reseat = False
        self.clock.start()
        return self.state

    # -- slow tick ---------------------------------------------------------------------------
    def step(self, command: Command) -> StepStats:
        """Execute ``command`` for one slow tick (``ticks_per_step`` fast ticks)."""
        t0 = time.perf_counter()
        self.stats = st = StepStats()
        self._command_ok = command.is_finite()
        if not self._command_ok:
            t = self.state.t if self.state is not None else 0.0
            self.events.mark("nonfinite_command", t, self.tick_count)
        else:
            if self._intervened:  # a reflex aborted the last command: ramp from what was executed
                assert self.last_setpoint is not None  # set by the tick that intervened
                self.interpolator.reset(self.last_setpoint)
                self._intervened = self._reflexed = False
            self.interpolator.set_target(command)
            if self.reflex is not None:
                self.reflex.new_command(command)
            self.envelope.new_command()
        for _ in range(self.config.ticks_per_step):
            self.tick()
        self.step_count += 1
        st.wall_time = time.perf_counter() - t0
        return st

    # -- fast tick ---------------------------------------------------------------------------
    def _hold(self, reason: str, t: float, value: float = 0.0, *, state_fault: bool = False) -> None:
        self.events.mark(reason, t, self.tick_count, value)
        self.backend.hold()
        self._resume = True
        self._reseat = self._reseat or state_fault
        self.stats.held_ticks += 1

    def _reseat_setpoint(self, state: RobotState) -> None:
        """Restart the interpolation at the measured pose (keeping stiffness and damping) and
        drop the rest of the current command (a new one comes at the next slow tick)."""
        current = self.interpolator.setpoint
        assert current is not None  # reset() set it
        sp = current.copy()
        if sp.joint_position is not None:
            sp.joint_position[:] = state.q
        else:
            sp.position = np.array(state.ee_pos, dtype=np.float64)
            sp.orientation = np.array(state.ee_quat, dtype=np.float64)
        self.interpolator.reset(sp)
        self._intervened = self._reflexed = False
        self._reseat = False

    def tick(self) -> None:  # noqa: C901 - one flat fast path: each helper call costs ~0.2 us
        """One fast tick. Real-time safe in the common path: no allocation, no I/O, no raise."""
        k = self.tick_count
        self.clock.wait(k, self._dt)
        self.tick_count = k + 1
        stats = self.stats
        stats.ticks += 1
        ev = self.events
        try:
            state = self.backend.read()
        except BackendError:
            self._hold("read_error", self.state.t if self.state is not None else 0.0, state_fault=True)
            ev.end_tick()
            return
        self.state = state
        if not state.is_finite():
            self._hold("nonfinite_state", max(self._last_t, 0.0), state_fault=True)  # last good time
            ev.end_tick()
            return
        # Staleness: a state whose time does not advance is not fresh (invariant 2).
        if state.t <= self._last_t:
            self._stale_ticks += 1
            if self._stale_ticks * self._dt > self.config.state_timeout:
                self._hold("stale_state", state.t, self._stale_ticks * self._dt, state_fault=True)
                ev.end_tick()
                return
        else:
            self._stale_ticks = 0
            self._last_t = state.t
        if not self._command_ok:
            self._hold("nonfinite_command", state.t)
            ev.end_tick()
            return
        f = state.contact_force
        if f > stats.max_contact_force:
            stats.max_contact_force = f
        if self._reseat:
            self._reseat_setpoint(state)
        sp = self.interpolator.step()
        if self.reflex is not None:
            out = self.reflex.check(k, state, sp, ev)
            if out is not sp:
                self._reflexed = True
            elif self._reflexed:  # the reflex let go mid-command: ramp on from what it executed
                assert self.last_setpoint is not None  # set by the tick that intervened
                out = self.interpolator.restart(self.last_setpoint)
                self._intervened = self._reflexed = False
            sp = out
        sp = self.envelope.apply(k, state, sp, ev)
        if sp is not self.interpolator.setpoint:
            self._intervened = True
            stats.overridden_ticks += 1
        self.last_setpoint = sp
        if self.on_setpoint is not None:
            self.on_setpoint(state, sp)
        if self._impedance:  # the robot's own impedance controller makes the torque
            self._resume = False
            self.backend.write_setpoint(sp)
            ev.end_tick()
            return
        limiter = self.limiter
        if self._resume:  # first write after a hold: rate-limit from the torque the hold
            limiter.reset(state.tau)  # applied, not from the one before the fault
            self._resume = False
        tau = limiter(self.controller.torque(state, sp))
        flags = limiter.flags
        if flags:
            if flags & NONFINITE:
                self._hold("nonfinite_torque", state.t)
                ev.end_tick()
                return
            if flags & SATURATED:
                ev.mark("torque_limit", state.t, k)
            if flags & RATE_LIMITED:
                ev.mark("torque_rate", state.t, k)
        applied = self.backend.write(tau)
        if applied is not tau:  # the rate limit runs from what the robot got (a real backend
            np.copyto(limiter.prev, applied)  # may withhold a late command, a sim one clips)
        ev.end_tick()
