"""The intake survives any file: helpers/grading/intake.py and the error boundary in
batch.grade (the CSV escape of text a spreadsheet would run: tests/test_csvsafe.py)."""
import copy
import csv
import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.grading import intake

REPO = Path(__file__).resolve().parent.parent
A = "conv_1x1"
NAME = f"{A}.ipynb"
RELEASE = json.loads((REPO / "notebooks" / A / NAME).read_text())
WANT = intake.release_cells(REPO / "notebooks" / A)[NAME]
GRADED = next(i for i, c in enumerate(RELEASE["cells"]) if c["metadata"].get("nbgrader", {}).get("grade"))


def _outcome(nb_or_bytes, caps=None):
    data = nb_or_bytes if isinstance(nb_or_bytes, bytes) else json.dumps(nb_or_bytes).encode()
    try:
        intake.check_notebook(data, NAME, WANT, caps)
    except intake.Malformed as exc:
        return str(exc)
    return "accepted"


def _with(path, value):
    """A copy of the release with ``value`` set at ``path`` (a list of keys)."""
    nb = copy.deepcopy(RELEASE)
    target = nb
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return nb


# ---------------------------------------------------------------- one notebook, by hand


def test_the_release_and_the_reference_are_accepted():
    assert _outcome(RELEASE) == "accepted"
    assert _outcome((REPO / "solutions" / A / NAME).read_bytes()) == "accepted"


@pytest.mark.parametrize("path, value, reason", [
    (["cells", 0, "metadata", "nbgrader"], "x", "cell 0: metadata.nbgrader is a str, not a dict"),
    (["cells", GRADED, "metadata", "nbgrader", "grade_id"], ["a"], f"cell {GRADED}: metadata.nbgrader.grade_id must be a str"),
    (["cells", GRADED, "metadata", "nbgrader", "points"], True, "points must be a number from 0 to"),
    (["cells", GRADED, "metadata", "nbgrader", "points"], float("nan"), "points must be a number"),
    (["cells", GRADED, "metadata", "nbgrader", "grade"], "yes", "metadata.nbgrader.grade must be a bool"),
    (["cells", GRADED, "metadata", "nbgrader", "schema_version"], 1, "schema_version 1 is not 3"),
    (["cells", GRADED, "metadata", "nbgrader", "grade"], False, "the nbgrader flags of 'conv_1x1_matches_dense' were changed"),
    (["cells", 2, "metadata", "nbgrader"], {"schema_version": 3, "grade": False, "solution": True, "locked": False,
                                            "grade_id": "mine"}, "cell 2: marked solution but its grade_id 'mine' is none"),
    (["cells", len(RELEASE["cells"]) - 1], dict(RELEASE["cells"][GRADED], metadata={"nbgrader": dict(
        RELEASE["cells"][GRADED]["metadata"]["nbgrader"], grade=False)}),      # pasted, then changed
     f"cell {len(RELEASE['cells']) - 1}: the nbgrader flags of 'conv_1x1_matches_dense' were changed"),
    (["cells", GRADED, "metadata", "nbgrader", "grade_id"], "a\n", "may hold only letters"),
    (["cells", GRADED, "metadata", "nbgrader", "evil"], 1, "key(s) nbgrader does not know: 'evil'"),
    (["cells", 2], 7, "cell 2 is an int, not a cell"),
    (["cells", 2, "cell_type"], "heading", "cell 2 has cell_type 'heading'"),
    (["cells", 2, "source"], {"a": 1}, "cell 2: its source is a dict"),
    (["cells", 2, "metadata", "x"], json.loads("[" * 70 + "]" * 70), "cell 2: its JSON is nested more than 64 deep"),
    (["cells", 3, "outputs"], [{"output_type": "bogus"}], "cell 3 does not follow the notebook format"),
    (["nbformat_minor"], 9, "nbformat 4.9; 4.0 to 4.5 are read"),
    (["cells"], {}, "its cells are a dict, not a list"),
])
def test_a_broken_notebook_is_reported_with_file_and_cell(path, value, reason):
    got = _outcome(_with(path, value))
    assert got.startswith(NAME) and reason in got, got


def test_bytes_that_are_no_notebook():
    assert "not UTF-8 text" in _outcome(b'{"cells": "\xff"}')
    assert "JSON nested too deeply" in _outcome(b"[" * 10000 + b"]" * 10000)
    assert "invalid JSON" in _outcome(b'{"cells": [')
    assert "the JSON is a list, not an object" in _outcome(b"[]")
    lone = json.dumps(_with(["cells", 2, "source"], "\ud800")).encode()   # json.dumps writes \ud800
    assert "cell 2: holds text that is not valid Unicode" in _outcome(lone)


