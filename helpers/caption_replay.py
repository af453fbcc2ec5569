"""A short replay of the captioning recipe: does a submission's model train as the reference's?

    from helpers.caption_replay import replay, replays_differ
    got = replay(CaptioningRNN, "lstm", seed=123)     # {"params": {name: array}, "losses": (STEPS,)}
    ref = replay(ReferenceCaptioningRNN, "lstm", seed=123)
    replays_differ(got, ref, start_params(ref_shapes, 123))    # ~1e-7 for correct code; inf for other shapes

The BLEU test of the captioning notebooks trains the "full" recipe
(:data:`helpers.captioning.RECIPES`: 1,000 Adam steps of 100 captions) from the submission's
``CaptioningRNN``, the overfitting test the "overfit" recipe (400 steps on 50 captions):
most of the CPU of grading ``lstm_captioning``. A model whose ``loss`` returns the
reference's loss and gradients takes the reference's steps from the same parameters; then
the recipe's run made once with the reference solution (``helpers/grading/stored/caption_reference.npz``)
is what the test measures.

:func:`replay` builds the model with the recipe's sizes, sets every parameter from a seed
(:func:`start_params`, by the contract's names), takes :data:`STEPS` steps of the recipe's
solver on minibatches the seed picks, and returns the parameters and losses. The judge
compares them with the reference's (:func:`replays_differ`) relative to how far each of the
reference's parameters moved. Another gate order, other parameter names or shapes, a wrong
gradient: no replay, and the full recipe is trained as before. The replay never fails a
submission by itself.
"""
from __future__ import annotations

import zlib

import numpy as np

from helpers.rebuildable import plain_numbers

#: Adam steps replayed (the full recipe takes 1,000).
STEPS = 10
#: The scale of the parameters at which the replay also compares one minibatch's loss and
#: gradients: pre-activations then reach a few hundred, beyond a trained model's (an LSTM's
#: gate pre-activations reach about 140 after the "full" recipe, an RNN's about 55), so a
#: sigmoid or tanh written with an exp that overflows in float32 shows there (nan), as it
#: would in a full run; float64 and the stable formulas do not overflow.
LARGE = 10.0
#: Largest relative difference that still counts as the same training (see replays_differ).
#: Measured in tests/test_caption_replay.py: correct code written other ways (the corpus'
#: styles: loops, float64, in-place updates, other caches) differs by under 1e-4; every
#: single mistake of the corpus by 0.68 or more.
TOLERANCE = 0.01


def start_params(shapes, seed):
    """Parameters for a model whose ``params`` have these shapes ({name: tuple}), from ``seed``.

    Each is keyed by its name: a matrix from N(0, 1 / rows) (W_embed's rows, W_proj's
    input features, ...), a vector from N(0, 0.1**2). Returns {name: float64 array}; the
    same names, shapes and seed give the same values.
    """
    out = {}
    for name, shape in shapes.items():
        shape = tuple(int(d) for d in shape)
        rng = np.random.default_rng([int(seed) % 2**32, zlib.crc32(str(name).encode()), len(shape)])
        scale = 1 / np.sqrt(shape[0]) if len(shape) >= 2 else 0.1
        out[str(name)] = rng.standard_normal(shape) * scale
    return out


def replay(model_class, cell_type, seed, recipe="full", features=None, captions=None):
    """:data:`STEPS` steps of a recipe from parameters drawn from ``seed``.

    Inputs:
    - model_class: a CaptioningModelBase subclass (the notebook's CaptioningRNN).
    - cell_type: 'rnn' or 'lstm'.
    - seed: int; picks the starting parameters and the minibatches.
    - recipe: a key of :data:`helpers.captioning.RECIPES`: "full" steps on the training set,
      "overfit" on the captions given: features (N, 512) float32, one image per caption, and
      captions (N, 17) int32 word indices.
    Returns {"params": {name: array} after the steps, "losses": (STEPS,) float64, "init":
    {name: [mean, std, max |value|] of the parameter the model made (:func:`init_differs`)},
    "large": one minibatch's loss and gradients at large parameters (:data:`LARGE`)}, or
    {"error": why} when the model cannot be built or stepped.
    """
    from helpers.captioning import RECIPES, CaptioningSolver, one_blas_thread
    from helpers.data.captioning import load_captioning_data
    r = RECIPES[recipe]
    if recipe == "full":
        data = load_captioning_data()
    else:
        features, captions = np.asarray(features, np.float32), np.asarray(captions, np.int32)
        data = dict(load_captioning_data(max_train=0), train_features=features, train_captions=captions,
                    train_image_idxs=np.arange(len(captions), dtype=np.int32))
    model = model_class(data["word_to_idx"], input_dim=data["train_features"].shape[1],
                        wordvec_dim=r["wordvec_dim"], hidden_dim=r["hidden_dim"], cell_type=cell_type, seed=0)
    params = getattr(model, "params", None)
    if not isinstance(params, dict) or not all(isinstance(v, np.ndarray) for v in params.values()):
        return {"error": "the model has no params dict of arrays"}
    init = {str(k): np.array([np.mean(v), np.std(v), np.max(np.abs(v), initial=0.0)], np.float64)
            for k, v in params.items()}
    start = start_params({k: v.shape for k, v in params.items()}, seed)
    for name, value in params.items():
        params[name] = start[str(name)].astype(value.dtype)      # the model keeps its own dtype
    solver = CaptioningSolver(model, data, num_iterations=STEPS, batch_size=r["batch_size"],
                              learning_rate=r["learning_rate"], lr_decay=r["lr_decay"],
                              decay_every=r["decay_every"], seed=int(seed) % 2**32, progress=False)
    with one_blas_thread():
        for _ in range(STEPS):
            solver.step()
        after = {str(k): np.asarray(v).copy() for k, v in model.params.items()}
        large = _large_gradients(model, data, r["batch_size"], seed)
    return {"params": after, "losses": np.asarray(solver.loss_history, np.float64), "init": init,
            "large": large}


