"""Inside a grading kernel: keep the tests' tools as they were before student code ran.

The grader (:mod:`helpers.grading.execute`) starts every grading kernel with
``capture()``, before the first notebook cell. Around every graded test cell it
then runs, as separate executions:

1. ``restore(token, imports, names)``: puts back what student code may have
   replaced since: functions and classes of the protected modules (``numpy``,
   ``helpers`` and any listed in the notebook's ``course.protect`` metadata), the
   methods of their classes, the public constants of the ``helpers`` modules
   (``mnist_classifier.CONFIDENCE``, the ``RECIPES`` of the graded runs: plain data
   under UPPER_CASE names, rebound or changed in place), ``builtins``,
   ``sys.modules`` entries, IPython's input/AST transformers and the shell's
   methods; re-runs the source notebook's import lines (so ``np``, ``checks`` ...
   are the real modules again) and drops notebook globals that shadow builtins the
   tests use. Prints ``token``.
2. the test cell itself, followed by ``finish(token)``: fails the cell if any of
   the above was replaced *while the test ran* (e.g. by the student's function
   when the test called it), else prints ``token``.

The grader counts a test cell as passed only if it ran to its end: no error,
and the tokens printed. A submission that blanks cells, hides errors or
replaces these functions gets no points for that cell rather than more.

This raises the bar; it cannot make one Python process safe from code running
inside it that targets this module on purpose (see the README).
"""
from __future__ import annotations

import builtins
import copy
import pathlib
import re
import sys
import types

_STATE = {}
#: builtins the kernel itself swaps during every execution
_VOLATILE_BUILTINS = {"input", "raw_input", "getpass", "display", "get_ipython", "exit", "quit"}
_CALLABLE = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type,
             types.ModuleType, classmethod, staticmethod, property, types.WrapperDescriptorType,
             types.MethodDescriptorType, types.BuiltinMethodType)

DEFAULT_PROTECT = ("numpy", "helpers")
#: helpers modules of the grader itself (heavy, never used by test cells): not imported here
_GRADER_MODULES = {"helpers.__main__", "helpers.authoring", "helpers.grading"}
_IPYTHON = ("IPython.core.interactiveshell", "ipykernel.zmqshell", "ipykernel.ipkernel",
            "ipykernel.kernelbase", "ipykernel.iostream")


def _protected_value(v):
    """Functions, classes, modules, methods: what a monkeypatch replaces (not data, not
    callable instances such as cached models, which modules may rebind legitimately)."""
    if isinstance(v, _CALLABLE):
        return True
    # numpy's functions are dispatcher objects and ufuncs; lru_cache/partial wrappers
    t = type(v)
    return callable(v) and ((t.__module__ or "").split(".")[0] in ("numpy", "builtins", "functools")
                            or "cython" in t.__name__)


_PLAIN = (str, bytes, int, float, complex, bool, type(None), pathlib.PurePath)
_CONSTANT_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def _plain(v, depth=0):
    """Plain data: numbers, strings, paths, and dicts/lists/tuples/sets of them."""
    if depth > 8:
        return False
    if isinstance(v, dict):
        return all(_plain(k, depth + 1) and _plain(x, depth + 1) for k, x in v.items())
    if isinstance(v, (list, tuple, set, frozenset)):
        return all(_plain(x, depth + 1) for x in v)
    return isinstance(v, _PLAIN)


def _constants(name, mod):
    """A course module's public constants (UPPER_CASE names holding plain data), copied."""
    if not (name == "helpers" or name.startswith("helpers.")):
        return {}
    return {k: copy.deepcopy(v) for k, v in vars(mod).items()
            if _CONSTANT_NAME.fullmatch(k) and _plain(v)}


def _equal(a, b):
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 - a value that cannot be compared has changed
        return False


def _put_back(mod, k, saved):
    """Restore constant ``k`` of ``mod`` to ``saved``, in place for a dict or list."""
    current = vars(mod).get(k)
    if type(current) is type(saved) and isinstance(saved, dict):
        current.clear()
        current.update(copy.deepcopy(saved))
    elif type(current) is type(saved) and isinstance(saved, list):
        current[:] = copy.deepcopy(saved)
    else:
        setattr(mod, k, copy.deepcopy(saved))


def _same(a, b):
    return a is b or (isinstance(a, types.MethodType) and a == b)


def _module_names(prefixes):
    return sorted(n for n, m in list(sys.modules.items())
                  if isinstance(m, types.ModuleType)
                  and any(n == p or n.startswith(p + ".") for p in prefixes)
                  and n != __name__)


def _import_course_modules(path, prefix):
    """Import every module of the course library under ``path``, not the grader's own."""
    import importlib
    import pkgutil
    for info in pkgutil.iter_modules(path, prefix):
        if info.name in _GRADER_MODULES:
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - a module that fails to import is not protected
            continue
        if info.ispkg:
            _import_course_modules(module.__path__, info.name + ".")


