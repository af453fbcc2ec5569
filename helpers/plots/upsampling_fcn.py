"""Plots for the ``upsampling_fcn`` quiz."""
from __future__ import annotations

import numpy as np


def show_predictions(images, masks, predictions, num_classes=4, titles=None):
    """Images, true masks and each model's predicted masks, one row per image.

    images: (K, H, W, 3) in [0, 1]; masks: (K, H, W) int.
    predictions: dict {column title: (K, H, W) int predicted masks}.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    k = len(images)
    cols = 2 + len(predictions)
    fig, axes = plt.subplots(k, cols, figsize=(2.2 * cols, 2.2 * k), squeeze=False)
    heads = ["image", "true mask", *predictions]
    for i in range(k):
        panels = [images[i], masks[i], *(p[i] for p in predictions.values())]
        for j, panel in enumerate(panels):
            ax = axes[i, j]
            if j == 0:
                ax.imshow(np.clip(panel, 0, 1))
            else:
                ax.imshow(panel, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(heads[j], fontsize=9)
    fig.tight_layout()
    return fig
