"""``swimmer``: an N-link swimmer in a viscous medium, driven by joint torques (no impedance layer).

A rebuild in plain MuJoCo of DeepMind Control Suite's procedurally generated swimmer (``swimmer6``,
``swimmer15``) with the "swim" task of the NCAP work (Bhattasali, Zador, Engel, NeurIPS 2022): swim
forward as fast as possible. dm_control itself is not used (it does not run on MuJoCo 4).

Body: ``links`` rigid segments in a chain (0.1 m apart), the head first. The head moves freely in
the plane (slide x, slide y, hinge z root joints); each of the ``links - 1`` joints between
consecutive segments is a torque-driven hinge about z. So ``links = 6`` is dm_control's
``swimmer6``: 6 bodies, 5 actuated joints (the "N = 5 joints, n = 6" of the NCAP notes, where the
joint range is +-360/n degrees and the circuit's proprioception divides by 2 pi / (N + 1)). Thrust
comes only from MuJoCo's inertia-box fluid model (density 3000, no viscosity, contacts off): each
segment's drag box is the invisible box geom that also gives it its mass.

Observation (float64), with ``J = links - 1`` joints:

- ``[0, J)``                 joint angles [rad], head to tail (``joint_0`` joins head and segment 0);
- ``[J, J + 3 links)``       body velocities, head first, per body in its own frame:
                             (vx, vy [m/s], wz [rad/s]) from its velocimeter and gyro;
- ``[-1]``                   the control-step index of the episode as a float (0 after reset,
                             then 1, 2, ...).

That is ``4 * links`` numbers. Joint angles first and the step index last let a policy that needs
only those (the NCAP circuit reads the angles and its clock) be a pure function of the observation,
so any trainer that maps observations to actions can train it.

Action (float32): one normalised joint torque per joint in [-1, 1] (motor gear 5e-4 N m).
Reward: the head's forward speed ``v`` (along the nose, -y in the head frame) as
``clip(v / 0.1, 0, 1)``: 1 at 0.1 m/s or more, so a full episode returns at most
``max_episode_steps``. There is no terminal success: episodes end by truncation.

``info`` carries ``is_success`` (always ``False``), ``cost`` (always 0.0: no constraint here),
``speed`` (``v`` [m/s]) and ``reward_terms``.

Version history: v0 (initial; dm_control's swimmer geometry and swim reward, joint-torque actions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from robot_brain.params import param, validate
from robot_brain.render import Camera

__all__ = ["CONTROL_DT", "TARGET_SPEED", "TIMESTEP", "SwimmerConfig", "SwimmerEnv", "build_mjcf"]

from .common import TaskRenderer, check_render, task_config

TIMESTEP = 0.002  # s, physics step (dm_control's swimmer.xml)
CONTROL_DT = 0.03  # s, one env step (dm_control's _CONTROL_TIMESTEP for the swimmer)
N_SUBSTEPS = round(CONTROL_DT / TIMESTEP)  # physics steps per env step
assert abs(N_SUBSTEPS * TIMESTEP - CONTROL_DT) < 1e-12, "CONTROL_DT must be a whole number of TIMESTEPs"
TARGET_SPEED = 0.1  # m/s, forward speed earning the full reward of a step
SEGMENT_LENGTH = 0.1  # m, distance between consecutive segment origins
MOTOR_GEAR = 5e-4  # N m of joint torque per unit of action
ROOT_JOINTS = ("rootx", "rooty", "rootz")  # the head's free planar motion (not actuated)


@dataclass(frozen=True)
class SwimmerConfig:
    """Options of ``swimmer``.

    :param links: number of rigid segments, head included; the body has ``links - 1`` actuated
        joints (``links = 6`` is dm_control's ``swimmer6``). 3 to 15, dm_control's range.
    :param max_episode_steps: steps (of 0.03 s) before truncation; the return is at most this.
    """

    links: int = param(6, "number of body segments, head included (joints = links - 1)", kind="int",
                       low=3, high=15)
    max_episode_steps: int = param(1000, "steps of 0.03 s before truncation", kind="int", low=1,
                                   high=1_000_000)

    def __post_init__(self) -> None:
        validate(self)


def _segment_xml(index: int, joint_limit: float, inner: str) -> str:
    return (f'<body name="segment_{index}" pos="0 {SEGMENT_LENGTH:g} 0">'
            f'<geom name="visual_{index}" class="visual"/>'
            f'<geom name="inertial_{index}" class="inertial"/>'
            f'<site name="site_{index}"/>'
            f'<joint name="joint_{index}" range="{-joint_limit:g} {joint_limit:g}"/>'
            f'{inner}</body>')


def build_mjcf(links: int) -> str:
    """The MJCF of a swimmer with ``links`` segments (dm_control's ``swimmer.xml`` made in code).

    Every segment has an invisible drag box (half sizes 1 x 50 x 10 mm, 10 g; geom group 3, so no
    renderer draws it) and a massless visual capsule; joints sit at the front end of a segment
    (y = -0.05 in its frame) with range +-360/links degrees. Sensors, in ``sensordata`` order:
    ``head_vel``, ``head_gyro``, then ``velocimeter_i``, ``gyro_i`` per segment, head to tail.
    """
    joint_limit = 360.0 / links
    chain = ""
    for index in reversed(range(links - 1)):
        chain = _segment_xml(index, joint_limit, chain)
    sensors = "".join(f'<velocimeter name="velocimeter_{i}" site="site_{i}"/><gyro name="gyro_{i}" '
                      f'site="site_{i}"/>' for i in range(links - 1))
    motors = "".join(f'<motor name="motor_{i}" joint="joint_{i}"/>' for i in range(links - 1))
    root = "".join(f'<joint name="{name}" class="free" type="{kind}" axis="{axis}" pos="0 -.05 0"/>'
                   for name, kind, axis in (("rootx", "slide", "1 0 0"), ("rooty", "slide", "0 1 0"),
                                            ("rootz", "hinge", "0 0 1")))
    return f"""<mujoco model="swimmer{links}">
  <compiler angle="degree"/>
  <option timestep="{TIMESTEP:g}" density="3000" viscosity="0" integrator="Euler">
    <flag contact="disable"/>
  </option>
  <visual><map znear=".01"/><headlight ambient=".4 .4 .4" diffuse=".8 .8 .8" specular=".1 .1 .1"/></visual>
  <default>
    <default class="swimmer">
      <joint type="hinge" pos="0 -.05 0" axis="0 0 1" limited="true" solreflimit=".05 1"
             solimplimit="0 .8 .1" armature="1e-6"/>
      <default class="inertial">
        <geom type="box" size=".001 .05 .01" rgba="0 0 0 0" mass=".01" group="3"/>
      </default>
      <default class="visual">
        <geom type="capsule" size=".01" fromto="0 -.05 0 0 .05 0" rgba=".7 .5 .3 1" mass="0"/>
      </default>
      <site size=".01" rgba="0 0 0 0" group="3"/>
    </default>
    <default class="free">
      <joint limited="false" stiffness="0" armature="0"/>
    </default>
    <motor gear="{MOTOR_GEAR:g}" ctrllimited="true" ctrlrange="-1 1"/>
  </default>
  <worldbody>
    <geom name="ground" type="plane" size="10 10 0.1" rgba=".25 .3 .35 1"/>
    <body name="head" pos="0 0 .05" childclass="swimmer">
      <geom name="head" type="ellipsoid" size=".02 .04 .017" pos="0 -.022 0" rgba=".7 .5 .3 1" mass="0"/>
      <geom name="nose" type="sphere" pos="0 -.06 0" size=".004" rgba=".9 .2 .2 1" mass="0"/>
      {root}
      <geom name="inertial" class="inertial"/>
      <geom name="visual" class="visual"/>
      <site name="head"/>
      {chain}
    </body>
  </worldbody>
  <actuator>{motors}</actuator>
  <sensor>
    <velocimeter name="head_vel" site="head"/>
    <gyro name="head_gyro" site="head"/>
    {sensors}
  </sensor>
</mujoco>"""


class SwimmerEnv(gym.Env):
    """Swim forward with joint torques (options: :class:`SwimmerConfig`; layout: module docstring).

    One step sets the motors, runs 15 physics steps of 2 ms (Euler) and then ``mj_forward``, so
    the sensors are read at the new state (dm_control's ordering). Reset (seeded through
    ``reset(seed=...)``): the head at the origin, heading uniform in [-pi, pi], each joint
    angle uniform in its range, everything at rest.

    :param config: the configuration (default: ``SwimmerConfig()``).
    :param render_mode: ``"rgb_array"`` or ``None``.
    :param renderer: ``"auto"`` (MuJoCo's OpenGL renderer when a context can be made, else the
        software renderer), ``"opengl"`` (a :class:`~robot_brain.render.RenderError` naming the
        cure when no OpenGL is available) or ``"software"``.
    :param width: render width [px]. :param height: render height [px].
    :param options: fields of ``config`` to change (``SwimmerEnv(links=10)``).
    """

    # gym.Env declares metadata as a plain (instance) attribute, so no ClassVar here.
    metadata: dict[str, Any] = {"render_modes": ["rgb_array"],  # noqa: RUF012
                                "render_fps": round(1.0 / CONTROL_DT)}

    name: ClassVar[str] = "swimmer"
    env_id: ClassVar[str] = "robot_brain/Swimmer-v0"
    description: ClassVar[str] = "N-link swimmer in a viscous medium (no impedance layer: joint torques)"
    config_type: ClassVar[type[SwimmerConfig]] = SwimmerConfig
    action_kind: ClassVar[str] = "joint torques"  # for robot-brain tasks

    def __init__(self, config: SwimmerConfig | None = None, *, render_mode: str | None = None,
                 renderer: str = "auto", width: int = 320, height: int = 240, **options: Any) -> None:
        self.config = cfg = task_config(self, config, options)
        check_render(render_mode, renderer, width, height)  # before the model is built
        self.render_mode = render_mode

        self.model = mujoco.MjModel.from_xml_string(build_mjcf(cfg.links))
        self._frames = TaskRenderer(self.model, render_mode, renderer, width, height)
        self.data = mujoco.MjData(self.model)
        self.n_joints = cfg.links - 1
        # Named views (resolved once): addresses of the actuated joints and of the sensors.
        self._qpos_joints = np.array([self.model.joint(f"joint_{i}").qposadr[0]
                                      for i in range(self.n_joints)])
        self._qpos_root = np.array([self.model.joint(n).qposadr[0] for n in ROOT_JOINTS])
        self._joint_range = self.model.jnt_range[[self.model.joint(f"joint_{i}").id
                                                  for i in range(self.n_joints)]].copy()
        self._head_vel = self.model.sensor("head_vel").adr[0]
        self._head_body = self.model.body("head").id
        self._t = 0

        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.n_joints,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(4 * cfg.links,), dtype=np.float64)
        self._ctrl = np.zeros(self.n_joints)
        mujoco.mj_forward(self.model, self.data)

    # -- views ---------------------------------------------------------------------------------
    @property
    def dt(self) -> float:
        """Duration of one step [s]."""
        return CONTROL_DT

    @property
    def links(self) -> int:
        """Number of body segments (head included)."""
        return self.config.links

    @property
    def joint_angles(self) -> np.ndarray:
        """Angles of the actuated joints [rad], head to tail (a copy)."""
        return self.data.qpos[self._qpos_joints].copy()

    @property
    def forward_speed(self) -> float:
        """The head's speed along its nose [m/s] (nose along -y of the head frame)."""
        return -float(self.data.sensordata[self._head_vel + 1])

    @property
    def head_position(self) -> np.ndarray:
        """Position of the head segment's centre in the plane [m] (a copy)."""
        return self.data.xpos[self._head_body, :2].copy()

    @property
    def step_index(self) -> int:
        """Steps taken in this episode (the observation's last element)."""
        return self._t

    def _get_obs(self) -> np.ndarray:
        # sensordata holds (velocimeter xyz, gyro xyz) per body, head first: keep vx, vy, wz.
        velocities = self.data.sensordata.reshape(-1, 6)[:, (0, 1, 5)].ravel()
        return np.concatenate([self.data.qpos[self._qpos_joints], velocities, [float(self._t)]])

    def _reward_terms(self) -> dict[str, float]:
        return {"swim": float(np.clip(self.forward_speed / TARGET_SPEED, 0.0, 1.0))}

    # -- gym API -------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qpos_root[2]] = rng.uniform(-math.pi, math.pi)
        self.data.qpos[self._qpos_joints] = rng.uniform(self._joint_range[:, 0], self._joint_range[:, 1])
        mujoco.mj_forward(self.model, self.data)
        self._t = 0
        return self._get_obs(), {"is_success": False, "cost": 0.0, "speed": self.forward_speed}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        if not np.isfinite(a).all():  # MuJoCo would silently reset the simulation on a bad ctrl
            raise ValueError(f"action must be finite, got {a}")
        np.clip(a, -1.0, 1.0, out=self._ctrl)
        self.data.ctrl[:] = self._ctrl
        mujoco.mj_step(self.model, self.data, nstep=N_SUBSTEPS)
        mujoco.mj_forward(self.model, self.data)  # sensors at the new state
        self._t += 1
        terms = self._reward_terms()
        reward = float(sum(terms.values()))
        truncated = self._t >= self.config.max_episode_steps
        info = {"is_success": False, "cost": 0.0, "speed": self.forward_speed, "reward_terms": terms}
        return self._get_obs(), reward, False, truncated, info

    # -- rendering -----------------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        """The current picture (``render_mode="rgb_array"``) from above and behind, following the
        body's centre of mass."""
        if self.render_mode != "rgb_array":
            return None
        com = self.data.subtree_com[self._head_body]
        camera = Camera(lookat=(com[0], com[1], 0.05), distance=0.3 + 0.12 * self.links,
                        azimuth=90.0, elevation=-60.0)
        return self._frames.frame(self.data, camera)

    @property
    def renderer_note(self) -> str | None:
        """One line naming the renderer in use (and how to get the 3-D one), once rendering."""
        return self._frames.note

    def close(self) -> None:
        """Release the renderer (closing twice is harmless)."""
        self._frames.close()
