"""network_visualization: checkers pass correct solutions written differently, name the
usual mistakes; the widget's function works without a frontend; the reference notebook
reaches its quality targets (read from the demo's autograded notebook)."""

import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import load_tool
from helpers.checks import CheckFailed
from helpers.checks import network_visualization as checks
from helpers.pretrained import PIXEL_MAX, PIXEL_MIN

REPO = Path(__file__).resolve().parent.parent


def _load_tool():
    return load_tool("make_expected_network_visualization.py")


@pytest.fixture(scope="module")
def ref():
    """The reference functions, executed from the solution notebook."""
    return _load_tool().reference_namespace()


# ------------------------------------------------------------------ saliency

def test_saliency_reference_passes(ref, capsys):
    checks.check_compute_saliency_maps(ref["compute_saliency_maps"])
    assert "✔ compute_saliency_maps" in capsys.readouterr().out


def test_saliency_alternative_passes():
    def loop_onehot(X, y, model):                   # one image at a time, one-hot mask
        maps = []
        for i in range(len(X)):
            x = tf.Variable(X[i:i + 1])
            with tf.GradientTape() as tape:
                s = tf.reduce_sum(model(x) * tf.one_hot([y[i]], model.output_shape[-1]))
            maps.append(np.abs(tape.gradient(s, x).numpy()[0]).max(axis=-1))
        return np.stack(maps)
    checks.check_compute_saliency_maps(loop_onehot)


def _saliency_with(post, pick="score"):
    def fn(X, y, model):
        X = tf.constant(X)
        with tf.GradientTape() as tape:
            tape.watch(X)
            s = model(X)
            if pick == "loss":
                obj = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, s))
            elif pick == "softmax":
                obj = tf.reduce_sum(tf.gather(tf.nn.softmax(s), y, axis=1, batch_dims=1))
            elif pick == "pred":
                obj = tf.reduce_sum(tf.reduce_max(s, axis=1))
            else:
                obj = tf.reduce_sum(tf.gather(s, y, axis=1, batch_dims=1))
        return post(tape.gradient(obj, X).numpy())
    return fn


@pytest.mark.parametrize("fn, message", [
    (_saliency_with(lambda g: np.abs(g).max(-1), "loss"), "softmax loss instead of the correct-class score"),
    (_saliency_with(lambda g: np.abs(g).max(-1), "pred"), "predicted class"),
    (_saliency_with(lambda g: np.abs(g).max(-1), "softmax"), "went through a softmax"),
    (_saliency_with(lambda g: np.abs(g).sum(-1)), "channels are summed"),
    (_saliency_with(lambda g: g.max(-1)), "negative values"),
    (_saliency_with(lambda g: np.abs(g)), r"shape \(3, 8, 8, 3\), expected \(3, 8, 8\)"),
    (_saliency_with(lambda g: None), "is None"),
])
def test_saliency_mistakes_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_compute_saliency_maps(fn)


def test_saliency_not_implemented():
    def todo(X, y, model):
        raise NotImplementedError
    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.check_compute_saliency_maps(todo)


# ------------------------------------------------------------------ fooling

def _fooling(norm=True, stop="before", objective="score", return_input=False, use_lr=True):
    def fn(X, target_y, model, learning_rate=1.0, max_iter=100):
        lr = learning_rate if use_lr else 1.0
        Xf = tf.constant(X)                         # a tensor replaced each step
        for _ in range(max_iter):
            if stop == "before" and int(np.argmax(model(Xf))) == target_y:
                break
            with tf.GradientTape() as tape:
                tape.watch(Xf)
                s = model(Xf)
                obj = (s[0, target_y] if objective == "score" else
                       -tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits([target_y], s)))
            g = tape.gradient(obj, Xf).numpy()
            Xf = Xf + lr * (g / np.sqrt(np.sum(g ** 2)) if norm else g)
            if stop == "after" and int(np.argmax(s)) == target_y:   # stale scores: one step late
                break
        return X if return_input else Xf.numpy()
    return fn


def test_fooling_reference_and_alternative_pass(ref, capsys):
    checks.check_make_fooling_image(ref["make_fooling_image"])
    checks.check_make_fooling_image(_fooling())
    assert "in 4 normalized steps" in capsys.readouterr().out


@pytest.mark.parametrize("fn, message", [
    (_fooling(return_input=True), "returned the unchanged input"),
    (_fooling(norm=False), "not normalized"),
    (_fooling(stop="never"), "does not stop"),
    (_fooling(objective="loss"), "loss instead of the target score"),
    (_fooling(stop="after"), "one step too many"),
])
def test_fooling_mistakes_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_make_fooling_image(fn)


