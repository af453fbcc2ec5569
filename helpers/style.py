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
