"""Hand-written task policies: baselines, demo drivers, and data sources for the safety critic.

They read the task's public attributes (goal, nominal waypoints) and the arm state rather than
the observation vector, so they stay correct when an observation layout changes. They are not
told about disturbances (pushes, shifted walls).
"""

from __future__ import annotations

import numpy as np

from robot_brain.envs.maze import MazeEnv
from robot_brain.envs.peg_insertion import PegInsertionEnv
from robot_brain.envs.reach import ReachEnv
from robot_brain.envs.wipe import WipeEnv

__all__ = ["SCRIPTED", "ScriptedMaze", "ScriptedPegInsertion", "ScriptedReach", "ScriptedWipe"]


def _toward(delta: np.ndarray, slow_radius: float) -> np.ndarray:
    """Normalised displacement action toward ``delta``: full step far away, proportional (and
    so without overshoot) inside ``slow_radius``."""
    dist = float(np.linalg.norm(delta))
    if dist < 1e-9:
        return np.zeros_like(delta)
    speed = min(1.0, dist / slow_radius)  # fraction of max_step
    return np.clip(delta / dist * speed, -1.0, 1.0)


class ScriptedReach:
    """Straight to the goal, stiff (action stiffness +1), slowing down inside 5 cm of the goal.

    :param env: the reach task (unwrapped). :param seed: unused (deterministic).
    :param slow_radius: distance below which the step shrinks in proportion [m].
    """

    def __init__(self, env: ReachEnv, seed: int | None = None, slow_radius: float = 0.05) -> None:
        self.env = env
        self.slow_radius = slow_radius

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        env = self.env
        a = np.ones(6, dtype=np.float32)
        a[:3] = _toward(env.goal - env.state.ee_pos, self.slow_radius)
        return a


class ScriptedMaze:
    """Follow the maze's nominal waypoints at moderate stiffness.

    Advances to the next waypoint when the tip is within ``advance_radius`` of the current one,
    and slows down near each turn so the corner is not cut into a wall. It does not know the
    wall shift of the episode and does not react to contact: keeping the peg off the walls is
    left to the impedance (compliance) and the reflex layer, which is what the demo compares.

    :param env: the maze task (unwrapped). :param seed: unused (deterministic).
    :param stiffness: normalised stiffness action in [-1, 1] (0.6 -> ~1100 N/m with the default
        range).
    :param advance_radius: distance to a waypoint at which the next one becomes the target [m].
    :param slow_radius: distance below which the step shrinks in proportion [m].
    """

    def __init__(self, env: MazeEnv, seed: int | None = None, stiffness: float = 0.6,
                 advance_radius: float = 0.015, slow_radius: float = 0.04) -> None:
        if not -1.0 <= stiffness <= 1.0:
            raise ValueError(f"stiffness must be a normalised action in [-1, 1], got {stiffness}")
        self.env = env
        self.stiffness = float(stiffness)
        self.advance_radius = float(advance_radius)
        self.slow_radius = float(slow_radius)
        self.index = 1

    def reset(self) -> None:
        self.index = 1

    def act(self, obs: np.ndarray) -> np.ndarray:
        env = self.env
        wps = env.waypoints
        tip = env.state.ee_pos[:2]
        while self.index < len(wps) - 1 and np.linalg.norm(wps[self.index] - tip) < self.advance_radius:
            self.index += 1
        a = np.full(4, self.stiffness, dtype=np.float32)
        a[:2] = _toward(wps[self.index] - tip, self.slow_radius)
        return a


def _toward_step(delta: np.ndarray, max_step: float, slow_radius: float) -> np.ndarray:
    """Normalised displacement action toward ``delta``: full step far away, proportional inside
    ``slow_radius`` (no overshoot)."""
    dist = float(np.linalg.norm(delta))
    if dist < 1e-12:
        return np.zeros_like(delta)
    step = min(max_step, dist * max_step / slow_radius, dist)
    return np.clip(delta / dist * step / max_step, -1.0, 1.0)


