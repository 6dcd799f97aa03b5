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

Crash safety (``kill -9`` at any instant): every file is written atomically, a checkpoint's JSON
last (:mod:`.checkpoint`), ``metrics.json`` just before it (:mod:`.metrics`). Resuming claims the
run (:func:`.run.claim_run`), removes what an interrupted save left, takes the newest complete
checkpoint (or starts a run that has none from step 0), and brings ``metrics.json`` back to that
checkpoint's step and counters; every such repair is reported as a one-line note.
"""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
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
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    check_compatible,
    drop_replay,
    list_checkpoints,
    open_checkpoint,
    prune_incomplete,
    remove_checkpoint,
    restore_model,
    save_checkpoint,
    select_checkpoint,
)
from .circuit_policy import parameter_counts
from .config import OFF_POLICY, ConfigError
from .metrics import counters, new_metrics, resume_metrics
from .run import (
    RunClaim,
    RunConfig,
    claim_run,
    make_env,
    make_vec_env,
    prune_run_temp,
    run_shield,
    write_run_config,
)

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecNormalize
    from tqdm import tqdm

    from robot_brain.envs import ImpedanceTaskEnv

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
        # training steps in which the shield changed at least one tick's setpoint
        self.overridden = int(metrics.get("overridden_steps", 0))
        metrics.setdefault("episode_count", len(metrics["episodes"]))
        self._next_save: float = 0  # math.inf when saving is off
        self._next_eval: float = 0  # math.inf when evaluating is off
        self._next_curve = 0
        self._eval_env: gym.Env | None = None
        self._t0 = time.perf_counter()
        self._steps0 = 0
        self._elapsed0 = float(metrics.get("elapsed") or 0.0)  # training seconds before this process

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
            self.overridden += int(info.get("overridden_ticks", 0) > 0)
            if dones[i]:
                ep = {"step": int(self.num_timesteps), "return": float(self._ep_ret[i]),
                      "length": int(self._ep_len[i]), "success": bool(info.get("is_success", False)),
                      "cost": float(self._ep_cost[i])}
                self.metrics["episodes"].append(ep)
                self.metrics["episode_count"] += 1
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

    def elapsed(self) -> float:
        """Seconds of training so far (evaluations and checkpoints included), summed over the
        processes of a resumed run; recorded with the curve and every evaluation, so a report
        can say how long a method took to reach a score."""
        return self._elapsed0 + time.perf_counter() - self._t0

    def steps_per_second(self) -> float:
        dt = time.perf_counter() - self._t0
        return (self.num_timesteps - self._steps0) / dt if dt > 0 else 0.0

    def _curve_point(self) -> None:
        s = self._stats()
        self.metrics["curve"].append({"step": int(self.num_timesteps),
                                      **{k: _finite(v) for k, v in s.items()},
                                      "cumulative_violations": self.cum_violations,
                                      "overridden_steps": self.overridden,
                                      "episodes": self.metrics["episode_count"],
                                      "elapsed": round(self.elapsed(), 3)})
        self.metrics["cumulative_violations"] = self.cum_violations
        self.metrics["overridden_steps"] = self.overridden
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
        reached = round(self.elapsed(), 3)  # when the step was reached, before evaluating it
        shield = run_shield(self.run_dir, self.config)
        if self._eval_env is None:
            self._eval_env = make_env(self.config.task, self.hp["env_kwargs"], shield, monitor=False)
        elif self.hp.get("learn_critic"):  # the critic learned so far
            cast("ImpedanceTaskEnv", self._eval_env.unwrapped).set_shield(shield)
        episodes = evaluate_model(self._predict, self._eval_env, self.hp["eval_episodes"],
                                  seed=10_000 + self.config.seed)
        s = summarize(episodes)
        rec = {"step": int(self.num_timesteps), **s, "elapsed": reached}
        self.metrics["evaluations"].append(rec)
        for k in ("success_rate", "return_mean", "cost_mean"):
            self.logger.record(f"eval/{k}", s[k])
        best = self.metrics.get("best")
        score = (s["success_rate"], s["return_mean"])
        if best is None or score > (best["success_rate"], best["return_mean"]):
            # the JSON keeps the evaluation: after a crash the best score is read from the best
            # model itself, so the record and the file can never disagree
            save_checkpoint(self.model, self.run_dir / "best", "best_model", self.meta, replay=False,
                            vec_normalize=self.vec_normalize, extra={"evaluation": rec})
            self.metrics["best"] = rec
        return s

    def save(self) -> Checkpoint:
        """Checkpoint of the current step (``metrics.json`` written just before its JSON, see
        :mod:`.metrics`), then pruning: older checkpoints lose their replay buffer, only the
        newest :data:`KEEP_CHECKPOINTS` stay, leftovers of interrupted saves go."""
        ckdir = self.run_dir / "checkpoints"
        n = int(self.num_timesteps)
        ckpt = save_checkpoint(self.model, ckdir, f"ckpt_{n}", self.meta,
                               replay=self.config.algo in OFF_POLICY, vec_normalize=self.vec_normalize,
                               counters=counters(self.metrics_now()), before_commit=self.write_metrics)
        older = [c for c in list_checkpoints(ckdir) if c.steps < n]
        for old in older:  # the replay buffer only with the newest
            drop_replay(old)
        for old in older[: max(0, len(older) - (KEEP_CHECKPOINTS - 1))]:
            remove_checkpoint(old)
        prune_incomplete(ckdir)
        if self._bar is None and self.show_progress:
            s = self._stats()
            ev = self.metrics["evaluations"][-1] if self.metrics["evaluations"] else None
            self.log(f"step {n}/{self.hp['n_timesteps']}: return {s['return_mean']:.2f}, success "
                     f"{100 * s['success_rate']:.0f} %, cost/episode {s['cost_mean']:.2f}, violations "
                     f"{self.cum_violations}"
                     + (f", eval success {100 * ev['success_rate']:.0f} %" if ev else "")
                     + f" ({self.steps_per_second():.0f} steps/s)")
        return ckpt

    def metrics_now(self) -> dict[str, Any]:
        """The metrics record brought up to the current step (counters included)."""
        m = self.metrics
        m["num_timesteps"] = int(self.num_timesteps)
        m["cumulative_violations"] = self.cum_violations
        m["overridden_steps"] = self.overridden
        m["steps_per_second"] = self.steps_per_second()
        m["elapsed"] = round(self.elapsed(), 3)
        return m

    def write_metrics(self) -> None:
        _write_json(self.run_dir / "metrics.json", self.metrics_now())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._eval_env is not None:
            self._eval_env.close()
            self._eval_env = None


def _fresh_metrics(config: RunConfig) -> dict[str, Any]:
    return new_metrics(config.task, config.algo, config.seed, config.shield)


_PERIODIC = re.compile(r"^(?:\.replacing-)?ckpt_(\d+)(?:\.json|\.zip|_replay\.npz|_normalize\.npz)?$")


def _remove_newer(ckdir: Path, steps: int) -> list[str]:
    """Remove every periodic checkpoint file after ``steps`` (resuming from ``steps`` means those
    are damaged or from steps being redone); only checkpoint names, JSONs first."""
    paths = sorted((p for p in ckdir.iterdir() if (m := _PERIODIC.match(p.name)) and int(m.group(1)) > steps),
                   key=lambda p: not p.name.endswith(".json")) if ckdir.is_dir() else []
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return [p.name for p in paths]


def _best_record(run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The evaluation record of the run's usable best model (the best model itself is the
    authority on the best score), and a note if a damaged one had to be passed over."""
    best_dir = run_dir / "best"
    problems = []
    for js in (best_dir / "best_model.json", best_dir / ".replacing-best_model" / "best_model.json"):
        if js.exists() or js.is_symlink():
            try:
                return open_checkpoint(js).meta.get("evaluation"), None
            except CheckpointError as exc:
                problems.append(str(exc))
    if problems:
        return None, f"{'; '.join(problems)}: the next evaluation writes a new best model"
    return None, None


