"""Is a function the quiz asks for in NumPy really written in NumPy? (static, best effort)

Some quizzes ask for a layer "in NumPy" (``conv_forward_naive``, ``max_pool_forward_naive``,
the RNN layers, ...). A wrapper around ``tf.nn.conv2d`` or around the checkers' own
reference (``checks.conv_reference``) returns the right numbers and would pass every
value check, so the method is checked separately, by reading the function's source::

    check_numpy_only(conv_forward_naive, "conv_forward_naive", "the convolution")
    ✘ conv_forward_naive: this quiz asks for the convolution in NumPy; your function called
      tf.nn.conv2d.

Only the function's own source is read, plus the functions of the same notebook it calls
(by name), so a student who imports TensorFlow elsewhere in the notebook is not affected.
The source is ``fn.__course_source__`` where a grading proxy provides it, else
``inspect.getsource(fn)``; names are resolved through the function's globals, or, for the
judge's proxy (no globals: helpers/grading/judge.py), through ``fn.__course_scope__``, the
notebook's top-level imports and functions as its text binds them. Under the judge the
text is the one whose compiled code matches what the name is bound to in the student's
kernel (``globals()["conv_forward_naive"] = fast`` after a NumPy decoy ``def`` is read as
``fast``; code that matches no text, made by ``exec`` or imported, fails the check; the
digests are the student kernel's word, so a kernel patched to lie about them is not seen). A
function reaches a library when its code:

- names a module (or something imported from one) of :data:`FORBIDDEN`: ``tf.nn.conv2d``,
  ``keras.layers.Flatten()(x)``, ``conv2d(...)`` after ``from tensorflow.nn import conv2d``,
  ``import torch`` inside the function; names are resolved through the function's globals
  when it has them (so ``import tensorflow as T`` is seen), else the usual aliases
  (``tf``, ``keras``, ``torch``, ``jax``, ...) count;
- calls a checker's reference that returns answers (marked with :func:`answer_key`), e.g.
  ``checks.conv_reference``, whatever it is imported as;
- hides what it calls: ``__import__``, ``importlib``, ``exec`` or ``eval``.

What it cannot see (it is best effort; results are still checked by value):
a library function passed in as an argument or stored in a container, an object whose
methods call TensorFlow (``layer(x)`` for a global ``layer`` is seen only when the globals
are available), code reached through ``getattr`` with a computed name, a notebook helper
without readable source, and reading the stored answers directly (``np.load`` of
``data/expected/*.npz``: the hidden tests use other inputs, so that earns only the public
cases' points).
"""
from __future__ import annotations

import ast
import inspect
import textwrap
import types

from ._compare import fail

#: Modules whose use makes a "NumPy" function not NumPy (prefix match on the dotted name).
FORBIDDEN = ("tensorflow", "keras", "tf_keras", "torch", "jax", "scipy.signal", "scipy.ndimage",
             "skimage", "cv2", "autograd")

#: Names that stand for a forbidden module when the function's globals are not available.
ALIASES = {"tf": "tensorflow", "tensorflow": "tensorflow", "keras": "keras", "K": "keras",
           "torch": "torch", "jax": "jax", "jnp": "jax.numpy", "cv2": "cv2", "skimage": "skimage"}

#: Calls that hide what they reach.
HIDING = ("__import__", "importlib", "exec", "eval")

#: name -> dotted name of every checker function that returns answers (see answer_key).
_ANSWER_KEYS = {}


def answer_key(fn):
    """Mark a checker function that computes or returns the expected answers.

    A student function that calls it earns nothing for that part (it is found by name,
    whatever module alias it is reached through). Returns ``fn`` unchanged.
    """
    fn.__course_answer_key__ = True
    _ANSWER_KEYS[fn.__name__] = f"{fn.__module__}.{fn.__qualname__}"
    return fn


class _StaticFunction:
    """A function of the submitted notebook known only by its text (the judge's side)."""

    def __init__(self, name, static):
        self.__course_source__ = static["functions"][name]
        self.__course_scope__ = static


def _is_answer_key(dotted):
    return dotted in _ANSWER_KEYS.values()


def _forbidden(dotted):
    return any(dotted == m or dotted.startswith(m + ".") for m in FORBIDDEN)


def _source(fn):
    src = getattr(fn, "__course_source__", None)
    if src:
        return src
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return None


def _chain(node):
    """['tf', 'nn', 'conv2d'] for ``tf.nn.conv2d``; None if it does not start at a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def _origin(obj):
    """The dotted module an object comes from, for modules, functions, classes, instances."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    mod = getattr(obj, "__module__", None)
    if not isinstance(mod, str):
        mod = getattr(type(obj), "__module__", None)
    return mod if isinstance(mod, str) else ""


def _resolve(parts, scope):
    """Follow ``parts`` through modules from ``scope``; (the last object reached, depth)."""
    obj = scope[parts[0]]
    depth = 1
    for attr in parts[1:]:
        if not isinstance(obj, types.ModuleType):   # never touch attributes of other objects
            break
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            break
        depth += 1
    return obj, depth


def _functions(fn):
    """The plain functions to read: fn itself, or the methods a class defines."""
    if inspect.isclass(fn) and not hasattr(fn, "__course_source__"):
        out = []
        for value in vars(fn).values():
            value = getattr(value, "__func__", value)        # staticmethod, classmethod
            if inspect.isfunction(value):
                out.append(value)
        return out
    return [getattr(fn, "__func__", fn)]


