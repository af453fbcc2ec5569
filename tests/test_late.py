"""Deadlines and late work (helpers.grading.late, #21): the course file, a submission's time,
the penalty, and what grades.csv, the gradebook table and the feedback say. Fast: plain
data and fake results, no kernel."""
import csv
import datetime as dt
import json
import os

import pytest

from helpers.grading import late
from helpers.grading.gradebook import Result
from helpers.grading.late import Policy, Submitted, compute_penalty
from helpers.grading.reports import gradebook_table, write_csv

A = "conv_1x1"
UTC = dt.timezone.utc
DUE = dt.datetime(2026, 12, 1, 23, 59, tzinfo=UTC)
PER_DAY = Policy("per_day", percent=10, cap=50)


def at(**delta):
    """A submission made ``delta`` after DUE, per timestamp.txt."""
    return Submitted(DUE + dt.timedelta(**delta), "timestamp.txt")


def test_on_time_and_no_deadline_cost_nothing():
    assert compute_penalty(8, DUE, None, at(minutes=-1), PER_DAY) == late.Penalty(0.0, "")
    assert compute_penalty(8, DUE, None, at(seconds=0), PER_DAY).points == 0


def test_per_day_counts_started_days_of_the_raw_score():
    one = compute_penalty(8, DUE, None, at(minutes=1), PER_DAY)
    assert one.points == 0.8
    assert "1 min after the due date 2026-12-01 23:59 UTC" in one.reason
    assert "1 started day x 10% = 10% of 8 points = -0.8" in one.reason
    two = compute_penalty(8, DUE, None, at(days=1, hours=3), PER_DAY)
    assert two.points == 1.6 and "1 day 3 h after" in two.reason and "2 started days" in two.reason


def test_per_hour_and_its_cap():
    policy = Policy("per_hour", percent=5, cap=40)
    assert compute_penalty(10, DUE, None, at(hours=2, minutes=30), policy).points == 1.5
    capped = compute_penalty(10, DUE, None, at(hours=30), policy)
    assert capped.points == 4.0 and "30 started hours x 5% = 150%, capped at 40%" in capped.reason
    days = compute_penalty(10, DUE, None, at(days=9), PER_DAY)
    assert days.points == 5.0 and "capped at 50%" in days.reason


def test_cutoff_scores_zero_after_it():
    zero = Policy("cutoff", cutoff_hours=0)
    gone = compute_penalty(7, DUE, None, at(minutes=5), zero)
    assert gone.points == 7 and "late work scores 0 (-7 points)" in gone.reason
    grace = Policy("cutoff", cutoff_hours=48)
    within = compute_penalty(7, DUE, None, at(hours=47), grace)
    assert within.points == 0 and "no late penalty" in within.reason
    past = compute_penalty(7, DUE, None, at(hours=49), grace)
    assert past.points == 7 and "more than 48 h late (the cut-off) scores 0" in past.reason
    both = Policy("per_day", percent=10, cutoff_hours=72)
    assert compute_penalty(10, DUE, None, at(days=2), both).points == 2
    assert compute_penalty(10, DUE, None, at(days=4), both).points == 10


def test_none_policy_says_late_and_charges_nothing():
    p = compute_penalty(5, DUE, None, at(hours=3), Policy("none"))
    assert p.points == 0 and "3 h after the due date" in p.reason and "no late penalty" in p.reason


def test_extension_moves_the_due_date():
    ext = DUE + dt.timedelta(days=3)
    assert compute_penalty(8, DUE, ext, at(days=2), PER_DAY) == late.Penalty(0.0, "")
    p = compute_penalty(8, DUE, ext, at(days=3, hours=1), PER_DAY)
    assert p.points == 0.8 and "due date 2026-12-04 23:59 UTC (extended from 2026-12-01 23:59 UTC)" in p.reason


def test_lms_mark_without_time_is_said_honestly():
    marked = Submitted(None, "lms", True)
    p = compute_penalty(8, DUE, None, marked, PER_DAY)
    assert p.points == 0.8 and "gives no time" in p.reason and "charged as 1 day late, the least" in p.reason
    assert compute_penalty(8, DUE, None, marked, Policy("cutoff", cutoff_hours=0)).points == 8
    unsure = compute_penalty(8, DUE, None, marked, Policy("cutoff", cutoff_hours=24))
    assert unsure.points == 0 and "cannot be told" in unsure.reason
    excused = compute_penalty(8, DUE, DUE + dt.timedelta(days=1), marked, PER_DAY)
    assert excused.points == 0 and "extension" in excused.reason
    assert compute_penalty(8, DUE, None, Submitted(None, "lms", False), PER_DAY) == late.Penalty(0.0, "")
    unknown = compute_penalty(8, DUE, None, Submitted(None, "", None, "no notebook time"), PER_DAY)
    assert unknown.points == 0 and "no submission time (no notebook time)" in unknown.reason
    assert late.feedback_note(unknown, 8) == ("", "")                 # the instructor's, in the CSV
    assert late.feedback_note(p, 8)[0] == "Late penalty: -0.8 points (raw score 8, final 7.2)"


