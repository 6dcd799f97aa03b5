"""Online critic learning while a policy trains (``robot-brain train --shield CRITIC --learn-critic``).

Recovery RL pre-trains its risk critic offline and then keeps updating it from the transitions
the agent itself produces; this is that second phase for the fast-tick critic:

- every training env runs under a :class:`CriticDataRecorder`: the loop's reflex (the critic over
  the hard limits) is wrapped in a :class:`.dataset.RecordingReflex`, so each episode yields the
  critic's transitions (features of the state and of the setpoint *executed*, at ``critic_dt``),
  in the env's own process;
- every ``critic_update_freq`` environment steps :class:`OnlineCriticUpdates` drains them from
  the envs, scores the critic on them *before* training on them (a prequential ROC AUC: how well
  the critic ranked violations it had not seen), adds them to the replay buffer, takes
  ``critic_update_steps`` gradient steps of :class:`.learning.CriticTrainer` and sends the new
  weights back to the envs, whose reflex uses them from the next tick;
- the critic learned so far is written to ``RUN_DIR/critic/`` after every update (the run-time
  files ``critic.json`` + ``critic.npz``, loaded without unpickling, and ``critic.pt``, the torch
  state, loaded with ``weights_only=True``). The training's evaluations and the final evaluation
  run with it; ``--shield RUN_DIR/critic`` uses it anywhere else.

The buffer holds the offline data of the critic folder (``transitions.npz``, as written by
``robot-brain train-critic``; a folder without it is refused), so the critic does not forget the
violations of pre-training while the policy learns to avoid them; the online part keeps the
newest ``critic_buffer_size`` transitions. A resumed run continues from ``RUN_DIR/critic/``; the online
transitions before the interruption are not kept (only the weights learned from them).

The recovery in force is the critic's choice among retreat and brace (:mod:`robot_brain.safety.recovery`),
rated by the updated critic, so updating the critic updates the recovery's decisions too; the
learned recovery network (off by default) is not retrained online.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from robot_brain.safety import CriticReflex, RiskModel, load_critic

from .dataset import RecordingReflex, TransitionData
from .learning import CriticTrainer, roc_auc

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

    from robot_brain.envs import ImpedanceTaskEnv

__all__ = ["ONLINE_DIR", "CriticDataRecorder", "OnlineCriticUpdates", "check_learnable", "offline_data",
           "start_trainer"]

#: Folder of a run that holds the critic learned online (:func:`robot_brain.training.run.run_shield`).
ONLINE_DIR = "critic"
#: The offline data ``robot-brain train-critic`` writes next to a critic.
OFFLINE_DATA = "transitions.npz"


class CriticDataRecorder(gym.Wrapper):
    """Records the critic's transitions of every episode of a task env whose shield is a critic,
    and takes new critic weights (module docstring). Both methods are called through
    ``VecEnv.env_method``, so they work in worker processes too.

    :raises ValueError: the env's reflex is not a :class:`CriticReflex` (one line).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        task = cast("ImpedanceTaskEnv", env.unwrapped)
        reflex = task.reflex
        if not isinstance(reflex, CriticReflex):
            raise ValueError(f"learning the critic online needs a critic shield (a directory written by "
                             f"'robot-brain train-critic'), but this env runs {type(reflex).__name__}")
        self._critic = reflex
        hz = task.config.control_hz
        every = round(reflex.model.critic_dt * hz)
        self.recorder = RecordingReflex(reflex, max(every, 1), reflex.model.force_limit, control_dt=1.0 / hz,
                                        memory_tau=reflex.memory.tau)
        task.set_shield(self.recorder)
        self._open = False

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if self._open:  # an episode cut short by a reset: its transitions count, without success
            self.recorder.end_episode(success=False)
        self._open = True
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            # success ends the episode for good (no bootstrap); a time limit does not
            self.recorder.end_episode(success=bool(terminated and info.get("is_success", False)))
            self._open = False
        return obs, float(reward), terminated, truncated, info

    def critic_transitions(self) -> TransitionData:
        """The transitions of the episodes closed since the last call (then forgotten here)."""
        return self.recorder.drain()

    def set_critic_weights(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Run the reflex with these critic weights from the next tick on (same features, same
        threshold; see :meth:`CriticReflex.set_model`)."""
        self._critic.set_model(RiskModel(arrays, meta))


def check_learnable(critic_dir: str | os.PathLike) -> None:
    """Refuse, in one line, a critic folder that cannot be learned online: a damaged critic
    (:class:`robot_brain.safety.CriticFileError`), or missing or damaged offline data
    (``ValueError``). Called before a run directory is created, so a bad folder leaves none."""
    load_critic(critic_dir)
    offline_data(critic_dir)


def _offline_path(critic_dir: str | os.PathLike) -> Path:
    path = Path(critic_dir) / OFFLINE_DATA
    if not path.is_file():
        raise ValueError(f"{path} not found: learning a critic online keeps its offline data in the buffer; "
                         f"use a folder written by 'robot-brain train-critic TASK --out DIR'")
    return path


def offline_data(critic_dir: str | os.PathLike) -> TransitionData:
    """The offline transitions stored with a critic (``transitions.npz``).

    :raises ValueError: the folder has none (one line naming the fix): without them the buffer
        would hold only the run's own transitions, mostly safe once the policy improves, and the
        critic would unlearn the violations it was trained to foresee.
    """
    return TransitionData.load(_offline_path(critic_dir))


class OnlineCriticUpdates(BaseCallback):
    """Drains the envs' critic transitions, trains the critic and sends it back (module docstring).

    :param trainer: the critic being learned (:meth:`CriticTrainer.resume` of the shield's folder,
        or of ``RUN_DIR/critic`` on resume).
    :param run_dir: the run directory (the critic is written to ``run_dir/critic``).
    :param every: environment steps between updates. :param grad_steps: gradient steps per update.
    :param buffer_size: online transitions kept (the newest).
    :param offline: pre-training data kept in the buffer.
    :param metrics: the run's metrics record; each update appends to ``metrics["critic_updates"]``.
    """

    def __init__(self, trainer: CriticTrainer, run_dir: Path, *, every: int, grad_steps: int,
                 buffer_size: int, offline: TransitionData, metrics: dict[str, Any]) -> None:
        super().__init__(verbose=0)
        self.trainer = trainer
        self.out = Path(run_dir) / ONLINE_DIR
        self.every = int(every)
        self.grad_steps = int(grad_steps)
        self.buffer_size = int(buffer_size)
        self.offline = offline
        self.online: TransitionData | None = None
        self.metrics = metrics
        self.metrics.setdefault("critic_updates", [])
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.every + 1) * self.every
        self._push()  # the envs start from the critic being learned (resume, or a folder's import)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next = (self.num_timesteps // self.every + 1) * self.every
            self.update()
        return True

    def _venv(self) -> VecEnv:
        venv = self.training_env
        assert venv is not None, "the callback is not attached to a model yet"
        return venv

    def _push(self) -> None:
        model = self.trainer.export()
        self._venv().env_method("set_critic_weights", model.arrays, model.meta)

    def update(self) -> dict[str, Any] | None:
        """One update from the transitions recorded since the last one; returns its record
        (``None`` when no episode ended since)."""
        parts = [d for d in self._venv().env_method("critic_transitions") if len(d)]
        if not parts:
            return None
        new = TransitionData.concatenate(parts)
        # scored before it is learned from: the critic's ranking on data it has not seen
        both = 0 < new.cost.sum() < len(new)
        auc = roc_auc(self.trainer.predict(new.features), new.cost) if both else math.nan
        online = new if self.online is None else TransitionData.concatenate([self.online, new])
        if len(online) > self.buffer_size:  # the newest only
            online = online.subset(np.arange(len(online)) >= len(online) - self.buffer_size)
        self.online = online
        self.trainer.buffer = None
        self.trainer.add(TransitionData.concatenate([self.offline, online]))
        self.trainer.fit(self.grad_steps)
        loss = self.trainer.history.loss[-1] if self.trainer.history.loss else math.nan
        self._push()
        self.out.mkdir(parents=True, exist_ok=True)
        self.trainer.save(self.out)
        rec = {"step": int(self.num_timesteps), "transitions": len(new), "violating": int(new.cost.sum()),
               "auc_before": None if math.isnan(auc) else float(auc), "loss": float(loss),
               "buffer": len(self.offline) + len(online), "train_steps": int(self.trainer.steps_done)}
        self.metrics["critic_updates"].append(rec)
        self.logger.record("critic/online_transitions", len(new))
        self.logger.record("critic/online_violating", rec["violating"])
        if rec["auc_before"] is not None:
            self.logger.record("critic/auc_before_update", rec["auc_before"])
        self.logger.record("critic/loss", rec["loss"])
        return rec


def start_trainer(run_dir: Path, shield: str, *, seed: int) -> CriticTrainer:
    """The critic a ``--learn-critic`` run continues: ``RUN_DIR/critic`` once written, else the
    shield's folder (raises :class:`robot_brain.safety.CriticFileError` naming a bad file)."""
    own = run_dir / ONLINE_DIR
    source = own if (own / "critic.json").is_file() else Path(shield)
    return CriticTrainer.resume(source, seed=seed)  # loads the critic: one line naming a bad file
