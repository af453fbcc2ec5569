"""Checkers for the ``style_transfer`` quiz: losses, features and the optimization loop.

Each ``check_<fn>(fn)`` runs the student's function on the fixed inputs saved in
``data/expected/style_transfer.npz`` and compares with the reference solution's output
(relative error < 1e-3, as cs231n asks). When the value matches what a known mistake
gives, the message names the mistake. Regenerate the file with
``python tools/style_transfer_expected.py``.
"""
from __future__ import annotations

import ast
import inspect
import textwrap

import numpy as np

from ._compare import as_array, call, expect_close, expect_finite, expect_shape, fail, passed
from ._compare import load_expected as _load_expected

TOL = 1e-3


def load_expected():
    """The saved cases and reference values: dict name -> np.ndarray."""
    return _load_expected("style_transfer", "python tools/style_transfer_expected.py")


def _tf(x):
    import tensorflow as tf
    return tf.constant(x)


def _scalar(value, name, fn_name):
    arr = as_array(value, name, fn_name)
    if arr.size != 1:
        fail(fn_name, f"{name} has shape {arr.shape}; it must be a single number (a scalar).",
             "Most likely: a reduce_sum is missing, or sums over only some axes.")
    return arr.reshape(())


# ------------------------------------------------------------------------- content loss


def check_content_loss(fn):
    """content_loss(content_weight, content_current, content_original) -> scalar."""
    name, e = "content_loss", load_expected()
    got = call(fn, float(e["content/weight"]), _tf(e["content/current"]),
               _tf(e["content/original"]), fn_name=name)
    got = _scalar(got, "the loss", name)
    err = expect_close(got, e["content/expected"], "the loss", name, tol=TOL, mistakes={
        "the content_weight is missing: multiply the sum by it.": e["content/no_weight"],
        "reduce_mean instead of reduce_sum: the loss is a sum over every feature value.":
            e["content/mean"],
        "an extra factor 1/2: cs231n's content loss is w * sum((F - P)^2), no 1/2.":
            e["content/half"],
        "the norm instead of its square: use sum((F - P)^2), no square root.": e["content/norm"],
        "absolute differences instead of squared ones.": e["content/abs"],
    })
    return passed(name, f"loss {float(got):.6g} matches (rel. error {err:.1e}).")


# ------------------------------------------------------------------------- Gram matrix


def check_gram_matrix(fn):
    """gram_matrix(features, normalize=True) on (1, H, W, C) and on (H, W, C)."""
    name, e = "gram_matrix", load_expected()
    f = e["gram/features"]
    _, H, W, C = f.shape
    shape_hint = (f"The Gram matrix is C x C = {C} x {C}: reshape the features to (H*W, C) = "
                  f"({H * W}, {C}) and compute F^T F (not F F^T, which is (H*W, H*W)).")
    got = call(fn, _tf(f), fn_name=name)
    got = expect_shape(got, (C, C), f"gram_matrix(features) for features {f.shape}", name,
                       hint=shape_hint)
    err = expect_close(got, e["gram/expected"], "the Gram matrix", name, tol=TOL, mistakes={
        f"not normalized: with normalize=True divide by H*W*C = {H * W * C}.": e["gram/raw"],
        f"divided by H*W = {H * W} only: the count is H*W*C = {H * W * C} (include C).":
            e["gram/by_hw"],
        f"divided by C = {C} only: the count is H*W*C = {H * W * C}.": e["gram/by_c"],
        "divided by H*W*C*C: divide by H*W*C once.": e["gram/by_hwcc"],
        "divided by (H*W)^2: divide by H*W*C.": e["gram/by_hw_squared"],
        "the reshape mixes channels with positions: reshaping (1, H, W, C) straight to "
        "(C, H*W) scrambles the values. Reshape to (H*W, C) (channels last stay together), "
        "then G = F^T F.": e["gram/mixed_reshape"],
    }, hint="Check G[c, d] = sum over positions of F[h, w, c] * F[h, w, d], divided by H*W*C.")
    raw = call(fn, _tf(f), normalize=False, fn_name=name)
    raw = expect_shape(raw, (C, C), "gram_matrix(features, normalize=False)", name, hint=shape_hint)
    expect_close(raw, e["gram/raw"], "the Gram matrix with normalize=False", name, tol=TOL,
                 mistakes={"normalize=False is ignored: only divide when normalize is True.":
                           e["gram/expected"]})
    single = call(fn, _tf(f[0]), fn_name=name)
    single = expect_shape(single, (C, C), f"gram_matrix(features) for features {f[0].shape}", name,
                          hint="Accept (H, W, C) as well as (1, H, W, C): take H, W, C from "
                               "the last three axes.")
    expect_close(single, e["gram/expected"], f"the Gram matrix of an {f[0].shape} input", name,
                 tol=TOL, hint="Take H, W, C from the last three axes of the shape.")
    return passed(name, f"({C}, {C}) for {f.shape} and {f[0].shape} inputs, normalized and "
                        f"raw (max rel. error {err:.1e}).")


