"""Circuit priors as Stable-Baselines3 policies (``policy: NcapPolicy``, ``--policy ncap``).

- :class:`NcapActorCriticPolicy` (PPO): the actor is the task's circuit
  (:func:`robot_brain.policies.circuit_for`), whose output is the *mean* of a Gaussian with a
  fixed standard deviation (``action_std``, 0.1 as in the NCAP work); the critic is a small MLP
  on ``softsign(observation)`` (``net_arch``, default 64 x 64). Only the circuit's weights and the critic
  train: the std is a constant, so the actor has exactly the circuit's parameters (4 for the
  swimmer), which :func:`parameter_counts` reports.
- :class:`CircuitActor` (ES): the circuit alone, deterministic, behind SB3's ``BasePolicy``
  (``predict``, ``set_training_mode``, ``state_dict``), so the evolution-strategies trainer
  checkpoints and loads like any SB3 model.

In both the circuit is the submodule ``action_net``: a checkpoint's circuit weights are the
``action_net.*`` entries of its policy, whichever algorithm trained it, which is what lets a
trained circuit be loaded into a body of another length (:mod:`.policy`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from torch import nn

if TYPE_CHECKING:
    from stable_baselines3.common.type_aliases import Schedule

    from robot_brain.policies import CircuitSpec

__all__ = ["CIRCUIT_PREFIX", "CircuitActor", "NcapActorCriticPolicy", "circuit_state", "parameter_counts"]

#: The circuit's entries in a policy's state dict start with this.
CIRCUIT_PREFIX = "action_net."
DEFAULT_ACTION_STD = 0.1  # the NCAP work's fixed exploration noise of PPO
DEFAULT_VALUE_NET = (64, 64)


def _build_circuit(spec: CircuitSpec | None, options: Mapping[str, Any] | None,
                   observation_space: spaces.Space, action_space: spaces.Space) -> nn.Module:
    if spec is None:
        raise ValueError("a circuit policy needs the task's circuit (build it with task=...)")
    return spec.build(options or {}, observation_space, action_space)


class NcapActorCriticPolicy(ActorCriticPolicy):
    """PPO's policy with the circuit as the actor's mean and a fixed std (module docstring).

    :param circuit_spec: the task's circuit prior (set by :func:`.algos.build_model`).
    :param circuit: its options (``policy_kwargs.circuit``: the ablation switches).
    :param action_std: the fixed standard deviation of the Gaussian around the circuit's output.
    :param net_arch: the critic's hidden layers (a list, or ``{"vf": [...]}``); the actor has none.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule,
                 net_arch: list[int] | dict[str, list[int]] | None = None, *,
                 circuit_spec: CircuitSpec | None = None, circuit: Mapping[str, Any] | None = None,
                 action_std: float = DEFAULT_ACTION_STD, **kwargs: Any) -> None:
        self._circuit_spec = circuit_spec
        self._circuit_options = dict(circuit or {})
        self.action_std = float(action_std)
        vf = list(net_arch.get("vf", DEFAULT_VALUE_NET)) if isinstance(net_arch, dict) else \
            list(net_arch if net_arch is not None else DEFAULT_VALUE_NET)
        kwargs["log_std_init"] = math.log(self.action_std)
        super().__init__(observation_space, action_space, lr_schedule, net_arch={"pi": [], "vf": vf},
                         **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        # The Gaussian's mean is the circuit's output on the (flattened) observation; the log std
        # stays a parameter (it is part of the distribution and the checkpoint) that never trains.
        self.action_net = _build_circuit(self._circuit_spec, self._circuit_options, self.observation_space,
                                         self.action_space)
        self.log_std.requires_grad_(False)
        # The critic reads softsign(obs): bounded inputs whatever their scale (the swimmer's step
        # index reaches 1000), since the circuit needs raw observations and normalize is off.
        self.mlp_extractor.value_net = nn.Sequential(nn.Softsign(), self.mlp_extractor.value_net)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            [p for p in self.parameters() if p.requires_grad], lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(circuit=self._circuit_options, action_std=self.action_std)
        return data


class CircuitActor(BasePolicy):
    """The circuit alone as an SB3 policy (deterministic: the evolution-strategies individual).

    :param circuit_spec: the task's circuit prior. :param circuit: its options.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box,
                 lr_schedule: Schedule | None = None, *, circuit_spec: CircuitSpec | None = None,
                 circuit: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, **kwargs)
        self._circuit_options = dict(circuit or {})
        self.action_net = _build_circuit(circuit_spec, self._circuit_options, observation_space, action_space)

    def forward(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return self._predict(obs, deterministic)

    def _predict(self, observation: torch.Tensor, deterministic: bool = True) -> torch.Tensor:  # type: ignore[override]
        return self.action_net(observation.float())

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(circuit=self._circuit_options)
        return data


def circuit_state(policy_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The circuit's weights (names without the prefix) of a circuit policy's state dict."""
    return {k[len(CIRCUIT_PREFIX):]: v for k, v in policy_state.items() if k.startswith(CIRCUIT_PREFIX)}


def _count(module: nn.Module | None, trainable: bool = True) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def parameter_counts(policy: BasePolicy) -> dict[str, int]:
    """Trained parameters of the actor (what acts) and of the rest (critics, value network):
    ``{"actor": n, "critic": m}``. The actor of an MLP actor-critic is its policy layers, action
    layer and (trained) log std; of SAC/TD3 the ``actor``; of a circuit policy the circuit."""
    total = _count(policy)
    if isinstance(policy, CircuitActor):
        actor = total
    elif isinstance(policy, ActorCriticPolicy):
        log_std = getattr(policy, "log_std", None)
        std = int(log_std.numel()) if isinstance(log_std, torch.Tensor) and log_std.requires_grad else 0
        actor = _count(policy.mlp_extractor.policy_net) + _count(policy.action_net) + std
        if policy.share_features_extractor:
            actor += _count(policy.features_extractor)
        else:
            actor += _count(policy.pi_features_extractor)
    else:
        actor = _count(getattr(policy, "actor", None))
    return {"actor": int(actor), "critic": int(total - actor)}


def flat_action(actions: torch.Tensor, action_space: spaces.Box) -> np.ndarray:
    """Actions as float32 numpy, clipped to the box (what the env is given)."""
    return np.clip(actions.detach().cpu().numpy().astype(np.float32), action_space.low, action_space.high)
