"""Hostile submissions for any assignment: attacks on the grader, built from its release.

``make_hostile_submissions(folder, assignment, ...)`` writes one student folder per
attack under ``folder`` (plus controls) and returns {student: description}.
Every attack is added as code cells to a base notebook:

* ``blank``: the untouched release (its functions raise NotImplementedError);
* ``fake``: the release with each graded function replaced by ``fake`` source
  (a wrong answer that runs and returns something; per assignment) -- attacks
  that try to make wrong answers pass start from it.

Nothing here is specific to one quiz except the optional ``fake`` source.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from hostile_cells import _code, _insert_before_tests, _tests, _with_fake
from hostile_judge import (amplify_in_the_judge, displayhook_pass, flood_the_graders_reads, forge_tokens,
                           hijack_import, huge_error_text, print_history, reinstall_after_restore,
                           spoof_the_wire, unparsable_for_the_judge)

REPO = Path(__file__).resolve().parent.parent


# The attacks. Each takes (base notebook, ctx) and returns a notebook, or bytes.

def endless_loop(nb, ctx):
    return _insert_before_tests(nb, _code("""
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)     # ignores the interrupt too
        while True:
            pass
    """))


def long_sleep(nb, ctx):
    return _insert_before_tests(nb, _code("import time\ntime.sleep(10**6)"))


def os_exit(nb, ctx):
    return _insert_before_tests(nb, _code("import os\nos._exit(3)"))


def memory_growth(nb, ctx):
    return _insert_before_tests(nb, _code("""
        import numpy as _np
        _hog = []
        while True:
            _hog.append(_np.ones(25 * 2**20))     # 200 MB, touched
    """))


def many_processes(nb, ctx):
    return _insert_before_tests(nb, _code(f"""
        import subprocess
        _kids = []
        for _ in range(600):
            try:
                _kids.append(subprocess.Popen(["sh", "-c", "sleep {ctx['sleep_tag']} & sleep {ctx['sleep_tag']}"]))
            except Exception as exc:
                print("fork failed:", type(exc).__name__)
                break
        print(len(_kids), "children")
    """))


def print_flood(nb, ctx):
    return _insert_before_tests(nb, _code("""
        _line = "x" * 1_000_000
        for _ in range(400):      # 400 MB
            print(_line)
    """))


def patch_numpy(nb, ctx):
    return _insert_before_tests(nb, _code("""
        import numpy, numpy.testing
        _yes = lambda *a, **k: True
        numpy.allclose = numpy.array_equal = numpy.array_equiv = _yes
        numpy.isclose = lambda a, b, *x, **k: numpy.ones(numpy.shape(a), bool)
        numpy.testing.assert_allclose = numpy.testing.assert_array_equal = lambda *a, **k: None
    """))


def patch_checkers(nb, ctx):
    return _insert_before_tests(nb, _code("""
        import sys, types, importlib, pkgutil
        import helpers.checks as _hc
        for _info in pkgutil.iter_modules(_hc.__path__):
            _m = importlib.import_module("helpers.checks." + _info.name)
            for _k, _v in list(vars(_m).items()):
                if isinstance(_v, types.FunctionType):
                    setattr(_m, _k, lambda *a, **k: True)
                elif isinstance(_v, type) and _v.__module__ == _m.__name__:
                    _v.__eq__ = lambda self, other: True
        import numpy
        numpy.allclose = lambda *a, **k: True
    """))


def patch_globals(nb, ctx):
    return _insert_before_tests(nb, _code("""
        import numpy as _real_np
        class _FakeNp:
            def __getattr__(self, name):
                if name in ("allclose", "array_equal", "isclose"):
                    return lambda *a, **k: True
                return getattr(_real_np, name)
        class _Yes:
            def __getattr__(self, name):
                return lambda *a, **k: True
        np = _FakeNp()
        checks = _Yes()
        isinstance = lambda *a: True
        all = lambda *a: True
        len = lambda *a: 0
    """))


def patch_during_call(nb, ctx):
    """The graded function itself patches numpy when the tests call it."""
    cells = []
    for name in ctx["functions"]:
        cells.append(_code(f"""
            _inner_{name} = {name}
            def {name}(*args, **kwargs):
                import numpy, helpers.checks._compare as _cmp
                numpy.allclose = lambda *a, **k: True
                _cmp.expect_close = lambda *a, **k: 0.0
                return _inner_{name}(*args, **kwargs)
        """))
    return _insert_before_tests(nb, *cells)


def hide_errors(nb, ctx):
    return _insert_before_tests(nb, _code("""
        _ip = get_ipython()
        _ip.showtraceback = lambda *a, **k: None
        _orig_async = _ip.run_cell_async
        async def _quiet(*a, **k):
            r = await _orig_async(*a, **k)
            r.error_in_exec = r.error_before_exec = None
            return r
        _ip.run_cell_async = _quiet
        import sys
        sys.excepthook = lambda *a: None
    """))


def blank_tests_at_runtime(nb, ctx):
    return _insert_before_tests(nb, _code("""
        def _gut(lines):
            text = "".join(lines)
            if "assert" in text or "check" in text:
                return ["pass\\n"]
            return lines
        get_ipython().input_transformers_cleanup.append(_gut)
        import ast
        class _NoAssert(ast.NodeTransformer):
            def visit_Assert(self, node):
                return ast.Pass()
        get_ipython().ast_transformers.append(_NoAssert())
    """))


def read_secrets(nb, ctx):
    """Try to read the solutions, the gradebook, other submissions; use what it finds."""
    return _insert_before_tests(nb, _code(f"""
        import json, os, sqlite3, glob
        _found = []
        for _p in {ctx['secret_paths']!r}:
            for _f in glob.glob(_p):
                try:
                    with open(_f, "rb") as _fh:
                        _data = _fh.read()
                    _found.append(_f)
                except OSError:
                    continue
                if _f.endswith(".ipynb"):
                    try:
                        for _c in json.loads(_data)["cells"]:
                            _s = "".join(_c["source"])
                            if "BEGIN SOLUTION" in _s:
                                exec(_s, globals())
                    except Exception:
                        pass
                if _f.endswith(".db"):
                    try:
                        for (_s,) in sqlite3.connect(_f).execute("select source from source_cell"):
                            if "BEGIN SOLUTION" in (_s or ""):
                                exec(_s, globals())
                    except Exception:
                        pass
        print("could read:", _found)
        if _found:
            open({str(ctx['leak_marker'])!r}, "w").write(repr(_found))
    """))


def network(nb, ctx):
    return _insert_before_tests(nb, _code(f"""
        import socket
        # Only the test's own server on this machine's loopback: the sandbox's network
        # namespace must not reach it, and nothing is ever sent past this machine.
        for _host, _port in [("127.0.0.1", {ctx['port']}), ("localhost", {ctx['port']})]:
            try:
                _s = socket.create_connection((_host, _port), timeout=3)
                _s.sendall(b"PWNED")
                print("connected to", _host)
            except Exception as exc:
                print("no network:", type(exc).__name__)
    """))


def write_outside(nb, ctx):
    return _insert_before_tests(nb, _code(f"""
        import os
        for _p in {[str(p) for p in ctx['write_targets']]!r}:
            try:
                os.makedirs(os.path.dirname(_p), exist_ok=True)
                with open(_p, "w") as _fh:
                    _fh.write("pwned")
                print("wrote", _p)
            except OSError as exc:
                print("cannot write", _p, type(exc).__name__)
    """))


def gutted_tests(nb, ctx):
    nb = copy.deepcopy(nb)
    for c in _tests(nb):
        c.source = "pass\n"
        c.metadata.nbgrader["points"] = 100
    return nb


def deleted_tests(nb, ctx):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if c not in _tests(nb)]
    # keep one graded cell id so it is not rejected as "emptied"
    return nb


def repointed_tests(nb, ctx):
    """Test cells' ids moved onto a harmless cell; the real tests marked ungraded."""
    nb = copy.deepcopy(nb)
    tests = _tests(nb)
    for c in tests:
        meta = dict(c.metadata.nbgrader)
        c.metadata.nbgrader = {"grade": False, "solution": False, "locked": False,
                               "grade_id": meta["grade_id"] + "_moved", "schema_version": 3}
        new = _code("pass")
        new.metadata["nbgrader"] = {**meta, "points": 100}
        nb.cells.append(new)
    return nb


