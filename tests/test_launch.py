"""The ROS 2 launch files (launch/*.launch.py), their robot configs (launch/config/*.yaml) and the
colcon packaging (package.xml, setup.py, setup.cfg), tested without ROS.

``launch``, ``launch_ros`` and ``ament_index_python`` come with every ROS 2 install, but they ship
with the ROS distribution, not PyPI, so they cannot be installed here. Each test therefore
replaces them in ``sys.modules`` (through ``monkeypatch``, so they are restored afterwards) with
small stand-ins that take the real constructors' arguments and record them. A launch file is then
loaded from its path as ``ros2 launch`` does, and its ``generate_launch_description()`` is called.
A small evaluator plays ``ros2 launch``: it fills the launch configurations from the declared
defaults and the ``name:=value`` overrides, enforces ``choices``, and runs the OpaqueFunctions to
get the nodes. The tests check what each node would be started with: package, executable, name,
parameter files and the verb's command line. Whether ROS itself runs these files can only be seen
on a ROS machine: ``ros2 launch robot_brain sim.launch.py``.
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import runpy
import sys
import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from robot_brain.hardware.ros2.config import NODE_KEYS, load_robot_config
from robot_brain.hardware.ros2.transport import NetworkConfig

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_DIR = ROOT / "launch"
CONFIG_DIR = LAUNCH_DIR / "config"
LAUNCH_FILES = ("robot.launch.py", "sim.launch.py")
ARGUMENTS = ("robot_config", "policy", "task", "shield", "transport", "control_hz", "policy_hz",
             "duration", "record", "dry_run")
FLAGS_ALWAYS = ("--robot", "--transport", "--policy", "--task", "--shield")
# Every optional launch argument set, each to a value no other argument has.
DISTINCT = {"policy": "scripted", "task": "peg-insertion", "shield": "none", "transport": "auto",
            "control_hz": "500", "policy_hz": "25", "duration": "3.5", "record": "bag.mcap",
            "dry_run": "true"}


# --- stand-ins for the ROS 2 launch API -------------------------------------------------------


class LaunchDescription:
    def __init__(self, initial_entities: Any = None, *, deprecated_reason: str | None = None) -> None:
        self.entities = list(initial_entities or [])


class DeclareLaunchArgument:
    def __init__(self, name: str, *, default_value: Any = None, description: str | None = None,
                 choices: Any = None, **kwargs: Any) -> None:
        assert not kwargs, f"DeclareLaunchArgument takes no {sorted(kwargs)}"
        self.name, self.default_value, self.description = name, default_value, description
        self.choices = None if choices is None else list(choices)


class OpaqueFunction:
    def __init__(self, *, function: Any, args: Any = None, kwargs: Any = None) -> None:
        self.function, self.args, self.kwargs = function, list(args or []), dict(kwargs or {})


class Shutdown:
    def __init__(self, *, reason: str = "reason not given", **kwargs: Any) -> None:
        self.reason = reason


class SetEnvironmentVariable:
    def __init__(self, name: Any, value: Any, **kwargs: Any) -> None:
        self.name, self.value = name, value


class IncludeLaunchDescription:
    def __init__(self, launch_description_source: Any, *, launch_arguments: Any = None,
                 **kwargs: Any) -> None:
        raise AssertionError("the launch files are expected to build their nodes themselves")


class LaunchConfiguration:
    def __init__(self, variable_name: str, *, default: Any = None) -> None:
        self.variable_name, self.default = variable_name, default

    def perform(self, context: Context) -> str:
        context.performed.append(self.variable_name)
        return context.launch_configurations[self.variable_name]


class _Condition:
    def __init__(self, predicate_expression: Any) -> None:
        self.predicate_expression = predicate_expression


class Node:
    # launch_ros.actions.Node's own keyword arguments; the rest go to ExecuteProcess.
    EXECUTE_PROCESS = frozenset({"output", "on_exit", "additional_env", "emulate_tty", "respawn",
                                 "respawn_delay", "cwd", "env", "shell", "sigterm_timeout",
                                 "sigkill_timeout", "condition", "prefix"})

    def __init__(self, *, executable: str, package: str | None = None, name: str | None = None,
                 namespace: str | None = None, exec_name: str | None = None,
                 parameters: Any = None, remappings: Any = None, ros_arguments: Any = None,
                 arguments: Any = None, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - self.EXECUTE_PROCESS)
        assert not unknown, f"Node takes no {unknown}"
        self.executable, self.package, self.name, self.namespace = executable, package, name, namespace
        self.parameters = list(parameters or [])
        self.remappings = list(remappings or [])
        self.arguments = list(arguments or [])
        self.kwargs = kwargs


class Context:
    """What an OpaqueFunction gets: the launch configurations (name -> string)."""

    def __init__(self, launch_configurations: dict[str, str]) -> None:
        self.launch_configurations = dict(launch_configurations)
        self.performed: list[str] = []


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []  # a package, so that its submodules import
    module.__dict__.update(attrs)
    return module


@pytest.fixture
def ros_stubs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The launch API stand-ins in sys.modules for one test (monkeypatch restores the real state)."""
    modules = {
        "launch": _module("launch", LaunchDescription=LaunchDescription),
        "launch.actions": _module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument,
                                  OpaqueFunction=OpaqueFunction, Shutdown=Shutdown,
                                  SetEnvironmentVariable=SetEnvironmentVariable,
                                  IncludeLaunchDescription=IncludeLaunchDescription),
        "launch.substitutions": _module("launch.substitutions", LaunchConfiguration=LaunchConfiguration),
        "launch.conditions": _module("launch.conditions", IfCondition=_Condition,
                                     UnlessCondition=_Condition),
        "launch_ros": _module("launch_ros"),
        "launch_ros.actions": _module("launch_ros.actions", Node=Node),
        "ament_index_python": _module("ament_index_python"),
        "ament_index_python.packages": _module(
            "ament_index_python.packages",
            get_package_share_directory=lambda package: str(ROOT)),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)


