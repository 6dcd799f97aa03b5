"""``ImpedanceTaskEnv``: the MuJoCo task base class. A task = a world + the two-rate loop + a reward.

One ``step()`` is one slow tick of :class:`robot_brain.runtime.TwoRateLoop`: the action becomes a
variable-impedance :class:`Command` (target displacement + per-axis stiffness), the loop executes
it for ``control_hz / policy_hz`` fast ticks with the reflex checking every tick, and the task
scores the result.

A task is configured by one validated, frozen dataclass (:class:`TaskConfig`, or the task's
subclass of it with its own fields and defaults): ``make("maze", max_step=0.01)`` and the YAML
``env_kwargs`` of a training run both go through it, and a bad value is refused with one line
naming the field and its allowed range. Subclasses declare their metadata (``name``,
``env_id``, ``description``, ``config_type``; the registry reads them) and override a short,
labelled list of hooks, called in this order:

- ``_init_task()``            once, before the world is built: the task's state derived from
                              ``self.config`` (goal box, path points ...)
- ``_world_xml()``            task bodies/geoms added to the arm's MJCF (table, walls, markers)
- ``_reset_task(rng)``        sample the episode (goal, wall shifts ...); the arm is at ``home_q``
- ``_start_q(rng)``           the joint posture the episode starts from
- ``_task_obs()``             task part of the observation (appended to the arm part)
- ``_update(stats)``          after each slow tick, before anything is scored: advance the
                              task's own state (points wiped, path progress ...)
- ``_reward_terms(stats)``    named reward terms (their sum is the reward); reads, never writes
- ``_is_success()``           task solved?
- ``_violation(stats)``       name of the violated constraint, or ``None``

The base owns model building, the backend, the loop and its shield, the action mapping,
disturbances (random pushes on the tool), rendering and the per-episode metrics.

Every ``info`` carries ``cost`` (1.0 on a violation, else 0.0), ``is_success``, ``contact_force``
(the largest contact force on the tool during the step [N]), ``reward_terms``, ``interventions``
(reflex intervention onsets during the step), ``overridden_ticks`` (the control ticks whose
setpoint the shield changed) and, on a violation, ``violation``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from robot_brain.controllers import CartesianImpedance, Command, RobotModel, RobotState, TorqueLimiter
from robot_brain.controllers.impedance import K_MAX
from robot_brain.hardware.base import Backend
from robot_brain.hardware.mujoco_backend import MujocoBackend
from robot_brain.params import param, validate
from robot_brain.render import Camera
from robot_brain.runtime import LoopConfig, StepStats, TwoRateLoop
from robot_brain.safety import REFLEX_REASONS, LimitsConfig, Reflex, ShieldSpec, build_shield
from robot_brain.safety.envelope import EnvelopeConfig

from . import panda
from .common import TaskRenderer, check_render, task_config
from .world import ArmSpec

__all__ = ["Disturbances", "EpisodeMetrics", "ImpedanceTaskEnv", "TaskConfig"]

DOWN = panda.ARM.tool_down  # the Panda's tool pointing down (180 deg about x)


@dataclass(frozen=True)
class Disturbances:
    """Unforeseen disturbances (Bresa's "human pushes"), off by default.

    :param push_rate: expected pushes per second of sim time [1/s]; 0 disables pushes.
    :param push_force: range of the push magnitude [N], horizontal, random direction.
    :param push_duration: range of the push duration [s].
    :param wall_shift: largest random shift of the task's obstacles per episode [m] (tasks that
        have obstacles apply it; the scripted policies do not know the shift).
    """

    push_rate: float = 0.0
    push_force: tuple[float, float] = (15.0, 30.0)
    push_duration: tuple[float, float] = (0.1, 0.3)
    wall_shift: float = 0.0

    def __post_init__(self) -> None:
        if self.push_rate < 0:
            raise ValueError(f"push_rate must be >= 0, got {self.push_rate}")
        if self.wall_shift < 0:
            raise ValueError(f"wall_shift must be >= 0 m, got {self.wall_shift}")
        for name in ("push_force", "push_duration"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range 0 <= low <= high, got {(lo, hi)}")

    @classmethod
    def default(cls) -> Disturbances:
        """The disturbance set used by ``--disturb`` and the demo: pushes and shifted walls."""
        return cls(push_rate=0.5, wall_shift=0.03)

    @classmethod
    def parse(cls, value: Any) -> Disturbances:
        """A ``Disturbances`` from a config spelling: an instance, ``None``/``"none"`` (off),
        ``"default"``, or a mapping of fields (YAML ``env_kwargs.disturbances``)."""
        if isinstance(value, cls):
            return value
        if value is None or value == "none":
            return cls()
        if value == "default":
            return cls.default()
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            bad = sorted(set(value) - known)
            if bad:
                raise ValueError(f"disturbances: unknown key {bad[0]!r} (known: {', '.join(sorted(known))})")
            try:
                kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
                return cls(**kwargs)
            except TypeError as exc:
                raise ValueError(f"disturbances: {exc}") from None
        raise ValueError(f"disturbances must be 'default', 'none' or a mapping of "
                         f"{', '.join(f.name for f in fields(cls))}, got {value!r}")


@dataclass
class EpisodeMetrics:
    """Running metrics of the current episode (``env.episode``)."""

    ret: float = 0.0
    steps: int = 0
    success: bool = False
    violations: int = 0  # slow steps with a violation (= episode cost)
    violation_kinds: Counter = field(default_factory=Counter)
    max_contact_force: float = 0.0
    interventions: Counter = field(default_factory=Counter)  # reflex onsets per reason
    limit_events: Counter = field(default_factory=Counter)  # torque/rate/fault onsets per reason
    pushes: int = 0
    push_onsets: list[float] = field(default_factory=list)  # sim time each push began [s]
    wall_time: float = 0.0  # seconds spent in the loop (excludes the policy)
    sim_time: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "return": self.ret, "steps": self.steps, "success": self.success,
            "violations": self.violations, "violations_by_kind": dict(self.violation_kinds),
            "max_contact_force": self.max_contact_force,
            "interventions": sum(self.interventions.values()),
            "interventions_by_reason": dict(self.interventions),
            "limit_events": dict(self.limit_events), "pushes": self.pushes,
            "sim_time": self.sim_time, "wall_time": self.wall_time,
        }


@dataclass(frozen=True)
class TaskConfig:
    """Settings every arm task shares; a task's own config subclasses it with its fields and
    defaults. Every field is validated where it enters (see :mod:`robot_brain.params`); the
    bounds keep each impedance parameter inside what the controller and the arm can do.

    :param disturbances: pushes and shifted obstacles (``"default"``, ``"none"`` or fields).
    :param policy_hz: slow-tick rate of the policy [Hz].
    :param control_hz: fast-tick rate [Hz]; one 1 ms physics step per tick at 1 kHz.
    :param stiffness_range: translational stiffness the action maps onto, log scale [N/m].
    :param fixed_stiffness: ignore the stiffness part of the action and use this [N/m].
    :param rot_stiffness: rotational stiffness holding the tool orientation [N m/rad].
    :param damping_ratio: damping ratio zeta of every axis.
    :param max_step: largest target displacement per slow tick [m].
    :param force_limit: contact force on the tool above which a step is a violation [N].
    :param reflex_force: contact force at which the hard-limit reflex retreats [N]; below the
        force limit, so it acts before a contact becomes a violation.
    :param terminate_on_violation: end the episode at the first violation (Bresa's setting).
    :param max_episode_steps: steps before truncation.
    :param limits: the hard-limit reflex's limits in full (overrides ``reflex_force``).

    ``arm`` (a class attribute, not an option) is the arm the task runs on: a task's config
    class names it, so the physics-step check and the joint limits are the right arm's.
    """

    arm: ClassVar[ArmSpec] = panda.ARM

    disturbances: Disturbances = field(default_factory=Disturbances, metadata={
        "doc": "pushes and shifted obstacles: 'default', 'none' or a mapping of push_rate [1/s], "
               "push_force [N], push_duration [s], wall_shift [m]"})
    policy_hz: float = param(20.0, "slow-tick rate of the policy", low=1.0, high=100.0, unit="Hz")
    control_hz: float = param(1000.0, "fast-tick rate; the physics step is 1 ms", low=50.0,
                              high=1000.0, unit="Hz")
    stiffness_range: tuple[float, float] = param(
        (100.0, 2000.0), "stiffness the action maps onto (log scale); the controller's validated "
        "range", kind="pair", low=1.0, high=K_MAX, unit="N/m")
    fixed_stiffness: float | None = param(
        None, "pins the translational stiffness; the action's stiffness part is ignored",
        low=0.0, high=K_MAX, unit="N/m", optional=True)
    rot_stiffness: float = param(60.0, "rotational stiffness holding the tool orientation",
                                 low=0.0, high=300.0, unit="N m/rad", low_open=True)
    damping_ratio: float = param(1.0, "damping ratio of every axis (1: critical)", low=0.2, high=3.0)
    max_step: float = param(0.02, "largest target displacement per slow tick; 0.05 m at 20 Hz is "
                            "1 m/s", low=0.0, high=0.05, unit="m", low_open=True)
    force_limit: float = param(15.0, "contact force above which a step is a violation", low=0.0,
                               high=200.0, unit="N", low_open=True)
    reflex_force: float = param(15.0, "contact force at which the hard-limit reflex retreats",
                                low=0.0, high=200.0, unit="N", low_open=True)
    terminate_on_violation: bool = param(False, "end the episode at the first violation", kind="bool")
    max_episode_steps: int = param(200, "steps before truncation", kind="int", low=1, high=1_000_000)
    limits: LimitsConfig | None = field(default=None, metadata={
        "doc": "the hard-limit reflex's limits in full (a LimitsConfig; Python API only)"})

    def __post_init__(self) -> None:
        validate(self, {"disturbances": Disturbances.parse})
        if self.limits is not None and not isinstance(self.limits, LimitsConfig):
            raise ValueError(f"{type(self).__name__}.limits must be a LimitsConfig, got {self.limits!r}")
        LoopConfig(policy_hz=self.policy_hz, control_hz=self.control_hz)  # integer rate ratio
        step = self.arm.timestep
        ticks = 1.0 / (step * self.control_hz)  # physics steps per control tick
        if abs(ticks - round(ticks)) > 1e-9 or round(ticks) < 1:
            raise ValueError(f"{type(self).__name__}.control_hz = {self.control_hz:g}: the control "
                             f"period must be a whole number of {step * 1e3:g} ms physics steps")

    def limits_config(self) -> LimitsConfig:
        """The hard-limit reflex's limits: ``limits`` if given, else the arm's joint limits and
        ``reflex_force``."""
        if self.limits is not None:
            return self.limits
        low, high = self.arm.workspace
        return LimitsConfig(contact_force=self.reflex_force, q_min=tuple(self.arm.q_min),
                            q_max=tuple(self.arm.q_max), workspace_low=low, workspace_high=high)


class ImpedanceTaskEnv(gym.Env):
    """Base class of the arm tasks (see module docstring for the hooks).

    :param config: the task's configuration (default: ``config_type()``).
    :param shield: the fast-tick reflex, a shield spec (:mod:`robot_brain.safety.shield`):
        ``"limits"`` (hard-limit reflex with ``config.limits_config()``, default), ``"none"``
        (no reflex: for comparisons only), a critic directory, or a reflex object.
    :param render_mode: ``"rgb_array"`` or ``None``.
    :param renderer: ``"auto"`` (MuJoCo's OpenGL renderer when a context can be made, else the
        software renderer), ``"opengl"`` or ``"software"`` (see :mod:`robot_brain.render`).
    :param width: render width [px]. :param height: render height [px].
    :param backend: the robot to run on; default: the task's own simulated arm. Any other
        :class:`~robot_brain.hardware.Backend` (a real arm through ROS 2) runs the same loop: the
        episode starts wherever the arm is (no teleport), there are no simulated disturbances,
        and the MuJoCo world only supplies the arm's kinematics and dynamics to the controller.
    :param envelope: the safety envelope's bounds (default: the arm's, ``config.arm.envelope``);
        it runs whatever the shield.
    :param options: fields of ``config`` to change (``make("maze", max_step=0.01)``).
    """

    # gym.Env declares metadata as a plain (instance) attribute, so no ClassVar here.
    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 20}  # noqa: RUF012

    # Task metadata (the registry reads it) and constants, set by each subclass.
    name: ClassVar[str] = ""  # short name used by the CLI
    env_id: ClassVar[str] = ""  # Gymnasium id, robot_brain/<Name>-v<version>
    description: ClassVar[str] = ""  # one line for `robot-brain tasks`
    config_type: ClassVar[type[TaskConfig]] = TaskConfig
    action_axes: ClassVar[str] = "xyz"  # Cartesian axes the action moves (the rest hold the plane)
    camera: ClassVar[Camera] = Camera(lookat=(0.5, 0.0, 0.3), distance=1.3, azimuth=135.0,
                                      elevation=-35.0)
    hold_stiffness: ClassVar[float] = 1500.0  # N/m on axes the action does not move

    def __init__(self, config: TaskConfig | None = None, *, shield: ShieldSpec = "limits",
                 render_mode: str | None = None, renderer: str = "auto", width: int = 320,
                 height: int = 240, backend: Backend | None = None,
                 envelope: EnvelopeConfig | None = None, **options: Any) -> None:
        self.config = cfg = task_config(self, config, options)
        check_render(render_mode, renderer, width, height)  # before the model is built
        self.render_mode = render_mode
        self._closed = False
        self.loop_config = LoopConfig(policy_hz=cfg.policy_hz, control_hz=cfg.control_hz)
        self.limits = cfg.limits_config()
        self._init_task()

        self.arm = arm = cfg.arm
        self.home_q = arm.home_q
        self.model = mujoco.MjModel.from_xml_string(arm.build_mjcf(self._world_xml(),
                                                                   name=type(self).__name__))
        self._frames = TaskRenderer(self.model, render_mode, renderer, width, height)
        self.sim: MujocoBackend | None = None  # the simulated arm (None on a real robot)
        if backend is None:
            self.sim = MujocoBackend(self.model, n_joints=arm.n_joints, ee_site=arm.ee_site,
                                     tool_body=arm.tool_body, control_dt=self.loop_config.control_dt)
            self.sim.set_state(self.home_q)
            self.robot = self.sim.robot_model
            self.backend: Backend = self.sim
        else:
            self.backend = backend
            shared = getattr(backend, "robot_model", None)  # kinematics the backend computes
            self.robot = (shared if isinstance(shared, RobotModel)
                          else RobotModel(self.model, arm.ee_site, arm.n_joints))  # fed here
        self.controller = CartesianImpedance(self.robot)
        self.controller.q_null[:] = self.home_q
        self.limiter = TorqueLimiter(arm.tau_max, arm.tau_rate_max, self.loop_config.control_dt)
        self.loop = TwoRateLoop(self.backend, self.controller, self.limiter,
                                reflex=build_shield(shield, self.limits), config=self.loop_config,
                                envelope=envelope if envelope is not None else arm.envelope)

        self._axes = np.array(["xyz".index(a) for a in self.action_axes])
        na = len(self._axes)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2 * na,), dtype=np.float32)
        lo, hi = cfg.stiffness_range
        self._lo_k, self._hi_k = math.log(lo), math.log(hi)
        self._base_stiffness = np.array([self.hold_stiffness] * 3 + [cfg.rot_stiffness] * 3)
        self._zeta = np.full(6, cfg.damping_ratio)
        self._down = np.array(arm.tool_down)
        self._plane = np.zeros(3)  # held coordinates of axes the action does not move
        self._push_until = -1.0
        self._posture_cache: tuple[tuple[float, ...], np.ndarray] | None = None
        self.episode = EpisodeMetrics()
        self._reset_arm(self.home_q)
        obs = self._get_obs()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=obs.shape, dtype=np.float64)

    # -- the shield ----------------------------------------------------------------------------
    @property
    def reflex(self) -> Reflex | None:
        """The reflex the loop runs with (the loop owns it; change it with :meth:`set_shield`)."""
        return self.loop.reflex

    def set_shield(self, shield: ShieldSpec) -> Reflex | None:
        """Run the loop with the shield ``shield`` (a spec, see :mod:`robot_brain.safety.shield`)
        over this task's limits, from the next tick on; returns the reflex."""
        reflex = build_shield(shield, self.limits)
        self.loop.reflex = reflex
        if reflex is not None and self.loop.state is not None:
            reflex.reset(self.loop.state)
        return reflex

    # -- hooks -------------------------------------------------------------------------------
    def _init_task(self) -> None:
        """Set up the task's own state from ``self.config`` (once, before the world is built)."""

    def _world_xml(self) -> str:
        return ""

    def _reset_task(self, rng: np.random.Generator) -> None:
        pass

    def _start_q(self, rng: np.random.Generator) -> np.ndarray:
        """Joint posture the episode starts from (default: ``home_q``)."""
        return self.home_q

    def _task_obs(self) -> np.ndarray:
        return np.zeros(0)

    def _update(self, stats: StepStats) -> None:
        """Advance the task's own state after a slow tick, before reward, success and violation
        are read (they must not change state themselves)."""

    def _reward_terms(self, stats: StepStats) -> dict[str, float]:
        raise NotImplementedError

    def _is_success(self) -> bool:
        raise NotImplementedError

    def _violation(self, stats: StepStats) -> str | None:
        return "contact_force" if stats.max_contact_force > self.config.force_limit else None

    def posture_for(self, tip: np.ndarray) -> np.ndarray:
        """Joint posture with the tool tip at ``tip`` pointing down: inverse kinematics from
        ``home_q`` (so a seed always gives the same start), cached for the last tip."""
        key = tuple(np.round(np.asarray(tip, dtype=np.float64), 9))
        if self._posture_cache is None or self._posture_cache[0] != key:
            self._posture_cache = (key, self.robot.inverse_kinematics(tip, self._down, q0=self.home_q))
        return self._posture_cache[1]

    # -- observation and action --------------------------------------------------------------
    @property
    def state(self) -> RobotState:
        """The arm's current :class:`RobotState` (live view)."""
        assert self.loop.state is not None  # set by the reset in the constructor
        return self.loop.state

    def _get_obs(self) -> np.ndarray:
        s = self.state
        return np.concatenate([s.ee_pos, s.ee_vel[:3], self._task_obs()]).astype(np.float64)

    def stiffness_from_action(self, a: np.ndarray) -> np.ndarray:
        """Map normalised stiffness actions in [-1, 1] to N/m on a log scale."""
        if self.config.fixed_stiffness is not None:
            return np.full(a.shape, self.config.fixed_stiffness)
        half = 0.5 * (self._hi_k - self._lo_k)
        return np.exp(self._lo_k + half + half * np.clip(a, -1.0, 1.0))

    def action_to_command(self, action: np.ndarray) -> Command:
        """The variable-impedance command of a normalised action (no clipping of NaN: the loop
        rejects non-finite commands and holds)."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:  # a (2, 2) array is not a (4,) action
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        na = len(self._axes)
        target = self._plane.copy()
        stiffness = self._base_stiffness.copy()
        if np.isfinite(a).all():
            target[self._axes] = (self.state.ee_pos[self._axes]
                                  + np.clip(a[:na], -1, 1) * self.config.max_step)
            stiffness[self._axes] = self.stiffness_from_action(a[na:])
        else:  # np.clip would pass NaN on and turn inf into a full step: make any non-finite
            target[:] = np.nan  # action visible to the loop's check (it holds)
        # Built directly (shapes are right by construction): this runs at every slow tick.
        return Command(stiffness, self._zeta.copy(), position=target, orientation=self._down.copy())

    # -- gym API -----------------------------------------------------------------------------
    def _reset_arm(self, q: np.ndarray) -> None:
        if self.sim is not None:
            self.sim.set_state(q)
            self.sim.apply_wrench(np.zeros(6))
        self.backend.activate()
        s = self.backend.read()
        self._plane[:] = s.ee_pos
        hold = Command.cartesian(s.ee_pos, self._down, self._base_stiffness, self.config.damping_ratio)
        tau0 = self.robot.bias.copy() if self.sim is not None else s.tau.copy()
        self.loop.reset(hold, tau0=tau0)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the {self.name!r} env is closed (its backend is disconnected); "
                               f"make a new one")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        self._check_open()
        super().reset(seed=seed)
        self._reset_task(self.np_random)
        self._reset_arm(self._start_q(self.np_random))
        self._push_until = -1.0
        self.episode = EpisodeMetrics()
        return self._get_obs(), {"is_success": False, "cost": 0.0, "contact_force": 0.0}

    def _disturb(self) -> None:
        d = self.config.disturbances
        if d.push_rate <= 0 or self.sim is None:
            return
        t = self.sim.time
        if t >= self._push_until >= 0:
            self.sim.apply_wrench(np.zeros(6))
            self._push_until = -1.0
        if self._push_until < 0 and self.np_random.random() < d.push_rate / self.loop_config.policy_hz:
            rng = self.np_random
            ang = rng.uniform(0, 2 * math.pi)
            mag = rng.uniform(*d.push_force)
            self.sim.apply_wrench([mag * math.cos(ang), mag * math.sin(ang), 0, 0, 0, 0])
            self._push_until = t + rng.uniform(*d.push_duration)
            self.episode.pushes += 1
            self.episode.push_onsets.append(t)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._check_open()
        command = self.action_to_command(action)
        self._disturb()
        n_events = len(self.loop.events.events)
        stats = self.loop.step(command)
        new_events = self.loop.events.events[n_events:]
        self._update(stats)
        terms = self._reward_terms(stats)
        reward = float(sum(terms.values()))
        success = bool(self._is_success())
        violation = self._violation(stats)
        ep = self.episode
        ep.steps += 1
        ep.ret += reward
        ep.success = ep.success or success
        ep.max_contact_force = max(ep.max_contact_force, stats.max_contact_force)
        ep.wall_time += stats.wall_time
        ep.sim_time = self.sim.time if self.sim is not None else ep.steps / self.loop_config.policy_hz
        interventions = 0
        for e in new_events:
            if e.reason in REFLEX_REASONS:
                ep.interventions[e.reason] += 1
                interventions += 1
            else:
                ep.limit_events[e.reason] += 1
        info: dict[str, Any] = {
            "cost": 0.0, "is_success": success, "contact_force": stats.max_contact_force,
            "reward_terms": terms, "interventions": interventions,
            "events": [e.reason for e in new_events], "held_ticks": stats.held_ticks,
            "overridden_ticks": stats.overridden_ticks,
        }
        if violation is not None:
            info["cost"] = 1.0
            info["violation"] = violation
            ep.violations += 1
            ep.violation_kinds[violation] += 1
        terminated = success or (violation is not None and self.config.terminate_on_violation)
        truncated = ep.steps >= self.config.max_episode_steps and not terminated
        obs = self._get_obs()
        if not np.isfinite(obs).all():  # a corrupted state must not reach the policy either
            obs = np.nan_to_num(obs, nan=0.0, posinf=0.0, neginf=0.0)
        return obs, reward, terminated, truncated, info

    # -- rendering ---------------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        """The current picture (``render_mode="rgb_array"``), from the renderer chosen by
        ``renderer`` (made on the first call; :attr:`renderer_note` says which one it is)."""
        if self.sim is None:
            return None
        return self._frames.frame(self.sim.data, self.camera)

    @property
    def renderer_note(self) -> str | None:
        """One line naming the renderer in use (and how to get the 3-D one), once rendering."""
        return self._frames.note

    def close(self) -> None:
        """Release the renderer and the robot: the backend is deactivated (put in hold first)
        and disconnected, so a closed env can no longer move the arm; ``step`` and ``reset``
        then raise. Closing twice is harmless."""
        self._frames.close()
        self.backend.disconnect()
        self._closed = True
