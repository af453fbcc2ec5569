"""Explorer for the ``upsampling_fcn`` quiz: Conv2D vs Conv2DTranspose output shapes.

``output_shapes`` is the function behind the widget (tested without a frontend);
``explore_output_shapes`` returns the ipywidgets UI (not displayed). The shapes
come from Keras itself (``compute_output_shape``), not from a formula. ``output_shapes`` is an
answer key: a ``transposed_output_size`` that calls it earns nothing.
"""
from __future__ import annotations

from helpers.checks._numpy_only import answer_key


@answer_key
def output_shapes(in_size, kernel, stride, padding):
    """Output height/width of Conv2D and Conv2DTranspose on an in_size x in_size input.

    in_size, kernel, stride: positive ints; padding: 'valid' or 'same'.
    Returns {'Conv2D': int or None, 'Conv2DTranspose': int}; None means the kernel
    does not fit ('valid' with kernel > in_size).
    Raises ValueError for non-positive sizes or an unknown padding.
    """
    for label, v in (("in_size", in_size), ("kernel", kernel), ("stride", stride)):
        if int(v) != v or v < 1:
            raise ValueError(f"output_shapes: {label} must be a positive int, got {v!r}")
    if padding not in ("valid", "same"):
        raise ValueError(f"output_shapes: padding must be 'valid' or 'same', got {padding!r}")
    import keras
    conv = None
    if padding == "same" or kernel <= in_size:
        conv = int(keras.layers.Conv2D(1, kernel, strides=stride, padding=padding)
                   .compute_output_shape((1, in_size, in_size, 1))[1])
    tconv = int(keras.layers.Conv2DTranspose(1, kernel, strides=stride, padding=padding)
                .compute_output_shape((1, in_size, in_size, 1))[1])
    return {"Conv2D": conv, "Conv2DTranspose": tconv}


def describe(in_size, kernel, stride, padding):
    """The text the widget shows, e.g. 'input 4x4 | Conv2D -> 1x1 | Conv2DTranspose -> 9x9'."""
    s = output_shapes(in_size, kernel, stride, padding)
    conv = f"{s['Conv2D']}x{s['Conv2D']}" if s["Conv2D"] else "kernel larger than input"
    t = s["Conv2DTranspose"]
    return (f"input {in_size}x{in_size}, kernel {kernel}, stride {stride}, {padding}: "
            f"Conv2D -> {conv} | Conv2DTranspose -> {t}x{t}")


def explore_output_shapes(in_size=4, kernel=3, stride=2, padding="valid"):
    """Sliders for input size, kernel, stride and a padding menu; returns the widget."""
    import ipywidgets as w
    controls = dict(
        in_size=w.IntSlider(value=in_size, min=1, max=32, description="input"),
        kernel=w.IntSlider(value=kernel, min=1, max=7, description="kernel"),
        stride=w.IntSlider(value=stride, min=1, max=4, description="stride"),
        padding=w.Dropdown(options=["valid", "same"], value=padding, description="padding"))
    label = w.HTML()

    def update(*_):
        label.value = "<code>" + describe(*(c.value for c in controls.values())) + "</code>"

    for c in controls.values():
        c.observe(update, names="value")
    update()
    return w.VBox([*controls.values(), label])
