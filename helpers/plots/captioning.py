"""Plots for the captioning quizzes: training losses, and captions under images."""
from __future__ import annotations

import numpy as np


def show_losses(histories, title="Training loss", target=None):
    """Plot loss curves.

    histories: dict label -> list of per-iteration losses (or one list).
    target: optional horizontal line (e.g. 0.1 for the overfitting test).
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    if not isinstance(histories, dict):
        histories = {"loss": histories}
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, hist in histories.items():
        ax.plot(np.arange(1, len(hist) + 1), hist, label=label, lw=1)
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=0.8, label=f"target {target:g}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss per caption")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def show_captions(images, sampled, references=None, title=None, ncols=4):
    """Images with the model's caption under each (and one reference caption in grey).

    images: (N, H, W, 3) floats in [0, 1]; sampled: N strings; references: N strings or None.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    import textwrap
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 4.4 * nrows + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        ax = axes.ravel()[i]
        ax.imshow(images[i], interpolation="nearest")
        text = "model: " + "\n".join(textwrap.wrap(sampled[i], 34))
        if references is not None:
            text += "\ntruth: " + "\n".join(textwrap.wrap(references[i], 34))
        ax.text(0, -0.03, text, fontsize=8, va="top", ha="left", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    # Leave room under every image for its captions (text outside the axes).
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.5 / fig.get_figheight(), wspace=0.08,
                        hspace=0.5, bottom=1.2 / fig.get_figheight())
    return fig
