"""Jobs: grade one submission in a private course folder (``grade_job``), and run many
of them in this process, a process pool or on a Dask cluster (``run_jobs``).

A job takes and returns plain data (bytes, dicts), so it runs the same anywhere.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from . import leftovers
from .course import _api, _check, _last_line, _scores, _tool_path, course_settings

def _source_guard_info(source_nb, trusted=()):
    """(import lines, builtin names the tests use) of a source notebook.

    The import lines (top-level ``import``/``from`` statements of every cell that
    is not a solution cell) are re-run in the student's kernel before each test cell
    that runs there, so names such as ``np`` and ``checks`` are the real modules
    whatever the submission rebound. Not taken: the lines of test cells the judge runs
    (their grade_ids in ``trusted``; they never run in the student's kernel) and imports
    of the grading machinery, which the student's sandbox does not hold.
    """
    import ast
    import builtins
    import nbformat
    nb = nbformat.read(source_nb, as_version=4)
    imports, names = [], set()
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("solution") or meta.get("grade_id") in trusted:
            continue
        text = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not _imports_grading(node):
                imports.append(ast.unparse(node))
        if meta.get("grade"):
            names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                      and isinstance(n.ctx, ast.Load) and hasattr(builtins, n.id)}
    return "\n".join(dict.fromkeys(imports)), sorted(names)


def _imports_grading(node):
    """Whether an import statement reaches the grading machinery (:data:`.sandbox.GRADER_ONLY`,
    hidden from the student's kernel, or ``helpers.__main__``, which imports it)."""
    import ast

    from .sandbox import GRADER_ONLY
    modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
        [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
    return any(m == p or m.startswith(p + ".") for m in modules for p in (*GRADER_ONLY, "helpers.__main__"))


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
    import nbformat
    from .judge import trusted_cells
    trusted = trusted_cells(nbformat.read(source_nb, as_version=4))
    imports, names = _source_guard_info(source_nb, trusted)
    import hashlib
    digest = hashlib.sha256(source_nb.read_bytes())
    for rel in sorted(files):
        digest.update(rel.encode() + files[rel])
    return {"db": (tdir / "gradebook.db").read_bytes(), "files": files, "trusted": trusted,
            "imports": imports, "names": names,
            "protect": list(course_settings(name, solutions).get("protect", [])),
            "source_hash": digest.hexdigest()}


def _host(address):
    """The host of a Dask address (``tcp://10.0.0.5:8786`` -> ``10.0.0.5``)."""
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


def _slots_by_host(client):
    """{host: the Dask threads of all its workers}: the grading slots each machine runs at
    once (``dask worker --nworkers 4 --nthreads 1`` is four on one host)."""
    slots = {}
    try:
        workers = client.scheduler_info()["workers"]
    except Exception:  # noqa: BLE001 - then each worker counts its own threads only
        return slots
    for address, info in workers.items():
        host = info.get("host") or _host(address)
        slots[host] = slots.get(host, 0) + int(info.get("nthreads") or 1)
    return slots


def _job_threads(host_slots=None):
    """Threads a kernel may use: this machine's cores shared by its grading slots.

    host_slots: {host: slots} of the Dask cluster (:func:`_slots_by_host`); a worker not in
    it counts its own threads only."""
    cores = os.cpu_count() or 1
    try:
        from distributed import get_worker
        worker = get_worker()
    except Exception:  # noqa: BLE001 - not on a Dask worker
        return cores
    slots = (host_slots or {}).get(_host(worker.address)) or worker.state.nthreads
    return max(1, cores // max(1, slots))


def grade_job(payload):
    """Autograde one submission; the task that local workers and Dask workers run.

    payload: a dict of plain data (no paths of the caller's machine are needed):
    ``student``, ``assignment``, ``notebooks`` {name: bytes}, ``db`` (a template
    gradebook holding only this assignment), ``files`` (its other source files),
    ``limits`` (dict), ``sandbox``, ``guard``, ``feedback``, ``threads`` (0: auto, with
    ``host_slots`` on Dask: :func:`_job_threads`),
    ``imports``, ``names``, ``protect``, ``trusted``, ``draws`` (the key of the judge's
    draws, :mod:`helpers.grading.draws`; "" for fresh ones) and ``draws_fingerprint``.
    Works in a private temporary course folder; only the kernel runs student code,
    inside the sandbox, and it never sees that folder. Returns a dict: status,
    reason, score, max_score, failed_cells, autograded/feedback {name: bytes}, seconds.
    """
    from .execute import JOBS, Job, watchdog
    from .sandbox import Limits
    t0 = time.perf_counter()
    _tool_path()
    student, assignment = payload["student"], payload["assignment"]
    out = {"status": "graded", "reason": "", "score": 0.0, "max_score": 0.0,
           "failed_cells": [], "autograded": {}, "feedback": {}}
    leftovers.sweep_once(payload.get("scratch"))     # folders of killed graders before us
    tmp = Path(tempfile.mkdtemp(prefix=leftovers.prefix("job"), dir=payload.get("scratch")))
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
                  threads=payload.get("threads") or _job_threads(payload.get("host_slots")),
                  imports=payload["imports"],
                  names=payload["names"], protect=payload["protect"], guard=payload.get("guard", True),
                  trusted=payload.get("trusted"), draws=payload.get("draws", ""))
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


_CODE = {}


def grader_code_digest(repo=None):
    """SHA-256 of the course code and data that grading runs (``helpers/**/*.py``,
    ``data/expected/`` and the stored runs in ``helpers/grading/stored/``), read once per
    process: part of every result's key, so that results
    graded by an older grader (or older expected values) are graded again, not reused."""
    import hashlib
    from .sandbox import REPO
    repo = Path(repo or REPO)
    if repo not in _CODE:
        h = hashlib.sha256()
        files = sorted([*(repo / "helpers").rglob("*.py"),
                        *(p for d in (repo / "data" / "expected", repo / "helpers" / "grading" / "stored")
                          for p in d.rglob("*") if p.is_file())])
        for path in files:
            h.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
        _CODE[repo] = h.hexdigest()
    return _CODE[repo]


def _result_key(payload):
    import hashlib
    h = hashlib.sha256()
    for name in sorted(payload["notebooks"]):
        h.update(name.encode() + payload["notebooks"][name])
    h.update(json.dumps([payload["source_hash"], payload["limits"], payload["sandbox"],
                         payload.get("guard", True), grader_code_digest(), payload.get("draws_fingerprint", "")],
                        sort_keys=True).encode())
    return h.hexdigest()


def _run_jobs(payloads, on_result, workers=1, scheduler=None, _retry=True):
    """Run grade_job on every payload, in the order given: in this process, a process pool,
    or a Dask cluster.

    on_result(payload, out) is called in this process as each one finishes
    (the one gradebook writer).
    """
    if not payloads:
        return
    if scheduler is not None:
        from distributed import Client, as_completed
        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            # Each kernel's threads: its machine's cores shared by all the grading slots there
            # (every worker process on it), not only its own worker's.
            slots = _slots_by_host(client)
            payloads = [dict(p, host_slots=slots) for p in payloads]
            # Dask runs the highest priority first: the order given (longest expected first).
            futures = {client.submit(grade_job, p, pure=False, priority=len(payloads) - i,
                                     key=f"grade-{p['student']}-{p['assignment']}-{uuid.uuid4().hex[:8]}"): p
                       for i, p in enumerate(payloads)}
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


