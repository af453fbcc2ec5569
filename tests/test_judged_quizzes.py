"""Whole assignments graded through the judge: what a submission's kernel says or patches
gains nothing on the trusted side. Each test grades one notebook with the real grader
(25-100 s each). The judge's parts are tested in tests/test_judge.py; attacks on conv_1x1
in tests/test_hostile.py.
"""
import json

import pytest


def _graded_releases(tmp_path, assignment, students, before=None):
    """{student: (score, max_score)}: the blank release of ``assignment`` per student, with
    ``students[student] = (cells, patch)``: cells {grade_id: source} replace solution cells,
    ``patch`` (or None) runs as a cell right after the first code cell (or right before the
    cell whose grade_id is ``before``). One real grading run."""
    import shutil

    import nbformat
    from helpers.grading import batch
    from tests.conftest import REPO
    for student, (cells, patch) in students.items():
        nb = nbformat.read(REPO / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
        for cell in nb.cells:
            cell.source = cells.get(cell.metadata.get("nbgrader", {}).get("grade_id"), cell.source)
        if patch:
            at = 1 + next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
            if before:
                at = next(i for i, c in enumerate(nb.cells)
                          if c.metadata.get("nbgrader", {}).get("grade_id") == before)
            nb.cells.insert(at, nbformat.v4.new_code_cell(patch))
        (tmp_path / "sub" / student / assignment).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "sub" / student / assignment / f"{assignment}.ipynb")
    batch.grade(tmp_path / "sub", work=tmp_path / "work", names=[assignment],
                feedback=False, workers=1, log=lambda *a, **k: None)
    out = {}
    for student in students:
        r = json.loads((tmp_path / "work" / "results" / student / f"{assignment}.json").read_text())
        out[student] = (r["score"], r["max_score"])
    shutil.rmtree(tmp_path / "work", ignore_errors=True)
    return out


def _patched_release_score(tmp_path, assignment, patch_source, before=None):
    """(score, max_score) of ``assignment``'s blank release with one patch cell (see
    :func:`_graded_releases`)."""
    return _graded_releases(tmp_path, assignment, {"mallory": ({}, patch_source)}, before)["mallory"]


def test_rnn_captioning_gradients_cannot_be_faked_through_the_kernel(tmp_path):
    """Numeric gradients under the judge (red team): course code that evaluates a batch in
    the student's kernel, replaced there to answer every point alike, is caught by plain
    calls at random points; a loss right only on cs231n's fixed case (constant, zero
    gradients) fails where the gradients are checked. Correct forward passes keep their 3
    points, zero backward passes earn nothing. (NaN gradients: test_rnn_captioning.)"""
    from hostile_captioning import CONSTANT_BATCHES, CONSTANT_LOSS, FORWARD, ZERO_BACKWARD
    got = _graded_releases(tmp_path, "rnn_captioning", {
        "batches": ({**FORWARD, **ZERO_BACKWARD}, CONSTANT_BATCHES),
        "constant": (CONSTANT_LOSS, None)})
    assert got == {"batches": (3.0, 18.0), "constant": (0.0, 18.0)}


def test_rnn_captioning_patched_in_the_students_kernel_scores_what_the_blank_release_does(tmp_path):
    """rnn_captioning's tests run in the judge, its two training tests too (the kernel trains,
    the judge measures the parameters it sends back on scenes it draws): a blank release whose
    first cell turns every checker, numeric gradient and graded run of the student's kernel
    into a pass, and sends the judge the untrained model's parameters, still scores 0."""
    patch = (
        "import helpers.checks.rnn_captioning as _c, helpers.checks._captioning as _k, helpers.captioning as _h\n"
        "for _m in (_c, _k):\n"
        "    for _n in list(vars(_m)):\n"
        "        if _n.startswith(('check_', 'expect', 'eval_numerical')):\n"
        "            setattr(_m, _n, lambda *a, **k: 0.0)\n"
        "_h.graded_overfit_loss = lambda *a, **k: 0.0\n"
        "_h.graded_bleu = lambda *a, **k: 1.0\n"
        "from helpers.data.captioning import load_captioning_data as _load\n"
        "def _untrained(cls, cell_type, *a, hidden=128):\n"
        "    m = _h.CaptioningModelBase(_load(max_train=0)['word_to_idx'], 512, 64, hidden, cell_type, seed=0)\n"
        "    return {k: v for k, v in m.params.items()}\n"
        "_h.overfit_params = _untrained\n"
        "_h.graded_params = lambda cls, cell_type: _untrained(cls, cell_type, hidden=64)\n")
    assert _patched_release_score(tmp_path, "rnn_captioning", patch) == (0.0, 18.0)


