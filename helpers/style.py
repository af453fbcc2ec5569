"""Style transfer on the pretrained EfficientNet-Lite0: images in and out, feature layers.

Built on :mod:`helpers.pretrained` (the network, its pixel mapping and layer names). The
network's own ``preprocess`` crops and resizes to 224x224 for classification; style
transfer keeps the whole picture at any size, so :func:`image_input` only maps pixels::

    x = image_input("chelsea", 160)        # (1, 160, 241, 3) float32 in [PIXEL_MIN, PIXEL_MAX]
    feats = feature_model()(x)             # list of 6 activations, see FEATURE_LAYERS
    show = to_uint8(x)                     # (160, 241, 3) uint8
"""
from __future__ import annotations

import numpy as np

from helpers import pretrained
from helpers.data.style_images import load_image

#: The valid range of a preprocessed pixel: clamp the image you optimize to it.
PIXEL_MIN, PIXEL_MAX = pretrained.PIXEL_MIN, pretrained.PIXEL_MAX

#: The layers the quiz reads, early to late; ``extract_features`` returns them in this
#: order, and ``content_layer`` / ``style_layers`` are indices into this tuple. Sizes are
#: for a 160x241 input (each layer halves the previous size where it says /2).
FEATURE_LAYERS = (
    "stem_relu",     # 0: 80x121x32   stem conv /2 + BN + ReLU6: edges and colours
    "block0_out",    # 1: 80x121x16   first MBConv block
    "block2_out",    # 2: 40x61x24    end of stage 2 (/2)
    "block4_out",    # 3: 20x31x40    end of stage 3 (/2)
    "block7_out",    # 4: 10x16x80    end of stage 4 (/2): parts of objects
    "block10_out",   # 5: 10x16x112   end of stage 5
)

_FEATURE_MODEL = None


def feature_model():
    """The frozen keras.Model from a preprocessed image (N, H, W, 3) to the list of the
    FEATURE_LAYERS activations [(N, H_i, W_i, C_i) for each layer]. Built once, cached."""
    global _FEATURE_MODEL
    if _FEATURE_MODEL is None:
        _FEATURE_MODEL = pretrained.feature_extractor(list(FEATURE_LAYERS))
    return _FEATURE_MODEL


def image_input(image, size=None):
    """An image as the network's input: float32 (1, H, W, 3), pixels (x - 127) / 128.

    image: a sample name ("chelsea"), a file path, or an (H, W, 3) uint8 array.
    size: if given, the shorter side is resized to ``size`` pixels (aspect kept).
    Raises the errors of helpers.data.style_images.load_image for bad names or paths.
    """
    import tensorflow as tf
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        img = load_image(image, size)
    else:
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"image_input: expected an (H, W, 3) image, got shape {img.shape}")
        if size is not None:
            from helpers.data.style_images import resize_shorter_side
            img = resize_shorter_side(img.astype(np.uint8), size)
    x = (img.astype(np.float32) - pretrained.MEAN) / pretrained.STD
    return tf.constant(x[None])


def to_uint8(x):
    """Inverse of :func:`image_input`: (1, H, W, 3) or (H, W, 3) float -> (H, W, 3) uint8."""
    arr = pretrained.deprocess(x)
    return arr[0] if arr.ndim == 4 else arr


def random_image(shape, seed=0):
    """A random start image in the valid range: float32 tensor of ``shape`` (1, H, W, 3)."""
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    return tf.constant(rng.uniform(PIXEL_MIN, PIXEL_MAX, size=tuple(shape)).astype(np.float32))


# ----------------------------------------------------------------------------------------
# The quiz's graded runs (sections 6-8 of the notebook)
# ----------------------------------------------------------------------------------------
#
# A quality test must not trust loss histories that the notebook computed: a submission can
# assign ``results = {...}`` in any cell. ``graded_histories`` therefore repeats the fixed
# runs of :data:`RECIPES` in the test cell, from the submission's ``style_transfer``,
# whenever it runs in a grading kernel (:func:`helpers.env.grading_kernel`); in a student's
# own kernel it returns the notebook's results, so nothing is computed twice. The notebook's
# cells skip those runs when graded (``env.GRADING``), so autograding takes as long as before.

#: Style transfer (section 6): content from layer 4, style from layers 0, 2, 3, 4.
TRANSFER_SETTINGS = dict(image_size=160, style_size=192, content_layer=4, content_weight=1e-3,
                         style_layers=[0, 2, 3, 4], style_weights=[30.0] * 4, tv_weight=2e-2)
