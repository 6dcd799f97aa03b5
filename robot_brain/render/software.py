"""Flat-shaded frames of a MuJoCo scene drawn with numpy and Pillow only (no OpenGL).

MuJoCo's own renderer needs an OpenGL context (a display, OSMesa or EGL); on a bare headless machine
none may exist, and this module is the fallback the project's videos use there.

Method
------
* **Tessellation, once.** At construction every drawable geom and site gets a unit mesh of its type:
  an icosphere (spheres, ellipsoids), a lathe of 24 segments (cylinders, and capsules with 6 rings
  per hemisphere), a cube (boxes), or the model's own triangles (mesh geoms, from ``mesh_vert`` /
  ``mesh_face``). All of them are stacked into one vertex and one triangle array.
* **Per frame, vectorised.** Sizes (``model.geom_size`` / ``site_size``), colours (``geom_rgba`` /
  ``site_rgba`` and materials) and poses (``data.geom_xpos/xmat``, ``site_xpos/xmat``) are read anew,
  the unit meshes are scaled, placed and moved into the camera frame in one go, back faces are
  culled, and each triangle gets one colour (flat shading): the headlight and the model's lights
  (directional, or point/spot as point lights without cone), diffuse plus a Blinn specular term and
  the ambient terms, as MuJoCo's fixed-function lighting. Triangles that cross the near plane
  (``vis.map.znear * stat.extent``) are clipped against it.
* **Rasterisation with a z-buffer in numpy.** The camera is MuJoCo's free camera (see
  :class:`~robot_brain.render.camera.Camera`) with the vertical field of view
  ``model.vis.global_.fovy``. Triangles are cut into pixel-row spans, the spans into pixels, all in
  array operations; each pixel candidate gets a 64-bit key (inverse depth, interpolated exactly in
  screen space, in the high bits, the triangle index in the low bits) and ``np.minimum.at`` keeps
  the nearest one per pixel. Occlusion is therefore exact per pixel, also for decals a fraction of a
  millimetre above a table and for interpenetrating geoms.
* **Planes** are ray-cast per pixel (finite quad of the plane's size, unbounded when the size is 0)
  and textured from the material's 2-D texture in ``model.tex_data`` (the project's checker floor),
  nearest texel, with MuJoCo's mapping of ``texrepeat`` / ``texuniform``. The plane layer (colour
  and depth) is cached and recomputed only when the camera, a plane or its colour changes.
* **Transparency.** Geoms and sites with ``0 < alpha < 1`` are drawn in a second pass, both faces
  (MuJoCo shows the far side of a transparent geom through its near side): every transparent
  surface in front of the opaque scene is blended over it with its alpha, far to near per pixel.
* **Background:** black, as MuJoCo without a skybox; with a skybox texture, a vertical gradient
  between the mean colours of the texture's upper and lower halves.
* Frames are drawn at twice the resolution and averaged down 2x2 (anti-aliasing), unless
  :attr:`SoftwareRenderer.supersample` is set to 1.

Limits and approximations
-------------------------
* Flat shading (one colour per triangle), so curved surfaces look faceted; no shadows, reflections,
  fog, haze, spot-light cones or light attenuation; specular highlights are per triangle, and planes
  get none. Mesh geoms are drawn flat-shaded from their own triangles.
* Textures are drawn only on planes; other textured geoms get the texture's mean colour times the
  material colour. Skyboxes are reduced to a gradient. A plane seen from below is not drawn.
* Height fields, SDF geoms, flexes, skins, tendons, decorations (frames, contact points, labels)
  and MuJoCo's geom/site ``group`` toggles other than the defaults (groups 0-2 shown) are not drawn.
* Geom and site *types* and mesh data are read at construction (sizes, colours and poses are read
  every frame). Orthographic cameras (``vis.global_.orthographic``) are drawn in perspective.
* Cost: ~10 ms per 320x240 frame of the project's tasks on two CPU cores, ~4x that at 640x480
  (:attr:`SoftwareRenderer.supersample` = 1 quarters the pixel work).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import mujoco
import numpy as np
from PIL import Image

from .camera import Camera, focal_length

__all__ = ["SoftwareRenderer"]

_G = mujoco.mjtGeom
_PLANE, _SPHERE, _CAPSULE = int(_G.mjGEOM_PLANE), int(_G.mjGEOM_SPHERE), int(_G.mjGEOM_CAPSULE)
_ELLIPSOID, _CYLINDER, _BOX = int(_G.mjGEOM_ELLIPSOID), int(_G.mjGEOM_CYLINDER), int(_G.mjGEOM_BOX)
_MESH = int(_G.mjGEOM_MESH)

_DEFAULT_RGBA = np.array([0.5, 0.5, 0.5, 1.0])  # MuJoCo's default geom rgba: "use the material's"
_N_GROUPS_SHOWN = 3  # mjvOption.geomgroup / sitegroup default: groups 0, 1, 2 visible
_SEGMENTS = 24  # around cylinders and capsules
_CAP_RINGS = 6  # per capsule hemisphere
_ICO_LEVEL = 2  # icosphere subdivisions: 320 triangles
_DEFAULT_SPECULAR, _DEFAULT_SHININESS = 0.5, 0.5  # a geom without material

_ID_BITS = 22  # low bits of a z-buffer key: triangle index
_ID_MASK = (1 << _ID_BITS) - 1  # also the id of "no triangle here" (planes, sky)
_DEPTH_SCALE = float(1 << 40)  # high bits: (1 - znear / depth) quantised, 0 = on the near plane
_EMPTY_KEY = np.iinfo(np.int64).max  # sky: farther than anything, id bits all set
_EDGE_EPS = 1e-3  # px: pixel centres this close outside an edge count as inside (no cracks)
_SAME_DEPTH = 1 << 17  # depth keys closer than this (~8 um at 1 m) are one transparent surface
_TEX_ROLE_RGB = int(mujoco.mjtTextureRole.mjTEXROLE_RGB)


# -- unit meshes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _UnitMesh:
    """Vertices (V, 3) of a shape of unit size, the capsule offset of each vertex along z in half
    lengths (V,), and triangles (T, 3) wound counter-clockwise seen from outside."""

    verts: np.ndarray
    offset: np.ndarray
    tris: np.ndarray


def _orient_outward(verts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Triangles of a convex mesh around the origin, each wound so its normal points outwards; the
    generators below need not care about winding, and back-face culling relies on it."""
    v0, v1, v2 = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    inward = np.einsum("ij,ij->i", np.cross(v1 - v0, v2 - v0), v0 + v1 + v2) < 0
    out = tris.copy()
    out[inward] = out[inward][:, [0, 2, 1]]
    return out


