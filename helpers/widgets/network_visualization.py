"""An ipywidgets view for ``network_visualization``: pick an image and a target class,
see the saliency map of the true class and a fooling image for the target.

:func:`render` does the work and returns a figure (tested without a frontend);
:func:`explore_network_visualization` wraps it in widgets and returns the widget.
"""
from __future__ import annotations

import numpy as np


def render(index, target, model, X, y, names, saliency_fn, fooling_fn, magnify=10.0):
    """Compute and draw the view for image ``index`` and target class ``target``.

    X: (N, H, W, 3) preprocessed images, y: (N,) labels, names: N image names.
    saliency_fn(X, y, model) -> (N, H, W); fooling_fn(X, target, model) -> (1, H, W, 3).
    Returns (fig, info): info holds 'saliency' (H, W), 'fooling' (1, H, W, 3),
    'predicted' (the model's class for the fooling image) and 'relative_change'.
    """
    import matplotlib.pyplot as plt
    from helpers.pretrained import class_name, deprocess
    if not 0 <= index < len(X):
        raise ValueError(f"image index must be in 0..{len(X) - 1}, got {index}")
    target = int(target)
    x = np.asarray(X[index:index + 1], np.float32)
    sal = np.asarray(saliency_fn(x.copy(), np.array(y[index:index + 1]), model))[0]
    fool = np.asarray(fooling_fn(x.copy(), target, model))    # each call its own copy of x
    predicted = int(np.argmax(np.asarray(model(fool, training=False))[0]))
    rel = float(np.linalg.norm(fool - x) / np.linalg.norm(x))
    fig, axes = plt.subplots(1, 4, figsize=(11, 3.2))
    axes[0].imshow(deprocess(x[0]))
    axes[0].set_title(f"{names[index]}: {class_name(y[index])}", fontsize=9)
    axes[1].imshow(sal, cmap="hot")
    axes[1].set_title("saliency of the true class", fontsize=9)
    axes[2].imshow(deprocess(fool[0]))
    axes[2].set_title(f"predicted: {class_name(predicted)}", fontsize=9)
    axes[3].imshow(np.clip(0.5 + magnify * (fool[0] - x[0]) / 2.0, 0, 1))
    axes[3].set_title(f"difference x{magnify:g} ({rel:.2%} L2)", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig, dict(saliency=sal, fooling=fool, predicted=predicted, relative_change=rel)


def explore_network_visualization(model, X, y, names, saliency_fn, fooling_fn):
    """A widget: image dropdown, target class box, and a button that runs :func:`render`."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from helpers.pretrained import NUM_CLASSES, class_name
    image = W.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=0,
                       description="image")
    target = W.BoundedIntText(value=6, min=0, max=NUM_CLASSES - 1, description="target")
    label = W.Label(class_name(6))
    button = W.Button(description="run")
    out = W.Output()

    def on_target(change):
        label.value = class_name(change["new"])

    def on_run(_):
        with out:
            out.clear_output(wait=True)
            fig, info = render(image.value, target.value, model, X, y, names,
                               saliency_fn, fooling_fn)
            plt.show(fig)

    target.observe(on_target, names="value")
    button.on_click(on_run)
    return W.VBox([W.HBox([image, target, label, button]), out])
