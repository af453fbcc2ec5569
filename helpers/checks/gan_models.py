"""Checkers of the ``gans`` quiz's four models: the MLP and DCGAN discriminators and generators.

Each check compares the model's weight shapes with the quiz's layout, gives the model
weights it draws from a fresh seed (:func:`._models.set_drawn_weights`; under the grader's
judge the student's kernel sets them) and recomputes the model's output on fresh inputs in
NumPy from its own draw, naming the known mistakes (wrong or missing activations, a sigmoid
on logits, ...) when one matches. Models without keras.Input, subclassed models and nested
blocks are built by one call first (:func:`._models.model_facts`). Re-exported by
:mod:`helpers.checks.gans`.
"""
from __future__ import annotations

import itertools

import numpy as np

from ._compare import as_array, call, expect_finite, expect_shape, fail, fresh_seed, passed
from ._models import expect_weight_shapes, facts, set_drawn_weights

#: Parameter counts of the quiz's models (noise_dim=96).
PARAMS = {"discriminator": 267_009, "generator": 1_952_528,
          "dc_discriminator": 1_102_721, "dc_generator": 6_689_729}


def _tf():
    import tensorflow as tf
    return tf


# ----------------------------------------------------------------------------- models

def _is_model(model, name, hint, input_shape):
    """The model's :func:`._models.model_facts` (read where the model lives; a model without
    weights yet is first called on zeros of shape (1, *input_shape)); fails unless it is a
    Keras model that this call builds."""
    if model is None:
        fail(name, "returned None.", "Most likely: the function does not `return` the model.")
    got = facts(model, name, hint, input_shape)
    if not got["keras_model"]:
        fail(name, f"returned a {got['type'][:60]}, not a Keras model.", hint)
    if got["build_error"]:
        if "112, 112" in got["build_error"] or "28, 28, 8" in got["build_error"]:
            _fail_reshape_28(name)
        fail(name, f"calling the model on a batch of shape {(1, *input_shape)} raised {got['build_error']}", hint)
    return got


def _fail_reshape_28(name):
    fail(name, "building the model failed: the upsampled image is 112x112, not 28x28.",
         "Most likely: the dense output was reshaped to (28, 28, 8); reshape it to (7, 7, 128) "
         "so the two stride-2 Conv2DTranspose layers upsample 7 -> 14 -> 28.")


#: Inputs of the model checks are uniform in [-1, 1] but for one row, this many times
#: larger: its pre-activations reach far beyond the usual ones (|x| ~ 10-30), so that an
#: activation capped above (ReLU6, a clipped LeakyReLU) differs from the right one there.
LOUD = 12.0


def _inputs(seed, shape):
    """Model inputs of ``shape`` (float32) drawn from ``seed``; the last row LOUD times louder."""
    x = np.random.default_rng(seed).uniform(-1, 1, size=shape)
    x[-1] *= LOUD
    return x.astype(np.float32)


def _dense_spec(sizes):
    """[kind, shape] of Dense layers sizes[0] -> sizes[1] -> ...: kernel and bias each."""
    return [s for a, b in zip(sizes, sizes[1:]) for s in (["kernel", [a, b]], ["bias", [b]])]


def _bn_spec(n):
    return [[kind, [n]] for kind in ("gamma", "beta", "mean", "var")]


def _leaky(x, a):
    return np.where(x > 0, x, a * x)


def _mlp(x, pairs, hidden, last):
    h = x.astype(np.float64)
    for i, (w, b) in enumerate(pairs):
        h = h @ w + b
        h = last(h) if i == len(pairs) - 1 else hidden(h)
    return h


#: Tolerance of a model's output against its NumPy recomputation, as max |diff| / max |expected|.
FORWARD_TOL = 1e-4


def _scaled_error(out, exp):
    return float(np.max(np.abs(out - exp)) / (np.max(np.abs(exp)) + 1e-12))


