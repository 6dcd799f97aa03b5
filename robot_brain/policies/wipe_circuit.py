"""A circuit prior for the arm: the ``wipe`` task as a small sign-constrained circuit, in the style
of the worm's locomotion circuit (:mod:`.ncap`): graded units ``clamp(x, 0, 1)``, no hidden
state, excitatory and inhibitory weights kept to their sign, one weight per connection type.

It reads the ``wipe`` observation (:mod:`robot_brain.envs.wipe`, 14 values) and emits the same
variable-impedance action as any other policy (target displacement x/y/z, stiffness x/y/z), so
the two-rate loop, the reflex and the envelope treat it as they treat a trained MLP.

The circuit (``sf`` = normal force / target force, ``h`` = tip height above the table, ``d`` =
next unwiped point - tip in x/y, ``t`` = episode time)::

    sensors   touch   c  = clamp(sf)           under = clamp(1 - sf)     over = clamp(sf - 1)
              pain    p  = clamp(sf - 2)       high  = clamp(h / 2 cm)   on   = clamp(1 - h / 3 mm)
    rhythm    o_f, o_v = a square-wave oscillator pair of period T (o_f for the first half)
    stroke    F = clamp(w_fwd * o_f * on)      B = clamp(w_back * o_v * on)
              xy = (F - B) * d_hat * min(1, |d| / 1 cm)          strokes along the path, on the table
    press     P = clamp(w_approach * high + w_tonic + w_touch * under + w_hold * c + w_relax * over)
              L = clamp(w_withdraw * p)
              z = L - P                                           press down, pulled back by pain
    stiffness x/y 0.3, z 0 (normalised actions: ~700 N/m and the range's geometric mean)

- **Touch**: below the target force ``under`` excites pressing (the worm's gentle-touch
  response); above it ``over`` inhibits it (``w_relax < 0``), so the press settles near the
  target force. Above twice the target force a withdrawal unit ``L`` lifts the tip, as the
  worm's harsh-touch circuit withdraws.
- **Rhythm**: the oscillator pair alternates a forward stroke toward the next point and a short
  back stroke, only while the tip is on the table (``on``, a shunting gate: the strokes are
  multiplied by it rather than summed with it).
- **Parameters**: 8 weights, each a connection type (:data:`SIGNS`: ``w_relax`` inhibitory, the
  rest excitatory), against ~70,000 in a 256x256 MLP actor.

Ablations (:class:`WipeCircuitConfig`): ``sign_constraints`` off, ``init`` (``constant``: the
designed weights below; ``uniform``: random sizes in [0, 1] with the designed signs;
``random_sign``: the designed sizes with random signs), ``oscillator`` off (no back stroke, a
constant forward stroke), ``touch`` off (a fixed press: no force feedback).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from robot_brain.params import param, replace_checked, validate

__all__ = ["DESIGNED", "INITS", "SIGNS", "WIPE_CIRCUIT", "WipeCircuit", "WipeCircuitConfig",
           "WipeCircuitSpec"]

INITS = ("constant", "uniform", "random_sign")
#: The designed weights (the untrained circuit; see the module docstring for each unit).
DESIGNED: dict[str, float] = {"fwd": 0.6, "back": 0.05, "approach": 0.5, "tonic": 0.05,
                              "touch": 0.05, "hold": 0.45, "relax": -0.15, "withdraw": 0.5}
#: +1 excitatory, -1 inhibitory.
SIGNS: dict[str, float] = {k: (-1.0 if v < 0 else 1.0) for k, v in DESIGNED.items()}
OBS_SIZE = 14  # the wipe observation (envs/wipe.py, v1)
_D, _SF, _H, _T = slice(6, 8), 10, 11, 13  # where the circuit reads it
_APPROACH_HEIGHT = 0.02  # m: above this the approach unit is saturated
_ON_HEIGHT = 0.003  # m: the tip counts as on the table below this
_NEAR = 0.01  # m: strokes shrink in proportion inside this distance of the next point
_STIFFNESS_XY, _STIFFNESS_Z = 0.3, 0.0  # normalised stiffness actions


@dataclass(frozen=True)
class WipeCircuitConfig:
    """The wipe circuit's switches (module docstring)."""

    period: float = param(1.0, "period of the stroke oscillator", low=0.05, high=20.0, unit="s")
    sign_constraints: bool = param(True, "keep each weight to its sign (excitatory/inhibitory)",
                                   kind="bool")
    init: str = "constant"
    init_seed: int = param(0, "seed of the uniform and random_sign inits", kind="int", low=0,
                           high=2**31 - 1)
    oscillator: bool = param(True, "the stroke rhythm (off: a constant forward stroke)", kind="bool")
    touch: bool = param(True, "the force feedback onto pressing (off: a fixed press)", kind="bool")

    def __post_init__(self) -> None:
        validate(self)
        if self.init not in INITS:
            raise ValueError(f"WipeCircuitConfig.init must be one of {', '.join(INITS)}, got {self.init!r}")


