"""The dependency direction of docs/architecture.md, enforced: every first-party import of every
module (at the top or inside a function, where lazy imports hide) must point the way the layers
allow. Run-time code (controllers, hardware, runtime, safety) must never import tasks,
policies, training, experiment tooling or the CLI.

The modules are read with ``ast`` (nothing is imported), so the check is fast and sees every
import statement, including those that would only run on some code path.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Source folders and the package name they are installed as (pyproject's package-dir).
SOURCES = {"robot_brain": "robot_brain", "envs": "robot_brain.envs",
           "controllers": "robot_brain.controllers", "hardware": "robot_brain.hardware"}

# Layer -> the first-party layers it may import (besides itself). A module belongs to the
# longest layer name that prefixes it.
RUN_TIME = {
    "robot_brain.controllers": set(),
    "robot_brain.hardware": {"robot_brain.controllers", "robot_brain.params", "robot_brain.fileio"},
    "robot_brain.safety": {"robot_brain.controllers", "robot_brain.fileio", "robot_brain.params"},
    "robot_brain.runtime": {"robot_brain.controllers", "robot_brain.safety", "robot_brain.hardware"},
}
ALLOWED = {
    **RUN_TIME,
    "robot_brain.fileio": set(),
    "robot_brain.params": set(),
    "robot_brain.render": set(),
    "robot_brain.report": {"robot_brain.fileio"},
    "robot_brain.envs": {"robot_brain.runtime", "robot_brain.controllers", "robot_brain.hardware",
                         "robot_brain.safety", "robot_brain.render", "robot_brain.params"},
    "robot_brain.policies": {"robot_brain.envs", "robot_brain.params", "robot_brain.fileio"},
    "robot_brain.rollout": {"robot_brain.policies", "robot_brain.report"},
    # cognitive-graph search: a policy-level package; its benchmark drives the point-maze task
    "robot_brain.search": {"robot_brain.params", "robot_brain.fileio"},
    "robot_brain.search.bench": {"robot_brain.search", "robot_brain.envs", "robot_brain.fileio"},
    # co-adaptation: the four modules and the arbiter (devices reach ROS 2 through the hardware
    # transports); the session drives a task, its benchmark runs sessions
    "robot_brain.coadapt": {"robot_brain.params", "robot_brain.fileio", "robot_brain.controllers",
                            "robot_brain.hardware"},
    "robot_brain.coadapt.session": {"robot_brain.coadapt", "robot_brain.params"},
    "robot_brain.coadapt.bench": {"robot_brain.coadapt", "robot_brain.coadapt.session", "robot_brain.envs",
                                  "robot_brain.fileio", "robot_brain.report"},
    # experiment tooling: data collection, critic learning, policy training
    "robot_brain.critic_training": {"robot_brain.safety", "robot_brain.controllers", "robot_brain.envs",
                                    "robot_brain.policies", "robot_brain.rollout", "robot_brain.fileio",
                                    "robot_brain.report"},
    "robot_brain.training": {"robot_brain", "robot_brain.envs", "robot_brain.policies",
                             "robot_brain.safety", "robot_brain.rollout", "robot_brain.fileio",
                             "robot_brain.report", "robot_brain.critic_training"},  # --learn-critic
    "robot_brain.cli": {"*"},
    "robot_brain.__main__": {"robot_brain.cli"},
    "robot_brain": set(),  # the package's __init__ (the version)
}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _layer(module: str) -> str:
    best = max((name for name in ALLOWED if module == name or module.startswith(name + ".")),
               key=len, default=None)
    assert best is not None, f"{module} belongs to no layer: add it to ALLOWED and the docs"
    return best


def _imports(module: str, path: Path) -> set[str]:
    """First-party modules imported anywhere in ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
        else:
            continue
        found |= {n for n in names if n == "robot_brain" or n.startswith("robot_brain.")}
    return found


def test_every_module_belongs_to_a_layer():
    assert len(MODULES) > 40
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_the_allowed_way(module):
    layer = _layer(module)
    allowed = ALLOWED[layer]
    if "*" in allowed:
        return
    for target in sorted(_imports(module, MODULES[module])):
        target_layer = _layer(target) if target in MODULES or "." in target else target
        assert target_layer == layer or target_layer in allowed, (
            f"{module} ({layer}) imports {target} ({target_layer}); {layer} may import only "
            f"{sorted(allowed) or 'nothing first-party'} (docs/architecture.md, 'Imports point one way')")


def test_the_check_catches_a_forbidden_import(tmp_path):
    """The checker itself: a run-time module importing a task, the CLI or experiment tooling is
    reported (so a green run of the test above means something)."""
    bad = tmp_path / "reflex.py"
    bad.write_text("def f():\n    from robot_brain.envs import make\n    from ..cli import main\n"
                   "    import robot_brain.critic_training.learning\n")
    found = _imports("robot_brain.safety.reflex", bad)
    assert found == {"robot_brain.envs", "robot_brain.cli", "robot_brain.critic_training.learning"}
    for target in found:
        assert _layer(target) not in ALLOWED["robot_brain.safety"]
