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


def class_index(text):
    """The class a target box names: 'stingray (6)', 'Stingray' or '6' -> 6; None if none.

    Names are ImageNet's first synonyms (:func:`helpers.pretrained.class_name`), matched
    without regard to case; where two classes share a name (there are two 'crane's), the
    box's options carry the index: 'crane (134)'.
    """
    from helpers.pretrained import NUM_CLASSES, class_names
    text = str(text).strip()
    if text.endswith(")") and "(" in text:
        text = text[text.rindex("(") + 1:-1].strip()
    if text.isdigit():
        return int(text) if int(text) < NUM_CLASSES else None
    names = [n.lower() for n in class_names()]
    return names.index(text.lower()) if text.lower() in names else None


def explore_network_visualization(model, X, y, names, saliency_fn, fooling_fn):
    """A widget: image dropdown, a target class box (type part of a name: the browser offers
    the matching classes) and a button that runs :func:`render`."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from helpers.pretrained import NUM_CLASSES, class_name
    image = W.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=0,
                       description="image")
    choices = [f"{class_name(i)} ({i})" for i in range(NUM_CLASSES)]
    target = W.Combobox(value=choices[6], options=choices, description="target",
                        placeholder="type a class name")
    label = W.Label("")
    button = W.Button(description="run")
    out = W.Output()

    def on_run(_):
        index = class_index(target.value)
        if index is None:
            label.value = f"no class named {target.value!r}: type part of a name and pick one"
            return
        label.value = ""
        with out:
            out.clear_output(wait=True)
            fig, info = render(image.value, index, model, X, y, names, saliency_fn, fooling_fn)
            plt.show(fig)

    button.on_click(on_run)
    return W.VBox([W.HBox([image, target, button, label]), out])
