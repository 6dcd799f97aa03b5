"""The safety critic at run time: ``Q_risk(s, a_hat)`` evaluated in microseconds, and its files.

``Q_risk`` is the discounted probability that a constraint violation (contact force above the
task's limit) happens from this fast tick on if the behaviour goes on as it does::

    Q_risk(s_k, a_k) = c_k + (1 - c_k) * gamma_risk * Q_risk(s_{k+1}, a_{k+1})

where ``k`` counts critic intervals of ``critic_dt`` seconds and ``c_k`` is 1 when the force limit
is exceeded during the interval. It is trained with torch (:mod:`robot_brain.safety.learning`)
as twin MLPs; at run time the maximum of the two heads is taken (pessimistic risk).

This module has no torch dependency: :class:`RiskModel` evaluates the exported weights with one
compiled call (features + both heads + sigmoid, ~3 us), so the reflex can check every 1 kHz
tick. Architecture of each head: ``N_FEATURES -> H1 -> H2 -> 1`` with ReLU, sigmoid output; the
optional learned recovery policy: ``N_STATE_FEATURES -> H1 -> H2 -> 2 * n_axes`` with tanh output.

Files of a critic directory (written atomically: temporary file, then ``os.replace``):

- ``critic.npz``  weights and the input standardisation, loaded with ``allow_pickle=False``;
- ``critic.json`` metadata: format version, feature names, thresholds (``eps_safe``,
  ``gamma_risk``, ``critic_dt``, ``force_limit``), array shapes, training metrics;
- ``critic.pt``   torch state for further training (optional; ``torch.load(weights_only=True)``).

A missing, corrupted or wrong-shape file raises :class:`CriticFileError` with one line naming the
file and what was expected. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from robot_brain.controllers.impedance import K_MAX
from robot_brain.controllers.types import Command, RobotState
from robot_brain.fileio import atomic_write, atomic_write_json

from .features import (
    E_REF,
    FEATURE_NAMES,
    MEMORY_SIZE,
    MEMORY_TAU,
    N_FEATURES,
    N_STATE_FEATURES,
    ContactMemory,
    _features,
    _memory_from_wrench,
)
from .retreat import RetreatConfig

__all__ = [
    "DEFAULT_RECOVERIES",
    "FORMAT_VERSION",
    "META_FILE",
    "RECOVERY_PRIMITIVES",
    "TORCH_FILE",
    "WEIGHTS_FILE",
    "CriticFileError",
    "CriticWeights",
    "RecoveryWeights",
    "RiskModel",
    "Scratch",
    "check_recoveries",
    "load_critic",
    "parse_recoveries",
    "save_critic",
]

FORMAT_VERSION = 1
KIND = "robot_brain.risk_critic"
WEIGHTS_FILE = "critic.npz"
META_FILE = "critic.json"
TORCH_FILE = "critic.pt"

# Reassociation lets LLVM vectorise the dot products; no "nnan"/"ninf", so NaN still propagates
# (a NaN critic must be seen, not optimised away).
_FAST = {"reassoc", "contract", "arcp", "nsz"}


class CriticFileError(ValueError):
    """A critic file that is missing, corrupted or has the wrong shapes (one-line message)."""


# -- compiled evaluation -------------------------------------------------------------------------
class CriticWeights(NamedTuple):
    """The critic's parameter block for the compiled kernels: input standardisation and the twin
    heads. ``w1`` stacks both heads' first layers ``(2*H1, F)``; ``w2`` is ``(2, H2, H1)``, ``w3``
    is ``(2, H2)``."""

    mean: np.ndarray
    inv_std: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    b3: np.ndarray


class RecoveryWeights(NamedTuple):
    """The learned recovery policy's parameter block: three dense layers, the Cartesian ``axes``
    it moves, ``bounds = [r_max, ln k_min, ln k_max]`` and its scratch buffers ``h1, h2, out``.
    A critic without a recovery policy carries a dummy block (``axes`` empty)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    b3: np.ndarray
    axes: np.ndarray
    bounds: np.ndarray
    h1: np.ndarray
    h2: np.ndarray
    out: np.ndarray


