"""The network_visualization quiz: its given functions and its graded runs.

Given functions (the notebook imports them)::

    jitter(X, ox, oy)              # roll (1, H, W, 3) images by ox along W, oy along H
    blur_image(X, sigma=0.5)       # Gaussian blur along H and W
    rank_correlation(a, b)         # mean Spearman correlation of two (N, H, W) maps
    CountingModel(model)           # calls model, counts the forward passes

The runs of the notebook (each prints one line per image or class)::

    randomized_maps, correlations = randomization_run(compute_saliency_maps, model, X, y, saliency)
    targets, fooled, rel_changes, X_fool = fooling_run(make_fooling_image, model, X, names)
    visualizations = class_visualization_run(create_class_visualization, model)

**Graded runs.** A quality test must not trust results that the notebook computed: a
submission can assign ``fooled = [True] * 6`` in any cell. ``graded_correlations``,
``graded_fooling`` and ``graded_visualizations`` therefore run the fixed recipe of
:data:`RECIPES` again, in the test cell, from the submission's functions and with the
pretrained network and example images of :mod:`helpers.pretrained`, whenever they run in a
grading kernel (:func:`helpers.env.grading_kernel`); in a student's own kernel they return
the notebook's results, so nothing is computed twice. The notebook's cells skip those runs
when graded (``env.GRADING``), so autograding takes the same time as before.
"""
from __future__ import annotations

import time

import numpy as np

from helpers import env  # noqa: F401  (quiet TF before importing it)
from helpers import pretrained

#: The model randomization cascade: re-initialize from this layer to the output, top down.
CASCADE = ("logits", "head_conv", "block15_expand_conv", "block11_expand_conv",
           "block5_expand_conv", "stem_conv")

#: The graded runs. "randomization": the cascade layers the test reads (each randomized copy
#: is independent, so these give the notebook's values); "fooling": the example images and
#: the seed of the random targets; "class visualization": the classes and the steps.
RECIPES = {
    "randomization": {"layers": ("logits", "block11_expand_conv"), "seed": 0},
    "fooling": {"images": tuple(pretrained.example_names()), "seed": 0},
    "class visualization": {"targets": (76, 366), "num_iterations": 100},   # default seed (0)
}


#: The least rank correlation of two calls on the same model and images in the graded
#: randomization test (a gradient map gives 1.0).
CONTROL_CORRELATION = 0.99


# ----------------------------------------------------------------------------------------
# Given functions
# ----------------------------------------------------------------------------------------

def jitter(X, ox, oy):
    """Shift (1, H, W, 3) images by ox pixels along W and oy along H, wrapping around.

    Returns a NumPy array of the same shape.
    """
    return np.roll(np.roll(X, ox, axis=2), oy, axis=1)


def blur_image(X, sigma=0.5):
    """Gaussian blur of (1, H, W, 3) images along H and W (standard deviation ``sigma``
    pixels); returns a NumPy array of the same shape."""
    from scipy.ndimage import gaussian_filter1d
    return gaussian_filter1d(gaussian_filter1d(X, sigma, axis=1), sigma, axis=2)


def rank_correlation(a, b):
    """Mean over images of the Spearman rank correlation of two (N, H, W) saliency maps."""
    from scipy.stats import spearmanr
    return float(np.mean([spearmanr(np.ravel(p), np.ravel(q))[0] for p, q in zip(a, b)]))


