"""nbgrader's exchange (JupyterHub): release, collect, return feedback (``python -m helpers``).

The instructor configures the course once::

    python -m helpers exchange-config --course-id dl101 --root /srv/nbgrader/exchange

which writes ``<course dir>/nbgrader_config.py`` (default course dir ``grading/exchange/``,
git-ignored): ``CourseDirectory.root``, ``CourseDirectory.course_id`` and ``Exchange.root``.
Every step below runs nbgrader's own app (``python -m nbgrader <app>``) in that folder, so
nbgrader reads that file and the instructor may run any other ``nbgrader`` command there::

    <course dir>/nbgrader_config.py
    <course dir>/release/<assignment>/           copy of notebooks/<assignment>/ (release)
    <course dir>/submitted/<student>/<assignment>/  what collect took (timestamp.txt included)
    <course dir>/graded/                         python -m helpers grade ... --out (default)
    <course dir>/feedback/<student>/<assignment>/  what return hands to release_feedback

* :func:`release`: ``notebooks/<a>/`` -> ``release/<a>/`` -> ``nbgrader release_assignment``.
* :func:`collect`: ``nbgrader collect --update`` (each student's newest submission) into
  ``submitted/``, the layout ``python -m helpers grade`` reads (it grades only the release's
  notebooks and ignores ``timestamp.txt`` and other files).
* :func:`return_feedback`: the feedback HTML ``grade`` wrote, with the collected
  submission's ``timestamp.txt`` and ``submission_secret.txt`` (release_feedback names the
  released file by a hash of that secret, which only the submitting student's cache holds),
  -> ``nbgrader release_feedback``. A submission collected again after grading (its
  notebook differs from the graded one) gets no feedback until it is graded again.

Students use nbgrader's own commands (or the Assignments tab): ``nbgrader fetch_assignment``,
``nbgrader submit``, ``nbgrader fetch_feedback``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .course import RELEASE, SOLUTIONS, WORK, _tool_path
from .intake import STUDENT_ID

#: Default course folder (git-ignored, like every grading folder).
COURSE_DIR = WORK / "exchange"
CONFIG = "nbgrader_config.py"
#: nbgrader's course ids must be URL-safe (they name JupyterHub groups and services).
COURSE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class ExchangeError(RuntimeError):
    """A step cannot be done (no configuration, no release, nbgrader failed)."""


def _folder(course_dir):
    """The course folder, resolved; never in or around ``solutions/`` or ``notebooks/``."""
    course_dir = Path(course_dir or COURSE_DIR).resolve()
    for forbidden in (SOLUTIONS.resolve(), RELEASE.resolve()):
        if course_dir == forbidden or forbidden in course_dir.parents or course_dir in forbidden.parents:
            raise ExchangeError(f"course folder {course_dir} overlaps {forbidden}; choose another")
    return course_dir


def configure(course_id, root, course_dir=None):
    """Write ``<course_dir>/nbgrader_config.py`` for ``course_id`` and exchange ``root``.

    Returns its path. The exchange root is made by nbgrader's release_assignment if it
    does not exist (it must be writable by every student: mode 777, as nbgrader sets it)."""
    if not COURSE_ID.fullmatch(course_id or ""):
        raise ExchangeError(f"course id {course_id!r}: letters, digits, _ and - only")
    course_dir = _folder(course_dir)
    course_dir.mkdir(parents=True, exist_ok=True)
    path = course_dir / CONFIG
    path.write_text("# Written by python -m helpers exchange-config (run it again to change).\n"
                    "c = get_config()\n"
                    f"c.CourseDirectory.root = {str(course_dir)!r}\n"
                    f"c.CourseDirectory.course_id = {course_id!r}\n"
                    f"c.Exchange.root = {str(Path(root).resolve())!r}\n")
    return path


def settings(course_dir=None):
    """{"course_id", "root"} of the course folder's configuration (:func:`configure`)."""
    from traitlets.config.loader import PyFileConfigLoader
    course_dir = _folder(course_dir)
    if not (course_dir / CONFIG).is_file():
        raise ExchangeError(f"no {course_dir / CONFIG}: run python -m helpers exchange-config "
                            "--course-id ID --root EXCHANGE first")
    cfg = PyFileConfigLoader(CONFIG, path=str(course_dir)).load_config()
    return {"course_id": cfg.CourseDirectory.course_id, "root": cfg.Exchange.root}


