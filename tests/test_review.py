"""Review in the formgrader (#21, part 4): the grading folder opens in nbgrader's formgrader,
and what an instructor adjusts there stays through later runs of ``grade`` and in the CSVs.

One grading run (conv_1x1: the demo's two students, reference and untouched) serves every
test. The adjustment is made once through nbgrader's gradebook API (what the formgrader's
API handlers call) and once in a real browser: JupyterLab started on the grading folder with
``helpers.grading.review.start``, Debian's Chromium driven by Playwright, the formgrader's own
pages and form.
"""
import csv
import json
import os
import time
import urllib.request

import pytest

from helpers.grading import batch, review
from helpers.grading.demo import make_demo_submissions
from tests.test_browser import CHROMIUM, SHOTS, _need

ASSIGNMENT = "conv_1x1"


def _grade(subs, work, **kwargs):
    return batch.grade(subs, work=work, names=[ASSIGNMENT], feedback=False, workers=1,
                       log=lambda *a, **k: None, **kwargs)


def _csv_scores(work):
    with open(work / "grades.csv", newline="") as f:
        return {r["student"]: float(r["score"]) for r in csv.DictReader(f) if r["assignment"] == ASSIGNMENT}


def _seconds(work, student):
    return json.loads((work / "results" / student / f"{ASSIGNMENT}.json").read_text())["seconds"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("review")
    subs = make_demo_submissions(root / "subs", names=[ASSIGNMENT])
    work = root / "work"
    _grade(subs, work)
    assert _csv_scores(work) == {"reference": 3.0, "untouched": 0.0}
    return subs, work


def _gradebook(work):
    from nbgrader.api import Gradebook
    return Gradebook(f"sqlite:///{work / 'gradebook.db'}")


def test_the_grading_folder_is_the_formgraders_course(graded):
    _, work = graded
    config = (work / "nbgrader_config.py").read_text()
    assert f"c.CourseDirectory.root = {str(work.resolve())!r}" in config
    with _gradebook(work) as gb:
        assert {s.student.id for s in gb.find_assignment(ASSIGNMENT).submissions} == {"reference", "untouched"}


def test_adjustments_stay_through_later_grades_and_reach_the_csv(graded):
    subs, work = graded
    with _gradebook(work) as gb:
        grade = gb.find_grade("conv_1x1_kernel_shape", ASSIGNMENT, ASSIGNMENT, "untouched")
        grade.manual_score, grade.extra_credit = 1.0, 0.5
        comment = gb.find_comment("conv_1x1_impl", ASSIGNMENT, ASSIGNMENT, "untouched")
        comment.manual_comment = "Right idea: the kernel is (1, 1, C, K)."
        gb.db.commit()
    before = _seconds(work, "untouched")
    _grade(subs, work)                    # unchanged: not graded again, the gradebook's score kept
    assert _seconds(work, "untouched") == before
    assert _csv_scores(work) == {"reference": 3.0, "untouched": 1.5}
    _grade(subs, work, regrade=True)      # graded again: nbgrader sets only the automatic score
    assert _seconds(work, "untouched") != before
    assert _csv_scores(work) == {"reference": 3.0, "untouched": 1.5}
    with _gradebook(work) as gb:
        assert gb.find_comment("conv_1x1_impl", ASSIGNMENT, ASSIGNMENT, "untouched").manual_comment.startswith("Right idea")
        grade = gb.find_grade("conv_1x1_kernel_shape", ASSIGNMENT, ASSIGNMENT, "untouched")
        grade.manual_score, grade.extra_credit = None, None     # back as it was for the browser test
        gb.find_comment("conv_1x1_impl", ASSIGNMENT, ASSIGNMENT, "untouched").manual_comment = None
        gb.db.commit()


def test_an_instructor_reviews_and_adjusts_in_the_formgrader(graded, tmp_path):
    """JupyterLab on the grading folder; the formgrader lists both students with their scores;
    the instructor opens the untouched notebook, gives 1 point and a comment in the form; the
    next grade keeps them and grades.csv shows the adjusted score."""
    if not os.path.exists(CHROMIUM):
        _need("Debian's chromium (/usr/bin/chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _need("the playwright package (requirements.txt)")
    subs, work = graded
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / ".jupyter-config"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / ".lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / ".lab-workspaces"))
    log = open(tmp_path / "jupyter.log", "w")
    proc, url = review.start(work, log_file=log, env=env)
    base = url.split("/formgrader")[0]
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not start:\n" + (tmp_path / "jupyter.log").read_text())
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url)                                  # logs in (the token sets a cookie)
            expect(page.get_by_text(ASSIGNMENT).first).to_be_visible(timeout=30_000)
            page.goto(f"{base}/formgrader/manage_students")
            table = page.locator("table")
            expect(table).to_contain_text("reference", timeout=30_000)
            expect(table).to_contain_text("untouched")
            rows = {r.inner_text().split("\t")[1].strip(): r.inner_text() for r in table.locator("tbody tr").all()}
            assert "3 / " in rows["reference"] and "0 / " in rows["untouched"], rows
            page.screenshot(path=str(SHOTS / "formgrader-students.png"), full_page=True)

            page.goto(f"{base}/formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}")
            names = page.locator("a", has_text="untouched")      # shown by "Show All Names"
            expect(names.first).to_be_attached(timeout=30_000)
            page.goto(base + names.first.get_attribute("href"))
            score = page.locator("input.score#conv_1x1_kernel_shape")
            expect(score).to_be_visible(timeout=30_000)
            with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"):
                score.fill("1")
                score.press("Tab")
            comment = page.locator("textarea#conv_1x1_impl-comment")
            with page.expect_response(lambda r: "/formgrader/api/comment/" in r.url and r.request.method == "PUT"):
                comment.fill("Seen in the browser: one point for the kernel's shape.")
                comment.press("Tab")
            page.screenshot(path=str(SHOTS / "formgrader-adjusted.png"), full_page=True)
            browser.close()
    finally:
        review.stop_server(proc)
        log.close()
    _grade(subs, work)
    assert _csv_scores(work) == {"reference": 3.0, "untouched": 1.0}
    with _gradebook(work) as gb:
        assert gb.find_comment("conv_1x1_impl", ASSIGNMENT, ASSIGNMENT, "untouched").manual_comment.startswith("Seen in the browser")