def _expect_forward(out, exp, what, fn_name, mistakes, hint):
    """Compare a model's output with its NumPy recomputation, relative to the output's scale.

    (Float32 sums over 1,024 terms leave ~1e-6 absolute noise, so the element-wise
    relative error of outputs near 0 says nothing; max |diff| / max |expected| does.)
    """
    err = _scaled_error
    out = as_array(out, what, fn_name).astype(np.float64)
    if err(out, exp) <= FORWARD_TOL:
        return
    for description, wrong in (mistakes.items() if isinstance(mistakes, dict) else mistakes):
        if err(out, wrong) <= FORWARD_TOL:
            fail(fn_name, f"{what} has the right shape but not the expected values.", f"Most likely: {description}")
    fail(fn_name, f"{what} differs from the expected layers' output by {err(out, exp):.2g} of its scale.", hint)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def check_discriminator(fn, seed=None):
    """discriminator(): 784-256-256-1, LeakyReLU(0.01), logits out; weights and inputs
    drawn from ``seed`` (fresh when None)."""
    name = "discriminator"
    hint = "Build it with keras.Sequential([keras.Input((784,)), layers.Dense(256), ...])."
    seed = fresh_seed() if seed is None else int(seed)
    model = call(fn, fn_name=name)
    _is_model(model, name, hint, (784,))
    ws = set_drawn_weights(model, name, _dense_spec([784, 256, 256, 1]), seed,
                           "Expected Dense 784->256, 256->256, 256->1 with biases: 200,960 + 65,792 + 257 "
                           "parameters.", "Dense(256), Dense(256), Dense(1)")
    x = _inputs(seed + 1, (5, 784))
    out = expect_shape(model(x.copy(), training=False), (5, 1), "D(x) for x of shape (5, 784)", name,
                       hint="The discriminator returns one logit per image.")
    pairs = list(zip(ws[0::2], ws[1::2]))
    ident = lambda h: h  # noqa: E731
    _expect_forward(out, _mlp(x, pairs, lambda h: _leaky(h, 0.01), ident), "D(x)", name, mistakes={
        "ReLU instead of LeakyReLU(0.01).": _mlp(x, pairs, lambda h: np.maximum(h, 0), ident),
        "LeakyReLU with Keras' default slope 0.3: pass negative_slope=0.01.": _mlp(
            x, pairs, lambda h: _leaky(h, 0.3), ident),
        "LeakyReLU with slope 0.2: the quiz uses 0.01.": _mlp(x, pairs, lambda h: _leaky(h, 0.2), ident),
        "the output goes through a sigmoid: return logits (the loss applies the sigmoid).": _mlp(
            x, pairs, lambda h: _leaky(h, 0.01), _sigmoid),
        "no activation between the Dense layers.": _mlp(x, pairs, ident, ident),
    }, hint="Expected Dense(256) -> LeakyReLU(0.01) -> Dense(256) -> LeakyReLU(0.01) -> Dense(1).")
    return passed(name, f"{PARAMS[name]:,} parameters, (N, 784) -> (N, 1) logits, LeakyReLU(0.01).")


def check_generator(fn, seed=None):
    """generator(noise_dim): noise-1024-1024-784, ReLU, ReLU, tanh; weights and inputs
    drawn from ``seed`` (fresh when None)."""
    name = "generator"
    seed = fresh_seed() if seed is None else int(seed)
    model = call(fn, 96, fn_name=name)
    hint = "Build it with keras.Sequential([keras.Input((noise_dim,)), layers.Dense(1024), ...])."
    layers_hint = "Dense(1024), Dense(1024), Dense(784)"
    _is_model(model, name, hint, (96,))
    ws = set_drawn_weights(model, name, _dense_spec([96, 1024, 1024, 784]), seed,
                           "Expected Dense noise_dim->1024, 1024->1024, 1024->784 with biases "
                           "(99,328 + 1,049,600 + 803,600 for noise_dim=96).", layers_hint)
    small = call(fn, 7, fn_name=name)
    _is_model(small, name, hint, (7,))
    expect_weight_shapes(small, name, [shape for _, shape in _dense_spec([7, 1024, 1024, 784])],
                         "Use the noise_dim argument for the input size.", layers_hint, what="generator(7)")
    z = _inputs(seed + 1, (6, 96))
    out = expect_shape(model(z.copy(), training=False), (6, 784), "G(z) for z of shape (6, 96)", name,
                       hint="The generator returns flat images of 784 pixels.")
    pairs = list(zip(ws[0::2], ws[1::2]))
    relu = lambda h: np.maximum(h, 0)  # noqa: E731
    _expect_forward(out, _mlp(z, pairs, relu, np.tanh), "G(z)", name, mistakes={
        "the output uses a sigmoid: use tanh, so images lie in [-1, 1] like the data.": _mlp(z, pairs, relu, _sigmoid),
        "no tanh on the output: images must lie in [-1, 1].": _mlp(z, pairs, relu, lambda h: h),
        "LeakyReLU in the hidden layers: the generator uses ReLU.": _mlp(z, pairs, lambda h: _leaky(h, 0.3), np.tanh),
    }, hint="Expected Dense(1024, relu) -> Dense(1024, relu) -> Dense(784, tanh).")
    return passed(name, f"{PARAMS[name]:,} parameters, (N, 96) -> (N, 784) in [-1, 1].")