def nbgrader(app, assignment, *flags, course_dir=None, log=print):
    """Run ``nbgrader <app> <assignment> <flags>`` in the course folder; its log goes to
    ``log`` line by line. Raises :class:`ExchangeError` (with the log) if it fails."""
    course_dir = _folder(course_dir)
    settings(course_dir)
    _tool_path()
    run = subprocess.run([sys.executable, "-m", "nbgrader", app, assignment, *flags],
                         cwd=course_dir, env=dict(os.environ), capture_output=True, text=True)
    text = (run.stdout + run.stderr).strip()
    if run.returncode:
        raise ExchangeError(f"nbgrader {app} {assignment} failed:\n{text}")
    for line in text.splitlines():
        log("  " + line)
    return text


def release(assignment, course_dir=None, force=False, release_dir=RELEASE, log=print):
    """Release ``notebooks/<assignment>/`` to the students through the exchange."""
    course_dir = _folder(course_dir)
    src = Path(release_dir) / assignment
    if not (src / f"{assignment}.ipynb").is_file():
        raise ExchangeError(f"no release notebook {src / f'{assignment}.ipynb'} "
                            "(python -m helpers build makes it)")
    dest = course_dir / "release" / assignment
    settings(course_dir)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    nbgrader("release_assignment", assignment, *(["--force"] if force else []),
             course_dir=course_dir, log=log)
    return dest


def collect(assignment, course_dir=None, log=print):
    """Collect each student's newest submission into ``submitted/<student>/<assignment>/``.

    Returns {student: the submission's timestamp (timestamp.txt)}."""
    course_dir = _folder(course_dir)
    nbgrader("collect", assignment, "--update", course_dir=course_dir, log=log)
    stamps = {}
    for folder in sorted((course_dir / "submitted").glob(f"*/{assignment}")):
        student = folder.parent.name
        stamp = folder / "timestamp.txt"
        stamps[student] = stamp.read_text().strip() if stamp.is_file() else ""
        if not STUDENT_ID.fullmatch(student):
            log(f"  warning: {student!r} is not a student id grade accepts (letters, digits, _ . -)")
    return stamps


def return_feedback(assignment, course_dir=None, graded=None, log=print):
    """Hand the feedback ``grade`` wrote under ``graded`` to the students who submitted.

    graded: the grading folder (``grade --out``; default ``<course dir>/graded``).
    Returns (returned, skipped): the students whose feedback was released, and
    {student: why not} for every other collected submission."""
    course_dir = _folder(course_dir)
    graded = Path(graded or course_dir / "graded").resolve()
    returned, skipped = [], {}
    for sub in sorted((course_dir / "submitted").glob(f"*/{assignment}")):
        student = sub.parent.name
        dest = course_dir / "feedback" / student / assignment
        shutil.rmtree(dest, ignore_errors=True)
        pages = sorted((graded / "feedback" / student / assignment).glob("*.html"))
        why = "" if pages else f"no feedback in {graded / 'feedback'} (see {graded / 'grades.csv'})"
        for page in pages:
            mine, theirs = graded / "submitted" / student / assignment, sub
            name = page.stem + ".ipynb"
            if not (mine / name).is_file() or not (theirs / name).is_file() or \
                    (mine / name).read_bytes() != (theirs / name).read_bytes():
                why = "collected again after it was graded: grade it again"
        for needed in ("timestamp.txt", "submission_secret.txt"):
            if not why and not (sub / needed).is_file():
                why = f"{sub / needed} is missing (not collected from the exchange?)"
        if why:
            skipped[student] = why
            continue
        dest.mkdir(parents=True)
        for path in [*pages, sub / "timestamp.txt", sub / "submission_secret.txt"]:
            shutil.copyfile(path, dest / path.name)
        returned.append(student)
    if returned:
        nbgrader("release_feedback", assignment, course_dir=course_dir, log=log)
    return returned, skipped


def cli(args):
    """``exchange-config``, ``release``, ``collect``, ``return`` (see ``python -m helpers``)."""
    try:
        if args.command == "exchange-config":
            path = configure(args.course_id, args.root, args.course_dir)
            print(f"wrote {path}")
        elif args.command == "release":
            release(args.assignment, args.course_dir, force=args.force)
            print(f"Released {args.assignment}: students run nbgrader fetch_assignment "
                  f"{args.assignment} (or the Assignments tab)")
        elif args.command == "collect":
            stamps = collect(args.assignment, args.course_dir)
            course_dir = _folder(args.course_dir)
            print(f"{len(stamps)} submission(s) of {args.assignment} in {course_dir / 'submitted'}")
            print(f"Grade them: python -m helpers grade {course_dir / 'submitted'} --out "
                  f"{course_dir / 'graded'} --assignment {args.assignment}")
        else:
            returned, skipped = return_feedback(args.assignment, args.course_dir, args.graded)
            print(f"Feedback released to {len(returned)} student(s): students run "
                  f"nbgrader fetch_feedback {args.assignment}")
            for student, why in skipped.items():
                print(f"  no feedback for {student}: {why}")
    except ExchangeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