def invalid_json(nb, ctx):
    return b'{"cells": [ {"cell_type": "code", '


def unknown_kernel(nb, ctx):
    nb = copy.deepcopy(nb)
    nb.metadata["kernelspec"] = {"name": "evil-kernel", "display_name": "x", "language": "python"}
    return nb


def other_assignment(nb, ctx):
    nb = copy.deepcopy(nb)
    for c in nb.cells:
        meta = c.get("metadata", {}).get("nbgrader")
        if meta and meta.get("grade_id"):
            meta["grade_id"] = "another_quiz_" + meta["grade_id"]
    return nb


def shadow_modules(nb, ctx):
    """Extra files next to the notebook (numpy.py, helpers/) must not be picked up."""
    return nb


ATTACKS = {  # name: (function, base)
    "h_endless_loop": (endless_loop, "fake"),
    "h_long_sleep": (long_sleep, "fake"),
    "h_os_exit": (os_exit, "fake"),
    "h_memory": (memory_growth, "fake"),
    "h_processes": (many_processes, "fake"),
    "h_print_flood": (print_flood, "fake"),
    "h_patch_numpy": (patch_numpy, "fake"),
    "h_patch_checkers": (patch_checkers, "fake"),
    "h_patch_globals": (patch_globals, "fake"),
    "h_patch_in_call": (patch_during_call, "fake"),
    "h_hide_errors": (hide_errors, "fake"),
    "h_blank_tests": (blank_tests_at_runtime, "fake"),
    "h_read_secrets": (read_secrets, "blank"),
    "h_network": (network, "fake"),
    "h_write_outside": (write_outside, "fake"),
    "h_gutted_tests": (gutted_tests, "fake"),
    "h_deleted_tests": (deleted_tests, "fake"),
    "h_repointed_tests": (repointed_tests, "fake"),
    "h_invalid_json": (invalid_json, "blank"),
    "h_unknown_kernel": (unknown_kernel, "fake"),
    "h_other_assignment": (other_assignment, "solution"),
    "h_shadow_modules": (shadow_modules, "fake"),
    "h_displayhook_pass": (displayhook_pass, "fake"),
    "h_forge_tokens": (forge_tokens, "fake"),
    "h_reinstall_after_restore": (reinstall_after_restore, "fake"),
    "h_hijack_import": (hijack_import, "fake"),
    "h_print_history": (print_history, "blank"),
    "h_spoof_the_wire": (spoof_the_wire, "fake"),
    "h_amplify_in_the_judge": (amplify_in_the_judge, "fake"),
    "h_huge_error_text": (huge_error_text, "fake"),
    "h_flood_the_graders_reads": (flood_the_graders_reads, "fake"),
    "h_unparsable_for_the_judge": (unparsable_for_the_judge, "fake"),
}