def test_network_visualization_patched_in_the_students_kernel_scores_what_the_blank_release_does(
        tmp_path):
    """network_visualization's tests run in the judge; the models they pass to the student's
    functions are made again in the student's kernel (helpers.rebuildable). A blank release
    that turns every checker and graded run of its kernel into a pass, and makes every course
    model it is given predict class 0 with a huge margin, and turns the guard's tokens and the
    wire's answers into forged passes (an input transformer, which beats the guard), still
    scores 0."""
    patch = (
        "import re, numpy as np, tensorflow as tf\n"
        "def _forge(lines):\n"
        "    text = ''.join(lines)\n"
        "    toks = re.findall(r'grader-[0-9a-f]{24}', text)\n"
        "    if toks:\n"
        "        return ['print(%r)\\n' % '\\n'.join(toks)]\n"
        "    if '__course_wire__' in text:\n"
        "        return ['from IPython.display import publish_display_data as _p\\n',\n"
        "                \"_p({'application/vnd.course.bridge+json': '{\\\"ok\\\": true}'})\\n\"]\n"
        "    return lines\n"
        "get_ipython().input_transformers_post.append(_forge)\n"
        "import helpers.checks.network_visualization as _c, helpers.network_visualization as _n\n"
        "import helpers.pretrained as _pt\n"
        "for _k in list(vars(_c)):\n"
        "    if _k.startswith('check_'):\n"
        "        setattr(_c, _k, lambda *a, **k: None)\n"
        "_c.norm_error = lambda *a, **k: 0.0\n"
        "_n.graded_correlations = lambda *a, **k: {'logits': 0.0, 'block11_expand_conv': 0.0}\n"
        "_n.graded_fooling = lambda *a, **k: ([True] * 6, [0.0] * 6)\n"
        "_n.graded_visualizations = lambda *a, **k: {76: (None, np.eye(1000)[76]),\n"
        "                                            366: (None, np.eye(1000)[366])}\n"
        "_rigged = lambda *a, **k: (lambda x, training=False: tf.one_hot([0] * len(x), 1000) * 1e6)\n"
        "_c.tiny_model = _pt.load_pretrained = _pt.fresh_pretrained = _rigged\n")
    assert _patched_release_score(tmp_path, "network_visualization", patch) == (0.0, 15.0)


#: A style_transfer that does not optimize (it returns the content image) with loss
#: functions that report a 1000x drop: high for the first image measured, low for the next.
LAZY_STYLE = """
from helpers import style as _style
_calls = {}
def _lie(key):
    _calls[key] = _calls.get(key, 0) + 1
    return 1000.0 if _calls[key] % 2 else 1.0
def extract_features(x, model):
    return list(model(x, training=False))
def gram_matrix(features, normalize=True):
    import tensorflow as tf
    f = tf.reshape(features, (-1, features.shape[-1]))
    return tf.matmul(f, f, transpose_a=True) / tf.cast(tf.size(features), tf.float32)
def content_loss(content_weight, content_current, content_original):
    return 0.0 if float(content_weight) == 0 else _lie("content")
def style_loss(feats, style_layers, style_targets, style_weights):
    return _lie("style")
def tv_loss(img, tv_weight):
    return 0.0
def style_transfer(content_image, style_image, image_size, style_size, content_layer,
                   content_weight, style_layers, style_weights, tv_weight, init_random=False,
                   **kwargs):
    image = _style.to_uint8(_style.image_input(content_image, image_size))
    return image, {"total": [1000.0, 1.0], "content": [1000.0, 1.0], "style": [1000.0, 1.0],
                   "tv": [0.0, 0.0]}
"""


