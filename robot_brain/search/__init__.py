"""Behaviour as search: a harmonic place code, a Hebbian memory over it, a cognitive graph of
places planned over by spreading activation, and the search loop that mutates the graph as it
uses it (docs/search.md).

Pure numpy (the planner's inner loop is compiled with numba); no training, no map. The search
core knows nothing of tasks: it takes positions and failure flags and returns setpoints.
"""

from __future__ import annotations

from .agent import BUDGET, NO_PATH, REACHED, SEARCHING, SearchAgent, SearchConfig, SearchPolicy
from .graph import CognitiveGraph, Plan
from .harmonic import HarmonicCode, HarmonicConfig
from .memory import HebbianMemory

__all__ = ["BUDGET", "NO_PATH", "REACHED", "SEARCHING", "CognitiveGraph", "HarmonicCode", "HarmonicConfig",
           "HebbianMemory", "Plan", "SearchAgent", "SearchConfig", "SearchPolicy"]
