"""Grade a folder of submissions: validate, queue, run, record, report (``grade``).

Everything here drives real nbgrader through its Python API, in one process.
Grading never writes into ``solutions/`` or ``notebooks/``: it works in a
git-ignored working folder (``grading/<name>/`` by default) laid out as an
nbgrader course::

    <work>/source/<assignment>/        copy of solutions/<assignment>/
    <work>/release/<assignment>/       generated from source (same as notebooks/)
    <work>/submitted/<student>/<assignment>/*.ipynb
    <work>/autograded/...  <work>/feedback/...  <work>/gradebook.db
    <work>/grades.csv                  one row per (student, assignment)
    <work>/cells.csv                   one row per (assignment, graded cell): who lost points, why

Submissions come as ``DIR/<student>/<assignment>/*.ipynb``. A malformed or
missing notebook is reported by student and file, and grading goes on.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .course import SOLUTIONS, RELEASE, WORK, _api, _check, _kernel_environment, _max_score, \
    assignments, course_settings, limits_for
from . import draws
from .gradebook import Result, _load_done, _record, _supersede
from .intake import CAP_KEYS, STUDENT_ID, caps_for, read_submission, release_cells, student_problem
from .jobs import _prepare_template, _result_key, _run_jobs, grader_code_digest
from .reports import write_csv
from .schedule import expected_seconds, longest_first

def grade(submissions, work=None, names=None, solutions=SOLUTIONS, feedback=True, log=print,
          workers=None, scheduler=None, sandbox=True, limits=None, regrade=False, course_file=None,
          threads=None):
    """Autograde every ``<student>/<assignment>/`` folder under ``submissions``.

    submissions: folder of ``<student>/<assignment>/*.ipynb``.
    work: the grading folder (default ``grading/<name of submissions>``); it is
      created, and its source/release are refreshed from ``solutions``.
    names: assignments to grade (default: all in ``solutions/``).
    workers: submissions graded at once on this machine (default: its cores).
    scheduler: a Dask scheduler address (or ``distributed.Client``) to grade on a
      cluster instead; ``workers`` is then ignored.
    sandbox: run each kernel in the bubblewrap sandbox (default). Raises
      :class:`~helpers.sandbox.SandboxUnavailable` if it cannot start.
    limits: dict overriding every assignment's limits (e.g. ``{"wall_timeout": 20}``).
    regrade: grade everything again (default: reuse results of unchanged submissions).
    course_file: due dates, late policies and extensions (default ``submissions/course.toml``
      if there is one; :mod:`helpers.grading.late`). Raises ``CourseFileError`` if it is wrong.
    threads: threads of each kernel's numeric libraries (default: the machine's cores divided
      by ``workers``; on Dask, the worker's cores divided by its threads). Grades do not
      depend on it.
    Returns a list of :class:`Result`, one per (student, assignment); also writes
    ``<work>/grades.csv``, the gradebook, feedback HTML under ``<work>/feedback/`` and
    ``<work>/cells.csv``, where the class lost points cell by cell (:mod:`helpers.item_analysis`).
    """
    from .sandbox import SandboxUnavailable, sandbox_problem
    submissions = Path(submissions).resolve()
    if not submissions.is_dir():
        raise FileNotFoundError(f"no submissions folder at {submissions}")
    work = Path(work or WORK / submissions.name).resolve()
    for forbidden in (Path(solutions).resolve(), RELEASE.resolve()):
        if work == forbidden or forbidden in work.parents or work in forbidden.parents:
            raise ValueError(f"grading folder {work} overlaps {forbidden}; choose another")
    from .sandbox import Cgroup
    Cgroup.sweep()
    if sandbox:
        problem = sandbox_problem()
        if problem:
            raise SandboxUnavailable(
                f"cannot grade safely: {problem}. Fix that, or pass --no-sandbox to run "
                "student code with your rights (only for code you trust).")
    else:
        log("WARNING: --no-sandbox: student code runs with your rights and can read "
            "solutions/, the gradebook and other submissions.")
    names = list(names or assignments(solutions))
    from .review import write_config
    write_config(work)
    from .late import apply_late, find_course_file, read_course_file
    course_path = find_course_file(submissions, course_file)
    course = read_course_file(course_path, assignments(solutions)) if course_path else None
    workers = int(workers or os.cpu_count() or 1)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a whole number >= 1, not {threads!r}")
    threads = threads or (0 if scheduler is not None else max(1, (os.cpu_count() or 1) // workers))
    _kernel_environment()
    work.mkdir(parents=True, exist_ok=True)
    where = f"the Dask cluster at {scheduler}" if scheduler is not None else f"{workers} worker(s)"
    log(f"Grading {submissions} in {work} on {where}" + ("" if sandbox else " (no sandbox)"))

    # 1. Fresh source and release for each assignment, in the grading folder.
    for name in names:
        shutil.rmtree(work / "source" / name, ignore_errors=True)
        shutil.copytree(Path(solutions) / name, work / "source" / name,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    api = _api(work)
    for name in names:
        _check(api.generate_assignment(name, force=True), f"generating {name}")
    templates = {name: _prepare_template(work, name, solutions) for name in names}
    sandbox_limits = {k: v for k, v in (limits or {}).items() if k not in CAP_KEYS}
    lims = {name: limits_for(name, solutions, **sandbox_limits).as_dict() for name in names}
    caps = {name: caps_for(name, solutions, **(limits or {})) for name in names}
    expected = {name: release_cells(work / "release" / name) for name in names}
    maxes = {name: _max_score(api, name) for name in names}
    rec = _api(work, submitted="staged", record=True)
    judge_key = draws.course_key()          # the judge's draws: secret, the same on a regrade

    # 2. Validate each submission inside its own error boundary (helpers.grading.intake);
    #    reuse finished results; queue the rest. A symlinked student folder is listed
    #    (and refused), never followed.
    students = sorted(p.name for p in submissions.iterdir()
                      if not p.name.startswith(".") and (p.is_symlink() or p.is_dir()))
    problems = {s: student_problem(submissions, s) for s in students}
    jobs = [(s, a) for s in students for a in names]
    results, payloads = {}, []
    for student, assignment in jobs:
        # A folder name that is not UTF-8 is shown with escapes: it must not stop the CSV.
        shown = student.encode("utf-8", "backslashreplace").decode("utf-8")
        res = Result(shown, assignment, max_score=maxes[assignment])
        payload = None
        try:
            notes = []
            status, reason, nbs = ("malformed", problems[student], {}) if problems[student] else \
                read_submission(submissions, student, assignment, expected[assignment], caps[assignment], notes)
            for note in notes:      # honest edits repaired (a cell pasted twice, ...)
                log(f"  {shown}/{assignment}: {note}")
            if status == "ok":
                t = templates[assignment]
                payload = {"student": student, "assignment": assignment, "notebooks": nbs,
                           "db": t["db"], "files": t["files"], "imports": t["imports"],
                           "names": t["names"], "protect": t["protect"], "source_hash": t["source_hash"],
                           "trusted": t["trusted"],
                           "limits": lims[assignment], "sandbox": bool(sandbox), "guard": True,
                           "feedback": feedback,
                           "threads": threads,
                           "draws": draws.submission_key(judge_key, assignment, nbs),
                           "draws_fingerprint": draws.fingerprint(judge_key)}
                payload["key"] = _result_key(payload)
                payload["grader"] = grader_code_digest()      # whose times schedule.py trusts
            else:
                res.status, res.reason = status, reason
        except Exception as exc:  # noqa: BLE001 - one submission never stops the run
            payload, res.status = None, "malformed"
            res.reason = f"{student}/{assignment} could not be read ({type(exc).__name__}: {exc})"[:500]
        if payload is None:
            if res.status == "malformed" and STUDENT_ID.fullmatch(student):
                _supersede(work, rec, student, assignment, "is malformed", log)
            results[(student, assignment)] = res
            continue
        done = None if regrade else _load_done(work, rec, student, assignment, payload["key"])
        if done is not None:
            results[(student, assignment)] = done
        else:
            payloads.append(payload)
    reused = sum(1 for r in results.values() if r.status in ("graded", "incomplete"))
    if reused:
        log(f"  {reused} submission(s) already graded and unchanged: kept (regrade to redo)")
    total, count = len(payloads), [0]

    def on_result(p, out):
        res = _record(work, rec, p, out, log)
        results[(res.student, res.assignment)] = res
        count[0] += 1
        mark = f"{res.score:g}/{res.max_score:g}"
        extra = f"  [{res.status}: {res.reason}]" if res.reason or res.status != "graded" else ""
        log(f"  [{count[0]}/{total}] {res.student} / {res.assignment}: {mark}  ({res.seconds:.1f} s){extra}")

    # Longest expected first, so that the run does not end on one long submission
    # (helpers.grading.schedule); the order never changes a grade.
    cost = expected_seconds(work, names, {name: course_settings(name, solutions) for name in names},
                            grader=grader_code_digest())
    _run_jobs(longest_first(payloads, cost), on_result, workers=workers, scheduler=scheduler)
    ordered = [results[j] for j in jobs]
    apply_late(ordered, course, submissions, work, log=log)
    write_csv(ordered, work / "grades.csv", late=course is not None)
    from .item_analysis import analyse, write_cells_csv
    write_cells_csv(analyse(work, ordered, log=log), work / "cells.csv")
    return ordered


