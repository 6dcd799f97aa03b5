"""The reflex layer: hard limits (always on) and, in a later issue, the learned safety critic."""

from .events import REFLEX_REASONS, Event, EventLog
from .limits import LimitsConfig, LimitsReflex, Reflex

__all__ = ["REFLEX_REASONS", "Event", "EventLog", "LimitsConfig", "LimitsReflex", "Reflex"]
