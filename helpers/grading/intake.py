"""Intake: is a student's folder a notebook of this assignment that can be graded?

Nothing here executes student code or trusts the submitted files. Each rule below that
a submission breaks makes it ``malformed``, with a reason naming the file (and the cell,
where one applies); any other exception while reading one submission does too
(:func:`read_submission` is its error boundary), and the run goes on:

* the student folder's name is an id: letters, digits, ``_ . -``, not starting with
  ``-`` or ``.`` (:data:`STUDENT_ID`);
* no symbolic link anywhere under ``DIR/<student>/``, the folder itself included, and
  nothing but folders and regular files there (:func:`student_problem`);
* each notebook of the release is a regular file of at most ``max_notebook_mb`` MB,
  opened through its folders without following links (``O_NOFOLLOW``) and read no
  further than that cap; only these notebooks are graded, nothing else in the folder;
* it is UTF-8 JSON of nbformat 4.0 to 4.5 with at most ``max_cells`` cells, nested at
  most :data:`MAX_DEPTH` deep, that ``nbformat.validate`` accepts as it is (no upgrade);
* every ``metadata.nbgrader`` has exactly the keys and types of nbgrader's cell schema
  (v3): a dict, ``grade_id`` a str of ``[A-Za-z0-9_-]``, ``points`` a finite number >= 0,
  ``grade``/``solution``/``locked``/``task`` bools, ``schema_version`` 3, ...;
* it keeps at least one graded cell of the release notebook (same ``grade_id``), and
  nothing nbgrader's autograde would fail on: a release cell keeps its flags (grade,
  solution, locked, task) and points, no other cell is flagged, no flagged id twice.

The caps are per assignment (:class:`Caps`, :func:`caps_for`): the source notebook's
``course`` metadata may set ``max_cells`` and ``max_notebook_mb`` like the sandbox limits.
"""
from __future__ import annotations

import errno
import json
import os
import re
import stat
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

#: A student folder's name: what the gradebook, the CSV and the work folders may hold.
STUDENT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")     # fullmatch

#: Default caps (:class:`Caps`): a notebook's size (MB) and its number of cells.
MAX_NOTEBOOK_MB, MAX_CELLS = 50, 1000
#: JSON nesting deeper than this is refused (nbformat's own notebooks are ~8 deep).
MAX_DEPTH = 64
#: Files and folders a student folder may hold (the symlink scan stops there).
MAX_ENTRIES = 10000
#: The most points a cell's metadata may claim (nbgrader takes the real ones from the source).
MAX_POINTS = 1e6
_GRADE_ID = re.compile(r"[A-Za-z0-9_-]*")     # fullmatch
#: nbgrader's cell metadata schema v3 (nbgrader/nbgraderformat/v3.json): key -> kind.
_NBGRADER_KEYS = {"schema_version": "int", "grade": "bool", "locked": "bool", "solution": "bool",
                  "task": "bool", "grade_id": "str", "points": "number", "checksum": "str",
                  "cell_type": "str"}
_NBGRADER_REQUIRED = ("schema_version", "grade", "locked", "solution")
_FLAGS = ("grade", "solution", "locked", "task")


class Malformed(Exception):
    """A submission breaks an intake rule; ``str(exc)`` is the reason."""


