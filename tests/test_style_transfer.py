"""The style_transfer checkers pass correct solutions written differently and name each
known mistake; the image loader, helpers.style, the widget's function and the expected
values file work; the autograded reference reaches the quality targets."""

import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import load_tool
from helpers.checks import CheckFailed, rel_error
from helpers.checks import style_transfer as checks

REPO = Path(__file__).resolve().parent.parent


def _tools():
    return load_tool("style_transfer_expected.py")


@pytest.fixture(scope="module")
def ref():
    """The reference solution's functions, run from the solution notebook's cells."""
    tools = _tools()
    return tools.solution_namespace(tools.LOSS_CELLS + ("style_transfer_extract_features",))


# ------------------------------------------------------------------ reference + alternatives


@pytest.mark.parametrize("fn", ["content_loss", "gram_matrix", "style_loss", "tv_loss",
                                "extract_features"])
def test_reference_passes(ref, fn, capsys):
    getattr(checks, f"check_{fn}")(ref[fn])
    assert f"✔ {fn}" in capsys.readouterr().out


def test_alternative_content_loss_passes():
    def alt(w, cur, orig):                      # a norm squared, in NumPy
        return w * np.linalg.norm(np.asarray(cur) - np.asarray(orig)) ** 2
    checks.check_content_loss(alt)


def test_alternative_gram_matrices_pass():
    def einsum(features, normalize=True):
        f = tf.convert_to_tensor(features)
        f = tf.reshape(f, [-1] + f.shape[-3:].as_list())[0]        # (H, W, C)
        g = tf.einsum("hwc,hwd->cd", f, f)
        return g / tf.cast(tf.size(f), g.dtype) if normalize else g

    def transpose_first(features, normalize=True):                 # (C, H*W) done right
        f = np.asarray(features, np.float64)
        f = f.reshape(f.shape[-3:])
        H, W, C = f.shape
        F = np.transpose(f, (2, 0, 1)).reshape(C, H * W)
        g = F @ F.T
        return g / (H * W * C) if normalize else g
    checks.check_gram_matrix(einsum)
    checks.check_gram_matrix(transpose_first)


def test_alternative_style_loss_passes(ref):
    def alt(feats, layers, targets, weights):                      # add_n over zip
        return tf.add_n([w * tf.reduce_sum((ref["gram_matrix"](feats[l]) - t) ** 2)
                         for l, t, w in zip(layers, targets, weights)])
    checks.check_style_loss(alt)


def test_alternative_tv_losses_pass():
    def axes_loop(img, w):                       # a loop over the two axes is fine
        total = 0.0
        for axis in (1, 2):
            total += tf.reduce_sum(tf.square(tf.experimental.numpy.diff(img, axis=axis)))
        return w * total

    def conv(img, w):                            # differences as convolutions
        img = tf.convert_to_tensor(img)
        k = tf.constant([-1.0, 1.0])
        kv = tf.tile(tf.reshape(k, (2, 1, 1, 1)), (1, 1, 3, 1))
        kh = tf.tile(tf.reshape(k, (1, 2, 1, 1)), (1, 1, 3, 1))
        dv = tf.nn.depthwise_conv2d(img, kv, [1, 1, 1, 1], "VALID")
        dh = tf.nn.depthwise_conv2d(img, kh, [1, 1, 1, 1], "VALID")
        return w * (tf.reduce_sum(dv ** 2) + tf.reduce_sum(dh ** 2))
    checks.check_tv_loss(axes_loop)
    checks.check_tv_loss(conv)


def test_alternative_extract_features_passes():
    def alt(x, model):
        return [f for f in model(x)]             # default training mode is inference
    checks.check_extract_features(alt)


# ------------------------------------------------------------------ content loss mistakes


@pytest.mark.parametrize("wrong, message", [
    (lambda w, c, o: tf.reduce_sum((c - o) ** 2), "content_weight is missing"),
    (lambda w, c, o: w * tf.reduce_mean((c - o) ** 2), "reduce_mean instead of reduce_sum"),
    (lambda w, c, o: 0.5 * w * tf.reduce_sum((c - o) ** 2), "extra factor 1/2"),
    (lambda w, c, o: w * tf.norm(c - o), "norm instead of its square"),
    (lambda w, c, o: w * tf.reduce_sum(tf.abs(c - o)), "absolute differences"),
    (lambda w, c, o: w * tf.reduce_sum((c - o) ** 2, axis=-1), "single number"),
])
def test_content_loss_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=re.escape(message)):
        checks.check_content_loss(wrong)


