"""Plots for the style-transfer quiz; every ``show_*`` returns its figure."""
from __future__ import annotations

import numpy as np


def _as_uint8(img):
    """(H, W, 3) uint8, or a network input (1, H, W, 3) / (H, W, 3) float -> uint8."""
    arr = np.asarray(img.numpy() if hasattr(img, "numpy") else img)
    if arr.dtype != np.uint8:
        from helpers.style import to_uint8
        arr = to_uint8(arr)
    return arr[0] if arr.ndim == 4 else arr


def show_images(images, titles=None, height=3.0, suptitle=None):
    """Images side by side in one row, same height.

    images: list of (H, W, 3) uint8 images or network inputs (see helpers.style).
    titles: list of str (optional), one per image.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    images = [_as_uint8(im) for im in images]
    widths = [im.shape[1] / im.shape[0] for im in images]
    fig, axes = plt.subplots(1, len(images), figsize=(height * sum(widths) + 0.2 * len(images), height),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for ax, im, title in zip(axes[0], images, titles or [None] * len(images)):
        ax.imshow(im)
        ax.set_axis_off()
        if title:
            ax.set_title(title, fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_transfer(content, style, result, title=None):
    """Content, style and result side by side; returns the figure."""
    return show_images([content, style, result], ["content", "style", "result"], suptitle=title)


def show_losses(history, title="losses"):
    """Each loss of ``history`` (dict of lists, one value per iteration) on a log scale."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3))
    for key, values in history.items():
        values = np.asarray(values, dtype=float)
        if values.size and np.any(values > 0):
            ax.semilogy(np.maximum(values, 1e-12), label=key)
    ax.set_xlabel("iteration")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
