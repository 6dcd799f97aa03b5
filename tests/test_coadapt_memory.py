"""The per-user memory (robot_brain.coadapt.memory), tested by its effects: what comes back from
a file, what the prior favours, what is left on disk after a damaged file or a crash mid-write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from robot_brain import fileio
from robot_brain.coadapt.memory import MAX_ERRORS, ProfileStore, UserProfile, validate_user


def _profile() -> UserProfile:
    p = UserProfile("alice", beta=7.5, alpha_max=0.3, trials=12)
    for g in (0, 2, 2, 1):
        p.record_goal(g, k=3)
    for e in (0.12, 0.08, 0.05):
        p.record_error(e)
    return p


# -- user names ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["alice", "Bob_2", "u.1-x", "7", "a" * 64])
def test_valid_user_names(name: str) -> None:
    assert validate_user(name) == name


@pytest.mark.parametrize("name", ["", "../etc", ".hidden", "a/b", "a b", "-x", "a" * 65, "é",
                                  "alice\n", "a\\b", None, 3])
def test_bad_user_names_are_refused_in_one_line(name: object, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid user name") as info:
        validate_user(name)  # type: ignore[arg-type]
    assert len(str(info.value).splitlines()) == 1
    with pytest.raises(ValueError, match="invalid user name"):
        ProfileStore(tmp_path).load(name)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid user name"):
        UserProfile(name)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # nothing created, nothing outside either


# -- Hebbian goal counts and the prior -----------------------------------------------------------
def test_goal_prior_is_uniform_for_a_new_user_and_sums_to_one() -> None:
    p = UserProfile("alice")
    np.testing.assert_allclose(p.goal_prior(4), np.full(4, 0.25))
    p.record_goal(1, k=4)
    prior = p.goal_prior(4)
    assert prior.sum() == pytest.approx(1.0)
    assert (prior > 0).all()  # Dirichlet(1): an unseen goal keeps some probability
    assert prior.argmax() == 1


def test_the_frequent_goal_is_favoured() -> None:
    p = UserProfile("alice")
    for g in [0, 2, 0, 1, 0, 0, 2, 0]:
        p.record_goal(g, k=3)
    prior = p.goal_prior(3)
    assert prior.argmax() == 0
    assert prior[0] > prior[2] > prior[1]  # 5 visits > 2 > 1


def test_recent_goals_outweigh_old_habits() -> None:
    """Ten trials to goal 0 long ago, then five to goal 1: with decay the recent goal wins;
    without decay (plain counts) the old habit would still win."""
    history = [0] * 10 + [1] * 5
    forgetful, plain = UserProfile("alice"), UserProfile("bob")
    for g in history:
        forgetful.record_goal(g, k=2, decay=0.8)
        plain.record_goal(g, k=2, decay=1.0)
    assert forgetful.goal_prior(2).argmax() == 1
    assert plain.goal_prior(2).argmax() == 0
    assert plain.goal_counts == [10.0, 5.0]


def test_decay_multiplies_every_count_then_adds_one() -> None:
    p = UserProfile("alice", goal_counts=[2.0, 4.0])
    p.record_goal(0, k=2, decay=0.5)
    assert p.goal_counts == [2.0, 2.0]


def test_goal_prior_handles_a_different_number_of_goals() -> None:
    p = UserProfile("alice", goal_counts=[3.0, 1.0, 0.0])
    np.testing.assert_allclose(p.goal_prior(5), np.array([4, 2, 1, 1, 1]) / 9)
    np.testing.assert_allclose(p.goal_prior(2), np.array([4, 2]) / 6)
    assert p.goal_counts == [3.0, 1.0, 0.0]  # the prior does not change what is stored
    p.record_goal(3, k=4, decay=1.0)  # recording resizes to the task's goals
    assert p.goal_counts == [3.0, 1.0, 0.0, 1.0]
    p.record_goal(0, k=2, decay=1.0)
    assert p.goal_counts == [4.0, 1.0]


@pytest.mark.parametrize("call", [lambda p: p.goal_prior(0), lambda p: p.goal_prior(2.0),
                                  lambda p: p.record_goal(3, k=3), lambda p: p.record_goal(-1, k=3),
                                  lambda p: p.record_goal(0, k=3, decay=0.0),
                                  lambda p: p.record_goal(0, k=3, decay=1.5),
                                  lambda p: p.record_error(float("nan")), lambda p: p.record_error(-1.0)])
def test_bad_arguments_are_refused(call) -> None:
    with pytest.raises(ValueError):
        call(UserProfile("alice"))


def test_only_the_last_errors_are_kept() -> None:
    p = UserProfile("alice")
    for i in range(MAX_ERRORS + 20):
        p.record_error(float(i))
    assert len(p.errors) == MAX_ERRORS
    assert p.errors[-1] == MAX_ERRORS + 19 and p.errors[0] == 20


# -- files -------------------------------------------------------------------------------------
def test_round_trip(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "runs" / "users")  # created on the first save
    p = _profile()
    path = store.save(p)
    assert path == tmp_path / "runs" / "users" / "alice.json"
    assert json.loads(path.read_text())["user"] == "alice"  # plain JSON
    q, note = store.load("alice")
    assert note is None
    assert q == p
    np.testing.assert_allclose(q.goal_prior(3), p.goal_prior(3))


def test_a_new_user_gets_defaults_without_a_note(tmp_path: Path) -> None:
    p, note = ProfileStore(tmp_path).load("carol")
    assert note is None
    assert p == UserProfile("carol")
    assert (p.beta, p.alpha_max, p.trials, p.goal_counts, p.errors) == (3.0, 0.5, 0, [], [])
    assert list(tmp_path.iterdir()) == []  # loading writes nothing


def _good() -> dict:
    return _profile().to_dict()


CORRUPT = {
    "bad JSON": (b'{\n  "user": "alice",\n  "beta": oops\n}', "bad JSON at line 3"),
    "empty": (b"", "empty file"),
    "blank": (b"  \n\n", "empty file"),
    "binary junk": (bytes(range(256)) * 4, "not UTF-8"),
    "a list": (b"[1, 2, 3]", "JSON object"),
    "beta a string": (json.dumps({**_good(), "beta": "high"}).encode(), "beta"),
    "beta NaN": (json.dumps({**_good(), "beta": float("nan")}).encode(), "beta"),
    "beta zero": (json.dumps({**_good(), "beta": 0}).encode(), "beta"),
    "alpha_max above 1": (json.dumps({**_good(), "alpha_max": 1.5}).encode(), "alpha_max"),
    "negative count": (json.dumps({**_good(), "goal_counts": [1, -2]}).encode(), "goal_counts[1]"),
    "count infinite": (b'{"format": 1, "user": "alice", "beta": 3, "alpha_max": 0.5, '
                       b'"goal_counts": [Infinity], "trials": 0, "errors": []}', "goal_counts[0]"),
    "counts a dict": (json.dumps({**_good(), "goal_counts": {"0": 1}}).encode(), "goal_counts"),
    "trials a float": (json.dumps({**_good(), "trials": 2.5}).encode(), "trials"),
    "trials a bool": (json.dumps({**_good(), "trials": True}).encode(), "trials"),
    "unknown key": (json.dumps({**_good(), "pickle": "x"}).encode(), "unknown field 'pickle'"),
    "missing key": (json.dumps({k: v for k, v in _good().items() if k != "beta"}).encode(),
                    "missing field 'beta'"),
    "another user's": (json.dumps({**_good(), "user": "mallory"}).encode(), "does not match"),
    "future format": (json.dumps({**_good(), "format": 2}).encode(), "format"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, ""),
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_a_corrupted_file_gives_defaults_a_note_and_is_kept(kind: str, tmp_path: Path) -> None:
    content, reason = CORRUPT[kind]
    store = ProfileStore(tmp_path)
    store.path("alice").write_bytes(content)
    p, note = store.load("alice")
    assert p == UserProfile("alice")
    assert note is not None and "\n" not in note
    assert note.startswith(f"profile {tmp_path / 'alice.json'} is corrupted (")
    assert reason in note
    assert note.endswith("kept as alice.json.corrupt, starting from defaults")
    assert (tmp_path / "alice.json.corrupt").read_bytes() == content  # nothing is lost
    assert not store.path("alice").exists()
    store.save(p)  # and the session can go on saving
    assert store.load("alice") == (p, None)


def test_a_folder_in_place_of_the_file(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    store.path("alice").mkdir()
    (store.path("alice") / "inside.txt").write_text("keep me")
    p, note = store.load("alice")
    assert p == UserProfile("alice")
    assert note is not None and "a folder, not a file" in note and "kept as alice.json.corrupt" in note
    assert (tmp_path / "alice.json.corrupt" / "inside.txt").read_text() == "keep me"
    store.save(p)
    assert store.path("alice").is_file()


def test_earlier_corrupt_copies_are_not_overwritten(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    for i in range(3):
        store.path("alice").write_text(f"broken {i}")
        _, note = store.load("alice")
        suffix = "" if i == 0 else f".{i}"
        assert note is not None and f"kept as alice.json.corrupt{suffix}," in note
    assert [(tmp_path / n).read_text() for n in
            ("alice.json.corrupt", "alice.json.corrupt.1", "alice.json.corrupt.2")] == [
        "broken 0", "broken 1", "broken 2"]


def test_an_oversized_file_is_not_read_into_memory(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    with open(store.path("alice"), "wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MiB of zeros
    p, note = store.load("alice")
    assert p == UserProfile("alice") and note is not None and "bytes" in note


@pytest.mark.parametrize("where", ["dump", "replace"])
def test_a_crash_during_save_leaves_the_old_file_intact(where: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store = ProfileStore(tmp_path)
    old = _profile()
    store.save(old)
    before = store.path("alice").read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    if where == "dump":
        monkeypatch.setattr(fileio.json, "dumps", crash)
    else:
        monkeypatch.setattr(os, "replace", crash)
    new = UserProfile("alice", beta=50.0, trials=99)
    with pytest.raises(OSError, match="disk full"):
        store.save(new)
    monkeypatch.undo()
    assert store.path("alice").read_bytes() == before
    assert sorted(q.name for q in tmp_path.iterdir()) == ["alice.json"]  # no temp file left
    assert store.load("alice") == (old, None)


def test_save_refuses_a_profile_that_load_would_refuse(tmp_path: Path) -> None:
    p = UserProfile("alice")
    p.beta = float("inf")  # fields changed after construction
    with pytest.raises(ValueError, match="beta"):
        ProfileStore(tmp_path).save(p)
    assert list(tmp_path.iterdir()) == []


def test_from_dict_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match=r"^alpha_max must be a finite number in \[0, 1\], got -0.1$"):
        UserProfile.from_dict({**_good(), "alpha_max": -0.1})
    with pytest.raises(ValueError, match="errors"):
        UserProfile.from_dict({**_good(), "errors": ["x"]})
    assert UserProfile.from_dict(_good(), "alice") == _profile()
