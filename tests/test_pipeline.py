"""The course pipeline end to end: solutions -> release -> autograde -> feedback -> grades."""
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from helpers import grading
from helpers.grading.judge import bound_names

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = grading.assignments()


def test_course_has_assignments():
    assert "conv_1x1" in ASSIGNMENTS


def _by(results, student):
    return {r.assignment: r for r in results if r.student == student}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_solution_gets_full_marks(demo_run, assignment):
    r = _by(demo_run[0], "reference")[assignment]
    assert r.status == "graded", r.reason
    assert r.max_score > 0
    assert r.score == r.max_score, f"{assignment}: {r.score}/{r.max_score}, failed cells {r.failed_cells}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_gets_zero(demo_run, assignment):
    r = _by(demo_run[0], "untouched")[assignment]
    assert r.status == "graded", r.reason
    assert r.max_score > 0 and r.score == 0, f"{assignment}: {r.score}/{r.max_score}"


def test_grades_csv_and_feedback_written(demo_run):
    results, work = demo_run
    rows = (work / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("student,assignment,score,max_score,status")
    assert len(rows) == 1 + len(results)
    for a in ASSIGNMENTS:
        for student in ("reference", "untouched"):
            html = list((work / "feedback" / student / a).glob("*.html"))
            assert html, f"no feedback for {student}/{a}"


def _notebook_text(paths):
    return "\n".join(Path(p).read_text(encoding="utf-8") for p in paths)


def test_feedback_does_not_leak_hidden_tests(demo_run):
    _, work = demo_run
    for student in ("reference", "untouched"):
        text = _notebook_text((work / "feedback" / student).glob("*/*.html"))
        assert "BEGIN HIDDEN TESTS" not in text and "HIDDEN TESTS" not in text
    # The hidden tests' own code must not show either (e.g. through tracebacks).
    hidden_lines = set()
    for a in ASSIGNMENTS:
        nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
        for cell in nb.cells:
            src = cell.source
            if "### BEGIN HIDDEN TESTS" in src:
                body = src.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]
                hidden_lines |= {l.strip() for l in body.splitlines() if len(l.strip()) > 25}
    assert hidden_lines, "no hidden tests found in solutions/"
    import html as html_lib
    for student in ("reference", "untouched"):
        for page in (work / "feedback" / student).glob("*/*.html"):
            # Strip syntax-highlighting tags so source lines read as text.
            import re
            text = html_lib.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))
            leaked = [l for l in hidden_lines if l in text]
            assert not leaked, f"{page} shows hidden test lines: {leaked[:2]}"


def test_feedback_drops_hidden_lines_from_every_output():
    """A warning raised in a hidden line prints that line to stderr, and a student's function
    can print the stack that called it: feedback keeps the outputs but not those lines."""
    from nbformat.v4 import new_code_cell, new_output

    from helpers.grading.course import HideHiddenTracebacks
    cell = new_code_cell("check(f)\n### BEGIN HIDDEN TESTS\n"
                         "assert abs(float(_secret)) < 1e-12, 'the message'\n"
                         "### END HIDDEN TESTS\n")
    cell.outputs = [
        new_output("stream", name="stderr", text="x.py:7: ComplexWarning: discards\n"
                   "  assert abs(float(_secret)) < 1e-12, 'the message'\n"),
        new_output("execute_result", data={"text/plain": "assert abs(float(_secret)) < 1e-12, "
                                                         "'the message'\nkept"}, execution_count=1),
        new_output("stream", name="stdout", text=["check(f) passed\n"]),
    ]
    cell, _ = HideHiddenTracebacks().preprocess_cell(cell, {}, 0)
    assert cell.outputs[0].text == "x.py:7: ComplexWarning: discards\n"
    assert cell.outputs[1].data["text/plain"] == "kept"
    assert cell.outputs[2].text == "check(f) passed\n"          # visible lines stay


def test_release_has_no_solutions_or_hidden_tests():
    for nb in (REPO / "notebooks").glob("*/*.ipynb"):
        text = nb.read_text(encoding="utf-8")
        for mark in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS"):
            assert mark not in text, f"{nb} contains {mark!r}"


