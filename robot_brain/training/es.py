"""Evolution strategies on a circuit's weights (``--algo es``), as a Stable-Baselines3 algorithm.

Why ES: a sign-constrained circuit weight that is pushed past zero acts as 0 and gets no gradient
(the projection is flat there), so gradient methods can lose a connection for good; ES only
looks at returns. The recipe is the NCAP work's (after Salimans et al. 2017):

- every iteration draws ``population / 2`` Gaussian directions ``eps_k`` over the parameter
  vector ``theta`` and runs one episode with ``theta + sigma eps_k`` and one with
  ``theta - sigma eps_k`` (antithetic pairs), both from the same initial state (the same reset
  seed), so a pair differs only by the sign of its perturbation;
- returns are replaced by centred ranks in [-0.5, 0.5] (robust to the scale of the reward);
- the ascent direction ``g = sum_k (r_k+ - r_k-) eps_k / (population sigma)`` goes to Adam
  (``learning_rate``, optionally ``lin_<value>``) as the negative gradient;
- ``rollout_steps`` > 0 cuts each member's episode after that many steps and ranks the members by
  the return of that window. A pair still starts from one state, so the comparison stays fair,
  and an iteration costs ``population * rollout_steps`` steps instead of ``population`` whole
  episodes: many more (noisier) updates for the same budget. The cut rollouts reach the callback
  as ended (truncated) episodes, so the training curve shows window returns; the evaluations run
  whole episodes. With ``0`` (the NCAP work's setting) members run whole episodes.

It is a :class:`~stable_baselines3.common.base_class.BaseAlgorithm`, so the rest of the stack
treats it like SB3's algorithms: the trainer's callback (progress bar, metrics, evaluations,
checkpoints) sees every environment step, ``save`` writes an SB3-layout zip (``policy.pth``: the
circuit, ``es_optimizer.pth``: Adam's state, both plain tensors) that
:mod:`.checkpoint` loads with the weights-only unpickler, and ``policy.predict`` acts for
``eval``/``sim``. The directions of iteration ``i`` come from a generator seeded with
``(seed, i)``, so a resumed run draws exactly the directions the interrupted one would have.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .circuit_policy import CircuitActor, flat_action

__all__ = ["EvolutionStrategies", "centred_ranks"]


def centred_ranks(x: np.ndarray) -> np.ndarray:
    """The ranks of ``x`` (any shape) scaled to [-0.5, 0.5]; ties keep their order of appearance."""
    flat = x.ravel()
    ranks = np.empty(flat.size, dtype=np.float64)
    ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size)
    return (ranks / max(flat.size - 1, 1) - 0.5).reshape(x.shape)


class EvolutionStrategies(BaseAlgorithm):
    """Antithetic evolution strategies with rank shaping and Adam (module docstring).

    :param policy: ``"NcapPolicy"`` (the task's circuit, :class:`.circuit_policy.CircuitActor`).
    :param env: the training env (one env: members run one episode after another).
    :param population: perturbed episodes per iteration (even: antithetic pairs).
    :param sigma: standard deviation of the perturbations (in weight units).
    :param learning_rate: Adam's step size (or a schedule of the remaining progress).
    :param rollout_steps: steps of a member's rollout (``0``: the whole episode).
    :param policy_kwargs: ``circuit_spec`` (the task's circuit, set by the trainer) and
        ``circuit`` (its options).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"NcapPolicy": CircuitActor}
    policy: CircuitActor

    def __init__(self, policy: str | type[BasePolicy], env: GymEnv | None, population: int = 8,
                 sigma: float = 0.02, learning_rate: float | Schedule = 0.01, rollout_steps: int = 0,
                 policy_kwargs: dict[str, Any] | None = None, tensorboard_log: str | None = None,
                 verbose: int = 0, seed: int | None = None, device: torch.device | str = "cpu",
                 _init_setup_model: bool = True) -> None:
        super().__init__(policy, env, learning_rate, policy_kwargs=policy_kwargs,
                         tensorboard_log=tensorboard_log, verbose=verbose, device=device, seed=seed,
                         support_multi_env=False, supported_action_spaces=(spaces.Box,))
        if population < 2 or population % 2:
            raise ValueError(f"population must be an even number >= 2 (antithetic pairs), got {population}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if isinstance(rollout_steps, bool) or not isinstance(rollout_steps, int) or rollout_steps < 0:
            raise ValueError(f"rollout_steps must be an integer >= 0 (0: whole episodes), "
                             f"got {rollout_steps!r}")
        self.population = int(population)
        self.sigma = float(sigma)
        self.rollout_steps = rollout_steps
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(self.observation_space, self.action_space, self.lr_schedule,
                                        **self.policy_kwargs).to(self.device)  # type: ignore[assignment]
        self.policy.set_training_mode(False)
        # maximize: the estimate below is an ascent direction of the return
        self.es_optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.lr_schedule(1.0),
                                             maximize=True)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "es_optimizer"], []

    # -- one episode of one member ---------------------------------------------------------------
    def _episode(self, reset_seed: int, callback: BaseCallback) -> tuple[float, bool]:
        """Run one episode (cut after ``rollout_steps`` when set) with the current weights from
        ``reset_seed``; returns its return and ``False`` if the callback asked to stop."""
        assert self.env is not None
        action_space = self.action_space
        assert isinstance(action_space, spaces.Box)
        self.env.seed(reset_seed)
        obs = self.env.reset()
        total = 0.0
        length = 0
        while True:
            with torch.no_grad():
                actions = flat_action(self.policy.action_net(torch.as_tensor(obs, dtype=torch.float32)),
                                      action_space)
            new_obs, rewards, dones, infos = self.env.step(actions)
            self.num_timesteps += self.env.num_envs
            total += float(rewards[0])
            length += 1
            if 0 < self.rollout_steps <= length and not dones[0]:
                # The member's window is over: the callback closes the episode (the next member
                # resets the env), marked as a truncation like a time limit.
                dones = np.ones_like(dones)
                infos = [{**infos[0], "TimeLimit.truncated": True}]
            callback.update_locals({"infos": infos, "dones": dones, "rewards": rewards, "new_obs": new_obs,
                                    "actions": actions})
            if not callback.on_step():
                return total, False
            obs = new_obs
            if dones[0]:
                self._episode_num += 1
                return total, True

    def _iterate(self, callback: BaseCallback) -> bool:
        """One ES iteration (module docstring); ``False`` if the callback asked to stop. The
        weights are the iteration's centre again whenever this returns or raises (Ctrl-C)."""
        params = list(self.policy.parameters())
        theta = parameters_to_vector(params).detach().clone()
        rng = np.random.default_rng([int(self.seed or 0), int(self._n_updates)])
        pairs = self.population // 2
        eps = torch.as_tensor(rng.standard_normal((pairs, theta.numel())), dtype=theta.dtype)
        reset_seeds = rng.integers(0, 2**31 - 1, size=pairs)
        returns = np.zeros((pairs, 2))
        try:
            for k in range(pairs):
                for j, sign in enumerate((1.0, -1.0)):
                    vector_to_parameters(theta + sign * self.sigma * eps[k], params)
                    returns[k, j], go_on = self._episode(int(reset_seeds[k]), callback)
                    if not go_on:
                        return False
        finally:
            vector_to_parameters(theta, params)
        ranks = centred_ranks(returns)
        weights = (ranks[:, 0] - ranks[:, 1])[:, None]
        direction = (weights * eps.numpy()).sum(axis=0) / (self.population * self.sigma)
        self._update_current_progress_remaining(self.num_timesteps, self._total_timesteps)
        self._update_learning_rate(self.es_optimizer)
        self.es_optimizer.zero_grad()
        vector = torch.as_tensor(direction, dtype=theta.dtype)
        offset = 0
        for p in params:
            p.grad = vector[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        self.es_optimizer.step()
        self._n_updates += 1
        self.logger.record("es/return_mean", float(returns.mean()))
        self.logger.record("es/return_max", float(returns.max()))
        self.logger.record("es/step_norm", float(np.linalg.norm(direction)))
        self.logger.record("train/n_updates", self._n_updates)
        return True

    def learn(self, total_timesteps: int, callback: MaybeCallback = None, log_interval: int = 1,
              tb_log_name: str = "ES", reset_num_timesteps: bool = True,
              progress_bar: bool = False) -> EvolutionStrategies:
        """Iterate until ``total_timesteps`` env steps; the callback's ``on_rollout_end`` runs after
        every iteration (where the trainer evaluates and checkpoints)."""
        total_timesteps, cb = self._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name,
                                                progress_bar)
        cb.on_training_start(locals(), globals())
        while self.num_timesteps < total_timesteps:
            cb.on_rollout_start()
            if not self._iterate(cb):
                break
            cb.on_rollout_end()
            if log_interval and self._n_updates % log_interval == 0:
                self.logger.record("time/total_timesteps", self.num_timesteps)
                self.logger.dump(step=self.num_timesteps)
        cb.on_training_end()
        return self
