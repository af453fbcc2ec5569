"""Where a class lost points: per graded cell, how many students got it and what went wrong.

After ``python -m helpers grade DIR`` an instructor wants to know more than each student's
total: which graded cells most of the class failed, and with which error, so the next
lecture can go back to that idea. Item analysis, cell by cell (three students here: one
correct, one blank, one who forgot to scale dropout's survivors)::

    Where students lost points (all graded cells: grading/DIR/cells.csv):
      cnn_building_blocks
        cnn_building_blocks_dropout  (3 points): 1 of 3 full marks, mean 1
            1 x CheckFailed: ✘ dropout_forward: not implemented yet. Fill in the code between the TODO markers and run ...
            1 x CheckFailed: ✘ dropout_forward: survivors are not scaled: sum(out) is about (1 - rate) * sum(x). Most l...
        cnn_building_blocks_conv  (3 points): 2 of 3 full marks, mean 2
        ...

``<work>/cells.csv`` has one row per (assignment, graded cell): its points, the students
graded, how many got full marks, the mean points, and the three most common errors among
those who lost points (the error the autograded cell ended with: a checker's message names
the mistake), each with how many students ended with it.

The same per-cell reading serves ``python -m helpers check`` (:mod:`helpers.self_check`),
which lists the points one student lost.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from .course import _api
from .csvsafe import SafeWriter, read_rows

#: Statuses whose gradebook entry and autograded notebook the analysis reads.
GRADED = ("graded", "incomplete")

#: How many of the most common errors of a cell ``cells.csv`` keeps.
TOP_ERRORS = 3

#: The columns of ``cells.csv``: a cell's counts, then its most common errors.
COUNTS = ["assignment", "notebook", "grade_id", "max_points", "students", "full_marks", "mean_points"]
FIELDS = COUNTS + [f"{key}_{i}" for i in range(1, TOP_ERRORS + 1) for key in ("error", "error_students")]


def cell_scores(work, assignment, student, gradebook=None):
    """The graded cells of one student's autograded assignment, in notebook order.

    Inputs:
    - work: the grading folder (``grading/<name>``) holding ``gradebook.db`` and
      ``autograded/<student>/<assignment>/``.
    - assignment, student: names as in the gradebook.
    - gradebook: an open nbgrader ``Gradebook`` to read from (default: open one).
    Returns a list of (notebook, grade_id, score, max_points, error) tuples, one per graded
    cell; score is None for a cell that waits for manual grading; error is "" for a cell
    with full marks, else one line saying why it lost points (see :func:`error_of`).
    """
    import nbformat
    if gradebook is None:
        api = _api(work, submitted="staged", record=True)
        with api.gradebook as gb:
            return cell_scores(work, assignment, student, gb)
    sub = gradebook.find_submission(assignment, student)
    scores = {(nb.name, g.name): (g.score, g.max_score or 0.0)
              for nb in sub.notebooks for g in nb.grades}
    cells = []
    for nb_path in sorted((Path(work) / "autograded" / student / assignment).glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if not grade_id or (nb_path.stem, grade_id) not in scores:
                continue
            score, top = scores[(nb_path.stem, grade_id)]
            lost = top and (score is None or score < top)
            cells.append((nb_path.stem, grade_id, score, top, error_of(cell) if lost else ""))
    return cells


def error_of(cell):
    """The error a graded code cell ended with, one line of printable characters (at most
    400); for a cell without one, why not."""
    if cell.cell_type != "code":
        return "graded by hand (a written answer)"
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            name, value = out.get("ename", "Error"), " ".join(str(out.get("evalue", "")).split())
            if name == "NotImplementedError" and not value:
                value = "a function it calls is not written yet (its cell still raises this)"
            text = f"{name}: {value}" if value else name
            # Student code chooses this text: no escape sequences for the instructor's terminal.
            return "".join(ch for ch in text if ch.isprintable())[:400]
    return "did not run to its end (an earlier error, a time or memory limit, or the cell was changed)"


def analyse(work, results, log=print):
    """Per-cell statistics over the graded submissions among ``results``.

    Inputs:
    - work: the grading folder.
    - results: the :class:`~helpers.grading.Result` list of a ``grade`` run; only those
      graded (status graded or incomplete) count: a missing or malformed submission has
      no cells.
    - log: where to say that a submission had to be left out (its gradebook entry or
      autograded notebook cannot be read).
    Returns a list of dicts, grouped by assignment (in the order of ``results``) and in
    notebook order within one, with keys assignment, notebook, grade_id, max_points (float),
    students (int: graded submissions with a score for the cell), full_marks (int),
    mean_points (float, None if no student has a score yet: cells waiting for manual grading
    are left out) and errors: [(message, students)], the most common first (at most
    :data:`TOP_ERRORS`).
    """
    graded = [r for r in results if r.status in GRADED]
    if not graded:
        return []
    from nbgrader.api import MissingEntry
    stats = {}
    api = _api(work, submitted="staged", record=True)
    with api.gradebook as gb:
        for r in graded:
            try:
                cells = cell_scores(work, r.assignment, r.student, gb)
            except (MissingEntry, OSError, ValueError) as exc:
                log(f"cells.csv: {r.student}/{r.assignment} left out: {type(exc).__name__}: {exc}")
                continue
            for notebook, grade_id, score, top, error in cells:
                s = stats.setdefault((r.assignment, notebook, grade_id),
                                     {"max_points": top, "points": [], "errors": Counter()})
                if score is None:
                    continue
                s["points"].append(score)
                if error:
                    s["errors"][error] += 1
    rows = []
    for (assignment, notebook, grade_id), s in stats.items():
        points, top = s["points"], s["max_points"]
        rows.append({"assignment": assignment, "notebook": notebook, "grade_id": grade_id,
                     "max_points": float(top), "students": len(points),
                     "full_marks": sum(p >= top for p in points),
                     "mean_points": sum(points) / len(points) if points else None,
                     "errors": s["errors"].most_common(TOP_ERRORS)})
    return rows


def write_cells_csv(rows, path):
    """Write :func:`analyse`'s rows to ``path`` (CSV with a header row); returns the path.

    An error text a spreadsheet would run as a formula (``=HYPERLINK(...)``: student code
    chooses its exceptions) is written with a leading quote (:mod:`helpers.grading.csvsafe`);
    :func:`read_cells_csv` takes it off again.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        writer = SafeWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            mean = row["mean_points"]
            line = {key: row[key] for key in COUNTS}
            line.update(max_points=f"{row['max_points']:g}",
                        mean_points="" if mean is None else f"{mean:.2f}")
            for i in range(TOP_ERRORS):
                error, count = row["errors"][i] if i < len(row["errors"]) else ("", "")
                line[f"error_{i + 1}"], line[f"error_students_{i + 1}"] = error, count
            writer.writerow(line)
    return path


