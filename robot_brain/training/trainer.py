"""Train a task with Stable-Baselines3: progress, metrics, checkpoints, evaluation, resume.

:func:`train` runs one training run in a run directory (see :mod:`robot_brain.training.run`).
A :class:`TrainingMonitor` callback follows every environment step and

- keeps per-episode return, success and cost (violating steps) and the cumulative violations
  during training, logs them to TensorBoard (``rollout/success_rate``, ``safety/ep_cost``,
  ``safety/cumulative_violations``) and shows them on a progress bar;
- saves a checkpoint every ``save_freq`` steps (with the replay buffer for SAC/TD3) and
  ``metrics.json`` with it, so a crash loses at most the steps since the last checkpoint;
- evaluates the deterministic policy every ``eval_freq`` steps and keeps the best model.

Ctrl-C stops training cleanly: a checkpoint of the current step is saved before returning.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from robot_brain.fileio import atomic_write_json
from robot_brain.rollout import run_episode

from .algos import build_model
from .checkpoint import Checkpoint, find_checkpoint, list_checkpoints, restore_model, save_checkpoint
from .config import OFF_POLICY
from .run import RunConfig, make_env, make_vec_env, write_run_config

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecNormalize
    from tqdm import tqdm

__all__ = ["TrainResult", "TrainingMonitor", "evaluate_model", "train"]

CURVE_EVERY = 1000  # env steps between two points of the learning curve in metrics.json
KEEP_CHECKPOINTS = 3  # periodic checkpoints kept (the replay buffer only with the last one)


def _write_json(path: Path, data: Any) -> None:
    atomic_write_json(path, data, indent=1)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class _PredictPolicy:
    """A ``predict(obs) -> action`` function as a :class:`robot_brain.policies.Policy`."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray]) -> None:
        self.act = predict

    def reset(self) -> None:
        pass


def evaluate_model(predict: Callable[[np.ndarray], np.ndarray], env: gym.Env, episodes: int,
                   seed: int) -> list[dict[str, Any]]:
    """Run ``episodes`` episodes (seeds ``seed + i``) with ``predict(obs) -> action``; returns
    their metrics records (:class:`robot_brain.rollout.EpisodeResult`)."""
    policy = _PredictPolicy(predict)
    return [run_episode(env, policy, seed + i).metrics for i in range(episodes)]


def summarize(episodes: list[dict[str, Any]]) -> dict[str, float]:
    """Success rate, mean return and mean cost (violating steps per episode) of episode records."""
    if not episodes:
        return {"episodes": 0, "success_rate": 0.0, "return_mean": 0.0, "cost_mean": 0.0}
    return {"episodes": len(episodes),
            "success_rate": float(np.mean([e["success"] for e in episodes])),
            "return_mean": float(np.mean([e["return"] for e in episodes])),
            "cost_mean": float(np.mean([e["violations"] for e in episodes]))}


@dataclass
class TrainResult:
    """Outcome of :func:`train`."""

    run_dir: Path
    status: str  # "finished" or "interrupted"
    num_timesteps: int
    checkpoint: Checkpoint
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)


