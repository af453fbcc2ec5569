"""The ``gans`` quiz's train-step check: ``gan_train_step`` on a tiny case of fixed weights.

The case (:func:`step_case`: a 6-4-1 D, a 3-6 G, SGD optimizers, simple differentiable
stand-in losses) is made from a seed. :func:`run_step` makes it and runs the student's step
where the student's function lives (under the grader's judge, in the student's kernel,
through ``__course_run__``) and returns the weights after it and its losses as plain data;
:func:`check_gan_train_step` compares them with the weights a correct step gives. The
notebook's check uses the stored case (seed 5, ``data/expected/gans.npz``); the hidden test
draws a new seed on every grading run and computes the expected weights in the trusted
kernel (:func:`helpers.grading.gan_reference.expected_step`), so an answer read from
``data/`` does not fit.
"""
from __future__ import annotations

import numpy as np

from ..rebuildable import beside
from ._compare import call, expect_close, fail, load_expected, passed, rel_error, scale_error

#: The stored case's seed and learning rates (D_opt, G_opt).
SEED, LRS = 5, (0.1, 0.05)

#: A step's weight moves must match the expected moves to this share of their scale.
#: Measured over 15 fresh cases: correct steps written other ways (two tapes, one persistent
#: tape, apply_gradients, a float64 detour) move exactly as the reference, under tf.function
#: within 5e-7; every mistake named below misses by 0.79 or more.
MOVE_TOL = 1e-3


def step_case(seed=SEED, lrs=LRS):
    """Tiny D and G with weights drawn from ``seed``, data, noise, losses and SGD optimizers.

    Returns a dict with x (4, 6), z (4, 3) (tf float32), D (Dense 6-4 tanh, 4-1), G (Dense
    3-6 tanh), D_opt and G_opt (keras SGD with learning rates ``lrs``), d_loss_fn(scores_real,
    scores_fake) and g_loss_fn(scores_fake): simple differentiable stand-ins, not GAN losses.
    """
    import keras
    import tensorflow as tf
    rng = np.random.default_rng(int(seed))
    D = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    G = keras.Sequential([keras.Input((3,)), keras.layers.Dense(6, activation="tanh")])
    for model in (D, G):
        model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in model.get_weights()])
    x = rng.normal(size=(4, 6)).astype(np.float32)
    z = rng.uniform(-1, 1, size=(4, 3)).astype(np.float32)

    def d_loss_fn(scores_real, scores_fake):
        return tf.reduce_mean((scores_real - 1.0) ** 2) + tf.reduce_mean(tf.exp(0.5 * scores_fake))

    def g_loss_fn(scores_fake):
        return tf.reduce_mean(tf.exp(-0.7 * scores_fake))

    return dict(x=tf.constant(x), z=tf.constant(z), D=D, G=G, d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn,
                D_opt=keras.optimizers.SGD(float(lrs[0])), G_opt=keras.optimizers.SGD(float(lrs[1])))


def flat_weights(model):
    """The model's trainable variables, flattened and concatenated: (P,) float32."""
    return np.concatenate([v.numpy().ravel() for v in model.trainable_variables])


def run_step(fn, seed=SEED, lrs=LRS):
    """Make ``step_case(seed, lrs)``, call ``fn`` on it; return what it did as plain data.

    Returns {"d_after": (P_D,), "g_after": (P_G,) float32 weights after the call,
    "result": [arrays] (the pair ``fn`` returned) or None, "returned": its type's name}.
    Runs where ``fn`` lives (the student's kernel under the judge): its answer is checked.
    """
    c = step_case(seed, lrs)
    result = fn(c["x"], c["z"], c["D"], c["G"], c["D_opt"], c["G_opt"], c["d_loss_fn"], c["g_loss_fn"])
    pair = None
    if isinstance(result, (tuple, list)) and len(result) == 2:
        try:
            pair = [np.asarray(v, np.float64) for v in result]
        except (TypeError, ValueError):
            pair = None
    return {"d_after": flat_weights(c["D"]), "g_after": flat_weights(c["G"]), "result": pair,
            "returned": type(result).__name__}


def stored_step():
    """The stored case's expected step (seed 5): the keys of
    :func:`helpers.grading.gan_reference.expected_step`."""
    exp = load_expected("gans", "python tools/make_expected_gans.py")
    case = step_case()
    out = {k[len("step_"):]: exp[k] for k in exp if k.startswith("step_")}
    return dict(out, d_before=flat_weights(case["D"]), g_before=flat_weights(case["G"]))


def _ran(fn, name, seed, lrs):
    """:func:`run_step` where ``fn`` lives; its answer validated."""
    try:
        got = call(lambda f, *a: beside(f, run_step, *a), fn, seed, lrs, fn_name=name)
    except ValueError as exc:                 # Keras: an optimizer met variables it was not built for
        if "Unknown variable" not in str(exc):
            raise
        fail(name, "one optimizer was applied to both D's and G's variables (Keras: 'Unknown variable').",
             "Each optimizer updates only its own model: D_opt.apply(d_grads, D.trainable_variables) "
             "and G_opt.apply(g_grads, G.trainable_variables).")
    if not (isinstance(got, dict) and all(isinstance(got.get(k), np.ndarray) for k in ("d_after", "g_after"))
            and isinstance(got.get("returned"), str)
            and (got.get("result") is None or (isinstance(got["result"], list) and len(got["result"]) == 2
                                              and all(isinstance(v, np.ndarray) for v in got["result"])))):
        fail(name, "the grader could not read the weights your step left.")
    return got