@dataclass
class _Start:
    """Where a (resumed) run starts: its checkpoint, metrics record and notes."""

    checkpoint: Checkpoint | None
    metrics: dict[str, Any]
    notes: list[str]


def _resume(run_dir: Path, config: RunConfig, model: BaseAlgorithm, vec_normalize: VecNormalize | None,
            meta: dict[str, Any]) -> _Start:
    """Bring a run back to its newest complete checkpoint (see the module docstring)."""
    notes: list[str] = []
    ckdir = run_dir / "checkpoints"
    removed = [*prune_run_temp(run_dir), *prune_incomplete(ckdir), *prune_incomplete(run_dir / "best")]
    if removed:
        notes.append(f"removed {len(removed)} leftover file(s) of an interrupted save: {', '.join(removed)}")
    ckpt, skipped = select_checkpoint(run_dir, "last", training=True)
    if skipped:
        notes.append(skipped)
    if ckpt is None:
        notes.append(f"run {run_dir} has no complete checkpoint: starting it from step 0 with its "
                     f"config.yaml")
        metrics = _fresh_metrics(config)
    else:
        metrics = _restore(run_dir, config, model, vec_normalize, meta, ckpt, notes)
    best, note = _best_record(run_dir)
    if note:
        notes.append(note)
    if best is not None or note:
        metrics["best"] = best
    notes.append(f"resumed from {ckpt.zip_path} at step {ckpt.steps}" if ckpt else "started from step 0")
    return _Start(ckpt, metrics, notes)


