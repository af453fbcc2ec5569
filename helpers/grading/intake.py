"""Intake: is a student's folder a notebook of this assignment that can be graded?

Nothing here executes student code or trusts the submitted files. Each rule below that
a submission breaks makes it ``malformed``, with a reason naming the file (and the cell,
where one applies); any other exception while reading one submission does too
(:func:`read_submission` is its error boundary), and the run goes on. This module reads
the folders and files (the first three rules); :mod:`helpers.grading.nbcheck` checks
the content of each notebook (the others):

* the student folder's name is an id: letters, digits, ``_ . -``, not starting with
  ``-`` or ``.`` (:data:`STUDENT_ID`);
* no symbolic link anywhere under ``DIR/<student>/``, the folder itself included, and
  nothing but folders and regular files there (:func:`student_problem`);
* each notebook of the release is a regular file of at most ``max_notebook_mb`` MB,
  opened through its folders without following links (``O_NOFOLLOW``) and read no
  further than that cap; only these notebooks are graded, nothing else in the folder;
* it is UTF-8 JSON of nbformat 4.0 to 4.5 with at most ``max_cells`` cells and
  ``max_json_objects`` JSON objects and arrays (cells, outputs, dicts: the schema check
  costs time per object), nested at most :data:`MAX_DEPTH` deep, that
  ``nbformat.validate`` accepts as it is (no upgrade);
* every ``metadata.nbgrader`` has exactly the keys and types of nbgrader's cell schema
  (v3): a dict, ``grade_id`` a str of ``[A-Za-z0-9_-]``, ``points`` a finite number >= 0,
  ``grade``/``solution``/``locked``/``task`` bools, ``schema_version`` 3, ...;
* it keeps at least one graded cell of the release notebook (same ``grade_id``), and
  nothing nbgrader's autograde would fail on: a release cell keeps its flags (grade,
  solution, locked, task) and points, no other cell is flagged.

Honest edits are repaired first (:func:`helpers.grading.nbcheck.repair`: a graded cell
pasted twice, a cell id twice, a graded cell switched to markdown, nbgrader metadata an
editor removed), the repaired notebook is checked again, and those bytes are graded; a
folder without ``<assignment>.ipynb`` has its one other notebook graded
(``conv_1x1 (1).ipynb``). Each repair is a line in ``notes``.

The caps are per assignment (:class:`Caps`, :func:`caps_for`): the source notebook's
``course`` metadata may set ``max_cells``, ``max_notebook_mb`` and ``max_json_objects``
like the sandbox limits.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from . import nbcheck
from .nbcheck import MAX_DEPTH, Malformed, Release, _flags, _short  # noqa: F401 (MAX_DEPTH, Malformed: API)

#: A student folder's name: what the gradebook, the CSV and the work folders may hold.
STUDENT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")     # fullmatch

#: Default caps (:class:`Caps`): a notebook's size (MB), its cells, its JSON objects and
#: arrays (the course's notebooks with outputs hold under 500).
MAX_NOTEBOOK_MB, MAX_CELLS, MAX_JSON_OBJECTS = 50, 1000, 20000
#: Files and folders a student folder may hold (the symlink scan stops there).
MAX_ENTRIES = 10000


@dataclass
class Caps:
    """What one notebook may be: at most ``max_cells`` cells, ``max_notebook_mb`` MB and
    ``max_json_objects`` JSON objects and arrays."""
    max_cells: int = MAX_CELLS
    max_notebook_mb: float = MAX_NOTEBOOK_MB
    max_json_objects: int = MAX_JSON_OBJECTS

    @classmethod
    def from_settings(cls, settings=None, **overrides):
        """Caps from a ``course`` metadata dict, then ``overrides`` (None ignored); a cap
        that is not a positive number raises ValueError."""
        values = {f.name: (settings or {}).get(f.name) for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if k in values and v is not None})
        caps = cls(**{k: v for k, v in values.items() if v is not None})
        for key, value in asdict(caps).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"course metadata {key} must be a positive number, not {value!r}")
        return caps

    @property
    def max_bytes(self):
        return int(self.max_notebook_mb * 2**20)


#: The names :class:`Caps` reads (a ``limits`` dict may set them too).
CAP_KEYS = tuple(f.name for f in fields(Caps))


def caps_for(assignment, solutions=None, **overrides):
    """The :class:`Caps` of an assignment: its source notebook's ``course`` metadata
    (``max_cells``, ``max_notebook_mb``, ``max_json_objects``), then ``overrides``, else
    the defaults."""
    from .course import SOLUTIONS, course_settings
    return Caps.from_settings(course_settings(assignment, solutions or SOLUTIONS), **overrides)


def release_cells(release_folder):
    """{notebook name: {grade_id: its nbgrader flags}} of the (trusted) release folder; the
    flags are the dict of ``grade``, ``solution``, ``locked``, ``task`` (bools); each
    {grade_id: flags} is a :class:`~helpers.grading.nbcheck.Release` that also holds the
    release cells (``cells``), to recognise graded cells whose metadata was removed."""
    import json
    out = {}
    for p in sorted(Path(release_folder).glob("*.ipynb")):
        cells = [c for c in json.loads(p.read_text(encoding="utf-8"))["cells"]
                 if c["metadata"].get("nbgrader", {}).get("grade_id")]
        out[p.name] = Release({c["metadata"]["nbgrader"]["grade_id"]: _flags(c["metadata"]["nbgrader"])
                               for c in cells},
                              {c["metadata"]["nbgrader"]["grade_id"]: c for c in cells})
    return out




# ---------------------------------------------------------------- the folders


def student_problem(submissions, student, max_entries=MAX_ENTRIES):
    """Why ``DIR/<student>/`` cannot be graded at all ("" if it can).

    Its name must match :data:`STUDENT_ID`; it, and everything under it, must be a
    folder or a regular file, never a symbolic link (nor a FIFO, socket or device):
    the reason names the first such path. Nothing is followed or opened but folders.
    """
    if not STUDENT_ID.fullmatch(student):
        return (f"student folder name {student!r} is not a valid id (letters, digits, _ . -; "
                "not starting with - or .)")
    top = Path(submissions) / student
    try:
        st = os.lstat(top)
        if stat.S_ISLNK(st.st_mode):
            return f"{student} is a symbolic link (to {_short(os.readlink(top), 80)!r}); links are refused"
        if not stat.S_ISDIR(st.st_mode):
            return f"{student} is not a folder"
        stack, seen = [(top, student)], 0
        while stack:
            folder, rel = stack.pop()
            with os.scandir(folder) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    seen += 1
                    if seen > max_entries:
                        return f"{student}/ holds more than {max_entries} files and folders"
                    path = f"{rel}/{entry.name}"
                    if entry.is_symlink():
                        target = _short(os.readlink(entry.path), 80)
                        return (f"{path!r} is a symbolic link (to {target!r}); links are refused "
                                f"anywhere under {student}/")
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, path))
                    elif not entry.is_file(follow_symlinks=False):
                        return f"{path!r} is neither a folder nor a regular file"
    except OSError as exc:
        return f"{student}/ cannot be listed ({exc.strerror or type(exc).__name__})"
    return ""


def _open_dir(name, dir_fd):
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _read_capped(dir_fd, name, max_bytes, mb):
    """The bytes of regular file ``name`` in ``dir_fd`` (no link followed, at most max_bytes)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise Malformed(f"missing notebook {name}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Malformed(f"{name} is a symbolic link; links are refused") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Malformed(f"{name} is not a regular file")
        too_big = Malformed(f"{name} is larger than {mb:g} MB (max_notebook_mb)")
        if st.st_size > max_bytes:
            raise too_big
        chunks, size = [], 0
        while size <= max_bytes:
            block = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not block:
                break
            chunks.append(block)
            size += len(block)
        if size > max_bytes:
            raise too_big
        return b"".join(chunks)
    finally:
        os.close(fd)


#: Names of other notebooks :func:`_other_notebook` may pick (they go into reasons and logs):
#: letters, digits, spaces, ``_ . ( ) -``; nothing that could forge a line or a terminal code.
_PLAIN_NAME = re.compile(r"[\w .()\-]{1,200}\.ipynb", re.ASCII)


def _other_notebook(dir_fd, name, expected):
    """The file to grade as ``name`` when the folder has no ``name``: ([notes], file name).

    The one ``.ipynb`` file there that is no other release notebook's name (a second
    download, ``conv_1x1 (1).ipynb``); of several, the newest copy of ``name``
    (``conv_1x1 (2).ipynb``, ``conv_1x1-1.ipynb``); else :class:`Malformed` naming them.
    Folders are listed, never followed; the file is opened later with ``O_NOFOLLOW``."""
    with os.scandir(dir_fd) as entries:
        found = sorted((e.name, e.stat(follow_symlinks=False).st_mtime) for e in entries
                       if e.name.endswith(".ipynb") and not e.name.startswith(".")
                       and e.name not in expected and e.is_file(follow_symlinks=False))[:100]
    odd = [n for n, _ in found if not _PLAIN_NAME.fullmatch(n)]
    found = [(n, t) for n, t in found if _PLAIN_NAME.fullmatch(n)]
    if odd and not found:
        raise Malformed(f"missing notebook {name}; the folder holds {len(odd)} other notebook(s) with "
                        f"unusual characters in the name: rename the one to grade to {name}")
    stem = name[:-len(".ipynb")]
    copies = [(t, n) for n, t in found if n[:len(stem)] == stem and not n[len(stem):-6].strip(" ()-_0123456789")]
    if len(found) == 1:
        return [f"{name}: graded {found[0][0]!r} (the only notebook in the folder)"], found[0][0]
    if copies:
        newest = max(copies)[1]
        return [f"{name}: graded {newest!r}, the newest of {', '.join(repr(n) for _, n in sorted(copies, key=lambda c: c[1]))}"], newest
    if found:
        listed = _short(", ".join(repr(n) for n, _ in found), 200)
        raise Malformed(f"missing notebook {name}; the folder holds {listed}: rename the one to "
                        f"grade to {name}")
    raise Malformed(f"missing notebook {name}")


def read_submission(submissions, student, assignment, expected, caps=None, notes=None):
    """Read and check ``DIR/<student>/<assignment>/``: the error boundary of one submission.

    submissions: the folder DIR; student (it passed :func:`student_problem`), assignment:
    names; expected: {notebook name: {grade_id: flags}} of the release (:func:`release_cells`);
    caps: :class:`Caps`; notes: a list that gets a line per honest edit repaired (a
    graded cell pasted twice, metadata an editor removed, ``conv_1x1 (1).ipynb`` graded as
    ``conv_1x1.ipynb``). Returns (status, reason, notebooks): status "ok" with {name: bytes}
    of exactly the bytes that were checked (grade those, never re-read the folder; a
    repaired notebook is checked again), "missing" when there is no assignment folder, or
    "malformed" with the reason. Never raises.
    """
    notes = notes if notes is not None else []
    caps = caps or Caps()
    fds, notebooks, problems = [], {}, []
    where = f"{student}/"
    try:
        fds.append(os.open(submissions, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        fds.append(_open_dir(student, fds[-1]))
        where = f"{student}/{assignment}/"
        try:
            fds.append(_open_dir(assignment, fds[-1]))
        except FileNotFoundError:
            return "missing", f"no folder {where}", {}
        for name, want in expected.items():
            where = name
            try:
                try:
                    data = _read_capped(fds[-1], name, caps.max_bytes, caps.max_notebook_mb)
                    mine = []
                except Malformed as exc:
                    if not str(exc).startswith("missing notebook"):
                        raise
                    mine, other = _other_notebook(fds[-1], name, expected)
                    where = other
                    data = _read_capped(fds[-1], other, caps.max_bytes, caps.max_notebook_mb)
                notebooks[name] = check_notebook(data, name, want, caps, mine)
                notes.extend(mine)
            except Malformed as exc:
                problems.append(str(exc))
    except Malformed as exc:
        problems.append(str(exc))
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            problems.append(f"{where} is a symbolic link or not a folder; links are refused")
        else:
            problems.append(f"{where} cannot be read ({exc.strerror or type(exc).__name__})")
    except Exception as exc:  # noqa: BLE001 - the boundary: one file never stops the run
        problems.append(f"{where} could not be checked (unexpected {type(exc).__name__}: {_short(exc, 200)})")
    finally:
        for fd in fds:
            os.close(fd)
    if problems:
        return "malformed", "; ".join(problems), {}
    return "ok", "", notebooks


# ---------------------------------------------------------------- one notebook


def check_notebook(data, name, want=(), caps=None, notes=None):
    """:func:`helpers.grading.nbcheck.check_notebook` with the default :class:`Caps`."""
    return nbcheck.check_notebook(data, name, want, caps or Caps(), notes)
