"""Write nbgrader source notebooks from a plain-text "percent" script.

Authors keep ``solutions/<quiz>/<quiz>.ipynb`` as the one source of a quiz; this
module only makes writing one by hand less tedious. A script is split into cells
at header lines::

    # %% notebook {"cell_timeout": 120}      notebook-level course settings (optional, first)
    # %% [markdown]                           explanation; leading "# " is stripped
    # %% code                                 ordinary code cell
    # %% solution id=conv_1x1                 answer cell (### BEGIN/END SOLUTION inside)
    # %% test id=conv_1x1_shapes points=2     autograded test cell (may hold hidden tests)

Usage: ``python -m helpers author quiz.py solutions/quiz/quiz.ipynb``.
"""
from __future__ import annotations

import json
import os
import re

import nbformat

_HEADER = re.compile(r"^# %%\s*(\[markdown\]|notebook|code|solution|test)?(.*)$")


def _nbgrader_meta(kind, opts):
    grade_id = opts.get("id")
    if not grade_id:
        raise ValueError(f"a '{kind}' cell needs id=<grade_id>")
    meta = {"schema_version": 3, "grade_id": grade_id, "task": False}
    if kind == "solution":
        meta.update(grade=False, locked=False, solution=True)
    else:
        meta.update(grade=True, locked=True, solution=False, points=float(opts.get("points", 1)))
    return meta


def notebook_from_percent(text):
    """Return an nbformat v4 notebook built from a percent script (see module doc)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    cells = []
    kind, opts, body = None, {}, []

    def flush():
        if kind is None:
            return
        src = "\n".join(body).strip("\n")
        if kind == "[markdown]":
            src = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                            for line in src.splitlines())
            cell = nbformat.v4.new_markdown_cell(src)
        else:
            cell = nbformat.v4.new_code_cell(src)
            if kind in ("solution", "test"):
                cell.metadata["nbgrader"] = _nbgrader_meta(kind, opts)
        cells.append(cell)

    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            flush()
            kind = m.group(1) or "code"
            rest = m.group(2).strip()
            if kind == "notebook":
                nb.metadata["course"] = json.loads(rest or "{}")
                kind, body = None, []
                continue
            opts = dict(part.split("=", 1) for part in rest.split() if "=" in part)
            body = []
        else:
            body.append(line)
    flush()
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i:03d}"
    nb.cells = cells
    return nb


def write_notebook(script_path, notebook_path):
    """Convert ``script_path`` and write a clean (output-free) notebook."""
    with open(script_path, encoding="utf-8") as f:
        nb = notebook_from_percent(f.read())
    with open(notebook_path, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    return nb


def solution_namespace(notebook, namespace=None, grade_ids=None, include=None):
    """Execute the solution cells of an nbgrader source notebook; return their namespace.

    Tools that compute expected values, and tests that need the reference
    solution, use this so that solution code lives only in ``solutions/``.

    notebook: path of the source notebook.
    namespace: dict the cells start from (the imports they need); not modified.
    grade_ids: run only the solution cells with these grade_ids (default: all
      solution cells); a missing one raises RuntimeError naming it.
    include: optional predicate(cell) -> bool for extra, non-solution cells to run
      (e.g. a given helper function the solutions call).
    Each cell's source is registered with ``linecache`` so ``inspect`` and
    AutoGraph can read it, as in a notebook.
    """
    import linecache

    nb = nbformat.read(notebook, as_version=4)
    ns = dict(namespace or {})
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        wanted = meta.get("solution") and (grade_ids is None or gid in grade_ids)
        if not (wanted or (include is not None and include(cell))):
            continue
        filename = f"<{os.path.basename(str(notebook))}:{gid or 'given'}>"
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)
        exec(compile(cell.source, filename, "exec"), ns)
        found.add(gid)
    missing = set(grade_ids or ()) - found
    if missing:
        raise RuntimeError(f"{notebook} has no solution cells {sorted(missing)}")
    return ns