class ScriptedPegInsertion:
    """Align above the hole, then push down with soft lateral stiffness.

    Phase 1 moves the tip to ``hover`` metres above the nominal hole entry; when the tip is within
    ``align_tol`` of the axis, phase 2 descends at ``descend`` (fraction of ``max_step``) with low
    lateral stiffness so that contact with the hole edge can centre the peg.

    :param env: the task (unwrapped). :param seed: unused (deterministic).
    :param hover: height above the hole entry while aligning [m].
    :param align_tol: lateral error below which the descent starts [m].
    :param descend: downward action while inserting (fraction of ``max_step``).
    :param lateral_stiffness: normalised stiffness action of x/y while inserting.
    """

    def __init__(self, env: PegInsertionEnv, seed: int | None = None, hover: float = 0.003,
                 align_tol: float = 0.0006, descend: float = 0.6, lateral_stiffness: float = -0.3) -> None:
        self.env = env
        self.hover = hover
        self.align_tol = align_tol
        self.descend = descend
        self.lateral_stiffness = lateral_stiffness
        self.inserting = False

    def reset(self) -> None:
        self.inserting = False

    def act(self, obs: np.ndarray) -> np.ndarray:
        env = self.env
        tip = env.state.ee_pos
        delta = env.hole_top - tip
        lateral = float(np.linalg.norm(delta[:2]))
        a = np.zeros(6, dtype=np.float32)
        if not self.inserting and lateral < self.align_tol and abs(delta[2] + self.hover) < 0.002:
            self.inserting = True
        if self.inserting:
            a[:2] = np.clip(delta[:2] / env.config.max_step, -1.0, 1.0)
            a[2] = -self.descend
            a[3:5] = self.lateral_stiffness
            a[5] = 0.0
        else:
            target = delta + np.array([0.0, 0.0, self.hover])
            if lateral > 0.01:  # stay well above the block until roughly above the hole
                target[2] = max(target[2], 0.01 + self.hover)
            a[:3] = _toward_step(target, env.config.max_step, 0.008)
            a[3:] = 0.5
        return a


class ScriptedWipe:
    """Touch down gently on the first point, then slide along the path pressing with the target
    force.

    The normal force is set through impedance: with z stiffness ``K`` the target is placed
    ``F* / K`` below the tip, plus a proportional correction on the measured force error. The
    press depth ramps up by ``ramp`` per tick after touch-down: a stiff contact hit at speed gives
    a force spike far above the target (and the reflex's retreat).

    :param env: the task (unwrapped). :param seed: unused (deterministic).
    :param speed: fraction of ``max_step`` along the path while wiping.
    :param z_stiffness: normalised stiffness action of z (0 -> geometric mean of the range).
    :param force_gain: correction of the press depth per newton of force error [m/N].
    :param approach_height: height above the table where the fast descent ends [m].
    :param ramp: increase of the press depth per tick after touch-down [m].
    """

    def __init__(self, env: WipeEnv, seed: int | None = None, speed: float = 0.6,
                 z_stiffness: float = 0.0, force_gain: float = 0.0015, approach_height: float = 0.006,
                 ramp: float = 0.0015) -> None:
        self.env = env
        self.speed = speed
        self.z_stiffness = z_stiffness
        self.force_gain = force_gain
        self.approach_height = approach_height
        self.ramp = ramp
        self.press = 0.0
        self.down = False
        self._retreats = 0

    def reset(self) -> None:
        self.press = 0.0
        self.down = False
        self._retreats = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        env = self.env
        a = np.zeros(6, dtype=np.float32)
        a[3:5] = 0.3  # x/y ~ 700 N/m
        a[5] = self.z_stiffness
        f = env.normal_force
        self.down = self.down or f > 0.3
        if not self.down:
            if env.height > self.approach_height:  # fast to just above the table
                gap = np.array([self.approach_height - env.height - 0.001])
                a[2] = _toward_step(gap, env.config.max_step, 0.01)[0]
            else:  # creep down until the contact is felt
                a[2] = -0.1
            return a
        k_z = float(env.stiffness_from_action(np.array([self.z_stiffness]))[0])
        wanted = env.config.target_force / k_z + self.force_gain * (env.config.target_force - f)
        retreats = sum(env.episode.interventions.values())
        if retreats > self._retreats:  # the reflex retreated: ramp up again, do not slam back
            self.press = 0.0
        self._retreats = retreats
        self.press = min(wanted, self.press + self.ramp)
        a[2] = np.clip(-self.press / env.config.max_step, -1.0, 1.0)
        if f > 0.5 * env.config.target_force:
            delta = env.points[env.next_index] - env.state.ee_pos[:2]
            a[:2] = _toward_step(delta, env.config.max_step, 0.01) * self.speed
        return a


# Task env class -> scripted policy class.
SCRIPTED: dict[type, type] = {ReachEnv: ScriptedReach, MazeEnv: ScriptedMaze,
                              PegInsertionEnv: ScriptedPegInsertion, WipeEnv: ScriptedWipe}