def test_unimplemented_is_reported():
    def todo(*args, **kwargs):
        raise NotImplementedError()
    for check in (checks.check_content_loss, checks.check_gram_matrix, checks.check_style_loss,
                  checks.check_tv_loss, checks.check_extract_features):
        with pytest.raises(CheckFailed, match="not implemented yet"):
            check(todo)


# ------------------------------------------------------------------ Gram matrix mistakes


def _gram(divisor=lambda H, W, C: H * W * C, mixed=False, honour_flag=True, outer=False):
    def fn(features, normalize=True):
        f = np.asarray(features, np.float64)
        f = f.reshape(f.shape[-3:])
        H, W, C = f.shape
        F = f.reshape(C, H * W) if mixed else f.reshape(H * W, C).T     # (C, H*W)
        g = F.T @ F if outer else F @ F.T
        return g / divisor(H, W, C) if (normalize or not honour_flag) else g
    return fn


@pytest.mark.parametrize("wrong, message", [
    (_gram(lambda H, W, C: 1), "not normalized"),
    (_gram(lambda H, W, C: H * W), "divided by H*W = 20 only"),
    (_gram(lambda H, W, C: C), "divided by C = 6 only"),
    (_gram(lambda H, W, C: H * W * C * C), "divided by H*W*C*C"),
    (_gram(lambda H, W, C: (H * W) ** 2), r"divided by (H*W)^2"),
    (_gram(mixed=True), "reshape mixes channels with positions"),
    (_gram(outer=True), "not F F^T"),
    (_gram(honour_flag=False), "normalize=False is ignored"),
])
def test_gram_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=re.escape(message)):
        checks.check_gram_matrix(wrong)


def test_gram_takes_cs231n_contract_batch_of_one():
    """cs231n documents features (1, H, W, C) -> (C, C); code written to it gets full marks,
    and the check never feeds (H, W, C) (which `_, H, W, C = features.shape` cannot take)."""
    def batch_only(features, normalize=True):        # a real cs231n 2017 TF style
        _, H, W, C = features.shape
        F = tf.reshape(features, (H * W, C))
        G = tf.matmul(F, F, transpose_a=True)
        return G / (H * W * C) if normalize else G

    def shape_tensor(features, normalize=True):      # tf.shape, (H*W, N*C) for N = 1
        shape = tf.shape(features)
        F = tf.reshape(features, (shape[1] * shape[2], shape[0] * shape[3]))
        G = tf.linalg.matmul(F, F, transpose_a=True)
        return G / tf.cast(shape[1] * shape[2] * shape[3], tf.float32) if normalize else G

    def keeps_batch(features, normalize=True):       # (1, C, C), cs231n's PyTorch layout
        N, H, W, C = features.shape
        F = tf.reshape(features, (N, H * W, C))
        G = tf.einsum("nkc,nkd->ncd", F, F)
        return G / (H * W * C) if normalize else G

    def float64(features, normalize=True):
        f = tf.cast(features, tf.float64)
        F = tf.reshape(f, (-1, f.shape[-1]))
        G = tf.transpose(F) @ F
        return G / tf.cast(tf.size(f), tf.float64) if normalize else G
    for fn in (batch_only, shape_tensor, keeps_batch, float64):
        checks.check_gram_matrix(fn)


def test_style_loss_accepts_a_float64_gram():
    def gram64(features, normalize=True):
        F = tf.reshape(tf.cast(features, tf.float64), (-1, features.shape[-1]))
        G = tf.matmul(F, F, transpose_a=True)
        return G / tf.cast(tf.size(features), tf.float64) if normalize else G

    def style64(feats, layers, targets, weights):
        return sum(w * tf.reduce_sum((gram64(feats[l]) - t) ** 2)
                   for l, t, w in zip(layers, targets, weights))
    checks.check_style_loss(style64)


# ------------------------------------------------------------------ style loss mistakes


