"""Prediction: short-horizon forward models of the arm and of the human (the "world belief").

Shared control needs to look a few slow ticks ahead: where will the tool be if the robot keeps
this impedance command, and what will the human ask for next? Two small models answer:

- :class:`ArmForwardModel`: the tool under a Cartesian impedance command. The controller
  (:class:`robot_brain.controllers.CartesianImpedance`) compensates gravity and Coriolis forces
  and damps each axis with ``D_i = 2 zeta_i sqrt(K_i Lambda_ii)``, so along each translational
  axis the closed loop is close to the linear spring-damper ``m x'' = K (r - x) - D x'`` with
  ``m = Lambda_ii`` (the arm's effective mass there). The model solves that ODE exactly (closed
  form of the 2 x 2 matrix exponential), vectorised over axes and sample times: no integration
  error, no step-size choice, a few microseconds per call. What it leaves out: the off-diagonal
  task-space inertia, joint friction and the torque-rate limit; ``tests/test_coadapt_prediction``
  measures what that costs against the MuJoCo ``reach`` task.
- :class:`HumanInputPredictor`: the human's next input from the goal belief: the human moves
  toward the goal they want at the speed they usually use, so the expected input is that speed
  times the belief-weighted mean of the unit vectors toward the goals.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from robot_brain.controllers import RobotModel

__all__ = ["ArmForwardModel", "HumanInputPredictor"]

# |z| below this uses the Taylor series of cosh(sqrt z) and sinh(sqrt z)/sqrt z (z = q^2 t^2):
# near critical damping the closed forms divide by ~0; four terms are exact to ~1e-20 here.
_SERIES_Z = 1e-4


def _vec3(value: ArrayLike, name: str, *, scalar_ok: bool = False, low: float | None = None,
          strict: bool = False) -> np.ndarray:
    """``value`` as a finite float (3,) array (a scalar broadcast when ``scalar_ok``), else one
    ``ValueError`` line naming ``name``."""
    a = np.asarray(value, dtype=np.float64)
    if scalar_ok and a.ndim == 0:
        a = np.full(3, float(a))
    if a.shape != (3,):
        raise ValueError(f"{name} must have shape (3,){' or be a number' if scalar_ok else ''}, "
                         f"got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got {a.tolist()}")
    if low is not None and (bool((a <= low).any()) if strict else bool((a < low).any())):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low:g}, got {a.tolist()}")
    return a


def _seconds(value: float, name: str, *, positive: bool) -> float:
    """``value`` as a finite float > 0 (``positive``) or >= 0, else one ``ValueError`` line."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise ValueError(f"{name} must be a finite number of seconds {'>' if positive else '>='} 0, "
                         f"got {value!r}")
    return float(value)


