"""A 7-DoF torque-controlled arm with Franka Panda kinematics, built from primitive geoms.

Constants module for the arm (names, limits, home pose) plus the MJCF builder. Kinematics follow
Franka's modified DH table (Craig's convention, ``RotX(alpha) TransX(a) RotZ(theta) TransZ(d)``),
link masses are the identified values of Gaz et al. (RA-L 2019), limits are Franka's datasheet
values (Franka Control Interface documentation, "Robot and interface specifications"). No
meshes: every link is a capsule or cylinder, so the model builds offline and steps fast.

Tasks add their world (table, walls, goal markers) with :func:`build_mjcf`'s ``world_xml`` hook.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .world import ArmSpec, motors_xml

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "ARM",
    "DQ_MAX",
    "EE_SITE",
    "FT_SITE",
    "HOME_Q",
    "JOINT_NAMES",
    "MODIFIED_DH",
    "Q_MAX",
    "Q_MIN",
    "TAU_MAX",
    "TAU_RATE_MAX",
    "TOOL_BODY",
    "build_mjcf",
]

JOINT_NAMES: tuple[str, ...] = tuple(f"joint{i}" for i in range(1, 8))
ACTUATOR_NAMES: tuple[str, ...] = tuple(f"motor{i}" for i in range(1, 8))
EE_SITE = "ee"  # peg tip: the point the Cartesian controller regulates
FT_SITE = "ft"  # flange: the force/torque sensor between link7 and the tool (see build_mjcf)
TOOL_BODY = "tool"

# (a [m], d [m], alpha [rad]) of each joint frame, Franka's modified DH table.
MODIFIED_DH: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.316, math.pi / 2),
    (0.0825, 0.0, math.pi / 2),
    (-0.0825, 0.384, -math.pi / 2),
    (0.0, 0.0, math.pi / 2),
    (0.088, 0.0, math.pi / 2),
)
FLANGE_D = 0.107
LINK_MASSES = (4.971, 0.647, 3.229, 3.588, 1.226, 1.667, 0.736)  # kg, Gaz et al. 2019
HAND_MASS = 0.73  # kg
HAND_LENGTH = 0.10  # m, flange to peg root
PEG_LENGTH = 0.10  # m
PEG_RADIUS = 0.01  # m

Q_MIN = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
Q_MAX = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
DQ_MAX = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])  # rad/s
TAU_MAX = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])  # N m
TAU_RATE_MAX = 1000.0  # N m / s, Franka's limit on the commanded torque
HOME_Q = np.array([0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4])

# Rotor inertia and viscous friction per joint: armature keeps the light distal links stable at a
# 1 ms step under stiff impedance; the values are those of common Panda MJCF models.
ARMATURE = 0.1
JOINT_DAMPING = 1.0
TIMESTEP = 0.001  # s, physics step = one control tick at 1 kHz


def _fmt(v: ArrayLike) -> str:
    return " ".join(f"{x:.6g}" for x in np.atleast_1d(v))


def _link_xml(i: int, inner: str) -> str:
    """Body ``link{i}`` (1-based) with its hinge, geoms and mass, wrapping ``inner`` (the child)."""
    a, d, alpha = MODIFIED_DH[i - 1]
    pos = (a, -d * math.sin(alpha), d * math.cos(alpha))
    quat = (math.cos(alpha / 2), math.sin(alpha / 2), 0.0, 0.0)
    # Segment from this joint to the next one, in this body's frame.
    if i < 7:
        a2, d2, alpha2 = MODIFIED_DH[i]
        nxt = np.array([a2, -d2 * math.sin(alpha2), d2 * math.cos(alpha2)])
    else:
        nxt = np.array([0.0, 0.0, FLANGE_D])
    mass = LINK_MASSES[i - 1]
    radius = 0.06 if i <= 4 else 0.045
    housing = (
        f'<geom name="link{i}_housing" type="cylinder" size="{radius:.3f} {radius:.3f}" '
        f'fromto="0 0 {-radius:.3f} 0 0 {radius:.3f}" mass="{0.25 * mass:.4f}" rgba="0.95 0.95 0.95 1"/>'
    )
    if np.linalg.norm(nxt) > 0.01:
        seg = (
            f'<geom name="link{i}_seg" type="capsule" size="{radius * 0.85:.3f}" '
            f'fromto="0 0 0 {_fmt(nxt)}" mass="{0.75 * mass:.4f}" rgba="0.9 0.9 0.92 1"/>'
        )
    else:
        housing = housing.replace(f'mass="{0.25 * mass:.4f}"', f'mass="{mass:.4f}"')
        seg = ""
    name = JOINT_NAMES[i - 1]
    return (
        f'<body name="link{i}" pos="{_fmt(pos)}" quat="{_fmt(quat)}">'
        f'<joint name="{name}" range="{Q_MIN[i - 1]:.4f} {Q_MAX[i - 1]:.4f}"/>'
        f"{housing}{seg}{inner}</body>"
    )


def _tool_xml() -> str:
    """Hand and peg, welded to the flange (only they collide, which keeps ``mj_step`` cheap); the
    F/T sensor site sits on the weld."""
    q = (math.cos(-math.pi / 8), 0.0, 0.0, math.sin(-math.pi / 8))  # -pi/4 about z, as Franka's hand
    tip = HAND_LENGTH + PEG_LENGTH
    return (
        f'<site name="{FT_SITE}" pos="0 0 {FLANGE_D}" size="0.01" rgba="1 0.5 0 0.5"/>'
        f'<body name="{TOOL_BODY}" pos="0 0 {FLANGE_D}" quat="{_fmt(q)}">'
        f'<geom name="hand" type="box" size="0.03 0.09 0.03" pos="0 0 {HAND_LENGTH / 2 + 0.01}" '
        f'mass="{HAND_MASS}" rgba="0.25 0.25 0.28 1" contype="1" conaffinity="1"/>'
        f'<geom name="peg" type="capsule" size="{PEG_RADIUS}" '
        f'fromto="0 0 {HAND_LENGTH} 0 0 {tip - PEG_RADIUS}" mass="0.05" rgba="0.9 0.5 0.1 1" '
        f'contype="1" conaffinity="1" condim="3" friction="0.3 0.005 0.0001"/>'
        f'<site name="{EE_SITE}" pos="0 0 {tip}" size="0.006" rgba="1 0 0 1"/>'
        f"</body>"
    )


def build_mjcf(world_xml: str = "", assets_xml: str = "", name: str = "panda") -> str:
    """Return the MJCF of the arm mounted at the origin, plus ``world_xml`` in the worldbody.

    :param world_xml: bodies and geoms of the task world (table, walls, markers); geoms that the peg
        should touch need ``contype``/``conaffinity`` 1.
    :param assets_xml: extra ``<asset>`` children (textures, materials).
    :param name: model name.
    """
    inner = _tool_xml()
    for i in range(7, 0, -1):
        inner = _link_xml(i, inner)
    actuators = motors_xml(ACTUATOR_NAMES, JOINT_NAMES, TAU_MAX)
    return f"""<mujoco model="{name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast"/>
  <visual><global offwidth="640" offheight="480"/><quality shadowsize="1024"/></visual>
  <default>
    <joint type="hinge" axis="0 0 1" armature="{ARMATURE}" damping="{JOINT_DAMPING}" limited="true"/>
    <geom contype="0" conaffinity="0" solref="0.005 1" solimp="0.95 0.99 0.001"/>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1=".2 .3 .4" rgb2=".1 .15 .2"
             width="256" height="256"/>
    <material name="grid" texture="grid" texrepeat="8 8" reflectance="0.1"/>
    {assets_xml}
  </asset>
  <worldbody>
    <light name="key" pos="0.5 -1 2.5" dir="-0.2 0.4 -1" directional="true"/>
    <geom name="floor" type="plane" size="3 3 0.1" material="grid"/>
    <body name="link0">
      <geom name="link0_base" type="cylinder" fromto="0 0 0 0 0 0.28" size="0.07" mass="3"
            rgba="0.9 0.9 0.92 1"/>
      {inner}
    </body>
    {world_xml}
  </worldbody>
  <actuator>{actuators}</actuator>
  <!-- The F/T sensor is what makes MuJoCo compute the bodies' external forces (cfrc_ext) on every
       step; MujocoBackend reads the tool's contact wrench from there. Without it cfrc_ext stays
       zero and no contact would ever be measured. -->
  <sensor>
    <force name="ft_force" site="{FT_SITE}"/>
    <torque name="ft_torque" site="{FT_SITE}"/>
  </sensor>
</mujoco>"""


ARM = ArmSpec("panda", build_mjcf, JOINT_NAMES, HOME_Q, Q_MIN, Q_MAX, TAU_MAX, TAU_RATE_MAX, TIMESTEP,
              ee_site=EE_SITE, tool_body=TOOL_BODY)
