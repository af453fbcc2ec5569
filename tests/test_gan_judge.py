"""gans' quality cells under the grader's judge (helpers/grading/gan_judge.py): the score is
decided on the trusted side, from a replay on a seed the judge draws or from the full run's
samples, never from what the student's kernel says it scored.

The submission's functions are wrapped in tests/in_kernel.InKernel, the judge's proxy in
miniature: what the judge runs beside them (``__course_run__``) can be forged as a hostile
kernel would.
"""
import numpy as np
import pytest

from helpers import gan_replay, gan_training
from helpers.grading import gan_judge, gan_samples
from tests.in_kernel import InKernel


def _functions(label, **changes):
    """The solution's functions for ``label``'s recipe (and its sample_noise), as proxies."""
    fns = dict(gan_judge.reference_functions(label), sample_noise=gan_judge.solution_functions()["sample_noise"])
    fns.update(changes)
    return {name: InKernel(fn) if not isinstance(fn, InKernel) else fn for name, fn in fns.items()}


def _digits(n, seed=0):
    from helpers.data.mnist import load_mnist
    x = load_mnist(scale="tanh", flatten=True)[0]
    return x[np.random.default_rng(seed).choice(len(x), n, replace=False)].astype(np.float32)


def test_a_correct_submission_replays_on_a_fresh_seed_and_gets_the_recipes_score(monkeypatch, capsys):
    seeds = []
    draw = gan_judge.fresh_seed
    monkeypatch.setattr(gan_judge, "fresh_seed", lambda: seeds.append(draw()) or seeds[-1])
    for _ in range(2):
        score = gan_judge.judged_score("vanilla GAN", **_functions("vanilla GAN"))
        assert score["replayed"] and score["confident"] == gan_replay.stored_score("vanilla GAN")["confident"]
    assert len(set(seeds)) == 2, "the judge replayed twice on the same seed"
    assert "12 replayed steps on a fresh seed match the judge's own replay" in capsys.readouterr().out


def _stored_sketch(label):
    """What a kernel can know: the sketch stored for the fixed seed, as the wire sends it."""
    ref = gan_replay._load_sketches(label)["simultaneous", 2, "AVX512_CORE"]
    return {"shapes": gan_replay._shapes(ref), "norms": ref["norms"], "projections": ref["projections"],
            "losses": ref["losses"]}


def _forged_step(label, answers):
    step = gan_judge.reference_functions(label)["train_step"]
    return InKernel(step, forged=answers)


def _trained(weights, probe_images):
    return {"weights": [np.asarray(w, np.float32) for w in weights], "probe": probe_images}


def _sent(weights, probe_images):
    """What a kernel answers for the full run: graded_generator's shapes and probe images,
    then the weights, flattened, as trained_chunk's answer (one chunk: the vanilla GAN's)."""
    return {"graded_generator": {"shapes": [list(np.shape(w)) for w in weights], "probe": probe_images},
            "trained_chunk": np.concatenate([np.ravel(w) for w in weights]).astype(np.float32)}


def _fresh_generator_weights(label):
    """The weights of an untrained generator of the quiz's shape (the solution's, built here)."""
    name = "dc_generator" if label == "DCGAN" else "generator"
    return [np.asarray(w) for w in gan_judge.solution_functions()[name](96).weights]


