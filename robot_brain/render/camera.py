"""A free camera in MuJoCo's convention, shared by the OpenGL and the software renderer.

MuJoCo places a free camera (``mjvCamera`` of type ``mjCAMERA_FREE``) by four numbers: the point it
looks at, its distance from that point, and its azimuth and elevation in degrees. Its forward
direction is ``(cos(el) cos(az), cos(el) sin(az), sin(el))``, its eye sits at
``lookat - distance * forward``, and world z is up. :class:`Camera` holds those numbers, builds the
equivalent ``mujoco.MjvCamera`` for ``mujoco.Renderer.update_scene`` and gives the pose and the
pinhole projection that the software renderer (:mod:`robot_brain.render.software`) draws with, so
that both renderers frame a scene identically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

__all__ = ["Camera", "focal_length"]


@dataclass(frozen=True)
class Camera:
    """A free camera in MuJoCo's convention (mjvCamera of type mjCAMERA_FREE): it looks at `lookat`
    from `distance` metres, azimuth and elevation in degrees."""

    lookat: tuple[float, float, float] = (0.5, 0.0, 0.3)
    distance: float = 1.3
    azimuth: float = 135.0
    elevation: float = -35.0

    def __post_init__(self) -> None:
        # Accept lists and arrays (the tasks' camera dicts hold tuples, callers may hold arrays) but
        # store a tuple of floats, so the camera stays hashable and can key the renderer's caches.
        lookat = tuple(float(v) for v in np.asarray(self.lookat, dtype=np.float64).reshape(-1))
        if len(lookat) != 3:
            raise ValueError(f"lookat must have 3 coordinates, got {self.lookat!r}")
        if not self.distance > 0:
            raise ValueError(f"distance must be > 0 m, got {self.distance}")
        object.__setattr__(self, "lookat", lookat)
        object.__setattr__(self, "distance", float(self.distance))
        object.__setattr__(self, "azimuth", float(self.azimuth))
        object.__setattr__(self, "elevation", float(self.elevation))

    @classmethod
    def from_mapping(cls, cam: Mapping[str, Any]) -> Camera:
        """The camera of a task's ``camera`` dict (``lookat``, ``distance``, ``azimuth``, ``elevation``),
        so callers need not know which keys the dict holds beyond these four."""
        return cls(lookat=tuple(cam["lookat"]), distance=cam["distance"], azimuth=cam["azimuth"],
                   elevation=cam["elevation"])

    def mjv_camera(self) -> mujoco.MjvCamera:
        """The same camera for ``mujoco.Renderer.update_scene(data, camera=...)``, so that MuJoCo's
        OpenGL frames and the software frames show the same view."""
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = self.lookat
        cam.distance = self.distance
        cam.azimuth = self.azimuth
        cam.elevation = self.elevation
        return cam

    def pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Eye position (3,) and rotation world -> camera (3, 3), exactly as MuJoCo places the camera.

        The rows of the rotation are the camera's right, up and forward axes in world coordinates,
        so ``rot @ (p - eye)`` gives (x right, y up, z depth along the view) of a world point ``p``.
        """
        az, el = math.radians(self.azimuth), math.radians(self.elevation)
        forward = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        up = np.array([-math.sin(el) * math.cos(az), -math.sin(el) * math.sin(az), math.cos(el)])
        right = np.cross(forward, up)
        eye = np.asarray(self.lookat, dtype=np.float64) - self.distance * forward
        return eye, np.stack([right, up, forward])

    def project(self, points: np.ndarray, width: int, height: int, fovy: float) -> np.ndarray:
        """Pixel coordinates and depth of world points, shape (N, 3): (column, row, depth [m]).

        Columns and rows are continuous (pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, rows grow
        downwards as in an image array); ``fovy`` is the vertical field of view in degrees
        (``model.vis.global_.fovy``). Points behind the camera get a depth <= 0 and meaningless pixels.
        Used by the renderer and by tests that check where a known point lands in a frame.
        """
        eye, rot = self.pose()
        pv = (np.asarray(points, dtype=np.float64).reshape(-1, 3) - eye) @ rot.T
        focal = focal_length(height, fovy)
        depth = pv[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            col = width / 2 + focal * pv[:, 0] / depth
            row = height / 2 - focal * pv[:, 1] / depth
        return np.stack([col, row, depth], axis=1)


def focal_length(height: int, fovy: float) -> float:
    """Focal length in pixels of a pinhole camera whose vertical field of view is ``fovy`` degrees,
    MuJoCo's symmetric perspective frustum (the horizontal extent follows from the aspect ratio)."""
    return 0.5 * height / math.tan(math.radians(fovy) / 2)
