"""The upsampling_fcn quiz's training recipe, and the graded run of its quality test.

    from helpers.fcn_training import train_fcn, graded_models, validation_ious
    data = segmentation.load_shapes(num_train=1500, num_val=300, seed=0)
    model, seconds, cpu = train_fcn(build_fcn, True, data["x_train"], data["y_train"])
    validation_ious({True: model, False: other})    # {"with_skips": ..., "without": ...}

``train_fcn`` builds one FCN with the student's ``build_fcn(num_classes, skips)`` and trains
it with the quiz's fixed recipe (:data:`RECIPE`): Adam (learning rate 3e-3), per-pixel
cross-entropy on logits, batch 32, 3 epochs over the 1500 training images of
:func:`helpers.data.segmentation.load_shapes` (seed 0), random seed 0.

**Graded runs.** The quality test must not trust models that the notebook trained: a
submission can put any object with the right methods into ``results``, or train with a loop
it changed. :func:`graded_models` therefore trains both networks again, in the test cell,
from the submission's ``build_fcn`` with :data:`RECIPE`, whenever it runs in a grading kernel
(:func:`helpers.env.grading_kernel`); in a student's own kernel it returns the models of the
notebook's training cell, so nothing is trained twice. The notebook's training cell skips
training when graded (``env.GRADING``), so autograding takes about the same time as before.
The validation images and masks always come from :func:`validation_data` (helpers), never
from notebook globals.

**Under the grader's judge** the test cell runs in a trusted kernel and ``build_fcn`` is a
proxy of the student's function (:mod:`helpers.grading.fcn_judge`): each network first
replays a few steps of the recipe (:mod:`helpers.fcn_replay`); one that trains as the
reference's is graded as the reference's stored full run, any other is trained in full in
the student's kernel (:func:`train_graded` through ``__course_run__``) and stays there; the
judge sends it images and gets argmax masks back as data, and computes the IoUs itself. The fresh images of the
hidden test come from a seed the judge draws as the test runs (:data:`FRESH`; from its keyed
stream, :mod:`helpers.grading.draws`), so no kernel can know their masks in advance: a model
must segment them.
"""
from __future__ import annotations

import time

from helpers import env  # noqa: F401  (quiet TF before importing it)
from helpers.data import segmentation

#: The graded recipe: training data, schedule and seeds (the notebook's training cell uses it too).
RECIPE = {"num_train": 1500, "data_seed": 0, "epochs": 3, "batch_size": 32,
          "learning_rate": 3e-3, "seed": 0}
#: The validation set the quality test scores: 300 images of load_shapes(seed=0)'s val split.
VALIDATION = {"num_val": 300, "seed": 0}
#: The fresh images of the hidden test: 200 images of the val split of a seed drawn anew on
#: every call (``seed: None``; a number fixes it).
FRESH = {"num_val": 200, "seed": None}


def training_data():
    """The recipe's training set: x (1500, 64, 64, 3) float32 in [0, 1], y (1500, 64, 64) uint8."""
    d = segmentation.load_shapes(num_train=RECIPE["num_train"], num_val=0, seed=RECIPE["data_seed"])
    return d["x_train"], d["y_train"]


def validation_data(fresh=False):
    """Validation images x (N, 64, 64, 3) float32 and masks y (N, 64, 64) uint8.

    fresh=False: the notebook's 300 validation images (the val split of seed 0, the same as
    ``load_shapes(num_train=1500, num_val=300, seed=0)`` returns); fresh=True: 200 images of
    a seed drawn on this call (:data:`FRESH`; under the grader's judge from its keyed draws),
    never seen during development and unknown to the student's kernel. Generated anew on
    every call.
    """
    return _images(fresh)[:2]


def _images(fresh):
    """(x, y, seed) of :func:`validation_data`."""
    spec = FRESH if fresh else VALIDATION
    seed = spec["seed"]
    if seed is None:
        from helpers.checks._compare import fresh_seed     # under the judge: its keyed draws
        seed = 1000 + fresh_seed() % 2**31            # not 0 or 5: the sets development saw
    d = segmentation.load_shapes(num_train=0, num_val=spec["num_val"], seed=seed)
    return d["x_val"], d["y_val"], seed


def _progress_callback(total, desc):
    import keras
    from tqdm.auto import tqdm

    class TqdmProgress(keras.callbacks.Callback):
        """A tqdm bar over all training steps, showing the running loss."""

        def __init__(self):
            super().__init__()
            self.bar = tqdm(total=total, desc=desc, mininterval=2)

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{(logs or {}).get('loss', float('nan')):.3f}", refresh=False)

        def on_train_end(self, logs=None):
            self.bar.close()
    return TqdmProgress()