class Scratch(NamedTuple):
    """Preallocated buffers of the critic kernels: features ``x``, hidden layers ``h1, h2``."""

    x: np.ndarray
    h1: np.ndarray
    h2: np.ndarray


#: A parameter block as the compiled kernels take it: the fields of one of the NamedTuples above,
#: in their order, as a plain tuple. (numba's dispatcher unboxes a plain tuple of arrays about
#: twice as fast as a namedtuple, which it types in Python: ~0.6 us per call, a fifth of a critic
#: evaluation.) :attr:`RiskModel.blocks` holds them.
Block = tuple[np.ndarray, ...]


@njit(cache=True, fastmath=_FAST)
def _dense(w: np.ndarray, b: np.ndarray, x: np.ndarray, out: np.ndarray,
           relu: bool) -> None:  # pragma: no cover - compiled
    n_out, n_in = w.shape
    for i in range(n_out):
        s = b[i]
        for j in range(n_in):
            s += w[i, j] * x[j]
        out[i] = s if (not relu or s > 0.0) else 0.0


@njit(cache=True, fastmath=_FAST)
def _heads(cw: Block, sc: Block) -> float:  # pragma: no cover - compiled
    """max over the twin heads of the logit for the standardised input in ``sc``; NaN if any is
    NaN."""
    _, _, w1, b1, w2, b2, w3, b3 = cw
    x, h1, h2 = sc
    _dense(w1, b1, x, h1, True)
    n1 = w2.shape[2]
    best = -np.inf
    for k in range(2):
        _dense(w2[k], b2[k], h1[k * n1:(k + 1) * n1], h2, True)
        s = b3[k]
        for j in range(h2.shape[0]):
            s += w3[k, j] * h2[j]
        if s != s:
            return np.nan
        if s > best:
            best = s
    return best


@njit(cache=True)
def _sigmoid(z: float) -> float:  # pragma: no cover - compiled
    if z != z:
        return np.nan
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@njit(cache=True, fastmath=_FAST)
def risk_kernel(pos: np.ndarray, vel: np.ndarray, mem: np.ndarray, sp_pos: np.ndarray, sp_k: np.ndarray,
                cw: Block, sc: Block) -> float:  # pragma: no cover - compiled
    """Features of (state, memory, setpoint) -> standardise -> twin heads -> sigmoid(max logit).
    ``cw`` is a :class:`CriticWeights`, ``sc`` a :class:`Scratch` (as plain tuples)."""
    mean, inv_std = cw[0], cw[1]
    x = sc[0]
    _features(pos, vel, mem, sp_pos, sp_k, x)
    for i in range(x.shape[0]):
        x[i] = (x[i] - mean[i]) * inv_std[i]
    return _sigmoid(_heads(cw, sc))


@njit(cache=True, fastmath=_FAST)
def recovery_kernel(pos: np.ndarray, vel: np.ndarray, mem: np.ndarray, sp_pos: np.ndarray,
                    sp_k: np.ndarray, cw: Block, rw: Block, sc: Block, out_pos: np.ndarray,
                    out_k: np.ndarray) -> None:  # pragma: no cover - compiled
    """Learned recovery setpoint from the state features (the first ``N_STATE_FEATURES``):
    ``out_pos[axes] = pos + r_max * tanh(.)``, ``out_k[axes]`` on a log scale in
    ``[exp(ln k_min), exp(ln k_max)]``; other axes are left as they are. ``out_*`` may alias
    ``sp_*`` (read first). ``rw`` is a :class:`RecoveryWeights` (as a plain tuple)."""
    mean, inv_std = cw[0], cw[1]
    w1, b1, w2, b2, w3, b3, axes, bounds, h1, h2, o = rw
    x = sc[0]
    _features(pos, vel, mem, sp_pos, sp_k, x)
    for i in range(N_STATE_FEATURES):
        x[i] = (x[i] - mean[i]) * inv_std[i]
    _dense(w1, b1, x[:N_STATE_FEATURES], h1, True)
    _dense(w2, b2, h1, h2, True)
    _dense(w3, b3, h2, o, False)
    r_max, logk_lo, logk_hi = bounds[0], bounds[1], bounds[2]
    na = axes.shape[0]
    for j in range(na):
        a = axes[j]
        out_pos[a] = pos[a] + r_max * math.tanh(o[j])
        out_k[a] = math.exp(logk_lo + 0.5 * (math.tanh(o[na + j]) + 1.0) * (logk_hi - logk_lo))


