"""The instructor's side of the course: build the release, autograde, feedback, grades.

Everything here drives real nbgrader through its Python API, in one process.
Grading never writes into ``solutions/`` or ``notebooks/``: it works in a
git-ignored working folder (``grading/<name>/`` by default) laid out as an
nbgrader course::

    <work>/source/<assignment>/        copy of solutions/<assignment>/
    <work>/release/<assignment>/       generated from source (same as notebooks/)
    <work>/submitted/<student>/<assignment>/*.ipynb
    <work>/autograded/...  <work>/feedback/...  <work>/gradebook.db
    <work>/grades.csv                  one row per (student, assignment)
    <work>/cells.csv                   one row per (assignment, graded cell): who lost points, why

Submissions come as ``DIR/<student>/<assignment>/*.ipynb``. A malformed or
missing notebook is reported by student and file, and grading goes on.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
RELEASE = REPO / "notebooks"
WORK = REPO / "grading"

#: Per-cell execution limit (seconds) when a notebook's metadata does not set one.
DEFAULT_CELL_TIMEOUT = 60

_STUDENT_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def _tool_path():
    """Put this interpreter's ``bin/`` first on PATH: nbgrader runs ``alembic`` from there."""
    bindir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _kernel_environment():
    """Environment every grading kernel inherits: quiet TF, grading mode on."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ["COURSE_GRADING"] = "1"


# --------------------------------------------------------------------------- course


def assignments(solutions=SOLUTIONS):
    """Names of the assignments: folders ``solutions/<a>/`` holding ``<a>.ipynb``."""
    solutions = Path(solutions)
    if not solutions.is_dir():
        return []
    return sorted(p.name for p in solutions.iterdir()
                  if p.is_dir() and (p / f"{p.name}.ipynb").is_file())


def course_settings(assignment, solutions=SOLUTIONS):
    """The ``course`` metadata of an assignment's source notebook (dict).

    Known keys: ``cell_timeout`` (seconds per cell when autograding).
    """
    import nbformat
    nb = nbformat.read(Path(solutions) / assignment / f"{assignment}.ipynb", as_version=4)
    return dict(nb.metadata.get("course", {}))


def _api(root, source="source", release="release", db=None, timeout=DEFAULT_CELL_TIMEOUT,
         feedback=False, submitted="submitted", job_id=None, record=False):
    """An ``NbGraderAPI`` for the course folder ``root`` (quiet unless it fails).

    job_id: autograde through :class:`helpers.guarded.GuardedExecute` with the
      :class:`~helpers.guarded.Job` registered under that id (sandbox, limits, guard).
    record: autograde only records grades of already executed notebooks found in
      ``submitted`` (no kernel; what the parent does with the workers' results).
    """
    from traitlets.config import Config
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _tool_path()
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's SQLAlchemy chatter
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.source_directory = str(source)
    c.CourseDirectory.release_directory = str(release)
    c.CourseDirectory.submitted_directory = str(submitted)
    c.CourseDirectory.db_url = f"sqlite:///{db or Path(root) / 'gradebook.db'}"
    c.CourseDirectory.course_id = "course"
    c.Exchange.root = str(Path(root) / ".exchange")
    c.Execute.timeout = int(timeout)
    c.Execute.kernel_name = "python3"
    # Feedback must not show hidden tests, nor their code in tracebacks.
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTracebacks, ClearHiddenTests,
                                        CSSHTMLHeaderPreprocessor]
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                        LimitOutput, SaveAutoGrades)
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    if job_id is not None:
        from .guarded import GuardedExecute
        c.GuardedExecute.job_id = job_id
        c.Autograde.autograde_preprocessors = [GuardedExecute, IgnorePattern, ClearMetadataPreprocessor,
                                               LimitOutput, SaveAutoGrades, AssignLatePenalties,
                                               CheckCellMetadata]
    if record:
        c.Autograde.sanitize_preprocessors = []
        c.Autograde.autograde_preprocessors = [SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    coursedir = CourseDirectory(config=c)
    api = NbGraderAPI(coursedir=coursedir, config=c)
    api.log.setLevel(logging.ERROR if not os.environ.get("COURSE_GRADING_DEBUG") else logging.DEBUG)
    return api


def _check(result, what):
    if not result.get("success"):
        raise RuntimeError(f"{what} failed:\n{result.get('error') or result.get('log')}")
    return result


def build(names=None, release_dir=RELEASE, solutions=SOLUTIONS, log=print):
    """Generate the student release of each assignment from its source.

    names: assignment names (default: all in ``solutions/``).
    release_dir: where ``<assignment>/`` folders are written (``notebooks/``).
    Returns the list of assignments built.
    """
    names = list(names or assignments(solutions))
    release_dir = Path(release_dir).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        api = _api(Path(solutions).resolve().parent, source=Path(solutions).resolve(),
                   release=release_dir, db=Path(tmp) / "build.db")
        for name in names:
            t0 = time.perf_counter()
            _check(api.generate_assignment(name, force=True), f"building {name}")
            _normalise_release(release_dir / name)
            log(f"  built notebooks/{name}/  ({time.perf_counter() - t0:.1f} s)")
    return names


def _normalise_release(folder):
    """Write release notebooks in nbformat's canonical layout (stable diffs)."""
    import nbformat
    for path in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.write(nb, path)


# --------------------------------------------------------------------------- preprocessors

from nbgrader.preprocessors import NbGraderPreprocessor  # noqa: E402  (after helpers above)


class HideHiddenTracebacks(NbGraderPreprocessor):
    """In feedback, keep only ``Error: message`` for failures in hidden-test cells.

    A traceback would print the hidden test's source lines; the assertion
    message (written for the student) is kept.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and "BEGIN HIDDEN TESTS" in cell.source:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources


# --------------------------------------------------------------------------- grading


@dataclass
class Result:
    """The outcome of grading one student's assignment."""
    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"          # graded | incomplete | missing | malformed | error
    reason: str = ""
    seconds: float = 0.0
    failed_cells: list = field(default_factory=list)

    def row(self):
        return {"student": self.student, "assignment": self.assignment,
                "score": f"{self.score:g}", "max_score": f"{self.max_score:g}",
                "status": self.status, "reason": self.reason,
                "seconds": f"{self.seconds:.1f}"}


#: Submissions larger than this are not read (MB).
MAX_NOTEBOOK_MB = 50


def limits_for(assignment, solutions=SOLUTIONS, **overrides):
    """The sandbox :class:`~helpers.sandbox.Limits` of an assignment.

    From its source notebook's ``course`` metadata (``cell_timeout``,
    ``wall_timeout``, ``memory_mb``, ``cpu_seconds``, ``max_processes``,
    ``output_mb``), then ``overrides`` (None values ignored), else the defaults.
    """
    from .sandbox import Limits
    settings = course_settings(assignment, solutions)
    settings.setdefault("cell_timeout", DEFAULT_CELL_TIMEOUT)
    return Limits.from_settings(settings, **overrides)


def _grade_ids(nb):
    return {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}


def _validate_submission(folder, assignment, release_folder):
    """Return (ok, reason) for ``folder`` = ``<student>/<assignment>/``."""
    import nbformat
    expected = sorted(p.name for p in Path(release_folder).glob("*.ipynb"))
    problems = []
    for name in expected:
        path = Path(folder) / name
        if not path.is_file() or path.is_symlink():
            problems.append(f"missing notebook {name}")
            continue
        if path.stat().st_size > MAX_NOTEBOOK_MB * 2**20:
            problems.append(f"{name} is larger than {MAX_NOTEBOOK_MB} MB")
            continue
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # invalid JSON, wrong schema, unreadable
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(f"{name} is not a readable notebook ({first})")
            continue
        ids = _grade_ids(nb)
        if not ids:
            problems.append(f"{name} has no graded cells left (was it replaced or emptied?)")
            continue
        want = _grade_ids(nbformat.read(Path(release_folder) / name, as_version=4))
        if not ids & want:
            problems.append(f"{name} is not this assignment's notebook (none of its graded cells)")
    return (not problems), "; ".join(problems)


def _scores(api, assignment, student):
    """(score, max_score, failed_cells) from the gradebook."""
    with api.gradebook as gb:
        sub = gb.find_submission(assignment, student)
        failed = []
        for nb in sub.notebooks:
            for grade in nb.grades:
                if grade.max_score and (grade.score or 0) < grade.max_score:
                    failed.append(f"{nb.name}:{grade.name}")
        return float(sub.score or 0), float(sub.max_score or 0), failed


def _max_score(api, assignment):
    with api.gradebook as gb:
        return float(gb.find_assignment(assignment).max_score or 0)


def _source_guard_info(source_nb):
    """(import lines, builtin names the tests use) of a source notebook.

    The import lines (top-level ``import``/``from`` statements of every cell that
    is not a solution cell) are re-run before each test cell, so names such as
    ``np`` and ``checks`` are the real modules whatever the submission rebound.
    """
    import ast
    import builtins
    import nbformat
    nb = nbformat.read(source_nb, as_version=4)
    imports, names = [], set()
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("solution"):
            continue
        text = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imports.append(ast.unparse(node))
        if meta.get("grade"):
            names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                      and isinstance(n.ctx, ast.Load) and hasattr(builtins, n.id)}
    return "\n".join(dict.fromkeys(imports)), sorted(names)


