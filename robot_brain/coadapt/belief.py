"""Joint action: a Bayesian belief over the goal the human is heading for.

The Boltzmann-rational model of Dragan & Srinivasa (2013) and Javdani et al. (2015): a person
heading for goal ``g`` picks an input ``u`` with probability ``exp(-beta [Q_g(x, u) - V_g(x)])``,
where ``Q_g - V_g`` is the extra distance-to-go the input costs. For a step of length ``|u|``
(in units of the top speed) at angle ``theta_g`` to the direction of ``g`` that is
``|u| (1 - cos theta_g)``, so every tick

    b(g) <- b(g) exp(-beta |u| (1 - cos theta_g)),  normalised,

mixed with a small floor so that no goal becomes impossible: a person who changes their mind,
or heads for a goal the history says they seldom choose, can always win the belief back.

The rationality ``beta`` is fitted per user (:func:`fit_beta`): after each trial, to the goal the
person turned out to be heading for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["BETA_RANGE", "GoalBelief", "cosines", "fit_beta"]

BETA_RANGE = (0.1, 50.0)  # rationality the fit may return (beyond it the data say nothing more)


def cosines(tool: np.ndarray, u: np.ndarray, goals: np.ndarray) -> np.ndarray:
    """Cosine of the angle between input ``u`` and the direction from ``tool`` to each goal
    (1 for a goal the tool sits on: any input is as good as any other there)."""
    delta = goals - tool
    dist = np.linalg.norm(delta, axis=1)
    norm = float(np.linalg.norm(u))
    if norm < 1e-12:
        return np.ones(len(goals))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (delta @ u) / (dist * norm)
    return np.where(dist < 1e-9, 1.0, np.clip(c, -1.0, 1.0))


class GoalBelief:
    """The belief over ``goals`` (K, 3).

    :param prior: initial probabilities (default uniform), e.g. the user's goal history.
    :param beta: rationality (higher: the input is trusted more).
    :param floor: probability mass spread uniformly after each update (keeps every goal
        reachable by the belief, see module docstring).
    """

    def __init__(self, goals: np.ndarray, prior: Sequence[float] | np.ndarray | None = None,
                 beta: float = 3.0, floor: float = 0.01) -> None:
        self.goals = np.asarray(goals, dtype=np.float64)
        if self.goals.ndim != 2 or self.goals.shape[1] != 3 or len(self.goals) < 2:
            raise ValueError(f"goals must be K >= 2 positions (K, 3), got shape {self.goals.shape}")
        if not (math.isfinite(beta) and beta > 0):
            raise ValueError(f"beta must be a positive number, got {beta!r}")
        if not 0 <= floor < 1.0 / len(self.goals):
            raise ValueError(f"floor must be in [0, 1/K), got {floor!r}")
        self.beta = float(beta)
        self.floor = float(floor)
        self.reset(prior)

    @property
    def k(self) -> int:
        return len(self.goals)

    def reset(self, prior: Sequence[float] | np.ndarray | None = None) -> None:
        """Start a trial from ``prior`` (default uniform)."""
        p = np.ones(self.k) if prior is None else np.asarray(prior, dtype=np.float64)
        if p.shape != (self.k,) or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
            raise ValueError(f"prior must be {self.k} non-negative numbers, not all 0, got {prior!r}")
        self.probs = self._floored(p / p.sum())

    def _floored(self, p: np.ndarray) -> np.ndarray:
        return (1.0 - self.k * self.floor) * p + self.floor

    def update(self, tool: np.ndarray, u: np.ndarray | None) -> np.ndarray:
        """Fold one tick's input ``u`` (``None``: no evidence) into the belief; the new probs."""
        if u is None:
            return self.probs
        cost = float(np.linalg.norm(u)) * (1.0 - cosines(tool, u, self.goals))
        logp = np.log(self.probs) - self.beta * cost
        p = np.exp(logp - logp.max())
        self.probs = self._floored(p / p.sum())
        return self.probs

    @property
    def map_goal(self) -> int:
        """The most probable goal."""
        return int(np.argmax(self.probs))

    @property
    def confidence(self) -> float:
        """``max_g b(g)``: the arbitration's confidence."""
        return float(self.probs.max())


def fit_beta(samples: Sequence[tuple[np.ndarray, np.ndarray]], goals: np.ndarray, goal: int, *,
             prior: Sequence[float] | np.ndarray | None = None, floor: float = 0.01,
             beta_range: tuple[float, float] = BETA_RANGE, n_grid: int = 25) -> float | None:
    """The rationality that would have predicted this person's goal best in a trial: of a
    log-spaced grid over ``beta_range``, the ``beta`` whose belief, replayed over the trial's
    ``(tool, u)`` inputs, gave ``goal`` the highest mean log-probability (the log score).

    Why not the maximum-likelihood ``beta`` of the per-tick model: a person's heading errors
    persist over many ticks, so ticks are not independent evidence, and the per-tick fit comes out
    several times too confident (a belief that jumps to the wrong goal on a drifting hand). Scoring
    the belief on what it is for fits that correlation in. ``None`` with fewer than 5 inputs.
    """
    inputs = [(np.asarray(t, dtype=np.float64), np.asarray(u, dtype=np.float64)) for t, u in samples
              if float(np.linalg.norm(u)) > 0.05]
    if len(inputs) < 5:
        return None
    betas = np.geomspace(*beta_range, n_grid)
    belief = GoalBelief(goals, prior, beta=1.0, floor=floor)
    k = belief.k
    logb = np.tile(np.log(belief.probs), (n_grid, 1))  # (n_grid, K)
    score = np.zeros(n_grid)
    for tool, u in inputs:
        cost = float(np.linalg.norm(u)) * (1.0 - cosines(tool, u, belief.goals))  # (K,)
        logp = logb - betas[:, None] * cost[None]
        p = np.exp(logp - logp.max(axis=1, keepdims=True))
        p = (1.0 - k * floor) * p / p.sum(axis=1, keepdims=True) + floor
        logb = np.log(p)
        score += logb[:, goal]
    return float(betas[int(np.argmax(score))])