def test_release_is_what_nbgrader_generates(tmp_path):
    """notebooks/ must equal a fresh build from solutions/ (no drift)."""
    grading.build(release_dir=tmp_path, log=lambda *_: None)
    committed = sorted(p.relative_to(REPO / "notebooks") for p in (REPO / "notebooks").rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert committed == fresh, "notebooks/ and a fresh build hold different files: run `python -m helpers build`"
    for rel in fresh:
        a, b = (REPO / "notebooks" / rel).read_bytes(), (tmp_path / rel).read_bytes()
        if rel.suffix == ".ipynb":
            a, b = json.loads(a), json.loads(b)
        assert a == b, f"notebooks/{rel} differs from a fresh build: run `python -m helpers build`"


def test_new_gradebooks_carry_nbgrader_schema_revision(tmp_path):
    """Grading stamps new gradebooks in-process (no ``alembic`` subprocess per gradebook):
    with the revision nbgrader's own ``alembic heads`` gives, so nbgrader can upgrade them."""
    import sqlite3

    from helpers.grading import course
    api = course._api(tmp_path)
    api.gradebook.close()             # creates gradebook.db
    with sqlite3.connect(tmp_path / "gradebook.db") as db:
        [(stamped,)] = db.execute("SELECT version_num FROM alembic_version").fetchall()
    course._tool_path()
    [nbgraders_own] = course._NBGRADER_ALEMBIC_VERSION
    assert stamped == nbgraders_own() == course._alembic_head()


@pytest.mark.parametrize("side", ["solutions", "notebooks"])
def test_notebooks_committed_without_outputs(side):
    for path in (REPO / side).glob("*/*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path} cell {i} has outputs: clear them before committing"
                assert cell.execution_count is None, f"{path} cell {i} has an execution count"


def test_every_notebook_seeds_and_quiets_tensorflow_first():
    for a in ASSIGNMENTS:
        nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert "from helpers import env" in first.source, f"{a}: first code cell must import helpers.env"


# ----------------------------------------------------------------- the grading command


def _submission(folder, student, assignment, nb_path=None, text=None):
    dest = folder / student / assignment
    dest.mkdir(parents=True)
    if text is not None:
        (dest / f"{assignment}.ipynb").write_text(text)
    elif nb_path is not None:
        shutil.copy(nb_path, dest / f"{assignment}.ipynb")
    return dest


def test_grade_command_correct_blank_malformed(tmp_path, capsys):
    """One correct, one blank, one malformed, one missing: the run completes."""
    a = "conv_1x1"
    subs = tmp_path / "subs"
    _submission(subs, "alice", a, REPO / "solutions" / a / f"{a}.ipynb")
    _submission(subs, "bob", a, REPO / "notebooks" / a / f"{a}.ipynb")
    _submission(subs, "carol", a, text='{"cells": [ this is not json')
    (subs / "dave" / "other").mkdir(parents=True)           # no conv_1x1 folder at all
    # A student who deleted every graded cell.
    nb = nbformat.read(REPO / "notebooks" / a / f"{a}.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if "nbgrader" not in c.metadata]
    _submission(subs, "erin", a, text=nbformat.writes(nb))
    # A student whose notebook names a kernel this machine does not have.
    nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
    nb.metadata.kernelspec = {"name": "no-such-kernel", "display_name": "x", "language": "python"}
    _submission(subs, "frank", a, text=nbformat.writes(nb))

    from helpers.__main__ import main
    assert main(["grade", str(subs), "--out", str(tmp_path / "work"), "--assignment", a]) == 0
    out = capsys.readouterr().out
    rows = {r["student"]: r for r in __import__("csv").DictReader(open(tmp_path / "work" / "grades.csv"))}
    full = rows["alice"]["max_score"]
    assert rows["alice"]["score"] == full and float(full) > 0
    assert rows["bob"]["score"] == "0"
    assert rows["carol"]["status"] == "malformed" and "not a readable notebook" in rows["carol"]["reason"]
    assert rows["dave"]["status"] == "missing"
    assert rows["erin"]["status"] == "malformed" and "no graded cells" in rows["erin"]["reason"]
    assert rows["frank"]["score"] == full, "the kernelspec comes from the source, not the submission"
    assert "carol/conv_1x1: malformed" in out and "dave/conv_1x1: missing" in out
    # Where the class lost points: bob's blank notebook, out of the three graded ones.
    assert "Where students lost points" in out and "conv_1x1_kernel_shape  (1 points): 2 of 3 full marks" in out


def test_a_malformed_resubmission_moves_the_earlier_grade_aside(tmp_path):
    """grades.csv, the gradebook and the feedback agree on the new, malformed submission;
    the earlier graded one is kept under superseded/, and a valid one is graded again."""
    a, work = "conv_1x1", tmp_path / "work"
    subs = tmp_path / "subs"
    _submission(subs, "ann", a, REPO / "solutions" / a / f"{a}.ipynb")
    (first,) = grading.grade(subs, work=work, names=[a], workers=1, log=lambda *_: None)
    assert (first.status, first.score, first.score == first.max_score) == ("graded", 3, True)
    valid = (subs / "ann" / a / f"{a}.ipynb").read_bytes()
    said = []
    (subs / "ann" / a / f"{a}.ipynb").write_text("{not json")
    (second,) = grading.grade(subs, work=work, names=[a], workers=1, log=said.append)
    assert (second.status, second.score) == ("malformed", 0)
    assert any("ann/conv_1x1: the new submission is malformed; the earlier graded one (3 points) "
               "was moved to" in line for line in said), said
    api = grading._api(work)
    with api.gradebook as gb:
        assert [s.student.id for s in gb.assignment_submissions(a)] == []
    assert not (work / "feedback" / "ann" / a).exists()
    (kept,) = (work / "superseded" / "ann" / a).iterdir()
    assert sorted(p.name for p in kept.iterdir()) == ["autograded", "feedback", "result.json",
                                                     "staged", "submitted"]
    assert (kept / "submitted" / f"{a}.ipynb").read_bytes() == valid
    assert "3/3" not in (work / "grades.csv").read_text()

    (subs / "ann" / a / f"{a}.ipynb").write_bytes(valid)
    (third,) = grading.grade(subs, work=work, names=[a], workers=1, log=lambda *_: None)
    assert (third.status, third.score) == ("graded", 3)
    assert (work / "feedback" / "ann" / a / f"{a}.html").exists()

    # A submission that could not be graded (what a worker returns when nbgrader fails).
    said.clear()
    payload = {"student": "ann", "assignment": a, "notebooks": {f"{a}.ipynb": b"{}"}, "key": "k"}
    rec = grading._api(work, submitted="staged", record=True)
    res = grading._record(work, rec, payload, {"status": "error", "reason": "kernel died"}, said.append)
    assert (res.status, res.score, res.reason) == ("error", 0, "kernel died")
    assert len(said) == 1 and "ann/conv_1x1: the new submission could not be graded; the earlier " \
        "graded one (3 points) was moved to" in said[0], said
    assert len(list((work / "superseded" / "ann" / a).iterdir())) == 2
    assert not (work / "feedback" / "ann" / a).exists()
    assert (work / "submitted" / "ann" / a / f"{a}.ipynb").read_bytes() == b"{}"
    with api.gradebook as gb:
        assert [s.student.id for s in gb.assignment_submissions(a)] == []


def test_grading_refuses_to_work_inside_the_course_folders(tmp_path):
    (tmp_path / "s").mkdir()
    with pytest.raises(ValueError, match="overlaps"):
        grading.grade(tmp_path / "s", work=REPO / "solutions" / "x")


def test_grading_missing_submissions_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no submissions folder"):
        grading.grade(tmp_path / "nope", work=tmp_path / "w")


def test_tests_that_use_tensorflow_protect_it():
    """Hidden tests that compute expected values with TensorFlow or Keras list both in the
    notebook's ``course.protect``: the guard then puts back what a submission replaced in them."""
    import re
    uses = re.compile(r"\b(tf|tensorflow|keras)\.|import (tensorflow|keras)")
    for a in ASSIGNMENTS:
        nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
        tests = [c.source for c in nb.cells if c.cell_type == "code"
                 and c.metadata.get("nbgrader", {}).get("grade")
                 and not c.metadata.get("nbgrader", {}).get("solution")]
        checker = REPO / "helpers" / "checks" / f"{a}.py"
        if any(uses.search(s) for s in tests) or (checker.exists() and uses.search(checker.read_text())):
            protect = nb.metadata.get("course", {}).get("protect", [])
            assert {"tensorflow", "keras"} <= set(protect), (
                f"{a}: its tests use TensorFlow/Keras; add them to course.protect (now {protect})")


def test_replacing_keras_to_match_a_wrong_answer_scores_nothing(tmp_path):
    """A wrong flatten (channels first) plus a Keras Flatten replaced to agree with it: the
    guard restores Keras before the test cell, so the flatten cell fails; the rest is full marks."""
    a = "cnn_building_blocks"
    nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
    impl = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{a}_flatten_impl")
    impl.source = impl.source.replace("out = x.reshape(x.shape[0], -1)",
                                      "out = np.moveaxis(x, -1, 1).reshape(x.shape[0], -1) if x.ndim == 4 "
                                      "else x.reshape(x.shape[0], -1)")
    assert "moveaxis" in impl.source
    i = nb.cells.index(impl)
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(
        "import keras\n"
        "class _Flatten:\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        pass\n"
        "    def __call__(self, x):\n"
        "        return flatten(np.asarray(x))\n"
        "keras.layers.Flatten = _Flatten\n"))
    subs = tmp_path / "subs"
    _submission(subs, "mallory", a, text=nbformat.writes(nb))
    (result,) = grading.grade(subs, work=tmp_path / "work", names=[a], feedback=False)
    assert result.status == "graded", result
    assert result.failed_cells == [f"{a}:{a}_flatten"], result
    assert result.score == result.max_score - 2, result


def test_loosening_a_checker_tolerance_scores_nothing(tmp_path):
    """A wrong rnn_step_forward (no hidden state: it drops prev_h @ Wh) plus a cell that sets
    the checkers' tolerances to 1e9 in the student's kernel: the checkers run in the judge, so
    the submission scores what the same mistake scores without the cell.

    The mistake fails the judged training cells on every draw of new scenes (a model without
    memory cannot overfit or caption); a subtler one (no bias) passes or fails them by the
    scenes drawn (overfit loss 0.10-5.8 over 12 draws), which would make the two scores differ
    by chance."""
    a = "rnn_captioning"
    nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
    impl = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{a}_step_forward_impl")
    assert "np.tanh(x @ Wx + prev_h @ Wh + b)" in impl.source
    impl.source = impl.source.replace("np.tanh(x @ Wx + prev_h @ Wh + b)", "np.tanh(x @ Wx + b)")
    subs = tmp_path / "subs"
    _submission(subs, "wrong", a, text=nbformat.writes(nb))
    nb.cells.insert(nb.cells.index(impl) + 1, nbformat.v4.new_code_cell(
        "import helpers.checks.rnn_captioning as _r\n"
        "_r.FWD_TOL = _r.GRAD_TOL = 1e9\n"))
    _submission(subs, "loose", a, text=nbformat.writes(nb))
    results = {r.student: r for r in grading.grade(subs, work=tmp_path / "work", names=[a],
                                                    feedback=False)}
    assert {r.status for r in results.values()} == {"graded"}, results
    assert results["wrong"].score < results["wrong"].max_score, results
    assert results["loose"].score == results["wrong"].score, results
    assert {f"{a}:{a}_overfit", f"{a}:{a}_bleu"} <= set(results["wrong"].failed_cells), results


def test_tests_read_no_values_computed_by_editable_cells():
    """A graded cell may use only what a submission cannot fake: names it binds itself, the
    source's top-level imports (the grader re-runs them before every test), builtins, and what
    the solution cells define (the graded functions and answers). Not data, models or scores
    that an editable cell computed: a submission can assign any value to those (quality tests
    recompute them from the submission's functions when graded, e.g. gan_training.graded_score)."""
    import ast
    import builtins
    problems = []
    for a in ASSIGNMENTS:
        nb = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
        trusted = set(dir(builtins))
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code":
                continue
            tree = ast.parse("\n".join(line for line in cell.source.splitlines()
                                       if not line.lstrip().startswith(("%", "!"))))
            if meta.get("solution"):
                trusted |= bound_names(tree)
            elif not meta.get("grade"):
                trusted |= {(al.asname or al.name).split(".")[0] for node in tree.body
                            if isinstance(node, (ast.Import, ast.ImportFrom)) for al in node.names}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                tree = ast.parse(cell.source)
                loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
                untrusted = sorted(loaded - bound_names(tree) - trusted)
                if untrusted:
                    problems.append(f"{a}/{meta['grade_id']}: {', '.join(untrusted)}")
    assert not problems, "graded cells read notebook globals a submission can set:\n" + "\n".join(problems)