def test_what_the_kernel_sends_for_the_full_run_must_be_a_generator_of_the_quizs_shape(capsys):
    """A kernel that answers the replay with the sketch in data/expected/ (for the fixed seed)
    goes to the full run. There it sends weights and its generator's images of the probe
    noise; the judge draws the samples itself, so MNIST digits sent as the probe's images
    (with weights of the right shape), weights of other shapes, proxies, NaNs, fail."""
    label = "vanilla GAN"
    weights = _fresh_generator_weights(label)
    digits = _digits(gan_samples.PROBE_ROWS)
    step = _forged_step(label, {"sketch_beside": _stored_sketch(label), **_sent(weights, digits)})
    with pytest.raises(AssertionError, match="does not give the images your kernel made of the probe noise"):
        gan_judge.judged_score(label, **_functions(label, train_step=step))
    assert "the replayed steps differ from the recipe's" in capsys.readouterr().out
    flat = _sent(weights, digits)["trained_chunk"]
    shapes = [list(w.shape) for w in weights]
    for answers, why in (
            ({"graded_generator": InKernel(_sent(weights, digits)["graded_generator"])}, "did not come back as weights"),
            (_sent(weights[:4], digits), "not the quiz's generator"),
            (_sent(weights[::-1], digits), "not the quiz's generator"),
            ({**_sent(weights, digits), "trained_chunk": InKernel(flat)}, "not an array"),
            ({**_sent(weights, digits), "trained_chunk": flat[:-1]}, "shape"),
            (_sent(weights, digits[:3]), "shape \\(3, 784\\)"),
            (_sent(weights, "images"), "not an array"),
            (_sent([np.full_like(w, np.nan) for w in weights], digits), "not finite"),
            ({"graded_generator": {"shapes": shapes + [[10**4, 10**4]], "probe": digits}}, "more than the quiz's"),
            ({"graded_generator": {"shapes": [[-1, 5]], "probe": digits}}, "did not come back as weights"),
            ({"graded_generator": {"shapes": [["784"]], "probe": digits}}, "did not come back as weights"),
            ({"graded_generator": "weights"}, "did not come back as weights")):
        step = _forged_step(label, {"sketch_beside": "same", **answers})
        with pytest.raises(AssertionError, match=why):
            gan_judge.judged_score(label, **_functions(label, train_step=step))


def test_a_generator_that_stores_digits_draws_copies():
    """Weights set by hand so that the generator shows a stored digit (its output bias)
    whatever the noise: every sample the judge draws is a copy."""
    label = "vanilla GAN"
    digit = _digits(1, seed=5)[0]
    weights = [np.zeros(w.shape, np.float32) for w in _fresh_generator_weights(label)]
    weights[-1] = np.arctanh(np.clip(digit, -0.999, 0.999)).astype(np.float32)
    fns = _functions(label)
    step = _forged_step(label, {"sketch_beside": "same", **_sent(
        weights, np.tile(np.tanh(weights[-1]), (gan_samples.PROBE_ROWS, 1)))})
    with pytest.raises(AssertionError, match="1,000 samples are copies of MNIST digits"):
        gan_judge.judged_score(label, **dict(fns, train_step=step))


def test_a_mistake_trains_in_full_in_the_kernel_and_the_judge_scores_its_samples(monkeypatch, capsys):
    """A flipped generator loss replays differently: the full recipe (cut to 20 steps here)
    trains beside the student's functions and only its samples come back, scored here."""
    import tensorflow as tf
    monkeypatch.setitem(gan_training.RECIPES, "vanilla GAN", {"steps": 20, "batch_size": 64, "average": False})

    def flipped(scores_fake):
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(scores_fake), scores_fake))
    score = gan_judge.judged_score("vanilla GAN", **_functions("vanilla GAN", g_loss_fn=flipped))
    out = capsys.readouterr().out
    assert not score["replayed"] and score["steps"] == 20 and score["n"] == 1000
    assert score["confident"] < 0.05, score
    assert "the replayed steps differ" in out and "its samples scored by the grader" in out
    assert "1,000 drawn by the grader from your trained generator's weights" in out


def test_copies_are_digits_within_the_stated_distance_and_real_variations_are_not():
    """COPY_RMS: MNIST digits (and with noise of RMS 0.02) are copies; the same digits
    shifted by two pixels, and blends of two digits, are not."""
    digits = _digits(200, seed=3)
    assert gan_judge.copies(digits) == 200
    noisy = np.clip(digits + np.random.default_rng(2).normal(0, 0.02, digits.shape), -1, 1)
    assert gan_judge.copies(noisy) == 200
    shifted = np.roll(digits.reshape(-1, 28, 28), 2, axis=2).reshape(-1, 784)
    assert gan_judge.copies(shifted) == 0
    assert gan_judge.copies((digits[:100] + digits[100:]) / 2) == 0
    rms = gan_judge.nearest_digit_rms(shifted)
    assert rms.min() > 2 * gan_judge.COPY_RMS


def test_graded_score_leaves_a_proxy_to_the_judge():
    """Under the judge the notebook's visible call returns None (its hidden test scores the
    submission with judged_score); it never trains proxies of the student's functions."""
    assert gan_training.graded_score("DCGAN", {"confident": 1.0}, **_functions("DCGAN")) is None


