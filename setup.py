"""The ROS 2 (colcon, ament_python) half of the build. Everything else is in pyproject.toml.

setuptools merges this file with pyproject.toml: name, version, packages, dependencies and the
console script come from pyproject.toml, and this file adds only ``data_files``, which ROS 2 needs
in the install prefix:

- ``share/ament_index/resource_index/packages/robot_brain``: the marker by which ``ros2 launch``,
  ``ros2 run`` and launch_ros find the package;
- ``share/robot_brain/package.xml``;
- ``share/robot_brain/launch/*.launch.py`` and ``share/robot_brain/launch/config/*.yaml`` (with
  the calibration files ``*.json`` the configs name), which mirror the repository's ``launch/``
  so the launch files find their configs beside them, installed or not.

setup.cfg puts the console script into ``<prefix>/lib/robot_brain/`` for colcon. ``pip install .``
and ``pip install -e .`` work as before, with the script in ``bin/``. ``pip install .`` also copies
the data files above under the environment's ``share/``, which is harmless. An editable install
leaves them out.

colcon needs a setuptools that understands pyproject.toml's ``[project]`` table, including its
SPDX ``license`` string (setuptools >= 77). Ubuntu's python3-setuptools is older (59 on 22.04 /
Humble, 68 on 24.04 / Jazzy), so build with a newer setuptools in the Python that runs colcon.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
PACKAGE = "robot_brain"


def _files(pattern: str) -> list[str]:
    """Files matching ``pattern``, relative to this directory (setuptools wants relative paths)."""
    return sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern) if p.is_file())


setup(
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _files("launch/*.launch.py")),
        (f"share/{PACKAGE}/launch/config",
         _files("launch/config/*.yaml") + _files("launch/config/*.json")),
    ],
)