def _style(ref, weights=True, positional=False, normalize=True, reduce=tf.reduce_sum,
           accumulate=True, one_weight=False):
    def fn(feats, layers, targets, ws):
        loss = 0.0
        for i, layer in enumerate(layers):
            G = ref["gram_matrix"](feats[i if positional else layer], normalize=normalize)
            w = ws[0] if one_weight else ws[i]
            term = reduce(tf.square(G - targets[i])) * (w if weights else 1.0)
            loss = loss + term if accumulate else term
        return loss
    return fn


@pytest.mark.parametrize("kwargs, message", [
    (dict(weights=False), "summed without their weights"),
    (dict(one_weight=True), "one weight for every layer"),
    (dict(positional=True), "indexed by the position i instead of style_layers[i]"),
    (dict(normalize=False), "Gram matrices are not normalized"),
    (dict(reduce=tf.reduce_mean), "reduce_mean instead of reduce_sum"),
    (dict(accumulate=False), "only the last layer counts"),
])
def test_style_loss_mistakes_are_named(ref, kwargs, message):
    with pytest.raises(CheckFailed, match=re.escape(message)):
        checks.check_style_loss(_style(ref, **kwargs))


# ------------------------------------------------------------------ TV loss mistakes


def _v(img):
    return img[:, 1:] - img[:, :-1]


def _h(img):
    return img[:, :, 1:] - img[:, :, :-1]


@pytest.mark.parametrize("wrong, message", [
    (lambda img, w: w * tf.reduce_sum(_v(img) ** 2), "only vertical neighbours"),
    (lambda img, w: w * tf.reduce_sum(_h(img) ** 2), "only horizontal neighbours"),
    (lambda img, w: tf.reduce_sum(_v(img) ** 2) + tf.reduce_sum(_h(img) ** 2), "tv_weight is missing"),
    (lambda img, w: w * (tf.reduce_sum(tf.abs(_v(img))) + tf.reduce_sum(tf.abs(_h(img)))),
     "absolute differences"),
    (lambda img, w: 0.5 * w * (tf.reduce_sum(_v(img) ** 2) + tf.reduce_sum(_h(img) ** 2)),
     "extra factor 1/2"),
])
def test_tv_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=re.escape(message)):
        checks.check_tv_loss(wrong)


def test_tv_pixel_loops_are_rejected_with_right_values():
    def loops(img, tv_weight):
        img = np.asarray(img)
        total = 0.0
        for i in range(img.shape[1] - 1):
            total += np.sum((img[:, i + 1] - img[:, i]) ** 2)
        total += sum(np.sum((img[:, :, j + 1] - img[:, :, j]) ** 2) for j in range(img.shape[2] - 1))
        return tv_weight * total
    with pytest.raises(CheckFailed, match=r"(?s)values are right, but the function loops.*slicing"):
        checks.check_tv_loss(loops)


def test_pixel_loops_ignores_loops_over_fixed_tuples():
    def fine(img, w):
        return sum(w for axis in (1, 2))
    assert checks.pixel_loops(fine) == []
    assert checks.pixel_loops(print) == []            # no source: no complaint


# ------------------------------------------------------------------ features and the loop


def test_extract_features_mistakes_are_named():
    with pytest.raises(CheckFailed, match="values are off"):
        checks.check_extract_features(lambda x, m: [tf.reverse(f, [0]) for f in m(x)])   # batch order
    with pytest.raises(CheckFailed, match="returned a dict"):
        checks.check_extract_features(lambda x, m: dict(enumerate(m(x))))
    with pytest.raises(CheckFailed, match="returned 1 tensors"):
        checks.check_extract_features(lambda x, m: [m(x)[-1]])
    with pytest.raises(CheckFailed, match="does not `return`"):
        checks.check_extract_features(lambda x, m: None)


def test_check_loss_drop():
    assert checks.check_loss_drop({"style": [100.0, 5.0]}, "style", 10) == pytest.approx(20)
    with pytest.raises(CheckFailed, match=r"went from 100 to 50 \(2.00x smaller\)"):
        checks.check_loss_drop({"style": [100.0, 50.0]}, "style", 10)
    with pytest.raises(CheckFailed, match="no 'content' entry"):
        checks.check_loss_drop({"style": [1.0, 0.1]}, "content", 10)
    with pytest.raises(CheckFailed, match="NaN or inf"):
        checks.check_loss_drop({"style": [1.0, float("nan")]}, "style", 10)


