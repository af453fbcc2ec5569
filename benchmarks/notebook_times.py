"""How long each quiz takes a student to run: the reference notebook, top to bottom.

    .venv/bin/python benchmarks/notebook_times.py [assignment ...] [--slowest 3]

Runs ``solutions/<assignment>/<assignment>.ipynb`` (every TODO filled in) in a fresh
kernel, as a student's JupyterLab would (not in grading mode: the training cells train,
the graded cells read the notebook's own runs), and prints, per assignment, the wall time
of the whole notebook and of its slowest cells. These are the course's only timings: the
README's "runs in" column comes from here (with the machine it was measured on), and the
notebooks say which cells are slow without numbers. Not a test: the numbers depend on the
machine and its load, which are printed with them.
"""
import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import grading  # noqa: E402


def _seconds(cell):
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


#: Lines that say nothing about what a cell does (comments, docstrings, the grading switch).
_UNINFORMATIVE = re.compile(r'\s*(#|"""|if (not )?env\.GRADING|else:|env\.seed_everything|print\("graded run)')


def _label(index, cell):
    """``[index] first line that says what the cell does``, as in JupyterLab's In [index]."""
    lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
    telling = [line for line in lines if not _UNINFORMATIVE.match(line)]
    return f"[{index}] " + ((telling or lines or [""])[0])[:70]


def machine():
    """'2 cores, <CPU model>, Linux x86_64': what the numbers were measured on."""
    import platform
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, {platform.system()} {platform.machine()}"


def run_notebook(name):
    """Execute the reference notebook of ``name``.

    Returns (wall seconds, [(seconds, label)] for its code cells, slowest first); a label
    is ``[n] first line``, n counting code cells from 1 as JupyterLab's In [n] does.
    A finite timeout: with ``timeout=None`` nbclient can hang or report a dead kernel on a
    cell that displays a widget (jupyter/nbclient#312; measured on the style-transfer widget).
    """
    src = grading.SOLUTIONS / name / f"{name}.ipynb"
    nb = nbformat.read(src, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(src.parent, tmp, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=3600, kernel_name="python3", record_timing=True,
                       resources={"metadata": {"path": tmp}}).execute()
        wall = time.perf_counter() - t0
    code = [c for c in nb.cells if c.cell_type == "code"]
    cells = [(_seconds(c), _label(i, c)) for i, c in enumerate(code, start=1)]
    return wall, sorted(cells, key=lambda sc: -sc[0])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignments", nargs="*", help="default: all")
    p.add_argument("--slowest", type=int, default=3, help="slowest cells listed per notebook")
    args = p.parse_args(argv)
    os.environ.pop("COURSE_GRADING", None)                 # a student's kernel, not a grader's
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    names = args.assignments or grading.assignments()
    print(f"{machine()}; load {os.getloadavg()[0]:.1f} at the start, {datetime.now():%Y-%m-%d}", flush=True)
    rows = []
    for name in names:
        wall, cells = run_notebook(name)
        rows.append((name, wall))
        print(f"{name}: {wall:.0f} s ({wall / 60:.1f} min), load {os.getloadavg()[0]:.1f}", flush=True)
        for seconds, label in cells[:args.slowest]:
            print(f"    {seconds:6.1f} s  {label}", flush=True)
    print()
    print(f"{'assignment':24} {'seconds':>8} {'minutes':>8}")
    for name, wall in rows:
        print(f"{name:24} {wall:8.0f} {wall / 60:8.1f}")
    print(f"{'total':24} {sum(w for _, w in rows):8.0f} {sum(w for _, w in rows) / 60:8.1f}")


if __name__ == "__main__":
    sys.exit(main())
