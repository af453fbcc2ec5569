"""Review in nbgrader's formgrader: the grading folder is an nbgrader course folder.

``grade`` writes its results through nbgrader into ``<work>/gradebook.db``, next to
``source/``, ``submitted/`` and ``autograded/``; :func:`write_config` adds the
``nbgrader_config.py`` that points the formgrader at that folder. ``python -m helpers review
WORK`` then starts JupyterLab there (:func:`review`): its Nbgrader menu, or the ``/formgrader``
page, lists every assignment, student and graded cell, shows the autograded notebooks, and
takes manual scores, extra credit and comments. Those live in the gradebook, so they stay:
a later ``grade`` skips the unchanged submissions and reads their score, adjustment
included, from the gradebook (:func:`helpers.grading.gradebook._load_done`); a regraded one
keeps them too (nbgrader's autograde sets only the automatic score), and ``grades.csv`` and
every export built from it show the adjusted score.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

CONFIG = "nbgrader_config.py"


def write_config(work):
    """Write ``<work>/nbgrader_config.py``: the formgrader's course folder is ``work``."""
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    text = ("# Written by `python -m helpers grade`: nbgrader's formgrader reviews this folder.\n"
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.root = {str(work)!r}\n")
    path = work / CONFIG
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_command(work, port, token):
    """The JupyterLab command that serves ``work`` with the formgrader (loopback only)."""
    jupyter = Path(sys.executable).parent / "jupyter"
    return [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={Path(work).resolve()}"]


def start(work, port=None, token=None, log_file=None, env=None):
    """Start JupyterLab on a graded folder; returns (process, formgrader URL with its token).

    The server runs in ``work`` (nbgrader reads ``nbgrader_config.py`` from its working
    folder) with a new session, so the caller can stop it and its kernels together.
    """
    work = Path(work).resolve()
    if not (work / "gradebook.db").exists():
        raise FileNotFoundError(f"{work} holds no gradebook.db: run `python -m helpers grade` first")
    write_config(work)
    port, token = port or free_port(), token or secrets.token_hex(16)
    if sys.platform.startswith("linux") and os.geteuid() == 0:
        extra = ["--allow-root"]
    else:
        extra = []
    proc = subprocess.Popen(lab_command(work, port, token) + extra, cwd=work,
                            env=env, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, f"http://127.0.0.1:{port}/formgrader?token={token}"


def review(work, port=None):
    """``python -m helpers review``: serve ``work`` until Ctrl-C; print the formgrader's URL."""
    def stop(signum, frame):
        raise KeyboardInterrupt
    proc, url = start(work, port)
    print(f"The formgrader of {Path(work).resolve()}: open {url}\n"
          "(JupyterLab's Nbgrader menu has it too). Ctrl-C stops the server.", flush=True)
    old = signal.signal(signal.SIGTERM, stop)      # a kill of this command stops the server too
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, old)
        stop_server(proc)


def stop_server(proc, seconds=15):
    """Stop a server from :func:`start` and everything it started (its kernels)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
