"""Only the layers, with a namedtuple step cache in another order and loop embeddings that unpack N, T = x.shape; the rest of the notebook is the given code."""
EXPECT_LOST = set()
import numpy as np
from collections import namedtuple


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    StepCache = namedtuple("StepCache", "h_next h_prev x_t W_h W_x")
    h_next = np.tanh(np.dot(x, Wx) + np.dot(prev_h, Wh) + b)
    return h_next, StepCache(h_next, prev_h, x, Wh, Wx)


def rnn_step_backward(dnext_h, cache):
    da = dnext_h * (1.0 - cache.h_next * cache.h_next)
    return (np.dot(da, cache.W_x.T), np.dot(da, cache.W_h.T), np.dot(cache.x_t.T, da),
            np.dot(cache.h_prev.T, da), da.sum(0))


def word_embedding_forward(x, W):
    N, T = x.shape
    out = np.empty((N, T, W.shape[1]), dtype=W.dtype)
    for n in range(N):
        for t in range(T):
            out[n, t] = W[x[n, t]]
    return out, (x, W.shape)


def word_embedding_backward(dout, cache):
    x, shape = cache
    N, T = x.shape
    dW = np.zeros(shape)
    for n in range(N):
        for t in range(T):
            dW[x[n, t]] += dout[n, t]
    return dW
