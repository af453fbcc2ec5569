"""The demo: build the release, grade two demo students, print the gradebook."""
from __future__ import annotations

import shutil
from pathlib import Path

from .batch import grade
from .course import RELEASE, SOLUTIONS, WORK, assignments, build
from .reports import gradebook_table, summary

def make_demo_submissions(folder, names=None, solutions=SOLUTIONS, release=RELEASE):
    """Two demo students: ``reference`` (the solutions) and ``untouched`` (the release)."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    for name in names or assignments(solutions):
        for student, side in (("reference", Path(solutions)), ("untouched", Path(release))):
            dest = folder / student / name
            dest.mkdir(parents=True)
            for nb in sorted((side / name).glob("*.ipynb")):
                shutil.copy2(nb, dest / nb.name)
    return folder


def demo(work=None, log=print):
    """Build the release, grade the two demo students, print the gradebook."""
    work = Path(work or WORK / "demo")
    log("1/3 Building the student release from solutions/ ...")
    build(log=log)
    log("2/3 Autograding two demo submissions (reference solutions, untouched release) ...")
    subs = make_demo_submissions(work.parent / (work.name + "-submissions"))
    results = grade(subs, work=work, log=log)
    log("3/3 Gradebook")
    log(gradebook_table(results))
    problems = summary(results)
    if problems:
        log("Not graded cleanly:")
        for line in problems:
            log("  " + line)
    log(f"Grades CSV: {work / 'grades.csv'}  (per graded cell: {work / 'cells.csv'})")
    log(f"Feedback HTML: {work / 'feedback'}/<student>/<assignment>/*.html")
    return results
