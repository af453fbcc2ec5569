"""The judge's score of a GAN quality test: computed here, from data the student's kernel returns.

    from helpers.grading.gan_judge import judged_score
    score = judged_score("DCGAN", discriminator=dc_discriminator, generator=dc_generator,
                         d_loss_fn=discriminator_loss, g_loss_fn=generator_loss,
                         train_step=gan_train_step, sample_noise=sample_noise)

``gans``' quality cells run in the grader's trusted kernel (:mod:`helpers.grading.judge`);
the submission's functions are proxies of objects in the student's kernel. Two paths, both
decided here:

1. **Replay.** The judge draws a fresh seed; the student's kernel replays
   :data:`helpers.gan_replay.REPLAY_STEPS` steps of the recipe from initial kernels, batches
   and noise drawn from that seed (:func:`helpers.gan_replay.sketch_beside`) and returns the
   sketch (per-tensor norms and random-sign projections of the weights' change, the losses)
   as data. The judge replays the same steps with the solution notebook's functions, in its
   own process, on the same seed and thread count, and compares. Within
   :data:`helpers.gan_replay.TOLERANCE`: the submission trains as the recipe does, and the
   recipe's full run measured on the reference (``data/expected/gan_scores.json``) is its
   score. The seed is the judge's draw (:mod:`helpers.grading.draws`), so no stored sketch answers it.
2. **Full run.** Otherwise the student's kernel trains the full recipe from the submission's
   functions (:func:`helpers.gan_training.graded_generator`) and returns the trained
   generator's weights (in chunks, :func:`helpers.gan_training.trained_chunk`) and its
   images of a few probe noise vectors the judge sent. The judge recomputes the generator
   from the weights (:mod:`helpers.grading.gan_samples`, the variant that reproduces the
   probe images), draws 1,000 samples from it on noise the kernel never saw, checks that none is a copy of an MNIST digit (:func:`copies`) and scores
   them with the trusted MNIST classifier.

What a hostile kernel can still do on path 2: send weights it set by hand rather than
trained, a generator of the quiz's shape that draws from digits it stores (it must then
make new images of them on noise it does not know, and no sample may be a near-copy).
Path 1 cannot be answered without running the recipe's training on the fresh seed.
"""
from __future__ import annotations

import time

import numpy as np

from helpers import gan_replay, gan_training
from helpers.checks._compare import fresh_seed
from helpers.rebuildable import beside

from . import gan_samples
from .course import SOLUTIONS

SOLUTION = SOLUTIONS / "gans" / "gans.ipynb"

#: A sample whose nearest MNIST digit (training or test set) is closer than this RMS pixel
#: distance (pixels in [-1, 1]) is a copy. Measured: distinct real digits are >= 0.079 apart
#: (1,000 test digits against the training set: minimum 0.079, 1st percentile 0.088).
COPY_RMS = 0.04

#: Which solution functions each graded GAN trains with.
FUNCTIONS = {
    "vanilla GAN": ("discriminator", "generator", "discriminator_loss", "generator_loss"),
    "LSGAN": ("discriminator", "generator", "ls_discriminator_loss", "ls_generator_loss"),
    "DCGAN": ("dc_discriminator", "dc_generator", "discriminator_loss", "generator_loss"),
}

_CACHE = {}


def solution_functions():
    """The solution notebook's answer cells, run here once: dict name -> object."""
    if "ns" not in _CACHE:
        import keras
        import tensorflow as tf
        from keras import layers

        from helpers.authoring import solution_namespace
        _CACHE["ns"] = solution_namespace(SOLUTION, {"np": np, "tf": tf, "keras": keras, "layers": layers})
    return _CACHE["ns"]


def reference_functions(label):
    """The solution notebook's functions for ``label``'s recipe (its answer cells, run here)."""
    ns = solution_functions()
    d, g, dl, gl = (ns[n] for n in FUNCTIONS[label])
    return dict(discriminator=d, generator=g, d_loss_fn=dl, g_loss_fn=gl, train_step=ns["gan_train_step"])


def _mnist_digits():
    """MNIST's training and test digits, (70000, 784) float32 in [-1, 1], and their squared norms."""
    if "digits" not in _CACHE:
        from helpers.data.mnist import load_mnist
        x_train, _, x_test, _ = load_mnist(scale="tanh", flatten=True)
        digits = np.concatenate([x_train, x_test]).astype(np.float32)
        _CACHE["digits"] = digits, (digits ** 2).sum(1)
    return _CACHE["digits"]


def nearest_digit_rms(images):
    """RMS pixel distance of each image (N, 784) to its nearest MNIST digit: (N,) float64."""
    digits, norms = _mnist_digits()
    q = np.asarray(images, np.float32)
    best = np.full(len(q), np.inf)
    sq = (q.astype(np.float64) ** 2).sum(1)
    for i in range(0, len(digits), 10_000):
        d2 = sq[:, None] - 2.0 * (q @ digits[i:i + 10_000].T) + norms[None, i:i + 10_000]
        best = np.minimum(best, d2.min(1))
    return np.sqrt(np.maximum(best, 0) / q.shape[1])


