"""Benchmarks of co-adaptation: the numbers of ``docs/coadaptation.md`` and ``docs/benchmarks.md``.

Four experiments with the simulated person of :class:`~.sensing.HumanModel` on ``reach-shared``
(every person a seed; every session starts from a fresh profile unless it is the memory test):

- **assistance**: the person alone against the two assistance modes, at several noise levels
  (constant: the person does not learn), ``trials`` trials per person;
- **assist-as-needed**: a person who learns (noise 0.5 -> 0.2) is made worse mid-session
  (``impair`` added to their noise from trial ``impair_at``); the assistance ceiling over trials;
- **authority**: a person whose history says goal 0 goes for the goal the profile finds least
  likely, straight away or after a change of mind; with and without the robot's yielding;
- **memory**: a returning person's first trial with their saved profile, against the same person
  (same practice, same trial) with a fresh profile;
- **bad input**: the person behind a faulty device (NaN, 1e6 spikes, read errors, 1 s silences),
  with the input guard and without it;
- **variations**: a biased, a slow, an inattentive person, and five goals 10 cm apart.

``python -m robot_brain.coadapt.bench [OUT]`` runs all five (about 15 minutes on 2 cores) and
writes ``coadapt_bench.json`` and the pictures under ``OUT`` (default ``out/coadapt``).
"""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_brain.envs import make
from robot_brain.fileio import atomic_savefig, atomic_write_json
from robot_brain.report import mean_ci

from .arbitration import ArbitrationConfig
from .memory import ProfileStore, UserProfile
from .plot import _pyplot, plot_session
from .sensing import HumanModel, InputGuard, SimulatedHuman
from .session import CoadaptSession

__all__ = ["VARIATIONS", "ChangeOfMind", "FaultyInput", "assist_as_needed", "assistance", "authority",
           "bad_input", "main", "memory", "variations"]


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [float(r["success"]) for r in rows]
    times = [r["time"] for r in rows]
    half = [float(r["accuracy_half"]) for r in rows if r["accuracy_half"] is not None]
    return {"trials": len(rows), "success": mean_ci(ok), "time": mean_ci(times),
            "time_success": mean_ci([r["time"] for r in rows if r["success"]]),
            "accuracy_half": mean_ci(half), "effort": mean_ci([r["effort"] for r in rows]),
            "assistance": mean_ci([r["assistance"] for r in rows]),
            "violations": int(sum(r["violations"] for r in rows))}


def _session(env: Any, person: SimulatedHuman, mode: str, profile: UserProfile | None = None,
             store: ProfileStore | None = None, **arbitration: Any) -> CoadaptSession:
    return CoadaptSession(env, person, profile or UserProfile(user="bench"), store=store,
                          arbitration=ArbitrationConfig(mode=mode, **arbitration))


def _persons(env: Any, model: HumanModel, mode: str, persons: int, trials: int, *, person_seed: int,
             trial_seed: int, offset: int = 0) -> list[dict[str, Any]]:
    """``trials`` trials of each of ``persons`` persons (seeds ``person_seed + p``; trial seeds
    from ``offset + trial_seed * p``), each from a fresh profile; the records."""
    rows: list[dict[str, Any]] = []
    for p in range(persons):
        session = _session(env, SimulatedHuman(model, seed=person_seed + p), mode)
        rows += [r.as_dict() for r in session.run(trials, seed=offset + trial_seed * p)]
    return rows


def _print(label: str, s: dict[str, Any]) -> None:
    print(f"{label} success {s['success'][0]:.2f} time {s['time'][0]:.2f} s at-half "
          f"{s['accuracy_half'][0]:.2f}", flush=True)


