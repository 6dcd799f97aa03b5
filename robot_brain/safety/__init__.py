"""The reflex layer: hard limits (always on) and the learned safety critic with its recovery.

The torch training code lives in :mod:`robot_brain.safety.learning` (imported on demand, so the
run-time path needs numpy and numba only).
The CMDP adapter (:class:`CMDPWrapper`, :class:`CostConfig`) is a Gymnasium wrapper, loaded on
first use for the same reason.
"""

from .critic import CriticFileError, RiskModel, load_critic, roc_auc, save_critic
from .dataset import DatasetFileError, RecordingReflex, TransitionData, collect
from .events import REFLEX_REASONS, Event, EventLog
from .features import FEATURE_NAMES, N_FEATURES, ContactMemory, critic_features
from .limits import LimitsConfig, LimitsReflex, Reflex
from .recovery import CriticReflex, RetreatConfig, retreat_and_soften
from .shield import install_shield, load_shield

__all__ = [
    "FEATURE_NAMES",
    "N_FEATURES",
    "REFLEX_REASONS",
    "CMDPWrapper",
    "ContactMemory",
    "CostConfig",
    "CriticFileError",
    "CriticReflex",
    "DatasetFileError",
    "Event",
    "EventLog",
    "LimitsConfig",
    "LimitsReflex",
    "RecordingReflex",
    "Reflex",
    "RetreatConfig",
    "RiskModel",
    "TransitionData",
    "collect",
    "critic_features",
    "install_shield",
    "load_critic",
    "load_shield",
    "retreat_and_soften",
    "roc_auc",
    "save_critic",
]


def __getattr__(name: str):
    if name in ("CMDPWrapper", "CostConfig"):
        from . import cmdp

        return getattr(cmdp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
