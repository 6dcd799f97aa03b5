"""``robot-brain report``: the rliable estimators (IQM, stratified bootstrap, performance
profiles) checked on numbers whose answers are known, and the verb end to end on real runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import robot_brain.cli as cli
from robot_brain.training.results import aggregates, iqm, performance_profile, stratified_bootstrap

TINY = ["--set", "policy_kwargs.net_arch=[16,16]", "--set", "learning_starts=50", "--set", "batch_size=32",
        "--set", "buffer_size=2000", "--set", "save_freq=100", "--set", "eval_freq=100"]


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # 8 scores: 2 cut from each end, mean of 3..6
    # 6 scores: int(1.5) = 1 cut from each end: the 1000 outlier goes, mean of 0, 10, 10, 10
    assert iqm(np.array([0.0, 0.0, 10.0, 10.0, 10.0, 1000.0])) == pytest.approx(7.5)
    a = aggregates(np.array([0.2, 0.4, 1.2]))
    assert a["mean"] == pytest.approx(0.6) and a["median"] == pytest.approx(0.4)
    assert a["optimality_gap"] == pytest.approx((0.8 + 0.6 + 0.0) / 3)  # scores above 1 count as 1


def test_the_bootstrap_is_stratified_by_task() -> None:
    """Task A's runs all score 0, task B's all 1: resampling within each task keeps the pooled mean
    at exactly 0.5 (an unstratified bootstrap would let it wander)."""
    scores = {"A": np.zeros(4), "B": np.ones(4)}
    point, lo, hi = stratified_bootstrap(scores, lambda x: x.mean(), reps=500)
    assert point == lo == hi == 0.5
    rng = np.random.default_rng(0)
    noisy = {"A": rng.normal(0.0, 1.0, 10)}
    point, lo, hi = stratified_bootstrap(noisy, lambda x: x.mean(), reps=2000)
    assert lo < point < hi and hi - lo == pytest.approx(2 * 1.96 / np.sqrt(10) * noisy["A"].std(), rel=0.35)


def test_a_performance_profile_falls_from_one_to_zero_with_tasks_weighted_equally() -> None:
    taus = np.linspace(0, 1, 11)
    scores = {"A": np.array([0.25, 0.75]), "B": np.array([0.55, 0.55, 0.55, 0.55])}
    prof, lo, hi = performance_profile(scores, taus, reps=200)
    assert prof[0] == 1.0 and prof[-1] == 0.0 and np.all(np.diff(prof) <= 0)
    # tau 0.6: A has 1 of 2 above, B 0 of 4: (0.5 + 0) / 2, not 1 of 6 pooled
    assert prof[6] == pytest.approx(0.25)
    assert np.all(lo <= prof + 1e-12) and np.all(prof <= hi + 1e-12)


def test_the_safety_summary_counts_what_each_run_paid() -> None:
    """Three runs with known numbers: the means, which runs count, and the violation curve."""
    from pathlib import Path

    from robot_brain.training.results import RunResult, safety_of, safety_summary

    def run(viol: int, wins: int, final: float | None, curve: list[tuple[int, int]]) -> RunResult:
        agg = {"violations_per_episode": final, "max_contact_force_mean": 12.0}
        m = {"cumulative_violations": viol, "episodes": [{"success": i < wins} for i in range(10)],
             "final_evaluation": {"aggregate": agg} if final is not None else None}
        return RunResult(Path("."), "peg", "sac", 0, "limits", "MlpPolicy", {},
                         {"return": 0.0, "success": 0.0}, [], safety_of(m), curve)

    runs = [run(100, 5, 1.0, [(1000, 40), (2000, 100)]), run(300, 6, 3.0, [(1000, 60), (2000, 300)]),
            run(0, 10, None, [(1000, 0)])]
    s = safety_summary(runs, reps=200)
    assert s["training_violations"]["mean"] == pytest.approx(400 / 3)
    # successes per violation: 5/100 and 6/300; the run without violations has no ratio
    assert s["successes_per_violation"]["n"] == 2
    assert s["successes_per_violation"]["mean"] == pytest.approx((0.05 + 0.02) / 2)
    assert s["final_violations"]["mean"] == pytest.approx(2.0) and s["final_violations"]["n"] == 2
    lo, hi = s["training_violations"]["ci"]
    assert 0 <= lo <= 400 / 3 <= hi <= 300
    # only steps every run reached: 1000 (the third run stopped there)
    assert s["violation_curve"]["step"] == [1000] and s["violation_curve"]["mean"] == [pytest.approx(100 / 3)]


def test_sample_efficiency_finds_the_first_evaluation_at_the_rate() -> None:
    """Known curves: the step and the training seconds of the first evaluation at 90 %, a run
    that never got there counted as the slowest, and a run without recorded times marked."""
    from pathlib import Path

    from robot_brain.training.results import RunResult, efficiency_summary

    def run(rates: list[float], seconds: list[float] | None) -> RunResult:
        curve = [{"step": 1000 * (i + 1), "success_rate": r, "return_mean": 0.0,
                  **({"elapsed": seconds[i]} if seconds else {})} for i, r in enumerate(rates)]
        return RunResult(Path("."), "peg", "sac", 0, "limits", "MlpPolicy", {},
                         {"return": 0.0, "success": rates[-1]}, curve, steps=1000 * len(rates),
                         elapsed=seconds[-1] + 5 if seconds else None)

    fast = run([0.2, 0.95, 0.8], [10.0, 21.0, 33.0])  # 0.95 first, at step 2000; the dip after it no matter
    slow = run([0.0, 0.5, 0.9], [12.0, 25.0, 40.0])  # exactly 0.9 counts
    never = run([0.0, 0.1, 0.85], [11.0, 22.0, 35.0])
    e = efficiency_summary([fast, slow, never], 0.9)
    assert e["steps"] == [2000, 3000, None] and e["seconds"] == [21.0, 40.0, None]
    assert e["reached"] == 2 and e["steps_median"] == 3000 and e["seconds_median"] == 40.0
    assert e["run_seconds"] == [38.0, 45.0, 40.0]
    # most runs never reached it: no median to give
    assert efficiency_summary([fast, never, never], 0.9)["steps_median"] is None
    assert efficiency_summary([fast, slow], 0.9)["steps_median"] == 2500
    # a run that reached it without a recorded time: its steps count, its time is unknown
    old = efficiency_summary([fast, run([0.0, 1.0], None)], 0.9)
    assert old["steps"] == [2000, 2000] and old["untimed"] == 1 and old["seconds_median"] is None


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two seeds of one configuration and one run with a changed learning rate (real training)."""
    root = tmp_path_factory.mktemp("report")
    for name, extra in (("a0", ["--seed", "0"]), ("a1", ["--seed", "1"]),
                        ("lr", ["--seed", "0", "--set", "learning_rate=0.0003"])):
        assert cli.main(["train", "reach", "--algo", "sac", "--steps", "200", "--out", str(root / name),
                         "--eval-episodes", "1", "--quiet", *TINY, *extra]) == 0
    return root


