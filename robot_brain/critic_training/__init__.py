"""Experiment tooling of the safety critic: recording transitions and training it (torch).

Not part of the run-time path: :mod:`robot_brain.safety` (the reflexes and the critic's
inference) never imports this package. ``robot-brain train-critic`` is a thin layer over it.

- :mod:`.dataset`: :class:`RecordingReflex`, :class:`TransitionData` (the ``transitions.npz``
  file), :func:`collect` (episodes of a task with violations);
- :mod:`.learning`: :class:`CriticTrainer` (twin risk heads, recovery policy, export to the
  run-time :class:`robot_brain.safety.RiskModel`), :func:`evaluate_critic`, :func:`roc_auc`.

:mod:`.learning` imports torch; it is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .dataset import (
    COLLECT_POLICIES,
    DatasetFileError,
    PerturbedPolicy,
    RecordingReflex,
    TransitionData,
    collect,
)

if TYPE_CHECKING:
    from .learning import CriticConfig, CriticTrainer, evaluate_critic, roc_auc

__all__ = [
    "COLLECT_POLICIES",
    "CriticConfig",
    "CriticTrainer",
    "DatasetFileError",
    "PerturbedPolicy",
    "RecordingReflex",
    "TransitionData",
    "collect",
    "evaluate_critic",
    "roc_auc",
]

_LEARNING = ("CriticConfig", "CriticTrainer", "evaluate_critic", "roc_auc")


def __getattr__(name: str) -> Any:
    if name in _LEARNING:
        from . import learning

        return getattr(learning, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
