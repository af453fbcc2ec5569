"""Write data/expected/gans.npz: the reference values the gans checkers compare against.

Run from the repository root: ``python tools/make_expected_gans.py``. Deterministic (fixed
inputs, float64 NumPy for the losses, float32 TensorFlow for the train step); it holds the
losses' reference code, which is why it lives here and not in helpers/. The train step's
reference is the judge's own (``helpers/grading/gan_reference.py``), which the hidden test
also runs on a fresh case.
"""
from pathlib import Path
import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import env  # noqa: E402,F401


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
    """One train step on the checker's stored tiny case, and the weights each known mistake gives."""
    from helpers.checks.gan_step import LRS, SEED
    from helpers.grading.gan_reference import expected_step
    return {f"step_{k}": v for k, v in expected_step(SEED, LRS).items() if not k.endswith("_before")}


if __name__ == "__main__":
    arrays = {**losses(), **step()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, **{k: np.asarray(v) for k, v in arrays.items()})
    print(f"wrote {OUT} ({len(arrays)} arrays)")