def test_parse_timestamp_reads_nbgrader_and_iso():
    want = dt.datetime(2026, 12, 1, 13, 45, 10, 123456, tzinfo=UTC)
    assert late.parse_timestamp("2026-12-01 13:45:10.123456 UTC\n") == want
    assert late.parse_timestamp("2026-12-01 13:45:10.123456") == want            # naive: UTC
    assert late.parse_timestamp("2026-12-01T14:45:10.123456+01:00") == want
    with pytest.raises(ValueError):
        late.parse_timestamp("yesterday")


def _submission(tmp_path, student="ann", stamp=None, mtime=None):
    folder = tmp_path / "subs" / student / A
    folder.mkdir(parents=True)
    (folder / f"{A}.ipynb").write_text("{}")
    if stamp is not None:
        (folder / "timestamp.txt").write_text(stamp)
    if mtime is not None:
        os.utime(folder / f"{A}.ipynb", (mtime.timestamp(), mtime.timestamp()))
    return folder


def test_time_sources_in_order(tmp_path):
    mtime = DUE + dt.timedelta(days=5)
    folder = _submission(tmp_path, stamp="2026-12-01 20:00:00.000000 UTC", mtime=mtime)
    lms = {"late": {"ann": {A: True}}, "files": {"ann": {A: "ann_late_1_2_conv_1x1.ipynb"}}}
    first = late.submission_time(folder, A, "ann", lms)
    assert (first.source, first.at) == ("timestamp.txt", dt.datetime(2026, 12, 1, 20, tzinfo=UTC))
    (folder / "timestamp.txt").write_text("not a time")
    second = late.submission_time(folder, A, "ann", lms)
    assert (second.source, second.at, second.lms_late) == ("lms", None, True)
    assert "timestamp.txt not read" in second.note
    (folder / "timestamp.txt").unlink()
    unpacked = late.submission_time(folder, A, "ann", {"late": {}, "files": lms["files"]})
    assert unpacked.at is None and "no submission time" in unpacked.note   # never the unpack time
    third = late.submission_time(folder, A, "ann", {})
    assert (third.source, third.at) == ("mtime", mtime)


def _course(tmp_path, text, name="course.toml"):
    path = tmp_path / name
    path.write_text(text)
    return late.read_course_file(path, [A, "gans"])


COURSE = """
[course]
timezone = "Europe/Berlin"
[defaults]
policy = "per_day"
percent = 10
cap = 50
[assignments.conv_1x1]
due = 2026-12-01T23:59:00
[assignments.gans]
due = "2026-12-15"
policy = "cutoff"
cutoff_hours = 48
[extensions.bob]
conv_1x1 = 2
gans = 2026-12-20T12:00:00Z
"""


def test_course_file_reads_policies_dates_and_extensions(tmp_path):
    course = _course(tmp_path, COURSE)
    conv, gans = course.deadlines[A], course.deadlines["gans"]
    assert conv.due == dt.datetime(2026, 12, 1, 22, 59, tzinfo=UTC)          # Berlin, UTC+1
    assert conv.policy == Policy("per_day", 10, 50, None)
    assert gans.policy == Policy("cutoff", 10, 50, 48) and gans.due.hour == 23 and gans.due.day == 15  # a date: its end
    assert course.extensions[("bob", A)] == conv.due + dt.timedelta(days=2)
    assert course.extensions[("bob", "gans")] == dt.datetime(2026, 12, 20, 12, tzinfo=UTC)
    assert late.find_course_file(tmp_path) == tmp_path / "course.toml"
    assert late.find_course_file(tmp_path / "elsewhere") is None
    with pytest.raises(FileNotFoundError, match="no course file"):
        late.find_course_file(tmp_path, tmp_path / "missing.toml")