#: The (content, style) pairs of section 6.
TRANSFER_PAIRS = (("chelsea", "gravel"), ("astronaut", "immunohistochemistry"))
#: Feature inversion (section 7): content loss only, from noise, layers 2 and 3.
INVERSION_SETTINGS = dict(image_size=160, style_size=64, content_weight=1e-2, style_layers=[0],
                          style_weights=[0.0], tv_weight=5e-2, init_random=True)
#: Texture synthesis (section 8): style loss only, from noise.
TEXTURE_SETTINGS = dict(content_image="coffee", style_image="immunohistochemistry", image_size=160,
                        style_size=192, content_layer=0, content_weight=0.0,
                        style_layers=[0, 1, 2, 3, 4], style_weights=[30.0] * 5, tv_weight=1e-1,
                        init_random=True)

#: name -> {key: (label, the loss that must fall, keyword arguments of style_transfer)}.
#: Every run uses style_transfer's defaults otherwise (200 Adam steps, seed 0).
RECIPES = {
    "pairs": {(c, s): (f"{c} + {s}", "style",
                       dict(content_image=c, style_image=s, **TRANSFER_SETTINGS))
              for c, s in TRANSFER_PAIRS},
    "inversion": {layer: (f"inversion from {FEATURE_LAYERS[layer]}", "content",
                          dict(content_image="coffee", style_image="coffee", content_layer=layer,
                               **INVERSION_SETTINGS))
                  for layer in (2, 3)},
    "texture": {"texture": ("texture synthesis", "style", TEXTURE_SETTINGS)},
}


def run_recipe(name, style_transfer, **display):
    """Run the style_transfer calls of ``RECIPES[name]`` ("pairs", "inversion", "texture").

    Inputs:
    - style_transfer(content_image, style_image, image_size, style_size, content_layer,
      content_weight, style_layers, style_weights, tv_weight, init_random=False) ->
      (image (H, W, 3) uint8, history dict of loss lists): called with these cs231n
      arguments only (fresh copies), so its other parameters keep their defaults.
    - display: extra keyword arguments for the notebook's own runs (show_every=100,
      verbose=True), passed on; the graded runs pass none.

    Returns {key: (image, history)}, keys as in ``RECIPES[name]`` ((content, style) pairs,
    layer indices, or "texture"). Prints per run its time and how much its loss fell,
    e.g. "chelsea + gravel: 17.2 s, style loss fell 25x".
    """
    import copy
    import time
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: expected one of {sorted(RECIPES)}")
    out = {}
    for key, (label, loss, kwargs) in RECIPES[name].items():
        t0 = time.perf_counter()
        image, history = style_transfer(**copy.deepcopy(kwargs), **display)
        out[key] = (image, history)
        try:
            fell = f"{float(history[loss][0]) / float(history[loss][-1]):.0f}x"
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
            fell = "(no usable history)"
        print(f"{label}: {time.perf_counter() - t0:.1f} s, {loss} loss fell {fell}")
    return out


#: name -> the least relative L2 distance (||x - content|| / ||content||) between a graded
#: run's returned image and its content image. Feature inversion is graded by how far its
#: content loss falls, which returning the content image itself would do perfectly; the
#: reference's inversions from noise end 0.67 and 0.76 away from it.
NOT_A_COPY = {"inversion": 0.3}

#: The loss names of a history, in the order style_transfer's compute_losses returns them.
LOSS_NAMES = ("total", "content", "style", "tv")

#: The loss functions a graded run measures with (the submission's, by these names).
LOSS_FUNCTIONS = ("extract_features", "gram_matrix", "content_loss", "style_loss", "tv_loss")


def start_image(settings):
    """The image a run of ``settings`` (a recipe's style_transfer arguments) starts from:
    the content image, or uniform noise (seed 0) with ``init_random``. (1, H, W, 3)."""
    content = image_input(settings["content_image"], settings["image_size"])
    if settings.get("init_random"):
        return random_image(content.shape, settings.get("seed", 0))
    return content


