"""Does a submission train exactly as the GAN recipe does? A short, fixed replay decides.

    from helpers.gan_replay import replay_verdict
    same, why = replay_verdict("DCGAN", discriminator=dc_discriminator, generator=dc_generator,
                               d_loss_fn=discriminator_loss, g_loss_fn=generator_loss,
                               train_step=gan_train_step, sample_noise=sample_noise)

A graded GAN run trains thousands of steps (minutes of CPU). Most of that time is spent
confirming what a much shorter experiment already shows: a correct submission's training
is, numerically, the recipe's. ``replay_verdict`` builds D and G from the submission's
functions, gives them fixed initial kernels (seeded; biases and BatchNorm parameters keep
the layers' default values), and runs :data:`REPLAY_STEPS` steps of the recipe (Adam 1e-3,
beta_1 0.5, the submission's ``train_step`` compiled with ``tf.function``) on fixed MNIST
batches and fixed uniform noise. It then compares, weight tensor by weight tensor, what
training changed (norm and a fixed random-sign projection of ``w_K - w_0``), and the losses
of every step, with the reference's sketch stored in ``data/expected/gan_replay.npz``
(written by ``tools/make_gan_replay.py`` from the solution notebook; one sketch for
simultaneous and one for alternating D/G updates, both correct, but only the simultaneous
recipe's full run is measured and stored: a submission that alternates trains in full).
Each is stored as computed with 1, 2 and 4 TensorFlow threads (:data:`THREADS`) and on each
kind of CPU of :data:`CPUS`: the DCGAN's replay depends on the order in which its sums are
split between threads (with 1 thread its sketch is 0.64 away from the 2-thread one;
measured) and on the matrix-product kernels oneDNN picks for the CPU (an AVX2-only CPU's
sketch is 0.11 to 0.63 away from an AVX-512 one's; measured), so a grading kernel compares
with the nearest stored sketch. A thread count or CPU whose sums split otherwise finds none
within tolerance and trains in full: slower, never a lost point.

Same within :data:`TOLERANCE` (relative): the submission trains as the recipe does, and the
recipe's full run, measured on the reference (``data/expected/gan_scores.json``), is its
result. Anything else (another architecture, loss, update, initializer, noise distribution,
a step that fails): ``same`` is False with the reason, and the grader trains the full recipe
from the submission's functions, as before. The replay never fails a submission by itself.

Why the noise is ours: correct ``sample_noise`` functions draw from U(-1, 1) with different
random streams (NumPy, TensorFlow), so the replay first checks the submission's noise has
the recipe's distribution (shape, range, mean, spread of 20,000 draws) and then uses fixed
noise of that distribution.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from helpers.rebuildable import plain_numbers

#: Training steps replayed, per GAN (the first steps move every weight; a different loss,
#: update or architecture is already far off: see tests/test_gan_replay.py).
REPLAY_STEPS = {"vanilla GAN": 12, "LSGAN": 12, "DCGAN": 6}

#: Relative tolerance on each tensor's change and on each step's losses. Measured
#: (tests/test_gan_replay.py): float32 and float64 losses, Keras' BCE and softplus
#: spellings, a functional D differ from the reference by < 1e-5; every mistake tried
#: (flipped or summed loss, ReLU or LeakyReLU(0.3) in D, G trained on D's loss, the other
#: update order, BatchNorm not in training mode) by > 1.
TOLERANCE = 0.01

SEED = 1234

#: TensorFlow intra-op thread counts the sketches are stored for (grading kernels get
#: cores // workers threads; :mod:`helpers.grading.sandbox`).
THREADS = (1, 2, 4)
DATA = Path(__file__).resolve().parent.parent / "data" / "expected"
SKETCHES = DATA / "gan_replay.npz"
SCORES = DATA / "gan_scores.json"
ORDERS = ("simultaneous", "alternating")
#: The CPUs the sketches are stored for, by the instruction set of oneDNN's matrix products
#: (``ONEDNN_MAX_CPU_ISA``; ``tools/make_gan_replay.py`` records each one this CPU can run).
CPUS = ("AVX512_CORE", "AVX2")


def _batch_size(label):
    from helpers.gan_training import RECIPES
    return RECIPES[label]["batch_size"]


def fixed_inputs(label, noise_dim, seed=SEED):
    """The replay's data, drawn from ``seed``: (x, z), x (K, B, 784) MNIST digits in [-1, 1],
    z (K, B, Z) in U(-1, 1)."""
    from helpers.gan_training import training_images
    k, b = REPLAY_STEPS[label], _batch_size(label)
    rng = np.random.default_rng(int(seed))
    images = training_images()
    x = images[rng.choice(len(images), size=k * b, replace=False)].reshape(k, b, 784)
    z = rng.uniform(-1, 1, size=(k, b, noise_dim)).astype(np.float32)
    return x.astype(np.float32), z


def _set_fixed_kernels(model, seed):
    """Replace every kernel (>= 2-D weight) by seeded Glorot-uniform values."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        if len(shape) >= 2:
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w.assign(rng.uniform(-limit, limit, size=shape).astype(np.float32))


