"""What checkers read of a student's Keras model besides its outputs, as plain data.

Under the grader's judge (:mod:`helpers.grading.judge`) a model a student's function
returns stays in the student's kernel: the test holds a proxy, its outputs come back as
arrays, and what it is made of (layer types, parameter count, layer output shapes) is read
by :func:`model_facts`, run beside the model through ``__course_run__``. That answer is
the kernel's word, so it serves checks of *method* (which layers were built). Checks of
*results* give the model weights the checker draws (:func:`set_drawn_weights`) and
recompute its output from them on the trusted side.
"""
from __future__ import annotations

import numpy as np

from ..rebuildable import beside
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


def _own_layers(model):
    """The model's layers, a nested model's layers in its place (depth first, the order of
    ``model.weights``); the nested models themselves are left out."""
    import keras
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _own_layers(layer)
        else:
            yield layer


def _output_shapes(model):
    """Output shapes, without the batch axis, of the model's layers (nested models'
    included) where Keras knows them."""
    shapes = []
    for layer in _own_layers(model):
        try:
            shapes.append([None if d is None else int(d) for d in layer.output.shape[1:]])
        except (AttributeError, ValueError, TypeError, RuntimeError):
            continue
    return shapes


def _build(model, input_shape):
    """Call ``model`` once on zeros of shape (1, *input_shape) when it has no weights yet (a
    Sequential without keras.Input, a subclassed model): Keras makes weights on the first
    call. Returns the error text of that call, or ""."""
    if input_shape is None or (model.built and model.weights):
        return ""
    try:
        model(np.zeros((1, *[int(d) for d in input_shape]), np.float32), training=False)
    except Exception as exc:      # noqa: BLE001 - reported to the student by the check
        return f"{type(exc).__name__}: {exc}"[:400]
    return ""


def model_facts(model, input_shape=None):
    """The facts of ``model`` as plain data (what crosses the judge's wire).

    A model without weights yet is first called on zeros of shape (1, *input_shape), when
    ``input_shape`` is given. Returns {"keras_model": bool, "type": class name, "layers":
    [layer class names], "params": int (0 while a model is not built), "shapes": [[int or
    None, ...]] (each layer's output shape without the batch axis, where known),
    "bn_epsilons": [float] (each BatchNormalization layer's epsilon, in the order of the
    model's weights), "build_error": str (what building it raised, or "")}.
    """
    import keras
    if not isinstance(model, keras.Model):
        return {"keras_model": False, "type": type(model).__name__, "layers": [], "params": 0,
                "shapes": [], "bn_epsilons": [], "build_error": ""}
    error = _build(model, input_shape)
    return {"keras_model": True, "type": type(model).__name__, "layers": _layer_types(model),
            "params": int(model.count_params()) if model.built else 0,
            "shapes": _output_shapes(model),
            "bn_epsilons": [float(layer.get_config().get("epsilon", 1e-3)) for layer in _own_layers(model)
                            if type(layer).__name__ == "BatchNormalization"],
            "build_error": error}


def weight_shapes(model):
    """Shapes of ``model.get_weights()``: [[int, ...], ...]."""
    return [list(w.shape) for w in model.weights]


#: How :func:`draw_weights` draws each kind of array: (low, high) of a uniform draw, a
#: kernel's scaled by 1 / sqrt(fan_in) (He's uniform scale, so each layer's output stays
#: of order 1). Both signs everywhere but the BatchNorm scale and variance, so that every
#: activation's negative side is reached.
DRAWS = {"kernel": (-2.45, 2.45), "bias": (-0.2, 0.2), "gamma": (0.5, 1.5), "beta": (-0.3, 0.3),
         "mean": (-0.3, 0.3), "var": (0.5, 1.5)}