def test_bad_course_file_names_every_problem_and_where(tmp_path):
    bad = """
[course]
timezone = "Mars/Olympus"
[defaults]
percent = -5
[assignments.conv1x1]
due = 2026-12-01T23:59:00
[assignments.conv_1x1]
due = "next friday"
policy = "per_week"
[assignments.gans]
policy = "per_hour"
[extensions.ann]
conv1x1 = 2
"""
    with pytest.raises(late.CourseFileError) as err:
        _course(tmp_path, bad)
    text = str(err.value)
    for part in (str(tmp_path / "course.toml"), "[course].timezone: 'Mars/Olympus' is not a known time zone",
                 "[assignments.conv1x1]: unknown assignment 'conv1x1' (known: conv_1x1, gans)",
                 "[assignments.conv_1x1].due: 'next friday' is not a date",
                 "[assignments.conv_1x1].policy: 'per_week' is not one of none, per_day",
                 "[defaults].percent: -5 is out of range",
                 "[assignments.gans]: no due date",
                 "[extensions.ann].conv1x1: unknown assignment 'conv1x1' to extend"):
        assert part in text, text
    with pytest.raises(late.CourseFileError, match="cannot be read as TOML"):
        _course(tmp_path, "[assignments\n", "broken.toml")
    with pytest.raises(late.CourseFileError, match=r"\[assignments.conv_1x1\]: policy 'per_hour' needs percent"):
        _course(tmp_path, "[assignments.conv_1x1]\ndue = 2026-12-01\npolicy = 'per_hour'\n", "c.toml")
    with pytest.raises(late.CourseFileError, match=r"cap: 120 is out of range"):
        _course(tmp_path, "[defaults]\ncap = 120\n", "d.toml")


FEEDBACK = "<html><head></head><body class=\"jp-Notebook\">\n<p>Score: 8 / 10</p></body></html>"


def _graded(tmp_path, student, stamp):
    _submission(tmp_path, student, stamp=stamp)
    fb = tmp_path / "work" / "feedback" / student / A
    fb.mkdir(parents=True)
    (fb / f"{A}.html").write_text(FEEDBACK)
    return Result(student, A, score=8, max_score=10)


def test_regrade_never_charges_twice_and_drops_a_stale_penalty(tmp_path):
    subs, work = tmp_path / "subs", tmp_path / "work"
    results = [_graded(tmp_path, "ann", "2026-12-02 10:00:00 UTC"),
               _graded(tmp_path, "bob", "2026-12-01 10:00:00 UTC"),
               Result("cal", A, max_score=10, status="malformed", reason="invalid JSON")]
    course = _course(tmp_path, "[defaults]\npolicy='per_day'\npercent=25\n"
                               "[assignments.conv_1x1]\ndue = 2026-12-01T23:59:00Z\n")
    said = []
    for _ in range(2):                                # a regrade in the same run, then again
        late.apply_late(results, course, subs, work, log=said.append)
        ann = results[0]
        assert (ann.raw_score, ann.late_penalty, ann.score) == (8, 2, 6)
        assert ann.submitted_at == "2026-12-02T10:00:00+00:00" and ann.time_source == "timestamp.txt"
        html = (work / "feedback" / "ann" / A / f"{A}.html").read_text()
        assert html.count("class=\"course-note\"") == 1 and "Late penalty: -2 points (raw score 8, final 6)" in html
        assert (results[1].score, results[1].late_penalty, results[1].late_reason) == (8, 0, "")
        assert results[2].raw_score is None and results[2].score == 0
    assert "1 submission(s) lost points" in said[0]
    reloaded = Result("ann", A, score=8, max_score=10)   # from results/*.json: the raw score
    late.apply_late([reloaded], course, subs, work, log=said.append)
    assert reloaded.score == 6
    moved = _course(tmp_path, "[assignments.conv_1x1]\ndue = 2026-12-03T00:00:00Z\npolicy='per_day'\n"
                              "percent = 25\n", "moved.toml")
    late.apply_late(results, moved, subs, work, log=said.append)
    assert (results[0].score, results[0].late_penalty, results[0].late_reason) == (8, 0, "")
    assert "course-note" not in (work / "feedback" / "ann" / A / f"{A}.html").read_text()
    extended = _course(tmp_path, COURSE.replace("bob", "ann"), "ext.toml")
    late.apply_late(results, extended, subs, work, log=said.append)
    assert results[0].score == 8 and results[0].late_reason == ""


