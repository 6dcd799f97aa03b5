"""Training the safety critic and the recovery policy (torch); export to :class:`RiskModel`.

Risk critic (Recovery RL's form, twin heads, soft-updated targets)::

    y      = c + (1 - c) * (1 - done) * gamma_risk * max(Q1', Q2')(x')
    loss   = BCE(Q1(x), y) + BCE(Q2(x), y)          # y is a probability: cross-entropy with a
                                                     # soft target, same fixed point as the MSE
    theta' <- (1 - tau) * theta' + tau * theta       # after every gradient step

``x = features(s_k, a_hat_k)`` and ``x' = features(s_{k+1}, a_hat_{k+1})`` with ``a_hat_{k+1}``
the setpoint the behaviour executed ``critic_dt`` later (SARSA on the recorded behaviour: the
critic estimates the risk of going on as the data did, which is the question the reflex asks).

Recovery policy: ``pi_rec(s) -> (offset, stiffness)`` on the task's action axes, trained to
minimise ``max(Q1, Q2)(s, pi_rec(s))`` (the logit, so the gradient does not vanish where the
sigmoid saturates) over the recorded states, with the critic frozen. The setpoint features are
rebuilt differentiably by :func:`robot_brain.safety.features.setpoint_features`.

The torch state is saved as ``critic.pt`` (tensors and plain numbers only) and read back with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from robot_brain.fileio import atomic_write
from robot_brain.safety.critic import TORCH_FILE, CriticFileError, RiskModel, load_critic, save_critic
from robot_brain.safety.features import (
    E_REF,
    F_REF,
    FEATURE_NAMES,
    K_HI,
    K_LO,
    MEMORY_TAU,
    N_FEATURES,
    N_STATE_FEATURES,
    setpoint_features,
)

from .dataset import TransitionData

__all__ = ["CriticConfig", "CriticTrainer", "RecoveryNet", "RiskNet", "evaluate_critic", "roc_auc"]

# Floors of the per-feature standard deviation (feature units): a feature that hardly varies in
# the data (e.g. the tool height in a planar task) must not be blown up at run time.
_STD_FLOOR = np.array([0.01] * 6 + [0.05] * 8 + [0.05] * 9 + [0.05, 0.01, 0.05, 0.01])
assert _STD_FLOOR.shape == (N_FEATURES,)


@dataclass(frozen=True)
class CriticConfig:
    """Hyper-parameters of the critic and the recovery policy (units in brackets).

    :param hidden: sizes of the two hidden layers of each critic head.
    :param gamma_risk: discount per critic interval; with ``critic_dt = 10 ms``, 0.9 weights a
        violation 100 ms ahead by 0.35 (horizon ~ ``critic_dt / (1 - gamma_risk)`` = 100 ms,
        two slow ticks: the time a retreat needs to take effect).
    :param eps_safe: risk above which the reflex intervenes (stored with the critic); 0.15
        measured best on the maze (0.1-0.3 tried, see ``docs/safety.md``).
    :param critic_dt: critic interval [s] (transitions are recorded every ``critic_dt``).
    :param tau: soft target update rate per gradient step.
    :param lr: Adam learning rate. :param batch_size: transitions per gradient step.
    :param weight_decay: L2 penalty of Adam.
    :param rec_hidden: hidden sizes of the recovery policy.
    :param rec_r_max: largest recovery setpoint offset from the tool [m].
    :param rec_k_min: lowest recovery stiffness [N/m]. :param rec_k_max: highest [N/m].
    :param rec_offset_cost: penalty on the squared normalised offset (keeps the recovery near
        the data, where the critic is trustworthy).
    """

    hidden: tuple[int, int] = (64, 64)
    gamma_risk: float = 0.9
    eps_safe: float = 0.15
    critic_dt: float = 0.01
    tau: float = 0.01
    lr: float = 1e-3
    batch_size: int = 256
    weight_decay: float = 1e-5
    rec_hidden: tuple[int, int] = (64, 64)
    rec_r_max: float = 0.02
    rec_k_min: float = 100.0
    rec_k_max: float = 2000.0
    rec_offset_cost: float = 0.05

    def __post_init__(self) -> None:
        if len(self.hidden) != 2 or min(self.hidden) < 1:
            raise ValueError(f"hidden must be two positive layer sizes, got {self.hidden}")
        if not 0.0 <= self.gamma_risk < 1.0:
            raise ValueError(f"gamma_risk must be in [0, 1), got {self.gamma_risk}")
        if not 0.0 < self.eps_safe < 1.0:
            raise ValueError(f"eps_safe must be in (0, 1), got {self.eps_safe}")
        if not self.critic_dt > 0:
            raise ValueError(f"critic_dt must be > 0 s, got {self.critic_dt}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if not 0 < self.rec_k_min <= self.rec_k_max:
            raise ValueError(f"need 0 < rec_k_min <= rec_k_max, got {self.rec_k_min}, {self.rec_k_max}")


def _mlp(n_in: int, hidden: tuple[int, int], n_out: int) -> nn.Sequential:
    h1, h2 = hidden
    return nn.Sequential(nn.Linear(n_in, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(),
                         nn.Linear(h2, n_out))


class RiskNet(nn.Module):
    """Twin risk heads over standardised features; ``forward`` = ``sigmoid(max logit)``."""

    mean: torch.Tensor  # buffers (register_buffer), declared for the type checker
    std: torch.Tensor

    def __init__(self, hidden: tuple[int, int] = (64, 64)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(N_FEATURES, dtype=torch.float64))
        self.register_buffer("std", torch.ones(N_FEATURES, dtype=torch.float64))
        self.q1 = _mlp(N_FEATURES, hidden, 1).double()
        self.q2 = _mlp(N_FEATURES, hidden, 1).double()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return torch.cat([self.q1(z), self.q2(z)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x).max(dim=1).values)


class RecoveryNet(nn.Module):
    """``state features -> (offset [m], stiffness [N/m])`` on ``n_axes`` axes (tanh-bounded)."""

    def __init__(self, n_axes: int, hidden: tuple[int, int], r_max: float, k_min: float,
                 k_max: float) -> None:
        super().__init__()
        self.n_axes = n_axes
        self.r_max = r_max
        self.logk = (math.log(k_min), math.log(k_max))
        self.net = _mlp(N_STATE_FEATURES, hidden, 2 * n_axes).double()

    def forward(self, z_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o = torch.tanh(self.net(z_state))
        lo, hi = self.logk
        na = self.n_axes
        return self.r_max * o[:, :na], torch.exp(lo + 0.5 * (o[:, na:] + 1.0) * (hi - lo))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by ranks (Mann-Whitney U; ties get their average rank).

    The probability that a random positive (violating) transition scores above a random
    negative one. NaN when only one class is present.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(bool)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size)
    sorted_s = s[order]
    # Average ranks over runs of equal scores.
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each run
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def evaluate_critic(risk: np.ndarray, data: TransitionData, gamma: float,
                    bins: int = 10) -> dict[str, Any]:
    """Held-out metrics of predicted risks ``risk`` on ``data``.

    ``auc``: ROC AUC of the risk against the violation label ``c`` (ranks violating intervals
    above safe ones); ``auc_future``: against "a violation within the next 100 ms"; ``brier``:
    mean squared error against the empirical discounted risk of the recorded episodes;
    ``calibration``: per risk bin, the mean prediction and the mean empirical risk.
    """
    mc = data.mc_risk(gamma)
    c = data.cost > 0.5
    # Label "a violation within the next `horizon` intervals" (same episode).
    soon = c.copy()
    horizon = 10
    for lag in range(1, horizon):
        same = data.episode[lag:] == data.episode[:-lag]
        soon[:-lag] |= c[lag:] & same
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(risk, edges) - 1, 0, bins - 1)
    cal = []
    for b in range(bins):
        m = idx == b
        if m.any():
            cal.append({"bin": [float(edges[b]), float(edges[b + 1])], "n": int(m.sum()),
                        "predicted": float(risk[m].mean()), "empirical": float(mc[m].mean())})
    return {
        "n": len(data), "violations": int(c.sum()), "auc": roc_auc(risk, c),
        "auc_future": roc_auc(risk, soon), "brier": float(np.mean((risk - mc) ** 2)),
        "calibration": cal,
    }


@dataclass
class _History:
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    auc: list[float] = field(default_factory=list)
    brier: list[float] = field(default_factory=list)
    rec_step: list[int] = field(default_factory=list)
    rec_risk: list[float] = field(default_factory=list)


class CriticTrainer:
    """Offline pre-training and online updates of the risk critic (and the recovery policy).

    :param config: hyper-parameters. :param seed: torch seed (initial weights, batches).
    :param axes: Cartesian axes the recovery policy moves (the task's action axes, e.g. (0, 1)).
    :param meta: extra metadata stored with the critic (task, force_limit ...).
    """

    def __init__(self, config: CriticConfig | None = None, *, seed: int = 0,
                 axes: tuple[int, ...] = (0, 1, 2), meta: dict | None = None) -> None:
        self.config = cfg = config or CriticConfig()
        self.seed = seed
        self.axes = tuple(int(a) for a in axes)
        if not self.axes or any(a not in (0, 1, 2) for a in self.axes):
            raise ValueError(f"axes must be a non-empty subset of (0, 1, 2), got {axes}")
        self.meta = dict(meta or {})
        self.gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.critic = RiskNet(cfg.hidden)
        self.target = RiskNet(cfg.hidden)
        self.target.load_state_dict(self.critic.state_dict())
        self.target.requires_grad_(False)
        self.opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.recovery: RecoveryNet | None = None
        self.history = _History()
        self.steps_done = 0
        self.buffer: TransitionData | None = None
        self.metrics: dict[str, Any] = {}

    # -- data ------------------------------------------------------------------------------------
    def set_normalisation(self, data: TransitionData) -> None:
        """Per-feature mean/std of ``data`` (std floored, see ``_STD_FLOOR``); critic and target."""
        x = np.concatenate([data.features, data.next_features])
        mean = torch.as_tensor(x.mean(0))
        std = torch.as_tensor(np.maximum(x.std(0), _STD_FLOOR))
        for net in (self.critic, self.target):
            net.mean.copy_(mean)
            net.std.copy_(std)

    def add(self, data: TransitionData) -> None:
        """Append transitions to the replay buffer (online data joins the offline data)."""
        self.buffer = data if self.buffer is None else TransitionData.concatenate([self.buffer, data])
        self._tensors = tuple(torch.as_tensor(a, dtype=torch.float64) for a in (
            self.buffer.features, self.buffer.cost, self.buffer.next_features,
            self.buffer.done.astype(np.float64)))

    # -- critic ------------------------------------------------------------------------------------
    def update(self, x: torch.Tensor, c: torch.Tensor, x2: torch.Tensor, done: torch.Tensor) -> float:
        """One gradient step on a batch of transitions; returns the loss."""
        cfg = self.config
        with torch.no_grad():
            q_next = torch.sigmoid(self.target.logits(x2).max(dim=1).values)
            y = c + (1.0 - c) * (1.0 - done) * cfg.gamma_risk * q_next
        logits = self.critic.logits(x)
        bce = nn.functional.binary_cross_entropy_with_logits
        loss = bce(logits[:, 0], y) + bce(logits[:, 1], y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            for p, tp in zip(self.critic.parameters(), self.target.parameters(), strict=True):
                tp.mul_(1.0 - cfg.tau).add_(p, alpha=cfg.tau)
        self.steps_done += 1
        return loss.item()

    def fit(self, steps: int, *, eval_data: TransitionData | None = None, eval_every: int = 250,
            progress: Callable[[int, dict], None] | None = None) -> dict[str, Any]:
        """``steps`` gradient steps on the buffer (call :meth:`add` first); evaluates on
        ``eval_data`` every ``eval_every`` steps. Returns the last evaluation."""
        if self.buffer is None or len(self.buffer) == 0:
            raise ValueError("the replay buffer is empty: add() transitions before fit()")
        x, c, x2, d = self._tensors
        n = len(c)
        bs = min(self.config.batch_size, n)
        last: dict[str, Any] = {}
        running = []
        for i in range(1, steps + 1):
            idx = torch.randint(0, n, (bs,), generator=self.gen)
            running.append(self.update(x[idx], c[idx], x2[idx], d[idx]))
            if i % 25 == 0 or i == steps:
                self.history.step.append(self.steps_done)
                self.history.loss.append(float(np.mean(running)))
                running = []
            if eval_data is not None and len(eval_data) and (i % eval_every == 0 or i == steps):
                last = evaluate_critic(self.predict(eval_data.features), eval_data,
                                       self.config.gamma_risk)
                self.history.eval_step.append(self.steps_done)
                self.history.auc.append(last["auc"])
                self.history.brier.append(last["brier"])
            if progress is not None:
                progress(i, {"loss": self.history.loss[-1] if self.history.loss else float("nan"),
                             "auc": self.history.auc[-1] if self.history.auc else float("nan")})
        return last

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Risk ``max(Q1, Q2)`` of a feature batch (torch model)."""
        return self.critic(torch.as_tensor(np.asarray(features, dtype=np.float64))).numpy()

    # -- recovery ----------------------------------------------------------------------------------
    def train_recovery(self, steps: int, *, data: TransitionData | None = None,
                       progress: Callable[[int, dict], None] | None = None) -> float:
        """Train ``pi_rec`` to minimise the frozen critic's risk over the recorded states.

        States are weighted toward risky ones (half of each batch from transitions whose
        recorded risk is above ``eps_safe / 2``), where recovery matters. Returns the mean risk
        of the recovery setpoints on the last batch.
        """
        cfg = self.config
        data = data if data is not None else self.buffer
        if data is None or len(data) == 0:
            raise ValueError("no states to train the recovery policy on")
        na = len(self.axes)
        if self.recovery is None:
            self.recovery = RecoveryNet(na, cfg.rec_hidden, cfg.rec_r_max, cfg.rec_k_min, cfg.rec_k_max)
        rec = self.recovery
        opt = torch.optim.Adam(rec.parameters(), lr=cfg.lr)
        self.critic.requires_grad_(False)
        x_all = torch.as_tensor(data.features, dtype=torch.float64)
        risky = np.flatnonzero(self.predict(data.features) > cfg.eps_safe / 2)
        risky_t = torch.as_tensor(risky if len(risky) else np.arange(len(data)))
        mean, std = self.critic.mean, self.critic.std
        axes = list(self.axes)
        bs = min(cfg.batch_size, len(data))
        risk_val = float("nan")
        try:
            for i in range(1, steps + 1):
                half = bs // 2
                idx = torch.cat([torch.randint(0, len(data), (bs - half,), generator=self.gen),
                                 risky_t[torch.randint(0, len(risky_t), (half,), generator=self.gen)]])
                x = x_all[idx]
                z_state = ((x - mean) / std)[:, :N_STATE_FEATURES]
                offset, k = rec(z_state)
                x_new = self._with_setpoint(x, offset, k, axes)
                logit = self.critic.logits(x_new).max(dim=1).values
                loss = logit.mean() + cfg.rec_offset_cost * ((offset / cfg.rec_r_max) ** 2).sum(1).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                risk_val = torch.sigmoid(logit.detach()).mean().item()
                if i % 25 == 0 or i == steps:
                    self.history.rec_step.append(i)
                    self.history.rec_risk.append(risk_val)
                if progress is not None:
                    progress(i, {"risk": risk_val})
        finally:
            self.critic.requires_grad_(True)
        return risk_val

    @staticmethod
    def _with_setpoint(x: torch.Tensor, offset: torch.Tensor, k: torch.Tensor,
                       axes: list[int]) -> torch.Tensor:
        """Features of the recorded state with the setpoint replaced on ``axes`` by
        ``tool + offset`` at stiffness ``k`` (other axes keep the recorded setpoint)."""
        err = x[:, 14:17] * E_REF
        # Recorded stiffness from logk: K = exp(logk * span + ln K_LO).
        span = math.log(K_HI) - math.log(K_LO)
        stiff = torch.exp(x[:, 20:23] * span + math.log(K_LO))
        cols_e = [err[:, j:j + 1] for j in range(3)]
        cols_k = [stiff[:, j:j + 1] for j in range(3)]
        for n, a in enumerate(axes):
            cols_e[a] = offset[:, n:n + 1]
            cols_k[a] = k[:, n:n + 1]
        err = torch.cat(cols_e, 1)
        stiff = torch.cat(cols_k, 1)
        force = x[:, 6:9] * F_REF
        vel = x[:, 3:6]
        sp = setpoint_features(force, vel, err, stiff, x[:, 10:13], x[:, 13:14], xp=torch)
        return torch.cat([x[:, :N_STATE_FEATURES], sp], 1)

    # -- export and files --------------------------------------------------------------------------
    def export(self, eps_safe: float | None = None) -> RiskModel:
        """The run-time :class:`RiskModel` (numpy weights) of the current critic and recovery."""
        cfg = self.config
        q1, q2 = self.critic.q1, self.critic.q2

        def t(a: torch.Tensor) -> np.ndarray:
            return a.detach().cpu().numpy().astype(np.float64).copy()

        def lin(seq: nn.Sequential, i: int) -> nn.Linear:
            return cast(nn.Linear, seq[i])  # _mlp: Linear layers at 0, 2, 4

        arrays = {
            "mean": t(self.critic.mean), "std": t(self.critic.std),
            "w1": np.concatenate([t(lin(q1, 0).weight), t(lin(q2, 0).weight)]),
            "b1": np.concatenate([t(lin(q1, 0).bias), t(lin(q2, 0).bias)]),
            "w2": np.stack([t(lin(q1, 2).weight), t(lin(q2, 2).weight)]),
            "b2": np.stack([t(lin(q1, 2).bias), t(lin(q2, 2).bias)]),
            "w3": np.stack([t(lin(q1, 4).weight)[0], t(lin(q2, 4).weight)[0]]),
            "b3": np.array([t(lin(q1, 4).bias)[0], t(lin(q2, 4).bias)[0]]),
        }
        meta: dict[str, Any] = {
            **self.meta,
            "eps_safe": float(eps_safe if eps_safe is not None else cfg.eps_safe),
            "gamma_risk": cfg.gamma_risk, "critic_dt": cfg.critic_dt,
            "force_limit": float(self.meta.get("force_limit", F_REF)),
            "contact_memory": {"tau": float(self.meta.get("memory_tau", MEMORY_TAU)),
                               "dt": float(self.meta.get("control_dt", 0.001))},
            "config": asdict(self.config), "train_steps": self.steps_done,
            "metrics": self.metrics, "recovery": None,
        }
        if self.recovery is not None:
            net = self.recovery.net
            arrays.update({"rec_w1": t(lin(net, 0).weight), "rec_b1": t(lin(net, 0).bias),
                           "rec_w2": t(lin(net, 2).weight), "rec_b2": t(lin(net, 2).bias),
                           "rec_w3": t(lin(net, 4).weight), "rec_b3": t(lin(net, 4).bias)})
            meta["recovery"] = {"axes": list(self.axes), "hidden": list(cfg.rec_hidden),
                                "r_max": cfg.rec_r_max, "k_min": cfg.rec_k_min,
                                "k_max": cfg.rec_k_max}
        return RiskModel(arrays, meta)

    def save(self, directory: str | os.PathLike, eps_safe: float | None = None) -> Path:
        """Write the run-time files (``critic.npz``/``critic.json``) and ``critic.pt``."""
        d = Path(directory)
        save_critic(d, self.export(eps_safe))
        state = {
            "format": 1, "feature_names": list(FEATURE_NAMES), "config": asdict(self.config),
            "axes": list(self.axes), "seed": self.seed, "steps_done": self.steps_done,
            "critic": self.critic.state_dict(), "target": self.target.state_dict(),
            "recovery": None if self.recovery is None else self.recovery.state_dict(),
        }
        atomic_write(d / TORCH_FILE, lambda f: torch.save(state, f))
        return d

    @classmethod
    def from_model(cls, model: RiskModel, *, seed: int = 0) -> CriticTrainer:
        """A trainer whose critic (target too) and recovery hold ``model``'s weights: the inverse
        of :meth:`export`, for a critic folder without ``critic.pt`` (the shipped critics). The
        optimiser starts fresh; the normalisation is the model's."""
        meta = dict(model.meta)
        known = {f.name for f in dataclasses.fields(CriticConfig)}
        cfg_d = {k: v for k, v in dict(meta.get("config") or {}).items() if k in known}
        cfg_d["hidden"] = tuple(meta.get("hidden") or cfg_d.get("hidden", (64, 64)))
        if "rec_hidden" in cfg_d:
            cfg_d["rec_hidden"] = tuple(cfg_d["rec_hidden"])
        rec = meta.get("recovery") or {}
        axes = tuple(rec.get("axes", (0, 1, 2)))
        trainer = cls(CriticConfig(**cfg_d), seed=seed, axes=axes, meta=meta)
        a = model.arrays
        h1 = trainer.config.hidden[0]

        def put(layer: nn.Module, weight: np.ndarray, bias: np.ndarray) -> None:
            lin = cast(nn.Linear, layer)
            lin.weight.copy_(torch.as_tensor(weight).reshape(lin.weight.shape))
            lin.bias.copy_(torch.as_tensor(bias).reshape(lin.bias.shape))

        with torch.no_grad():
            for net in (trainer.critic, trainer.target):
                net.mean.copy_(torch.as_tensor(a["mean"]))
                net.std.copy_(torch.as_tensor(a["std"]))
                for i, head in enumerate((net.q1, net.q2)):
                    put(head[0], a["w1"][i * h1:(i + 1) * h1], a["b1"][i * h1:(i + 1) * h1])
                    put(head[2], a["w2"][i], a["b2"][i])
                    put(head[4], a["w3"][i], a["b3"][i:i + 1])
            if model.has_recovery:
                c = trainer.config
                trainer.recovery = RecoveryNet(len(axes), c.rec_hidden, c.rec_r_max, c.rec_k_min, c.rec_k_max)
                body = trainer.recovery.net
                for j, k in ((0, 1), (2, 2), (4, 3)):
                    put(body[j], a[f"rec_w{k}"], a[f"rec_b{k}"])
        trainer.steps_done = int(meta.get("train_steps", 0))
        return trainer

    @classmethod
    def resume(cls, directory: str | os.PathLike, *, seed: int = 0) -> CriticTrainer:
        """A trainer that continues the critic of ``directory``: from its torch state
        (``critic.pt``) when the folder has one, else from the run-time files."""
        model = load_critic(directory)
        if (Path(directory) / TORCH_FILE).is_file():
            return cls.load(directory, meta=model.meta)
        return cls.from_model(model, seed=seed)

    @classmethod
    def load(cls, directory: str | os.PathLike, meta: dict | None = None) -> CriticTrainer:
        """Resume training from ``critic.pt`` (``torch.load(weights_only=True)``: no pickled code)."""
        path = Path(directory) / TORCH_FILE
        if not path.is_file():
            raise CriticFileError(f"{path}: torch training state not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError, RuntimeError (corrupt zip), EOFError ...
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CriticFileError(f"{path}: cannot be loaded safely ({line[:200]})") from None
        if not isinstance(state, dict) or state.get("feature_names") != list(FEATURE_NAMES):
            raise CriticFileError(f"{path}: not a critic training state for these "
                                  f"{N_FEATURES} features")
        cfg_d = dict(state["config"])
        for key in ("hidden", "rec_hidden"):
            cfg_d[key] = tuple(cfg_d[key])
        trainer = cls(CriticConfig(**cfg_d), seed=int(state["seed"]), axes=tuple(state["axes"]),
                      meta=meta)
        try:
            trainer.critic.load_state_dict(state["critic"])
            trainer.target.load_state_dict(state["target"])
            if state.get("recovery") is not None:
                c = trainer.config
                trainer.recovery = RecoveryNet(len(trainer.axes), c.rec_hidden, c.rec_r_max,
                                               c.rec_k_min, c.rec_k_max)
                trainer.recovery.load_state_dict(state["recovery"])
        except RuntimeError as exc:  # shape mismatch
            lines = str(exc).strip().splitlines()
            raise CriticFileError(f"{path}: weights do not fit the stored config "
                                  f"({' '.join(lines[:2])[:240]})") from None
        trainer.steps_done = int(state["steps_done"])
        return trainer
