"""Compiled inner loops of the controllers (numba, cached on disk).

Why compiled: the fast loop runs at 1 kHz and its budget is a few times one ``mj_step`` (about
7 us for the arm). The impedance law is ~30 small-matrix operations; as numpy calls each one
costs ~1 us of interpreter overhead, compiled together they cost well under 1 us. The functions
are plain numpy code: set ``NUMBA_DISABLE_JIT=1`` to step through them in a debugger.

Every function writes into a caller-owned ``out`` array (real-time safe: no allocation).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

_REG = 1e-6  # regularisation of J M^-1 J^T near singularities (units of 1/kg)


@njit(cache=True, fastmath=False)
def _quat_from_mat(r: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Unit quaternion (w, x, y, z) of a flattened row-major 3x3 rotation matrix."""
    tr = r[0] + r[4] + r[8]
    if tr > 0.0:
        s = math.sqrt(tr + 1.0) * 2.0
        out[0] = 0.25 * s
        out[1] = (r[7] - r[5]) / s
        out[2] = (r[2] - r[6]) / s
        out[3] = (r[3] - r[1]) / s
    elif r[0] > r[4] and r[0] > r[8]:
        s = math.sqrt(1.0 + r[0] - r[4] - r[8]) * 2.0
        out[0] = (r[7] - r[5]) / s
        out[1] = 0.25 * s
        out[2] = (r[1] + r[3]) / s
        out[3] = (r[2] + r[6]) / s
    elif r[4] > r[8]:
        s = math.sqrt(1.0 + r[4] - r[0] - r[8]) * 2.0
        out[0] = (r[2] - r[6]) / s
        out[1] = (r[1] + r[3]) / s
        out[2] = 0.25 * s
        out[3] = (r[5] + r[7]) / s
    else:
        s = math.sqrt(1.0 + r[8] - r[0] - r[4]) * 2.0
        out[0] = (r[3] - r[1]) / s
        out[1] = (r[2] + r[6]) / s
        out[2] = (r[5] + r[7]) / s
        out[3] = 0.25 * s


@njit(cache=True)
def quat_error(quat_d: np.ndarray, q: np.ndarray) -> tuple[float, float, float, float]:  # pragma: no cover
    """``q_d * conj(q)`` (w, x, y, z), the shorter way round (``w >= 0``): the rotation taking
    orientation ``q`` to ``q_d``, in the world frame."""
    w1, x1, y1, z1 = quat_d[0], quat_d[1], quat_d[2], quat_d[3]
    w2, x2, y2, z2 = q[0], -q[1], -q[2], -q[3]
    w = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
    x = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
    y = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
    z = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
    if w < 0.0:
        return -w, -x, -y, -z
    return w, x, y, z


