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


def gram_result(value, C, what, fn_name, hint=None):
    """A student's Gram matrix as a (C, C) array.

    cs231n documents (C, C) for features of one image (1, H, W, C); a (1, C, C) result (the
    batch axis kept, as cs231n's PyTorch version returns) computes the same thing and works
    wherever the quiz uses it, so it is accepted too.
    """
    arr = as_array(value, what, fn_name)
    if arr.shape == (1, C, C):
        arr = arr[0]
    return expect_shape(arr, (C, C), what, fn_name, hint=hint)


def check_gram_matrix(fn):
    """gram_matrix(features, normalize=True), features (1, H, W, C) as cs231n documents."""
    name, e = "gram_matrix", load_expected()
    f = e["gram/features"]
    _, H, W, C = f.shape
    shape_hint = (f"The Gram matrix is C x C = {C} x {C}: reshape the features to (H*W, C) = "
                  f"({H * W}, {C}) and compute F^T F (not F F^T, which is (H*W, H*W)).")
    got = call(fn, _tf(f), fn_name=name)
    got = gram_result(got, C, f"gram_matrix(features) for features {f.shape}", name, shape_hint)
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
    raw = gram_result(raw, C, "gram_matrix(features, normalize=False)", name, shape_hint)
    expect_close(raw, e["gram/raw"], "the Gram matrix with normalize=False", name, tol=TOL,
                 mistakes={"normalize=False is ignored: only divide when normalize is True.":
                           e["gram/expected"]})
    return passed(name, f"({C}, {C}) for {f.shape} features, normalized and raw "
                        f"(max rel. error {err:.1e}).")


# ------------------------------------------------------------------------- style loss


def call_style_loss(fn, feats, layers, targets, weights):
    """``fn(feats, layers, targets, weights)`` on fresh tensors and lists made from NumPy
    arrays: feats[j] (1, H_j, W_j, C_j) float32; targets[i] (C, C).

    cs231n builds the targets with the student's own gram_matrix, so a gram_matrix that
    computes in float64 gets float64 targets: when float32 targets make TensorFlow complain
    about a double tensor, the call is repeated with float64 targets.
    """
    def run(dtype):
        return call(fn, [_tf(np.array(f, np.float32)) for f in feats], [int(i) for i in layers],
                    [_tf(np.array(t, dtype)) for t in targets], [float(w) for w in weights],
                    fn_name="style_loss")
    try:
        return run(np.float32)
    except Exception as exc:  # noqa: BLE001 - only a float64/float32 mismatch is retried
        if "double" not in str(exc):
            raise
    return run(np.float64)


