"""MNIST from the four original IDX files committed under ``data/mnist/`` (no download).

    from helpers.data.mnist import load_mnist
    x_train, y_train, x_test, y_test = load_mnist(scale="tanh")   # images in [-1, 1]

Every file is checked on load: its md5 (of the uncompressed bytes) against the canonical
value, the IDX header (magic number, shape) and, for labels, the count of each digit.
A missing or corrupt file raises an error that names it and says what to do.
"""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

#: Folder holding the gzipped IDX files (see data/mnist/README.md).
DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "mnist"

#: name -> (md5 of the uncompressed file, shape of the array it holds)
FILES = {
    "train-images-idx3-ubyte": ("6bbc9ace898e44ae57da46a324031adb", (60000, 28, 28)),
    "train-labels-idx1-ubyte": ("a25bea736e30d166cdddb491f175f624", (60000,)),
    "t10k-images-idx3-ubyte": ("2646ac647ad5339dbf082846283269ea", (10000, 28, 28)),
    "t10k-labels-idx1-ubyte": ("27ae3e4e09519cfbb04c329615203637", (10000,)),
}

#: How many of each digit 0..9 the two label files hold.
LABEL_COUNTS = {
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}

_CACHE = {}


class MnistFileError(OSError):
    """An MNIST file is missing or does not hold what it should."""


def read_idx(path, expected_shape=None, md5=None):
    """Read one gzipped (``.gz``) or plain IDX file of unsigned bytes.

    path: file to read. expected_shape: tuple the array must have (optional).
    md5: hex digest the uncompressed bytes must have (optional).
    Returns a uint8 array of the shape stored in the header.
    Raises FileNotFoundError if the file is missing, MnistFileError if it is corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"MNIST file {path} is missing. The course ships the four IDX files in "
            f"data/mnist/ (see data/mnist/README.md); restore them with `git checkout -- data/mnist`.")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise MnistFileError(f"MNIST file {path} is not a valid gzip file ({exc}); "
                             f"restore it with `git checkout -- data/mnist`.") from None
    if md5 is not None and hashlib.md5(raw).hexdigest() != md5:
        raise MnistFileError(f"MNIST file {path} is corrupt: md5 {hashlib.md5(raw).hexdigest()} "
                             f"!= {md5}. Restore it with `git checkout -- data/mnist`.")
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise MnistFileError(f"MNIST file {path} has no IDX header of unsigned bytes.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(shape)):
        raise MnistFileError(f"MNIST file {path} is truncated: header says {shape}, "
                             f"but it holds {len(raw) - header} bytes of data.")
    if expected_shape is not None and shape != tuple(expected_shape):
        raise MnistFileError(f"MNIST file {path} holds shape {shape}, expected {tuple(expected_shape)}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _load_raw(data_dir):
    key = str(data_dir)
    if key not in _CACHE:
        arrays = {name: read_idx(Path(data_dir) / f"{name}.gz", shape, md5)
                  for name, (md5, shape) in FILES.items()}
        for split, prefix in (("train", "train"), ("test", "t10k")):
            counts = tuple(int(c) for c in np.bincount(arrays[f"{prefix}-labels-idx1-ubyte"], minlength=10))
            if counts != LABEL_COUNTS[split]:
                raise MnistFileError(f"MNIST {split} labels have digit counts {counts}, "
                                     f"expected {LABEL_COUNTS[split]}.")
        _CACHE[key] = (arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"],
                       arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"])
    return _CACHE[key]


def scale_images(images, scale="unit"):
    """uint8 images -> float32: ``"unit"`` gives [0, 1], ``"tanh"`` gives [-1, 1]."""
    x = np.asarray(images, dtype=np.float32) / 255.0
    if scale == "unit":
        return x
    if scale == "tanh":
        return 2.0 * x - 1.0
    raise ValueError(f"scale must be 'unit' ([0, 1]) or 'tanh' ([-1, 1]), got {scale!r}.")


def load_mnist(scale="unit", flatten=False, data_dir=None):
    """Load MNIST (checked; cached in memory after the first call, ~1 s).

    scale: "unit" -> images in [0, 1]; "tanh" -> images in [-1, 1]; None -> raw uint8.
    flatten: False -> images (N, 28, 28); True -> (N, 784).
    data_dir: folder with the four ``*-ubyte.gz`` files (default: data/mnist/).
    Returns x_train (60000, 28, 28) float32, y_train (60000,) int64,
    x_test (10000, 28, 28) float32, y_test (10000,) int64.
    Raises FileNotFoundError naming a missing file, MnistFileError for a corrupt one.
    """
    xtr, ytr, xte, yte = _load_raw(Path(data_dir) if data_dir else DATA_DIR)
    out = []
    for x in (xtr, xte):
        x = x.reshape(len(x), -1) if flatten else x
        out.append(x.copy() if scale is None else scale_images(x, scale))
    return out[0], ytr.astype(np.int64), out[1], yte.astype(np.int64)
