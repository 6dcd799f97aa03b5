"""The ``Reflex`` contract: what the fast loop asks of every reflex (hard limits, learned critic).

A reflex sits between the interpolator and the controller. On every fast tick it sees the
measured state and the intermediate setpoint ``a_hat`` and returns the setpoint to execute: the
same object when nothing is wrong, a recovery setpoint when it intervenes (with an event in the
log). It is a :class:`typing.Protocol`: any object with these three methods plugs into
:class:`robot_brain.runtime.TwoRateLoop`; no base class is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from robot_brain.controllers.types import Command, RobotState

    from .events import EventLog

__all__ = ["Reflex"]


@runtime_checkable
class Reflex(Protocol):
    """A fast-tick reflex.

    ``check`` must be real-time safe: no allocation in the common path, no I/O, no exception
    (a fault is answered by a safe setpoint and an event, never by raising).
    """

    def reset(self, state: RobotState) -> None:
        """Called when the loop is reset (a new episode or session)."""

    def new_command(self, command: Command) -> None:
        """Called on every slow tick with the policy's new command."""

    def check(self, tick: int, state: RobotState, setpoint: Command, log: EventLog) -> Command:
        """The setpoint to execute on fast tick ``tick`` (``setpoint`` itself when safe)."""
        ...
