"""Write data/expected/network_visualization.npz: reference results on the checkers' cases.

The reference functions are read from the solution notebook (so solution code never
lives in helpers/); the usual mistakes are written out below. Run from the repository
root:  python tools/make_expected_network_visualization.py
"""
from pathlib import Path
import sys

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from helpers import env  # noqa: E402,F401  (quiet TF before importing it)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from helpers.checks import network_visualization as nv  # noqa: E402
from helpers.authoring import solution_namespace  # noqa: E402
from helpers.network_visualization import blur_image, jitter  # noqa: E402
from helpers.pretrained import PIXEL_MAX, PIXEL_MIN  # noqa: E402

NOTEBOOK = REPO / "solutions" / "network_visualization" / "network_visualization.ipynb"


def reference_namespace():
    """Execute the notebook's solution cells, with the given jitter/blur from helpers."""
    ns = dict(np=np, tf=tf, jitter=jitter, blur_image=blur_image, PIXEL_MIN=PIXEL_MIN,
              PIXEL_MAX=PIXEL_MAX, trange=range, plots=None, plt=None, class_name=str)
    ns = solution_namespace(NOTEBOOK, ns)
    ns["trange"] = lambda n, **kw: range(n)
    return ns


def score_grad(model, X, pick):
    X = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(X)
        s = pick(model(X))
    return tape.gradient(s, X).numpy()


def fooling_variant(X, target, model, lr, step_dir, max_iter=100, stop=True, extra=0):
    """Normalized-or-not gradient ascent loops for the mistakes."""
    Xf = X.copy()
    steps = 0
    for _ in range(max_iter):
        if stop and int(np.argmax(model(Xf))) == target:
            break
        Xf = Xf + lr * step_dir(Xf)
        steps += 1
    for _ in range(extra):
        Xf = Xf + lr * step_dir(Xf)
    return Xf, steps


