"""Hostile submissions written against the judge (#18): helpers/grading/judge.py, bridge.py,
wire.py and the grader's reads of the student's kernel. Used by tests/hostile.py's ATTACKS.
Each takes (base notebook, ctx) and returns a notebook.
"""
from __future__ import annotations

import copy
import textwrap

from hostile_cells import _code, _insert_before_tests


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
