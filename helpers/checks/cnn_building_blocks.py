"""Checkers for the ``cnn_building_blocks`` quiz: convolution, pooling, dropout, flatten.

Expected values come from independent implementations (``tf.nn.conv2d``,
``tf.nn.max_pool2d``, ``keras.layers.Flatten`` / ``GlobalAveragePooling2D``, Keras'
``count_params``), never from a copy of the solution. Known mistakes are
recomputed the same way, so a wrong answer is named, not just rejected.
"""
from __future__ import annotations

import numpy as np

from ._compare import as_array, call, expect_close, expect_shape, fail, passed
from ._numpy_only import answer_key, check_numpy_only


def _first(out):
    """Students return ``(out, cache)``; accept a bare array too."""
    return out[0] if isinstance(out, tuple) else out


# ------------------------------------------------------------------ convolution

@answer_key
def conv_reference(x, w, b, stride, pad):
    """``tf.nn.conv2d`` with zero padding ``pad`` and bias: (N, H', W', F) float64."""
    import tensorflow as tf
    out = tf.nn.conv2d(np.asarray(x, np.float64), np.asarray(w, np.float64), strides=stride,
                       padding=[[0, 0], [pad, pad], [pad, pad], [0, 0]])
    return out.numpy() + np.asarray(b, np.float64)


def conv_output_size(size, kernel, stride, pad):
    """1 + (size + 2 pad - kernel) // stride."""
    return 1 + (size + 2 * pad - kernel) // stride


#: (x shape NHWC, w shape HWIO, stride, pad): strides 1-3, pads 0-2, odd and even sizes.
CONV_CASES = [((2, 7, 7, 3), (3, 3, 3, 4), 1, 1),
              ((2, 9, 8, 2), (3, 3, 2, 3), 2, 1),
              ((1, 8, 10, 3), (2, 2, 3, 2), 2, 0),
              ((1, 11, 11, 1), (5, 5, 1, 2), 3, 2)]


def conv_case(x_shape, w_shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=w_shape[-1]))


