"""What checkers read of a student's Keras model besides its outputs, as plain data.

Under the grader's judge (:mod:`helpers.grading.judge`) a model a student's function
returns stays in the student's kernel: the test holds a proxy, its outputs come back as
arrays, and what it is made of (layer types, parameter count, layer output shapes) is read
by :func:`model_facts`, run beside the model through ``__course_run__``. That answer is
the kernel's word, so it serves checks of *method* (which layers were built); checks of
*results* use the model's outputs and weights, recomputed on the trusted side.
"""
from __future__ import annotations

import numpy as np

from ._compare import fail


def _layer_types(model):
    """Class names of the model's layers, nested models' layers included (breadth first)."""
    import keras
    seen, stack = [], list(model.layers)
    while stack:
        layer = stack.pop(0)
        seen.append(type(layer).__name__)
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
    return seen


def _output_shapes(model):
    """Output shapes, without the batch axis, of the model's own layers where Keras knows them."""
    shapes = []
    for layer in model.layers:
        try:
            shapes.append([None if d is None else int(d) for d in layer.output.shape[1:]])
        except (AttributeError, ValueError, TypeError):
            continue
    return shapes


def model_facts(model):
    """The facts of ``model`` as plain data (what crosses the judge's wire).

    Returns {"keras_model": bool, "type": class name, "layers": [layer class names],
    "params": int (0 while a subclassed model is not built), "shapes": [[int or None, ...]]
    (each top-level layer's output shape without the batch axis, where known),
    "bn_epsilons": [float] (each BatchNormalization layer's epsilon)}.
    """
    import keras
    if not isinstance(model, keras.Model):
        return {"keras_model": False, "type": type(model).__name__, "layers": [], "params": 0,
                "shapes": [], "bn_epsilons": []}
    return {"keras_model": True, "type": type(model).__name__, "layers": _layer_types(model),
            "params": int(model.count_params()) if model.built else 0,
            "shapes": _output_shapes(model),
            "bn_epsilons": [float(layer.get_config().get("epsilon", 1e-3)) for layer in model.layers
                            if type(layer).__name__ == "BatchNormalization"]}


def weight_shapes(model):
    """Shapes of ``model.get_weights()``: [[int, ...], ...]."""
    return [list(w.shape) for w in model.weights]


def weight_at(model, i, start, stop):
    """``model.get_weights()[i].ravel()[start:stop]``: a piece of one array, so no answer of
    the wire grows with the model."""
    return model.weights[int(i)].numpy().ravel()[int(start):int(stop)]


#: The most numbers one answer carries (8 MB of float32; the wire takes 32 MB of text).
CHUNK = 2_000_000


def weights(model, fn_name):
    """``model.get_weights()`` as float64 arrays, read in pieces of :data:`CHUNK` numbers
    where the model lives (a DCGAN generator's 6.7 million weights would not fit one answer
    of the wire, nor would its largest array).

    The arrays are data the trusted side recomputes the model's output from: a kernel that
    forges them must forge outputs that agree with them.
    """
    run_there = getattr(model, "__course_run__", None)
    if run_there is None:
        got = model.get_weights()
    else:
        shapes = run_there(__name__, "weight_shapes")
        if not (isinstance(shapes, list) and len(shapes) <= 1000 and all(map(_is_shape, shapes))
                and all(d is not None and 0 <= d for s in shapes for d in s)
                and sum(int(np.prod(s)) for s in shapes) <= 10**8):
            fail(fn_name, "the grader could not read your model's weights.", "Return a keras.Model.")
        got = []
        for i, shape in enumerate(shapes):
            size = int(np.prod(shape))
            parts = [run_there(__name__, "weight_at", i, lo, min(size, lo + CHUNK))
                     for lo in range(0, size, CHUNK)]
            if not all(isinstance(p, np.ndarray) and p.ndim == 1 for p in parts) \
                    or sum(p.size for p in parts) != size:
                fail(fn_name, "the grader could not read your model's weights.", "Return a keras.Model.")
            got.append(np.concatenate(parts or [np.zeros(0, np.float32)]).reshape(shape))
    if not (isinstance(got, (list, tuple))
            and all(isinstance(w, np.ndarray) and w.dtype.kind == "f" for w in got)):
        fail(fn_name, "the grader could not read your model's weights.", "Return a keras.Model.")
    return [np.asarray(w, np.float64) for w in got]


def _is_shape(s):
    return isinstance(s, (list, tuple)) and len(s) <= 8 and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in s)


def facts(model, fn_name, hint="Return a keras.Model built from keras.layers."):
    """:func:`model_facts` of ``model``, run where the model lives, its answer validated.

    Fails the check of ``fn_name`` ("the grader could not read your model's layers") when
    the answer is not facts: a kernel's forged answer is refused, not trusted blindly.
    """
    run_there = getattr(model, "__course_run__", None)
    got = model_facts(model) if run_there is None else run_there(__name__, "model_facts")
    ok = (isinstance(got, dict) and isinstance(got.get("keras_model"), bool)
          and isinstance(got.get("type"), str) and type(got.get("params")) is int
          and isinstance(got.get("layers"), list) and all(isinstance(t, str) for t in got["layers"])
          and isinstance(got.get("shapes", []), list) and all(map(_is_shape, got.get("shapes", [])))
          and isinstance(got.get("bn_epsilons", []), list)
          and all(type(e) in (int, float) for e in got.get("bn_epsilons", [])))
    if not ok:
        fail(fn_name, "the grader could not read your model's layers.", hint)
    return dict(got, shapes=[tuple(s) for s in got.get("shapes", [])],
                bn_epsilons=[float(e) for e in got.get("bn_epsilons", [])])
