"""Training configuration: per-task YAML defaults (as in RL Zoo), user files and ``--set`` overrides.

A hyperparameter file maps algorithm names to sections (``sac:``, ``ppo:``, ``td3:``, ``es:``); a
section named ``<algo>-<policy>`` (``ppo-ncap:``) holds the defaults of that algorithm with a
policy other than the MLP (``--policy ncap``), so a circuit and an MLP each train with settings
that suit them. A user file given with ``--config`` may hold such sections or one flat section.
A section holds

- run keys (:data:`RUN_KEYS`): ``n_timesteps``, ``policy``, ``n_envs``, ``normalize``,
  ``vec_env``, ``env_kwargs``, ``eval_freq``, ``eval_episodes``, ``save_freq``, ``noise_type``,
  ``noise_std``, and the online critic's ``learn_critic``, ``critic_update_freq``,
  ``critic_update_steps``, ``critic_buffer_size`` (:mod:`robot_brain.critic_training.online`),
  and ``overridden_steps`` (``keep``, the default, or ``skip``: an off-policy learner leaves the
  steps whose setpoints the shield changed out of its replay buffer,
  :class:`robot_brain.training.algos.SkipOverriddenReplayBuffer`);
- the algorithm's own constructor arguments (``learning_rate``, ``batch_size``, ``policy_kwargs``
  ...), checked against the Stable-Baselines3 class's signature (``es``: :data:`ES_PARAMS`).

``policy`` is ``MlpPolicy`` (SB3's MLP, ``--policy mlp``) or ``NcapPolicy`` (the task's circuit
prior, ``--policy ncap``: :data:`robot_brain.policies.CIRCUITS`), whose options go in
``policy_kwargs.circuit`` (the ablation switches) and ``policy_kwargs.action_std`` (PPO's fixed
exploration std); the circuit trains with ``ppo`` or ``es`` (evolution strategies, which only
trains circuits).

Every key is validated: an unknown key is rejected with its name (and a suggestion), a value of
the wrong type with the expected type, a value outside its range with the range (:data:`RULES`:
one declarative table, so a value that cannot train -- ``batch_size: 0``, ``gamma: 2``, a NaN
learning rate -- is refused before a run directory is written, not discovered by a crash or by
weights that never change). ``learning_rate`` (and PPO's ``clip_range``) may be a
linear schedule written ``lin_<initial value>`` as in RL Zoo. The resolved configuration is
plain YAML data (no Python objects), so it can be written to ``config.yaml`` and read back with
``yaml.safe_load`` to reproduce the run.
"""

from __future__ import annotations

import copy
import difflib
import importlib.resources
import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = [
    "ALGOS",
    "ES_PARAMS",
    "POLICIES",
    "RULES",
    "RUN_KEYS",
    "ConfigError",
    "algo_class",
    "apply_overrides",
    "check_algo",
    "default_hyperparams",
    "load_config_file",
    "read_text",
    "resolve_hyperparams",
    "task_default_algo",
    "validate_section",
    "with_run_defaults",
]

ALGOS = ("sac", "ppo", "td3", "tqc", "crossq", "es")
# Stable-Baselines3's own and sb3-contrib's (kept by the SB3 team); es is robot_brain.training.es
SB3_ALGOS = ("sac", "ppo", "td3", "tqc", "crossq")
OFF_POLICY = ("sac", "td3", "tqc", "crossq")
#: ``--policy`` names -> the ``policy`` of a configuration.
POLICIES = {"mlp": "MlpPolicy", "ncap": "NcapPolicy"}
#: The constructor arguments of ``es`` (:class:`robot_brain.training.es.EvolutionStrategies`) a
#: configuration may set, with their defaults (those of the NCAP work: 8 perturbations in 4
#: antithetic pairs, noise std 0.02, Adam step 0.01, whole episodes).
ES_PARAMS: dict[str, Any] = {"population": 8, "sigma": 0.02, "learning_rate": 0.01, "rollout_steps": 0,
                             "policy_kwargs": None}

