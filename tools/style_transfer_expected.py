"""Regenerate ``data/expected/style_transfer.npz``: the style-transfer checkers' fixed
inputs, the reference solution's outputs on them, and what the usual mistakes give.

    python tools/style_transfer_expected.py          # rewrites the file
    python tools/style_transfer_expected.py --check  # only verifies the file is up to date

The expected values come from the reference solution itself (the solution cells of
``solutions/style_transfer/style_transfer.ipynb``, run here), and every one of them is
cross-checked against an independent, loop-based NumPy version before it is saved. The
"mistake" arrays are what a known wrong implementation returns on the same inputs; the
checkers name the mistake when a student's value matches one of them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from helpers import env  # noqa: E402,F401  (for its side effect: quiets TensorFlow before its import)
from helpers.authoring import solution_namespace as notebook_solutions  # noqa: E402
NOTEBOOK = REPO / "solutions" / "style_transfer" / "style_transfer.ipynb"
OUT = REPO / "data" / "expected" / "style_transfer.npz"

#: grade_ids of the solution cells that define the loss functions.
LOSS_CELLS = ("style_transfer_content_loss", "style_transfer_gram_matrix",
              "style_transfer_style_loss", "style_transfer_tv_loss")


def solution_namespace(grade_ids=LOSS_CELLS, extra=None):
    """Run the given solution cells of the reference notebook; return their namespace.

    Only NumPy and TensorFlow are imported beforehand (plus ``extra``), so the loss
    cells run without the pretrained network.
    """
    import tensorflow as tf
    return notebook_solutions(NOTEBOOK, {"np": np, "tf": tf, **(extra or {})}, grade_ids=grade_ids)


# ------------------------------------------------------------------ independent NumPy versions


def np_gram(f, divisor):
    """Loop over channel pairs: G[c, d] = sum_{h, w} f[h, w, c] f[h, w, d] / divisor."""
    f = np.asarray(f, np.float64).reshape(f.shape[-3:])
    C = f.shape[-1]
    G = np.zeros((C, C))
    for c in range(C):
        for d in range(C):
            G[c, d] = np.sum(f[:, :, c] * f[:, :, d])
    return G / divisor


def np_tv(img, directions=("h", "w"), square=True):
    img = np.asarray(img, np.float64)[0]
    H, W, _ = img.shape
    total = 0.0
    diff = (lambda a, b: (a - b) ** 2) if square else (lambda a, b: np.abs(a - b))
    if "h" in directions:                    # vertical neighbours: rows i and i + 1
        for i in range(H - 1):
            total += np.sum(diff(img[i + 1], img[i]))
    if "w" in directions:                    # horizontal neighbours: columns j and j + 1
        for j in range(W - 1):
            total += np.sum(diff(img[:, j + 1], img[:, j]))
    return total


# ------------------------------------------------------------------ the fixed cases


def _cases():
    rng = np.random.default_rng(231)
    c = {}
    # content_loss: one layer's features, weight not 1 so a missing weight shows.
    c["content/current"] = rng.normal(size=(1, 4, 5, 6)).astype("float32")
    c["content/original"] = rng.normal(size=(1, 4, 5, 6)).astype("float32")
    c["content/weight"] = np.float32(0.37)
    # gram_matrix: H, W, C all different, so every wrong count gives a different value.
    c["gram/features"] = rng.normal(size=(1, 4, 5, 6)).astype("float32")
    # style_loss: 4 layers of different sizes, 3 of them used, distinct weights.
    # Layers 1..3 share C, so indexing feats by position (a classic bug) gives a value
    # rather than a shape error, and the checker can name it.
    shapes = [(1, 8, 10, 3), (1, 4, 5, 6), (1, 3, 4, 6), (1, 2, 3, 6)]
    for i, s in enumerate(shapes):
        c[f"style/feats{i}"] = (rng.normal(size=s) + 0.5 * i).astype("float32")
    c["style/layers"] = np.array([0, 2, 3])
    c["style/weights"] = np.array([300.0, 2.0, 0.05], "float32")
    for k, layer in enumerate(c["style/layers"]):
        other = rng.normal(size=shapes[layer]).astype("float32")
        c[f"style/target{k}"] = np_gram(other, np.prod(shapes[layer][1:])).astype("float32")
    # tv_loss: not square, 3 channels, weight not 1.
    c["tv/img"] = rng.normal(size=(1, 6, 7, 3)).astype("float32")
    c["tv/weight"] = np.float32(0.21)
    return c


def _style_terms(c, divisor_fn=lambda shape: np.prod(shape[1:]), positional=False):
    terms = []
    for k, layer in enumerate(c["style/layers"]):
        f = c[f"style/feats{k if positional else layer}"]
        G = np_gram(f, divisor_fn(f.shape))
        terms.append(np.sum((G - c[f"style/target{k}"]) ** 2))
    return np.array(terms)


def make_expected():
    """Return the dict that is saved to OUT (checks the solution against NumPy first)."""
    import tensorflow as tf
    ns = solution_namespace()
    c = _cases()
    out = dict(c)
    T = tf.constant

    def close(a, b, what):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        err = np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))
        assert err < 1e-5, f"reference solution and NumPy disagree on {what} (rel. error {err:.2g})"

    # content_loss
    cur, orig, w = c["content/current"], c["content/original"], c["content/weight"]
    sq = np.sum((cur.astype(np.float64) - orig) ** 2)
    out["content/expected"] = np.float64(ns["content_loss"](w, T(cur), T(orig)))
    close(out["content/expected"], w * sq, "content_loss")
    out["content/no_weight"] = sq
    out["content/mean"] = w * sq / cur.size
    out["content/half"] = 0.5 * w * sq
    out["content/norm"] = w * np.sqrt(sq)
    out["content/abs"] = w * np.sum(np.abs(cur.astype(np.float64) - orig))

    # gram_matrix
    f = c["gram/features"]
    _, H, W, C = f.shape
    out["gram/expected"] = np.asarray(ns["gram_matrix"](T(f)), np.float64)
    close(out["gram/expected"], np_gram(f, H * W * C), "gram_matrix")
    out["gram/raw"] = np.asarray(ns["gram_matrix"](T(f), normalize=False), np.float64)
    close(out["gram/raw"], np_gram(f, 1), "gram_matrix(normalize=False)")
    out["gram/by_hw"] = np_gram(f, H * W)
    out["gram/by_c"] = np_gram(f, C)
    out["gram/by_hwcc"] = np_gram(f, H * W * C * C)
    out["gram/by_hw_squared"] = np_gram(f, (H * W) ** 2)
    F_wrong = f.astype(np.float64).reshape(C, H * W)        # reshape without moving C first
    out["gram/mixed_reshape"] = F_wrong @ F_wrong.T / (H * W * C)

    # style_loss
    feats = [T(c[f"style/feats{i}"]) for i in range(4)]
    targets = [T(c[f"style/target{k}"]) for k in range(3)]
    layers = [int(i) for i in c["style/layers"]]
    wts = [float(x) for x in c["style/weights"]]
    terms = _style_terms(c)
    out["style/expected"] = np.float64(ns["style_loss"](feats, layers, targets, wts))
    close(out["style/expected"], np.sum(c["style/weights"] * terms), "style_loss")
    out["style/no_weights"] = np.sum(terms)
    out["style/one_weight"] = c["style/weights"][0] * np.sum(terms)
    out["style/positional"] = np.sum(c["style/weights"] * _style_terms(c, positional=True))
    out["style/unnormalized"] = np.sum(c["style/weights"] * _style_terms(c, divisor_fn=lambda s: 1))
    out["style/mean"] = np.sum(c["style/weights"] * terms / np.array(
        [c[f"style/feats{l}"].shape[-1] ** 2 for l in layers]))
    out["style/last_only"] = c["style/weights"][-1] * terms[-1]

    # tv_loss
    img, tvw = c["tv/img"], c["tv/weight"]
    out["tv/expected"] = np.float64(ns["tv_loss"](T(img), tvw))
    close(out["tv/expected"], tvw * np_tv(img), "tv_loss")
    out["tv/only_h"] = tvw * np_tv(img, "h")
    out["tv/only_w"] = tvw * np_tv(img, "w")
    out["tv/no_weight"] = np_tv(img)
    out["tv/abs"] = tvw * np_tv(img, square=False)
    out["tv/half"] = 0.5 * tvw * np_tv(img)
    n_pairs = img[0, 1:].size + img[0, :, 1:].size
    out["tv/mean"] = tvw * np_tv(img) / n_pairs
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with the saved file only")
    args = p.parse_args(argv)
    fresh = make_expected()
    if args.check:
        saved = np.load(OUT)
        bad = [k for k in fresh if k not in saved or not np.allclose(saved[k], fresh[k], rtol=1e-6)]
        if bad or set(saved.files) != set(fresh):
            print(f"{OUT} is out of date: {bad or sorted(set(saved.files) ^ set(fresh))}")
            return 1
        print(f"{OUT} is up to date ({len(fresh)} arrays)")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, **fresh)
    print(f"wrote {OUT} ({len(fresh)} arrays)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