def assistance(noises: Sequence[float] = (0.35, 0.5, 0.65, 0.8), persons: int = 5, trials: int = 20,
               modes: Sequence[str] = ("off", "blend", "hindsight")) -> dict[str, Any]:
    """Success, time and goal prediction of each mode with persons of each (constant) noise."""
    env = make("reach-shared")
    out: dict[str, Any] = {}
    try:
        for noise in noises:
            model = HumanModel(noise=noise, noise_final=noise)
            for mode in modes:
                rows = _persons(env, model, mode, persons, trials, person_seed=0, trial_seed=1000)
                out[f"{noise:g}/{mode}"] = {"noise": noise, "mode": mode, **_summary(rows), "rows": rows}
                _print(f"assistance noise {noise:g} {mode:9s}", out[f"{noise:g}/{mode}"])
    finally:
        env.close()
    return out


def assist_as_needed(persons: int = 5, trials: int = 24, impair_at: int = 14, impair: float = 0.4
                     ) -> dict[str, Any]:
    """The ceiling and the robot's mean share per trial for a learning person made worse at
    ``impair_at``; per-person rows and the mean curves."""
    env = make("reach-shared")
    ceilings, shares, errors, rows_all = [], [], [], []
    try:
        for p in range(persons):
            person = SimulatedHuman(HumanModel(), seed=p)
            session = _session(env, person, "blend")
            rows = []
            for k in range(trials):
                if k == impair_at:
                    person.extra_noise = impair
                rows.append(session.trial(k, 1000 * p + k).as_dict())
            rows_all.append(rows)
            ceilings.append([r["alpha_max"] for r in rows])
            shares.append([r["assistance"] for r in rows])
            errors.append([np.nan if r["human_error"] is None else r["human_error"] for r in rows])
    finally:
        env.close()
    c = np.array(ceilings)
    before = c[:, impair_at]  # the ceiling the first impaired trial ran with (learned before it)
    rise = [next((k - impair_at for k in range(impair_at + 1, min(impair_at + 4, trials))
                  if c[i, k] > before[i] + 0.02), None) for i in range(persons)]
    result = {"impair_at": impair_at, "impair": impair, "ceiling_mean": c.mean(axis=0).tolist(),
              "share_mean": np.array(shares).mean(axis=0).tolist(),
              "error_mean": np.nanmean(np.array(errors), axis=0).tolist(),
              "ceiling_first3": float(c[:, 1:4].mean()), "ceiling_before_impair": float(before.mean()),
              "trials_to_rise": rise, "rows": rows_all}
    print(f"assist-as-needed: ceiling trials 1-3 {result['ceiling_first3']:.2f} -> before impairment "
          f"{result['ceiling_before_impair']:.2f}; trials to rise after impairment {rise}", flush=True)
    return result


class ChangeOfMind:
    """The simulated person heading for ``first`` until ``after_s`` into the trial, then for the
    trial's goal: the robot, confident in ``first`` by then, must let go."""

    name = "change of mind"

    def __init__(self, person: SimulatedHuman, first: int, after_s: float) -> None:
        self.person, self.first, self.after_s = person, first, after_s
        self.final = first

    def set_goal(self, goal: int) -> None:
        self.final = goal

    def reset(self, trial: int) -> None:
        self.person.reset(trial)

    def read(self, view: Any) -> np.ndarray | None:
        self.person.set_goal(self.first if view.t < self.after_s else self.final)
        return self.person.read(view)

    def close(self) -> None:
        pass


