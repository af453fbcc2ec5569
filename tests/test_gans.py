"""The gans quiz: MNIST loader, scoring classifier, checkers (pass correct code written
differently, name each known mistake) and the quality the autograded reference reached."""
import gzip
import re
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from helpers.checks import CheckFailed
from helpers.checks import gans as checks
from helpers.data import mnist

from conftest import autograded_notebook, cell_output_text
from in_kernel import InKernel


# ----------------------------------------------------------------------------- data

def test_mnist_loads_checked_and_scaled():
    x_tr, y_tr, x_te, y_te = mnist.load_mnist(scale="tanh", flatten=True)
    assert x_tr.shape == (60000, 784) and x_te.shape == (10000, 784) and x_tr.dtype == np.float32
    assert x_tr.min() == -1.0 and x_tr.max() == 1.0
    assert tuple(np.bincount(y_te)) == mnist.LABEL_COUNTS["test"]
    x_unit = mnist.load_mnist(scale="unit")[0]
    assert x_unit.shape == (60000, 28, 28) and x_unit.min() == 0.0 and x_unit.max() == 1.0
    assert mnist.load_mnist(scale=None)[2].dtype == np.uint8
    with pytest.raises(ValueError, match="scale must be"):
        mnist.load_mnist(scale="0-255")


def _copy_data(tmp_path):
    for name in mnist.FILES:
        shutil.copy(mnist.DATA_DIR / f"{name}.gz", tmp_path / f"{name}.gz")
    return tmp_path


