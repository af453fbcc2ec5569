"""Grading speed: per assignment, and submissions per minute with workers and the sandbox.

    .venv/bin/python benchmarks/grading_times.py [assignment ...]
    .venv/bin/python benchmarks/grading_times.py --throughput 8 [--workers 1 2] [assignment]

Default: one row per assignment: build seconds, autograde seconds (one reference
submission, sandboxed), and the share of autograding spent starting the kernel and
running the notebook's first code cell (its imports), measured with nbclient.

``--throughput N``: grade N copies of the reference of one assignment (default the
first) with 1 and 2 workers (``--workers``), sandbox on and off, and print
submissions per minute and the sandbox's cost. Progress is printed as submissions
finish. Not a test: numbers only (they depend on the machine's load).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from helpers import grading


def kernel_and_imports_seconds(notebook_path):
    """Start a kernel and run only the first code cell (the imports)."""
    nb = nbformat.read(notebook_path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    nb.cells = [first]
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(Path(notebook_path).parent)}}).execute()
    return time.perf_counter() - t0


def per_assignment(names):
    grading._kernel_environment()
    names = names or grading.assignments()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in names:
            t0 = time.perf_counter()
            grading.build([name], release_dir=tmp / "release", log=lambda *_: None)
            build_s = time.perf_counter() - t0
            subs = tmp / "subs"
            dest = subs / "reference" / name
            dest.mkdir(parents=True, exist_ok=True)
            src = grading.SOLUTIONS / name / f"{name}.ipynb"
            (dest / src.name).write_bytes(src.read_bytes())
            t0 = time.perf_counter()
            [res] = grading.grade(subs, work=tmp / "work", names=[name], feedback=False,
                                  workers=1, regrade=True, log=lambda *_: None)
            grade_s = time.perf_counter() - t0
            start_s = kernel_and_imports_seconds(src)
            rows.append((name, build_s, grade_s, start_s, f"{res.score:g}/{res.max_score:g}"))
            print(f"  {name}: build {build_s:.1f} s, autograde {grade_s:.1f} s", flush=True)
    print()
    print(f"{'assignment':24} {'build s':>8} {'grade s':>8} {'kernel+imports s':>17} {'share':>6}  score")
    for name, b, g, k, score in rows:
        print(f"{name:24} {b:8.1f} {g:8.1f} {k:17.1f} {100 * k / g:5.0f}%  {score}")
    total_b, total_g = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'total':24} {total_b:8.1f} {total_g:8.1f}")


def throughput(name, n, worker_counts, repeat=2):
    """Submissions per minute for each (workers, sandbox) setting.

    Settings alternate (on, off, on, off, ...) ``repeat`` times each, and the best
    (shortest) run of each is reported, so that a change in the machine's load
    does not land on one setting only.
    """
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = grading.SOLUTIONS / name / f"{name}.ipynb"
        for i in range(n):
            dest = tmp / "subs" / f"student{i:03d}" / name
            dest.mkdir(parents=True)
            shutil.copy(src, dest / src.name)
        for workers in worker_counts:
            for rep in range(repeat):
                for sandbox in (True, False):
                    work = tmp / f"work-{workers}-{sandbox}-{rep}"
                    print(f"-- {workers} worker(s), sandbox {'on' if sandbox else 'off'}, "
                          f"run {rep + 1}/{repeat}, load {os.getloadavg()[0]:.1f}", flush=True)
                    t0 = time.perf_counter()
                    results = grading.grade(tmp / "subs", work=work, names=[name], workers=workers,
                                            sandbox=sandbox, feedback=False, regrade=True,
                                            log=lambda line: print(line, flush=True))
                    wall = time.perf_counter() - t0
                    ok = sum(r.score == r.max_score for r in results)
                    key = (workers, sandbox)
                    if key not in best or wall < best[key][0]:
                        best[key] = (wall, ok)
                    shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{name}: {n} submissions (reference solution), {os.cpu_count()} cores, "
          f"best of {repeat} runs each")
    print(f"{'workers':>7} {'sandbox':>8} {'seconds':>8} {'subs/min':>9} {'full marks':>11}")
    for (w, sb), (wall, ok) in sorted(best.items(), key=lambda kv: (kv[0][0], not kv[0][1])):
        print(f"{w:7d} {'on' if sb else 'off':>8} {wall:8.1f} {60 * n / wall:9.2f} {ok:>8d}/{n}")
    for w in worker_counts:
        on, off = best[(w, True)][0], best[(w, False)][0]
        print(f"sandbox cost with {w} worker(s): {100 * (on - off) / off:+.1f}% wall time")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignments", nargs="*")
    p.add_argument("--throughput", type=int, metavar="N", help="grade N copies of the reference")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=2, help="runs of each setting (best is kept)")
    args = p.parse_args(argv)
    if args.throughput:
        name = (args.assignments or grading.assignments())[0]
        throughput(name, args.throughput, args.workers, args.repeat)
    else:
        per_assignment(args.assignments)


if __name__ == "__main__":
    sys.exit(main())
