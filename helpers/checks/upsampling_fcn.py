"""Checkers for the ``upsampling_fcn`` quiz: transposed convolution, skip connections, FCN.

Expected values come from Keras / TensorFlow themselves (``Conv2DTranspose``,
``compute_output_shape``, ``tf.nn.conv2d_transpose``, ``keras.metrics.MeanIoU``),
never from a copy of the solution.
"""
from __future__ import annotations

import itertools
import types

import numpy as np

from ._compare import as_array, call, expect_close, expect_close_to_scale, expect_finite, fail, passed
from ._models import facts as _model_facts
from ._numpy_only import _ANSWER_KEYS, answer_key, check_numpy_only, library_uses
from .conv_1x1 import initializers


# ------------------------------------------------------------------ upsample

@answer_key
def upsample_reference(x, kernel_initializer, bias_initializer):
    """``Conv2DTranspose(C, (2, 2), strides=(2, 2))`` with the given initializer configs.

    x: (N, H, W, C). Returns (N, 2H, 2W, C) float64.
    """
    import keras
    layer = keras.layers.Conv2DTranspose(x.shape[-1], (2, 2), strides=(2, 2),
                                         kernel_initializer=dict(kernel_initializer),
                                         bias_initializer=dict(bias_initializer))
    return np.asarray(layer(np.array(x)), np.float64)


def _reference_calls(fn, name, what):
    """Fail if ``fn`` calls a checker's reference (an answer key): that part earns nothing.

    TensorFlow and Keras are what these parts ask for, so only the answer keys count here
    (found by helpers.checks._numpy_only.library_uses, through the function's globals).
    """
    scope = getattr(fn, "__globals__", None) or {}
    keys = []
    for use in library_uses(fn):
        words = use.replace(" ", ".").split(".")
        obj = None if use.startswith(("import ", "from ")) else scope.get(words[0])
        if obj is not None and not isinstance(obj, types.ModuleType):
            if getattr(obj, "__course_answer_key__", False):
                keys.append(use)
        elif any(w in _ANSWER_KEYS for w in words):
            keys.append(use)
    if keys:
        fail(name, f"your function called {', '.join(keys[:3])}, which computes {what} for you "
                   "(it is the checker's reference), so this part earns no points.",
             "Compute it yourself, as the cell above asks.")


def check_upsample(fn, shapes=((1, 4, 4, 3), (2, 3, 5, 2)), seed=0):
    """Check ``fn(x, kernel_initializer, bias_initializer) -> (N, 2H, 2W, C)``.

    The expected output is a 2x2, stride-2 Conv2DTranspose built from the same seeded
    initializer configs (kernel and a non-zero bias), to 1e-5 of the output's scale.
    """
    name = "upsample"
    _reference_calls(fn, name, "the upsampled output")
    for i, shape in enumerate(shapes):
        n, h, w, c = shape
        x = np.random.default_rng(seed + i).normal(size=shape).astype("float32")
        out = as_array(call(fn, x.copy(), *initializers(seed + i), fn_name=name), "the output", name)
        want = upsample_reference(x, *initializers(seed + i))
        if out.shape != want.shape:
            hint = "Conv2DTranspose(filters=C, kernel_size=(2, 2), strides=(2, 2)) doubles H and W."
            if out.ndim == 4 and out.shape[1] < 2 * h:
                hint = "The output is smaller than 2H x 2W: use strides=(2, 2)."
            elif out.ndim == 4 and out.shape[1] > 2 * h:
                hint = ("The output is larger than 2H x 2W: with 'valid' padding a kernel larger than "
                        "the stride overhangs; use kernel_size=(2, 2).")
            elif out.ndim == 4 and out.shape[-1] != c:
                hint = f"Keep the channels: filters = x.shape[-1] = {c}."
            fail(name, f"output has shape {out.shape} for x {shape}, expected {want.shape}.", hint)
        again = as_array(call(fn, x.copy(), *initializers(seed + i), fn_name=name), "the output", name)
        if not np.allclose(out, again, rtol=1e-5, atol=1e-5 * np.abs(out).max()):
            fail(name, "two calls with the same seeded initializers gave different outputs.",
                 "Most likely: kernel_initializer (or bias_initializer) is not passed to the layer "
                 "(UpSampling2D has no weights: it repeats pixels, it does not learn).")
        kernel_init, _ = initializers(seed + i)
        expect_close_to_scale(out, want, "output", name, tol=1e-5, mistakes={
            "the output has no bias: keep use_bias=True (the default) and pass "
            "bias_initializer=bias_initializer.":
                upsample_reference(x, kernel_init, {"class_name": "Zeros", "config": {}}),
            "an activation is applied (ReLU?); the layer has none.": np.maximum(want, 0),
            "UpSampling2D: it repeats pixels and has no weights, so it does not learn. Use "
            "Conv2DTranspose(C, (2, 2), strides=(2, 2)).": x.repeat(2, axis=1).repeat(2, axis=2)},
            hint="Expected one Conv2DTranspose(C, kernel_size=(2, 2), strides=(2, 2)) with a bias, "
                 "no activation, and both given initializers.")
    passed(name, f"doubles H and W on {len(shapes)} inputs; matches "
                 "Conv2DTranspose(C, 2, strides=2) with the same kernel and bias.")


