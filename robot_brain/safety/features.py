"""Input features of the safety critic: the measured state and the *intermediate* setpoint.

The critic ``Q_risk(s, a_hat)`` looks at one fast tick: the state the backend just measured (plus
a short memory of contacts, below) and the setpoint the interpolator (or a reflex) proposes for
this tick. The features are a fixed, physically scaled vector (``N_FEATURES`` numbers, layout
below); the critic file adds a per-feature standardisation (mean/std of its training data), so the
scales here only keep the numbers O(1) and meaningful across tasks.

=====  ===================  ==========================================================  =====
index  name                 definition                                                  unit
=====  ===================  ==========================================================  =====
0-2    ``pos_x/y/z``         tool-tip position, world frame                              m
3-5    ``vel_x/y/z``         tool-tip linear velocity                                    m/s
6-8    ``force_x/y/z``       held contact force ``f`` (peak hold, below) / ``F_REF``      1
9      ``force_mag``         ``|f|`` / ``F_REF``                                         1
10-12  ``wall_x/y/z``        ``r * n_w``: remembered surface normal, weighted by recency  1
13     ``wall_gap``          ``r * (pos - p_w) . n_w / E_REF``: distance from it          1
14-16  ``err_x/y/z``         (setpoint position - tool position) / ``E_REF``             1
17-19  ``spring_x/y/z``      ``K_i * err_i / F_REF``: the force the spring pulls with     1
20-22  ``logk_x/y/z``        ``(ln K_i - ln K_LO) / (ln K_HI - ln K_LO)``                1
23     ``press``             ``spring . n / F_REF``-scaled, ``n = f / (|f| + F_SOFT)``    1
24     ``approach``          ``vel . n``                                                 m/s
25     ``wall_sp_gap``       ``r * (setpoint - p_w) . n_w / E_REF``                       1
26     ``wall_approach``     ``r * vel . n_w``                                           m/s
=====  ===================  ==========================================================  =====

**Contact memory** (:class:`ContactMemory`, updated on every fast tick by the reflex and by the
data recorder):

- ``f`` is a peak hold of the measured contact force with exponential decay (``MEMORY_TAU``):
  a stiff contact delivers its force in one-tick impulses a few ticks apart, so the raw force of
  one tick is mostly zero while the tool presses; the held peak says "in contact, this hard, this
  way" on every tick, as a filtered F/T sensor would;
- ``p_w, n_w``: where the tool was and which way the force pointed (away from the obstacle) the
  last time a contact above ``CONTACT_FORCE`` was measured, and ``r = exp(-age / WALL_TAU)`` how
  recent that was: a remembered wall. ``wall_gap`` is how far the tool has backed away from it,
  ``wall_sp_gap < 0`` says the setpoint lies behind it (the tool will press when it gets there);
- the *face*: where the tool first touched the surface it touches now and that contact's
  normal. A contact whose normal turns more than about 45 degrees from it (``FACE_COS``), or
  one after ``FACE_GAP`` without contact, starts a new face. No feature reads it: it lets the
  recoveries take the friction tilt out of ``n_w`` once the tool has slid along the face
  (:mod:`robot_brain.safety.retreat`).

``n`` is a soft contact normal (it fades to zero without contact), so ``press < 0`` means the
setpoint pushes into the obstacle and ``approach < 0`` that the tool moves into it. Indices 0-13
depend on the state only (:data:`STATE_FEATURES`, the input of the recovery policy); 14-26 also
on the setpoint.

Real-time safe: :func:`critic_features` and :meth:`ContactMemory.update` write into caller-owned
arrays (compiled, no allocation). :func:`features_from_arrays` and :func:`setpoint_features` are
the vectorised numpy (and torch) versions used for datasets and training; tests check that all
agree.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

from robot_brain.controllers.impedance import K_MAX
from robot_brain.controllers.types import Command, RobotState

if TYPE_CHECKING:
    from types import ModuleType

    from numpy.typing import ArrayLike

__all__ = [
    "CONTACT_FORCE",
    "E_REF",
    "FACE_COS",
    "FACE_GAP",
    "FEATURE_NAMES",
    "F_REF",
    "F_SOFT",
    "K_HI",
    "K_LO",
    "MEMORY_TAU",
    "N_FEATURES",
    "N_STATE_FEATURES",
    "STATE_FEATURES",
    "WALL_TAU",
    "ContactMemory",
    "critic_features",
    "features_from_arrays",
    "setpoint_features",
]

F_REF = 15.0  # N: force scale (the tasks' default force limit)
F_SOFT = 1.0  # N: softening of the contact normal (no contact -> n ~ 0)
E_REF = 0.02  # m: setpoint-error scale (one slow step of the tasks' default max_step)
K_LO = 50.0  # N/m: low end of the stiffness scale
K_HI = K_MAX  # N/m: high end (the Cartesian controller's validated range)
MEMORY_TAU = 0.02  # s: decay time constant of the held contact force
WALL_TAU = 0.3  # s: how long a touched surface is remembered (time constant of its weight r)
CONTACT_FORCE = 1.0  # N: a measured force above this marks a touched surface
_LOGK_LO = math.log(K_LO)
_LOGK_SPAN = math.log(K_HI) - _LOGK_LO

FEATURE_NAMES: tuple[str, ...] = (
    "pos_x", "pos_y", "pos_z", "vel_x", "vel_y", "vel_z", "force_x", "force_y", "force_z",
    "force_mag", "wall_x", "wall_y", "wall_z", "wall_gap", "err_x", "err_y", "err_z", "spring_x",
    "spring_y", "spring_z", "logk_x", "logk_y", "logk_z", "press", "approach", "wall_sp_gap",
    "wall_approach",
)
N_FEATURES = len(FEATURE_NAMES)
N_STATE_FEATURES = 14
STATE_FEATURES = slice(0, N_STATE_FEATURES)
# held force (3), wall point (3), wall normal (3), recency r, age [s], face point (3), face normal (3)
MEMORY_SIZE = 17
FACE_COS = 0.7  # a contact normal within ~45 degrees of the face's first one is the same face
FACE_GAP = 1.0  # s: a contact after this long without one starts a new face


# -- contact memory ----------------------------------------------------------------------------------
@njit(cache=True)
def _memory_update(wrench: np.ndarray, pos: np.ndarray, mem: np.ndarray, decay: float,
                   dt: float) -> None:  # pragma: no cover - compiled
    """Advance the memory ``mem`` (layout: see ``MEMORY_SIZE``) by one tick."""
    fx, fy, fz = wrench[0], wrench[1], wrench[2]
    f2 = fx * fx + fy * fy + fz * fz
    m2 = mem[0] * mem[0] + mem[1] * mem[1] + mem[2] * mem[2]
    if f2 >= decay * decay * m2:
        mem[0], mem[1], mem[2] = fx, fy, fz
    else:
        mem[0] *= decay
        mem[1] *= decay
        mem[2] *= decay
    if f2 > CONTACT_FORCE * CONTACT_FORCE:
        fm = math.sqrt(f2)
        nx, ny, nz = fx / fm, fy / fm, fz / fm
        if mem[10] > FACE_GAP or mem[14] * nx + mem[15] * ny + mem[16] * nz < FACE_COS:
            mem[11], mem[12], mem[13] = pos[0], pos[1], pos[2]  # a new face
            mem[14], mem[15], mem[16] = nx, ny, nz
        mem[3], mem[4], mem[5] = pos[0], pos[1], pos[2]
        mem[6], mem[7], mem[8] = nx, ny, nz
        mem[10] = 0.0
    else:
        mem[10] += dt
    mem[9] = math.exp(-mem[10] / WALL_TAU)


@njit(cache=True)
def _memory_from_wrench(wrench: np.ndarray, pos: np.ndarray,
                        mem: np.ndarray) -> None:  # pragma: no cover - compiled
    """A memory holding only this tick's force (no history): what a memoryless caller means."""
    fx, fy, fz = wrench[0], wrench[1], wrench[2]
    fm = math.sqrt(fx * fx + fy * fy + fz * fz)
    mem[0], mem[1], mem[2] = fx, fy, fz
    mem[3], mem[4], mem[5] = pos[0], pos[1], pos[2]
    mem[11], mem[12], mem[13] = pos[0], pos[1], pos[2]  # no history: no travel along a face
    mem[14] = mem[15] = mem[16] = 0.0
    if fm > CONTACT_FORCE:
        mem[6], mem[7], mem[8] = fx / fm, fy / fm, fz / fm
        mem[9], mem[10] = 1.0, 0.0
    else:
        mem[6] = mem[7] = mem[8] = 0.0
        mem[9], mem[10] = 0.0, 1e9


