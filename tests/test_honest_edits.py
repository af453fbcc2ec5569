"""Honest edits never cost points (#21): a retyped or pasted cell, Colab or an older
Jupyter, outputs kept, metadata an editor removed, a second download. One real grade run
on conv_1x1 (four students, two workers) and the repairs, unit by unit."""
import copy
import json
import os
import time
from pathlib import Path

import pytest

from helpers import grading
from helpers.grading import intake, nbcheck, self_check
from helpers.grading.gradebook import Result

REPO = Path(__file__).resolve().parent.parent
A = "conv_1x1"
NAME = f"{A}.ipynb"
WANT = intake.release_cells(REPO / "notebooks" / A)[NAME]


def _answered():
    """The release with the reference answers typed into its answer cells."""
    nb = json.loads((REPO / "notebooks" / A / NAME).read_text())
    sol = json.loads((REPO / "solutions" / A / NAME).read_text())
    answers = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in sol["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")}
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell["source"] = answers[gid]
    return nb


def _index(nb, key):
    return next(i for i, c in enumerate(nb["cells"]) if c["metadata"].get("nbgrader", {}).get(key))


def _plain(source, cell_id=None):
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
    return dict(cell, id=cell_id) if cell_id else cell


def everyday():
    """Colab's metadata, nbformat 4.4 without cell ids, outputs kept, scratch cells, a
    plain code cell and a test cell switched to markdown."""
    nb = _answered()
    nb["nbformat_minor"] = 4
    nb["metadata"] = {"colab": {"provenance": [], "name": NAME}, "accelerator": "GPU",
                      "kernelspec": {"name": "python3", "display_name": "Python 3"}}
    for k, cell in enumerate(nb["cells"]):
        cell.pop("id", None)
        cell["metadata"].update(id=f"colab{k}", colab={"base_uri": "https://localhost:8080/"})
        if cell["cell_type"] == "code":
            cell.update(execution_count=k, outputs=[{"output_type": "stream", "name": "stdout", "text": "ok\n"}])
    for k in (_index(nb, "grade"), next(i for i, c in enumerate(nb["cells"]) if i > 1 and
                                        c["cell_type"] == "code" and not c["metadata"].get("nbgrader"))):
        nb["cells"][k]["cell_type"] = "markdown"
        for key in ("outputs", "execution_count"):
            nb["cells"][k].pop(key)
    for k in (len(nb["cells"]), 4, 1):
        nb["cells"].insert(k, dict(_plain("scratch = 1 + 1\nprint(scratch)"), metadata={}))
    return nb


def pasted(nb=None):
    """The answer cell and a test cell pasted twice (JupyterLab: the same metadata and id)."""
    nb = nb or _answered()
    for key in ("grade", "solution"):
        i = _index(nb, key)
        nb["cells"].insert(i + 1, copy.deepcopy(nb["cells"][i]))
    return nb


def stripped():
    """An editor that removed every cell's metadata (and the ids: nbformat 4.4)."""
    nb = _answered()
    nb["nbformat_minor"] = 4
    for cell in nb["cells"]:
        cell["metadata"] = {}
        cell.pop("id", None)
    return nb


def wrong_with_pasted_tests():
    """A wrong answer (a 3x3 kernel) whose test cells were pasted twice and every copy
    replaced by ``assert True``: the hidden tests still run, by grade_id."""
    nb = _answered()
    i = _index(nb, "solution")
    text = "".join(nb["cells"][i]["source"])
    nb["cells"][i]["source"] = text.replace("kernel_size=(1, 1)", 'kernel_size=(3, 3), padding="same"')
    assert nb["cells"][i]["source"] != text
    for k in range(len(nb["cells"]) - 1, -1, -1):
        if nb["cells"][k]["metadata"].get("nbgrader", {}).get("grade"):
            nb["cells"][k]["source"] = "assert True"
            nb["cells"].insert(k + 1, dict(copy.deepcopy(nb["cells"][k]), id=f"again{k}"))
    return nb


