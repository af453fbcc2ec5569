"""Diagrams drawn from the notebook's own computations (``upsampling_fcn``, ``lstm_captioning``).

- :func:`transposed_scatter` / :func:`show_transposed_scatter`: a transposed convolution as
  kernel copies scattered ``stride`` pixels apart and summed;
- :func:`show_fcn`: the layers, shapes and skip additions of a Keras model, read from the model;
- :func:`lstm_gates` / :func:`show_lstm_gates`: an LSTM's four gates over time, recomputed from
  the documented parameters ``Wx, Wh, b`` and the hidden states the student's ``lstm_forward``
  returned (its cache is not read).

Each ``show_*`` returns its matplotlib figure.
"""
from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------- transposed convolution


def transposed_scatter(x, kernel, stride=2):
    """A single-channel 'valid' transposed convolution, one kernel copy per input pixel.

    x: (n, m) input; kernel: (k, l); stride: int s.
    Returns (copies, out): copies (n, m, H', W') with copies[i, j] = x[i, j] * kernel placed at
    (i*s, j*s) on an otherwise zero canvas, and out (H', W') = copies.sum((0, 1)), where
    H' = (n - 1)*s + k and W' = (m - 1)*s + l (the same numbers as Keras'
    Conv2DTranspose(1, (k, l), strides=s, padding='valid', use_bias=False)).
    """
    x, kernel = np.asarray(x, float), np.asarray(kernel, float)
    (n, m), (k, l) = x.shape, kernel.shape
    copies = np.zeros((n, m, (n - 1) * stride + k, (m - 1) * stride + l))
    for i in range(n):
        for j in range(m):
            copies[i, j, i * stride:i * stride + k, j * stride:j * stride + l] = x[i, j] * kernel
    return copies, copies.sum(axis=(0, 1))


