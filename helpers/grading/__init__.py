"""The grading machinery (instructors only; the course library never imports it).

``python -m helpers grade DIR`` drives it. One module per idea:

    course         the assignments, their settings and limits, nbgrader's API, the release
    intake         is a submitted folder a gradable notebook of this assignment?
    sandbox        bubblewrap + cgroups around each student kernel
    execute        nbgrader's Execute step, hardened (sandboxed kernel, limits, guard)
    judge          the trusted kernel where graded test cells run (bridge, wire: the
                   student's functions reached as data)
    jobs           grade one submission (plain data in and out); local pool or Dask
    gradebook      the one writer: gradebook, files, resumable results
    batch          grade a folder: validate, queue, run, record, report
    reports        grades.csv, the gradebook table, the summary
    late           due dates, late policies and extensions from the course file
    exchange       nbgrader's exchange: release, collect, return feedback
    lms_intake     an LMS's "download all submissions" zip in; lms_export grades out
    item_analysis  where the class lost points, cell by cell (cells.csv)
    review         the grading folder in nbgrader's formgrader (JupyterLab)
    self_check     a student grades their own notebook
    demo           build, grade two demo students, print the gradebook
"""
import importlib

#: Public names and the module that defines each. They are imported on first use, so that
#: ``import helpers.grading.bridge`` (the judge's kernel) does not load nbgrader.
_EXPORTS = {
    "grade": "batch", "DEFAULT_CELL_TIMEOUT": "course", "RELEASE": "course", "REPO": "course",
    "SOLUTIONS": "course", "WORK": "course", "_api": "course", "_kernel_environment": "course",
    "assignments": "course", "build": "course", "course_settings": "course",
    "limits_for": "course", "demo": "demo", "make_demo_submissions": "demo",
    "Result": "gradebook", "_record": "gradebook", "grade_job": "jobs",
    "gradebook_table": "reports", "summary": "reports", "write_csv": "reports",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
