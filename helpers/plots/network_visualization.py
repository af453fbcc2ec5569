"""Plots for the ``network_visualization`` quiz; each ``show_*`` returns its figure."""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt
    return plt


def _img(x):
    from helpers.pretrained import deprocess
    return deprocess(x)


def show_images(X, titles=None, per_row=6):
    """Preprocessed images (N, H, W, 3) in a row (or rows), with optional titles."""
    plt = _plt()
    X = np.asarray(X)
    n = len(X)
    cols = min(n, per_row)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in enumerate(axes.ravel()[:n]):
        ax.imshow(_img(X[i]))
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def show_saliency(X, saliency, titles=None):
    """Images (N, H, W, 3) above their saliency maps (N, H, W)."""
    plt = _plt()
    X, saliency = np.asarray(X), np.asarray(saliency)
    n = len(X)
    fig, axes = plt.subplots(2, n, figsize=(2.4 * n, 5), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(_img(X[i]))
        axes[1, i].imshow(saliency[i], cmap="hot")
        if titles is not None:
            axes[0, i].set_title(titles[i], fontsize=9)
        axes[0, i].axis("off")
        axes[1, i].axis("off")
    axes[1, 0].set_title("saliency", fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def show_randomization(X, saliency, randomized, index=0):
    """One image's saliency map for the trained model and for each randomized copy.

    randomized: dict {first randomized layer: (N, H, W) maps}, in cascade order.
    """
    plt = _plt()
    cols = 2 + len(randomized)
    fig, axes = plt.subplots(1, cols, figsize=(2.2 * cols, 2.6))
    axes[0].imshow(_img(np.asarray(X)[index]))
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(np.asarray(saliency)[index], cmap="hot")
    axes[1].set_title("trained", fontsize=9)
    for ax, (name, maps) in zip(axes[2:], randomized.items()):
        ax.imshow(np.asarray(maps)[index], cmap="hot")
        ax.set_title(f"random from\n{name}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def show_fooling(X, X_fooling, true_names, target_names, magnify=10.0):
    """Rows: original, fooling image, magnified difference; one column per image."""
    plt = _plt()
    X, X_fooling = np.asarray(X), np.asarray(X_fooling)
    n = len(X)
    fig, axes = plt.subplots(3, n, figsize=(2.4 * n, 7.4), squeeze=False)
    for i in range(n):
        diff = X_fooling[i] - X[i]
        axes[0, i].imshow(_img(X[i]))
        axes[0, i].set_title(true_names[i], fontsize=9)
        axes[1, i].imshow(_img(X_fooling[i]))
        axes[1, i].set_title(f"-> {target_names[i]}", fontsize=9)
        axes[2, i].imshow(np.clip(0.5 + magnify * diff / 2.0, 0, 1))
        axes[2, i].set_title(f"difference x{magnify:g}", fontsize=9)
        for r in range(3):
            axes[r, i].axis("off")
    fig.tight_layout()
    return fig


def show_class_visualization(X, title=""):
    """One generated image (1, H, W, 3) with a title."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3, 3.2))
    ax.imshow(_img(np.asarray(X)[0]))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return fig
