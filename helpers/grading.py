"""The instructor's side of the course: build the release, autograde, feedback, grades.

Everything here drives real nbgrader through its Python API, in one process.
Grading never writes into ``solutions/`` or ``notebooks/``: it works in a
git-ignored working folder (``grading/<name>/`` by default) laid out as an
nbgrader course::

    <work>/source/<assignment>/        copy of solutions/<assignment>/
    <work>/release/<assignment>/       generated from source (same as notebooks/)
    <work>/submitted/<student>/<assignment>/*.ipynb
    <work>/autograded/...  <work>/feedback/...  <work>/gradebook.db
    <work>/grades.csv                  one row per (student, assignment)

Submissions come as ``DIR/<student>/<assignment>/*.ipynb``. A malformed or
missing notebook is reported by student and file, and grading goes on.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
RELEASE = REPO / "notebooks"
WORK = REPO / "grading"

#: Per-cell execution limit (seconds) when a notebook's metadata does not set one.
DEFAULT_CELL_TIMEOUT = 60

_STUDENT_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def _tool_path():
    """Put this interpreter's ``bin/`` first on PATH: nbgrader runs ``alembic`` from there."""
    bindir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _kernel_environment():
    """Environment every grading kernel inherits: quiet TF, grading mode on."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ["COURSE_GRADING"] = "1"


# --------------------------------------------------------------------------- course


def assignments(solutions=SOLUTIONS):
    """Names of the assignments: folders ``solutions/<a>/`` holding ``<a>.ipynb``."""
    solutions = Path(solutions)
    if not solutions.is_dir():
        return []
    return sorted(p.name for p in solutions.iterdir()
                  if p.is_dir() and (p / f"{p.name}.ipynb").is_file())


def course_settings(assignment, solutions=SOLUTIONS):
    """The ``course`` metadata of an assignment's source notebook (dict).

    Known keys: ``cell_timeout`` (seconds per cell when autograding).
    """
    import nbformat
    nb = nbformat.read(Path(solutions) / assignment / f"{assignment}.ipynb", as_version=4)
    return dict(nb.metadata.get("course", {}))


def _api(root, source="source", release="release", db=None, timeout=DEFAULT_CELL_TIMEOUT,
         feedback=False):
    """An ``NbGraderAPI`` for the course folder ``root`` (quiet unless it fails)."""
    from traitlets.config import Config
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _tool_path()
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's SQLAlchemy chatter
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.source_directory = str(source)
    c.CourseDirectory.release_directory = str(release)
    c.CourseDirectory.db_url = f"sqlite:///{db or Path(root) / 'gradebook.db'}"
    c.CourseDirectory.course_id = "course"
    c.Exchange.root = str(Path(root) / ".exchange")
    c.Execute.timeout = int(timeout)
    c.Execute.kernel_name = "python3"
    # Feedback must not show hidden tests, nor their code in tracebacks.
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTracebacks, ClearHiddenTests,
                                        CSSHTMLHeaderPreprocessor]
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    coursedir = CourseDirectory(config=c)
    api = NbGraderAPI(coursedir=coursedir, config=c)
    api.log.setLevel(logging.ERROR)
    return api


def _check(result, what):
    if not result.get("success"):
        raise RuntimeError(f"{what} failed:\n{result.get('error') or result.get('log')}")
    return result


def build(names=None, release_dir=RELEASE, solutions=SOLUTIONS, log=print):
    """Generate the student release of each assignment from its source.

    names: assignment names (default: all in ``solutions/``).
    release_dir: where ``<assignment>/`` folders are written (``notebooks/``).
    Returns the list of assignments built.
    """
    names = list(names or assignments(solutions))
    release_dir = Path(release_dir).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        api = _api(Path(solutions).resolve().parent, source=Path(solutions).resolve(),
                   release=release_dir, db=Path(tmp) / "build.db")
        for name in names:
            t0 = time.perf_counter()
            _check(api.generate_assignment(name, force=True), f"building {name}")
            _normalise_release(release_dir / name)
            log(f"  built notebooks/{name}/  ({time.perf_counter() - t0:.1f} s)")
    return names


def _normalise_release(folder):
    """Write release notebooks in nbformat's canonical layout (stable diffs)."""
    import nbformat
    for path in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.write(nb, path)


