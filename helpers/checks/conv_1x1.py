"""Checkers for the ``conv_1x1`` quiz: a 1x1 convolution reproduces a dense layer.

The student's ``conv_1x1(x, num_outputs, kernel_initializer, bias_initializer)`` is called
with data only: a NumPy array, an int and two Keras initializer configs (plain dicts, which
``keras.initializers.get`` and every layer's ``*_initializer=`` argument accept). The
expected output is a ``Dense`` layer built here from the same configs: seeded initializers
give the same numbers to a (C, K) and a (1, 1, C, K) kernel.
"""
from __future__ import annotations

import numpy as np

from ._compare import as_array, call, expect_close_to_scale, fail, passed


def initializers(seed):
    """The (kernel, bias) initializer configs of one check, fresh dicts.

    The kernel is seeded Glorot-uniform (Keras' default, seeded); the bias is seeded
    standard normal, so that a layer without a bias (or one that ignores
    ``bias_initializer``) gives different numbers.
    """
    return ({"class_name": "GlorotUniform", "config": {"seed": int(seed)}},
            {"class_name": "RandomNormal", "config": {"seed": int(seed) + 1000, "stddev": 1.0}})


def dense_reference(x, num_outputs, kernel_initializer, bias_initializer):
    """``keras.layers.Dense(num_outputs)`` on ``x`` with the given initializer configs.

    x: (N, H, W, C) float32. Returns (N, H, W, num_outputs) as a float64 NumPy array.
    """
    import keras
    layer = keras.layers.Dense(num_outputs, kernel_initializer=dict(kernel_initializer),
                               bias_initializer=dict(bias_initializer))
    return np.asarray(layer(np.array(x)), dtype=np.float64)


def _run(fn, x, num_outputs, seed, name):
    """Call the student's function on a copy of x with fresh initializer configs."""
    kernel_init, bias_init = initializers(seed)
    out = call(fn, x.copy(), int(num_outputs), kernel_init, bias_init, fn_name=name)
    return as_array(out, "the output", name).astype(np.float64)


def check_conv_1x1(fn, shape=(2, 5, 7, 3), num_outputs=4, seed=0):
    """Check ``fn(x, num_outputs, kernel_initializer, bias_initializer)`` against Dense.

    x has ``shape`` (N, H, W, C). The output must equal a Dense layer's built from the
    same seeded initializers (kernel and bias), to 1e-5 of the output's scale (float32
    or float64). Known mistakes (a
    stride, no bias, an activation, an ignored initializer) are named.
    """
    name = "conv_1x1"
    n, h, w, c = shape
    x = np.random.default_rng(seed).normal(size=shape).astype("float32")
    got = _run(fn, x, num_outputs, seed, name)
    want = dense_reference(x, num_outputs, *initializers(seed))
    if got.shape != want.shape:
        hint = "A 1x1 convolution with strides=(1, 1) keeps H and W; filters=num_outputs sets K."
        if got.ndim == 4 and got.shape[1] == -(-h // 2) and got.shape[2] == -(-w // 2):
            hint = "The output is half the input's size: use strides=(1, 1)."
        elif got.ndim == 4 and got.shape[1] < h:
            hint = ("The output is smaller than the input: a kernel larger than 1x1 with 'valid' "
                    "padding. Use kernel_size=(1, 1).")
        elif got.ndim == 4 and got.shape[-1] != num_outputs:
            hint = f"The last axis must have num_outputs = {num_outputs} channels: filters=num_outputs."
        fail(name, f"output has shape {got.shape} for x {shape} and num_outputs={num_outputs}, "
                   f"expected {want.shape}.", hint)
    again = _run(fn, x, num_outputs, seed, name)
    if not np.allclose(got, again, rtol=1e-5, atol=1e-5 * np.abs(got).max()):
        fail(name, "two calls with the same seeded initializers gave different outputs.",
             "Most likely: the kernel_initializer (or bias_initializer) argument is not used: pass "
             "both to the layer, Conv2D(..., kernel_initializer=kernel_initializer, "
             "bias_initializer=bias_initializer).")
    kernel_init, _ = initializers(seed)
    no_bias = dense_reference(x, num_outputs, kernel_init, {"class_name": "Zeros", "config": {}})
    err = expect_close_to_scale(got, want, "output", name, tol=1e-5, mistakes={
        "the output has no bias. Dense adds a bias (shifted by the same b at every pixel), so "
        "keep use_bias=True (the default) and pass bias_initializer=bias_initializer.": no_bias,
        "an activation is applied (ReLU?). Dense(num_outputs) has none: leave activation=None.":
            np.maximum(want, 0),
    }, hint="Check kernel_size=(1, 1), strides=(1, 1), no activation, a bias, and that both "
            "initializers are passed to the layer.")
    return passed(name, f"output {got.shape} matches Dense({num_outputs}) with the same kernel "
                        f"and bias (max error {err:.1e} of its scale).")


def check_one_pixel(fn, shape=(1, 5, 6, 3), num_outputs=4, seed=0):
    """Check that ``fn`` is a 1x1 convolution: each output pixel sees one input pixel.

    Feeds images that are zero except at one pixel (bias initializer zeros): the output
    of a (1, 1, C, K) kernel is non-zero at one position at most, and has K channels.
    A wider kernel spreads the pixel over its window; an output that no probe pixel
    reaches (all zeros) is no convolution either. Strides and values are not judged here
    (check_conv_1x1 does that).
    """
    name = "conv_1x1"
    n, h, w, c = shape
    rng = np.random.default_rng(seed)
    reached = 0          # output pixels the probes reached (a stride may skip one probe)
    for i, j in ((h // 2, w // 2), (0, w - 1), (0, 0)):
        x = np.zeros(shape, "float32")
        x[0, i, j] = rng.uniform(0.5, 1.5, size=c) * rng.choice([-1, 1], size=c)
        kernel_init, _ = initializers(seed)
        out = call(fn, x, int(num_outputs), kernel_init, {"class_name": "Zeros", "config": {}},
                   fn_name=name)
        out = as_array(out, "the output", name)
        if out.ndim != 4 or out.shape[0] != n or out.shape[-1] != num_outputs:
            fail(name, f"output has shape {out.shape} for x {shape}, expected (N, H', W', "
                       f"{num_outputs}) with N = {n}.",
                 f"Conv2D(filters=num_outputs) gives {num_outputs} output channels.")
        touched = np.argwhere(np.any(np.abs(out) > 1e-6, axis=-1))
        reached += len(touched)
        if len(touched) > 1:
            rows = touched[:, 1].max() - touched[:, 1].min() + 1
            cols = touched[:, 2].max() - touched[:, 2].min() + 1
            fail(name, f"one non-zero input pixel at ({i}, {j}) changed the output at "
                       f"{len(touched)} positions (a {rows}x{cols} patch).",
                 "A 1x1 convolution looks at one pixel at a time: use kernel_size=(1, 1) "
                 "(its kernel has shape (1, 1, C, K)).")
    if reached == 0:
        fail(name, "a non-zero input pixel never reached the output: it was all zero.",
             "The layer must see its input: apply Conv2D(filters=num_outputs, "
             "kernel_size=(1, 1)) to x and return its output.")
    return passed(name, f"each output pixel depends on one input pixel, {num_outputs} channels "
                        "out: a (1, 1, C, K) kernel.")
