"""SAME max pooling that pads with zeros instead of -inf (a zero wins over negative inputs)."""
EXPECT_LOST = {"cnn_building_blocks_pool"}
import numpy as np


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n, h, w, c = x.shape
    if pool_param["padding"] == "SAME":
        ho, wo = -(-h // s), -(-w // s)
        th, tw = max((ho - 1) * s + ph - h, 0), max((wo - 1) * s + pw - w, 0)
        x = np.pad(x, ((0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)))
    else:
        ho, wo = 1 + (h - ph) // s, 1 + (w - pw) // s
    out = np.zeros((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            out[:, i, j, :] = np.max(x[:, i * s:i * s + ph, j * s:j * s + pw, :], axis=(1, 2))
    return out, (x, pool_param)
