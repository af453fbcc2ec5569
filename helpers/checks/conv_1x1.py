"""Checkers for the ``conv_1x1`` quiz: a 1x1 convolution reproduces a dense layer."""
from __future__ import annotations

import numpy as np

from ._compare import as_array, call, expect_close, expect_equal, fail, passed


class RecordingInitializer:
    """A seeded Glorot-uniform initializer that remembers the shapes it was asked for.

    Passing one instance to both a Dense and a Conv2D layer gives them the same
    numbers (Keras draws them from one seed), and ``shapes`` tells which kernel
    shape the student's layer created.
    """

    def __init__(self, seed=0):
        import keras
        self._inner = keras.initializers.GlorotUniform(seed=seed)
        self.shapes = []

    def __call__(self, shape, dtype=None, **kwargs):
        self.shapes.append(tuple(int(s) for s in shape))
        return self._inner(shape, dtype=dtype)


def dense_reference(x, num_outputs, seed=0):
    """Output of ``keras.layers.Dense(num_outputs)`` on ``x`` with the shared initializer.

    x: (N, H, W, C) float32. Returns (N, H, W, num_outputs) as a NumPy array.
    """
    import keras
    init = RecordingInitializer(seed)
    return np.asarray(keras.layers.Dense(num_outputs, kernel_initializer=init)(x))


def check_conv_1x1(fn, shape=(2, 5, 7, 3), num_outputs=4, seed=0):
    """Check ``fn(x, num_outputs, kernel_initializer)`` against a Dense layer.

    Runs the student's function on an input of ``shape`` (N, H, W, C), checks the
    kernel shape it created is (1, 1, C, K) and that its output equals a Dense
    layer's with the same initializer (atol 1e-5).
    """
    name = "conv_1x1"
    x = np.random.default_rng(seed).normal(size=shape).astype("float32")
    init = RecordingInitializer(seed)
    out = as_array(call(fn, x, num_outputs, init, fn_name=name), "the output", name)
    n, h, w, c = shape
    if not init.shapes:
        fail(name, "the kernel_initializer argument was never used.",
             "Pass it to the layer: Conv2D(..., kernel_initializer=kernel_initializer).")
    kernel = init.shapes[0]
    if len(kernel) == 4 and kernel[:2] != (1, 1):
        fail(name, f"your layer's kernel has shape {kernel}, expected {(1, 1, c, num_outputs)}.",
             "A 1x1 convolution has kernel_size=(1, 1): it looks at one pixel at a time.")
    expect_equal(kernel, (1, 1, c, num_outputs), "the kernel shape", name,
                 hint="Use Conv2D(filters=num_outputs, kernel_size=1, ...).")
    expected = dense_reference(x, num_outputs, seed)
    got = out
    if got.shape != expected.shape:
        hint = None
        if got.ndim == 4 and got.shape[1] < h:
            hint = "The output is smaller than the input: use strides=(1, 1)."
        fail(name, f"output has shape {got.shape}, expected {expected.shape}.", hint)
    err = expect_close(got, expected, "output", name, tol=1e-5,
                       hint="Check that the layer uses a bias, no activation, and the given initializer.")
    return passed(name, f"kernel {kernel}, output {got.shape} matches Dense (max rel. error {err:.1e}).")
