"""Checkers for the ``upsampling_fcn`` quiz: transposed convolution, skip connections, FCN.

Expected values come from Keras / TensorFlow themselves (``Conv2DTranspose``,
``compute_output_shape``, ``tf.nn.conv2d_transpose``, ``keras.metrics.MeanIoU``),
never from a copy of the solution.
"""
from __future__ import annotations

import itertools

import numpy as np

from ._compare import (as_array, call, expect_close, expect_equal, expect_finite, fail,
                       passed)
from .conv_1x1 import RecordingInitializer


# ------------------------------------------------------------------ upsample

def upsample_reference(x, seed=0):
    """``Conv2DTranspose(C, (2, 2), strides=(2, 2))`` with the seeded initializer: (N, 2H, 2W, C)."""
    import keras
    layer = keras.layers.Conv2DTranspose(x.shape[-1], (2, 2), strides=(2, 2),
                                         kernel_initializer=RecordingInitializer(seed))
    return np.asarray(layer(x))


def check_upsample(fn, shapes=((1, 4, 4, 3), (2, 3, 5, 2)), seed=0):
    """Check ``fn(x, kernel_initializer) -> (N, 2H, 2W, C)`` against a 2x2/stride-2 Conv2DTranspose."""
    name = "upsample"
    for shape in shapes:
        n, h, w, c = shape
        x = np.random.default_rng(seed).normal(size=shape).astype("float32")
        init = RecordingInitializer(seed)
        out = as_array(call(fn, x, init, fn_name=name), "the output", name)
        if not init.shapes:
            fail(name, "the kernel_initializer argument was never used.",
                 "Use keras.layers.Conv2DTranspose(..., kernel_initializer=kernel_initializer) "
                 "(UpSampling2D has no weights: it repeats pixels, it does not learn).")
        want = upsample_reference(x, seed)
        if out.shape != want.shape:
            hint = "Conv2DTranspose(filters=C, kernel_size=(2, 2), strides=(2, 2)) doubles H and W."
            if out.ndim == 4 and out.shape[1] < 2 * h:
                hint = "The output is smaller than 2H x 2W: use strides=(2, 2)."
            elif out.ndim == 4 and out.shape[-1] != c:
                hint = f"Keep the channels: filters = x.shape[-1] = {c}."
            fail(name, f"output has shape {out.shape} for x {shape}, expected {want.shape}.", hint)
        expect_equal(init.shapes[0], (2, 2, c, c), "the kernel shape", name,
                     hint="kernel_size=(2, 2): each input pixel paints a 2x2 patch of the output.")
        expect_close(out, want, "output", name, tol=1e-5,
                     hint="Use a bias, no activation, and the given kernel_initializer.")
    passed(name, f"doubles H and W on {len(shapes)} inputs; matches "
                        "Conv2DTranspose(C, 2, strides=2).")


# ------------------------------------------------------------------ output sizes

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

def conv_transpose_reference(dy, w, x_shape, stride, padding):
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


def check_conv_input_gradient(fn, cases=GRAD_CASES, seed=0):
    """Check ``fn(dy, w, x_shape, stride, padding) -> dL/dx`` for L = sum(conv2d(x, w) * dy)."""
    name = "conv_input_gradient"
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

def _layer_types(model):
    import keras
    seen, stack = [], list(model.layers)
    while stack:
        layer = stack.pop(0)
        seen.append(type(layer).__name__)
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
    return seen


def check_build_fcn(fn, num_classes=4):
    """Check ``fn(num_classes, skips) -> keras.Model`` (logits, any size divisible by 8)."""
    import keras
    name = "build_fcn"
    x = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32")
    params = {}
    for skips in (True, False):
        model = call(fn, num_classes, skips, fn_name=name)
        if not isinstance(model, keras.Model):
            fail(name, f"build_fcn(..., skips={skips}) returned {type(model).__name__}, not a keras.Model.",
                 "Return keras.Model(inputs, outputs).")
        out = as_array(model(x, training=False), "the output", name)
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
        types = _layer_types(model)
        for needed, why in (("Conv2DTranspose", "upsample with Conv2DTranspose"),
                            ("MaxPooling2D", "downsample the encoder with MaxPooling2D")):
            if needed not in types:
                fail(name, f"no {needed} layer in the model (skips={skips}).", f"The quiz asks you to {why}.")
        adds = types.count("Add")
        if skips and adds < 2:
            fail(name, f"with skips=True the model has {adds} Add layer(s), expected 2.",
                 "Add a 1x1-conv score of the 16x16 and the 32x32 encoder features to the "
                 "upsampled scores (keras.layers.Add()).")
        params[skips] = model.count_params()
    if params[False] >= params[True]:
        fail(name, f"skips=False has {params[False]:,} parameters, skips=True {params[True]:,}; "
                   "without skips the two 1x1 skip convolutions should be gone.",
             "skips=False is the same network without the two skip additions.")
    passed(name, f"(2, 64, 64, 3) -> (2, 64, 64, {num_classes}) logits, any size divisible "
                 f"by 8; {params[True]:,} parameters with skips, {params[False]:,} without.")


def predict_masks(model, x, batch_size=100):
    """argmax over classes of ``model`` on x (N, H, W, 3): (N, H, W) int."""
    return np.concatenate([np.argmax(np.asarray(model(x[i:i + batch_size], training=False)), -1)
                           for i in range(0, len(x), batch_size)])
