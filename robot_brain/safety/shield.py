"""``--shield``: the reflex a task runs with, from one string.

``load_shield(spec, env)``:

- ``"none"``   -> ``None`` (no reflex; torque limits stay in force; for comparisons only);
- ``"limits"`` -> the hard-limit reflex (:class:`LimitsReflex`) with the task's limits;
- a path       -> a critic directory (``critic.json`` + ``critic.npz``, from
  ``robot-brain train-critic``): :class:`CriticReflex` over the hard-limit reflex.

Use :func:`install_shield` to put a reflex into an existing task env, or pass it as the env's
``reflex=`` argument when constructing one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .critic import CriticFileError, load_critic
from .limits import LimitsConfig, LimitsReflex, Reflex
from .recovery import CriticReflex, RetreatConfig

__all__ = ["SHIELD_CHOICES", "install_shield", "load_shield"]

SHIELD_CHOICES = ("none", "limits", "CRITIC_DIR")


def _limits_of(env: Any) -> LimitsReflex:
    """A fresh hard-limit reflex with the limits ``env`` uses (its own reflex's, if it has one)."""
    task = getattr(env, "unwrapped", env)
    current = getattr(task, "reflex", None)
    inner = getattr(current, "inner", None)
    for r in (current, inner):
        if isinstance(r, LimitsReflex):
            return LimitsReflex(r.config)
    from robot_brain.envs import panda

    return LimitsReflex(LimitsConfig(q_min=tuple(panda.Q_MIN), q_max=tuple(panda.Q_MAX)))


def load_shield(spec: str | os.PathLike, env: Any = None, *, eps_safe: float | None = None,
                retreat: RetreatConfig | None = None) -> Reflex | None:
    """The reflex named by ``spec`` (see module docstring) for the task ``env``.

    :param spec: ``"none"``, ``"limits"`` or a critic directory.
    :param env: the task env (wrapped or not) whose hard limits the shield keeps; ``None``: the
        arm's default limits.
    :param eps_safe: override of the critic's stored threshold.
    :param retreat: the retreat-and-soften primitive's settings.
    :raises CriticFileError: the directory is not a valid critic (one-line message naming the file).
    """
    text = os.fspath(spec)
    if text == "none":
        return None
    if text == "limits":
        return _limits_of(env)
    path = Path(text)
    if not path.exists():
        raise CriticFileError(f"{path}: no such critic directory (--shield takes 'none', 'limits' "
                              f"or a directory written by 'robot-brain train-critic')")
    model = load_critic(path)
    return CriticReflex(model, _limits_of(env), eps_safe=eps_safe, retreat=retreat)


def install_shield(env: Any, reflex: Reflex | None) -> None:
    """Make ``reflex`` the fast-tick reflex of the task ``env`` (takes effect at the next reset)."""
    task = getattr(env, "unwrapped", env)
    task.reflex = reflex
    task.loop.reflex = reflex