def authority(persons: int = 10, history: int = 20, trials: int = 10, switch_s: float = 1.5
              ) -> dict[str, Any]:
    """After a history that strongly favours goal 0 (the person picks it 20 times in 22), the
    person goes for the goal the profile finds least likely: straight away, or after heading for
    the likely one for ``switch_s`` seconds (a change of mind), or with the profile's rationality
    set to 0.3 (a belief slow to leave its prior); with the robot's yielding (the default) and
    without it (``yield_level`` at its maximum: it never yields)."""
    env = make("reach-shared")
    out: dict[str, Any] = {}
    settings: tuple[tuple[str, dict[str, Any]], ...] = (("yielding", {}),
                                                         ("no yielding", {"yield_level": 0.95}))
    try:
        for scenario in ("unlikely goal", "change of mind", "unlikely goal, beta 0.3"):
            for label, extra in settings:
                rows: list[dict[str, Any]] = []
                priors = []
                for p in range(persons):
                    person = SimulatedHuman(HumanModel(goal_weights=(20.0, 1.0, 1.0)), seed=p)
                    profile = UserProfile(user="bench")
                    _session(env, person, "blend", profile).run(history, seed=1000 * p)
                    if scenario.endswith("beta 0.3"):  # a belief slow to leave the prior
                        profile.beta = 0.3
                    for k in range(trials):
                        prior = profile.goal_prior(3)
                        priors.append(float(prior.min()))
                        goal = int(np.argmin(prior))
                        source: Any = (ChangeOfMind(person, int(np.argmax(prior)), switch_s)
                                       if scenario == "change of mind" else person)
                        session = _session(env, source, "blend", profile, **extra)
                        rows.append(session.trial(history + k, 1000 * p + history + k, goal=goal).as_dict())
                key = f"{scenario}/{label}"
                out[key] = {**_summary(rows), "disagreement": mean_ci([r["disagreement"] for r in rows]),
                            "authority_min": mean_ci([r["authority_min"] for r in rows]),
                            "prior_of_goal": mean_ci(priors),
                            "wrong_goal": int(sum(r["reached"] not in (-1, r["goal"]) for r in rows)),
                            "rows": rows}
                s_ = out[key]
                print(f"authority ({key}): reached the chosen goal in {s_['success'][0]:.0%} of "
                      f"{s_['trials']} trials (its prior {s_['prior_of_goal'][0]:.2f}) in "
                      f"{s_['time'][0]:.2f} s, wrong goal {s_['wrong_goal']}, lowest authority "
                      f"{s_['authority_min'][0]:.2f}", flush=True)
    finally:
        env.close()
    return out


def memory(persons: int = 10, history: int = 15, model: HumanModel | None = None) -> dict[str, Any]:
    """First trial of a second session: the saved profile against a fresh one, same person
    (deep copy: same practice and random state), same trial seed and goal."""
    model = model or HumanModel(noise=0.5, noise_final=0.5, goal_weights=(6.0, 1.0, 1.0))
    env = make("reach-shared")
    pairs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = ProfileStore(tmp)
            for p in range(persons):
                person = SimulatedHuman(model, seed=p)
                profile, _ = store.load(f"user{p}")
                _session(env, person, "blend", profile, store).run(history, seed=1000 * p)
                saved, note = store.load(f"user{p}")  # from disk, as the next session would
                assert note is None, note
                seed = 1000 * p + 500
                goal = person.choose_goal(3)
                twin = copy.deepcopy(person)
                back = _session(env, person, "blend", saved, store).trial(history, seed, goal=goal).as_dict()
                fresh = _session(env, twin, "blend", UserProfile(user=f"new{p}")).trial(
                    history, seed, goal=goal).as_dict()
                pairs.append({"returning": back, "fresh": fresh, "profile": saved.to_dict()})
    finally:
        env.close()
    keys = ("time", "success", "accuracy", "effort")
    result: dict[str, Any] = {"history": history, "model": model.__dict__, "pairs": pairs}
    for key in keys:
        diff = [float(pr["returning"][key]) - float(pr["fresh"][key]) for pr in pairs]
        result[key] = {"returning": mean_ci([float(pr["returning"][key]) for pr in pairs]),
                       "fresh": mean_ci([float(pr["fresh"][key]) for pr in pairs]),
                       "difference": mean_ci(diff)}
    print(f"memory: first-trial time returning {result['time']['returning'][0]:.2f} s vs fresh "
          f"{result['time']['fresh'][0]:.2f} s; goal prediction {result['accuracy']['returning'][0]:.0%} "
          f"vs {result['accuracy']['fresh'][0]:.0%}", flush=True)
    return result