def loss_meter(settings, functions, model=None):
    """A function x -> {loss name: float} for images of a run of ``settings``.

    Computes the losses as style_transfer does (content loss at ``content_layer``, style
    loss over ``style_layers`` against the style image's Gram matrices, TV loss, their
    sum), with ``functions``: {name: function} for every name in :data:`LOSS_FUNCTIONS`,
    with the quiz's signatures. x: (1, H, W, 3) preprocessed image.
    """
    import tensorflow as tf
    from helpers.checks.style_transfer import _scalar
    missing = [name for name in LOSS_FUNCTIONS if not callable(functions.get(name))]
    if missing:
        raise ValueError(f"loss_meter needs the functions {', '.join(missing)}")
    model = feature_model() if model is None else model
    features = functions["extract_features"]
    content = image_input(settings["content_image"], settings["image_size"])
    content_target = features(content, model)[settings["content_layer"]]
    style_features = features(image_input(settings["style_image"], settings["style_size"]), model)
    style_targets = [functions["gram_matrix"](style_features[i]) for i in settings["style_layers"]]

    def measure(x):                     # every call gets fresh lists: nothing is reused
        feats = features(tf.identity(x), model)
        parts = [functions["content_loss"](float(settings["content_weight"]),
                                           feats[settings["content_layer"]], content_target),
                 functions["style_loss"](list(feats), list(settings["style_layers"]),
                                         list(style_targets), list(settings["style_weights"])),
                 functions["tv_loss"](tf.identity(x), float(settings["tv_weight"]))]
        parts = [float(_scalar(part, "the loss", name))
                 for part, name in zip(parts, LOSS_FUNCTIONS[2:])]
        return dict(zip(LOSS_NAMES, [sum(parts)] + parts))
    return measure


def returned_image(image, like, label):
    """style_transfer's returned image as a (1, H, W, 3) network input, checked against
    ``like`` (the start image, (1, H, W, 3)); AssertionError with what is wrong otherwise."""
    from helpers.images import to_rgb_uint8
    try:
        img = to_rgb_uint8(image, f"style_transfer ({label}) returned an image that")
    except (TypeError, ValueError) as err:
        raise AssertionError(f"{err}; return the result as (H, W, 3) uint8: style.to_uint8(img)") from None
    if img.shape[:2] != tuple(like.shape[1:3]):
        raise AssertionError(f"style_transfer ({label}) returned a {img.shape[0]}x{img.shape[1]} "
                             f"image; expected {like.shape[1]}x{like.shape[2]}, the content image "
                             "at image_size")
    return image_input(img)


def graded_histories(name, notebook_runs, style_transfer, functions=None):
    """The loss histories a quality test grades: {key: history}, keys of ``RECIPES[name]``.

    In a grading kernel: runs ``RECIPES[name]`` here (:func:`run_recipe`) with the
    submission's ``style_transfer``, and measures the losses of the start image and of
    each returned image with the submission's loss ``functions`` ({name: function} for
    :data:`LOSS_FUNCTIONS`); the history is {loss: [start, end]} of those measurements, so
    neither ``notebook_runs`` nor the history style_transfer reports counts. A returned image
    closer to the content image than :data:`NOT_A_COPY` allows raises AssertionError.
    Elsewhere: the histories of ``notebook_runs``, the notebook's {key: (image, history)}
    (or {key: history}) dict; raises AssertionError if it is None.
    """
    from helpers import env
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: expected one of {sorted(RECIPES)}")
    if not env.grading_kernel():
        runs = env.notebook_result(notebook_runs, f"no {name} results: run the cell above (it "
                                   f"runs the {name} with your style_transfer) first")
        return {k: v[1] if isinstance(v, tuple) else v for k, v in runs.items()}
    if functions is None:
        raise ValueError("graded_histories needs the loss functions to measure the returned images")
    print(f"graded run: the {name} recipe run here with your style_transfer, its losses "
          "measured on the returned images")
    out = {}
    for key, (image, _) in run_recipe(name, style_transfer).items():
        label, loss, settings = RECIPES[name][key]
        measure = loss_meter(settings, functions)
        start = start_image(settings)
        returned = returned_image(image, start, label)
        first, last = measure(start), measure(returned)
        if name in NOT_A_COPY:
            content = np.asarray(image_input(settings["content_image"], settings["image_size"]))
            away = float(np.linalg.norm(np.asarray(returned) - content) / np.linalg.norm(content))
            if away < NOT_A_COPY[name]:
                raise AssertionError(
                    f"{label}: the returned image is {away:.0%} (relative L2) away from the "
                    f"content image; a run from noise ends far from it (at least "
                    f"{NOT_A_COPY[name]:.0%}): return the image the optimization made")
        print(f"{label}: measured {loss} loss {first[loss]:.4g} at the start, "
              f"{last[loss]:.4g} on the returned image")
        out[key] = {k: [first[k], last[k]] for k in LOSS_NAMES}
    return out
