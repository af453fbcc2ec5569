"""Plots for the ``cnn_building_blocks`` quiz (and the 1x1 quiz's feature maps).

Every function takes plain NumPy arrays that the notebook computed, draws them with
matplotlib and returns the figure (it does not call ``plt.show()``).
"""
from __future__ import annotations

import numpy as np


def _panel(ax, image, title, cmap="gray", vmin=None, vmax=None):
    ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])


def show_equivariance(image, feature_map, shifted_image, shifted_feature_map, shift=None):
    """Image and feature map, shifted image and its feature map, and their difference.

    image, shifted_image: (H, W), one channel of x and of shift(x).
    feature_map, shifted_feature_map: (H', W'), one channel of conv(x) and conv(shift(x));
      with stride 1 and 'same' padding H' = H, W' = W.
    shift: optional (dy, dx), written into the titles.
    Draws one row of five panels: x, conv(x), shift(x), conv(shift(x)) and
    |shift(conv(x)) - conv(shift(x))| computed here, so a reader sees the feature map
    move with the image (equivariance) rather than stay put (invariance).
    Returns the matplotlib figure (5 axes, one image each).
    """
    import matplotlib.pyplot as plt
    image, feature_map = np.asarray(image), np.asarray(feature_map)
    shifted_image, shifted_feature_map = np.asarray(shifted_image), np.asarray(shifted_feature_map)
    dy, dx = shift if shift is not None else (None, None)
    moved = f"shift by ({dy}, {dx})" if shift is not None else "shifted"
    diff = np.full(feature_map.shape, np.nan)
    if shift is not None and feature_map.shape == shifted_feature_map.shape:
        h, w = feature_map.shape
        diff = np.zeros_like(feature_map, dtype=float)
        diff[dy:, dx:] = np.abs(feature_map[:h - dy, :w - dx] - shifted_feature_map[dy:, dx:])
    lim = np.abs(np.concatenate([feature_map.ravel(), shifted_feature_map.ravel()])).max()
    fig, axes = plt.subplots(1, 5, figsize=(12, 2.8))
    _panel(axes[0], image, "image x")
    _panel(axes[1], feature_map, "feature map conv(x)", "RdBu_r", -lim, lim)
    _panel(axes[2], shifted_image, f"{moved}: x'")
    _panel(axes[3], shifted_feature_map, "conv(x')", "RdBu_r", -lim, lim)
    _panel(axes[4], diff, "|shift(conv(x)) - conv(x')|", "magma", 0, lim)
    fig.tight_layout()
    return fig


def show_rotation_pooling(image, rotated, pooled, pooled_rotated):
    """An image, its rotation, and the globally pooled features of both as bars.

    image, rotated: (H, W) one channel of x and of the rotated x.
    pooled, pooled_rotated: (F,) global-max-pooled features of each (one per filter).
    Returns the matplotlib figure: two image axes and one bar-chart axis, where
    rotation invariance would mean the two bars of every filter are equal.
    """
    import matplotlib.pyplot as plt
    pooled, pooled_rotated = np.ravel(pooled), np.ravel(pooled_rotated)
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8), gridspec_kw={"width_ratios": [1, 1, 1.6]})
    _panel(axes[0], image, "image x")
    _panel(axes[1], rotated, "x rotated by 90 degrees")
    f = np.arange(len(pooled))
    axes[2].bar(f - 0.2, pooled, width=0.4, label="pooled conv(x)")
    axes[2].bar(f + 0.2, pooled_rotated, width=0.4, label="pooled conv(rotated x)")
    axes[2].set_xticks(f, [f"filter {i}" for i in f], fontsize=8)
    axes[2].set_title("global max pooling per filter", fontsize=9)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_maps(maps, cmap="gray", shared_scale=False):
    """Several 2-D maps side by side, titled with their sizes.

    maps: dict {title: (H_i, W_i) array}; the sizes may differ (an image and its
      pooled versions), every map is drawn over the same width so cells stay visible.
    shared_scale: False gives each map its own colour scale; True puts all on the
      scale of the first map (so a mean shows up darker than a max).
    Returns the matplotlib figure (one axis with one image per map).
    """
    import matplotlib.pyplot as plt
    first = np.asarray(next(iter(maps.values())))
    vmin, vmax = (first.min(), first.max()) if shared_scale else (None, None)
    fig, axes = plt.subplots(1, len(maps), figsize=(2.6 * len(maps), 2.8), squeeze=False)
    for ax, (title, m) in zip(axes[0], maps.items()):
        m = np.asarray(m)
        _panel(ax, m, f"{title}\n{m.shape[0]}x{m.shape[1]}", cmap, vmin, vmax)
    fig.tight_layout()
    return fig