def _containers(value):
    """How many JSON objects and arrays ``value`` holds, itself included."""
    if isinstance(value, dict):
        return 1 + sum(_containers(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_containers(v) for v in value)
    return 0


def test_100000_empty_cells_or_a_million_outputs_are_refused_fast_by_the_caps():
    """Counted before they are parsed: nbformat's schema check costs ~50 us per object."""
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ""}
    nb = dict(RELEASE, cells=RELEASE["cells"] + [dict(cell, id=f"e{i}") for i in range(100000)])
    many = json.dumps(nb).encode()
    lists = json.dumps(_with(["cells", 2, "metadata", "x"], [[[0]]] * 1000000)).encode()
    t0 = time.perf_counter()
    got = _outcome(many)
    base = _containers(RELEASE)                       # each empty cell adds 3: itself, metadata, outputs
    assert f"holds {base + 300000} JSON objects and arrays; at most 20000 are accepted (max_json_objects)" \
        in got, got
    assert f"holds {base + 1 + 2000000} JSON objects" in _outcome(lists)
    assert time.perf_counter() - t0 < 5
    nb["cells"] = nb["cells"][:5000]
    assert "has 5000 cells; at most 1000 are accepted (max_cells)" in _outcome(nb)
    strings = _with(["cells", 2, "source"], "[{" * 100000)               # brackets inside text
    assert _outcome(strings) == "accepted"
    assert _outcome(RELEASE, intake.Caps(max_cells=10)).endswith("at most 10 are accepted (max_cells)")
    assert "larger than 0.001 MB" in _outcome(RELEASE, intake.Caps(max_notebook_mb=0.001))


def test_caps_come_from_the_source_notebooks_course_metadata(tmp_path):
    assert intake.caps_for(A) == intake.Caps(intake.MAX_CELLS, intake.MAX_NOTEBOOK_MB, intake.MAX_JSON_OBJECTS)
    nb = nbformat.read(REPO / "solutions" / A / NAME, as_version=4)
    nb.metadata.course.update(max_cells=40, max_json_objects=500)
    (tmp_path / A).mkdir()
    nbformat.write(nb, tmp_path / A / NAME)
    assert intake.caps_for(A, tmp_path) == intake.Caps(40, intake.MAX_NOTEBOOK_MB, 500)
    assert intake.caps_for(A, tmp_path, max_notebook_mb=2, wall_timeout=5) == intake.Caps(40, 2, 500)
    nb.metadata.course["max_cells"] = "many"
    nbformat.write(nb, tmp_path / A / NAME)
    with pytest.raises(ValueError, match="max_cells must be a positive number"):
        intake.caps_for(A, tmp_path)


# ---------------------------------------------------------------- mutated notebooks (hypothesis)

_scalars = (st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
_json = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=4)
                     | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)


@st.composite
def _deep(draw):
    value = draw(_scalars)
    for _ in range(draw(st.integers(30, 400))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


_huge = st.integers(10**4, 5 * 2**20).map(lambda n: "x" * n)      # the cap in this test: 4 MB
_values = st.one_of(_json, _json, _deep(), _huge,
                    st.sampled_from(["code", "markdown", "raw", "", "conv_1x1_impl", "\ud800", "=1+1"]))
_NB_KEYS = ["grade_id", "points", "grade", "solution", "locked", "task", "schema_version",
            "checksum", "cell_type", "evil"]


def _cell_index(nb, draw):
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list) or not cells:
        return None, None
    i = draw(st.integers(0, len(cells) - 1))
    return cells, i


_WELL_TYPED = {"grade": st.booleans(), "solution": st.booleans(), "locked": st.booleans(),
               "task": st.booleans(), "points": st.floats(0, 1e6) | st.integers(0, 100),
               "grade_id": st.sampled_from(sorted(WANT) + ["", "mine", "conv_1x1"]),
               "checksum": st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
               "cell_type": st.sampled_from(["code", "markdown", "raw"])}


def _retype(cell, cell_type):
    """``cell`` turned into a well-formed cell of another type (what Jupyter's menu does)."""
    cell["cell_type"] = cell_type
    for key in ("outputs", "execution_count", "attachments"):
        cell.pop(key, None)
    if cell_type == "code":
        cell.update(outputs=[], execution_count=None)


