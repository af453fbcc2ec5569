"""The GAN quiz's training loop, and the graded runs of its quality tests.

    from helpers.gan_training import train_gan, graded_score
    score = train_gan(D, G, discriminator_loss, generator_loss, steps=1500, label="DCGAN",
                      train_step=gan_train_step, sample_noise=sample_noise, batch_size=128,
                      G_avg=dc_generator(96))
    score["confident"], score["modes"], score["steps"]

``train_gan`` walks through the shuffled MNIST training digits (scaled to [-1, 1]) in
batches, calls the student's ``train_step`` (compiled with ``tf.function``) with fresh
noise from the student's ``sample_noise``, shows 20 samples from fixed noise with their
score at intervals, and scores 1,000 samples with :mod:`helpers.mnist_classifier` at the
end. Adam with learning rate 1e-3 and beta_1 0.5 for both networks, as in cs231n.

With ``G_avg`` (a second generator built like G) it also keeps an exponential moving
average of G's weights (each step ``avg = 0.995 avg + 0.005 w``, about the last 200 steps;
Yazici et al., 2019) and draws the samples from it: the DCGAN's digits are cleaner.

**Graded runs.** A quality test must not trust a score that the notebook computed: a
submission can assign ``dc_score = {"confident": 1.0, ...}`` in any cell, or train with a
loop it changed. ``graded_score`` therefore trains again, in the test cell, from the
submission's functions with the fixed recipe of :data:`RECIPES` (seed 0), whenever it runs
in a grading kernel; in a student's own kernel it returns the score of the student's run
(the notebook's training cell), so nothing is trained twice. The notebook's training cells
skip training when graded (``env.GRADING``), so autograding takes the same time as before.

**Replay first.** Before that full run, :mod:`helpers.gan_replay` replays a few steps of the
recipe from fixed weights, data and noise with the submission's functions: when they train
exactly as the reference does, the recipe's full run measured on the reference is the result
(seconds instead of minutes); otherwise the full recipe trains as described above.
``COURSE_GAN_FULL_RUN=1`` always trains the full recipe.
"""
from __future__ import annotations

import os
import time

import numpy as np

from helpers import env  # noqa: F401  (quiet TF before importing it)
from helpers.rebuildable import in_another_kernel

#: Size of the noise vector z.
NOISE_DIM = 96

#: The graded runs: training steps, batch size, whether samples come from the averaged G.
RECIPES = {
    "vanilla GAN": {"steps": 5000, "batch_size": 64, "average": False},
    "LSGAN": {"steps": 5000, "batch_size": 64, "average": False},
    "DCGAN": {"steps": 1500, "batch_size": 128, "average": True},
}

_CACHE = {}


def training_images():
    """MNIST's 60,000 training digits, (60000, 784) float32 in [-1, 1] (loaded once)."""
    if "x" not in _CACHE:
        from helpers.data.mnist import load_mnist
        _CACHE["x"] = load_mnist(scale="tanh", flatten=True)[0]
    return _CACHE["x"]


def generate(G, z):
    """Images G(z), shape (N, 784), for N noise vectors z (N, NOISE_DIM).

    training=True: batch normalization (DCGAN) normalizes with the statistics of these N
    samples instead of its running averages, which lag behind a generator that changes fast
    in a short run (momentum 0.99 averages over ~100 steps). No effect on the vanilla GAN.
    """
    return G(z, training=True)


def build_models(D, G, G_avg=None, noise_dim=NOISE_DIM):
    """Make the models' weights now, in the order D, G, G_avg: a Sequential without
    keras.Input, or a subclassed model, makes them on its first call (here on zeros), so that
    G_avg can copy G's and the weights can be read before training."""
    from helpers.checks._models import _build
    for model, width in ((D, 784), (G, noise_dim), (G_avg, noise_dim)):
        if model is not None:
            _build(model, (width,))


def _averaged_pairs(G, G_avg, label):
    if [w.shape for w in G_avg.weights] != [w.shape for w in G.weights]:
        raise ValueError(f"{label}: G_avg must be built like G (same layers, same noise size)")
    return [(avg, w) for avg, w in zip(G_avg.weights, G.weights) if "float" in str(w.dtype)]