# ------------------------------------------------------------------------- style loss


def check_style_loss(fn):
    """style_loss(feats, style_layers, style_targets, style_weights) -> scalar.

    The student's style_loss calls their own gram_matrix, so check that first.
    """
    name, e = "style_loss", load_expected()
    feats = [_tf(e[f"style/feats{i}"]) for i in range(4)]
    layers = [int(i) for i in e["style/layers"]]
    targets = [_tf(e[f"style/target{k}"]) for k in range(len(layers))]
    weights = [float(w) for w in e["style/weights"]]
    got = call(fn, feats, layers, targets, weights, fn_name=name)
    got = _scalar(got, "the loss", name)
    err = expect_close(got, e["style/expected"], "the loss", name, tol=TOL, mistakes={
        "the layers are summed without their weights: multiply layer i's term by "
        "style_weights[i].": e["style/no_weights"],
        "one weight for every layer: layer i's term gets style_weights[i].": e["style/one_weight"],
        "feats is indexed by the position i instead of style_layers[i]: the i-th target "
        "belongs to feats[style_layers[i]].": e["style/positional"],
        "the Gram matrices are not normalized (call gram_matrix with normalize=True, and "
        "check gram_matrix first).": e["style/unnormalized"],
        "reduce_mean instead of reduce_sum over the Gram matrix entries.": e["style/mean"],
        "only the last layer counts: add the terms of every layer in style_layers "
        "(is `loss =` inside the loop instead of `loss +=`?).": e["style/last_only"],
    }, hint="Run check_gram_matrix first; then sum style_weights[i] * sum((G - A_i)^2) "
            "over i, with G the Gram matrix of feats[style_layers[i]].")
    return passed(name, f"loss {float(got):.6g} over layers {layers} matches "
                        f"(rel. error {err:.1e}).")


# ------------------------------------------------------------------------- TV loss


