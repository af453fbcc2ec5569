#!/usr/bin/env python3
"""Set up the course and run its two jobs. Needs only Python 3.11 and pip.

    python3 course.py demo    build the release, autograde the demo submissions, print grades
    python3 course.py test    run the test suite (what CI runs)

Anything after the job name is passed on (``python3 course.py test -k conv``).
The first run creates ``.venv/`` and installs requirements.txt and the
``helpers`` package (editable); later runs reinstall only when requirements.txt
or pyproject.toml changed.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".course-installed"


def say(msg):
    print(f"[course] {msg}", flush=True)


def ensure_env():
    if not PY.exists():
        say(f"creating virtual environment {VENV.relative_to(ROOT)}/")
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = hashlib.sha256(b"".join((ROOT / f).read_bytes()
                                   for f in ("requirements.txt", "pyproject.toml"))).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    say("installing requirements (first run takes a few minutes) ...")
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "-r", str(ROOT / "requirements.txt")])
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "--no-deps", "-e", str(ROOT)])
    STAMP.write_text(want)
    say("environment ready")


def ensure_system_packages(job):
    """Debian packages the jobs need, installed in one apt-get call if we can (Debian/Ubuntu, root):
    bubblewrap (grading runs every student kernel in it) and, for setup and test, chromium
    (tests/test_browser.py drives it with Playwright)."""
    if not sys.platform.startswith("linux"):
        return
    wanted = {"bwrap": "bubblewrap"}
    if job in ("setup", "test"):
        wanted["chromium"] = "chromium"
    missing = [pkg for cmd, pkg in wanted.items() if not shutil.which(cmd)]
    if missing and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"installing {' and '.join(missing)} with apt-get ...")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", *missing]
        if subprocess.call(cmd, env=env, stdout=subprocess.DEVNULL) != 0:
            subprocess.call(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
            subprocess.call(cmd, env=env, stdout=subprocess.DEVNULL)
    if not shutil.which("bwrap"):
        say("WARNING: bubblewrap (bwrap) is not installed; grading will refuse to run student code "
            "until it is (sudo apt-get install bubblewrap), or you pass --no-sandbox")
    if "chromium" in wanted and not shutil.which("chromium"):
        say("WARNING: chromium is not installed; tests/test_browser.py skips (fails in CI) "
            "until it is (sudo apt-get install chromium)")


def main(argv):
    jobs = {"demo": [str(PY), "-m", "helpers", "demo"],
            "test": [str(PY), "-m", "pytest"],
            "setup": None}
    if not argv or argv[0] not in jobs:
        print(__doc__)
        return 2
    ensure_env()
    ensure_system_packages(argv[0])
    cmd = jobs[argv[0]]
    if cmd is None:
        return 0
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0",
               PATH=str(PY.parent) + os.pathsep + os.environ.get("PATH", ""))
    say("running: " + " ".join([Path(cmd[0]).name, *cmd[1:], *argv[1:]]))
    return subprocess.call(cmd + argv[1:], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