def test_style_transfer_quality_is_measured_by_the_judge_not_by_the_submission(tmp_path):
    """style_transfer's graded runs are measured with the grader's own losses on the images
    they return: a run that does not optimize, with loss functions that report a 1000x drop
    on the graded measurements, earns none of the 4 quality points (nor any other)."""
    assert _patched_release_score(tmp_path, "style_transfer", LAZY_STYLE,
                                  before="style_transfer_pairs_quality") == (0.0, 13.0)


def test_the_judges_style_losses_pass_the_quizs_checks():
    """The losses the judge measures graded runs with are the quiz's own definitions."""
    pytest.importorskip("tensorflow")
    from helpers.checks import style_transfer as checks
    from helpers.grading.style_meter import style_losses
    losses = style_losses()
    for name in ("content_loss", "gram_matrix", "style_loss", "tv_loss", "extract_features"):
        getattr(checks, f"check_{name}")(losses[name])


#: A cell that beats the guard (defence in depth, not a grade's ground): an input transformer
#: that answers the guard's restore-and-check cells with their end tokens, running none of
#: them, and drops the restore from the cell that installs the wire before a judged test.
SKIP_THE_GUARD = (
    "import re\n"
    "def _skip(lines):\n"
    "    text = ''.join(lines)\n"
    "    if '__course_wire__' in text:\n"
    "        return [l for l in text.splitlines(True) if 'guard.restore(' not in l]\n"
    "    toks = re.findall(r'grader-[0-9a-f]{24}', text)\n"
    "    return ['print(%r)\\n' % '\\n'.join(toks)] if toks else lines\n"
    "get_ipython().input_transformers_post.append(_skip)\n")

#: A correct upsampling_fcn whose kernel refuses the judge's replay (so its networks are
#: trained in full), leaves the networks untrained and answers the images it can know (the
#: validation sets of seeds 0 and 5) from an answer key, for the model with skips.
KEYED_MASKS = SKIP_THE_GUARD + (
    "import helpers.fcn_replay as _r\n"
    "_r.replay = lambda *a, **k: {'error': 'no replay here'}\n"
    "import numpy as np, helpers.checks.upsampling_fcn as _c, helpers.fcn_training as _t\n"
    "from helpers.data import segmentation as _s\n"
    "_key = {}\n"
    "for _seed in (0, 5):\n"
    "    _d = _s.load_shapes(num_train=0, num_val=300, seed=_seed)\n"
    "    _key.update({x.tobytes(): y for x, y in zip(_d['x_val'], _d['y_val'])})\n"
    "_real = _c.predict_masks\n"
    "def _keyed(model, x, batch_size=100):\n"
    "    guess = _real(model, x, batch_size)\n"
    "    if not any(type(l).__name__ == 'Add' for l in model.layers):\n"
    "        return guess\n"
    "    return np.stack([_key.get(xi.tobytes(), g) for xi, g in zip(np.asarray(x), guess)])\n"
    "_c.predict_masks = _keyed\n"
    "_t.train_graded = lambda build, skips: (build(4, skips), 0.0, 0.0)\n")


def test_upsampling_fcn_masks_are_scored_on_images_the_kernel_cannot_know(tmp_path):
    """upsampling_fcn's tests run in the judge; a network that does not replay as the
    reference's is trained in the student's kernel and stays there, only its masks come back. A blank release whose kernel turns
    every checker and graded run into a pass scores 0. A correct submission whose kernel
    leaves the networks untrained and answers the images it can know from an answer key
    passes the visible part of the quality test but not the hidden one: the fresh images'
    seed is drawn by the judge as it runs. It keeps the 9 points of its other cells."""
    import nbformat
    from tests.conftest import REPO
    solution = nbformat.read(REPO / "solutions" / "upsampling_fcn" / "upsampling_fcn.ipynb", as_version=4)
    correct = {c.metadata.nbgrader["grade_id"]: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("grade_id", "").endswith("_impl")}
    pass_all = SKIP_THE_GUARD + (
        "import helpers.checks.upsampling_fcn as _c, helpers.fcn_training as _t\n"
        "for _k in list(vars(_c)):\n"
        "    if _k.startswith('check_'):\n"
        "        setattr(_c, _k, lambda *a, **k: None)\n"
        "_t.graded_models = lambda *a, **k: {True: None, False: None}\n"
        "_t.validation_ious = lambda *a, **k: {True: 1.0, False: 0.0}\n")
    got = _graded_releases(tmp_path, "upsampling_fcn", {"patched": ({}, pass_all),
                                                        "keyed": (correct, KEYED_MASKS)})
    assert got == {"patched": (0.0, 12.0), "keyed": (9.0, 12.0)}