class CountingModel:
    """Calls ``model`` and counts the calls (a forward pass each) in ``calls``."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.model(*args, **kwargs)


# ----------------------------------------------------------------------------------------
# The notebook's runs
# ----------------------------------------------------------------------------------------

def randomization_run(compute_saliency_maps, model, X, y, saliency=None, layers=CASCADE, seed=0):
    """The model randomization test (Adebayo et al., 2018) of a saliency method.

    Inputs:
    - compute_saliency_maps(X, y, model) -> (N, H, W) maps.
    - model: the pretrained network; X: (N, H, W, 3) images; y: (N,) labels.
    - saliency: (N, H, W) maps of ``model`` (computed here if None).
    - layers: re-initialize from each of these layers to the output (one copy each,
      :func:`helpers.pretrained.randomized_copy` with ``seed``).

    Returns:
    - randomized_maps: {layer: (N, H, W) maps of the randomized copy}.
    - correlations: {layer: rank correlation of those maps with ``saliency``}.
    Prints one line per layer.
    """
    X, y = np.asarray(X), np.asarray(y)
    if saliency is None:
        saliency = np.asarray(compute_saliency_maps(X.copy(), y.copy(), model))
    randomized_maps, correlations = {}, {}
    for first in layers:                      # every call gets its own copies of X and y
        randomized_maps[first] = np.asarray(
            compute_saliency_maps(X.copy(), y.copy(), pretrained.randomized_copy(first, seed=seed)))
        correlations[first] = rank_correlation(saliency, randomized_maps[first])
        print(f"randomized from {first:20s} to the output: rank correlation with the original "
              f"map {correlations[first]:+.3f}")
    return randomized_maps, correlations


def fooling_run(make_fooling_image, model, X, names, seed=0, judge=None):
    """Fool the model on every image, each with a random target class.

    Inputs:
    - make_fooling_image(X, target_y, model) -> (1, H, W, 3) image.
    - model: the pretrained network; X: (N, H, W, 3) images; names: N image names.
    - seed: the targets are ``np.random.default_rng(seed).integers(0, 1000, size=N)``.
    - judge: the network that classifies the fooling images (default ``model``); the graded
      run passes a fresh copy, so a make_fooling_image that changes the weights of the
      model it is given (a huge bias for the target class) fools nothing.

    Returns:
    - targets: (N,) int target classes.
    - fooled: list of N bools, whether ``judge`` predicts the target for the fooling image.
    - rel_changes: list of N floats, ||X_fool - X||_2 / ||X||_2 per image.
    - X_fool: (N, H, W, 3) the fooling images.
    Prints one line per image (with the number of forward passes) and a summary.
    """
    from helpers.pretrained import class_name
    judge = model if judge is None else judge
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 1000, size=len(X))
    fooled, rel_changes, X_fool = [], [], []
    t0 = time.time()
    # under the grader's judge, the function runs in the student's kernel with its own copy
    # of the model: its forward passes are not counted here
    counted = getattr(make_fooling_image, "__course_run__", None) is None
    for i in range(len(X)):
        counter = CountingModel(model) if counted else None
        Xf = np.asarray(make_fooling_image(np.array(X[i:i + 1]), int(targets[i]),
                                           counter or model),
                        np.float32)                     # a copy: X itself is never handed out
        if Xf.shape != X[i:i + 1].shape:
            raise AssertionError(f"make_fooling_image returned shape {Xf.shape}, "
                                 f"expected {X[i:i + 1].shape}")
        pred = int(np.argmax(judge(Xf, training=False)))
        fooled.append(bool(pred == targets[i]))
        rel_changes.append(float(np.linalg.norm(Xf - X[i:i + 1]) / np.linalg.norm(X[i:i + 1])))
        X_fool.append(Xf[0])
        passes = f"forward passes {counter.calls:3d}  " if counter else ""
        print(f"{names[i]:13s} -> target {class_name(targets[i]):22s} predicted {class_name(pred):22s} "
              f"{passes}relative L2 change {rel_changes[-1]:.2%}")
    print(f"fooled {np.mean(fooled):.0%} of {len(X)} images; mean relative L2 change "
          f"{np.mean(rel_changes):.2%} ({time.time() - t0:.0f} s)")
    return targets, fooled, rel_changes, np.stack(X_fool)


def class_visualization_run(create_class_visualization, model, targets=(76, 366),
                            num_iterations=100, seed=None, judge=None):
    """Visualize each class of ``targets`` from noise and classify the result.

    Inputs:
    - create_class_visualization(target_y, model, num_iterations=...) -> (1, H, W, 3) image
      (cs231n's keyword argument; ``seed=seed`` is added only when ``seed`` is not None,
      and the graded run leaves it out, so the notebook's default seed 0 applies).
    - model: the pretrained network.
    - judge: the network that classifies the results (default ``model``; the graded run
      passes a fresh copy, see :func:`fooling_run`).

    Returns:
    - visualizations: {target: (Xv, p)}, Xv the (1, H, W, 3) image, p the (1000,) softmax
      probabilities ``judge`` gives it. Prints one line per class.
    """
    import tensorflow as tf
    from helpers.pretrained import class_name
    judge = model if judge is None else judge
    visualizations = {}
    for target in targets:
        t0 = time.time()
        extra = {} if seed is None else {"seed": seed}
        Xv = np.asarray(create_class_visualization(target, model, num_iterations=num_iterations,
                                                   **extra), np.float32)
        p = tf.nn.softmax(judge(Xv, training=False)).numpy()[0]
        visualizations[target] = (Xv, p)
        print(f"class {target} ({class_name(target)}): predicted {class_name(p.argmax())} with "
              f"p={p.max():.3f}, p(target)={p[target]:.3f}  ({time.time() - t0:.0f} s)")
    return visualizations


# ----------------------------------------------------------------------------------------
# Graded runs
# ----------------------------------------------------------------------------------------

def _notebook_value(value, what, cell):
    return env.notebook_result(value, f"no {what}: run the cell above ({cell}) first")


def graded_correlations(notebook_correlations, compute_saliency_maps):
    """The rank correlations the randomization test grades: {layer: float}.

    In a grading kernel: runs :func:`randomization_run` here on the six example images with
    the submission's ``compute_saliency_maps`` for the layers of ``RECIPES["randomization"]``;
    ``notebook_correlations`` is ignored. Maps that change between two calls on the same model
    (rank correlation below :data:`CONTROL_CORRELATION`: random maps, which any randomization
    changes) raise AssertionError. Elsewhere: returns ``notebook_correlations`` (the
    notebook's dict), or raises AssertionError if it is None.
    """
    if not env.grading_kernel():
        return _notebook_value(notebook_correlations, "correlations",
                               "it randomizes the model and compares the maps")
    recipe = RECIPES["randomization"]
    print("graded run: the randomization test run here with your compute_saliency_maps")
    X, y, _ = pretrained.example_images()
    model = pretrained.load_pretrained()
    saliency = np.asarray(compute_saliency_maps(X.copy(), y.copy(), model))
    control = rank_correlation(saliency, compute_saliency_maps(X.copy(), y.copy(), model))
    print(f"same model again (control): rank correlation {control:+.3f}")
    if not control >= CONTROL_CORRELATION:     # random maps "pass" the test: they change anyway
        raise AssertionError(f"the maps of the same model and images differ from call to call "
                             f"(rank correlation {control:.2f}): a saliency map is a function "
                             "of the model and the image")
    _, correlations = randomization_run(compute_saliency_maps, model, X, y, saliency,
                                        layers=recipe["layers"], seed=recipe["seed"])
    return correlations


def graded_fooling(notebook_fooled, notebook_rel_changes, make_fooling_image):
    """The fooling results the quality test grades: (fooled, rel_changes), lists of N.

    In a grading kernel: runs :func:`fooling_run` here with the submission's
    ``make_fooling_image`` on ``RECIPES["fooling"]``'s images and targets, judged by the
    pretrained network (a fresh copy, not the model make_fooling_image gets); the notebook's
    lists are ignored. Elsewhere: returns the notebook's
    ``fooled`` and ``rel_changes``, or raises AssertionError if either is None.
    """
    if not env.grading_kernel():
        cell = "it fools the network on all six images"
        return (list(_notebook_value(notebook_fooled, "fooled", cell)),
                list(_notebook_value(notebook_rel_changes, "rel_changes", cell)))
    recipe = RECIPES["fooling"]
    print("graded run: the fooling images made here with your make_fooling_image")
    X, _, names = pretrained.example_images(recipe["images"])
    _, fooled, rel_changes, _ = fooling_run(make_fooling_image, pretrained.load_pretrained(), X,
                                            names, seed=recipe["seed"],
                                            judge=pretrained.fresh_pretrained())
    return fooled, rel_changes


def graded_visualizations(notebook_visualizations, create_class_visualization):
    """The class visualizations the quality test grades: {target: (Xv, p)}.

    In a grading kernel: runs :func:`class_visualization_run` here with the submission's
    ``create_class_visualization`` on ``RECIPES["class visualization"]`` (classes, steps,
    seed), classified by a fresh copy of the pretrained network; ``notebook_visualizations``
    is ignored.
    Elsewhere: returns ``notebook_visualizations``, or raises AssertionError if it is None.
    """
    if not env.grading_kernel():
        return _notebook_value(notebook_visualizations, "visualizations",
                               "it visualizes classes 76 and 366")
    recipe = RECIPES["class visualization"]
    print(f"graded run: the classes visualized here with your create_class_visualization "
          f"({recipe['num_iterations']} steps, its default seed)")
    return class_visualization_run(create_class_visualization, pretrained.load_pretrained(),
                                   targets=recipe["targets"], num_iterations=recipe["num_iterations"],
                                   judge=pretrained.fresh_pretrained())