def capture(protect=DEFAULT_PROTECT):
    """Snapshot the protected modules, builtins and IPython hooks (kernel start)."""
    import importlib
    protect = tuple(dict.fromkeys([*DEFAULT_PROTECT, *protect]))
    for name in protect:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module is not protected
            pass
    try:  # every course module (checkers, data, training loops): tests and checkers use them
        import helpers
        _import_course_modules(helpers.__path__, "helpers.")
    except Exception:  # noqa: BLE001
        pass
    for name in _IPYTHON:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001
            pass
    modules, classes, constants = {}, {}, {}
    for name in _module_names(protect) + [n for n in _IPYTHON if n in sys.modules]:
        mod = sys.modules[name]
        attrs = {k: v for k, v in vars(mod).items() if _protected_value(v)}
        modules[name] = (mod, attrs)
        constants[name] = _constants(name, mod)
        for v in attrs.values():
            if isinstance(v, type) and getattr(v, "__module__", None) == name and v not in classes:
                classes[v] = {k: a for k, a in vars(v).items() if _protected_value(a)}
    shell = _shell()
    _STATE.clear()
    _STATE.update(
        modules=modules, classes=classes, constants=constants, builtins=dict(vars(builtins)),
        print=builtins.print, hooks=_hooks(shell),
        shell_attrs=set(vars(shell)) if shell is not None else set(),
        sys=(sys.displayhook, sys.excepthook, sys.stdout, sys.stderr),
    )
    return len(modules)


def active():
    """True once :func:`capture` ran in this process (a kernel started by the grader)."""
    return bool(_STATE)


def _shell():
    try:
        from IPython import get_ipython
        return get_ipython()
    except Exception:  # noqa: BLE001
        return None


def _hooks(shell):
    if shell is None:
        return {}
    return {k: list(getattr(shell, k, [])) for k in
            ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")}


def changes():
    """Names of protected things that differ from the snapshot."""
    if not _STATE:
        return []
    out = []
    for name, (mod, attrs) in _STATE["modules"].items():
        if sys.modules.get(name, mod) is not mod:
            out.append(f"sys.modules[{name!r}]")
        current = vars(mod)
        out += [f"{name}.{k}" for k, v in attrs.items() if not _same(current.get(k), v)]
        out += [f"{name}.{k}" for k, v in _STATE["constants"].get(name, {}).items()
                if not _equal(current.get(k), v)]
    for cls, attrs in _STATE["classes"].items():
        current = vars(cls)
        where = f"{cls.__module__}.{cls.__qualname__}"
        out += [f"{where}.{k}" for k, v in attrs.items() if not _same(current.get(k), v)]
        out += [f"{where}.{k}" for k, v in current.items()
                if k not in attrs and _protected_value(v) and not k.startswith("__")]
    current = vars(builtins)
    out += [f"builtins.{k}" for k, v in _STATE["builtins"].items()
            if _protected_value(v) and k in current and not _same(current.get(k), v)
            and k not in _VOLATILE_BUILTINS]
    shell = _shell()
    if shell is not None:
        for k, v in _STATE["hooks"].items():
            now = getattr(shell, k, [])
            if any(x not in v for x in now):
                out.append(f"IPython {k}")
        out += [f"the IPython shell's {k}" for k in vars(shell)
                if k not in _STATE["shell_attrs"] and callable(vars(shell)[k])]
    if sys.gettrace() is not None or sys.getprofile() is not None:
        out.append("sys.settrace/setprofile")
    return out


def restore(token, imports="", names=()):
    """Undo replacements, re-run the source's imports, drop shadowing globals; print token."""
    if not _STATE:
        capture()
    for name, (mod, attrs) in _STATE["modules"].items():
        sys.modules[name] = mod
        current = vars(mod)
        for k, v in attrs.items():
            if current.get(k) is not v:
                setattr(mod, k, v)
        for k, v in _STATE["constants"].get(name, {}).items():
            if not _equal(current.get(k), v):
                _put_back(mod, k, v)
    for cls, attrs in _STATE["classes"].items():
        current = dict(vars(cls))
        for k, v in attrs.items():
            if current.get(k) is not v:
                try:
                    setattr(cls, k, v)
                except (TypeError, AttributeError):
                    pass
        for k, v in current.items():
            if k not in attrs and _protected_value(v) and not k.startswith("__"):
                try:
                    delattr(cls, k)
                except (TypeError, AttributeError):
                    pass
    for k, v in _STATE["builtins"].items():
        if vars(builtins).get(k) is not v and k not in _VOLATILE_BUILTINS:
            setattr(builtins, k, v)
    sys.settrace(None)
    sys.setprofile(None)
    sys.displayhook, sys.excepthook, sys.stdout, sys.stderr = _STATE["sys"]
    shell = _shell()
    if shell is not None:
        for k, v in _STATE["hooks"].items():
            getattr(shell, k)[:] = list(v)
        for k in list(vars(shell)):
            if k not in _STATE["shell_attrs"] and callable(vars(shell)[k]):
                delattr(shell, k)
        ns = shell.user_ns
        ns["__builtins__"] = builtins
        for n in names:
            if n in ns and n in _STATE["builtins"]:
                del ns[n]
        if imports:
            exec(compile(imports, "<grader: the notebook's imports>", "exec"), ns)
    _STATE["print"](token, flush=True)


def finish(token):
    """End of a test cell: fail if protected things were replaced meanwhile, else print token."""
    changed = changes()
    if changed:
        shown = ", ".join(changed[:4]) + (" ..." if len(changed) > 4 else "")
        raise AssertionError(f"the submission replaced {shown} while the tests ran; "
                             "code that changes the grader's tools gets no points here")
    _STATE["print"](token, flush=True)