# Keys the trainer consumes itself, with their expected types.
RUN_KEYS: dict[str, tuple[type, ...]] = {
    "n_timesteps": (int,),
    "policy": (str,),
    "n_envs": (int,),
    "normalize": (bool,),
    "vec_env": (str,),
    "env_kwargs": (dict,),
    "eval_freq": (int,),
    "eval_episodes": (int,),
    "save_freq": (int,),
    "noise_type": (str, type(None)),
    "noise_std": (float, int),
    # online critic learning (robot_brain.critic_training.online); absent = off
    "learn_critic": (bool,),
    "critic_update_freq": (int,),
    "critic_update_steps": (int,),
    "critic_buffer_size": (int,),
    # what an off-policy learner does with the steps the shield changed: keep them (with the
    # action the policy proposed, as Recovery RL does) or skip them
    "overridden_steps": (str,),
}
# Constructor arguments the trainer sets itself (never from a config).
_RESERVED = {"self", "policy", "env", "tensorboard_log", "verbose", "seed", "device",
             "_init_setup_model", "action_noise", "replay_buffer_class", "replay_buffer_kwargs",
             "rollout_buffer_class", "rollout_buffer_kwargs", "stats_window_size"}
_SCHEDULE_KEYS = ("learning_rate", "clip_range")
POLICY_KWARGS = {"net_arch": (list, dict), "activation_fn": (str,), "log_std_init": (float, int),
                 "ortho_init": (bool,), "use_sde": (bool,), "n_critics": (int,),
                 "share_features_extractor": (bool,), "circuit": (dict,), "action_std": (float, int),
                 "n_quantiles": (int,)}  # n_quantiles: TQC's quantiles per critic
ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "gelu")


class ConfigError(ValueError):
    """A configuration problem the user can fix; the message names the key and the source."""


