"""The sandbox (bubblewrap + cgroups) and the in-kernel guard, without nbgrader (fast)."""
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat
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
    server = socket.socket()              # a server on this machine's loopback
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code, out, _ = _run_sandboxed(tmp_path, f"""
        import os, socket
        repo = {str(REPO)!r}
        print("solutions", os.path.exists(repo + "/solutions"))
        print("helpers", os.path.exists(repo + "/helpers/checks/_compare.py"))
        print("grading", os.listdir(repo + "/helpers/grading"))
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
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            print("network yes")
        except OSError:
            print("network no")
        print("pid", os.getpid())
    """)
    assert code == 0, out
    assert "solutions False" in out and "helpers True" in out and "outside False" in out
    assert "grading []" in out               # the grading machinery is hidden from student code
    assert "wrote" not in out and out.count("denied") == 3
    assert f"cwd {sandbox.SANDBOX_WORK} ['mine.txt']" in out
    assert "network no" in out
    server.setblocking(False)
    with pytest.raises(BlockingIOError):
        server.accept()                   # nothing reached it
    server.close()
    assert (tmp_path / "work" / "mine.txt").read_text() == "ok"
    assert not (REPO / "helpers" / "pwned.py").exists()


@needs_sandbox
def test_a_checkout_in_a_folder_kernels_see_is_hidden_but_for_helpers_and_data(tmp_path):
    """A course checked out under /opt (which every kernel sees read-only, as /usr and
    /etc): its solutions/ and grading folder (results, the judge's key) are hidden from the
    kernel; helpers/ and data/ stay readable."""
    if not os.access("/opt", os.W_OK):
        pytest.skip("needs a writable /opt")
    repo = Path(tempfile.mkdtemp(prefix="course-checkout-", dir="/opt"))
    try:
        os.chmod(repo, 0o755)                       # as a checkout is (mkdtemp's 0700 would hide it)
        for sub in ("helpers", "data"):
            (repo / sub).symlink_to(REPO / sub)
        (repo / "solutions").mkdir()
        (repo / "solutions" / "answer.txt").write_text("secret")
        (repo / "grading").mkdir()
        (repo / "grading" / ".judge-key").write_text("k" * 64)
        os.chmod(repo / "grading" / ".judge-key", 0o644)          # readable, were it seen
        assert sandbox.under_system_binds(repo, sandbox._system_binds())
        work, rt = tmp_path / "work", tmp_path / "rt"
        work.mkdir()
        rt.mkdir()
        code = (f"import os\nr = {str(repo)!r}\n"
                "print('seen', [os.path.exists(r + p) for p in ('/helpers/checks/_compare.py', '/data', "
                "'/solutions/answer.txt', '/grading/.judge-key')])\n")
        cmd = sandbox.kernel_command([sys.executable, "-c", code], workdir=work, runtime_dir=rt, limits=Limits(),
                                     cgroup=None, log_path=tmp_path / "log", repo=repo)
        subprocess.run(cmd, env=kernel_env(1), cwd=rt, timeout=60)
        assert "seen [True, True, False, False]" in (tmp_path / "log").read_text()
    finally:
        shutil.rmtree(repo, ignore_errors=True)


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


# --------------------------------------------------------------------------- least privilege

