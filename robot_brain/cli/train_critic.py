"""``robot-brain train-critic TASK --out DIR``: collect transitions, train the safety critic (and
its recovery policy), report held-out calibration and write the critic directory."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from ._common import CliError, nonneg_int, positive_int

NAME = "train-critic"
HELP = "train the learned safety critic (risk Q-function) of a task"
DESCRIPTION = """Collect transitions of TASK with the reflex off and disturbances on (random,
scripted and perturbed-scripted behaviour, so the data holds violations), train the risk critic
Q_risk(s, a_hat) (twin MLPs, Recovery-RL target) and its recovery policy, report the held-out
ROC AUC (violating intervals ranked above safe ones) and calibration, and write into DIR:
critic.json + critic.npz (the run-time critic, for --shield DIR), critic.pt (torch state),
transitions.npz (the offline data, reusable with --data), metrics.json and training.png.

examples:
  robot-brain train-critic maze --out runs/maze/critic
  robot-brain train-critic maze --out runs/maze/critic --episodes 80 --steps 6000 --seed 1
  robot-brain sim maze --disturb --shield runs/maze/critic
"""

COLLECT_SEED_OFFSET = 100_000  # collection seeds stay clear of the evaluation seeds (0, 1, ...)


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return v


def _recoveries(text: str) -> tuple[str, ...]:
    from robot_brain.safety.critic import CriticFileError, parse_recoveries

    try:  # the same check as a critic file's
        return parse_recoveries(text)
    except CriticFileError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _wall_retreat(text: str) -> float:
    from robot_brain.safety import RetreatConfig

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a distance in metres, got {text!r}") from None
    try:  # the same check as a critic file's
        return RetreatConfig(wall_retreat=v).wall_retreat
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: The primitives a critic offers by default: the brace answers pushes, and wall-soften the
#: arm's own press on a wall it just touched (where a retreat along the friction-tilted normal
#: drags the tool back: the maze, docs/benchmarks.md); without pushes the hazards are the arm's
#: own approaches, and softening lets a stiff approach go on with a bounded force where
#: stopping or backing off stalls the task (peg-insertion, docs/benchmarks.md).
RECOVERIES_BY_DATA = {True: ("retreat", "brace", "wall-soften"), False: ("retreat", "soften")}
#: How far the reflex retreats from the arm's own doing, its press on a wall or its approach of
#: one [m] (``RetreatConfig.wall_retreat``): under pushes 3 mm, so the next command's ramp does
#: not throw the tool back across a gap into a wall the task must get past (the maze); without, the
#: retreat's centimetre (a peg that must touch its block is better clear of it). Both measured
#: in docs/benchmarks.md.
WALL_RETREAT_BY_DATA = {True: 0.003, False: 0.01}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", metavar="TASK", help="task name or Gymnasium id, e.g. maze")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output directory (created; existing critic files are replaced)")
    p.add_argument("--episodes", type=positive_int, default=60, metavar="N",
                   help="episodes to collect (default: 60; ignored with --data)")
    p.add_argument("--seed", type=nonneg_int, default=0, metavar="S",
                   help="seed of data collection, the split and training (default: 0)")
    p.add_argument("--steps", type=positive_int, default=5000, metavar="N",
                   help="critic gradient steps (default: 5000)")
    p.add_argument("--recovery-steps", type=nonneg_int, default=1500, metavar="N",
                   help="recovery-policy gradient steps; 0 = no learned recovery (default: 1500)")
    p.add_argument("--eps-safe", type=_fraction, default=None, metavar="EPS",
                   help="risk threshold stored with the critic (default: 0.15)")
    p.add_argument("--gamma", type=_fraction, default=None, metavar="G",
                   help="discount per critic interval (10 ms) (default: 0.9)")
    p.add_argument("--test-fraction", type=_fraction, default=0.25, metavar="F",
                   help="share of episodes held out for the AUC/calibration (default: 0.25)")
    p.add_argument("--no-disturb", dest="disturb", action="store_false",
                   help="collect without pushes or shifted walls, so the violations come from the "
                        "behaviour alone (as in training, where the tasks run undisturbed by default)")
    p.add_argument("--recoveries", type=_recoveries, default=None, metavar="NAMES",
                   help="the recovery primitives the critic's reflex may choose from, comma-separated "
                        "from retreat, brace, soften, wall-soften (retreat always included; soften and "
                        "wall-soften not both; default: retreat,brace,wall-soften under pushes, "
                        "retreat,soften with --no-disturb: without pushes the hazards are the arm's own "
                        "approaches, which softening lets go on)")
    p.add_argument("--wall-retreat", type=_wall_retreat, default=None, metavar="M",
                   help="how far the reflex retreats from the arm's own doing (its press on a wall, its "
                        "approach of one) [m, 0-0.05] (default: 0.003 under pushes, 0.01 with --no-disturb)")
    p.add_argument("--data", type=Path, default=None, metavar="FILE",
                   help="train on a transitions .npz written earlier instead of collecting")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _check_out(out: Path) -> None:
    from robot_brain.fileio import make_dir

    if (why := make_dir(out)) is not None:
        raise CliError(f"argument --out: {why}")


def _plot(path: Path, trainer: Any, test_metrics: dict[str, Any], title: str) -> None:
    import matplotlib

    from robot_brain.fileio import atomic_savefig

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = trainer.history
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    ax[0].plot(h.step, h.loss, lw=1)
    ax[0].set(xlabel="gradient step", ylabel="TD loss (BCE, both heads)", title="critic loss")
    ax[0].grid(alpha=0.3)
    ax[1].plot(h.eval_step, h.auc, "o-", label="ROC AUC (violation in interval)")
    ax[1].plot(h.eval_step, h.brier, "s-", label="Brier vs empirical risk")
    ax[1].set(xlabel="gradient step", ylim=(0, 1.02), title="held-out metrics")
    ax[1].legend(fontsize=8)
    ax[1].grid(alpha=0.3)
    cal = test_metrics.get("calibration", [])
    if cal:
        pred = [b["predicted"] for b in cal]
        emp = [b["empirical"] for b in cal]
        sizes = [max(10.0, 200.0 * b["n"] / max(1, test_metrics["n"])) for b in cal]
        ax[2].plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect")
        ax[2].scatter(pred, emp, s=sizes, label="bins (size ~ count)")
    ax[2].set(xlabel="predicted risk", ylabel="empirical discounted risk", xlim=(0, 1),
              ylim=(0, 1), title="calibration (held-out)")
    ax[2].legend(fontsize=8, loc="upper left")
    ax[2].grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from robot_brain.critic_training import DatasetFileError, TransitionData, collect
    from robot_brain.critic_training.learning import CriticConfig, CriticTrainer, evaluate_critic
    from robot_brain.envs import Disturbances
    from robot_brain.fileio import atomic_write_json

    from ._common import console
    from .sim import resolve

    spec = resolve(args.task)
    _check_out(args.out)
    con = console()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    t0 = time.perf_counter()

    # 1. data --------------------------------------------------------------------------------------
    if args.data is not None:
        try:
            data = TransitionData.load(args.data)
        except DatasetFileError as exc:
            raise CliError(f"argument --data: {exc}") from None
        if data.meta.get("task") not in (spec.name, ""):
            raise CliError(f"argument --data: {args.data} holds transitions of task "
                           f"{data.meta.get('task')!r}, not {spec.name!r}")
    else:
        data = collect(spec.name, args.episodes,
                       disturbances=Disturbances.default() if args.disturb else Disturbances(),
                       seed=COLLECT_SEED_OFFSET + args.seed, progress=not args.quiet)
        data.save(args.out / "transitions.npz")
    if len(data) == 0 or data.cost.sum() == 0:
        raise CliError(f"the data of {spec.name!r} holds no violations ({len(data)} transitions): "
                       f"nothing to learn; collect more episodes (--episodes)", code=1)
    if data.n_episodes < 2:
        raise CliError("need at least 2 episodes (one is held out for the AUC); raise --episodes")
    train, test = data.split(args.test_fraction, seed=args.seed)

    # 2. critic ------------------------------------------------------------------------------------
    overrides = {}
    if args.eps_safe is not None:
        overrides["eps_safe"] = args.eps_safe
    if args.gamma is not None:
        overrides["gamma_risk"] = args.gamma
    cfg = CriticConfig(critic_dt=float(data.meta.get("critic_dt", 0.01)), **overrides)
    axes = tuple("xyz".index(a) for a in spec.env_class.action_axes)  # recovery moves the same
    recoveries = args.recoveries or RECOVERIES_BY_DATA[bool(args.disturb)]
    wall_retreat = (WALL_RETREAT_BY_DATA[bool(args.disturb)] if args.wall_retreat is None
                    else args.wall_retreat)
    trainer = CriticTrainer(cfg, seed=args.seed, axes=axes,
                            meta={**data.meta, "task": spec.name, "episodes": data.n_episodes,
                                  "recoveries": list(recoveries), "wall_retreat": wall_retreat})
    trainer.set_normalisation(train)
    trainer.add(train)
    bar = tqdm(total=args.steps, desc="train critic", unit="step", disable=args.quiet,
               dynamic_ncols=True)

    def tick(i: int, info: dict) -> None:
        bar.update(1)
        if i % 100 == 0:
            bar.set_postfix(loss=f"{info['loss']:.4f}", auc=f"{info['auc']:.3f}")

    try:
        test_metrics = trainer.fit(args.steps, eval_data=test, eval_every=max(args.steps // 10, 1),
                                   progress=tick)
    finally:
        bar.close()
    rec_risk = float("nan")
    if args.recovery_steps > 0:
        bar = tqdm(total=args.recovery_steps, desc="train recovery", unit="step",
                   disable=args.quiet, dynamic_ncols=True)
        try:
            rec_risk = trainer.train_recovery(args.recovery_steps, data=train,
                                              progress=lambda i, info: bar.update(1))
        finally:
            bar.close()

    # 3. outputs -----------------------------------------------------------------------------------
    train_metrics = evaluate_critic(trainer.predict(train.features), train, cfg.gamma_risk)
    metrics = {
        "task": spec.name, "seed": args.seed, "transitions": len(data), "episodes": data.n_episodes,
        "violation_rate": data.violation_rate, "train_transitions": len(train),
        "test_transitions": len(test), "test_violations": int(test.cost.sum()),
        "auc": test_metrics.get("auc"), "auc_future": test_metrics.get("auc_future"),
        "brier": test_metrics.get("brier"), "train_auc": train_metrics["auc"],
        "calibration": test_metrics.get("calibration"), "eps_safe": cfg.eps_safe,
        "gamma_risk": cfg.gamma_risk, "critic_dt": cfg.critic_dt, "steps": args.steps,
        "recovery_steps": args.recovery_steps, "recovery_mean_risk": rec_risk,
        "history": {"step": trainer.history.step, "loss": trainer.history.loss,
                    "eval_step": trainer.history.eval_step, "auc": trainer.history.auc,
                    "brier": trainer.history.brier},
        "wall_time_s": time.perf_counter() - t0,
    }
    trainer.metrics = {k: metrics[k] for k in ("auc", "auc_future", "brier", "train_auc",
                                               "transitions", "test_violations")}
    trainer.save(args.out)
    atomic_write_json(args.out / "metrics.json", metrics)
    _plot(args.out / "training.png", trainer, test_metrics,
          f"{spec.name}: {len(data)} transitions ({int(data.cost.sum())} violating), "
          f"held-out AUC {metrics['auc']:.3f}")

    from rich.table import Table

    table = Table(title=f"safety critic of {spec.name}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [
        ("transitions (violating)", f"{len(data)} ({int(data.cost.sum())})"),
        ("episodes (held out)", f"{data.n_episodes} ({len(np.unique(test.episode))})"),
        ("held-out ROC AUC", _fmt(metrics["auc"])),
        ("held-out AUC, violation within 100 ms", _fmt(metrics["auc_future"])),
        ("held-out Brier (vs empirical risk)", _fmt(metrics["brier"], 4)),
        ("train ROC AUC", _fmt(metrics["train_auc"])),
        ("eps_safe / gamma_risk / critic_dt", f"{cfg.eps_safe:g} / {cfg.gamma_risk:g} / "
                                              f"{cfg.critic_dt * 1e3:g} ms"),
        ("recovery: mean risk after", _fmt(rec_risk)),
        ("recoveries on offer", ", ".join(recoveries)),
        ("retreat from the arm's own press or approach", f"{wall_retreat * 1e3:g} mm"),
        ("wall time", f"{metrics['wall_time_s']:.0f} s"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    con.print(table)
    con.print(f"critic: {args.out} (use: robot-brain sim {spec.name} --disturb --shield {args.out})")
    return 0


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"
