"""Bresa's rate ablation (robot_brain.critic_training.rate_ablation): the latency measure and the
decision-rate critic's schedule, on the real maze with the shipped critic."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from robot_brain.critic_training.rate_ablation import _latencies, _reflex
from robot_brain.envs import Disturbances, make
from robot_brain.policies import make_policy
from robot_brain.rollout import run_episode


def _event(t: float, reason: str) -> SimpleNamespace:
    return SimpleNamespace(t=t, reason=reason)


def test_latency_is_the_first_reflex_intervention_after_each_onset() -> None:
    events = [_event(0.9, "critic"), _event(1.03, "torque_limit"), _event(1.05, "critic"),
              _event(1.2, "contact_force"), _event(3.0, "critic")]
    # onset 1.0: the torque limit is no reflex intervention, the critic at 1.05 is; onset 2.0:
    # nothing within 0.5 s; onset 2.6: the critic at 3.0.
    got = _latencies([1.0, 2.0, 2.6], events)
    assert got[0] == pytest.approx(0.05) and got[1] is None and got[2] == pytest.approx(0.4)


def test_the_decision_rate_critic_only_engages_on_step_boundaries() -> None:
    """Checked every 50th tick, the critic's interventions can begin only on those ticks; checked
    every tick, they begin anywhere (strong pushes make it fire)."""
    env = make("maze", disturbances=Disturbances(push_rate=2.0, push_force=(35.0, 50.0)))
    try:
        policy = make_policy("scripted", env)
        onsets = {}
        for every in (50, 1):
            env.unwrapped.set_shield(_reflex(every, env))
            ticks = []
            for seed in (0, 1):
                run_episode(env, policy, seed)
                assert env.unwrapped.episode.push_onsets  # pushes happened and were recorded
                ticks += [e.tick for e in env.unwrapped.loop.events.events if e.reason == "critic"]
            onsets[every] = ticks
        assert onsets[50] and all(t % 50 == 0 for t in onsets[50])
        assert any(t % 50 for t in onsets[1])
    finally:
        env.close()


def test_paired_change_is_the_relative_change_with_a_bootstrap_interval() -> None:
    from robot_brain.critic_training.rate_ablation import paired_change

    ref = [4.0, 0.0, 6.0, 2.0] * 10
    same = paired_change(ref, ref)
    assert same[0] == pytest.approx(0.0) and same[1] == pytest.approx(0.0) and same[2] == pytest.approx(0.0)
    half = paired_change([r / 2 for r in ref], ref)
    assert half[0] == pytest.approx(-0.5) and half[1] == pytest.approx(-0.5)
    noisy = paired_change([0.0, 0.0, 9.0, 0.0] * 10, ref)
    assert noisy[1] < noisy[0] < noisy[2]
    assert all(x != x for x in paired_change([1.0], [0.0]))  # no reference violations: undefined


def test_paired_success_counts_the_discordant_episodes_and_tests_them() -> None:
    from robot_brain.critic_training.rate_ablation import paired_success

    ref = [True, False] * 30
    same = paired_success(ref, ref)
    assert same["difference"] == 0.0 and same["gained"] == same["lost"] == 0 and same["mcnemar_p"] == 1.0
    flipped = paired_success([not r for r in ref[:7]] + ref[7:], ref)
    assert flipped["lost"] == 4 and flipped["gained"] == 3  # ref[:7] holds 4 successes, 3 failures
    # 7 lost, none gained: the exact two-sided binomial p is 2 / 2**7
    worse = paired_success([False] * 7 + [True] * 53, [True] * 60)
    assert worse["lost"] == 7 and worse["gained"] == 0
    assert worse["mcnemar_p"] == pytest.approx(2 / 2**7)
    assert worse["difference"] == pytest.approx(-7 / 60) and worse["high"] < 0
    assert worse["low"] < worse["difference"]
    balanced = paired_success([False] * 5 + [True] * 5 + [True] * 50, [True] * 5 + [False] * 5 + [True] * 50)
    assert balanced["difference"] == 0.0 and balanced["mcnemar_p"] == 1.0
    assert balanced["low"] < 0 < balanced["high"]
    with pytest.raises(ValueError, match="same non-zero number"):
        paired_success([True], [True, False])


def test_the_previous_recovery_row_is_the_previous_recovery() -> None:
    env = make("maze")
    try:
        old, new = _reflex(-1, env), _reflex(1, env)
        assert old.recoveries == ("retreat",) and old.min_hold == 0 and old.reflex_every == 1
        assert old.use_learned
        assert new.recoveries == ("retreat", "brace", "wall-soften") and new.min_hold > 0
    finally:
        env.close()


@pytest.mark.parametrize("args, needle", [(["--episodes", "0"], "--episodes must be >= 1, got 0"),
                                          (["--seeds", "-2"], "--seeds must be >= 0")])
def test_impossible_blocks_are_one_line_usage_errors(tmp_path, capsys, args, needle) -> None:
    from robot_brain.critic_training.rate_ablation import main

    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "r.json"), *args])
    assert e.value.code == 2 and needle in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_a_family_without_violations_reports_no_ratio(capsys) -> None:
    """Limits with no violation at all: the change is not a ratio (no NaN in the JSON)."""
    from robot_brain.critic_training.rate_ablation import HELD_OUT_SHIELDS, run
    from robot_brain.envs import Disturbances

    out = run({"calm": Disturbances()}, HELD_OUT_SHIELDS, seeds=(0,), episodes=1)
    assert out["calm / limits"]["per_episode_violations"] == [0.0]
    critic = out["calm / critic every tick (1 kHz)"]
    assert critic["change_vs_limits"] is None
    assert "n/a (none under the limits)" in capsys.readouterr().out


def test_plot_draws_earlier_results_and_refuses_what_it_cannot_read(tmp_path, capsys) -> None:
    import json

    from robot_brain.critic_training.rate_ablation import main

    row = {"change_vs_limits": [-0.4, -0.55, -0.2],
           "success_vs_limits": {"difference": 0.0, "low": -0.05, "high": 0.05}}
    results = {"fam / limits": {"violations": [1.0, 0.5, 1.5]},
               "fam / critic every tick (1 kHz)": row,
               "calm / critic every tick (1 kHz)": {**row, "change_vs_limits": None}}
    src = tmp_path / "r.json"
    src.write_text(json.dumps(results))
    png = tmp_path / "forest.png"
    assert main(["--plot", str(png), "--from", f"seeds 0-2={src}"]) == {"seeds 0-2": results}
    assert png.read_bytes().startswith(b"\x89PNG")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"fam / critic": {"change_vs_limits": "big"}}))
    for args, needle in ((["--from", str(src)], "give --plot FILE.png too"),
                         (["--plot", str(png), "--from", f"x={tmp_path / 'nope.json'}"], "cannot read"),
                         (["--plot", str(png), "--from", str(bad)], "not the results of this benchmark")):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2 and needle in capsys.readouterr().err


def test_pooled_joins_every_family_s_episode_pairs() -> None:
    """The pool is the paired comparison over all families' episodes together: the violations'
    change is of the sums, the discordant episodes add up; rows it cannot pair are left out."""
    from robot_brain.critic_training.rate_ablation import pooled

    def rows(family: str, lim: list[float], crit: list[float], ls: list[float], cs: list[float]) -> dict:
        return {f"{family} / limits": {"per_episode_violations": lim, "per_episode_success": ls},
                f"{family} / critic every tick (1 kHz)": {"per_episode_violations": crit,
                                                          "per_episode_success": cs}}

    results = {**rows("a", [2.0, 2.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0]),
               **rows("b", [0.0, 4.0], [0.0, 2.0], [1.0, 1.0], [0.0, 1.0]),
               "c / critic every tick (1 kHz)": {"per_episode_violations": [9.0],
                                                 "per_episode_success": [0.0]},  # no limits row
               "d / limits": {"per_episode_violations": [1.0]},  # an older file: no success lists
               "d / critic every tick (1 kHz)": {"per_episode_violations": [0.0]}}
    pool = pooled(results)
    assert pool is not None and pool["families"] == 2 and pool["episodes"] == 4
    assert pool["change_vs_limits"][0] == pytest.approx(4.0 / 8.0 - 1.0)  # 4 violations against 8
    ps = pool["success_vs_limits"]
    assert ps["gained"] == 1 and ps["lost"] == 1 and ps["difference"] == 0.0
    assert pooled(results, shield="critic every step (20 Hz)") is None


def test_all_families_and_held_out_together_is_a_usage_error(tmp_path, capsys) -> None:
    from robot_brain.critic_training.rate_ablation import main

    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "r.json"), "--held-out", "--all-families"])
    assert e.value.code == 2 and "give one" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_paired_latency_compares_each_push_with_itself() -> None:
    """Two episodes; pushes matched by onset. The tick shield answers the first push 30 ms
    sooner and the third 10 ms later; the second push only the step shield answered, the
    fourth (episode 2) neither, the fifth only the tick shield (not a pair)."""
    from robot_brain.critic_training.rate_ablation import paired_latency

    tick = [[[1.0, 20.0], [2.0, None], [3.0, 60.0]], [[0.5, None], [1.5, 5.0]]]
    step = [[[1.0, 50.0], [2.0, 50.0], [3.0, 50.0]], [[0.5, None], [1.5, None]]]
    got = paired_latency(tick, step)
    assert got == {"pushes": 2, "earlier": 0.5, "later": 0.5, "median_difference_ms": -10.0}
    assert paired_latency([[[1.0, None]]], [[[1.0, 5.0]]]) is None
    with pytest.raises(ValueError, match="same episodes"):
        paired_latency(tick, step[:1])


def test_the_tick_row_compares_its_latency_with_the_step_row_push_by_push(capsys) -> None:
    """Strong pushes, one episode, the critic every tick and every step: each push's onset and
    latency are stored per episode, and the tick row carries the push-by-push comparison."""
    from robot_brain.critic_training.rate_ablation import run

    shields = {"limits": None, "critic every tick (1 kHz)": 1, "critic every step (20 Hz)": 50}
    out = run({"strong": Disturbances(push_rate=2.0, push_force=(35.0, 50.0))}, shields,
              seeds=(0,), episodes=1)
    tick, step = out["strong / critic every tick (1 kHz)"], out["strong / critic every step (20 Hz)"]
    onsets = [t for t, _ in tick["per_push_latency_ms"][0]]
    assert onsets and onsets == [t for t, _ in step["per_push_latency_ms"][0]]  # same pushes
    cmp = tick["latency_vs_critic every step (20 Hz)"]
    assert cmp is not None and cmp["pushes"] >= 1
    assert 0.0 <= cmp["earlier"] + cmp["later"] <= 1.0
    assert "pushes both answered" in capsys.readouterr().out
