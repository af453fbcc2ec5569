"""Checkers for the ``gans`` quiz: vanilla GAN, least-squares GAN and DCGAN on MNIST.

Expected values live in ``data/expected/gans.npz`` (written by
``tools/make_expected_gans.py``); the models are checked by behaviour in
:mod:`helpers.checks.gan_models` (re-exported here), the train step in
:mod:`helpers.checks.gan_step`.
"""
from __future__ import annotations

import numpy as np

from ._compare import (as_array, call, expect_close, expect_finite, expect_shape, fail, fresh_seed,
                       load_expected, passed)
from .gan_models import (PARAMS, check_dc_discriminator, check_dc_generator,  # noqa: F401 - the quiz's checks
                         check_discriminator, check_generator, dc_generator_spec, layer_shapes)
from .gan_step import check_gan_train_step, step_case  # noqa: F401 - the quiz's checks


LOG_SIGMOID_HINT = ("Most likely: log(sigmoid(x)) (or log(1 - sigmoid(x))): sigmoid rounds to exactly 0 "
                    "or 1 in float32 for large |x|, and log(0) = -inf (adding an epsilon, or Keras' "
                    "BinaryCrossentropy() on probabilities, which clips them to [1e-7, 1 - 1e-7], gives a "
                    "finite but wrong value). Use a stable form on the logits: "
                    "tf.nn.sigmoid_cross_entropy_with_logits(labels=..., logits=...), "
                    "keras.losses.BinaryCrossentropy(from_logits=True) or tf.math.softplus.")

#: Relative tolerance of the GAN losses: float32 and float64 computations of any correct
#: formulation agree to ~1e-6, and log(sigmoid(x)) in float32 to ~1e-6 on moderate logits;
#: every named mistake is off by more than 1e-2.
LOSS_TOL = 1e-5


def _expected():
    return load_expected("gans", "python tools/make_expected_gans.py")


def expected(key):
    """One reference array from data/expected/gans.npz (for hidden tests)."""
    return _expected()[key]


def _tf():
    import tensorflow as tf
    return tf


# ----------------------------------------------------------------------------- basics

def check_leaky_relu(fn, seed=None):
    """leaky_relu(x, alpha): inputs of both signs and a second alpha drawn from ``seed``
    (fresh when None) besides alpha = 0.01, rel. error < 1e-6."""
    tf = _tf()
    name = "leaky_relu"
    rng = np.random.default_rng(fresh_seed() if seed is None else int(seed))
    x = (rng.uniform(0.05, 3.0, (4, 6)) * np.where(np.arange(24).reshape(4, 6) % 3, -1, 1)).astype(np.float32)
    x = rng.permuted(x, axis=1)
    for alpha in (0.01, round(float(rng.uniform(0.05, 0.5)), 3)):
        out = call(fn, tf.constant(x), alpha, fn_name=name)
        exp = np.where(x > 0, x, alpha * x)
        expect_close(out, exp, f"leaky_relu(x, alpha={alpha})", name, tol=1e-6, mistakes={
            "it is a plain ReLU: negative inputs must be scaled by alpha, not set to 0.": np.maximum(x, 0),
            "positive and negative parts are swapped (min instead of max?).": np.minimum(x, alpha * x),
            "alpha is ignored (a fixed slope is used).": np.where(x > 0, x, 0.01 * x) if alpha != 0.01 else exp,
        })
    return passed(name, f"matches max(x, alpha x) for alpha 0.01 and {alpha} (rel. error < 1e-6).")


def check_sample_noise(fn):
    """sample_noise(batch_size, dim): shape, range [-1, 1], spread, fresh draws."""
    name = "sample_noise"
    z = expect_shape(call(fn, 2000, 25, fn_name=name), (2000, 25), "sample_noise(2000, 25)", name,
                     hint="Return a (batch_size, dim) tensor.")
    z = expect_finite(z, "sample_noise(2000, 25)", name).astype(np.float64)
    if z.min() < -1 or z.max() > 1:
        fail(name, f"values range over [{z.min():.2f}, {z.max():.2f}], outside [-1, 1].",
             "Most likely: tf.random.normal; use tf.random.uniform(..., minval=-1, maxval=1).")
    if z.min() > -0.5:
        fail(name, f"no values below {z.min():.2f}: the noise must cover [-1, 1].",
             "Most likely: uniform in [0, 1] (the default); pass minval=-1, maxval=1.")
    if abs(z.mean()) > 0.05 or abs(z.std() - 1 / np.sqrt(3)) > 0.05:
        fail(name, f"mean {z.mean():.3f} and std {z.std():.3f}; uniform on [-1, 1] has mean 0 and "
                   f"std {1 / np.sqrt(3):.3f}.")
    z2 = as_array(call(fn, 2000, 25, fn_name=name), "a second draw", name)
    if np.allclose(z, z2):
        fail(name, "two calls return the same numbers.", "Draw fresh noise on every call (no fixed seed inside).")
    return passed(name, "shape (2000, 25), uniform on [-1, 1], fresh on every call.")