#: Persons and layouts beside the benchmark's: biased, slow to see, inattentive, crowded goals.
VARIATIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "bias 0.3 sideways": ({"bias": (0.0, 0.3, 0.0)}, {}),
    "delay 0.4 s": ({"delay": 0.4}, {}),
    "no input on 30 % of ticks": ({"idle": 0.3}, {}),
    "5 goals 10 cm apart": ({}, {"goals": [[0.55, y, 0.25] for y in (-0.2, -0.1, 0.0, 0.1, 0.2)]}),
}


def variations(persons: int = 3, trials: int = 10, noise: float = 0.5) -> dict[str, Any]:
    """The person alone against blending for each of :data:`VARIATIONS` (noise ``noise``)."""
    out: dict[str, Any] = {}
    for name, (person_options, task_options) in VARIATIONS.items():
        model = HumanModel(noise=noise, noise_final=noise, **person_options)
        env = make("reach-shared", **task_options)
        try:
            for mode in ("off", "blend"):
                rows = _persons(env, model, mode, persons, trials, person_seed=10, trial_seed=100, offset=777)
                out[f"{name}/{mode}"] = _summary(rows)
                _print(f"variation {name} {mode:6s}", out[f"{name}/{mode}"])
        finally:
            env.close()
    return out


class FaultyInput:
    """The simulated person behind a faulty device: at each tick, with the given probabilities,
    NaN, a huge vector (1e6: a unit mistake), an exception, or the start of a 1 s silence."""

    name = "faulty"

    def __init__(self, person: SimulatedHuman, seed: int, nan: float = 0.05, huge: float = 0.05,
                 error: float = 0.02, stall: float = 0.005, stall_ticks: int = 20) -> None:
        self.person, self.rng = person, np.random.default_rng(seed)
        self.p = (nan, huge, error, stall)
        self.stall_ticks = stall_ticks
        self._silent = 0

    def choose_goal(self, k: int) -> int:
        return self.person.choose_goal(k)

    def set_goal(self, goal: int) -> None:
        self.person.set_goal(goal)

    def reset(self, trial: int) -> None:
        self.person.reset(trial)
        self._silent = 0

    def read(self, view: Any) -> np.ndarray | None:
        u = self.person.read(view)
        if self._silent > 0:
            self._silent -= 1
            return None
        nan, huge, error, stall = self.p
        r = self.rng.random()
        if r < nan:
            return np.full(3, np.nan)
        if r < nan + huge:
            return self.rng.normal(size=3) * 1e6
        if r < nan + huge + error:
            raise OSError("device read failed")
        if r < nan + huge + error + stall:
            self._silent = self.stall_ticks
            return None
        return u

    def close(self) -> None:
        pass


class _NoGuard(InputGuard):
    """The ablation: every finite input passes unchanged (only the action's clip remains); a
    device error is still no input (else the first one ends the session)."""

    def filter(self, t: float, raw: object) -> np.ndarray | None:
        try:
            u = None if raw is None else np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        return u if u is not None and u.shape == (3,) and np.isfinite(u).all() else None


