"""nbgrader's exchange, end to end: helpers/grading/exchange.py (release, collect, return).

One instructor and two students, each with their own home folder and nbgrader
configuration (as a JupyterHub gives them, multi-course style: ``path_includes_course``),
on one real exchange in a temporary folder. The students run nbgrader's own commands, each
in a process of its own with their HOME; the student id stands in for the login name
nbgrader reads on a hub. The instructor runs ``python -m helpers``.
"""
import csv

import nbformat
import pytest

from helpers.__main__ import main
from helpers.grading.course import RELEASE, SOLUTIONS
from tests.students.corpus import HERE, build_submission, load_case

A, COURSE = "conv_1x1", "dl101"


def _student_home(tmp_path, name, exchange):
    home = tmp_path / name
    (home / ".jupyter").mkdir(parents=True)
    (home / ".jupyter" / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        "c.Exchange.path_includes_course = True\n"
        f"c.CourseDirectory.student_id = {name!r}\n")
    return home


def _as(monkeypatch, home, *args):
    """Run ``nbgrader ARGS`` as the user whose home is ``home``: a process of its own, as on
    a hub (in this process nbgrader's application singleton and log handlers would be shared
    with the grading that other tests ran here before)."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NB_USER"))}
    env.update(HOME=str(home), PYTHONNOUSERSITE="1")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=home, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} as {home.name}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture
def clean_env(monkeypatch):
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH",
                "JUPYTERHUB_USER", "NB_USER"):
        monkeypatch.delenv(var, raising=False)


def test_release_collect_grade_return_through_the_exchange(tmp_path, monkeypatch, clean_env, capsys):
    exchange, course, teacher = tmp_path / "exchange", tmp_path / "course", tmp_path / "instructor"
    teacher.mkdir()
    monkeypatch.setenv("HOME", str(teacher))
    homes = {s: _student_home(tmp_path, s, exchange) for s in ("alice", "bob")}
    as_teacher = ["--course-dir", str(course)]

    assert main(["release", A, *as_teacher]) == 2                  # not configured yet
    assert "exchange-config" in capsys.readouterr().err
    assert main(["exchange-config", "--course-id", COURSE, "--root", str(exchange), *as_teacher]) == 0
    assert main(["release", A, *as_teacher]) == 0
    assert oct((exchange).stat().st_mode & 0o777) == "0o777"      # every student may submit

    # Both fetch the release; alice submits the reference, bob a mistake (no bias).
    answers = {"alice": (SOLUTIONS / A / f"{A}.ipynb").read_bytes(),
               "bob": nbformat.writes(build_submission(load_case(HERE / A / "no_bias.py"))).encode()}
    for student, home in homes.items():
        _as(monkeypatch, home, "fetch_assignment", A, "--course", COURSE)
        mine = home / COURSE / A / f"{A}.ipynb"
        assert mine.read_bytes() == (RELEASE / A / f"{A}.ipynb").read_bytes()
        mine.write_bytes(answers[student])
        _as(monkeypatch, home, "submit", A, "--course", COURSE)

    monkeypatch.setenv("HOME", str(teacher))
    monkeypatch.chdir(tmp_path)
    assert main(["collect", A, *as_teacher]) == 0
    out = capsys.readouterr().out
    assert f"python -m helpers grade {course / 'submitted'} --out {course / 'graded'}" in out
    stamps = {}
    for student, answer in answers.items():
        sub = course / "submitted" / student / A
        assert (sub / f"{A}.ipynb").read_bytes() == answer
        stamps[student] = (sub / "timestamp.txt").read_text().strip()
        assert stamps[student][:2] == "20"                        # nbgrader's UTC timestamp

    # grade takes collect's folder as it is (timestamp.txt, submission_secret.txt beside).
    assert main(["grade", str(course / "submitted"), "--out", str(course / "graded"),
                 "--assignment", A, "--workers", "2"]) == 0
    with open(course / "graded" / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert (rows["alice"]["score"], rows["alice"]["max_score"], rows["alice"]["status"]) == \
        ("3", "3", "graded"), rows
    assert (rows["bob"]["score"], rows["bob"]["status"]) == ("1", "graded"), rows   # lost 2 of 3

    capsys.readouterr()
    assert main(["return", A, *as_teacher]) == 0
    assert "Feedback released to 2 student(s)" in capsys.readouterr().out
    assert len(list((exchange / COURSE / "feedback").glob("*.html"))) == 2

    # Each student fetches exactly their own feedback page, filed under their submission time.
    graded = course / "graded" / "feedback"
    for student, home in homes.items():
        _as(monkeypatch, home, "fetch_feedback", A, "--course", COURSE)
        pages = list((home / COURSE / A / "feedback").rglob("*.html"))
        assert [p.relative_to(home / COURSE / A / "feedback").as_posix() for p in pages] == \
            [f"{stamps[student]}/{A}.html"]
        page = pages[0].read_bytes()
        assert page == (graded / student / A / f"{A}.html").read_bytes()
        other = "bob" if student == "alice" else "alice"
        assert page != (graded / other / A / f"{A}.html").read_bytes()
        assert ("3.0 / 3.0" if student == "alice" else "1.0 / 3.0") in page.decode(), student

    # A submission collected again after grading gets no feedback until it is graded again.
    for student in homes:
        path = course / "submitted" / student / A / f"{A}.ipynb"
        path.write_bytes(path.read_bytes() + b"\n")
    capsys.readouterr()
    assert main(["return", A, *as_teacher]) == 0
    out = capsys.readouterr().out
    assert "Feedback released to 0 student(s)" in out and out.count("collected again after") == 2
    assert not any((course / "feedback").rglob("*.html"))