class ContactMemory:
    """Held contact force and the last touched surface (see module docstring).

    ``state`` is the compiled layout: held force (3) [N], wall point (3) [m], wall normal (3),
    recency ``r`` in [0, 1], age [s] since the last contact above ``CONTACT_FORCE``, face point
    (3) [m] and face normal (3): where and how the current face was first touched.

    :param dt: control period [s] (one :meth:`update` per fast tick).
    :param tau: decay time constant of the held force [s].
    """

    def __init__(self, dt: float = 0.001, tau: float = MEMORY_TAU) -> None:
        if not (dt > 0 and tau > 0):
            raise ValueError(f"dt and tau must be > 0 s, got dt={dt}, tau={tau}")
        self.dt = float(dt)
        self.tau = float(tau)
        self.decay = math.exp(-self.dt / self.tau)
        self.state = np.zeros(MEMORY_SIZE)
        self.reset()

    @property
    def force(self) -> np.ndarray:
        """The held contact force [N] (a view)."""
        return self.state[:3]

    def reset(self) -> None:
        self.state[:] = 0.0
        self.state[10] = 1e9  # no surface touched yet

    def update(self, state: RobotState) -> np.ndarray:
        """Feed this tick's measured wrench; returns the memory array. Real-time safe."""
        _memory_update(state.wrench, state.ee_pos, self.state, self.decay, self.dt)
        return self.state