def check_style_loss(fn):
    """style_loss(feats, style_layers, style_targets, style_weights) -> scalar.

    The student's style_loss calls their own gram_matrix, so check that first.
    """
    name, e = "style_loss", load_expected()
    feats = [e[f"style/feats{i}"] for i in range(4)]
    layers = [int(i) for i in e["style/layers"]]
    targets = [e[f"style/target{k}"] for k in range(len(layers))]
    weights = [float(w) for w in e["style/weights"]]
    got = call_style_loss(fn, feats, layers, targets, weights)
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
    the source cannot be read (built-ins, lambdas typed at a prompt). Under the grader's
    judge the source is the submitted text (``fn.__course_source__``).
    """
    try:
        src = getattr(fn, "__course_source__", None) or inspect.getsource(fn)
        tree = ast.parse(textwrap.dedent(src))
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


# ------------------------------------------------------------------------- the loop, step by step
#
# The runs below call style_transfer with cs231n's arguments only (content_image, style_image,
# image_size, style_size, content_layer, content_weight, style_layers, style_weights, tv_weight,
# init_random); everything else keeps the notebook's defaults: 200 Adam steps, learning rate
# 0.05 until step DECAY_AT, then 0.005, seed 0. Images are tiny, so a run takes 1-4 s.

#: Where the notebook's default schedule decays the learning rate, and the number of steps.
DECAY_AT, NUM_ITERS = 180, 200

#: name -> (positional arguments, init_random) of each run of check_style_transfer.
LOOP_RUNS = {
    # texture synthesis from noise, with a step that is large for its scale: at lr 0.05 the
    # style loss keeps jumping up and down; after the decay to 0.005 it falls smoothly. The
    # tiny content weight changes nothing but shows where the run started.
    "texture": (("chelsea", "gravel", 24, 48, 2, 1e-9, [0, 1, 2, 3, 4], [300.0] * 5, 0.0), True),
    # a NEGATIVE TV weight rewards contrast: only clamping keeps the pixels bounded
    "negative_tv": (("coffee", "gravel", 16, 16, 0, 0.0, [0], [0.0], -1.0), False),
}


def run_loop(fn, args, init_random=False):
    """``fn(*args, init_random=init_random)`` -> (image as an array, history); the arguments
    are fresh copies (the lists are new lists)."""
    args = [list(a) if isinstance(a, list) else a for a in args]
    out = call(fn, *args, init_random=init_random, fn_name="style_transfer")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        fail("style_transfer", f"returned {type(out).__name__}; expected (image, history).",
             "End with `return style.to_uint8(img), history` (the given code does).")
    return as_array(out[0], "the image", "style_transfer"), out[1]


def check_history(history, num_iters=NUM_ITERS):
    """The history is a dict of 'total', 'content', 'style', 'tv' lists of num_iters + 1
    finite numbers, and total = content + style + tv at every step."""
    name = "style_transfer"
    if not isinstance(history, dict) or set(history) != {"total", "content", "style", "tv"}:
        got = sorted(history) if isinstance(history, dict) else type(history).__name__
        fail(name, f"the history is {got}; expected a dict with 'total', 'content', 'style', 'tv'.")
    h = {k: np.asarray(v, np.float64).ravel() for k, v in history.items()}
    for key, values in h.items():
        if values.size != num_iters + 1:
            fail(name, f"history[{key!r}] has {values.size} values; expected {num_iters} + 1 "
                       "(the losses before every step, then those of the returned image).")
        expect_finite(values, f"history[{key!r}]", name)
    parts = h["content"] + h["style"] + h["tv"]
    if not np.allclose(h["total"], parts, rtol=1e-3, atol=1e-6 * np.max(np.abs(parts))):
        fail(name, "history['total'] is not content + style + tv.",
             "compute_losses returns (total, content, style, tv) with total the sum of the three.")
    return h


def check_init_random(history):
    """With init_random=True the start is noise, far from the content image: the content loss
    of the start image must not be (almost) 0."""
    content = np.asarray(history["content"], np.float64)
    if content[0] <= 1e-3 * np.max(content):
        fail("style_transfer", f"with init_random=True the content loss at the start is "
                               f"{content[0]:.3g} (it reaches {np.max(content):.3g} later): the "
                               "run started from the content image itself.",
             "init_random is ignored: with init_random=True start from uniform noise in the "
             "valid range, style.random_image(content.shape, seed).")


def check_lr_decay(history, key="style", decay_at=DECAY_AT, settle=2, most=3):
    """After the learning rate drops (step decay_at) the loss of the texture run falls
    smoothly; without the decay it keeps jumping up and down. Fails if more than ``most`` of
    the steps after decay_at + settle make ``history[key]`` go up."""
    values = np.asarray(history[key], np.float64)[decay_at + settle:]
    ups = int(np.sum(np.diff(values) > 1e-4 * np.abs(values[:-1])))
    if ups > most:
        fail("style_transfer", f"after step {decay_at} the {key} loss still goes up in {ups} of "
                               f"the last {values.size - 1} steps, as with the large initial "
                               "step: the learning rate is not decayed.",
             "At step decay_lr_at lower the learning rate to decayed_lr: "
             "optimizer.learning_rate.assign(decayed_lr).")
    return ups


def check_clamped(history, tv_weight, image_shape):
    """With a negative TV weight every recorded TV loss is bounded below by the TV of the
    most extreme image inside [PIXEL_MIN, PIXEL_MAX]; an unclamped image passes the bound."""
    from helpers.pretrained import PIXEL_MAX, PIXEL_MIN
    H, W = image_shape[:2]
    pairs = 3 * ((H - 1) * W + H * (W - 1))
    bound = abs(tv_weight) * pairs * (PIXEL_MAX - PIXEL_MIN) ** 2 * 1.05
    low = float(np.min(np.asarray(history["tv"], np.float64)))
    if low < -bound:
        fail("style_transfer", f"with tv_weight {tv_weight:g} (a reward for contrast) the TV loss "
                               f"reached {low:.4g}; inside the valid pixel range it cannot go "
                               f"below {-bound:.4g}: the image is not clamped.",
             "After every update clamp the image: img.assign(tf.clip_by_value(img, "
             "style.PIXEL_MIN, style.PIXEL_MAX)).")


def check_style_transfer(fn, runs=tuple(LOOP_RUNS)):
    """The optimization loop, with cs231n's arguments (see LOOP_RUNS): the result and its
    history, the style loss falls, init_random, the learning-rate decay and the clamping."""
    name = "style_transfer"
    for run in runs:
        args, init_random = LOOP_RUNS[run]
        image, history = run_loop(fn, args, init_random)
        h = check_history(history)
        if run == "texture":
            expect_shape(image, (24, 36, 3), "the returned image", name,
                         hint="Return the image as (H, W, 3) uint8: style.to_uint8(img).")
            if image.dtype != np.uint8:
                fail(name, f"the returned image is {image.dtype}; expected uint8 "
                           "(style.to_uint8(img)).")
            check_init_random(h)
            check_loss_drop(h, "style", 3.0, "texture synthesis, 200 steps on a 24-pixel image")
            check_lr_decay(h)
        elif run == "negative_tv":
            check_clamped(h, args[8], image.shape)
    return passed(name, f"{len(runs)} runs of 200 steps: the style loss falls, init_random "
                        "starts from noise, the learning rate decays, the image stays clamped.")
