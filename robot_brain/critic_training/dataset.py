"""Offline data for the safety critic: recorded transitions that contain violations.

A :class:`RecordingReflex` sits in the fast loop (wrapping the reflex in force, or none) and every
``every`` fast ticks (``critic_dt``) records the critic features of the state and of the setpoint
actually executed, plus whether the force limit was exceeded during the interval that follows.
:func:`collect` drives a task with several behaviours (random, scripted, perturbed scripted) with
the reflex off and disturbances on, so the data holds plenty of violations and the states that
lead to them.

Transitions ``(x_k, c_k, x_{k+1}, done_k)`` (see ``docs/safety.md``, "Data format"):

- ``x_k``: features (:data:`robot_brain.safety.features.FEATURE_NAMES`) at fast tick ``k * every``,
  of the measured state (force through the contact memory) and the executed setpoint;
- ``c_k``: 1.0 when the contact force exceeds ``force_limit`` on any tick of
  ``(k * every, (k + 1) * every]``, else 0.0 (the label the critic is trained and scored on);
- ``x_{k+1}``: features ``every`` ticks later (the next state *and* the next executed setpoint:
  the target bootstraps SARSA-style on the behaviour);
- ``done_k``: the episode ended after this interval by success (no bootstrap).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np

from robot_brain.controllers.types import Command, RobotState
from robot_brain.envs import Disturbances, make
from robot_brain.fileio import atomic_write
from robot_brain.policies import Policy, make_policy
from robot_brain.rollout import run_episode
from robot_brain.safety import CriticReflex, EventLog, Reflex, RiskModel, ShieldSpec, build_shield
from robot_brain.safety.features import FEATURE_NAMES, MEMORY_TAU, N_FEATURES, ContactMemory, critic_features
from robot_brain.safety.recovery import CANDIDATES
from robot_brain.safety.shield import shield_label

if TYPE_CHECKING:
    from robot_brain.envs import ImpedanceTaskEnv

__all__ = [
    "COLLECT_POLICIES",
    "DatasetFileError",
    "ExploringRecovery",
    "PerturbedPolicy",
    "RecordingReflex",
    "TransitionData",
    "collect",
]

COLLECT_POLICIES = ("random", "scripted", "perturbed")
DATA_VERSION = 1


class DatasetFileError(ValueError):
    """A transition file that is missing, corrupted or inconsistent (one-line message)."""


@dataclass
class TransitionData:
    """Critic transitions (arrays aligned on the first axis) plus what produced them.

    :param features: ``x_k``, shape ``(n, N_FEATURES)``.
    :param cost: ``c_k`` in {0, 1}, shape ``(n,)``.
    :param next_features: ``x_{k+1}``, shape ``(n, N_FEATURES)``.
    :param done: episode ended by success after this interval, shape ``(n,)``.
    :param episode: index of the episode each transition belongs to, shape ``(n,)``.
    :param force: largest contact force during the interval [N], shape ``(n,)``.
    :param episode_policy: behaviour of each episode (``random``, ``scripted`` ...).
    :param meta: ``task``, ``critic_dt`` [s], ``force_limit`` [N], ``seed`` ...
    """

    features: np.ndarray
    cost: np.ndarray
    next_features: np.ndarray
    done: np.ndarray
    episode: np.ndarray
    force: np.ndarray
    episode_policy: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.cost)
        for name in ("features", "next_features"):
            a = getattr(self, name)
            if a.shape != (n, N_FEATURES):
                raise ValueError(f"{name} must have shape ({n}, {N_FEATURES}), got {a.shape}")
        for name in ("done", "episode", "force"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {getattr(self, name).shape}")

    def __len__(self) -> int:
        return len(self.cost)

    @property
    def n_episodes(self) -> int:
        return len(self.episode_policy)

    @property
    def violation_rate(self) -> float:
        return float(self.cost.mean()) if len(self) else 0.0

    def subset(self, mask: np.ndarray) -> TransitionData:
        """The transitions where ``mask`` is true (episode ids and policies kept)."""
        return TransitionData(self.features[mask], self.cost[mask], self.next_features[mask],
                              self.done[mask], self.episode[mask], self.force[mask],
                              list(self.episode_policy), dict(self.meta))

    def split(self, test_fraction: float, seed: int = 0) -> tuple[TransitionData, TransitionData]:
        """Split by *episode* (transitions of one episode are correlated), ``(train, test)``."""
        eps = np.unique(self.episode)
        rng = np.random.default_rng(seed)
        n_test = max(1, round(test_fraction * len(eps))) if len(eps) > 1 else 0
        test_eps = rng.choice(eps, size=n_test, replace=False) if n_test else eps[:0]
        is_test = np.isin(self.episode, test_eps)
        return self.subset(~is_test), self.subset(is_test)

    def mc_risk(self, gamma: float) -> np.ndarray:
        """Empirical discounted violation probability along each recorded episode:
        ``q_k = c_k + (1 - c_k) * gamma * q_{k+1}``, 0 after the last transition (the reference
        the critic's calibration is measured against)."""
        q = np.zeros(len(self))
        nxt = 0.0
        for i in range(len(self) - 1, -1, -1):
            last = i == len(self) - 1 or self.episode[i + 1] != self.episode[i]
            if last or self.done[i]:
                nxt = 0.0
            c = float(self.cost[i])
            q[i] = c + (1.0 - c) * gamma * nxt
            nxt = q[i]
        return q

    @classmethod
    def concatenate(cls, parts: Sequence[TransitionData]) -> TransitionData:
        """Join datasets; episode ids are renumbered so they stay distinct."""
        feats, cost, nxt, done, ep, force, pol = [], [], [], [], [], [], []
        offset = 0
        for p in parts:
            feats.append(p.features)
            cost.append(p.cost)
            nxt.append(p.next_features)
            done.append(p.done)
            ep.append(p.episode + offset)
            force.append(p.force)
            pol.extend(p.episode_policy)
            offset += max(p.n_episodes, int(p.episode.max()) + 1 if len(p) else 0)
        meta = dict(parts[0].meta) if parts else {}
        return cls(np.concatenate(feats), np.concatenate(cost), np.concatenate(nxt),
                   np.concatenate(done), np.concatenate(ep), np.concatenate(force), pol, meta)

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write a ``.npz`` (atomically); plain arrays only, readable without this package."""
        path = Path(path)
        m = self.meta
        arrays = {
            "version": np.array(DATA_VERSION),
            "feature_names": np.array(FEATURE_NAMES),
            "features": self.features.astype(np.float32),
            "cost": self.cost.astype(np.float32),
            "next_features": self.next_features.astype(np.float32),
            "done": self.done.astype(bool),
            "episode": self.episode.astype(np.int32),
            "force": self.force.astype(np.float32),
            "episode_policy": np.array(self.episode_policy, dtype=str),
            "task": np.array(str(m.get("task", ""))),
            "critic_dt": np.array(float(m.get("critic_dt", np.nan))),
            "force_limit": np.array(float(m.get("force_limit", np.nan))),
            "seed": np.array(int(m.get("seed", -1))),
            "control_dt": np.array(float(m.get("control_dt", 0.001))),
            "memory_tau": np.array(float(m.get("memory_tau", MEMORY_TAU))),
            "reflex": np.array(str(m.get("reflex", "none"))),
        }
        atomic_write(path, lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]  # numpy's stub: **arrays might fill allow_pickle
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> TransitionData:
        """Read a file written by :meth:`save` (``allow_pickle=False``; one-line errors)."""
        path = Path(path)
        if not path.is_file():
            raise DatasetFileError(f"{path}: transition file not found")
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["version"]) != DATA_VERSION:
                    raise DatasetFileError(f"{path}: data version {int(z['version'])} is not "
                                           f"supported (expected {DATA_VERSION})")
                if list(z["feature_names"]) != list(FEATURE_NAMES):
                    raise DatasetFileError(f"{path}: feature_names differ from this version's "
                                           f"{N_FEATURES} features")
                data = cls(z["features"].astype(np.float64), z["cost"].astype(np.float64),
                           z["next_features"].astype(np.float64), z["done"].astype(bool),
                           z["episode"].astype(np.int64), z["force"].astype(np.float64),
                           [str(p) for p in z["episode_policy"]],
                           {"task": str(z["task"]), "critic_dt": float(z["critic_dt"]),
                            "force_limit": float(z["force_limit"]), "seed": int(z["seed"]),
                            "control_dt": float(z["control_dt"]),
                            "memory_tau": float(z["memory_tau"]),
                            "reflex": str(z["reflex"]) if "reflex" in z.files else "none"})
        except DatasetFileError:
            raise
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DatasetFileError(f"{path}: not a valid transition file ({exc})") from None
        return data


class RecordingReflex:
    """Records critic transitions every ``every`` fast ticks while delegating to ``inner`` (a
    :class:`robot_brain.safety.Reflex`).

    It records the setpoint *executed* (what ``inner`` returned): with a shield in the loop the
    risk data holds the executed action, while the task policy's buffer keeps the proposed one.
    Allocates one small array per record (every ``every`` ticks): for data collection and
    online updates, not for a hard real-time deployment.

    :param inner: the reflex in force (``None``: no reflex).
    :param every: fast ticks per critic interval (``critic_dt * control_hz``).
    :param force_limit: contact force above which an interval is a violation [N].
    :param control_dt: control period [s] (for the contact memory's decay).
    :param memory_tau: decay time constant of the contact memory [s].
    """

    def __init__(self, inner: Reflex | None, every: int, force_limit: float, *,
                 control_dt: float = 0.001, memory_tau: float = MEMORY_TAU) -> None:
        if int(every) != every or every < 1:
            raise ValueError(f"every must be a positive integer number of ticks, got {every}")
        if not force_limit > 0:
            raise ValueError(f"force_limit must be > 0 N, got {force_limit}")
        self.inner = inner
        self.every = int(every)
        self.force_limit = float(force_limit)
        self.memory = ContactMemory(control_dt, memory_tau)
        self._feats: list[np.ndarray] = []
        self._fmax: list[float] = []
        self._f = 0.0
        self._t0 = -1
        self._episodes: list[tuple[np.ndarray, np.ndarray, bool]] = []

    def reset(self, state: RobotState) -> None:
        self._feats, self._fmax, self._f, self._t0 = [], [], 0.0, -1
        self.memory.reset()
        if self.inner is not None:
            self.inner.reset(state)

    def new_command(self, command: Command) -> None:
        if self.inner is not None:
            self.inner.new_command(command)

    def check(self, tick: int, state: RobotState, setpoint: Command, log: EventLog) -> Command:
        out = setpoint if self.inner is None else self.inner.check(tick, state, setpoint, log)
        self.memory.update(state)
        f = state.contact_force
        if self._t0 >= 0 and f > self._f:  # the force of the interval that just ran
            self._f = f
        if self._t0 < 0 or tick - self._t0 >= self.every:
            if self._t0 >= 0:
                self._fmax.append(self._f)
            if out.position is not None:
                x = np.empty(N_FEATURES)
                critic_features(state, out, x, self.memory.state)
                self._feats.append(x)
            self._f = 0.0
            self._t0 = tick
        return out

    def end_episode(self, success: bool) -> int:
        """Close the current episode (call after its last step); returns its transitions."""
        n = min(len(self._feats) - 1, len(self._fmax))
        if n > 0:
            self._episodes.append((np.array(self._feats[: n + 1]), np.array(self._fmax[:n]),
                                   bool(success)))
        self._feats, self._fmax, self._f, self._t0 = [], [], 0.0, -1
        return max(n, 0)

    def dataset(self, policies: Sequence[str] | None = None, meta: dict | None = None) -> TransitionData:
        """All closed episodes as :class:`TransitionData`."""
        feats, cost, nxt, done, ep, force = [], [], [], [], [], []
        for i, (x, fmax, success) in enumerate(self._episodes):
            n = len(fmax)
            feats.append(x[:-1])
            nxt.append(x[1:])
            force.append(fmax)
            cost.append((fmax > self.force_limit).astype(np.float64))
            d = np.zeros(n, dtype=bool)
            d[-1] = success
            done.append(d)
            ep.append(np.full(n, i))
        if not feats:
            empty = np.zeros((0, N_FEATURES))
            return TransitionData(empty, np.zeros(0), empty.copy(), np.zeros(0, bool),
                                  np.zeros(0, np.int64), np.zeros(0), list(policies or []),
                                  dict(meta or {}))
        pol = list(policies) if policies is not None else ["unknown"] * len(self._episodes)
        return TransitionData(np.concatenate(feats), np.concatenate(cost), np.concatenate(nxt),
                              np.concatenate(done), np.concatenate(ep), np.concatenate(force),
                              pol, dict(meta or {}))

    def drain(self, meta: dict | None = None) -> TransitionData:
        """The closed episodes as :class:`TransitionData`, then forgotten (online updates take the
        data in chunks)."""
        data = self.dataset(meta=meta)
        self._episodes.clear()
        return data


class ExploringRecovery(CriticReflex):
    """A :class:`CriticReflex` for data collection: each time it engages it executes one of its
    recovery candidates drawn at random, and keeps it until it releases.

    The deployed reflex executes the candidate its critic judges least risky; a critic trained
    only on data without a reflex has never seen what a brace or a retreat leads to, so it
    cannot rank them. Recorded with this reflex in the loop (:func:`collect` with
    ``shield=ExploringRecovery(...)``), the data holds every candidate in every hazard the
    trigger meets, with its outcome (Recovery RL's recovery data).

    :param candidates: names (:data:`robot_brain.safety.recovery.CANDIDATES`) to draw from.
    :param seed: seed of the draws. Other parameters: :class:`CriticReflex`.
    """

    def __init__(self, model: RiskModel, inner: Reflex | None = None, *,
                 candidates: Sequence[str] = ("retreat", "brace"), seed: int | None = None,
                 **kwargs: Any) -> None:
        bad = [c for c in candidates if c not in CANDIDATES]
        if bad or not candidates:
            raise ValueError(f"candidates must name some of {', '.join(CANDIDATES)}, got "
                             f"{list(candidates)}")
        if "learned" in candidates and not model.has_recovery:
            raise ValueError("candidate 'learned' needs a critic with a recovery policy")
        kwargs.setdefault("use_learned", "learned" in candidates)
        # every primitive drawn must be filled in on each recovery tick (retreat always is)
        kwargs.setdefault("recoveries", tuple(dict.fromkeys(("retreat", *(c for c in candidates
                                                                          if c != "learned")))))
        super().__init__(model, inner, **kwargs)
        self.choices = np.array([CANDIDATES.index(c) for c in candidates])
        self.rng = np.random.default_rng(seed)
        self._pick = -1

    def reset(self, state: RobotState) -> None:
        super().reset(state)
        self._pick = -1

    def check(self, tick: int, state: RobotState, setpoint: Command, log: EventLog) -> Command:
        out = super().check(tick, state, setpoint, log)
        if not self.engaged:
            self._pick = -1
        return out

    def _recover(self, state: RobotState, setpoint: Command) -> tuple[Command, int]:
        super()._recover(state, setpoint)  # fills every candidate on offer (its risk is set)
        if self._pick < 0:
            self._pick = int(self.rng.choice(self.choices))
        pick = self._pick if self.last_risks[self._pick] == self.last_risks[self._pick] else 0
        self.last_choice = CANDIDATES[pick]
        return self._cands[pick], pick


class PerturbedPolicy:
    """A base policy with noise and occasional deliberate lunges: the "perturbed scripted"
    behaviour that drives into obstacles, stiff or soft, so the data shows what a violation is
    preceded by.

    Each slow tick, with probability ``lunge_rate`` a lunge of 2-8 steps starts: full steps in a
    random direction of the action plane with a random stiffness. Otherwise the base action gets
    Gaussian noise (``noise`` on the displacement, random-walk stiffness).

    :param base: the policy to perturb. :param action_dim: size of the action (2 * axes).
    :param seed: generator seed. :param noise: std of the displacement noise (normalised).
    :param lunge_rate: probability per slow tick that a lunge starts.
    """

    def __init__(self, base: Policy, action_dim: int, seed: int | None = None, noise: float = 0.3,
                 lunge_rate: float = 0.08) -> None:
        self.base = base
        self.na = action_dim // 2
        self.rng = np.random.default_rng(seed)
        self.noise = float(noise)
        self.lunge_rate = float(lunge_rate)
        self._lunge = 0
        self._dir = np.zeros(self.na)
        self._k = np.zeros(self.na)
        self._kwalk = np.zeros(self.na)

    def reset(self) -> None:
        self.base.reset()
        self._lunge = 0
        self._kwalk = self.rng.uniform(-1, 1, self.na)

    def act(self, obs: np.ndarray) -> np.ndarray:
        a = np.array(self.base.act(obs), dtype=np.float64)
        rng, na = self.rng, self.na
        if self._lunge == 0 and rng.random() < self.lunge_rate:
            self._lunge = int(rng.integers(2, 9))
            d = rng.normal(size=na)
            self._dir = d / (np.linalg.norm(d) + 1e-9)
            self._k = np.full(na, rng.uniform(-1, 1))
        if self._lunge > 0:
            self._lunge -= 1
            a[:na] = self._dir
            a[na:] = self._k
        else:
            self._kwalk = np.clip(self._kwalk + rng.normal(scale=0.2, size=na), -1, 1)
            a[:na] += rng.normal(scale=self.noise, size=na)
            a[na:] = np.clip(a[na:] + self._kwalk, -1, 1)
        return np.clip(a, -1.0, 1.0).astype(np.float32)


def _make_behaviour(name: str, env: gym.Env, seed: int) -> Policy:
    if name == "perturbed":
        action_dim = cast(gym.spaces.Box, env.action_space).shape[0]
        return PerturbedPolicy(make_policy("scripted", env, seed), action_dim, seed)
    if name in ("random", "scripted", "zero"):
        return make_policy(name, env, seed)
    raise ValueError(f"unknown collection policy {name!r} (choose from {', '.join(COLLECT_POLICIES)})")


def collect(task: str, episodes: int, policies: Sequence[str] = COLLECT_POLICIES,
            disturbances: Disturbances | None = None, seed: int = 0, critic_dt: float = 0.01,
            progress: bool = True, env_kwargs: dict[str, Any] | None = None,
            shield: ShieldSpec = None,
            callback: Callable[[int, dict[str, Any]], None] | None = None) -> TransitionData:
    """Run ``episodes`` episodes of ``task`` (reflex **off** by default) and record transitions.

    Episodes cycle through ``policies`` (``random``, ``scripted``, ``perturbed``); episode ``i``
    uses seed ``seed + i`` for the env and its behaviour. A tqdm bar shows progress and the
    violations seen so far.

    :param task: task name (``maze``, ``reach`` ...).
    :param episodes: number of episodes (>= 1).
    :param policies: behaviours to cycle through.
    :param disturbances: :class:`robot_brain.envs.Disturbances` (default:
        ``Disturbances.default()``: pushes and shifted walls).
    :param seed: seed of the first episode.
    :param critic_dt: critic interval [s]; a multiple of the control period.
    :param progress: show the tqdm progress bar.
    :param env_kwargs: task options (see ``robot-brain tasks``).
    :param shield: the shield in force while recording (a shield spec, see
        :mod:`robot_brain.safety.shield`); default ``None``: off, so violations are plentiful.
        ``"limits"`` or a critic (e.g. a :class:`CriticReflex`) give on-policy data to update a
        critic online.
    :param callback: called after each episode with ``(index, episode metrics dict)``.
    """
    from tqdm.auto import tqdm

    if int(episodes) != episodes or episodes < 1:
        raise ValueError(f"episodes must be a positive integer, got {episodes}")
    if not policies:
        raise ValueError("policies must name at least one behaviour")
    for p in policies:
        if p not in (*COLLECT_POLICIES, "zero"):
            raise ValueError(f"unknown collection policy {p!r} (choose from "
                             f"{', '.join(COLLECT_POLICIES)})")
    kwargs = dict(env_kwargs or {})
    kwargs["disturbances"] = disturbances if disturbances is not None else Disturbances.default()
    env = make(task, shield=None, **kwargs)
    base = cast("ImpedanceTaskEnv", env.unwrapped)
    inner = build_shield(shield, base.limits)
    cfg = base.config
    every = round(critic_dt * cfg.control_hz)
    if every < 1 or abs(every - critic_dt * cfg.control_hz) > 1e-6:
        raise ValueError(f"critic_dt={critic_dt} s is not a positive multiple of the control period "
                         f"{1.0 / cfg.control_hz} s")
    recorder = RecordingReflex(inner, every, cfg.force_limit, control_dt=1.0 / cfg.control_hz)
    base.set_shield(recorder)
    used: list[str] = []
    viol = 0
    bar = tqdm(range(episodes), desc=f"collect {task}", unit="ep", disable=not progress,
               dynamic_ncols=True)
    try:
        for i in bar:
            name = policies[i % len(policies)]
            result = run_episode(env, _make_behaviour(name, env, seed + i), seed + i)
            recorder.end_episode(success=bool(result.metrics["success"]))
            used.append(name)
            viol += result.metrics["violations"]
            bar.set_postfix(violations=viol)
            if callback is not None:
                callback(i, result.metrics)
    finally:
        bar.close()
        env.close()
    meta = {"task": task, "critic_dt": every / cfg.control_hz, "force_limit": cfg.force_limit,
            "seed": seed, "control_dt": 1.0 / cfg.control_hz, "memory_tau": recorder.memory.tau,
            "reflex": shield_label(shield)}
    return recorder.dataset(used, meta)