def _lathe(profile: list[tuple[float, float, float]], segments: int = _SEGMENTS) -> _UnitMesh:
    """A surface of revolution about z from a profile of (radius, z, capsule offset) rings; a ring
    of radius 0 is a pole. Cylinders and capsules are lathes."""
    theta = 2 * np.pi * np.arange(segments) / segments
    verts: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    rings: list[np.ndarray] = []
    count = 0
    for radius, z, off in profile:
        n = 1 if radius == 0 else segments
        ring = np.stack([radius * np.cos(theta[:n]), radius * np.sin(theta[:n]), np.full(n, z)], axis=1)
        verts.append(ring)
        offsets.append(np.full(n, off))
        rings.append(count + (np.zeros(segments, dtype=np.int64) if n == 1 else np.arange(segments)))
        count += n
    tris = []
    for a, b in itertools.pairwise(rings):
        a1, b1 = np.roll(a, -1), np.roll(b, -1)
        tris += [np.stack([a, a1, b1], axis=1), np.stack([a, b1, b], axis=1)]
    all_tris = np.concatenate(tris)
    distinct = ((all_tris[:, 0] != all_tris[:, 1]) & (all_tris[:, 1] != all_tris[:, 2])
                & (all_tris[:, 0] != all_tris[:, 2]))
    v, o = np.concatenate(verts), np.concatenate(offsets)
    placed = v + o[:, None] * np.array([0.0, 0.0, 1.0])  # capsule of half length 1, for orientation
    return _UnitMesh(v, o, _orient_outward(placed, all_tris[distinct]))


def _cylinder() -> _UnitMesh:
    """Unit cylinder: radius 1, z in [-1, 1], with caps."""
    return _lathe([(0.0, -1.0, 0.0), (1.0, -1.0, 0.0), (1.0, 1.0, 0.0), (0.0, 1.0, 0.0)])


def _capsule() -> _UnitMesh:
    """Unit capsule: hemispheres of radius 1 whose vertices carry offsets -1/+1 (half lengths)."""
    phi = np.linspace(0.0, np.pi / 2, _CAP_RINGS + 1)[:-1]  # equator up to below the pole
    lower = [(0.0, -1.0, -1.0)] + [(math.cos(p), -math.sin(p), -1.0) for p in phi[::-1]]
    upper = [(math.cos(p), math.sin(p), 1.0) for p in phi] + [(0.0, 1.0, 1.0)]
    return _lathe(lower + upper)


