"""The cnn_building_blocks checkers pass correct solutions written differently and name mistakes."""
import numpy as np
import pytest

from helpers.checks import CheckFailed
from helpers.checks import cnn_building_blocks as checks


# ------------------------------------------------------------------ convolution

def conv_loops(x, w, b, conv_param, flip=False, bias=True, pad_override=None, step=None,
               size_plus_one=True):
    """A loop convolution with switches for the classic mistakes."""
    s, p = conv_param["stride"], conv_param["pad"]
    p = p if pad_override is None else pad_override
    step = s if step is None else step
    n, h, wd, c = x.shape
    hh, ww, _, f = w.shape
    if flip:
        w = w[::-1, ::-1]
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    extra = 1 if size_plus_one else 0
    ho, wo = extra + (h + 2 * p - hh) // s, extra + (wd + 2 * p - ww) // s
    out = np.zeros((n, ho, wo, f))
    for k in range(n):
        for i in range(ho):
            for j in range(wo):
                for m in range(f):
                    win = xp[k, i * step:i * step + hh, j * step:j * step + ww, :]
                    out[k, i, j, m] = np.sum(win * w[..., m]) + (b[m] if bias else 0)
    return out, None


def conv_im2col(x, w, b, conv_param):
    """A vectorized (im2col with stride tricks) convolution, returning only out."""
    s, p = conv_param["stride"], conv_param["pad"]
    hh, ww, c, f = w.shape
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (hh, ww), axis=(1, 2))[:, ::s, ::s]
    # win: (N, H', W', C, HH, WW)
    return np.einsum("nijcab,abcf->nijf", win, w) + b


