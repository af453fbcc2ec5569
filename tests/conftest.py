"""Shared fixtures: the demo grading run is done once per test session."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """Grade the two demo students (reference, untouched) on every assignment.

    Returns (results, work): a list of helpers.grading.Result and the grading folder.
    """
    from helpers import grading
    base = tmp_path_factory.mktemp("demo")
    subs = grading.make_demo_submissions(base / "submissions")
    results = grading.grade(subs, work=base / "work")
    return results, base / "work"


def autograded_notebook(demo_run, student, assignment):
    """The executed, autograded notebook of a demo student (nbformat NotebookNode).

    Quality tests read the numbers the reference notebook printed from here, so the
    reference solutions are trained once per test session.
    """
    import nbformat
    _, work = demo_run
    return nbformat.read(work / "autograded" / student / assignment / f"{assignment}.ipynb",
                         as_version=4)


def cell_output_text(nb, grade_id=None):
    """All stream/text output of ``nb`` (or of the cell with nbgrader ``grade_id``)."""
    parts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if grade_id and cell.metadata.get("nbgrader", {}).get("grade_id") != grade_id:
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def load_tool(filename):
    """Import a script from tools/ (they are scripts, not a package) as a module."""
    import importlib.util
    path = REPO / "tools" / filename
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
