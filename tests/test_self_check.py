"""``python -m helpers check NOTEBOOK``: a self-learner grades their own notebook."""
import json
import subprocess
import sys

import pytest

from helpers import grading
from helpers.grading import self_check

REPO = grading.REPO


def _check(notebook, out, *extra):
    proc = subprocess.run([sys.executable, "-m", "helpers", "check", str(notebook), "--out", str(out),
                           *extra], cwd=REPO, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def _with_mistake(tmp_path, name):
    """The reference conv_1x1 with a 3x3 kernel (padding same): same output shape, wrong values."""
    nb = json.loads((REPO / "solutions" / "conv_1x1" / "conv_1x1.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "conv_1x1_impl")
    source = "".join(cell["source"])
    assert "kernel_size=(1, 1)" in source
    cell["source"] = source.replace("kernel_size=(1, 1)", 'kernel_size=(3, 3), padding="same"')
    path = tmp_path / name
    path.write_text(json.dumps(nb))
    return path


def test_assignment_comes_from_the_name_the_folder_or_the_option(tmp_path):
    assert self_check.assignment_of(tmp_path / "gans.ipynb") == "gans"
    (tmp_path / "style_transfer").mkdir()
    assert self_check.assignment_of(tmp_path / "style_transfer" / "mine.ipynb") == "style_transfer"
    assert self_check.assignment_of(tmp_path / "mine.ipynb", "conv_1x1") == "conv_1x1"
    with pytest.raises(ValueError, match="cannot tell which assignment .*mine.ipynb.*pass --assignment"):
        self_check.assignment_of(tmp_path / "mine.ipynb")
    with pytest.raises(ValueError, match="unknown assignment 'gan': expected one of .*gans"):
        self_check.assignment_of(tmp_path / "gans.ipynb", "gan")


def test_check_reports_the_points_lost_and_the_error_of_each_cell(tmp_path):
    attempt = _with_mistake(tmp_path, "attempt.ipynb")
    before = attempt.read_bytes()
    rc, out, err = _check(attempt, tmp_path / "work", "--assignment", "conv_1x1")
    assert rc == 0, err
    assert "conv_1x1: 0/3 points" in out, out
    # the public checker's message, and the hidden test's assertion
    assert "conv_1x1_matches_dense (2 of 2 points): CheckFailed: ✘ conv_1x1" in out, out
    assert "conv_1x1_kernel_shape (1 of 1 points): CheckFailed: ✘ conv_1x1: one non-zero input " \
           "pixel at (2, 3) changed the output at 9 positions (a 3x3 patch)" in out, out
    assert f"feedback: {tmp_path / 'work'}" in out, out
    assert attempt.read_bytes() == before             # the notebook itself is not touched

    # fixed: full marks, in the same folder
    fixed = tmp_path / "conv_1x1.ipynb"
    fixed.write_bytes((REPO / "solutions" / "conv_1x1" / "conv_1x1.ipynb").read_bytes())
    rc, out, err = _check(fixed, tmp_path / "work")
    assert rc == 0, err
    assert "conv_1x1: 3/3 points\nfull marks." in out, out
    assert "lost points" not in out


def test_check_says_what_is_wrong_with_a_bad_notebook(tmp_path):
    rc, out, err = _check(tmp_path / "conv_1x1.ipynb", tmp_path / "work")
    assert rc == 2 and "error: no notebook at" in err, (out, err)
    bad = tmp_path / "conv_1x1.ipynb"
    bad.write_text("{not json")
    rc, out, err = _check(bad, tmp_path / "work")
    assert rc == 1, (out, err)
    assert "conv_1x1: 0/3 points\n  malformed: conv_1x1.ipynb is not a readable notebook" in out, out
    assert "feedback:" not in out
    rc, out, err = _check(REPO / "notebooks" / "gans" / "gans.ipynb", tmp_path / "work",
                          "--assignment", "conv_1x1")
    assert rc == 1 and "is not this assignment's notebook" in out, (out, err)


def test_without_a_sandbox_check_says_so_and_grades_unconfined(tmp_path, monkeypatch):
    from helpers.grading import sandbox
    monkeypatch.setattr(sandbox, "sandbox_problem", lambda: "bwrap is not installed")
    notebook = tmp_path / "conv_1x1.ipynb"
    notebook.write_bytes((REPO / "solutions" / "conv_1x1" / "conv_1x1.ipynb").read_bytes())
    with pytest.raises(sandbox.SandboxUnavailable, match="no sandbox here: bwrap is not installed"):
        self_check.check(notebook, work=tmp_path / "work", sandbox=True)
    said, calls, grade = [], [], grading.grade

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return grade(*args, **kwargs)

    monkeypatch.setattr(self_check, "grade", spy)
    result, lost = self_check.check(notebook, work=tmp_path / "work", log=said.append)
    assert said[0].startswith("note: no sandbox on this machine (bwrap is not installed)"), said
    assert [c["sandbox"] for c in calls] == [False]
    assert (result.score, result.max_score, result.status, lost) == (3, 3, "graded", [])