def noise_like_recipe(sample_noise, noise_dim):
    """None when ``sample_noise`` draws U(-1, 1) noise of the right shape, else the reason."""
    try:
        z = np.asarray(sample_noise(20000, noise_dim), np.float64)
    except Exception as exc:                                   # noqa: BLE001 - any failure: full run
        return f"sample_noise failed ({type(exc).__name__})"
    if z.shape != (20000, noise_dim):
        return f"sample_noise(20000, {noise_dim}) has shape {z.shape}"
    return not_recipe_noise(z)


def not_recipe_noise(z):
    """None when the values ``z`` (an array of many draws) look like U(-1, 1), the recipe's
    noise (within [-1, 1], mean within 0.01 of 0, std within 0.01 of 1/sqrt(3), reaching
    past +-0.99); else the reason."""
    if not np.all(np.isfinite(z)) or z.min() < -1 or z.max() > 1:
        return "sample_noise leaves [-1, 1]"
    mean, std = z.mean(), z.std()
    if abs(mean) > 0.01 or abs(std - 1 / np.sqrt(3)) > 0.01 or z.min() > -0.99 or z.max() < 0.99:
        return f"sample_noise is not U(-1, 1) (mean {mean:.3f}, std {std:.3f})"
    return None


def sketch(label, *, discriminator, generator, d_loss_fn, g_loss_fn, train_step, noise_dim=96, seed=SEED):
    """Replay :data:`REPLAY_STEPS` steps; returns dict shapes, norms, projections, losses.

    The initial kernels, the batches, the noise and the projections' signs are drawn from
    ``seed`` (the stored sketches use :data:`SEED`; the grader's judge draws a fresh one).

    - shapes: list of weight shapes, D's then G's (all weights, BatchNorm statistics too).
    - norms (T,), projections (T,): per tensor, ||w_K - w_0|| and sum(sign * (w_K - w_0)).
    - losses (K, 2): (d_loss, g_loss) of each step.
    """
    import keras
    import tensorflow as tf
    from helpers import env
    from helpers.gan_training import build_models
    env.seed_everything(0)
    D, G = discriminator(), generator(noise_dim)
    build_models(D, G, noise_dim=noise_dim)          # models without keras.Input make theirs now
    _set_fixed_kernels(D, seed + 1)
    _set_fixed_kernels(G, seed + 2)
    weights = list(D.weights) + list(G.weights)
    before = [np.array(w.numpy(), np.float64) for w in weights]
    D_opt = keras.optimizers.Adam(1e-3, beta_1=0.5)
    G_opt = keras.optimizers.Adam(1e-3, beta_1=0.5)
    step = tf.function(lambda x, z: train_step(x, z, D, G, D_opt, G_opt, d_loss_fn, g_loss_fn))
    xs, zs = fixed_inputs(label, noise_dim, seed)
    losses = []
    for x, z in zip(xs, zs):
        d_loss, g_loss = step(tf.constant(x), tf.constant(z))
        losses.append((float(np.asarray(d_loss)), float(np.asarray(g_loss))))
    rng = np.random.default_rng(seed + 3)
    norms, projections = [], []
    for w, w0 in zip(weights, before):
        delta = np.array(w.numpy(), np.float64) - w0
        signs = rng.integers(0, 2, size=delta.shape) * 2.0 - 1.0
        norms.append(np.linalg.norm(delta))
        projections.append(float(np.sum(signs * delta)))
    return {"shapes": [tuple(w.shape) for w in weights], "norms": np.array(norms),
            "projections": np.array(projections), "losses": np.array(losses)}


def sketch_beside(train_step, label, seed, discriminator, generator, d_loss_fn, g_loss_fn, noise_dim=96):
    """:func:`sketch` with the arguments in the order :func:`helpers.rebuildable.beside` sends
    them: under the grader's judge this runs in the student's kernel, next to their functions,
    and its result goes back as data. Shapes come back as lists."""
    got = sketch(label, discriminator=discriminator, generator=generator, d_loss_fn=d_loss_fn,
                 g_loss_fn=g_loss_fn, train_step=train_step, noise_dim=int(noise_dim), seed=int(seed))
    return dict(got, shapes=[list(s) for s in got["shapes"]])


def sketches_differ(got, ref):
    """Largest relative difference of the sketch ``got`` (data from anywhere: checked here)
    from ``ref`` (:func:`sketch`'s result); inf when ``got`` is not a sketch of the same shapes."""
    keys = ("norms", "projections", "losses")
    if not (isinstance(got, dict) and isinstance(got.get("shapes"), (list, tuple))
            and all(plain_numbers(got.get(k)) for k in keys)
            and all(isinstance(s, (list, tuple)) and all(type(d) is int for d in s) for s in got["shapes"])):
        return np.inf             # not a sketch: data only (a proxy of a kernel object is not)
    got = {k: got[k].astype(np.float64) for k in keys} | {"shapes": [tuple(s) for s in got["shapes"]]}
    want = {k: np.asarray(ref[k], np.float64) for k in keys}
    if any(got[k].shape != want[k].shape for k in keys):
        return np.inf
    return _distance(got, dict(want, shapes=ref["shapes"]))


