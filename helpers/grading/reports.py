"""Reports for the instructor: grades.csv, the gradebook table, the not-graded-cleanly summary."""
from __future__ import annotations

from pathlib import Path

from .csvsafe import SafeWriter
from .gradebook import Result

def write_csv(results, path):
    """Write one row per result: student, assignment, score, max_score, status, reason.

    Text that a spreadsheet would run as a formula (a reason quoting a student's error
    ``=HYPERLINK(...)``) is written with a leading quote (:mod:`helpers.grading.csvsafe`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        writer = SafeWriter(f, fieldnames=list(Result("", "").row()))
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
        if r.status != "graded" or r.reason:
            lines.append(f"{r.student}/{r.assignment}: {r.status}: {r.reason}")
    return lines


