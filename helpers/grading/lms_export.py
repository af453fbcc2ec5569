"""Grades back to the LMS: a Canvas gradebook to import, a Moodle grade-import CSV, a wide CSV.

Input: the ``grades.csv`` that ``grade`` writes (student, assignment, score, max_score, ...)
and the ``lms-intake.json`` that :mod:`helpers.grading.lms_intake` wrote (grading student
id -> name and LMS id).

* Canvas (:func:`canvas`): the gradebook CSV the instructor exported (Grades > Export):
  ``Student, ID, SIS User ID, SIS Login ID, Section``, then one column per assignment,
  ``conv_1x1 (123)``, and a ``Points Possible`` row under the header. Every column and row
  is kept; the assignment's column is filled for the students whose Canvas ``ID`` has a
  grade (or, with no LMS id in the mapping, whose ``SIS Login ID`` is the student id), scaled to the column's points possible; the file is written anew (the export is
  never overwritten). Canvas matches rows by ``ID`` on import.
* Moodle (:func:`moodle`): Moodle's grade import "CSV file" takes a header row, a column
  that identifies the user (email address, ID number, username) and one column per grade
  item, mapped on its import page. The identifier comes from the gradebook the instructor
  exported from Moodle ("Plain text file": ``First name``, ``Last name``, ``ID number``,
  ``Email address``, ...), matched by the full name in the submissions zip.
* :func:`wide`: one row per student, one column per assignment, and the total.

Each writer returns a dict of what did not match (``no_grade``: roster students without a
grade; ``not_in_roster``: graded students the roster lacks; ``ambiguous`` for Moodle names).
Every field goes through :func:`helpers.grading.csvsafe.escape` (no formulas).
"""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from .csvsafe import escape, read_rows
from .lms_intake import RECORD

_CANVAS_COLUMN = re.compile(r"(?P<name>.+?)\s*\((?P<id>\d+)\)")
CANVAS_FIXED = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


