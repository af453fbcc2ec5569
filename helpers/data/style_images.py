"""Content and style images for the style-transfer quiz, all offline.

The sample images ship inside packages the course already installs (scikit-image,
scikit-learn, matplotlib); any image file of your own works too::

    img = load_image("chelsea", size=160)          # (160, 240, 3) uint8, shorter side 160
    img = load_image("~/Pictures/my_cat.jpg", 160)  # your own file

Grey-level textures (brick, gravel, grass) are returned as three equal channels and
an alpha channel is dropped, so every image is (H, W, 3) uint8 RGB.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from helpers.images import to_rgb_uint8


def _skimage(name):
    def load():
        import skimage.data
        return getattr(skimage.data, name)()
    return load


def _sklearn(filename):
    def load():
        from sklearn.datasets import load_sample_image
        return load_sample_image(filename)
    return load


def _matplotlib(filename):
    def load():
        import matplotlib.cbook
        with matplotlib.cbook.get_sample_data(filename) as f:
            return _read_file(f)
    return load


#: name -> (loader, where it comes from). Every loader works without a network.
SAMPLE_IMAGES = {
    "astronaut": (_skimage("astronaut"), "skimage.data.astronaut: Eileen Collins, NASA"),
    "chelsea": (_skimage("chelsea"), "skimage.data.chelsea: Chelsea the cat"),
    "coffee": (_skimage("coffee"), "skimage.data.coffee: a cup of coffee"),
    "rocket": (_skimage("rocket"), "skimage.data.rocket: a Falcon 9 launch"),
    "hubble_deep_field": (_skimage("hubble_deep_field"), "skimage.data.hubble_deep_field: galaxies"),
    "immunohistochemistry": (_skimage("immunohistochemistry"),
                             "skimage.data.immunohistochemistry: stained tissue"),
    "brick": (_skimage("brick"), "skimage.data.brick: a brick wall (grey)"),
    "gravel": (_skimage("gravel"), "skimage.data.gravel: gravel (grey)"),
    "grass": (_skimage("grass"), "skimage.data.grass: grass (grey)"),
    "colorwheel": (_skimage("colorwheel"), "skimage.data.colorwheel: a colour wheel"),
    "china": (_sklearn("china.jpg"), "sklearn load_sample_image('china.jpg'): a temple"),
    "flower": (_sklearn("flower.jpg"), "sklearn load_sample_image('flower.jpg'): a flower"),
    "grace_hopper": (_matplotlib("grace_hopper.jpg"), "matplotlib sample data: Grace Hopper"),
}


def _read_file(path_or_file):
    from PIL import Image
    with Image.open(path_or_file) as im:
        return np.asarray(im.convert("RGB"))


def resize_shorter_side(img, size):
    """Resize (H, W, 3) uint8 ``img`` so that its shorter side is ``size`` pixels.

    The aspect ratio is kept (bicubic, with antialiasing when shrinking).
    Returns (H', W', 3) uint8 with min(H', W') == size.
    """
    from PIL import Image
    size = int(size)
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    h, w = img.shape[:2]
    if h <= w:
        new_h, new_w = size, max(size, round(w * size / h))
    else:
        new_h, new_w = max(size, round(h * size / w)), size
    new = (new_w, new_h)                                              # PIL wants (width, height)
    return np.asarray(Image.fromarray(img).resize(new, Image.BICUBIC, reducing_gap=None))


def load_image(name_or_path, size=None):
    """Load a sample image by name, or any image file, as (H, W, 3) uint8 RGB.

    name_or_path: a key of SAMPLE_IMAGES (e.g. "chelsea") or a path to a file
      PIL can read (jpg, png, ...). "~" is expanded.
    size: if given, resize so that the shorter side is ``size`` pixels (cs231n's
      ``load_image(filename, size)``), keeping the aspect ratio.
    Raises FileNotFoundError naming the path for a missing file, and ValueError
    listing the sample names for a name that is neither.
    """
    key = str(name_or_path)
    if key in SAMPLE_IMAGES:
        img = SAMPLE_IMAGES[key][0]()
    else:
        path = Path(os.path.expanduser(key))
        if not path.is_file():
            if path.suffix or os.sep in key:
                raise FileNotFoundError(f"image file not found: {path}")
            raise ValueError(f"unknown image {key!r}: give a file path or one of "
                             f"{', '.join(sorted(SAMPLE_IMAGES))}")
        try:
            img = _read_file(path)
        except Exception as exc:
            raise ValueError(f"could not read {path} as an image: {exc}") from exc
    img = to_rgb_uint8(img, key)
    if size is not None:
        img = resize_shorter_side(img, size)
    return img


def center_crop_square(img):
    """The largest centred square of (H, W, 3) ``img``: (S, S, 3) with S = min(H, W)."""
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[top:top + s, left:left + s]
