"""The software renderer (numpy + Pillow, no OpenGL): frames of the project's tasks.

Checks that frames show the scene where MuJoCo's camera puts it (the camera pose against MuJoCo's
own ``mjv_updateScene``, a marker at a projected point, and, where OpenGL works, MuJoCo's frame
itself), that they follow the simulation (arm motion, colour and body changes read every frame)
and that awkward cases (transparent and hidden geoms, meshes, a camera in the scene) draw sanely.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import mujoco
import numpy as np
import pytest

from robot_brain.envs import make
from robot_brain.envs.registry import arm_tasks
from robot_brain.render.camera import Camera
from robot_brain.render.software import SoftwareRenderer

W, H = 320, 240


def _camera(task: Any) -> Camera:
    """The task's camera as a :class:`Camera` (tasks may hold a Camera or a dict)."""
    cam = task.camera
    return cam if isinstance(cam, Camera) else Camera.from_mapping(cam)


def _task(name: str) -> tuple[Any, Any]:
    env = make(name)
    env.reset(seed=0)
    return env, env.unwrapped


def _site(model: mujoco.MjModel, name: str) -> int:
    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, name)


def _orange(img: np.ndarray) -> np.ndarray:
    """Mask of the peg's orange (rgba 0.9 0.5 0.1) under any lighting: hue, not brightness."""
    r, g, b = (img[..., i].astype(np.float64) for i in range(3))
    return (r > 50) & (g > 0.4 * r) & (g < 0.7 * r) & (b < 0.3 * r)


def _pixel(task: Any, point: np.ndarray) -> tuple[float, float]:
    col, row, depth = _camera(task).project(point, W, H, task.model.vis.global_.fovy)[0]
    assert depth > 0
    return float(col), float(row)


@pytest.fixture(scope="module", params=list(arm_tasks()))
def frame(request):
    """Each task after reset(seed=0), and its first frame."""
    env, task = _task(request.param)
    renderer = SoftwareRenderer(task.model, W, H)
    yield request.param, env, task, renderer, renderer.render(task.backend.data, _camera(task))
    renderer.close()
    env.close()


def test_frame_is_a_new_uint8_picture(frame):
    _, _, task, renderer, img = frame
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    assert img.std() > 10 and len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # not blank
    again = renderer.render(task.backend.data, _camera(task))
    assert again is not img and not np.shares_memory(again, img)
    np.testing.assert_array_equal(again, img)  # nothing moved: the same picture


def test_scene_is_recognisable(frame):
    name, _, task, _, img = frame
    orange = _orange(img)
    assert orange.sum() >= 15, "the orange peg (the servo arm: its tip) should be visible"
    # The peg ends at the tool tip (site "ee"): its pixels lie next to the projected tip.
    col, row = _pixel(task, task.backend.data.site_xpos[_site(task.model, "ee")])
    ys, xs = np.nonzero(orange)
    assert np.hypot(xs - col, ys - row).min() < 8
    light = img.min(axis=2).astype(int)
    if task.arm.name == "panda":  # the white arm (rgba 0.9-0.95) is light, neutral grey
        grey = (light > 120) & (img.max(axis=2) - light < 20)
    else:  # the servo arm (rgba 0.2 0.2 0.22) is dark, neutral grey
        grey = (img.max(axis=2) < 70) & (img.max(axis=2) - light < 20) & (img.max(axis=2) > 0)
    assert grey.sum() > 500
    if name in ("maze", "peg-insertion"):  # blue walls / blue block (rgba 0.2 0.45 0.85)
        blue = img[..., 2].astype(int) - img[..., 0] > 120
        assert blue.sum() > (2000 if name == "maze" else 400)
    if name == "wipe":  # the red path points (rgba 0.9 0.2 0.2)
        red = (img[..., 0] > 150) & (img[..., 1] < 90) & (img[..., 2] < 90)
        assert red.sum() > 20


def test_camera_matches_mujoco():
    """Camera.pose and the field of view against MuJoCo's own scene camera (no OpenGL needed)."""
    env, task = _task("maze")
    model, data = task.model, task.backend.data
    for cam in (_camera(task), Camera((0.1, -0.2, 0.4), 2.0, -30.0, 20.0), Camera((0, 0, 0), 1.0, 90, -90)):
        scene = mujoco.MjvScene(model, maxgeom=1000)
        mujoco.mjv_updateScene(model, data, mujoco.MjvOption(), mujoco.MjvPerturb(), cam.mjv_camera(),
                               mujoco.mjtCatBit.mjCAT_ALL, scene)
        left, right = scene.camera[0], scene.camera[1]
        eye, rot = cam.pose()
        np.testing.assert_allclose(eye, (np.array(left.pos) + right.pos) / 2, atol=1e-5)
        np.testing.assert_allclose(rot[2], left.forward, atol=1e-5)
        np.testing.assert_allclose(rot[1], left.up, atol=1e-5)
        fovy = 2 * np.degrees(np.arctan(left.frustum_top / left.frustum_near))
        assert fovy == pytest.approx(model.vis.global_.fovy, abs=1e-3)
    env.close()


