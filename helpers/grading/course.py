"""The course as nbgrader sees it: assignments, their settings, the nbgrader API, the release.

Grading never writes into ``solutions/`` or ``notebooks/``: it works in a git-ignored
folder laid out as an nbgrader course (see :mod:`helpers.grading.batch`).
"""
from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SOLUTIONS = REPO / "solutions"
RELEASE = REPO / "notebooks"
WORK = REPO / "grading"

#: Per-cell execution limit (seconds) when a notebook's metadata does not set one.
DEFAULT_CELL_TIMEOUT = 60

def _tool_path():
    """Put this interpreter's ``bin/`` first on PATH: nbgrader runs ``alembic`` from there."""
    bindir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


@functools.lru_cache(maxsize=1)
def _alembic_head():
    """The head revision of nbgrader's gradebook schema, read in this process once.

    nbgrader stamps every new gradebook with it by running ``alembic heads`` in a new
    Python process (about 3.5 CPU-seconds each; a grading run creates one gradebook per
    assignment and one more); the revision files it reads are those of the installed
    nbgrader, so the answer is the same every time. Falls back to nbgrader's own way.
    """
    import nbgrader
    try:
        from alembic.script import ScriptDirectory
        head = ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_current_head()
    except Exception:  # noqa: BLE001 - another alembic: ask it as nbgrader does
        head = None
    return head or _NBGRADER_ALEMBIC_VERSION[0]()


_NBGRADER_ALEMBIC_VERSION = []


def _stamp_gradebooks_in_process():
    """Make nbgrader's new gradebooks take :func:`_alembic_head` (no subprocess)."""
    import nbgrader.api
    if not _NBGRADER_ALEMBIC_VERSION:
        _NBGRADER_ALEMBIC_VERSION.append(nbgrader.api.get_alembic_version)
        nbgrader.api.get_alembic_version = _alembic_head


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

    Known keys: ``cell_timeout``, ``wall_timeout``, ``memory_mb``, ... (the sandbox's
    :class:`~helpers.grading.sandbox.Limits`), the intake's caps, ``protect`` and ``judge`` (the
    trusted judge), ``title``, and ``grading_seconds``: the reference submission's CPU
    seconds on one worker (``benchmarks/class_run.py``), used only to grade the longest
    first (:mod:`helpers.grading.schedule`).
    """
    import nbformat
    nb = nbformat.read(Path(solutions) / assignment / f"{assignment}.ipynb", as_version=4)
    return dict(nb.metadata.get("course", {}))


def _api(root, source="source", release="release", db=None, timeout=DEFAULT_CELL_TIMEOUT,
         feedback=False, submitted="submitted", job_id=None, record=False):
    """An ``NbGraderAPI`` for the course folder ``root`` (quiet unless it fails).

    job_id: autograde through :class:`helpers.grading.execute.GuardedExecute` with the
      :class:`~helpers.grading.execute.Job` registered under that id (sandbox, limits, guard).
    record: autograde only records grades of already executed notebooks found in
      ``submitted`` (no kernel; what the parent does with the workers' results).
    """
    from traitlets.config import Config
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _tool_path()
    _stamp_gradebooks_in_process()
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's SQLAlchemy chatter
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.source_directory = str(source)
    c.CourseDirectory.release_directory = str(release)
    c.CourseDirectory.submitted_directory = str(submitted)
    c.CourseDirectory.db_url = f"sqlite:///{db or Path(root) / 'gradebook.db'}"
    c.CourseDirectory.course_id = "course"
    c.Exchange.root = str(Path(root) / ".exchange")
    c.Execute.timeout = int(timeout)
    c.Execute.kernel_name = "python3"
    # Feedback must not show hidden tests, nor their code in tracebacks.
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    from .feedback_math import MathToMathML           # math that shows offline
    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTracebacks, ClearHiddenTests, MathToMathML,
                                        CSSHTMLHeaderPreprocessor]
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                        LimitOutput, SaveAutoGrades)
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    if job_id is not None:
        from .execute import GuardedExecute
        c.GuardedExecute.job_id = job_id
        c.Autograde.autograde_preprocessors = [GuardedExecute, IgnorePattern, ClearMetadataPreprocessor,
                                               LimitOutput, SaveAutoGrades, AssignLatePenalties,
                                               CheckCellMetadata]
    if record:
        c.Autograde.sanitize_preprocessors = []
        c.Autograde.autograde_preprocessors = [SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    coursedir = CourseDirectory(config=c)
    api = NbGraderAPI(coursedir=coursedir, config=c)
    api.log.setLevel(logging.ERROR if not os.environ.get("COURSE_GRADING_DEBUG") else logging.DEBUG)
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


from nbgrader.preprocessors import NbGraderPreprocessor  # noqa: E402  (after helpers above)


class HideHiddenTracebacks(NbGraderPreprocessor):
    """In feedback, keep only ``Error: message`` for failures in hidden-test cells, and no
    line of their hidden source in any output.

    A traceback would print the hidden test's source lines; the assertion message (written
    for the student) is kept. A warning raised in a hidden line (Python prints the line with
    it), or a stack a student's function prints, would too: every output line that is a
    line of the hidden tests is dropped.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and "BEGIN HIDDEN TESTS" in cell.source:
            hidden = hidden_lines(cell.source)
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
                elif out.get("output_type") == "stream":
                    out["text"] = _without(out.get("text", ""), hidden)
                elif isinstance(out.get("data"), dict) and "text/plain" in out["data"]:
                    out["data"]["text/plain"] = _without(out["data"]["text/plain"], hidden)
        return cell, resources


def hidden_lines(source):
    """The non-blank lines between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``,
    stripped."""
    lines, inside = set(), False
    for line in source.splitlines():
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif inside and line.strip():
            lines.add(line.strip())
    return lines


def _without(text, lines):
    text = "".join(text) if isinstance(text, list) else str(text)
    return "".join(l for l in text.splitlines(keepends=True) if l.strip() not in lines)


def limits_for(assignment, solutions=SOLUTIONS, **overrides):
    """The sandbox :class:`~helpers.sandbox.Limits` of an assignment.

    From its source notebook's ``course`` metadata (``cell_timeout``,
    ``wall_timeout``, ``memory_mb``, ``cpu_seconds``, ``max_processes``,
    ``output_mb``), then ``overrides`` (None values ignored), else the defaults.
    """
    from .sandbox import Limits
    settings = course_settings(assignment, solutions)
    settings.setdefault("cell_timeout", DEFAULT_CELL_TIMEOUT)
    return Limits.from_settings(settings, **overrides)


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


def _last_line(text):
    lines = [l for l in str(text).strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


