"""A short replay of the FCN recipe: does a submission's ``build_fcn`` train as the reference's?

    from helpers.fcn_replay import replay, replays_differ
    got = replay(build_fcn, True, seed=123)        # {"losses": (K,), "logits": (N, 64, 64, 4), ...}
    ref = replay(reference_build_fcn, True, seed=123)
    replays_differ(got, ref)                        # 0.0 for the same network; inf for other shapes

The quality test of ``upsampling_fcn`` trains both networks of the recipe
(:data:`helpers.fcn_training.RECIPE`: 141 Adam steps each) from the submission's
``build_fcn``: most of the CPU of grading that assignment. A network that computes what the
reference's computes, from the same weights, takes the same steps; then the recipe's full
run, measured once on the reference (``helpers/grading/stored/fcn_reference.npz``), is its result.

:func:`replay` builds the network, sets every weight tensor from a seed (:func:`initial_weights`:
the same values for the same list of shapes, whatever code built the network), takes
:data:`STEPS` steps of the recipe's optimizer and loss (``fcn_training.compile_fcn``) on
training batches the seed generates, and returns the losses and the logits of :data:`IMAGES`
images the seed generates. :func:`replays_differ` compares two replays relative to how far
the reference's logits moved in those steps. A network of other weight shapes (another
architecture) does not replay: its full recipe is trained, as before; so is one whose own
initializers differ from the reference's (:func:`init_differs`: the replay starts from drawn
weights, the full run from the network's own). The replay never fails a submission by itself.
"""
from __future__ import annotations

import numpy as np

from helpers import env  # noqa: F401  (quiet TF before importing it)
from helpers.rebuildable import plain_numbers

#: Adam steps replayed per network (the recipe's full run takes 141).
STEPS = 5
#: Images whose logits are compared after the steps (generated from the replay's seed).
IMAGES = 6
#: Largest relative difference that still counts as the same training (see replays_differ).
#: Measured: the same network on 1 and 2 threads differs by under 1e-6, correct code written
#: other ways (skip convolutions made first, ``+`` for Add, a subclassed model) by under 1e-4;
#: the mistakes tried by 0.098 or more at the tests' seed (a frozen first convolution: the
#: least; ReLU on the scores, softmax outputs, a subtracted skip, batch-norm momentum 0.99:
#: 0.5 to 2), by 0.034 or more over four seeds (a red team's). tests/test_fcn_replay.py.
TOLERANCE = 0.01


def initial_weights(shapes, seed):
    """Weights for a network whose ``get_weights()`` has these shapes, drawn from ``seed``.

    shapes: list of tuples. Returns a list of float32 arrays. A kernel (2 or more axes) is
    drawn from N(0, 2 / fan_in) (fan_in: the product of all axes but the last), a vector (a
    bias, batch norm's scale, offset, moving mean or variance) from U(0.5, 1.5), so a
    variance stays positive; each keyed by its shape only. So the values do not depend on
    the order in which the code made its layers, only on the shapes and ``seed`` (tensors of
    one shape start equal: in this network they are in different places, never symmetric).
    """
    out = []
    for shape in shapes:
        shape = tuple(int(d) for d in shape)
        rng = np.random.default_rng([int(seed) % 2**32, 7, len(shape), *shape])
        if len(shape) >= 2:
            fan_in = max(1, int(np.prod(shape[:-1])))
            out.append((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32))
        else:
            out.append(rng.uniform(0.5, 1.5, size=shape).astype(np.float32))
    return out


def replay_data(seed):
    """The data of a replay, generated from ``seed`` (shapes images, as the recipe's, of val
    splits no other set uses): training batches x (STEPS, batch, 64, 64, 3), y (STEPS, batch,
    64, 64), and the compared images (IMAGES, 64, 64, 3)."""
    from helpers.data import segmentation
    from helpers.fcn_training import RECIPE
    batch = RECIPE["batch_size"]
    d = segmentation.load_shapes(num_train=0, num_val=STEPS * batch + IMAGES,
                                 seed=50_000 + int(seed) % 2**30)
    x, y = d["x_val"][:STEPS * batch], d["y_val"][:STEPS * batch]
    return (x.reshape(STEPS, batch, *x.shape[1:]), y.reshape(STEPS, batch, *y.shape[1:]),
            d["x_val"][STEPS * batch:])


