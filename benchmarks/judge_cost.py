"""What the trusted judge costs: grading seconds per submission, tests in the student's
kernel (behind the guard) against tests in the judge's kernel, same machine, one run.

    .venv/bin/python benchmarks/judge_cost.py [assignment ...] [--repeat 2]

Default: every assignment whose source notebook gives its tests to the judge
(``course.judge``, see helpers/grading/judge.py). For each, the reference solution and the
untouched release are graded (sandbox on, one worker, no feedback) with the notebook's
``course.judge`` set to "kernel" (every cell) and to "trusted" (cells that say "kernel"
stay there, as graded) in a temporary copy of solutions/,
alternating, best of ``--repeat`` runs. Not a test: numbers only (they depend on the load).
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from helpers import grading
from helpers.grading.judge import trusted_cells


def judged_assignments():
    out = []
    for name in grading.assignments():
        nb = nbformat.read(grading.SOLUTIONS / name / f"{name}.ipynb", as_version=4)
        if trusted_cells(nb):
            out.append(name)
    return out


def seconds(tmp, name, judge):
    """Grade the reference and the release of ``name`` with ``course.judge = judge``."""
    sol = tmp / f"solutions-{judge}"
    shutil.rmtree(sol, ignore_errors=True)
    shutil.copytree(grading.SOLUTIONS / name, sol / name)
    path = sol / name / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata.setdefault("course", {})["judge"] = judge
    if judge == "kernel":      # every test in the kernel; "trusted" keeps the cells' own choice
        for cell in nb.cells:
            cell.get("metadata", {}).pop("course", None)
    nbformat.write(nb, path)
    subs = tmp / "subs"
    for student, src in (("reference", grading.SOLUTIONS), ("release", grading.RELEASE)):
        dest = subs / student / name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / name / f"{name}.ipynb", dest / f"{name}.ipynb")
    results = grading.grade(subs, work=tmp / f"work-{judge}", names=[name], solutions=sol,
                            workers=1, feedback=False, regrade=True, log=lambda *_: None)
    return {r.student: (r.seconds, f"{r.score:g}/{r.max_score:g}") for r in results}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignments", nargs="*")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args(argv)
    names = args.assignments or judged_assignments()
    grading._kernel_environment()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in names:
            best = {}
            for rep in range(args.repeat):
                for judge in ("kernel", "trusted"):
                    got = seconds(tmp, name, judge)
                    print(f"  {name}, tests in the {judge} kernel, run {rep + 1}: "
                          + ", ".join(f"{s} {t:.1f} s ({score})" for s, (t, score) in got.items())
                          + f"  (load {os.getloadavg()[0]:.1f})", flush=True)
                    for student, (t, score) in got.items():
                        key = (judge, student)
                        if key not in best or t < best[key][0]:
                            best[key] = (t, score)
            rows.append((name, best))
    print()
    print(f"seconds per submission (best of {args.repeat}), {os.cpu_count()} cores, sandbox on")
    print(f"{'assignment':22} {'student':10} {'student kernel':>15} {'judge':>8} {'cost':>7}")
    for name, best in rows:
        for student in ("reference", "release"):
            (k, ks), (j, js) = best[("kernel", student)], best[("trusted", student)]
            print(f"{name:22} {student:10} {k:9.1f} {ks:>5} {j:6.1f} {js:>5} {100 * (j - k) / k:+6.0f}%")


if __name__ == "__main__":
    sys.exit(main())
