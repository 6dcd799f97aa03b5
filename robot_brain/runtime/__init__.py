"""The two-rate runtime: one loop for simulation and real robots."""

from .clock import Clock, SimClock, WallClock, use_realtime_priority
from .loop import LoopConfig, StepStats, TwoRateLoop

__all__ = ["Clock", "LoopConfig", "SimClock", "StepStats", "TwoRateLoop", "WallClock",
           "use_realtime_priority"]