def test_missing_file_is_named(tmp_path):
    folder = _copy_data(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz is missing"):
        mnist.load_mnist(data_dir=folder)


def test_corrupt_file_is_named(tmp_path):
    folder = _copy_data(tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] = (raw[100] + 1) % 10                      # one label changed
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(mnist.MnistFileError, match="t10k-labels-idx1-ubyte.gz is corrupt: md5"):
        mnist.load_mnist(data_dir=folder)
    path.write_bytes(b"not gzip")
    with pytest.raises(mnist.MnistFileError, match="not a valid gzip file"):
        mnist.load_mnist(data_dir=folder)


def test_idx_reader_checks_header_and_shape(tmp_path):
    path = tmp_path / "tiny.idx"
    path.write_bytes(b"\x00\x00\x08\x02" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(range(6)))
    assert mnist.read_idx(path).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(mnist.MnistFileError, match=r"shape \(2, 3\), expected \(3, 2\)"):
        mnist.read_idx(path, expected_shape=(3, 2))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(mnist.MnistFileError, match="truncated"):
        mnist.read_idx(path)


# ----------------------------------------------------------------------------- classifier

def test_classifier_scores_real_digits_and_noise():
    """The quality meter: real digits are confident, non-digits and blends of two are not."""
    from helpers import mnist_classifier as clf
    _, _, x_te, y_te = mnist.load_mnist(scale="tanh")
    p = clf.predict_proba(x_te)
    assert np.mean(p.argmax(1) == y_te) >= 0.99, "the shipped classifier must reach 99% test accuracy"
    assert np.mean(p.max(1) >= clf.CONFIDENCE) >= 0.975, "real test digits must be confident"
    real = clf.score_samples(x_te[:1000])
    assert real["confident"] > 0.97 and real["modes"] == 10
    ones = clf.score_samples(x_te[y_te == 1][:1000])          # a "collapsed" generator
    assert ones["modes"] == 1
    rng = np.random.default_rng(0)
    noise = clf.score_samples(rng.uniform(-1, 1, (1000, 784)))
    assert noise["confident"] == 0 and noise["modes"] == 0, "uniform noise must not look like digits"
    shuffled = rng.permuted(x_te[:1000].reshape(1000, 784), axis=1)
    assert clf.score_samples(shuffled)["confident"] == 0, "pixel-shuffled digits must not look like digits"
    blobs = clf.outlier_images(2000, seed=7)[1000:]           # not the training outliers (seed 0)
    assert clf.score_samples(blobs)["confident"] == 0
    mixed, _ = clf.blends(x_te, y_te, 1000, seed=5)           # half one digit, half another
    assert clf.score_samples(mixed)["confident"] < 0.08, "blends of two digits must not be confident"
    assert "10/10 digits" in clf.format_score(real)
    with pytest.raises(ValueError, match="NaN"):
        clf.score_samples(np.full((2, 784), np.nan))
    with pytest.raises(ValueError, match="shape"):
        clf.score_samples(np.zeros((2, 30, 30)))


def test_graded_meter_ignores_changes_to_the_cached_classifier(monkeypatch):
    """Scaling the cached classifier's logits makes noise "confident"; in a grading kernel
    the meter builds the classifier afresh from its weights file, so that does not count."""
    from helpers import guard
    from helpers import mnist_classifier as clf
    noise = np.random.default_rng(1).uniform(-1, 1, (200, 784)).astype(np.float32)
    tampered = clf.build_classifier()
    tampered.set_weights([w * 1e4 if i >= len(tampered.weights) - 2 else w
                          for i, w in enumerate(clf.load_classifier().get_weights())])
    monkeypatch.setattr(clf, "_MODEL", tampered)
    monkeypatch.setattr(guard, "_STATE", {})
    monkeypatch.delenv("COURSE_GRADING", raising=False)
    assert clf.score_samples(noise)["confident"] > 0.5, "the tampered cached model is used outside grading"
    monkeypatch.setenv("COURSE_GRADING", "1")
    assert clf.load_classifier() is not tampered
    assert clf.score_samples(noise)["confident"] == 0


def test_classifier_blends_have_two_classes():
    from helpers import mnist_classifier as clf
    x = np.stack([np.full((28, 28), v, np.float32) for v in (-1.0, 1.0, 0.0)])
    images, targets = clf.blends(x, np.array([3, 5, 3]), 50, seed=0)
    assert images.shape == (50, 28, 28) and targets.shape == (50, 10)
    assert np.allclose(targets.sum(1), 1) and np.all(np.sort(targets, 1)[:, -2:] == 0.5)
    assert set(np.unique(images)) <= {0.0, 0.5}                # a 3 never blends with a 3


# ----------------------------------------------------------------------------- references

def leaky_relu(x, alpha=0.01):
    return tf.maximum(x, alpha * x)


def leaky_relu_alt(x, alpha=0.01):
    return tf.where(x > 0, x, alpha * x)


def sample_noise(n, d):
    return tf.random.uniform((n, d), -1.0, 1.0)


def discriminator():
    return keras.Sequential([keras.Input((784,)), layers.Dense(256), layers.LeakyReLU(0.01),
                             layers.Dense(256), layers.LeakyReLU(0.01), layers.Dense(1)])


def discriminator_functional():                         # functional API, activation as a function
    inp = keras.Input((784,))
    h = layers.Dense(256, activation=lambda t: tf.nn.leaky_relu(t, 0.01))(inp)
    h = layers.Dense(256, activation=lambda t: tf.nn.leaky_relu(t, 0.01))(h)
    return keras.Model(inp, layers.Dense(1)(h))


def generator(noise_dim=96):
    return keras.Sequential([keras.Input((noise_dim,)), layers.Dense(1024, activation="relu"),
                             layers.Dense(1024, activation="relu"), layers.Dense(784, activation="tanh")])


def _bce(labels, logits):
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def discriminator_loss(lr, lf):
    return tf.reduce_mean(_bce(tf.ones_like(lr), lr)) + tf.reduce_mean(_bce(tf.zeros_like(lf), lf))


def discriminator_loss_keras(lr, lf):                  # Keras' loss class, from_logits
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    return bce(tf.ones_like(lr), lr) + bce(tf.zeros_like(lf), lf)


def generator_loss(lf):
    return tf.reduce_mean(_bce(tf.ones_like(lf), lf))


def generator_loss_softplus(lf):                       # -log sigmoid(s) = softplus(-s)
    return tf.reduce_mean(tf.nn.softplus(-lf))


def ls_discriminator_loss(sr, sf):
    return 0.5 * tf.reduce_mean((sr - 1) ** 2) + 0.5 * tf.reduce_mean(sf ** 2)


def ls_generator_loss(sf):
    return 0.5 * tf.reduce_mean(tf.square(sf - 1))


def dc_discriminator():
    return keras.Sequential([keras.Input((784,)), layers.Reshape((28, 28, 1)),
                             layers.Conv2D(32, 5), layers.LeakyReLU(0.01), layers.MaxPooling2D(2),
                             layers.Conv2D(64, 5), layers.LeakyReLU(0.01), layers.MaxPooling2D(2),
                             layers.Flatten(), layers.Dense(1024), layers.LeakyReLU(0.01), layers.Dense(1)])


def dc_generator(noise_dim=96, target=(7, 7, 128), strides=2, head=True):
    """cs231n's DCGAN generator; head=False leaves out its first Dense(1024) + BN."""
    first = [layers.Dense(1024, activation="relu"), layers.BatchNormalization()] if head else []
    return keras.Sequential([keras.Input((noise_dim,)), *first,
                             layers.Dense(6272, activation="relu"), layers.BatchNormalization(),
                             layers.Reshape(target),
                             layers.Conv2DTranspose(64, 4, strides=strides, padding="same", activation="relu"),
                             layers.BatchNormalization(),
                             layers.Conv2DTranspose(1, 4, strides=strides, padding="same", activation="tanh"),
                             layers.Reshape((784,))])


def train_step(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn):
    with tf.GradientTape() as dt, tf.GradientTape() as gt:
        fake = G(z, training=True)
        sr, sf = D(x, training=True), D(fake, training=True)
        dl, gl = d_loss_fn(sr, sf), g_loss_fn(sf)
    D_opt.apply(dt.gradient(dl, D.trainable_variables), D.trainable_variables)
    G_opt.apply(gt.gradient(gl, G.trainable_variables), G.trainable_variables)
    return dl, gl


def train_step_alternating(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn):
    """cs231n's order: D's update first, then G's against the updated D."""
    with tf.GradientTape() as tape:
        dl = d_loss_fn(D(x, training=True), D(G(z, training=True), training=True))
    D_opt.apply_gradients(zip(tape.gradient(dl, D.trainable_variables), D.trainable_variables))
    with tf.GradientTape() as tape:
        gl = g_loss_fn(D(G(z, training=True), training=True))
    G_opt.apply_gradients(zip(tape.gradient(gl, G.trainable_variables), G.trainable_variables))
    return dl, gl


# ----------------------------------------------------------------------------- checkers pass

@pytest.mark.parametrize("check, fns", [
    (checks.check_leaky_relu, [leaky_relu, leaky_relu_alt, lambda x, a=0.01: tf.nn.leaky_relu(x, a)]),
    (checks.check_sample_noise, [sample_noise,
                                 lambda n, d: 2 * tf.random.uniform((n, d)) - 1,
                                 lambda n, d: np.random.uniform(-1, 1, (n, d)).astype("float32")]),
    (checks.check_discriminator, [discriminator, discriminator_functional]),
    (checks.check_generator, [generator]),
    (checks.check_discriminator_loss, [discriminator_loss, discriminator_loss_keras]),
    (checks.check_generator_loss, [generator_loss, generator_loss_softplus]),
    (checks.check_ls_discriminator_loss, [ls_discriminator_loss]),
    (checks.check_ls_generator_loss, [ls_generator_loss]),
    (checks.check_dc_discriminator, [dc_discriminator]),
    (checks.check_dc_generator, [dc_generator]),
    (checks.check_gan_train_step, [train_step, train_step_alternating, tf.function(train_step)]),
])
def test_checkers_pass_correct_solutions(check, fns, capsys):
    for fn in fns:
        check(fn)
    assert capsys.readouterr().out.count("✔") == len(fns)


def test_checkers_report_unimplemented():
    def todo(*args, **kwargs):
        raise NotImplementedError()
    for check in (checks.check_leaky_relu, checks.check_discriminator, checks.check_generator_loss,
                  checks.check_dc_generator, checks.check_gan_train_step):
        with pytest.raises(CheckFailed, match="not implemented yet"):
            check(todo)


# ----------------------------------------------------------------------------- mistakes named

def _fails(check, fn, pattern):
    with pytest.raises(CheckFailed, match=pattern):
        check(fn)


def test_leaky_relu_mistakes():
    _fails(checks.check_leaky_relu, lambda x, a=0.01: tf.nn.relu(x), "plain ReLU")
    _fails(checks.check_leaky_relu, lambda x, a=0.01: tf.maximum(x, 0.01 * x), "alpha is ignored")


def test_sample_noise_mistakes():
    _fails(checks.check_sample_noise, lambda n, d: tf.random.uniform((n, d)), "uniform in \\[0, 1\\]")
    _fails(checks.check_sample_noise, lambda n, d: tf.random.normal((n, d)), "tf.random.normal")
    _fails(checks.check_sample_noise, lambda n, d: tf.random.uniform((n, d), -1, 1, seed=1) * 0 +
           tf.constant(np.random.default_rng(0).uniform(-1, 1, (n, d)), tf.float32), "same numbers")
    _fails(checks.check_sample_noise, lambda n, d: tf.random.uniform((d, n), -1, 1), "shape \\(25, 2000\\)")
    _fails(checks.check_sample_noise, lambda n, d: tf.fill((n, d), float("nan")), "NaN")


def _mlp_d(act=None, last=None):
    return lambda: keras.Sequential([keras.Input((784,)), layers.Dense(256, activation=act),
                                     layers.Dense(256, activation=act), layers.Dense(1, activation=last)])


def test_discriminator_mistakes():
    _fails(checks.check_discriminator, _mlp_d("relu"), "ReLU instead of LeakyReLU")
    _fails(checks.check_discriminator, _mlp_d(layers.LeakyReLU()), "default slope 0.3")
    _fails(checks.check_discriminator, _mlp_d(layers.LeakyReLU(0.01), "sigmoid"), "return logits")
    _fails(checks.check_discriminator, lambda: keras.Sequential([keras.Input((784,)), layers.Dense(256),
                                                                 layers.Dense(1)]), "number of parameters")
    _fails(checks.check_discriminator, lambda: None, "does not `return`")


def test_generator_mistakes():
    def g(last="tanh", n=96):
        return keras.Sequential([keras.Input((n,)), layers.Dense(1024, activation="relu"),
                                 layers.Dense(1024, activation="relu"), layers.Dense(784, activation=last)])
    _fails(checks.check_generator, lambda noise_dim=96: g("sigmoid", noise_dim), "use tanh")
    _fails(checks.check_generator, lambda noise_dim=96: g(None, noise_dim), "no tanh")
    _fails(checks.check_generator, lambda noise_dim=96: g(), "generator\\(7\\).*\n.*noise_dim")


def test_gan_loss_mistakes():
    def log_sigmoid(lr, lf):
        return -tf.reduce_mean(tf.math.log(tf.sigmoid(lr))) - tf.reduce_mean(tf.math.log(1 - tf.sigmoid(lf)))
    _fails(checks.check_discriminator_loss, log_sigmoid, "(?s)log\\(sigmoid\\(x\\)\\).*sigmoid_cross_entropy")
    _fails(checks.check_discriminator_loss, lambda lr, lf: discriminator_loss(lf, lr), "labels are swapped")
    _fails(checks.check_discriminator_loss, lambda lr, lf: tf.reduce_sum(_bce(tf.ones_like(lr), lr))
           + tf.reduce_sum(_bce(tf.zeros_like(lf), lf)), "summed over the batch")
    _fails(checks.check_discriminator_loss, lambda lr, lf: _bce(tf.ones_like(lr), lr), "must be a scalar")
    _fails(checks.check_generator_loss, lambda lf: tf.reduce_mean(_bce(tf.zeros_like(lf), lf)), "labels are flipped")
    _fails(checks.check_generator_loss, lambda lf: -tf.reduce_mean(tf.math.log(tf.sigmoid(lf))), "log\\(sigmoid")
    _fails(checks.check_generator_loss, lambda lf: -tf.reduce_mean(_bce(tf.zeros_like(lf), lf)), "minimax")


def test_ls_loss_mistakes():
    _fails(checks.check_ls_discriminator_loss, lambda r, f: 2 * ls_discriminator_loss(r, f), "1/2 is missing")
    _fails(checks.check_ls_discriminator_loss, lambda r, f: ls_discriminator_loss(tf.sigmoid(r), tf.sigmoid(f)),
           "sigmoid")
    _fails(checks.check_ls_discriminator_loss, lambda r, f: 0.5 * tf.reduce_mean(r ** 2)
           + 0.5 * tf.reduce_mean((f - 1) ** 2), "targets are swapped")
    _fails(checks.check_ls_generator_loss, lambda f: 0.5 * tf.reduce_mean(f ** 2), "target is flipped")
    _fails(checks.check_ls_generator_loss, lambda f: tf.reduce_mean((f - 1) ** 2), "1/2 is missing")


def test_dc_model_mistakes():
    _fails(checks.check_dc_generator, lambda noise_dim=96: dc_generator(noise_dim, (28, 28, 8), strides=1),
           "(?s)outputs \\(28, 28, 8\\).*\\(7, 7, 128\\)")       # same parameter count, wrong layout
    _fails(checks.check_dc_generator, lambda noise_dim=96: dc_generator(noise_dim, (28, 28, 8)),
           "(?s)112x112.*\\(7, 7, 128\\)")                           # Keras refuses to build it
    def sigmoid_out(noise_dim=96):
        m = dc_generator(noise_dim)
        m.layers[-2].activation = keras.activations.sigmoid
        return m
    _fails(checks.check_dc_generator, sigmoid_out, "no output is negative")
    _fails(checks.check_dc_generator, lambda noise_dim=96: dc_generator(noise_dim, head=False),  # Dense(6272) from the noise
           "(?s)number of parameters.*Dense\\(1024\\) 99,328")
    def no_pool(noise_dim=None):
        return keras.Sequential([keras.Input((784,)), layers.Reshape((28, 28, 1)), layers.Conv2D(32, 5),
                                 layers.Conv2D(64, 5), layers.Flatten(), layers.Dense(1)])
    _fails(checks.check_dc_discriminator, no_pool, "number of parameters")
    def same_pad():
        return keras.Sequential([keras.Input((784,)), layers.Reshape((28, 28, 1)),
                                 layers.Conv2D(32, 5, padding="same"), layers.Flatten(), layers.Dense(1)])
    _fails(checks.check_dc_discriminator, same_pad, "no layer outputs \\(24, 24, 32\\)")


def test_train_step_mistakes():
    def d_with_g_opt(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn):
        return train_step(x, z, D, G, G_opt, G_opt, d_loss_fn, g_loss_fn)
    _fails(checks.check_gan_train_step, d_with_g_opt, "one optimizer was applied to both")

    def swapped(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn):
        return train_step(x, z, D, G, G_opt, D_opt, d_loss_fn, g_loss_fn)
    _fails(checks.check_gan_train_step, swapped, "D's variables were updated with G's optimizer")

    def g_with_d_lr(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn):
        return train_step(x, z, D, G, D_opt, keras.optimizers.SGD(0.1), d_loss_fn, g_loss_fn)
    _fails(checks.check_gan_train_step, g_with_d_lr, "G's variables were updated with D's optimizer")

    def g_on_d_loss(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn):
        return train_step(x, z, D, G, D_opt, G_opt, d_loss_fn, lambda sf: d_loss_fn(D(x), sf))
    _fails(checks.check_gan_train_step, g_on_d_loss, "G was updated with D's loss")

    def no_g_update(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn):
        return train_step(x, z, D, G, D_opt, keras.optimizers.SGD(0.0), d_loss_fn, g_loss_fn)
    _fails(checks.check_gan_train_step, no_g_update, "G's weights did not change")

    def no_return(*args):
        train_step(*args)
    _fails(checks.check_gan_train_step, no_return, "expected the pair")


# ----------------------------------------------------------------------------- under the grader's judge

def test_model_checks_read_models_that_stay_in_the_kernel(capsys):
    """Through the judge's proxy (a stand-in here) the checks see no model, only its outputs,
    weights and facts as data; the named mistakes are still named."""
    for check, fn in ((checks.check_discriminator, discriminator), (checks.check_generator, generator),
                      (checks.check_dc_discriminator, dc_discriminator), (checks.check_dc_generator, dc_generator)):
        check(InKernel(fn))
    assert capsys.readouterr().out.count("✔") == 4
    assert (7, 7, 128) in checks.layer_shapes(InKernel(dc_generator()))
    relu_d = lambda: keras.Sequential([keras.Input((784,)), layers.Dense(256, activation="relu"),  # noqa: E731
                                       layers.Dense(256, activation="relu"), layers.Dense(1)])
    _fails(checks.check_discriminator, InKernel(relu_d), "ReLU instead of LeakyReLU")
    _fails(checks.check_dc_generator, InKernel(lambda noise_dim=96: dc_generator(noise_dim, (28, 28, 8), 1)),
           "reshaped to \\(7, 7, 128\\)|outputs \\(28, 28, 8\\)")
    forged = {"model_facts": {"keras_model": True, "type": "M", "layers": [], "params": 267009,
                              "shapes": "all of them"}}
    _fails(checks.check_discriminator, InKernel(lambda: InKernel(discriminator(), forged)),
           "could not read your model's layers")


def test_model_checks_give_the_models_weights_the_kernel_cannot_choose():
    """The checks draw the weights (both signs) and the inputs on every call and recompute
    the output from their own draw. A ReLU discriminator whose tiny positive kernels and
    biases of 1 keep every pre-activation positive (where ReLU is LeakyReLU) is caught,
    whether its kernel takes the drawn weights or keeps its own; so are forged shapes."""
    positive = dict(kernel_initializer=keras.initializers.RandomUniform(0, 1e-3), bias_initializer="ones")
    relu_d = lambda: keras.Sequential([keras.Input((784,)), layers.Dense(256, "relu", **positive),  # noqa: E731
                                       layers.Dense(256, "relu", **positive), layers.Dense(1)])
    _fails(checks.check_discriminator, relu_d, "ReLU instead of LeakyReLU")
    _fails(checks.check_discriminator, InKernel(lambda: InKernel(relu_d(), {"put_weights": None})),
           "differs from the expected layers' output")
    _fails(checks.check_discriminator, InKernel(lambda: InKernel(discriminator(), {"put_weights": None})),
           "differs from the expected layers' output")
    shapes = [[784, 256], [256], [256, 256], [256], [256, 1], [1]]
    for forged in ([[784, 1], [1]], "all", [[-1, 267009]]):
        _fails(checks.check_discriminator, InKernel(lambda: InKernel(discriminator(), {"weight_shapes": forged})),
               "could not read your model's weights|number of parameters")
    checks.check_discriminator(InKernel(lambda: InKernel(discriminator(), {"weight_shapes": shapes})))
    seen = []
    for _ in range(2):
        model = discriminator()
        checks.check_discriminator(lambda: model)
        seen.append(model.get_weights()[1].copy())
    assert not np.array_equal(*seen), "two checks drew the same weights"
    assert (seen[0] < 0).any() and (seen[0] > 0).any()


def test_train_step_is_judged_on_fresh_cases_computed_by_the_judge(capsys):
    """The step runs where the student's function lives and its weights come back as data.
    The hidden test's fresh cases are checked against the judge's own step: correct steps
    pass every case, and a kernel that answers the stored case from data/expected/ (not
    running the student's step at all) passes only that one."""
    from helpers.checks import gan_step
    from helpers.grading.gan_reference import expected_step
    cases = [(1234, (0.1, 0.05)), (98765, (0.0, 0.3)), (4321, (0.2, 0.0))]
    for fn in (train_step, train_step_alternating):
        checks.check_gan_train_step(InKernel(fn))
        for seed, lrs in cases:
            checks.check_gan_train_step(InKernel(fn), seed=seed, lrs=lrs, expected=expected_step(seed, lrs))
    assert capsys.readouterr().out.count("✔") == 8
    stored = gan_step.stored_step()
    keyed = {"run_step": {"d_after": stored["D"], "g_after": stored["G_simultaneous"], "returned": "tuple",
                          "result": [np.asarray(stored["d_loss"]), np.asarray(stored["g_loss"])]}}
    checks.check_gan_train_step(InKernel(lambda *a: None, keyed))
    _fails(lambda fn: checks.check_gan_train_step(fn, 1234, (0.1, 0.05), expected_step(1234, (0.1, 0.05))),
           InKernel(lambda *a: None, keyed), "weights after one step differ")
    for bad in ("weights", {"d_after": "x", "g_after": stored["G_simultaneous"], "returned": "t", "result": None}):
        _fails(checks.check_gan_train_step, InKernel(lambda *a: None, {"run_step": bad}),
               "could not read the weights")
    with pytest.raises(ValueError, match="expected step"):
        checks.check_gan_train_step(train_step, seed=1234)


# ----------------------------------------------------------------------------- quality

#: The notebook's graded quality targets (keep in step with its quality test cells):
#: vanilla GAN: share of confident samples (top class p >= 0.9), in %, and digits covered;
#: LSGAN: share of recognizable samples (p >= 0.5), in %;
#: DCGAN: share of confident samples, in %, and digits covered.
GAN_CONFIDENT, GAN_DIGITS, LS_RECOGNIZABLE, DC_CONFIDENT, DC_DIGITS = 10.0, 5, 30.0, 70.0, 9
#: What the reference itself reached on its seed (measured: vanilla 33.5%, 10/10; DCGAN with the
#: averaged generator 86.2%, 10/10) is asserted more strictly than the graded targets, which leave
#: room for correct code whose random initialisation differs from ours (GAN training depends on it).
GAN_REFERENCE_CONFIDENT, GAN_REFERENCE_DIGITS, DC_REFERENCE_CONFIDENT, DC_REFERENCE_DIGITS = 25.0, 8, 80.0, 10


def _printed(nb, grade_id, label):
    out = cell_output_text(nb, grade_id)
    m = re.search(rf"{label}: ([\d.]+)% confident, (\d+)/10 digits after (\d+) steps(?:; ([\d.]+)% recognizable)?", out)
    assert m, f"{grade_id} printed no score: {out!r}"
    return float(m.group(1)), int(m.group(2)), int(m.group(3)), float(m.group(4) or "nan")


def test_reference_reaches_quality_targets(demo_run):
    """The autograded reference notebook printed scores that meet its targets.

    It ran under the grader (COURSE_GRADING=1, "grading mode"), which trains exactly the
    same steps as a student's run: 5,000 (vanilla), 5,000 (LSGAN), 1,500 (DCGAN, batch 128),
    fixed seeds.
    """
    nb = autograded_notebook(demo_run, "reference", "gans")
    assert "grading mode" in cell_output_text(nb)
    confident, digits, steps, _ = _printed(nb, "gans_vanilla_quality", "vanilla GAN")
    assert steps == 5000 and confident >= GAN_CONFIDENT and digits >= GAN_DIGITS
    assert confident >= GAN_REFERENCE_CONFIDENT and digits >= GAN_REFERENCE_DIGITS
    _, _, steps, recognizable = _printed(nb, "gans_ls_quality", "LSGAN")
    assert steps == 5000 and recognizable >= LS_RECOGNIZABLE
    confident, digits, steps, _ = _printed(nb, "gans_dc_quality", "DCGAN")
    assert steps == 1500 and confident >= DC_CONFIDENT and digits >= DC_DIGITS
    assert confident >= DC_REFERENCE_CONFIDENT and digits == DC_REFERENCE_DIGITS


# ----------------------------------------------------------------------------- the training loop

def test_graded_score_is_the_students_run_outside_grading(monkeypatch):
    from helpers import gan_training, guard
    monkeypatch.setattr(guard, "_STATE", {})
    monkeypatch.delenv("COURSE_GRADING", raising=False)
    mine = {"confident": 0.5, "modes": 7, "recognizable": 0.9, "steps": 3000}
    fns = dict(discriminator=discriminator, generator=generator, d_loss_fn=discriminator_loss,
               g_loss_fn=generator_loss, train_step=train_step, sample_noise=sample_noise)
    assert gan_training.graded_score("vanilla GAN", mine, **fns) is mine
    with pytest.raises(AssertionError, match="no score for the DCGAN: run the training cell above"):
        gan_training.graded_score("DCGAN", None, **fns)
    with pytest.raises(ValueError, match="unknown GAN 'WGAN'"):
        gan_training.graded_score("WGAN", mine, **fns)


def test_graded_score_trains_again_and_ignores_a_forged_score(monkeypatch, capsys):
    """When graded, a score assigned by hand does not count: the run is redone from the
    submission's functions (here a step that trains nothing: the samples stay noise)."""
    from helpers import gan_training
    monkeypatch.setenv("COURSE_GRADING", "1")
    monkeypatch.setitem(gan_training.RECIPES, "vanilla GAN", {"steps": 20, "batch_size": 64, "average": False})
    forged = {"confident": 1.0, "modes": 10, "recognizable": 1.0, "steps": 5000}

    def lazy_step(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn):
        return tf.constant(0.0), tf.constant(0.0)
    score = gan_training.graded_score("vanilla GAN", forged, discriminator=discriminator, generator=generator,
                                      d_loss_fn=discriminator_loss, g_loss_fn=generator_loss,
                                      train_step=lazy_step, sample_noise=sample_noise)
    assert score is not forged and score["steps"] == 20
    assert score["confident"] < 0.05 and score["modes"] <= 1, score
    out = capsys.readouterr().out
    assert "graded run: the vanilla GAN trained here from your functions (20 steps of 64, seed 0)" in out


def test_train_gan_keeps_the_average_of_the_generator():
    """G_avg follows G with the given decay: decay 0 copies G, decay 1 keeps G's first weights."""
    from helpers.gan_training import train_gan
    x = np.random.default_rng(0).uniform(-1, 1, (256, 784)).astype(np.float32)
    for decay in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        D, G, G_avg = discriminator(), generator(8), generator(8)
        first = [w.numpy().copy() for w in G.weights]
        score = train_gan(D, G, discriminator_loss, generator_loss, 3, "t", train_step=train_step,
                          sample_noise=sample_noise, G_avg=G_avg, avg_decay=decay, noise_dim=8,
                          x_train=x, progress=False)
        assert score["steps"] == 3 and 0 <= score["confident"] <= 1
        want = [w.numpy() for w in G.weights] if decay == 0.0 else first
        assert all(np.allclose(a.numpy(), b) for a, b in zip(G_avg.weights, want))
        assert not all(np.allclose(a, b.numpy()) for a, b in zip(first, G.weights)), "G did not train"
    with pytest.raises(ValueError, match="t: G_avg must be built like G"):
        train_gan(discriminator(), generator(8), discriminator_loss, generator_loss, 1, "t",
                  train_step=train_step, sample_noise=sample_noise, G_avg=generator(9), noise_dim=8,
                  x_train=x, progress=False)
    with pytest.raises(ValueError, match=r"x_train must be \(M, 784\)"):
        train_gan(discriminator(), generator(8), discriminator_loss, generator_loss, 1, "t",
                  train_step=train_step, sample_noise=sample_noise, noise_dim=8, x_train=x[:10, :5])


def test_graded_recipes_are_the_notebooks_training_cells():
    """A student's run of a training cell and the graded run of its quality test train alike:
    the same steps, batch and weight averaging as gan_training.RECIPES."""
    import json
    from helpers.gan_training import RECIPES
    from helpers.grading import SOLUTIONS
    nb = json.loads((SOLUTIONS / "gans" / "gans.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if "= train_gan(" in "".join(c["source"])]
    found = {}
    for src in cells:
        label = re.search(r'train_gan\([^"]*"([^"]+)"', src).group(1)
        steps = int(re.search(r"^\w+_STEPS = (\d+)$", src, re.M).group(1))
        batch = re.search(r"batch_size=(\d+)", src)
        found[label] = {"steps": steps, "batch_size": int(batch.group(1)) if batch else 64,
                        "average": "G_avg=" in src}
    assert found == RECIPES


# ----------------------------------------------------------------------------- issue 19: every correct
# GAN loss passes (checker and graded cells, run here the cheap way); DCGAN activations are checked

def _graded_cell(grade_id):
    """Source of a graded test cell of the reference notebook (hidden tests included)."""
    import nbformat
    from helpers.grading import SOLUTIONS
    nb = nbformat.read(SOLUTIONS / "gans" / "gans.ipynb", as_version=4)
    (src,) = [c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return src


def _run_cell(grade_id, **student):
    """Execute a graded cell's code as the grader would, with the student's functions defined."""
    exec(compile(_graded_cell(grade_id), grade_id, "exec"),
         {"np": np, "tf": tf, "keras": keras, "layers": layers, "checks": checks, **student})


def _ce(x, z):                                         # stable cross-entropy, written out by hand
    return tf.maximum(x, 0.0) - x * z + tf.math.log1p(tf.exp(-tf.abs(x)))


STABLE_D = {
    "sigmoid_ce": discriminator_loss,
    "keras_bce_from_logits": discriminator_loss_keras,
    "softplus": lambda lr, lf: tf.reduce_mean(tf.nn.softplus(-lr)) + tf.reduce_mean(tf.math.softplus(lf)),
    "log_sigmoid": lambda lr, lf: -tf.reduce_mean(tf.math.log_sigmoid(lr)) - tf.reduce_mean(tf.math.log_sigmoid(-lf)),
    "by_hand": lambda lr, lf: tf.reduce_mean(_ce(lr, 1.0)) + tf.reduce_mean(_ce(lf, 0.0)),
    "float64": lambda lr, lf: discriminator_loss(tf.cast(lr, tf.float64), tf.cast(lf, tf.float64)),
    # log(sigmoid) in float64 is exact on these logits (sigmoid(-170) = 1e-74 is a float64)
    "log_sigmoid_float64": lambda lr, lf: -tf.reduce_mean(tf.math.log(tf.sigmoid(tf.cast(lr, tf.float64))))
    - tf.reduce_mean(tf.math.log(tf.sigmoid(-tf.cast(lf, tf.float64)))),
    "keras_ops": lambda lr, lf: keras.ops.mean(keras.ops.binary_crossentropy(keras.ops.ones_like(lr), lr, from_logits=True))
    + keras.ops.mean(keras.ops.binary_crossentropy(keras.ops.zeros_like(lf), lf, from_logits=True)),
}
STABLE_G = {
    "sigmoid_ce": generator_loss,
    "keras_bce_from_logits": lambda lf: keras.losses.BinaryCrossentropy(from_logits=True)(tf.ones_like(lf), lf),
    "softplus": generator_loss_softplus,
    "log_sigmoid": lambda lf: -tf.reduce_mean(tf.math.log_sigmoid(lf)),
    "by_hand": lambda lf: tf.reduce_mean(_ce(lf, 1.0)),
    "float64": lambda lf: generator_loss(tf.cast(lf, tf.float64)),
}


@pytest.mark.parametrize("style", sorted(STABLE_D))
def test_every_stable_d_loss_passes_checker_and_graded_cell(style):
    checks.check_discriminator_loss(STABLE_D[style])
    _run_cell("gans_discriminator_loss", discriminator_loss=STABLE_D[style])


@pytest.mark.parametrize("style", sorted(STABLE_G))
def test_every_stable_g_loss_passes_checker_and_graded_cell(style):
    checks.check_generator_loss(STABLE_G[style])
    _run_cell("gans_generator_loss", generator_loss=STABLE_G[style])


UNSTABLE_D = {   # right on moderate logits, wrong (inf or capped) on the huge ones the notebook announces
    "log_sigmoid_naive": lambda lr, lf: -tf.reduce_mean(tf.math.log(tf.sigmoid(lr)))
    - tf.reduce_mean(tf.math.log(1 - tf.sigmoid(lf))),
    "log_sigmoid_eps": lambda lr, lf: -tf.reduce_mean(tf.math.log(tf.sigmoid(lr) + 1e-8))
    - tf.reduce_mean(tf.math.log(1 - tf.sigmoid(lf) + 1e-8)),
}


@pytest.mark.parametrize("style", sorted(UNSTABLE_D))
def test_log_sigmoid_d_loss_passes_moderate_logits_and_fails_huge_ones_with_the_reason(style):
    fn = UNSTABLE_D[style]
    exp = checks._expected()
    got = float(np.asarray(fn(tf.constant(exp["logits_real"]), tf.constant(exp["logits_fake"]))))
    assert abs(got - exp["d_loss"]) / exp["d_loss"] < checks.LOSS_TOL        # moderate logits: right
    _fails(checks.check_discriminator_loss, fn, "(?s)Most likely: log\\(sigmoid\\(x\\)\\).*from_logits=True")
    with pytest.raises(AssertionError):
        _run_cell("gans_discriminator_loss", discriminator_loss=fn)


def test_log_sigmoid_g_loss_fails_huge_logits_with_the_reason():
    naive = lambda lf: -tf.reduce_mean(tf.math.log(tf.sigmoid(lf)))  # noqa: E731
    _fails(checks.check_generator_loss, naive, "(?s)the loss is inf.*log\\(sigmoid\\(x\\)\\)")
    with pytest.raises(AssertionError, match="log\\(sigmoid"):
        _run_cell("gans_generator_loss", generator_loss=naive)


def test_notebook_fixes_the_stable_formulation_before_the_code():
    """The text before discriminator_loss says huge logits are tested and which forms are fine."""
    import nbformat
    from helpers.grading import SOLUTIONS
    nb = nbformat.read(SOLUTIONS / "gans" / "gans.ipynb", as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    before = "\n".join(c.source for c in nb.cells[:ids.index("gans_discriminator_loss_answer")])
    for phrase in ("±200", "from_logits=True", "softplus", "float64"):
        assert phrase in before, phrase


def test_ls_losses_accept_float64_and_other_spellings():
    ls_d64 = lambda r, f: ls_discriminator_loss(tf.cast(r, tf.float64), tf.cast(f, tf.float64))  # noqa: E731
    ls_d_mse = lambda r, f: 0.5 * keras.losses.MeanSquaredError()(tf.ones_like(r), r) \
        + 0.5 * keras.losses.MeanSquaredError()(tf.zeros_like(f), f)  # noqa: E731
    ls_g64 = lambda f: tf.reduce_mean(tf.square(tf.cast(f, tf.float64) - 1.0)) / 2  # noqa: E731
    for d, g in ((ls_d64, ls_g64), (ls_d_mse, ls_generator_loss)):
        checks.check_ls_discriminator_loss(d)
        checks.check_ls_generator_loss(g)
        _run_cell("gans_ls_losses", ls_discriminator_loss=d, ls_generator_loss=g)


def _dc_d(acts=("lrelu",) * 3, last=None):
    make = {"lrelu": lambda: layers.LeakyReLU(negative_slope=0.01), "relu": layers.ReLU,
            "lrelu03": layers.LeakyReLU, "none": lambda: layers.Activation("linear")}
    a = [make[k] for k in acts]
    return lambda: keras.Sequential([
        keras.Input((784,)), layers.Reshape((28, 28, 1)), layers.Conv2D(32, 5), a[0](), layers.MaxPooling2D(2),
        layers.Conv2D(64, 5), a[1](), layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(1024), a[2](),
        layers.Dense(1, activation=last)])


def _dc_d_functional():                     # pooling before the activation, tf.nn.leaky_relu with alpha
    inp = keras.Input((784,))
    h = layers.Reshape((28, 28, 1))(inp)
    h = layers.Activation(lambda t: tf.nn.leaky_relu(t, alpha=0.01))(layers.MaxPooling2D()(layers.Conv2D(32, 5)(h)))
    h = layers.Activation(lambda t: tf.nn.leaky_relu(t, alpha=0.01))(layers.MaxPooling2D()(layers.Conv2D(64, 5)(h)))
    h = layers.Dense(1024, activation=lambda t: tf.maximum(t, 0.01 * t))(layers.Flatten()(h))
    return keras.Model(inp, layers.Dense(1)(h))


def test_dc_discriminator_accepts_other_correct_spellings():
    for fn in (_dc_d(), _dc_d_functional):
        checks.check_dc_discriminator(fn)
        _run_cell("gans_dc_discriminator", dc_discriminator=fn)


def test_dc_discriminator_wrong_activations_are_named():
    """The old checker (shapes, counts, finiteness) passed all of these."""
    _fails(checks.check_dc_discriminator, _dc_d(("relu",) * 3), "ReLU instead of LeakyReLU\\(0.01\\) \\(in every")
    _fails(checks.check_dc_discriminator, _dc_d(("lrelu03",) * 3), "default slope 0.3")
    _fails(checks.check_dc_discriminator, _dc_d(("lrelu", "lrelu", "none")), "no activation after Dense\\(1024\\)")
    _fails(checks.check_dc_discriminator, _dc_d(("lrelu", "relu", "lrelu")), "ReLU .* after Conv2D\\(64, 5\\)")
    _fails(checks.check_dc_discriminator, _dc_d(last="sigmoid"), "return logits")
    with pytest.raises(AssertionError, match="ReLU instead of LeakyReLU"):
        _run_cell("gans_dc_discriminator", dc_discriminator=_dc_d(("relu",) * 3))


def _dc_g(acts=("relu",) * 3, bn_first=False):
    def block(layer, act):
        pair = [layers.BatchNormalization(), layers.Activation(act)]
        return [layer, *(pair if bn_first else pair[::-1])]
    return lambda noise_dim=96: keras.Sequential([
        keras.Input((noise_dim,)), *block(layers.Dense(1024), acts[0]), *block(layers.Dense(7 * 7 * 128), acts[1]),
        layers.Reshape((7, 7, 128)), *block(layers.Conv2DTranspose(64, 4, strides=2, padding="same"), acts[2]),
        layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh"), layers.Reshape((784,))])


def test_dc_generator_accepts_other_correct_spellings():
    for fn in (_dc_g(), _dc_g(bn_first=True)):
        checks.check_dc_generator(fn)
        checks.check_dc_generator(fn, noise_dim=12)
        _run_cell("gans_dc_generator", dc_generator=fn)


def test_dc_generator_missing_relus_are_named():
    """The old checker (shapes, counts, range) passed all of these."""
    _fails(checks.check_dc_generator, _dc_g(("linear",) * 3), "no ReLU \\(in every hidden layer\\)")
    _fails(checks.check_dc_generator, _dc_g(("relu", "linear", "relu")), "no ReLU after Dense\\(7 \\* 7 \\* 128\\)")
    _fails(checks.check_dc_generator, _dc_g(("relu", "relu", "linear")), "no ReLU after Conv2DTranspose\\(64, 4\\)")
    _fails(checks.check_dc_generator, _dc_g((layers.LeakyReLU(0.2),) * 3), "LeakyReLU\\(0.2\\) instead of ReLU")
    with pytest.raises(AssertionError, match="no ReLU"):
        _run_cell("gans_dc_generator", dc_generator=_dc_g(("linear",) * 3))



#: graded cell -> the functions it tests (its points are lost when any of them is wrong).
CELLS = {"gans_leaky_relu": ("leaky_relu",), "gans_sample_noise": ("sample_noise",),
         "gans_discriminator": ("discriminator",), "gans_generator": ("generator",),
         "gans_discriminator_loss": ("discriminator_loss",), "gans_generator_loss": ("generator_loss",),
         "gans_ls_losses": ("ls_discriminator_loss", "ls_generator_loss"),
         "gans_train_step": ("gan_train_step",), "gans_dc_discriminator": ("dc_discriminator",),
         "gans_dc_generator": ("dc_generator",)}


def _gans_cases():
    from students import corpus
    return [corpus.load_case(p, "gans") for p in corpus.case_files("gans")]


@pytest.mark.parametrize("case", _gans_cases(), ids=lambda c: c.name)
def test_gans_corpus_cases(case):
    """tests/students/gans (not graded end to end: SKIP_GRADING): every graded cell that tests
    one of the case's functions runs here with them; exactly EXPECT_LOST lose their points
    (the training-quality cells are not run)."""
    ns = {"np": np, "tf": tf, "keras": keras, "layers": layers}
    exec("\n".join(case.imports + list(case.definitions.values())), ns)
    lost = set()
    for grade_id, names in CELLS.items():
        if not set(names) & set(case.definitions):
            continue
        try:
            _run_cell(grade_id, **{n: ns[n] for n in names if n in ns})
        except AssertionError:
            lost.add(grade_id)
    assert lost == case.expect_lost, f"{case.name}: lost {sorted(lost)}, expected {sorted(case.expect_lost)}"


# ----------------------------------------------------------------------------- other correct ways to build the models

def _d_without_input():                                  # no keras.Input: weights exist after the first call
    return keras.Sequential([layers.Dense(256), layers.LeakyReLU(0.01), layers.Dense(256), layers.LeakyReLU(0.01),
                             layers.Dense(1)])


class _SubclassedD(keras.Model):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = layers.Dense(256), layers.Dense(256), layers.Dense(1)

    def call(self, x):
        return self.c(tf.nn.leaky_relu(self.b(tf.nn.leaky_relu(self.a(x), 0.01)), 0.01))


def _g_without_input(noise_dim=96):
    return keras.Sequential([layers.Dense(1024, activation="relu"), layers.Dense(1024, activation="relu"),
                             layers.Dense(784, activation="tanh")])


def _dc_d_without_input():
    return keras.Sequential([layers.Reshape((28, 28, 1)), layers.Conv2D(32, 5), layers.LeakyReLU(0.01),
                             layers.MaxPooling2D(2), layers.Conv2D(64, 5), layers.LeakyReLU(0.01),
                             layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(1024), layers.LeakyReLU(0.01),
                             layers.Dense(1)])


def _dc_g_blocks(eps=(1e-3,) * 3, bn_first=(False,) * 3, nested=False, with_input=True):
    """The DCGAN generator with each block's BatchNorm epsilon and order (before or after
    the ReLU) of its own, optionally each block a nested Sequential, optionally no Input."""
    def block(layer, i):
        pair = [layers.ReLU(), layers.BatchNormalization(epsilon=eps[i])]
        parts = [layer, *(pair[::-1] if bn_first[i] else pair)]
        return [keras.Sequential(parts)] if nested else parts
    return lambda noise_dim=96: keras.Sequential([
        *([keras.Input((noise_dim,))] if with_input else []), *block(layers.Dense(1024), 0),
        *block(layers.Dense(7 * 7 * 128), 1), layers.Reshape((7, 7, 128)),
        *block(layers.Conv2DTranspose(64, 4, strides=2, padding="same"), 2),
        layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh"), layers.Reshape((784,))])


@pytest.mark.parametrize("check, grade_id, name, fn", [
    (checks.check_discriminator, "gans_discriminator", "discriminator", _d_without_input),
    (checks.check_discriminator, "gans_discriminator", "discriminator", _SubclassedD),
    (checks.check_generator, "gans_generator", "generator", _g_without_input),
    (checks.check_dc_discriminator, "gans_dc_discriminator", "dc_discriminator", _dc_d_without_input),
    (checks.check_dc_generator, "gans_dc_generator", "dc_generator", _dc_g_blocks(with_input=False)),
    (checks.check_dc_generator, "gans_dc_generator", "dc_generator", _dc_g_blocks(nested=True)),
    (checks.check_dc_generator, "gans_dc_generator", "dc_generator", _dc_g_blocks(eps=(1e-5, 1e-3, 1e-2))),
    (checks.check_dc_generator, "gans_dc_generator", "dc_generator",
     _dc_g_blocks(eps=(1e-5, 1e-3, 1e-2), bn_first=(True, False, True))),
], ids=["D no Input", "D subclassed", "G no Input", "DC D no Input", "DC G no Input", "DC G nested blocks",
        "DC G epsilon per layer", "DC G BatchNorm order per block"])
def test_models_built_other_correct_ways_pass_checks_and_graded_cells(check, grade_id, name, fn):
    """Models without keras.Input or subclassed (no weights until their first call), blocks
    as nested Sequentials, BatchNorm epsilons and orders chosen per block: all correct."""
    check(fn)
    check(InKernel(fn))
    _run_cell(grade_id, **{name: fn})


def test_activations_capped_above_fail_on_the_checks_loud_row():
    """ReLU6 in G, or a LeakyReLU clipped at 3 in D, equal the right activations on inputs
    of order 1; the checks' last input row is LOUD times larger and tells them apart."""
    relu6_g = lambda noise_dim=96: keras.Sequential([  # noqa: E731
        keras.Input((noise_dim,)), layers.Dense(1024, activation="relu6"), layers.Dense(1024, activation="relu6"),
        layers.Dense(784, activation="tanh")])
    clipped = lambda t: tf.minimum(tf.nn.leaky_relu(t, 0.01), 3.0)  # noqa: E731
    clipped_d = lambda: keras.Sequential([keras.Input((784,)), layers.Dense(256, activation=clipped),  # noqa: E731
                                          layers.Dense(256, activation=clipped), layers.Dense(1)])
    for _ in range(3):                                   # fresh weights and inputs each time
        _fails(checks.check_generator, relu6_g, "differs from the expected layers' output")
        _fails(checks.check_discriminator, clipped_d, "differs from the expected layers' output")
