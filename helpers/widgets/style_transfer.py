"""Move the content/style weight ratio and watch a small style transfer change.

``explore_weight_ratio(style_transfer, ...)`` returns an ipywidgets box (not displayed);
:func:`transfer_for_ratio` is the function behind it, usable and tested without a
frontend. Results are cached per ratio, so moving the slider back is instant.
"""
from __future__ import annotations

import numpy as np

#: The slider's stops: content weight multiplied by these (1 = the notebook's setting).
RATIOS = (0.01, 0.1, 1.0, 10.0, 100.0)


def scaled_weights(ratio, content_weight, style_weights):
    """The weights for a content/style ratio ``ratio`` times the base one.

    The style weights stay; the content weight is multiplied by ``ratio`` (> 0).
    Returns (content_weight, list of style weights).
    """
    ratio = float(ratio)
    if not np.isfinite(ratio) or ratio <= 0:
        raise ValueError(f"ratio must be a positive number, got {ratio}")
    return content_weight * ratio, [float(w) for w in style_weights]


def transfer_for_ratio(style_transfer, ratio, settings, cache=None):
    """Run ``style_transfer(**settings)`` with the content weight scaled by ``ratio``.

    style_transfer: the notebook's function; called with keyword arguments and
      verbose=False, show_every=0; it returns (image (H, W, 3) uint8, history).
    settings: dict of its keyword arguments (content_image, ..., num_iters).
    cache: optional dict ratio -> (image, history), filled and reused.
    Returns (image, history).
    """
    if cache is not None and ratio in cache:
        return cache[ratio]
    kwargs = dict(settings)
    kwargs["content_weight"], kwargs["style_weights"] = scaled_weights(
        ratio, settings["content_weight"], settings["style_weights"])
    kwargs.update(verbose=False, show_every=0)
    result = style_transfer(**kwargs)
    if cache is not None:
        cache[ratio] = result
    return result


def explore_weight_ratio(style_transfer, settings, ratios=RATIOS):
    """A slider over content/style ratios and the image it gives (an ipywidgets VBox).

    Each new ratio runs ``style_transfer`` once with ``settings`` (keep them small:
    a 96-pixel image and ~60 iterations take a few seconds).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from helpers.plots.style_transfer import show_images

    cache = {}
    slider = widgets.SelectionSlider(options=[(f"{r:g}x", r) for r in ratios], value=1.0,
                                     description="content:style", continuous_update=False)
    out = widgets.Output()

    def render(change=None):
        ratio = slider.value
        with out:
            out.clear_output(wait=True)
            image, history = transfer_for_ratio(style_transfer, ratio, settings, cache)
            fig = show_images([image], [f"content weight x{ratio:g}: content "
                                        f"{history['content'][-1]:.3g}, style "
                                        f"{history['style'][-1]:.3g}"], height=3.5)
            plt.show(fig)

    slider.observe(render, names="value")
    box = widgets.VBox([slider, out])
    box.render = render            # call once to draw the first image
    return box
