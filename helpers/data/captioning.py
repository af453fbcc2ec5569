"""A small image-captioning data set, generated deterministically (no download).

Every image is 32x32 RGB with two coloured shapes on a dark background, placed
above/below or left/right of each other. Each image has five reference captions
with varying wording and word order, up to 15 words:

    in this picture there is a small red circle above a large blue square
    in this picture a large blue square is below a small red circle
    there is a small red circle above a large blue square
    this picture shows a red circle above a blue square
    a big blue square under a small red circle

so a model must keep what it saw in the image over many words. Image features
come from a small fixed convolutional feature extractor (random 5x5 filters drawn
from a fixed seed and colour detectors, ReLU, average and max pooling over a
4x4 grid), so ``features`` is (N, 512).

The API follows cs231n's ``load_coco_data``::

    data = load_captioning_data()
    data["train_captions"]      # (Nc, 17) int32, <START> ... <END> <NULL> <NULL> ...
    data["train_image_idxs"]    # (Nc,) int32, which image each caption describes
    data["train_features"]      # (Ni, 512) float32
    data["train_images"]        # (Ni, 32, 32, 3) float32 in [0, 1] (for showing)
    data["idx_to_word"], data["word_to_idx"]
    # and the same with "val_" for the validation split

plus :func:`decode_captions` and :func:`sample_coco_minibatch`. Generation takes
about 10 s on 2 CPU cores and gives the same arrays on every run (fixed seeds);
the arrays are cached in ``.cache/captioning/`` (git-ignored) and memoised in
the process.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

NULL, START, END = "<NULL>", "<START>", "<END>"
SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (0.9, 0.15, 0.1), "green": (0.15, 0.8, 0.2), "blue": (0.15, 0.3, 0.95),
           "yellow": (0.95, 0.9, 0.15), "white": (0.95, 0.95, 0.95)}
SIZES = {"small": 4.0, "large": 7.5}      # half-width in pixels
RELATIONS = ("above", "below", "left of", "right of")
OPPOSITE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
#: Synonyms used in some reference captions.
SYNONYMS = {"large": "big", "above": "over", "below": "under"}
IMAGE_SIZE = 32
MAX_LENGTH = 17           # caption length incl. <START> and <END>, as in cs231n
FEATURE_DIM = 512
SPLITS = {"train": (4000, 11), "val": (500, 12)}   # (number of images, seed)

_CACHE = {}
_GRID = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] + 0.5          # pixel centres (y, x)
#: Generated arrays are saved here (git-ignored) and reused; delete it to regenerate.
CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "captioning"
VERSION = 3               # bump when the generator changes


# --------------------------------------------------------------------------- vocabulary


def _vocabulary():
    words = {"a", "is", "there", "the", "of", "in", "this", "picture", "shows"}
    words |= set(SHAPES) | set(COLOURS) | set(SIZES) | set(SYNONYMS.values())
    for rel in RELATIONS:
        words |= set(rel.split())
    idx_to_word = [NULL, START, END] + sorted(words)
    return idx_to_word, {w: i for i, w in enumerate(idx_to_word)}


# --------------------------------------------------------------------------- images


def _draw(img, shape, colour, cx, cy, r):
    """Paint one filled shape of half-width r centred at (cx, cy) into img (H, W, 3)."""
    yy, xx = _GRID
    if shape == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r ** 2
    elif shape == "square":
        mask = (np.abs(xx - cx) <= r * 0.85) & (np.abs(yy - cy) <= r * 0.85)
    else:  # triangle, apex up
        top, bottom = cy - r, cy + r
        frac = (yy - top) / (2 * r)
        mask = (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= frac * r)
    img[mask] = colour


def _scene(rng):
    """Two objects and the relation of the first to the second."""
    objs = []
    for _ in range(2):
        objs.append(dict(shape=SHAPES[rng.integers(3)], colour=list(COLOURS)[rng.integers(len(COLOURS))],
                         size=list(SIZES)[rng.integers(2)]))
    while (objs[1]["shape"], objs[1]["colour"]) == (objs[0]["shape"], objs[0]["colour"]):
        objs[1]["colour"] = list(COLOURS)[rng.integers(len(COLOURS))]
    rel = RELATIONS[rng.integers(4)]
    return objs, rel


def _render(objs, rel, rng):
    img = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 0.12) + rng.normal(0, 0.03, (IMAGE_SIZE, IMAGE_SIZE, 3))
    radii = [SIZES[o["size"]] for o in objs]
    # Object 0 in one half, object 1 in the other, along the relation's axis.
    first_low = rel in ("above", "left of")          # smaller coordinate for object 0
    along = [8.0 + rng.uniform(-1, 1.5), 24.0 + rng.uniform(-1.5, 1)]
    if not first_low:
        along = along[::-1]
    for o, r, a in zip(objs, radii, along):
        across = rng.uniform(r + 1, IMAGE_SIZE - r - 1)
        a = float(np.clip(a, r, IMAGE_SIZE - r))
        cx, cy = (across, a) if rel in ("above", "below") else (a, across)
        _draw(img, o["shape"], COLOURS[o["colour"]], cx, cy, r)
    return np.clip(img, 0, 1)


def _phrase(o, with_size=True, synonym=False):
    size = SYNONYMS.get(o["size"], o["size"]) if synonym else o["size"]
    return (["a", size] if with_size else ["a"]) + [o["colour"], o["shape"]]


def _captions(objs, rel, rng):
    """Five reference captions (lists of words) for one scene."""
    a, b = objs
    rel_w, opp_w = rel.split(), OPPOSITE[rel].split()
    syn = lambda w: [SYNONYMS.get(x, x) for x in w]       # noqa: E731
    caps = [
        ["in", "this", "picture", "there", "is"] + _phrase(a) + rel_w + _phrase(b),
        ["in", "this", "picture"] + _phrase(b) + ["is"] + opp_w + _phrase(a),
        ["there", "is"] + _phrase(a) + rel_w + _phrase(b),
        ["this", "picture", "shows"] + _phrase(a, with_size=False) + rel_w + _phrase(b, with_size=False),
        _phrase(b, synonym=True) + syn(opp_w) + _phrase(a, synonym=True),
    ]
    return caps


def _features_extractor():
    """The fixed feature extractor: 11 random 5x5x3 filters (seed 1234) and 5
    centre-pixel colour detectors, one per colour; returns (75, 16) weights, (16,) biases."""
    rng = np.random.default_rng(1234)
    w = rng.normal(size=(5 * 5 * 3, 11)) / np.sqrt(75)
    w -= w.mean(axis=0, keepdims=True)        # respond to patterns, not brightness alone
    colour = np.zeros((75, len(COLOURS)))
    centre = (2 * 5 + 2) * 3                  # the centre pixel's R, G, B in a patch
    for k, rgb in enumerate(COLOURS.values()):
        colour[centre:centre + 3, k] = np.asarray(rgb) - 0.5
    return np.concatenate([w, colour], axis=1), rng.normal(0, 0.05, 16)


def extract_features(images):
    """Features of images with the fixed extractor.

    images: (N, 32, 32, 3) floats in [0, 1].
    Returns (N, 512) float32: 16 channels (11 random filters, 5 colour detectors,
    ReLU), average-pooled and max-pooled over a 4x4 grid of 8x8 cells.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(f"extract_features: images must be (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3), "
                         f"got {images.shape}")
    w, b = _features_extractor()
    n = images.shape[0]
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0))).astype(np.float32)
    w, b = w.astype(np.float32), b.astype(np.float32)
    act = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 16), np.float32)
    for s in range(0, n, 200):                                       # im2col, 200 images at a time
        win = np.lib.stride_tricks.sliding_window_view(padded[s:s + 200], (5, 5), axis=(1, 2))
        cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 75)       # (200 * 32 * 32, 5 * 5 * 3)
        act[s:s + 200] = np.maximum(cols @ w + b, 0).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 16)
    cells = act.reshape(n, 4, 8, 4, 8, 16)
    avg = cells.mean(axis=(2, 4)).reshape(n, -1)                     # (N, 256)
    mx = cells.max(axis=(2, 4)).reshape(n, -1)                       # (N, 256)
    feats = np.concatenate([avg, mx], axis=1)                        # (N, 512)
    return feats.astype(np.float32)


