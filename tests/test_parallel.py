"""Parallel, resumable and distributed grading give the scores a sequential run gives.

12 cheap submissions of conv_1x1 (four kinds: correct, blank, a wrong answer that
scores 0, a half-right one that scores 1: a 1x1 convolution without a bias) are graded
with 2 workers; that run is killed part way and started again, which must grade only what is missing. Every
score is compared with a sequential (1 worker) run of one submission of each kind,
and a real ``distributed.LocalCluster`` with 2 workers grades one of each kind too.
"""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from helpers import grading
from helpers.grading.sandbox import sandbox_problem

REPO = Path(__file__).resolve().parent.parent
A = "conv_1x1"
pytestmark = pytest.mark.skipif(sandbox_problem() is not None,
                                reason=f"sandbox unavailable: {sandbox_problem()}")

WRONG = '''
def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    import numpy as np
    x = np.asarray(x)
    return np.zeros(x.shape[:-1] + (num_outputs,), "float32")
'''
HALF = '''
def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    import keras                 # a 1x1 convolution (one pixel at a time), but no bias
    return keras.layers.Conv2D(num_outputs, 1, use_bias=False,
                               kernel_initializer=kernel_initializer)(x)
'''
KINDS = ["correct", "blank", "wrong", "half"]
#: Submissions of the killed and resumed run (three of each kind).
N = 12


def _notebook(kind):
    if kind == "correct":
        return nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4)
    nb = nbformat.read(REPO / "notebooks" / A / f"{A}.ipynb", as_version=4)
    if kind in ("wrong", "half"):
        for c in nb.cells:
            if c.get("metadata", {}).get("nbgrader", {}).get("solution"):
                c.source = (WRONG if kind == "wrong" else HALF).strip() + "\n"
    return nb


def _write(folder, students):
    for student, kind in students.items():
        dest = folder / student / A
        dest.mkdir(parents=True)
        nbformat.write(_notebook(kind), dest / f"{A}.ipynb")
    return folder


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """Score of each kind, graded one at a time (1 worker)."""
    base = tmp_path_factory.mktemp("seq")
    subs = _write(base / "subs", {f"one_{k}": k for k in KINDS})
    results = grading.grade(subs, work=base / "work", names=[A], workers=1, feedback=False,
                            log=lambda *_: None)
    scores = {r.student[4:]: r.score for r in results}
    assert all(r.status == "graded" for r in results), [r.row() for r in results]
    assert scores["correct"] == 3 and scores["blank"] == 0 and scores["wrong"] == 0
    assert scores["half"] == 1
    return scores


def test_killed_parallel_run_resumes_and_matches_sequential(tmp_path, sequential):
    students = {f"s{i:02d}": KINDS[i % 4] for i in range(N)}
    subs = _write(tmp_path / "subs", students)
    work = tmp_path / "work"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "helpers", "grade", str(subs), "--out", str(work),
                             "--workers", "2", "--assignment", A, "--no-feedback"],
                            cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        if len(list((work / "results").glob("*/*.json"))) >= 4:
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)        # the grader, its workers and their kernels
    proc.wait()
    done_before = len(list((work / "results").glob("*/*.json")))
    assert 4 <= done_before < N

    lines = []
    results = grading.grade(subs, work=work, names=[A], workers=2, feedback=False, log=lines.append)
    graded_now = [l for l in lines if l.strip().startswith("[")]
    assert len(graded_now) == N - done_before, lines
    assert any(f"{done_before} submission(s) already graded" in l for l in lines), lines
    assert len(results) == N
    for r in results:
        assert r.status == "graded", r.row()
        assert r.score == sequential[students[r.student]], (r.student, students[r.student], r.score)
    # The gradebook holds exactly these N grades, the CSV too.
    api = grading._api(work)
    with api.gradebook as gb:
        subs_in_db = {(s.student.id, s.score) for s in gb.assignment_submissions(A)}
    assert subs_in_db == {(r.student, r.score) for r in results}
    rows = list(csv.DictReader(open(work / "grades.csv")))
    assert {(row["student"], float(row["score"])) for row in rows} == subs_in_db


def test_dask_local_cluster_matches_sequential(tmp_path, sequential):
    distributed = pytest.importorskip("distributed")
    subs = _write(tmp_path / "subs", {f"d_{k}": k for k in KINDS})
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        lines = []
        results = grading.grade(subs, work=tmp_path / "work", names=[A], feedback=False,
                                scheduler=cluster.scheduler_address, log=lines.append)
    assert any("Dask cluster" in l for l in lines)
    for r in results:
        assert r.status == "graded", r.row()
        assert r.score == sequential[r.student[2:]], r.row()


def test_results_graded_by_another_grader_are_graded_again(tmp_path, monkeypatch):
    """A result is reused only when the grader is the same: its key holds a digest of the
    course code (helpers/**/*.py) and expected values (data/expected/), so a course update
    regrades what an older grader graded, without --regrade."""
    from helpers.grading import jobs
    (tmp_path / "helpers").mkdir()
    (tmp_path / "data" / "expected").mkdir(parents=True)
    (tmp_path / "helpers" / "checks.py").write_text("TOL = 1e-6\n")
    (tmp_path / "data" / "expected" / "x.json").write_text("{}")
    digests = [jobs.grader_code_digest(tmp_path)]
    for path, text in (("helpers/checks.py", "TOL = 1e-3\n"), ("data/expected/x.json", '{"a": 1}')):
        (tmp_path / path).write_text(text)
        jobs._CODE.pop(tmp_path)
        digests.append(jobs.grader_code_digest(tmp_path))
    assert len(set(digests)) == 3
    payload = {"notebooks": {"a.ipynb": b"{}"}, "source_hash": "s", "limits": {}, "sandbox": True}
    keys = set()
    for digest in digests:
        monkeypatch.setattr(jobs, "grader_code_digest", lambda d=digest: d)
        keys.add(jobs._result_key(payload))
    assert len(keys) == 3


def test_dask_kernels_share_their_machine_s_cores():
    """Two worker processes on one machine: each kernel gets half its cores, not all of them
    (all of them each had the two kernels of a 2-core LocalCluster fight for the cores)."""
    distributed = pytest.importorskip("distributed")
    from helpers.grading import jobs
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        slots = jobs._slots_by_host(client)
        threads = client.gather([client.submit(jobs._job_threads, slots, pure=False) for _ in range(4)])
        alone = client.submit(jobs._job_threads, None, pure=False).result()
    cores = os.cpu_count() or 1
    assert list(slots.values()) == [2], slots
    assert threads == [max(1, cores // 2)] * 4
    assert alone == cores            # a worker that knows only its own thread
