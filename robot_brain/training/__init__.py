"""Training task policies with Stable-Baselines3: configs, runs, safe checkpoints, trained policies.

``robot-brain train``/``eval``/``plot`` are thin layers over this package:

- :mod:`.config`: per-task YAML defaults (``hyperparams/<task>.yaml``), user files, ``--set``;
- :mod:`.run`: run directories, ``config.yaml``, environments with the shield applied;
- :mod:`.trainer`: the training loop (progress, metrics, checkpoints, evaluation, resume);
- :mod:`.checkpoint`: crash-safe checkpoints that load without executing pickled code;
- :mod:`.metrics`: ``metrics.json``, kept consistent with the checkpoints across crashes;
- :mod:`.policy`: :func:`load_trained_policy` for ``sim``/``eval``;
- :mod:`.plotting`: learning curves over runs and seeds.

Heavy imports (torch, SB3) happen in the submodules, so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["CheckpointError", "ConfigError", "RunConfig", "TrainedPolicy", "load_trained_policy"]

if TYPE_CHECKING:
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .policy import TrainedPolicy, load_trained_policy
    from .run import RunConfig

_WHERE = {"CheckpointError": "checkpoint", "ConfigError": "config", "RunConfig": "run",
          "TrainedPolicy": "policy", "load_trained_policy": "policy"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