def read_text(path: str | Path, what: str, error: type[ValueError] = ValueError) -> str:
    """The UTF-8 text of a run or config file, or ``error`` with one line naming the file.

    Every text file robot-brain reads back (``--config``, ``config.yaml``, checkpoint metadata,
    ``metrics.json``) goes through here, so a missing, unreadable, non-UTF-8 or symlinked file is
    one line, never a traceback, and a symbolic link planted in a run cannot make the reader
    open a file outside it.
    """
    path = Path(path)
    if path.is_symlink():
        raise error(f"{what} {path} is a symbolic link; expected a plain file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} {path} not found") from None
    except OSError as exc:
        raise error(f"{what} {path} is unreadable ({exc.strerror or type(exc).__name__})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


def read_json_mapping(path: str | Path, what: str, error: type[ValueError] = ValueError,
                      expected: str = "a mapping") -> dict[str, Any]:
    """A run file holding one JSON object (via :func:`read_text`), or ``error`` with one line
    naming the file: invalid JSON, too deeply nested, or not an object (``expected`` says what
    it should have been)."""
    path = Path(path)
    text = read_text(path, what, error)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise error(f"{what} {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{what} {path} is not {expected}")
    return data


# -- value rules ------------------------------------------------------------------------------
Number = int | float


@dataclass(frozen=True)
class Rule:
    """What a value must satisfy, as data: ``check(value)`` returns ``None`` or what is
    expected ("> 0", "in (0, 1]" ...), which the error message quotes."""

    test: Callable[[Any], bool]
    expect: str

    def check(self, value: Any) -> str | None:
        try:
            return None if self.test(value) else self.expect
        except (TypeError, ValueError):
            return self.expect


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def at_least(low: Number) -> Rule:
    """A number >= ``low`` (counts, sizes)."""
    return Rule(lambda x: _num(x) and x >= low, f">= {low}")


def greater(low: Number) -> Rule:
    """A number > ``low`` (rates, clip ranges); NaN fails every comparison, so it fails too."""
    return Rule(lambda x: _num(x) and x > low, f"> {low}")


def interval(low: Number, high: Number, *, low_open: bool = False) -> Rule:
    """A number in ``[low, high]`` (``(low, high]`` with ``low_open``): discounts, averaging."""
    lo = (lambda x: x > low) if low_open else (lambda x: x >= low)
    return Rule(lambda x: _num(x) and lo(x) and x <= high, f"in {'(' if low_open else '['}{low}, {high}]")


def one_of(*choices: Any) -> Rule:
    """One of a few values (a name, or a sentinel such as ``-1`` or ``None``)."""
    expect = str(choices[0]) if len(choices) == 1 else "one of " + ", ".join(map(str, choices))
    return Rule(lambda x: x in choices, expect)


def either(*rules: Rule) -> Rule:
    """Any of ``rules`` (``gradient_steps``: >= 1 or -1)."""
    return Rule(lambda x: any(r.check(x) is None for r in rules), " or ".join(r.expect for r in rules))


def _net_arch_ok(value: Any) -> bool:
    def layers(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                                           for n in v)

    if isinstance(value, dict):
        return bool(value) and all(k in ("pi", "qf", "vf") and layers(v) for k, v in value.items())
    return layers(value)


def _train_freq_ok(value: Any) -> bool:
    if isinstance(value, list):
        return (len(value) == 2 and at_least(1).check(value[0]) is None and isinstance(value[0], int)
                and value[1] in ("step", "episode"))
    return isinstance(value, int) and value >= 1


def _ent_coef_ok(value: Any) -> bool:
    if isinstance(value, str):  # SAC: "auto" or "auto_<initial value > 0>"
        if value == "auto":
            return True
        start = value[5:] if value.startswith("auto_") else "x"
        return greater(0).check(float(start)) is None and math.isfinite(float(start))
    return at_least(0).check(value) is None


# Ranges of values, by key (``policy_kwargs.X`` for the policy's keys); schedules
# (``lin_<value>``) are checked on their initial value. One table, so a rule is added in one
# place and applies to defaults, --config, --set and a run's config.yaml alike. Every number,
# with or without a rule, must also be finite.
RULES: dict[str, Rule] = {
    "n_timesteps": at_least(1), "n_envs": at_least(1), "eval_episodes": at_least(1),
    "eval_freq": at_least(0), "save_freq": at_least(0), "noise_std": at_least(0),
    "vec_env": one_of("dummy", "subproc"), "noise_type": one_of("normal", "ornstein-uhlenbeck", None),
    "policy": one_of(*POLICIES.values()),
    "population": Rule(lambda x: isinstance(x, int) and x >= 2 and x % 2 == 0, "an even integer >= 2"),
    "overridden_steps": one_of("keep", "skip"),
    "critic_update_freq": at_least(1), "critic_update_steps": at_least(1), "critic_buffer_size": at_least(1),
    "rollout_steps": Rule(lambda x: isinstance(x, int) and not isinstance(x, bool) and x >= 0,
                          "an integer >= 0 (0: whole episodes)"),
    "sigma": greater(0), "policy_kwargs.action_std": greater(0),
    "learning_rate": greater(0), "clip_range": greater(0),
    "batch_size": at_least(1), "buffer_size": at_least(1), "learning_starts": at_least(0),
    "gamma": interval(0, 1, low_open=True), "tau": interval(0, 1, low_open=True),
    "gae_lambda": interval(0, 1), "n_steps": at_least(1), "n_epochs": at_least(1),
    "gradient_steps": either(at_least(1), one_of(-1)), "sde_sample_freq": either(at_least(1), one_of(-1)),
    "train_freq": Rule(_train_freq_ok, "an integer >= 1 or [n >= 1, step|episode]"),
    "target_update_interval": at_least(1), "policy_delay": at_least(1),
    "target_policy_noise": at_least(0), "target_noise_clip": at_least(0),
    "ent_coef": Rule(_ent_coef_ok, ">= 0, 'auto' or 'auto_<value > 0>'"),
    "vf_coef": at_least(0), "max_grad_norm": greater(0),
    "clip_range_vf": either(one_of(None), greater(0)), "target_kl": either(one_of(None), greater(0)),
    "policy_kwargs.net_arch": Rule(_net_arch_ok, "a list of layer sizes >= 1 (or a mapping of pi/qf/vf "
                                                 "to such lists)"),
    "policy_kwargs.activation_fn": one_of(*ACTIVATIONS),
    "policy_kwargs.n_critics": at_least(1),
    "policy_kwargs.n_quantiles": at_least(1),
    "target_entropy": Rule(lambda x: x == "auto" or _num(x), "'auto' or a number"),
}


def _non_finite(value: Any) -> bool:
    """A NaN or infinite number anywhere in ``value`` (YAML's ``.nan``/``.inf``)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False


def _check_rule(key: str, value: Any, where: str) -> None:
    if _non_finite(value):
        raise ConfigError(f"{where}: {key} must be finite, got {value!r}")
    rule = RULES.get(key)
    if rule is None:
        return
    shown = value
    if key in _SCHEDULE_KEYS and isinstance(value, str):  # lin_<initial value>
        value = float(value[4:])
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {key} must be finite, got {shown!r}")
    expect = rule.check(value)
    if expect is not None:
        raise ConfigError(f"{where}: {key} must be {expect}, got {shown!r}")


def check_algo(algo: str) -> str:
    """``algo`` if it is one of :data:`ALGOS`, else a one-line "did you mean" error."""
    if algo not in ALGOS:
        close = difflib.get_close_matches(algo, ALGOS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown algorithm {algo!r}{hint} (choose from {', '.join(ALGOS)})")
    return algo


def algo_class(algo: str) -> type[BaseAlgorithm]:
    """The class of ``algo``: Stable-Baselines3's for ``sac``, ``ppo``, ``td3``, sb3-contrib's for
    ``tqc`` and ``crossq``, ours for ``es``."""
    check_algo(algo)
    if algo == "es":
        from .es import EvolutionStrategies

        return EvolutionStrategies
    import stable_baselines3 as sb3

    if algo in ("tqc", "crossq"):  # sb3-contrib: TQC (truncated quantile critics), CrossQ
        import sb3_contrib

        return sb3_contrib.TQC if algo == "tqc" else sb3_contrib.CrossQ
    classes: dict[str, type[BaseAlgorithm]] = {"sac": sb3.SAC, "ppo": sb3.PPO, "td3": sb3.TD3}
    return classes[algo]


def _algo_params(algo: str) -> dict[str, Any]:
    """Constructor parameters of the algorithm (name -> default) a config may set."""
    if check_algo(algo) == "es":  # not read from the signature: importing es means importing torch
        return dict(ES_PARAMS)
    sig = inspect.signature(algo_class(algo).__init__)
    return {name: p.default for name, p in sig.parameters.items()
            if name not in _RESERVED and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _type_name(types: Iterable[type]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
             dict: "a mapping", list: "a list", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _expected_types(algo: str, key: str, default: Any) -> tuple[type, ...]:
    """Types a value of ``key`` may have, from the run keys or the constructor's default."""
    if key in RUN_KEYS:
        return RUN_KEYS[key]
    if key in _SCHEDULE_KEYS:
        return (float, int, str)
    if key == "policy_kwargs":
        return (dict, type(None))
    if key in ("train_freq",):
        return (int, list)
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, int):
        return (int,)
    if isinstance(default, float):
        return (float, int)
    if isinstance(default, str):
        return (str, float, int) if key in ("ent_coef", "target_entropy") else (str,)
    if default is None:
        return (float, int, str, bool, type(None))
    return (type(default),)


