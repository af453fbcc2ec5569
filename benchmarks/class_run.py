"""Class-scale grading: N synthetic students x the assignments, graded three ways (#20).

    .venv/bin/python benchmarks/class_run.py                       # 40 students x all 8 (hours)
    .venv/bin/python benchmarks/class_run.py --students 4 --assignments conv_1x1 cnn_building_blocks
    .venv/bin/python benchmarks/class_run.py --modes w1 w2 --out /tmp/class-run

The class: for each assignment, independently and deterministically (``--seed``), 50% of
the students hand in the reference solution, 20% the untouched release (blank) and 30% a
single-mistake or other-style submission from the student corpus
(``tests/students/<assignment>/*.py``, built by ``tests/students/corpus.py``), the cases
taken round-robin from a seeded start. Counts are rounded by largest remainder, so 4 students give 2
reference, 1 blank, 1 corpus case per assignment. ``gans`` corpus cases are used too
(its ``SKIP_GRADING`` only keeps them out of the test suite: one gans submission trains
three GANs, 11+ minutes). Submissions are written once under ``OUT/submissions`` (with
``OUT/class.csv`` saying who handed in what) and graded by the real
``helpers.grading.grade`` (sandbox on, feedback on, ``regrade``) in a fresh work folder
per mode:

    w1    ``--workers 1``
    w2    ``--workers 2``
    dask  a ``distributed.LocalCluster`` (2 worker processes, 1 thread each) passed as
          ``scheduler=`` (its address, as ``--scheduler`` does)
    w1t1  ``--workers 1 --threads 1`` (not run unless named): with one worker a kernel
          gets all the cores' threads, so w1 -> w2 mixes the workers' scaling with the
          kernels' own; w1t1 -> w2 is the workers' alone

Printed: one progress line per finished submission, then per mode the wall seconds,
submissions per hour and CPU-seconds per submission; per assignment the CPU-seconds per
submission (next to the ``grading_seconds`` the course metadata states: the reference's
figure there orders the queue, longest first); the speed-up from w1 to w2 (goal >= 1.8x) and the Dask overhead against w2;
and whether all modes gave every submission the same score.

How CPU is measured (:class:`CpuMeter`, the method is printed): as root, this process
moves itself into a fresh cgroup v1 ``cpuacct`` group that every process it then starts
inherits (process-pool workers, Dask workers, the sandboxed kernels), and reads
``cpuacct.usage``; elsewhere ``getrusage`` of this process and its reaped children,
which can miss kernels killed inside bwrap's PID namespace (nobody of ours reaps them).
Per mode: the delta over the whole mode (for dask: from starting the cluster to closing
it) divided by the submissions graded. Per submission and assignment: in mode w1 only,
where each submission runs in this process, the delta around each ``grade_job`` call
(the grader's nbgrader work plus its kernel). Not a test: numbers only; they depend on
the machine and its load.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODES = ("w1", "w2", "dask", "w1t1")
#: Run unless --modes says otherwise.
DEFAULT_MODES = ("w1", "w2", "dask")
#: share of the class per kind of submission (per assignment)
MIX = (("reference", 0.5), ("blank", 0.2), ("corpus", 0.3))


def _counts(n, mix=MIX):
    """Students per kind for a class of n: shares rounded by largest remainder."""
    raw = [(kind, n * share) for kind, share in mix]
    counts = {kind: int(x) for kind, x in raw}
    left = n - sum(counts.values())
    for kind, x in sorted(raw, key=lambda kx: (-(kx[1] - int(kx[1])), [k for k, _ in mix].index(kx[0])))[:left]:
        counts[kind] += 1
    return counts


def plan_class(n, names, seed=0, corpus_root=None, mix=MIX):
    """Who hands in what: a list of (student, assignment, kind, case) rows, kind one of
    reference / blank / corpus (case: the corpus case name, else ""). Deterministic."""
    from tests.students import corpus
    root = Path(corpus_root or corpus.HERE)
    rows = []
    students = [f"student{i:03d}" for i in range(n)]
    counts = _counts(n, mix)
    for a_index, name in enumerate(names):
        kinds = [k for k, _ in mix for _ in range(counts[k])]
        random.Random(f"{seed}:{name}").shuffle(kinds)
        cases = [p.stem for p in corpus.case_files(name, root)] if (root / name).is_dir() else []
        turn = random.Random(f"{seed}:{name}:cases").randrange(len(cases)) if cases else 0
        for student, kind in zip(students, kinds):
            case = ""
            if kind == "corpus":
                if cases:
                    case = cases[turn % len(cases)]
                    turn += 1
                else:               # no corpus for this assignment: a blank instead
                    kind = "blank"
            rows.append((student, name, kind, case))
    return rows


def build_class(folder, n, names, seed=0, solutions=None, release=None, corpus_root=None, mix=MIX):
    """Write the class under ``folder``: ``<student>/<assignment>/<assignment>.ipynb``, and
    ``folder/../class.csv``. Returns the plan (see :func:`plan_class`). A corpus case
    that cannot be built (malformed) is replaced by the reference, and says so in the CSV."""
    import nbformat
    from helpers import grading
    from tests.students import corpus
    solutions = Path(solutions or grading.SOLUTIONS)
    release = Path(release or grading.RELEASE)
    root = Path(corpus_root or corpus.HERE)
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    plan, built = [], {}
    for student, name, kind, case in plan_class(n, names, seed, root, mix):
        dest = folder / student / name
        dest.mkdir(parents=True)
        if kind == "corpus":
            if (name, case) not in built:
                try:
                    built[(name, case)] = corpus.build_submission(
                        corpus.load_case(root / name / f"{case}.py", name), solutions)
                except corpus.CaseError as exc:
                    print(f"  corpus case {name}/{case} unusable ({exc}); reference instead", flush=True)
                    built[(name, case)] = None
            nb = built[(name, case)]
            if nb is None:
                kind, case = "reference", f"(unusable case {case})"
            else:
                nbformat.write(nb, dest / f"{name}.ipynb")
        if kind in ("reference", "blank"):
            side = solutions if kind == "reference" else release
            for src in sorted((side / name).glob("*.ipynb")):
                shutil.copy2(src, dest / src.name)
        plan.append((student, name, kind, case))
    with open(folder.parent / "class.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "assignment", "kind", "case"])
        w.writerows(plan)
    return plan


def _rusage_cpu():
    """CPU seconds (user + system) of this process and its reaped descendants."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class CpuMeter:
    """CPU seconds used by this process and everything it starts from now on.

    Where the v1 ``cpuacct`` controller is writable (root, as the grader's own cgroups
    need), this process moves into a fresh ``cpuacct`` cgroup of its own, which every
    later descendant inherits (pool workers, Dask workers, sandboxed kernels: the grader
    moves kernels only in the ``pids`` and ``memory`` hierarchies), and ``cpuacct.usage``
    is read. Otherwise: ``getrusage`` of this process and its reaped children, which
    misses a descendant nobody reaps (a kernel killed inside bwrap's PID namespace is
    reaped by init, not by us), so it may undercount.
    """

    def __init__(self):
        self.method, self.dir, self.home = "getrusage (self + reaped children)", None, None
        try:
            own = next(line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
                       if "cpuacct" in line.split(":", 2)[1].split(","))
            root = Path("/sys/fs/cgroup/cpuacct")
            if not (root / "cpuacct.usage").exists():
                root = Path("/sys/fs/cgroup/cpu,cpuacct")
            self.home = root / own.lstrip("/")
            d = self.home / f"class-run-{os.getpid()}"
            d.mkdir()
            try:
                (d / "cgroup.procs").write_text(str(os.getpid()))
            except OSError:
                d.rmdir()
                raise
            self.dir, self.method = d, f"cgroup v1 cpuacct.usage ({d})"
        except (OSError, StopIteration, IndexError):
            self.dir = None

    def __call__(self):
        if self.dir is None:
            return _rusage_cpu()
        return int((self.dir / "cpuacct.usage").read_text()) / 1e9

    def close(self):
        if self.dir is None:
            return
        # Out go this process and what is left of its descendants (multiprocessing's
        # resource tracker lives until this process exits; a Dask worker may still be
        # shutting down): the group only measures, and only our descendants are in it.
        for _ in range(50):
            try:
                left = (self.dir / "cgroup.procs").read_text().split()
            except OSError:
                left = []
            for pid in left:
                try:
                    (self.home / "cgroup.procs").write_text(pid)
                except OSError:
                    pass
            try:
                self.dir.rmdir()
                break
            except OSError:
                time.sleep(0.2)
        else:
            print(f"note: could not remove {self.dir}", flush=True)
        self.dir = None


