"""Course objects that can be made again from their recipe: how a model crosses to student code.

A test that runs in the grader's trusted kernel (:mod:`helpers.grading.judge`) cannot send
a Keras model to the student's kernel: models are not data, and nothing may be unpickled
there or here. The course's model constructors (``checks.network_visualization.tiny_model``,
``pretrained.load_pretrained``, ...) are therefore marked :func:`rebuildable`: each object
they return remembers the call that made it (module, function, arguments). When a test
passes such an object to a student's function, the wire sends that call instead, and the
student's kernel makes its own copy by the same call. Expected values and verdicts keep
using the trusted side's copy, which the student's code never touches.

Only the recipe is remembered (not the object): an entry is dropped when its object is
garbage collected (objects that cannot be weakly referenced get none).
"""
from __future__ import annotations

import functools
import weakref

import numpy as np

_RECIPES = {}     # id(object) -> (module, function name, args, kwargs)


def rebuildable(fn):
    """Decorator: remember, for each object ``fn`` returns, the call that made it.

    The arguments must be plain data (numbers, strings, tuples, lists, dicts) or other
    rebuildable objects: the wire sends them with the recipe.
    """
    @functools.wraps(fn)
    def made(*args, **kwargs):
        obj = fn(*args, **kwargs)
        key = id(obj)
        if key not in _RECIPES:
            try:
                weakref.finalize(obj, _RECIPES.pop, key, None)
            except TypeError:     # not weak-referenceable: its id could be reused, no recipe
                return obj
        _RECIPES[key] = (fn.__module__, fn.__name__, tuple(args), dict(kwargs))
        return obj
    return made


def recipe_of(obj):
    """(module, function name, args, kwargs) of the call that made ``obj``, or None."""
    return _RECIPES.get(id(obj))


def in_another_kernel(*objects):
    """True when any of ``objects`` is the grader's proxy of an object that lives in the
    student's kernel (it runs course functions there: :func:`beside`)."""
    return any(getattr(o, "__course_run__", None) is not None for o in objects)


def plain_numbers(value):
    """True when ``value`` is a NumPy array of numbers: data, which a proxy of an object in
    another kernel (:func:`in_another_kernel`) or any other object posing as one is not."""
    return isinstance(value, np.ndarray) and value.dtype.kind in "iuf"


def beside(obj, fn, *args, **kwargs):
    """``fn(obj, *args, **kwargs)``, run where ``obj`` lives.

    Under the grader's judge an object made by the student's code stays in the student's
    kernel and the trusted side holds a proxy of it (:mod:`helpers.grading.bridge`); the
    proxy's ``__course_run__`` runs the course function ``fn`` (module level, its arguments
    plain data or rebuildable objects) there and sends its result back as data. Anywhere
    else ``fn`` runs here. What comes back from there is the student kernel's word: check it.
    """
    run_there = getattr(obj, "__course_run__", None)
    if run_there is None:
        return fn(obj, *args, **kwargs)
    return run_there(fn.__module__, fn.__name__, *args, **kwargs)