def test_fooling_cs231n_signature_and_in_place_updates_pass():
    """cs231n's make_fooling_image(X, target_y, model) (learning rate 1 inside, no keyword
    arguments) gets full marks, and so does one that updates its argument X in place: every
    call gets its own copy, and nothing is read from X after the call."""
    def cs231n(X, target_y, model):
        learning_rate = 1
        for _ in range(100):
            with tf.GradientTape() as tape:
                Xt = tf.convert_to_tensor(X)
                tape.watch(Xt)
                scores = model(Xt)
                target_score = scores[0, target_y]
            if int(tf.argmax(scores[0])) == target_y:
                break
            g = tape.gradient(target_score, Xt).numpy()
            X += learning_rate * g / np.linalg.norm(g)            # in place, on the argument
        return X
    checks.check_make_fooling_image(cs231n)


# ------------------------------------------------------------------ update step

def _update(reg=2.0, norm=True, sign=1.0, numpy_inside=False):
    def fn(X, model, target_y, l2_reg, learning_rate):
        with tf.GradientTape() as tape:
            tape.watch(X)
            obj = model(X)[0, target_y] - reg * l2_reg * tf.nn.l2_loss(X)   # l2_loss = sum / 2
        g = tape.gradient(obj, X)
        if numpy_inside:
            g = g.numpy()
        return X + sign * learning_rate * (g / tf.sqrt(tf.reduce_sum(g * g)) if norm else g)
    return fn


def test_update_reference_and_alternative_pass(ref):
    checks.check_class_visualization_update_step(ref["class_visualization_update_step"])
    checks.check_class_visualization_update_step(_update())


@pytest.mark.parametrize("fn, message", [
    (_update(reg=1.0), "halved"),
    (_update(reg=0.0), "penalty is missing"),
    (_update(reg=-2.0), "wrong sign"),
    (_update(norm=False), "not normalized"),
    (_update(sign=-1.0), "downhill"),
    (_update(numpy_inside=True), "fails inside tf.function"),
    (lambda X, m, t, l2, lr: X, "returned X unchanged"),
])
def test_update_mistakes_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_class_visualization_update_step(fn)


# ------------------------------------------------------------------ the loop

def _create(ref, unjitter=True, clamp=True, blur="every"):
    step_fn = ref["class_visualization_update_step"]

    def fn(target_y, model, l2_reg=1e-3, learning_rate=25.0, num_iterations=100,
           blur_every=10, max_jitter=16, image_size=224, seed=0, show_every=None):
        rng = np.random.default_rng(seed)
        X = np.clip(rng.normal(size=(1, image_size, image_size, 3)), PIXEL_MIN, PIXEL_MAX)
        X = tf.constant(X.astype(np.float32))
        for t in range(num_iterations):
            ox, oy = (int(v) for v in rng.integers(-max_jitter, max_jitter + 1, size=2))
            X = tf.roll(X, shift=(oy, ox), axis=(1, 2))              # tf.roll, not np.roll
            X = step_fn(X, model, target_y, l2_reg, learning_rate)
            if unjitter:
                X = tf.roll(X, shift=(-oy, -ox), axis=(1, 2))
            if clamp:
                X = tf.clip_by_value(X, PIXEL_MIN, PIXEL_MAX)
            if blur == "all" or (blur == "every" and (t + 1) % blur_every == 0):
                X = tf.constant(ref["blur_image"](X.numpy(), 0.5))
        return X.numpy()
    return fn


def test_create_reference_and_alternative_pass(ref):
    checks.check_create_class_visualization(ref["create_class_visualization"])
    checks.check_create_class_visualization(_create(ref))


