"""cells.csv and the "where students lost points" report of `python -m helpers grade`."""
import json
import shutil
from pathlib import Path

from helpers import grading
from helpers.grading import item_analysis

REPO = Path(__file__).resolve().parent.parent


def _graded_cells(assignment):
    nb = json.loads((REPO / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    return {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"]
            for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")}


def test_cells_csv_covers_every_graded_cell_of_the_demo_run(demo_run):
    """Reference (full marks) and untouched release (0): every graded cell of every
    assignment has one full mark of two, half its points on average, and the untouched
    notebook's error."""
    results, work = demo_run
    rows = item_analysis.read_cells_csv(work / "cells.csv")
    for assignment in grading.assignments():
        mine = {r["grade_id"]: r for r in rows if r["assignment"] == assignment}
        expected = _graded_cells(assignment)
        assert set(mine) == set(expected), assignment
        for grade_id, row in mine.items():
            assert row["max_points"] == expected[grade_id]
            assert (row["students"], row["full_marks"]) == (2, 1), grade_id
            assert abs(row["mean_points"] - row["max_points"] / 2) < 0.01, grade_id
            (error, count), = row["errors"]
            assert count == 1 and error, grade_id
        top = next(r.max_score for r in results if r.assignment == assignment)
        assert sum(r["max_points"] for r in mine.values()) == top


def test_a_mistake_two_students_make_is_counted_with_its_message(tmp_path):
    """Two students choose a 3x3 kernel for the 1x1 convolution, one hands in the blank
    release: the kernel-shape cell lists the assertion both ended with, counted twice."""
    a = "conv_1x1"
    subs = tmp_path / "subs"
    source = (REPO / "solutions" / a / f"{a}.ipynb").read_text()
    wrong = source.replace("kernel_size=(1, 1), strides=(1, 1),",
                           'kernel_size=(3, 3), strides=(1, 1), padding=\\"same\\",')
    assert wrong != source
    for student in ("ann", "ben"):
        (subs / student / a).mkdir(parents=True)
        (subs / student / a / f"{a}.ipynb").write_text(wrong)
    (subs / "cat" / a).mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / a / f"{a}.ipynb", subs / "cat" / a / f"{a}.ipynb")

    grading.grade(subs, work=tmp_path / "work", names=[a], workers=2, log=lambda *_: None)
    rows = {r["grade_id"]: r for r in item_analysis.read_cells_csv(tmp_path / "work" / "cells.csv")}
    shape = rows["conv_1x1_kernel_shape"]
    assert (shape["students"], shape["full_marks"], shape["mean_points"]) == (3, 0, 0.0)
    (first, twice), (second, once) = shape["errors"]
    assert twice == 2 and "changed the output at 9 positions (a 3x3 patch)" in first
    assert once == 1 and "not implemented yet" in second, second     # the blank release
    lines = item_analysis.hardest_cells(list(rows.values()))
    assert lines[0] == "  conv_1x1"
    assert any(line.strip().startswith("2 x CheckFailed: ✘ conv_1x1: one non-zero input pixel")
               for line in lines), lines


def _row(grade_id, top, mean, students=4, full=1, errors=(("CheckFailed: ✘ x", 3),)):
    return {"assignment": "quiz", "notebook": "quiz", "grade_id": grade_id, "max_points": top,
            "students": students, "full_marks": full, "mean_points": mean, "errors": list(errors)}


def test_csv_round_trip_and_the_report_order(tmp_path):
    rows = [_row("easy", 1.0, 0.75), _row("hard", 3.0, 0.5), _row("perfect", 2.0, 2.0, full=4, errors=()),
            _row("manual", 1.0, None, students=0, full=0, errors=()),
            _row("long", 2.0, 1.0, errors=[("E" * 300, 2), ("F", 1), ("G", 1)])]
    path = item_analysis.write_cells_csv(rows, tmp_path / "cells.csv")
    assert item_analysis.read_cells_csv(path) == rows
    lines = item_analysis.hardest_cells(rows, per_assignment=2, errors=1, width=40)
    assert lines == ["  quiz",
                     "    hard  (3 points): 1 of 4 full marks, mean 0.5",
                     "        3 x CheckFailed: ✘ x",
                     "    long  (2 points): 1 of 4 full marks, mean 1",
                     "        2 x " + "E" * 33 + "...",
                     "    ... and 1 more cell(s) in the CSV"]
    assert item_analysis.hardest_cells([_row("perfect", 2.0, 2.0, full=4, errors=())]) == []


def test_error_of_is_one_printable_line():
    """Student code chooses the message: no newlines or terminal escape sequences survive."""
    import nbformat
    cell = nbformat.v4.new_code_cell("f()")
    cell.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad\x1b[2J\n\tshape " + "x" * 500,
                                           traceback=[])]
    text = item_analysis.error_of(cell)
    assert text.startswith("ValueError: bad[2J shape x") and len(text) == 400 and text.isprintable()
    cell.outputs = []
    assert item_analysis.error_of(cell).startswith("did not run to its end")
