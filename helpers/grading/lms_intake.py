"""An LMS's "download all submissions" zip -> the folder ``python -m helpers grade`` reads.

``unpack(zip, outdir, fmt)`` writes ``outdir/<student>/<assignment>/<assignment>.ipynb`` and
``outdir/lms-intake.json`` (who is who in the LMS, late marks, every file not taken, and
why). ``grade`` reads only folders, so the JSON beside them is not graded.

Formats (the file name decides the student; the notebook's own name, the assignment):

* ``canvas``: a flat zip of ``<name>_[late_]<user id>_<submission id>_<original name>``,
  e.g. ``obrienzoe_late_12345_67890_conv_1x1.ipynb`` (Canvas writes ``late`` in lower
  case; both cases are read). A student's several files for one assignment (Canvas'
  ``conv_1x1-1.ipynb``, a browser's ``conv_1x1 (1).ipynb``): the highest submission id wins.
* ``moodle``: one folder per participant, ``<Full Name>_<participant id>_assignsubmission_file_/
  <original name>`` (Moodle writes no late marks in the zip).
* ``regex``: a regular expression with named groups ``student`` (required), ``assignment``
  and ``late`` (optional; a non-empty ``late`` is a late mark), matched against the entry's
  whole path, as nbgrader's ``zip_collect`` does; without ``assignment`` the file's name is used.

Safety: nothing is written from an entry's own path (each notebook goes to a path built
from a sanitised student id and a known assignment name); entries with ``..``, an absolute
path or a symlink mode are refused; a zip of more than :data:`MAX_ENTRIES` entries is
refused whole; a file is read in chunks and dropped when it declares or yields more than
:data:`MAX_FILE_BYTES` or more bytes than it declared, and reading stops at
:data:`MAX_TOTAL_BYTES` for the whole zip (a zip bomb costs at most that much).
"""
from __future__ import annotations

import json
import os
import re
import stat
import unicodedata
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .intake import MAX_NOTEBOOK_MB, STUDENT_ID

#: A zip with more entries than this is refused whole.
MAX_ENTRIES = 5000
#: One file may unpack to at most this many bytes (the grader's notebook cap).
MAX_FILE_BYTES = int(MAX_NOTEBOOK_MB * 1024 * 1024)
#: All files of one zip together may unpack to at most this many bytes.
MAX_TOTAL_BYTES = 1024 ** 3
#: Where the intake writes its record, inside ``outdir``.
RECORD = "lms-intake.json"

_CHUNK = 1 << 16
_CANVAS = re.compile(r"(?P<name>[^_/]+)_(?:(?P<late>late)_)?(?P<lms_id>\d+)_(?P<sub>\d+)_(?P<orig>.+)",
                     re.IGNORECASE)
_MOODLE = re.compile(r"(?P<name>.+)_(?P<lms_id>\d+)_assign(submission|feedback)_[a-z]+_")
_DUPLICATE = re.compile(r"(?: \(\d+\)|-\d+)$")     # "conv_1x1 (1)", Canvas' "conv_1x1-1"


class LmsZipError(ValueError):
    """The zip cannot be taken at all (not a zip, too many entries, bad pattern, OUTDIR in use)."""


def student_id(name, lms_id=""):
    """A grading student id (matches :data:`~helpers.grading.intake.STUDENT_ID`) for a name.

    Accents are dropped (``Zoë`` -> ``Zoe``), every other character outside ``[A-Za-z0-9_.-]``
    becomes ``_``; the LMS id, where there is one, is appended so that namesakes differ.

    >>> student_id("Zoë O'Brien, Jr.", "12345")
    'Zoe_O_Brien_Jr_12345'
    """
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:80] or "student"
    sid = f"{text}_{lms_id}" if lms_id else text
    assert STUDENT_ID.fullmatch(sid), sid
    return sid


def known_assignments(solutions=None):
    """The course's assignments: the folder names under ``solutions/``."""
    from .course import SOLUTIONS
    root = Path(solutions or SOLUTIONS)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _assignment_of(original, assignments):
    """(assignment, None) for a notebook file name, or (None, reason)."""
    base = PurePosixPath(original).name
    if not base.lower().endswith(".ipynb"):
        return None, "not a notebook (.ipynb)"
    stem = base[:-len(".ipynb")].strip()
    for name in (stem, _DUPLICATE.sub("", stem)):      # an assignment may itself end in -2
        if name in assignments:
            return name, None
    return None, f"no assignment named {stem!r} (known: {', '.join(sorted(assignments))})"


def _classify(path, fmt, pattern, assignments):
    """One entry's path -> dict(student, name, lms_id, assignment, late, order), or a reason."""
    if fmt == "canvas":
        m = _CANVAS.fullmatch(PurePosixPath(path).name)
        if not m:
            return "name is not <name>_[late_]<user id>_<submission id>_<file> (Canvas)"
        name, lms_id, original = m["name"], m["lms_id"], m["orig"]
        late, order = bool(m["late"]), int(m["sub"])
    elif fmt == "moodle":
        parts = PurePosixPath(path).parts
        m = _MOODLE.fullmatch(parts[0]) if len(parts) >= 2 else None
        if not m:
            return "not in a <Full Name>_<id>_assignsubmission_<plugin>_ folder (Moodle)"
        name, lms_id, original, late, order = m["name"], m["lms_id"], parts[-1], None, 0
    else:
        m = pattern.fullmatch(path)
        if not m or not m.group("student"):
            return f"does not match the pattern {pattern.pattern!r}"
        groups = m.groupdict()
        name, lms_id, late, order = groups["student"], "", bool(groups.get("late")), 0
        original = path
        if "assignment" in groups:     # a name with or without .ipynb
            original = re.sub(r"(?i)(\.ipynb)?$", ".ipynb", groups["assignment"] or "", count=1)
    assignment, why = _assignment_of(original, assignments)
    if why:
        return why
    return dict(student=student_id(name, lms_id), name=name, lms_id=lms_id,
                assignment=assignment, late=late, order=order)