def test_create_is_called_with_cs231n_keyword_arguments_only(ref):
    """cs231n's create_class_visualization(target_y, model, **kwargs) pops l2_reg,
    learning_rate, num_iterations, blur_every, max_jitter, show_every and fails on anything
    else; the check passes only those."""
    def cs231n_kwargs(target_y, model, **kwargs):
        args = {k: kwargs.pop(k) for k in ("l2_reg", "learning_rate", "num_iterations",
                                           "blur_every", "max_jitter", "show_every") if k in kwargs}
        assert not kwargs, f"unexpected keyword arguments {sorted(kwargs)}"
        return ref["create_class_visualization"](target_y, model, **args)
    checks.check_create_class_visualization(cs231n_kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(unjitter=False), "jitter is not undone"),
    (dict(blur="none"), "not blurred every blur_every"),
    (dict(blur="all"), "blurred after every step"),
    (dict(clamp=False), "outside|not clamped after every step"),
])
def test_create_mistakes_named(ref, kwargs, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_create_class_visualization(_create(ref, **kwargs))


# ------------------------------------------------------------------ widget and helpers

def test_widget_render_without_frontend(ref):
    import matplotlib
    matplotlib.use("Agg")
    from helpers.widgets import network_visualization as widgets
    model = checks.tiny_model(seed=3, size=8, classes=5)
    X = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    y = np.array([0, 1])
    fig, info = widgets.render(1, 4, model, X, y, ["a", "b"], ref["compute_saliency_maps"],
                               ref["make_fooling_image"])
    assert info["saliency"].shape == (8, 8) and info["fooling"].shape == (1, 8, 8, 3)
    assert info["predicted"] == 4 and 0 < info["relative_change"] < 1
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match="image index"):
        widgets.render(5, 4, model, X, y, ["a", "b"], ref["compute_saliency_maps"],
                       ref["make_fooling_image"])
    w = widgets.explore_network_visualization(model, X, y, ["a", "b"],
                                              ref["compute_saliency_maps"], ref["make_fooling_image"])
    assert type(w).__name__ == "VBox"
    _, target, _, label = w.children[0].children
    assert target.value == "stingray (6)" and "tarantula (76)" in target.options
    assert [widgets.class_index(t) for t in ("tarantula (76)", "Tarantula", " 76 ", "1000", "cat")] \
        == [76, 76, 76, None, None]
    assert widgets.class_index("crane (517)") == 517              # two classes named 'crane'
    target.value = "no such class"
    w.children[0].children[2].click()
    assert "no class named 'no such class'" in label.value


def test_randomized_copy_changes_only_the_top():
    from helpers import pretrained
    base = pretrained.load_pretrained()
    copy = pretrained.randomized_copy("head_conv", seed=0)
    assert np.array_equal(copy.get_layer("block15_project_conv").get_weights()[0],
                          base.get_layer("block15_project_conv").get_weights()[0])
    assert not np.allclose(copy.get_layer("logits").get_weights()[0],
                           base.get_layer("logits").get_weights()[0])
    assert np.allclose(copy.get_layer("head_bn").get_weights()[3], 1.0)
    with pytest.raises(ValueError, match="no layer named"):
        pretrained.randomized_copy("fc8")


def test_expected_file_is_current(ref):
    """The stored expected results match what the reference notebook computes now."""
    model, X = checks.case_inputs("saliency")
    y = np.array(checks.CASES["saliency"]["y"])
    with np.load(checks.EXPECTED) as data:
        assert checks.norm_error(ref["compute_saliency_maps"](X, y, model), data["saliency"]) < 1e-5


# ------------------------------------------------------------------ quality (demo run)

def test_reference_notebook_quality(demo_run):
    from conftest import autograded_notebook, cell_output_text
    nb = autograded_notebook(demo_run, "reference", "network_visualization")
    text = cell_output_text(nb)
    m = re.search(r"fooled (\d+)% of (\d+) images; mean relative L2 change ([\d.]+)%", text)
    assert m and m.group(1) == "100" and int(m.group(2)) >= 5, text[-2000:]
    assert float(m.group(3)) < 5.0
    corr = re.search(r"randomized from block11_expand_conv\s+to the output: rank correlation "
                     r"with the original map ([+-][\d.]+)", text)
    assert corr and float(corr.group(1)) < 0.5
    for target in (76, 366):
        m = re.search(rf"class {target} \(([^)]*)\): predicted ([^\n]*?) with", text)
        assert m and m.group(1) == m.group(2), f"class {target} visualization not classified as target"


# ------------------------------------------------------------------ graded runs (forging)

def _outside_grading(monkeypatch):
    from helpers import guard
    monkeypatch.setattr(guard, "_STATE", {})
    monkeypatch.delenv("COURSE_GRADING", raising=False)


def test_graded_runs_use_the_notebook_values_outside_grading(monkeypatch):
    from helpers import network_visualization as netvis
    _outside_grading(monkeypatch)
    never = lambda *a, **k: pytest.fail("must not recompute outside grading")  # noqa: E731
    mine = {"logits": 0.4, "block11_expand_conv": 0.2}
    assert netvis.graded_correlations(mine, never) is mine
    assert netvis.graded_fooling([True] * 6, [0.01] * 6, never) == ([True] * 6, [0.01] * 6)
    vis = {76: (None, np.eye(1000)[76])}
    assert netvis.graded_visualizations(vis, never) is vis
    with pytest.raises(AssertionError, match=r"no correlations: run the cell above \(it randomizes"):
        netvis.graded_correlations(None, never)
    with pytest.raises(AssertionError, match="no rel_changes: run the cell above"):
        netvis.graded_fooling([True] * 6, None, never)
    with pytest.raises(AssertionError, match="no visualizations: run the cell above"):
        netvis.graded_visualizations(None, never)