# ------------------------------------------------------------------ output sizes

@answer_key
def keras_transposed_size(in_size, kernel, stride, padding):
    """Output height of ``keras.layers.Conv2DTranspose`` on an in_size x in_size input."""
    import keras
    layer = keras.layers.Conv2DTranspose(1, kernel, strides=stride, padding=padding)
    return int(layer.compute_output_shape((1, in_size, in_size, 1))[1])


def keras_conv_size(in_size, kernel, stride, padding):
    """Output height of ``keras.layers.Conv2D``, or None when the kernel does not fit."""
    if padding == "valid" and kernel > in_size:
        return None
    import keras
    layer = keras.layers.Conv2D(1, kernel, strides=stride, padding=padding)
    return int(layer.compute_output_shape((1, in_size, in_size, 1))[1])


GRID = list(itertools.product(range(1, 7), range(1, 6), range(1, 4), ("valid", "same")))


def check_transposed_output_size(fn, grid=GRID):
    """Check ``fn(in_size, kernel, stride, padding) -> int`` against Keras over a grid."""
    name = "transposed_output_size"
    check_numpy_only(fn, name, "the output size", how="by arithmetic (Python or NumPy)")
    for n, k, s, p in grid:
        want = keras_transposed_size(n, k, s, p)
        got = call(fn, n, k, s, p, fn_name=name)
        if isinstance(got, (np.integer, float, np.floating)) and float(got) == int(got):
            got = int(got)
        if got == want:
            continue
        hint = None
        if p == "same":
            hint = ("With padding='same' the output is in_size * stride, whatever the kernel "
                    "size (Keras crops the overlap).")
        elif got == (n - 1) * s + k and k < s:
            hint = ("(in - 1) * stride + kernel is right only when kernel >= stride. When the "
                    "kernel is smaller than the stride Keras still outputs in * stride (the gaps "
                    "stay zero): in * stride + max(kernel - stride, 0).")
        elif got == (n - k) // s + 1:
            hint = "That is Conv2D's formula; the transposed convolution goes the other way."
        elif got == n * s:
            hint = "With padding='valid' the kernel's overhang adds max(kernel - stride, 0)."
        fail(name, f"transposed_output_size({n}, {k}, {s}, {p!r}) = {got!r}, Keras gives {want}.", hint)
    passed(name, f"agrees with Keras' Conv2DTranspose on {len(grid)} cases "
                 f"(valid and same).")


# ------------------------------------------------------------------ gradient

@answer_key
def conv_transpose_reference(dy, w, x_shape, stride, padding):
    """dL/dx by tf.nn.conv2d_transpose (float64): what conv_input_gradient must compute."""
    import tensorflow as tf
    return tf.nn.conv2d_transpose(tf.constant(dy, tf.float64), tf.constant(w, tf.float64),
                                  output_shape=x_shape, strides=stride, padding=padding).numpy()


GRAD_CASES = [((1, 4, 4, 2), (3, 3, 2, 3), 2, "SAME"),
              ((2, 5, 5, 1), (2, 2, 1, 2), 1, "VALID"),
              ((1, 7, 7, 3), (3, 3, 3, 2), 2, "VALID")]


def grad_case(x_shape, w_shape, stride, padding, seed):
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    w = rng.normal(size=w_shape)
    y_shape = tf.nn.conv2d(np.zeros(x_shape), w, stride, padding).shape
    return rng.normal(size=y_shape), w


#: What computes the transposed convolution (the answer of conv_input_gradient) directly.
TRANSPOSED_OPS = ("conv2d_transpose", "conv_transpose", "Conv2DTranspose", "conv2d_backprop_input",
                  "Conv2DBackpropInput")


def _transposed_calls(fn):
    """Fail if conv_input_gradient computes its answer without the tape: a transposed
    convolution op or the checker's reference (TensorFlow itself is what the part asks for)."""
    name = "conv_input_gradient"
    _reference_calls(fn, name, "the gradient")
    ops = [u for u in library_uses(fn) if u.replace(" ", ".").split(".")[-1] in TRANSPOSED_OPS]
    if ops:
        fail(name, f"your function called {', '.join(ops[:3])}: that is the answer this part "
                   "derives, so it earns no points.",
             "Compute dL/dx with tf.GradientTape through tf.nn.conv2d, as the cell above asks.")