def _split(name, n_images=None, seed=None):
    """Generate a split (its first ``n_images`` images; default all); raw features.
    ``seed``: draw other scenes than the split's own (its seed in :data:`SPLITS`)."""
    size, split_seed = SPLITS[name]
    seed = split_seed if seed is None else int(seed)
    n_images = size if n_images is None else n_images
    rng = np.random.default_rng(seed)
    idx_to_word, word_to_idx = _vocabulary()
    images, per_image = [], []
    for _ in range(n_images):
        objs, rel = _scene(rng)
        images.append(_render(objs, rel, rng))
        per_image.append(_captions(objs, rel, rng))
    # Captions in rounds: the first caption of every image, then the second, ... so
    # that the first n captions (e.g. max_train=50) describe n different images.
    captions, image_idxs = [], []
    for k in range(len(per_image[0])):
        for i, caps in enumerate(per_image):
            row = [word_to_idx[START]] + [word_to_idx[w] for w in caps[k]] + [word_to_idx[END]]
            captions.append(row + [word_to_idx[NULL]] * (MAX_LENGTH - len(row)))
            image_idxs.append(i)
    images = np.stack(images).astype(np.float32)
    return dict(images=images, captions=np.asarray(captions, np.int32),
                image_idxs=np.asarray(image_idxs, np.int32), features=extract_features(images))


