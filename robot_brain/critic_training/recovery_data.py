"""The hazard-fitted recovery's critic: trained on data that shows what each recovery leads to.

``robot-brain train-critic`` records episodes with the reflex off: its critic knows what the
task's own setpoints lead to, but it has never seen a brace or a retreat executed, so it cannot
tell which of them a hazard calls for. This module adds Recovery RL's second round of data:

1. collect ``episodes`` episodes with the reflex off and train a first critic on them (what
   ``train-critic`` does);
2. collect ``explore_episodes`` more with that critic in the loop over the hard limits, as an
   :class:`ExploringRecovery`: whenever it engages it executes a recovery candidate drawn at
   random (retreat-and-soften or brace) until it releases;
3. train the critic (and the recovery policy) again on both sets together.

The data is recorded under one disturbance family (default: ``Disturbances.default()``, the
maze benchmark's own); the families the rate ablation also runs (stronger pushes, larger wall
shifts) stay unseen. Collection seeds stay clear of the evaluation seeds.

``python -m robot_brain.critic_training.recovery_data OUT_DIR [--seed S]`` writes a critic
directory like ``train-critic`` does (the shipped ``robot_brain/critics/maze`` is made so).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from robot_brain.envs import Disturbances, make
from robot_brain.fileio import atomic_write_json
from robot_brain.safety import LimitsReflex

from .dataset import ExploringRecovery, TransitionData, collect

__all__ = ["COLLECT_SEED", "EXPLORE_SEED", "main", "train_recovery_critic"]

COLLECT_SEED = 100_000  # seeds of the reflex-off episodes (as ``train-critic``)
EXPLORE_SEED = 200_000  # seeds of the exploring episodes


def _train(data: TransitionData, seed: int, steps: int, recovery_steps: int,
           axes: tuple[int, ...], test_fraction: float = 0.25) -> tuple[Any, dict[str, Any]]:
    from .learning import CriticConfig, CriticTrainer, evaluate_critic

    train, test = data.split(test_fraction, seed=seed)
    cfg = CriticConfig(critic_dt=float(data.meta.get("critic_dt", 0.01)))
    trainer = CriticTrainer(cfg, seed=seed, axes=axes,
                            meta={**data.meta, "episodes": data.n_episodes})
    trainer.set_normalisation(train)
    trainer.add(train)
    test_metrics = trainer.fit(steps, eval_data=test, eval_every=max(steps // 5, 1))
    if recovery_steps > 0:
        trainer.train_recovery(recovery_steps, data=train)
    train_metrics = evaluate_critic(trainer.predict(train.features), train, cfg.gamma_risk)
    metrics = {"auc": test_metrics.get("auc"), "auc_future": test_metrics.get("auc_future"),
               "brier": test_metrics.get("brier"), "train_auc": train_metrics["auc"],
               "transitions": len(data), "test_violations": int(test.cost.sum())}
    trainer.metrics = metrics
    return trainer, metrics


def train_recovery_critic(out: str | Path, *, task: str = "maze", seed: int = 0, episodes: int = 60,
                          explore_episodes: int = 60, steps: int = 5000,
                          recovery_steps: int = 1500, disturbances: Disturbances | None = None,
                          progress: bool = True) -> dict[str, Any]:
    """Collect, train, explore, train again (module docstring); writes the critic into ``out``
    (``critic.json``/``critic.npz``/``critic.pt``, ``transitions.npz``, ``metrics.json``) and
    returns the metrics."""
    import torch

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    dist = disturbances if disturbances is not None else Disturbances.default()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    env = make(task)
    try:
        base: Any = env.unwrapped
        limits = base.limits
        axes = tuple("xyz".index(a) for a in base.action_axes)
    finally:
        env.close()
    plain = collect(task, episodes, disturbances=dist, seed=COLLECT_SEED + seed, progress=progress)
    first, first_metrics = _train(plain, seed, steps, 0, axes)
    explorer = ExploringRecovery(first.export(), LimitsReflex(limits), seed=seed)
    explored = collect(task, explore_episodes, policies=("scripted", "perturbed"), disturbances=dist,
                       seed=EXPLORE_SEED + seed, progress=progress, shield=explorer)
    data = TransitionData.concatenate([plain, explored])
    data.meta["reflex"] = "none + exploring recovery (retreat, brace)"
    data.save(out / "transitions.npz")
    trainer, metrics = _train(data, seed, steps, recovery_steps, axes)
    trainer.meta.update({"task": task, "explore_episodes": explore_episodes,
                         "disturbances": {"push_rate": dist.push_rate,
                                          "push_force": list(dist.push_force),
                                          "push_duration": list(dist.push_duration),
                                          "wall_shift": dist.wall_shift}})
    trainer.save(out)
    result = {"task": task, "seed": seed, "episodes": episodes, "explore_episodes": explore_episodes,
              "transitions": len(data), "violations": int(data.cost.sum()),
              "explore_violation_rate": explored.violation_rate, "first": first_metrics,
              **metrics, "wall_time_s": time.perf_counter() - t0}
    atomic_write_json(out / "metrics.json", result)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m robot_brain.critic_training.recovery_data",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="critic directory to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=60, help="reflex-off episodes")
    p.add_argument("--explore-episodes", type=int, default=60, help="exploring episodes")
    p.add_argument("--steps", type=int, default=5000, help="critic gradient steps (each round)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    res = train_recovery_critic(a.out, seed=a.seed, episodes=a.episodes,
                                explore_episodes=a.explore_episodes, steps=a.steps,
                                progress=not a.quiet)
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()
           if not isinstance(v, dict)})
    return res


if __name__ == "__main__":
    main()
