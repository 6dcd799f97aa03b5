"""A Hebbian hetero-associative memory over harmonic keys: store, recall, anti-Hebbian delete.

Why Hebbian: one outer-product update stores an association in constant time with no training
loop, and the same update with the opposite sign deletes it, which is what a search that must
change its mind within an episode needs. The memory is a complex matrix ``M`` (values x key
size):

- store ``M += eta * v k^H / |k|^2``: recalling ``k`` afterwards returns ``v`` plus crosstalk
  from the other stored keys, weighted by their similarity to ``k`` (small for distant keys,
  ``~1/sqrt(N)``); near keys share their values, which is how a memory over a smooth kernel
  generalises;
- recall ``v(k) = Re(M k)``;
- delete (anti-Hebbian) subtracts the outer product of what the memory currently recalls at
  ``k``, which removes the association (and the crosstalk other keys leave at ``k``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["HebbianMemory"]


class HebbianMemory:
    """Key -> value store by outer-product (Hebbian) updates.

    :param key_size: number of phasors per key (``HarmonicCode.size``).
    :param value_size: length of the stored value vectors.
    """

    def __init__(self, key_size: int, value_size: int) -> None:
        for label, n in (("key_size", key_size), ("value_size", value_size)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{label} must be a positive integer, got {n!r}")
        self.matrix = np.zeros((value_size, key_size), dtype=np.complex128)
        self.updates = 0  # stores and deletes so far (for stats)

    def _key(self, key: np.ndarray) -> np.ndarray:
        k = np.asarray(key, dtype=np.complex128)
        if k.shape != (self.matrix.shape[1],):
            raise ValueError(f"key must have shape ({self.matrix.shape[1]},), got {k.shape}")
        return k

    def store(self, key: np.ndarray, value: np.ndarray | float, eta: float = 1.0) -> None:
        """Hebbian update: afterwards ``recall(key)`` has grown by exactly ``eta * value``."""
        k = self._key(key)
        v = np.broadcast_to(np.asarray(value, dtype=np.float64), (self.matrix.shape[0],))
        self.matrix += eta * np.outer(v, np.conj(k)) / np.vdot(k, k).real
        self.updates += 1

    def recall(self, key: np.ndarray) -> np.ndarray:
        """The value associated with ``key`` (a key between stored ones gets a kernel-weighted
        blend of their values)."""
        return np.real(self.matrix @ self._key(key))

    def delete(self, key: np.ndarray, eta: float = 1.0) -> None:
        """Anti-Hebbian update: subtract ``eta`` of what the memory recalls at ``key``, so with
        ``eta = 1`` the key then recalls zero."""
        self.store(key, -self.recall(key), eta=eta)

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes)
