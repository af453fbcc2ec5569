"""The content of one submitted notebook: can nbformat, nbgrader and the grader read it?

:func:`check_notebook` checks the bytes of a notebook against the last four rules listed
in :mod:`helpers.grading.intake` (which reads the files and calls it) and raises
:class:`Malformed` with a reason that names the file and, where one applies, the cell.
Nothing is executed, changed or upgraded; every check costs time in proportion to the
bytes (capped by the intake) or to the JSON objects and arrays (``max_json_objects``).
"""
from __future__ import annotations

import copy
import json
import re
import warnings

#: JSON nesting deeper than this is refused (nbformat's own notebooks are ~8 deep).
MAX_DEPTH = 64
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


def _flags(meta):
    return {key: bool(meta.get(key, False)) for key in _FLAGS}


def _kind(value):
    return {dict: "a dict", list: "a list", str: "a str", bool: "a bool", int: "an int",
            float: "a float", type(None): "null"}.get(type(value), type(value).__name__)


def _short(text, n=300):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 3] + "..."


def check_notebook(data, name, want, caps, notes=None):
    """Check the bytes of one submitted notebook; raise :class:`Malformed` (reason) if bad.

    data: bytes; name: its file name (for the reason); want: {grade_id: flags} of the
    release notebook (:func:`helpers.grading.intake.release_cells`; empty: the last rule
    is not checked); caps: :class:`helpers.grading.intake.Caps` (``max_bytes``,
    ``max_notebook_mb``, ``max_cells``, ``max_json_objects``); notes: a list that gets
    one line per honest edit that was repaired (:func:`repair`).
    Returns the bytes to grade: ``data``, or the repaired notebook, checked again.
    """
    nb, renamed = _checked(data, name, caps)
    notes = notes if notes is not None else []
    for i, old in renamed:
        notes.append(f"{name} cell {i}: its id {old!r} is also an earlier cell's (a pasted cell): "
                     "given a new one")
    if not want:
        return data
    if not repair(nb, name, want, notes) and not renamed:
        _check_against_release(nb["cells"], name, want)
        return data
    fixed = json.dumps(nb, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    _check_against_release(_checked(fixed, name, caps)[0]["cells"], name, want)
    return fixed


def _checked(data, name, caps):
    """The notebook (a dict) of ``data`` once every rule but the release's holds."""
    bad = f"{name} is not a readable notebook"
    if len(data) > caps.max_bytes:
        raise Malformed(f"{name} is larger than {caps.max_notebook_mb:g} MB (max_notebook_mb)")
    _check_count(data, name, caps)
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
    renamed = _unique_ids(nb["cells"])
    _validate_schema(nb, name)
    for i, cell in enumerate(nb["cells"]):
        _check_nbgrader(cell, f"{name} cell {i}")
    return nb, renamed


class Release(dict):
    """{grade_id: flags} of a release notebook (see :func:`check_notebook`'s ``want``), and
    ``cells``: {grade_id: the release cell (a dict)} of its nbgrader cells, in order, from
    which :func:`repair` recognises graded cells whose metadata an editor removed."""

    def __init__(self, flags=(), cells=None):
        super().__init__(flags)
        self.cells = dict(cells or {})


def _unique_ids(cells):
    """Give each cell whose ``id`` an earlier cell has (a pasted cell) a new one, in place;
    [(cell index, old id)] of those renamed."""
    seen = {c["id"] for c in cells if isinstance(c.get("id"), str)}
    first, renamed = set(), []
    for i, cell in enumerate(cells):
        old = cell.get("id")
        if not isinstance(old, str):
            continue
        if old in first:
            n = 1
            while f"{old[:50]}-copy{n}" in seen:
                n += 1
            cell["id"] = f"{old[:50]}-copy{n}"
            seen.add(cell["id"])
            renamed.append((i, old))
        first.add(old)
    return renamed


#: A cell longer than this is never recognised by its text or definitions (only by its id):
#: the longest graded cell of any source notebook is under 5,000 characters, and parsing a
#: student's megabytes once per missing cell would cost the grader gigabytes.
MAX_MATCHED_CHARS = 64 * 1024


def _lines(source):
    text = "".join(source) if isinstance(source, list) else source
    return [line.strip() for line in text.splitlines() if line.strip()]


def _defines(source):
    """Names a cell's code binds at its top level, by def, class or ``name = ...`` (empty
    if it does not parse)."""
    import ast
    import warnings
    try:
        with warnings.catch_warnings():          # a student's SyntaxWarnings are not the grader's
            warnings.simplefilter("ignore")
            tree = ast.parse("\n".join(l for l in "".join(source).splitlines()
                                        if not l.lstrip().startswith(("%", "!"))))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _set_type(cell, kind):
    """Make ``cell`` a ``kind`` cell, as nbgrader's OverwriteCells would (which fails on a
    notebook without cell ids, nbformat 4.4)."""
    cell["cell_type"] = kind
    cell.pop("outputs", None)
    cell.pop("execution_count", None)
    cell.pop("attachments", None) if kind == "code" else None
    if kind == "code":
        cell.update(outputs=[], execution_count=None)


def repair(nb, name, want, notes):
    """Undo, in place, what honest edits do to a notebook's nbgrader cells; True if changed.

    * A graded cell pasted twice (the same grade_id on several cells): the last copy keeps
      the grade_id (its code runs last, so its definitions are the ones the tests see);
      the earlier ones lose their nbgrader metadata and run as plain cells. A test cell's
      code is the gradebook's whatever the copy holds: nbgrader restores it by grade_id.
    * A graded cell switched to another type (markdown): switched back, as nbgrader does.
    * A release cell with no nbgrader metadata left (an editor removed it, a cell retyped):
      when ``want`` is a :class:`Release`, a cell without nbgrader metadata gets the
      release cell's metadata back if it has the release cell's id (and type), or its
      text (a test cell), or defines the same functions, classes and variables (an
      answer cell; the last one that does). The release's own metadata is put back, never the student's.
    A line per repair goes to ``notes``. Flags that were changed stay an error
    (:func:`_check_against_release`).
    """
    cells, changed = nb["cells"], False
    last = {}
    for i, cell in enumerate(cells):
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in want and any(_flags(cell["metadata"]["nbgrader"]).values()):
            if gid in last:
                j = last[gid]
                del cells[j]["metadata"]["nbgrader"]
                notes.append(f"{name} cell {j}: {gid!r} pasted twice (also cell {i}): the later "
                             f"copy, cell {i}, is graded; cell {j} runs as a plain cell")
                changed = True
            last[gid] = i
    release = getattr(want, "cells", {})
    for gid, i in last.items():
        kind = release.get(gid, {}).get("cell_type", cells[i]["cell_type"])
        if cells[i]["cell_type"] != kind:
            notes.append(f"{name} cell {i}: {gid!r} was switched to {cells[i]['cell_type']}: "
                         f"switched back to {kind}")
            _set_type(cells[i], kind)
            changed = True
    lost = [gid for gid in release if gid not in last]
    if not lost:
        return changed
    stripped = not any("nbgrader" in c["metadata"] for c in cells)
    free = {i for i, c in enumerate(cells) if "nbgrader" not in c["metadata"]}
    found, memo = [], {}

    def known(i, what):          # each cell read once; a huge cell is matched by id only
        if (i, what) not in memo:
            source = cells[i]["source"]
            small = len(source if isinstance(source, str) else "".join(source)) <= MAX_MATCHED_CHARS
            memo[i, what] = (_lines if what == "lines" else _defines)(source) if small else None
        return memo[i, what]

    for gid in lost:
        ref = release[gid]
        same = [i for i in sorted(free) if cells[i]["cell_type"] == ref["cell_type"]]
        by_id = [i for i in same if ref.get("id") and cells[i].get("id") == ref["id"]]
        by_text = [i for i in same if known(i, "lines") == _lines(ref["source"])]
        defs = _defines(ref["source"]) if ref["cell_type"] == "code" and ref["metadata"]["nbgrader"].get("solution") else set()
        by_defs = [i for i in same if defs and defs <= (known(i, "defs") or set())]
        match = (by_id or by_text or by_defs or [None])[-1]
        if match is None:
            continue
        cells[match]["metadata"]["nbgrader"] = copy.deepcopy(ref["metadata"]["nbgrader"])
        free.discard(match)
        found.append((gid, match))
    graded = [gid for gid in release if want.get(gid, {}).get("grade")]
    if stripped:
        if not found:
            raise Malformed(f"{name}: has no graded cells left: the graded cells were deleted, or their "
                            "nbgrader metadata was removed (by an editor?), and none of the release's "
                            "graded cells was found in it: download the "
                            "release again and paste your answers into it")
        missing = [gid for gid in graded if gid not in dict(found)]
        notes.append(f"{name}: its cells' nbgrader metadata was removed (by an editor?): "
                     f"{len(found)} of the release's {len(release)} graded and answer cells were "
                     "recognised and graded" + (f"; not found (they score 0): {', '.join(missing)}"
                                                if missing else ""))
    else:
        for gid, i in found:
            notes.append(f"{name} cell {i}: recognised as {gid!r} (its nbgrader metadata was "
                         "missing: a retyped or re-created cell)")
    return changed or bool(found)


def _check_against_release(cells, name, want):
    """Some cell of the release is kept; none has what nbgrader's autograde cannot repair:
    a release cell with other flags (grade, solution, locked, task) or no points, a
    flagged cell that is not the release's, a flagged grade_id twice (a copied cell)."""
    ids = {c["metadata"].get("nbgrader", {}).get("grade_id") for c in cells} - {None, ""}
    if not ids:
        raise Malformed(f"{name} has no graded cells left (every graded cell deleted, or its "
                        "nbgrader metadata removed): download the release again and paste your "
                        "answers into it")
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


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))


def _check_count(data, name, caps):
    """At most ``max_json_objects`` JSON objects and arrays, counted at C speed before any
    parsing: brackets, and only where there are too many, brackets outside strings."""
    count = data.count(b"[") + data.count(b"{")
    if count > caps.max_json_objects:
        count = len(_JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKET)) // 2
    if count > caps.max_json_objects:
        raise Malformed(f"{name} holds {count} JSON objects and arrays; at most "
                        f"{caps.max_json_objects} are accepted (max_json_objects)")


def _check_depth(value, where, limit):
    """Refuse JSON nested more than ``limit`` deep (nbformat and nbgrader copy it
    recursively). Visits only objects and arrays (at most ``max_json_objects``)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= limit:
            raise Malformed(f"{where}: its JSON is nested more than {MAX_DEPTH} deep")
        children = item.values() if isinstance(item, dict) else item
        if set(map(type, children)) & {dict, list}:
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
