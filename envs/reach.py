"""``reach``: move the tool tip to a random goal in free space.

Observation: tool position (3), tool linear velocity (3), goal - tool (3).
Action: target displacement (3, scaled by ``max_step``) and per-axis stiffness (3, log scale).
Success: tool within ``goal_tolerance`` of the goal (the episode ends).

Version history: v0 (initial; goal box x 0.35-0.6, y -0.2-0.2, z 0.2-0.45 m, all reachable).

``servo-reach`` is the same task on the 6-joint servo arm (:mod:`.servo_arm`): a goal box inside
its reach with the tool pointing down, stiffness and steps scaled to 3 N m servos, a 500 Hz fast
tick. It is the task a Dynamixel arm deploys with (``robot-brain deploy --transport serial``).
Version history: v0 (initial; goal box x 0.10-0.17, y -0.07-0.07, z 0.04-0.09 m).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robot_brain.params import param
from robot_brain.render import Camera
from robot_brain.runtime import StepStats

from . import servo_arm
from .base import ImpedanceTaskEnv, TaskConfig
from .world import ArmSpec

__all__ = ["ReachConfig", "ReachEnv", "ServoReachConfig", "ServoReachEnv"]


@dataclass(frozen=True)
class ReachConfig(TaskConfig):
    """Options of ``reach`` (besides :class:`TaskConfig`'s).

    :param goal_low: lower corner of the goal box [m]. :param goal_high: upper corner [m]. The
        default box lies inside the arm's reach with the tool pointing down (goals beyond
        x = 0.6 m at z = 0.6 m are not reachable in that orientation).
    :param goal_tolerance: success distance [m].
    """

    goal_low: tuple[float, float, float] = param((0.35, -0.2, 0.2), "lower corner of the goal box",
                                                 kind="vec3", low=-1.0, high=1.2, unit="m")
    goal_high: tuple[float, float, float] = param((0.6, 0.2, 0.45), "upper corner of the goal box",
                                                  kind="vec3", low=-1.0, high=1.2, unit="m")
    goal_tolerance: float = param(0.02, "success distance", low=0.0, high=0.2, unit="m", low_open=True)
    max_episode_steps: int = param(100, "steps before truncation", kind="int", low=1, high=1_000_000)

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(lo > hi for lo, hi in zip(self.goal_low, self.goal_high, strict=True)):
            raise ValueError(f"ReachConfig: goal_low {self.goal_low} must not exceed goal_high "
                             f"{self.goal_high} on any axis")


class ReachEnv(ImpedanceTaskEnv):
    """Free-space goal reaching with variable impedance (options: :class:`ReachConfig`)."""

    name: ClassVar[str] = "reach"
    env_id: ClassVar[str] = "robot_brain/Reach-v0"
    description: ClassVar[str] = "free-space goal reaching with the tool tip (variable-impedance actions)"
    config_type: ClassVar[type[TaskConfig]] = ReachConfig
    config: ReachConfig

    def __init__(self, config: TaskConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)  # the config's type is checked there (config_type)
        self._goal_body = self.model.body("goal").id

    def _init_task(self) -> None:
        self.goal_low = np.array(self.config.goal_low)
        self.goal_high = np.array(self.config.goal_high)
        self.goal = (self.goal_low + self.goal_high) / 2

    def _world_xml(self) -> str:
        return ('<body name="goal" mocap="true" pos="0.5 0 0.45">'
                '<geom type="sphere" size="0.02" rgba="0.1 0.9 0.2 0.5"/></body>')

    def _reset_task(self, rng: np.random.Generator) -> None:
        self.goal = rng.uniform(self.goal_low, self.goal_high)
        # The arm reset that follows runs mj_resetData, which copies the model's body_pos into
        # mocap_pos: move the marker in the model so the rendered goal is the sampled one.
        self.model.body_pos[self._goal_body] = self.goal
        if self.sim is not None:
            self.sim.data.mocap_pos[0] = self.goal

    def _task_obs(self) -> np.ndarray:
        return self.goal - self.state.ee_pos

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.goal - self.state.ee_pos))

    def _reward_terms(self, stats: StepStats) -> dict[str, float]:
        # Distance in units of 10 cm: rewards of order 1 keep SAC's entropy bonus from drowning
        # the last centimetres of the approach.
        return {
            "distance": -10.0 * self.distance,
            "success": 10.0 if self._is_success() else 0.0,
            "contact": -0.01 * stats.max_contact_force,
        }

    def _is_success(self) -> bool:
        return self.distance < self.config.goal_tolerance


@dataclass(frozen=True)
class ServoReachConfig(ReachConfig):
    """Options of ``servo-reach``: :class:`ReachConfig`'s, with defaults for the servo arm.

    The arm's tool tip reaches x 0.05-0.2 m pointing down; the goal box keeps a margin from the
    edge of that region. Stiffness: 300 N/m at a 0.2 m lever is about 12 N m/rad at a joint, a
    third of what 3 N m servos hold against a 2 cm step with gravity. The contact force limits
    are a 3 N m servo's: about 15 N at the tip at full torque.
    """

    arm: ClassVar[ArmSpec] = servo_arm.ARM

    goal_low: tuple[float, float, float] = param((0.10, -0.07, 0.04), "lower corner of the goal box",
                                                 kind="vec3", low=-0.3, high=0.4, unit="m")
    goal_high: tuple[float, float, float] = param((0.17, 0.07, 0.09), "upper corner of the goal box",
                                                  kind="vec3", low=-0.3, high=0.4, unit="m")
    goal_tolerance: float = param(0.01, "success distance", low=0.0, high=0.1, unit="m", low_open=True)
    control_hz: float = param(500.0, "fast-tick rate; the physics step is 2 ms", low=50.0,
                              high=500.0, unit="Hz")
    stiffness_range: tuple[float, float] = param(
        (30.0, 300.0), "stiffness the action maps onto (log scale)", kind="pair", low=1.0,
        high=1000.0, unit="N/m")
    rot_stiffness: float = param(1.0, "rotational stiffness holding the tool orientation",
                                 low=0.0, high=10.0, unit="N m/rad", low_open=True)
    max_step: float = param(0.01, "largest target displacement per slow tick; 0.01 m at 20 Hz "
                            "is 0.2 m/s", low=0.0, high=0.02, unit="m", low_open=True)
    force_limit: float = param(5.0, "contact force above which a step is a violation", low=0.0,
                               high=20.0, unit="N", low_open=True)
    reflex_force: float = param(5.0, "contact force at which the hard-limit reflex retreats",
                                low=0.0, high=20.0, unit="N", low_open=True)


class ServoReachEnv(ReachEnv):
    """``reach`` on the 6-joint servo arm (options: :class:`ServoReachConfig`)."""

    name: ClassVar[str] = "servo-reach"
    env_id: ClassVar[str] = "robot_brain/ServoReach-v0"
    description: ClassVar[str] = "reach on the 6-joint Dynamixel servo arm (deploys over a serial bus)"
    config_type: ClassVar[type[TaskConfig]] = ServoReachConfig
    camera: ClassVar[Camera] = Camera(lookat=(0.08, 0.0, 0.12), distance=0.55, azimuth=135.0,
                                      elevation=-30.0)
    hold_stiffness: ClassVar[float] = 200.0  # N/m

    def _world_xml(self) -> str:
        return ('<body name="goal" mocap="true" pos="0.14 0 0.08">'
                '<geom type="sphere" size="0.01" rgba="0.1 0.9 0.2 0.5"/></body>')
