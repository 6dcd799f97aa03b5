"""``ImpedanceTaskEnv``: the MuJoCo task base class. A task = a world + the two-rate loop + a reward.

One ``step()`` is one slow tick of :class:`robot_brain.runtime.TwoRateLoop`: the action becomes a
variable-impedance :class:`Command` (target displacement + per-axis stiffness), the loop executes
it for ``control_hz / policy_hz`` fast ticks with the reflex checking every tick, and the task
scores the result.

Subclasses override a short, labelled list of hooks:

- ``_world_xml()``            task bodies/geoms added to the arm's MJCF (table, walls, markers)
- ``_reset_task(rng)``        sample the episode (goal, wall shifts ...); the arm is at ``home_q``
- ``_task_obs()``             task part of the observation (appended to the arm part)
- ``_reward_terms(stats)``    named reward terms (their sum is the reward)
- ``_is_success()``           task solved?
- ``_violation(stats)``       name of the violated constraint, or ``None``

The base owns model building, the backend, the loop, the action mapping, disturbances (random
pushes on the tool), rendering and the per-episode metrics.

Every ``info`` carries ``cost`` (1.0 on a violation, else 0.0), ``is_success``, ``contact_force``
(the largest contact force on the tool during the step [N]), ``reward_terms``, ``interventions``
(reflex intervention onsets during the step) and, on a violation, ``violation``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from robot_brain.controllers import CartesianImpedance, Command, TorqueLimiter
from robot_brain.hardware.mujoco_backend import MujocoBackend

from robot_brain.runtime import LoopConfig, StepStats, TwoRateLoop
from robot_brain.safety import REFLEX_REASONS, LimitsConfig, LimitsReflex, Reflex

from . import panda

__all__ = ["Disturbances", "EpisodeMetrics", "ImpedanceTaskEnv"]

DOWN = (0.0, 1.0, 0.0, 0.0)  # tool pointing down (180 deg about x)


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


class ImpedanceTaskEnv(gym.Env):
    """Base class of the arm tasks (see module docstring for the hooks).

    :param reflex: ``"limits"`` (hard-limit reflex, default), ``None`` (no reflex: for
        comparisons only) or a :class:`robot_brain.safety.Reflex` instance.
    :param limits: limits of the hard-limit reflex (workspace, contact force ...).
    :param disturbances: random pushes / shifted obstacles.
    :param policy_hz: slow-tick rate [Hz].
    :param control_hz: fast-tick rate [Hz]; one physics step per tick at 1 kHz.
    :param stiffness_range: translational stiffness range the action maps onto [N/m]
        (log scale: action -1 -> low, +1 -> high).
    :param fixed_stiffness: if set, ignore the stiffness part of the action and use this [N/m].
    :param rot_stiffness: rotational stiffness holding the tool orientation [N m/rad].
    :param damping_ratio: damping ratio zeta of every axis.
    :param max_step: largest target displacement per slow tick [m].
    :param force_limit: contact force on the tool above which a step is a violation [N].
    :param terminate_on_violation: end the episode at the first violation (Bresa's setting).
    :param max_episode_steps: steps before truncation.
    :param render_mode: ``"rgb_array"`` or ``None``.
    :param width: render width [px]. :param height: render height [px].
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 20}

    # Task constants, overridden by subclasses.
    action_axes: str = "xyz"  # Cartesian axes the action moves (the rest hold the plane)
    home_q: np.ndarray = panda.HOME_Q
    description: str = ""
    camera: ClassVar[dict] = {"lookat": (0.5, 0.0, 0.3), "distance": 1.3, "azimuth": 135.0,
                              "elevation": -35.0}

    def __init__(self, *, reflex: str | Reflex | None = "limits", limits: LimitsConfig | None = None,
                 disturbances: Disturbances | None = None, policy_hz: float = 20.0,
                 control_hz: float = 1000.0, stiffness_range: tuple[float, float] = (100.0, 2000.0),
                 fixed_stiffness: float | None = None, rot_stiffness: float = 60.0,
                 damping_ratio: float = 1.0, max_step: float = 0.02, force_limit: float = 15.0,
                 terminate_on_violation: bool = False, max_episode_steps: int = 200,
                 render_mode: str | None = None, width: int = 320, height: int = 240) -> None:
        lo, hi = stiffness_range
        if not 0 < lo <= hi:
            raise ValueError(f"stiffness_range must satisfy 0 < low <= high, got {stiffness_range}")
        if fixed_stiffness is not None and not fixed_stiffness >= 0:
            raise ValueError(f"fixed_stiffness must be >= 0 N/m, got {fixed_stiffness}")
        if not damping_ratio > 0:
            raise ValueError(f"damping_ratio must be > 0, got {damping_ratio}")
        if not max_step > 0:
            raise ValueError(f"max_step must be > 0 m, got {max_step}")
        if not force_limit > 0:
            raise ValueError(f"force_limit must be > 0 N, got {force_limit}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
        self.loop_config = LoopConfig(policy_hz=policy_hz, control_hz=control_hz)
        self.disturbances = disturbances or Disturbances()
        self.stiffness_range = (float(lo), float(hi))
        self.fixed_stiffness = fixed_stiffness
        self.rot_stiffness = float(rot_stiffness)
        self.damping_ratio = float(damping_ratio)
        self.max_step = float(max_step)
        self.force_limit = float(force_limit)
        self.terminate_on_violation = terminate_on_violation
        self.max_episode_steps = int(max_episode_steps)
        self.render_mode = render_mode
        self._size = (width, height)
        self._renderer: mujoco.Renderer | None = None

        self.model = mujoco.MjModel.from_xml_string(panda.build_mjcf(self._world_xml(),
                                                                     name=type(self).__name__))
        self.backend = MujocoBackend(self.model, control_dt=self.loop_config.control_dt)
        self.backend.set_state(self.home_q)
        self.robot = self.backend.robot_model
        self.controller = CartesianImpedance(self.robot)
        self.controller.q_null[:] = self.home_q
        self.limiter = TorqueLimiter(panda.TAU_MAX, panda.TAU_RATE_MAX, self.loop_config.control_dt)
        if reflex == "limits":
            reflex = LimitsReflex(limits or LimitsConfig(q_min=tuple(panda.Q_MIN),
                                                         q_max=tuple(panda.Q_MAX)))
        elif isinstance(reflex, str):
            raise ValueError(f"reflex must be 'limits', None or a Reflex, got {reflex!r}")
        self.reflex = reflex
        self.loop = TwoRateLoop(self.backend, self.controller, self.limiter, reflex=reflex,
                                config=self.loop_config)

        self._axes = np.array(["xyz".index(a) for a in self.action_axes])
        na = len(self._axes)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2 * na,), dtype=np.float32)
        self._lo_k, self._hi_k = math.log(lo), math.log(hi)
        self._base_stiffness = np.array([self._hold_stiffness] * 3 + [self.rot_stiffness] * 3)
        self._zeta = np.full(6, self.damping_ratio)
        self._down = np.array(DOWN)
        self._plane = np.zeros(3)  # held coordinates of axes the action does not move
        self._push_until = -1.0
        self.episode = EpisodeMetrics()
        self._reset_arm(self.home_q)
        obs = self._get_obs()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=obs.shape, dtype=np.float64)

    # -- hooks -------------------------------------------------------------------------------
    def _world_xml(self) -> str:
        return ""

    def _reset_task(self, rng: np.random.Generator) -> None:
        pass

    def _start_q(self, rng: np.random.Generator) -> np.ndarray:
        """Joint posture the episode starts from (default: ``home_q``)."""
        return self.home_q

    def posture_for(self, tip) -> np.ndarray:
        """Joint posture with the tool tip at ``tip`` pointing down: inverse kinematics from
        ``home_q`` (so a seed always gives the same start), cached for the last tip."""
        key = tuple(np.round(np.asarray(tip, dtype=np.float64), 9))
        cache = getattr(self, "_posture_cache", None)
        if cache is None or cache[0] != key:
            cache = (key, self.robot.inverse_kinematics(tip, DOWN, q0=self.home_q))
            self._posture_cache = cache
        return cache[1]

    def _task_obs(self) -> np.ndarray:
        return np.zeros(0)

    def _reward_terms(self, stats: StepStats) -> dict[str, float]:
        raise NotImplementedError

    def _is_success(self) -> bool:
        raise NotImplementedError

    def _violation(self, stats: StepStats) -> str | None:
        return "contact_force" if stats.max_contact_force > self.force_limit else None

    # -- observation and action --------------------------------------------------------------
    @property
    def state(self):
        """The arm's current :class:`RobotState` (live view)."""
        return self.loop.state

    def _get_obs(self) -> np.ndarray:
        s = self.loop.state
        return np.concatenate([s.ee_pos, s.ee_vel[:3], self._task_obs()]).astype(np.float64)

    def stiffness_from_action(self, a: np.ndarray) -> np.ndarray:
        """Map normalised stiffness actions in [-1, 1] to N/m on a log scale."""
        if self.fixed_stiffness is not None:
            return np.full(a.shape, self.fixed_stiffness)
        half = 0.5 * (self._hi_k - self._lo_k)
        return np.exp(self._lo_k + half + half * np.clip(a, -1.0, 1.0))

    def action_to_command(self, action: np.ndarray) -> Command:
        """The variable-impedance command of a normalised action (no clipping of NaN: the loop
        rejects non-finite commands and holds)."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        na = len(self._axes)
        target = self._plane.copy()
        stiffness = self._base_stiffness.copy()
        if np.isfinite(a).all():
            target[self._axes] = (self.loop.state.ee_pos[self._axes]
                                  + np.clip(a[:na], -1, 1) * self.max_step)
            stiffness[self._axes] = self.stiffness_from_action(a[na:])
        else:  # np.clip would pass NaN on and turn inf into a full step: make any non-finite
            target[:] = np.nan  # action visible to the loop's check (it holds)
        # Built directly (shapes are right by construction): this runs at every slow tick.
        return Command(stiffness, self._zeta.copy(), position=target, orientation=self._down.copy())

    _hold_stiffness = 1500.0  # N/m on axes the action does not move (holds the maze plane)

    # -- gym API -----------------------------------------------------------------------------
    def _reset_arm(self, q: np.ndarray) -> None:
        self.backend.set_state(q)
        self.backend.apply_wrench(np.zeros(6))
        self.backend.activate()
        s = self.backend.read()
        self._plane[:] = s.ee_pos
        hold = Command.cartesian(s.ee_pos, DOWN, [self._hold_stiffness] * 3 + [self.rot_stiffness] * 3,
                                 self.damping_ratio)
        self.loop.reset(hold, tau0=self.robot.bias.copy())

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_task(self.np_random)
        self._reset_arm(self._start_q(self.np_random))
        self._push_until = -1.0
        self.episode = EpisodeMetrics()
        return self._get_obs(), {"is_success": False, "cost": 0.0, "contact_force": 0.0}

    def _disturb(self) -> None:
        d = self.disturbances
        if d.push_rate <= 0:
            return
        t = self.backend.time
        if t >= self._push_until >= 0:
            self.backend.apply_wrench(np.zeros(6))
            self._push_until = -1.0
        if self._push_until < 0 and self.np_random.random() < d.push_rate / self.loop_config.policy_hz:
            rng = self.np_random
            ang = rng.uniform(0, 2 * math.pi)
            mag = rng.uniform(*d.push_force)
            self.backend.apply_wrench([mag * math.cos(ang), mag * math.sin(ang), 0, 0, 0, 0])
            self._push_until = t + rng.uniform(*d.push_duration)
            self.episode.pushes += 1

    def step(self, action):
        command = self.action_to_command(action)
        self._disturb()
        n_events = len(self.loop.events.events)
        stats = self.loop.step(command)
        new_events = self.loop.events.events[n_events:]
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
        ep.sim_time = self.backend.time
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
        }
        if violation is not None:
            info["cost"] = 1.0
            info["violation"] = violation
            ep.violations += 1
            ep.violation_kinds[violation] += 1
        terminated = success or (violation is not None and self.terminate_on_violation)
        truncated = ep.steps >= self.max_episode_steps and not terminated
        obs = self._get_obs()
        if not np.isfinite(obs).all():  # a corrupted state must not reach the policy either
            obs = np.nan_to_num(obs, nan=0.0, posinf=0.0, neginf=0.0)
        return obs, reward, terminated, truncated, info

    # -- rendering ---------------------------------------------------------------------------
    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            w, h = self._size
            self._renderer = mujoco.Renderer(self.model, height=h, width=w)
            # Shadows and reflections cost ~90 % of a frame with the software renderer (OSMesa:
            # ~50 of 56 ms at 320x240); the picture stays readable without them.
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            self._cam = mujoco.MjvCamera()
            self._cam.lookat[:] = self.camera["lookat"]
            self._cam.distance = self.camera["distance"]
            self._cam.azimuth = self.camera["azimuth"]
            self._cam.elevation = self.camera["elevation"]
        self._renderer.update_scene(self.backend.data, camera=self._cam)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
