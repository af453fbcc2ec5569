"""LMS bulk downloads in, LMS gradebooks out: helpers/grading/lms_intake.py, lms_export.py."""
import csv
import json
import zipfile

import pytest

from helpers.__main__ import main
from helpers.grading import lms_export, lms_intake
from helpers.grading.course import RELEASE, SOLUTIONS
from helpers.grading.intake import STUDENT_ID

A, B = "conv_1x1", "cnn_building_blocks"
SOLVED = (SOLUTIONS / A / f"{A}.ipynb").read_bytes()
RELEASED = (RELEASE / A / f"{A}.ipynb").read_bytes()
SOLVED_B = (SOLUTIONS / B / f"{B}.ipynb").read_bytes()
ZOE, JEAN = "Zoë O'Brien, Jr.", 'Jean-Luc "JL" Picard'


def _lie_about_size(path, entry, size):
    """Rewrite the zip's central directory so that ``entry`` declares ``size`` bytes."""
    with zipfile.ZipFile(path, "a") as zf:
        zf.getinfo(entry).file_size = size
        zf._didModify = True                     # rewrite the central directory on close


def _files(root):
    return {p for p in root.rglob("*")}


@pytest.fixture
def canvas_zip(tmp_path):
    path = tmp_path / "submissions.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("obrienzoëjr_late_101_9001_conv_1x1.ipynb", SOLVED)
        zf.writestr("doejane_102_9002_conv_1x1.ipynb", RELEASED)            # older
        zf.writestr("doejane_102_9010_conv_1x1 (1).ipynb", SOLVED)          # newest wins
        zf.writestr("doejane_102_9010_cnn_building_blocks.ipynb", SOLVED_B)
        zf.writestr("doejane_102_9011_homework3.ipynb", SOLVED)            # unknown assignment
        zf.writestr("doejane_102_9012_notes.pdf", b"%PDF-1.4")              # not a notebook
        zf.writestr("../escape_103_9013_conv_1x1.ipynb", SOLVED)
        zf.writestr("/tmp/abs_104_9014_conv_1x1.ipynb", SOLVED)
        link = zipfile.ZipInfo("evil_105_9015_conv_1x1.ipynb")
        link.external_attr = 0o120777 << 16                                  # a symlink entry
        zf.writestr(link, "/etc/passwd")
        zf.writestr("bomb_106_9016_conv_1x1.ipynb", b"\0" * (1 << 20))      # ~1 KB deflated
        zf.writestr("liar_107_9017_conv_1x1.ipynb", b"\0" * (1 << 20))
        zf.writestr("__MACOSX/._doejane_102_9010_conv_1x1.ipynb", b"x")
        zf.writestr("README.txt", b"not a submission")
    _lie_about_size(path, "bomb_106_9016_conv_1x1.ipynb", 10 * 1024 ** 3)   # declares 10 GB
    _lie_about_size(path, "liar_107_9017_conv_1x1.ipynb", 1000)             # yields more
    return path


