"""The judge's own GAN train step: what ``gan_train_step`` must do to a tiny case.

``gans``' hidden test draws a fresh case (:func:`helpers.checks.gan_step.step_case`, by
seed) on every grading run and compares the weights the student's step leaves (they come
back from the student's kernel as data) with the weights computed here, in the trusted
kernel, for the same case. A kernel cannot answer from ``data/expected/``: the seed is new.
This module is part of the grading machinery: the student's sandbox sees
``helpers/grading/`` empty, so a submission cannot import it as its answer.
"""
from __future__ import annotations

import numpy as np


def expected_step(seed, lrs):
    """One train step on ``step_case(seed, lrs)``, and the weights each known mistake gives.

    Inputs:
    - seed: int, the case's seed.
    - lrs: (D_opt's learning rate, G_opt's learning rate).

    Returns {name: array}: ``d_before`` (P_D,), ``g_before`` (P_G,) (the models' flat
    trainable weights), ``D`` (P_D,) after a correct step, ``G_simultaneous`` and
    ``G_alternating`` (P_G,) after a correct step (G's gradient taken before or after D's
    update), ``d_loss``, ``g_loss``, ``g_loss_alternating`` (scalars: the losses a correct
    step returns), and the mistakes ``D_with_G_opt``, ``D_ascent``, ``G_with_D_opt``,
    ``G_d_loss``.
    """
    import tensorflow as tf

    from helpers.checks.gan_step import flat_weights, step_case
    c = step_case(seed, lrs)
    d_lr, g_lr = (float(v) for v in lrs)
    D, G, x, z = c["D"], c["G"], c["x"], c["z"]
    dv, gv = D.trainable_variables, G.trainable_variables
    flat = lambda ts: np.concatenate([np.asarray(t).ravel() for t in ts])  # noqa: E731
    d0, g0 = flat_weights(D), flat_weights(G)
    with tf.GradientTape(persistent=True) as tape:
        fake = G(z)
        d_loss = c["d_loss_fn"](D(x), D(fake))
        g_loss = c["g_loss_fn"](D(fake))
    d_grads = tape.gradient(d_loss, dv)
    gd, gg, gg_d = flat(d_grads), flat(tape.gradient(g_loss, gv)), flat(tape.gradient(d_loss, gv))
    e = {"d_before": d0, "g_before": g0, "D": d0 - d_lr * gd, "D_with_G_opt": d0 - g_lr * gd,
         "D_ascent": d0 + d_lr * gd, "G_simultaneous": g0 - g_lr * gg, "G_with_D_opt": g0 - d_lr * gg,
         "G_d_loss": g0 - g_lr * gg_d, "d_loss": float(d_loss), "g_loss": float(g_loss)}
    c["D_opt"].apply(d_grads, dv)                        # alternating: G's step sees the new D
    with tf.GradientTape() as tape2:
        g_loss2 = c["g_loss_fn"](D(G(z)))
    e["G_alternating"] = g0 - g_lr * flat(tape2.gradient(g_loss2, gv))
    e["g_loss_alternating"] = float(g_loss2)
    return {k: np.asarray(v) for k, v in e.items()}
