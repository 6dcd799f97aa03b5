"""Torque saturation and torque-rate limiting: the last stage before a torque leaves the brain."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import _kernels

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["NONFINITE", "RATE_LIMITED", "SATURATED", "TorqueLimiter"]

#: Bits of :attr:`TorqueLimiter.flags` (what the last call did).
SATURATED, RATE_LIMITED, NONFINITE = 1, 2, 4


class TorqueLimiter:
    """Clip commanded torques to ``|tau| <= tau_max`` and ``|dtau/dt| <= rate_max``.

    The rate limit follows Franka's 1000 N m/s on the commanded torque. Call :meth:`reset` with
    the torque already applied (e.g. gravity compensation at start-up) so the first command is
    not ramped from zero while the arm sags.

    :param tau_max: per-joint torque limit [N m].
    :param rate_max: torque-rate limit [N m/s], scalar or per joint.
    :param dt: control period [s].
    """

    def __init__(self, tau_max: ArrayLike, rate_max: ArrayLike, dt: float) -> None:
        self.tau_max = np.asarray(tau_max, dtype=np.float64).copy()
        if (self.tau_max <= 0).any():
            raise ValueError(f"tau_max must be positive, got {self.tau_max}")
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt}")
        n = self.tau_max.size
        self.max_delta = np.broadcast_to(np.asarray(rate_max, dtype=np.float64) * dt, (n,)).copy()
        self.prev = np.zeros(n)
        self.out = np.zeros(n)
        self.flags = 0  # bit mask of the last call: SATURATED | RATE_LIMITED | NONFINITE

    def reset(self, tau0: ArrayLike | None = None) -> None:
        """Start the rate limiter from ``tau0`` (default zeros)."""
        self.prev[:] = 0.0 if tau0 is None else np.clip(tau0, -self.tau_max, self.tau_max)

    def __call__(self, tau: np.ndarray) -> np.ndarray:
        """Limited torques (a view of an internal buffer). Real-time safe."""
        self.flags = _kernels.limit_torque(tau, self.prev, self.tau_max, self.max_delta, self.out)
        return self.out
