"""Intervention events: every time the reflex layer or a limit changes what the robot does.

Interventions are logged by *onset*: a contact-force reflex that stays engaged for 80 ticks is one
event (with the tick count kept per reason), so the log reads like an incident list, and the fast
loop does not allocate while a limit stays engaged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

__all__ = ["FAULT_REASONS", "LIMIT_REASONS", "REFLEX_REASONS", "Event", "EventLog"]

#: Interventions of the reflex layer: it changed the setpoint (emitted by ``LimitsReflex``,
#: ``CriticReflex`` and the ``SafetyEnvelope`` under every reflex).
REFLEX_REASONS = ("contact_force", "workspace", "joint_limit", "critic", "velocity_limit",
                  "setpoint_lead", "stiffness_limit", "force_ceiling")
#: Torque clipping after the controller (emitted by the loop from ``TorqueLimiter``'s flags).
LIMIT_REASONS = ("torque_limit", "torque_rate")
#: Faults answered by a hold (emitted by the loop; ``critic_fault`` by ``CriticReflex`` when the
#: critic's output is NaN).
FAULT_REASONS = ("nonfinite_state", "nonfinite_command", "nonfinite_torque", "stale_state",
                 "read_error", "critic_fault")


@dataclass(frozen=True)
class Event:
    """One intervention onset.

    :param t: time [s] of the tick it began on.
    :param tick: fast-tick index since the loop's reset.
    :param reason: what triggered it: one of :data:`REFLEX_REASONS`, :data:`LIMIT_REASONS` or
        :data:`FAULT_REASONS`.
    :param value: the measured quantity that triggered it (N, m, rad, risk ...).
    :param detail: human-readable detail (limit, joint index ...).
    """

    t: float
    tick: int
    reason: str
    value: float = 0.0
    detail: str = ""

    def as_dict(self) -> dict:
        return {"t": self.t, "tick": self.tick, "reason": self.reason, "value": self.value,
                "detail": self.detail}


class EventLog:
    """Onset events plus the number of ticks each reason was engaged."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.ticks: Counter[str] = Counter()
        self._prev: set[str] = set()
        self._now: set[str] = set()

    def mark(self, reason: str, t: float, tick: int, value: float = 0.0, detail: str = "") -> None:
        """Record that ``reason`` is engaged on this tick (an event only at its onset)."""
        if reason in self._now:
            return
        self._now.add(reason)
        self.ticks[reason] += 1
        if reason not in self._prev:
            self.events.append(Event(float(t), int(tick), reason, float(value), detail))

    def end_tick(self) -> None:
        """Close the tick: reasons not marked again will start a new event next time."""
        self._prev, self._now = self._now, self._prev
        self._now.clear()

    def clear(self) -> None:
        self.events.clear()
        self.ticks.clear()
        self._prev.clear()
        self._now.clear()

    def counts(self) -> Counter[str]:
        """Number of onset events per reason."""
        return Counter(e.reason for e in self.events)

    def interventions(self) -> int:
        """Number of reflex interventions (onsets of :data:`REFLEX_REASONS`)."""
        return sum(1 for e in self.events if e.reason in REFLEX_REASONS)
