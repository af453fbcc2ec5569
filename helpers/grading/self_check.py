"""``python -m helpers check NOTEBOOK``: grade your own notebook with the hidden tests.

For self-learners (and students before they hand in): the notebook is autograded exactly
as an instructor's ``grade`` command would grade it (same hidden tests, same graded runs
that retrain from your functions, same limits), and the points each graded cell lost are
printed with the error that cell raised::

    $ .venv/bin/python -m helpers check notebooks/conv_1x1/conv_1x1.ipynb
    Grading notebooks/conv_1x1/conv_1x1.ipynb as the assignment 'conv_1x1', with its hidden ...
    conv_1x1: 0/3 points
    lost points:
      conv_1x1_matches_dense (2 of 2 points): CheckFailed: ✘ conv_1x1: not implemented yet. ...
      conv_1x1_kernel_shape (1 of 1 points): NotImplementedError: a function it calls is not ...
    feedback: .../grading/self-check/feedback/you/conv_1x1/conv_1x1.html

The notebook is copied; nothing next to it is changed. The work happens in
``grading/self-check/`` (git-ignored). An unchanged notebook is not graded twice.

Your own code runs in the sandbox where this machine has one (Linux with bubblewrap);
elsewhere (macOS, a container without namespaces) it runs without it, as your notebook
does in JupyterLab, and the command says so.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from . import course, item_analysis
from .batch import grade

#: The default grading folder, and the student name the notebook is graded under there.
WORK = course.WORK / "self-check"
STUDENT = "you"


def assignment_of(notebook, assignment=None, solutions=course.SOLUTIONS):
    """The assignment a notebook belongs to: ``assignment`` if given, else its file name
    (``gans.ipynb``) or its folder (``gans/``). Raises ValueError naming the choices."""
    names = course.assignments(solutions)
    path = Path(notebook)
    if assignment is not None:
        if assignment not in names:
            raise ValueError(f"unknown assignment {assignment!r}: expected one of {', '.join(names)}")
        return assignment
    for guess in (path.stem, path.resolve().parent.name):
        if guess in names:
            return guess
    raise ValueError(f"cannot tell which assignment {path} is (its name and folder are none of "
                     f"{', '.join(names)}): pass --assignment NAME")


def check(notebook, assignment=None, work=None, sandbox=None, log=print,
          solutions=course.SOLUTIONS):
    """Autograde one notebook with the hidden tests and report the points lost.

    Inputs:
    - notebook: path of the .ipynb to grade (any name; it is copied).
    - assignment: its assignment, or None to take it from the file or folder name.
    - work: the grading folder (default ``grading/self-check``).
    - sandbox: True (refuse to run without it), False (never), None (use it where this
      machine has it, else say so and run without it).
    Returns (result, lost): the :class:`~helpers.grading.Result` and a list of
    (grade_id, points lost, max points, message) for every graded cell below full marks.
    """
    from .sandbox import SandboxUnavailable, sandbox_problem
    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    name = assignment_of(path, assignment, solutions)
    work = Path(work or WORK).resolve()
    if sandbox is None:
        problem = sandbox_problem()
        if problem:
            log(f"note: no sandbox on this machine ({problem}); your code runs with your "
                "rights, as it does in JupyterLab.")
        sandbox = not problem
    elif sandbox and sandbox_problem():
        raise SandboxUnavailable(f"no sandbox here: {sandbox_problem()}")
    inbox = work / "inbox"
    shutil.rmtree(inbox, ignore_errors=True)
    (inbox / STUDENT / name).mkdir(parents=True)
    shutil.copyfile(path, inbox / STUDENT / name / f"{name}.ipynb")
    limit = course.limits_for(name, solutions).wall_timeout
    log(f"Grading {path} as the assignment {name!r}, with its hidden tests. Graded runs "
        "(training, optimization) run again from your functions: this can take minutes "
        f"(at most {limit / 60:.0f}, the notebook's time limit).")
    quiet = (lambda *a, **k: None)
    (result,) = grade(inbox, work=work, names=[name], solutions=solutions,
                              workers=1, sandbox=sandbox, log=quiet)
    lost = lost_points(work, name) if result.status in ("graded", "incomplete") else []
    return result, lost


def lost_points(work, assignment, student=STUDENT):
    """[(grade_id, points lost, max points, message)] of the graded cells below full marks,
    in notebook order, from the gradebook and the autograded notebook under ``work``."""
    return [(grade_id, top - (score or 0.0), top, error)
            for _, grade_id, score, top, error in item_analysis.cell_scores(work, assignment, student)
            if error]


def edits(work, assignment, solutions=course.SOLUTIONS):
    """What the intake repaired in the notebook graded under ``work`` (a graded cell pasted
    twice, nbgrader metadata an editor removed, ...): one line each, as ``grade`` logs them."""
    from .intake import caps_for, read_submission, release_cells
    release = Path(work) / "release" / assignment
    if not (Path(work) / "inbox" / STUDENT / assignment).is_dir() or not release.is_dir():
        return []
    notes = []
    read_submission(Path(work) / "inbox", STUDENT, assignment, release_cells(release),
                    caps_for(assignment, solutions), notes)
    return notes


def report(result, lost, work=None):
    """The lines ``python -m helpers check`` prints."""
    work = Path(work or WORK)
    lines = [f"{result.assignment}: {result.score:g}/{result.max_score:g} points"]
    if result.status != "graded" or result.reason:
        lines.append(f"  {result.status}: {result.reason}")
    notes = edits(work, result.assignment)
    if notes:
        lines.append("your notebook was repaired before grading (fix it there too, to be sure):")
        lines.extend(f"  {note}" for note in notes)
    if lost:
        lines.append("lost points:")
        for grade_id, points, top, message in lost:
            lines.append(f"  {grade_id} ({points:g} of {top:g} points): {message}")
    elif result.status == "graded" and result.score == result.max_score:
        lines.append("full marks.")
    feedback = sorted((work / "feedback" / STUDENT / result.assignment).glob("*.html"))
    if feedback:     # a malformed notebook has none: grade() moves an earlier page aside
        lines.append(f"feedback: {feedback[0]}")
    return lines
