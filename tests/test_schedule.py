"""How grade() queues its jobs: the longest expected submissions first
(helpers.grading.schedule), each kernel with the threads asked for."""
import json
import os
from pathlib import Path

import nbformat
import pytest

from helpers import grading
from helpers.grading import batch
from helpers.grading.sandbox import sandbox_problem
from helpers.grading.schedule import expected_seconds, longest_first

REPO = Path(__file__).resolve().parent.parent


def _result(work, student, assignment, seconds, status="graded", grader="g1"):
    path = work / "results" / student / f"{assignment}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"student": student, "assignment": assignment, "status": status,
                                "seconds": seconds, "grader": grader}))


def test_history_of_the_grading_folder_comes_before_the_metadata(tmp_path):
    for i, s in enumerate([10.0, 30.0, 20.0]):
        _result(tmp_path, f"s{i}", "a", s)
    _result(tmp_path, "s3", "a", 999.0, status="error")     # not graded: not a measure
    _result(tmp_path, "s4", "a", 0.0)                        # reused, no time: not a measure
    _result(tmp_path, "s7", "a", 900.0, grader="g0")         # an older grader's time
    _result(tmp_path, "s7", "b", 900.0, grader="g0")
    (tmp_path / "results" / "s5" / "a.json").parent.mkdir(parents=True)
    (tmp_path / "results" / "s5" / "a.json").write_text("{not json")
    (tmp_path / "results" / "s6").mkdir()
    (tmp_path / "results" / "s6" / "b.json").write_text("[1, 2]")   # not a result dict
    settings = {"a": {"grading_seconds": 500}, "b": {"grading_seconds": 7},
                "c": {"grading_seconds": "lots"}, "d": {}}
    assert expected_seconds(tmp_path, ["a", "b", "c", "d"], settings, grader="g1") == \
        {"a": 20.0, "b": 7.0, "c": 0.0, "d": 0.0}


def test_longest_first_is_stable():
    payloads = [{"student": s, "assignment": a} for s in ("x", "y") for a in ("short", "long", "none")]
    order = [(p["assignment"], p["student"]) for p in longest_first(payloads, {"short": 1, "long": 9})]
    assert order == [("long", "x"), ("long", "y"), ("short", "x"), ("short", "y"),
                     ("none", "x"), ("none", "y")]


def test_every_assignment_states_its_grading_seconds():
    for name in grading.assignments():
        seconds = grading.course_settings(name).get("grading_seconds")
        assert isinstance(seconds, (int, float)) and seconds > 0, \
            f"solutions/{name}: course metadata grading_seconds is {seconds!r}"


class Stop(Exception):
    pass


def _queued(tmp_path, monkeypatch, names, **kw):
    """The payloads grade() would run, in order (nothing is graded)."""
    queued = []

    def run_jobs(payloads, on_result, **_):
        queued.extend(payloads)
        raise Stop

    monkeypatch.setattr(batch, "_run_jobs", run_jobs)
    with pytest.raises(Stop):
        grading.grade(tmp_path / "subs", work=tmp_path / "work", names=names, sandbox=False,
                      log=lambda *_: None, **kw)
    return queued


def _class(tmp_path, names):
    for student in ("ann", "bob"):
        for name in names:
            dest = tmp_path / "subs" / student / name
            dest.mkdir(parents=True)
            nb = nbformat.read(REPO / "notebooks" / name / f"{name}.ipynb", as_version=4)
            nbformat.write(nb, dest / f"{name}.ipynb")


def test_grade_queues_the_longest_assignment_first(tmp_path, monkeypatch):
    names = ["conv_1x1", "network_visualization", "cnn_building_blocks"]
    _class(tmp_path, names)
    queued = [(p["assignment"], p["student"]) for p in _queued(tmp_path, monkeypatch, names)]
    cost = {name: grading.course_settings(name)["grading_seconds"] for name in names}
    assert [a for a, _ in queued] == sorted([a for a, _ in queued], key=lambda a: -cost[a])
    assert queued[0] == ("network_visualization", "ann") and len(queued) == 6


@pytest.mark.skipif(sandbox_problem() is not None, reason=f"sandbox unavailable: {sandbox_problem()}")
def test_a_graded_run_records_its_times_for_the_next(tmp_path):
    """The results a run writes carry the grader that timed them: the next run orders by them."""
    from helpers.grading.jobs import grader_code_digest
    names = ["conv_1x1"]
    _class(tmp_path, names)
    grading.grade(tmp_path / "subs", work=tmp_path / "work", names=names, workers=1,
                  feedback=False, log=lambda *_: None)
    saved = json.loads((tmp_path / "work" / "results" / "ann" / "conv_1x1.json").read_text())
    assert saved["grader"] == grader_code_digest() and saved["seconds"] > 0, saved
    cost = expected_seconds(tmp_path / "work", names, {}, grader=grader_code_digest())
    assert cost["conv_1x1"] > 0


def test_threads_per_kernel(tmp_path, monkeypatch):
    _class(tmp_path, ["conv_1x1"])
    cores = os.cpu_count() or 1
    assert {p["threads"] for p in _queued(tmp_path, monkeypatch, ["conv_1x1"], workers=1)} == {cores}
    assert {p["threads"] for p in _queued(tmp_path, monkeypatch, ["conv_1x1"], workers=2 * cores)} == {1}
    assert {p["threads"] for p in _queued(tmp_path, monkeypatch, ["conv_1x1"], threads=3)} == {3}
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be"):
            grading.grade(tmp_path / "subs", work=tmp_path / "work", names=["conv_1x1"],
                          sandbox=False, threads=bad, log=lambda *_: None)
