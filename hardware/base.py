"""The ``Backend`` contract: one robot, sim or real, behind a ros2_control-style lifecycle.

``configure()`` brings communication up (state readable, no commands); ``activate()`` allows
commands; ``write()`` is refused unless active; ``hold()`` is the safe stop every fault ends in;
``deactivate()`` and ``disconnect()`` go back down. Use a backend as a context manager so a
crash still ends in ``disconnect()``.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod

import numpy as np

from robot_brain.controllers.types import Command, RobotState

__all__ = ["Backend", "BackendError", "Lifecycle", "NotActiveError"]


class BackendError(RuntimeError):
    """A device or communication fault."""


class NotActiveError(BackendError):
    """A command was sent to a backend that is not active."""


class Lifecycle(enum.Enum):
    UNCONFIGURED = "unconfigured"
    INACTIVE = "inactive"  # configured: state readable, commands refused
    ACTIVE = "active"
    FINALIZED = "finalized"


class Backend(ABC):
    """Base class of all backends; subclasses implement the ``_hooks``.

    :attr interface: ``"effort"`` (receives joint torques from the brain's controller) or
        ``"impedance"`` (receives the filtered setpoint; the robot's own controller makes torque).
    :attr n_joints: number of actuated joints.
    :attr dt: control period the backend expects between writes [s].
    """

    interface: str = "effort"
    n_joints: int
    dt: float

    def __init__(self) -> None:
        self.lifecycle = Lifecycle.UNCONFIGURED
        self.holding = False

    # -- lifecycle ---------------------------------------------------------------------------
    def configure(self) -> None:
        """Bring communication up; state becomes readable, commands are still refused."""
        if self.lifecycle is Lifecycle.FINALIZED:
            raise BackendError("backend was disconnected; make a new one")
        if self.lifecycle is Lifecycle.UNCONFIGURED:
            self._configure()
            self.lifecycle = Lifecycle.INACTIVE

    def activate(self) -> None:
        """Accept commands from now on."""
        self.configure()
        if self.lifecycle is Lifecycle.INACTIVE:
            self._activate()
            self.lifecycle = Lifecycle.ACTIVE
            self.holding = False

    def deactivate(self) -> None:
        """Stop accepting commands (the robot is put in hold first)."""
        if self.lifecycle is Lifecycle.ACTIVE:
            self.hold()
            self._deactivate()
            self.lifecycle = Lifecycle.INACTIVE

    def disconnect(self) -> None:
        """Release the robot; the backend cannot be used again."""
        if self.lifecycle is Lifecycle.FINALIZED:
            return
        try:
            self.deactivate()
        finally:
            self._disconnect()
            self.lifecycle = Lifecycle.FINALIZED

    def __enter__(self) -> Backend:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    @property
    def active(self) -> bool:
        return self.lifecycle is Lifecycle.ACTIVE

    # -- data path ---------------------------------------------------------------------------
    def read(self) -> RobotState:
        """Measured state (possibly a live view; see :class:`RobotState`)."""
        if self.lifecycle in (Lifecycle.UNCONFIGURED, Lifecycle.FINALIZED):
            raise NotActiveError(f"read() needs a configured backend (it is {self.lifecycle.value})")
        return self._read()

    def write(self, command: np.ndarray) -> np.ndarray:
        """Send joint torques (effort interface); returns what was actually applied.

        Refused unless active. Implementations must refuse non-finite values with ``ValueError``
        before anything is sent (the loop filters them earlier and holds instead).
        """
        if self.lifecycle is not Lifecycle.ACTIVE:
            raise NotActiveError(f"write() refused: backend is {self.lifecycle.value}, not active")
        self.holding = False
        return self._write(command)

    def write_setpoint(self, setpoint: Command) -> Command:
        """Send the reflex-filtered impedance setpoint (impedance interface): the robot's own
        impedance controller turns it into torque. Returns what was sent.

        Refused unless active; only backends whose ``interface`` is ``"impedance"`` accept it.
        """
        if self.lifecycle is not Lifecycle.ACTIVE:
            raise NotActiveError(f"write_setpoint() refused: backend is {self.lifecycle.value}, not active")
        self.holding = False
        return self._write_setpoint(setpoint)

    def hold(self) -> None:
        """Safe stop: brake to rest and keep position (gravity compensated where possible)."""
        if self.lifecycle in (Lifecycle.UNCONFIGURED, Lifecycle.FINALIZED):
            return
        self.holding = True
        self._hold()

    # -- hooks -------------------------------------------------------------------------------
    def _configure(self) -> None:  # noqa: B027 - optional hook
        pass

    def _activate(self) -> None:  # noqa: B027 - optional hook
        pass

    def _deactivate(self) -> None:  # noqa: B027 - optional hook
        pass

    def _disconnect(self) -> None:  # noqa: B027 - optional hook
        pass

    def _write_setpoint(self, setpoint: Command) -> Command:
        raise BackendError(f"{type(self).__name__} has the {self.interface} interface: it takes "
                           f"torques (write), not impedance setpoints")

    @abstractmethod
    def _read(self) -> RobotState: ...

    @abstractmethod
    def _write(self, command: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _hold(self) -> None: ...