def bad_input(persons: int = 5, trials: int = 10) -> dict[str, Any]:
    """Clean input, the faulty device with the guard, and the faulty device without it: success,
    the largest tool displacement in one tick, what the guard refused."""
    env = make("reach-shared")
    out: dict[str, Any] = {}
    try:
        for label in ("clean", "faulty, guarded", "faulty, no guard"):
            rows: list[dict[str, Any]] = []
            for p in range(persons):
                person = SimulatedHuman(HumanModel(noise=0.5, noise_final=0.5), seed=p)
                source: Any = person if label == "clean" else FaultyInput(person, seed=p)
                guard = _NoGuard() if label == "faulty, no guard" else InputGuard()
                session = CoadaptSession(env, source, UserProfile(user="bench"), guard=guard)
                for k in range(trials):
                    try:
                        rows.append(session.trial(k, 1000 * p + k).as_dict())
                    except OSError:  # without the guard a device error ends the session
                        rows.append({"success": False, "time": float("nan"), "max_command_step": 0.0,
                                     "rejected_inputs": 0, "stalled_ticks": 0, "crashed": True})
                        break
            steps = [r["max_command_step"] for r in rows]
            out[label] = {"trials": len(rows), "success": mean_ci([float(r["success"]) for r in rows]),
                          "crashed_sessions": sum(bool(r.get("crashed")) for r in rows),
                          "max_step_mm": 1e3 * max(steps),
                          "median_step_mm": 1e3 * float(np.median(steps)),
                          "rejected": int(sum(r["rejected_inputs"] for r in rows)),
                          "stalled_ticks": int(sum(r["stalled_ticks"] for r in rows))}
            s = out[label]
            print(f"bad input ({label}): success {s['success'][0]:.0%} of {s['trials']}, largest tool "
                  f"move in one tick {s['max_step_mm']:.1f} mm, refused {s['rejected']}, crashed "
                  f"{s['crashed_sessions']}", flush=True)
    finally:
        env.close()
    return out


def _plot_assistance(res: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    noises = sorted({v["noise"] for v in res.values()})
    modes = list(dict.fromkeys(v["mode"] for v in res.values()))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    width = 0.8 / len(modes)
    labels = {"off": "human alone", "blend": "blend", "hindsight": "hindsight"}
    for j, mode in enumerate(modes):
        xs = np.arange(len(noises)) + (j - (len(modes) - 1) / 2) * width
        for ax, key, scale in zip(axes, ("success", "time", "accuracy_half"), (100, 1, 100), strict=True):
            vals = [res[f"{n:g}/{mode}"][key] for n in noises]
            mean = np.array([v[0] for v in vals]) * scale
            err = np.array([[v[0] - v[1], v[2] - v[0]] for v in vals]).T * scale
            ax.bar(xs, mean, width, yerr=err, capsize=2, label=labels.get(mode, mode))
    for ax, title in zip(axes, ("success [%]", "trial time [s] (10 s: timeout)",
                                "goal predicted right at half distance [%]"), strict=True):
        ax.set_xticks(range(len(noises)), [f"{n:g}" for n in noises])
        ax.set_xlabel("person's heading noise")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("shared control on reach-shared: 5 simulated persons x 20 trials per bar (95 % CI)",
                 fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def main(out: str | Path = "out/coadapt") -> dict[str, Any]:
    """Run the four benchmarks; write the JSON and the pictures under ``out``."""
    out = Path(out)
    t0 = time.perf_counter()
    results: dict[str, Any] = {"assistance": assistance(), "assist_as_needed": assist_as_needed(),
                               "authority": authority(), "memory": memory(), "bad_input": bad_input(),
                               "variations": variations()}
    results["seconds"] = time.perf_counter() - t0
    atomic_write_json(out / "coadapt_bench.json", results)
    _plot_assistance(results["assistance"], out / "coadapt_assistance.png")
    aan = results["assist_as_needed"]
    mean_rows = [{"trial": k, "alpha_max": c, "assistance": s, "human_error": e, "success": True,
                  "time": float(np.mean([rows[k]["time"] for rows in aan["rows"]])),
                  "accuracy": float(np.mean([rows[k]["accuracy"] for rows in aan["rows"]])),
                  "accuracy_half": None}
                 for k, (c, s, e) in enumerate(zip(aan["ceiling_mean"], aan["share_mean"], aan["error_mean"],
                                                   strict=True))]
    plot_session(mean_rows, out / "coadapt_assist_as_needed.png",
                 title=f"assist-as-needed: mean of {len(aan['rows'])} learning persons, noise +"
                       f"{aan['impair']:g} from trial {aan['impair_at']}",
                 marks={aan["impair_at"]: "worse"})
    print(f"wrote {out} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main(*sys.argv[1:2])
