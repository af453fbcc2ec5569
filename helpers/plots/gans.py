"""Plots for the ``gans`` quiz: grids of digits."""
from __future__ import annotations

import numpy as np


def show_images(images, title=None, ncols=10, size=0.8):
    """Show images in [-1, 1] (shape (N, 784), (N, 28, 28) or (N, 28, 28, 1)) as a grid.

    Returns the matplotlib figure (closed, so it is shown once when it is the cell's
    value or passed to display()).
    """
    import matplotlib.pyplot as plt
    x = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    x = x.reshape(len(x), 28, 28)
    nrows = int(np.ceil(len(x) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img in zip(axes.ravel(), x):
        ax.imshow((img + 1) / 2, cmap="gray", vmin=0, vmax=1)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(pad=0.1)
    plt.close(fig)
    return fig
