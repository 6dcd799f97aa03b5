"""Run-time safety: the reflexes of the fast loop, the learned critic's inference, recovery, events.

Everything here runs inside (or sets up) the 1 kHz loop (the reflexes; the safety envelope the loop
applies under every reflex), on a robot as in simulation: numpy and
numba only, no torch, no tasks, no experiment tooling. Recording data and training the critic
live in :mod:`robot_brain.critic_training`; the CMDP adapter in :mod:`robot_brain.training.cmdp`.
"""

from .critic import CriticFileError, RiskModel, load_critic, save_critic
from .envelope import EnvelopeConfig, SafetyEnvelope
from .events import FAULT_REASONS, LIMIT_REASONS, REFLEX_REASONS, Event, EventLog
from .features import FEATURE_NAMES, N_FEATURES, ContactMemory, critic_features
from .limits import LimitsConfig, LimitsReflex
from .recovery import CriticReflex
from .reflex import Reflex
from .retreat import RetreatConfig, retreat_and_soften
from .shield import SHIELD_NAMES, ShieldSpec, build_shield, check_shield_spec

__all__ = [
    "FAULT_REASONS",
    "FEATURE_NAMES",
    "LIMIT_REASONS",
    "N_FEATURES",
    "REFLEX_REASONS",
    "SHIELD_NAMES",
    "ContactMemory",
    "CriticFileError",
    "CriticReflex",
    "EnvelopeConfig",
    "Event",
    "EventLog",
    "LimitsConfig",
    "LimitsReflex",
    "Reflex",
    "RetreatConfig",
    "RiskModel",
    "SafetyEnvelope",
    "ShieldSpec",
    "build_shield",
    "check_shield_spec",
    "critic_features",
    "load_critic",
    "retreat_and_soften",
    "save_critic",
]
