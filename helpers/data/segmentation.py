"""A small, deterministic semantic-segmentation set: shapes on textured backgrounds.

Every image is 64x64 RGB with one to three filled shapes (disc, square, triangle)
of random size on a random textured background (stripes at a random angle plus
noise). Shapes are flat; each class is tinted towards its own hue (discs red,
squares green, triangles blue, each channel jittered), so recognising a class is
easy and the hard part is the exact boundary. The mask gives each pixel its class:

    0 background, 1 disc, 2 square, 3 triangle     (CLASS_NAMES)

Nothing is downloaded or read from disk: :func:`load_shapes` generates the same
arrays for the same arguments on every machine (NumPy's PCG64 with a fixed seed),
in about a second for 3000 images.
"""
from __future__ import annotations

import numpy as np

CLASS_NAMES = ("background", "disc", "square", "triangle")
NUM_CLASSES = len(CLASS_NAMES)
# Each class's shapes are tinted towards one hue (jittered by +-0.25 per channel), so a
# small network learns *what* a region is within a minute of CPU training and the
# interesting part left is *where* its boundary is (what skip connections help with).
_CLASS_COLOURS = {1: np.array([0.9, 0.25, 0.2]), 2: np.array([0.2, 0.85, 0.25]),
                  3: np.array([0.25, 0.3, 0.95])}


def _background(rng, size):
    """(size, size, 3) float32 in [0, 1]: stripes at a random angle and period, plus noise (shapes are flat)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(4, 12)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)
    c1 = rng.uniform(0.2, 0.8, size=3)
    c2 = c1 + rng.choice([-1, 1], size=3) * rng.uniform(0.15, 0.3, size=3)
    img = c1 + (c2 - c1) * stripes[..., None]
    img += rng.normal(0, 0.08, size=(size, size, 3))
    return img.astype(np.float32)


def _shape_mask(kind, rng, size):
    """Boolean (size, size) mask of one shape of class ``kind`` (1 disc, 2 square, 3 triangle)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = rng.uniform(7, 14)                       # half-size in pixels
    cy, cx = rng.uniform(r, size - r, size=2)
    if kind == 1:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
    if kind == 2:
        return (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    # Upright isosceles triangle: apex at the top, base at the bottom.
    top, bottom = cy - r, cy + r
    t = (yy - top) / (bottom - top)              # 0 at the apex, 1 at the base
    return (t >= 0) & (t <= 1) & (np.abs(xx - cx) <= t * r)


def make_image(rng, size=64, max_shapes=3):
    """One image and its mask.

    rng: np.random.Generator (its state advances).
    Returns image (size, size, 3) float32 in [0, 1] and mask (size, size) uint8 in
    [0, NUM_CLASSES). Later shapes are drawn over earlier ones, in the mask too.
    """
    img = _background(rng, size)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(1, max_shapes + 1)):
        kind = int(rng.integers(1, NUM_CLASSES))
        m = _shape_mask(kind, rng, size)
        colour = np.clip(_CLASS_COLOURS[kind] + rng.uniform(-0.25, 0.25, size=3), 0, 1)
        img[m] = colour
        mask[m] = kind
    return np.clip(img, 0, 1), mask


def load_shapes(num_train=2400, num_val=600, size=64, seed=0):
    """Generate the shapes segmentation set (deterministic for given arguments).

    Returns a dict:
    - x_train: (num_train, size, size, 3) float32 in [0, 1]
    - y_train: (num_train, size, size) uint8 class per pixel (see CLASS_NAMES)
    - x_val, y_val: the same for num_val validation images (drawn from an
      independent seed, so no image appears in both splits)
    - class_names: tuple of NUM_CLASSES names
    Raises ValueError for sizes or counts that cannot be generated.
    """
    if int(size) < 32:
        raise ValueError(f"load_shapes: size must be at least 32 pixels, got {size}")
    if int(num_train) < 0 or int(num_val) < 0:
        raise ValueError(f"load_shapes: counts must be >= 0, got num_train={num_train}, num_val={num_val}")
    out = {"class_names": CLASS_NAMES}
    for split, n, offset in (("train", num_train, 0), ("val", num_val, 1)):
        rng = np.random.default_rng([seed, offset])
        xs = np.zeros((n, size, size, 3), np.float32)
        ys = np.zeros((n, size, size), np.uint8)
        for i in range(n):
            xs[i], ys[i] = make_image(rng, size)
        out[f"x_{split}"], out[f"y_{split}"] = xs, ys
    return out