def test_canvas_zip_maps_safe_files_and_reports_every_other(canvas_zip, tmp_path):
    assert zipfile.ZipFile(canvas_zip).getinfo("bomb_106_9016_conv_1x1.ipynb").compress_size < 10_000
    before, out = _files(tmp_path), tmp_path / "out"
    record = lms_intake.unpack(canvas_zip, out, "canvas", assignments=[A, B])
    zoe, jane = "obrienzoejr_101", "doejane_102"
    assert (out / zoe / A / f"{A}.ipynb").read_bytes() == SOLVED
    assert (out / jane / A / f"{A}.ipynb").read_bytes() == SOLVED           # 9010, not 9002
    assert (out / jane / B / f"{B}.ipynb").read_bytes() == SOLVED_B
    assert sorted(p.name for p in out.iterdir()) == [jane, lms_intake.RECORD, zoe]
    assert _files(tmp_path) - before <= _files(out) | {out}                  # nothing outside OUTDIR
    assert record["late"] == {zoe: {A: True}, jane: {A: False, B: False}}
    assert record["students"][zoe] == {"name": "obrienzoëjr", "lms_id": "101"}
    reasons = {u["file"]: u["reason"] for u in record["unmapped"]}
    assert set(reasons) == {"doejane_102_9002_conv_1x1.ipynb", "doejane_102_9011_homework3.ipynb",
                            "doejane_102_9012_notes.pdf", "../escape_103_9013_conv_1x1.ipynb",
                            "/tmp/abs_104_9014_conv_1x1.ipynb", "evil_105_9015_conv_1x1.ipynb",
                            "bomb_106_9016_conv_1x1.ipynb", "liar_107_9017_conv_1x1.ipynb",
                            "__MACOSX/._doejane_102_9010_conv_1x1.ipynb", "README.txt"}
    assert "superseded by doejane_102_9010_conv_1x1 (1).ipynb" == reasons["doejane_102_9002_conv_1x1.ipynb"]
    assert "homework3" in reasons["doejane_102_9011_homework3.ipynb"]
    assert "not a notebook" in reasons["doejane_102_9012_notes.pdf"]
    assert ".." in reasons["../escape_103_9013_conv_1x1.ipynb"]
    assert "absolute" in reasons["/tmp/abs_104_9014_conv_1x1.ipynb"]
    assert "symbolic link" in reasons["evil_105_9015_conv_1x1.ipynb"]
    assert "declares 10737418240 bytes" in reasons["bomb_106_9016_conv_1x1.ipynb"]
    assert "corrupt" in reasons["liar_107_9017_conv_1x1.ipynb"] or "more bytes" in reasons["liar_107_9017_conv_1x1.ipynb"]
    assert json.loads((out / lms_intake.RECORD).read_text(encoding="utf-8")) == record
    text = "\n".join(lms_intake.report(record))
    assert all(name in text for name in reasons) and "1 marked late" in text


def test_refuses_too_many_entries_a_used_outdir_and_a_bad_pattern(tmp_path):
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(lms_intake.MAX_ENTRIES + 1):
            zf.writestr(f"s_{i}_{i}_conv_1x1.ipynb", b"")
    with pytest.raises(lms_intake.LmsZipError, match="entries"):
        lms_intake.unpack(many, tmp_path / "out", "canvas", assignments=[A])
    assert not (tmp_path / "out").exists()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    with pytest.raises(lms_intake.LmsZipError, match="not empty"):
        lms_intake.unpack(many, tmp_path / "used", "canvas", assignments=[A])
    with pytest.raises(lms_intake.LmsZipError, match="student"):
        lms_intake.unpack(many, tmp_path / "o2", "regex", pattern=r"(?P<who>\w+)", assignments=[A])


@pytest.mark.parametrize("name", [ZOE, JEAN, "-rf", "..", "Ωmega", "a/b", "ñ" * 300])
def test_student_ids_are_ones_the_grader_accepts(name):
    sid = lms_intake.student_id(name, "7")
    assert STUDENT_ID.fullmatch(sid) and not sid.startswith("-") and sid.endswith("_7")


def _moodle_zip(tmp_path):
    path = tmp_path / "moodle.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{ZOE}_5551_assignsubmission_file_/conv_1x1.ipynb", SOLVED)
        zf.writestr(f"{JEAN}_5552_assignsubmission_file_/conv_1x1 (1).ipynb", RELEASED)
        zf.writestr(f"{JEAN}_5552_assignsubmission_onlinetext_/onlinetext.html", b"<p>hi</p>")
        zf.writestr("conv_1x1.ipynb", SOLVED)                          # in no participant folder
    return path


def test_moodle_zip_one_folder_per_participant(tmp_path):
    out = tmp_path / "out"
    record = lms_intake.unpack(_moodle_zip(tmp_path), out, "moodle", assignments=[A, B])
    zoe, jean = "Zoe_O_Brien_Jr_5551", "Jean-Luc_JL_Picard_5552"
    assert (out / zoe / A / f"{A}.ipynb").read_bytes() == SOLVED
    assert (out / jean / A / f"{A}.ipynb").read_bytes() == RELEASED
    assert record["students"] == {zoe: {"name": ZOE, "lms_id": "5551"},
                                  jean: {"name": JEAN, "lms_id": "5552"}}
    assert record["late"] == {}
    assert {u["file"] for u in record["unmapped"]} == {
        f"{JEAN}_5552_assignsubmission_onlinetext_/onlinetext.html", "conv_1x1.ipynb"}


