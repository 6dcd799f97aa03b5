"""Sensing: human input sources behind one interface, and the guard every input goes through.

A source reports the human's commanded tool velocity as a 3-vector in units of the task's top
speed (a norm of 1 is "full speed"), or ``None`` when the human gives no input this tick. The
sources: :class:`SimulatedHuman` (tests and benchmarks), and the devices of :mod:`.devices`
(keyboard in the MuJoCo viewer, a 3-D mouse through ``pyspacemouse``, a ROS 2
``geometry_msgs/TwistStamped`` topic).

Nothing a source reports reaches the arbitration unchecked: :class:`InputGuard` turns NaN/inf,
absurd magnitudes and a stalled source into "no input" (the robot then holds) and clips the rest
to the unit ball.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from robot_brain.params import param, validate

__all__ = ["HUMAN_SOURCES", "GuardConfig", "HumanInput", "HumanModel", "HumanView", "InputGuard",
           "SimulatedHuman", "make_input"]


@dataclass(frozen=True)
class HumanView:
    """What the human sees at one slow tick: the time, the tool and the candidate goals.

    :param t: time since the trial started [s].
    :param tool: tool-tip position [m] (3,).
    :param goals: candidate goal positions [m] (K, 3).
    :param speed: the task's top tool speed [m/s] (what an input of norm 1 commands).
    """

    t: float
    tool: np.ndarray
    goals: np.ndarray
    speed: float


@runtime_checkable
class HumanInput(Protocol):
    """A source of human commands. ``reset(trial)`` before each trial, ``read(view)`` once per
    slow tick, ``close()`` at the end of the session.

    ``read`` returns the commanded tool velocity as a fraction of ``view.speed`` (3,), or
    ``None`` for "no input now"; it never blocks longer than a few milliseconds.
    """

    name: str

    def reset(self, trial: int) -> None: ...

    def read(self, view: HumanView) -> np.ndarray | None: ...

    def close(self) -> None: ...


# -- the guard -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GuardConfig:
    """What the guard lets through.

    :param absurd: an input whose norm exceeds this (in units of top speed) is a fault, not a
        command: treated as no input (a stuck axis or a unit mistake must not become a lunge).
    :param timeout_s: a source silent (no input) for longer than this is *stalled*; the robot
        holds either way, the state is reported.
    """

    absurd: float = 5.0
    timeout_s: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.absurd) and self.absurd >= 1.0):
            raise ValueError(f"GuardConfig.absurd must be a finite number >= 1, got {self.absurd!r}")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ValueError(f"GuardConfig.timeout_s must be > 0 s, got {self.timeout_s!r}")


class InputGuard:
    """Every human input goes through :meth:`filter`: a finite 3-vector of norm <= 1 comes out,
    or ``None`` (no input: the arbitration then holds the arm).

    - NaN/inf, a wrong shape, a source that raises: no input, counted in :attr:`rejected`;
    - norm above ``config.absurd``: no input (counted); norm in (1, absurd]: scaled to 1;
    - :attr:`stalled`: no valid input for ``config.timeout_s``.
    """

    def __init__(self, config: GuardConfig | None = None) -> None:
        self.config = config or GuardConfig()
        self.reset()

    def reset(self) -> None:
        self.rejected: dict[str, int] = {}
        self._last_valid: float | None = None
        self._t0: float | None = None
        self.stalled = False

    def _reject(self, why: str) -> None:
        self.rejected[why] = self.rejected.get(why, 0) + 1

    def read(self, source: HumanInput, view: HumanView) -> np.ndarray | None:
        """``source.read(view)`` filtered; an exception from the source counts as no input."""
        try:
            raw = source.read(view)
        except Exception:  # a device that fails mid-session must not end it: the arm holds
            self._reject("source error")
            raw = None
        return self.filter(view.t, raw)

    def filter(self, t: float, raw: object) -> np.ndarray | None:
        """The checked input at time ``t`` [s] (see class docstring)."""
        if self._t0 is None:
            self._t0 = t
        u = self._check(raw)
        if u is not None:
            self._last_valid = t
        since = t - (self._last_valid if self._last_valid is not None else self._t0)
        self.stalled = u is None and since > self.config.timeout_s
        return u

    def _check(self, raw: object) -> np.ndarray | None:
        if raw is None:
            return None
        try:
            u = np.asarray(raw)
            if u.dtype.kind not in "biuf":  # text, objects: not a command, even if "1" reads as 1
                raise TypeError(u.dtype)
            u = u.astype(np.float64)
        except (TypeError, ValueError):
            self._reject("not a vector")
            return None
        if u.shape != (3,):
            self._reject("wrong shape")
            return None
        if not np.isfinite(u).all():
            self._reject("non-finite")
            return None
        norm = float(np.linalg.norm(u))
        if norm > self.config.absurd:
            self._reject("absurd magnitude")
            return None
        return u / norm if norm > 1.0 else u.copy()


# -- the simulated human -----------------------------------------------------------------------
@dataclass(frozen=True)
class HumanModel:
    """A goal-directed person with noise, bias, delay and a learning curve (tests, benchmarks).

    The person aims at the goal from where they *saw* the tool ``delay`` seconds ago; their
    heading wanders (an Ornstein-Uhlenbeck process of std ``noise`` and correlation time
    ``noise_tau``, so errors persist the way a drifting hand's do) and carries a constant
    ``bias``; they slow down inside ``slow_radius`` of the goal. Practice shrinks the wander:
    ``noise(k) = noise_final + (noise - noise_final) exp(-k / learning_trials)`` at trial ``k``.

    :param speed: cruising input, a fraction of top speed.
    :param goal_weights: how often the person picks each goal (``None``: uniformly).
    :param idle: probability of giving no input at a tick (attention lapses).
    """

    speed: float = param(0.6, "cruising input, a fraction of top speed", low=0.05, high=1.0)
    noise: float = param(0.5, "heading wander (std, unit-vector units) before practice", low=0.0, high=5.0)
    noise_final: float = param(0.2, "heading wander after long practice", low=0.0, high=5.0)
    learning_trials: float = param(5.0, "trials of practice to shed 63 % of the excess wander",
                                   low=0.1, high=1e9)
    noise_tau: float = param(0.5, "correlation time of the wander", low=0.01, high=10.0, unit="s")
    bias: tuple[float, float, float] = param((0.0, 0.0, 0.0), "constant heading offset", kind="vec3",
                                             low=-1.0, high=1.0)
    delay: float = param(0.15, "perception delay", low=0.0, high=2.0, unit="s")
    slow_radius: float = param(0.08, "distance below which the person slows in proportion", low=0.001,
                               high=0.5, unit="m")
    idle: float = param(0.0, "probability of giving no input at a tick (attention lapses)", low=0.0,
                        high=0.95)
    goal_weights: tuple[float, ...] | None = param(None, "how often the person picks each goal "
                                                   "(default: uniformly)", kind="any", optional=True)

    def __post_init__(self) -> None:
        validate(self)
        if np.linalg.norm(self.bias) > 1.0:
            raise ValueError(f"human model: bias must have norm <= 1, got {self.bias!r}")
        if self.goal_weights is not None:
            try:
                w = np.asarray(self.goal_weights, dtype=np.float64)
            except (TypeError, ValueError):
                w = np.array([np.nan])
            if w.ndim != 1 or len(w) < 1 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"human model: goal_weights must be non-negative numbers, not all 0, "
                                 f"got {self.goal_weights!r}")
            object.__setattr__(self, "goal_weights", tuple(float(x) for x in w))

    def noise_at(self, trial: int) -> float:
        """The heading noise after ``trial`` trials of practice."""
        return self.noise_final + (self.noise - self.noise_final) * math.exp(-trial / self.learning_trials)


class SimulatedHuman:
    """The person of :class:`HumanModel` as a :class:`HumanInput` (seeded, reproducible).

    The session tells it the goal of each trial (:meth:`set_goal`); :meth:`choose_goal` draws one
    from the person's preferences. :attr:`extra_noise` (added to the heading noise) makes the
    person worse from the next trial on, as tiredness or a new device would.

    :param control_hz: rate of :meth:`read` calls [Hz] (the task's policy rate).
    """

    name = "sim"

    def __init__(self, model: HumanModel | None = None, seed: int = 0, control_hz: float = 20.0) -> None:
        self.model = model or HumanModel()
        self.rng = np.random.default_rng(seed)
        self.dt = 1.0 / control_hz
        self.goal = 0
        self.extra_noise = 0.0
        self.practice = 0  # trials this person has started (their own count, across sessions)
        self._start_trial()

    def choose_goal(self, k: int) -> int:
        """A goal index in ``[0, k)`` drawn from the person's preferences."""
        w = self.model.goal_weights
        if w is not None and len(w) != k:
            raise ValueError(f"human model: goal_weights has {len(w)} entries, the task has {k} goals")
        p = np.ones(k) if w is None else np.asarray(w, dtype=np.float64)
        if p.sum() <= 0:
            raise ValueError("human model: goal_weights are all 0")
        return int(self.rng.choice(k, p=p / p.sum()))

    def set_goal(self, goal: int) -> None:
        self.goal = int(goal)

    def reset(self, trial: int) -> None:
        """Start a trial; the person's skill follows their own practice, not ``trial`` (the
        session's count), so a person brought back for a second session keeps what they learned."""
        self._start_trial()
        self.practice += 1

    def _start_trial(self) -> None:
        self.sigma = self.model.noise_at(self.practice) + self.extra_noise
        self._wander = self.rng.normal(0.0, self.sigma, 3)
        self._seen: list[np.ndarray] = []

    def read(self, view: HumanView) -> np.ndarray | None:
        m = self.model
        self._seen.append(np.asarray(view.tool, dtype=np.float64).copy())
        lag = round(m.delay / self.dt)
        tool = self._seen[max(0, len(self._seen) - 1 - lag)]
        # Ornstein-Uhlenbeck wander, stationary std sigma, correlation time noise_tau.
        a = math.exp(-self.dt / m.noise_tau)
        self._wander = a * self._wander + math.sqrt(1 - a * a) * self.sigma * self.rng.normal(size=3)
        if m.idle > 0 and self.rng.random() < m.idle:
            return None
        delta = view.goals[self.goal] - tool
        dist = float(np.linalg.norm(delta))
        heading = delta / max(dist, 1e-9) + self._wander + np.asarray(m.bias)
        heading /= max(float(np.linalg.norm(heading)), 1e-9)
        return heading * m.speed * min(1.0, dist / m.slow_radius)

    def close(self) -> None:
        pass


#: The input sources ``--human`` names.
HUMAN_SOURCES = ("sim", "keyboard", "spacemouse", "ros2")


def make_input(kind: str, options: dict[str, object] | None = None, *, seed: int = 0,
               control_hz: float = 20.0) -> HumanInput:
    """The input source ``kind`` (:data:`HUMAN_SOURCES`) with ``options``: :class:`HumanModel`
    fields for ``sim``; the device's keyword arguments otherwise (``topic``, ``timeout_s``,
    ``transport`` and ``network`` (a mapping of :class:`NetworkConfig` fields) for ``ros2``;
    ``deadband`` for ``spacemouse``; ``gain``, ``hold_s`` for ``keyboard``).

    :raises ValueError: one line naming an unknown source, option or bad value.
    """
    from robot_brain.params import replace_checked

    options = dict(options or {})
    if kind == "sim":
        return SimulatedHuman(replace_checked(HumanModel(), options, "the simulated human"), seed=seed,
                              control_hz=control_hz)
    from . import devices

    classes = {"keyboard": devices.KeyboardInput, "spacemouse": devices.SpaceMouseInput,
               "ros2": devices.TwistTopicInput}
    if kind not in classes:
        raise ValueError(f"unknown human input {kind!r} (choose from {', '.join(HUMAN_SOURCES)})")
    try:
        if kind == "ros2" and isinstance(options.get("network"), dict):  # a robot config's dds block
            from robot_brain.hardware.ros2.transport import NetworkConfig

            net = dict(options["network"])  # type: ignore[call-overload]
            if "peers" in net:
                net["peers"] = tuple(net["peers"])
            options["network"] = NetworkConfig(**net)
        return classes[kind](**options)
    except TypeError as exc:
        raise ValueError(f"--human {kind}: bad option ({exc})") from None
