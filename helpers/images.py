"""RGB image arrays as the course's image functions accept them."""
from __future__ import annotations

import numpy as np


def to_rgb_uint8(image, where):
    """Any grey or RGB(A) image as (H, W, 3) uint8, with a clear error for anything else.

    image: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA (alpha dropped); uint8 0..255,
      or floats/ints: values up to 1.0 are read as 0..1 (scaled by 255), larger ones as
      0..255; rounded and clipped to 0..255.
    where: what to name in the error (the function or file the image came from).
    Returns (H, W, 3) uint8. Raises ValueError for another shape or NaN/inf values.
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise ValueError(f"{where}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {img.shape}")
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.asarray(img, dtype=np.float64)
        if not np.all(np.isfinite(img)):
            raise ValueError(f"{where}: the image holds NaN or inf values")
        if img.max(initial=0.0) <= 1.0:
            img = img * 255.0
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img