@njit(cache=True)
def orientation_error(quat_d: np.ndarray, r: np.ndarray,
                      out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Rotation vector (axis * angle, world frame) taking the current orientation ``r`` (flattened
    rotation matrix) to ``quat_d``: the log of ``q_d * q^-1``, shortest way round."""
    q = np.empty(4)
    _quat_from_mat(r, q)
    w, x, y, z = quat_error(quat_d, q)
    nv = math.sqrt(x * x + y * y + z * z)
    if nv < 1e-12:
        out[0] = out[1] = out[2] = 0.0
        return
    angle = 2.0 * math.atan2(nv, w)
    out[0] = angle * x / nv
    out[1] = angle * y / nv
    out[2] = angle * z / nv


@njit(cache=True)
def _spd_inverse(a: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Inverse of a small symmetric positive-definite matrix by Cholesky (no LAPACK needed)."""
    n = a.shape[0]
    low = np.zeros((n, n))
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= low[j, k] * low[j, k]
        low[j, j] = math.sqrt(max(s, 1e-12))
        for i in range(j + 1, n):
            s = a[i, j]
            for k in range(j):
                s -= low[i, k] * low[j, k]
            low[i, j] = s / low[j, j]
    # inv(L) by forward substitution, then inv(A) = inv(L)^T inv(L).
    li = np.zeros((n, n))
    for i in range(n):
        li[i, i] = 1.0 / low[i, i]
        for j in range(i):
            s = 0.0
            for k in range(j, i):
                s -= low[i, k] * li[k, j]
            li[i, j] = s / low[i, i]
    for i in range(n):
        for j in range(i + 1):
            s = 0.0
            for k in range(i, n):
                s += li[k, i] * li[k, j]
            out[i, j] = s
            out[j, i] = s


class Posture(NamedTuple):
    """The null-space posture spring's parameter block: preferred posture [rad], stiffness
    [N m/rad] and damping [N m s/rad] per joint."""

    q_null: np.ndarray
    k_null: np.ndarray
    d_null: np.ndarray


@njit(cache=True)
def cartesian_impedance(jac: np.ndarray, jac_minv: np.ndarray, bias: np.ndarray,  # noqa: C901
                        q: np.ndarray, dq: np.ndarray, pos: np.ndarray, rot: np.ndarray,
                        pos_d: np.ndarray, quat_d: np.ndarray, stiffness: np.ndarray,
                        zeta: np.ndarray, wrench_ff: np.ndarray, posture: tuple[np.ndarray, ...],
                        out: np.ndarray, damping_out: np.ndarray) -> None:  # pragma: no cover
    """Cartesian variable impedance with gravity/Coriolis compensation and null-space posture.

    ``tau = J^T (K e - D J dq + w_ff) + N^T tau_0 + bias``, with ``e`` the pose error (position,
    rotation vector), per-axis damping ``D_i = 2 zeta_i sqrt(K_i Lambda_ii)`` from the task-space
    inertia ``Lambda = (J M^-1 J^T)^-1``, posture torque ``tau_0 = k_null (q_null - q) - d_null dq``
    and the dynamically consistent null-space projector ``N^T = I - J^T Lambda J M^-1``.
    ``posture`` is a :class:`Posture` as a plain tuple (numba unboxes a plain tuple about twice as
    fast as a namedtuple). Writes joint torques into ``out`` and the damping used into
    ``damping_out``.
    """
    n = q.shape[0]  # the arm's DoFs: the first n columns of the (6, nv) Jacobians
    e = np.empty(6)
    for i in range(3):
        e[i] = pos_d[i] - pos[i]
    rot_err = np.empty(3)
    orientation_error(quat_d, rot, rot_err)
    e[3], e[4], e[5] = rot_err[0], rot_err[1], rot_err[2]
    # Task-space inertia Lambda = (J M^-1 J^T)^-1 (explicit loops: tiny matrices, no BLAS call).
    lam_inv = np.empty((6, 6))
    for i in range(6):
        for j in range(6):
            s = 0.0
            for k in range(n):
                s += jac_minv[i, k] * jac[j, k]
            lam_inv[i, j] = s
        lam_inv[i, i] += _REG
    lam = np.empty((6, 6))
    _spd_inverse(lam_inv, lam)
    force = np.empty(6)
    for i in range(6):
        twist = 0.0
        for k in range(n):
            twist += jac[i, k] * dq[k]
        d = 2.0 * zeta[i] * math.sqrt(max(stiffness[i], 0.0) * max(lam[i, i], 0.0))
        damping_out[i] = d
        force[i] = stiffness[i] * e[i] - d * twist + wrench_ff[i]
    # Null-space posture tau_0, projected by N^T = I - J^T Lambda J M^-1 so that it does not
    # disturb the end-effector.
    tau0 = np.empty(n)
    q_null, k_null, d_null = posture
    for i in range(n):
        tau0[i] = k_null[i] * (q_null[i] - q[i]) - d_null[i] * dq[i]
    a = np.zeros(6)  # J M^-1 tau0
    for i in range(6):
        for k in range(n):
            a[i] += jac_minv[i, k] * tau0[k]
    for i in range(6):  # force - Lambda a : both go through J^T
        s = 0.0
        for j in range(6):
            s += lam[i, j] * a[j]
        force[i] -= s
    for k in range(n):
        s = 0.0
        for i in range(6):
            s += jac[i, k] * force[i]
        out[k] = s + tau0[k] + bias[k]


@njit(cache=True)
def joint_impedance(mass_diag: np.ndarray, bias: np.ndarray, q: np.ndarray, dq: np.ndarray,
                    q_d: np.ndarray, stiffness: np.ndarray, zeta: np.ndarray,
                    out: np.ndarray) -> None:  # pragma: no cover
    """``tau = K (q_d - q) - D dq + bias`` with ``D_i = 2 zeta_i sqrt(K_i M_ii)``."""
    for i in range(q.shape[0]):
        d = 2.0 * zeta[i] * math.sqrt(max(stiffness[i], 0.0) * mass_diag[i])
        out[i] = stiffness[i] * (q_d[i] - q[i]) - d * dq[i] + bias[i]


@njit(cache=True)
def limit_torque(tau: np.ndarray, prev: np.ndarray, tau_max: np.ndarray, max_delta: np.ndarray,
                 out: np.ndarray) -> int:  # pragma: no cover - compiled
    """Rate limit (|tau - prev| <= max_delta) then saturation (|tau| <= tau_max), into ``out``.

    Non-finite entries are replaced by ``prev`` (clipped): NaN never leaves this function.
    ``prev`` is updated to ``out``.
    Returns a bit mask: 1 = saturated, 2 = rate limited, 4 = non-finite input replaced.
    """
    flags = 0
    for i in range(tau.shape[0]):
        t = tau[i]
        if not math.isfinite(t):
            t = prev[i]
            flags |= 4
        lo = prev[i] - max_delta[i]
        hi = prev[i] + max_delta[i]
        if t < lo:
            t = lo
            flags |= 2
        elif t > hi:
            t = hi
            flags |= 2
        if t > tau_max[i]:
            t = tau_max[i]
            flags |= 1
        elif t < -tau_max[i]:
            t = -tau_max[i]
            flags |= 1
        out[i] = t
        prev[i] = t
    return flags


@njit(cache=True)
def all_finite(a: np.ndarray, b: np.ndarray, c: np.ndarray,
               d: np.ndarray) -> bool:  # pragma: no cover - compiled
    """True when every entry of the four 1-D arrays is finite."""
    for arr in (a, b, c, d):
        for i in range(arr.shape[0]):
            if not math.isfinite(arr[i]):
                return False
    return True


@njit(cache=True)
def clip_finite(x: np.ndarray, bound: np.ndarray, out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """``out = clip(x, -bound, bound)``; returns False (and writes nothing) if ``x`` has NaN/inf."""
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return False
    for i in range(x.shape[0]):
        out[i] = min(max(x[i], -bound[i]), bound[i])
    return True


@njit(cache=True)
def clip_box(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:  # pragma: no cover - compiled
    """Clip ``p`` into ``[lo, hi]`` in place; return the largest distance it was outside (0 if in)."""
    worst = 0.0
    for i in range(p.shape[0]):
        if p[i] < lo[i]:
            worst = max(worst, lo[i] - p[i])
            p[i] = lo[i]
        elif p[i] > hi[i]:
            worst = max(worst, p[i] - hi[i])
            p[i] = hi[i]
    return worst


@njit(cache=True)
def first_outside(q: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> int:  # pragma: no cover - compiled
    """Index of the first entry of ``q`` outside ``[lo, hi]``, or -1."""
    for i in range(q.shape[0]):
        if q[i] < lo[i] or q[i] > hi[i]:
            return i
    return -1


@njit(cache=True)
def lerp(start: np.ndarray, delta: np.ndarray, s: float,
         out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out = start + s * delta`` (one call instead of two numpy ufuncs on the fast path)."""
    for i in range(out.shape[0]):
        out[i] = start[i] + s * delta[i]
