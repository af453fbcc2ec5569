"""Hostile submissions, graded in one run with correct and blank controls.

Must hold: the run completes; the correct control gets full marks and the blank 0;
no hostile variant scores more than its base without the attack (the blank, or a
wrong answer that scores 0 too); nothing outside the grading folder changes; no
process is left behind; no network connection is made; other students' grades
are unchanged. Limits are small so that the run stays short.
"""
import hashlib
import random
import socket
import threading
from pathlib import Path

import nbformat
import pytest

from helpers import grading
from helpers.grading.sandbox import sandbox_problem

from hostile import make_hostile_submissions

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "conv_1x1"

#: A wrong answer that runs: right output shape, zeros, ignores the initializer.
FAKE = {"conv_1x1": '''
def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    import numpy as np
    x = np.asarray(x)
    return np.zeros(x.shape[:-1] + (num_outputs,), "float32")
'''}

LIMITS = {"cell_timeout": 45, "wall_timeout": 150, "memory_mb": 2048, "max_processes": 256,
          "output_mb": 2, "cpu_seconds": 300}

pytestmark = pytest.mark.skipif(sandbox_problem() is not None,
                                reason=f"sandbox unavailable: {sandbox_problem()}")


def _tree_digest(*folders):
    h = hashlib.sha256()
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


def _procs_with(tag):
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if tag.encode() in (d / "cmdline").read_bytes():
                    found.append(int(d.name))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    subs, work, outside = base / "subs", base / "work", base / "outside"
    outside.mkdir()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    connections = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                connections.append(conn.recv(100))
                conn.close()
            except OSError:
                pass
    threading.Thread(target=serve, daemon=True).start()
    tag = str(random.randint(10**6, 10**7 - 1))
    write_targets = [REPO / "helpers" / "pwned.py", REPO / "solutions" / "pwned.txt",
                     outside / "pwned.txt", subs / "c_correct" / ASSIGNMENT / "pwned.txt",
                     work / "pwned.txt", Path("/etc/course-pwned"), Path("/tmp/course-pwned-" + tag)]
    ctx = {"secret_paths": [str(REPO / "solutions" / "*" / "*.ipynb"), str(work / "gradebook.db"),
                            str(work / "templates" / "*" / "gradebook.db"),
                            str(work / "source" / "*" / "*.ipynb"),
                            str(subs / "c_correct" / "*" / "*.ipynb"),
                            "/tmp/course-job-*/course/gradebook.db",
                            "/tmp/course-job-*/course/submitted/*/*/*.ipynb"],
           "leak_marker": str(outside / "leak.txt"), "write_targets": write_targets,
           "port": server.getsockname()[1], "sleep_tag": tag}
    bases = make_hostile_submissions(subs, ASSIGNMENT, fake=FAKE[ASSIGNMENT], ctx=ctx)
    before = _tree_digest(REPO / "solutions", REPO / "notebooks", REPO / "helpers", subs)
    lines = []
    results = grading.grade(subs, work=work, names=[ASSIGNMENT], workers=2, limits=LIMITS,
                            log=lines.append)
    after = _tree_digest(REPO / "solutions", REPO / "notebooks", REPO / "helpers", subs)
    stop.set()
    server.close()
    return {"results": {r.student: r for r in results}, "bases": bases, "work": work,
            "lines": lines, "before": before, "after": after, "connections": connections,
            "tag": tag, "write_targets": write_targets, "outside": outside}


def test_controls(hostile_run):
    r = hostile_run["results"]
    assert r["c_correct"].score == r["c_correct"].max_score > 0, r["c_correct"]
    assert r["c_blank"].score == 0 and r["c_fake"].score == 0


def test_no_hostile_variant_beats_its_base(hostile_run):
    r, bases = hostile_run["results"], hostile_run["bases"]
    blank = r["c_blank"].score
    worse = {s: (r[s].score, r[s].reason) for s in bases if s.startswith("h_")
             and r[s].score > min(blank, r["c_fake"].score)}
    assert not worse, f"hostile variants scored above the blank: {worse}"


