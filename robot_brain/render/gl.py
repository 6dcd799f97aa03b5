"""MuJoCo's OpenGL renderer, and the choice of its OpenGL backend before MuJoCo is imported.

MuJoCo picks its OpenGL backend once, from ``MUJOCO_GL``, when ``mujoco`` is first imported, and
some choices break that import outright: ``MUJOCO_GL=osmesa`` on a machine without the OSMesa
library raises deep inside PyOpenGL (``'NoneType' object has no attribute 'glGetError'``), and a
misspelt value raises too. So a process decides before the import:

- :func:`prepare_gl` ``(renders=False)``: a process that will not render sets ``MUJOCO_GL=disable``
  (no OpenGL is loaded at all, whatever the machine has);
- :func:`prepare_gl` ``(renders=True)``: a value the user set is kept if its library exists (else
  it is replaced by ``disable`` and the reason kept); with none set and no display, each
  candidate backend (EGL, then OSMesa) whose library exists is tried in a short child process,
  and the first that makes a context is used. A crash of a broken driver stays in the child.

The outcome is kept in :data:`status` (why OpenGL is unavailable, or ``None``), so the renderer
choice (:func:`robot_brain.render.make_renderer`) can fall back to the software renderer at once
and say why in one line.
"""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from typing import Any

__all__ = ["CURE", "OpenGLRenderer", "gl_unavailable", "prepare_gl"]

#: How to get MuJoCo's 3-D renderer on a machine without it (one line, for messages).
CURE = ("for MuJoCo's 3-D renderer: apt-get install -y libosmesa6 (Debian/Ubuntu; then "
        "MUJOCO_GL=osmesa or unset), or MUJOCO_GL=egl with a GPU")

_LIBRARY = {"osmesa": "OSMesa", "egl": "EGL"}  # backend -> shared library it loads
_VALID = ("glfw", "egl", "osmesa", "glx", "disable", "disabled", "off", "false", "0", "enable",
          "enabled", "on", "true", "1", "")
_CANDIDATES = ("egl", "osmesa")  # tried in this order on a machine without a display
_PROBE = ("import mujoco\n"
          "m = mujoco.MjModel.from_xml_string("
          "'<mujoco><worldbody><geom size=\".1\"/></worldbody></mujoco>')\n"
          "r = mujoco.Renderer(m, 16, 16)\n"
          "r.update_scene(mujoco.MjData(m))\n"
          "r.render()\n"
          "r.close()\n")

#: Why OpenGL cannot be used in this process (``None``: it may be; :func:`prepare_gl` decides).
status: str | None = None


def gl_unavailable() -> str | None:
    """Why OpenGL cannot be used in this process, as far as :func:`prepare_gl` found out."""
    return status


def _missing_library(backend: str) -> bool:
    lib = _LIBRARY.get(backend)
    return lib is not None and ctypes.util.find_library(lib) is None


def _probe(backend: str, timeout: float = 60.0) -> str | None:
    """Try to make a context with ``backend`` in a child process; ``None`` on success, else why."""
    env = {**os.environ, "MUJOCO_GL": backend}
    env.pop("PYOPENGL_PLATFORM", None)  # MuJoCo sets the matching one itself
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                             text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{backend}: {type(exc).__name__}"
    if out.returncode == 0:
        return None
    lines = [ln.strip() for ln in out.stderr.strip().splitlines() if ln.strip()]
    return f"{backend}: {lines[-1][:120] if lines else f'exit code {out.returncode}'}"


def _set(backend: str) -> None:
    os.environ["MUJOCO_GL"] = backend


def prepare_gl(renders: bool) -> str | None:
    """Choose ``MUJOCO_GL`` for this process before ``mujoco`` is imported (see module
    docstring); returns the value in force. Does nothing once ``mujoco`` is imported."""
    global status
    if "mujoco" in sys.modules:
        return os.environ.get("MUJOCO_GL")
    current = os.environ.get("MUJOCO_GL")
    if not renders:
        _set("disable")
        return "disable"
    if current is not None:
        value = current.lower().strip()
        if value not in _VALID:
            status = f"MUJOCO_GL={current!r} is not a valid MuJoCo backend"
            _set("disable")
        elif value in ("disable", "disabled", "off", "false", "0"):
            status = f"OpenGL is disabled (MUJOCO_GL={current})"
        elif _missing_library(value):
            status = f"MUJOCO_GL={current} but lib{_LIBRARY[value]} is not installed"
            _set("disable")
        return os.environ.get("MUJOCO_GL")
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None  # MuJoCo's default (GLFW) uses the display
    reasons = []
    for backend in _CANDIDATES:
        if _missing_library(backend):
            reasons.append(f"{backend}: lib{_LIBRARY[backend]} not installed")
            continue
        why = _probe(backend)
        if why is None:
            _set(backend)
            return backend
        reasons.append(why)
    status = f"no OpenGL backend could make a context ({'; '.join(reasons)})"
    _set("disable")
    return "disable"


class OpenGLRenderer:
    """MuJoCo's own renderer (``mujoco.Renderer``) behind the frame-renderer interface.

    Shadows and reflections are off: they cost ~90 % of a frame with software OpenGL (OSMesa:
    ~50 of 56 ms at 320x240) and the picture stays readable without them.

    :raises Exception: whatever MuJoCo raises when no OpenGL context can be made (the caller,
        :func:`robot_brain.render.make_renderer`, turns it into a fallback or one line).
    """

    name = "opengl"

    def __init__(self, model: Any, width: int, height: int) -> None:
        import mujoco

        self._mujoco = mujoco
        self._renderer = mujoco.Renderer(model, height=height, width=width)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        gl = os.environ.get("MUJOCO_GL") or "glfw"
        self.note = f"rendering with MuJoCo's OpenGL renderer (MUJOCO_GL={gl})"

    def render(self, data: Any, camera: Any) -> Any:
        self._renderer.update_scene(data, camera=camera.mjv_camera())
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()