# ----------------------------------------------------------------------------- DCGAN

def layer_shapes(model, fn_name="dc_generator"):
    """Output shapes (without the batch axis) of the model's layers, where Keras knows them.

    Read where the model lives (:func:`._models.model_facts`): under the grader's judge that
    is the student's kernel, so this serves checks of method.
    """
    return list(facts(model, fn_name)["shapes"])


def _conv(h, k, b, padding):
    """Keras Conv2D in float64: h (N, H, W, C), k (kh, kw, C, F), b (F,)."""
    tf = _tf()
    return tf.nn.conv2d(h, k.astype(np.float64), 1, padding).numpy() + b


def _conv_t(h, k, b):
    """Keras Conv2DTranspose(stride 2, 'same') in float64: k (kh, kw, F_out, C_in)."""
    tf = _tf()
    n, hh, ww, _ = h.shape
    out = tf.nn.conv2d_transpose(h, k.astype(np.float64), (n, 2 * hh, 2 * ww, k.shape[2]), 2, "SAME")
    return out.numpy() + b


def _pool(h):
    n, hh, ww, c = h.shape
    return h.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))


def _dc_d_forward(x, ws, acts, last=lambda h: h):
    """The DCGAN discriminator of the table, from its weights; acts: 3 hidden activations."""
    k1, b1, k2, b2, k3, b3, k4, b4 = ws
    h = x.astype(np.float64).reshape(-1, 28, 28, 1)
    h = _pool(acts[0](_conv(h, k1, b1, "VALID")))          # (N, 12, 12, 32)
    h = _pool(acts[1](_conv(h, k2, b2, "VALID")))          # (N, 4, 4, 64)
    h = acts[2](h.reshape(len(h), -1) @ k3 + b3)          # (N, 1024)
    return last(h @ k4 + b4)                               # (N, 1)


def _activation_mistakes(forward, correct, wrong, positions, extra):
    """{description: output} for known activation mistakes, everywhere and at one position.

    forward(acts) computes the model with a list of hidden activations; correct is the
    right activation; wrong: {label: function}; positions: the layer names.
    """
    out = dict(extra)
    for label, act in wrong.items():
        out[f"{label} (in every hidden layer)."] = forward([act] * len(positions))
    for label, act in wrong.items():
        for i, where in enumerate(positions):
            acts = [correct] * len(positions)
            acts[i] = act
            out[f"{label} after {where} (the other layers are right)."] = forward(acts)
    return out


def _relu(h):
    return np.maximum(h, 0)


def _ident(h):
    return h


D_DC_LAYERS = ("Conv2D(32, 5)", "Conv2D(64, 5)", "Dense(1024)")
D_DC_SPEC = [["kernel", [5, 5, 1, 32]], ["bias", [32]], ["kernel", [5, 5, 32, 64]], ["bias", [64]],
             *_dense_spec([1024, 1024, 1])]


def check_dc_discriminator(fn, seed=None):
    """dc_discriminator(): conv-pool-conv-pool-dense-dense on (N, 784) images.

    Checks layer output shapes and the parameter count, then the output recomputed in
    NumPy from weights drawn from ``seed`` (fresh when None) and given to the model (so the
    activations are checked: LeakyReLU(0.01) after each hidden layer, logits out); wrong
    activations are named with their layer.
    """
    name = "dc_discriminator"
    seed = fresh_seed() if seed is None else int(seed)
    model = call(fn, fn_name=name)
    model_facts = _is_model(model, name, "Return a keras.Sequential model.", (784,))
    shapes = model_facts["shapes"]
    if shapes and (24, 24, 32) not in shapes:
        fail(name, f"no layer outputs (24, 24, 32); your layers output {shapes}.",
             "The first layer after the reshape to (28, 28, 1) is Conv2D(32, 5) with 'valid' padding.")
    ws = set_drawn_weights(model, name, D_DC_SPEC, seed,
                           "Expected Conv2D(32, 5) 832 + Conv2D(64, 5) 51,264 + Dense(1024) 1,049,600 + "
                           "Dense(1) 1,025.", "Conv2D(32, 5), Conv2D(64, 5), Dense(1024), Dense(1)")
    x = _inputs(seed + 1, (4, 784))
    out = expect_shape(model(x.copy(), training=False), (4, 1), "D(x) for x of shape (4, 784)", name,
                       hint="Reshape the flat input to (28, 28, 1) first; return one logit per image.")
    expect_shape(model(x[:1].copy(), training=False), (1, 1), "D(x) for one image", name)
    expect_finite(out, "D(x)", name)
    lrelu = lambda h: _leaky(h, 0.01)  # noqa: E731
    forward = lambda acts: _dc_d_forward(x, ws, acts)  # noqa: E731
    mistakes = _activation_mistakes(forward, lrelu, {
        "ReLU instead of LeakyReLU(0.01)": _relu,
        "LeakyReLU with Keras' default slope 0.3 (pass negative_slope=0.01)": lambda h: _leaky(h, 0.3),
        "LeakyReLU with slope 0.2 (tf.nn.leaky_relu's default; the quiz uses 0.01)": lambda h: _leaky(h, 0.2),
        "no activation": _ident}, D_DC_LAYERS, {
        "the output goes through a sigmoid: return logits (the loss applies the sigmoid).":
            _dc_d_forward(x, ws, [lrelu] * 3, _sigmoid)})
    _expect_forward(out, forward([lrelu] * 3), "D(x)", name, mistakes,
                    hint="Expected the table's layers: LeakyReLU(0.01) after each Conv2D and after "
                         "Dense(1024), 2x2 max pooling after each activation, no activation on Dense(1).")
    return passed(name, f"{PARAMS[name]:,} parameters, (N, 784) -> (N, 1) logits, LeakyReLU(0.01) "
                        "after each hidden layer.")