# -- features --------------------------------------------------------------------------------------------
@njit(cache=True)
def _features(pos: np.ndarray, vel: np.ndarray, mem: np.ndarray, sp_pos: np.ndarray, sp_k: np.ndarray,
              out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Fill ``out`` (>= N_FEATURES) with the feature vector; see the module docstring."""
    fx, fy, fz = mem[0], mem[1], mem[2]
    fm = math.sqrt(fx * fx + fy * fy + fz * fz)
    inv = 1.0 / (fm + F_SOFT)
    r = mem[9]
    press = 0.0
    approach = 0.0
    gap = 0.0
    sp_gap = 0.0
    wall_app = 0.0
    for i in range(3):
        out[i] = pos[i]
        out[3 + i] = vel[i]
        out[6 + i] = mem[i] / F_REF
        rn = r * mem[6 + i]
        out[10 + i] = rn
        gap += (pos[i] - mem[3 + i]) * rn
        e = sp_pos[i] - pos[i]
        k = sp_k[i]
        out[14 + i] = e / E_REF
        spring = k * e / F_REF
        out[17 + i] = spring
        out[20 + i] = (math.log(max(k, 1e-6)) - _LOGK_LO) / _LOGK_SPAN
        press += spring * mem[i] * inv
        approach += vel[i] * mem[i] * inv
        sp_gap += e * rn
        wall_app += vel[i] * rn
    out[9] = fm / F_REF
    out[13] = gap / E_REF
    out[23] = press
    out[24] = approach
    out[25] = (gap + sp_gap) / E_REF
    out[26] = wall_app


def critic_features(state: RobotState, setpoint: Command, out: np.ndarray,
                    memory: np.ndarray | None = None) -> np.ndarray:
    """Write the features of ``(state, setpoint)`` into ``out`` (shape ``(N_FEATURES,)``).

    :param memory: ``ContactMemory.state`` (updated on every tick by the caller); default: a
        memory holding only this tick's measured force (allocates; not for the fast loop).

    Real-time safe with ``memory`` given (one compiled call, no allocation). ``setpoint`` must
    be Cartesian.
    """
    if memory is None:
        memory = np.empty(MEMORY_SIZE)
        _memory_from_wrench(state.wrench, state.ee_pos, memory)
    assert setpoint.position is not None  # a Cartesian setpoint
    _features(state.ee_pos, state.ee_vel, memory, setpoint.position, setpoint.stiffness, out)
    return out


def features_from_arrays(pos: ArrayLike, vel: ArrayLike, force: ArrayLike, sp_pos: ArrayLike,
                         stiffness: ArrayLike, wall_point: ArrayLike | None = None,
                         wall_normal: ArrayLike | None = None,
                         recency: ArrayLike | None = None) -> np.ndarray:
    """Vectorised features of a batch: arrays of shape ``(n, 3)`` (``recency``: ``(n,)``);
    returns ``(n, N_FEATURES)``.

    ``force`` is the held contact force, ``stiffness`` the translational stiffness [N/m];
    ``wall_point``/``wall_normal``/``recency`` describe the remembered surface (default: none).
    Same numbers as :func:`critic_features` (a test checks it).
    """
    pos, vel, force, sp_pos, stiffness = (np.asarray(a, dtype=np.float64).reshape(-1, 3)
                                          for a in (pos, vel, force, sp_pos, stiffness))
    n = len(pos)
    point = np.zeros((n, 3)) if wall_point is None else np.asarray(wall_point, float).reshape(-1, 3)
    normal = np.zeros((n, 3)) if wall_normal is None else np.asarray(wall_normal, float).reshape(-1, 3)
    r = np.zeros(n) if recency is None else np.asarray(recency, float).reshape(-1)
    rn = r[:, None] * normal
    gap = ((pos - point) * rn).sum(1, keepdims=True) / E_REF
    fm = np.linalg.norm(force, axis=1, keepdims=True)
    state = np.concatenate([pos, vel, force / F_REF, fm / F_REF, rn, gap], axis=1)
    return np.concatenate([state, setpoint_features(force, vel, sp_pos - pos, stiffness, rn, gap)],
                          axis=1)


def setpoint_features(force: Any, vel: Any, err: Any, stiffness: Any, wall: Any, gap: Any,
                      xp: ModuleType = np) -> Any:
    """Features 14-26 from the held force, velocity, setpoint error ``sp - pos`` [m], the
    translational stiffness [N/m] (each ``(n, 3)``), ``wall`` (features 10-12) and ``gap``
    (feature 13, ``(n, 1)``).

    ``xp`` is the array module (``numpy`` or ``torch``): the recovery policy is trained through
    this function with torch, so its gradient sees exactly the features the critic is fed.
    """
    fm = (force * force).sum(1, keepdims=True) ** 0.5
    n = force / (fm + F_SOFT)
    spring = stiffness * err / F_REF
    logk = (xp.log(xp.clip(stiffness, 1e-6, None)) - _LOGK_LO) / _LOGK_SPAN
    press = (spring * n).sum(1, keepdims=True)
    approach = (vel * n).sum(1, keepdims=True)
    sp_gap = gap + (err * wall).sum(1, keepdims=True) / E_REF
    wall_app = (vel * wall).sum(1, keepdims=True)
    parts = [err / E_REF, spring, logk, press, approach, sp_gap, wall_app]
    return xp.concatenate(parts, 1) if xp is np else xp.cat(parts, 1)