def _train_statistics():
    """Mean and std (+ 1e-3) of the training split's raw features, as :func:`_generate`
    standardises with them: (512,) each, computed once (~3 s)."""
    if "stats" not in _CACHE:
        raw = _split("train")["features"]
        _CACHE["stats"] = raw.mean(axis=0), raw.std(axis=0) + 1e-3
    return _CACHE["stats"]


def fresh_scenes(seed, n_images):
    """New scenes no split holds: ``n_images`` images drawn from ``seed``, as a split.

    For the grader's judge: captions of scenes that no one knew before it drew them.
    Returns a dict with features (n_images, 512) float32 (standardised like every split's),
    captions (Nc, 17) int32 (every caption of each image; the first ``n_images`` are the
    first caption of each image), image_idxs (Nc,) int32, images (n_images, 32, 32, 3).
    """
    mean, std = _train_statistics()
    s = _split("val", int(n_images), seed=int(seed))
    s["features"] = ((s["features"] - mean) / std).astype(np.float32)
    return s


def _generate():
    arrays = {}
    splits = {name: _split(name) for name in SPLITS}
    mean = splits["train"]["features"].mean(axis=0)
    std = splits["train"]["features"].std(axis=0) + 1e-3
    for name, s in splits.items():
        s["features"] = ((s["features"] - mean) / std).astype(np.float32)
        for key, value in s.items():
            arrays[f"{name}_{key}"] = value
    return arrays


def _load_or_generate():
    """Read the cached arrays, or generate them (~10 s) and try to cache them."""
    idx_to_word, word_to_idx = _vocabulary()
    path = CACHE_DIR / f"captioning_v{VERSION}.npz"
    arrays = None
    if path.is_file():
        try:
            with np.load(path) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError):            # a broken cache file: regenerate
            arrays = None
    if arrays is None:
        arrays = _generate()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        except OSError:                          # read-only checkout: keep it in memory
            pass
    return dict(arrays, idx_to_word=idx_to_word, word_to_idx=word_to_idx)


def load_captioning_data(max_train=None):
    """Load (generate) the captioning set; cs231n's ``load_coco_data`` layout.

    max_train: keep only the first ``max_train`` training captions (None: all
      20000); they describe ``max_train`` different images for max_train <= 4000.
    Returns a dict with train_/val_ captions (Nc, 17) int32 (0 = <NULL>),
    image_idxs (Nc,) int32, features (Ni, 512) float32 (standardised with the
    training mean and std), images (Ni, 32, 32, 3) float32, and idx_to_word
    (list of V words), word_to_idx (dict).
    """
    if "data" not in _CACHE:
        _CACHE["data"] = _load_or_generate()
    data = dict(_CACHE["data"])
    if max_train is not None:
        data["train_captions"] = data["train_captions"][:max_train]
        data["train_image_idxs"] = data["train_image_idxs"][:max_train]
    return data


def decode_captions(captions, idx_to_word):
    """Word indices -> strings, stopping at <END> and skipping <NULL>/<START>.

    captions: (T,) or (N, T) ints. Returns a str or a list of N str.
    """
    captions = np.asarray(captions)
    single = captions.ndim == 1
    if single:
        captions = captions[None]
    decoded = []
    for row in captions:
        words = []
        for t in row:
            word = idx_to_word[int(t)]
            if word == END:
                break
            if word not in (NULL, START):
                words.append(word)
        decoded.append(" ".join(words))
    return decoded[0] if single else decoded


def sample_coco_minibatch(data, batch_size=100, split="train", rng=None):
    """A random minibatch of captions with their image features.

    Returns (captions (B, 17) int32, features (B, 512) float32, image_idxs (B,)).
    rng: a np.random.Generator (default: np.random's global state, like cs231n).
    """
    if f"{split}_captions" not in data:
        raise KeyError(f"sample_coco_minibatch: no split {split!r} in data (use 'train' or 'val')")
    size = data[f"{split}_captions"].shape[0]
    mask = rng.choice(size, batch_size) if rng is not None else np.random.choice(size, batch_size)
    captions = data[f"{split}_captions"][mask]
    image_idxs = data[f"{split}_image_idxs"][mask]
    return captions, data[f"{split}_features"][image_idxs], image_idxs


def references(data, split="val"):
    """All reference captions per image: list (one per image) of lists of word lists."""
    return references_by_image(data[f"{split}_captions"], data[f"{split}_image_idxs"],
                               data[f"{split}_features"].shape[0], data["idx_to_word"])


def references_by_image(captions, image_idxs, n_images, idx_to_word):
    """The captions (Nc, T) word indices, grouped by their image (image_idxs (Nc,)): a list
    of ``n_images`` lists of word lists."""
    refs = [[] for _ in range(n_images)]
    for cap, i in zip(captions, image_idxs):
        refs[int(i)].append(decode_captions(cap, idx_to_word).split())
    return refs