def load_launch_file(name: str) -> types.ModuleType:
    """A launch file as a module, loaded from its path the way ``ros2 launch`` loads it."""
    path = LAUNCH_DIR / name
    spec = importlib.util.spec_from_file_location("_launch_" + name.replace(".", "_"), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Launch:
    """One ``ros2 launch FILE name:=value ...``, evaluated: its declared arguments and its nodes."""

    def __init__(self, name: str, **overrides: str) -> None:
        description = load_launch_file(name).generate_launch_description()
        assert isinstance(description, LaunchDescription)
        self.declared = {e.name: e for e in description.entities if isinstance(e, DeclareLaunchArgument)}
        unknown = sorted(set(overrides) - set(self.declared))
        assert not unknown, f"{name} declares no {unknown}"
        configs = {n: a.default_value for n, a in self.declared.items()} | overrides
        for n, a in self.declared.items():
            if a.choices is not None and configs[n] not in a.choices:
                raise ValueError(f"argument {n}: {configs[n]!r} is not one of {a.choices}")
        self.context = Context(configs)
        self.nodes: list[Node] = []
        for entity in description.entities:
            if isinstance(entity, OpaqueFunction):
                actions = entity.function(self.context, *entity.args, **entity.kwargs) or []
                self.nodes += [a for a in actions if isinstance(a, Node)]
            elif isinstance(entity, Node):
                self.nodes.append(entity)

    def node(self, name: str) -> Node:
        found = [n for n in self.nodes if n.name == name]
        assert len(found) == 1, f"one node {name} expected, got {[n.name for n in self.nodes]}"
        return found[0]


def flags(arguments: list[str]) -> dict[str, str | None]:
    """``--flag value`` pairs of a command line (after the verb); a flag without a value -> None."""
    out: dict[str, str | None] = {}
    rest = arguments[1:]
    i = 0
    while i < len(rest):
        assert rest[i].startswith("--"), f"{rest[i]!r} is no flag in {arguments}"
        assert rest[i] not in out, f"{rest[i]} twice in {arguments}"
        if i + 1 < len(rest) and not rest[i + 1].startswith("--"):
            out[rest[i]] = rest[i + 1]
            i += 2
        else:
            out[rest[i]] = None
            i += 1
    return out


# --- declared arguments -----------------------------------------------------------------------


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_declared_arguments_and_defaults(ros_stubs: None, name: str) -> None:
    launch = Launch(name)
    assert tuple(launch.declared) == ARGUMENTS
    defaults = {n: a.default_value for n, a in launch.declared.items()}
    config = {"robot.launch.py": "panda.yaml", "sim.launch.py": "sim_arm.yaml"}[name]
    assert Path(defaults.pop("robot_config")) == CONFIG_DIR / config
    assert defaults == {"policy": "zero", "task": "reach", "shield": "limits",
                        "transport": {"robot.launch.py": "rclpy", "sim.launch.py": "dds"}[name],
                        "control_hz": "", "policy_hz": "", "duration": "", "record": "",
                        "dry_run": "false"}
    assert all(a.description for a in launch.declared.values())
    assert launch.declared["transport"].choices == ["auto", "rclpy", "dds"]
    assert launch.declared["dry_run"].choices == ["true", "false"]


def test_sim_reuses_the_robot_launch_arguments(ros_stubs: None) -> None:
    robot, sim = Launch("robot.launch.py"), Launch("sim.launch.py")
    for n in ARGUMENTS:
        assert sim.declared[n].description == robot.declared[n].description
        assert sim.declared[n].choices == robot.declared[n].choices


def test_unknown_default_override_is_refused(ros_stubs: None) -> None:
    module = load_launch_file("robot.launch.py")
    with pytest.raises(ValueError, match="unknown launch argument polcy"):
        module.declare_arguments(polcy="zero")


# --- the deploy node --------------------------------------------------------------------------


def test_robot_launch_starts_one_deploy_node(ros_stubs: None) -> None:
    launch = Launch("robot.launch.py")
    assert len(launch.nodes) == 1
    node = launch.node("robot_brain")
    panda = str(CONFIG_DIR / "panda.yaml")
    assert (node.package, node.executable) == ("robot_brain", "robot-brain")
    assert node.parameters == [panda]
    assert node.arguments == ["deploy", "--robot", panda, "--transport", "rclpy", "--policy", "zero",
                              "--task", "reach", "--shield", "limits"]
    assert node.kwargs["output"] == "screen"
    assert isinstance(node.kwargs["on_exit"], Shutdown)
    assert node.kwargs["additional_env"] == {"PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_each_flag_is_wired_to_its_argument(ros_stubs: None, name: str, tmp_path: Path) -> None:
    config = tmp_path / "arm.yaml"
    config.write_text((CONFIG_DIR / "sim_arm.yaml").read_text())
    launch = Launch(name, robot_config=str(config), **DISTINCT)
    node = launch.node("robot_brain")
    assert node.arguments[0] == "deploy"
    assert node.parameters == [str(config)]
    assert flags(node.arguments) == {
        "--robot": str(config), "--transport": "auto", "--policy": "scripted",
        "--task": "peg-insertion", "--shield": "none", "--control-hz": "500", "--policy-hz": "25",
        "--duration": "3.5", "--record": "bag.mcap", "--dry-run": None}
    assert set(ARGUMENTS) <= set(launch.context.performed)  # every argument was read


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_empty_optional_arguments_pass_no_flag(ros_stubs: None, name: str) -> None:
    launch = Launch(name, control_hz="", policy_hz=" ", duration="", record="  ", dry_run="false")
    given = flags(launch.node("robot_brain").arguments)
    assert set(given) == set(FLAGS_ALWAYS)
    assert all(v for v in given.values())


def test_dry_run_flag_and_bad_values(ros_stubs: None) -> None:
    assert "--dry-run" in Launch("robot.launch.py", dry_run="true").node("robot_brain").arguments
    assert "--dry-run" not in Launch("robot.launch.py", dry_run="false").node("robot_brain").arguments
    with pytest.raises(ValueError, match="dry_run"):
        Launch("robot.launch.py", dry_run="yes")  # refused by choices, as ros2 launch does
    module = load_launch_file("robot.launch.py")
    with pytest.raises(ValueError, match="dry_run must be true or false"):
        module.is_true(Context({"dry_run": "maybe"}), "dry_run")


def test_missing_robot_config_stops_the_launch(ros_stubs: None, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="robot_config"):
        Launch("robot.launch.py", robot_config=str(tmp_path / "nope.yaml"))


def test_robot_config_path_expands_home(ros_stubs: None, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "arm.yaml").write_text((CONFIG_DIR / "panda.yaml").read_text())
    node = Launch("robot.launch.py", robot_config="~/arm.yaml").node("robot_brain")
    assert node.parameters == [str(tmp_path / "arm.yaml")]
    assert flags(node.arguments)["--robot"] == str(tmp_path / "arm.yaml")


# --- the rehearsal ----------------------------------------------------------------------------


def test_sim_launch_starts_robot_then_brain_with_one_config(ros_stubs: None) -> None:
    launch = Launch("sim.launch.py")
    assert [n.name for n in launch.nodes] == ["sim_robot", "robot_brain"]
    sim, brain = launch.node("sim_robot"), launch.node("robot_brain")
    config = str(CONFIG_DIR / "sim_arm.yaml")
    for node in (sim, brain):
        assert (node.package, node.executable) == ("robot_brain", "robot-brain")
        assert node.parameters == [config]
        assert isinstance(node.kwargs["on_exit"], Shutdown)  # either one ending ends the rehearsal
        assert node.kwargs["output"] == "screen"
    assert sim.arguments == ["sim-robot", "--robot", config, "--transport", "dds"]
    assert brain.arguments == ["deploy", "--robot", config, "--transport", "dds", "--policy", "zero",
                               "--task", "reach", "--shield", "limits"]


def test_sim_passes_rate_and_duration_to_both_and_record_to_the_brain(ros_stubs: None) -> None:
    launch = Launch("sim.launch.py", control_hz="500", policy_hz="25", duration="2", record="r.mcap",
                    transport="rclpy")
    sim = flags(launch.node("sim_robot").arguments)
    brain = flags(launch.node("robot_brain").arguments)
    assert sim == {"--robot": str(CONFIG_DIR / "sim_arm.yaml"), "--transport": "rclpy",
                   "--control-hz": "500", "--duration": "2"}
    assert {k: brain[k] for k in ("--transport", "--control-hz", "--policy-hz", "--duration",
                                  "--record")} == {"--transport": "rclpy", "--control-hz": "500",
                                                   "--policy-hz": "25", "--duration": "2",
                                                   "--record": "r.mcap"}


@pytest.mark.parametrize(("transport", "distro", "expected"), [
    ("dds", "jazzy", {}),
    ("rclpy", "humble", {"ROS_LOCALHOST_ONLY": "1"}),
    ("rclpy", "jazzy", {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}),
    ("auto", "", {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}),
])
def test_sim_keeps_rclpy_nodes_on_this_machine(ros_stubs: None, monkeypatch: pytest.MonkeyPatch,
                                               transport: str, distro: str,
                                               expected: dict[str, str]) -> None:
    monkeypatch.setenv("ROS_DISTRO", distro)
    launch = Launch("sim.launch.py", transport=transport)
    for node in launch.nodes:
        assert node.kwargs["additional_env"] == {"PYTHONUNBUFFERED": "1", **expected}


# --- robot configs ----------------------------------------------------------------------------


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_validates_and_ros_can_parse_it(path: Path) -> None:
    load_robot_config(path)  # validates every key, refuses unknown ones
    doc = yaml.safe_load(path.read_text())
    assert len(doc) == 1 and next(iter(doc)) in NODE_KEYS
    # rcl's parameter-file parser cannot type an empty list and rejects the whole file.
    assert not any(v == [] for v in _walk(doc)), f"{path.name} holds an empty list"


def test_panda_config() -> None:
    cfg = load_robot_config(CONFIG_DIR / "panda.yaml")
    assert cfg.joints == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert cfg.interface == "impedance"
    assert cfg.command_topic == "/effort_controller/commands"
    assert cfg.joint_states_topic == "/franka/joint_states"  # 1 kHz, not the 30 Hz merged one
    assert cfg.wrench_topic == "/franka_robot_state_broadcaster/external_wrench_in_base_frame"
    assert (cfg.control_hz, cfg.policy_hz) == (1000.0, 20.0)
    assert cfg.dds == NetworkConfig(domain_id=0, interface="", peers=(), multicast=True)


@pytest.mark.parametrize(("name", "interface"), [("sim_arm.yaml", "effort"),
                                                  ("sim_arm_impedance.yaml", "impedance")])
def test_sim_arm_configs_stay_on_loopback(name: str, interface: str) -> None:
    cfg = load_robot_config(CONFIG_DIR / name)
    assert cfg.joints == tuple(f"joint{i}" for i in range(1, 8))
    assert cfg.interface == interface
    assert cfg.effort_controller == "effort_controller"
    assert cfg.dds == NetworkConfig.loopback(0)


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_node_parameter_files_exist_validate_and_reach_the_node(ros_stubs: None, name: str) -> None:
    for node in Launch(name).nodes:
        for param_file in node.parameters:
            path = Path(param_file)
            assert path.is_file(), f"{node.name}: {path} does not exist"
            load_robot_config(path)
            # ROS applies a parameter file's block to the node of that name, or to every node (/**).
            doc = yaml.safe_load(path.read_text())
            assert node.name in doc or "/**" in doc, f"{path.name} has no block for node {node.name}"


# --- the CLI accepts what the nodes are started with ------------------------------------------


def _parser_with(verb_module: str) -> Any:
    from robot_brain import cli

    if verb_module not in cli.COMMANDS:
        pytest.skip(f"the CLI has no '{verb_module.replace('_', '-')}' verb yet")
    return cli.build_parser()


@pytest.mark.parametrize("name", LAUNCH_FILES)
@pytest.mark.parametrize("overrides", [{}, DISTINCT], ids=["defaults", "every-argument"])
def test_cli_accepts_the_node_arguments(ros_stubs: None, name: str, overrides: dict[str, str]) -> None:
    for node in Launch(name, **overrides).nodes:
        verb = node.arguments[0]
        parser = _parser_with(verb.replace("-", "_"))
        args = parser.parse_args(node.arguments)  # a usage error raises SystemExit
        assert args.command == verb
        assert Path(args.robot) == Path(node.parameters[0])
        assert args.transport == flags(node.arguments)["--transport"]


# --- packaging --------------------------------------------------------------------------------


def _pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_xml() -> ET.Element:
    return ET.parse(ROOT / "package.xml").getroot()


def test_package_xml_fields() -> None:
    root = _package_xml()
    project = _pyproject()["project"]
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "robot_brain"
    assert root.findtext("version") == project["version"]
    assert root.findtext("license") == project["license"] == "MIT"
    assert (root.findtext("description") or "").strip()
    maintainer = root.find("maintainer")
    assert maintainer is not None and maintainer.text and "@" in (maintainer.get("email") or "")
    assert root.findtext("export/build_type") == "ament_python"
    depends = [e.text for e in root.findall("exec_depend")]
    assert len(depends) == len(set(depends))
    assert {"rclpy", "sensor_msgs", "std_msgs", "geometry_msgs"} <= set(depends)


def _imported_packages(path: Path) -> set[str]:
    """Top-level names a Python file imports, the standard library left out."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.partition(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "__future__"}


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_every_ros_package_a_launch_file_imports_is_an_exec_depend(name: str) -> None:
    depends = {e.text for e in _package_xml().findall("exec_depend")}
    imported = _imported_packages(LAUNCH_DIR / name)
    assert imported, name
    assert imported <= depends, f"{name} imports {sorted(imported - depends)} not in package.xml"


def test_setup_py_installs_what_ros_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, Any] = {}
    import setuptools

    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    # Everything but data_files comes from pyproject.toml (metadata in two places would drift).
    assert set(captured) == {"data_files"}
    installed = {f"{target}/{Path(src).name}": src for target, files in captured["data_files"]
                 for src in files}
    assert installed["share/ament_index/resource_index/packages/robot_brain"] == "resource/robot_brain"
    assert (ROOT / "resource" / "robot_brain").read_bytes() == b""
    assert installed["share/robot_brain/package.xml"] == "package.xml"
    # launch/ is mirrored, so each launch file finds config/ beside it, installed or not.
    for path in [*LAUNCH_DIR.glob("*.launch.py"), *CONFIG_DIR.glob("*.yaml")]:
        rel = path.relative_to(ROOT).as_posix()
        assert installed[f"share/robot_brain/{rel}"] == rel


def test_the_executable_is_installed_where_launch_ros_looks(ros_stubs: None) -> None:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "setup.cfg")
    assert cfg["install"]["install_scripts"] == "$base/lib/robot_brain"
    assert cfg["develop"]["script_dir"] == "$base/lib/robot_brain"
    module = load_launch_file("robot.launch.py")
    assert module.EXECUTABLE in _pyproject()["project"]["scripts"]
    assert module.PACKAGE == _package_xml().findtext("name")