def test_report_pools_seeds_and_tells_configurations_apart(runs, tmp_path, capsys) -> None:
    out = tmp_path / "rep"
    assert cli.main(["report", str(runs), "--metric", "success", "--reps", "200", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "IQM" in text and "optimality gap" in text
    result = json.loads((out / "report.json").read_text())
    methods = {r["method"]: r for r in result["per_task"]}
    assert len(methods) == 2  # the two seeds pool; the learning rate makes another method
    pooled = next(r for r in methods.values() if r["runs"] == 2)
    assert pooled["seeds"] == [0, 1] and "learning_rate=0.0003" not in pooled["method"]
    assert any("learning_rate=0.0003" in m for m in methods)
    assert [r["step"] for r in json.loads((runs / "a0" / "metrics.json").read_text())["evaluations"]] \
        == pooled["curve"]["step"]
    paid = [json.loads((runs / n / "metrics.json").read_text())["cumulative_violations"]
            for n in ("a0", "a1")]
    assert pooled["safety"]["training_violations"]["mean"] == pytest.approx(np.mean(paid))
    # the runs' budgets and training times, as they recorded them
    eff = pooled["efficiency"]
    assert eff["budget"] == [200, 200] and all(t > 0 for t in eff["run_seconds"])
    for name in ("report_intervals.png", "report_profiles.png", "report_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("argv", "message"), [
    (["--bounds", "reach=high"], "argument --bounds: expected TASK=LOW:HIGH"),
    (["--bounds", "reach=5:1"], "need low < high"),
    (["--reach", "0"], "argument --reach: expected a success rate in (0, 1], got '0'"),
    (["--reach", "nan"], "argument --reach: expected a success rate in (0, 1], got 'nan'"),
    (["--reach", "90"], "argument --reach: expected a success rate in (0, 1], got '90'"),
])
def test_bad_bounds_are_one_line_exit_2(runs, tmp_path, capsys, argv, message) -> None:
    assert cli.main(["report", str(runs), "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_folder_without_runs_is_one_line_exit_2(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.json").write_text("{not json")
    assert cli.main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no training runs" in err or "metrics" in err
    assert len(err.splitlines()) == 1


def test_one_run_is_reported_without_an_aggregate(runs, tmp_path, capsys) -> None:
    """One final return has nothing to be normalised against: the per-task row, a note, no
    aggregate table (nor its pictures), exit 0."""
    out = tmp_path / "one"
    assert cli.main(["report", str(runs / "a0"), "--reps", "100", "--out", str(out)]) == 0
    result = json.loads((out / "report.json").read_text())
    assert result["aggregate"] == [] and "no aggregate" in result["note"]
    assert len(result["per_task"]) == 1 and result["per_task"][0]["runs"] == 1
    assert (out / "report_curves.png").is_file() and not (out / "report_intervals.png").exists()
