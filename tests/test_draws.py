"""The judge's draws (helpers/grading/draws.py): unknown to the student, the same on a regrade
of the same notebook, new for any other notebook."""
import json
import os
import re

import shutil

import nbformat
import pytest

from helpers.checks import _compare
from helpers.grading import draws
from helpers.grading.course import WORK


def test_a_stream_is_fixed_by_its_key_and_cell_and_differs_otherwise():
    key = draws.submission_key(b"k" * 64, "gans", {"gans.ipynb": b"{}"})
    a, again = draws.stream(key, "cell_a"), draws.stream(key, "cell_a")
    seq = [a() for _ in range(5)]
    assert seq == [again() for _ in range(5)] and len(set(seq)) == 5
    assert all(0 <= s < 2**63 for s in seq)
    other_cell = draws.stream(key, "cell_b")
    other_notebook = draws.stream(draws.submission_key(b"k" * 64, "gans", {"gans.ipynb": b"{ }"}), "cell_a")
    other_course = draws.stream(draws.submission_key(b"j" * 64, "gans", {"gans.ipynb": b"{}"}), "cell_a")
    for stream in (other_cell, other_notebook, other_course):
        assert not set(seq) & {stream() for _ in range(5)}


def test_install_keys_fresh_seed_in_the_judge_only(monkeypatch):
    """With the judge's key in its environment, fresh_seed follows the cell's stream; without
    it (a student's kernel, tests) every draw is new."""
    key = draws.submission_key(b"k" * 64, "a", {})
    monkeypatch.setattr(_compare, "DRAWS", None)
    monkeypatch.setenv(draws.ENV, key)
    draws.install("t1")
    got = [_compare.fresh_seed() for _ in range(3)]
    draws.install("t1")
    assert [_compare.fresh_seed() for _ in range(3)] == got
    stream = draws.stream(key, "t1")
    assert got == [stream() for _ in range(3)]
    monkeypatch.delenv(draws.ENV)
    draws.install("t1")
    assert _compare.DRAWS is None and _compare.fresh_seed() != _compare.fresh_seed()


def test_the_course_key_is_made_once_and_private(tmp_path):
    key = draws.course_key(tmp_path / "work")
    path = tmp_path / "work" / draws.KEY_FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert draws.course_key(tmp_path / "work") == key and len(key) == 64
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [draws.KEY_FILE]     # no leftovers
    assert draws.fingerprint(key) != draws.fingerprint(draws.course_key(tmp_path / "other"))
    path.write_text("short")
    with pytest.raises(ValueError, match="not a key made by the grader"):
        draws.course_key(tmp_path / "work")


DRAWING_TEST = ("from helpers.checks._compare import fresh_seed\n"
                "_d = [fresh_seed() for _ in range(3)]\n"
                "print('DRAWS', _d, 'SEEN BY THE STUDENT', repr(seen()))\n"
                "assert f(_d[0] % 7) == _d[0] % 7")


def _draws_printed(work):
    nb = nbformat.read(work / "autograded" / "amy" / "loop" / "loop.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    return re.search(r"DRAWS (\[.*?\]) SEEN BY THE STUDENT (.*)", text).groups()


def test_a_regrade_draws_the_same_cases_and_a_changed_notebook_new_ones(tmp_path):
    """Real grading runs of a one-cell course whose judged test draws three seeds: the same
    notebook regraded draws the same ones (so it gets the same grade); one changed by a
    comment draws others; the student's kernel never sees the key (its environment, its
    files)."""
    from helpers.grading import batch
    from tests.test_judge import _judged_course
    _judged_course(tmp_path, DRAWING_TEST)
    sub = tmp_path / "sub" / "amy" / "loop" / "loop.ipynb"
    nb = nbformat.read(sub, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(
        "import os\n"
        "def seen():\n"
        f"    return [os.environ.get({draws.ENV!r}, ''), os.path.exists({str(WORK / draws.KEY_FILE)!r})]"))
    nbformat.write(nb, sub)
    work = tmp_path / "work"

    def grade():
        batch.grade(tmp_path / "sub", work=work, solutions=tmp_path / "solutions", feedback=False,
                    workers=1, regrade=True, log=lambda *a, **k: None)
        result = json.loads((work / "results" / "amy" / "loop.json").read_text())
        assert (result["score"], result["max_score"]) == (2.0, 2.0), result
        return _draws_printed(work)
    first, seen = grade()
    assert seen == "['', False]", seen
    assert grade()[0] == first
    nb.cells[-2].source += "\n# a comment"
    nbformat.write(nb, sub)
    assert grade()[0] != first
    assert oct((WORK / draws.KEY_FILE).stat().st_mode & 0o777) == "0o600"
    shutil.copytree(tmp_path / "sub", tmp_path / "again")                  # another work folder:
    batch.grade(tmp_path / "again", work=tmp_path / "other", solutions=tmp_path / "solutions",   # the course's key
                feedback=False, workers=1, log=lambda *a, **k: None)
    assert _draws_printed(tmp_path / "other")[0] == grade()[0]
    assert os.environ.get(draws.ENV) is None