# --------------------------------------------------------------------------- preprocessors

from nbgrader.preprocessors import NbGraderPreprocessor  # noqa: E402  (after helpers above)


class HideHiddenTracebacks(NbGraderPreprocessor):
    """In feedback, keep only ``Error: message`` for failures in hidden-test cells.

    A traceback would print the hidden test's source lines; the assertion
    message (written for the student) is kept.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and "BEGIN HIDDEN TESTS" in cell.source:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources


# --------------------------------------------------------------------------- grading


@dataclass
class Result:
    """The outcome of grading one student's assignment."""
    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"          # graded | missing | malformed | error
    reason: str = ""
    seconds: float = 0.0
    failed_cells: list = field(default_factory=list)

    def row(self):
        return {"student": self.student, "assignment": self.assignment,
                "score": f"{self.score:g}", "max_score": f"{self.max_score:g}",
                "status": self.status, "reason": self.reason,
                "seconds": f"{self.seconds:.1f}"}


def _validate_submission(folder, assignment, release_folder):
    """Return (ok, reason) for ``folder`` = ``<student>/<assignment>/``."""
    import nbformat
    expected = sorted(p.name for p in Path(release_folder).glob("*.ipynb"))
    problems = []
    for name in expected:
        path = Path(folder) / name
        if not path.is_file():
            problems.append(f"missing notebook {name}")
            continue
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # invalid JSON, wrong schema, unreadable
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(f"{name} is not a readable notebook ({first})")
            continue
        if not any(c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                   for c in nb.cells):
            problems.append(f"{name} has no graded cells left (was it replaced or emptied?)")
    return (not problems), "; ".join(problems)


def _scores(api, assignment, student):
    """(score, max_score, failed_cells) from the gradebook."""
    with api.gradebook as gb:
        sub = gb.find_submission(assignment, student)
        failed = []
        for nb in sub.notebooks:
            for grade in nb.grades:
                if grade.max_score and (grade.score or 0) < grade.max_score:
                    failed.append(f"{nb.name}:{grade.name}")
        return float(sub.score or 0), float(sub.max_score or 0), failed


def _max_score(api, assignment):
    with api.gradebook as gb:
        return float(gb.find_assignment(assignment).max_score or 0)