def _grid(ax, values, title, cmap="viridis", fmt="{:.2g}", vmin=None, vmax=None):
    ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    for (r, c), v in np.ndenumerate(values):
        if v != 0:
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7, color="k")
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def show_transposed_scatter(x, kernel, stride=2):
    """Input, kernel, each scattered kernel copy, how many copies overlap, and their sum.

    x: (n, m) input with n*m <= 9 (one panel per copy); kernel: (k, l); stride: int.
    Returns the matplotlib figure (the sum is ``transposed_scatter(x, kernel, stride)[1]``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    copies, out = transposed_scatter(x, kernel, stride)
    n, m = np.shape(x)
    if n * m > 9:
        raise ValueError(f"show_transposed_scatter: at most 9 input pixels (one panel each), got {n}x{m}")
    k, l = np.shape(kernel)
    overlap = np.zeros(out.shape, int)
    for i in range(n):
        for j in range(m):
            overlap[i * stride:i * stride + k, j * stride:j * stride + l] += 1
    panels = 2 + n * m + 2
    cols = min(panels, 4 if n * m <= 4 else 6)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows), squeeze=False)
    axes = axes.ravel()
    _grid(axes[0], np.asarray(x, float), f"input x {n}x{m}", cmap="Blues")
    _grid(axes[1], np.asarray(kernel, float), f"kernel {k}x{l}", cmap="Greens")
    lim = np.abs(copies).max() or 1.0
    for idx, (i, j) in enumerate(np.ndindex(n, m)):
        ax = axes[2 + idx]
        _grid(ax, copies[i, j], f"x[{i},{j}] * kernel at ({i * stride},{j * stride})",
              cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.add_patch(Rectangle((j * stride - 0.5, i * stride - 0.5), l, k, fill=False, ec="k", lw=1.5))
    _grid(axes[2 + n * m], overlap, "copies overlapping", cmap="Oranges", fmt="{:d}")
    _grid(axes[3 + n * m], out, f"sum: output {out.shape[0]}x{out.shape[1]}", cmap="RdBu_r",
          vmin=-np.abs(out).max() or None, vmax=np.abs(out).max() or None)
    for ax in axes[panels:]:
        ax.axis("off")
    fig.suptitle(f"transposed convolution, stride {stride}: each input pixel paints a weighted "
                 f"copy of the kernel; overlaps add up", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------- FCN diagram

_FOLDED = ("BatchNormalization", "ReLU", "Activation", "LeakyReLU", "Dropout")


def fcn_graph(model, input_size=64):
    """The model's layers as a graph, with each layer's output shape on one probe image.

    model: a functional keras.Model taking (N, H, W, C) images; input_size: the probe's H = W.
    Returns a list of nodes in the model's layer order, each a dict with name, kind
    (class names; batch norm and activations are folded into the layer before them),
    shape (H, W, C) of its output for a (1, input_size, input_size, C) input, and inputs
    (indices of the nodes it reads).
    """
    import keras
    layers = model.layers
    channels = model.inputs[0].shape[-1]
    probe = np.zeros((1, input_size, input_size, channels), "float32")
    computed = [l for l in layers if not isinstance(l, keras.layers.InputLayer)]
    outs = keras.Model(model.inputs, [l.output for l in computed])([probe], training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    shapes = {id(l): tuple(np.shape(o))[1:] for l, o in zip(computed, outs)}
    producer = {id(l.output): l for l in layers}

    nodes, node_of = [], {}
    for layer in layers:
        kind = type(layer).__name__
        ins = [] if isinstance(layer, keras.layers.InputLayer) else layer.input
        ins = ins if isinstance(ins, (list, tuple)) else [ins]
        parents = [node_of[id(producer[id(t)])] for t in ins if id(t) in producer]
        shape = shapes.get(id(layer), (input_size, input_size, channels))
        if kind in _FOLDED and len(parents) == 1 and nodes[parents[0]]["consumers"] == 0:
            node = nodes[parents[0]]
            node["kind"] += "+" + ("BN" if kind == "BatchNormalization" else kind)
            node["shape"] = shape
            node_of[id(layer)] = parents[0]
            continue
        for p in parents:
            nodes[p]["consumers"] += 1
        extra = ""
        if kind in ("Conv2D", "Conv2DTranspose"):
            extra = f" {layer.filters}, {layer.kernel_size[0]}x{layer.kernel_size[1]}"
            if layer.strides[0] > 1:
                extra += f"/{layer.strides[0]}"
        node_of[id(layer)] = len(nodes)
        nodes.append(dict(name=layer.name, kind=kind + extra, shape=shape, inputs=parents, consumers=0))
    for node in nodes:
        del node["consumers"]
    return nodes


def show_fcn(model, input_size=64):
    """A diagram of a segmentation model, drawn from the model itself.

    model: a functional keras.Model mapping (N, H, W, 3) images to (N, H, W, K) logits.
    Boxes are layers in the model's order (left to right), placed at the height of their
    output's resolution (input_size at the top), labelled with their output shape
    (H x W x C for one input_size x input_size image); arrows are the data flow, and
    arrows off the longest input-to-output path (the skip connections) are red.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    nodes = fcn_graph(model, input_size)
    level = [-np.log2(input_size / max(n["shape"][0], 1)) if len(n["shape"]) == 3 else 0 for n in nodes]
    fig, ax = plt.subplots(figsize=(max(8, 1.05 * len(nodes)), 4.2))
    pos = [(i, level[i]) for i in range(len(nodes))]
    colours = {"Conv2DTranspose": "#fdd49e", "Add": "#c7e9c0", "MaxPooling2D": "#d9d9d9",
               "InputLayer": "#ffffff"}
    best, back = [1] * len(nodes), [None] * len(nodes)          # longest path = the main path
    for i, n in enumerate(nodes):
        for p in n["inputs"]:
            if best[p] + 1 > best[i]:
                best[i], back[i] = best[p] + 1, p
    main, i = set(), len(nodes) - 1
    while back[i] is not None:
        main.add((back[i], i))
        i = back[i]
    for i, n in enumerate(nodes):
        base = n["kind"].split()[0].split("+")[0]
        for p in n["inputs"]:
            skip = (p, i) not in main
            ax.annotate("", xy=pos[i], xytext=pos[p],
                        arrowprops=dict(arrowstyle="-|>", color="tab:red" if skip else "0.4",
                                        lw=1.6 if skip else 1, shrinkA=18, shrinkB=18,
                                        connectionstyle="arc3,rad=-0.2" if i - p > 1 else "arc3"))
        shape = "x".join(str(s) for s in n["shape"])
        label = "+" if base == "Add" else n["kind"].replace("+", "\n+").replace(" ", "\n", 1)
        ax.text(*pos[i], f"{label}\n{shape}", ha="center", va="center", fontsize=6.5,
                bbox=dict(boxstyle="circle" if base == "Add" else "round,pad=0.3",
                          fc=colours.get(base, "#c6dbef"), ec="0.3"))
    lo = min(level)
    ax.set_xlim(-0.7, len(nodes) - 0.3)
    ax.set_ylim(lo - 0.7, 0.7)
    ax.set_yticks(np.arange(lo, 1), [f"{input_size * 2.0 ** l:g}" for l in np.arange(lo, 1)])
    ax.set_ylabel("resolution (H = W)")
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    adds = sum(n["kind"].startswith("Add") for n in nodes)
    ax.set_title(f"{model.name}: {len(model.layers)} layers, {model.count_params():,} parameters, "
                 f"{adds} addition{'s' * (adds != 1)}; branches off the main path in red", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------- LSTM gates


def lstm_gates(x, h0, Wx, Wh, b, h):
    """The gates of an LSTM run, recomputed from its parameters and hidden states.

    Dimensions: N minibatch, T timesteps, D input size, H hidden size.
    x: (N, T, D); h0: (N, H); Wx: (D, 4H); Wh: (H, 4H); b: (4H,); h: (N, T, H), the hidden
    states an lstm_forward returned (cs231n's gate order i, f, o, g; initial cell state 0).
    Returns a dict of (N, T, H) arrays: i, f, o (sigmoid), g (tanh), c (the cell state
    f*c_prev + i*g) and h_check (o * tanh(c), equal to h when h came from these parameters).
    """
    x, h0, h = np.asarray(x, float), np.asarray(h0, float), np.asarray(h, float)
    H = h0.shape[1]
    prev_h = np.concatenate([h0[:, None], h[:, :-1]], axis=1)            # (N, T, H)
    a = x @ Wx + prev_h @ Wh + b                                        # (N, T, 4H)
    sig = lambda v: 0.5 * (1.0 + np.tanh(0.5 * v))                      # noqa: E731
    i, f, o, g = sig(a[..., :H]), sig(a[..., H:2 * H]), sig(a[..., 2 * H:3 * H]), np.tanh(a[..., 3 * H:])
    c = np.zeros_like(i)
    prev_c = np.zeros_like(h0)
    for t in range(x.shape[1]):
        prev_c = c[:, t] = f[:, t] * prev_c + i[:, t] * g[:, t]
    return dict(i=i, f=f, o=o, g=g, c=c, h_check=o * np.tanh(c))


def show_lstm_gates(lstm_forward, x, h0, Wx, Wh, b, n=0):
    """Run ``lstm_forward(x, h0, Wx, Wh, b)`` and show sample n's gates, cell and hidden state.

    x: (N, T, D); h0: (N, H); Wx: (D, 4H); Wh: (H, 4H); b: (4H,). Only lstm_forward's
    hidden states h (N, T, H) are used (its cache is not read); the gates are recomputed
    with :func:`lstm_gates`. Six heat maps (H units x T steps): i, f, o, g, c and h; the
    title gives max |h - o*tanh(c)|, which is ~1e-15 when lstm_forward is right.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    h = np.asarray(lstm_forward(np.copy(x), np.copy(h0), np.copy(Wx), np.copy(Wh), np.copy(b))[0])
    gates = lstm_gates(x, h0, Wx, Wh, b, h)
    panels = [("i", "input gate i = σ(·)", "Greens", 0, 1), ("f", "forget gate f = σ(·)", "Greens", 0, 1),
              ("o", "output gate o = σ(·)", "Greens", 0, 1), ("g", "candidate g = tanh(·)", "RdBu_r", -1, 1)]
    lim = max(np.abs(gates["c"][n]).max(), 1e-12)
    panels += [("c", "cell c = f·c_prev + i·g", "RdBu_r", -lim, lim), ("h", "hidden h (lstm_forward)", "RdBu_r", -1, 1)]
    fig, axes = plt.subplots(2, 3, figsize=(10, 4.6), sharex=True, sharey=True)
    values = {**gates, "h": h}
    for ax, (key, title, cmap, lo, hi) in zip(axes.ravel(), panels):
        im = ax.imshow(values[key][n].T, cmap=cmap, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    for ax in axes[1]:
        ax.set_xlabel("time step t")
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("hidden unit")
    err = np.abs(h - gates["h_check"]).max()
    fig.suptitle(f"LSTM gates over {h.shape[1]} steps (sample {n}); max |h - o·tanh(c)| = {err:.1e}",
                 fontsize=10)
    fig.tight_layout()
    return fig
