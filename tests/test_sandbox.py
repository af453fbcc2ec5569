"""The sandbox (bubblewrap + cgroups) and the in-kernel guard, without nbgrader (fast)."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import grading, guard
from helpers.grading import sandbox
from helpers.grading.sandbox import Cgroup, Limits, kernel_command, kernel_env, sandbox_problem

REPO = Path(__file__).resolve().parent.parent
needs_sandbox = pytest.mark.skipif(sandbox_problem() is not None,
                                   reason=f"sandbox unavailable: {sandbox_problem()}")


def test_limits_from_course_metadata():
    lim = Limits.from_settings({"cell_timeout": 30, "memory_mb": 1024, "title": "x"}, wall_timeout=99)
    assert (lim.cell_timeout, lim.memory_mb, lim.wall_timeout) == (30, 1024, 99)
    assert lim.max_processes == Limits().max_processes
    assert grading.limits_for("conv_1x1").cell_timeout == 60


def _run_sandboxed(tmp_path, code, limits=None, timeout=60):
    work, rt = tmp_path / "work", tmp_path / "rt"
    work.mkdir()
    rt.mkdir()
    limits = limits or Limits()
    cg = Cgroup.create(limits)
    try:
        cmd = kernel_command([sys.executable, "-c", textwrap.dedent(code)], workdir=work,
                             runtime_dir=rt, limits=limits, cgroup=cg, log_path=tmp_path / "log")
        proc = subprocess.run(cmd, env=kernel_env(1), cwd=rt, timeout=timeout)
        return proc.returncode, (tmp_path / "log").read_text(), cg
    finally:
        if cg is not None:
            cg.remove()


@needs_sandbox
def test_sandbox_view_of_the_disk_and_network(tmp_path):
    code, out, _ = _run_sandboxed(tmp_path, f"""
        import os, socket
        repo = {str(REPO)!r}
        print("solutions", os.path.exists(repo + "/solutions"))
        print("helpers", os.path.exists(repo + "/helpers/checks/_compare.py"))
        print("outside", os.path.exists({str(tmp_path)!r} + "/log"))
        for path in (repo + "/helpers/pwned.py", "/etc/pwned", "/usr/pwned"):
            try:
                open(path, "w").write("x")
                print("wrote", path)
            except OSError:
                print("denied", path)
        open("mine.txt", "w").write("ok")
        open("/tmp/t.txt", "w").write("ok")
        print("cwd", os.getcwd(), sorted(os.listdir(".")))
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=2)
            print("network yes")
        except OSError:
            print("network no")
        print("pid", os.getpid())
    """)
    assert code == 0, out
    assert "solutions False" in out and "helpers True" in out and "outside False" in out
    assert "wrote" not in out and out.count("denied") == 3
    assert f"cwd {sandbox.SANDBOX_WORK} ['mine.txt']" in out
    assert "network no" in out
    assert (tmp_path / "work" / "mine.txt").read_text() == "ok"
    assert not (REPO / "helpers" / "pwned.py").exists()


@needs_sandbox
def test_process_and_memory_limits(tmp_path):
    if Cgroup.create(Limits()) is None:
        pytest.skip("cgroups not writable here")
    code, out, cg = _run_sandboxed(tmp_path, """
        import subprocess
        kids = []
        try:
            for _ in range(100):
                kids.append(subprocess.Popen(["sleep", "30"]))
        except OSError as exc:
            print("fork refused after", len(kids), type(exc).__name__)
    """, limits=Limits(max_processes=20))
    assert "fork refused after" in out, out
    (tmp_path / "work").rename(tmp_path / "work1")
    (tmp_path / "rt").rename(tmp_path / "rt1")
    code, out, _ = _run_sandboxed(tmp_path, """
        blocks = []
        while True:
            blocks.append(bytearray(b"x") * (50 * 2**20))
    """, limits=Limits(memory_mb=200))
    assert code != 0   # killed by the kernel's OOM killer, inside its cgroup


def test_grading_refuses_without_sandbox(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "_PROBLEM", "bubblewrap (bwrap) is not installed: run apt-get")
    (tmp_path / "subs").mkdir()
    with pytest.raises(sandbox.SandboxUnavailable, match="cannot grade safely.*bwrap.*--no-sandbox"):
        grading.grade(tmp_path / "subs", work=tmp_path / "w")
    from helpers.__main__ import main
    assert main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "w")]) == 2
    assert "cannot grade safely" in capsys.readouterr().err


def test_guard_restores_course_constants(monkeypatch, capsys):
    """The graded runs' recipes and the quality meter's thresholds are plain data: a
    submission that lowers mnist_classifier.CONFIDENCE or shortens a recipe gets them put
    back before each test, and a test during which they change fails."""
    from helpers import gan_training, mnist_classifier, style
    from helpers.checks import _compare
    monkeypatch.setattr(guard, "_STATE", {})
    guard.capture()
    recipes = gan_training.RECIPES
    monkeypatch.setattr(mnist_classifier, "CONFIDENCE", 0.0)
    monkeypatch.setitem(recipes["DCGAN"], "steps", 1)                  # changed in place
    monkeypatch.setitem(style.RECIPES, "pairs", {})
    monkeypatch.setattr(_compare, "EXPECTED_DIR", _compare.EXPECTED_DIR / "forged")
    changed = set(guard.changes())
    assert {"helpers.mnist_classifier.CONFIDENCE", "helpers.gan_training.RECIPES",
            "helpers.style.RECIPES", "helpers.checks._compare.EXPECTED_DIR"} <= changed
    with pytest.raises(AssertionError, match="replaced .*CONFIDENCE|replaced .*RECIPES"):
        guard.finish("tok-1")
    guard.restore("tok-2")
    assert mnist_classifier.CONFIDENCE == 0.9 and gan_training.RECIPES["DCGAN"]["steps"] == 1500
    assert gan_training.RECIPES is recipes, "a dict constant is restored in place"
    assert len(style.RECIPES["pairs"]) == 2 and _compare.EXPECTED_DIR.name == "expected"
    assert guard.changes() == []
    assert "tok-2" in capsys.readouterr().out
    # private caches (loaded data and models) are not constants: they may change
    assert not any("_CACHE" in c or "_MODEL" in c for c in changed)


def test_guard_restores_and_reports_replacements(capsys):
    import numpy
    import helpers.checks._compare as cmp
    guard.capture()
    real_allclose, real_expect = numpy.allclose, cmp.expect_close
    try:
        numpy.allclose = lambda *a, **k: True
        cmp.expect_close = lambda *a, **k: 0.0
        assert {"numpy.allclose", "helpers.checks._compare.expect_close"} <= set(guard.changes())
        with pytest.raises(AssertionError, match="replaced .*numpy.allclose"):
            guard.finish("tok-1")
        guard.restore("tok-2")
        assert numpy.allclose is real_allclose and cmp.expect_close is real_expect
        assert guard.changes() == []
        guard.finish("tok-3")
        out = capsys.readouterr().out
        assert "tok-2" in out and "tok-3" in out and "tok-1" not in out
        # course modules are snapshotted even before a notebook imports them (the GAN loop)
        import helpers.gan_training as gt
        real_train = gt.train_gan
        gt.train_gan = lambda *a, **k: {"confident": 1.0}
        assert "helpers.gan_training.train_gan" in guard.changes()
        guard.restore("tok-4")
        assert gt.train_gan is real_train and guard.active()
    finally:
        numpy.allclose, cmp.expect_close = real_allclose, real_expect
