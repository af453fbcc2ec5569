"""``python -m helpers <command>``: the course's command line (instructors; ``check`` for students).

Commands:
  build              regenerate notebooks/ (the student release) from solutions/
  grade DIR          autograde DIR/<student>/<assignment>/*.ipynb; table, CSV, feedback,
                     and the cells where the class lost most points (cells.csv)
                     (each kernel sandboxed; --workers N in parallel; --scheduler ADDR on Dask)
  demo               build, grade two demo students (reference, untouched), print grades
  review [WORK]      JupyterLab's formgrader on a grading folder (default grading/demo):
                     every student and cell, the autograded notebooks, manual adjustments
  check NOTEBOOK     grade your own notebook with the hidden tests; print the points lost
  author SRC DEST    turn a percent script into an nbgrader source notebook
  lms-intake ZIP DIR an LMS's "download all submissions" zip -> DIR for grade
  lms-export GRADES  grades.csv -> the LMS's import CSV (Canvas, Moodle) or a wide CSV
  exchange-config    once per course: --course-id ID --root EXCHANGE (nbgrader's exchange)
  release A          release notebooks/A/ through nbgrader's exchange (JupyterHub)
  collect A          nbgrader collect -> grading/exchange/submitted/, the folder grade reads
  return A           the feedback grade wrote -> nbgrader release_feedback
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="regenerate notebooks/ from solutions/")
    p_build.add_argument("assignments", nargs="*", help="default: all")
    p_grade = sub.add_parser("grade", help="autograde a folder of submissions")
    p_grade.add_argument("submissions", help="folder of <student>/<assignment>/*.ipynb")
    p_grade.add_argument("--out", help="grading folder (default grading/<name of DIR>)")
    p_grade.add_argument("--assignment", action="append", dest="assignments",
                         help="grade only this assignment (repeatable)")
    p_grade.add_argument("--no-feedback", action="store_true", help="skip feedback HTML")
    p_grade.add_argument("--workers", type=int, default=None,
                         help="submissions graded at once (default: number of cores)")
    p_grade.add_argument("--threads", type=int, default=None,
                         help="threads of each kernel (default: number of cores / workers)")
    p_grade.add_argument("--scheduler", default=None,
                         help="Dask scheduler address (tcp://host:8786): grade on that cluster")
    p_grade.add_argument("--no-sandbox", action="store_true",
                         help="run student code unconfined, with your rights (not recommended)")
    p_grade.add_argument("--regrade", action="store_true",
                         help="grade again submissions already graded and unchanged")
    p_grade.add_argument("--course-file", metavar="PATH",
                         help="due dates, late policies, extensions (TOML; default DIR/course.toml)")
    p_grade.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                         help="override a limit for every assignment, e.g. wall_timeout=120, "
                              "memory_mb=2048 (cell_timeout, cpu_seconds, max_processes, output_mb)")
    p_demo = sub.add_parser("demo", help="build, grade the demo submissions, print grades")
    p_demo.add_argument("--out", help="grading folder (default grading/demo)")
    p_review = sub.add_parser("review", help="review a grading folder in the formgrader")
    p_review.add_argument("work", nargs="?", help="the grading folder (default grading/demo)")
    p_review.add_argument("--port", type=int, help="default: a free port")
    p_check = sub.add_parser("check", help="grade your own notebook with the hidden tests")
    p_check.add_argument("notebook", help="the .ipynb to grade (it is copied, not changed)")
    p_check.add_argument("--assignment", help="its assignment (default: from its name or folder)")
    p_check.add_argument("--out", help="grading folder (default grading/self-check)")
    p_check.add_argument("--no-sandbox", action="store_true",
                         help="run it without the sandbox even where this machine has one")
    p_author = sub.add_parser("author", help="percent script -> source notebook")
    p_author.add_argument("script")
    p_author.add_argument("notebook")
    p_in = sub.add_parser("lms-intake", help="LMS submissions zip -> folder for grade")
    p_in.add_argument("zip")
    p_in.add_argument("outdir", help="a new (or empty) folder")
    p_in.add_argument("--format", choices=["canvas", "moodle", "regex"], default="canvas")
    p_in.add_argument("--pattern", help="for --format regex: named groups student, "
                                        "assignment (optional), late (optional)")
    p_in.add_argument("--assignment", action="append", dest="assignments",
                      help="only this assignment (repeatable; default: all of the course)")
    p_out = sub.add_parser("lms-export", help="grades.csv -> the LMS's import CSV")
    p_out.add_argument("grades", help="the grades.csv that grade wrote")
    p_out.add_argument("--mapping", required=True, help="the lms-intake.json (or its folder)")
    p_out.add_argument("--format", choices=["canvas", "moodle", "wide"], required=True)
    p_out.add_argument("--gradebook", help="canvas: the gradebook CSV exported from Canvas; "
                                           "moodle: the grades exported from Moodle (roster)")
    p_out.add_argument("--identifier", default="Email address",
                       help="moodle: the roster column that identifies users")
    p_out.add_argument("--assignment", action="append", dest="assignments")
    p_out.add_argument("--out", required=True, help="the new CSV (never the gradebook itself)")
    p_cfg = sub.add_parser("exchange-config", help="configure nbgrader's exchange once")
    p_cfg.add_argument("--course-id", required=True)
    p_cfg.add_argument("--root", required=True, help="the exchange folder (e.g. /srv/nbgrader/exchange)")
    for verb, text in (("release", "release an assignment through the exchange"),
                       ("collect", "collect the submissions from the exchange"),
                       ("return", "release the feedback grade wrote")):
        p_ex = sub.add_parser(verb, help=text)
        p_ex.add_argument("assignment")
        if verb == "release":
            p_ex.add_argument("--force", action="store_true", help="release it again")
        if verb == "return":
            p_ex.add_argument("--graded", help="grade's --out folder (default COURSE_DIR/graded)")
    for p_ex in (p_cfg, *[sub.choices[v] for v in ("release", "collect", "return")]):
        p_ex.add_argument("--course-dir", help="the course folder (default grading/exchange)")
    args = parser.parse_args(argv)

    from helpers import grading
    if args.command == "build":
        grading.build(args.assignments or None)
    elif args.command == "grade":
        from helpers.grading.sandbox import Limits, SandboxUnavailable
        limits = {}
        for item in args.limit:
            key, _, value = item.partition("=")
            if key not in Limits.__dataclass_fields__ or not value.isdigit():
                print(f"error: --limit {item!r}: expected NAME=INTEGER with NAME one of "
                      f"{', '.join(Limits.__dataclass_fields__)}", file=sys.stderr)
                return 2
            limits[key] = int(value)
        try:
            results = grading.grade(args.submissions, work=args.out, names=args.assignments,
                                    feedback=not args.no_feedback, workers=args.workers,
                                    scheduler=args.scheduler, sandbox=not args.no_sandbox,
                                    limits=limits, regrade=args.regrade,
                                    course_file=args.course_file, threads=args.threads)
        except (FileNotFoundError, ValueError, SandboxUnavailable) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(grading.gradebook_table(results))
        for line in grading.summary(results):
            print("  not graded cleanly: " + line)
        work = Path(args.out or grading.WORK / Path(args.submissions).resolve().name)
        from helpers.grading.item_analysis import hardest_cells, read_cells_csv
        lost = hardest_cells(read_cells_csv(work / "cells.csv"))
        if lost:
            print(f"Where students lost points (all graded cells: {work / 'cells.csv'}):")
            print("\n".join(lost))
        print(f"Grades CSV: {work / 'grades.csv'}")
    elif args.command == "demo":
        grading.demo(work=args.out)
    elif args.command == "review":
        from helpers.grading import review
        try:
            return review.review(args.work or grading.WORK / "demo", args.port)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.command == "check":
        from helpers.grading import self_check
        from helpers.grading.sandbox import SandboxUnavailable
        try:
            result, lost = self_check.check(args.notebook, args.assignment, work=args.out,
                                            sandbox=False if args.no_sandbox else None)
        except (FileNotFoundError, ValueError, SandboxUnavailable) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("\n".join(self_check.report(result, lost, work=args.out)))
        return 0 if result.status == "graded" else 1
    elif args.command in ("lms-intake", "lms-export"):
        from helpers.grading import lms_export, lms_intake
        return (lms_intake if args.command == "lms-intake" else lms_export).cli(args)
    elif args.command in ("exchange-config", "release", "collect", "return"):
        from helpers.grading import exchange
        return exchange.cli(args)
    elif args.command == "author":
        from helpers.authoring import write_notebook
        write_notebook(args.script, args.notebook)
        print(f"wrote {args.notebook}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
