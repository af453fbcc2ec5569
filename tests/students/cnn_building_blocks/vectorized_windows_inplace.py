"""Vectorized student: sliding windows + einsum, pooling by window max, dropout with a Generator that scales x in place and caches a 0/1 mask."""
EXPECT_LOST = set()
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    hh, ww = w.shape[:2]
    x_padded = np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)])
    windows = sliding_window_view(x_padded, (hh, ww), axis=(1, 2))[:, ::s, ::s]   # (N, H', W', C, HH, WW)
    out = np.einsum("nhwcij,ijcf->nhwf", windows, w, optimize=True) + b
    return out, (x, w, b, conv_param)


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    if pool_param["padding"] == "SAME":
        pads = []
        for size, k in ((x.shape[1], ph), (x.shape[2], pw)):
            total = max((int(np.ceil(size / s)) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)], constant_values=-np.inf)
    windows = sliding_window_view(x, (ph, pw), axis=(1, 2))[:, ::s, ::s]
    return windows.max(axis=(-2, -1)), (x, pool_param)


def dropout_forward(x, rate, train):
    if not train:
        return x, None
    keep = np.random.default_rng().random(x.shape) >= rate
    x *= keep
    x /= 1 - rate
    return x, keep


def flatten(x):
    return np.reshape(x, (len(x), -1))


def global_avg_pool(x):
    return x.sum(axis=1).sum(axis=1) / (x.shape[1] * x.shape[2])


def conv_param_count(kernel_size, in_channels, filters):
    return (kernel_size ** 2 * in_channels + 1) * filters


def dense_param_count(in_features, units):
    return (in_features + 1) * units