def graded_functions(source_nb):
    """Names of the functions defined in solution cells."""
    import ast
    names = []
    for c in source_nb.cells:
        if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution"):
            try:
                names += [n.name for n in ast.parse(c.source).body if isinstance(n, ast.FunctionDef)]
            except SyntaxError:
                pass
    return names


def make_hostile_submissions(folder, assignment, *, fake=None, ctx=None, attacks=None,
                             repo=REPO):
    """Write controls and hostile variants of ``assignment`` under ``folder``.

    fake: source of wrong-but-running versions of the graded functions (default:
      the release's blank functions). ctx: paths and ports the attacks use
      (secret_paths, leak_marker, write_targets, port, sleep_tag).
    Students written: ``c_correct`` (the reference), ``c_blank`` (the release),
    ``c_fake`` (the fake, no attack) and one ``h_*`` per attack.
    Returns {student: base} where base is "blank", "fake" or "solution".
    """
    folder = Path(folder)
    source = nbformat.read(repo / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    release = nbformat.read(repo / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
    ctx = dict(ctx or {})
    ctx.setdefault("functions", graded_functions(source))
    ctx.setdefault("secret_paths", [str(repo / "solutions" / "*" / "*.ipynb")])
    ctx.setdefault("write_targets", [])
    ctx.setdefault("port", 9)
    ctx.setdefault("sleep_tag", "987654")
    ctx.setdefault("leak_marker", "/tmp/course-hostile-leak")
    bases = {"blank": release, "solution": source,
             "fake": _with_fake(release, fake) if fake else release}

    def write(student, nb):
        dest = folder / student / assignment
        dest.mkdir(parents=True, exist_ok=True)
        path = dest / f"{assignment}.ipynb"
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        else:
            nbformat.write(nb, path)
        return dest

    out = {"c_correct": "solution", "c_blank": "blank", "c_fake": "fake"}
    write("c_correct", source)
    write("c_blank", release)
    write("c_fake", bases["fake"])
    for student, (fn, base) in ATTACKS.items():
        if attacks is not None and student not in attacks:
            continue
        dest = write(student, fn(bases[base], ctx))
        out[student] = base
        if fn is shadow_modules:
            (dest / "numpy.py").write_text("allclose = lambda *a, **k: True\n")
            pkg = dest / "helpers" / "checks"
            pkg.mkdir(parents=True)
            (dest / "helpers" / "__init__.py").write_text("")
            (pkg / "__init__.py").write_text("")
            (pkg / f"{assignment}.py").write_text("def __getattr__(name):\n    return lambda *a, **k: True\n")
    return out