def _transition(omega: np.ndarray, zeta: np.ndarray, t: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entries of ``expm(A t)`` for ``A = [[0, 1], [-omega^2, -2 zeta omega]]``, broadcast over
    ``omega, zeta`` (3,) and ``t`` (n, 1): ``(phi11, phi12, phi21, phi22)``, each (n, 3).

    For a 2 x 2 matrix with eigenvalues ``s +- q``: ``expm(A t) = e^(s t) [(cosh(qt) - s t
    sinh(qt)/(qt)) I + t sinh(qt)/(qt) A]``. With ``z = q^2 t^2`` (negative when underdamped)
    both ``cosh(sqrt z)`` and ``sinh(sqrt z)/sqrt z`` are entire functions of ``z``, so one
    formula covers under-, critically and overdamped axes; the overdamped branch is written with
    ``exp(s t +- q t)`` so long horizons do not overflow ``cosh``.
    """
    s = -zeta * omega  # (3,)
    st = s * t  # (n, 3)
    z = omega * omega * (zeta * zeta - 1.0) * t * t
    e_c = np.empty_like(z)  # e^(st) cosh(sqrt z)
    e_s = np.empty_like(z)  # e^(st) sinh(sqrt z) / sqrt z
    small = np.abs(z) < _SERIES_Z
    over = (z > 0) & ~small
    under = (z < 0) & ~small
    zs, es = z[small], np.exp(st[small])
    e_c[small] = es * (1 + zs / 2 + zs * zs / 24 + zs * zs * zs / 720)
    e_s[small] = es * (1 + zs / 6 + zs * zs / 120 + zs * zs * zs / 5040)
    r = np.sqrt(z[over])
    hi, lo = np.exp(st[over] + r), np.exp(st[over] - r)
    e_c[over] = 0.5 * (hi + lo)
    e_s[over] = 0.5 * (hi - lo) / r
    r = np.sqrt(-z[under])
    eu = np.exp(st[under])
    e_c[under] = eu * np.cos(r)
    e_s[under] = eu * np.sin(r) / r
    ts = t * e_s  # e^(st) sinh(qt)/q
    return e_c - st * e_s, ts, -omega * omega * ts, e_c + st * e_s


class ArmForwardModel:
    """The tool under a Cartesian impedance command: per axis ``m x'' = K (r - x) - D x'`` with
    ``D = 2 zeta sqrt(K m)``, solved exactly.

    :param mass: effective mass of the tool along x, y, z [kg] (3,); the diagonal of the
        translational block of the task-space inertia ``Lambda`` (see :meth:`from_robot`).
    """

    def __init__(self, mass: ArrayLike) -> None:
        self.mass = _vec3(mass, "mass", low=0.0, strict=True)

    @classmethod
    def from_robot(cls, robot: RobotModel) -> ArmForwardModel:
        """The model at the arm's current posture: ``Lambda_ii`` of the translational axes, the
        mass the controller's damping is computed from. ``robot`` must already hold the current
        state (live in simulation; after ``robot.update(state)`` on hardware). ``Lambda``
        changes with the posture, so rebuild the model every slow tick (one 6 x 6 inverse)."""
        return cls(np.diag(robot.task_inertia())[:3].copy())

    def predict(self, x: ArrayLike, v: ArrayLike, target: ArrayLike, stiffness: ArrayLike,
                zeta: ArrayLike, dt: float, steps: int, *, setpoint: ArrayLike | None = None,
                ramp: float = 0.0) -> np.ndarray:
        """Tool positions [m] at ``t = dt, 2 dt, ..., steps dt``, shape ``(steps, 3)``.

        :param x: tool position now [m] (3,). :param v: tool velocity now [m/s] (3,).
        :param target: the command's target [m] (3,), held from ``ramp`` on.
        :param stiffness: translational stiffness [N/m], a number or (3,), >= 0 (0: the axis
            floats and keeps its velocity).
        :param zeta: damping ratio, a number or (3,), >= 0.
        :param dt: time between predicted samples [s], > 0 (e.g. one slow tick).
        :param steps: number of samples, >= 0.
        :param setpoint: where the impedance setpoint is now [m] (3,); default ``target`` (a
            step command). With ``ramp > 0`` the setpoint moves linearly from here to ``target``
            in ``ramp`` seconds, as :class:`robot_brain.controllers.SetpointInterpolator` ramps
            each new command over one slow tick (its 1 ms staircase leads that line by half a
            fast tick, well under the model's other errors).
        :param ramp: duration of that ramp [s], >= 0.
        :raises ValueError: one line naming a wrong shape or value.
        """
        return self.predict_state(x, v, target, stiffness, zeta, dt, steps, setpoint=setpoint,
                                  ramp=ramp)[0]

    def predict_state(self, x: ArrayLike, v: ArrayLike, target: ArrayLike, stiffness: ArrayLike,
                      zeta: ArrayLike, dt: float, steps: int, *, setpoint: ArrayLike | None = None,
                      ramp: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Positions [m] and velocities [m/s], each ``(steps, 3)``; arguments as :meth:`predict`."""
        x0 = _vec3(x, "x")
        v0 = _vec3(v, "v")
        r1 = _vec3(target, "target")
        k = _vec3(stiffness, "stiffness", scalar_ok=True, low=0.0)
        z = _vec3(zeta, "zeta", scalar_ok=True, low=0.0)
        r0 = r1 if setpoint is None else _vec3(setpoint, "setpoint")
        dt = _seconds(dt, "dt", positive=True)
        ramp = _seconds(ramp, "ramp", positive=False)
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        omega = np.sqrt(k / self.mass)
        t = dt * np.arange(1, int(steps) + 1, dtype=np.float64)[:, None]  # (n, 1)
        if ramp == 0.0 or np.array_equal(r0, r1):
            return self._hold(x0, v0, r1, omega, z, t)
        # During the ramp r(t) = r0 + rate t. With e = x - r + lag, lag = D rate / K, the ODE
        # becomes the unforced m e'' = -K e - D e'; axes without a spring ignore the setpoint.
        spring = k > 0
        rate = np.where(spring, (r1 - r0) / ramp, 0.0)
        lag = np.zeros(3)
        lag[spring] = 2.0 * z[spring] * rate[spring] / omega[spring]  # D rate / K
        during = t[:, 0] <= ramp
        pos, vel = np.empty((t.shape[0], 3)), np.empty((t.shape[0], 3))
        td = np.concatenate([t[during], [[ramp]]])  # the samples in the ramp, and its end
        p11, p12, p21, p22 = _transition(omega, z, td)
        e0, de0 = x0 - r0 + lag, v0 - rate
        e, de = p11 * e0 + p12 * de0, p21 * e0 + p22 * de0
        ramp_pos, ramp_vel = r0 + rate * td - lag + e, rate + de  # (no spring: x0 + v0 t)
        pos[during], vel[during] = ramp_pos[:-1], ramp_vel[:-1]
        if not during.all():
            after = self._hold(ramp_pos[-1], ramp_vel[-1], r1, omega, z, t[~during] - ramp)
            pos[~during], vel[~during] = after
        return pos, vel

    @staticmethod
    def _hold(x0: np.ndarray, v0: np.ndarray, r: np.ndarray, omega: np.ndarray, zeta: np.ndarray,
              t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities at times ``t`` (n, 1) under the constant target ``r``."""
        p11, p12, p21, p22 = _transition(omega, zeta, t)
        e0 = x0 - r
        return r + p11 * e0 + p12 * v0, p21 * e0 + p22 * v0


class HumanInputPredictor:
    """The human's next input, predicted from the goal belief.

    A human steering toward goal ``g`` pushes roughly along ``unit(g - tool)`` at the input
    magnitude they habitually use; under the belief ``b`` the expected input is
    ``speed * sum_g b(g) unit(g - tool)``. ``speed`` is an exponential moving average of the
    observed input magnitudes (in the input's units: a fraction of the task's top speed, see
    :mod:`robot_brain.coadapt.sensing`); ticks without input (``None``) leave it unchanged, so a
    pause is not mistaken for a slow user.

    :param smoothing: weight of each new observation in the average, in (0, 1]; 0.2 forgets a
        habit over about five slow ticks (a quarter second at 20 Hz).
    """

    def __init__(self, smoothing: float = 0.2) -> None:
        if not (isinstance(smoothing, (int, float)) and 0.0 < smoothing <= 1.0):
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing!r}")
        self.smoothing = float(smoothing)
        self._speed: float | None = None

    @property
    def speed(self) -> float:
        """The averaged input magnitude (0 before the first observation)."""
        return 0.0 if self._speed is None else self._speed

    def reset(self) -> None:
        """Forget the average (a new user or a new session)."""
        self._speed = None

    def observe(self, u: np.ndarray | None) -> None:
        """Fold the human's input of this tick (3,) into the average; ``None`` (no input) is
        ignored. The first input sets the average outright instead of pulling it up from 0."""
        if u is None:
            return
        m = float(np.linalg.norm(_vec3(u, "u")))
        self._speed = m if self._speed is None else self._speed + self.smoothing * (m - self._speed)

    def predict(self, tool: ArrayLike, goals: ArrayLike, probs: ArrayLike) -> np.ndarray:
        """Expected input (3,): ``speed * sum_g probs[g] * unit(goals[g] - tool)``.

        :param tool: tool position [m] (3,). :param goals: candidate goals [m] (K, 3).
        :param probs: belief over the goals (K,), >= 0, normalised here; a goal the tool is
            already at contributes no direction.
        """
        p = _vec3(tool, "tool")
        g = np.asarray(goals, dtype=np.float64)
        if g.ndim != 2 or g.shape[1] != 3 or g.shape[0] < 1:
            raise ValueError(f"goals must have shape (K, 3) with K >= 1, got shape {g.shape}")
        b = np.asarray(probs, dtype=np.float64)
        if b.shape != (g.shape[0],):
            raise ValueError(f"probs must have shape ({g.shape[0]},) (one per goal), got {b.shape}")
        total = float(b.sum())
        if not (np.isfinite(g).all() and np.isfinite(b).all() and (b >= 0).all() and total > 0):
            raise ValueError(f"goals must be finite and probs finite, >= 0 and not all 0, got "
                             f"probs {b.tolist()}")
        d = g - p
        n = np.linalg.norm(d, axis=1)
        unit = np.zeros_like(d)
        away = n > 1e-9
        unit[away] = d[away] / n[away, None]
        return self.speed * (b / total) @ unit
