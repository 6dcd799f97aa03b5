"""Task policies: anything that maps an observation to a normalised action.

``make_policy(name, env, seed)`` builds the built-in ones (:data:`POLICY_NAMES`): ``zero`` (hold
still, mid stiffness), ``random`` (uniform actions), ``scripted`` (a hand-written controller per
task, :mod:`.scripted`), ``ncap`` (the task's circuit prior, :data:`CIRCUITS`; the swimmer's is
the C. elegans circuit of :mod:`.ncap`). Trained SB3 policies (:mod:`robot_brain.training.policy`)
follow the same :class:`Policy` protocol.

Importing this package is cheap (no MuJoCo, no torch): the scripted policies, which know the task
classes, and the circuits load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    CIRCUITS,
    POLICY_NAMES,
    SEARCHERS,
    CircuitSpec,
    Policy,
    RandomPolicy,
    ZeroPolicy,
    circuit_for,
    make_policy,
    register_circuit,
)

if TYPE_CHECKING:
    from .scripted import SCRIPTED, ScriptedMaze, ScriptedPegInsertion, ScriptedReach, ScriptedWipe

__all__ = ["CIRCUITS", "POLICY_NAMES", "SCRIPTED", "SEARCHERS", "CircuitSpec", "Policy", "RandomPolicy",
           "ScriptedMaze", "ScriptedPegInsertion", "ScriptedReach", "ScriptedWipe", "ZeroPolicy",
           "circuit_for", "make_policy", "register_circuit"]


def __getattr__(name: str) -> Any:
    if name in ("SCRIPTED", "ScriptedMaze", "ScriptedPegInsertion", "ScriptedReach", "ScriptedWipe"):
        from . import scripted

        return getattr(scripted, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