_cpu = _rusage_cpu                     # replaced by a CpuMeter in main()


@contextlib.contextmanager
def _cpu_per_job(record):
    """In mode w1 (jobs run in this process): CPU seconds around each grade_job call,
    recorded as record[(student, assignment)]."""
    from helpers.grading import jobs
    real = jobs.grade_job

    def timed(payload):
        c0 = _cpu()
        try:
            return real(payload)
        finally:
            record[(payload["student"], payload["assignment"])] = _cpu() - c0

    jobs.grade_job = timed
    try:
        yield
    finally:
        jobs.grade_job = real


def run_mode(mode, subs, work, names):
    """Grade the class once in ``mode``. Returns a dict: wall (grade call), cpu (whole
    mode), startup (dask cluster start), results, per_job_cpu (w1 only)."""
    from helpers import grading
    shutil.rmtree(work, ignore_errors=True)

    def log(line):
        print(f"[{mode}] {line}", flush=True)

    kw = dict(work=work, names=names, feedback=True, regrade=True, log=log)
    per_job, startup = {}, 0.0
    c0 = _cpu()
    if mode == "dask":
        from distributed import LocalCluster
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        startup = time.perf_counter() - t0
        log(f"LocalCluster at {cluster.scheduler_address} started in {startup:.1f} s")
        try:
            t0 = time.perf_counter()
            results = grading.grade(subs, scheduler=cluster.scheduler_address, **kw)
            wall = time.perf_counter() - t0
        finally:
            cluster.close()
    else:
        workers = {"w1": 1, "w2": 2, "w1t1": 1}[mode]
        threads = 1 if mode == "w1t1" else None
        ctx = _cpu_per_job(per_job) if mode == "w1" else contextlib.nullcontext()
        with ctx:
            t0 = time.perf_counter()
            results = grading.grade(subs, workers=workers, threads=threads, **kw)
            wall = time.perf_counter() - t0
    return {"wall": wall, "cpu": _cpu() - c0, "startup": startup, "results": results,
            "per_job_cpu": per_job}