def draw_weights(spec, seed):
    """Weights for a model of the layout ``spec`` = [[kind, shape], ...] (kinds of
    :data:`DRAWS`), drawn from ``seed``: a list of float32 arrays, the same on both sides.

    A kernel's fan-in is the product of its shape but the last axis (Dense, Conv2D); a
    stride-2 Conv2DTranspose's kernel (kh, kw, out, in), tagged "kernel_t", reaches each
    output pixel with a quarter of its taps; its fan-in is counted as kh * kw * in / 2, which
    keeps a tanh output after it off saturation (outputs' std about 0.45 for the DCGAN).
    """
    rng = np.random.default_rng(int(seed))
    out = []
    for kind, shape in spec:
        shape = tuple(int(d) for d in shape)
        if kind in ("kernel", "kernel_t"):
            fan_in = int(np.prod(shape[:-1])) if kind == "kernel" else int(np.prod(shape[:-2])) * shape[-1] // 2
            low, high = DRAWS["kernel"]
            out.append((rng.uniform(low, high, shape) / np.sqrt(max(fan_in, 1))).astype(np.float32))
        else:
            out.append(rng.uniform(*DRAWS[kind], shape).astype(np.float32))
    return out


def put_weights(model, spec, seed):
    """``model.set_weights(draw_weights(spec, seed))``, run where the model lives."""
    model.set_weights(draw_weights(spec, seed))


def expect_weight_shapes(model, fn_name, shapes, count_hint, layers_hint, what="the model"):
    """Fail the check of ``fn_name`` unless ``model``'s weights (read where it lives) have
    the shapes ``shapes``: first the parameter count (with ``count_hint``), then the shapes
    in order (with ``layers_hint``); ``what`` names the model in the message."""
    got = beside(model, weight_shapes)
    want = [[int(d) for d in s] for s in shapes]
    if not (isinstance(got, list) and len(got) <= 10_000 and all(map(_is_shape, got))
            and all(d is not None and d >= 0 for s in got for d in s)):
        fail(fn_name, "the grader could not read your model's weights.", "Return a keras.Model.")
    n_got, n_want = (sum(int(np.prod(s)) for s in x) for x in (got, want))
    if n_got != n_want:
        fail(fn_name, f"{what}'s number of parameters is {n_got:,}, expected {n_want:,}.", count_hint)
    if [list(s) for s in got] != want:
        fail(fn_name, f"{what}'s weights have shapes {[tuple(s) for s in got][:24]}, expected "
                      f"{[tuple(s) for s in want]}.", f"Build the layers in this order: {layers_hint}.")


def set_drawn_weights(model, fn_name, spec, seed, count_hint, layers_hint):
    """Give ``model`` the weights drawn from ``seed`` for the layout ``spec`` (see
    :func:`draw_weights`), and return them as float64 arrays.

    The model's weights must have ``spec``'s shapes (:func:`expect_weight_shapes`). Under
    the judge the student's kernel sets them from the seed, and the trusted side recomputes
    the model's output from the weights it drew itself: a kernel that keeps other weights
    (all zero, large positive biases that hide a wrong activation) gives other outputs.
    """
    spec = [[str(kind), [int(d) for d in shape]] for kind, shape in spec]
    expect_weight_shapes(model, fn_name, [shape for _, shape in spec], count_hint, layers_hint)
    beside(model, put_weights, spec, int(seed))
    return [w.astype(np.float64) for w in draw_weights(spec, seed)]


def _is_shape(s):
    return isinstance(s, (list, tuple)) and len(s) <= 8 and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in s)


def facts(model, fn_name, hint="Return a keras.Model built from keras.layers.", input_shape=None):
    """:func:`model_facts` of ``model`` (built on ``input_shape`` if it has no weights yet),
    run where the model lives, its answer validated.

    Fails the check of ``fn_name`` ("the grader could not read your model's layers") when
    the answer is not facts: a kernel's forged answer is refused, not trusted blindly.
    """
    got = beside(model, model_facts, *([] if input_shape is None else [[int(d) for d in input_shape]]))
    ok = (isinstance(got, dict) and isinstance(got.get("keras_model"), bool)
          and isinstance(got.get("type"), str) and type(got.get("params")) is int
          and isinstance(got.get("layers"), list) and all(isinstance(t, str) for t in got["layers"])
          and isinstance(got.get("shapes", []), list) and all(map(_is_shape, got.get("shapes", [])))
          and isinstance(got.get("bn_epsilons", []), list)
          and all(type(e) in (int, float) for e in got.get("bn_epsilons", []))
          and isinstance(got.get("build_error", ""), str))
    if not ok:
        fail(fn_name, "the grader could not read your model's layers.", hint)
    return dict(got, shapes=[tuple(s) for s in got.get("shapes", [])],
                bn_epsilons=[float(e) for e in got.get("bn_epsilons", [])][:64],
                build_error=got.get("build_error", "")[:400])