def _prepare_template(work, name, solutions):
    """A one-assignment nbgrader course (gradebook + source files) for the workers."""
    tdir = Path(work) / "templates" / name
    shutil.rmtree(tdir, ignore_errors=True)
    shutil.copytree(Path(solutions) / name, tdir / "source" / name,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    api = _api(tdir)
    _check(api.generate_assignment(name, force=True), f"generating {name}")
    src = tdir / "source" / name
    files = {str(p.relative_to(src)): p.read_bytes() for p in sorted(src.rglob("*"))
             if p.is_file() and p.suffix != ".ipynb"}
    source_nb = src / f"{name}.ipynb"
    imports, names = _source_guard_info(source_nb)
    import hashlib
    digest = hashlib.sha256(source_nb.read_bytes())
    for rel in sorted(files):
        digest.update(rel.encode() + files[rel])
    return {"db": (tdir / "gradebook.db").read_bytes(), "files": files,
            "imports": imports, "names": names,
            "protect": list(course_settings(name, solutions).get("protect", [])),
            "source_hash": digest.hexdigest()}


def _job_threads():
    """Threads a kernel may use: this machine's cores shared by its grading slots."""
    cores = os.cpu_count() or 1
    try:
        from distributed import get_worker
        return max(1, cores // max(1, get_worker().state.nthreads))
    except Exception:  # noqa: BLE001 - not on a Dask worker
        return cores


def grade_job(payload):
    """Autograde one submission; the task that local workers and Dask workers run.

    payload: a dict of plain data (no paths of the caller's machine are needed):
    ``student``, ``assignment``, ``notebooks`` {name: bytes}, ``db`` (a template
    gradebook holding only this assignment), ``files`` (its other source files),
    ``limits`` (dict), ``sandbox``, ``guard``, ``feedback``, ``threads`` (0: auto),
    ``imports``, ``names``, ``protect``.
    Works in a private temporary course folder; only the kernel runs student code,
    inside the sandbox, and it never sees that folder. Returns a dict: status,
    reason, score, max_score, failed_cells, autograded/feedback {name: bytes}, seconds.
    """
    from .guarded import JOBS, Job, watchdog
    from .sandbox import Limits
    t0 = time.perf_counter()
    _tool_path()
    student, assignment = payload["student"], payload["assignment"]
    out = {"status": "graded", "reason": "", "score": 0.0, "max_score": 0.0,
           "failed_cells": [], "autograded": {}, "feedback": {}}
    tmp = Path(tempfile.mkdtemp(prefix="course-job-", dir=payload.get("scratch")))
    job_id = None
    try:
        root = tmp / "course"
        root.mkdir()
        (root / "gradebook.db").write_bytes(payload["db"])
        kernel_dir = tmp / "kernel-work"
        kernel_dir.mkdir()
        for rel, data in payload["files"].items():
            for base in (root / "source" / assignment, kernel_dir):
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
                (base / rel).write_bytes(data)
        (root / "source" / assignment).mkdir(parents=True, exist_ok=True)
        sub = root / "submitted" / student / assignment
        sub.mkdir(parents=True)
        for name, data in payload["notebooks"].items():
            (sub / name).write_bytes(data)
        runtime = tmp / "runtime"
        runtime.mkdir(mode=0o700)
        limits = Limits(**payload["limits"])
        job = Job(limits, kernel_dir, runtime, tmp / "kernel.log", sandbox=payload["sandbox"],
                  threads=payload.get("threads") or _job_threads(), imports=payload["imports"],
                  names=payload["names"], protect=payload["protect"], guard=payload.get("guard", True))
        job_id = uuid.uuid4().hex
        JOBS[job_id] = job
        api = _api(root, timeout=limits.cell_timeout, job_id=job_id)
        timer = watchdog(job, limits.wall_timeout)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                result = api.autograde(assignment, student, force=True)
        finally:
            timer.cancel()
            job.kill()
            job.cleanup()
        if not result.get("success"):
            if os.environ.get("COURSE_GRADING_DEBUG"):
                print(result.get("log"), file=sys.stderr)
            out["status"] = "error"
            out["reason"] = "; ".join([*job.notes, _last_line(result.get("error") or result.get("log")
                                                                or "autograde failed")])
            return out
        out["score"], out["max_score"], out["failed_cells"] = _scores(api, assignment, student)
        out["status"] = "incomplete" if job.stopped else "graded"
        out["reason"] = "; ".join(job.notes)
        graded = root / "autograded" / student / assignment
        out["autograded"] = {p.name: p.read_bytes() for p in sorted(graded.glob("*.ipynb"))}
        if payload.get("feedback", True):
            with contextlib.redirect_stdout(io.StringIO()):
                fb = api.generate_feedback(assignment, student, force=True)
            if fb.get("success"):
                out["feedback"] = {p.name: p.read_bytes() for p in
                                   sorted((root / "feedback" / student / assignment).glob("*.html"))}
            else:
                out["reason"] = "; ".join(filter(None, [out["reason"], "feedback failed: "
                                                        + _last_line(fb.get("error") or "")]))
        return out
    except Exception as exc:  # noqa: BLE001 - report, never stop the run
        out["status"], out["reason"] = "error", f"{type(exc).__name__}: {exc}"
        return out
    finally:
        if job_id:
            JOBS.pop(job_id, None)
        if os.environ.get("COURSE_GRADING_DEBUG") and (tmp / "kernel.log").exists():
            print("kernel log:\n" + (tmp / "kernel.log").read_text()[-3000:], file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        out["seconds"] = time.perf_counter() - t0


def _result_key(payload):
    import hashlib
    h = hashlib.sha256()
    for name in sorted(payload["notebooks"]):
        h.update(name.encode() + payload["notebooks"][name])
    h.update(json.dumps([payload["source_hash"], payload["limits"], payload["sandbox"],
                         payload.get("guard", True)], sort_keys=True).encode())
    return h.hexdigest()


def _run_jobs(payloads, on_result, workers=1, scheduler=None, _retry=True):
    """Run grade_job on every payload: in this process, a process pool, or a Dask cluster.

    on_result(payload, out) is called in this process as each one finishes
    (the one gradebook writer).
    """
    if not payloads:
        return
    if scheduler is not None:
        from distributed import Client, as_completed
        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            futures = {client.submit(grade_job, p, pure=False,
                                     key=f"grade-{p['student']}-{p['assignment']}-{uuid.uuid4().hex[:8]}"): p
                       for p in payloads}
            for fut in as_completed(futures):
                try:
                    out = fut.result()
                except Exception as exc:  # noqa: BLE001 - a worker died, a pickling error
                    out = {"status": "error", "reason": f"worker failed: {type(exc).__name__}: {exc}",
                           "score": 0.0, "max_score": 0.0, "failed_cells": [], "seconds": 0.0}
                on_result(futures[fut], out)
        finally:
            if client is not scheduler:
                client.close()
        return
    if workers <= 1:
        for p in payloads:
            on_result(p, grade_job(p))
        return
    import concurrent.futures as cf
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool
    broken = []
    with cf.ProcessPoolExecutor(max_workers=workers,
                                mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(grade_job, p): p for p in payloads}
        for fut in cf.as_completed(futures):
            try:
                out = fut.result()
            except BrokenProcessPool as exc:   # a worker process died: retry once, below
                if _retry:
                    broken.append(futures[fut])
                    continue
                out = {"status": "error", "reason": f"worker failed: {type(exc).__name__}: {exc}",
                       "score": 0.0, "max_score": 0.0, "failed_cells": [], "seconds": 0.0}
            except Exception as exc:  # noqa: BLE001
                out = {"status": "error", "reason": f"worker failed: {type(exc).__name__}: {exc}",
                       "score": 0.0, "max_score": 0.0, "failed_cells": [], "seconds": 0.0}
            on_result(futures[fut], out)
    if broken:
        _run_jobs(broken, on_result, workers=workers, _retry=False)


def grade(submissions, work=None, names=None, solutions=SOLUTIONS, feedback=True, log=print,
          workers=None, scheduler=None, sandbox=True, limits=None, regrade=False):
    """Autograde every ``<student>/<assignment>/`` folder under ``submissions``.

    submissions: folder of ``<student>/<assignment>/*.ipynb``.
    work: the grading folder (default ``grading/<name of submissions>``); it is
      created, and its source/release are refreshed from ``solutions``.
    names: assignments to grade (default: all in ``solutions/``).
    workers: submissions graded at once on this machine (default: its cores).
    scheduler: a Dask scheduler address (or ``distributed.Client``) to grade on a
      cluster instead; ``workers`` is then ignored.
    sandbox: run each kernel in the bubblewrap sandbox (default). Raises
      :class:`~helpers.sandbox.SandboxUnavailable` if it cannot start.
    limits: dict overriding every assignment's limits (e.g. ``{"wall_timeout": 20}``).
    regrade: grade everything again (default: reuse results of unchanged submissions).
    Returns a list of :class:`Result`, one per (student, assignment); also writes
    ``<work>/grades.csv``, the gradebook, feedback HTML under ``<work>/feedback/`` and
    ``<work>/cells.csv``, where the class lost points cell by cell (:mod:`helpers.item_analysis`).
    """
    from .sandbox import SandboxUnavailable, sandbox_problem
    submissions = Path(submissions).resolve()
    if not submissions.is_dir():
        raise FileNotFoundError(f"no submissions folder at {submissions}")
    work = Path(work or WORK / submissions.name).resolve()
    for forbidden in (Path(solutions).resolve(), RELEASE.resolve()):
        if work == forbidden or forbidden in work.parents or work in forbidden.parents:
            raise ValueError(f"grading folder {work} overlaps {forbidden}; choose another")
    from .sandbox import Cgroup
    Cgroup.sweep()
    if sandbox:
        problem = sandbox_problem()
        if problem:
            raise SandboxUnavailable(
                f"cannot grade safely: {problem}. Fix that, or pass --no-sandbox to run "
                "student code with your rights (only for code you trust).")
    else:
        log("WARNING: --no-sandbox: student code runs with your rights and can read "
            "solutions/, the gradebook and other submissions.")
    names = list(names or assignments(solutions))
    workers = int(workers or os.cpu_count() or 1)
    _kernel_environment()
    work.mkdir(parents=True, exist_ok=True)
    where = f"the Dask cluster at {scheduler}" if scheduler is not None else f"{workers} worker(s)"
    log(f"Grading {submissions} in {work} on {where}" + ("" if sandbox else " (no sandbox)"))

    # 1. Fresh source and release for each assignment, in the grading folder.
    for name in names:
        shutil.rmtree(work / "source" / name, ignore_errors=True)
        shutil.copytree(Path(solutions) / name, work / "source" / name,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    api = _api(work)
    for name in names:
        _check(api.generate_assignment(name, force=True), f"generating {name}")
    templates = {name: _prepare_template(work, name, solutions) for name in names}
    lims = {name: limits_for(name, solutions, **(limits or {})).as_dict() for name in names}
    maxes = {name: _max_score(api, name) for name in names}
    rec = _api(work, submitted="staged", record=True)

    # 2. Validate; reuse finished results; queue the rest.
    students = sorted(p.name for p in submissions.iterdir()
                      if p.is_dir() and not p.name.startswith("."))
    jobs = [(s, a) for s in students for a in names]
    results, payloads = {}, []
    for student, assignment in jobs:
        res = Result(student, assignment, max_score=maxes[assignment])
        src = submissions / student / assignment
        if not _STUDENT_ID.match(student):
            res.status, res.reason = "error", f"student folder name {student!r} is not a valid id"
        elif not src.is_dir():
            res.status, res.reason = "missing", f"no folder {student}/{assignment}/"
        else:
            ok, reason = _validate_submission(src, assignment, work / "release" / assignment)
            if not ok:
                res.status, res.reason = "malformed", reason
        if res.status != "graded":
            if res.status == "malformed":
                _supersede(work, rec, student, assignment, "is malformed", log)
            results[(student, assignment)] = res
            continue
        nbs = {p.name: (src / p.name).read_bytes()
               for p in sorted((work / "release" / assignment).glob("*.ipynb"))}
        t = templates[assignment]
        payload = {"student": student, "assignment": assignment, "notebooks": nbs,
                   "db": t["db"], "files": t["files"], "imports": t["imports"],
                   "names": t["names"], "protect": t["protect"], "source_hash": t["source_hash"],
                   "limits": lims[assignment], "sandbox": bool(sandbox), "guard": True,
                   "feedback": feedback,
                   "threads": 0 if scheduler is not None else max(1, (os.cpu_count() or 1) // workers)}
        payload["key"] = _result_key(payload)
        done = None if regrade else _load_done(work, rec, student, assignment, payload["key"])
        if done is not None:
            results[(student, assignment)] = done
        else:
            payloads.append(payload)
    reused = sum(1 for r in results.values() if r.status in ("graded", "incomplete"))
    if reused:
        log(f"  {reused} submission(s) already graded and unchanged: kept (regrade to redo)")
    total, count = len(payloads), [0]

    def on_result(p, out):
        res = _record(work, rec, p, out, log)
        results[(res.student, res.assignment)] = res
        count[0] += 1
        mark = f"{res.score:g}/{res.max_score:g}"
        extra = f"  [{res.status}: {res.reason}]" if res.reason or res.status != "graded" else ""
        log(f"  [{count[0]}/{total}] {res.student} / {res.assignment}: {mark}  ({res.seconds:.1f} s){extra}")

    _run_jobs(payloads, on_result, workers=workers, scheduler=scheduler)
    ordered = [results[j] for j in jobs]
    write_csv(ordered, work / "grades.csv")
    from .item_analysis import analyse, write_cells_csv
    write_cells_csv(analyse(work, ordered, log=log), work / "cells.csv")
    return ordered


def _result_path(work, student, assignment):
    return Path(work) / "results" / student / f"{assignment}.json"


def _load_done(work, rec, student, assignment, key):
    """The saved Result of an unchanged, recorded submission, else None."""
    path = _result_path(work, student, assignment)
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("key") != key:
        return None
    try:   # the gradebook must hold it too (a run killed between the two writes)
        score, _, _ = _scores(rec, assignment, student)
    except Exception:  # noqa: BLE001 - MissingEntry
        return None
    res = Result(**{k: saved[k] for k in ("student", "assignment", "score", "max_score", "status",
                                          "reason", "seconds", "failed_cells")})
    return res if abs(score - res.score) < 1e-9 else None


def _record(work, rec, payload, out, log=print):
    """Write one worker's result: gradebook (via nbgrader), files, result JSON. Parent only."""
    student, assignment = payload["student"], payload["assignment"]
    if not out.get("autograded"):    # not graded: an earlier grade must not stand for it
        _supersede(work, rec, student, assignment, "could not be graded", log)
    res = Result(student, assignment, score=0.0, max_score=out.get("max_score") or 0.0,
                 status=out.get("status", "error"), reason=out.get("reason", ""),
                 seconds=out.get("seconds", 0.0))
    dest = Path(work) / "submitted" / student / assignment
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name, data in payload["notebooks"].items():
        (dest / name).write_bytes(data)
    if out.get("autograded"):
        staged = Path(work) / "staged" / student / assignment
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        for name, data in out["autograded"].items():
            (staged / name).write_bytes(data)
        with contextlib.redirect_stdout(io.StringIO()):
            r = rec.autograde(assignment, student, force=True)
        if not r.get("success"):
            res.status = "error"
            res.reason = "; ".join(filter(None, [res.reason, "recording failed: " + _last_line(
                r.get("error") or r.get("log") or "")]))
        else:
            res.score, res.max_score, res.failed_cells = _scores(rec, assignment, student)
        fb = Path(work) / "feedback" / student / assignment
        shutil.rmtree(fb, ignore_errors=True)
        if out.get("feedback"):
            fb.mkdir(parents=True)
            for name, data in out["feedback"].items():
                (fb / name).write_bytes(data)
    if not res.max_score:
        res.max_score = _max_score(rec, assignment)
    path = _result_path(work, student, assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**res.__dict__, "key": payload["key"]}))
    os.replace(tmp, path)
    return res


def _supersede(work, rec, student, assignment, why, log):
    """Move an earlier graded submission aside when the student's new one is malformed or
    could not be graded (``why`` says which).

    Otherwise the gradebook and the feedback page would still show the old grade while
    grades.csv says "malformed" or "error". Nothing is deleted: the earlier notebook, its
    autograded copy, feedback and result go to
    ``<work>/superseded/<student>/<assignment>/<time>/``, and its entry leaves the gradebook.
    Returns that folder, or None if there was no earlier grade.
    """
    from nbgrader.api import MissingEntry
    work = Path(work)
    old = {part: work / part / student / assignment
           for part in ("submitted", "staged", "autograded", "feedback")}
    old["result.json"] = _result_path(work, student, assignment)
    with rec.gradebook as gb:
        try:
            score = gb.find_submission(assignment, student).score or 0
            gb.remove_submission(assignment, student)
        except MissingEntry:
            return None                  # never graded: nothing stands for the new one
    dest = work / "superseded" / student / assignment / time.strftime("%Y%m%d-%H%M%S")
    dest.mkdir(parents=True, exist_ok=True)
    for name, path in old.items():
        if path.exists():
            shutil.move(str(path), str(dest / name))
    log(f"  {student}/{assignment}: the new submission {why}; the earlier graded one "
        f"({score:g} points) was moved to {dest}")
    return dest


def _last_line(text):
    lines = [l for l in str(text).strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


def write_csv(results, path):
    """Write one row per result: student, assignment, score, max_score, status, reason."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(Result("", "").row()))
        writer.writeheader()
        for r in results:
            writer.writerow(r.row())
    return path


def gradebook_table(results):
    """A plain-text table: one row per student, one column per assignment."""
    students = sorted({r.student for r in results})
    names = sorted({r.assignment for r in results})
    by = {(r.student, r.assignment): r for r in results}
    cells = [["student", *names, "total"]]
    for s in students:
        row, total, top = [s], 0.0, 0.0
        for a in names:
            r = by.get((s, a))
            if r is None:
                row.append("-")
                continue
            total, top = total + r.score, top + r.max_score
            row.append(f"{r.score:g}/{r.max_score:g}" + ("" if r.status == "graded" else " !"))
        row.append(f"{total:g}/{top:g}")
        cells.append(row)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(results):
    """Lines naming every submission that was not graded cleanly, and why."""
    lines = []
    for r in results:
        if r.status != "graded" or r.reason:
            lines.append(f"{r.student}/{r.assignment}: {r.status}: {r.reason}")
    return lines


# --------------------------------------------------------------------------- demo


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
