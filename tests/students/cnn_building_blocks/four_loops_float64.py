"""cs231n's four nested loops for conv and pool, with in-place padding arithmetic and float64 outputs."""
EXPECT_LOST = set()
import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    N, H, W, C = x.shape
    HH, WW, _, F = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]
    x_pad = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant")
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    out = np.zeros((N, H_out, W_out, F), dtype=np.float64)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    out[n, i, j, f] = np.sum(x_pad[n, hs:hs + HH, ws:ws + WW, :] * w[:, :, :, f]) + b[f]
    cache = (x, w, b, conv_param)
    return out, cache


def max_pool_forward_naive(x, pool_param):
    N, H, W, C = x.shape
    ph, pw = pool_param["pool_height"], pool_param["pool_width"]
    s = pool_param["stride"]
    if pool_param["padding"] == "VALID":
        H_out, W_out = (H - ph) // s + 1, (W - pw) // s + 1
        top = left = 0
    else:
        H_out, W_out = int(np.ceil(H / s)), int(np.ceil(W / s))
        pad_h = max((H_out - 1) * s + ph - H, 0)
        pad_w = max((W_out - 1) * s + pw - W, 0)
        top, left = pad_h // 2, pad_w // 2
    out = np.empty((N, H_out, W_out, C))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    r0, c0 = i * s - top, j * s - left
                    r1, c1 = min(r0 + ph, H), min(c0 + pw, W)
                    out[n, i, j, c] = x[n, max(r0, 0):r1, max(c0, 0):c1, c].max()
    return out, (x, pool_param)
