"""How far friction tilts the wall normal the critic's recovery retreats along, on the maze.

A wrist force sensor measures the normal force plus Coulomb friction; on a contact that slides
or is about to, the friction is ``mu`` times the normal force, so the measured direction leans
``atan(mu)`` away from the true normal, against the tangential pull. The contact memory
(:class:`robot_brain.safety.ContactMemory`) keeps that direction as the remembered wall
normal, and the retreat moves the setpoint along it: on a tilted normal part of the move runs
backwards along the wall. The maze's walls are axis-aligned boxes, so the true normal of a face
is the nearest horizontal axis; this diagnostic reports the tilt of

- the measured force direction, on every tick in contact (above ``CONTACT_FORCE``), and
- the remembered wall normal, on every tick the critic holds its recovery with a remembered
  wall, and
- the direction its retreat and brace use on those ticks and on those it holds with a contact
  force (:func:`robot_brain.safety.retreat.retreat_direction`: the friction tilt taken out once
  the tool has slid ``slide_baseline`` along the face),

for the scripted policy under limits + the shipped maze critic, against ``atan`` of the wall
friction. Tilts near a wall's end include the corner's genuinely diagonal normals.

``python -m robot_brain.critic_training.wall_normals [--family walls] [--seeds 0 1 2] [--episodes 20]
[--recoveries retreat,brace]`` (default: the recoveries the critic file offers)
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from robot_brain.critic_training.rate_ablation import FAMILIES, MAZE_CRITIC, check_blocks
from robot_brain.envs import make
from robot_brain.envs.maze import WALL_FRICTION
from robot_brain.policies import make_policy
from robot_brain.rollout import run_episode
from robot_brain.safety import CriticReflex, LimitsReflex, load_critic
from robot_brain.safety.critic import CriticFileError, parse_recoveries
from robot_brain.safety.features import CONTACT_FORCE
from robot_brain.safety.retreat import retreat_direction

__all__ = ["axis_tilt_deg", "main", "measure"]

#: Short names for the rate ablation's families (``--family``).
FAMILY_NAMES = dict(zip(("benchmark", "strong", "walls-pushes", "walls"), FAMILIES, strict=True))


def axis_tilt_deg(direction: Sequence[float] | np.ndarray) -> float:
    """Angle [deg] between a horizontal direction and the nearest of the x and y axes
    (0 for an axis-aligned face's normal, 45 for a diagonal); NaN for a zero vector."""
    x, y = abs(float(direction[0])), abs(float(direction[1]))
    if x == 0.0 and y == 0.0:
        return float("nan")
    return math.degrees(math.atan2(min(x, y), max(x, y)))


def measure(family: str = "walls", seeds: Sequence[int] = (0, 1, 2), episodes: int = 20,
            recoveries: Sequence[str] | None = None) -> dict[str, Any]:
    """Tilts of the measured contact force and of the remembered wall normal the critic's
    recovery uses, over the rate ablation's episodes (episode i of seed s: seed 1000 s + i),
    with the critic offering ``recoveries`` (default: its file's)."""
    if family not in FAMILY_NAMES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILY_NAMES)}")
    env = make("maze", disturbances=FAMILIES[FAMILY_NAMES[family]])
    task: Any = env.unwrapped
    contact: list[float] = []
    remembered: list[float] = []
    retreat: list[float] = []
    try:
        reflex = CriticReflex(load_critic(MAZE_CRITIC), LimitsReflex(task.limits), recoveries=recoveries)
        wall_recency = reflex.retreat.wall_recency
        check = reflex.check

        def observed(tick: int, state: Any, setpoint: Any, log: Any) -> Any:
            out = check(tick, state, setpoint, log)
            f = state.wrench[:3]
            if float(np.linalg.norm(f)) > CONTACT_FORCE:
                contact.append(axis_tilt_deg(f))
            mem = reflex.memory.state
            if reflex.engaged and mem[9] >= wall_recency:
                remembered.append(axis_tilt_deg(mem[6:9]))
            if reflex.engaged:
                n, case = retreat_direction(state, setpoint, reflex.retreat, reflex.mask, mem)
                if case < 2:  # along a contact force or a remembered wall
                    retreat.append(axis_tilt_deg(n))
            return out

        reflex.check = observed  # type: ignore[method-assign]  # an observer, for this run only
        task.set_shield(reflex)
        policy = make_policy("scripted", env)
        for s in seeds:
            for i in range(episodes):
                run_episode(env, policy, 1000 * s + i)
    finally:
        env.close()

    def summary(tilts: list[float]) -> dict[str, float]:
        a = np.asarray([t for t in tilts if t == t])
        if a.size == 0:
            return {"ticks": 0}
        p = np.percentile(a, [25, 50, 75, 90])
        return {"ticks": int(a.size), "p25": float(p[0]), "median": float(p[1]), "p75": float(p[2]),
                "p90": float(p[3]), "share_over_4deg": float((a > 4.0).mean())}

    return {"family": FAMILY_NAMES[family], "friction_angle_deg": math.degrees(math.atan(WALL_FRICTION)),
            "contact_force": summary(contact), "remembered_normal_engaged": summary(remembered),
            "retreat_direction_engaged": summary(retreat)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m robot_brain.critic_training.wall_normals",
                                description="Friction tilt of the critic's remembered wall normal "
                                            "on the maze (module docstring).")
    p.add_argument("--family", default="walls", choices=list(FAMILY_NAMES),
                   help="disturbance family of the rate ablation (default: walls, up to 4 cm, no pushes)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seed blocks (default: 0 1 2)")
    p.add_argument("--episodes", type=int, default=20, help="episodes per seed block")
    p.add_argument("--recoveries", default=None, metavar="NAMES",
                   help="the recoveries the critic offers, comma-separated (default: its file's)")
    a = p.parse_args(argv)
    check_blocks(p, a.seeds, a.episodes)
    try:
        recoveries = None if a.recoveries is None else parse_recoveries(a.recoveries)
    except CriticFileError as exc:
        p.error(str(exc))
    r = measure(a.family, a.seeds, a.episodes, recoveries)
    print(f"{r['family']}: wall friction angle atan({WALL_FRICTION:g}) = {r['friction_angle_deg']:.1f} deg")
    for key, label in (("contact_force", "measured contact force, ticks in contact"),
                       ("remembered_normal_engaged", "remembered wall normal, critic engaged"),
                       ("retreat_direction_engaged", "retreat direction at a contact or wall, engaged")):
        s = r[key]
        if not s["ticks"]:
            print(f"  {label}: no ticks")
            continue
        print(f"  {label}: {s['ticks']} ticks, tilt from the wall's axis p25/median/p75/p90 "
              f"{s['p25']:.1f} / {s['median']:.1f} / {s['p75']:.1f} / {s['p90']:.1f} deg, "
              f"{s['share_over_4deg']:.0%} over 4 deg")
    return r


if __name__ == "__main__":
    main()
