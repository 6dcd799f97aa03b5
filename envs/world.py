"""Constants and MJCF pieces shared by the task worlds (the table the arm works on) and the arms."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["TABLE_TOP", "motors_xml", "table_xml"]

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
