"""upsampling_fcn: checkers (correct variants pass, mistakes are named), data, widget, quality."""
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.checks import CheckFailed
from helpers.checks import upsampling_fcn as checks
from helpers.data import segmentation
from helpers.widgets import upsampling_fcn as widgets
from tests.conftest import autograded_notebook, cell_output_text
from tests.in_kernel import InKernel

L = keras.layers


# ------------------------------------------------------------------ upsample

def up_ref(x, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    return L.Conv2DTranspose(x.shape[-1], (2, 2), strides=(2, 2), kernel_initializer=kernel_initializer,
                             bias_initializer=bias_initializer)(x)


def up_functional(x, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    inp = keras.Input(shape=(None, None, x.shape[-1]))
    out = L.Conv2DTranspose(x.shape[-1], 2, 2, padding="same", kernel_initializer=kernel_initializer,
                            bias_initializer=bias_initializer)(inp)
    return keras.Model(inp, out)(x)


def up_tf_nn(x, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    """tf.nn.conv2d_transpose with the layer's weights drawn by hand, in float64."""
    n, h, w, c = x.shape
    k = tf.cast(keras.initializers.get(kernel_initializer)((2, 2, c, c)), tf.float64)
    b = tf.cast(keras.initializers.get(bias_initializer)((c,)), tf.float64)
    return tf.nn.conv2d_transpose(tf.cast(x, tf.float64), k, (n, 2 * h, 2 * w, c), 2) + b


@pytest.mark.parametrize("fn", [up_ref, up_functional, up_tf_nn])
def test_upsample_correct_styles_pass(fn, capsys):
    checks.check_upsample(fn)
    checks.check_upsample(fn, shapes=((3, 1, 1, 5), (1, 2, 7, 1)), seed=4)     # the hidden cases
    assert capsys.readouterr().out.count("✔ upsample") == 2


def _up(**kw):
    def fn(x, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        args = dict(filters=x.shape[-1], kernel_size=2, strides=2, kernel_initializer=kernel_initializer,
                    bias_initializer=bias_initializer)
        return L.Conv2DTranspose(**{**args, **kw})(x)
    return fn


@pytest.mark.parametrize("fn, message", [
    (lambda x, k="glorot_uniform", b="zeros": L.UpSampling2D()(x), "UpSampling2D: it repeats pixels"),
    (_up(strides=1), "use strides=\\(2, 2\\)"),
    (_up(filters=8), "Keep the channels"),
    (_up(kernel_size=3), "use kernel_size=\\(2, 2\\)"),
    (_up(kernel_size=3, padding="same"), "values are off"),
    (_up(activation="relu"), "an activation is applied"),
    (_up(use_bias=False), "no bias.*use_bias=True"),        # passed the old checker: the bias was 0
    (_up(bias_initializer="zeros"), "bias_initializer=bias_initializer"),
])
def test_upsample_mistakes_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_upsample(fn)


def test_upsample_that_returns_the_reference_earns_nothing():
    def lazy(x, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        return checks.upsample_reference(x, kernel_initializer, bias_initializer)
    with pytest.raises(CheckFailed, match="upsample_reference, which computes the upsampled output"):
        checks.check_upsample(lazy)


def test_upsample_gets_data_and_fresh_copies():
    seen = []

    def spoiler(x, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        seen.append((type(x), type(kernel_initializer), type(bias_initializer)))
        out = up_ref(x, dict(kernel_initializer), dict(bias_initializer))
        x[...] = 0
        kernel_initializer["config"]["seed"] = 99
        return out
    checks.check_upsample(spoiler)
    assert set(seen) == {(np.ndarray, dict, dict)}


# ------------------------------------------------------------------ output size

def size_ref(n, k, s, p):
    return n * s if p == "same" else n * s + max(k - s, 0)


def size_alt(n, k, s, p):
    """Correct, written as (n - 1) * s + k with the small-kernel case handled."""
    if p == "valid":
        return (n - 1) * s + max(k, s)
    return n * s


def test_size_reference_and_alternative_pass():
    checks.check_transposed_output_size(size_ref)
    checks.check_transposed_output_size(lambda *a: np.int64(size_alt(*a)))


@pytest.mark.parametrize("fn, message", [
    (lambda n, k, s, p: (n - 1) * s + k, "only when kernel >= stride|whatever the kernel"),
    (lambda n, k, s, p: (n - 1) * s + k if p == "same" else size_ref(n, k, s, p), "whatever the kernel"),
    (lambda n, k, s, p: (n - 1) * s + k if p == "valid" else n * s, "only when kernel >= stride"),
    (lambda n, k, s, p: n * s, "overhang adds max\\(kernel - stride, 0\\)"),
])
def test_size_mistakes_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_transposed_output_size(fn)


def _size_via_widget(n, k, s, p):
    return widgets.output_shapes(n, k, s, p)["Conv2DTranspose"]


def _size_via_keras(n, k, s, p):
    return int(keras.layers.Conv2DTranspose(1, k, strides=s, padding=p).compute_output_shape((1, n, n, 1))[1])


def _size_via_checker(n, k, s, p):
    return checks.keras_transposed_size(n, k, s, p)


@pytest.mark.parametrize("fn, called", [(_size_via_widget, "widgets.output_shapes"),
                                        (_size_via_keras, "keras.layers.Conv2DTranspose"),
                                        (_size_via_checker, "checks.keras_transposed_size")])
def test_size_computed_by_keras_or_the_course_earns_nothing(fn, called):
    """Each of these passed the old checker: they return Keras' own answer."""
    with pytest.raises(CheckFailed, match=f"(?s)asks for the output size by arithmetic.*called {called}"):
        checks.check_transposed_output_size(fn)


def test_keras_formula_example_from_the_issue():
    assert checks.keras_transposed_size(4, 3, 2, "valid") == 9
    assert checks.keras_transposed_size(4, 1, 2, "valid") == 8


# ------------------------------------------------------------------ gradient

def grad_tape(dy, w, x_shape, stride, padding):
    x = tf.zeros(x_shape, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.nn.conv2d(x, w, stride, padding) * dy)
    return tape.gradient(loss, x)


def grad_variable(dy, w, x_shape, stride, padding):
    """Correct alternative: a Variable and output_gradients instead of a weighted sum."""
    x = tf.Variable(np.random.default_rng(0).normal(size=x_shape))
    with tf.GradientTape() as tape:
        y = tf.nn.conv2d(x, w, stride, padding)
    return tape.gradient(y, x, output_gradients=tf.constant(dy)).numpy()


def test_gradient_reference_and_alternative_pass():
    checks.check_conv_input_gradient(grad_tape)
    checks.check_conv_input_gradient(grad_variable)


def _grad_via_reference(dy, w, x_shape, stride, padding):
    return checks.conv_transpose_reference(dy, w, x_shape, stride, padding)


_REF = checks.conv_transpose_reference                 # the reference under another name


def _grad_via_alias(dy, w, x_shape, stride, padding):
    return _REF(dy, w, x_shape, stride, padding)


def _grad_via_conv2d_transpose(dy, w, x_shape, stride, padding):
    return tf.nn.conv2d_transpose(dy, w, x_shape, stride, padding)


@pytest.mark.parametrize("fn, message", [
    (_grad_via_reference, "called checks.conv_transpose_reference, which computes the gradient"),
    (_grad_via_alias, "called _REF, which computes the gradient"),
    (_grad_via_conv2d_transpose, "called tf.nn.conv2d_transpose: that is the answer this part derives"),
])
def test_gradient_without_the_tape_earns_nothing(fn, message):
    """Each of these passed the old checker."""
    with pytest.raises(CheckFailed, match=message):
        checks.check_conv_input_gradient(fn)


def test_gradient_mistakes_are_named():
    def no_watch(dy, w, x_shape, stride, padding):
        x = tf.zeros(x_shape, tf.float64)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.nn.conv2d(x, w, stride, padding) * dy)
        return tape.gradient(loss, x)

    def no_dy(dy, w, x_shape, stride, padding):
        x = tf.zeros(x_shape, tf.float64)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.nn.conv2d(x, w, stride, padding))
        return tape.gradient(loss, x)
    with pytest.raises(CheckFailed, match="tape.watch"):
        checks.check_conv_input_gradient(no_watch)
    with pytest.raises(CheckFailed, match="differentiated sum\\(y\\), not sum\\(y \\* dy\\)"):
        checks.check_conv_input_gradient(no_dy)


# ------------------------------------------------------------------ mean IoU

def iou_loops(y_true, y_pred, k):
    ious = [np.sum((y_true == c) & (y_pred == c)) / np.sum((y_true == c) | (y_pred == c))
            for c in range(k) if np.any((y_true == c) | (y_pred == c))]
    return float(np.mean(ious))


def iou_confusion(y_true, y_pred, k):
    cm = np.bincount(k * y_true.ravel() + y_pred.ravel(), minlength=k * k).reshape(k, k)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    return np.mean(inter[union > 0] / union[union > 0])      # a NumPy scalar


def iou_tf_confusion(y_true, y_pred, k):
    """Correct with TensorFlow building blocks (a confusion matrix), not its IoU metric."""
    cm = tf.math.confusion_matrix(tf.reshape(y_true, [-1]), tf.reshape(y_pred, [-1]), k, dtype=tf.float64)
    inter = tf.linalg.diag_part(cm)
    union = tf.reduce_sum(cm, 0) + tf.reduce_sum(cm, 1) - inter
    return tf.reduce_mean(tf.boolean_mask(inter / tf.maximum(union, 1), union > 0))


def test_iou_reference_and_alternative_pass():
    checks.check_mean_iou(iou_loops)
    checks.check_mean_iou(iou_confusion)
    checks.check_mean_iou(iou_tf_confusion)


def _iou_via_keras(y_true, y_pred, k):
    m = keras.metrics.MeanIoU(k)
    m.update_state(y_true.ravel(), y_pred.ravel())
    return float(m.result())


def _iou_via_checker(y_true, y_pred, k):
    return checks.reference_mean_iou(y_true, y_pred, k)


@pytest.mark.parametrize("fn, message", [(_iou_via_keras, "called keras.metrics.MeanIoU"),
                                         (_iou_via_checker, "called checks.reference_mean_iou")])
def test_iou_computed_by_keras_or_the_course_earns_nothing(fn, message):
    """Both passed the old checker."""
    with pytest.raises(CheckFailed, match=message):
        checks.check_mean_iou(fn)


def test_iou_mistakes_are_named():
    def absent_as_zero(y_true, y_pred, k):
        return np.mean([np.sum((y_true == c) & (y_pred == c)) / max(np.sum((y_true == c) | (y_pred == c)), 1)
                        for c in range(k)])
    with pytest.raises(CheckFailed, match="counted as IoU 0"):
        checks.check_mean_iou(absent_as_zero)
    with pytest.raises(CheckFailed, match="pixel accuracy"):
        checks.check_mean_iou(lambda t, p, k: np.mean(t == p))
    with pytest.raises(CheckFailed, match="one number"):
        checks.check_mean_iou(lambda t, p, k: np.zeros(k))


# ------------------------------------------------------------------ the FCN

def conv_block(x, f):
    return L.ReLU()(L.BatchNormalization()(L.Conv2D(f, 3, padding="same", use_bias=False)(x)))


def fcn(num_classes, skips=True, softmax=False, stop_at=None, dense=False, n_adds=2):
    inp = keras.Input((None, None, 3)) if not dense else keras.Input((64, 64, 3))
    p1 = L.MaxPooling2D()(conv_block(inp, 8))
    p2 = L.MaxPooling2D()(conv_block(p1, 8))
    p3 = L.MaxPooling2D()(conv_block(p2, 8))
    s = L.Conv2D(num_classes, 1)(p3)
    ups = 0
    for feat in (p2, p1, None):
        if stop_at is not None and ups == stop_at:
            break
        s = L.Conv2DTranspose(num_classes, 4, 2, padding="same")(s)
        ups += 1
        if skips and feat is not None and n_adds > 0:
            s = L.Add()([s, L.Conv2D(num_classes, 1)(feat)])
            n_adds -= 1
    if dense:
        s = L.Reshape((64, 64, num_classes))(L.Dense(64 * 64 * num_classes)(L.Flatten()(
            L.Conv2D(1, 1)(s))))
    if softmax:
        s = L.Softmax()(s)
    return keras.Model(inp, s)


def fcn_subclassed(num_classes, skips=True):
    """Correct alternative: a subclassed model with concatenate-free adds via `+`."""
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.enc = [L.Conv2D(8, 3, padding="same", activation="relu") for _ in range(3)]
            self.pool = L.MaxPooling2D()
            self.score = L.Conv2D(num_classes, 1)
            self.skip = [L.Conv2D(num_classes, 1) for _ in range(2)]
            self.up = [L.Conv2DTranspose(num_classes, 2, 2) for _ in range(3)]
            self.adds = [L.Add(), L.Add()]

        def call(self, x):
            p1 = self.pool(self.enc[0](x))
            p2 = self.pool(self.enc[1](p1))
            s = self.up[0](self.score(self.pool(self.enc[2](p2))))
            if skips:
                s = self.adds[0]([s, self.skip[0](p2)])
            s = self.up[1](s)
            if skips:
                s = self.adds[1]([s, self.skip[1](p1)])
            return self.up[2](s)
    return Net()


def test_fcn_reference_and_subclassed_pass(capsys):
    checks.check_build_fcn(fcn)
    checks.check_build_fcn(fcn_subclassed)
    assert "✔ build_fcn" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, message", [
    (dict(softmax=True), "return logits"),
    (dict(stop_at=2), "must undo all three poolings"),
    (dict(dense=True), "any size divisible by 8"),
    (dict(n_adds=1), "1 Add layer"),
])
def test_fcn_mistakes_are_named(kwargs, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_build_fcn(lambda k, skips=True: fcn(k, skips, **kwargs))


def test_fcn_skips_ignored_is_named():
    with pytest.raises(CheckFailed, match="the two 1x1 skip convolutions should be gone"):
        checks.check_build_fcn(lambda k, skips=True: fcn(k, True))


# ------------------------------------------------------------------ data and widget

def test_segmentation_set_is_deterministic_and_well_formed():
    a = segmentation.load_shapes(num_train=20, num_val=10, seed=3)
    b = segmentation.load_shapes(num_train=20, num_val=10, seed=3)
    assert a["x_train"].shape == (20, 64, 64, 3) and a["x_train"].dtype == np.float32
    assert a["y_val"].shape == (10, 64, 64) and a["y_val"].dtype == np.uint8
    assert np.array_equal(a["x_train"], b["x_train"]) and np.array_equal(a["y_val"], b["y_val"])
    assert 0 <= a["x_train"].min() and a["x_train"].max() <= 1
    assert set(np.unique(a["y_train"])) <= set(range(segmentation.NUM_CLASSES))
    assert all(np.any(a["y_train"] == c) for c in range(segmentation.NUM_CLASSES))
    c = segmentation.load_shapes(num_train=20, num_val=0, seed=4)
    assert not np.array_equal(a["x_train"], c["x_train"])
    assert not np.array_equal(a["x_train"][:10], a["x_val"])     # splits use different streams


def test_segmentation_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="size must be at least 32"):
        segmentation.load_shapes(size=8)
    with pytest.raises(ValueError, match="counts must be >= 0"):
        segmentation.load_shapes(num_train=-1)


def test_widget_function_matches_keras_and_the_formulas():
    assert widgets.output_shapes(4, 3, 2, "valid") == {"Conv2D": 1, "Conv2DTranspose": 9}
    assert widgets.output_shapes(4, 3, 2, "same") == {"Conv2D": 2, "Conv2DTranspose": 8}
    assert widgets.output_shapes(2, 5, 1, "valid")["Conv2D"] is None
    for n, k, s in [(7, 3, 2), (5, 1, 3), (9, 4, 4)]:
        got = widgets.output_shapes(n, k, s, "valid")
        assert got["Conv2D"] == (n - k) // s + 1 and got["Conv2DTranspose"] == size_ref(n, k, s, "valid")
    assert "Conv2DTranspose -> 9x9" in widgets.describe(4, 3, 2, "valid")
    assert "kernel larger than input" in widgets.describe(2, 5, 1, "valid")
    with pytest.raises(ValueError, match="padding must be"):
        widgets.output_shapes(4, 3, 2, "full")
    with pytest.raises(ValueError, match="stride must be a positive int"):
        widgets.output_shapes(4, 3, 0, "same")


def test_widget_builds_and_updates():
    ui = widgets.explore_output_shapes()
    label = ui.children[-1]
    assert "9x9" in label.value
    ui.children[3].value = "same"
    assert "Conv2DTranspose -&gt; 8x8" in label.value or "Conv2DTranspose -> 8x8" in label.value


# ------------------------------------------------------------------ quality (from the demo run)

def test_reference_fcn_reaches_the_iou_target_and_skips_help(demo_run):
    """The executed reference notebook printed both IoUs; the target holds on a fixed seed."""
    nb = autograded_notebook(demo_run, "reference", "upsampling_fcn")
    text = cell_output_text(nb, "upsampling_fcn_quality")
    m = re.search(r"with skips ([0-9.]+), without ([0-9.]+)", text)
    assert m, f"the quality cell printed no IoUs: {text[-300:]!r}"
    with_skips, without = float(m.group(1)), float(m.group(2))
    assert with_skips >= 0.75, f"mean IoU with skips {with_skips} < 0.75"
    assert with_skips - without >= 0.1, f"skips add only {with_skips - without:.3f} IoU"
    # the reference replays as itself: the judge grades the stored full runs, trains nothing
    assert text.count("graded replay: your network trains exactly as the reference's") == 2, text[-600:]


# ------------------------------------------------------------------ graded runs (helpers/fcn_training.py)

class Oracle:
    """A forged 'model': looks each image up and returns one-hot logits of its true mask."""

    def __init__(self, x, y, k=segmentation.NUM_CLASSES):
        self.masks = {xi.tobytes(): np.eye(k, dtype=np.float32)[yi] for xi, yi in zip(x, y)}

    def __call__(self, x, training=False):
        return np.stack([self.masks[xi.tobytes()] for xi in np.asarray(x)])


@pytest.fixture
def tiny_recipe(monkeypatch):
    """A recipe of seconds: 64 training images, one epoch, 16 validation images."""
    from helpers import fcn_training
    monkeypatch.setitem(fcn_training.RECIPE, "num_train", 64)
    monkeypatch.setitem(fcn_training.RECIPE, "epochs", 1)
    monkeypatch.setitem(fcn_training.VALIDATION, "num_val", 16)
    monkeypatch.setitem(fcn_training.FRESH, "num_val", 8)
    return fcn_training


def forged_results(fcn_training):
    x, y = fcn_training.validation_data()
    return {s: {"model": Oracle(x, y), "iou": 1.0} for s in (True, False)}


def test_validation_data_is_the_notebooks_split_and_the_oracle_scores_one(tiny_recipe):
    x, y = tiny_recipe.validation_data()
    d = segmentation.load_shapes(num_train=3, num_val=16, seed=0)
    assert x.shape == (16, 64, 64, 3) and np.array_equal(x, d["x_val"]) and np.array_equal(y, d["y_val"])
    xf, _ = tiny_recipe.validation_data(fresh=True)
    assert xf.shape == (8, 64, 64, 3) and not np.array_equal(xf, x[:8])
    xt, yt = tiny_recipe.training_data()
    assert xt.shape == (64, 64, 64, 3) and np.array_equal(yt[:3], d["y_train"])     # the first of seed 0's
    ious = tiny_recipe.validation_ious({s: r["model"] for s, r in forged_results(tiny_recipe).items()})
    assert ious == {True: 1.0, False: 1.0}


def test_graded_models_are_the_students_run_outside_grading(monkeypatch, tiny_recipe):
    from helpers import guard
    monkeypatch.setattr(guard, "_STATE", {})
    monkeypatch.delenv("COURSE_GRADING", raising=False)
    mine = forged_results(tiny_recipe)
    models = tiny_recipe.graded_models(mine, fcn)
    assert models[True] is mine[True]["model"] and models[False] is mine[False]["model"]
    for missing in (None, {}, {True: mine[True]}, {True: {"iou": 0.9}, False: mine[False]}):
        with pytest.raises(AssertionError, match="no trained FCNs in `results`: run the training cell above"):
            tiny_recipe.graded_models(missing, fcn)


def test_graded_models_train_again_and_ignore_forged_results(monkeypatch, capsys, tiny_recipe):
    """When graded, models put into `results` by hand do not count: both networks are trained
    again from the build_fcn passed (one epoch on 64 images here: far from the targets)."""
    monkeypatch.setenv("COURSE_GRADING", "1")
    forged = forged_results(tiny_recipe)
    built = []

    def my_fcn(k, skips=True):
        built.append(skips)
        return fcn(k, skips)
    models = tiny_recipe.graded_models(forged, my_fcn)
    assert built == [True, False]
    assert all(isinstance(models[s], keras.Model) and models[s] is not forged[s]["model"] for s in (True, False))
    ious = tiny_recipe.validation_ious(models)
    assert all(0 <= ious[s] < 0.75 for s in (True, False)), ious
    out = capsys.readouterr().out
    assert "graded run: both FCNs trained again from your build_fcn (1 epochs of 64 images, batch 32, seed 0)" in out

    def broken(k, skips=True):
        raise NotImplementedError()
    with pytest.raises(NotImplementedError):
        tiny_recipe.graded_models(forged, broken)
    with pytest.raises(AssertionError, match="returned Oracle, not a keras.Model"):
        tiny_recipe.graded_models(forged, lambda k, skips=True: forged[skips]["model"])


# ------------------------------------------------------------------ under the grader's judge

def test_fcn_check_reads_a_model_that_stays_in_the_kernel(capsys):
    checks.check_build_fcn(InKernel(fcn))
    assert "✔ build_fcn" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="1 Add layer"):
        checks.check_build_fcn(InKernel(lambda k, skips=True: fcn(k, skips, n_adds=1)))
    with pytest.raises(CheckFailed, match="returned Oracle, not a keras.Model"):
        checks.check_build_fcn(InKernel(lambda k, skips=True: Oracle(np.zeros((0, 64, 64, 3)), [])))


@pytest.mark.parametrize("facts", [None, [], {"keras_model": "yes", "type": "M", "layers": [], "params": 1},
                                   {"keras_model": True, "type": "M", "layers": [3], "params": 1},
                                   {"keras_model": True, "type": "M", "layers": []}])
def test_fcn_check_refuses_facts_that_are_not_facts(facts):
    model = fcn(4, True)
    forged = InKernel(lambda k, skips=True: InKernel(model, forged={"model_facts": facts or "nonsense"}))
    with pytest.raises(CheckFailed, match="could not read your model's layers"):
        checks.check_build_fcn(forged)


def test_masks_from_the_kernel_are_checked_for_shape_and_type():
    model = fcn(4, True)
    x = np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype("float32")
    here = checks.predict_masks(model, x)
    assert here.shape == (3, 32, 32) and here.dtype == np.uint8
    assert np.array_equal(checks.predict_masks(InKernel(model), x), here)
    for bad in (here[:2], here.astype(float), -np.ones_like(here, int), "masks"):
        with pytest.raises(AssertionError, match="masks for 3 images came back as"):
            checks.predict_masks(InKernel(model, forged={"predict_masks": bad}), x)


def test_graded_run_under_the_judge_trains_in_the_kernel_and_scores_fresh_images(
        monkeypatch, capsys, tiny_recipe):
    """Through the judge's proxy, a network that does not replay as the reference's (this one
    has 8 channels) is trained where build_fcn lives (train_graded) and only masks come back;
    the fresh images' seed is new on every run. The notebook's own graded_models leaves a
    proxy to the judge's hidden test (helpers/grading/fcn_judge.py)."""
    from helpers.grading.fcn_judge import judged_models
    monkeypatch.setenv("COURSE_GRADING", "1")
    assert tiny_recipe.graded_models(None, InKernel(fcn)) is None
    models = judged_models(InKernel(fcn))
    assert all(isinstance(models[s], InKernel) for s in (True, False))
    assert capsys.readouterr().out.count("other weight shapes: another architecture") == 2
    ious = tiny_recipe.validation_ious(models)
    assert all(0 <= ious[s] < 0.75 for s in (True, False)), ious
    seeds = set()
    for _ in range(2):
        tiny_recipe.validation_ious(models, fresh=True)
        seeds |= set(re.findall(r"fresh images: 8 of seed (\d+) \(a draw the grader makes as the test runs\)",
                                capsys.readouterr().out))
    assert len(seeds) == 2 and all(int(s) >= 1000 for s in seeds)
    oracle = {s: InKernel(Oracle(*tiny_recipe.validation_data())) for s in (True, False)}
    assert tiny_recipe.validation_ious(oracle) == {True: 1.0, False: 1.0}
    with pytest.raises(KeyError):         # an answer key for the known images knows no fresh ones
        tiny_recipe.validation_ious(oracle, fresh=True)