# -- the run-time model ----------------------------------------------------------------------------
_RECOVERY_ARRAYS = ("rec_w1", "rec_b1", "rec_w2", "rec_b2", "rec_w3", "rec_b3")


def _expected_shapes(h1: int, h2: int, n_axes: int | None = None,
                     rec_hidden: tuple[int, int] | None = None) -> dict[str, tuple[int, ...]]:
    """Array shapes of a critic with hidden sizes ``(h1, h2)`` and, when ``n_axes`` is given, a
    recovery policy with hidden sizes ``rec_hidden``."""
    shapes = {"mean": (N_FEATURES,), "std": (N_FEATURES,), "w1": (2 * h1, N_FEATURES),
              "b1": (2 * h1,), "w2": (2, h2, h1), "b2": (2, h2), "w3": (2, h2), "b3": (2,)}
    if n_axes:
        r1, r2 = rec_hidden or (h1, h2)
        shapes.update({"rec_w1": (r1, N_STATE_FEATURES), "rec_b1": (r1,), "rec_w2": (r2, r1),
                       "rec_b2": (r2,), "rec_w3": (2 * n_axes, r2), "rec_b3": (2 * n_axes,)})
    return shapes


#: The recovery primitives a critic's reflex may offer (:data:`robot_brain.safety.recovery.CANDIDATES`
#: less the learned recovery policy, which ``use_learned`` offers; soften in two offers).
RECOVERY_PRIMITIVES = ("retreat", "brace", "soften", "wall-soften")
#: What a critic file that names none offers: retreat-and-soften and the brace (the answer to
#: pushes, which the default ``train-critic`` data holds).
DEFAULT_RECOVERIES = ("retreat", "brace")


def check_recoveries(names: object, where: str = "recoveries") -> tuple[str, ...]:
    """``names`` as a tuple of distinct :data:`RECOVERY_PRIMITIVES` holding ``"retreat"`` (the
    fallback that needs no critic) and not both soften and wall-soften (one candidate, offered
    two ways), or :class:`CriticFileError` naming the bad value."""
    ok = (isinstance(names, (list, tuple)) and all(n in RECOVERY_PRIMITIVES for n in names)
          and len(set(names)) == len(names) and "retreat" in names
          and not ("soften" in names and "wall-soften" in names))
    if not ok:
        raise CriticFileError(f"{where} must be distinct names from {', '.join(RECOVERY_PRIMITIVES)} "
                              f"including 'retreat' and not both soften and wall-soften, got {names!r}")
    return tuple(names)  # type: ignore[arg-type]


def parse_recoveries(text: str) -> tuple[str, ...]:
    """Comma-separated recovery names (a command line's ``--recoveries``) as checked by
    :func:`check_recoveries`, with ``"retreat"`` added first (it is always on offer)."""
    names = tuple(dict.fromkeys(["retreat", *(n.strip() for n in text.split(",") if n.strip())]))
    return check_recoveries(names, "recoveries")


