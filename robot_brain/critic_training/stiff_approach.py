"""Which recovery lets a stiff approach through: a greedy policy inserting the peg.

A converged SAC policy on ``peg-insertion`` tends to saturate its actions: full steps toward the
hole, high stiffness. This benchmark imitates that with a greedy policy (straight to the hole at
``gain`` times the distance per step, clipped to a full step, just above the block until it is
over the hole, then straight down, stiffness action ``k`` on every axis) and runs it under the
hard limits and under the shipped peg critic offering different recoveries
(:data:`robot_brain.safety.recovery.CANDIDATES`): successes, violating steps and the steps in
which the shield changed the setpoint. A critic whose recovery stops or backs off a stiff
approach stalls the policy above the block; one that softens lets it insert.

``python -m robot_brain.critic_training.stiff_approach [OUT.json] [--episodes 10]``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_brain.envs import make
from robot_brain.fileio import atomic_write_json
from robot_brain.safety import CriticReflex, LimitsReflex, load_critic

__all__ = ["OFFERS", "POLICIES", "greedy_action", "main", "run"]

PEG_CRITIC = Path(__file__).resolve().parents[1] / "critics" / "peg-insertion"
#: Shield label -> recoveries offered by the critic (``None``: the limits alone).
OFFERS: dict[str, tuple[str, ...] | None] = {
    "limits": None,
    "critic: retreat, brace": ("retreat", "brace"),
    "critic: retreat": ("retreat",),
    "critic: retreat, soften": ("retreat", "soften"),
    "critic: retreat, brace, soften": ("retreat", "brace", "soften"),
}
#: (stiffness action on every axis, gain on the distance) of the greedy policy.
POLICIES: tuple[tuple[float, float], ...] = ((1.0, 3.0), (1.0, 1.0), (0.5, 2.0))
SEED0 = 2000  # episode i is seeded SEED0 + i


def greedy_action(env: Any, k: float, gain: float) -> np.ndarray:
    """Straight to the hole: just above the block until within 2 mm of its axis, then down."""
    d = env.hole_top - env.state.ee_pos
    d[2] = max(d[2], 0.005) if np.linalg.norm(d[:2]) > 0.002 else -0.03
    a = np.full(6, k, dtype=np.float32)
    a[:3] = np.clip(d / env.config.max_step * gain, -1.0, 1.0)
    return a


def run(episodes: int = 10) -> list[dict[str, Any]]:
    model = load_critic(PEG_CRITIC)
    rows = []
    env = make("peg-insertion")
    task: Any = env.unwrapped  # the peg-insertion task (PegInsertionEnv)
    try:
        for k, gain in POLICIES:
            for label, offer in OFFERS.items():
                success = violations = overridden = steps = 0
                for i in range(episodes):
                    task.set_shield("limits" if offer is None else
                                    CriticReflex(model, LimitsReflex(task.limits), recoveries=offer))
                    env.reset(seed=SEED0 + i)
                    done = False
                    while not done:
                        _, _, term, trunc, info = env.step(greedy_action(task, k, gain))
                        violations += info["cost"] > 0
                        overridden += info["overridden_ticks"] > 0
                        steps += 1
                        done = term or trunc
                    success += bool(info["is_success"])
                rows.append({"k": k, "gain": gain, "shield": label, "episodes": episodes,
                             "success": success, "violating_steps": int(violations),
                             "overridden_steps": int(overridden), "steps": steps})
                print(f"k={k:g} gain={gain:g}  {label:32s} inserted {success}/{episodes}, "
                      f"violating steps {violations}, overridden {overridden}/{steps}", flush=True)
    finally:
        env.close()
    return rows


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(prog="python -m robot_brain.critic_training.stiff_approach",
                                description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", type=Path, default=None, help="write the rows to this JSON file")
    p.add_argument("--episodes", type=int, default=10, help="episodes per row (default: 10)")
    a = p.parse_args(argv)
    if a.episodes < 1:
        p.error(f"--episodes must be at least 1, got {a.episodes}")
    rows = run(a.episodes)
    if a.out is not None:
        atomic_write_json(a.out, {"critic": str(PEG_CRITIC), "seed0": SEED0, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