def _icosphere(level: int = _ICO_LEVEL) -> _UnitMesh:
    """Unit sphere from a subdivided icosahedron: facets of even size, so flat shading looks even."""
    t = (1 + 5 ** 0.5) / 2
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t),
             (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    pts = [np.array(v, dtype=np.float64) / np.linalg.norm(v) for v in verts]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
             (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
             (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    for _ in range(level):
        cache: dict[tuple[int, int], int] = {}

        def middle(i: int, j: int, cache: dict[tuple[int, int], int] = cache) -> int:
            key = (min(i, j), max(i, j))
            if key not in cache:
                p = pts[i] + pts[j]
                pts.append(p / np.linalg.norm(p))
                cache[key] = len(pts) - 1
            return cache[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = middle(a, b), middle(b, c), middle(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    v = np.array(pts)
    return _UnitMesh(v, np.zeros(len(v)), _orient_outward(v, np.array(faces, dtype=np.int64)))


def _box() -> _UnitMesh:
    """Unit box: corners at +-1."""
    v = np.array([(x, y, z) for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    tris = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], dtype=np.int64)
    return _UnitMesh(v, np.zeros(len(v)), _orient_outward(v, tris))


def _model_mesh(model: mujoco.MjModel, mesh_id: int) -> _UnitMesh:
    """A mesh geom's own triangles (``mesh_vert`` / ``mesh_face``, already in the geom frame)."""
    va, vn = model.mesh_vertadr[mesh_id], model.mesh_vertnum[mesh_id]
    fa, fn = model.mesh_faceadr[mesh_id], model.mesh_facenum[mesh_id]
    v = np.asarray(model.mesh_vert[va:va + vn], dtype=np.float64)
    return _UnitMesh(v, np.zeros(vn), np.asarray(model.mesh_face[fa:fa + fn], dtype=np.int64))


# -- rasterisation -----------------------------------------------------------------------------
def _clip_near(tv: np.ndarray, ids: np.ndarray, znear: float) -> tuple[np.ndarray, np.ndarray]:
    """Triangles (T, 3, 3) in camera coordinates cut at depth ``znear``: the part in front is kept
    (one triangle, or two for a quad), so a camera close to the scene draws it instead of exploding
    on points behind the eye. ``ids`` (T,) follow their triangles."""
    inside = tv[:, :, 2] >= znear
    count = inside.sum(axis=1)
    parts, part_ids = [tv[count == 3]], [ids[count == 3]]

    def cut(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        s = (znear - a[:, 2:3]) / (b[:, 2:3] - a[:, 2:3])
        return a + (b - a) * s

    for n_in in (1, 2):
        sel = count == n_in
        if not sel.any():
            continue
        odd = inside[sel] if n_in == 1 else ~inside[sel]  # the vertex alone on its side
        order = (np.argmax(odd, axis=1)[:, None] + np.arange(3)) % 3  # rotation keeps the winding
        t = np.take_along_axis(tv[sel], order[:, :, None], axis=1)
        o, v1, v2 = t[:, 0], t[:, 1], t[:, 2]
        if n_in == 1:
            parts.append(np.stack([o, cut(o, v1), cut(o, v2)], axis=1))
            part_ids.append(ids[sel])
        else:
            p1, p2 = cut(v1, o), cut(v2, o)
            parts += [np.stack([v1, v2, p2], axis=1), np.stack([v1, p2, p1], axis=1)]
            part_ids += [ids[sel], ids[sel]]
    return np.concatenate(parts), np.concatenate(part_ids)


def _rasterise(sx: np.ndarray, sy: np.ndarray, kz: np.ndarray, ids: np.ndarray, width: int,
               height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels covered by screen triangles: flat pixel index and z-buffer key of each.

    ``sx``, ``sy`` (T, 3) are continuous pixel coordinates of the corners, ``kz`` (T, 3) a depth
    quantity affine in screen space (scaled inverse depth), interpolated at pixel centres into the
    high bits of the key, ``ids`` (T,) go into its low bits. Triangles are split into row spans and
    the spans into pixels with ``np.repeat``; no Python loop per triangle, which is what keeps a
    frame within a few milliseconds.
    """
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    x0, x1, x2 = sx.T
    y0, y1, y2 = sy.T
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    ymin = np.minimum(np.minimum(y0, y1), y2)
    ymax = np.maximum(np.maximum(y0, y1), y2)
    r0 = np.maximum(np.ceil(ymin - 0.5 - _EDGE_EPS), 0).astype(np.int64)
    r1 = np.minimum(np.floor(ymax - 0.5 + _EDGE_EPS), height - 1).astype(np.int64)
    rows = np.where(np.abs(area) > 1e-9, np.maximum(r1 - r0 + 1, 0), 0)
    n_rows = int(rows.sum())
    if n_rows == 0:
        return empty
    # Edge functions a*x + b*y + c >= 0 inside, whatever the winding, with a margin of _EDGE_EPS px
    # so that neighbours share the pixels on their common edge; depth plane k = ka x + kb y + kc.
    sign = np.sign(area)
    ex = np.stack([x0, x1, x2])
    ey = np.stack([y0, y1, y2])
    a = -(np.roll(ey, -1, axis=0) - ey) * sign
    b = (np.roll(ex, -1, axis=0) - ex) * sign
    c = -(a * ex + b * ey) + _EDGE_EPS * np.hypot(a, b)
    dk1, dk2 = kz[:, 1] - kz[:, 0], kz[:, 2] - kz[:, 0]
    safe = np.where(area == 0, 1.0, area)
    ka = -((y1 - y0) * dk2 - dk1 * (y2 - y0)) / safe
    kb = -(dk1 * (x2 - x0) - (x1 - x0) * dk2) / safe
    kc = kz[:, 0] - ka * x0 - kb * y0

    # One entry per (triangle, pixel row): the span of pixel centres inside all three edges.
    tri = np.repeat(np.arange(len(sx)), rows)
    y = np.arange(n_rows) + np.repeat(r0 - (np.cumsum(rows) - rows), rows)
    yc = y + 0.5
    lo = np.full(n_rows, -1.0)
    hi = np.full(n_rows, width + 1.0)
    blocked = np.zeros(n_rows, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for e in range(3):
            ea = a[e][tri]
            rhs = -(b[e][tri] * yc + c[e][tri])
            bound = rhs / ea
            lo = np.where(ea > 1e-12, np.maximum(lo, bound), lo)
            hi = np.where(ea < -1e-12, np.minimum(hi, bound), hi)
            blocked |= (np.abs(ea) <= 1e-12) & (rhs > 0)
    xl = np.maximum(np.ceil(lo - 0.5), 0).astype(np.int64)
    xr = np.minimum(np.floor(hi - 0.5), width - 1).astype(np.int64)
    n = np.where(blocked, 0, np.maximum(xr - xl + 1, 0))
    total = int(n.sum())
    if total == 0:
        return empty

    # One entry per pixel (in-place arithmetic: these arrays are the bulk of a frame's work).
    start = np.cumsum(n) - n
    ramp = np.arange(total)
    pix = np.repeat(y * width + xl - start, n)
    pix += ramp
    ka_t = ka[tri]
    k_first = ka_t * (xl + 0.5) + kb[tri] * yc + kc[tri]
    depth = np.repeat(ka_t, n)
    depth *= ramp
    depth += np.repeat(k_first - ka_t * start, n)
    np.maximum(depth, 0.0, out=depth)
    key = depth.astype(np.int64)
    key <<= _ID_BITS
    key |= np.repeat(ids[tri], n)
    return pix, key


def _pack(rgb: np.ndarray) -> np.ndarray:
    """Colours (N, 3) in [0, 1] as uint32 (N,) whose bytes are R, G, B, 0 in memory (Pillow's RGBX)."""
    packed = np.zeros(len(rgb), dtype=np.uint32)
    packed.view(np.uint8).reshape(-1, 4)[:, :3] = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return packed


# -- lighting ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Lights:
    """The frame's lights in camera coordinates (x right, y down, z forward)."""

    ambient: np.ndarray  # (3,) sum of all ambient terms
    directional: np.ndarray  # (L,) bool
    vector: np.ndarray  # (L, 3): towards the light (directional) or its position (point)
    diffuse: np.ndarray  # (L, 3)
    specular: np.ndarray  # (L, 3)


def _shade(rgb: np.ndarray, normal: np.ndarray, centre: np.ndarray, specular: np.ndarray,
           shininess: np.ndarray, emission: np.ndarray, lights: _Lights) -> np.ndarray:
    """Colours (N, 3) in [0, 1] of surfaces with unit normals and centres in camera coordinates:
    colour * (emission + ambient + Lambert diffuse) + Blinn specular, clamped at the end only; that is
    what MuJoCo's frames show (a table lit from above comes out brighter than its rgba)."""

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.maximum(np.sqrt(np.einsum("...i,...i->...", v, v)), 1e-12)[..., None]

    lit = lights.ambient + emission[:, None] * np.ones(3)
    shine = np.zeros_like(lit)
    view = unit(-centre)
    exponent = 128.0 * shininess
    for i in range(len(lights.vector)):  # a handful of lights: loop over them, not over surfaces
        toward = unit(lights.vector[i]) if lights.directional[i] else unit(lights.vector[i] - centre)
        cos = np.einsum("ij,ij->i", normal, np.broadcast_to(toward, normal.shape))
        half = unit(toward + view)
        spec = np.maximum(np.einsum("ij,ij->i", normal, half), 0.0) ** exponent
        lit += np.maximum(cos, 0.0)[:, None] * lights.diffuse[i]
        shine += np.where(cos > 0, spec, 0.0)[:, None] * lights.specular[i]
    return np.clip(rgb * lit + shine * specular[:, None], 0.0, 1.0)


# -- renderer ----------------------------------------------------------------------------------
class SoftwareRenderer:
    """Flat-shaded frames of a MuJoCo scene drawn with numpy and Pillow (no OpenGL).

    A drop-in for ``mujoco.Renderer`` where no OpenGL context can be made: ``render(data, camera)``
    returns an ``(height, width, 3)`` uint8 frame of the scene as MuJoCo's default visualisation
    shows it (geoms and sites of groups 0-2, the model's lights plus the headlight), see the module
    docstring for the method and what is approximated.
    """

    name = "software"
    supersample: int = 2  # render at this many times the size and average down (anti-aliasing)

    def __init__(self, model: mujoco.MjModel, width: int = 320, height: int = 240) -> None:
        if int(width) != width or int(height) != height or width < 1 or height < 1:
            raise ValueError(f"width and height must be positive integers, got {width}x{height}")
        #: one line naming this renderer (:func:`robot_brain.render.make_renderer` says why it
        #: was chosen)
        self.note = "rendering with the software renderer (flat-shaded, no OpenGL)"
        self.model = model
        self.width, self.height = int(width), int(height)
        self._build_objects(model)
        self._planes = np.array([g for g in range(model.ngeom) if model.geom_type[g] == _PLANE],
                                dtype=np.int64)
        self._tex_mean = self._texture_means(model)
        self._sky = self._sky_colours(model)
        self._plane_cache: tuple[bytes, np.ndarray, np.ndarray] | None = None

    # -- construction --------------------------------------------------------------------------
    def _build_objects(self, model: mujoco.MjModel) -> None:
        """Stack the unit meshes of all drawable geoms, then sites, into one vertex and one triangle
        array, so that a frame transforms every object with a few array operations."""
        units = {_SPHERE: _icosphere(), _ELLIPSOID: _icosphere(), _CAPSULE: _capsule(),
                 _CYLINDER: _cylinder(), _BOX: _box()}
        meshes: list[_UnitMesh] = []
        geoms = []
        for g in range(model.ngeom):
            gtype = int(model.geom_type[g])
            if gtype in units or (gtype == _MESH and model.geom_dataid[g] >= 0):
                geoms.append(g)
                meshes.append(units[gtype] if gtype in units else _model_mesh(model, model.geom_dataid[g]))
        sites = [s for s in range(model.nsite) if int(model.site_type[s]) in units]
        meshes += [units[int(model.site_type[s])] for s in sites]
        self._geoms = np.array(geoms, dtype=np.int64)
        self._sites = np.array(sites, dtype=np.int64)
        types = np.concatenate([model.geom_type[self._geoms], model.site_type[self._sites]]).astype(int)
        self._types = types
        nverts = np.array([len(m.verts) for m in meshes], dtype=np.int64)
        ntris = np.array([len(m.tris) for m in meshes], dtype=np.int64)
        first = np.concatenate([[0], np.cumsum(nverts)[:-1]]).astype(np.int64)
        if meshes:
            self._unit = np.concatenate([m.verts for m in meshes])
            self._offset = np.concatenate([m.offset for m in meshes])
            self._tris = np.concatenate([m.tris + f for m, f in zip(meshes, first, strict=True)])
        else:
            self._unit, self._offset = np.zeros((0, 3)), np.zeros(0)
            self._tris = np.zeros((0, 3), dtype=np.int64)
        if 2 * len(self._tris) >= _ID_MASK:  # clipping may split triangles in two
            raise ValueError(f"{len(self._tris)} triangles: too many for the software renderer")
        self._vobj = np.repeat(np.arange(len(meshes)), nverts)
        self._tobj = np.repeat(np.arange(len(meshes)), ntris)
        matid = np.concatenate([model.geom_matid[self._geoms], model.site_matid[self._sites]])
        self._matid = matid.astype(np.int64)

    @staticmethod
    def _texture_means(model: mujoco.MjModel) -> np.ndarray:
        """Mean RGB (nmat, 3) of each material's texture (white without one): the colour a textured
        non-plane geom is drawn with."""
        means = np.ones((model.nmat, 3))
        for mat in range(model.nmat):
            tex = int(model.mat_texid[mat, _TEX_ROLE_RGB]) if model.mat_texid.ndim == 2 else -1
            if tex >= 0:
                means[mat] = SoftwareRenderer._texture(model, tex).reshape(-1, 3).mean(axis=0) / 255
        return means

    @staticmethod
    def _texture(model: mujoco.MjModel, tex: int) -> np.ndarray:
        """Texture ``tex`` as an (height, width, 3) uint8 image."""
        h, w, nc = int(model.tex_height[tex]), int(model.tex_width[tex]), int(model.tex_nchannel[tex])
        adr = int(model.tex_adr[tex])
        img = np.asarray(model.tex_data[adr:adr + h * w * nc]).reshape(h, w, nc)
        return np.repeat(img[:, :, :1], 3, axis=2) if nc < 3 else img[:, :, :3]

    @staticmethod
    def _sky_colours(model: mujoco.MjModel) -> np.ndarray:
        """Top and bottom background colours (2, 3) in [0, 1]: black as MuJoCo without a skybox,
        else the mean colours of the skybox texture's upper and lower halves."""
        for tex in range(model.ntex):
            if int(model.tex_type[tex]) == int(mujoco.mjtTexture.mjTEXTURE_SKYBOX):
                img = SoftwareRenderer._texture(model, tex).astype(np.float64) / 255
                half = max(img.shape[0] // 2, 1)
                return np.stack([img[:half].reshape(-1, 3).mean(0), img[half:].reshape(-1, 3).mean(0)])
        return np.zeros((2, 3))

    # -- per frame -----------------------------------------------------------------------------
    def render(self, data: mujoco.MjData, camera: Camera) -> np.ndarray:
        """The frame (height, width, 3) uint8 of ``data`` seen from ``camera``, a new array per call.

        Everything that changes at run time is read here: poses from ``data``, sizes and colours
        (``geom_rgba``, ``site_rgba``, materials) from the model.
        """
        ss = max(int(self.supersample), 1)
        w, h = self.width * ss, self.height * ss
        eye, rot = camera.pose()
        rot = rot * np.array([[1.0], [-1.0], [1.0]])  # camera frame x right, y down, z forward
        znear = float(self.model.vis.map.znear * self.model.stat.extent)
        focal = focal_length(h, float(self.model.vis.global_.fovy))
        lights = self._lights(data, eye, rot)
        background, zbuf = self._background(data, eye, rot, focal, znear, w, h, lights)
        tv, colour, alpha = self._triangles(data, eye, rot, lights)
        solid = alpha >= 1.0
        pix, key = self._fragments(tv[solid], np.flatnonzero(solid), znear, focal, w, h)
        np.minimum.at(zbuf, pix, key)
        # Colours travel packed as one uint32 per pixel (RGBX bytes): far cheaper to gather and pick.
        n = len(colour)
        palette = _pack(np.concatenate([colour, np.zeros((1, 3))]))
        ids = np.minimum(zbuf & _ID_MASK, n)  # no triangle -> the extra palette entry
        out = np.where(ids < n, palette[ids], background)
        if not solid.all():
            pix, key = self._fragments(tv[~solid], np.flatnonzero(~solid), znear, focal, w, h)
            self._blend_transparent(out, zbuf, pix, key, colour, alpha)
        if ss > 1:
            reduced = Image.frombuffer("RGBX", (w, h), out, "raw", "RGBX", 0, 1).reduce(ss)
            return np.array(reduced.convert("RGB"))
        return out.view(np.uint8).reshape(h, w, 4)[:, :, :3].copy()

    @staticmethod
    def _fragments(tv: np.ndarray, ids: np.ndarray, znear: float, focal: float, w: int,
                   h: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel indices and z-buffer keys (depth in the high bits, ``ids`` of the triangles in the
        low bits) of triangles (T, 3, 3) in camera coordinates, clipped at the near plane."""
        if not len(tv):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        tv, ids = _clip_near(tv, ids, znear)
        z = tv[:, :, 2]
        sx = w / 2 + focal * tv[:, :, 0] / z
        sy = h / 2 + focal * tv[:, :, 1] / z
        return _rasterise(sx, sy, (1.0 - znear / z) * _DEPTH_SCALE, ids, w, h)

    @staticmethod
    def _blend_transparent(out: np.ndarray, zbuf: np.ndarray, pix: np.ndarray, key: np.ndarray,
                           colour: np.ndarray, alpha: np.ndarray) -> None:
        """Blend the transparent surfaces in front of the opaque scene into ``out`` (in place), far to
        near per pixel."""
        front = key < zbuf[pix]
        pix, key = pix[front], key[front]
        if not len(pix):
            return
        # Far to near within each pixel; layer r of every pixel is blended in pass r.
        order = np.lexsort((-key, pix))
        pix, key = pix[order], key[order]
        # Two triangles sharing an edge both cover the pixels on it (see _EDGE_EPS): keep one.
        depth = key >> _ID_BITS
        new = np.concatenate([[True], (pix[1:] != pix[:-1]) | (depth[:-1] - depth[1:] > _SAME_DEPTH)])
        pix, key = pix[new], key[new]
        first = np.flatnonzero(np.concatenate([[True], pix[1:] != pix[:-1]]))
        layer = np.arange(len(pix)) - np.repeat(first, np.diff(np.append(first, len(pix))))
        rgb = out.view(np.uint8).reshape(-1, 4)
        for r in range(int(layer.max()) + 1):
            sel = layer == r
            at, ids = pix[sel], key[sel] & _ID_MASK
            a = alpha[ids][:, None]
            blended = a * colour[ids] * 255.0 + (1.0 - a) * rgb[at, :3]
            rgb[at, :3] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)

    def _lights(self, data: mujoco.MjData, eye: np.ndarray, rot: np.ndarray) -> _Lights:
        """The headlight and the model's active lights in camera coordinates."""
        m = self.model
        head = m.vis.headlight
        ambient = np.asarray(head.ambient, dtype=np.float64) * bool(head.active)
        vectors, diffuse, specular, directional = [], [], [], []
        if head.active:
            vectors.append(np.array([0.0, 0.0, -1.0]))  # from the eye, along the view
            diffuse.append(np.asarray(head.diffuse, dtype=np.float64))
            specular.append(np.asarray(head.specular, dtype=np.float64))
            directional.append(True)
        if hasattr(m, "light_type"):
            is_dir = m.light_type == int(mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
        else:  # MuJoCo < 3.3
            is_dir = m.light_directional.astype(bool)
        for i in range(m.nlight):
            if not m.light_active[i]:
                continue
            ambient = ambient + m.light_ambient[i]
            vectors.append(-(rot @ data.light_xdir[i]) if is_dir[i] else rot @ (data.light_xpos[i] - eye))
            diffuse.append(np.asarray(m.light_diffuse[i], dtype=np.float64))
            specular.append(np.asarray(m.light_specular[i], dtype=np.float64))
            directional.append(bool(is_dir[i]))
        if not vectors:
            return _Lights(ambient, np.zeros(0, bool), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)))
        return _Lights(ambient, np.array(directional), np.array(vectors), np.array(diffuse),
                       np.array(specular))

    def _materials(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per object: rgba (N, 4), specular, shininess and emission (N,) and texture colour (N, 3),
        read from the model now (colours change at run time: the wipe task turns its points green)."""
        m = self.model
        rgba = np.concatenate([m.geom_rgba[self._geoms], m.site_rgba[self._sites]]).astype(np.float64)
        spec = np.full(len(rgba), _DEFAULT_SPECULAR)
        shin = np.full(len(rgba), _DEFAULT_SHININESS)
        emis = np.zeros(len(rgba))
        tex = np.ones((len(rgba), 3))
        has = self._matid >= 0
        if has.any():
            mat = self._matid[has]
            use_mat = np.all(rgba[has] == _DEFAULT_RGBA, axis=1)
            rgba[has] = np.where(use_mat[:, None], m.mat_rgba[mat], rgba[has])
            tex[has] = self._tex_mean[mat]
            spec[has], shin[has], emis[has] = m.mat_specular[mat], m.mat_shininess[mat], m.mat_emission[mat]
        return rgba, spec, shin, emis, tex

    def _object_frames(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per object: position (N, 3), rotation times scale (N, 3, 3) and capsule shift (N, 3), so
        that a vertex of its unit mesh lands at ``pos + linear @ unit + shift * offset`` in the world
        with the object's current pose and size."""
        m = self.model
        pos = np.concatenate([data.geom_xpos[self._geoms], data.site_xpos[self._sites]])
        mat = np.concatenate([data.geom_xmat[self._geoms], data.site_xmat[self._sites]]).reshape(-1, 3, 3)
        size = np.concatenate([m.geom_size[self._geoms], m.site_size[self._sites]]).astype(np.float64)
        t = self._types
        scale = size.copy()
        round_ = (t == _SPHERE) | (t == _CAPSULE)
        scale[round_] = size[round_, :1]
        cyl = t == _CYLINDER
        scale[cyl] = size[cyl][:, [0, 0, 1]]
        scale[t == _MESH] = 1.0
        half = np.where(t == _CAPSULE, size[:, 1], 0.0)
        # Fold size into the rotation: a vertex is pos + rot @ (unit * scale + offset * half * z).
        return pos, mat * scale[:, None, :], mat[:, :, 2] * half[:, None]

    def _triangles(self, data: mujoco.MjData, eye: np.ndarray, rot: np.ndarray,
                   lights: _Lights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Triangles of the visible objects in camera coordinates (T, 3, 3), their shaded colours
        (T, 3) and alphas (T,): the front faces of opaque objects, both faces of transparent ones
        (MuJoCo shows the far side of a transparent geom through its near side)."""
        m = self.model
        rgba, spec, shin, emis, tex = self._materials()
        group = np.concatenate([m.geom_group[self._geoms], m.site_group[self._sites]])
        visible = (group >= 0) & (group < _N_GROUPS_SHOWN) & (rgba[:, 3] > 0)
        if not visible.any():
            return np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros(0)
        pos, linear, shift = self._object_frames(data)
        linear = rot @ linear  # world -> camera folded in
        origin = (pos - eye) @ rot.T
        shift = shift @ rot.T
        obj = self._vobj
        verts = (np.einsum("nij,nj->ni", linear[obj], self._unit) + origin[obj]
                 + shift[obj] * self._offset[:, None])
        keep = visible[self._tobj]
        tv = verts[self._tris[keep]]
        tobj = self._tobj[keep]
        normal = np.cross(tv[:, 1] - tv[:, 0], tv[:, 2] - tv[:, 0])
        centre = (tv[:, 0] + tv[:, 1] + tv[:, 2]) / 3.0
        facing = np.einsum("ij,ij->i", normal, centre)  # < 0: front face (the eye is the origin)
        keep = (facing < 0) | (rgba[tobj, 3] < 1.0)
        tv, normal, centre, tobj = tv[keep], normal[keep], centre[keep], tobj[keep]
        # Unit normals, turned towards the eye on back faces (two-sided lighting).
        normal *= (np.where(facing[keep] < 0, 1.0, -1.0)
                   / np.maximum(np.sqrt(np.einsum("ij,ij->i", normal, normal)), 1e-300))[:, None]
        colour = _shade(rgba[tobj, :3], normal, centre, spec[tobj], shin[tobj], emis[tobj], lights)
        return tv, colour * tex[tobj], np.minimum(rgba[tobj, 3], 1.0)

    # -- planes and sky --------------------------------------------------------------------------
    def _background(self, data: mujoco.MjData, eye: np.ndarray, rot: np.ndarray, focal: float,
                    znear: float, w: int, h: int, lights: _Lights) -> tuple[np.ndarray, np.ndarray]:
        """Sky and planes: packed colours (h*w,) (see :func:`_pack`) and z-buffer keys (h*w,) to draw
        over, cached while the camera, the planes, their colours and the lights stay the same (a
        fixed camera then costs no ray casting per frame)."""
        m = self.model
        p = self._planes
        key = b"".join(np.ascontiguousarray(a).tobytes() for a in (
            np.array([*eye, focal, znear, w, h]), rot, data.geom_xpos[p], data.geom_xmat[p],
            m.geom_size[p], m.geom_rgba[p], m.geom_group[p], m.mat_rgba, m.mat_emission,
            m.mat_texrepeat, lights.vector, lights.diffuse, lights.ambient))
        if self._plane_cache is None or self._plane_cache[0] != key:
            colour, zbuf = self._draw_planes(data, eye, rot, focal, znear, w, h, lights)
            self._plane_cache = (key, colour, zbuf)
        return self._plane_cache[1], self._plane_cache[2].copy()

    def _draw_planes(self, data: mujoco.MjData, eye: np.ndarray, rot: np.ndarray, focal: float,
                     znear: float, w: int, h: int, lights: _Lights) -> tuple[np.ndarray, np.ndarray]:
        """Ray-cast every visible plane through every pixel centre (see :meth:`_background`)."""
        # Pixel centres in the camera frame at unit depth: the ray of pixel (r, c) is
        # cols[c] * right + rows[r] * down + forward, so every dot product with it is separable.
        rows = (np.arange(h) + 0.5 - h / 2) / focal
        cols = (np.arange(w) + 0.5 - w / 2) / focal
        sky = np.linspace(0.0, 1.0, h)[:, None] * (self._sky[1] - self._sky[0]) + self._sky[0]
        colour = np.repeat(_pack(sky), w)
        zbuf = np.full(h * w, _EMPTY_KEY, dtype=np.int64)
        for g in self._planes:
            if not 0 <= self.model.geom_group[g] < _N_GROUPS_SHOWN:
                continue
            hit, depth, rgb = self._plane_pixels(int(g), data, eye, rot, (rows, cols), znear, lights)
            key = (((1.0 - znear / depth) * _DEPTH_SCALE).astype(np.int64) << _ID_BITS) | _ID_MASK
            nearer = key < zbuf[hit]
            hit = hit[nearer]
            zbuf[hit] = key[nearer]
            colour[hit] = rgb[nearer]
        return colour, zbuf

    def _plane_pixels(self, g: int, data: mujoco.MjData, eye: np.ndarray, rot: np.ndarray,
                      grid: tuple[np.ndarray, np.ndarray], znear: float,
                      lights: _Lights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixels (flat indices) where plane geom ``g`` is seen, their depths and packed colours;
        ``grid`` holds the pixel rows and columns at unit depth (see :meth:`_draw_planes`)."""
        m = self.model
        none = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.uint32))
        xmat = data.geom_xmat[g].reshape(3, 3)
        normal, centre = xmat[:, 2], data.geom_xpos[g]
        rgba = m.geom_rgba[g].astype(np.float64)
        matid = int(m.geom_matid[g])
        if matid >= 0 and np.all(rgba == _DEFAULT_RGBA):
            rgba = m.mat_rgba[matid].astype(np.float64)
        height = float((eye - centre) @ normal)
        if height <= 0 or rgba[3] <= 0:  # seen from below (MuJoCo culls it) or invisible
            return none
        rows, cols = grid

        def along(axis: np.ndarray) -> np.ndarray:  # ray . axis for every pixel, (h, w)
            a = rot @ axis
            return cols[None, :] * a[0] + (rows[:, None] * a[1] + a[2])

        slope = along(normal)
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = -height / slope
        seen = (slope < 0) & (depth > znear) & (depth < float(m.vis.map.zfar * m.stat.extent))
        depth = np.where(seen, depth, 0.0)
        sx, sy = float(m.geom_size[g, 0]), float(m.geom_size[g, 1])
        u = (eye - centre) @ xmat[:, 0] + depth * along(xmat[:, 0])  # plane coordinates of the hit
        v = (eye - centre) @ xmat[:, 1] + depth * along(xmat[:, 1])
        if sx > 0:
            seen &= np.abs(u) <= sx
        if sy > 0:
            seen &= np.abs(v) <= sy
        hit = np.flatnonzero(seen)
        depth, u, v = depth.ravel()[hit], u.ravel()[hit], v.ravel()[hit]
        # One colour for the whole plane (flat, directional lights), without the specular term, which
        # MuJoCo's frames of the project's floor do not show. The lit colour is clamped at 1 before
        # it modulates the texture (OpenGL's rule: the floor keeps its texture's colours).
        emission = float(m.mat_emission[matid]) if matid >= 0 else 0.0
        tex = int(m.mat_texid[matid, _TEX_ROLE_RGB]) if matid >= 0 and m.mat_texid.ndim == 2 else -1
        textured = tex >= 0 and int(m.tex_type[tex]) == int(mujoco.mjtTexture.mjTEXTURE_2D)
        shade = _shade(rgba[None, :3], (rot @ normal)[None], (rot @ (centre - eye))[None], np.zeros(1),
                       np.ones(1), np.array([emission]), lights)
        if not textured:
            return hit, depth, np.full(len(hit), _pack(shade)[0])
        img = self._texture(m, tex)
        palette = _pack(shade * img.reshape(-1, 3) / 255.0)  # the shaded texture, packed
        return hit, depth, palette[self._texel_index(matid, img.shape[:2], u, v, sx, sy)]

    def _texel_index(self, matid: int, shape: tuple[int, ...], u: np.ndarray, v: np.ndarray, sx: float,
                     sy: float) -> np.ndarray:
        """Flat index of the texel (nearest) at plane coordinates (u, v), placed as MuJoCo does
        (measured on its frames): anchored at the plane's centre, repeated ``texrepeat`` times over
        the plane's full width, or every ``2 / texrepeat`` metres with ``texuniform`` or on an
        infinite plane."""
        m = self.model
        rx, ry = (float(r) for r in m.mat_texrepeat[matid])
        if not m.mat_texuniform[matid] and sx > 0 and sy > 0:
            rx, ry = rx / (2 * sx), ry / (2 * sy)
        else:
            rx, ry = rx / 2, ry / 2
        th, tw = shape
        col = np.floor(u * (rx * tw)).astype(np.int64) % tw
        row = np.floor(v * (-ry * th)).astype(np.int64) % th
        return row * tw + col

    def close(self) -> None:
        """Drop the caches; kept for symmetry with ``mujoco.Renderer`` (there is no context to free)."""
        self._plane_cache = None

    def __enter__(self) -> SoftwareRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