def _restore(run_dir: Path, config: RunConfig, model: BaseAlgorithm, vec_normalize: VecNormalize | None,
             meta: dict[str, Any], ckpt: Checkpoint, notes: list[str]) -> dict[str, Any]:
    """Load ``ckpt`` into ``model`` and return the metrics record cut back to it."""
    compat = check_compatible(ckpt, task=config.task, algo=config.algo, obs_shape=tuple(meta["obs_shape"]),
                              action_shape=tuple(meta["action_shape"]))
    if compat:
        notes.append(compat)
    newer = _remove_newer(run_dir / "checkpoints", ckpt.steps)
    if newer:
        notes.append(f"removed checkpoint files after step {ckpt.steps}: {', '.join(newer)}")
    restore_model(model, ckpt, vec_normalize=vec_normalize)
    if config.algo in OFF_POLICY and not ckpt.meta.get("replay"):
        notes.append(f"{ckpt.zip_path.name} keeps no replay buffer (only the newest checkpoint does): "
                     f"the replay buffer starts empty")
    metrics, lost = resume_metrics(run_dir / "metrics.json", _fresh_metrics(config), ckpt.steps,
                                   ckpt.meta.get("counters"), ckpt.zip_path.stem)
    notes += lost
    return metrics


def train(config: RunConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True,
          log: Callable[[str], None] | None = None, torch_threads: int | None = 1,
          claim: RunClaim | None = None, note: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or, with ``resume``, continue from the newest complete checkpoint of ``run_dir``;
    a run without one starts from step 0).

    The caller validates the configuration (:func:`.algos.check_model` for a new one); a new
    run's ``config.yaml`` is written only once the model is built, so a configuration that cannot
    build leaves no run behind.

    :param torch_threads: PyTorch intra-op threads (``None``: leave as is). One thread is the
        fastest for these small networks on a loaded 2-core machine (measured ~10x faster than
        two threads competing with the simulation processes).
    :param claim: the caller's claim on ``run_dir`` (:func:`.run.claim_run`); without one the
        run is claimed (and released) here.
    :param note: called with each one-line note as it arises (repairs on resume, ...); the
        notes are also in the result.
    :raises ConfigError: the run is in use by another process, or (new run) holds a run already.
    :raises CheckpointError: (resume) checkpoints exist but none is usable, or it does not fit.
    """
    run_dir = Path(run_dir)
    own = claim is None
    held = claim_run(run_dir, new=not resume) if claim is None else claim
    try:
        return _train(config, run_dir, resume=resume, progress=progress, log=log,
                      torch_threads=torch_threads, note=note)
    finally:
        if own:
            held.release()


def _build(config: RunConfig, run_dir: Path, notes: list[str]) -> tuple[Any, Any, Any]:
    """The vectorised envs (normalised if asked), their ``VecNormalize`` (or ``None``) and the
    model; the envs are closed again if the model cannot be built."""
    hp = config.hyperparams
    venv = make_vec_env(config.task, hp["env_kwargs"], config.shield, n_envs=hp["n_envs"], seed=config.seed,
                        vec_env=hp["vec_env"], record_critic=bool(hp.get("learn_critic")))
    vec_normalize = None
    if hp["normalize"]:
        from stable_baselines3.common.vec_env import VecNormalize

        venv = vec_normalize = VecNormalize(venv, gamma=float(hp.get("gamma", 0.99)))
    tb_dir: str | None = str(run_dir / "tb")
    if importlib.util.find_spec("tensorboard") is None:
        tb_dir = None
        notes.append("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
    try:
        model = build_model(config.algo, hp, venv, seed=config.seed, tensorboard_log=tb_dir, task=config.task)
    except BaseException:
        venv.close()
        raise
    return venv, vec_normalize, model


def _online_critic(config: RunConfig, run_dir: Path, metrics: dict[str, Any]) -> BaseCallback:
    """The callback that keeps learning the shield's critic (``learn_critic``)."""
    from robot_brain.critic_training.online import OnlineCriticUpdates, offline_data, start_trainer
    from robot_brain.safety import CriticFileError

    hp = config.hyperparams
    try:
        trainer = start_trainer(run_dir, config.shield, seed=config.seed)
        offline = offline_data(config.shield)
    except (CriticFileError, ValueError) as exc:
        raise ConfigError(f"learn_critic: {str(exc).splitlines()[0]}") from None
    return OnlineCriticUpdates(trainer, run_dir, every=hp.get("critic_update_freq", 2000),
                               grad_steps=hp.get("critic_update_steps", 250),
                               buffer_size=hp.get("critic_buffer_size", 200_000), offline=offline,
                               metrics=metrics)