def _large_gradients(model, data, batch_size, seed):
    """The loss and gradients of one minibatch at parameters :data:`LARGE` times those of
    :func:`start_params` (another draw): activations larger than a trained model's, where a
    formula that overflows in float32 gives inf or nan. {"loss": (1,), "grads": {name: array}}."""
    from helpers.data.captioning import sample_coco_minibatch
    big = start_params({k: v.shape for k, v in model.params.items()}, int(seed) + 1)
    for name, value in model.params.items():
        model.params[name] = (big[str(name)] * LARGE).astype(value.dtype)
    rng = np.random.default_rng([int(seed) % 2**32, 13])
    captions, features, _ = sample_coco_minibatch(data, batch_size, "train", rng=rng)
    with np.errstate(all="ignore"):
        loss, grads = model.loss(features.astype(model.dtype), captions)
    return {"loss": np.asarray([loss], np.float64).reshape(-1)[:1],
            "grads": {str(k): np.asarray(v) for k, v in dict(grads).items()}}


def replays_differ(got, ref, start):
    """Largest relative difference of the replay ``got`` (data from anywhere: checked here)
    from ``ref`` (:func:`replay`'s result for the reference): of each parameter, against how
    far the reference's moved from ``start`` (:func:`start_params`), of each step's loss, and
    of the loss at :data:`LARGE` parameters (its gradients there must be finite: through
    saturated units their values are rounding noise, 14% apart between correct styles). inf
    when ``got`` is not a replay of the same parameter names and shapes, or not finite."""
    if not (isinstance(got, dict) and isinstance(got.get("params"), dict) and plain_numbers(got.get("losses"))):
        return np.inf
    params = got["params"]
    if set(params) != set(ref["params"]) or got["losses"].shape != ref["losses"].shape \
            or not np.all(np.isfinite(got["losses"])):
        return np.inf
    worst = float(np.max(np.abs(got["losses"] - ref["losses"]) / np.maximum(np.abs(ref["losses"]), 1e-12)))
    large, want_large = got.get("large"), ref["large"]
    if not (isinstance(large, dict) and plain_numbers(large.get("loss")) and isinstance(large.get("grads"), dict)
            and set(large["grads"]) == set(want_large["grads"]) and large["loss"].shape == (1,)
            and np.all(np.isfinite(large["loss"]))):
        return np.inf
    worst = max(worst, float(abs(large["loss"][0] - want_large["loss"][0]) / max(abs(want_large["loss"][0]), 1e-12)))
    for name, want in want_large["grads"].items():      # through saturated units the values are
        value = large["grads"][name]                      # rounding noise: finite is what counts
        if not plain_numbers(value) or value.shape != want.shape or not np.all(np.isfinite(value)):
            return np.inf
    for name, want in ref["params"].items():
        value = params[name]
        if not plain_numbers(value) or value.shape != want.shape or not np.all(np.isfinite(value)):
            return np.inf
        moved = max(float(np.linalg.norm(want - start[name])), 1e-12)
        worst = max(worst, float(np.linalg.norm(value.astype(np.float64) - want)) / moved)
    return worst


def init_differs(got, ref):
    """None when the model of the replay ``got`` made its starting parameters as the
    reference's does (the course's ``CaptioningModelBase``, seed 0: ``ref`` is :func:`replay`'s
    result for the reference), else why not. The replay itself starts from drawn parameters,
    the full run from the model's own: an ``__init__`` that sets them otherwise (zeros, another
    scale) would replay perfectly and still train otherwise."""
    init = got.get("init") if isinstance(got, dict) else None
    if not isinstance(init, dict) or set(init) != set(ref["init"]):
        return "no summary of the parameters it made"
    for name, want in ref["init"].items():
        value = init[name]
        if not plain_numbers(value) or value.shape != want.shape or not np.allclose(value, want, rtol=1e-4, atol=1e-9):
            return f"its starting {name} is not the one CaptioningModelBase makes (seed 0)"
    return None
