"""A replay buffer that leaves out the steps the shield changed.

An off-policy learner under a shield stores, by default, the action its policy proposed with
the outcome of what the shield executed instead (Recovery RL's relabelling): the policy learns
that actions which draw the reflex lead where the reflex leads. Under a critic that answers
fast approaches with a retreat, that teaches the policy to stop approaching at all (measured on
``peg-insertion``, ``docs/benchmarks.md``). With ``overridden_steps: skip`` such steps are not
stored: the learner sees only steps its own action ran to the end, and the shield acts as a
filter the learner does not learn from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer

__all__ = ["SkipOverriddenReplayBuffer"]


class SkipOverriddenReplayBuffer(ReplayBuffer):
    """SB3's :class:`ReplayBuffer`, except that a step whose ``info["overridden_ticks"]`` is
    positive (a control tick ran a setpoint the shield changed) is not stored.

    One env only (the configuration checks ``n_envs`` 1): SB3 stores the envs' steps of one
    call together, so one env's step cannot be left out alone. How many steps were left out is
    the run's ``metrics.json["overridden_steps"]``.
    """

    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
            done: np.ndarray, infos: list[dict[str, Any]]) -> None:
        if any(info.get("overridden_ticks", 0) > 0 for info in infos):
            return
        super().add(obs, next_obs, action, reward, done, infos)