def copies(images):
    """How many of ``images`` (N, 784) are copies of an MNIST digit (:data:`COPY_RMS`)."""
    return int((nearest_digit_rms(images) < COPY_RMS).sum())


def _replay(label, fns):
    """(True, how) when the student's kernel replays the recipe's steps as the judge does."""
    reason = gan_replay.noise_like_recipe(fns["sample_noise"], gan_training.NOISE_DIM)
    if reason:
        return False, reason
    seed = fresh_seed() % 2**31
    try:
        got = beside(fns["train_step"], gan_replay.sketch_beside, label, seed, fns["discriminator"],
                     fns["generator"], fns["d_loss_fn"], fns["g_loss_fn"])
    except Exception as exc:                                 # noqa: BLE001 - any failure: full run
        return False, f"the replay failed ({type(exc).__name__}: {str(exc)[:200]})"
    ref = gan_replay.sketch(label, seed=seed, **reference_functions(label))
    distance = gan_replay.sketches_differ(got, ref)
    steps = gan_replay.REPLAY_STEPS[label]
    if distance <= gan_replay.TOLERANCE:
        return True, (f"{steps} replayed steps on a fresh seed match the judge's own replay of the recipe "
                      f"(largest relative difference {distance:.1e}, tolerance {gan_replay.TOLERANCE:g})")
    far = "another architecture, or not a replay" if not np.isfinite(distance) else \
        f"largest relative difference {distance:.2g} > {gan_replay.TOLERANCE:g}"
    return False, f"the replayed steps differ from the recipe's ({far})"


def _samples(label, fns):
    """The full recipe trained in the student's kernel; its 1,000 graded samples drawn here
    from the generator's weights (:mod:`helpers.grading.gan_samples`) and checked."""
    law, draw = gan_samples.noise_law(fns["sample_noise"](gan_samples.NOISE_ROWS, gan_training.NOISE_DIM))
    probe = draw(np.random.default_rng(fresh_seed()), gan_samples.PROBE_ROWS)
    z = draw(np.random.default_rng(fresh_seed()), 1000)             # never leaves the judge
    answer = beside(fns["train_step"], gan_training.graded_generator, label, fns["discriminator"],
                    fns["generator"], fns["d_loss_fn"], fns["g_loss_fn"], fns["sample_noise"], probe)
    trained = gan_samples.fetch_weights(
        answer, lambda start: beside(fns["train_step"], gan_training.trained_chunk, start), gan_training.CHUNK)
    images, variant = gan_samples.samples_from_weights(label, trained, probe, z)
    if not np.all(np.isfinite(images)) or np.abs(images).max() > 1 + 1e-5:
        raise AssertionError(f"the {label}'s samples are not finite images in [-1, 1]")
    n_copies = copies(images)
    if n_copies:
        raise AssertionError(f"{n_copies} of the {label}'s 1,000 samples are copies of MNIST digits "
                             f"(nearest digit within RMS {COPY_RMS} per pixel): samples must be generated")
    print(f"graded samples: 1,000 drawn by the grader from your trained generator's weights "
          f"(recomputed as {variant}) on {law} noise your kernel never saw")
    return images


def judged_score(label, *, discriminator, generator, d_loss_fn, g_loss_fn, train_step, sample_noise):
    """The score of ``label``'s graded recipe for the submission's functions, decided here.

    Inputs: label ("vanilla GAN", "LSGAN", "DCGAN"); the submission's functions (proxies
    under the judge, plain functions elsewhere): discriminator(), generator(noise_dim), the
    losses, train_step(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn), sample_noise(n, dim).

    Returns the dict of :func:`helpers.mnist_classifier.score_samples` (confident, modes,
    recognizable, counts, n) plus ``steps`` (and ``replayed``: True on the replay path).
    Raises AssertionError when the full run's samples are not images the quiz asks for.
    """
    from helpers.mnist_classifier import format_score, score_samples
    if label not in gan_training.RECIPES:
        raise ValueError(f"unknown GAN {label!r}: expected one of {sorted(gan_training.RECIPES)}")
    recipe = gan_training.RECIPES[label]
    fns = dict(discriminator=discriminator, generator=generator, d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn,
               train_step=train_step, sample_noise=sample_noise)
    same, why = _replay(label, fns)
    if same:
        score = {**gan_replay.stored_score(label), "steps": recipe["steps"], "replayed": True}
        print(f"graded replay: your functions train exactly as the {label} recipe does: {why}. "
              f"The recipe's full run ({recipe['steps']} steps of {recipe['batch_size']}, seed 0), "
              f"measured on the reference solution, is your result: {format_score(score)}")
        return score
    print(f"graded replay: {why}; training the full recipe instead")
    start = time.time()
    images = _samples(label, fns)
    score = {**score_samples(images), "steps": recipe["steps"], "replayed": False}
    print(f"graded run: the {label} trained from your functions ({recipe['steps']} steps of "
          f"{recipe['batch_size']}, seed 0, {time.time() - start:.0f} s); its samples scored by the "
          f"grader: {format_score(score)}")
    return score