def _train(config: RunConfig, run_dir: Path, *, resume: bool, progress: bool,
           log: Callable[[str], None] | None, torch_threads: int | None,
           note: Callable[[str], None] | None) -> TrainResult:
    if torch_threads is not None:
        import torch

        torch.set_num_threads(int(torch_threads))
    notes: list[str] = []
    venv, vec_normalize, model = _build(config, run_dir, notes)
    if not resume:  # only once the model is built: a config that cannot train leaves no run behind
        write_run_config(run_dir, config)
    obs_space = cast(gym.spaces.Box, venv.observation_space)  # the tasks' spaces are boxes
    action_space = cast(gym.spaces.Box, venv.action_space)
    meta = {"task": config.task, "algo": config.algo, "obs_shape": [int(x) for x in obs_space.shape],
            "action_shape": [int(x) for x in action_space.shape], "seed": config.seed,
            "shield": config.shield, "policy": config.hyperparams.get("policy", "MlpPolicy"),
            "parameters": parameter_counts(model.policy)}
    try:
        start = (_resume(run_dir, config, model, vec_normalize, meta) if resume
                 else _Start(None, _fresh_metrics(config), []))
    except BaseException:
        venv.close()
        raise
    notes += start.notes
    for line in notes:
        if note is not None and not line.startswith(("resumed from", "started from")):
            note(line)
    metrics = start.metrics
    metrics["parameters"] = meta["parameters"]
    metrics["policy"] = meta["policy"]
    cb = TrainingMonitor(run_dir, config, metrics, meta=meta, vec_normalize=vec_normalize, progress=progress,
                         log=log)
    callbacks: list[BaseCallback] = [cb]
    if config.hyperparams.get("learn_critic"):
        try:
            callbacks.append(_online_critic(config, run_dir, metrics))
        except BaseException:
            venv.close()
            raise
    remaining = config.hyperparams["n_timesteps"] - model.num_timesteps
    status = "finished"
    try:
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=callbacks,
                        reset_num_timesteps=start.checkpoint is None, tb_log_name=config.algo.upper(),
                        progress_bar=False)
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
