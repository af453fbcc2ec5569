"""Write data/expected/gans.npz: the reference values the gans checkers compare against.

Run from the repository root: ``python tools/make_expected_gans.py``. Deterministic (fixed
inputs, float64 NumPy for the losses, float32 TensorFlow for the train step); it holds
reference code, which is why it lives here and not in helpers/.
"""
from pathlib import Path
import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import env  # noqa: E402,F401
import tensorflow as tf  # noqa: E402

from helpers.checks import gans  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "data" / "expected" / "gans.npz"


def softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def sig(x):
    return 1 / (1 + np.exp(-x))


def losses():
    e = {}
    e["logits_real"] = np.linspace(-2.5, 3.0, 10).astype(np.float32)[::-1].copy()
    e["logits_fake"] = np.sin(np.arange(10) * 1.3).astype(np.float32) * 2.2
    e["logits_real_big"] = np.array([-120.0, 2.0, 35.0, -0.5, 90.0], np.float32)
    e["logits_fake_big"] = np.array([95.0, -40.0, 1.5, 120.0, -130.0], np.float32)
    for sfx, r, f in (("", e["logits_real"], e["logits_fake"]), ("_big", e["logits_real_big"], e["logits_fake_big"])):
        r, f = r.astype(np.float64), f.astype(np.float64)
        e["d_loss" + sfx] = softplus(-r).mean() + softplus(f).mean()
        e["g_loss" + sfx] = softplus(-f).mean()
    r, f = e["logits_real"].astype(np.float64), e["logits_fake"].astype(np.float64)
    e["d_loss_swapped"] = softplus(r).mean() + softplus(-f).mean()
    e["d_loss_sum"] = softplus(-r).sum() + softplus(f).sum()
    e["d_loss_half"] = 0.5 * e["d_loss"]
    e["g_loss_flipped"] = softplus(f).mean()
    e["g_loss_minimax"] = -softplus(f).mean()
    e["ls_d_loss"] = 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean()
    e["ls_d_loss_nohalf"] = 2 * e["ls_d_loss"]
    e["ls_d_loss_swapped"] = 0.5 * (r ** 2).mean() + 0.5 * ((f - 1) ** 2).mean()
    e["ls_d_loss_sigmoid"] = 0.5 * ((sig(r) - 1) ** 2).mean() + 0.5 * (sig(f) ** 2).mean()
    e["ls_g_loss"] = 0.5 * ((f - 1) ** 2).mean()
    e["ls_g_loss_nohalf"] = 2 * e["ls_g_loss"]
    e["ls_g_loss_flipped"] = 0.5 * (f ** 2).mean()
    e["ls_g_loss_sigmoid"] = 0.5 * ((sig(f) - 1) ** 2).mean()
    return e


def step():
    """One train step on the checker's tiny case, and the weights each known mistake gives."""
    c = gans.step_case()
    D, G, x, z = c["D"], c["G"], c["x"], c["z"]
    dv, gv = D.trainable_variables, G.trainable_variables
    flat = lambda ts: np.concatenate([np.asarray(t).ravel() for t in ts])  # noqa: E731
    d0, g0 = flat(dv), flat(gv)
    with tf.GradientTape(persistent=True) as tape:
        fake = G(z)
        d_loss = c["d_loss_fn"](D(x), D(fake))
        g_loss = c["g_loss_fn"](D(fake))
    gd, gg, gg_d = flat(tape.gradient(d_loss, dv)), flat(tape.gradient(g_loss, gv)), flat(tape.gradient(d_loss, gv))
    e = {"step_D": d0 - 0.1 * gd, "step_D_with_G_opt": d0 - 0.05 * gd, "step_D_ascent": d0 + 0.1 * gd,
         "step_G_simultaneous": g0 - 0.05 * gg, "step_G_with_D_opt": g0 - 0.1 * gg,
         "step_G_d_loss": g0 - 0.05 * gg_d, "step_d_loss": float(d_loss), "step_g_loss": float(g_loss)}
    c["D_opt"].apply(tape.gradient(d_loss, dv), dv)          # alternating: G's step sees the new D
    with tf.GradientTape() as tape2:
        g_loss2 = c["g_loss_fn"](D(G(z)))
    e["step_G_alternating"] = g0 - 0.05 * flat(tape2.gradient(g_loss2, gv))
    e["step_g_loss_alternating"] = float(g_loss2)
    return e


if __name__ == "__main__":
    arrays = {**losses(), **step()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, **{k: np.asarray(v) for k, v in arrays.items()})
    print(f"wrote {OUT} ({len(arrays)} arrays)")