def grade(submissions, work=None, names=None, solutions=SOLUTIONS, feedback=True, log=print):
    """Autograde every ``<student>/<assignment>/`` folder under ``submissions``.

    submissions: folder of ``<student>/<assignment>/*.ipynb``.
    work: the grading folder (default ``grading/<name of submissions>``); it is
      created, and its source/release are refreshed from ``solutions``.
    names: assignments to grade (default: all in ``solutions/``).
    Returns a list of :class:`Result`, one per (student, assignment); also writes
    ``<work>/grades.csv`` and feedback HTML under ``<work>/feedback/``.
    """
    submissions = Path(submissions).resolve()
    if not submissions.is_dir():
        raise FileNotFoundError(f"no submissions folder at {submissions}")
    work = Path(work or WORK / submissions.name).resolve()
    for forbidden in (Path(solutions).resolve(), RELEASE.resolve()):
        if work == forbidden or forbidden in work.parents or work in forbidden.parents:
            raise ValueError(f"grading folder {work} overlaps {forbidden}; choose another")
    names = list(names or assignments(solutions))
    _kernel_environment()
    work.mkdir(parents=True, exist_ok=True)
    log(f"Grading {submissions} in {work}")

    # 1. Fresh source and release for each assignment, in the grading folder.
    for name in names:
        shutil.rmtree(work / "source" / name, ignore_errors=True)
        shutil.copytree(Path(solutions) / name, work / "source" / name,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    api = _api(work)
    for name in names:
        _check(api.generate_assignment(name, force=True), f"generating {name}")

    students = sorted(p.name for p in submissions.iterdir()
                      if p.is_dir() and not p.name.startswith("."))
    jobs = [(s, a) for s in students for a in names]
    results = []
    for i, (student, assignment) in enumerate(jobs, 1):
        t0 = time.perf_counter()
        res = _grade_one(work, submissions, student, assignment, solutions, feedback)
        res.seconds = time.perf_counter() - t0
        results.append(res)
        mark = f"{res.score:g}/{res.max_score:g}"
        extra = "" if res.status == "graded" else f"  [{res.status}: {res.reason}]"
        log(f"  [{i}/{len(jobs)}] {student} / {assignment}: {mark}  ({res.seconds:.1f} s){extra}")

    write_csv(results, work / "grades.csv")
    return results


def _grade_one(work, submissions, student, assignment, solutions, feedback):
    res = Result(student, assignment)
    src = submissions / student / assignment
    timeout = course_settings(assignment, solutions).get("cell_timeout", DEFAULT_CELL_TIMEOUT)
    api = _api(work, timeout=timeout)
    res.max_score = _max_score(api, assignment)
    if not _STUDENT_ID.match(student):
        res.status, res.reason = "error", f"student folder name {student!r} is not a valid id"
        return res
    if not src.is_dir():
        res.status, res.reason = "missing", f"no folder {student}/{assignment}/"
        return res
    ok, reason = _validate_submission(src, assignment, work / "release" / assignment)
    if not ok:
        res.status, res.reason = "malformed", reason
        return res
    dest = work / "submitted" / student / assignment
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    with contextlib.redirect_stdout(io.StringIO()):
        result = api.autograde(assignment, student, force=True)
    if not result.get("success"):
        res.status = "error"
        res.reason = _last_line(result.get("error") or result.get("log") or "autograde failed")
        return res
    res.score, res.max_score, res.failed_cells = _scores(api, assignment, student)
    if feedback:
        fb = api.generate_feedback(assignment, student, force=True)
        if not fb.get("success"):
            res.reason = "feedback failed: " + _last_line(fb.get("error") or "")
    return res


def _last_line(text):
    lines = [l for l in str(text).strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


def write_csv(results, path):
    """Write one row per result: student, assignment, score, max_score, status, reason."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(Result("", "").row()))
        writer.writeheader()
        for r in results:
            writer.writerow(r.row())
    return path


def gradebook_table(results):
    """A plain-text table: one row per student, one column per assignment."""
    students = sorted({r.student for r in results})
    names = sorted({r.assignment for r in results})
    by = {(r.student, r.assignment): r for r in results}
    cells = [["student", *names, "total"]]
    for s in students:
        row, total, top = [s], 0.0, 0.0
        for a in names:
            r = by.get((s, a))
            if r is None:
                row.append("-")
                continue
            total, top = total + r.score, top + r.max_score
            row.append(f"{r.score:g}/{r.max_score:g}" + ("" if r.status == "graded" else " !"))
        row.append(f"{total:g}/{top:g}")
        cells.append(row)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(results):
    """Lines naming every submission that was not graded cleanly, and why."""
    lines = []
    for r in results:
        if r.status != "graded":
            lines.append(f"{r.student}/{r.assignment}: {r.status}: {r.reason}")
    return lines


# --------------------------------------------------------------------------- demo


def make_demo_submissions(folder, names=None, solutions=SOLUTIONS, release=RELEASE):
    """Two demo students: ``reference`` (the solutions) and ``untouched`` (the release)."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    for name in names or assignments(solutions):
        for student, side in (("reference", Path(solutions)), ("untouched", Path(release))):
            dest = folder / student / name
            dest.mkdir(parents=True)
            for nb in sorted((side / name).glob("*.ipynb")):
                shutil.copy2(nb, dest / nb.name)
    return folder


def demo(work=None, log=print):
    """Build the release, grade the two demo students, print the gradebook."""
    work = Path(work or WORK / "demo")
    log("1/3 Building the student release from solutions/ ...")
    build(log=log)
    log("2/3 Autograding two demo submissions (reference solutions, untouched release) ...")
    subs = make_demo_submissions(work.parent / (work.name + "-submissions"))
    results = grade(subs, work=work, log=log)
    log("3/3 Gradebook")
    log(gradebook_table(results))
    problems = summary(results)
    if problems:
        log("Not graded cleanly:")
        for line in problems:
            log("  " + line)
    log(f"Grades CSV: {work / 'grades.csv'}")
    log(f"Feedback HTML: {work / 'feedback'}/<student>/<assignment>/*.html")
    return results
