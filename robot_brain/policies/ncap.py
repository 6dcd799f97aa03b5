"""The C. elegans swimming circuit (NCAP) as a policy: a few signed weights instead of an MLP.

After "Neural Circuit Architectural Priors for Embodied Control" (Bhattasali, Zador, Engel,
NeurIPS 2022). For a body with ``N`` actuated joints (joint 0 nearest the head) the circuit has
``4N + 2`` units and no recurrent state and no biases: it maps (joint angles, step index) to
torques.

- **Sensors.** ``q_hat[i] = clip(q[i] / (2 pi / (N + 1)), -1, 1)`` (the divisor is the joint
  range of an ``N + 1``-segment swimmer), split into a dorsal part ``s_d = max(q_hat, 0)`` and a
  ventral part ``s_v = max(-q_hat, 0)``.
- **Head oscillator.** A square wave of period ``T`` control steps:
  ``o_d(t) = 1 if (t mod T) < T/2 else 0`` and ``o_v = 1 - o_d``. Period and phase are fixed.
- **B-neurons.** The head joint's are driven by the oscillator, every other joint's by the
  previous joint's bend (proprioception), which passes the wave from head to tail:
  ``b_d[0] = g(w_osc o_d)``, ``b_d[i] = g(w_prop s_d[i-1])``; ventral alike.
- **Muscles.** Ipsilateral excitation, contralateral inhibition:
  ``m_d[i] = g(w_ipsi b_d[i] + w_contra b_v[i])``, ``m_v[i] = g(w_ipsi b_v[i] + w_contra b_d[i])``.
- **Action.** ``a[i] = m_d[i] - m_v[i]`` in [-1, 1].

Here ``g(x) = clamp(x, 0, 1)`` (a "graded" unit). Sign constraints are projections in the forward
pass: excitatory weights (``w_osc``, ``w_prop``, ``w_ipsi``) act as ``max(w, 0)``, the inhibitory
``w_contra`` as ``min(w, 0)``; the stored parameter keeps its value, so a weight pushed past zero
acts as 0 (and gets no gradient) until it comes back. Note that a joint's dorsal and ventral
B-neurons are never active together (their inputs are the two halves of one signal), so under
the constraints contralateral inhibition only ever pushes an already silent muscle below zero:
``w_contra`` is inert (zero gradient) unless the constraints are off.

With shared weights (the default) the circuit has 4 parameters whatever ``N``: the same weights
drive a longer body unchanged. Unshared, each joint has its own six (input, ipsilateral and
contralateral weight, dorsal and ventral; the input is the oscillator at joint 0 and
proprioception elsewhere): ``6N``.

The observation contract is :mod:`robot_brain.envs.swimmer`'s: the first ``N`` elements are the
joint angles [rad], head to tail, and the last is the control-step index of the episode. The
circuit is a pure function of the observation, so it can stand in for an actor network.

Checkpoints (:func:`save_circuit`, :func:`load_circuit`) are a folder with ``ncap.json`` (the
configuration) and ``ncap.pt`` (a plain dict of tensors, read with ``torch.load(weights_only=True)``,
so loading never runs pickled code).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import torch
from torch import nn

from robot_brain.fileio import atomic_write, atomic_write_json
from robot_brain.params import param, replace_checked, validate

if TYPE_CHECKING:
    import gymnasium as gym

__all__ = ["CONFIG_FILE", "INITS", "SWIMMER_CIRCUIT", "WEIGHTS_FILE", "ActivityRecorder", "ActivityTrace",
           "CircuitActivity", "CircuitPolicy", "NcapCircuit", "NcapConfig", "SwimmerCircuitSpec",
           "draw_circuit", "load_circuit", "plot_activity", "save_circuit"]

INITS = ("constant", "uniform", "random_sign")
CONFIG_FILE = "ncap.json"
WEIGHTS_FILE = "ncap.pt"
_FORMAT = "robot_brain.ncap"
_FORMAT_VERSION = 1

# Roles of the weights and their sign (+1 excitatory, -1 inhibitory).
_SIGN = {"osc": 1.0, "prop": 1.0, "ipsi": 1.0, "contra": -1.0}


@dataclass(frozen=True)
class NcapConfig:
    """Options of the circuit (the switches are the ablations of the NCAP study).

    :param n_joints: actuated joints of the body (a ``links``-segment swimmer has ``links - 1``).
    :param period: oscillator period [control steps]; fixed, not learned.
    :param sign_constraints: project excitatory weights onto >= 0 and inhibitory onto <= 0.
    :param shared_weights: one set of 4 weights for every joint (transfers across body lengths);
        else 6 per joint.
    :param init: ``"constant"`` (excitatory +1, inhibitory -1), ``"uniform"`` (random magnitudes
        with the prescribed signs: excitatory uniform in [0, 1], inhibitory in [-1, 0]) or
        ``"random_sign"`` (each weight +1 or -1 at random, whatever its role: the init of the
        "no E/I prior" ablation, meant with ``sign_constraints=False``).
    :param init_seed: seed of the random inits (ignored by ``"constant"``).
    :param proprioception: joints after the head are driven by the previous joint's bend.
    :param oscillator: the head joint is driven by the square-wave oscillator.
    """

    n_joints: int = param(5, "actuated joints of the body (links - 1)", kind="int", low=1, high=256)
    period: int = param(60, "oscillator period in control steps (0.03 s each in the swimmer)",
                        kind="int", low=2, high=100_000)
    sign_constraints: bool = param(True, "excitatory weights >= 0, inhibitory <= 0", kind="bool")
    shared_weights: bool = param(True, "the same 4 weights at every joint", kind="bool")
    init: str = param("constant", "initial weights: constant, uniform or random_sign", kind="any")
    init_seed: int = param(0, "seed of the random inits", kind="int", low=0, high=2**63 - 1)
    proprioception: bool = param(True, "joint i > 0 driven by the bend of joint i - 1", kind="bool")
    oscillator: bool = param(True, "head joint driven by the square-wave oscillator", kind="bool")

    def __post_init__(self) -> None:
        validate(self)
        if self.init not in INITS:
            raise ValueError(f"NcapConfig.init = {self.init!r} is not one of {', '.join(INITS)}")


class CircuitActivity(NamedTuple):
    """Unit activities of one forward pass, each (..., n_joints) except the oscillator (..., 1)."""

    o_d: torch.Tensor
    o_v: torch.Tensor
    b_d: torch.Tensor
    b_v: torch.Tensor
    m_d: torch.Tensor
    m_v: torch.Tensor
    action: torch.Tensor


def _param_shapes(config: NcapConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every learned weight: only weights the enabled pathways use exist."""
    n = config.n_joints
    roles = ["ipsi", "contra"]
    if config.oscillator:
        roles.insert(0, "osc")
    if config.proprioception and n > 1:
        roles.insert(1 if config.oscillator else 0, "prop")
    if config.shared_weights:
        return {f"w_{role}": () for role in roles}
    per_joint = {"osc": (), "prop": (n - 1,), "ipsi": (n,), "contra": (n,)}
    return {f"w_{role}_{side}": per_joint[role] for role in roles for side in ("d", "v")}


