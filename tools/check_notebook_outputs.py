"""Fail when a notebook under solutions/ or notebooks/ has outputs or execution counts.

Notebooks are committed without outputs (a student's release must not show the
reference solution's results, and diffs stay readable). The pre-commit hook
``notebook-outputs`` (.pre-commit-config.yaml) runs this on the staged notebooks;
tests/test_repo_hygiene.py runs the same hook over every notebook in CI.

    python tools/check_notebook_outputs.py                # every solutions/*/*.ipynb and notebooks/*/*.ipynb
    python tools/check_notebook_outputs.py A.ipynb B.ipynb

Prints one line per offending cell and exits with status 1; clear them with
``.venv/bin/jupyter nbconvert --clear-output --inplace PATH``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIDES = ("solutions", "notebooks")


def problems(path):
    """List of 'PATH cell I: ...' strings, one per code cell with outputs or an execution count."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{path}: not a readable notebook ({exc})"]
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            found.append(f"{path} cell {i}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"{path} cell {i}: execution count {cell['execution_count']}")
    return found


def main(argv):
    paths = argv or sorted(p for side in SIDES for p in (REPO / side).glob("*/*.ipynb"))
    found = [line for p in paths for line in problems(p)]
    for line in found:
        print(line)
    if found:
        print("notebooks are committed without outputs: run "
              ".venv/bin/jupyter nbconvert --clear-output --inplace on them")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