def _history(n=200, style=None, content=None, tv=None):
    zeros = [0.0] * (n + 1)
    style, content, tv = style or zeros, content or zeros, tv or zeros
    return {"total": [a + b + c for a, b, c in zip(content, style, tv)], "content": content,
            "style": style, "tv": tv}


def test_loop_checks_on_made_up_histories():
    smooth = list(np.geomspace(100.0, 1.0, 201))
    zigzag = smooth[:182] + [v * (1.3 if i % 2 else 1.0) for i, v in enumerate(smooth[182:])]
    assert checks.check_lr_decay(_history(style=smooth)) == 0
    with pytest.raises(CheckFailed, match="the learning rate is not decayed"):
        checks.check_lr_decay(_history(style=zigzag))
    checks.check_init_random(_history(content=smooth))
    with pytest.raises(CheckFailed, match="init_random is ignored"):
        checks.check_init_random(_history(content=[1e-12] + smooth[1:]))
    saturated = [-4.0 * 3 * (3 * 4 + 4 * 3)] * 201          # a 4x4 image at the bounds
    checks.check_clamped(_history(tv=saturated), -1.0, (4, 4, 3))
    with pytest.raises(CheckFailed, match="the image is not clamped"):
        checks.check_clamped(_history(tv=[2 * v for v in saturated]), -1.0, (4, 4, 3))
    bad = _history(style=smooth)
    bad["total"] = smooth
    bad["tv"] = smooth
    with pytest.raises(CheckFailed, match="not content \\+ style \\+ tv"):
        checks.check_history(bad)
    with pytest.raises(CheckFailed, match="has 200 values; expected 200 \\+ 1"):
        checks.check_history(_history(n=199))


@pytest.fixture(scope="module")
def loops():
    """The reference style_transfer and variants of its cell: {name: function}."""
    import keras
    from helpers import style
    from helpers.plots import style_transfer as plots
    from tqdm.auto import tqdm
    tools = _tools()
    base = tools.solution_namespace(tools.LOSS_CELLS + ("style_transfer_extract_features",),
                                    extra=dict(keras=keras, style=style, plots=plots, tqdm=tqdm, plt=None))
    import nbformat
    src = next(c.source for c in nbformat.read(tools.NOTEBOOK, as_version=4).cells
               if c.metadata.get("nbgrader", {}).get("grade_id") == "style_transfer_loop")
    edits = {
        "reference": [],
        "no_clamp": [("img.assign(tf.clip_by_value(img, style.PIXEL_MIN, style.PIXEL_MAX))", "pass")],
        "no_decay": [("optimizer.learning_rate.assign(decayed_lr)", "pass")],
        "no_init_random": [("style.random_image(content.shape, seed) if init_random else content", "content")],
        # correct variants: other noise, the decay as an attribute set from then on
        "variant": [("style.random_image(content.shape, seed)",
                     "tf.random.uniform(content.shape, style.PIXEL_MIN, style.PIXEL_MAX, seed=seed)"),
                    ("if t == decay_lr_at:\n            optimizer.learning_rate.assign(decayed_lr)",
                     "if t >= decay_lr_at:\n            optimizer.learning_rate = decayed_lr")],
    }
    out = {}
    for name, pairs in edits.items():
        code = src
        for old, new in pairs:
            assert old in code, (name, old)
            code = code.replace(old, new)
        ns = dict(base)
        exec(code, ns)
        out[name] = ns["style_transfer"]
    return out


@pytest.mark.parametrize("name", ["reference", "variant"])
def test_loop_check_passes_correct_loops(loops, name, capsys):
    checks.check_style_transfer(loops[name])
    assert "✔ style_transfer" in capsys.readouterr().out