def read_grades(path):
    """grades.csv -> {student: {assignment: (score, max_score)}}."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = read_rows(f)
    out = {}
    for row in rows:
        out.setdefault(row["student"], {})[row["assignment"]] = (float(row["score"]), float(row["max_score"]))
    return out


def read_mapping(path):
    """An ``lms-intake.json`` (or the folder holding it) -> its ``students`` dict."""
    path = Path(path)
    with open(path / RECORD if path.is_dir() else path, encoding="utf-8") as f:
        return json.load(f)["students"]


def _number(x):
    return f"{round(x, 2):g}"


def _write(out, rows, sources=()):
    """Write rows (lists) to ``out`` with every field escaped; never over a source file."""
    out = Path(out)
    for src in sources:
        if out.exists() and os.path.samefile(out, src):
            raise ValueError(f"{out} is the file read from; write the import to a new file")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([[escape(v) for v in row] for row in rows])
    return out


def canvas(grades, mapping, gradebook, out, assignments=None):
    """Fill the Canvas gradebook's assignment columns; write the result to ``out``.

    grades: :func:`read_grades`'s dict. mapping: :func:`read_mapping`'s dict.
    gradebook: the CSV exported from Canvas. assignments: which to fill (default: all graded).
    Returns ``{"filled": {assignment: n}, "no_grade": [...], "not_in_roster": [...],
    "no_column": [...]}`` (students named as ``"Name (ID)"``).
    """
    with open(gradebook, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows or not {"Student", "ID"} <= set(rows[0]):
        raise ValueError(f"{gradebook}: not a Canvas gradebook export (no Student and ID columns)")
    header, id_col = rows[0], rows[0].index("ID")
    names = assignments or sorted({a for g in grades.values() for a in g})
    columns, no_column = {}, []
    for name in names:
        hits = [i for i, h in enumerate(header)
                if (m := _CANVAS_COLUMN.fullmatch(h.strip())) and m["name"] == name or h.strip() == name]
        columns[name] = hits[0] if len(hits) == 1 else None
        if len(hits) != 1:
            no_column.append(name)
    possible = next((r for r in rows[1:] if r and r[0].strip() == "Points Possible"), None)
    by_lms = {str(v["lms_id"]): s for s, v in mapping.items() if v.get("lms_id")}
    login_col = header.index("SIS Login ID") if "SIS Login ID" in header else None
    filled, no_grade, matched = {n: 0 for n in names}, [], set()
    for row in rows[1:]:
        lms_id = row[id_col].strip() if len(row) > id_col else ""
        if not lms_id.isdigit():
            continue                                   # Points Possible, Manual Posting rows
        student = by_lms.get(lms_id)
        if student is None and login_col is not None and len(row) > login_col:
            login = row[login_col].strip()             # --format regex: files named by login
            student = login if login in grades and not mapping.get(login, {}).get("lms_id") else None
        if student not in grades:
            no_grade.append(f"{row[0]} ({lms_id})")
            continue
        matched.add(student)
        for name, col in columns.items():
            if col is None or name not in grades[student]:
                continue
            score, max_score = grades[student][name]
            points = possible[col].strip() if possible and len(possible) > col else ""
            if re.fullmatch(r"\d+(\.\d+)?", points) and max_score > 0:
                score = score / max_score * float(points)
            row += [""] * (col + 1 - len(row))
            row[col] = _number(score)
            filled[name] += 1
    not_in_roster = [f"{mapping.get(s, {}).get('name', s)} ({mapping.get(s, {}).get('lms_id', '?')})"
                     for s in sorted(grades) if s not in matched]
    _write(out, rows, sources=[gradebook])
    return {"filled": filled, "no_grade": no_grade, "not_in_roster": not_in_roster,
            "no_column": no_column}


def moodle(grades, mapping, roster, out, identifier="Email address", assignments=None):
    """Moodle's grade-import CSV: ``identifier`` column, then one column per assignment.

    roster: a CSV exported from Moodle's gradebook with ``First name``, ``Last name`` and
    the ``identifier`` column. A student is matched by ``"First Last"`` == the full name of
    their submission folder. Returns ``{"written": n, "no_grade", "not_in_roster", "ambiguous"}``.
    """
    with open(roster, newline="", encoding="utf-8-sig") as f:
        people = list(csv.DictReader(f))
    need = {"First name", "Last name", identifier}
    if not people or not need <= set(people[0]):
        raise ValueError(f"{roster}: needs the columns {', '.join(sorted(need))}")
    by_name = {}
    for p in people:
        by_name.setdefault(f"{p['First name'].strip()} {p['Last name'].strip()}", []).append(p[identifier])
    names = assignments or sorted({a for g in grades.values() for a in g})
    rows, matched, not_in_roster, ambiguous = [[identifier, *names]], set(), [], []
    for student in sorted(grades):
        full = mapping.get(student, {}).get("name", student)
        ids = by_name.get(full, [])
        if len(ids) != 1:
            (ambiguous if ids else not_in_roster).append(full)
            continue
        matched.add(full)
        rows.append([ids[0], *(_number(grades[student][n][0]) if n in grades[student] else ""
                               for n in names)])
    no_grade = sorted(n for n in by_name if n not in matched)
    _write(out, rows, sources=[roster])
    return {"written": len(rows) - 1, "no_grade": no_grade, "not_in_roster": not_in_roster,
            "ambiguous": ambiguous}


def wide(grades, mapping, out):
    """One row per student: student, name, lms_id, each assignment's score, total, max_total."""
    names = sorted({a for g in grades.values() for a in g})
    rows = [["student", "name", "lms_id", *names, "total", "max_total"]]
    for student in sorted(grades):
        g, who = grades[student], mapping.get(student, {})
        rows.append([student, who.get("name", ""), who.get("lms_id", ""),
                     *(_number(g[n][0]) if n in g else "" for n in names),
                     _number(sum(s for s, _ in g.values())), _number(sum(m for _, m in g.values()))])
    _write(out, rows)
    return {"written": len(rows) - 1}


def cli(args):
    """``python -m helpers lms-export GRADES --mapping M --format F --out OUT``."""
    import sys
    try:
        grades, mapping = read_grades(args.grades), read_mapping(args.mapping)
        if args.format != "wide" and not args.gradebook:
            raise ValueError(f"--format {args.format} needs --gradebook (the LMS's export)")
        if args.format == "canvas":
            result = canvas(grades, mapping, args.gradebook, args.out, args.assignments)
        elif args.format == "moodle":
            result = moodle(grades, mapping, args.gradebook, args.out, args.identifier,
                            args.assignments)
        else:
            result = wide(grades, mapping, args.out)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, value in result.items():
        if value:
            print(f"{key.replace('_', ' ')}: {value}")
    print(f"wrote {args.out}")
    return 0
