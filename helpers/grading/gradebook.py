"""The gradebook writer: the one process that records results (gradebook, files, CSV rows).

Workers return plain data; :func:`record` writes it through nbgrader into the grading
folder's gradebook, next to the notebook, its feedback and a result file that lets an
interrupted run resume (:func:`load_done`).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .course import _last_line, _max_score, _scores

@dataclass
class Result:
    """The outcome of grading one student's assignment."""
    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"          # graded | incomplete | missing | malformed | error
    reason: str = ""
    seconds: float = 0.0
    failed_cells: list = field(default_factory=list)
    # Late work (helpers.grading.late): score is then raw_score - late_penalty.
    raw_score: float | None = None
    late_penalty: float = 0.0
    late_reason: str = ""
    submitted_at: str = ""
    time_source: str = ""

    def row(self, late=False):
        """The grades.csv row; ``late`` adds raw_score, late_penalty, late_reason,
        submitted_at and time_source (when a course file gives deadlines)."""
        row = {"student": self.student, "assignment": self.assignment,
               "score": f"{self.score:g}", "max_score": f"{self.max_score:g}",
               "status": self.status, "reason": self.reason,
               "seconds": f"{self.seconds:.1f}"}
        if late:
            row.update(raw_score="" if self.raw_score is None else f"{self.raw_score:g}",
                       late_penalty=f"{self.late_penalty:g}", late_reason=self.late_reason,
                       submitted_at=self.submitted_at, time_source=self.time_source)
        return row


def _result_path(work, student, assignment):
    return Path(work) / "results" / student / f"{assignment}.json"


def _load_done(work, rec, student, assignment, key):
    """The saved Result of an unchanged, recorded submission, else None."""
    path = _result_path(work, student, assignment)
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("key") != key:
        return None
    try:   # the gradebook must hold it too (a run killed between the two writes)
        score, max_score, failed = _scores(rec, assignment, student)
    except Exception:  # noqa: BLE001 - MissingEntry
        return None
    res = Result(**{k: saved[k] for k in ("student", "assignment", "score", "max_score", "status",
                                          "reason", "seconds", "failed_cells")})
    # The gradebook's score: with any manual score or extra credit an instructor gave in
    # the formgrader since (helpers.grading.review).
    res.score, res.max_score, res.failed_cells = score, max_score, failed
    return res


def _record(work, rec, payload, out, log=print):
    """Write one worker's result: gradebook (via nbgrader), files, result JSON. Parent only."""
    student, assignment = payload["student"], payload["assignment"]
    if not out.get("autograded"):    # not graded: an earlier grade must not stand for it
        _supersede(work, rec, student, assignment, "could not be graded", log)
    res = Result(student, assignment, score=0.0, max_score=out.get("max_score") or 0.0,
                 status=out.get("status", "error"), reason=out.get("reason", ""),
                 seconds=out.get("seconds", 0.0))
    dest = Path(work) / "submitted" / student / assignment
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name, data in payload["notebooks"].items():
        (dest / name).write_bytes(data)
    if out.get("autograded"):
        staged = Path(work) / "staged" / student / assignment
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        for name, data in out["autograded"].items():
            (staged / name).write_bytes(data)
        with contextlib.redirect_stdout(io.StringIO()):
            r = rec.autograde(assignment, student, force=True)
        if not r.get("success"):
            res.status = "error"
            res.reason = "; ".join(filter(None, [res.reason, "recording failed: " + _last_line(
                r.get("error") or r.get("log") or "")]))
        else:
            res.score, res.max_score, res.failed_cells = _scores(rec, assignment, student)
        fb = Path(work) / "feedback" / student / assignment
        shutil.rmtree(fb, ignore_errors=True)
        if out.get("feedback"):
            fb.mkdir(parents=True)
            for name, data in out["feedback"].items():
                (fb / name).write_bytes(data)
    if not res.max_score:
        res.max_score = _max_score(rec, assignment)
    path = _result_path(work, student, assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**res.__dict__, "key": payload["key"], "grader": payload.get("grader", "")}))
    os.replace(tmp, path)
    return res


def _supersede(work, rec, student, assignment, why, log):
    """Move an earlier graded submission aside when the student's new one is malformed or
    could not be graded (``why`` says which).

    Otherwise the gradebook and the feedback page would still show the old grade while
    grades.csv says "malformed" or "error". Nothing is deleted: the earlier notebook, its
    autograded copy, feedback and result go to
    ``<work>/superseded/<student>/<assignment>/<time>/``, and its entry leaves the gradebook.
    Returns that folder, or None if there was no earlier grade.
    """
    from nbgrader.api import MissingEntry
    work = Path(work)
    old = {part: work / part / student / assignment
           for part in ("submitted", "staged", "autograded", "feedback")}
    old["result.json"] = _result_path(work, student, assignment)
    with rec.gradebook as gb:
        try:
            score = gb.find_submission(assignment, student).score or 0
            gb.remove_submission(assignment, student)
        except MissingEntry:
            return None                  # never graded: nothing stands for the new one
    dest = work / "superseded" / student / assignment / time.strftime("%Y%m%d-%H%M%S")
    dest.mkdir(parents=True, exist_ok=True)
    for name, path in old.items():
        if path.exists():
            shutil.move(str(path), str(dest / name))
    log(f"  {student}/{assignment}: the new submission {why}; the earlier graded one "
        f"({score:g} points) was moved to {dest}")
    return dest