@pytest.mark.parametrize("name, message", [
    ("no_clamp", "the image is not clamped"),
    ("no_decay", "the learning rate is not decayed"),
    ("no_init_random", "init_random is ignored"),
])
def test_loop_check_names_each_mistake(loops, name, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_style_transfer(loops[name])


def test_loop_check_uses_cs231n_arguments_only(loops):
    """A style_transfer with cs231n's exact signature (no num_iters, show_every, ...) runs."""
    def cs231n_signature(content_image, style_image, image_size, style_size, content_layer,
                         content_weight, style_layers, style_weights, tv_weight, init_random=False):
        return loops["reference"](content_image, style_image, image_size, style_size, content_layer,
                                  content_weight, style_layers, style_weights, tv_weight, init_random)
    checks.check_style_transfer(cs231n_signature, runs=("negative_tv",))


def test_expected_file_is_up_to_date():
    """Recomputed here, the stored values agree to float32's rounding on this CPU: within 1e-5
    of each array's scale (an AVX2-only CPU differs from the recording one by ~3e-7 on a Gram
    matrix of scale 22, which a plain rtol fails on entries near 0; a stale file is far off)."""
    tools = _tools()
    fresh = tools.make_expected()
    saved = checks.load_expected()
    assert set(fresh) == set(saved)
    for k in fresh:
        scale = max(float(np.abs(saved[k]).max()), 1e-12)
        assert np.shape(fresh[k]) == np.shape(saved[k]) and np.abs(fresh[k] - saved[k]).max() <= 1e-5 * scale, \
            f"{k} differs: run tools/style_transfer_expected.py"


def test_every_mistake_differs_from_the_right_answer():
    e = checks.load_expected()
    for group in ("content", "gram", "style", "tv"):
        right = e[f"{group}/expected"]
        for k in e:
            if k.startswith(group + "/") and k != f"{group}/expected" and e[k].shape == right.shape \
                    and e[k].dtype.kind == "f" and k.split("/")[1] not in ("weight", "features", "current",
                                                                          "original", "img", "weights"):
                assert rel_error(e[k], right) > 1e-2, f"mistake {k} is indistinguishable"


# ------------------------------------------------------------------ images, helpers.style


def test_sample_images_load_offline_as_rgb():
    from helpers.data.style_images import SAMPLE_IMAGES, load_image
    for name in SAMPLE_IMAGES:
        img = load_image(name, 64)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
        assert min(img.shape[:2]) == 64, (name, img.shape)
    assert load_image("chelsea", 100).shape == (100, 150, 3)       # aspect kept


def test_own_file_and_errors(tmp_path):
    from PIL import Image
    from helpers.data.style_images import load_image
    path = tmp_path / "mine.png"
    Image.fromarray(np.full((30, 50, 4), 200, np.uint8)).save(path)
    img = load_image(str(path), 20)
    assert img.shape == (20, 33, 3) and img.dtype == np.uint8
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ValueError, match="unknown image 'kitten'.*chelsea"):
        load_image("kitten")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="could not read"):
        load_image(bad)


def test_image_input_round_trip():
    from helpers import style
    from helpers.data.style_images import load_image
    x = style.image_input("coffee", 32)
    assert x.shape == (1, 32, 48, 3) and x.dtype == tf.float32
    assert style.PIXEL_MIN <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= style.PIXEL_MAX
    assert np.array_equal(style.to_uint8(x), load_image("coffee", 32))
    assert np.array_equal(style.to_uint8(style.image_input(load_image("coffee", 32))), load_image("coffee", 32))
    r = style.random_image((1, 8, 9, 3), seed=2)
    assert r.shape == (1, 8, 9, 3) and float(tf.reduce_min(r)) >= style.PIXEL_MIN
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) image"):
        style.image_input(np.zeros((4, 4)))


def test_feature_layers_exist_in_the_network():
    from helpers import pretrained, style
    names = set(pretrained.layer_names())
    assert set(style.FEATURE_LAYERS) <= names
    assert len(style.feature_model().outputs) == len(style.FEATURE_LAYERS)


def test_plots_return_figures():
    import matplotlib
    matplotlib.use("Agg")
    from helpers.plots import style_transfer as plots
    im = np.zeros((10, 20, 3), np.uint8)
    assert plots.show_transfer(im, im, im).axes
    assert plots.show_losses({"style": [10.0, 1.0], "content": [0.0, 0.0]}).axes


# ------------------------------------------------------------------ the widget's function


def test_widget_function_scales_content_weight_and_caches():
    from helpers.widgets import style_transfer as w
    calls = []

    def fake(**kwargs):
        calls.append(kwargs)
        return np.zeros((4, 4, 3), np.uint8), {"content": [kwargs["content_weight"]], "style": [1.0]}
    settings = dict(content_image="chelsea", style_image="gravel", content_weight=2e-3,
                    style_weights=[30.0, 30.0], num_iters=5)
    cache = {}
    img, hist = w.transfer_for_ratio(fake, 10.0, settings, cache)
    assert calls[0]["content_weight"] == pytest.approx(2e-2) and calls[0]["style_weights"] == [30.0, 30.0]
    assert calls[0]["verbose"] is False and calls[0]["show_every"] == 0
    assert settings["content_weight"] == 2e-3                      # not modified
    w.transfer_for_ratio(fake, 10.0, settings, cache)
    assert len(calls) == 1                                          # cached
    with pytest.raises(ValueError, match="positive"):
        w.scaled_weights(0, 1.0, [1.0])
    box = w.explore_weight_ratio(fake, settings)
    assert box.children[0].value == 1.0 and callable(box.render)