def test_graded_fooling_ignores_forged_results(monkeypatch, capsys):
    """When graded, fooled/rel_changes assigned by hand do not count: the images are fooled
    again from the submission's function and judged by the pretrained network."""
    from helpers import network_visualization as netvis
    monkeypatch.setenv("COURSE_GRADING", "1")
    monkeypatch.setitem(netvis.RECIPES, "fooling", {"images": ("coffee",), "seed": 0})
    calls = []

    def lazy(X, target_y, model):           # returns its input: fools nothing
        calls.append(target_y)
        return np.asarray(X)
    fooled, rel = netvis.graded_fooling([True] * 6, [0.0] * 6, lazy)
    assert fooled == [False] and rel == [0.0] and len(calls) == 1
    out = capsys.readouterr().out
    assert "graded run: the fooling images made here" in out and "fooled 0% of 1 images" in out


def test_graded_runs_are_judged_by_a_fresh_network(monkeypatch):
    """A make_fooling_image / create_class_visualization that rigs the network it can reach
    (a huge logit bias for the target) fools the rigged network, not the graded judge."""
    from helpers import network_visualization as netvis
    from helpers import pretrained
    monkeypatch.setenv("COURSE_GRADING", "1")
    monkeypatch.setitem(netvis.RECIPES, "fooling", {"images": ("coffee",), "seed": 0})
    monkeypatch.setitem(netvis.RECIPES, "class visualization",
                        {"targets": (76,), "num_iterations": 3, "seed": 0})
    cached = pretrained.load_pretrained()
    logits = cached.get_layer("logits")
    saved = logits.bias.numpy().copy()

    def rig(target_y):
        logits.bias.assign(saved + 1e4 * np.eye(1000, dtype=np.float32)[target_y])

    def rigged_fooling(X, target_y, model):
        rig(target_y)
        return np.asarray(X)

    def rigged_visualization(target_y, model, num_iterations=100, seed=0):
        rig(target_y)
        return np.random.default_rng(seed).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    try:
        fooled, _ = netvis.graded_fooling(None, None, rigged_fooling)
        X, _, _ = pretrained.example_images(("coffee",))
        target = int(np.random.default_rng(0).integers(0, 1000, size=1)[0])
        assert int(np.argmax(cached(X, training=False))) == target, "the rig works on the cached model"
        assert fooled == [False]
        vis = netvis.graded_visualizations(None, rigged_visualization)
        assert vis[76][1][76] < 0.5
    finally:
        logits.bias.assign(saved)


def test_graded_visualizations_and_correlations_ignore_forged_results(monkeypatch, capsys):
    from helpers import network_visualization as netvis
    monkeypatch.setenv("COURSE_GRADING", "1")
    monkeypatch.setitem(netvis.RECIPES, "class visualization",
                        {"targets": (76,), "num_iterations": 3, "seed": 0})
    monkeypatch.setitem(netvis.RECIPES, "randomization", {"layers": ("logits",), "seed": 0})
    seen = []

    def noise(target_y, model, num_iterations=100, seed=0):
        seen.append((target_y, num_iterations, seed))
        return np.random.default_rng(seed).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    forged = {76: (None, np.eye(1000)[76]), 366: (None, np.eye(1000)[366])}
    vis = netvis.graded_visualizations(forged, noise)
    assert seen == [(76, 3, 0)] and sorted(vis) == [76]
    assert vis[76][0].shape == (1, 64, 64, 3) and abs(vis[76][1].sum() - 1) < 1e-4

    def edges(X, y, model):                  # ignores the model: fails the randomization test
        return np.abs(np.asarray(X)).mean(axis=-1)
    corr = netvis.graded_correlations({"logits": 0.0, "block11_expand_conv": 0.0}, edges)
    assert corr == {"logits": pytest.approx(1.0)}

    def random_maps(X, y, model):            # changes with every call: "passes" by itself
        return np.random.default_rng().random(np.shape(X)[:3])
    with pytest.raises(AssertionError, match="differ from call to call"):
        netvis.graded_correlations(None, random_maps)
    out = capsys.readouterr().out
    assert "graded run: the randomization test run here" in out
    assert "class 76 (tarantula): predicted" in out


def test_given_functions():
    from helpers import network_visualization as netvis
    X = np.arange(2 * 3 * 3, dtype=np.float32).reshape(1, 2, 3, 3)
    assert np.array_equal(netvis.jitter(X, 1, 0)[0, :, 0], X[0, :, 2])
    assert np.array_equal(netvis.jitter(netvis.jitter(X, 2, 1), -2, -1), X)
    assert np.allclose(netvis.blur_image(np.ones((1, 5, 5, 3))), 1.0)
    a = np.random.default_rng(0).random((2, 4, 4))
    assert netvis.rank_correlation(a, 2 * a) == pytest.approx(1.0)
    counter = netvis.CountingModel(lambda x: x)
    counter(1), counter(2)
    assert counter.calls == 2