def check_conv_input_gradient(fn, cases=GRAD_CASES, seed=0):
    """Check ``fn(dy, w, x_shape, stride, padding) -> dL/dx`` for L = sum(conv2d(x, w) * dy)."""
    name = "conv_input_gradient"
    _transposed_calls(fn)
    for i, (xs, ws, s, p) in enumerate(cases):
        dy, w = grad_case(xs, ws, s, p, seed + i)
        got = call(fn, dy.copy(), w.copy(), xs, s, p, fn_name=name)
        if got is None:
            fail(name, "the gradient is None.",
                 "Most likely: x is a plain tensor, not a Variable; call tape.watch(x) inside "
                 "the `with tf.GradientTape() as tape:` block, before the convolution.")
        got = as_array(got, "dx", name)
        want = conv_transpose_reference(dy, w, xs, s, p)
        where = f"x {xs}, w {ws}, stride {s}, {p}"
        if got.shape != want.shape:
            fail(name, f"dx has shape {got.shape}, expected x's shape {want.shape} ({where}).",
                 "The gradient with respect to x has x's shape.")
        expect_close(got, want, "dx", name, tol=1e-6, mistakes={
            "you differentiated sum(y), not sum(y * dy): weight the output by the upstream "
            "gradient dy (or pass output_gradients=dy to tape.gradient).":
                conv_transpose_reference(np.ones_like(dy), w, xs, s, p)},
            hint=f"Failed on {where}.")
    passed(name, f"{len(cases)} cases equal tf.nn.conv2d_transpose(dy, w): the transposed "
                        "convolution IS the gradient of the convolution.")


# ------------------------------------------------------------------ mean IoU

@answer_key
def reference_mean_iou(y_true, y_pred, num_classes):
    """``keras.metrics.MeanIoU``: mean over classes present in y_true or y_pred."""
    import keras
    m = keras.metrics.MeanIoU(num_classes)
    m.update_state(np.asarray(y_true).ravel(), np.asarray(y_pred).ravel())
    return float(m.result())


def _iou_case(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=(3, 6, 7))                 # class 3 never appears
    p = np.where(rng.random(y.shape) < 0.7, y, rng.integers(0, 3, size=y.shape))
    return y, p


def check_mean_iou(fn, num_classes=4, seed=0):
    """Check ``fn(y_true, y_pred, num_classes) -> float`` against keras.metrics.MeanIoU."""
    name = "mean_iou"
    _reference_calls(fn, name, "the mean IoU")
    metrics = [u for u in library_uses(fn) if u.replace(" ", ".").split(".")[-1] in ("MeanIoU", "IoU")]
    if metrics:
        fail(name, f"your function called {', '.join(metrics[:2])}, which computes the mean IoU for "
                   "you, so this part earns no points.",
             "Count the intersection and union of each class yourself (NumPy is fine).")
    y, p = _iou_case(seed)
    cases = [(y, p, "random labels, class 3 absent from both"),
             (y, y, "a perfect prediction"),
             (y[:1], np.zeros_like(y[:1]), "everything predicted as class 0")]
    for yt, yp, what in cases:
        want = reference_mean_iou(yt, yp, num_classes)
        got = call(fn, yt.copy(), yp.copy(), num_classes, fn_name=name)
        got = as_array(got, "mean IoU", name)
        if got.size != 1:
            fail(name, f"returned an array of shape {got.shape}; return one number.",
                 "Average the per-class IoUs.")
        got = float(got)
        if abs(got - want) <= 1e-6:
            continue
        present = [c for c in range(num_classes) if np.any(yt == c) or np.any(yp == c)]
        inter = np.array([np.sum((yt == c) & (yp == c)) for c in range(num_classes)], float)
        union = np.array([np.sum((yt == c) | (yp == c)) for c in range(num_classes)], float)
        hint = None
        if abs(got - np.mean(inter / np.maximum(union, 1))) < 1e-6:
            hint = ("Most likely: a class that appears in neither y_true nor y_pred counted as "
                    "IoU 0. Average only over classes with a non-empty union.")
        elif abs(got - np.mean(yt == yp)) < 1e-6:
            hint = "That is pixel accuracy. IoU per class is |true & pred| / |true | pred|."
        elif abs(got - inter[present].sum() / union[present].sum()) < 1e-6:
            hint = "You pooled all classes before dividing; divide per class, then average."
        fail(name, f"mean IoU is {got:.4f} on {what}, expected {want:.4f}.", hint)
    passed(name, "matches keras.metrics.MeanIoU (absent classes are skipped).")


# ------------------------------------------------------------------ the FCN

