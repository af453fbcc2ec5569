"""Building blocks of hostile submissions: cells added to a base notebook (tests/hostile.py)."""
from __future__ import annotations

import copy
import textwrap

import nbformat


def _code(src):
    return nbformat.v4.new_code_cell(textwrap.dedent(src).strip() + "\n")


def _first_test_index(nb):
    for i, c in enumerate(nb.cells):
        meta = c.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            return i
    return len(nb.cells)


def _insert_before_tests(nb, *cells):
    nb = copy.deepcopy(nb)
    i = _first_test_index(nb)
    nb.cells[i:i] = list(cells)
    return nb


def _with_fake(nb, fake):
    """Replace every solution cell's source by ``fake`` (once, then empty)."""
    nb = copy.deepcopy(nb)
    first = True
    for c in nb.cells:
        if c.get("metadata", {}).get("nbgrader", {}).get("solution") and c.cell_type == "code":
            c.source = textwrap.dedent(fake).strip() + "\n" if first else "pass\n"
            first = False
    return nb


def _tests(nb):
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")
            and not c.metadata.nbgrader.get("solution")]