def _dc_g_forward(z, ws, acts, last, eps=(1e-3,) * 3, bn_first=(False,) * 3, batch_stats=False):
    """The DCGAN generator of the table from its weights, batch norm in inference mode
    (epsilon ``eps[i]`` in block i), after each hidden activation (before it where
    ``bn_first[i]``). With ``batch_stats``, batch norm as in training: each channel
    normalized with the mean and (biased) variance of this batch, as ``G(z, training=True)``."""
    (w1, b1, *bn1), (w2, b2, *bn2), (t1, c1, *bn3), (t2, c2) = ws[0:6], ws[6:12], ws[12:18], ws[18:20]

    def block(h, i, stats):
        gamma, beta, mean, var = stats

        def bn(t):
            m, v = (t.mean(axis=tuple(range(t.ndim - 1))), t.var(axis=tuple(range(t.ndim - 1)))) \
                if batch_stats else (mean, var)
            return (t - m) / np.sqrt(v + eps[i]) * gamma + beta
        return acts[i](bn(h)) if bn_first[i] else bn(acts[i](h))

    h = block(z.astype(np.float64) @ w1 + b1, 0, bn1)                  # (N, 1024)
    h = block(h @ w2 + b2, 1, bn2).reshape(-1, 7, 7, 128)               # (N, 7, 7, 128)
    h = block(_conv_t(h, t1, c1), 2, bn3)                               # (N, 14, 14, 64)
    return last(_conv_t(h, t2, c2)).reshape(len(h), 784)               # (N, 784)


G_DC_LAYERS = ("Dense(1024)", "Dense(7 * 7 * 128)", "Conv2DTranspose(64, 4)")


def _bn_epsilons(model_facts):
    """The epsilon of each of the three BatchNormalization layers, as the model says, each
    kept if in [1e-7, 1e-2] (Keras' 1e-3, PyTorch's 1e-5) and Keras' default otherwise."""
    eps = model_facts["bn_epsilons"]
    eps = eps if len(eps) == 3 else [eps[0]] * 3 if len(set(eps)) == 1 else [1e-3] * 3
    return tuple(e if 1e-7 <= e <= 1e-2 else 1e-3 for e in eps)


#: Where each generator block may put its BatchNormalization: after the ReLU (cs231n's
#: table) or before it (the DCGAN paper's order); each block chooses on its own.
BN_ORDERS = tuple(itertools.product((False, True), repeat=3))


def dc_generator_spec(noise_dim):
    """[kind, shape] of the DCGAN generator's weights, in Keras' order."""
    return [["kernel", [noise_dim, 1024]], ["bias", [1024]], *_bn_spec(1024),
            ["kernel", [1024, 6272]], ["bias", [6272]], *_bn_spec(6272),
            ["kernel_t", [4, 4, 64, 128]], ["bias", [64]], *_bn_spec(64),
            ["kernel_t", [4, 4, 1, 64]], ["bias", [1]]]