def replay(build_fcn, skips, seed, num_classes=None):
    """:data:`STEPS` steps of the recipe from weights drawn from ``seed``.

    Inputs:
    - build_fcn(num_classes, skips) -> keras.Model mapping (N, H, W, 3) to (N, H, W, K) logits.
    - skips: bool, passed to build_fcn.
    - seed: int; picks the initial weights, the training batches and the compared images.
    - num_classes: K (default: the shapes set's 4).

    Returns a dict: ``shapes`` (list of lists: the network's weight shapes), and, when the
    network could be built and stepped, ``losses`` (STEPS,) float64, the loss of each step,
    ``logits`` (IMAGES, 64, 64, K) float32 after the steps (inference mode), ``start`` the
    same before any step (for the reference's replay, the scale :func:`replays_differ`
    measures a difference against; a submission's is not read), and ``init``
    (len(shapes), 2) float64, the mean and standard deviation of each weight as the network
    made it (its initializers: :func:`init_differs`); otherwise ``error``, a string saying why.
    """
    import keras

    from helpers.data import segmentation
    from helpers.fcn_training import compile_fcn
    num_classes = segmentation.NUM_CLASSES if num_classes is None else int(num_classes)
    env.seed_everything(int(seed) % 2**31)   # the same code then makes the same weights here and there
    model = build_fcn(num_classes, skips=bool(skips))
    if not isinstance(model, keras.Model):
        return {"shapes": [], "error": f"build_fcn returned {type(model).__name__}, not a keras.Model"}
    x, y, images = replay_data(seed)
    model(images[:1], training=False)        # a subclassed model makes its weights on its first call
    own = model.get_weights()
    shapes = [list(map(int, w.shape)) for w in own]
    init = np.array([[float(np.mean(w)), float(np.std(w))] for w in own], np.float64).reshape(-1, 2)
    model.set_weights(initial_weights(shapes, seed))
    start = np.asarray(model(images, training=False), np.float32)
    compile_fcn(model, run_eagerly=True)     # a few steps: tracing the graph would cost more
    losses = [float(np.asarray(model.train_on_batch(xb, yb)).reshape(-1)[0]) for xb, yb in zip(x, y)]
    logits = np.asarray(model(images, training=False), np.float32)
    return {"shapes": shapes, "losses": np.asarray(losses, np.float64), "logits": logits, "init": init,
            "start": start}


def replays_differ(got, ref, start):
    """Largest relative difference of the replay ``got`` (data from anywhere: checked here)
    from ``ref`` (:func:`replay`'s result for the reference): of the logits, against how far
    the reference's moved from ``start`` (the reference replay's ``start``), and of each step's loss.
    inf when ``got`` is not a replay of the same weight shapes."""
    if not (isinstance(got, dict) and plain_numbers(got.get("losses")) and plain_numbers(got.get("logits"))
            and isinstance(got.get("shapes"), list)
            and all(isinstance(s, list) and all(type(d) is int for d in s) for s in got["shapes"])):
        return np.inf
    if sorted(map(tuple, got["shapes"])) != sorted(map(tuple, ref["shapes"])) or got["logits"].shape != ref["logits"].shape \
            or got["losses"].shape != ref["losses"].shape:
        return np.inf
    logits, want = got["logits"].astype(np.float64), ref["logits"].astype(np.float64)
    if not (np.all(np.isfinite(logits)) and np.all(np.isfinite(got["losses"]))):
        return np.inf
    moved = max(float(np.linalg.norm(want - start)), 1e-12)
    losses = np.abs(got["losses"] - ref["losses"]) / np.maximum(np.abs(ref["losses"]), 1e-12)
    return max(float(np.linalg.norm(logits - want)) / moved, float(losses.max()))


def init_differs(got, ref):
    """None when the network of the replay ``got`` made its weights as the reference's
    network does (``ref``: :func:`replay`'s result for it), else why not.

    The replay itself starts every network from the same drawn weights, so a wrong
    initializer (zeros, ones, a zero batch-norm scale) would replay perfectly and still train
    badly in the full run. Compared per shape, as distributions: a weight the reference makes
    constant (biases, batch norm's vectors) must be that constant; any other must have a
    standard deviation within a factor of 2 of the reference's and a mean within one of it
    from the reference's (wide: both are random draws, and a correct network may make its
    layers in another order; zeros or ones anywhere, or a zero batch-norm scale, fail).
    """
    init = got.get("init") if isinstance(got, dict) else None
    if not plain_numbers(init) or init.shape != (len(ref["shapes"]), 2) or not np.all(np.isfinite(init)):
        return "no summary of the weights it made"

    def by_shape(shapes, stats):
        groups = {}
        for shape, stat in zip(shapes, np.asarray(stats, np.float64)):
            groups.setdefault(tuple(shape), []).append(tuple(stat))
        return {k: sorted(v) for k, v in groups.items()}
    mine, want = by_shape(got["shapes"], init), by_shape(ref["shapes"], ref["init"])
    for shape, stats in want.items():
        for (mean, std), (ref_mean, ref_std) in zip(mine.get(shape, []), stats):
            if ref_std == 0:
                ok = std <= 1e-6 and abs(mean - ref_mean) <= 1e-6
            else:      # two random draws of one initializer: far inside these bounds for n >= 64
                ok = 0.5 <= std / ref_std <= 2 and abs(mean - ref_mean) <= ref_std
            if not ok:
                return (f"a weight of shape {shape} starts with mean {mean:.3g} and standard deviation "
                        f"{std:.3g}; the reference's with {ref_mean:.3g} and {ref_std:.3g}")
    return None
