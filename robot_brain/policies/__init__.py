"""Task policies: anything that maps an observation to a normalised action.

``make_policy(name, env, seed)`` builds the built-in ones: ``zero`` (hold still, mid stiffness),
``random`` (uniform actions), ``scripted`` (a hand-written controller per task). Trained SB3
policies, circuit-prior, search and co-adaptation policies come in later issues and follow the
same :class:`Policy` protocol.
"""

from __future__ import annotations

from .base import Policy, RandomPolicy, ZeroPolicy, make_policy
from .scripted import SCRIPTED, ScriptedMaze, ScriptedReach

__all__ = ["SCRIPTED", "Policy", "RandomPolicy", "ScriptedMaze", "ScriptedReach", "ZeroPolicy", "make_policy"]
