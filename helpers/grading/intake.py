"""Intake: is a student's folder a notebook of this assignment that can be graded?

Every check here reads only the submitted files; nothing is executed.
"""
from __future__ import annotations

import re
from pathlib import Path

_STUDENT_ID = re.compile(r"^[A-Za-z0-9_.-]+$")

#: Submissions larger than this are not read (MB).
MAX_NOTEBOOK_MB = 50


def _grade_ids(nb):
    return {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}


def _validate_submission(folder, assignment, release_folder):
    """Return (ok, reason) for ``folder`` = ``<student>/<assignment>/``."""
    import nbformat
    expected = sorted(p.name for p in Path(release_folder).glob("*.ipynb"))
    problems = []
    for name in expected:
        path = Path(folder) / name
        if not path.is_file() or path.is_symlink():
            problems.append(f"missing notebook {name}")
            continue
        if path.stat().st_size > MAX_NOTEBOOK_MB * 2**20:
            problems.append(f"{name} is larger than {MAX_NOTEBOOK_MB} MB")
            continue
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # invalid JSON, wrong schema, unreadable
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(f"{name} is not a readable notebook ({first})")
            continue
        ids = _grade_ids(nb)
        if not ids:
            problems.append(f"{name} has no graded cells left (was it replaced or emptied?)")
            continue
        want = _grade_ids(nbformat.read(Path(release_folder) / name, as_version=4))
        if not ids & want:
            problems.append(f"{name} is not this assignment's notebook (none of its graded cells)")
    return (not problems), "; ".join(problems)