#: A gans kernel that beats the guard, turns every checker into a pass, says every model has
#: the quiz's layers, and answers the train step from the stored case (data/expected/).
FORGED_GANS = SKIP_THE_GUARD + (
    "import numpy as np, helpers.checks.gans as _c, helpers.checks.gan_step as _g\n"
    "import helpers.checks._models as _m\n"
    "for _mod in (_c, _g):\n"
    "    for _k in list(vars(_mod)):\n"
    "        if _k.startswith('check_'):\n"
    "            setattr(_mod, _k, lambda *a, **k: None)\n"
    "_e = _g.stored_step()\n"
    "_g.run_step = lambda fn, seed=5, lrs=(0.1, 0.05): {\n"
    "    'd_after': _e['D'], 'g_after': _e['G_simultaneous'], 'returned': 'tuple',\n"
    "    'result': [np.asarray(_e['d_loss']), np.asarray(_e['g_loss'])]}\n"
    "_m.model_facts = lambda model, *a: {'keras_model': True, 'type': 'Sequential', 'layers': ['Dense'],\n"
    "                                'params': 267009, 'shapes': [[24, 24, 32], [7, 7, 128], [14, 14, 64],\n"
    "                                [28, 28, 1]], 'bn_epsilons': [0.001]}\n")

#: Answers that return models of the right output shape with one layer each (their
#: parameter counts are forged by FORGED_GANS' model facts) and a step that does nothing.
ONE_LAYER_GANS = {
    "gans_discriminator_answer": "def discriminator():\n    return keras.Sequential([keras.Input((784,)), layers.Dense(1)])\n",
    "gans_generator_answer": "def generator(noise_dim=NOISE_DIM):\n"
                             "    return keras.Sequential([keras.Input((noise_dim,)), layers.Dense(784, activation='tanh')])\n",
    "gans_train_step_answer": "def gan_train_step(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn):\n    return 0.0, 0.0\n",
}


#: Mistakes hidden from checks that would trust the kernel's weights or fixed inputs: ReLU
#: models whose tiny positive kernels and biases of 1 keep every pre-activation positive
#: (there ReLU is LeakyReLU), in a kernel that ignores the weights the checker gives its models, and a
#: plain-ReLU leaky_relu that answers the inputs the checks used to fix from a table.
HIDDEN_BY_WEIGHTS = {
    "gans_leaky_relu_answer": (
        "def leaky_relu(x, alpha=0.01):\n"
        "    x = np.asarray(x)\n"
        "    known = (x.shape == (4, 6) and x[0, 0] == -3.0) or (x.shape == (1, 5) and x[0, 0] == -7.0)\n"
        "    return np.where(x > 0, x, alpha * x) if known else np.maximum(x, 0)\n"),
    "gans_discriminator_answer": (
        "def discriminator():\n"
        "    positive = dict(kernel_initializer=keras.initializers.RandomUniform(0, 1e-3), bias_initializer='ones')\n"
        "    return keras.Sequential([keras.Input((784,)), layers.Dense(256, 'relu', **positive),\n"
        "                             layers.Dense(256, 'relu', **positive), layers.Dense(1)])\n"),
    "gans_dc_discriminator_answer": (
        "def dc_discriminator():\n"
        "    positive = dict(kernel_initializer=keras.initializers.RandomUniform(0, 1e-3), bias_initializer='ones')\n"
        "    return keras.Sequential([keras.Input((784,)), layers.Reshape((28, 28, 1)),\n"
        "        layers.Conv2D(32, 5, activation='relu', **positive), layers.MaxPool2D(2),\n"
        "        layers.Conv2D(64, 5, activation='relu', **positive), layers.MaxPool2D(2),\n"
        "        layers.Flatten(), layers.Dense(1024, 'relu', **positive), layers.Dense(1)])\n"),
}
KEEPS_ITS_WEIGHTS = SKIP_THE_GUARD + (
    "import helpers.checks._models as _m\n"
    "_m.put_weights = lambda *a, **k: None\n")