@pytest.fixture(scope="module")
def honest_run(tmp_path_factory):
    """One grade run, two students (one round of two workers: about a minute): every
    everyday edit at once, handed in as a second download, and the stripped metadata."""
    subs = tmp_path_factory.mktemp("honest")
    files = {"everyday": (f"{A} (1).ipynb", pasted(everyday())), "stripped": (NAME, stripped())}
    for student, (file, nb) in files.items():
        (subs / student / A).mkdir(parents=True)
        (subs / student / A / file).write_text(json.dumps(nb, indent=1))
    lines, t0 = [], time.monotonic()
    results = grading.grade(subs, work=subs.parent / "honest-work", names=[A], workers=2,
                            log=lines.append)
    return {r.student: r for r in results}, lines, time.monotonic() - t0


def test_honest_edits_get_full_marks_and_are_said(honest_run):
    results, lines, seconds = honest_run
    for student in ("everyday", "stripped"):
        r = results[student]
        assert (r.status, r.score, r.max_score) == ("graded", 3, 3), (student, r, lines)
    said = "\n".join(lines)
    assert "everyday/conv_1x1: conv_1x1.ipynb: graded 'conv_1x1 (1).ipynb'" in said
    assert "'conv_1x1_impl' pasted twice" in said and "the later copy" in said
    assert "stripped/conv_1x1: conv_1x1.ipynb: its cells' nbgrader metadata was removed" in said
    assert "'conv_1x1_matches_dense' was switched to markdown: switched back to code" in said


