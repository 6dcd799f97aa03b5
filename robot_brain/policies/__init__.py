"""Task policies: anything that maps an observation to a normalised action.

``make_policy(name, env, seed)`` builds the built-in ones (:data:`POLICY_NAMES`): ``zero`` (hold
still, mid stiffness), ``random`` (uniform actions), ``scripted`` (a hand-written controller per
task, :mod:`.scripted`). Trained SB3 policies (:mod:`robot_brain.training.policy`) follow the
same :class:`Policy` protocol.

Importing this package is cheap (no MuJoCo): the scripted policies, which know the task classes,
load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import POLICY_NAMES, Policy, RandomPolicy, ZeroPolicy, make_policy

if TYPE_CHECKING:
    from .scripted import SCRIPTED, ScriptedMaze, ScriptedPegInsertion, ScriptedReach, ScriptedWipe

__all__ = ["POLICY_NAMES", "SCRIPTED", "Policy", "RandomPolicy", "ScriptedMaze", "ScriptedPegInsertion",
           "ScriptedReach", "ScriptedWipe", "ZeroPolicy", "make_policy"]


def __getattr__(name: str) -> Any:
    if name in ("SCRIPTED", "ScriptedMaze", "ScriptedPegInsertion", "ScriptedReach", "ScriptedWipe"):
        from . import scripted

        return getattr(scripted, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