# ------------------------------------------------------------------ quality, from the demo run


def test_reference_notebook_reaches_quality_targets(demo_run):
    from conftest import autograded_notebook, cell_output_text
    nb = autograded_notebook(demo_run, "reference", "style_transfer")
    text = cell_output_text(nb)
    falls = [float(x) for x in re.findall(r"style loss fell (\d+(?:\.\d+)?)x", text)]
    assert len(falls) >= 2 and min(falls) >= 10, falls
    for grade_id in ("style_transfer_pairs_quality", "style_transfer_inversion_quality",
                     "style_transfer_texture_quality"):
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
        assert not any(o.get("output_type") == "error" for o in cell.outputs), grade_id


# ------------------------------------------------------------------ graded runs (forging)


def _fake_history(fell=1.0):
    return {"total": [1.0, 1.0 / fell], "content": [0.0, 0.0], "style": [1.0, 1.0 / fell], "tv": [0.0, 0.0]}


def test_graded_histories_use_the_notebook_runs_outside_grading(monkeypatch):
    from helpers import guard, style
    monkeypatch.setattr(guard, "_STATE", {})
    monkeypatch.delenv("COURSE_GRADING", raising=False)
    never = lambda **kw: pytest.fail("must not recompute outside grading")  # noqa: E731
    h = _fake_history(20.0)
    assert style.graded_histories("pairs", {("a", "b"): (None, h)}, never) == {("a", "b"): h}
    assert style.graded_histories("texture", {"texture": h}, never) == {"texture": h}
    with pytest.raises(AssertionError, match=r"no inversion results: run the cell above"):
        style.graded_histories("inversion", None, never)
    with pytest.raises(ValueError, match="unknown recipe 'styles'"):
        style.graded_histories("styles", {}, never)


def _fake_meter(settings, functions):
    """A cheap stand-in for style.loss_meter: every image measures 1.0 (no model built)."""
    assert callable(functions["style_loss"])
    return lambda x: dict.fromkeys(("total", "content", "style", "tv"), 1.0)


def test_graded_histories_ignore_forged_runs(monkeypatch, capsys):
    """When graded, histories assigned by hand do not count: the recipe runs again with the
    submission's style_transfer, and its losses are measured on the images it returns."""
    from helpers import style
    monkeypatch.setenv("COURSE_GRADING", "1")
    monkeypatch.setattr(style, "loss_meter", _fake_meter)
    calls = []

    def lazy(**kwargs):
        calls.append(kwargs)
        return style.to_uint8(style.start_image(kwargs)), _fake_history(1.0)
    forged = {"texture": (None, _fake_history(100.0))}
    functions = dict.fromkeys(style.LOSS_FUNCTIONS, lambda *args: 0.0)
    got = style.graded_histories("texture", forged, lazy, functions)
    assert got == {"texture": {"total": [1.0, 1.0], "content": [1.0, 1.0], "style": [1.0, 1.0],
                               "tv": [1.0, 1.0]}}
    assert len(calls) == 1 and calls[0]["style_image"] == "immunohistochemistry"
    assert calls[0]["init_random"] is True and calls[0]["content_weight"] == 0.0
    calls[0]["style_layers"].append(99)                 # the recipe is passed as a copy
    assert style.RECIPES["texture"]["texture"][2]["style_layers"] == [0, 1, 2, 3, 4]
    out = capsys.readouterr().out
    assert "graded run: the texture recipe run here" in out
    assert "texture synthesis: " in out and "style loss fell 1x" in out
    assert "measured style loss 1 at the start, 1 on the returned image" in out
    pairs = style.graded_histories("pairs", {}, lazy, functions)
    assert sorted(pairs) == sorted(style.TRANSFER_PAIRS) and len(calls) == 3
    inv = style.graded_histories("inversion", None, lazy, functions)
    assert sorted(inv) == [2, 3] and [c["content_layer"] for c in calls[3:]] == [2, 3]
    with pytest.raises(ValueError, match="needs the loss functions"):
        style.graded_histories("texture", forged, lazy)

    def copier(**kwargs):               # "inverts" by returning the content image itself
        content = style.image_input(kwargs["content_image"], kwargs["image_size"])
        return style.to_uint8(content), _fake_history(100.0)
    with pytest.raises(AssertionError, match=r"0% \(relative L2\) away from the content image"):
        style.graded_histories("inversion", None, copier, functions)