def _refusal(info):
    """Why an entry is refused before it is read (path, link, declared size), else None."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "absolute path"
    if ".." in name.split("/"):
        return "path escapes the folder (..)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    if PurePosixPath(name).parts[:1] == ("__MACOSX",) or PurePosixPath(name).name.startswith("."):
        return "hidden or macOS metadata file"
    if info.file_size > MAX_FILE_BYTES:
        return f"declares {info.file_size} bytes, over the {MAX_FILE_BYTES}-byte cap per file"
    return None


def _read_capped(zf, info, budget):
    """The entry's bytes, or (None, reason) when it yields more than it declared or the caps."""
    cap = min(info.file_size, MAX_FILE_BYTES, budget)
    chunks, size = [], 0
    try:
        with zf.open(info) as f:
            while chunk := f.read(_CHUNK):
                size += len(chunk)
                if size > cap:
                    why = ("yields more bytes than it declares" if size > info.file_size
                           else f"the zip's {MAX_TOTAL_BYTES}-byte total cap is spent")
                    return None, why
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        return None, f"corrupt or unreadable entry ({exc})"
    return b"".join(chunks), None


def _write_new(path, data):
    """Write ``data`` to a new file (never through a link, never over a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def unpack(zip_path, outdir, fmt="canvas", pattern=None, assignments=None):
    """Unpack an LMS zip into ``outdir/<student>/<assignment>/<assignment>.ipynb``.

    zip_path: the LMS's "download all submissions" zip.
    outdir: a folder that does not exist yet or is empty.
    fmt: ``"canvas"``, ``"moodle"`` or ``"regex"`` (then ``pattern``, a str or compiled
      regular expression with a ``student`` group).
    assignments: the assignment names files may map to (default: :func:`known_assignments`).
    Returns the record also written to ``outdir/lms-intake.json``: ``students`` (id ->
    ``{"name", "lms_id"}``), ``files`` (id -> assignment -> the zip entry taken), ``late``
    (id -> assignment -> bool, where the LMS marks it), ``unmapped`` (list of ``{"file",
    "reason"}``: every file not taken).
    """
    if fmt not in ("canvas", "moodle", "regex"):
        raise LmsZipError(f"unknown format {fmt!r}: canvas, moodle or regex")
    if fmt == "regex":
        try:
            pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        except re.error as exc:
            raise LmsZipError(f"--pattern is not a regular expression: {exc}") from None
        if pattern is None or "student" not in pattern.groupindex:
            raise LmsZipError("--pattern needs a named group (?P<student>...)")
    assignments = set(assignments or known_assignments())
    outdir = Path(outdir)
    if outdir.is_symlink() or (outdir.exists() and any(outdir.iterdir())):
        raise LmsZipError(f"{outdir} exists and is not empty (or is a link): choose a new folder")
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise LmsZipError(f"{zip_path}: not a readable zip ({exc})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(zf.infolist()) > MAX_ENTRIES:
            raise LmsZipError(f"{zip_path} has {len(zf.infolist())} entries, over the cap of {MAX_ENTRIES}")
        unmapped, chosen = [], {}
        for info in infos:
            why = _refusal(info)
            found = why or _classify(info.filename.replace("\\", "/"), fmt, pattern, assignments)
            if isinstance(found, str):
                unmapped.append({"file": info.filename, "reason": found})
                continue
            key = (found["student"], found["assignment"])
            old = chosen.get(key)
            if old is not None and old[1]["order"] >= found["order"]:
                unmapped.append({"file": info.filename, "reason": f"superseded by {old[0].filename}"})
                continue
            if old is not None:
                unmapped.append({"file": old[0].filename, "reason": f"superseded by {info.filename}"})
            chosen[key] = (info, found)
        outdir.mkdir(parents=True, exist_ok=True)
        record = {"format": fmt, "students": {}, "files": {}, "late": {}, "unmapped": unmapped}
        budget = MAX_TOTAL_BYTES
        for (student, assignment), (info, found) in sorted(chosen.items()):
            data, why = _read_capped(zf, info, budget)
            if why:
                unmapped.append({"file": info.filename, "reason": why})
                continue
            budget -= len(data)
            _write_new(outdir / student / assignment / f"{assignment}.ipynb", data)
            record["students"][student] = {"name": found["name"], "lms_id": found["lms_id"]}
            record["files"].setdefault(student, {})[assignment] = info.filename
            if found["late"] is not None:
                record["late"].setdefault(student, {})[assignment] = found["late"]
    (outdir / RECORD).write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    return record


def report(record):
    """Lines for the instructor: what was taken, and every file that was not, with why."""
    n = sum(len(v) for v in record["files"].values())
    late = sum(v for marks in record["late"].values() for v in marks.values())
    lines = [f"{n} notebooks of {len(record['students'])} students unpacked ({late} marked late)"]
    if record["unmapped"]:
        lines.append(f"{len(record['unmapped'])} files not taken:")
        lines += [f"  {u['file']}: {u['reason']}" for u in record["unmapped"]]
    return lines


def cli(args):
    """``python -m helpers lms-intake ZIP OUTDIR --format ...``: unpack, print the report."""
    import sys
    try:
        record = unpack(args.zip, args.outdir, args.format, args.pattern, args.assignments)
    except LmsZipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report(record)))
    print(f"Grade it: python -m helpers grade {args.outdir}   (record: {Path(args.outdir) / RECORD})")
    return 0