#: Run inside a kernel: what it can do to the host, as one JSON line ("PRIVS {...}").
#: REPO and GRADER_PID are put in front of it.
PROBE = r'''
import ctypes, errno, json, os, signal, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
HELPERS = REPO + "/helpers"
seen = {}
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
seen["status"] = {k: status[k].split() for k in ("Uid", "Gid", "CapEff", "CapPrm", "CapBnd", "NoNewPrivs")}
seen["uid"] = [os.getuid(), os.geteuid()]
def errno_of(call):
    try:
        call()
        return 0
    except OSError as exc:
        return exc.errno
seen["shadow"] = errno_of(lambda: open("/etc/shadow").read())
def mount(src, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if s else None
    return 0 if libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)) == 0 else ctypes.get_errno()
MS_REMOUNT, MS_BIND = 32, 4096
seen["remount"] = [mount(None, HELPERS, None, MS_REMOUNT | MS_BIND), mount(None, HELPERS, None, MS_REMOUNT),
                   subprocess.run(["mount", "-o", "remount,rw", HELPERS], capture_output=True).returncode]
for d in ("/tmp/cg", "/tmp/pr"):
    os.makedirs(d, exist_ok=True)
seen["cgroup"] = [mount("cgroup", "/tmp/cg", "cgroup", 0, "memory"), mount("cgroup2", "/tmp/cg", "cgroup2", 0)]
seen["proc"] = mount("proc", "/tmp/pr", "proc", 0)
seen["helpers_write"] = errno_of(lambda: open(HELPERS + "/pwned.py", "w").write("x"))
class Handle(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint), ("type", ctypes.c_int), ("f", ctypes.c_ubyte * 128)]
h, mnt = Handle(128, 0), ctypes.c_int()
if libc.name_to_handle_at(-100, HELPERS.encode(), ctypes.byref(h), ctypes.byref(mnt), 0) != 0:
    h = Handle(8, 1)            # "shocker": inode 2 (a file system's root), generation 0
    h.f[0] = 2
fd = os.open(HELPERS, os.O_RDONLY)
got = libc.syscall(304, fd, ctypes.byref(h), os.O_RDONLY)   # open_by_handle_at, x86_64
seen["open_by_handle_at"] = ctypes.get_errno() if got < 0 else "opened"
seen["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
seen["kill_grader"] = errno_of(lambda: os.kill(GRADER_PID, 0))      # a process outside
seen["cgroup_files"] = os.path.exists("/sys/fs/cgroup")
seen["userns"] = [subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -o remount,rw,bind " + HELPERS +
                                  " && mount -t cgroup -o memory cgroup /tmp/cg"], capture_output=True).returncode,
                  subprocess.run(["unshare", "-U", "true"], capture_output=True).returncode]
os.write(2, b"kernel-log-marker\n")
print("PRIVS " + json.dumps(seen))
'''


def _privileges(text):
    line = next(l for l in text.splitlines() if l.startswith("PRIVS "))
    return json.loads(line[len("PRIVS "):])


def _assert_unprivileged(seen):
    st = seen["status"]
    assert int(st["CapEff"][0], 16) == 0 and int(st["CapPrm"][0], 16) == 0, st
    assert int(st["CapBnd"][0], 16) == 0 and st["NoNewPrivs"] == ["1"], st
    assert 0 not in seen["uid"] and "0" not in st["Uid"] and "0" not in st["Gid"], st
    assert seen["shadow"] == errno.EACCES
    assert all(e == errno.EPERM for e in seen["remount"][:2]) and seen["remount"][2] != 0
    assert seen["cgroup"] == [errno.EPERM, errno.EPERM] and seen["proc"] == errno.EPERM
    assert seen["helpers_write"] in (errno.EROFS, errno.EACCES)
    assert seen["open_by_handle_at"] == errno.EPERM
    assert len(seen["pids"]) <= 3, "it sees only the sandbox's own processes"
    assert seen["kill_grader"] == errno.ESRCH
    assert not seen["cgroup_files"] and seen["userns"][0] != 0
    if sandbox.userns_filter() is not None:          # refused by the seccomp filter
        assert seen["userns"][1] != 0, "it cannot make a user namespace"


def _spy_submission(subs, student):
    """The reference solution plus one extra cell that records what the kernel may do."""
    nb = nbformat.read(REPO / "solutions" / "conv_1x1" / "conv_1x1.ipynb", as_version=4)
    code = f"REPO, GRADER_PID = {str(REPO)!r}, {os.getpid()}\n" + PROBE
    nb.cells.insert(2, nbformat.v4.new_code_cell(code))
    dest = subs / student / "conv_1x1"
    dest.mkdir(parents=True)
    nbformat.write(nb, dest / "conv_1x1.ipynb")


