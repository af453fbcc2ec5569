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