def report(plan, runs, names, n_students):
    from helpers import grading
    kind_of = {(s, a): k for s, a, k, _ in plan}
    n = len(plan)
    print()
    print(f"CPU: {getattr(_cpu, 'method', 'getrusage (self + reaped children)')}")
    print(f"Class run: {n_students} students x {len(names)} assignment(s) = {n} submissions; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    kinds = {k: sum(1 for row in plan if row[2] == k) for k, _ in MIX}
    print("mix: " + ", ".join(f"{v} {k}" for k, v in kinds.items()))
    print()
    print(f"{'mode':6} {'wall s':>8} {'subs/hour':>10} {'CPU s':>8} {'CPU s/sub':>10} "
          f"{'graded':>7} {'full':>5}  note")
    for mode, r in runs.items():
        graded = sum(x.status in ("graded", "incomplete") for x in r["results"])
        full = sum(x.score == x.max_score and x.max_score > 0 for x in r["results"])
        note = f"cluster start {r['startup']:.1f} s not in wall" if mode == "dask" else ""
        print(f"{mode:6} {r['wall']:8.1f} {3600 * n / r['wall']:10.1f} {r['cpu']:8.1f} "
              f"{r['cpu'] / n:10.1f} {graded:>4d}/{n:<3d}{full:>4d}  {note}")
    if "w1" in runs and runs["w1"]["per_job_cpu"]:
        per_job = runs["w1"]["per_job_cpu"]
        secs = {(x.student, x.assignment): x.seconds for x in runs["w1"]["results"]}
        print()
        print("per assignment, mode w1 (CPU of the grade_job call and its kernel; wall of the job):")
        print(f"{'assignment':22} {'subs':>5} {'CPU s/sub':>10} {'wall s/sub':>11}   by kind (CPU s/sub)")
        for name in names:
            keys = [k for k in per_job if k[1] == name]
            if not keys:
                continue
            by_kind = []
            for kind, _ in MIX:
                ks = [k for k in keys if kind_of.get(k) == kind]
                if ks:
                    by_kind.append(f"{kind} {sum(per_job[k] for k in ks) / len(ks):.1f}")
            stated = grading.course_settings(name).get("grading_seconds")
            print(f"{name:22} {len(keys):5d} {sum(per_job[k] for k in keys) / len(keys):10.1f} "
                  f"{sum(secs.get(k, 0) for k in keys) / len(keys):11.1f}   {', '.join(by_kind)}"
                  f"  (metadata grading_seconds {stated})")
    print()
    if "w1" in runs and "w2" in runs:
        s = runs["w1"]["wall"] / runs["w2"]["wall"]
        print(f"speed-up w1 -> w2: {s:.2f}x  (goal >= 1.8x: {'met' if s >= 1.8 else 'NOT met'})")
    if "w1t1" in runs and "w2" in runs:
        print(f"speed-up w1t1 -> w2 (one thread per kernel in both): "
              f"{runs['w1t1']['wall'] / runs['w2']['wall']:.2f}x")
    if "w2" in runs and "dask" in runs:
        d, w = runs["dask"]["wall"], runs["w2"]["wall"]
        print(f"Dask overhead against w2: {100 * (d - w) / w:+.1f}% wall "
              f"({d - w:+.1f} s; {100 * (d + runs['dask']['startup'] - w) / w:+.1f}% with cluster start), "
              f"{100 * (runs['dask']['cpu'] - runs['w2']['cpu']) / runs['w2']['cpu']:+.1f}% CPU")
    scores = {mode: {(x.student, x.assignment): (x.status, x.score) for x in r["results"]}
              for mode, r in runs.items()}
    if len(scores) > 1:
        first, *rest = scores
        differ = sorted(k for m in rest for k in scores[first] if scores[m].get(k) != scores[first][k])
        print("same status and score in every mode: " + ("yes" if not differ else
              "NO: " + ", ".join(f"{s}/{a}" for s, a in sorted(set(differ)))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=40)
    p.add_argument("--assignments", nargs="+", help="default: all")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(DEFAULT_MODES))
    p.add_argument("--out", type=Path, help="default: a temporary folder, removed at the end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mix", nargs=3, type=float, metavar=("REFERENCE", "BLANK", "CORPUS"),
                   help="shares of the class per kind (default 0.5 0.2 0.3); "
                        "--students 2 --mix 0.5 0.5 0 grades what the demo grades")
    args = p.parse_args(argv)
    mix = MIX if args.mix is None else tuple(zip((k for k, _ in MIX), args.mix))
    if args.mix is not None and (min(args.mix) < 0 or abs(sum(args.mix) - 1) > 1e-9):
        p.error("--mix: three shares >= 0 that add up to 1")
    from helpers import grading
    names = args.assignments or grading.assignments()
    unknown = sorted(set(names) - set(grading.assignments()))
    if unknown:
        p.error(f"unknown assignment(s): {', '.join(unknown)}")
    import tempfile
    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.mkdtemp(prefix="class-run-")
        out = Path(tmp)
    out = out.resolve()
    t_start = time.perf_counter()
    global _cpu
    meter = _cpu = CpuMeter()
    print(f"CPU measured with {meter.method}", flush=True)
    try:
        plan = build_class(out / "submissions", args.students, names, args.seed, mix=mix)
        print(f"built {len(plan)} submissions under {out / 'submissions'} (who: {out / 'class.csv'})",
              flush=True)
        runs = {}
        for mode in args.modes:
            print(f"-- mode {mode}, load average {os.getloadavg()[0]:.1f}", flush=True)
            runs[mode] = run_mode(mode, out / "submissions", out / f"work-{mode}", names)
            r = runs[mode]
            print(f"-- mode {mode}: {r['wall']:.1f} s, {3600 * len(plan) / r['wall']:.1f} submissions/hour",
                  flush=True)
        report(plan, runs, names, args.students)
        print(f"total run time {time.perf_counter() - t_start:.0f} s")
    finally:
        meter.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