def test_a_sketch_must_be_data():
    """What comes back as a sketch is read only if it is plain data: a proxy of an object in
    the kernel (whose methods would run there), or parts of one, is not a sketch."""
    ref = gan_replay._load_sketches("vanilla GAN")["simultaneous", 2, "AVX512_CORE"]
    ref = {"shapes": gan_replay._shapes(ref), **{k: ref[k] for k in ("norms", "projections", "losses")}}
    assert gan_replay.sketches_differ(dict(ref), ref) == 0
    for forged in (InKernel(ref), dict(ref, norms=InKernel(ref["norms"])), dict(ref, shapes=[InKernel([1])]),
                   dict(ref, losses=[[0.0, 0.0]] * 12), dict(ref, shapes="23")):
        assert gan_replay.sketches_differ(forged, ref) == np.inf


def _dc_variant(bn_first, hidden, epsilon, use_bias):
    """A DCGAN generator of the quiz's shape written another way, with drawn weights and
    batch statistics that are not the defaults."""
    import keras
    from keras import layers

    def block(layer, bn):
        return [layer, bn, hidden()] if bn_first else [layer, hidden(), bn]
    model = keras.Sequential([
        keras.Input((96,)),
        *block(layers.Dense(1024, use_bias=use_bias), layers.BatchNormalization(epsilon=epsilon)),
        *block(layers.Dense(6272, use_bias=use_bias), layers.BatchNormalization(epsilon=epsilon)),
        layers.Reshape((7, 7, 128)),
        *block(layers.Conv2DTranspose(64, 4, strides=2, padding="same"), layers.BatchNormalization(epsilon=epsilon)),
        layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh"), layers.Reshape((784,))])
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) + (1.0 if "gamma" in w.path else 0.0)
                       for w in model.weights])
    return model


@pytest.mark.parametrize("bn_first, hidden, epsilon, use_bias, want", [
    (False, "ReLU", 1e-3, True, "ReLU, tanh output, batch norm after/after/after the activations, epsilon 0.001"),
    (True, "ReLU", 1e-5, False, "ReLU, tanh output, batch norm before/before/before the activations, epsilon 1e-05"),
    (False, "LeakyReLU", 1e-3, True, "LeakyReLU(0.2), tanh output, batch norm after/after/after")])
def test_the_judge_recomputes_the_kernels_generator_as_it_was_written(bn_first, hidden, epsilon, use_bias, want):
    """The judge's NumPy recomputation, on noise the kernel never saw, gives the generator's
    own images (batch norm with the batch's statistics, as the graded samples are made) in
    the variant that matches its probe images: BN before or after the activation, PyTorch's
    epsilon, no bias before BN (zeros), LeakyReLU instead of ReLU."""
    import keras
    from keras import layers
    act = {"ReLU": layers.ReLU, "LeakyReLU": lambda: layers.LeakyReLU(negative_slope=0.2)}[hidden]
    model = _dc_variant(bn_first, act, epsilon, use_bias)
    assert isinstance(model, keras.Model)
    rng = np.random.default_rng(7)
    probe = rng.uniform(-1, 1, (gan_samples.PROBE_ROWS, 96)).astype(np.float32)
    z = rng.uniform(-1, 1, (300, 96)).astype(np.float32)
    trained = _trained(model.weights, np.asarray(gan_training.generate(model, probe)))
    images, variant = gan_samples.samples_from_weights("DCGAN", trained, probe, z)
    assert variant.startswith(want), variant
    own = np.asarray(gan_training.generate(model, z))
    assert np.abs(images - own).max() < 1e-3 * np.abs(own).max()