def _mutate(nb, draw):
    """One random change of a (possibly already changed) notebook; returns the notebook.

    Half the kinds keep it well formed (a student's edits: cells moved, deleted, retyped,
    their metadata and nbgrader flags changed to well-typed values, long text); the other
    half break it (wrong types anywhere, missing keys, huge or deep values, bad shapes)."""
    kind = draw(st.sampled_from(["move", "delete", "retype", "well_typed", "cell_meta", "long",
                                 "nbgrader_key", "nbgrader", "drop", "cell", "cell_key", "cells",
                                 "top", "metadata", "many", "version"]))
    if not isinstance(nb, dict):
        return draw(_values)
    cells, i = _cell_index(nb, draw)
    if kind == "top":
        return draw(_values)
    if kind == "version":
        nb[draw(st.sampled_from(["nbformat", "nbformat_minor"]))] = draw(_values | st.integers(-1, 9))
    elif kind == "metadata":
        if isinstance(nb.get("metadata"), dict) and draw(st.booleans()):
            nb["metadata"][draw(st.sampled_from(["kernelspec", "course", "x"]))] = draw(_values)
        else:
            nb["metadata"] = draw(_values)
    elif kind == "cells":
        nb["cells"] = draw(_values)
    elif cells is None:
        nb["cells"] = draw(_values)
    elif kind == "many":
        nb["cells"] = cells * draw(st.integers(2, 6))          # duplicate ids, > the cap of 60
    elif kind == "move":
        cells.insert(draw(st.integers(0, len(cells) - 1)), cells.pop(i))
    elif kind == "delete":
        del cells[i]
    elif kind == "drop":
        target = draw(st.sampled_from(["nb", "cell", "nbgrader"]))
        where = (nb if target == "nb" else cells[i] if target == "cell"
                 else cells[i].get("metadata", {}).get("nbgrader") if isinstance(cells[i], dict) else None)
        if isinstance(where, dict) and where:
            del where[draw(st.sampled_from(sorted(where)))]
    elif kind == "cell" or not isinstance(cells[i], dict):
        cells[i] = draw(_values)
    elif kind == "cell_key":
        cells[i][draw(st.sampled_from(["cell_type", "source", "metadata", "outputs", "id",
                                       "execution_count", "attachments"]))] = draw(_values)
    elif kind == "retype":
        _retype(cells[i], draw(st.sampled_from(["code", "markdown", "raw"])))
    elif kind == "long":
        cells[i]["source"] = draw(_huge)
    elif not isinstance(cells[i].get("metadata"), dict):
        cells[i]["metadata"] = draw(_values)
    elif kind == "cell_meta":
        cells[i]["metadata"][draw(st.sampled_from(["tags", "collapsed", "x", "editable"]))] = draw(_json)
    else:
        meta = cells[i]["metadata"]
        if kind == "nbgrader" or not isinstance(meta.get("nbgrader"), dict):
            meta["nbgrader"] = draw(_values)
        elif kind == "well_typed":
            key = draw(st.sampled_from(sorted(_WELL_TYPED)))
            meta["nbgrader"][key] = draw(_WELL_TYPED[key])
        else:
            meta["nbgrader"][draw(st.sampled_from(_NB_KEYS))] = draw(_values)
    return nb


