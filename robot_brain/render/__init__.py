"""Frames of a MuJoCo scene for videos: MuJoCo's OpenGL renderer, or a software renderer that
needs no system library.

:func:`make_renderer` picks one by name:

- ``"opengl"``: MuJoCo's renderer (3-D, shaded); needs an OpenGL context (a display, EGL or the
  OSMesa library). Without one: :class:`RenderError`, one line naming the cure;
- ``"software"``: :class:`~robot_brain.render.software.SoftwareRenderer`, flat-shaded frames drawn
  with numpy and Pillow; works on any machine;
- ``"auto"`` (default): OpenGL when a context can be made, else the software renderer.

Importing this package loads neither MuJoCo nor OpenGL (the CLI imports it before choosing the
OpenGL backend); :class:`Camera` and the renderers load on first use.

Every renderer carries ``note``: one line saying which renderer draws the frames (and, after a
fallback, why and how to get the 3-D one), which the CLI prints. Call
:func:`robot_brain.render.gl.prepare_gl` before ``mujoco`` is first imported (the CLI does) so a
broken ``MUJOCO_GL`` cannot crash that import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .gl import CURE, gl_unavailable

if TYPE_CHECKING:
    import mujoco
    import numpy as np

    from .camera import Camera

__all__ = ["RENDERERS", "Camera", "FrameRenderer", "RenderError", "make_renderer"]

RENDERERS = ("auto", "opengl", "software")


class RenderError(RuntimeError):
    """Rendering with the requested renderer is impossible here (one line naming the cure)."""


@runtime_checkable
class FrameRenderer(Protocol):
    """What the tasks ask of a renderer."""

    name: str
    note: str

    def render(self, data: mujoco.MjData, camera: Camera) -> np.ndarray:
        """The picture (height, width, 3) uint8 of the scene in ``data`` seen by ``camera``."""
        ...

    def close(self) -> None: ...


def _software(model: mujoco.MjModel, width: int, height: int, note: str) -> FrameRenderer:
    from .software import SoftwareRenderer

    renderer = SoftwareRenderer(model, width, height)
    renderer.note = note
    return renderer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def make_renderer(model: mujoco.MjModel, width: int = 320, height: int = 240,
                  renderer: str = "auto") -> FrameRenderer:
    """A frame renderer for ``model`` (see module docstring).

    :raises RenderError: ``renderer="opengl"`` and no OpenGL context can be made.
    :raises ValueError: an unknown renderer name.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {', '.join(RENDERERS)}, got {renderer!r}")
    if renderer == "software":
        return _software(model, width, height, "rendering with the software renderer "
                                               "(flat-shaded, no OpenGL)")
    why = gl_unavailable()
    if why is None:
        try:
            from .gl import OpenGLRenderer

            return OpenGLRenderer(model, width, height)
        except Exception as exc:  # any OpenGL failure: missing library, no display, bad MUJOCO_GL
            why = f"no OpenGL context ({_first_line(exc)})"
    if renderer == "opengl":
        raise RenderError(f"MuJoCo's OpenGL renderer is unavailable: {why}; {CURE} "
                          f"(or use the software renderer: --renderer software)")
    return _software(model, width, height, f"rendering with the software renderer (flat-shaded): "
                                           f"{why}; {CURE}")


def __getattr__(name: str) -> Any:
    if name == "Camera":  # imports MuJoCo: only once the OpenGL backend has been chosen
        from .camera import Camera

        return Camera
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