FACTS_HINT = "Return keras.Model(inputs, outputs) built from keras.layers."


def check_build_fcn(fn, num_classes=4):
    """Check ``fn(num_classes, skips) -> keras.Model`` (logits, any size divisible by 8).

    Under the grader's judge the model stays in the student's kernel: its outputs come back
    as data, its layer types and parameter count through :func:`._models.model_facts`.
    """
    name = "build_fcn"
    x = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32")
    params = {}
    for skips in (True, False):
        model = call(fn, num_classes, skips, fn_name=name)
        facts = _model_facts(model, name, FACTS_HINT)
        if not facts["keras_model"]:
            fail(name, f"build_fcn(..., skips={skips}) returned {facts['type'][:60]}, not a keras.Model.",
                 "Return keras.Model(inputs, outputs).")
        out = as_array(model(x.copy(), training=False), "the output", name)
        if out.shape != (2, 64, 64, num_classes):
            hint = None
            if out.ndim == 4 and out.shape[1] < 64:
                hint = (f"The output is {out.shape[1]}x{out.shape[2]}: the decoder must undo all "
                        "three poolings (three stride-2 Conv2DTranspose layers, 8x in total).")
            fail(name, f"output has shape {out.shape} for input (2, 64, 64, 3) (skips={skips}), "
                       f"expected (2, 64, 64, {num_classes}): one score per class per pixel.", hint)
        expect_finite(out, "the output", name)
        if np.allclose(out.sum(-1), 1, atol=1e-4) and out.min() >= 0:
            fail(name, "the output sums to 1 over classes: return logits (no softmax).",
                 "The loss is SparseCategoricalCrossentropy(from_logits=True).")
        try:
            other = as_array(model(np.zeros((1, 32, 48, 3), "float32"), training=False), "output", name)
        except Exception as exc:       # e.g. a fixed-size Input or a Flatten/Dense head
            fail(name, f"the model fails on a (1, 32, 48, 3) input ({type(exc).__name__}).",
                 "A fully convolutional network accepts any size divisible by 8: use "
                 "keras.Input(shape=(None, None, 3)) and no Flatten/Dense.")
        if other.shape != (1, 32, 48, num_classes):
            fail(name, f"on a (1, 32, 48, 3) input the output is {other.shape}, expected "
                       f"(1, 32, 48, {num_classes}).",
                 "A fully convolutional network accepts any size divisible by 8: use "
                 "keras.Input(shape=(None, None, 3)) and no Flatten/Dense.")
        facts = _model_facts(model, name, FACTS_HINT)     # again: a subclassed model is built by its first call
        types = facts["layers"]
        for needed, why in (("Conv2DTranspose", "upsample with Conv2DTranspose"),
                            ("MaxPooling2D", "downsample the encoder with MaxPooling2D")):
            if needed not in types:
                fail(name, f"no {needed} layer in the model (skips={skips}).", f"The quiz asks you to {why}.")
        adds = types.count("Add")
        if skips and adds < 2:
            fail(name, f"with skips=True the model has {adds} Add layer(s), expected 2.",
                 "Add a 1x1-conv score of the 16x16 and the 32x32 encoder features to the "
                 "upsampled scores (keras.layers.Add()).")
        params[skips] = facts["params"]
    if params[False] >= params[True]:
        fail(name, f"skips=False has {params[False]:,} parameters, skips=True {params[True]:,}; "
                   "without skips the two 1x1 skip convolutions should be gone.",
             "skips=False is the same network without the two skip additions.")
    passed(name, f"(2, 64, 64, 3) -> (2, 64, 64, {num_classes}) logits, any size divisible "
                 f"by 8; {params[True]:,} parameters with skips, {params[False]:,} without.")


def predict_masks(model, x, batch_size=100):
    """argmax over classes of ``model`` on x (N, H, W, 3): (N, H, W) uint8 class per pixel.

    Under the grader's judge the model lives in the student's kernel: this runs there
    (``__course_run__``) and only the masks come back, checked here for shape and range.
    """
    run_there = getattr(model, "__course_run__", None)
    if run_there is not None:
        masks = np.asarray(run_there(__name__, "predict_masks", x, batch_size))
        if masks.shape != x.shape[:3] or masks.dtype.kind not in "iu" \
                or (masks.size and (masks.min() < 0 or masks.max() > 255)):
            raise AssertionError(f"your model's masks for {x.shape[0]} images came back as "
                                 f"{masks.dtype} {masks.shape}, expected class numbers {x.shape[:3]}")
        return masks.astype(np.uint8)
    return np.concatenate([np.argmax(np.asarray(model(x[i:i + batch_size], training=False)), -1)
                           for i in range(0, len(x), batch_size)]).astype(np.uint8)