def library_uses(fn, graded=(), _seen=None):
    """What ``fn`` (a function, method or class) reaches that a NumPy answer must not.

    graded: names of the quiz's other graded functions; calls to them are not followed
    (each is judged by its own check), calls to other functions of the notebook are.

    Returns a list of strings as the student wrote them (``"tf.nn.conv2d"``,
    ``"import torch"``, ``"checks.conv_reference"``), first seen first, without repeats;
    [] if nothing is found or the source cannot be read.
    """
    seen = set() if _seen is None else _seen
    found = []
    for func in _functions(fn):
        if id(func) in seen:
            continue
        seen.add(id(func))
        src = _source(func)
        if not src:
            continue
        try:
            tree = ast.parse(textwrap.dedent(src))
        except SyntaxError:
            continue
        scope = dict(vars(__builtins__) if isinstance(__builtins__, types.ModuleType) else {})
        scope.update(getattr(func, "__globals__", None) or {})
        try:
            scope.update(inspect.getclosurevars(func).nonlocals)
        except (TypeError, ValueError):
            pass
        has_globals = bool(getattr(func, "__globals__", None))
        static = getattr(func, "__course_scope__", None)     # the judge's view of the notebook
        module = getattr(func, "__module__", None)
        local = {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
                 for a in n.args + n.kwonlyargs + n.posonlyargs + [n.vararg, n.kwarg] if a}
        local |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        nested = {p for p in ast.walk(tree) if isinstance(p, ast.Attribute)
                  for p in [p.value] if isinstance(p, (ast.Attribute, ast.Name))}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [f"import {a.name}" for a in node.names if _forbidden(a.name)
                          or a.name.split(".")[0] in HIDING]
            elif isinstance(node, ast.ImportFrom) and node.module:
                if _forbidden(node.module) or node.module.split(".")[0] in HIDING:
                    found.append(f"from {node.module} import ...")
                elif node.module.startswith("helpers.checks"):
                    found += [f"from {node.module} import {a.name}" for a in node.names
                              if a.name in _ANSWER_KEYS]
            elif isinstance(node, (ast.Attribute, ast.Name)) and node not in nested:
                parts = _chain(node)
                if not parts or parts[0] in local:
                    continue
                text = ".".join(parts)
                if parts[0] in HIDING:
                    found.append(text)
                elif static and parts[0] in static["imports"] and not has_globals:
                    dotted = ".".join([static["imports"][parts[0]]] + parts[1:])
                    if _forbidden(dotted) or _is_answer_key(dotted):
                        found.append(text)
                elif static and parts[0] in static["functions"] and not has_globals:
                    if not static["functions"][parts[0]] and parts[0] not in graded:
                        found.append(f"{parts[0]} (its code is not in the notebook's text)")
                    elif parts[0] not in graded and ("static", parts[0]) not in seen:
                        seen.add(("static", parts[0]))               # a helper of the notebook
                        found += library_uses(_StaticFunction(parts[0], static), graded, seen)
                elif has_globals and parts[0] in scope:
                    obj, depth = _resolve(parts, scope)
                    if getattr(obj, "__course_answer_key__", False) or _forbidden(
                            ".".join([_origin(obj)] + parts[depth:])):
                        found.append(text)
                    elif (inspect.isfunction(obj) or inspect.isclass(obj)) and module and \
                            getattr(obj, "__module__", None) == module and obj is not func \
                            and parts[0] not in graded:
                        found += library_uses(obj, graded, seen)    # a helper of the notebook
                elif parts[0] in ALIASES or any(p in _ANSWER_KEYS for p in parts):
                    found.append(text)                      # no globals to resolve: by name
    return list(dict.fromkeys(found))


def check_numpy_only(fn, fn_name, what, how="in NumPy", graded=()):
    """Fail (CheckFailed) if ``fn`` computes its result with a library (see the module doc).

    fn: the student's function (or class, for a model whose methods are graded).
    fn_name: the name in the message.  what: what the quiz asks for, e.g. "the convolution".
    how: how it asks for it ("in NumPy"; "by arithmetic" for a parameter count).
    graded: the quiz's other graded functions (see :func:`library_uses`).
    Returns None when nothing is found.
    """
    if getattr(fn, "__course_source__", None) == "":        # the judge's proxy, text not found
        fail(fn_name, "the grader reads your function's text from the notebook and cannot find "
                      f"the code that {fn_name} is bound to when the tests run (it was made by "
                      "exec, imported, or rebound at run time), so it cannot see that it is "
                      f"written {how}.",
             f"Define {fn_name} with a plain def (or class) in a code cell.")
    uses = library_uses(fn, graded)
    if uses:
        fail(fn_name, f"this quiz asks for {what} {how}; your function called "
                      f"{', '.join(uses[:3])}{' ...' if len(uses) > 3 else ''}.",
             f"Write it {how} (NumPy operations and loops are fine). TensorFlow, Keras, PyTorch, "
             "SciPy's filters and the checkers' reference functions compute the answer for "
             "you, so this part earns no points. Importing TensorFlow elsewhere in the "
             "notebook is fine.")