class TrainingMonitor(BaseCallback):
    """Episode statistics, progress bar, periodic checkpoints and evaluations (module docstring).

    :param run_dir: the run directory. :param config: the run's configuration.
    :param metrics: the metrics record to extend (from ``metrics.json`` on resume).
    :param progress: show a tqdm progress bar (on a terminal) or print a line per checkpoint.
    :param log: where progress lines go when there is no bar.
    """

    def __init__(self, run_dir: Path, config: RunConfig, metrics: dict[str, Any], *, meta: dict[str, Any],
                 vec_normalize: VecNormalize | None = None, progress: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        super().__init__(verbose=0)
        self.run_dir = run_dir
        self.config = config
        self.hp = config.hyperparams
        self.metrics = metrics
        self.meta = meta
        self.vec_normalize = vec_normalize
        self.show_progress = progress
        self.log = log or (lambda s: print(s, file=sys.stderr))
        self._bar: tqdm | None = None
        self._ep_ret: np.ndarray | None = None
        self._ep_cost: np.ndarray | None = None
        self._ep_len: np.ndarray | None = None
        self.recent: deque = deque(maxlen=50)
        self.cum_violations = int(metrics.get("cumulative_violations", 0))
        self._next_save: float = 0  # math.inf when saving is off
        self._next_eval: float = 0  # math.inf when evaluating is off
        self._next_curve = 0
        self._eval_env: gym.Env | None = None
        self._t0 = time.perf_counter()
        self._steps0 = 0

    # -- bookkeeping -------------------------------------------------------------------------
    def _on_training_start(self) -> None:
        n = self.training_env.num_envs
        self._ep_ret, self._ep_cost, self._ep_len = np.zeros(n), np.zeros(n), np.zeros(n, dtype=int)
        now = self.model.num_timesteps
        self._steps0 = now
        self._t0 = time.perf_counter()
        save, ev = self.hp["save_freq"], self.hp["eval_freq"]
        self._next_save = (now // save + 1) * save if save > 0 else math.inf
        self._next_eval = (now // ev + 1) * ev if ev > 0 else math.inf
        self._next_curve = (now // CURVE_EVERY + 1) * CURVE_EVERY
        if self.show_progress:
            from tqdm import tqdm

            self._bar = tqdm(total=self.hp["n_timesteps"], initial=now, unit="step", file=sys.stderr,
                             disable=None, dynamic_ncols=True,
                             desc=f"{self.config.task}/{self.config.algo}")
            if self._bar.disable:
                self._bar = None

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        dones = self.locals["dones"]
        rewards = self.locals["rewards"]
        assert self._ep_ret is not None and self._ep_cost is not None and self._ep_len is not None, \
            "_on_training_start() first"
        self._ep_ret += rewards
        self._ep_len += 1
        for i, info in enumerate(infos):
            cost = float(info.get("cost", 0.0))
            self._ep_cost[i] += cost
            self.cum_violations += int(cost > 0)
            if dones[i]:
                ep = {"step": int(self.num_timesteps), "return": float(self._ep_ret[i]),
                      "length": int(self._ep_len[i]), "success": bool(info.get("is_success", False)),
                      "cost": float(self._ep_cost[i])}
                self.metrics["episodes"].append(ep)
                self.recent.append(ep)
                self._ep_ret[i] = self._ep_cost[i] = 0.0
                self._ep_len[i] = 0
        n = self.num_timesteps
        if self._bar is not None:
            self._bar.update(n - self._bar.n)
            if self.recent and dones.any():
                self._bar.set_postfix_str(self._postfix(), refresh=False)
        if n >= self._next_curve:
            self._next_curve += CURVE_EVERY
            self._curve_point()
        return True

    def _on_rollout_end(self) -> None:
        # Evaluations and checkpoints wait for the end of the rollout: SB3 stores a step's
        # transition in the replay buffer *after* calling on_step, and PPO's rollout buffer is
        # only consistent between rollouts. (With SAC/TD3's train_freq=1 that is every step.)
        n = self.num_timesteps
        if n >= self._next_eval:
            self._next_eval = (n // self.hp["eval_freq"] + 1) * self.hp["eval_freq"]
            self.evaluate()
        if n >= self._next_save:
            self._next_save = (n // self.hp["save_freq"] + 1) * self.hp["save_freq"]
            self.save()

    def _stats(self) -> dict[str, float]:
        r = list(self.recent)
        return {"return_mean": float(np.mean([e["return"] for e in r])) if r else float("nan"),
                "success_rate": float(np.mean([e["success"] for e in r])) if r else float("nan"),
                "cost_mean": float(np.mean([e["cost"] for e in r])) if r else float("nan")}

    def _postfix(self) -> str:
        s = self._stats()
        return (f"R={s['return_mean']:.2f} succ={100 * s['success_rate']:.0f}% "
                f"cost={s['cost_mean']:.2f} viol={self.cum_violations}")

    def steps_per_second(self) -> float:
        dt = time.perf_counter() - self._t0
        return (self.num_timesteps - self._steps0) / dt if dt > 0 else 0.0

    def _curve_point(self) -> None:
        s = self._stats()
        self.metrics["curve"].append({"step": int(self.num_timesteps),
                                      **{k: _finite(v) for k, v in s.items()},
                                      "cumulative_violations": self.cum_violations,
                                      "episodes": len(self.metrics["episodes"])})
        self.metrics["cumulative_violations"] = self.cum_violations
        if self.recent:
            self.logger.record("rollout/success_rate", s["success_rate"])
            self.logger.record("safety/ep_cost", s["cost_mean"])
        self.logger.record("safety/cumulative_violations", self.cum_violations)
        self.logger.record("time/env_steps_per_second", self.steps_per_second())

    # -- evaluation and checkpoints ----------------------------------------------------------
    def _predict(self, obs: np.ndarray) -> np.ndarray:
        if self.vec_normalize is not None:
            # an array for an array (SB3 types the result as array | dict for both inputs)
            obs = cast(np.ndarray, self.vec_normalize.normalize_obs(obs))
        action, _ = self.model.predict(obs, deterministic=True)
        return action

    def evaluate(self) -> dict[str, float]:
        if self._eval_env is None:
            self._eval_env = make_env(self.config.task, self.hp["env_kwargs"], self.config.shield,
                                      monitor=False)
        episodes = evaluate_model(self._predict, self._eval_env, self.hp["eval_episodes"],
                                  seed=10_000 + self.config.seed)
        s = summarize(episodes)
        rec = {"step": int(self.num_timesteps), **s}
        self.metrics["evaluations"].append(rec)
        for k in ("success_rate", "return_mean", "cost_mean"):
            self.logger.record(f"eval/{k}", s[k])
        best = self.metrics.get("best")
        score = (s["success_rate"], s["return_mean"])
        if best is None or score > (best["success_rate"], best["return_mean"]):
            save_checkpoint(self.model, self.run_dir / "best", "best_model", self.meta, replay=False,
                            vec_normalize=self.vec_normalize)
            self.metrics["best"] = rec
        return s

    def save(self) -> Checkpoint:
        """Checkpoint of the current step, ``metrics.json``, and pruning of old checkpoints."""
        ckdir = self.run_dir / "checkpoints"
        n = int(self.num_timesteps)
        ckpt = save_checkpoint(self.model, ckdir, f"ckpt_{n}", self.meta,
                               replay=self.config.algo in OFF_POLICY, vec_normalize=self.vec_normalize)
        for old in list_checkpoints(ckdir)[:-1]:  # the replay buffer only with the newest
            rb = old.sibling("replay")
            if rb is not None:
                rb.unlink(missing_ok=True)
        for old in list_checkpoints(ckdir)[:-KEEP_CHECKPOINTS]:
            for suffix in (".json", ".zip", "_replay.npz", "_normalize.npz"):
                (ckdir / f"{old.zip_path.stem}{suffix}").unlink(missing_ok=True)
        self.write_metrics()
        if self._bar is None and self.show_progress:
            s = self._stats()
            ev = self.metrics["evaluations"][-1] if self.metrics["evaluations"] else None
            self.log(f"step {n}/{self.hp['n_timesteps']}: return {s['return_mean']:.2f}, success "
                     f"{100 * s['success_rate']:.0f} %, cost/episode {s['cost_mean']:.2f}, violations "
                     f"{self.cum_violations}"
                     + (f", eval success {100 * ev['success_rate']:.0f} %" if ev else "")
                     + f" ({self.steps_per_second():.0f} steps/s)")
        return ckpt

    def write_metrics(self) -> None:
        m = self.metrics
        m["num_timesteps"] = int(self.num_timesteps)
        m["cumulative_violations"] = self.cum_violations
        m["steps_per_second"] = self.steps_per_second()
        _write_json(self.run_dir / "metrics.json", m)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._eval_env is not None:
            self._eval_env.close()
            self._eval_env = None


def _new_metrics(config: RunConfig) -> dict[str, Any]:
    return {"task": config.task, "algo": config.algo, "seed": config.seed, "shield": config.shield,
            "status": "running", "num_timesteps": 0, "cumulative_violations": 0, "steps_per_second": 0.0,
            "curve": [], "episodes": [], "evaluations": [], "best": None, "final_evaluation": None}


def _resumed_metrics(run_dir: Path, config: RunConfig, steps: int) -> dict[str, Any]:
    """``metrics.json`` cut back to the checkpoint's step (what came after it is redone)."""
    path = run_dir / "metrics.json"
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return _new_metrics(config)
    for key in ("curve", "episodes", "evaluations"):
        m[key] = [r for r in m.get(key, []) if r["step"] <= steps]
    m["cumulative_violations"] = m["curve"][-1]["cumulative_violations"] if m["curve"] else 0
    m["status"] = "running"
    m["final_evaluation"] = None
    return m


def train(config: RunConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True,
          log: Callable[[str], None] | None = None, torch_threads: int | None = 1) -> TrainResult:
    """Train (or, with ``resume``, continue from the last checkpoint of ``run_dir``).

    The caller validates the configuration and, on resume, the checkpoint's compatibility
    (:func:`robot_brain.training.checkpoint.check_compatible`).

    :param torch_threads: PyTorch intra-op threads (``None``: leave as is). One thread is the
        fastest for these small networks on a loaded 2-core machine (measured ~10x faster than
        two threads competing with the simulation processes).
    """
    run_dir = Path(run_dir)
    if torch_threads is not None:
        import torch

        torch.set_num_threads(int(torch_threads))
    hp = config.hyperparams
    if not resume:
        write_run_config(run_dir, config)
    venv = make_vec_env(config.task, hp["env_kwargs"], config.shield, n_envs=hp["n_envs"], seed=config.seed,
                        vec_env=hp["vec_env"])
    vec_normalize = None
    if hp["normalize"]:
        from stable_baselines3.common.vec_env import VecNormalize

        venv = vec_normalize = VecNormalize(venv, gamma=float(hp.get("gamma", 0.99)))
    notes: list[str] = []
    tb_dir: str | None = str(run_dir / "tb")
    if importlib.util.find_spec("tensorboard") is None:
        tb_dir = None
        notes.append("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
    model = build_model(config.algo, hp, venv, seed=config.seed, tensorboard_log=tb_dir)
    obs_space = cast(gym.spaces.Box, venv.observation_space)  # the tasks' spaces are boxes
    action_space = cast(gym.spaces.Box, venv.action_space)
    obs_shape = tuple(int(x) for x in obs_space.shape)
    meta = {"task": config.task, "algo": config.algo, "obs_shape": list(obs_shape),
            "action_shape": [int(x) for x in action_space.shape], "seed": config.seed,
            "shield": config.shield}
    if resume:
        ckpt = find_checkpoint(run_dir)
        restore_model(model, ckpt, vec_normalize=vec_normalize)
        metrics = _resumed_metrics(run_dir, config, ckpt.steps)
        notes.append(f"resumed from {ckpt.zip_path} at step {ckpt.steps}")
    else:
        metrics = _new_metrics(config)
    cb = TrainingMonitor(run_dir, config, metrics, meta=meta, vec_normalize=vec_normalize, progress=progress,
                         log=log)
    remaining = hp["n_timesteps"] - model.num_timesteps
    status = "finished"
    try:
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=cb, reset_num_timesteps=not resume,
                        tb_log_name=config.algo.upper(), progress_bar=False)
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        cb.close()
    metrics["status"] = status
    cb.model = model  # set by learn(); not yet if Ctrl-C came before the first step
    cb.num_timesteps = model.num_timesteps
    last = list_checkpoints(run_dir / "checkpoints")
    if not last or last[-1].steps != model.num_timesteps:
        ckpt = cb.save()
    else:
        ckpt = last[-1]
        cb.write_metrics()
    try:
        venv.close()
    except (EOFError, BrokenPipeError, ConnectionResetError):  # workers already gone after Ctrl-C
        pass
    return TrainResult(run_dir, status, int(model.num_timesteps), ckpt, metrics, notes)