class RiskModel:
    """Exported safety critic (numpy weights, compiled evaluation) plus its metadata.

    Build one with :func:`load_critic` or
    :meth:`robot_brain.critic_training.learning.CriticTrainer.export`.

    :param arrays: weights by name (see :func:`_expected_shapes`: ``mean``, ``std``, ``w1`` ...
        and optionally ``rec_*`` for the learned recovery policy).
    :param meta: metadata (``eps_safe``, ``gamma_risk``, ``critic_dt``, ``force_limit``,
        ``hidden``, ``recovery`` ...), as stored in ``critic.json``.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        self.meta = dict(meta)
        a = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}
        self.arrays = a
        self.mean = a["mean"]
        self.inv_std = 1.0 / a["std"]
        #: the critic's parameter block for the compiled kernels
        self.weights = CriticWeights(self.mean, self.inv_std, a["w1"], a["b1"], a["w2"], a["b2"],
                                     a["w3"], a["b3"])
        h1, h2 = a["w2"].shape[2], a["w2"].shape[1]
        #: scratch buffers of the kernels (one model = one caller at a time)
        self.scratch = Scratch(np.zeros(N_FEATURES), np.zeros(2 * h1), np.zeros(h2))
        self._mem = np.zeros(MEMORY_SIZE)
        rec = self.meta.get("recovery") or {}
        self.has_recovery = all(k in a for k in _RECOVERY_ARRAYS)
        if self.has_recovery:
            self.recovery_axes = np.asarray(rec.get("axes", (0, 1, 2)), dtype=np.int64)
            bounds = np.array([float(rec.get("r_max", E_REF)), math.log(rec.get("k_min", 100.0)),
                               math.log(rec.get("k_max", 2000.0))])
            self.recovery = RecoveryWeights(a["rec_w1"], a["rec_b1"], a["rec_w2"], a["rec_b2"],
                                            a["rec_w3"], a["rec_b3"], self.recovery_axes,
                                            bounds, np.zeros(a["rec_w1"].shape[0]),
                                            np.zeros(a["rec_w2"].shape[0]),
                                            np.zeros(a["rec_w3"].shape[0]))
        else:  # a dummy block with the right types, so one compiled signature serves both
            self.recovery_axes = np.zeros(0, np.int64)
            z1, z2 = np.zeros((1, N_STATE_FEATURES)), np.zeros((1, 1))
            self.recovery = RecoveryWeights(z1, np.zeros(1), z2, np.zeros(1), z2, np.zeros(1),
                                            self.recovery_axes, np.zeros(3), np.zeros(1),
                                            np.zeros(1), np.zeros(1))
        #: ``(critic, recovery, scratch)`` as the kernels take them (see :data:`Block`)
        self.blocks: tuple[Block, Block, Block] = (tuple(self.weights), tuple(self.recovery),
                                                   tuple(self.scratch))

    # -- metadata shortcuts --------------------------------------------------------------------
    @property
    def eps_safe(self) -> float:
        return float(self.meta["eps_safe"])

    @property
    def gamma_risk(self) -> float:
        return float(self.meta["gamma_risk"])

    @property
    def critic_dt(self) -> float:
        return float(self.meta["critic_dt"])

    @property
    def force_limit(self) -> float:
        return float(self.meta["force_limit"])

    @property
    def recoveries(self) -> tuple[str, ...]:
        """The recovery primitives its reflex offers (``critic.json``'s ``recoveries``)."""
        return tuple(self.meta.get("recoveries") or DEFAULT_RECOVERIES)

    @property
    def wall_retreat(self) -> float | None:
        """How far outside a remembered wall its reflex retreats from the arm's own press [m]
        (``critic.json``'s ``wall_retreat``, :class:`robot_brain.safety.RetreatConfig`); ``None``
        when the file does not say (the retreat's default)."""
        w = self.meta.get("wall_retreat")
        return None if w is None else float(w)

    def contact_memory(self) -> ContactMemory:
        """A fresh :class:`ContactMemory` with the settings the critic was trained with."""
        m = self.meta.get("contact_memory") or {}
        return ContactMemory(dt=float(m.get("dt", 0.001)), tau=float(m.get("tau", MEMORY_TAU)))

    # -- evaluation ----------------------------------------------------------------------------
    def risk(self, state: RobotState, setpoint: Command, memory: np.ndarray | None = None) -> float:
        """``max(Q1, Q2)(s, a_hat)`` in [0, 1] (NaN if the state or weights are corrupt).

        :param memory: the caller's ``ContactMemory.state`` (updated every tick); default: a
            memory holding only this tick's measured force.

        Real-time safe: one compiled call, no allocation.
        """
        assert setpoint.position is not None  # a Cartesian setpoint
        if memory is None:
            memory = self._mem
            _memory_from_wrench(state.wrench, state.ee_pos, memory)
        cw, _, sc = self.blocks
        return risk_kernel(state.ee_pos, state.ee_vel, memory, setpoint.position, setpoint.stiffness,
                           cw, sc)

    def risk_batch(self, features: np.ndarray) -> np.ndarray:
        """Risk of a batch of feature vectors ``(n, N_FEATURES)`` (vectorised numpy; for
        evaluation and tests, not for the fast loop)."""
        return self.heads_batch(features).max(axis=1)

    def heads_batch(self, features: np.ndarray) -> np.ndarray:
        """Both heads' risk ``(n, 2)`` of a feature batch (numpy reference of the kernel)."""
        w = self.weights
        x = (np.asarray(features, dtype=np.float64) - w.mean) * w.inv_std
        h = np.maximum(x @ w.w1.T + w.b1, 0.0)
        n1 = w.w2.shape[2]
        out = np.empty((x.shape[0], 2))
        for k in range(2):
            hk = np.maximum(h[:, k * n1:(k + 1) * n1] @ w.w2[k].T + w.b2[k], 0.0)
            out[:, k] = hk @ w.w3[k] + w.b3[k]
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-out))

    def recover(self, state: RobotState, out: Command, memory: np.ndarray | None = None) -> bool:
        """Write the learned recovery setpoint into ``out`` (position and translational stiffness
        on the recovery axes; the rest of ``out`` is left alone). Returns False when the critic
        has no recovery policy. Real-time safe."""
        if not self.has_recovery:
            return False
        assert out.position is not None  # a Cartesian setpoint
        if memory is None:
            memory = self._mem
            _memory_from_wrench(state.wrench, state.ee_pos, memory)
        recovery_kernel(state.ee_pos, state.ee_vel, memory, out.position, out.stiffness,
                        *self.blocks, out.position, out.stiffness)
        return True

    def recovery_batch(self, state_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Learned recovery of a batch of state features ``(n, N_STATE_FEATURES)``: the
        setpoint offset ``(n, n_axes)`` [m] and stiffness ``(n, n_axes)`` [N/m] (numpy)."""
        w, r = self.weights, self.recovery
        x = (np.asarray(state_features, dtype=np.float64) - w.mean[:N_STATE_FEATURES]) \
            * w.inv_std[:N_STATE_FEATURES]
        h = np.maximum(x @ r.w1.T + r.b1, 0.0)
        h = np.maximum(h @ r.w2.T + r.b2, 0.0)
        o = np.tanh(h @ r.w3.T + r.b3)
        na = len(self.recovery_axes)
        r_max, lo, hi = r.bounds
        return r_max * o[:, :na], np.exp(lo + 0.5 * (o[:, na:] + 1.0) * (hi - lo))


# -- files -----------------------------------------------------------------------------------------
def save_critic(directory: str | os.PathLike, model: RiskModel) -> Path:
    """Write ``critic.npz`` and ``critic.json`` of ``model`` into ``directory`` (atomically,
    weights first, so a reader never finds metadata that describes weights not yet written)."""
    d = Path(directory)
    arrays = dict(model.arrays)
    h1, h2 = arrays["w2"].shape[2], arrays["w2"].shape[1]
    n_axes = len(model.recovery_axes) if model.has_recovery else None
    rec_hidden = (arrays["rec_w1"].shape[0], arrays["rec_w2"].shape[0]) if n_axes else None
    shapes = _expected_shapes(h1, h2, n_axes, rec_hidden)
    meta = dict(model.meta)
    if n_axes:
        assert rec_hidden is not None  # set with n_axes
        meta["recovery"] = {**(meta.get("recovery") or {}), "hidden": list(rec_hidden),
                            "axes": [int(a) for a in model.recovery_axes]}
    meta.update({
        "kind": KIND, "version": FORMAT_VERSION, "feature_names": list(FEATURE_NAMES),
        "hidden": [h1, h2], "shapes": {k: list(v) for k, v in shapes.items()},
        "normalisation": {"mean": arrays["mean"], "std": arrays["std"]},
    })
    atomic_write(d / WEIGHTS_FILE,
                 lambda f: np.savez(f, **{k: arrays[k] for k in shapes}))  # type: ignore[arg-type]  # numpy's stub: **arrays might fill allow_pickle
    atomic_write_json(d / META_FILE, meta)
    return d


def _read_meta(path: Path) -> dict:
    if not path.is_file():
        raise CriticFileError(f"{path}: critic metadata not found (a critic directory holds "
                              f"{META_FILE} and {WEIGHTS_FILE}, written by 'robot-brain train-critic')")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CriticFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise CriticFileError(f"{path}: not a critic metadata file (expected \"kind\": \"{KIND}\")")
    if meta.get("version") != FORMAT_VERSION:
        raise CriticFileError(f"{path}: format version {meta.get('version')!r} is not supported "
                              f"(expected {FORMAT_VERSION})")
    if list(meta.get("feature_names", ())) != list(FEATURE_NAMES):
        raise CriticFileError(f"{path}: feature_names do not match this version's "
                              f"{len(FEATURE_NAMES)} features ({', '.join(FEATURE_NAMES[:3])}, ...)")
    for key, (lo, hi, rule) in _META_RANGES.items():
        _in_range(path, key, meta.get(key), lo, hi, rule)
    memory = meta.get("contact_memory")
    if memory is not None:
        if not isinstance(memory, dict):
            raise CriticFileError(f"{path}: 'contact_memory' must be a mapping, got {memory!r}")
        for key, (lo, hi, rule) in _MEMORY_RANGES.items():
            if key in memory:
                _in_range(path, f"contact_memory.{key}", memory[key], lo, hi, rule)
    hidden = meta.get("hidden")
    if (not isinstance(hidden, list) or len(hidden) != 2
            or not all(isinstance(h, int) and 0 < h <= _MAX_HIDDEN for h in hidden)):
        raise CriticFileError(f"{path}: 'hidden' must be two layer sizes in [1, {_MAX_HIDDEN}], "
                              f"got {hidden!r}")
    return meta


# Ranges of the metadata (lower, upper, which ends are open): a critic file is user input too.
_META_RANGES = {"eps_safe": (0.0, 1.0, "()"), "gamma_risk": (0.0, 1.0, "[)"),
                "critic_dt": (0.0, 1.0, "(]"), "force_limit": (0.0, 1000.0, "(]")}
_MEMORY_RANGES = {"dt": (0.0, 0.1, "(]"), "tau": (0.0, 10.0, "(]")}
# The learned recovery's output range: r_max [m] and stiffness [N/m] within what the envelope
# allows anyway (it caps them again in the loop).
_RECOVERY_RANGES = {"r_max": (0.0, 0.05, "(]"), "k_min": (0.0, K_MAX, "(]"),
                    "k_max": (0.0, K_MAX, "(]")}
_MAX_HIDDEN = 4096
_MIN_STD = 1e-6  # a smaller input scale turns feature noise into certainty (the critic fires forever)


def _in_range(path: Path, key: str, value: object, lo: float, hi: float, rule: str) -> float:
    """``value`` as a float inside the range, or a one-line :class:`CriticFileError`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > lo if rule[0] == "(" else v >= lo) and (v < hi if rule[1] == ")" else v <= hi)
    if not ok:
        raise CriticFileError(f"{path}: {key!r} must be a number in {rule[0]}{lo:g}, {hi:g}{rule[1]}, "
                              f"got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _recovery_meta(meta: dict, path: Path) -> tuple[int | None, tuple[int, int] | None]:
    """``(n_axes, hidden)`` of the recovery policy described in ``meta`` (``None``s: none)."""
    rec = meta.get("recovery") or None
    if rec is None:
        return None, None
    axes, rh = (rec.get("axes"), rec.get("hidden")) if isinstance(rec, dict) else (None, None)
    if (not isinstance(axes, list) or not axes or any(a not in (0, 1, 2) for a in axes)
            or len(set(axes)) != len(axes) or not isinstance(rh, list) or len(rh) != 2
            or not all(isinstance(h, int) and 0 < h <= _MAX_HIDDEN for h in rh)):
        raise CriticFileError(f"{path}: 'recovery' must hold 'axes' (distinct, from [0, 1, 2]) and "
                              f"'hidden' (two layer sizes), got {rec!r}")
    assert isinstance(rec, dict)
    for key, (lo, hi, rule) in _RECOVERY_RANGES.items():
        if key in rec:
            _in_range(path, f"recovery.{key}", rec[key], lo, hi, rule)
    if rec.get("k_min", 100.0) > rec.get("k_max", 2000.0):
        raise CriticFileError(f"{path}: recovery k_min {rec.get('k_min')} exceeds k_max {rec.get('k_max')}")
    return len(axes), (rh[0], rh[1])


def _check_reflex_settings(meta: Mapping[str, Any], path: Path) -> None:
    """The settings ``critic.json`` gives the critic's reflex: the recoveries on offer and the
    distance from a wall (``wall_retreat``), each optional."""
    if "recoveries" in meta:
        check_recoveries(meta["recoveries"], f"{path}: 'recoveries'")
    if meta.get("wall_retreat") is not None:
        try:
            RetreatConfig(wall_retreat=meta["wall_retreat"])
        except (TypeError, ValueError) as e:
            raise CriticFileError(f"{path}: 'wall_retreat': {e}") from None


def load_critic(directory: str | os.PathLike) -> RiskModel:
    """Load a critic directory (``critic.json`` + ``critic.npz``) without unpickling anything.

    :raises CriticFileError: missing file, corrupted archive, object (pickle) arrays, wrong or
        missing array shapes, non-finite weights; the message names the file and the expected
        shape.
    """
    d = Path(directory)
    if not d.is_dir():
        raise CriticFileError(f"{d}: not a critic directory (expected a folder holding "
                              f"{META_FILE} and {WEIGHTS_FILE})")
    meta = _read_meta(d / META_FILE)
    _check_reflex_settings(meta, d / META_FILE)
    h1, h2 = meta["hidden"]
    n_axes, rec_hidden = _recovery_meta(meta, d / META_FILE)
    shapes = _expected_shapes(h1, h2, n_axes, rec_hidden)
    path = d / WEIGHTS_FILE
    if not path.is_file():
        raise CriticFileError(f"{path}: critic weights not found")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for name, shape in shapes.items():
                if name not in npz.files:
                    raise CriticFileError(f"{path}: array {name!r} is missing (expected shape "
                                          f"{shape})")
                try:
                    arr = npz[name]
                except ValueError as exc:  # object arrays need pickle: refused
                    raise CriticFileError(f"{path}: array {name!r} cannot be loaded without "
                                          f"unpickling ({exc}); refused") from None
                if arr.shape != shape or arr.dtype.kind != "f":
                    raise CriticFileError(f"{path}: array {name!r} has shape {arr.shape} "
                                          f"dtype {arr.dtype}, expected shape {shape} float")
                if not np.isfinite(arr).all():
                    raise CriticFileError(f"{path}: array {name!r} holds NaN or inf values")
                arrays[name] = arr
    except CriticFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CriticFileError(f"{path}: not a valid .npz archive ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if (arrays["std"] < _MIN_STD).any():
        raise CriticFileError(f"{path}: array 'std' must be at least {_MIN_STD:g} everywhere (a smaller "
                              f"input scale makes the critic's output meaningless)")
    return RiskModel(arrays, meta)