def main():
    ns = reference_namespace()
    out = {}
    # saliency
    model, X = nv.case_inputs("saliency")
    y = np.array(nv.CASES["saliency"]["y"])
    out["saliency"] = np.asarray(ns["compute_saliency_maps"](X, y, model))
    onehot = tf.one_hot(y, model.output_shape[-1])
    g_loss = score_grad(model, X, lambda s: tf.reduce_sum(
        tf.nn.softmax_cross_entropy_with_logits(onehot, s)))
    out["saliency_loss"] = np.abs(g_loss).max(-1)
    pred = np.argmax(model(X), axis=1)
    out["saliency_pred"] = np.asarray(ns["compute_saliency_maps"](X, pred, model))
    g = score_grad(model, X, lambda s: tf.reduce_sum(tf.gather(s, y, axis=1, batch_dims=1)))
    out["saliency_sum"] = np.abs(g).sum(-1)
    g_soft = score_grad(model, X, lambda s: tf.reduce_sum(
        tf.gather(tf.nn.softmax(s), y, axis=1, batch_dims=1)))
    out["saliency_softmax"] = np.abs(g_soft).max(-1)

    # fooling
    model, X = nv.case_inputs("fooling")
    c = nv.CASES["fooling"]
    t, lr = c["target"], c["learning_rate"]
    assert int(np.argmax(model(X))) != t, "fooling case: the target is already predicted"
    out["fooling"] = np.asarray(ns["make_fooling_image"](X.copy(), t, model))      # lr 1: the default
    def score_dir(Xf, norm=True):
        g = score_grad(model, Xf, lambda s: s[0, t])
        return g / np.linalg.norm(g) if norm else g
    ref, steps = fooling_variant(X, t, model, lr, score_dir)
    assert nv.norm_error(ref, out["fooling"]) < 1e-5 and 3 <= steps <= 30, steps
    out["fooling_steps"] = np.array(steps)
    out["fooling_nonorm"], _ = fooling_variant(X, t, model, lr, lambda Xf: score_dir(Xf, False))
    out["fooling_nostop"], _ = fooling_variant(X, t, model, lr, score_dir, stop=False)
    def loss_dir(Xf):
        g = -score_grad(model, Xf, lambda s: tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits([t], s)))
        return g / np.linalg.norm(g)
    out["fooling_loss"], _ = fooling_variant(X, t, model, lr, loss_dir)
    out["fooling_onemore"], _ = fooling_variant(X, t, model, lr, score_dir, extra=1)
    print(f"fooling case: {steps} steps")

    # update step
    model, X = nv.case_inputs("update")
    c = nv.CASES["update"]
    t, l2, lr = c["target"], c["l2_reg"], c["learning_rate"]
    out["update"] = np.asarray(ns["class_visualization_update_step"](tf.constant(X), model, t, l2, lr))
    gs = score_grad(model, X, lambda s: s[0, t])
    def step(g, norm=True):
        return X + lr * (g / np.linalg.norm(g) if norm else g)
    out["update_l2loss"] = step(gs - l2 * X)
    out["update_noreg"] = step(gs)
    out["update_plusreg"] = step(gs + 2 * l2 * X)
    out["update_nonorm"] = step(gs - 2 * l2 * X, norm=False)
    out["update_descent"] = step(-(gs - 2 * l2 * X))
    assert nv.norm_error(step(gs - 2 * l2 * X), out["update"]) < 1e-5

    # the loop
    model, _ = nv.case_inputs("create")
    c = nv.CASES["create"]
    full = np.asarray(ns["create_class_visualization"](c["target"], model, **c["kwargs"]))
    crop = (slice(None), *nv.CREATE_CROP)
    out["create"] = full[crop]
    out["create_whole"] = np.array([np.mean(full), np.linalg.norm(full)])
    upd, jit, blur = ns["class_visualization_update_step"], ns["jitter"], ns["blur_image"]
    def loop(unjitter=True, blur_mode="every", clamp_each=True, **kw):
        kw = {**c["defaults"], **kw}
        rng = np.random.default_rng(kw["seed"])
        size = kw["image_size"]
        Xc = np.clip(rng.normal(size=(1, size, size, 3)), PIXEL_MIN, PIXEL_MAX).astype(np.float32)
        for it in range(kw["num_iterations"]):
            ox, oy = (int(v) for v in rng.integers(-kw["max_jitter"], kw["max_jitter"] + 1, size=2))
            Xc = jit(Xc, ox, oy)
            Xc = np.asarray(upd(tf.constant(Xc), model, c["target"], kw["l2_reg"], kw["learning_rate"]))
            if unjitter:
                Xc = jit(Xc, -ox, -oy)
            if clamp_each:
                Xc = np.clip(Xc, PIXEL_MIN, PIXEL_MAX)
            if blur_mode == "all" or (blur_mode == "every" and (it + 1) % kw["blur_every"] == 0):
                Xc = blur(Xc, 0.5)
        return np.clip(Xc, PIXEL_MIN, PIXEL_MAX).astype(np.float32)
    assert nv.norm_error(loop(**c["kwargs"]), full) < 1e-5
    out["create_nounjitter"] = loop(unjitter=False, **c["kwargs"])[crop]
    out["create_noblur"] = loop(blur_mode="none", **c["kwargs"])[crop]
    out["create_blurall"] = loop(blur_mode="all", **c["kwargs"])[crop]
    out["create_clamp_end"] = loop(clamp_each=False, **c["kwargs"])[crop]

    for k, v in out.items():
        if k.startswith(("saliency_", "fooling_", "update_", "create_")) and k not in ("fooling_steps", "create_whole"):
            base = out[k.split("_")[0]]
            x0 = {"fooling": nv.case_inputs("fooling")[1], "update": nv.case_inputs("update")[1]}.get(
                k.split("_")[0], 0.0)
            print(f"{k:20s} differs from the reference by {nv.norm_error(v - x0, base - x0):.3g}")
    nv.EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(nv.EXPECTED, **{k: np.asarray(v, np.float32 if k != "fooling_steps" else np.int64)
                                        for k, v in out.items()})
    print(f"wrote {nv.EXPECTED} ({nv.EXPECTED.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