def check_dc_generator(fn, noise_dim=96, seed=None):
    """dc_generator(noise_dim): dense + BN, dense + BN -> 7x7x128 -> two stride-2 Conv2DTranspose -> (N, 784).

    Checks the layer output shapes, the parameter count and the range, then the output
    recomputed in NumPy from weights drawn from ``seed`` (fresh when None) and given to the
    model (batch norm in inference mode), so that a missing or wrong hidden activation (ReLU
    after every hidden layer) is named.
    """
    name = "dc_generator"
    seed = fresh_seed() if seed is None else int(seed)
    try:
        model = call(fn, int(noise_dim), fn_name=name)
    except ValueError as exc:                 # Keras refuses to build a wrong reshape
        if "112, 112" in str(exc) or "28, 28, 8" in str(exc):
            _fail_reshape_28(name)
        raise
    model_facts = _is_model(model, name, "Return a keras.Sequential model.", (int(noise_dim),))
    shapes = model_facts["shapes"]
    if (28, 28, 8) in shapes:
        fail(name, "a layer outputs (28, 28, 8): the 6,272 numbers must be reshaped to (7, 7, 128).",
             "Reshape((7, 7, 128)) keeps the 128 channels of a 7x7 image; the two stride-2 "
             "Conv2DTranspose layers then upsample it 7 -> 14 -> 28.")
    if shapes:
        for want, what in (((7, 7, 128), "the reshape to a 7x7 image with 128 channels"),
                           ((14, 14, 64), "Conv2DTranspose(64, 4, strides=2, padding='same')"),
                           ((28, 28, 1), "Conv2DTranspose(1, 4, strides=2, padding='same')")):
            if want not in shapes:
                fail(name, f"no layer outputs {want}; your layers output {shapes}.", f"Expected {what}.")
    ws = set_drawn_weights(
        model, name, dc_generator_spec(noise_dim), seed,
        f"Expected Dense(1024) {(noise_dim + 1) * 1024:,} + BatchNorm 4,096 + Dense(6272) 6,428,800 + "
        "BatchNorm 25,088 + Conv2DTranspose(64, 4) 131,136 + BatchNorm 256 + Conv2DTranspose(1, 4) "
        f"1,025 (noise_dim={noise_dim}).",
        "Dense(1024), BatchNormalization, Dense(6272), BatchNormalization, "
        "Conv2DTranspose(64, 4), BatchNormalization, Conv2DTranspose(1, 4)")
    z = _inputs(seed + 1, (8, noise_dim))
    out = expect_shape(model(z.copy(), training=False), (8, 784), f"G(z) for z of shape (8, {noise_dim})",
                       name, hint="Flatten the (28, 28, 1) image to 784 pixels at the end (Reshape((784,))).")
    if out.min() < -1 or out.max() > 1:
        fail(name, f"outputs range over [{out.min():.2f}, {out.max():.2f}], outside [-1, 1].",
             "The last Conv2DTranspose needs activation='tanh'.")
    if out.min() >= 0:
        fail(name, "no output is negative: images lie in [-1, 1].", "Use tanh, not sigmoid or ReLU, on the output.")
    eps = _bn_epsilons(model_facts)
    wrong = {"no ReLU": _ident, "LeakyReLU(0.3) instead of ReLU": lambda h: _leaky(h, 0.3),
             "LeakyReLU(0.2) instead of ReLU": lambda h: _leaky(h, 0.2),
             "LeakyReLU(0.01) instead of ReLU": lambda h: _leaky(h, 0.01), "tanh instead of ReLU": np.tanh}

    out = as_array(out, "G(z)", name).astype(np.float64)
    forward = lambda acts, order: _dc_g_forward(z, ws, acts, np.tanh, eps, order)  # noqa: E731
    # every order of BatchNorm and ReLU is correct: the right output closest to the model's is
    # judged; only when none matches are the mistakes of every order computed (160 forwards)
    right = min((forward([_relu] * 3, order) for order in BN_ORDERS), key=lambda o: float(np.abs(out - o).max()))
    mistakes = [] if _scaled_error(out, right) <= FORWARD_TOL else [
        pair for order in BN_ORDERS for pair in _activation_mistakes(
            lambda acts: forward(acts, order), _relu, wrong, G_DC_LAYERS, {}).items()]
    _expect_forward(out, right, "G(z)", name, mistakes,
                    hint="Expected the table's layers: ReLU after Dense(1024), Dense(6272) and "
                         "Conv2DTranspose(64, 4), each followed by BatchNormalization; tanh on the output.")
    return passed(name, f"{PARAMS[name] + (noise_dim - 96) * 1024:,} parameters, (N, {noise_dim}) -> "
                        "7x7x128 -> 14x14x64 -> 28x28x1 -> (N, 784) in [-1, 1], ReLU after every hidden layer.")