@dataclass
class Caps:
    """What one notebook may be: at most ``max_cells`` cells and ``max_notebook_mb`` MB."""
    max_cells: int = MAX_CELLS
    max_notebook_mb: float = MAX_NOTEBOOK_MB

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
    (``max_cells``, ``max_notebook_mb``), then ``overrides``, else the defaults."""
    from .course import SOLUTIONS, course_settings
    return Caps.from_settings(course_settings(assignment, solutions or SOLUTIONS), **overrides)


def release_cells(release_folder):
    """{notebook name: {grade_id: its nbgrader flags}} of the (trusted) release folder; the
    flags are the dict of ``grade``, ``solution``, ``locked``, ``task`` (bools)."""
    import nbformat
    return {p.name: {c.metadata.nbgrader["grade_id"]: _flags(c.metadata.nbgrader)
                     for c in nbformat.read(p, as_version=4).cells
                     if c.metadata.get("nbgrader", {}).get("grade_id")}
            for p in sorted(Path(release_folder).glob("*.ipynb"))}


def _flags(meta):
    return {key: bool(meta.get(key, False)) for key in _FLAGS}


def _kind(value):
    return {dict: "a dict", list: "a list", str: "a str", bool: "a bool", int: "an int",
            float: "a float", type(None): "null"}.get(type(value), type(value).__name__)


def _short(text, n=300):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 3] + "..."


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


def read_submission(submissions, student, assignment, expected, caps=None):
    """Read and check ``DIR/<student>/<assignment>/``: the error boundary of one submission.

    submissions: the folder DIR; student (it passed :func:`student_problem`), assignment:
    names; expected: {notebook name: {grade_id: flags}} of the release (:func:`release_cells`);
    caps: :class:`Caps`. Returns (status, reason, notebooks): status "ok" with {name: bytes} of exactly the
    bytes that were checked (grade those, never re-read the folder), "missing" when
    there is no assignment folder, or "malformed" with the reason. Never raises.
    """
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
                data = _read_capped(fds[-1], name, caps.max_bytes, caps.max_notebook_mb)
                check_notebook(data, name, want, caps)
                notebooks[name] = data
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


def check_notebook(data, name, want=(), caps=None):
    """Check the bytes of one submitted notebook; raise :class:`Malformed` (reason) if bad.

    data: bytes; name: its file name (for the reason); want: {grade_id: flags} of the
    release notebook (:func:`release_cells`; empty: the last two rules are not checked);
    caps: :class:`Caps`. Only the rules in the module docstring are checked; nothing is
    changed or upgraded.
    """
    caps, bad = caps or Caps(), f"{name} is not a readable notebook"
    if len(data) > caps.max_bytes:
        raise Malformed(f"{name} is larger than {caps.max_notebook_mb:g} MB (max_notebook_mb)")
    try:
        nb = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Malformed(f"{bad} (not UTF-8 text: byte {exc.start})") from None
    except RecursionError:
        raise Malformed(f"{bad} (JSON nested too deeply)") from None
    except ValueError as exc:
        raise Malformed(f"{bad} (invalid JSON: {_short(exc, 120)})") from None
    _check_shape(nb, name, caps)
    for i, cell in enumerate(nb["cells"]):
        _check_cell_shape(cell, f"{name} cell {i}")
        _check_depth(cell, f"{name} cell {i}", MAX_DEPTH - 2)
    _check_depth(nb["metadata"], f"{name} metadata", MAX_DEPTH - 1)
    _check_text(nb, data, name)
    _validate_schema(nb, name)
    for i, cell in enumerate(nb["cells"]):
        _check_nbgrader(cell, f"{name} cell {i}")
    if want:
        _check_against_release(nb["cells"], name, want)


def _check_against_release(cells, name, want):
    """Some cell of the release is kept; none has what nbgrader's autograde cannot repair:
    a release cell with other flags (grade, solution, locked, task) or no points, a
    flagged cell that is not the release's, a flagged grade_id twice (a copied cell)."""
    ids = {c["metadata"].get("nbgrader", {}).get("grade_id") for c in cells} - {None, ""}
    if not ids:
        raise Malformed(f"{name} has no graded cells left (was it replaced or emptied?)")
    if not ids & set(want):
        raise Malformed(f"{name} is not this assignment's notebook (none of its graded cells)")
    seen = {}
    for i, cell in enumerate(cells):
        meta, where = cell["metadata"].get("nbgrader", {}), f"{name} cell {i}"
        flags, grade_id = _flags(meta), meta.get("grade_id")
        if grade_id in want:
            if flags != want[grade_id]:
                raise Malformed(f"{where}: the nbgrader flags of {grade_id!r} were changed "
                                f"({flags}, released as {want[grade_id]})")
            if flags["grade"] and "points" not in meta:
                raise Malformed(f"{where}: graded cell {grade_id!r} lost its points")
        elif any(flags.values()):
            raise Malformed(f"{where}: marked {'/'.join(k for k in _FLAGS if flags[k])} but its "
                            f"grade_id {_short(repr(grade_id), 60)} is none of the release's")
        if any(flags.values()):
            if grade_id in seen:
                raise Malformed(f"{where}: {grade_id!r} is also cell {seen[grade_id]} (a copied "
                                "graded cell? keep one)")
            seen[grade_id] = i


def _check_shape(nb, name, caps):
    import nbformat
    bad = f"{name} is not a readable notebook"
    if not isinstance(nb, dict):
        raise Malformed(f"{bad} (the JSON is {_kind(nb)}, not an object)")
    major, minor = nb.get("nbformat"), nb.get("nbformat_minor")
    newest = nbformat.v4.nbformat_minor
    if type(major) is not int or type(minor) is not int or major != 4 or not 0 <= minor <= newest:
        version = f"nbformat {_short(major, 20)}.{_short(minor, 20)}" if "nbformat" in nb else "no nbformat"
        raise Malformed(f"{bad} ({version}; 4.0 to 4.{newest} are read)")
    if not isinstance(nb.get("metadata"), dict):
        raise Malformed(f"{bad} (its metadata is {_kind(nb.get('metadata'))}, not a dict)")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise Malformed(f"{bad} (its cells are {_kind(cells)}, not a list)")
    if len(cells) > caps.max_cells:
        raise Malformed(f"{name} has {len(cells)} cells; at most {caps.max_cells} are accepted (max_cells)")


