"""Constants and MJCF pieces shared by the task worlds (the table the arm works on) and the arms."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from robot_brain.safety.envelope import EnvelopeConfig

__all__ = ["TABLE_TOP", "ArmSpec", "motors_xml", "table_xml"]

TABLE_TOP = 0.25  # m, height of the table surface in every task world
_TABLE = {"x": 0.5, "y": 0.0, "half_x": 0.3, "half_y": 0.4, "rgba": "0.55 0.42 0.3 1"}


def table_xml(*, thickness: float | None = None, attrs: str = "") -> str:
    """The table geom (named ``table``, colliding with the peg), its top at ``TABLE_TOP``.

    :param thickness: slab thickness [m]; ``None``: a block down to the floor.
    :param attrs: extra geom attributes (e.g. ``' friction="0.2 0.005 0.0001"'``).
    """
    half = TABLE_TOP / 2 if thickness is None else thickness / 2
    t = _TABLE
    return (f'<geom name="table" type="box" pos="{t["x"]:g} {t["y"]:g} {TABLE_TOP - half:g}" '
            f'size="{t["half_x"]:g} {t["half_y"]:g} {half:g}" rgba="{t["rgba"]}" contype="1" '
            f'conaffinity="1"{attrs}/>')


def motors_xml(actuators: Sequence[str], joints: Sequence[str], tau_max: Iterable[float]) -> str:
    """One torque motor per joint, its control range the joint's torque limit [N m]."""
    return "".join(
        f'<motor name="{act}" joint="{jn}" ctrlrange="{-t:g} {t:g}" ctrllimited="true"/>'
        for act, jn, t in zip(actuators, joints, tau_max, strict=True)
    )


@dataclass(frozen=True, eq=False)
class ArmSpec:
    """What a task needs to know of the arm it runs on (one per arm module: ``panda.ARM``,
    ``servo_arm.ARM``): the model builder, joint names and limits, the home pose, the sites.

    :param name: short name (``panda``, ``servo_arm``); robot configs name their arm by it.
    :param build_mjcf: ``build_mjcf(world_xml, name=...)`` -> MJCF of the arm plus a task world.
    :param timestep: physics step of the model [s]; a control period is a whole number of them.
    :param tool_body: body whose contact wrench is the tool's (a force sensor sits on it).
    :param tool_down: orientation (w, x, y, z) in which the tool points straight down, the one
        the tasks hold; it must lie inside the wrist's joint ranges.
    :param workspace: lower and upper corner of the box the hard-limit reflex keeps the tool's
        setpoint in [m] (world frame).
    :param envelope: the safety envelope's bounds scaled to this arm (stiffness, spring force,
        speed), the default of every task on it and of a robot config naming it.
    """

    name: str
    build_mjcf: Callable[..., str]
    joint_names: tuple[str, ...]
    home_q: np.ndarray
    q_min: np.ndarray
    q_max: np.ndarray
    tau_max: np.ndarray
    tau_rate_max: float
    timestep: float
    ee_site: str = "ee"
    tool_body: str = "tool"
    tool_down: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 0.0)  # 180 deg about x
    workspace: tuple[tuple[float, float, float], tuple[float, float, float]] = (
        (0.15, -0.5, 0.05), (0.85, 0.5, 0.9))
    envelope: EnvelopeConfig = field(default_factory=EnvelopeConfig)

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)