def test_reasons_are_clear(hostile_run):
    r = hostile_run["results"]
    assert r["h_endless_loop"].status == "incomplete" and "ran past 45 s" in r["h_endless_loop"].reason
    assert "ran past 45 s" in r["h_long_sleep"].reason
    assert "kernel died (exit status 3)" in r["h_os_exit"].reason
    assert "more than 2048 MiB" in r["h_memory"].reason
    assert "printed more than 2 MB" in r["h_print_flood"].reason
    assert "processes" in r["h_processes"].reason
    assert r["h_invalid_json"].status == "malformed"
    assert r["h_other_assignment"].status == "malformed" and "not this assignment" in r["h_other_assignment"].reason
    assert r["h_unknown_kernel"].status == "graded"
    summary = "\n".join(grading.summary(list(r.values())))
    assert "h_os_exit/conv_1x1" in summary and "h_memory/conv_1x1" in summary


def test_nothing_outside_the_grading_folder_changes(hostile_run):
    assert hostile_run["before"] == hostile_run["after"]
    assert not [p for p in hostile_run["write_targets"] if Path(p).exists()]
    assert not (hostile_run["outside"] / "leak.txt").exists()


def test_no_secrets_readable_and_no_network(hostile_run):
    nb = nbformat.read(hostile_run["work"] / "autograded" / "h_read_secrets" / ASSIGNMENT
                       / f"{ASSIGNMENT}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "could read: []" in text
    assert hostile_run["connections"] == []
    nb = nbformat.read(hostile_run["work"] / "autograded" / "h_network" / ASSIGNMENT
                       / f"{ASSIGNMENT}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "connected" not in text and "no network" in text


def test_no_process_left_behind(hostile_run):
    assert _procs_with("sleep " + hostile_run["tag"]) == []


def test_guard_names_the_replacement(hostile_run):
    """A function that patches numpy while being tested: the test cell says so."""
    nb = nbformat.read(hostile_run["work"] / "autograded" / "h_patch_in_call" / ASSIGNMENT
                       / f"{ASSIGNMENT}.ipynb", as_version=4)
    errors = [o.get("evalue", "") for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.get("output_type") == "error"]
    assert errors


def _hidden_lines(assignment):
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    lines = set()
    for cell in nb.cells:
        if "### BEGIN HIDDEN TESTS" in cell.source:
            body = cell.source.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]
            lines |= {l.strip() for l in body.splitlines() if len(l.strip()) > 20}
    return lines


def test_the_judge_runs_this_assignments_tests():
    from helpers.grading.judge import trusted_cells
    source = nbformat.read(REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    assert trusted_cells(source), f"{ASSIGNMENT}'s tests should run in the judge (course.judge)"


def test_hidden_tests_never_reach_the_students_kernel(hostile_run):
    """The student's kernel prints every piece of code it was sent: no hidden test is there."""
    work, hidden = hostile_run["work"], _hidden_lines(ASSIGNMENT)
    assert hidden
    nb = nbformat.read(work / "autograded" / "h_print_history" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                       as_version=4)
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "def conv_1x1" in printed, "the attack should have printed the kernel's history"
    assert not [l for l in hidden if l in printed]
    import html
    import re
    for page in (work / "feedback").glob("*/*/*.html"):
        raw = page.read_text(encoding="utf-8")
        text = html.unescape(re.sub(r"<[^>]+>", "", raw))
        assert not [l for l in hidden if l in text], f"{page} shows hidden test lines"
        assert "<script>alert(1)" not in raw and "<img src=x onerror" not in raw, page


def test_forged_partial_credit_and_forged_tokens_score_nothing(hostile_run):
    r = hostile_run["results"]
    for student in ("h_displayhook_pass", "h_forge_tokens", "h_reinstall_after_restore",
                    "h_hijack_import", "h_spoof_the_wire"):
        assert r[student].score == 0, (student, r[student])


def test_the_judge_and_the_grader_stay_bounded(hostile_run):
    """Red-team attacks on the judge: answers that decode into gigabytes, a 20 MB error
    message, a flood whenever the grader runs its own code, code that ast cannot parse.
    Each scores nothing, is graded (not an error of the grader) and leaves small files."""
    r, work = hostile_run["results"], hostile_run["work"]
    for student in ("h_amplify_in_the_judge", "h_huge_error_text", "h_flood_the_graders_reads",
                    "h_unparsable_for_the_judge"):
        assert r[student].score == 0 and r[student].status != "error", (student, r[student])
        graded = work / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert graded.stat().st_size < 3 * 2**20, (student, graded.stat().st_size)