@pytest.mark.parametrize("name", list(arm_tasks()))
def test_marker_lands_on_projected_point(name):
    """Only a big magenta ball on the tool tip is left visible: it is drawn where Camera.project
    puts the tip, within a pixel or two."""
    env, task = _task(name)
    model, data = task.model, task.backend.data
    model.geom_rgba[:, 3] = 0.0
    model.site_rgba[:, 3] = 0.0
    ee = _site(model, "ee")
    model.site_rgba[ee] = (1.0, 0.0, 1.0, 1.0)
    model.site_size[ee, 0] = 0.03
    img = SoftwareRenderer(model, W, H).render(data, _camera(task)).astype(int)
    magenta = (img[..., 0] > 60) & (img[..., 2] > 60) & (img[..., 1] < 0.3 * img[..., 0])
    assert magenta.sum() > 50
    ys, xs = np.nonzero(magenta)
    col, row = _pixel(task, data.site_xpos[ee])
    assert abs(xs.mean() + 0.5 - col) < 2.0 and abs(ys.mean() + 0.5 - row) < 2.0
    env.close()


@pytest.mark.parametrize("name", ["maze", "reach"])
def test_frame_follows_the_arm(name):
    env, task = _task(name)
    renderer = SoftwareRenderer(task.model, W, H)
    cam = _camera(task)
    before = renderer.render(task.backend.data, cam)
    action = np.full(env.action_space.shape, 0.8, dtype=np.float32)
    for _ in range(5):
        env.step(action)
    after = renderer.render(task.backend.data, cam)
    assert (np.abs(after.astype(int) - before).sum(axis=2) > 30).sum() > 100
    np.testing.assert_array_equal(renderer.render(task.backend.data, cam), after)
    env.close()


def test_colour_changes_show_in_the_next_frame():
    """The wipe task turns its points green (site_rgba); a wall turned red (geom_rgba) is red."""
    env, task = _task("wipe")
    model, data = task.model, task.backend.data
    renderer = SoftwareRenderer(model, W, H)
    cam = _camera(task)

    def count(img: np.ndarray, channel: int) -> int:
        others = [c for c in range(3) if c != channel]
        return int(((img[..., channel] > 150) & (img[..., others].max(axis=2) < 100)).sum())

    before = renderer.render(data, cam)
    points = [s for s in range(model.nsite) if model.site(s).name.startswith("wipe")]
    assert points
    model.site_rgba[points] = (0.1, 0.9, 0.2, 0.9)
    after = renderer.render(data, cam)
    assert count(before, 1) == 0 and count(after, 1) > 20
    assert count(after, 0) < count(before, 0) // 4
    env.close()

    env, task = _task("maze")
    model, data = task.model, task.backend.data
    renderer = SoftwareRenderer(model, W, H)
    before = renderer.render(data, _camera(task))
    walls = [g for g in range(model.ngeom) if model.geom_rgba[g, 2] == pytest.approx(0.85)]
    model.geom_rgba[walls] = (0.9, 0.1, 0.1, 1.0)
    after = renderer.render(data, _camera(task))
    assert count(after, 0) > count(before, 0) + 2000
    env.close()


def test_moved_body_moves_in_the_frame():
    """A body moved through model.body_pos and mj_forward (the maze's wall shift) is drawn moved."""
    env, task = _task("maze")
    model, data = task.model, task.backend.data
    renderer = SoftwareRenderer(model, W, H)
    before = renderer.render(data, _camera(task))
    bodies = [b for b in range(1, model.nbody) if model.body_parentid[b] == 0 and model.body_dofnum[b] == 0
              and model.body_geomnum[b] > 0 and model.body(b).name != "link0"]
    assert bodies
    model.body_pos[bodies[0], 1] += 0.03
    mujoco.mj_forward(model, data)
    after = renderer.render(data, _camera(task))
    assert (np.abs(after.astype(int) - before).sum(axis=2) > 60).sum() > 100
    env.close()


SHAPES = """<mujoco><asset>
  <texture name="grid" type="2d" builtin="checker" rgb1=".2 .3 .4" rgb2=".1 .15 .2" width="64" height="64"/>
  <material name="grid" texture="grid" texrepeat="2 2" texuniform="true"/>
  <mesh name="tet" vertex="0 0 0  0.2 0 0  0 0.2 0  0 0 0.2"/></asset>
  <worldbody><light pos="0 0 3" dir="0 0 -1" directional="true"/>
    <geom type="plane" size="0 0 1" material="grid"/>
    <geom name="mesh" type="mesh" mesh="tet" pos="0.3 0.3 0" rgba="1 0.5 0 1"/>
    <geom name="hidden" type="sphere" size="0.1" pos="-0.3 0.3 0.1" group="3" rgba="1 0 0 1"/>
    <geom name="clear" type="box" size="0.1 0.1 0.1" pos="0.3 -0.3 0.1" rgba="0 0 1 0.3"/>
    <geom name="ball" type="ellipsoid" size="0.1 0.05 0.05" pos="-0.3 -0.3 0.1" rgba="0 1 0 1"/>
  </worldbody></mujoco>"""