def test_a_pasted_test_cell_never_replaces_the_hidden_tests(tmp_path):
    """Every copy of the test cells says ``assert True``: after the repair, nbgrader's own
    autograde steps put the gradebook's tests (hidden ones included) back in the graded
    copies, and the others are plain cells, whose errors cost nothing and pass nothing."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds,
                                        OverwriteCells, OverwriteKernelspec)
    import nbformat
    from helpers.grading.course import _api, _check
    import shutil
    shutil.copytree(REPO / "solutions" / A, tmp_path / "source" / A)
    _check(_api(tmp_path).generate_assignment(A, force=True), f"generating {A}")
    tests = {c.metadata.nbgrader.grade_id: c.source
             for c in nbformat.read(REPO / "solutions" / A / NAME, as_version=4).cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    data = intake.check_notebook(json.dumps(wrong_with_pasted_tests()).encode(), NAME, WANT)
    nb = nbformat.reads(data.decode(), as_version=4)
    resources = {"nbgrader": {"notebook": A, "assignment": A, "db_url": f"sqlite:///{tmp_path / 'gradebook.db'}"}}
    for step in (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata):
        nb, resources = step().preprocess(nb, resources)
    graded = {c.metadata.nbgrader.grade_id: c.source for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade")}
    assert graded == tests and "BEGIN HIDDEN TESTS" in "".join(tests.values())
    assert sum(c.source == "assert True" for c in nb.cells) == len(tests)     # the plain copies


def test_self_check_says_what_was_repaired(tmp_path, monkeypatch):
    """``helpers check`` lists the repairs (nothing is graded here: the inbox and release
    are laid out as check() leaves them)."""
    work = tmp_path / "work"
    (work / "inbox" / "you" / A).mkdir(parents=True)
    (work / "inbox" / "you" / A / NAME).write_text(json.dumps(pasted()))
    (work / "release").mkdir()
    (work / "release" / A).symlink_to(REPO / "notebooks" / A)
    lines = self_check.report(Result("you", A, score=3, max_score=3), [], work=work)
    assert any("'conv_1x1_impl' pasted twice" in line for line in lines), lines
    assert lines[-1] == "full marks."


# ---------------------------------------------------------------- the repairs, by hand


def _check(nb):
    notes = []
    out = intake.check_notebook(json.dumps(nb).encode(), NAME, WANT, None, notes)
    return json.loads(out), notes


def _graded(nb):
    return [(i, c["metadata"]["nbgrader"]["grade_id"]) for i, c in enumerate(nb["cells"])
            if "nbgrader" in c["metadata"]]


def test_a_cell_pasted_twice_keeps_the_last_copy_graded_and_ids_unique():
    nb, notes = _check(pasted())
    answer = _index(nb, "solution")
    assert "nbgrader" not in nb["cells"][answer - 1]["metadata"]
    assert nb["cells"][answer]["metadata"]["nbgrader"] == WANT.cells["conv_1x1_impl"]["metadata"]["nbgrader"]
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == len(ids)
    assert [g for _, g in _graded(nb)] == ["conv_1x1_impl", "conv_1x1_matches_dense", "conv_1x1_kernel_shape"]
    assert sum("pasted twice" in n for n in notes) == 2 and sum("given a new one" in n for n in notes) == 2


def test_a_retyped_answer_cell_is_recognised():
    nb = _answered()
    answer = _index(nb, "solution")
    nb["cells"][answer] = _plain(nb["cells"][answer]["source"], "typed-again")
    nb["cells"].insert(answer, _plain("def conv_1x1(x, n):\n    return None  # a first try"))
    nb, notes = _check(nb)
    assert _graded(nb)[0] == (answer + 1, "conv_1x1_impl")
    assert notes == [f"{NAME} cell {answer + 1}: recognised as 'conv_1x1_impl' (its nbgrader "
                     "metadata was missing: a retyped or re-created cell)"]


def test_stripped_metadata_comes_back_from_the_release_and_only_from_it():
    nb, notes = _check(stripped())
    assert [g for _, g in _graded(nb)] == list(WANT)
    for _, cell in enumerate(nb["cells"]):
        if "nbgrader" in cell["metadata"]:
            gid = cell["metadata"]["nbgrader"]["grade_id"]
            assert cell["metadata"]["nbgrader"] == WANT.cells[gid]["metadata"]["nbgrader"]
    assert notes == [f"{NAME}: its cells' nbgrader metadata was removed (by an editor?): 3 of the "
                     "release's 3 graded and answer cells were recognised and graded"]
    # test cells whose text changed are not recognised: they score 0, and it says so
    nb = stripped()
    for cell in nb["cells"]:
        if "checks.check_one" in "".join(cell["source"]):
            cell["source"] = "assert True"
    _, notes = _check(nb)
    assert notes[0].endswith("not found (they score 0): conv_1x1_kernel_shape")


def test_nothing_recognisable_is_refused_with_what_happened():
    nb = stripped()
    nb["cells"] = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    with pytest.raises(intake.Malformed, match=r"has no graded cells left: the graded cells were deleted, or "
                                               r"their nbgrader metadata was removed \(by an editor\?\), and none "
                                               "of the release's graded cells was found in it: download"):
        _check(nb)


def test_a_pasted_cell_with_other_flags_is_still_refused():
    nb = _answered()
    i = _index(nb, "grade")
    bad = copy.deepcopy(nb["cells"][i])
    bad["metadata"]["nbgrader"]["grade"] = False
    bad["id"] = "later"
    nb["cells"].append(bad)
    with pytest.raises(intake.Malformed, match="the nbgrader flags of 'conv_1x1_matches_dense' were changed"):
        _check(nb)


def _folder(tmp_path, student, files):
    (tmp_path / student / A).mkdir(parents=True)
    data = json.dumps(_answered()).encode()
    for k, name in enumerate(files):
        (tmp_path / student / A / name).write_bytes(data)
        os.utime(tmp_path / student / A / name, (1e9 + k, 1e9 + k))
    return intake.read_submission(tmp_path, student, A, {NAME: WANT})


def test_a_notebook_under_another_name(tmp_path):
    status, _, nbs = _folder(tmp_path, "one", [f"{A} (1).ipynb"])
    assert status == "ok" and list(nbs) == [NAME]
    notes = []
    (tmp_path / "two" / A).mkdir(parents=True)
    for k, name in enumerate([f"{A} (2).ipynb", f"{A}-1.ipynb", "notes.ipynb"]):
        (tmp_path / "two" / A / name).write_text(json.dumps(_answered()))
        os.utime(tmp_path / "two" / A / name, (1e9 - k, 1e9 - k))
    assert intake.read_submission(tmp_path, "two", A, {NAME: WANT}, notes=notes)[0] == "ok"
    assert notes == [f"{NAME}: graded '{A} (2).ipynb', the newest of '{A} (2).ipynb', '{A}-1.ipynb'"]
    status, reason, _ = _folder(tmp_path, "three", ["mine.ipynb", "other.ipynb"])
    assert status == "malformed" and reason == (f"missing notebook {NAME}; the folder holds 'mine.ipynb', "
                                                f"'other.ipynb': rename the one to grade to {NAME}")
    assert _folder(tmp_path, "four", [])[:2] == ("malformed", f"missing notebook {NAME}")


def test_a_link_under_another_name_is_still_refused(tmp_path):
    (tmp_path / "ann" / A).mkdir(parents=True)
    (tmp_path / "ann" / A / f"{A} (1).ipynb").symlink_to(REPO / "solutions" / A / NAME)
    status, reason, _ = intake.read_submission(tmp_path, "ann", A, {NAME: WANT})
    assert status == "malformed" and reason == f"missing notebook {NAME}"
    assert "symbolic link" in intake.student_problem(tmp_path, "ann")


def test_assignments_nobody_handed_in_are_said_once():
    results = [Result(s, a, status="missing", reason=f"no folder {s}/{a}/")
               for s in ("ann", "ben") for a in ("gans", "style_transfer")]
    results += [Result("ann", A, status="graded"), Result("ben", A, status="missing", reason="no folder")]
    assert grading.summary(results) == ["no submissions for: gans, style_transfer",
                                        f"ben/{A}: missing: no folder"]


def test_nbcheck_release_is_a_dict_of_flags():
    assert isinstance(WANT, nbcheck.Release) and WANT == {g: WANT[g] for g in WANT}
    assert list(WANT.cells) == list(WANT)


def test_an_answer_cell_is_recognised_by_the_names_it_binds():
    assert nbcheck._defines("claims = {}\nx: int = 1\ndef f():\n    y = 2\nclass C: pass\n%time f()") == \
        {"claims", "x", "f", "C"}
    assert nbcheck._defines("def broken(:") == set()


def test_a_huge_cell_costs_the_repair_one_look_not_one_parse_per_missing_cell():
    """Stripped metadata plus 5 MB of code in one cell: the repair reads that cell once and
    does not parse it (found by a red team: ~1 GB and seconds per MB per missing cell)."""
    import tracemalloc
    nb = stripped()
    nb["cells"].insert(3, _plain("x = [1, 2, 3]\n" * 400_000))            # 5.6 MB of code
    tracemalloc.start()
    t0 = time.perf_counter()
    nb, notes = _check(nb)
    seconds, (_, peak) = time.perf_counter() - t0, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [g for _, g in _graded(nb)] == list(WANT)
    assert peak < 400 * 2**20, f"repair peaked at {peak / 2**20:.0f} MiB"
    assert seconds < 20, f"repair took {seconds:.1f} s"
    assert not nbcheck._defines("\n".join(["x = ("] * 100_000 + [")"] * 100_000))  # too deep: no names, no crash


def test_another_notebook_with_an_unusual_name_is_not_graded_and_not_echoed(tmp_path):
    """A file name is shown in reasons and logs only when it is plain: no newline, no
    control or non-ASCII character can forge a line of the summary."""
    status, reason, _ = _folder(tmp_path, "ann", ["conv_1x1 \n  [7 of 7] bob - conv_1x1: 3 of 3\n.ipynb"])
    assert status == "malformed" and "\n" not in reason and "bob" not in reason
    assert reason == (f"missing notebook {NAME}; the folder holds 1 other notebook(s) with unusual "
                      f"characters in the name: rename the one to grade to {NAME}")
    status, _, nbs = _folder(tmp_path, "cat", [f"{A} (1).ipynb", "caf\u00e9.ipynb"])
    assert status == "ok" and list(nbs) == [NAME]