def test_regex_format_with_late_group(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hw/alice-conv_1x1-LATE.ipynb", SOLVED)
        zf.writestr("hw/bob-cnn_building_blocks.ipynb", SOLVED_B)
        zf.writestr("hw/carol.ipynb", SOLVED)
    pattern = r"hw/(?P<student>[a-z]+)-(?P<assignment>\w+?)(?P<late>-LATE)?\.ipynb"
    record = lms_intake.unpack(path, tmp_path / "out", "regex", pattern, assignments=[A, B])
    assert record["files"] == {"alice": {A: "hw/alice-conv_1x1-LATE.ipynb"},
                               "bob": {B: "hw/bob-cnn_building_blocks.ipynb"}}
    assert record["late"] == {"alice": {A: True}, "bob": {B: False}}
    assert [u["file"] for u in record["unmapped"]] == ["hw/carol.ipynb"]
    assert lms_intake._assignment_of("x/lab-2 (3).ipynb", {"lab-2", "lab"}) == ("lab-2", None)
    assert lms_intake._assignment_of("lab-2.IPYNB", {"lab"}) == ("lab", None)


def _grades_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "assignment", "score", "max_score", "status", "reason", "seconds"])
        w.writerows(rows)
    return path


CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "conv_1x1 (123)",
                 "cnn_building_blocks (124)", "Quiz 1 (125)", "Current Score", "Final Score"]
CANVAS_ROWS = [["    Points Possible", "", "", "", "", "10.00", "15.00", "5.00", "(read only)", "(read only)"],
               ["O'Brien, Jr., Zoë", "101", "S101", "zobrien", "DL 2026, Sec. \"A\"", "", "", "4", "80", "40"],
               ["Doe, Jane", "102", "S102", "jdoe", "DL 2026", "7", "", "5", "100", "50"],
               ["=cmd|' /C calc'!A0", "105", "S105", "evil", "DL 2026", "", "", "", "", ""]]


