"""A small 6-joint arm of Dynamixel XM430-W350 servos, built from primitive geoms.

Constants module for the arm (names, limits, home pose) plus the MJCF builder, laid out like
:mod:`.panda`. Proportions follow the hobby arms of the SO-100 / Koch kind: base yaw, shoulder
pitch, elbow pitch, wrist pitch, wrist roll and a wrist yaw in place of a gripper, links of about
0.1 m, link masses of tens to a few hundred grams (each includes the servo of the next joint,
82 g for an XM430). The numbers are representative, not those of a specific product: no
datasheet or identification lies behind the masses and lengths.

Torque limits are the XM430-W350's: stall torque ~4.1 N m at 12 V, of which :data:`TAU_MAX`
allows 3.0 N m as the continuous bound. :data:`TAU_RATE_MAX` keeps the commanded current from
jumping (a current step excites the gear backlash); much lower (60 N m/s) and a stiff joint
spring (50 N m/rad) limit-cycles against it in simulation. Each joint carries the reflected rotor
inertia of the 353.5:1 gearbox as ``armature`` plus viscous gear friction, which keeps the light
distal links stable at a 1-2 ms step under joint impedance (checked at 0.5 and 1 kHz with joint
stiffness 10 and 50 N m/rad, steps of 0.2-0.3 rad).

At ``q = 0`` the arm points straight up (every pitch axis is ``y``, so positive shoulder/elbow/
wrist pitch lean the arm toward ``+x``); :data:`HOME_Q` is a folded pose with the tool pointing
down in front of the base (:data:`TOOL_DOWN`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from robot_brain.safety.envelope import EnvelopeConfig

from .world import ArmSpec, motors_xml

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "ACTUATOR_NAMES",
    "ARM",
    "EE_SITE",
    "FT_SITE",
    "HOME_Q",
    "JOINT_NAMES",
    "Q_MAX",
    "Q_MIN",
    "TAU_MAX",
    "TAU_RATE_MAX",
    "TIMESTEP",
    "TOOL_BODY",
    "build_mjcf",
]

JOINT_NAMES: tuple[str, ...] = ("base_yaw", "shoulder_pitch", "elbow_pitch", "wrist_pitch",
                                "wrist_roll", "wrist_yaw")
ACTUATOR_NAMES: tuple[str, ...] = tuple(f"servo{i}" for i in range(1, 7))
EE_SITE = "ee"  # tool tip
FT_SITE = "ft"  # force sensor at the root of the tool
TOOL_BODY = "tool"

# One row per joint: (joint axis in its body frame, body offset from the parent [m], link mass [kg],
# segment to the next joint or the tool tip [m] in this body's frame, capsule radius [m]).
_LINKS: tuple[tuple[str, tuple[float, float, float], float, tuple[float, float, float], float], ...] = (
    ("0 0 1", (0.0, 0.0, 0.05), 0.15, (0.0, 0.0, 0.045), 0.025),  # base yaw: turret
    ("0 1 0", (0.0, 0.0, 0.045), 0.20, (0.0, 0.0, 0.11), 0.02),  # shoulder pitch: upper arm
    ("0 1 0", (0.0, 0.0, 0.11), 0.15, (0.0, 0.0, 0.11), 0.018),  # elbow pitch: forearm
    ("0 1 0", (0.0, 0.0, 0.11), 0.10, (0.0, 0.0, 0.04), 0.016),  # wrist pitch
    ("0 0 1", (0.0, 0.0, 0.04), 0.08, (0.0, 0.0, 0.03), 0.015),  # wrist roll
    ("1 0 0", (0.0, 0.0, 0.03), 0.06, (0.0, 0.0, 0.06), 0.012),  # wrist yaw: tool to the tip
)
BASE_MASS = 0.3  # kg, fixed base with the first servo

Q_MIN = np.array([-2.8, -1.9, -2.6, -1.9, -2.8, -1.6])
Q_MAX = np.array([2.8, 1.9, 2.6, 1.9, 2.8, 1.6])
DQ_MAX = np.full(6, 4.8)  # rad/s, XM430-W350 no-load speed (46 rpm at 12 V)
TAU_MAX = np.full(6, 3.0)  # N m, continuous bound (stall ~4.1 N m at 12 V)
TAU_RATE_MAX = 200.0  # N m / s: full torque in 15 ms, 0.2-0.4 N m per tick at 1 kHz-500 Hz
# The tool points down after 180 deg about y: the pitch joints alone get there (about x, as the
# Panda's, would need the wrist roll at 180 deg, past its 160 deg range).
TOOL_DOWN = (0.0, 0.0, 1.0, 0.0)
HOME_Q = np.array([0.0, 0.28, 1.21, 1.65, 0.0, 0.0])  # tool tip at about (0.14, 0, 0.08) m, pointing down

# Reflected rotor inertia of the gearbox [kg m^2] and viscous gear friction [N m s/rad].
ARMATURE = 0.005
JOINT_DAMPING = 0.1
TIMESTEP = 0.002  # s, physics step = one control tick at 500 Hz (stable at 1 ms too)


def _fmt(v: ArrayLike) -> str:
    return " ".join(f"{x:.6g}" for x in np.atleast_1d(v))


def _link_xml(i: int, inner: str) -> str:
    """Body ``link{i}`` (1-based) with its hinge, segment geom and mass, wrapping ``inner``."""
    axis, pos, mass, seg, radius = _LINKS[i - 1]
    name = JOINT_NAMES[i - 1]
    return (
        f'<body name="link{i}" pos="{_fmt(pos)}">'
        f'<joint name="{name}" axis="{axis}" range="{Q_MIN[i - 1]:.4f} {Q_MAX[i - 1]:.4f}"/>'
        f'<geom name="link{i}_seg" type="capsule" size="{radius:.3f}" fromto="0 0 0 {_fmt(seg)}" '
        f'mass="{mass:.4f}" rgba="0.2 0.2 0.22 1"/>'
        f"{inner}</body>"
    )


def build_mjcf(world_xml: str = "", assets_xml: str = "", name: str = "servo_arm") -> str:
    """Return the MJCF of the arm mounted at the origin, plus ``world_xml`` in the worldbody.

    :param world_xml: bodies and geoms of a task world.
    :param assets_xml: extra ``<asset>`` children.
    :param name: model name.
    """
    tip = _LINKS[-1][3]
    # The tool: a small ball at the tip, the only part of the arm that touches the world, with a
    # force sensor at its root (the sensor makes MuJoCo compute the tool's contact wrench).
    inner = (f'<body name="{TOOL_BODY}" pos="{_fmt(tip)}">'
             f'<site name="{FT_SITE}" size="0.004"/>'
             f'<geom name="tip" type="sphere" size="0.015" mass="0.005" rgba="0.9 0.5 0.1 1" '
             f'contype="1" conaffinity="1" condim="3" friction="0.3 0.005 0.0001"/>'
             f'<site name="{EE_SITE}" size="0.005" rgba="1 0 0 1"/></body>')
    for i in range(len(JOINT_NAMES), 0, -1):
        inner = _link_xml(i, inner)
    actuators = motors_xml(ACTUATOR_NAMES, JOINT_NAMES, TAU_MAX)
    return f"""<mujoco model="{name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast"/>
  <default>
    <joint type="hinge" armature="{ARMATURE}" damping="{JOINT_DAMPING}" limited="true"/>
    <geom contype="0" conaffinity="0"/>
  </default>
  <asset>{assets_xml}</asset>
  <worldbody>
    <light name="key" pos="0.3 -0.5 1.2" dir="-0.2 0.4 -1" directional="true"/>
    <geom name="floor" type="plane" size="1 1 0.05" rgba="0.3 0.35 0.4 1"/>
    <body name="link0">
      <geom name="link0_base" type="cylinder" fromto="0 0 0 0 0 0.05" size="0.04"
            mass="{BASE_MASS}" rgba="0.2 0.2 0.22 1"/>
      {inner}
    </body>
    {world_xml}
  </worldbody>
  <actuator>{actuators}</actuator>
  <sensor><force name="ft_force" site="{FT_SITE}"/><torque name="ft_torque" site="{FT_SITE}"/></sensor>
</mujoco>"""


ARM = ArmSpec("servo_arm", build_mjcf, JOINT_NAMES, HOME_Q, Q_MIN, Q_MAX, TAU_MAX, TAU_RATE_MAX,
              TIMESTEP, ee_site=EE_SITE, tool_body=TOOL_BODY, tool_down=TOOL_DOWN,
              workspace=((0.03, -0.25, 0.01), (0.3, 0.25, 0.35)),
              # A 3 N m servo at a 0.1-0.25 m lever: about 15 N at the tip at full torque, so the
              # Panda's ceilings (60 N spring force, a 1000 N/m brake) are scaled down.
              envelope=EnvelopeConfig(max_stiffness=500.0, max_rot_stiffness=10.0,
                                      max_joint_stiffness=30.0, max_lead=0.03, max_spring_energy=0.1,
                                      max_spring_force=10.0, max_speed=0.5, brake_stiffness=200.0,
                                      brake_rot_stiffness=2.0, max_contact_force=10.0))

