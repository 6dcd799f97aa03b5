"""Arbitration between the human and the robot, authority yielding, and assist-as-needed.

Every slow tick the arbiter turns the human's (guarded) input and the goal belief into one
motion command for the task (a target displacement, as a fraction of the task's largest step);
the two-rate loop and its reflex then execute it, so the reflex protects the blend exactly as
it protects any policy.

- No input (``None``): the command is zero, the arm holds. Assistance is never a reason to move
  on its own: the person leads, the robot helps.
- ``blend`` (Dragan & Srinivasa 2013): ``a = alpha a_robot(g_map) + (1 - alpha) u_h`` with
  ``alpha = authority * alpha_max * clip((c - c0) / (c1 - c0), 0, 1)``, ``c = max_g b(g)``.
- ``hindsight`` (Javdani et al. 2015): the command minimising the belief-weighted distance-to-go
  after this tick plus a penalty for departing from the person's input,
  ``sum_g b(g) |g - x_next(a)| / reach + lambda |a - u_h|^2`` (``reach``: the farthest the arm
  gets in one tick), over blends of ``u_h`` with each
  goal's approach and with the belief-weighted approach; it assists toward what the likely
  goals share before any one of them is certain. ``x_next`` comes from the prediction module
  (the arm's response under the current impedance) when the session gives it.
- ``off``: the human alone (the baseline).
- **Authority**: when the person keeps pushing against the robot's assistance (the input points
  away from the robot's approach for ``yield_after`` seconds), the robot's authority decays to
  zero quickly and recovers slowly once they agree again: it never takes over against intent.
- **Assist-as-needed** (Emken 2007; Wolbrecht 2008) across trials:
  ``alpha_max <- f alpha_max + g max(0, e - e_dead)``, where ``e`` is the person's own error in
  the trial (how far their input pointed from the goal they reached), independent of the help
  they got; ``f < 1`` relaxes assistance faster than the person learns, which prevents slacking.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot_brain.params import param, validate

from .belief import GoalBelief

__all__ = ["ASSIST_MODES", "Arbiter", "ArbitrationConfig", "AssistAsNeeded", "Decision"]

ASSIST_MODES = ("blend", "hindsight", "off")


@dataclass(frozen=True)
class ArbitrationConfig:
    """How the robot assists (see module docstring)."""

    mode: str = param("blend", "blend, hindsight, or off (the human alone)", kind="any")
    c0: float = param(0.45, "belief confidence (max probability) where assistance begins", low=0.0,
                      high=1.0)
    c1: float = param(0.85, "confidence where assistance reaches alpha_max", low=0.0, high=1.0)
    robot_speed: float = param(1.0, "speed of the robot's own approach, a fraction of top speed",
                               low=0.05, high=1.0)
    slow_radius: float = param(0.05, "distance below which the robot's approach slows in proportion",
                               low=0.001, high=0.5, unit="m")
    yield_after: float = param(0.4, "time constant of the disagreement average", low=0.05, high=5.0,
                               unit="s")
    yield_level: float = param(0.5, "disagreement average above which the robot yields", low=0.05,
                               high=0.95)
    yield_tau: float = param(0.1, "time constant of the authority's fall when yielding", low=0.01,
                             high=5.0, unit="s")
    recover_tau: float = param(1.5, "time constant of the authority's recovery", low=0.05, high=30.0,
                               unit="s")
    hindsight_weight: float = param(1.0, "hindsight mode: penalty on departing from the input",
                                    low=0.0, high=100.0)

    def __post_init__(self) -> None:
        validate(self)
        if self.mode not in ASSIST_MODES:
            raise ValueError(f"assistance mode must be one of {', '.join(ASSIST_MODES)}, got {self.mode!r}")
        if self.c1 <= self.c0:
            raise ValueError(f"c1 ({self.c1:g}) must exceed c0 ({self.c0:g})")


@dataclass(frozen=True)
class Decision:
    """One tick's arbitration: the command sent, how much of it was the robot's, and why."""

    command: np.ndarray  # target displacement, fraction of the largest step (3,)
    alpha: float  # share of the robot in the command (0: the human's input alone)
    authority: float  # the robot's authority (1: full, 0: yielded)
    disagree: bool  # the input pointed away from the robot's approach
    assist: np.ndarray  # the robot's own approach toward its most likely goal (3,)


#: Predicts the tool positions (N, 3) one slow tick after commanding displacements (N, 3).
Predictor = Callable[[np.ndarray], np.ndarray]


class Arbiter:
    """The per-tick arbitration of :class:`ArbitrationConfig` (state: authority, disagreement).

    :param step: the task's largest target displacement per slow tick [m] (``max_step``).
    :param dt: slow-tick period [s].
    """

    def __init__(self, config: ArbitrationConfig | None = None, *, step: float, dt: float) -> None:
        self.config = config or ArbitrationConfig()
        if not (step > 0 and dt > 0):
            raise ValueError(f"step and dt must be positive, got step={step!r}, dt={dt!r}")
        self.step, self.dt = float(step), float(dt)
        self.reset()

    def reset(self) -> None:
        self.authority = 1.0
        self.disagreement = 0.0  # running average of disagreeing ticks

    def approach(self, tool: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """The robot's own command toward each goal (K, 3): full speed far away, proportional
        inside ``slow_radius`` (so it settles without overshoot)."""
        delta = goals - tool
        dist = np.linalg.norm(delta, axis=1, keepdims=True)
        gain = self.config.robot_speed * np.minimum(1.0, dist / self.config.slow_radius)
        return delta / np.maximum(dist, 1e-9) * gain

    def decide(self, tool: np.ndarray, u: np.ndarray | None, belief: GoalBelief, alpha_max: float,
               predict: Predictor | None = None) -> Decision:
        """The command for this tick (``u``: the guarded input, ``None`` for none)."""
        cfg = self.config
        approach = self.approach(tool, belief.goals)
        assist = approach[belief.map_goal]
        if u is None:  # no input: hold, and no evidence about agreement either
            return Decision(np.zeros(3), 0.0, self.authority, False, assist)
        disagree = bool(np.linalg.norm(u) > 0.05 and np.linalg.norm(assist) > 0.05
                        and float(u @ assist) < 0.0)
        w = 1.0 - math.exp(-self.dt / cfg.yield_after)
        self.disagreement += w * (float(disagree) - self.disagreement)
        yielding = self.disagreement > cfg.yield_level
        tau = cfg.yield_tau if yielding else cfg.recover_tau
        self.authority += (1.0 - math.exp(-self.dt / tau)) * (float(not yielding) - self.authority)
        ceiling = float(np.clip(alpha_max, 0.0, 1.0)) * self.authority
        if cfg.mode == "off" or ceiling <= 0.0:
            return Decision(np.clip(u, -1, 1), 0.0, self.authority, disagree, assist)
        if cfg.mode == "blend":
            level = float(np.clip((belief.confidence - cfg.c0) / (cfg.c1 - cfg.c0), 0.0, 1.0))
            alpha = ceiling * level
            return Decision(np.clip(alpha * assist + (1 - alpha) * u, -1, 1), alpha, self.authority,
                            disagree, assist)
        return self._hindsight(tool, u, belief, approach, ceiling, predict, disagree, assist)

    def _hindsight(self, tool: np.ndarray, u: np.ndarray, belief: GoalBelief, approach: np.ndarray,
                   ceiling: float, predict: Predictor | None, disagree: bool, assist: np.ndarray
                   ) -> Decision:
        directions = np.vstack([approach, belief.probs @ approach])  # each goal's, and the expected
        shares = ceiling * np.linspace(0.0, 1.0, 5)
        cands = (1 - shares[:, None, None]) * u + shares[:, None, None] * directions[None]
        cands = np.clip(cands.reshape(-1, 3), -1, 1)
        share = np.repeat(shares, len(directions))
        nxt = predict(cands) if predict is not None else tool + cands * self.step
        dist = np.linalg.norm(belief.goals[None] - nxt[:, None], axis=-1)  # (N, K)
        # Distances in units of the farthest the arm gets in one tick (under its impedance it
        # covers only part of a commanded step): the trade against departing from the input
        # then means the same whatever the stiffness.
        reach = max(float(np.linalg.norm(nxt - tool, axis=1).max()), 1e-6)
        cost = dist @ belief.probs / reach + self.config.hindsight_weight * np.sum((cands - u) ** 2, axis=1)
        best = int(np.argmin(cost))
        return Decision(cands[best], float(share[best]), self.authority, disagree, assist)


@dataclass(frozen=True)
class AssistAsNeeded:
    """The assistance ceiling's schedule across trials (see module docstring).

    :param forgetting: ``f``, the share of the ceiling kept from one trial to the next.
    :param gain: ``g``, ceiling added per unit of error above the dead band.
    :param dead_band: ``e_dead``, the error a skilled person still makes (no help needed).
    :param low: smallest ceiling. :param high: largest ceiling.
    """

    forgetting: float = param(0.85, "share of the assistance ceiling kept per trial (f)", low=0.0, high=1.0)
    gain: float = param(0.8, "ceiling added per unit of error above the dead band (g)", low=0.0, high=10.0)
    dead_band: float = param(0.1, "error (1 - cos) a skilled person still makes", low=0.0, high=2.0)
    low: float = param(0.05, "smallest assistance ceiling", low=0.0, high=1.0)
    high: float = param(1.0, "largest assistance ceiling", low=0.0, high=1.0)

    def __post_init__(self) -> None:
        validate(self)
        if self.low > self.high:
            raise ValueError(f"assist-as-needed: low ({self.low:g}) must not exceed high ({self.high:g})")

    def update(self, alpha_max: float, error: float | None) -> float:
        """The next trial's ceiling after a trial with the person's ``error`` (``None``: no
        input to judge by, the ceiling is kept)."""
        if error is None or not math.isfinite(error):
            return float(np.clip(alpha_max, self.low, self.high))
        nxt = self.forgetting * alpha_max + self.gain * max(0.0, error - self.dead_band)
        return float(np.clip(nxt, self.low, self.high))