def test_grades_csv_and_table_say_what_was_deducted(tmp_path):
    r = Result("ann", A, score=6, max_score=10, raw_score=8, late_penalty=2,
               late_reason="-submitted 1 day late: -2", submitted_at="2026-12-02T10:00:00+00:00",
               time_source="timestamp.txt")
    plain = (write_csv([r], tmp_path / "plain.csv")).read_text().splitlines()[0]
    assert plain == "student,assignment,score,max_score,status,reason,seconds"   # no course file
    with open(write_csv([r, Result("bo", A, max_score=10, status="missing")], tmp_path / "g.csv", late=True),
              newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["score"] == "6" and rows[0]["raw_score"] == "8" and rows[0]["late_penalty"] == "2"
    assert rows[0]["late_reason"] == "'-submitted 1 day late: -2"          # csvsafe: never a formula
    assert rows[0]["time_source"] == "timestamp.txt" and rows[1]["raw_score"] == ""
    assert "6/10 (late -2)" in gradebook_table([r])


def test_lms_record_is_read_from_the_submissions_folder(tmp_path):
    subs = tmp_path / "subs"
    _submission(tmp_path, "zoe")
    (subs / "lms-intake.json").write_text(json.dumps(
        {"late": {"zoe": {A: True}}, "files": {"zoe": {A: "zoe_late_1_2_conv_1x1.ipynb"}}}))
    course = _course(tmp_path, "[assignments.conv_1x1]\ndue = 2026-12-01\npolicy='per_hour'\npercent=5\n")
    r = Result("zoe", A, score=10, max_score=10)
    late.apply_late([r], course, subs, tmp_path / "work", log=lambda *_: None)
    assert (r.score, r.time_source, r.submitted_at) == (9.5, "lms", "")
    assert "the LMS marks it late" in r.late_reason and "gives no time" in r.late_reason


def test_lms_record_that_is_not_ours_is_ignored(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "lms-intake.json").write_text(json.dumps({"late": ["zoe"], "files": {"zoe": "x"}}))
    assert late.read_lms_record(subs) == {"files": {}}
    (subs / "lms-intake.json").write_text("{not json")
    assert late.read_lms_record(subs) == {}


def test_bad_course_file_stops_grade_before_any_grading(tmp_path, capsys):
    from helpers.__main__ import main
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    bad = tmp_path / "deadlines.toml"
    bad.write_text("[assignments.conv_1x1]\ndue = \"2026-13-01\"\n")
    rc = main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "work"), "--assignment", A,
               "--course-file", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{bad}: [assignments.conv_1x1].due" in err and "not a date" in err, err
    assert not (tmp_path / "work" / "grades.csv").exists()


def test_grade_run_charges_once_and_a_moved_due_date_drops_it(tmp_path):
    """One real grade run (a late reference solution), then one that reuses its result: the
    stored score is the raw one, so a later due date leaves no penalty (and none twice)."""
    import shutil
    from helpers import grading
    subs, work, said = tmp_path / "subs", tmp_path / "work", []
    folder = subs / "ann" / A
    folder.mkdir(parents=True)
    shutil.copy(grading.SOLUTIONS / A / f"{A}.ipynb", folder / f"{A}.ipynb")
    (folder / "timestamp.txt").write_text("2026-12-02 10:00:00.000000 UTC")
    course = subs / "course.toml"
    course.write_text("[assignments.conv_1x1]\ndue = 2026-12-01T23:59:00Z\npolicy = 'per_day'\npercent = 25\n")
    page = work / "feedback" / "ann" / A / f"{A}.html"

    def run():
        [r] = grading.grade(subs, work=work, names=[A], workers=1, log=said.append)
        with open(work / "grades.csv", newline="", encoding="utf-8") as f:
            return r, list(csv.DictReader(f))[0], page.read_text()

    r, row, html = run()
    top = r.max_score
    assert r.status == "graded" and r.raw_score == top > 0 and r.score == top * 0.75, r
    assert row["score"] == f"{top * 0.75:g}" and row["late_penalty"] == f"{top * 0.25:g}"
    assert row["time_source"] == "timestamp.txt" and "1 started day x 25%" in row["late_reason"]
    assert f"Late penalty: -{top * 0.25:g} points" in html
    course.write_text("[assignments.conv_1x1]\ndue = 2026-12-03T00:00:00Z\npolicy = 'per_day'\npercent = 25\n")
    r, row, html = run()
    assert any("already graded and unchanged" in line for line in said)
    assert r.score == r.raw_score == top and row["late_penalty"] == "0" and row["late_reason"] == ""
    assert "Late penalty" not in html