def test_canvas_export_fills_the_column_and_keeps_the_roster(tmp_path):
    exported = tmp_path / "export.csv"
    with open(exported, "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f).writerows([CANVAS_HEADER, *CANVAS_ROWS])
    original = exported.read_bytes()
    grades = lms_export.read_grades(_grades_csv(tmp_path / "grades.csv", [
        ["obrienzoejr_101", A, "3", "3", "graded", "", "9.0"],
        ["doejane_102", A, "1.5", "3", "graded", "", "9.0"],
        ["doejane_102", B, "12", "15", "graded", "", "9.0"],
        ["ghost_999", A, "3", "3", "graded", "", "9.0"]]))
    mapping = {"obrienzoejr_101": {"name": "obrienzoëjr", "lms_id": "101"},
               "doejane_102": {"name": "doejane", "lms_id": "102"},
               "ghost_999": {"name": "ghost", "lms_id": "999"}}
    with pytest.raises(ValueError, match="new file"):
        lms_export.canvas(grades, mapping, exported, exported)
    result = lms_export.canvas(grades, mapping, exported, tmp_path / "import.csv")
    assert exported.read_bytes() == original
    assert result == {"filled": {A: 2, B: 1}, "no_grade": ["=cmd|' /C calc'!A0 (105)"],
                      "not_in_roster": ["ghost (999)"], "no_column": []}
    with open(tmp_path / "import.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CANVAS_HEADER and len(rows) == 1 + len(CANVAS_ROWS)
    assert rows[1] == CANVAS_ROWS[0]                                   # Points Possible kept
    assert rows[2] == ["O'Brien, Jr., Zoë", "101", "S101", "zobrien", "DL 2026, Sec. \"A\"",
                       "10", "", "4", "80", "40"]                      # 3/3 scaled to 10 points
    assert rows[3][5:8] == ["5", "12", "5"]                            # 7 replaced; 12/15 of 15
    assert rows[4][0] == "'=cmd|' /C calc'!A0" and rows[4][1:] == CANVAS_ROWS[3][1:]
    by_login = lms_export.canvas({"jdoe": {A: (3.0, 3.0)}}, {}, exported, tmp_path / "login.csv")
    assert by_login["filled"] == {A: 1} and by_login["not_in_roster"] == []   # regex intake: login ids


def test_moodle_and_wide_exports(tmp_path):
    record = lms_intake.unpack(_moodle_zip(tmp_path), tmp_path / "subs", "moodle", assignments=[A, B])
    mapping = lms_export.read_mapping(tmp_path / "subs")
    assert mapping == record["students"]
    grades = lms_export.read_grades(_grades_csv(tmp_path / "grades.csv", [
        ["Zoe_O_Brien_Jr_5551", A, "3", "3", "graded", "", "1"],
        ["Jean-Luc_JL_Picard_5552", A, "0", "3", "graded", "", "1"],
        ["Jean-Luc_JL_Picard_5552", B, "15", "15", "graded", "", "1"]]))
    roster = tmp_path / "moodle_grades.csv"
    with open(roster, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["First name", "Last name", "ID number", "Institution", "Department",
                    "Email address", "Assignment: conv_1x1 (Real)", "Last downloaded from this course"])
        w.writerow(["Zoë", "O'Brien, Jr.", "S1", "Uni", "CS", "zoe@example.edu", "-", "1700000000"])
        w.writerow(["Jean-Luc", '"JL" Picard', "S2", "Uni", "CS", "jl@example.edu", "-", "1700000000"])
        w.writerow(["Ann", "Absent", "S3", "Uni", "CS", "ann@example.edu", "-", "1700000000"])
    result = lms_export.moodle(grades, mapping, roster, tmp_path / "moodle_import.csv")
    assert result == {"written": 2, "no_grade": ["Ann Absent"], "not_in_roster": [], "ambiguous": []}
    with open(tmp_path / "moodle_import.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [["Email address", B, A], ["jl@example.edu", "15", "0"], ["zoe@example.edu", "", "3"]]
    lms_export.moodle(grades, mapping, roster, tmp_path / "by_id.csv", identifier="ID number")
    assert (tmp_path / "by_id.csv").read_text().splitlines()[0] == f"ID number,{B},{A}"
    lms_export.wide(grades, mapping, tmp_path / "wide.csv")
    with open(tmp_path / "wide.csv", newline="", encoding="utf-8") as f:
        wide = list(csv.DictReader(f))
    assert [(r["name"], r[A], r[B], r["total"], r["max_total"]) for r in wide] == [
        (JEAN, "0", "15", "15", "18"), (ZOE, "3", "", "3", "3")]


def test_cli_intake_then_real_grade_then_canvas_export(canvas_zip, tmp_path, capsys):
    """The one kernel run: the reference conv_1x1 from a Canvas zip, graded, back to Canvas."""
    out = tmp_path / "subs"
    assert main(["lms-intake", str(canvas_zip), str(out), "--format", "canvas",
                 "--assignment", A]) == 0
    printed = capsys.readouterr().out
    assert "bomb_106_9016_conv_1x1.ipynb" in printed and "2 notebooks of 2 students" in printed
    assert main(["lms-intake", str(canvas_zip), str(out)]) == 2              # OUTDIR in use
    from helpers import grading
    from helpers.grading.sandbox import sandbox_problem
    if sandbox_problem() is not None:
        pytest.skip(f"no sandbox here: {sandbox_problem()}")
    grading.grade(out, work=tmp_path / "work", names=[A], feedback=False, workers=1, log=lambda *a: None)
    rows = list(csv.DictReader(open(tmp_path / "work" / "grades.csv", encoding="utf-8")))
    assert {(r["student"], r["status"], r["score"] == r["max_score"]) for r in rows} == {
        ("obrienzoejr_101", "graded", True), ("doejane_102", "graded", True)}
    exported = tmp_path / "export.csv"
    with open(exported, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([CANVAS_HEADER, *CANVAS_ROWS])
    assert main(["lms-export", str(tmp_path / "work" / "grades.csv"), "--mapping", str(out),
                 "--format", "canvas", "--gradebook", str(exported), "--out", str(tmp_path / "in.csv")]) == 0
    rows = list(csv.reader(open(tmp_path / "in.csv", encoding="utf-8")))
    assert [r[5] for r in rows[2:4]] == ["10", "10"]