def _move_error(after, before, want):
    """How far ``after`` moved from ``before`` differs from how far ``want`` did, relative to
    the expected move's scale (or to the weights' scale where nothing should move)."""
    after = np.asarray(after, np.float64)
    if after.shape != before.shape:
        return np.inf
    moved = np.asarray(want, np.float64) - before
    if not np.any(moved):                 # a learning rate of 0: the weights must stay as they were
        still = np.max(np.abs(after - before)) <= 1e-7 * max(np.max(np.abs(before)), 1e-12)
        return 0.0 if still else np.inf
    return scale_error(after - before, moved)


def _expect_move(after, exp, model, good, mistakes, name, hint):
    """Fail unless ``after`` moved as one of ``good`` (keys of ``exp``) did; name a mistake.
    Returns the keys that match (both orders of update, where G's learning rate is 0)."""
    before = np.asarray(exp["d_before" if model == "D" else "g_before"], np.float64)
    errors = {k: _move_error(after, before, exp[k]) for k in good}
    best = min(errors, key=errors.get)
    if errors[best] <= MOVE_TOL:
        return [k for k in good if errors[k] <= MOVE_TOL]
    for description, key in mistakes.items():
        if np.any(exp[key] - before) and _move_error(after, before, exp[key]) <= MOVE_TOL:
            fail(name, f"{model}'s weights after one step are off.", f"Most likely: {description}")
    if not np.all(np.isfinite(after)):
        fail(name, f"{model}'s weights are not finite after one step.", hint)
    if np.allclose(after, before, rtol=0, atol=0) and np.max(np.abs(exp[good[0]] - before)) > 0:
        fail(name, f"{model}'s weights did not change.", hint)
    fail(name, f"{model}'s weights after one step differ from the expected step by "
               f"{errors[best]:.2g} of its size (tolerance {MOVE_TOL:g}).", hint)


def check_gan_train_step(fn, seed=SEED, lrs=LRS, expected=None):
    """gan_train_step(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn) on a tiny case.

    seed, lrs: the case (:func:`step_case`); expected: the correct step's weights for it
    (:func:`helpers.grading.gan_reference.expected_step`), by default the stored case's.
    Both simultaneous and alternating (D first, then G) updates pass.
    """
    name = "gan_train_step"
    if expected is None:
        if (int(seed), tuple(lrs)) != (SEED, LRS):
            raise ValueError("pass the expected step for a case other than the stored one")
        expected = stored_step()
    got = _ran(fn, name, int(seed), [float(v) for v in lrs])
    if got["result"] is None:
        fail(name, f"returned {got['returned'][:60]}; expected the pair (d_loss, g_loss).")
    d_lr, g_lr = lrs
    _expect_move(got["d_after"], expected, "D", ["D"], {
        f"D's variables were updated with G's optimizer (learning rate {g_lr:g} instead of D_opt's {d_lr:g}).":
            "D_with_G_opt",
        "D was updated to maximise its loss (gradient sign).": "D_ascent"}, name,
        "Apply D's gradients: D_opt.apply(grads, D.trainable_variables), where the gradient is "
        "of d_loss_fn(D(x), D(G(z))) with respect to D.trainable_variables.")
    orders = _expect_move(got["g_after"], expected, "G", ["G_simultaneous", "G_alternating"], {
        f"G's variables were updated with D's optimizer (learning rate {d_lr:g} instead of G_opt's {g_lr:g}).":
            "G_with_D_opt",
        "G was updated with D's loss instead of g_loss_fn(D(G(z))).": "G_d_loss"}, name,
        "Apply G's gradients: G_opt.apply(grads, G.trainable_variables), where the gradient is "
        "of g_loss_fn(D(G(z))) with respect to G.trainable_variables.")
    d_loss, g_loss = (np.asarray(v, np.float64).reshape(-1) for v in got["result"])
    for value, what in ((d_loss, "d_loss"), (g_loss, "g_loss")):
        if value.shape != (1,):
            fail(name, f"the returned {what} has {value.size} numbers; return the scalar loss.")
    expect_close(d_loss[0], expected["d_loss"], "the returned d_loss", name, tol=1e-5,
                 hint="Return the losses computed before the updates.")
    want_g = {"G_simultaneous": expected["g_loss"], "G_alternating": expected["g_loss_alternating"]}
    order = min(orders, key=lambda k: rel_error(g_loss[0], want_g[k]))
    expect_close(g_loss[0], want_g[order], "the returned g_loss", name, tol=1e-5)
    how = "simultaneous" if order == "G_simultaneous" else "alternating (D first, then G)"
    return passed(name, f"D and G each updated by their own optimizer ({how} updates; learning rates "
                        f"{d_lr:g} and {g_lr:g}).")