def test_graded_histories_measure_the_returned_image(monkeypatch, ref):
    """A style_transfer that reports a falling loss but returns its start image gets the
    loss of that image, measured with the submission's loss functions: no drop."""
    from helpers import style
    monkeypatch.setenv("COURSE_GRADING", "1")
    small = dict(content_image="coffee", style_image="gravel", image_size=32, style_size=32,
                 content_layer=0, content_weight=0.0, style_layers=[0, 1], style_weights=[1.0, 1.0],
                 tv_weight=0.0, init_random=True)
    monkeypatch.setitem(style.RECIPES, "texture", {"texture": ("texture synthesis", "style", small)})
    functions = {name: ref[name] for name in style.LOSS_FUNCTIONS}

    def liar(**kwargs):
        return style.to_uint8(style.start_image(kwargs)), _fake_history(100.0)
    got = style.graded_histories("texture", None, liar, functions)["texture"]
    first, last = got["style"]
    assert first > 0 and abs(last / first - 1) < 0.01          # only uint8 rounding
    with pytest.raises(CheckFailed):
        checks.check_loss_drop(got, "style", 10.0, "texture synthesis")
    assert got["content"] == [0.0, 0.0] and got["total"][0] == pytest.approx(first)

    def wrong_size(**kwargs):
        return np.zeros((8, 8, 3), np.uint8), _fake_history(100.0)
    with pytest.raises(AssertionError, match=r"returned a 8x8 image; expected 32x48, the content image"):
        style.graded_histories("texture", None, wrong_size, functions)

    def no_image(**kwargs):
        return None, _fake_history(100.0)
    with pytest.raises(AssertionError, match=r"return the result as \(H, W, 3\) uint8"):
        style.graded_histories("texture", None, no_image, functions)
    with pytest.raises(ValueError, match="needs the functions tv_loss"):
        style.loss_meter(small, {**functions, "tv_loss": None})
    vector = {**functions, "content_loss": lambda w, a, b: tf.zeros(2)}
    with pytest.raises(CheckFailed, match=r"content_loss: the loss has shape \(2,\); it must be a single number"):
        style.loss_meter(small, vector)(style.start_image(small))


def test_graded_recipe_runs_the_real_loop(monkeypatch):
    """A small recipe through the reference style_transfer: the kwargs fit its signature."""
    from helpers import style
    monkeypatch.setenv("COURSE_GRADING", "1")
    small = dict(content_image="coffee", style_image="gravel", image_size=32, style_size=32,
                 content_layer=0, content_weight=0.0, style_layers=[0], style_weights=[1.0],
                 tv_weight=0.0, init_random=True, num_iters=3, decay_lr_at=2)
    monkeypatch.setitem(style.RECIPES, "texture", {"texture": ("texture synthesis", "style", small)})
    tools = _tools()
    import keras
    from helpers.plots import style_transfer as plots
    from tqdm.auto import tqdm
    ns = tools.solution_namespace(tools.LOSS_CELLS + ("style_transfer_extract_features", "style_transfer_loop"),
                                  extra=dict(keras=keras, style=style, plots=plots, tqdm=tqdm, plt=None))
    functions = {name: ns[name] for name in style.LOSS_FUNCTIONS}
    got = style.graded_histories("texture", {"texture": (None, _fake_history(100.0))},
                                 ns["style_transfer"], functions)["texture"]
    image, history = ns["style_transfer"](**small, verbose=False)
    assert len(got["style"]) == 2 and max(got["content"]) == 0.0
    assert got["style"][0] == pytest.approx(history["style"][0], rel=1e-4)      # same start
    assert got["style"][1] == pytest.approx(history["style"][-1], rel=0.02)     # uint8 rounding
