"""The grading machinery (instructors only; the course library never imports it).

``python -m helpers grade DIR`` drives it. One module per idea:

    course         the assignments, their settings and limits, nbgrader's API, the release
    intake         is a submitted folder a gradable notebook of this assignment?
    sandbox        bubblewrap + cgroups around each student kernel
    execute        nbgrader's Execute step, hardened (sandboxed kernel, limits, guard)
    jobs           grade one submission (plain data in and out); local pool or Dask
    gradebook      the one writer: gradebook, files, resumable results
    batch          grade a folder: validate, queue, run, record, report
    reports        grades.csv, the gradebook table, the summary
    item_analysis  where the class lost points, cell by cell (cells.csv)
    self_check     a student grades their own notebook
    demo           build, grade two demo students, print the gradebook
"""
from .batch import grade
from .course import (DEFAULT_CELL_TIMEOUT, RELEASE, REPO, SOLUTIONS, WORK, _api,
                     _kernel_environment, assignments, build, course_settings, limits_for)
from .demo import demo, make_demo_submissions
from .gradebook import Result, _record
from .jobs import grade_job
from .reports import gradebook_table, summary, write_csv

__all__ = ["DEFAULT_CELL_TIMEOUT", "RELEASE", "REPO", "SOLUTIONS", "WORK", "Result", "assignments",
           "build", "course_settings", "demo", "grade", "grade_job", "gradebook_table",
           "limits_for", "make_demo_submissions", "summary", "write_csv", "_api", "_record",
           "_kernel_environment"]