class NcapCircuit(nn.Module):
    """The circuit (module docstring) for ``config.n_joints`` joints.

    ``forward(obs)`` takes observations (..., obs_dim) laid out as the swimmer's (joint angles
    first, step index last) and returns torques (..., n_joints) in [-1, 1]; any leading batch shape.
    The parameters are float32 (``nn.Module.double()`` works too).

    :param config: the circuit's configuration (default: ``NcapConfig()``).
    """

    def __init__(self, config: NcapConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else NcapConfig()
        if not isinstance(cfg, NcapConfig):
            raise ValueError(f"config must be an NcapConfig, got {type(cfg).__name__}")
        self.n_joints = cfg.n_joints
        self.joint_range = 2.0 * math.pi / (cfg.n_joints + 1)  # rad, divisor of the sensors
        gen = torch.Generator().manual_seed(cfg.init_seed)
        for name, shape in _param_shapes(cfg).items():
            self.register_parameter(name, nn.Parameter(self._init(name, shape, gen)))

    def _init(self, name: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
        init = self.config.init
        if init == "constant":
            return torch.full(shape, _SIGN[name.split("_")[1]])
        if init == "uniform":
            return torch.rand(shape, generator=gen) * _SIGN[name.split("_")[1]]
        return torch.randint(0, 2, shape, generator=gen).float() * 2.0 - 1.0  # random_sign

    @property
    def n_parameters(self) -> int:
        """Number of learned weights (4 shared; 6 per joint unshared, fewer with ablations)."""
        return sum(p.numel() for p in self.parameters())

    def _weight(self, role: str, side: str) -> torch.Tensor:
        """The weight ``role`` as it acts (sign-projected when constrained); scalar or per joint."""
        name = f"w_{role}" if self.config.shared_weights else f"w_{role}_{side}"
        w = cast(torch.Tensor, getattr(self, name))
        if not self.config.sign_constraints:
            return w
        return w.clamp(min=0.0) if _SIGN[role] > 0 else w.clamp(max=0.0)

    def projected_weights(self) -> dict[str, torch.Tensor]:
        """Every weight as it acts in the forward pass (after the sign projection), detached."""
        out = {}
        for name in _param_shapes(self.config):
            parts = name.split("_")
            role, side = parts[1], (parts[2] if len(parts) > 2 else "d")
            out[name] = self._weight(role, side).detach().clone()
        return out

    def oscillator(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(o_d, o_v)`` at step indices ``t`` (rounded, so float indices are safe)."""
        period = self.config.period
        o_d = (torch.remainder(torch.round(t), period) < period / 2).to(t.dtype)
        return o_d, 1.0 - o_d

    def forward_with_activity(self, obs: torch.Tensor) -> CircuitActivity:
        """The torques and every unit's activity for observations (..., obs_dim)."""
        n = self.n_joints
        if obs.shape[-1] < n + 1:
            raise ValueError(f"observations must hold {n} joint angles and the step index (at least "
                             f"{n + 1} numbers), got shape {tuple(obs.shape)}")
        dtype = next(iter(self.parameters())).dtype
        q = obs[..., :n].to(dtype)
        t = obs[..., -1:].to(dtype)
        q_hat = torch.clamp(q / self.joint_range, -1.0, 1.0)
        s_d, s_v = q_hat.clamp(min=0.0), (-q_hat).clamp(min=0.0)

        zeros = torch.zeros_like(t)
        o_d, o_v = self.oscillator(t) if self.config.oscillator else (zeros, zeros)
        # Input of the B-neurons: the oscillator at the head joint, the previous joint's bend after.
        head_d = self._weight("osc", "d") * o_d if self.config.oscillator else zeros
        head_v = self._weight("osc", "v") * o_v if self.config.oscillator else zeros
        if self.config.proprioception and n > 1:
            body_d = self._weight("prop", "d") * s_d[..., :-1]
            body_v = self._weight("prop", "v") * s_v[..., :-1]
        else:
            body_d = body_v = torch.zeros_like(q[..., 1:])
        b_d = torch.cat([head_d, body_d], dim=-1).clamp(0.0, 1.0)
        b_v = torch.cat([head_v, body_v], dim=-1).clamp(0.0, 1.0)

        ipsi_d, ipsi_v = self._weight("ipsi", "d"), self._weight("ipsi", "v")
        contra_d, contra_v = self._weight("contra", "d"), self._weight("contra", "v")
        m_d = (ipsi_d * b_d + contra_d * b_v).clamp(0.0, 1.0)
        m_v = (ipsi_v * b_v + contra_v * b_d).clamp(0.0, 1.0)
        return CircuitActivity(o_d, o_v, b_d, b_v, m_d, m_v, m_d - m_v)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Torques (..., n_joints) in [-1, 1] for observations (..., obs_dim)."""
        return self.forward_with_activity(obs).action


# -- checkpoints -------------------------------------------------------------------------------------
def save_circuit(circuit: NcapCircuit, directory: str | os.PathLike) -> Path:
    """Write ``ncap.json`` (configuration) and ``ncap.pt`` (weights) into ``directory``; returns it."""
    d = Path(directory)
    state = {k: v.detach().cpu().clone() for k, v in circuit.state_dict().items()}
    atomic_write(d / WEIGHTS_FILE, lambda f: torch.save(state, f))
    atomic_write_json(d / CONFIG_FILE, {"format": _FORMAT, "version": _FORMAT_VERSION,
                                        "config": dataclasses.asdict(circuit.config)})
    return d


def _read_config(path: Path) -> NcapConfig:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the circuit configuration {path}: {exc}") from None
    ours = isinstance(meta, dict) and meta.get("format") == _FORMAT
    if not ours or not isinstance(meta.get("config"), dict):
        raise ValueError(f"{path} is not an NCAP circuit configuration (format {_FORMAT!r})")
    if meta.get("version") != _FORMAT_VERSION:
        raise ValueError(f"{path}: circuit format version {meta.get('version')!r} is not supported "
                         f"(this code reads version {_FORMAT_VERSION})")
    return replace_checked(NcapConfig(), meta["config"], f"the circuit in {path}")


def load_circuit(directory: str | os.PathLike, n_joints: int | None = None) -> NcapCircuit:
    """The circuit saved by :func:`save_circuit` in ``directory``.

    :param n_joints: build it for this many joints (default: as saved). Shared weights load for
        any body length; per-joint weights only for the length they were trained on.
    :raises ValueError: one line naming the mismatch (joints, missing files, weights that do not
        fit the configuration).
    """
    d = Path(directory)
    config = _read_config(d / CONFIG_FILE)
    if n_joints is not None and n_joints != config.n_joints:
        if not config.shared_weights:
            raise ValueError(f"the circuit in {d} has unshared (per-joint) weights for {config.n_joints} "
                             f"joints and cannot drive {n_joints} joints; only shared weights transfer "
                             f"across body lengths")
        config = replace_checked(config, {"n_joints": n_joints}, f"the circuit in {d}")
    try:
        state = torch.load(d / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # missing file, not a torch file, or a pickled object other than tensors
        raise ValueError(f"cannot read the circuit weights {d / WEIGHTS_FILE}: "
                         f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
                         ) from None
    circuit = NcapCircuit(config)
    _check_state(state, circuit, str(d / WEIGHTS_FILE))
    circuit.load_state_dict(state)
    return circuit


def _check_state(state: Any, circuit: NcapCircuit, where: str) -> None:
    """One-line ``ValueError`` unless ``state`` holds exactly the circuit's weights and shapes."""
    expected = {k: tuple(v.shape) for k, v in circuit.state_dict().items()}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{where} does not hold a dict of tensors")
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != expected:
        raise ValueError(f"the weights of {where} (name: shape {got}) do not fit the circuit "
                         f"{circuit.config} (expects {expected})")


# -- the policy ---------------------------------------------------------------------------------------
class CircuitPolicy:
    """The circuit as a :class:`~robot_brain.policies.Policy` for a swimmer (deterministic).

    :param env: the swimmer (possibly wrapped); its ``n_joints`` sets the circuit's.
    :param config: the circuit's options; its ``n_joints`` is replaced by the env's.
    :param state_dict: weights to load (e.g. trained ones); default: the config's init.
    :param circuit: a ready circuit instead of ``config`` and ``state_dict`` (must fit the env).
    """

    def __init__(self, env: gym.Env, config: NcapConfig | None = None,
                 state_dict: dict[str, torch.Tensor] | None = None, *,
                 circuit: NcapCircuit | None = None) -> None:
        task = env.unwrapped
        n_joints = getattr(task, "n_joints", None)
        if not isinstance(n_joints, int):
            raise ValueError(f"the circuit needs a body with n_joints (a swimmer), got {type(task).__name__}")
        obs_shape = env.observation_space.shape
        if obs_shape is None or len(obs_shape) != 1 or obs_shape[0] < n_joints + 1:
            raise ValueError(f"the circuit needs flat observations of the joint angles first and the "
                             f"step index last, got shape {obs_shape}")
        if circuit is None:
            cfg = replace_checked(config or NcapConfig(), {"n_joints": n_joints}, "the circuit")
            circuit = NcapCircuit(cfg)
            if state_dict is not None:
                _check_state(state_dict, circuit, "the given state_dict")
                circuit.load_state_dict(state_dict)
        elif circuit.n_joints != n_joints:
            raise ValueError(f"the circuit drives {circuit.n_joints} joints, the env has {n_joints}")
        self.circuit = circuit.eval()

    @classmethod
    def load(cls, directory: str | os.PathLike, env: gym.Env) -> CircuitPolicy:
        """The policy of a saved circuit, for ``env`` (see :func:`load_circuit` for transfer)."""
        return cls(env, circuit=load_circuit(directory, n_joints=getattr(env.unwrapped, "n_joints", None)))

    def save(self, directory: str | os.PathLike) -> Path:
        """Save the circuit (:func:`save_circuit`)."""
        return save_circuit(self.circuit, directory)

    def reset(self) -> None:
        """Nothing to reset: the circuit has no state (its clock is in the observation)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Torques (n_joints,) float32 for one observation."""
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float64))
            return self.circuit(x).numpy().astype(np.float32)


# -- the swimmer's circuit prior (robot_brain.policies.CIRCUITS["swimmer"]) -------------------------
class SwimmerCircuitSpec:
    """The NCAP circuit as the swimmer's circuit prior (:class:`~robot_brain.policies.CircuitSpec`):
    ``sim swimmer --policy ncap`` and ``train swimmer --policy ncap`` build it through here. Its
    options are :class:`NcapConfig`'s, except ``n_joints``, which always comes from the body."""

    name = "ncap"
    config_type = NcapConfig

    def config(self, options: Mapping[str, Any] | None, n_joints: int) -> NcapConfig:
        """The configuration for ``n_joints`` joints with ``options`` (one-line errors)."""
        options = dict(options or {})
        if "n_joints" in options:
            raise ValueError("circuit option n_joints is set by the body (--links), not by the circuit")
        return replace_checked(NcapConfig(), {**options, "n_joints": n_joints}, "the ncap circuit")

    def build(self, options: Mapping[str, Any] | None, observation_space: gym.Space,
              action_space: gym.Space) -> NcapCircuit:
        """A circuit driving ``action_space.shape[0]`` joints from observations laid out as the
        swimmer's (joint angles first, step index last)."""
        act, obs = action_space.shape, observation_space.shape
        if act is None or len(act) != 1 or obs is None or len(obs) != 1 or obs[0] < act[0] + 1:
            raise ValueError(f"the ncap circuit needs flat observations with the joint angles first and "
                             f"the step index last and one torque per joint, got observations {obs} "
                             f"and actions {act}")
        return NcapCircuit(self.config(options, int(act[0])))

    def policy(self, env: gym.Env, options: Mapping[str, Any] | None = None) -> CircuitPolicy:
        """The circuit at its configured initialisation, for ``env``."""
        n_joints = getattr(env.unwrapped, "n_joints", None)
        if not isinstance(n_joints, int):
            raise ValueError(f"the ncap circuit needs a swimmer, got {type(env.unwrapped).__name__}")
        return CircuitPolicy(env, circuit=NcapCircuit(self.config(options, n_joints)))


#: The swimmer's entry of :data:`robot_brain.policies.CIRCUITS`.
SWIMMER_CIRCUIT = SwimmerCircuitSpec()


# -- interpretability: unit activity over an episode, and the wiring diagram ------------------------
@dataclass
class ActivityTrace:
    """Unit activities of one episode, one row per step (arrays (steps, n_joints), oscillator
    (steps,)); ``q_hat`` is the normalised joint angle the circuit senses."""

    o_d: np.ndarray
    o_v: np.ndarray
    b_d: np.ndarray
    b_v: np.ndarray
    m_d: np.ndarray
    m_v: np.ndarray
    q_hat: np.ndarray
    dt: float


class ActivityRecorder:
    """Wraps a policy whose circuit is ``circuit`` and records the circuit's activity at every
    step of the first episode (``sim --plot``): the policy acts as before, the circuit is run a
    second time on the same observation only to read its units.

    :param policy: the acting policy (a :class:`CircuitPolicy`, or a trained policy whose actor
        mean is ``circuit``). :param circuit: its circuit. :param dt: duration of a step [s].
    """

    def __init__(self, policy: Any, circuit: NcapCircuit, dt: float) -> None:
        self.policy, self.circuit, self.dt = policy, circuit, dt
        self._episodes = 0
        self._rows: list[CircuitActivity] = []
        self._q: list[np.ndarray] = []

    def reset(self) -> None:
        self._episodes += 1
        self.policy.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self._episodes <= 1:
            with torch.no_grad():
                x = torch.as_tensor(np.asarray(obs, dtype=np.float64))
                self._rows.append(self.circuit.forward_with_activity(x))
                q = x[: self.circuit.n_joints] / self.circuit.joint_range
            self._q.append(q.clamp(-1.0, 1.0).numpy())
        return self.policy.act(obs)

    def trace(self) -> ActivityTrace:
        """The first episode's activity so far."""
        if not self._rows:
            raise ValueError("no step recorded yet")

        def stack(field: str) -> np.ndarray:
            return np.stack([getattr(r, field).detach().cpu().numpy() for r in self._rows])

        return ActivityTrace(o_d=stack("o_d")[:, 0], o_v=stack("o_v")[:, 0], b_d=stack("b_d"),
                             b_v=stack("b_v"), m_d=stack("m_d"), m_v=stack("m_v"),
                             q_hat=np.stack(self._q), dt=self.dt)


def plot_activity(trace: ActivityTrace, path: str | os.PathLike, *, max_steps: int = 300,
                  title: str | None = None) -> Path:
    """Oscillator, B-neuron and muscle activity over time beside the joint angles (first
    ``max_steps`` steps), written atomically to ``path`` (PNG, SVG or PDF; matplotlib Agg).

    Each of the three lower panels is a heatmap joints x time of a dorsal-minus-ventral
    difference (B-neurons ``b_d - b_v``, muscles ``m_d - m_v`` = the torque, sensed bend
    ``q_hat``): a wave travelling from head to tail is a band of stripes sloping down to the right.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robot_brain.fileio import atomic_savefig

    n = min(len(trace.o_d), max_steps)
    t_end = n * trace.dt
    extent = (0.0, t_end, trace.b_d.shape[1] - 0.5, -0.5)  # joint 0 (head) on top
    fig, axes = plt.subplots(4, 1, figsize=(10, 8), sharex=True,
                             gridspec_kw={"height_ratios": [1, 2, 2, 2]})
    t = np.arange(n) * trace.dt
    axes[0].step(t, trace.o_d[:n], where="post", label="dorsal o_d", color="C3")
    axes[0].step(t, trace.o_v[:n] - 1.1, where="post", label="ventral o_v (offset)", color="C0")
    axes[0].set_yticks([])
    axes[0].set_title("head oscillator", fontsize=10, loc="left")
    axes[0].legend(fontsize=8, loc="upper right")
    panels = (("B-neurons: b_d - b_v", trace.b_d[:n] - trace.b_v[:n]),
              ("muscles: m_d - m_v (joint torque)", trace.m_d[:n] - trace.m_v[:n]),
              ("joint angles (normalised bend q / joint range)", trace.q_hat[:n]))
    image = None
    for ax, (name, values) in zip(axes[1:], panels, strict=True):
        image = ax.imshow(values.T, aspect="auto", cmap="RdBu_r", vmin=-1.0, vmax=1.0, extent=extent,
                          interpolation="nearest")
        ax.set_ylabel("joint (head = 0)")
        ax.set_title(name, fontsize=10, loc="left")
    axes[-1].set_xlabel("time [s]")
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.6, label="dorsal (+) / ventral (-)")
    fig.suptitle(title or "NCAP circuit activity (first episode)", fontsize=11)
    out = atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return out


def draw_circuit(path: str | os.PathLike, n_joints: int = 4) -> Path:
    """The circuit's wiring for ``n_joints`` joints as a diagram (written atomically to
    ``path``): oscillator, B-neurons, muscles and joint sensors, excitatory connections as green
    arrows, inhibitory ones as red bars, each labelled with its (shared) weight."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    from robot_brain.fileio import atomic_savefig

    if n_joints < 2:
        raise ValueError(f"draw at least 2 joints, got {n_joints}")
    fig, ax = plt.subplots(figsize=(2.2 * n_joints + 2.5, 5.2))
    ax.set_xlim(-1.6, 2.2 * n_joints)
    ax.set_ylim(-3.2, 3.2)
    ax.axis("off")
    ys = {"m_d": 2.4, "b_d": 1.0, "q": 0.0, "b_v": -1.0, "m_v": -2.4}
    colours = {"m": "#f4b183", "b": "#9dc3e6", "o": "#c5e0b4", "q": "#dddddd"}

    def unit(x: float, y: float, label: str, kind: str) -> None:
        ax.add_patch(plt.Circle((x, y), 0.33, facecolor=colours[kind], edgecolor="black", zorder=3))
        ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=4)

    def link(a: tuple[float, float], b: tuple[float, float], sign: int, label: str = "",
             rad: float = 0.0) -> None:
        style = "-|>" if sign > 0 else "-["
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=12, shrinkA=13, shrinkB=13,
                                     color="#2e7d32" if sign > 0 else "#c62828", lw=1.4,
                                     connectionstyle=f"arc3,rad={rad}", zorder=2))
        if label:
            ax.text((a[0] + b[0]) / 2 + 0.08, (a[1] + b[1]) / 2 + 0.1, label, fontsize=7,
                    color="#2e7d32" if sign > 0 else "#c62828")

    unit(-1.0, 1.0, "o_d", "o")
    unit(-1.0, -1.0, "o_v", "o")
    ax.text(-1.0, 2.0, "head\noscillator", ha="center", fontsize=8)
    for i in range(n_joints):
        x = 2.2 * i + 0.6
        for side, s in (("d", 1), ("v", -1)):
            unit(x, ys[f"b_{side}"], f"b_{side}{i}", "b")
            unit(x, ys[f"m_{side}"], f"m_{side}{i}", "m")
            first = i == 0
            link((x, ys[f"b_{side}"]), (x, ys[f"m_{side}"]), +1, "w_ipsi" if first and side == "d" else "")
            link((x, ys[f"b_{side}"]), (x + 0.05 * s, ys[f"m_{'v' if side == 'd' else 'd'}"]), -1,
                 "w_contra" if first and side == "d" else "", rad=0.35 * s)
            if first:
                link((-1.0, ys[f"b_{side}"]), (x, ys[f"b_{side}"]), +1, "w_osc" if side == "d" else "")
            else:
                link((x - 1.3, 0.0), (x, ys[f"b_{side}"]), +1, "w_prop" if i == 1 and side == "d" else "")
        ax.add_patch(plt.Rectangle((x + 0.55, -0.3), 0.6, 0.6, facecolor=colours["q"], edgecolor="black",
                                   zorder=3))
        ax.text(x + 0.85, 0.0, f"q{i}", ha="center", va="center", fontsize=8, zorder=4)
        ax.annotate("", xy=(x + 0.85, 0.33), xytext=(x + 0.3, ys["m_d"] - 0.25),
                    arrowprops={"arrowstyle": "->", "color": "grey", "lw": 0.8, "ls": "--"})
        ax.annotate("", xy=(x + 0.85, -0.33), xytext=(x + 0.3, ys["m_v"] + 0.25),
                    arrowprops={"arrowstyle": "->", "color": "grey", "lw": 0.8, "ls": "--"})
        ax.text(x, 3.0, f"joint {i}" + (" (head)" if i == 0 else ""), ha="center", fontsize=9)
    ax.text(2.2 * n_joints - 0.3, -3.05, "torque a_i = m_di - m_vi (grey, dashed) bends joint i; joint i "
            "senses q_i (s_d = max(q, 0), s_v = max(-q, 0)) and excites the B-neurons of joint i+1",
            ha="right", fontsize=7, color="dimgrey")
    ax.set_title("NCAP swimming circuit: green arrows excite, red bars inhibit; 4 weights shared by "
                 "every joint", fontsize=10)
    out = atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return out