def _check_cell_shape(cell, where):
    """The parts of a cell the grader reads, before the schema (whose errors are long)."""
    if not isinstance(cell, dict):
        raise Malformed(f"{where} is {_kind(cell)}, not a cell (a dict)")
    if cell.get("cell_type") not in ("code", "markdown", "raw"):
        raise Malformed(f"{where} has cell_type {_short(repr(cell.get('cell_type')), 40)} "
                        "(code, markdown or raw)")
    if not isinstance(cell.get("metadata"), dict):
        raise Malformed(f"{where}: its metadata is {_kind(cell.get('metadata'))}, not a dict")
    if "id" in cell and not isinstance(cell["id"], str):
        raise Malformed(f"{where}: its id is {_kind(cell['id'])}, not a str")
    source = cell.get("source")
    if not isinstance(source, str) and not (isinstance(source, list) and set(map(type, source)) <= {str}):
        raise Malformed(f"{where}: its source is {_kind(source)}, not text (a str or a list of str)")


def _check_depth(value, where, limit):
    """Refuse JSON nested more than ``limit`` deep (nbformat and nbgrader copy it recursively)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= limit:
            raise Malformed(f"{where}: its JSON is nested more than {MAX_DEPTH} deep")
        children = item.values() if isinstance(item, dict) else item
        if set(map(type, children)) & {dict, list}:    # a list of a million numbers: one C pass
            stack.extend((x, depth + 1) for x in children if isinstance(x, (dict, list)))


def _check_text(nb, data, name):
    """Refuse text no UTF-8 file can hold (a lone surrogate, from a ``\\udXXX`` escape)."""
    if not re.search(rb"\\u[dD][89a-fA-F]", data):
        return
    parts = [(f"{name} cell {i}", cell) for i, cell in enumerate(nb["cells"])]
    for where, part in parts + [(f"{name} metadata", nb["metadata"])]:
        try:
            json.dumps(part, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Malformed(f"{where}: holds text that is not valid Unicode (a lone surrogate)") from None


def _validate_schema(nb, name):
    """``nbformat.validate`` against the notebook's own 4.x schema, no upgrade.

    (It renames duplicate cell ids of ``nb`` in place, as nbgrader's read will.)"""
    import nbformat
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(nb, version=4, version_minor=nb["nbformat_minor"])
    except nbformat.ValidationError as exc:
        text = str(exc).strip() or type(exc).__name__
        where = re.search(r"On instance\['cells'\]\[(\d+)\]", text)
        place = f"{name} cell {where.group(1)}" if where else name
        raise Malformed(f"{place} does not follow the notebook format "
                        f"({_short(text.splitlines()[0], 150)})") from None


def _check_nbgrader(cell, where):
    """``metadata.nbgrader``, if present, exactly as nbgrader's cell schema v3 types it."""
    if "nbgrader" not in cell["metadata"]:
        return
    meta = cell["metadata"]["nbgrader"]
    if not isinstance(meta, dict):
        raise Malformed(f"{where}: metadata.nbgrader is {_kind(meta)}, not a dict")
    unknown = sorted(str(k) for k in meta if k not in _NBGRADER_KEYS)
    if unknown:
        raise Malformed(f"{where}: metadata.nbgrader has key(s) nbgrader does not know: "
                        f"{_short(', '.join(map(repr, unknown[:3])), 120)}")
    missing = [k for k in _NBGRADER_REQUIRED if k not in meta]
    if missing:
        raise Malformed(f"{where}: metadata.nbgrader lacks {', '.join(missing)}")
    for key, value in meta.items():
        kind = _NBGRADER_KEYS[key]
        ok = {"int": type(value) is int, "bool": type(value) is bool, "str": isinstance(value, str),
              "number": type(value) in (int, float) and 0 <= value <= MAX_POINTS}[kind]
        if not ok:
            what = f"a number from 0 to {MAX_POINTS:g}" if kind == "number" else f"a {kind}"
            raise Malformed(f"{where}: metadata.nbgrader.{key} must be {what}, not "
                            f"{_kind(value)} ({_short(repr(value), 40)})")
    rules = {"schema_version": (meta["schema_version"] == 3, "is not 3"),
             "grade_id": (_GRADE_ID.fullmatch(meta.get("grade_id", "")), "may hold only letters, digits, _ and -"),
             "checksum": (len(meta.get("checksum", "x" * 32)) == 32, "is not 32 characters long"),
             "cell_type": (meta.get("cell_type", "code") in ("code", "markdown", "raw"),
                           "is not code, markdown or raw")}
    for key, (ok, why) in rules.items():
        if not ok:
            raise Malformed(f"{where}: metadata.nbgrader.{key} {_short(repr(meta[key]), 60)} {why}")