def train_gan(D, G, d_loss_fn, g_loss_fn, steps, label, *, train_step, sample_noise,
              show_every=None, batch_size=64, learning_rate=1e-3, beta_1=0.5, seed=0,
              G_avg=None, avg_decay=0.995, noise_dim=NOISE_DIM, x_train=None, progress=True,
              sampler_only=False):
    """Train D and G for ``steps`` steps; returns the classifier's score of 1,000 samples.

    Inputs:
    - D, G: Keras models; D maps images (N, 784) to logits (N, 1), G noise (N, Z) to
      images (N, 784) in [-1, 1].
    - d_loss_fn(scores_real, scores_fake), g_loss_fn(scores_fake): the losses.
    - steps: number of training steps; label: name in titles and messages.
    - train_step(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn) -> (d_loss, g_loss): one step.
    - sample_noise(batch_size, dim): (batch_size, dim) noise.
    - show_every: show 20 samples (from fixed noise) every this many steps, or None.
    - G_avg: None, or a second generator built like G that keeps the moving average of
      G's weights (decay ``avg_decay``); the samples shown and scored then come from it.
    - x_train: (M, 784) real images in [-1, 1]; default MNIST's training digits.

    Returns the dict of :func:`helpers.mnist_classifier.score_samples` (confident, modes,
    recognizable, counts, n) plus ``steps``; with ``sampler_only``, the trained model the
    samples come from (G, or G_avg), unscored and unshown.
    """
    import tensorflow as tf
    import keras
    from IPython.display import display
    from tqdm.auto import tqdm

    from helpers.mnist_classifier import format_score, score_samples
    from helpers.plots.gans import show_images

    x_train = training_images() if x_train is None else np.asarray(x_train, np.float32)
    if x_train.ndim != 2 or x_train.shape[1] != 784 or len(x_train) < batch_size:
        raise ValueError(f"{label}: x_train must be (M, 784) with M >= batch_size {batch_size}, "
                         f"got {x_train.shape}")
    build_models(D, G, G_avg, noise_dim=noise_dim)
    D_opt = keras.optimizers.Adam(learning_rate, beta_1=beta_1)
    G_opt = keras.optimizers.Adam(learning_rate, beta_1=beta_1)
    sampler = G if G_avg is None else G_avg
    pairs = [] if G_avg is None else _averaged_pairs(G, G_avg, label)
    for avg, weights in pairs:
        avg.assign(weights)

    def train_and_average(x, z):
        losses = train_step(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn)
        for avg, weights in pairs:
            avg.assign(avg_decay * avg + (1.0 - avg_decay) * weights)
        return losses

    step = tf.function(train_and_average)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_train))            # epochs of shuffled digits
    z_eval = sample_noise(1000, noise_dim)           # fixed: the first 20 are shown at intervals
    start = time.time()
    usable = len(x_train) - len(x_train) % batch_size
    bar = tqdm(range(1, steps + 1), desc=label, mininterval=2, disable=not progress)
    for i in bar:
        start_at = (i - 1) * batch_size % usable
        if i > 1 and start_at == 0:
            order = rng.permutation(len(x_train))
        x = tf.constant(x_train[order[start_at:start_at + batch_size]])           # (N, 784)
        d_loss, g_loss = step(x, sample_noise(batch_size, noise_dim))
        if i % 50 == 0:
            bar.set_postfix(d_loss=f"{float(d_loss):.3f}", g_loss=f"{float(g_loss):.3f}")
        if show_every and i % show_every == 0 and i < steps:
            images = generate(sampler, z_eval)
            display(show_images(images[:20], f"{label}, step {i}: {format_score(score_samples(images), short=True)}"))
    if sampler_only:
        return sampler
    images = generate(sampler, z_eval)
    score = score_samples(images)
    if show_every:
        display(show_images(images[:20], f"{label}, step {steps}: {format_score(score, short=True)}"))
    print(f"{label}: {steps} steps in {time.time() - start:.0f} s; {format_score(score)}")
    return {**score, "steps": steps}


#: Weight values per answer when the trained generator goes to the judge: 4 Mi float32
#: (16 MiB, ~22 MiB as the wire encodes them), under the judge's 32 MiB cap on one answer
#: (the DCGAN's generator has 6.7 M values).
CHUNK = 4 * 2**20


def graded_generator(train_step, label, discriminator, generator, d_loss_fn, g_loss_fn, sample_noise, probe):
    """Train the generator of ``label``'s graded recipe (:data:`RECIPES`, seed 0) from the
    submission's functions; keep its weights here for :func:`trained_chunk`.

    Inputs: the submission's functions; probe: (P, NOISE_DIM) noise vectors.
    Returns {"shapes": the shapes of the weights of the model the samples come from (G_avg
    for the DCGAN), float tensors layer by layer in the order G calls its layers (Keras' order
    for a Sequential; a subclassed model's may differ); "probe": its images of ``probe`` (P, 784)
    float32, made as :func:`generate` makes them; "epsilons": its BatchNormalization layers'
    epsilons}. Under the grader's judge this runs in the
    student's kernel (:func:`helpers.rebuildable.beside`, ``train_step`` first); the judge
    fetches the weights and draws the graded samples from them itself, on noise this kernel
    never sees.
    """
    sampler = _recipe_run(label, discriminator, generator, d_loss_fn, g_loss_fn, train_step, sample_noise,
                          progress=False, sampler_only=True)
    import tensorflow as tf
    with tf.GradientTape() as tape:                  # it sees the variables in the order G reads them
        images = np.asarray(generate(sampler, np.asarray(probe, np.float32)), np.float32)
    weights = [np.asarray(w, np.float32) for w in _in_call_order(sampler.weights, tape.watched_variables())
               if "float" in str(w.dtype)]
    _CACHE["trained"] = np.concatenate([w.ravel() for w in weights]) if weights else np.zeros(0, np.float32)
    return {"shapes": [list(w.shape) for w in weights], "probe": images,
            "epsilons": [float(layer.epsilon) for layer in sampler._flatten_layers()
                         if layer.__class__.__name__ == "BatchNormalization"]}


