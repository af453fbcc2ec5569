"""Temporary folders of grading processes that were killed.

Each grading process makes its temporary folders as ``course-<kind>-<pid>-<random>`` (a
job's course folder, its judge's folder, the judge's zygote) and removes them when it is
done. A process killed outright (a worker that ran out of memory, a grading run stopped
with SIGKILL) removes nothing: over a term of runs such folders pile up. :func:`sweep`
removes those whose process is gone and which are older than any job runs, so that a
live grader's folder, even one in another PID namespace, is never touched.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

KINDS = ("job", "judge", "zygote")
#: Older than the longest wall limit of any assignment (gans: 3,000 s), with margin.
MAX_AGE = 6 * 3600
_NAME = re.compile(r"course-(%s)-(\d+)-[^/]+" % "|".join(KINDS))
_swept = set()


def prefix(kind):
    """The ``mkdtemp`` prefix of a ``kind`` folder made by this process."""
    assert kind in KINDS, kind
    return f"course-{kind}-{os.getpid()}-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                     # another user's process: alive
        return True
    return True


def sweep(where=None, max_age=MAX_AGE, now=None):
    """Remove the left-over folders under ``where`` (default: the temporary folder) whose
    process no longer exists and that were last changed more than ``max_age`` s ago.
    Returns how many were removed. Never raises."""
    where = Path(where or tempfile.gettempdir())
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(where.iterdir())
    except OSError:
        return 0
    for path in entries:
        match = _NAME.fullmatch(path.name)
        if not match or int(match.group(2)) == os.getpid():
            continue
        try:
            if path.is_symlink() or not path.is_dir() or now - path.lstat().st_mtime < max_age:
                continue
        except OSError:
            continue
        if not _alive(int(match.group(2))):
            shutil.rmtree(path, ignore_errors=True)
            removed += not path.exists()
    return removed


def sweep_once(where=None):
    """:func:`sweep`, at most once per process and folder (a worker grades many jobs)."""
    key = str(where or tempfile.gettempdir())
    if key not in _swept:
        _swept.add(key)
        sweep(where)