def pixel_loops(fn):
    """Line numbers of loops in ``fn`` that iterate over ``range(...)`` (pixel loops).

    A loop over a fixed tuple (``for axis in (1, 2)``) is not counted. Returns [] when
    the source cannot be read (built-ins, lambdas typed at a prompt).
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.While):
            found.append(node.lineno)
        iters = []
        if isinstance(node, (ast.For, ast.AsyncFor)):
            iters = [node.iter]
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            iters = [g.iter for g in node.generators]
        for it in iters:
            for sub in ast.walk(it):
                if isinstance(sub, ast.Call):
                    f = sub.func
                    fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                    if fname in ("range", "tf_range"):
                        found.append(node.lineno)
                        break
    return sorted(set(found))


def check_tv_loss(fn):
    """tv_loss(img, tv_weight) -> scalar, vectorized (no loops over pixels)."""
    name, e = "tv_loss", load_expected()
    got = call(fn, _tf(e["tv/img"]), float(e["tv/weight"]), fn_name=name)
    got = _scalar(got, "the loss", name)
    err = expect_close(got, e["tv/expected"], "the loss", name, tol=TOL, mistakes={
        "only vertical neighbours (img[:, 1:] - img[:, :-1]) count: add the horizontal "
        "ones (img[:, :, 1:] - img[:, :, :-1]).": e["tv/only_h"],
        "only horizontal neighbours (img[:, :, 1:] - img[:, :, :-1]) count: add the "
        "vertical ones (img[:, 1:] - img[:, :-1]).": e["tv/only_w"],
        "the tv_weight is missing: multiply the sum by it.": e["tv/no_weight"],
        "absolute differences: the TV loss here sums squared differences.": e["tv/abs"],
        "an extra factor 1/2.": e["tv/half"],
        "reduce_mean instead of reduce_sum.": e["tv/mean"],
    }, hint="Sum the squared differences of vertically AND horizontally adjacent pixels, "
            "over all channels, times tv_weight.")
    loops = pixel_loops(fn)
    if loops:
        fail(name, f"values are right, but the function loops over pixels (line {loops[0]} "
                   "of its source).",
             "Vectorize it with slicing: img[:, 1:, :, :] - img[:, :-1, :, :] gives every "
             "vertical difference at once; a Python loop runs once per row at every step "
             "of the optimization.")
    return passed(name, f"loss {float(got):.6g} matches (rel. error {err:.1e}), no loops.")


# ------------------------------------------------------------------------- features


def check_extract_features(fn, model=None, size=(32, 48)):
    """extract_features(x, model) -> list of the model's activations, in order.

    model: the feature model (default: helpers.style.feature_model()).
    """
    import tensorflow as tf
    name = "extract_features"
    if model is None:
        from helpers import style
        model = style.feature_model()
    rng = np.random.default_rng(5)
    x = tf.constant(rng.uniform(-1, 1, size=(2, *size, 3)).astype("float32"))
    want = model(x, training=False)
    want = list(want) if isinstance(want, (list, tuple)) else [want]
    got = call(fn, x, model, fn_name=name)
    if got is None:
        fail(name, "returned None.", "Most likely: the function does not `return` the list.")
    if isinstance(got, dict):
        fail(name, "returned a dict; return a list with one tensor per layer, in order.")
    if not isinstance(got, (list, tuple)):
        fail(name, f"returned a {type(got).__name__}; expected a list of {len(want)} tensors.",
             "Wrap the model's outputs in list(...).")
    if len(got) != len(want):
        fail(name, f"returned {len(got)} tensors; the model has {len(want)} feature layers.",
             "Return every output of the feature model, in its order.")
    for i, (g, w) in enumerate(zip(got, want)):
        arr = expect_shape(g, tuple(w.shape), f"features[{i}]", name,
                           hint="features[i] is (N, H_i, W_i, C_i) for the whole batch.")
        expect_finite(arr, f"features[{i}]", name)
        hint = None
        if i + 1 < len(want) and tuple(w.shape) == tuple(want[i + 1].shape):
            hint = "Are the layers in the model's order?"
        expect_close(arr, np.asarray(w), f"features[{i}]", name, tol=1e-4,
                     hint=hint or "Return the model's outputs for x unchanged, in order.")
    shapes = ", ".join(str(tuple(w.shape[1:])) for w in want)
    return passed(name, f"{len(want)} layers with shapes {shapes} for a {tuple(x.shape)} input.")


# ------------------------------------------------------------------------- the loop


def check_loss_drop(history, key, factor, what="the optimization"):
    """Fail unless ``history[key]`` fell by at least ``factor`` from first to last value.

    history: dict of lists of floats, as style_transfer returns it.
    Returns the ratio first / last.
    """
    name = "style_transfer"
    if not isinstance(history, dict) or key not in history:
        fail(name, f"the history has no {key!r} entry (got "
                   f"{sorted(history) if isinstance(history, dict) else type(history).__name__}).",
             "Return (image, history) with history a dict of lists 'total', 'content', "
             "'style', 'tv'.")
    values = np.asarray(history[key], dtype=np.float64)
    if values.size < 2:
        fail(name, f"history[{key!r}] has {values.size} value(s); record one per iteration.")
    expect_finite(values, f"history[{key!r}]", name)
    first, last = float(values[0]), float(values[-1])
    ratio = first / max(last, 1e-30)
    if ratio < factor:
        fail(name, f"in {what} the {key} loss went from {first:.4g} to {last:.4g} "
                   f"({ratio:.2f}x smaller); it should fall at least {factor:g}x.",
             "Check that the step updates the image (optimizer.apply on the image variable), "
             "the learning rate, and that the losses use the current image's features.")
    return ratio