def train_fcn(build_fcn, skips, x_train, y_train, num_classes=segmentation.NUM_CLASSES, *,
              epochs=None, batch_size=None, learning_rate=None, seed=None, progress=True):
    """Build one FCN with ``build_fcn`` and train it with the recipe (:data:`RECIPE`).

    Inputs:
    - build_fcn(num_classes, skips) -> keras.Model mapping (N, H, W, 3) to (N, H, W, K) logits.
    - skips: bool, passed to build_fcn.
    - x_train: (M, H, W, 3) float32 images; y_train: (M, H, W) int class per pixel.
    - num_classes: K.
    - epochs, batch_size, learning_rate, seed: None takes the recipe's value.
    - progress: show a tqdm bar over the training steps.

    Returns (model, wall seconds, CPU seconds of this process).
    """
    import keras
    epochs = RECIPE["epochs"] if epochs is None else epochs
    batch_size = RECIPE["batch_size"] if batch_size is None else batch_size
    learning_rate = RECIPE["learning_rate"] if learning_rate is None else learning_rate
    env.seed_everything(RECIPE["seed"] if seed is None else seed)
    model = build_fcn(num_classes, skips=skips)
    if not isinstance(model, keras.Model):
        raise AssertionError(f"build_fcn({num_classes}, skips={skips}) returned "
                             f"{type(model).__name__}, not a keras.Model")
    compile_fcn(model, learning_rate)
    steps = epochs * -(-len(x_train) // batch_size)
    callbacks = [_progress_callback(steps, f"FCN, skips={skips}")] if progress else []
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True,
              callbacks=callbacks)
    return model, time.perf_counter() - t0, time.process_time() - c0


def compile_fcn(model, learning_rate=None, run_eagerly=False):
    """Compile ``model`` with the recipe's optimizer and loss: Adam (``learning_rate``, default
    the recipe's) on per-pixel sparse cross-entropy of logits. ``run_eagerly``: step without
    tracing a graph (cheaper for a few steps: :mod:`helpers.fcn_replay`)."""
    import keras
    learning_rate = RECIPE["learning_rate"] if learning_rate is None else learning_rate
    # no XLA (jit_compile): on a 2-core CPU it compiled for ~12 s per network and stepped slower,
    # twice the CPU time of the plain graph for the whole recipe
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=False, run_eagerly=run_eagerly,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def graded_models(notebook_results, build_fcn):
    """The two trained FCNs a quality test grades: {True: with skips, False: without}.

    In a grading kernel: trains both here (:func:`train_fcn` with :data:`RECIPE`) from the
    submission's ``build_fcn``, and ``notebook_results`` is ignored. Under the grader's judge
    (``build_fcn`` a proxy of the student's function): None, the judge's hidden test decides
    (:mod:`helpers.grading.fcn_judge`: a short replay, and the full run only for a network that
    does not replay as the reference's). Elsewhere: returns the models of ``notebook_results``,
    the student's own run of the training cell.

    Inputs:
    - notebook_results: the notebook's ``results`` ({skips: {"model": keras.Model, ...}}), or None.
    - build_fcn(num_classes, skips): the submission's function.
    """
    from helpers.rebuildable import in_another_kernel
    if in_another_kernel(build_fcn):
        return None      # under the grader's judge: its hidden test trains or replays (grading.fcn_judge)
    if not env.grading_kernel():
        try:
            models = {s: notebook_results[s]["model"] for s in (True, False)}
        except (TypeError, KeyError, IndexError):
            models = None
        return env.notebook_result(models, "no trained FCNs in `results`: run the training "
                                   "cell above (it needs build_fcn) first")
    print(f"graded run: both FCNs trained again from your build_fcn ({RECIPE['epochs']} epochs of "
          f"{RECIPE['num_train']} images, batch {RECIPE['batch_size']}, seed {RECIPE['seed']})")
    models = {}
    for skips in (True, False):
        models[skips], seconds, cpu = train_graded(build_fcn, skips)
        print(f"skips={skips!s:5}: trained in {float(seconds):.0f} s ({float(cpu):.0f} s CPU)")
    return models


def train_graded(build_fcn, skips):
    """One network of the graded run: :func:`train_fcn` with :data:`RECIPE` on
    :func:`training_data`, no progress bar. Returns (model, wall seconds, CPU seconds)."""
    x_train, y_train = training_data()
    return train_fcn(build_fcn, skips, x_train, y_train, progress=False)


def validation_ious(models, fresh=False):
    """Mean IoU (keras.metrics.MeanIoU) of each model's argmax masks on :func:`validation_data`.

    Inputs:
    - models: {skips: model}, a model mapping (N, 64, 64, 3) images to (N, 64, 64, K) logits.
    - fresh: score 200 fresh images (a seed drawn on this call, printed) instead of the 300
      validation images.

    Returns {skips: float}.
    """
    from helpers.checks.upsampling_fcn import predict_masks, reference_mean_iou
    x, y, seed = _images(fresh)
    if fresh:
        print(f"fresh images: {len(x)} of seed {seed} (a draw the grader makes as the test runs)")
    return {s: reference_mean_iou(y, predict_masks(m, x), segmentation.NUM_CLASSES)
            for s, m in models.items()}