def _clamp(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0)


class WipeCircuit(nn.Module):
    """The circuit as a torch module: ``forward(obs) -> action`` for any batch shape."""

    def __init__(self, config: WipeCircuitConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or WipeCircuitConfig()
        gen = torch.Generator().manual_seed(cfg.init_seed)
        values = {}
        for name, w in DESIGNED.items():
            if cfg.init == "uniform":
                w = SIGNS[name] * float(torch.rand((), generator=gen))
            elif cfg.init == "random_sign":
                w = abs(w) * (1.0 if float(torch.rand((), generator=gen)) < 0.5 else -1.0)
            values[name] = w
        self.w = nn.ParameterDict({k: nn.Parameter(torch.tensor(v, dtype=torch.float64))
                                   for k, v in values.items()})

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def weight(self, name: str) -> torch.Tensor:
        """The weight ``name`` as the circuit uses it (projected onto its sign when constrained)."""
        w = self.w[name]
        if not self.config.sign_constraints:
            return w
        return w.clamp(min=0.0) if SIGNS[name] > 0 else w.clamp(max=0.0)

    def oscillator(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward and back phase units at episode time ``t`` [s] (square waves, 0 or 1)."""
        if not self.config.oscillator:
            return torch.ones_like(t), torch.zeros_like(t)
        phase = torch.remainder(t, self.config.period) / self.config.period
        fwd = (phase < 0.5).to(t.dtype)
        return fwd, 1.0 - fwd

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.to(torch.float64)
        if obs.shape[-1] != OBS_SIZE:
            raise ValueError(f"the wipe circuit reads the {OBS_SIZE} wipe observations, got {obs.shape[-1]}")
        w = self.weight
        d, sf, h, t = obs[..., _D], obs[..., _SF], obs[..., _H], obs[..., _T]
        c, under, over, pain = _clamp(sf), _clamp(1.0 - sf), _clamp(sf - 1.0), _clamp(sf - 2.0)
        high, on = _clamp(h / _APPROACH_HEIGHT), _clamp(1.0 - h / _ON_HEIGHT)
        o_f, o_v = self.oscillator(t)
        stroke = _clamp(w("fwd") * o_f * on) - _clamp(w("back") * o_v * on)
        dist = torch.linalg.vector_norm(d, dim=-1)
        # The unit vector to the next point, shrunk near it (0 at the point itself).
        toward = d / dist.clamp(min=_NEAR).unsqueeze(-1)
        feedback = (w("touch") * under + w("hold") * c + w("relax") * over) if self.config.touch \
            else w("hold") * torch.ones_like(sf)
        press = _clamp(w("approach") * high + w("tonic") + feedback)
        lift = _clamp(w("withdraw") * pain)
        xy = stroke.unsqueeze(-1) * toward
        stiff = torch.tensor([_STIFFNESS_XY, _STIFFNESS_XY, _STIFFNESS_Z], dtype=obs.dtype)
        stiff = stiff.expand(*obs.shape[:-1], 3)
        return torch.cat([xy, (lift - press).unsqueeze(-1), stiff], dim=-1).clamp(-1.0, 1.0)


class WipeCircuitPolicy:
    """The circuit as a :class:`~robot_brain.policies.Policy` (deterministic, memoryless)."""

    def __init__(self, circuit: WipeCircuit) -> None:
        self.circuit = circuit

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.circuit(torch.as_tensor(np.asarray(obs, dtype=np.float64))).numpy().astype(np.float32)


class WipeCircuitSpec:
    """The wipe circuit as ``wipe``'s circuit prior (``--policy ncap``); its options are
    :class:`WipeCircuitConfig`'s."""

    name = "ncap"
    config_type = WipeCircuitConfig

    def config(self, options: Mapping[str, Any] | None) -> WipeCircuitConfig:
        return replace_checked(WipeCircuitConfig(), dict(options or {}), "the wipe circuit")

    def build(self, options: Mapping[str, Any] | None, observation_space: gym.Space,
              action_space: gym.Space) -> WipeCircuit:
        """The circuit for the wipe task's spaces (one line if they are not the wipe task's)."""
        if observation_space.shape != (OBS_SIZE,) or action_space.shape != (6,):
            raise ValueError(f"the wipe circuit drives the wipe task ({OBS_SIZE} observations, 6 "
                             f"actions), got observations {observation_space.shape} and actions "
                             f"{action_space.shape}")
        return WipeCircuit(self.config(options))

    def policy(self, env: gym.Env, options: Mapping[str, Any] | None = None) -> WipeCircuitPolicy:
        return WipeCircuitPolicy(self.build(options, env.observation_space, env.action_space))


#: The wipe task's entry of :data:`robot_brain.policies.CIRCUITS`.
WIPE_CIRCUIT = WipeCircuitSpec()