def _check_type(key: str, value: Any, types: tuple[type, ...], where: str) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise ConfigError(f"{where}: {key} expects {_type_name(types)}, got {value!r}")


def _check_schedule(key: str, value: Any, where: str) -> None:
    if isinstance(value, str):
        if not value.startswith("lin_"):
            raise ConfigError(f"{where}: {key} must be a number or 'lin_<number>', got {value!r}")
        try:
            float(value[4:])
        except ValueError:
            raise ConfigError(f"{where}: {key} must be a number or 'lin_<number>', "
                              f"got {value!r}") from None


def _check_policy_kwargs(value: Mapping[str, Any] | None, where: str) -> None:
    if value is None:
        return
    for k, v in value.items():
        if k not in POLICY_KWARGS:
            raise ConfigError(f"{where}: unknown key policy_kwargs.{k}{_suggest(k, POLICY_KWARGS)}")
        _check_type(f"policy_kwargs.{k}", v, POLICY_KWARGS[k], where)
        _check_rule(f"policy_kwargs.{k}", v, where)


def _suggest(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate_section(algo: str, section: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check every key and value of one section; returns a deep copy.

    :param where: the source named in errors (a file, ``--set``).
    :raises ConfigError: naming the first bad key.
    """
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: expected a mapping of hyperparameters, got {type(section).__name__}")
    params = _algo_params(algo)
    known = {**dict.fromkeys(RUN_KEYS), **params}
    out = copy.deepcopy(dict(section))
    for key, value in out.items():
        if not isinstance(key, str) or key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} for {algo}{_suggest(str(key), known)}")
        _check_type(key, value, _expected_types(algo, key, params.get(key)), where)
        if key in _SCHEDULE_KEYS:
            _check_schedule(key, value, where)
        if key == "policy_kwargs":
            _check_policy_kwargs(value, where)
        elif key != "env_kwargs":  # the task validates its own options (make_env)
            _check_rule(key, value, where)
    return out


def _hyperparams_text(task: str) -> str | None:
    files = importlib.resources.files("robot_brain.training") / "hyperparams"
    f = files / f"{task}.yaml"
    return f.read_text(encoding="utf-8") if f.is_file() else None


def task_default_algo(task: str) -> str:
    """The learner ``task`` trains with when none is named: the ``default_algo`` of its
    hyperparameter file (the learner that reached 90 % success in the fewest steps, see
    docs/benchmarks.md), else SAC. The callers check the name (:func:`check_algo`), so an
    edited file naming no learner is one line too."""
    text = _hyperparams_text(task)
    data = yaml.safe_load(text) if text is not None else None
    return str(data.get("default_algo", "sac")) if isinstance(data, dict) else "sac"


def check_policy(policy: str) -> str:
    """The configuration's ``policy`` for a ``--policy`` name (``mlp``, ``ncap``)."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown policy {policy!r} for training (choose from {', '.join(POLICIES)})")
    return POLICIES[policy]


def _section_names(data: Mapping[str, Any]) -> bool:
    """Whether every key of a config file names a section (``ppo``, ``ppo-ncap``)."""
    return all(isinstance(k, str) and k.partition("-")[0] in ALGOS
               and (not k.partition("-")[2] or k.partition("-")[2] in POLICIES) for k in data)


def _section(data: Mapping[str, Any], algo: str, policy: str | None) -> tuple[str, Any] | None:
    """The section of ``algo`` with ``policy`` (``None``: the algorithm's plain section): the
    ``<algo>-<policy>`` section if there is one, else the plain one."""
    if policy is not None and f"{algo}-{policy}" in data:
        return f"{algo}-{policy}", data[f"{algo}-{policy}"]
    return (algo, data[algo]) if algo in data else None


def default_hyperparams(task: str, algo: str, policy: str | None = None) -> dict[str, Any]:
    """The shipped defaults of ``task`` for ``algo`` (``hyperparams/<task>.yaml``); a task
    without its own file uses ``hyperparams/default.yaml``.

    :param policy: a ``--policy`` name: the ``<algo>-<policy>`` section is used if the file has
        one (else the plain section), and ``policy`` is set to it.
    """
    check_algo(algo)
    policy_class = None if policy is None else check_policy(policy)
    text = _hyperparams_text(task)
    name = f"hyperparams/{task}.yaml"
    if text is None:
        text, name = _hyperparams_text("default"), "hyperparams/default.yaml"
        assert text is not None  # default.yaml ships with the package
    data = yaml.safe_load(text) or {}
    found = _section(data, algo, policy)
    if found is None:
        raise ConfigError(f"{name} has no section for {algo}")
    section = dict(found[1] or {})
    if policy_class is not None:
        section["policy"] = policy_class
    return validate_section(algo, section, f"{name} ({found[0]})")


def _policy_name(policy_class: str | None) -> str | None:
    """The ``--policy`` name of a configuration's ``policy`` (``NcapPolicy`` -> ``ncap``)."""
    return next((k for k, v in POLICIES.items() if v == policy_class), None)


def load_config_file(path: str | Path, algo: str, policy: str | None = None) -> dict[str, Any]:
    """Read a user config: sections per algorithm (the one for ``algo`` is used; with ``policy``,
    the configuration's ``NcapPolicy`` ..., an ``<algo>-<policy>`` section first), one flat
    section, or a run's ``config.yaml`` (its ``hyperparams``, to reproduce the run). Parsed with
    ``yaml.safe_load`` (no Python objects)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found")
    try:
        data = yaml.safe_load(read_text(path, "config file", ConfigError))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(data).__name__}")
    if isinstance(data.get("hyperparams"), dict) and "algo" in data:  # a run's config.yaml
        if data["algo"] != algo:
            raise ConfigError(f"{path} is the configuration of a {data['algo']} run, not {algo}")
        data = data["hyperparams"]
    elif data and _section_names(data):
        found = _section(data, algo, _policy_name(policy))
        data = (found[1] if found else None) or {}
    return validate_section(algo, data, str(path))


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    return key.split("."), value


def apply_overrides(algo: str, hyperparams: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (values parsed as YAML: ``1e-3``, ``[64, 64]``, ``true``);
    dotted keys reach into mappings (``policy_kwargs.net_arch=[32,32]``,
    ``env_kwargs.clearance=0.002``). Integers are accepted where a number is expected."""
    out = copy.deepcopy(dict(hyperparams))
    for text in overrides:
        path, value = _parse_override(text)
        target = out
        for part in path[:-1]:
            nxt = target.get(part)
            if nxt is None:
                nxt = target[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {text}: {part} is not a mapping")
            target = nxt
        target[path[-1]] = value
        validate_section(algo, out, f"--set {text}")
    return out


def resolve_hyperparams(task: str, algo: str, *, config_file: str | Path | None = None,
                        overrides: Iterable[str] = (), steps: int | None = None,
                        n_envs: int | None = None, policy: str | None = None,
                        env_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults <- config file <- ``--set`` <- explicit ``--steps``/``--n-envs``/``--policy``/task
    options (``--links``: ``env_kwargs``), validated.

    :param policy: ``--policy`` (``mlp``, ``ncap``): picks the ``<algo>-<policy>`` sections and
        sets ``policy``; ``None`` keeps what the files say (``es``: ``ncap``).
    """
    if policy is None and algo == "es":
        policy = "ncap"
    hp = default_hyperparams(task, algo, policy)
    if config_file is not None:
        user = load_config_file(config_file, algo, hp.get("policy"))
        for key, value in user.items():
            if isinstance(value, dict) and isinstance(hp.get(key), dict):
                hp[key] = {**hp[key], **value}
            else:
                hp[key] = value
    hp = apply_overrides(algo, hp, overrides)
    if steps is not None:
        hp["n_timesteps"] = int(steps)
    if n_envs is not None:
        hp["n_envs"] = int(n_envs)
    if policy is not None:
        hp["policy"] = check_policy(policy)
    if env_kwargs:
        hp["env_kwargs"] = {**(hp.get("env_kwargs") or {}), **env_kwargs}
    if "n_timesteps" not in hp:
        raise ConfigError(f"no n_timesteps for {task}/{algo}: pass --steps N")
    return with_run_defaults(algo, hp, "resolved configuration")


# Run keys the trainer needs, with the value a section that omits them gets.
RUN_DEFAULTS: dict[str, Any] = {"policy": "MlpPolicy", "n_envs": 1, "normalize": False, "vec_env": "subproc",
                                "env_kwargs": {}, "eval_freq": 5000, "eval_episodes": 10, "save_freq": 5000}


def with_run_defaults(algo: str, hyperparams: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``hyperparams`` with every run key the trainer reads (:data:`RUN_DEFAULTS`), validated.

    Used for a new configuration and for a run's ``config.yaml`` read back, so a hand-edited
    file that lacks a key is completed (or refused, for ``n_timesteps``) with one line instead
    of failing later with a ``KeyError``.
    """
    if not isinstance(hyperparams, Mapping):
        raise ConfigError(f"{where}: expected a mapping of hyperparameters, got {type(hyperparams).__name__}")
    hp = {**copy.deepcopy(RUN_DEFAULTS), **hyperparams}
    if "n_timesteps" not in hp:
        raise ConfigError(f"{where}: n_timesteps is missing")
    hp = validate_section(algo, hp, where)
    _check_policy_fits(algo, hp, where)
    return hp


def _check_policy_fits(algo: str, hp: Mapping[str, Any], where: str) -> None:
    """The policy, the algorithm and the run keys must work together (one line naming the fix)."""
    circuit = hp.get("policy") == "NcapPolicy"
    pk = hp.get("policy_kwargs") or {}
    if algo == "es" and not circuit:
        raise ConfigError(f"{where}: es trains circuit policies only: use --policy ncap (policy: NcapPolicy)")
    if circuit and algo not in ("ppo", "es"):
        raise ConfigError(f"{where}: the circuit policy (NcapPolicy, --policy ncap) trains with ppo or es, "
                          f"not {algo}")
    if circuit and hp.get("normalize"):
        raise ConfigError(f"{where}: normalize must be false with NcapPolicy: the circuit reads the raw "
                          f"joint angles and step index")
    if circuit and pk.get("use_sde"):
        raise ConfigError(f"{where}: policy_kwargs.use_sde does not apply to NcapPolicy (its std is fixed: "
                          f"policy_kwargs.action_std)")
    if not circuit:
        extra = [k for k in ("circuit", "action_std") if k in pk]
        if extra:
            raise ConfigError(f"{where}: policy_kwargs.{extra[0]} applies to NcapPolicy (--policy ncap) only")
    if hp.get("overridden_steps") == "skip":
        if algo not in OFF_POLICY:
            raise ConfigError(f"{where}: overridden_steps=skip leaves steps out of a replay buffer: it needs "
                              f"an off-policy learner ({', '.join(OFF_POLICY)}), not {algo}")
        if hp.get("n_envs", 1) != 1:
            raise ConfigError(f"{where}: overridden_steps=skip needs n_envs 1 (a replay buffer stores the "
                              f"envs' steps together), got {hp.get('n_envs')}")
    if algo == "es" and hp.get("n_envs", 1) != 1:
        raise ConfigError(f"{where}: es runs its population's episodes one after another: n_envs must be 1, "
                          f"got {hp.get('n_envs')}")