# ----------------------------------------------------------------------------- losses

def _loss_value(fn, name, args, key, mistakes_keys, hint=None):
    """Call a loss with fresh float32 tensors made from ``args``; compare with exp[key]."""
    tf = _tf()
    exp = _expected()
    got = call(fn, *[tf.constant(np.array(a, np.float32)) for a in args], fn_name=name)
    got = as_array(got, "the loss", name)
    if got.shape not in ((), (1,)):
        fail(name, f"the loss has shape {got.shape}; it must be a scalar.",
             "Average over the batch with tf.reduce_mean.")
    got = got.reshape(())
    if not np.isfinite(got):
        fail(name, f"the loss is {got} for logits up to {max(abs(a).max() for a in args):.0f}.", hint)
    return expect_close(got, exp[key], "the loss", name, tol=LOSS_TOL,
                        mistakes={m: exp[k] for m, k in mistakes_keys.items()}, hint=hint)


def check_discriminator_loss(fn):
    """discriminator_loss(logits_real, logits_fake): moderate and large logits, rel. error < 1e-5."""
    name = "discriminator_loss"
    exp = _expected()
    mistakes = {"labels are swapped (real must be 1, fake 0).": "d_loss_swapped",
                "the two terms are summed over the batch instead of averaged.": "d_loss_sum",
                "the two terms are averaged (divided by 2); the quiz adds them.": "d_loss_half"}
    _loss_value(fn, name, (exp["logits_real"], exp["logits_fake"]), "d_loss", mistakes)
    _loss_value(fn, name, (exp["logits_real_big"], exp["logits_fake_big"]), "d_loss_big", mistakes,
                hint=LOG_SIGMOID_HINT)
    return passed(name, "matches for moderate and very large logits (rel. error < 1e-5).")


def check_generator_loss(fn):
    """generator_loss(logits_fake): moderate and large logits, rel. error < 1e-5."""
    name = "generator_loss"
    exp = _expected()
    mistakes = {"the labels are flipped: G wants D to call its samples real (label 1).": "g_loss_flipped",
                "it is the minimax loss -log(1 - D(G(z))), which saturates; minimise -log D(G(z)).": "g_loss_minimax"}
    _loss_value(fn, name, (exp["logits_fake"],), "g_loss", mistakes)
    _loss_value(fn, name, (exp["logits_fake_big"],), "g_loss_big", mistakes, hint=LOG_SIGMOID_HINT)
    return passed(name, "matches for moderate and very large logits (rel. error < 1e-5).")


def check_ls_discriminator_loss(fn):
    """ls_discriminator_loss(scores_real, scores_fake): rel. error < 1e-5."""
    name = "ls_discriminator_loss"
    exp = _expected()
    _loss_value(fn, name, (exp["logits_real"], exp["logits_fake"]), "ls_d_loss", {
        "the factor 1/2 is missing on each term.": "ls_d_loss_nohalf",
        "targets are swapped (real scores go to 1, fake to 0).": "ls_d_loss_swapped",
        "the scores went through a sigmoid: LSGAN uses the raw scores.": "ls_d_loss_sigmoid"})
    return passed(name, "matches 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2] (rel. error < 1e-5).")


def check_ls_generator_loss(fn):
    """ls_generator_loss(scores_fake): rel. error < 1e-5."""
    name = "ls_generator_loss"
    exp = _expected()
    _loss_value(fn, name, (exp["logits_fake"],), "ls_g_loss", {
        "the factor 1/2 is missing.": "ls_g_loss_nohalf",
        "the target is flipped: G wants D(G(z)) close to 1, not 0.": "ls_g_loss_flipped",
        "the scores went through a sigmoid: LSGAN uses the raw scores.": "ls_g_loss_sigmoid"})
    return passed(name, "matches 1/2 E[(D(G(z)) - 1)^2] (rel. error < 1e-5).")
