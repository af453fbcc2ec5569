"""Seconds to build and to autograde each assignment for one student (the reference).

    .venv/bin/python benchmarks/grading_times.py [assignment ...]

Prints one row per assignment: build seconds, autograde seconds, and the share of
autograding spent starting the kernel and running the notebook's first code cell
(its imports), measured separately with nbclient. Not a test: numbers only.
"""
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


def main(names):
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
                                  log=lambda *_: None)
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


if __name__ == "__main__":
    main(sys.argv[1:])
