"""Reports for the instructor: grades.csv, the gradebook table, the not-graded-cleanly summary;
and for the student, a note at the top of the feedback page (late work)."""
from __future__ import annotations

import html
import os
import re
import stat
from pathlib import Path

from .csvsafe import SafeWriter
from .gradebook import Result

def write_csv(results, path, late=False):
    """Write one row per result: student, assignment, score, max_score, status, reason.

    late: also the late-work columns (raw_score, late_penalty, late_reason, submitted_at,
    time_source; :mod:`helpers.grading.late`); score is then the score after the penalty.
    Text that a spreadsheet would run as a formula (a reason quoting a student's error
    ``=HYPERLINK(...)``) is written with a leading quote (:mod:`helpers.grading.csvsafe`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        writer = SafeWriter(f, fieldnames=list(Result("", "").row(late)))
        writer.writeheader()
        for r in results:
            writer.writerow(r.row(late))
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
            row.append(f"{r.score:g}/{r.max_score:g}" + ("" if r.status == "graded" else " !")
                       + (f" (late -{r.late_penalty:g})" if r.late_penalty else ""))
        row.append(f"{total:g}/{top:g}")
        cells.append(row)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(results):
    """Lines naming every submission that was not graded cleanly, and why; an assignment
    that no student handed in is one line, not one per student."""
    handed_in = {r.assignment for r in results if r.status != "missing"}
    nobody = sorted({r.assignment for r in results} - handed_in)
    lines = [f"no submissions for: {', '.join(nobody)}"] if nobody else []
    for r in results:
        if (r.status != "graded" or r.reason) and r.assignment in handed_in:
            lines.append(f"{r.student}/{r.assignment}: {r.status}: {r.reason}")
    return lines




_NOTE = re.compile(r"<!-- course-note -->.*?<!-- /course-note -->\n?", re.DOTALL)


def feedback_with_note(text, head, body):
    """Feedback HTML ``text`` with a note (``head``: ``body``, escaped) at the top of its
    page; an earlier note is replaced, and an empty ``head`` leaves none."""
    text = _NOTE.sub("", text)
    if not head:
        return text
    note = ("<!-- course-note -->\n<div class=\"course-note\" style=\"border:2px solid #c60;"
            f"padding:.5em 1em;margin:1em\"><p><b>{html.escape(head)}</b>: {html.escape(body)}"
            "</p></div>\n<!-- /course-note -->\n")
    start = re.search(r"<body[^>]*>\n?", text)
    at = start.end() if start else 0
    return text[:at] + note + text[at:]


def note_feedback(folder, head, body):
    """Put the note in every feedback page (``*.html``, regular files only) in ``folder``."""
    for path in sorted(Path(folder).glob("*.html")) if Path(folder).is_dir() else []:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            continue
        old = path.read_text(encoding="utf-8", errors="surrogateescape")
        new = feedback_with_note(old, head, body)
        if new != old:
            path.write_text(new, encoding="utf-8", errors="surrogateescape")