def test_the_judges_noise_follows_the_law_of_the_students_not_its_values():
    """U(-1, 1) when the submission's noise is the quiz's; a generator trained on U(0, 1) or
    normal noise is sampled on that law; values the kernel picks (0/1 coins, sparse spikes)
    give only a uniform or normal law of their moments. Anything but a (20000, 96) array of
    finite numbers is refused."""
    rng = np.random.default_rng(0)
    cases = {"U(-1, 1)": rng.uniform(-1, 1, (20000, 96)), "U(0, 1)": rng.uniform(0, 1, (20000, 96)),
             "N(0, 1^2)": rng.normal(0, 1, (20000, 96)), "U(0, 1) coins": rng.integers(0, 2, (20000, 96)),
             "N(0.01, 0.1^2)": (rng.uniform(0, 1, (20000, 96)) < 0.01).astype(np.float64)}
    for want, noise in cases.items():
        law, draw = gan_samples.noise_law(noise)
        assert law == want.split(" coins")[0], (want, law)
        z = draw(np.random.default_rng(1), 1000)
        assert z.shape == (1000, 96) and z.dtype == np.float32 and len(np.unique(z)) > 90_000
    for bad in (rng.uniform(0, 1, (20000, 95)), np.full((20000, 96), np.inf), InKernel(np.zeros((20000, 96))),
                [[0.0] * 96] * 20000, np.zeros((10, 96)), np.zeros((40000, 96))):
        with pytest.raises(AssertionError, match="sample_noise"):
            gan_samples.noise_law(bad)


def test_noise_that_crossed_the_wire_as_a_tensor_is_read():
    import tensorflow as tf
    assert gan_samples.noise_law(tf.random.uniform((20000, 96), -1, 1))[0] == "U(-1, 1)"