def _in_call_order(weights, read):
    """``weights`` (a model's, Keras' order) layer by layer in the order the variables ``read``
    (a tape's, in the order a forward pass read them) were first read; a layer none of whose
    weights were read (batch norm without offset and scale) stays after the layer it follows."""
    first = {}
    for i, variable in enumerate(read):
        first.setdefault(id(variable), i)
    layers = {}
    for w in weights:
        layers.setdefault(w.path.rsplit("/", 1)[0], []).append(w)
    order, key = [], -1
    for group in layers.values():
        key = min((first[id(w.value)] for w in group if id(w.value) in first), default=key)
        order.append((key, group))
    return [w for _, group in sorted(order, key=lambda pair: pair[0]) for w in group]


def trained_chunk(train_step, start):
    """Values ``start`` to ``start + CHUNK`` of the weights :func:`graded_generator` kept,
    flattened and joined in order: (<= CHUNK,) float32. (``train_step``: where it runs.)"""
    return _CACHE["trained"][int(start):int(start) + CHUNK]


def _recipe_run(label, discriminator, generator, d_loss_fn, g_loss_fn, train_step, sample_noise, **options):
    """:func:`train_gan` of ``label``'s recipe (:data:`RECIPES`, seed 0) from the functions."""
    recipe = RECIPES[label]
    env.seed_everything(0)
    D, G = discriminator(), generator(NOISE_DIM)
    G_avg = generator(NOISE_DIM) if recipe["average"] else None
    return train_gan(D, G, d_loss_fn, g_loss_fn, recipe["steps"], label, train_step=train_step,
                     sample_noise=sample_noise, batch_size=recipe["batch_size"], G_avg=G_avg, **options)


def graded_score(label, notebook_score, *, discriminator, generator, d_loss_fn, g_loss_fn,
                 train_step, sample_noise):
    """The score a quality test grades.

    In a grading kernel: trains ``label``'s recipe (:data:`RECIPES`, seed 0) here, from the
    submission's functions, and returns that score; ``notebook_score`` is ignored. Elsewhere:
    returns ``notebook_score``, the student's own run of the training cell.

    Inputs:
    - label: "vanilla GAN", "LSGAN" or "DCGAN".
    - notebook_score: the dict the notebook's training cell got from train_gan, or None.
    - discriminator(), generator(noise_dim): build the models; the losses; train_step;
      sample_noise: the submission's functions.
    """
    if label not in RECIPES:
        raise ValueError(f"unknown GAN {label!r}: expected one of {sorted(RECIPES)}")
    if in_another_kernel(discriminator, generator, d_loss_fn, g_loss_fn, train_step, sample_noise):
        return None      # under the grader's judge: its hidden test scores the submission itself
    if not env.grading_kernel():
        return env.notebook_result(notebook_score, f"no score for the {label}: run the training "
                                   "cell above (it needs all your functions) first")
    recipe = RECIPES[label]
    fns = dict(discriminator=discriminator, generator=generator, d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn,
               train_step=train_step, sample_noise=sample_noise)
    if os.environ.get("COURSE_GAN_FULL_RUN", "") != "1":
        from helpers.gan_replay import replay_verdict, stored_score
        same, why = replay_verdict(label, **fns)
        if same:
            from helpers.mnist_classifier import format_score
            score = {**stored_score(label), "steps": recipe["steps"], "replayed": True}
            print(f"graded replay: your functions train exactly as the {label} recipe does: {why}. "
                  f"The recipe's full run ({recipe['steps']} steps of {recipe['batch_size']}, seed 0), "
                  f"measured on the reference solution, is your result: {format_score(score)}")
            return score
        print(f"graded replay: {why}; training the full recipe instead")
    print(f"graded run: the {label} trained here from your functions "
          f"({recipe['steps']} steps of {recipe['batch_size']}, seed 0)")
    return _recipe_run(label, discriminator, generator, d_loss_fn, g_loss_fn, train_step, sample_noise,
                       show_every=500)