@needs_sandbox
def test_grading_kernel_runs_unprivileged(tmp_path):
    """Graded for real: the reference 3/3 and the blank 0 with the sandbox on, and from
    inside a grading kernel: no capability, not root, no secret, no remount, no cgroup
    or proc mount, no open_by_handle_at, no process outside to signal."""
    subs = tmp_path / "subs"
    _spy_submission(subs, "spy")
    for student, side in (("ref", "solutions"), ("blank", "notebooks")):
        (subs / student / "conv_1x1").mkdir(parents=True)
        shutil.copy(REPO / side / "conv_1x1" / "conv_1x1.ipynb", subs / student / "conv_1x1")
    results = {r.student: r for r in grading.grade(subs, work=tmp_path / "work", names=["conv_1x1"],
                                                   workers=1, feedback=False, log=lambda *a: None)}
    assert results["ref"].score == results["ref"].max_score == 3
    assert results["blank"].score == 0
    assert results["spy"].score == 3, results["spy"].reason
    nb = nbformat.read(tmp_path / "work" / "autograded" / "spy" / "conv_1x1" / "conv_1x1.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    _assert_unprivileged(_privileges(text))
    assert not (REPO / "helpers" / "pwned.py").exists()


@needs_sandbox
def test_kernel_uid_on_the_host_and_its_folders(tmp_path):
    """Seen from the host: the kernel process is not uid 0 and has no capability; the
    grader still reads its log; its folders are its own (root grader) or ours."""
    probe = f"REPO, GRADER_PID = {str(REPO)!r}, {os.getpid()}\n" + PROBE + "\n__import__('time').sleep(3)"
    work, rt = tmp_path / "work", tmp_path / "rt"
    work.mkdir()
    rt.mkdir(mode=0o700)
    cmd = kernel_command([sys.executable, "-c", probe, "course-probe-marker"], workdir=work,
                         runtime_dir=rt, limits=Limits(), cgroup=None, log_path=tmp_path / "log")
    proc = subprocess.Popen(cmd, env=kernel_env(1), cwd=rt)
    host = []
    for _ in range(300):
        for p in Path("/proc").iterdir():
            try:
                argv = (p / "cmdline").read_bytes().split(b"\0") if p.name.isdigit() else []
                if argv[:1] == [sys.executable.encode()] and b"course-probe-marker" in argv:
                    host.append(dict(l.split(":", 1) for l in (p / "status").read_text().splitlines()))
            except OSError:
                pass
        if host or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert proc.wait(timeout=120) == 0
    log = (tmp_path / "log").read_text()
    _assert_unprivileged(_privileges(log))
    assert "kernel-log-marker" in log
    uids = {h["Uid"].split()[0] for h in host}
    assert host and "0" not in uids and all(int(h["CapEff"], 16) == 0 for h in host), host
    if os.geteuid() == 0:
        assert {str(work.stat().st_uid), str(rt.stat().st_uid)} == uids
        assert int(next(iter(uids))) in sandbox.KERNEL_UIDS or uids == {str(sandbox.NOBODY)}


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(os.geteuid() != 0 or not Path(SYSTEM_PYTHON).exists() or not shutil.which("setpriv"),
                    reason="needs root (to become nobody) and a system Python")
def test_sandbox_for_a_grader_that_is_not_root():
    """An instructor without root (here: nobody, with the system's Python; unprivileged
    user namespaces): the sandbox starts and its kernel is just as unprivileged."""
    tmp_path = Path(tempfile.mkdtemp(prefix="course-nonroot-", dir="/tmp"))   # nobody can reach it
    tmp_path.chmod(0o755)
    try:
        _run_as_nobody(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _run_as_nobody(tmp_path):
    for d in ("work", "rt"):
        (tmp_path / d).mkdir()
        os.chown(tmp_path / d, sandbox.NOBODY, sandbox.NOBODY)
    driver = textwrap.dedent(f"""
        import importlib, subprocess, sys, types
        pkg = types.ModuleType("grading")          # the package without its __init__ (nbgrader)
        pkg.__path__ = [{str(REPO / "helpers" / "grading")!r}]
        sys.modules["grading"] = pkg
        sb = importlib.import_module("grading.sandbox")
        assert sb.sandbox_problem() is None, sb.sandbox_problem()
        assert sb.kernel_uid() is None
        cmd = sb.kernel_command([sys.executable, "-c", sys.argv[1]], workdir={str(tmp_path / "work")!r},
                                runtime_dir={str(tmp_path / "rt")!r}, limits=sb.Limits(), cgroup=None,
                                log_path={str(tmp_path / "rt" / "log")!r})
        sys.exit(subprocess.run(cmd, env=sb.kernel_env(1)).returncode)
    """)
    probe = f"REPO, GRADER_PID = {str(REPO)!r}, {os.getpid()}\n" + PROBE
    out = subprocess.run(["setpriv", f"--reuid={sandbox.NOBODY}", f"--regid={sandbox.NOBODY}",
                          "--clear-groups", SYSTEM_PYTHON, "-c", driver, probe],
                         capture_output=True, text=True, timeout=120, cwd="/")
    log = (tmp_path / "rt" / "log").read_text() if (tmp_path / "rt" / "log").exists() else ""
    if out.returncode != 0 and "user namespaces" in out.stderr:
        pytest.skip("no unprivileged user namespaces here")
    assert out.returncode == 0, out.stderr + log
    seen = _privileges(log)
    _assert_unprivileged(seen)
    assert seen["uid"] == [sandbox.NOBODY] * 2
