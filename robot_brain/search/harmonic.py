"""The harmonic place code: grid-cell-like random Fourier features of a position.

Why this code: a key ``k(x) = exp(i W x)`` (one complex unit phasor per frequency ``w_j``) turns
the geometry of space into algebra the memory can use directly:

- similarity is shift-invariant: ``Re <k(x), k(y)> / N = mean_j cos(w_j . (x - y))`` depends
  only on the displacement ``x - y`` (a kernel), so "near" means the same everywhere;
- keys are relative: ``k(x + d) = k(x) * k(d)`` (elementwise), so moving by ``d`` is a phase
  rotation (path integration) and no fixed origin is needed;
- crispness is adjustable: scaling phasor ``j`` by ``exp(-blur^2 |w_j|^2 / 2)`` (a Gaussian blur
  of the position by ``blur`` metres) damps the fine scales, so the kernel gets wider.

Frequencies come in grid modules as in the entorhinal cortex: each module has one period
(geometric series from ``min_period`` to ``max_period``) and one random orientation; in 2-D a
module holds three plane waves 60 degrees apart (a hexagonal grid), in N-D ``2 N`` random
directions of that period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_brain.params import param, validate

__all__ = ["HarmonicCode", "HarmonicConfig"]


@dataclass(frozen=True)
class HarmonicConfig:
    """Options of :class:`HarmonicCode`.

    :param dim: dimension of the positions encoded.
    :param modules: number of grid modules (scales); more scales = a sharper, less ambiguous kernel.
    :param orientations: modules per scale, each at its own random orientation.
    :param min_period: finest grid period [m]; sets the resolution of the code.
    :param max_period: coarsest grid period [m]; beyond it keys start to repeat (aliasing).
    :param blur: crispness [m]: 0 is the crispest kernel; larger values widen it.
    :param seed: seed of the random orientations (the same seed gives the same code).
    """

    dim: int = param(2, "dimension of the encoded positions", kind="int", low=1, high=16)
    modules: int = param(6, "grid scales between min_period and max_period", kind="int", low=1, high=64)
    orientations: int = param(3, "random orientations per scale", kind="int", low=1, high=64)
    min_period: float = param(0.5, "finest grid period (resolution)", unit="m", low=0.0, low_open=True)
    max_period: float = param(20.0, "coarsest grid period (keys alias beyond it)", unit="m", low=0.0,
                              low_open=True)
    blur: float = param(0.0, "crispness: Gaussian blur of positions (0 = crispest)", unit="m", low=0.0)
    seed: int = param(0, "seed of the random orientations", kind="int", low=0)

    def __post_init__(self) -> None:
        validate(self)
        if self.max_period < self.min_period:
            raise ValueError(f"HarmonicConfig.max_period = {self.max_period!r} must be >= min_period "
                             f"= {self.min_period!r}")


def _directions(dim: int, rng: np.random.Generator) -> np.ndarray:
    """Unit wave directions of one module: a random hexagonal triplet in 2-D, else 2 dim random."""
    if dim == 1:
        return np.array([[1.0]])
    if dim == 2:
        theta = rng.uniform(0.0, 2.0 * math.pi) + np.array([0.0, 2.0, 4.0]) * math.pi / 3.0
        return np.stack([np.cos(theta), np.sin(theta)], axis=1)
    v = rng.normal(size=(2 * dim, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class HarmonicCode:
    """Keys of positions (complex phasors) and their similarity (module docstring).

    :param config: the options (default ``HarmonicConfig()``).
    """

    def __init__(self, config: HarmonicConfig | None = None) -> None:
        self.config = cfg = config if config is not None else HarmonicConfig()
        rng = np.random.default_rng(cfg.seed)
        periods = np.geomspace(cfg.min_period, cfg.max_period, cfg.modules)
        rows: list[np.ndarray] = []
        for period in periods:
            # In 2-D a hexagonal grid of spacing `period` has wave number 4 pi / (sqrt 3 period).
            k = 4.0 * math.pi / (math.sqrt(3.0) * period) if cfg.dim == 2 else 2.0 * math.pi / period
            rows.extend(k * _directions(cfg.dim, rng) for _ in range(cfg.orientations))
        self.frequencies: np.ndarray = np.concatenate(rows)  # (N, dim) [rad/m]
        self.amplitudes: np.ndarray = np.exp(-0.5 * cfg.blur ** 2 * (self.frequencies ** 2).sum(axis=1))
        self._norm = float((self.amplitudes ** 2).sum())

    @property
    def size(self) -> int:
        """``N``, the number of phasors in a key."""
        return int(self.frequencies.shape[0])

    @property
    def dim(self) -> int:
        return self.config.dim

    def with_blur(self, blur: float) -> HarmonicCode:
        """The same frequencies at another crispness (keys of both codes are comparable)."""
        from dataclasses import replace

        return HarmonicCode(replace(self.config, blur=blur))

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Key(s) of position(s) ``x`` (``(..., dim)`` -> ``(..., N)`` complex, unit modulus at
        ``blur = 0``)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"positions must have a last axis of {self.dim}, got shape {x.shape}")
        return self.amplitudes * np.exp(1j * (x @ self.frequencies.T))

    def shift(self, key: np.ndarray, d: np.ndarray) -> np.ndarray:
        """The key of ``x + d`` from the key of ``x``: a phase rotation by ``d`` (no origin)."""
        return np.asarray(key) * np.exp(1j * (np.asarray(d, dtype=np.float64) @ self.frequencies.T))

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Normalised real inner product ``Re <a, b> / <k(0), k(0)>`` (1 for identical keys,
        broadcast over leading axes)."""
        return np.real((np.asarray(a) * np.conj(np.asarray(b))).sum(axis=-1)) / self._norm

    def kernel(self, d: np.ndarray) -> np.ndarray:
        """The similarity of two keys ``d`` apart, computed directly (``(..., dim)`` -> ``(...)``)."""
        d = np.asarray(d, dtype=np.float64)
        return (self.amplitudes ** 2 * np.cos(d @ self.frequencies.T)).sum(axis=-1) / self._norm