def _conv_shape_hint(got, x_shape, w_shape, stride, pad):
    """Name the mistake behind a wrong output shape, if we recognise it."""
    n, h, w, _ = x_shape
    kh, kw, _, f = w_shape
    if len(got) != 4:
        return "The output is (N, H', W', F): batch, height, width, filters."
    guesses = [
        ("you forgot the zero padding: pad `pad` zeros on every side of H and W before sliding",
         (conv_output_size(h, kh, stride, 0), conv_output_size(w, kw, stride, 0))),
        ("you padded only one side; np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))",
         (conv_output_size(h - pad, kh, stride, pad), conv_output_size(w - pad, kw, stride, pad))),
        ("the stride is off by one (windows start every `stride` pixels, starting at 0)",
         (conv_output_size(h, kh, stride + 1, pad), conv_output_size(w, kw, stride + 1, pad))),
        ("the stride is off by one (windows start every `stride` pixels, starting at 0)",
         (conv_output_size(h, kh, max(stride - 1, 1), pad),
          conv_output_size(w, kw, max(stride - 1, 1), pad))),
        ("the output size is off by one: H' = 1 + (H + 2 * pad - HH) // stride",
         ((h + 2 * pad - kh) // stride, (w + 2 * pad - kw) // stride)),
    ]
    hits = list(dict.fromkeys(text for text, hw in guesses if tuple(got[1:3]) == hw))
    if hits:
        return "Most likely: " + "; or ".join(hits) + "."
    if got[-1] != f:
        return "The last axis holds one channel per filter: F = w.shape[3]."
    return "H' = 1 + (H + 2 * pad - HH) // stride, and the same for W'."


def check_conv_forward_naive(fn, cases=CONV_CASES, seed=0):
    """Check ``fn(x, w, b, conv_param) -> (out, cache)`` against tf.nn.conv2d."""
    name = "conv_forward_naive"
    check_numpy_only(fn, name, "the convolution")
    for i, (xs, ws, stride, pad) in enumerate(cases):
        x, w, b = conv_case(xs, ws, seed + i)
        want = conv_reference(x, w, b, stride, pad)
        got = as_array(_first(call(fn, x.copy(), w.copy(), b.copy(),
                                   {"stride": stride, "pad": pad}, fn_name=name)), "out", name)
        where = f"(x {xs}, w {ws}, stride {stride}, pad {pad})"
        if got.shape != want.shape:
            fail(name, f"out has shape {got.shape}, expected {want.shape} {where}.",
                 _conv_shape_hint(got.shape, xs, ws, stride, pad))
        ho, wo = want.shape[1:3]
        mistakes = {
            "you forgot to add the bias b.": want - b,
            "the kernel is flipped: tf.nn.conv2d and Keras compute cross-correlation, "
            "sum(window * w) with w as it is, not w[::-1, ::-1].":
                conv_reference(x, w[::-1, ::-1], b, stride, pad),
            "the windows do not move by the stride: window (i, j) starts at "
            "(i * stride, j * stride) in the padded input.":
                conv_reference(x, w, b, 1, pad)[:, :ho, :wo],
        }
        # float64 inputs: 1e-7; an output computed in float32 is still right to ~1e-5.
        tol = 1e-7 if got.dtype == np.float64 else 1e-4
        expect_close(got, want, "out", name, tol=tol, mistakes=mistakes,
                     hint=f"Failed on x {xs}, w {ws}, stride {stride}, pad {pad}.")
    strides = ", ".join(str(v) for v in sorted({c[2] for c in cases}))
    pads = ", ".join(str(v) for v in sorted({c[3] for c in cases}))
    passed(name, f"{len(cases)} cases (strides {strides}; pads {pads}) match tf.nn.conv2d.")


# ------------------------------------------------------------------ max pooling

def same_padding(size, pool, stride):
    """TensorFlow's 'SAME' padding: (output size, pad before, pad after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + pool - size, 0)
    return out, total // 2, total - total // 2


@answer_key
def pool_reference(x, ph, pw, stride, padding):
    """``tf.nn.max_pool2d``; x must hold float32-exact values."""
    import tensorflow as tf
    return tf.nn.max_pool2d(np.asarray(x, np.float32), (ph, pw), stride, padding).numpy().astype(np.float64)


#: (x shape, pool_height, pool_width, stride, padding)
POOL_CASES = [((2, 6, 6, 3), 2, 2, 2, "VALID"),
              ((1, 7, 9, 2), 3, 3, 2, "VALID"),
              ((2, 5, 5, 2), 2, 2, 2, "SAME"),
              ((1, 7, 8, 3), 3, 2, 2, "SAME"),
              ((1, 6, 7, 1), 3, 3, 1, "SAME")]


def pool_case(shape, seed):
    """Inputs that are exact in float32, mostly negative so zero padding shows."""
    x = np.random.default_rng(seed).normal(loc=-2.0, size=shape).astype(np.float32)
    return x.astype(np.float64)


def check_max_pool_forward_naive(fn, cases=POOL_CASES, seed=0):
    """Check ``fn(x, pool_param) -> (out, cache)`` against tf.nn.max_pool2d."""
    name = "max_pool_forward_naive"
    check_numpy_only(fn, name, "max pooling")
    for i, (xs, ph, pw, stride, padding) in enumerate(cases):
        x = pool_case(xs, seed + i)
        param = {"pool_height": ph, "pool_width": pw, "stride": stride, "padding": padding}
        want = pool_reference(x, ph, pw, stride, padding)
        got = as_array(_first(call(fn, x.copy(), dict(param), fn_name=name)), "out", name)
        where = f"x {xs}, {ph}x{pw} pool, stride {stride}, {padding}"
        if got.shape != want.shape:
            if padding == "SAME":
                hint = ("With 'SAME' the output is ceil(H / stride) x ceil(W / stride): pad "
                        "(ceil(H / stride) - 1) * stride + pool_height - H rows in total, "
                        "the smaller half on top (TensorFlow's rule), the same for columns.")
            else:
                hint = "With 'VALID' (no padding) H' = 1 + (H - pool_height) // stride."
            fail(name, f"out has shape {got.shape}, expected {want.shape} ({where}).", hint)
        mistakes = {}
        if padding == "SAME":
            (_, top, bottom), (_, left, right) = (same_padding(xs[1], ph, stride),
                                                  same_padding(xs[2], pw, stride))
            zero_pad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
            mistakes["the padding is zeros; for max pooling pad with -inf (padded cells must "
                     "never win the max; these inputs are mostly negative)."] = \
                pool_reference(zero_pad, ph, pw, stride, "VALID")
            flipped = np.pad(x, ((0, 0), (bottom, top), (right, left), (0, 0)),
                             constant_values=-np.inf)
            if (top, left) != (bottom, right):
                mistakes["the extra padding row/column is on the wrong side: TensorFlow puts "
                         "the smaller half before (top/left), the larger after."] = \
                    pool_reference(flipped, ph, pw, stride, "VALID")
        mistakes["the windows do not move by the stride: window (i, j) starts at "
                 "(i * stride, j * stride)."] = \
            pool_reference(x, ph, pw, 1, padding)[:, :want.shape[1], :want.shape[2]]
        expect_close(got, want, "out", name, tol=1e-7, mistakes=mistakes, hint=f"Failed on {where}.")
    pools = ", ".join(dict.fromkeys(f"{c[1]}x{c[2]}/{c[3]} {c[4]}" for c in cases))
    passed(name, f"{len(cases)} cases (pool/stride padding: {pools}) match tf.nn.max_pool2d.")


# ------------------------------------------------------------------ dropout

def check_dropout_forward(fn, rate=0.3, n=700, seed=0):
    """Statistical check of inverted dropout on n*n inputs (cannot flake, see below).

    With n*n = 490,000 inputs the fraction of zeros has standard deviation
    sqrt(rate (1 - rate) / n**2) <= 0.0008; we allow 0.01 (14 standard deviations).
    The ratio sum(out) / sum(x) (x ~ N(1, 1)) has standard deviation sqrt(2 rate / (1 - rate)) / n,
    0.0035 at rate 0.75; we allow 0.02 (5.7 of them). (Under the grader's judge every array
    crosses to the student's kernel and back: 10**6 inputs cost 7 s there.)
    """
    name = "dropout_forward"
    check_numpy_only(fn, name, "dropout")
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=1.0, size=(n, n))
    x[x == 0] = 1.0                                    # a zero input would look dropped
    np.random.seed(seed)                              # for np.random.rand users
    result = call(fn, x.copy(), rate, True, fn_name=name)
    out = expect_shape(_first(result), x.shape, "out (train)", name)
    dropped = out == 0
    _check_independent(dropped, name)
    frac = dropped.mean()
    if abs(frac - (1 - rate)) < 0.01 and abs(rate - 0.5) > 0.05:
        fail(name, f"with rate={rate} you dropped {frac:.3f} of the units, expected {rate}.",
             "Most likely: `rate` is the probability to DROP a unit (Keras' meaning), you kept "
             "with probability `rate`. Keep with probability 1 - rate.")
    if abs(frac - rate) > 0.01:
        fail(name, f"with rate={rate} you dropped {frac:.3f} of the units (zeros in out), "
                   f"expected {rate} +- 0.01 over {n * n:,} units.",
             "Zero each unit independently with probability `rate`, e.g. "
             "mask = np.random.rand(*x.shape) >= rate.")
    kept = ~dropped
    ratio = out[kept] / x[kept]
    if np.allclose(ratio, 1.0):
        fail(name, "survivors are not scaled: sum(out) is about (1 - rate) * sum(x).",
             "Most likely: you forgot the inverted-dropout scaling. Divide the survivors "
             "by (1 - rate) at TRAIN time, so the expected sum is unchanged.")
    if np.allclose(ratio, 1 - rate):
        fail(name, "survivors are multiplied by (1 - rate); they must be divided by it.",
             "Inverted dropout scales survivors by 1 / (1 - rate).")
    expect_close(ratio, np.full_like(ratio, 1 / (1 - rate)), "out / x on the kept units", name,
                 tol=1e-6, hint="Every kept unit is x / (1 - rate).")
    _check_mask(result, x, out, rate, name)
    total = out.sum() / x.sum()
    if abs(total - 1) > 0.02:                         # pragma: no cover - implied by the above
        fail(name, f"sum(out) / sum(x) = {total:.3f}, expected 1 +- 0.02.")
    again = as_array(_first(call(fn, x.copy(), rate, True, fn_name=name)), "out", name)
    if np.array_equal(again == 0, dropped):
        fail(name, "two training calls dropped exactly the same units.",
             "Draw a fresh random mask on every call (do not re-seed inside the function).")
    test = as_array(_first(call(fn, x.copy(), rate, False, fn_name=name)), "out (test)", name)
    expect_shape(test, x.shape, "out (test)", name)
    for wrong in (1 - rate, 1 / (1 - rate)):
        if np.allclose(test, x * wrong):
            fail(name, f"at test time out = {wrong:.3g} * x; it must equal x.",
                 "Most likely: you scaled at test time. Inverted dropout does all its scaling "
                 "at train time; at test time (train=False) it is the identity.")
    if not np.array_equal(test, x):
        fail(name, "at test time (train=False) out must equal x exactly.",
             "Do not drop or scale anything when train is False.")
    zero = as_array(_first(call(fn, x[:50, :50].copy(), 0.0, True, fn_name=name)), "out", name)
    expect_close(zero, x[:50, :50], "out with rate=0", name, tol=1e-12,
                 hint="rate=0 drops nothing and scales by 1 / (1 - 0) = 1.")
    passed(name, f"dropped {frac:.4f} (rate {rate}), survivors scaled by 1/(1-rate), "
                        f"sum ratio {total:.4f}; identity at test time.")


def _check_independent(dropped, name):
    """Every unit gets its own coin: in a mask of 490,000 units no two rows (examples) or columns
    (features) are equal by chance."""
    if np.all(dropped == dropped[:1]):
        fail(name, "the same units are dropped in every example (the mask repeats over the batch).",
             "Most likely: the mask has the shape of one example (x.shape[1:]) and is "
             "broadcast over the batch; draw it with the full shape, np.random.rand(*x.shape).")
    if np.all(dropped == dropped[:, :1]):
        fail(name, "whole examples are dropped or kept together.",
             "Most likely: the mask has shape (N, 1); draw one coin per unit, "
             "np.random.rand(*x.shape).")
    if np.any(np.all(dropped[1:] == dropped[0], axis=1)) or \
            np.any(np.all(dropped[:, 1:] == dropped[:, :1], axis=0)):
        fail(name, "the units are not dropped independently (rows or columns of the mask repeat).",
             "Draw one coin per unit: mask = np.random.rand(*x.shape) >= rate.")


def _mask_of(result, shape):
    """The mask in a train-time result ``(out, cache)``: the cache itself, or the one array
    of x's shape in a tuple / list / dict cache (cs231n keeps ``(dropout_param, mask)``)."""
    if not isinstance(result, tuple) or len(result) != 2:
        return None
    cache = result[1]
    items = cache.values() if isinstance(cache, dict) else \
        cache if isinstance(cache, (tuple, list)) else [cache]
    found = [np.asarray(v) for v in items if v is not None and np.shape(v) == shape]
    return found[0] if len(found) == 1 else None


def _check_mask(result, x, out, rate, name):
    """The cache holds the mask the backward pass needs: 0 exactly where ``out`` dropped a
    unit, and 1 / (1 - rate) (cs231n's scaled mask) or 1 (a 0/1 mask) where it kept one."""
    hint = ("Return (out, mask): the mask is 0 for dropped units and 1 / (1 - rate) for kept "
            "ones (a 0/1 mask is fine too), so the backward pass is dout * mask.")
    mask = _mask_of(result, x.shape)
    if mask is None:
        fail(name, "the cache at train time is not the mask (an array of x's shape).", hint)
    mask = mask.astype(np.float64)
    dropped = out == 0
    if np.all(mask[dropped] != 0) and np.all(mask[~dropped] == 0):
        fail(name, "the cached mask is inverted: it is 0 for the kept units, nonzero for the "
                   "dropped ones.", hint)
    if np.any(mask[dropped] != 0) or np.any(mask[~dropped] == 0):
        fail(name, "the cached mask does not match the units out dropped.",
             "Cache the same mask you multiplied x by (do not draw a second one). " + hint)
    kept = mask[~dropped]
    if not (np.allclose(kept, 1.0) or np.allclose(kept, 1 / (1 - rate))):
        fail(name, "the cached mask holds other values than 1 or 1 / (1 - rate) on kept units.",
             "Most likely: the cache is out or x * mask, not the mask. " + hint)


# ------------------------------------------------------------------ flatten, pooling, counts

def check_flatten(fn, seed=0):
    """Check ``fn(x)`` against ``keras.layers.Flatten`` (row-major, batch axis kept)."""
    import keras
    name = "flatten"
    check_numpy_only(fn, name, "flatten")
    for shape in [(2, 3, 4, 5), (3, 2, 2, 1), (1, 4, 3)]:
        x = np.random.default_rng(seed).normal(size=shape)
        want = np.asarray(keras.layers.Flatten(dtype="float64")(x))
        got = as_array(call(fn, x.copy(), fn_name=name), "out", name)
        if got.shape != want.shape:
            hint = ("Keep the batch axis: out[n] is example n's features, "
                    "x.reshape(x.shape[0], -1).")
            fail(name, f"out has shape {got.shape} for x {shape}, expected {want.shape}.", hint)
        mistakes = {"flattened in the wrong order (column-major / order='F'): Keras flattens "
                    "row-major, the last axis (channels) changing fastest.":
                        x.reshape(shape[0], -1, order="F")}
        if len(shape) == 4:
            mistakes["flattened in the wrong order: you moved channels first (NCHW) before "
                     "flattening. Keras' Flatten on NHWC keeps the channel axis last, "
                     "changing fastest."] = np.transpose(x, (0, 3, 1, 2)).reshape(shape[0], -1)
        expect_close(got, want, "out", name, tol=1e-12, mistakes=mistakes)
    passed(name, "matches keras.layers.Flatten on 3 shapes.")


def check_global_avg_pool(fn, seed=0):
    """Check ``fn(x) -> (N, C)`` against ``keras.layers.GlobalAveragePooling2D``."""
    import keras
    name = "global_avg_pool"
    check_numpy_only(fn, name, "global average pooling")
    for shape in [(2, 4, 5, 3), (1, 7, 3, 6)]:
        x = np.random.default_rng(seed).normal(size=shape)
        want = np.asarray(keras.layers.GlobalAveragePooling2D(dtype="float64")(x))
        got = as_array(call(fn, x.copy(), fn_name=name), "out", name)
        if got.shape != want.shape:
            hint = None
            if got.shape == shape[:3]:
                hint = "Most likely: you averaged over channels (axis -1); average over H and W (axes 1, 2)."
            elif got.shape == (shape[0], 1, 1, shape[3]):
                hint = "Drop the pooled axes: no keepdims."
            fail(name, f"out has shape {got.shape} for x {shape}, expected {want.shape}.", hint)
        expect_close(got, want, "out", name, tol=1e-12, mistakes={
            "you summed instead of averaging (divide by H * W).": x.sum(axis=(1, 2)),
            "you took the max (global max pooling) instead of the mean.": x.max(axis=(1, 2))})
    passed(name, "matches keras.layers.GlobalAveragePooling2D.")


@answer_key
def keras_param_counts(kernel_size, in_channels, filters, in_features, units):
    """(Conv2D params, Dense params) from Keras layers built on the given sizes."""
    import keras
    conv = keras.layers.Conv2D(filters, kernel_size)
    conv.build((None, None, None, in_channels))
    dense = keras.layers.Dense(units)
    dense.build((None, in_features))
    return conv.count_params(), dense.count_params()


def check_param_counts(conv_fn, dense_fn):
    """Check ``conv_fn(kernel_size, in_channels, filters)`` and ``dense_fn(in_features, units)``."""
    cases = [(3, 2, 16, 3072, 10), (5, 16, 32, 100, 1), (1, 64, 8, 7, 7)]
    check_numpy_only(conv_fn, "conv_param_count", "the count", how="by arithmetic")
    check_numpy_only(dense_fn, "dense_param_count", "the count", how="by arithmetic")
    for k, c, f, n_in, units in cases:
        conv_want, dense_want = keras_param_counts(k, c, f, n_in, units)
        got = call(conv_fn, k, c, f, fn_name="conv_param_count")
        if got != conv_want:
            hints = {k * k * c * f: "Most likely: you forgot the F biases.",
                     k * k * f + f: "Most likely: you forgot the input channels: each filter "
                                    "is HH x WW x C.",
                     k * c * f + f: "Most likely: the kernel is k x k, not k."}
            fail("conv_param_count", f"conv_param_count({k}, {c}, {f}) = {got!r}, expected "
                 f"{conv_want} (what Keras' Conv2D counts).", hints.get(got))
        got = call(dense_fn, n_in, units, fn_name="dense_param_count")
        if got != dense_want:
            hint = "Most likely: you forgot the biases." if got == n_in * units else None
            fail("dense_param_count", f"dense_param_count({n_in}, {units}) = {got!r}, expected "
                 f"{dense_want} (what Keras' Dense counts).", hint)
    passed("conv_param_count, dense_param_count", "agree with Keras' count_params on 3 cases.")


# ------------------------------------------------------------------ the claims

def shift(x, dy, dx):
    """Shift images down by dy and right by dx (dy, dx >= 0), filling with zeros.

    x: (N, H, W, C). Returns an array of x's shape.
    """
    out = np.zeros_like(x)
    out[:, dy:, dx:] = x[:, :x.shape[1] - dy, :x.shape[2] - dx]
    return out


def check_claims(claims):
    """The answers are graded by hidden tests; this only checks they are all True/False."""
    name = "claims"
    if not isinstance(claims, dict):
        fail(name, f"claims must be a dict, got {type(claims).__name__}.")
    for key, value in claims.items():
        if not isinstance(value, bool):
            fail(name, f"claims[{key!r}] is {value!r}; answer True or False.")
    passed(name, f"{len(claims)} answers, all True/False (graded by hidden tests).")
