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
import textwrap
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent


def _code(src):
    return nbformat.v4.new_code_cell(textwrap.dedent(src).strip() + "\n")


def _first_test_index(nb):
    for i, c in enumerate(nb.cells):
        meta = c.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            return i
    return len(nb.cells)


def _insert_before_tests(nb, *cells):
    nb = copy.deepcopy(nb)
    i = _first_test_index(nb)
    nb.cells[i:i] = list(cells)
    return nb


def _with_fake(nb, fake):
    """Replace every solution cell's source by ``fake`` (once, then empty)."""
    nb = copy.deepcopy(nb)
    first = True
    for c in nb.cells:
        if c.get("metadata", {}).get("nbgrader", {}).get("solution") and c.cell_type == "code":
            c.source = textwrap.dedent(fake).strip() + "\n" if first else "pass\n"
            first = False
    return nb


def _tests(nb):
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")
            and not c.metadata.nbgrader.get("solution")]


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


# Attacks on the new design (#18): the judge (helpers/grading/judge.py, bridge.py, wire.py).


def displayhook_pass(nb, ctx):
    """One line: the graded function leaves an execute_result, then fails. nbgrader reads an
    execute_result as partial credit (full points for anything that is not a number)."""
    cells = [_code(f"""
        def {name}(*args, **kwargs):
            import sys
            sys.displayhook("x")
            raise ValueError("wrong")
    """) for name in ctx["functions"]]
    return _insert_before_tests(nb, *cells)


def forge_tokens(nb, ctx):
    """Written against the guard: an input transformer turns every piece of code the grader
    sends into a print of the end tokens it carries; the wire's code into a forged answer."""
    return _insert_before_tests(nb, _code(r"""
        import re
        def _forge(lines):
            text = "".join(lines)
            toks = re.findall(r"grader-[0-9a-f]{24}", text)
            if toks:
                return ["print(%r)\n" % "\n".join(toks)]
            if "__course_wire__" in text:
                return ["from IPython.display import publish_display_data as _p\n",
                        "_p({'application/vnd.course.bridge+json': '{\"ok\": true}'})\n"]
            return lines
        get_ipython().input_transformers_post.append(_forge)
    """))


def reinstall_after_restore(nb, ctx):
    """pre/post_run_cell hooks put the fakes back after every restore, and replace the
    judge's server in this kernel with one that answers every request with True."""
    return _insert_before_tests(nb, _code("""
        import sys, json, numpy
        def _again(*a, **k):
            numpy.allclose = lambda *a, **k: True
            import helpers.checks._compare as _c
            _c.expect_close = lambda *a, **k: 0.0
            _w = sys.modules.get("__course_wire__")
            if _w is not None:
                from IPython.display import publish_display_data
                _w.serve = lambda: publish_display_data({_w.MIME: json.dumps({"ok": True})})
        get_ipython().events.register("pre_run_cell", _again)
        get_ipython().events.register("post_run_cell", _again)
    """))


def hijack_import(nb, ctx):
    """A notebook-level __import__ that hands the grader's own imports fakes."""
    return _insert_before_tests(nb, _code("""
        import builtins, types
        _real_import = builtins.__import__
        class _Yes(types.ModuleType):
            def __getattr__(self, name):
                return lambda *a, **k: True
        def _imp(name, *a, **k):
            if name.startswith(("helpers", "numpy", "sys")):
                return _Yes(name)
            return _real_import(name, *a, **k)
        builtins.__import__ = _imp
    """))


def print_history(nb, ctx):
    """After the tests: print every piece of code the kernel was sent (In, _ih, history)."""
    nb = copy.deepcopy(nb)
    nb.cells.append(_code("""
        print("\\n".join(In))
        print(_ih)
        print(get_ipython().history_manager.get_range(raw=True, output=False))
        import sys
        print(sorted(sys.modules))
    """))
    return nb


def spoof_the_wire(nb, ctx):
    """Written against the judge: its server in this kernel answers with whatever might
    confuse the other side: handles it never made, HTML in type names, deep nesting, NaNs,
    a 'synced' state for objects it never got, exceptions named like the checkers'."""
    return _insert_before_tests(nb, _code("""
        import sys, json, itertools
        from IPython.display import publish_display_data
        _n = itertools.count()
        def _serve():
            w = sys.modules["__course_wire__"]
            k = next(_n) % 5
            if k == 0:
                ans = {"ok": {"h": 1, "type": "<script>alert(1)</script>", "repr": "<b>x</b>"}}
            elif k == 1:
                ans = {"ok": json.loads("[" * 5000 + "]" * 5000)}
            elif k == 2:
                ans = {"ok": {"nd": "AAAA"}, "synced": {"0": {"__class__": 1, "shapes": {"l": []}}}}
            elif k == 3:
                ans = {"error": ["CheckFailed", "<img src=x onerror=alert(1)>", ""]}
            else:
                ans = {"ok": float("nan")}
            publish_display_data({w.MIME: json.dumps(ans)})
        def _install(*a, **k):
            w = sys.modules.get("__course_wire__")
            if w is not None:
                w.serve = _serve
        get_ipython().events.register("post_run_cell", _install)
    """))


def _replace_wire_server(body):
    """A cell that swaps the judge's server in the student's kernel for ``body`` (a serve())."""
    return _code("""
        import sys, json
        from IPython.display import publish_display_data
        def _install(*a, **k):
            w = sys.modules.get("__course_wire__")
            if w is None or getattr(w.serve, "_mine", False):
                return
            _orig = w.serve
    """ + textwrap.indent(textwrap.dedent(body), " " * 12) + """
            serve._mine = True
            w.serve = serve
        get_ipython().events.register("post_run_cell", _install)
    """)


def amplify_in_the_judge(nb, ctx):
    """(red team) A 3 MB answer of 300,000 empty lists: ~75 times its size in the judge's
    memory once decoded, outside every cgroup."""
    return _insert_before_tests(nb, _replace_wire_server("""
        def serve():
            big = '{"ok":{"l":[' + '{"l":[]},' * 300_000 + '0]}}'
            publish_display_data({w.MIME: big})
    """))


def huge_error_text(nb, ctx):
    """(red team) An answer whose exception message is 20 MB: the judged cell's outputs
    would bypass output_mb and fill the notebook and the feedback page."""
    return _insert_before_tests(nb, _replace_wire_server("""
        def serve():
            publish_display_data({w.MIME: json.dumps({"error": ["ValueError", "A" * 20_000_000, ""]})})
    """))


def flood_the_graders_reads(nb, ctx):
    """(red team) 300 MB printed whenever the grader runs its own code in this kernel."""
    return _insert_before_tests(nb, _code("""
        import sys
        _chunk = "x" * (10 * 2**20)
        def _flood(info):
            if "__course_wire__" in (getattr(info, "raw_cell", "") or ""):
                for _ in range(30):
                    sys.stdout.write(_chunk)
                    sys.stdout.flush()
        get_ipython().events.register("pre_run_cell", _flood)
    """))


def unparsable_for_the_judge(nb, ctx):
    """(red team) Code that Python runs but whose parse recurses too deeply for ast."""
    return _insert_before_tests(nb, _code("_deep = lambda: x" + ".a" * 5_000 + "\n"))


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