def _load_sketches(label):
    """{(order, threads, cpu): sketch} of ``label``, every one stored."""
    with np.load(SKETCHES) as data:
        out = {}
        for key in data.files:
            name, order, threads, cpu, field = key.split("/")
            if name == label:
                out.setdefault((order, int(threads), cpu), {})[field] = data[key]
        return out


def _distance(got, ref):
    """Largest relative difference between two sketches (inf when shapes differ)."""
    if [tuple(s) for s in got["shapes"]] != _shapes(ref):
        return np.inf
    if not (np.all(np.isfinite(got["norms"])) and np.all(np.isfinite(got["losses"]))):
        return np.inf
    scale = np.maximum(ref["norms"], 1e-8)
    d_tensor = np.max(np.abs(np.r_[got["norms"] - ref["norms"], got["projections"] - ref["projections"]])
                      / np.r_[scale, scale])
    d_loss = np.max(np.abs(got["losses"] - ref["losses"]) / np.maximum(np.abs(ref["losses"]), 1e-3))
    return float(max(d_tensor, d_loss))


def _shapes(ref):
    return [tuple(int(d) for d in row if d >= 0) for row in ref["shapes"]]


#: What the stored full-run scores depend on besides the solution's functions (which the
#: stored sketches pin, checked by every test run): the recipes and training loop, MNIST and
#: the quality meter. A change to any of them needs ``tools/make_gan_replay.py --full`` again.
SCORE_INPUTS = ("helpers/gan_training.py", "helpers/mnist_classifier.py", "helpers/data/mnist.py",
                "data/mnist/classifier.npz", "data/mnist/train-images-idx3-ubyte.gz",
                "data/mnist/train-labels-idx1-ubyte.gz")


def score_inputs_digest(root=DATA.parent.parent):
    """SHA-256 of :data:`SCORE_INPUTS` (their paths and bytes) under the repository ``root``:
    the stored scores hold while it is the one recorded with them."""
    import hashlib
    h = hashlib.sha256()
    for name in SCORE_INPUTS:
        h.update(name.encode() + b"\0" + (Path(root) / name).read_bytes())
    return h.hexdigest()


def stored_score(label):
    """The recipe's full run on the reference (``data/expected/gan_scores.json``): score dict."""
    return dict(json.loads(SCORES.read_text())[label])


def replay_verdict(label, *, discriminator, generator, d_loss_fn, g_loss_fn, train_step, sample_noise,
                   noise_dim=96):
    """(True, how) when the submission trains as the recipe does, else (False, why not)."""
    reason = noise_like_recipe(sample_noise, noise_dim)
    if reason:
        return False, reason
    try:
        got = sketch(label, discriminator=discriminator, generator=generator, d_loss_fn=d_loss_fn,
                     g_loss_fn=g_loss_fn, train_step=train_step, noise_dim=noise_dim)
    except Exception as exc:                                   # noqa: BLE001 - any failure: full run
        return False, f"the replay failed ({type(exc).__name__}: {str(exc)[:200]})"
    refs = _load_sketches(label)
    distances = {key: _distance(got, ref) for key, ref in refs.items()}
    nearest = min(distances, key=distances.get)
    (order, threads, cpu), distance = nearest, distances[nearest]
    if distance <= TOLERANCE and order != "simultaneous":
        return False, (f"{REPLAY_STEPS[label]} replayed steps match the recipe with {order} updates "
                       f"(correct, but only the simultaneous recipe's full run is measured and stored)")
    if distance <= TOLERANCE:
        return True, (f"{REPLAY_STEPS[label]} replayed steps match the recipe's ({order} updates; largest "
                      f"relative difference {distance:.1e}, tolerance {TOLERANCE:g}; as computed "
                      f"with {threads} thread{'s' if threads > 1 else ''}, {cpu})")
    far = "another architecture" if not np.isfinite(distance) else \
        f"largest relative difference {distance:.2g} > {TOLERANCE:g}"
    return False, f"the replayed steps differ from the recipe's ({far})"


def pack(label, order, threads, cpu, result):
    """The arrays ``tools/make_gan_replay.py`` stores for one sketch (shapes padded with -1)."""
    width = max(len(s) for s in result["shapes"])
    shapes = np.array([list(s) + [-1] * (width - len(s)) for s in result["shapes"]], np.int64)
    key = f"{label}/{order}/{threads}/{cpu}/"
    return {key + "norms": result["norms"], key + "projections": result["projections"],
            key + "losses": result["losses"], key + "shapes": shapes}