def _dc_generator_without_input(noise_dim):
    """The quiz's DCGAN generator as a student may write it: no keras.Input (Keras makes the
    weights on the first call)."""
    import keras
    from keras import layers
    return keras.Sequential([
        layers.Dense(1024, activation="relu"), layers.BatchNormalization(),
        layers.Dense(7 * 7 * 128, activation="relu"), layers.BatchNormalization(), layers.Reshape((7, 7, 128)),
        layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu"), layers.BatchNormalization(),
        layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh"), layers.Reshape((784,))])


def _vanilla_without_input():
    import keras
    from keras import layers

    def discriminator():
        return keras.Sequential([layers.Dense(256), layers.LeakyReLU(negative_slope=0.01),
                                 layers.Dense(256), layers.LeakyReLU(negative_slope=0.01), layers.Dense(1)])

    def generator(noise_dim):
        return keras.Sequential([layers.Dense(1024, activation="relu"), layers.Dense(1024, activation="relu"),
                                 layers.Dense(784, activation="tanh")])
    return discriminator, generator


def test_models_without_keras_input_are_built_before_their_weights_are_read(monkeypatch):
    """A correct DCGAN generator written without keras.Input (the checkers accept it) has no
    weights until called: G_avg must still average G, the judge must get its weights, and the
    replay must read its weights too (it replays like the reference)."""
    monkeypatch.setitem(gan_training.RECIPES, "DCGAN", {"steps": 2, "batch_size": 16, "average": True})
    ref = gan_judge.reference_functions("DCGAN")
    generator = _dc_generator_without_input
    assert not generator(96).weights
    probe = np.random.default_rng(0).uniform(-1, 1, (gan_samples.PROBE_ROWS, 96)).astype(np.float32)
    answer = gan_training.graded_generator(ref["train_step"], "DCGAN", ref["discriminator"], generator,
                                           ref["d_loss_fn"], ref["g_loss_fn"],
                                           gan_judge.solution_functions()["sample_noise"], probe)
    assert [tuple(s) for s in answer["shapes"]] == [tuple(s) for _, s in gan_samples._spec("DCGAN")]
    assert answer["epsilons"] == [1e-3] * 3
    trained = gan_samples.fetch_weights(answer, lambda start: gan_training.trained_chunk(None, start),
                                        gan_training.CHUNK)
    gan_samples.samples_from_weights("DCGAN", trained, probe, probe)
    mine = gan_training._CACHE["trained"].copy()
    gan_training.graded_generator(ref["train_step"], "DCGAN", ref["discriminator"], ref["generator"],
                                  ref["d_loss_fn"], ref["g_loss_fn"], gan_judge.solution_functions()["sample_noise"],
                                  probe)
    assert np.allclose(mine, gan_training._CACHE["trained"], rtol=1e-5, atol=1e-6)   # as with keras.Input
    label = "vanilla GAN"
    fns = gan_judge.reference_functions(label)
    discriminator, generator = _vanilla_without_input()
    mine = gan_replay.sketch(label, **dict(fns, generator=generator, discriminator=discriminator), seed=11)
    assert gan_replay.sketches_differ(mine, gan_replay.sketch(label, **fns, seed=11)) <= gan_replay.TOLERANCE


def test_the_dcgans_weights_reach_the_judge_in_answers_under_the_wires_cap(monkeypatch):
    """The DCGAN's generator (6.7 M values, 36 MB as one encoded answer) is fetched in chunks,
    each under the judge's cap on one answer (helpers/grading/bridge.py), and arrives whole."""
    import json

    from helpers.grading import bridge, wire
    monkeypatch.setitem(gan_training.RECIPES, "DCGAN", {"steps": 1, "batch_size": 16, "average": True})
    ref = gan_judge.reference_functions("DCGAN")
    probe = np.random.default_rng(0).uniform(-1, 1, (gan_samples.PROBE_ROWS, 96)).astype(np.float32)
    answer = gan_training.graded_generator(ref["train_step"], "DCGAN", ref["discriminator"], ref["generator"],
                                           ref["d_loss_fn"], ref["g_loss_fn"],
                                           gan_judge.solution_functions()["sample_noise"], probe)
    sender = object.__new__(bridge.StudentKernel)
    sizes = []

    def fetch(start):
        chunk = gan_training.trained_chunk(None, start)
        sizes.append(len(json.dumps(wire.encode(chunk, sender._outgoing))))
        return chunk
    trained = gan_samples.fetch_weights(answer, fetch, gan_training.CHUNK)
    assert len(sizes) == 2 and max(sizes) < bridge.MAX_ANSWER_BYTES, sizes
    assert sum(w.size for w in trained["weights"]) > 6_600_000
    images, variant = gan_samples.samples_from_weights("DCGAN", trained, probe, probe)
    assert np.abs(images - answer["probe"]).max() < 1e-3 and variant.startswith("ReLU, tanh output")


def _subclassed_dc_generator(noise_dim):
    """The quiz's DCGAN generator as a subclassed model whose layers are made in another
    order than they are called (its weights, in Keras' order, start with the last layer's),
    batch norm without offset in one block and without scale in another."""
    import keras
    from keras import layers

    class Generator(keras.Model):
        def __init__(self):
            super().__init__()
            self.to_image = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh")
            self.norms = [layers.BatchNormalization(center=False), layers.BatchNormalization(scale=False),
                          layers.BatchNormalization()]
            self.up = layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu")
            self.dense = [layers.Dense(1024, activation="relu"), layers.Dense(7 * 7 * 128, activation="relu")]

        def call(self, z, training=False):
            h = self.norms[0](self.dense[0](z), training=training)
            h = keras.ops.reshape(self.norms[1](self.dense[1](h), training=training), (-1, 7, 7, 128))
            h = self.norms[2](self.up(h), training=training)
            return keras.ops.reshape(self.to_image(h), (-1, 784))
    return Generator()


def test_a_subclassed_generator_without_batch_norm_offset_or_scale_is_recomputed(monkeypatch):
    """Correct code written otherwise reaches the full run's samples: the kernel sends the
    weights in the order the generator calls its layers, and the judge reads batch norm
    without offset (zeros) or scale (ones)."""
    monkeypatch.setitem(gan_training.RECIPES, "DCGAN", {"steps": 2, "batch_size": 16, "average": True})
    ref = gan_judge.reference_functions("DCGAN")
    probe = np.random.default_rng(0).uniform(-1, 1, (gan_samples.PROBE_ROWS, 96)).astype(np.float32)
    answer = gan_training.graded_generator(ref["train_step"], "DCGAN", ref["discriminator"], _subclassed_dc_generator,
                                           ref["d_loss_fn"], ref["g_loss_fn"],
                                           gan_judge.solution_functions()["sample_noise"], probe)
    assert answer["shapes"][:2] == [[96, 1024], [1024]], answer["shapes"][:4]
    trained = gan_samples.fetch_weights(answer, lambda start: gan_training.trained_chunk(None, start),
                                        gan_training.CHUNK)
    images, variant = gan_samples.samples_from_weights("DCGAN", trained, probe, probe)
    assert np.abs(images - answer["probe"]).max() < 1e-3, variant
    assert variant.startswith("ReLU, tanh output, batch norm after/after/after"), variant