def test_conv_reference_and_vectorized_pass(capsys):
    checks.check_conv_forward_naive(conv_loops)
    checks.check_conv_forward_naive(conv_im2col)
    # Correct but computed in float32: passes with the float32 tolerance.
    checks.check_conv_forward_naive(lambda x, w, b, cp: conv_im2col(
        x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), cp))
    assert "✔ conv_forward_naive" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, message", [
    (dict(pad_override=0), "forgot the zero padding"),
    (dict(size_plus_one=False), "output size is off by one"),
    (dict(flip=True), "kernel is flipped"),
    (dict(bias=False), "forgot to add the bias"),
    (dict(step=1), "do not move by the stride"),
])
def test_conv_mistakes_are_named(kwargs, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_conv_forward_naive(lambda x, w, b, cp: conv_loops(x, w, b, cp, **kwargs))


def test_conv_stride_off_by_one_is_named():
    def plus_one(x, w, b, cp):
        return conv_im2col(x, w, b, {"stride": cp["stride"] + 1, "pad": cp["pad"]})
    with pytest.raises(CheckFailed, match="stride is off by one"):
        checks.check_conv_forward_naive(plus_one)


def test_conv_unimplemented_and_none():
    def todo(*a):
        raise NotImplementedError
    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.check_conv_forward_naive(todo)
    with pytest.raises(CheckFailed, match="does not `return`"):
        checks.check_conv_forward_naive(lambda *a: (None, None))


# ------------------------------------------------------------------ pooling

def pool_loops(x, pp, pad_value=-np.inf, swap_sides=False, step=None):
    ph, pw, s = pp["pool_height"], pp["pool_width"], pp["stride"]
    step = s if step is None else step
    n, h, w, c = x.shape
    if pp["padding"] == "SAME":
        ho, wo = -(-h // s), -(-w // s)
        th, tw = max((ho - 1) * s + ph - h, 0), max((wo - 1) * s + pw - w, 0)
        top, left = th // 2, tw // 2
        if swap_sides:
            top, left = th - top, tw - left
        x = np.pad(x, ((0, 0), (top, th - top), (left, tw - left), (0, 0)), constant_values=pad_value)
    else:
        ho, wo = 1 + (h - ph) // s, 1 + (w - pw) // s
    out = np.empty((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            out[:, i, j] = x[:, i * step:i * step + ph, j * step:j * step + pw].max(axis=(1, 2))
    return out, None


def pool_tf(x, pp):
    """Right numbers, but TensorFlow did the pooling the quiz asks for in NumPy."""
    import tensorflow as tf
    return tf.nn.max_pool2d(tf.constant(x), (pp["pool_height"], pp["pool_width"]), pp["stride"],
                            pp["padding"]).numpy()


def test_pool_reference_and_alternative_pass():
    checks.check_max_pool_forward_naive(pool_loops)


def test_pool_wrapping_tensorflow_earns_nothing():
    with pytest.raises(CheckFailed, match="asks for max pooling in NumPy; your function called import tensorflow"):
        checks.check_max_pool_forward_naive(pool_tf)


@pytest.mark.parametrize("kwargs, message", [
    (dict(pad_value=0.0), "padding is zeros"),
    (dict(swap_sides=True), "wrong side"),
    (dict(step=1), "do not move by the stride"),
])
def test_pool_mistakes_are_named(kwargs, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_max_pool_forward_naive(lambda x, pp: pool_loops(x, pp, **kwargs))


def test_pool_same_treated_as_valid_gets_the_same_rule():
    def always_valid(x, pp):
        return pool_loops(x, dict(pp, padding="VALID"))
    with pytest.raises(CheckFailed, match=r"ceil\(H / stride\)"):
        checks.check_max_pool_forward_naive(always_valid)


# ------------------------------------------------------------------ dropout

def dropout_ref(x, rate, train):
    if not train:
        return x, None
    mask = (np.random.rand(*x.shape) >= rate) / (1 - rate)
    return x * mask, mask


def dropout_generator(x, rate, train):
    """Correct, with its own unseeded Generator and a 0/1 mask as the cache."""
    if not train:
        return x, None
    keep = np.random.default_rng().random(x.shape) < 1 - rate
    return np.where(keep, x / (1 - rate), 0.0), keep


def test_dropout_reference_and_alternative_pass(capsys):
    checks.check_dropout_forward(dropout_ref)
    checks.check_dropout_forward(dropout_generator)
    checks.check_dropout_forward(dropout_generator, rate=0.75, seed=3)
    assert "identity at test time" in capsys.readouterr().out


def test_dropout_check_is_deterministic_for_a_fixed_seed():
    """The statistics come from a fixed seed: the same numbers on every run."""
    import io, contextlib
    outs = []
    for _ in range(2):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            checks.check_dropout_forward(dropout_ref)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]


def test_dropout_scaled_at_test_time_is_named():
    def test_scaling(x, rate, train):                # the classic "vanilla" dropout
        if not train:
            return x * (1 - rate), None
        return dropout_ref(x, rate, True)
    with pytest.raises(CheckFailed, match="scaled at test time"):
        checks.check_dropout_forward(test_scaling)


def test_dropout_missing_scale_is_named():
    def no_scale(x, rate, train):
        return (x * (np.random.rand(*x.shape) >= rate), None) if train else (x, None)
    with pytest.raises(CheckFailed, match="forgot the inverted-dropout scaling"):
        checks.check_dropout_forward(no_scale)


def test_dropout_keep_probability_confusion_is_named():
    def keep_rate(x, rate, train):
        return dropout_ref(x, 1 - rate, train)
    with pytest.raises(CheckFailed, match="probability to DROP"):
        checks.check_dropout_forward(keep_rate)


def test_dropout_reseeded_inside_is_named():
    def seeded(x, rate, train):
        np.random.seed(0)
        return dropout_ref(x, rate, train)
    with pytest.raises(CheckFailed, match="exactly the same units"):
        checks.check_dropout_forward(seeded)


# ------------------------------------------------------------------ flatten, GAP, counts

def test_flatten_and_gap_pass_and_mistakes_are_named():
    checks.check_flatten(lambda x: x.reshape(len(x), -1))
    checks.check_flatten(lambda x: np.stack([v.ravel() for v in x]))
    with pytest.raises(CheckFailed, match="wrong order: you moved channels first"):
        checks.check_flatten(lambda x: np.moveaxis(x, -1, 1).reshape(len(x), -1) if x.ndim == 4
                             else x.reshape(len(x), -1))
    with pytest.raises(CheckFailed, match="wrong order"):
        checks.check_flatten(lambda x: x.reshape(len(x), -1, order="F"))
    with pytest.raises(CheckFailed, match="Keep the batch axis"):
        checks.check_flatten(lambda x: x.ravel())
    checks.check_global_avg_pool(lambda x: x.mean(axis=(1, 2)))
    checks.check_global_avg_pool(lambda x: x.sum(axis=1).sum(axis=1) / (x.shape[1] * x.shape[2]))
    with pytest.raises(CheckFailed, match="averaged over channels"):
        checks.check_global_avg_pool(lambda x: x.mean(axis=-1))
    with pytest.raises(CheckFailed, match="summed instead of averaging"):
        checks.check_global_avg_pool(lambda x: x.sum(axis=(1, 2)))


def test_param_counts_pass_and_mistakes_are_named():
    def conv(k, c, f):
        return k * k * c * f + f

    def dense(n, u):
        return (n + 1) * u
    checks.check_param_counts(conv, dense)
    with pytest.raises(CheckFailed, match="forgot the F biases"):
        checks.check_param_counts(lambda k, c, f: k * k * c * f, dense)
    with pytest.raises(CheckFailed, match="forgot the input channels"):
        checks.check_param_counts(lambda k, c, f: k * k * f + f, dense)
    with pytest.raises(CheckFailed, match="forgot the biases"):
        checks.check_param_counts(conv, lambda n, u: n * u)


def test_shift_and_claims():
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    s = checks.shift(x, 1, 2)
    assert s[0, 1, 2, 0] == x[0, 0, 0, 0] and s[0, 0, :, 0].sum() == 0 and s[0, :, :2].sum() == 0
    checks.check_claims({"a": True, "b": False})
    with pytest.raises(CheckFailed, match="answer True or False"):
        checks.check_claims({"a": None})


# ------------------------------------------------------------------ NumPy only (#19)

import tensorflow as tf                       # noqa: E402  an honest student imports it too
from helpers.checks import _numpy_only         # noqa: E402


def conv_tf(x, w, b, conv_param):
    """Right numbers, but tf.nn.conv2d did the convolution."""
    p = conv_param["pad"]
    out = tf.nn.conv2d(x, w, conv_param["stride"], [[0, 0], [p, p], [p, p], [0, 0]])
    return out.numpy() + b, (x, w, b, conv_param)


def conv_via_reference(x, w, b, conv_param):
    """Right numbers, from the checker's own reference."""
    return checks.conv_reference(x, w, b, conv_param["stride"], conv_param["pad"]), None


def _windows(x, hh, ww, s):
    return np.lib.stride_tricks.sliding_window_view(x, (hh, ww), axis=(1, 2))[:, ::s, ::s]


def conv_with_helper(x, w, b, conv_param):
    """Honest NumPy with a helper of the same module, in a module that imports TensorFlow."""
    p = conv_param["pad"]
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    return np.einsum("nijcab,abcf->nijf", _windows(xp, *w.shape[:2], conv_param["stride"]), w) + b, None


def _tf_windows(x, hh, ww, s):
    return tf.image.extract_patches(x, [1, hh, ww, 1], [1, s, s, 1], [1, 1, 1, 1], "VALID")


def conv_with_tf_helper(x, w, b, conv_param):
    """The convolution's windows come from a helper that calls TensorFlow."""
    return _tf_windows(x, *w.shape[:2], conv_param["stride"]), None


@pytest.mark.parametrize("fn, called", [(conv_tf, "tf.nn.conv2d"),
                                        (conv_via_reference, "checks.conv_reference"),
                                        (conv_with_tf_helper, "tf.image.extract_patches")])
def test_conv_computed_by_a_library_earns_nothing(fn, called):
    with pytest.raises(CheckFailed, match=rf"asks for the convolution in NumPy; your function called {called}"):
        checks.check_conv_forward_naive(fn)


def test_honest_numpy_in_a_module_that_imports_tensorflow_passes(capsys):
    checks.check_conv_forward_naive(conv_with_helper)
    checks.check_conv_forward_naive(conv_im2col)
    assert _numpy_only.library_uses(conv_with_helper) == []


def test_flatten_gap_and_counts_from_keras_earn_nothing():
    import keras

    def flatten_keras(x):
        return np.asarray(keras.layers.Flatten(dtype="float64")(x))

    def counts_from_checker(k, c, f):
        return checks.keras_param_counts(k, c, f, 1, 1)[0]
    with pytest.raises(CheckFailed, match="asks for flatten in NumPy; your function called keras.layers.Flatten"):
        checks.check_flatten(flatten_keras)
    with pytest.raises(CheckFailed, match="asks for the count by arithmetic; your function called checks.keras_param_counts"):
        checks.check_param_counts(counts_from_checker, lambda n, u: n * u + u)


class _Proxy:
    """What a grading proxy hands the checkers: a callable with the source, no globals."""
    def __init__(self, fn, source):
        self.fn, self.__course_source__ = fn, source

    def __call__(self, *args):
        return self.fn(*args)


def test_source_from_a_proxy_is_read_without_globals():
    src = "def conv_forward_naive(x, w, b, conv_param):\n    return tf.nn.conv2d(x, w, 1, 'VALID'), None\n"
    assert _numpy_only.library_uses(_Proxy(conv_tf, src)) == ["tf.nn.conv2d"]
    hidden = "def f(x):\n    m = __import__('tensor' + 'flow')\n    return m.reduce_max(x)\n"
    assert _numpy_only.library_uses(_Proxy(None, hidden)) == ["__import__"]
    honest = "def f(x):\n    tf = x.copy()\n    return tf.max(axis=(1, 2))\n"   # a local named tf
    assert _numpy_only.library_uses(_Proxy(None, honest)) == []


# ------------------------------------------------------------------ dropout mask and cache (#19)

def test_dropout_in_place_scaled_mask_passes():
    def in_place(x, rate, train):             # updates its argument, cs231n's scaled mask
        if not train:
            return x, None
        mask = (np.random.rand(*x.shape) >= rate) / (1 - rate)
        x *= mask
        return x, mask
    checks.check_dropout_forward(in_place)


@pytest.mark.parametrize("cache, message", [
    (lambda x, out, keep: None, "cache at train time is not the mask"),
    (lambda x, out, keep: out, "holds other values than 1 or 1 / \\(1 - rate\\)"),
    (lambda x, out, keep: ~keep, "cached mask is inverted"),
    (lambda x, out, keep: np.random.rand(*x.shape) >= 0.3, "does not match the units out dropped"),
])
def test_dropout_cache_must_be_the_mask(cache, message):
    def dropout(x, rate, train):
        if not train:
            return x, None
        keep = np.random.rand(*x.shape) >= rate
        out = x * keep / (1 - rate)
        return out, cache(x, out, keep)
    with pytest.raises(CheckFailed, match=message):
        checks.check_dropout_forward(dropout)


@pytest.mark.parametrize("shape, message", [(lambda x: x.shape[1:], "same units are dropped in every example"),
                                            (lambda x: (x.shape[0], 1), "whole examples are dropped")])
def test_dropout_mask_shared_across_units_is_named(shape, message):
    def shared(x, rate, train):
        if not train:
            return x, None
        mask = (np.random.rand(*shape(x)) >= rate) / (1 - rate)
        return x * mask, mask * np.ones_like(x)
    with pytest.raises(CheckFailed, match=message):
        checks.check_dropout_forward(shared)