def test_shapes_meshes_transparency_and_groups():
    model = mujoco.MjModel.from_xml_string(SHAPES)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    renderer = SoftwareRenderer(model, W, H)
    cam = Camera((0.0, 0.0, 0.0), 1.2, 90.0, -90.0)  # from above
    img = renderer.render(data, cam).astype(int)
    fovy = model.vis.global_.fovy

    def at(name: str) -> np.ndarray:
        gid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)
        col, row, _ = cam.project(data.geom_xpos[gid], W, H, fovy)[0]
        return img[int(row), int(col)]

    r, g, b = at("ball")
    assert g > 150 and r < 60 and b < 60
    r, g, b = at("hidden")  # group 3: not drawn, the floor shows
    assert not (r > 150 and g < 60)
    r, g, b = at("clear")  # 30 % blue over the floor: blue-tinted floor
    assert b > r + 60 and b < 250
    mesh_px = _orange(img.astype(np.uint8))
    ys, xs = np.nonzero(mesh_px)
    col, row, _ = cam.project(np.array([0.35, 0.35, 0.0]), W, H, fovy)[0]
    assert mesh_px.sum() > 100 and np.hypot(xs.mean() - col, ys.mean() - row) < 20


def test_camera_inside_the_scene_and_degenerate_views():
    """A camera closer than the near plane to geoms, inside a geom or below the floor still gives a
    frame (triangles behind the eye are clipped, not projected through it)."""
    env, task = _task("reach")
    model, data = task.model, task.backend.data
    renderer = SoftwareRenderer(model, W, H)
    ee = tuple(data.site_xpos[_site(model, "ee")])
    for cam in (Camera(ee, 0.01, 30.0, -20.0), Camera((0.0, 0.0, 0.2), 0.02, 0.0, 0.0),
                Camera((0.5, 0.0, -0.5), 1.0, 135.0, 30.0), Camera(ee, 1e-4, 0.0, -89.9)):
        img = renderer.render(data, cam)
        assert img.shape == (H, W, 3) and img.dtype == np.uint8
    env.close()


# -- against MuJoCo's OpenGL renderer ----------------------------------------------------------
_GL_SCRIPT = """
import json, sys
import mujoco, numpy as np
from robot_brain.envs import make
from robot_brain.render.camera import Camera
out = {}
for name in sys.argv[2:]:
    env = make(name)
    env.reset(seed=0)
    task = env.unwrapped
    cam = task.camera if isinstance(task.camera, Camera) else Camera.from_mapping(task.camera)
    r = mujoco.Renderer(task.model, height=240, width=320)
    r.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0  # as the tasks render
    r.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    r.update_scene(task.backend.data, camera=cam.mjv_camera())
    np.save(f"{sys.argv[1]}/{name}.npy", r.render())
    out[name] = task.backend.data.qpos.tolist()
    r.close()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def gl_frames(tmp_path_factory):
    """MuJoCo's OpenGL frames of maze and reach, made in a child process with MUJOCO_GL=egl (the
    backend is chosen at import); skipped where no OpenGL context can be made."""
    folder = tmp_path_factory.mktemp("gl")
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    try:
        proc = subprocess.run([sys.executable, "-c", _GL_SCRIPT, str(folder), "maze", "reach"],
                              capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.skip("MuJoCo's OpenGL renderer timed out")
    if proc.returncode != 0:
        pytest.skip(f"no OpenGL context: {proc.stderr.strip().splitlines()[-1:]}")
    qpos = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: (np.load(folder / f"{name}.npy"), np.array(q)) for name, q in qpos.items()}


@pytest.mark.parametrize("name", ["maze", "reach"])
def test_matches_mujoco_opengl(name, gl_frames):
    gl, qpos = gl_frames[name]
    env, task = _task(name)
    np.testing.assert_allclose(task.backend.data.qpos, qpos, atol=1e-9)  # the same state
    img = SoftwareRenderer(task.model, W, H).render(task.backend.data, _camera(task))
    diff = np.abs(img.astype(int) - gl.astype(int)).sum(axis=2)
    # Same camera, same colours and lighting model: nearly every pixel agrees (measured: mean
    # difference ~1-3 per channel, ~3 % of pixels off by more than 40 at edges and highlights).
    assert diff.mean() / 3 < 6.0
    assert (diff > 40).mean() < 0.08
    # The peg where MuJoCo draws it.
    ours, theirs = np.argwhere(_orange(img)), np.argwhere(_orange(gl))
    assert len(ours) > 10 and len(theirs) > 10
    assert np.abs(ours.mean(axis=0) - theirs.mean(axis=0)).max() < 3.0
    env.close()


@pytest.mark.slow
def test_speed_maze():
    """Median frame time of the maze at 320x240 within 15 ms (2 cores, no GPU)."""
    env, task = _task("maze")
    renderer = SoftwareRenderer(task.model, W, H)
    cam = _camera(task)
    renderer.render(task.backend.data, cam)
    times = []
    for _ in range(50):
        env.step(env.action_space.sample())
        start = time.perf_counter()
        renderer.render(task.backend.data, cam)
        times.append(time.perf_counter() - start)
    assert float(np.median(times)) < 0.015
    env.close()
