"""Graded GAN samples the judge draws itself, from a generator trained in the student's kernel.

    from helpers.grading.gan_samples import noise_law, fetch_weights, samples_from_weights
    law, draw = noise_law(sample_noise(20000, 96))      # U(-1, 1), or the law the submission draws
    probe, z = draw(rng_a, 16), draw(rng_b, 1000)
    answer = {"shapes": [...], "probe": G(probe)}       # from the student's kernel, as data
    trained = fetch_weights(answer, fetch, chunk)       # the weights, chunk by chunk
    images, variant = samples_from_weights("DCGAN", trained, probe, z)   # (1000, 784), made here

The student's kernel trains the graded recipe and returns only the trained generator's
weights and its images of a few *probe* noise vectors. The judge recomputes the generator
in NumPy from those weights (the quiz's architecture, and the variants students really
write: LeakyReLU instead of ReLU, a sigmoid output, batch norm before or after the
activation, PyTorch's epsilon, layers without a bias before batch norm, batch norm without
offset or scale), keeps the variant whose outputs on the probe are the kernel's, and draws
the graded samples from it on noise the kernel never saw. So the samples are a generator's
outputs of the quiz's shape, not images the kernel chose.

The noise: the quiz's U(-1, 1), or, for a submission whose ``sample_noise`` draws another
law (U(0, 1), a normal), a uniform or normal law fitted to its values (:func:`noise_law`), so
that a generator trained on other noise is sampled on what it learned from.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from helpers.checks import gan_models as gm
from helpers.gan_replay import not_recipe_noise
from helpers.gan_training import NOISE_DIM
from helpers.rebuildable import plain_numbers

#: Noise vectors on which the kernel's generator and the judge's recomputation must agree.
PROBE_ROWS = 16
#: Agreement: max |kernel - judge| / max |judge| on the probe. Float32 against float64 differ
#: by ~3e-4 (DCGAN); variants that differ by less than this give the same samples to 1%.
MATCH_TOL = 1e-2
#: Hidden activations (the quiz's first) and outputs tried.
HIDDEN = {"ReLU": gm._relu, "LeakyReLU(0.01)": lambda h: gm._leaky(h, 0.01),
          "LeakyReLU(0.2)": lambda h: gm._leaky(h, 0.2), "LeakyReLU(0.3)": lambda h: gm._leaky(h, 0.3)}
OUTPUT = {"tanh": np.tanh, "sigmoid": gm._sigmoid}
#: Batch norm epsilons tried: Keras' default, PyTorch's (and the model's own, as its kernel says).
EPSILONS = (1e-3, 1e-5)


def _plain(value, what, shape=None):
    """``value`` as float64 if it is a plain array of finite numbers (of ``shape``), else raise."""
    if not plain_numbers(value):
        raise AssertionError(f"{what} is not an array of numbers")
    if shape is not None and value.shape != tuple(shape):
        raise AssertionError(f"{what} has shape {value.shape}, expected {tuple(shape)}")
    value = value.astype(np.float64)
    if not np.all(np.isfinite(value)):
        raise AssertionError(f"{what} is not finite")
    return value


#: Rows of noise the judge asks the submission's sample_noise for.
NOISE_ROWS = 20000


def noise_law(noise):
    """The law the judge draws its noise from, read off ``sample_noise(NOISE_ROWS, NOISE_DIM)``
    (an array, or a tensor the wire decoded, from the student's kernel).

    U(-1, 1), the quiz's, when the values look like it (:func:`helpers.gan_replay.not_recipe_noise`);
    otherwise a uniform law on their range (excess kurtosis below -0.6) or a normal law of
    their mean and standard deviation, each rounded to 0.01: a generator trained on another
    noise is sampled on what it learned, and the kernel can choose only among such laws, not
    the values. Returns (description, draw(rng, n) -> (n, NOISE_DIM) float32).
    Raises AssertionError when the values are not finite numbers of that shape.
    """
    import tensorflow as tf
    if issubclass(type(noise), tf.Tensor):                   # made here by the wire: plain data
        noise = noise.numpy()
    if not (isinstance(noise, np.ndarray) and noise.shape == (NOISE_ROWS, NOISE_DIM)):
        raise AssertionError(f"sample_noise({NOISE_ROWS}, {NOISE_DIM}) must return a ({NOISE_ROWS}, "
                             f"{NOISE_DIM}) array of numbers")
    z = _plain(noise, "sample_noise's noise")
    mean, std, low, high = z.mean(), z.std(), z.min(), z.max()
    if not_recipe_noise(z) is None:
        low, high = -1.0, 1.0
        return "U(-1, 1)", lambda rng, n: rng.uniform(low, high, (n, NOISE_DIM)).astype(np.float32)
    kurtosis = float(np.mean((z - mean) ** 4) / std ** 4 - 3) if std > 0 else 0.0
    if kurtosis < -0.6:
        low, high = round(float(low), 2), round(float(high), 2)
        return f"U({low:g}, {high:g})", lambda rng, n: rng.uniform(low, high, (n, NOISE_DIM)).astype(np.float32)
    mean, std = round(float(mean), 2), round(float(std), 2)
    return f"N({mean:g}, {std:g}^2)", lambda rng, n: rng.normal(mean, std, (n, NOISE_DIM)).astype(np.float32)


#: The most weight values the judge fetches (the DCGAN's generator has 6.7 M).
MAX_VALUES = 8_000_000


def fetch_weights(answer, fetch, chunk):
    """The trained generator's weights, fetched from the student's kernel in chunks.

    Inputs: answer: what :func:`helpers.gan_training.graded_generator` returned there
    ({"shapes": list of shapes, "probe": array}); fetch(start): that kernel's
    :func:`helpers.gan_training.trained_chunk` from ``start``; chunk: values per answer.
    Returns {"weights": list of float64 arrays of those shapes, "probe": the probe images}.
    Raises AssertionError when the shapes are not a list of shapes of at most
    :data:`MAX_VALUES` values in all, or a chunk is not the plain numbers announced.
    """
    shapes = answer.get("shapes") if isinstance(answer, dict) else None
    if not (type(shapes) is list and len(shapes) <= 1000 and all(
            type(s) is list and len(s) <= 4 and all(type(d) is int and 0 <= d <= MAX_VALUES for d in s)
            for s in shapes)):
        raise AssertionError("the trained generator did not come back as weights")
    sizes = [math.prod(s) for s in shapes]                   # Python ints: no overflow
    total = sum(sizes)
    if total > MAX_VALUES:
        raise AssertionError(f"the trained generator has {total:,} weight values, more than the quiz's "
                             f"generators (at most {MAX_VALUES:,})")
    parts = []
    for start in range(0, total, chunk):
        parts.append(_plain(fetch(start), "a chunk of the generator's weights", (min(chunk, total - start),)))
    flat = np.concatenate(parts) if parts else np.zeros(0)
    offsets = np.cumsum([0, *sizes])
    return {"weights": [flat[a:b].reshape(s) for a, b, s in zip(offsets[:-1], offsets[1:], shapes)],
            "probe": answer.get("probe"), "epsilons": answer.get("epsilons")}


#: Weights a layer may be built without, and what stands in for them: a Dense or
#: convolution without bias (``use_bias=False``, usual before batch norm), batch norm
#: without its offset or scale (``center=False``, ``scale=False``).
OPTIONAL = {"bias": np.zeros, "beta": np.zeros, "gamma": np.ones}


def _layouts(weights, spec):
    """The ways to read ``weights`` (list of arrays) as ``spec`` ([kind, shape], Keras' order),
    each weight of an :data:`OPTIONAL` kind present or absent (then its stand-in), all present
    first: yields lists of arrays in spec's order."""
    optional = [i for i, (kind, _) in enumerate(spec) if kind in OPTIONAL]
    for present in itertools.product((True, False), repeat=len(optional)):
        dropped = {i for i, keep in zip(optional, present) if not keep}
        wanted = [spec[i][1] for i in range(len(spec)) if i not in dropped]
        if len(wanted) == len(weights) and all(tuple(w.shape) == tuple(s) for w, s in zip(weights, wanted)):
            it = iter(weights)
            yield [OPTIONAL[kind](shape) if i in dropped else next(it) for i, (kind, shape) in enumerate(spec)]


def _variants(label, ws, epsilons=EPSILONS):
    """Each architecture variant, the quiz's first, as a list of (description, forward(z) ->
    (N, 784)) that differ only in batch norm's epsilon (the closest of them is used)."""
    if label != "DCGAN":
        pairs = list(zip(ws[0::2], ws[1::2]))
        for (h_name, hidden), (o_name, out) in itertools.product(HIDDEN.items(), OUTPUT.items()):
            yield [(f"{h_name}, {o_name} output", lambda z, h=hidden, o=out: gm._mlp(z, pairs, h, o))]
        return
    for (h_name, hidden), (o_name, out), order in itertools.product(HIDDEN.items(), OUTPUT.items(), gm.BN_ORDERS):
        where = "/".join("before" if first else "after" for first in order)
        yield [(f"{h_name}, {o_name} output, batch norm {where} the activations, epsilon {eps:g}",
                lambda z, h=hidden, o=out, b=order, e=eps: gm._dc_g_forward(
                    z, ws, [h] * 3, o, eps=(e,) * 3, bn_first=b, batch_stats=True)) for eps in epsilons]


def _spec(label):
    return gm.dc_generator_spec(NOISE_DIM) if label == "DCGAN" else gm._dense_spec([NOISE_DIM, 1024, 1024, 784])


def samples_from_weights(label, trained, probe, z):
    """The graded samples of ``label``'s generator, computed here from its trained weights.

    Inputs:
    - label: "vanilla GAN", "LSGAN" or "DCGAN".
    - trained: what the student's kernel returned, {"weights": list of arrays in Keras'
      order, "probe": (PROBE_ROWS, 784) its generator's images of ``probe``}.
    - probe: (PROBE_ROWS, NOISE_DIM) the noise the kernel was sent; z: (N, NOISE_DIM) noise
      it never saw.
    Returns (images (N, 784) float32, the variant's description). Raises AssertionError when
    the weights are not the quiz's generator, or no variant gives the kernel's probe images.
    """
    if not (isinstance(trained, dict) and isinstance(trained.get("weights"), list)):
        raise AssertionError(f"the {label}'s trained generator did not come back as weights")
    weights = [_plain(w, f"a weight of the {label}'s generator") for w in trained["weights"]]
    seen = _plain(trained.get("probe"), f"the {label}'s images of the probe noise", (len(probe), 784))
    layouts = list(_layouts(weights, _spec(label)))
    if not layouts:
        shown = ", ".join(str(w.shape) for w in weights[:8]) + (", ..." if len(weights) > 8 else "")
        raise AssertionError(
            f"the {label}'s trained generator has {len(weights)} weights of shapes {shown}, not the "
            "quiz's generator: the grader draws the graded samples from the quiz's architecture only")
    said = trained.get("epsilons")                             # the model's own, as its kernel says
    said = [e for e in said if type(e) is float and 1e-8 <= e <= 1.0] if type(said) is list else []
    epsilons = tuple(dict.fromkeys([*EPSILONS, *said[:3]]))
    best = np.inf
    for ws in layouts:
        for group in _variants(label, ws, epsilons):
            with np.errstate(all="ignore"):
                errors = [gm._scaled_error(seen, forward(probe)) for _, forward in group]
            errors = [e if np.isfinite(e) else np.inf for e in errors]
            best = min(best, *errors)
            if min(errors) <= MATCH_TOL:
                description, forward = group[int(np.argmin(errors))]
                with np.errstate(all="ignore"):
                    return forward(z).astype(np.float32), description
    raise AssertionError(
        f"the {label}'s trained generator, recomputed from its weights, does not give the images your "
        f"kernel made of the probe noise (closest variant off by {best:.2g} of their scale): its "
        "architecture is not the quiz's (see the generator's check)")