def read_cells_csv(path):
    """The rows of a ``cells.csv`` with the types :func:`analyse` returns (the CSV escape of
    formula-like text undone: what :func:`write_cells_csv` was given comes back)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = read_rows(f)
    for row in rows:
        row["max_points"] = float(row["max_points"])
        row["mean_points"] = float(row["mean_points"]) if row["mean_points"] else None
        row["students"], row["full_marks"] = int(row["students"]), int(row["full_marks"])
        pairs = [(row.pop(f"error_{i}"), row.pop(f"error_students_{i}")) for i in range(1, TOP_ERRORS + 1)]
        row["errors"] = [(error, int(count)) for error, count in pairs if error]
    return rows


def hardest_cells(rows, per_assignment=5, errors=2, width=110):
    """Lines naming, per assignment, the cells where students lost the most points.

    Up to ``per_assignment`` cells each, most points lost (max minus mean) first, each with
    its ``errors`` most common errors; cells everyone got right are not listed. [] if there
    are none. ``rows``: from :func:`analyse` or :func:`read_cells_csv`.
    """
    by_assignment = {}
    for row in rows:
        if row["students"] and row["full_marks"] < row["students"]:
            by_assignment.setdefault(row["assignment"], []).append(row)
    lines = []
    for assignment, cells in by_assignment.items():
        lines.append(f"  {assignment}")
        cells.sort(key=lambda r: r["max_points"] - r["mean_points"], reverse=True)
        for row in cells[:per_assignment]:
            lines.append(f"    {row['grade_id']}  ({row['max_points']:g} points): {row['full_marks']} of "
                         f"{row['students']} full marks, mean {round(row['mean_points'], 2):g}")
            for error, count in row["errors"][:errors]:
                text = f"{count} x {error}"
                lines.append("        " + (text if len(text) <= width else text[:width - 3] + "..."))
        if len(cells) > per_assignment:
            lines.append(f"    ... and {len(cells) - per_assignment} more cell(s) in the CSV")
    return lines
