"""What every task does the same way: check its options and its render settings, and render its
frames with a renderer made on the first frame."""

from __future__ import annotations

from typing import Any, TypeVar

from robot_brain.params import replace_checked
from robot_brain.render import RENDERERS, Camera, FrameRenderer, make_renderer

__all__ = ["TaskRenderer", "check_render", "task_config"]

C = TypeVar("C")


def task_config(task: Any, config: C | None, options: dict[str, Any]) -> C:
    """The config of ``task`` (a task class or instance: its ``name`` and ``config_type``):
    ``config`` (default: the type's defaults) with ``options`` changed, each checked.

    :raises ValueError: one line naming a config of the wrong type, an unknown option or a bad value.
    """
    base = config if config is not None else task.config_type()
    if not isinstance(base, task.config_type):
        raise ValueError(f"config of task {task.name!r} must be a {task.config_type.__name__}, "
                         f"got {type(base).__name__}")
    return replace_checked(base, options, f"task {task.name!r}")


def check_render(render_mode: str | None, renderer: str = "auto", width: int = 320,
                 height: int = 240) -> None:
    """Refuse a render setting no task supports, in one line."""
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {', '.join(RENDERERS)}, got {renderer!r}")
    for label, px in (("width", width), ("height", height)):
        if isinstance(px, bool) or not isinstance(px, int) or not 16 <= px <= 4096:
            raise ValueError(f"{label} must be an integer number of pixels in [16, 4096], got {px!r}")


class TaskRenderer:
    """A task's frames: the settings checked at once (:func:`check_render`), the renderer
    (:func:`robot_brain.render.make_renderer`) made on the first frame, since most envs never
    render and an OpenGL context is costly."""

    def __init__(self, model: Any, render_mode: str | None, renderer: str = "auto", width: int = 320,
                 height: int = 240) -> None:
        check_render(render_mode, renderer, width, height)
        self.model, self.render_mode, self.name = model, render_mode, renderer
        self.size = (width, height)
        self._renderer: FrameRenderer | None = None

    def frame(self, data: Any, camera: Camera) -> Any:
        """The picture of ``data`` seen by ``camera`` (``None`` unless ``render_mode`` is
        ``"rgb_array"``)."""
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            self._renderer = make_renderer(self.model, *self.size, self.name)
        return self._renderer.render(data, camera)

    @property
    def note(self) -> str | None:
        """One line naming the renderer in use (and how to get the 3-D one), once rendering."""
        return None if self._renderer is None else self._renderer.note

    def close(self) -> None:
        """Release the renderer (closing twice is harmless)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