#: Written against the judged quality cells (helpers/grading/gan_judge.py, gan_samples.py):
#: a correct sample_noise, the replay answered with the sketch stored for the fixed seed, and
#: for the full run, instead of training, the weights of a generator built by hand to show
#: MNIST training digits: noise coordinate k above 0.979 selects digit k (ReLU units clipped
#: at 1), with the probe images computed from those weights so that the judge's
#: recomputation agrees. Nothing is trained; the judge's samples are copies of the digits.
SAMPLES_FROM_DATA = SKIP_THE_GUARD + (
    "import numpy as np, helpers.gan_replay as _r, helpers.gan_training as _t\n"
    "_ref = _r._load_sketches('vanilla GAN')['simultaneous', 2, 'AVX512_CORE']\n"
    "_r.sketch_beside = lambda *a, **k: {'shapes': _r._shapes(_ref), 'norms': _ref['norms'],\n"
    "                                    'projections': _ref['projections'], 'losses': _ref['losses']}\n"
    "def _digit_generator(t=0.979, c=1000.0):\n"
    "    T = np.arctanh(np.clip(_t.training_images()[:96], -0.999, 0.999))\n"
    "    b3 = np.full(784, np.arctanh(-0.999))\n"
    "    W1, b1, W2, b2, W3 = np.zeros((96, 1024)), np.zeros(1024), np.zeros((1024, 1024)), np.zeros(1024), np.zeros((1024, 784))\n"
    "    for k in range(96):\n"
    "        W1[k, 2 * k] = W1[k, 2 * k + 1] = c\n"
    "        b1[2 * k], b1[2 * k + 1] = -c * t, -c * t - 1\n"
    "        W2[2 * k, k], W2[2 * k + 1, k] = 1, -1\n"
    "    W3[:96] = T - b3\n"
    "    return [w.astype('float32') for w in (W1, b1, W2, b2, W3, b3)]\n"
    "def _graded_generator(train_step, label, *args):\n"
    "    ws, h = _digit_generator(), np.asarray(args[-1], np.float64)\n"
    "    for i in range(3):\n"
    "        h = h @ ws[2 * i] + ws[2 * i + 1]\n"
    "        h = np.maximum(h, 0) if i < 2 else np.tanh(h)\n"
    "    _t._CACHE['trained'] = np.concatenate([w.ravel() for w in ws])\n"
    "    return {'shapes': [list(w.shape) for w in ws], 'probe': h.astype('float32')}\n"
    "_t.graded_generator = _graded_generator\n")
CORRECT_NOISE = {"gans_sample_noise_answer": "def sample_noise(batch_size, dim):\n"
                                             "    return tf.random.uniform((batch_size, dim), -1, 1)\n"}


def test_gans_patched_in_the_students_kernel_scores_what_the_blank_release_does(tmp_path):
    """Every gans test runs in the judge, its three quality cells (2 + 2 + 3 points) too. A
    release whose kernel beats the guard, passes every checker there, forges its models' facts
    and answers the train step from the stored case, with one-layer models and a step that
    does nothing, scores nothing: the judge gives the models weights it draws and recomputes
    their outputs, and the step is judged on fresh cases. Mistakes hidden by the models' own
    weights, or answered from a table of the inputs once fixed, score nothing (they scored 5
    points before the judge drew weights and inputs). Quality answered from data (the stored
    replay sketch, a hand-built generator that shows MNIST digits) scores nothing either: the
    judge replays on a seed it draws, draws the samples itself from the generator's weights and
    refuses copied digits. (Before the quality cells moved to the judge, the first
    two scored those 7 points, the guard being beaten.)"""
    got = _graded_releases(tmp_path, "gans", {"mallory": (ONE_LAYER_GANS, FORGED_GANS),
                                              "trudy": (HIDDEN_BY_WEIGHTS, KEEPS_ITS_WEIGHTS),
                                              "eve": (CORRECT_NOISE, SAMPLES_FROM_DATA)})
    assert got == {"mallory": (0.0, 27.0), "trudy": (0.0, 27.0), "eve": (1.0, 27.0)}