@st.composite
def mutated_notebooks(draw):
    """Bytes of the release notebook after 1 to 3 random changes, sometimes cut short."""
    nb = copy.deepcopy(RELEASE)
    for _ in range(draw(st.integers(1, 3))):
        nb = _mutate(nb, draw)
    data = json.dumps(nb).encode()
    if draw(st.integers(0, 9)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return data


_CAPS = intake.Caps(max_cells=60, max_notebook_mb=4, max_json_objects=400)


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    """The sqlite URL of an nbgrader gradebook holding conv_1x1 (as the grader's workers have)."""
    from helpers.grading.course import _api, _check
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(REPO / "solutions" / A, root / "source" / A)
    _check(_api(root).generate_assignment(A, force=True), f"generating {A}")
    return f"sqlite:///{root / 'gradebook.db'}"


def _sanitize(data, db_url):
    """nbgrader's autograde up to execution, on an accepted submission: it reads the file and
    runs its sanitize preprocessors (the cells restored from the gradebook, the metadata
    checked); none of it may raise."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds,
                                        OverwriteCells, OverwriteKernelspec)
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    resources = {"nbgrader": {"notebook": A, "assignment": A, "db_url": db_url}}
    for step in (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata):
        nb, resources = step().preprocess(nb, resources)
    nbformat.writes(nb)


def test_a_thousand_mutated_notebooks_are_accepted_or_reported(gradebook):
    """Zero crashes: each mutated notebook is accepted (and then nbgrader's own reading and
    sanitizing take it without an error) or refused with a Malformed reason that names the
    file, from an explicit rule."""
    seen = Counter()

    @settings(max_examples=1000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(mutated_notebooks())
    def run(data):
        try:
            data = intake.check_notebook(data, NAME, WANT, _CAPS)   # what is graded (repaired)
        except intake.Malformed as exc:
            reason = str(exc)
            assert reason.startswith(NAME) and len(reason) < 600, reason
            seen["malformed"] += 1
            return
        _sanitize(data, gradebook)
        seen["accepted"] += 1

    run()
    assert sum(seen.values()) >= 1000, seen
    assert seen["accepted"] >= 100 and seen["malformed"] >= 300, seen


def test_the_error_boundary_reports_an_unexpected_exception(tmp_path, monkeypatch):
    (tmp_path / "ann" / A).mkdir(parents=True)
    (tmp_path / "ann" / A / NAME).write_bytes(json.dumps(RELEASE).encode())
    assert intake.read_submission(tmp_path, "ann", A, {NAME: WANT})[:2] == ("ok", "")

    def boom(*args):
        raise KeyError("surprise")
    monkeypatch.setattr(intake, "check_notebook", boom)
    status, reason, notebooks = intake.read_submission(tmp_path, "ann", A, {NAME: WANT})
    assert (status, notebooks) == ("malformed", {})
    assert reason == f"{NAME} could not be checked (unexpected KeyError: 'surprise')"


# ---------------------------------------------------------------- folders: links, names, caps


def _folder(base, student, data=None):
    (base / student / A).mkdir(parents=True)
    (base / student / A / NAME).write_bytes(data if data is not None else json.dumps(RELEASE).encode())
    return base / student / A


def test_links_anywhere_under_a_student_folder_are_refused(tmp_path):
    subs = tmp_path / "subs"
    _folder(subs, "ann")
    (subs / "bob").mkdir(parents=True)
    os.symlink(subs / "ann" / A, subs / "bob" / A)                       # the assignment folder
    (subs / "cat" / A).mkdir(parents=True)
    os.symlink(REPO / "solutions" / A / NAME, subs / "cat" / A / NAME)   # the notebook
    _folder(subs, "dan")
    (subs / "dan" / "notes" / "deep").mkdir(parents=True)
    os.symlink("/etc", subs / "dan" / "notes" / "deep" / "etc")          # anything, anywhere
    os.symlink(subs / "ann", subs / "eve")                               # the student folder
    _folder(subs, "fay")
    os.mkfifo(subs / "fay" / A / "pipe")
    assert intake.student_problem(subs, "ann") == ""
    assert "'bob/conv_1x1' is a symbolic link (to" in intake.student_problem(subs, "bob")
    assert "'cat/conv_1x1/conv_1x1.ipynb' is a symbolic link" in intake.student_problem(subs, "cat")
    assert "'dan/notes/deep/etc' is a symbolic link (to '/etc')" in intake.student_problem(subs, "dan")
    assert intake.student_problem(subs, "eve").startswith("eve is a symbolic link")
    assert "'fay/conv_1x1/pipe' is neither a folder nor a regular file" in intake.student_problem(subs, "fay")
    assert "not a valid id" in intake.student_problem(subs, "-rf")
    assert "not a valid id" in intake.student_problem(subs, "a\n")
    # Reading follows no link either, even where the folder scan was skipped.
    assert intake.read_submission(subs, "bob", A, {NAME: WANT})[:2] == (
        "malformed", "bob/conv_1x1/ is a symbolic link or not a folder; links are refused")
    assert intake.read_submission(subs, "cat", A, {NAME: WANT})[:2] == (
        "malformed", f"{NAME} is a symbolic link; links are refused")
    assert intake.read_submission(subs, "ann", A, {NAME: WANT})[0] == "ok"
    assert intake.read_submission(subs, "dan", "nope", {NAME: WANT})[:2] == ("missing", "no folder dan/nope/")


def test_reading_stops_at_the_cap(tmp_path):
    big = json.dumps(_with(["cells", 2, "source"], "x" * 3 * 2**20)).encode()
    _folder(tmp_path, "ann", big)
    status, reason, _ = intake.read_submission(tmp_path, "ann", A, {NAME: WANT}, intake.Caps(max_notebook_mb=1))
    assert (status, reason) == ("malformed", f"{NAME} is larger than 1 MB (max_notebook_mb)")
    status, _, notebooks = intake.read_submission(tmp_path, "ann", A, {NAME: WANT}, intake.Caps(max_notebook_mb=4))
    assert status == "ok" and notebooks == {NAME: big}


# ---------------------------------------------------------------- the real grade command


def test_grade_survives_nasty_student_folders(tmp_path):
    """One correct student beside nasty folders: the run finishes, the correct student gets
    full marks, each nasty one is malformed with its reason, nothing is graded from a link."""
    from helpers import grading
    from helpers.grading.sandbox import sandbox_problem
    problem = sandbox_problem()
    if problem:
        pytest.skip(f"the sandbox cannot start here: {problem}")
    subs, work = tmp_path / "subs", tmp_path / "work"
    solution = (REPO / "solutions" / A / NAME).read_bytes()
    nb = json.loads(solution)
    _folder(subs, "alice", solution)
    _folder(subs, "meta_x", json.dumps(_with(["cells", 0, "metadata", "nbgrader"], "x")).encode())
    bad = copy.deepcopy(nb)
    next(c for c in bad["cells"] if c["metadata"].get("nbgrader", {}).get("grade"))[
        "metadata"]["nbgrader"]["grade_id"] = ["conv_1x1_impl"]
    _folder(subs, "gid_list", json.dumps(bad).encode())
    (subs / "link_dir").mkdir()
    os.symlink(subs / "alice" / A, subs / "link_dir" / A)
    (subs / "link_sol").mkdir()
    os.symlink(REPO / "solutions" / A, subs / "link_sol" / A)
    (subs / "link_file" / A).mkdir(parents=True)
    os.symlink(REPO / "solutions" / A / NAME, subs / "link_file" / A / NAME)
    os.symlink(subs / "alice", subs / "link_student")
    _folder(subs, "-rf", solution)
    _folder(subs, os.fsdecode(b"bad\xff"), solution)                   # not UTF-8: no CSV could hold it
    empty = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ""}
    many = dict(nb, cells=nb["cells"] + [dict(empty, id=f"e{i}") for i in range(100000)])
    _folder(subs, "many_cells", json.dumps(many).encode())
    t0 = time.perf_counter()
    assert intake.read_submission(subs, "many_cells", A, {NAME: WANT})[0] == "malformed"
    assert time.perf_counter() - t0 < 5, "the caps must refuse 100,000 cells at once"

    said = []
    results = {r.student: r for r in grading.grade(subs, work=work, names=[A], workers=1, log=said.append)}
    assert (work / "grades.csv").exists()
    alice = results.pop("alice")
    assert alice.status == "graded" and alice.score == alice.max_score > 0, alice
    expected = {"meta_x": "cell 0: metadata.nbgrader is a str, not a dict",
                "gid_list": "metadata.nbgrader.grade_id must be a str, not a list",
                "link_dir": "'link_dir/conv_1x1' is a symbolic link",
                "link_sol": "'link_sol/conv_1x1' is a symbolic link",
                "link_file": "'link_file/conv_1x1/conv_1x1.ipynb' is a symbolic link",
                "link_student": "link_student is a symbolic link",
                "-rf": "student folder name '-rf' is not a valid id",
                "bad\\udcff": "student folder name 'bad\\udcff' is not a valid id",
                "many_cells": "at most 20000 are accepted (max_json_objects)"}
    assert sorted(results) == sorted(expected)
    for student, reason in expected.items():
        r = results[student]
        assert (r.status, r.score) == ("malformed", 0) and reason in r.reason, (student, r.reason)
    # Only alice's notebook reached grading: nothing was graded from a link's target.
    assert sorted(p.name for p in (work / "submitted").iterdir()) == ["alice"]
    with grading._api(work).gradebook as gb:
        assert [s.student.id for s in gb.assignment_submissions(A)] == ["alice"]
    with open(work / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["'-rf"]["status"] == rows["bad\\udcff"]["status"] == "malformed"
    assert rows["alice"]["score"] == f"{alice.max_score:g}"
