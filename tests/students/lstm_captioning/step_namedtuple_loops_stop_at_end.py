"""Only the step pair (namedtuple cache, per-gate weight slices, sigmoid via exp), loop-based carried layers that unpack N, T = x.shape, and a sample that stops at <END>."""
EXPECT_LOST = set()
import numpy as np
from collections import namedtuple


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    Step = namedtuple("Step", ["gates", "c_prev", "c_next", "h_prev", "x", "Wx", "Wh"])
    H = prev_h.shape[1]
    pre = [x @ Wx[:, k * H:(k + 1) * H] + prev_h @ Wh[:, k * H:(k + 1) * H] + b[k * H:(k + 1) * H]
           for k in range(4)]
    i, f, o = (1.0 / (1.0 + np.exp(-z)) for z in pre[:3])
    g = np.tanh(pre[3])
    c = f * prev_c + i * g
    return o * np.tanh(c), c, Step((i, f, o, g), prev_c, c, prev_h, x, Wx, Wh)


def lstm_step_backward(dnext_h, dnext_c, cache):
    i, f, o, g = cache.gates
    tc = np.tanh(cache.c_next)
    dc = dnext_c + dnext_h * o * (1 - tc ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * cache.c_prev * f * (1 - f),
                         dnext_h * tc * o * (1 - o), dc * i * (1 - g ** 2)], axis=1)
    return (da @ cache.Wx.T, da @ cache.Wh.T, dc * f, cache.x.T @ da, cache.h_prev.T @ da, da.sum(0))


def word_embedding_forward(x, W):
    N, T = x.shape
    out = np.zeros((N, T, W.shape[1]))
    for n in range(N):
        for t in range(T):
            out[n, t, :] = W[x[n, t], :]
    return out, (x, W.shape[0])


def word_embedding_backward(dout, cache):
    x, V = cache
    dW = np.zeros((V, dout.shape[2]))
    for n in range(x.shape[0]):
        for t in range(x.shape[1]):
            dW[x[n, t]] += dout[n, t]
    return dW


def temporal_softmax_loss(x, y, mask):
    N, T, V = x.shape
    loss, dx = 0.0, np.zeros_like(x, dtype=np.float64)
    for t in range(T):
        s = x[:, t] - x[:, t].max(axis=1, keepdims=True)
        p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
        loss -= np.sum(np.log(p[np.arange(N), y[:, t]]) * mask[:, t])
        p[np.arange(N), y[:, t]] -= 1
        dx[:, t] = p * mask[:, t, None] / N
    return loss / N, dx


class CaptioningRNN(CaptioningRNN):            # the given class, with a sample that stops at <END>
    def sample(self, features, max_length=30):
        p = self.params
        N = features.shape[0]
        out = np.full((N, max_length), self._null, dtype=np.int32)
        for n in range(N):
            h = features[n:n + 1] @ p["W_proj"] + p["b_proj"]
            c = np.zeros_like(h)
            word = self._start
            for t in range(max_length):
                emb, _ = word_embedding_forward(np.array([[word]]), p["W_embed"])
                h, c, _ = lstm_step_forward(emb[:, 0], h, c, p["Wx"], p["Wh"], p["b"])
                word = int(np.argmax(h @ p["W_vocab"] + p["b_vocab"]))
                out[n, t] = word
                if word == self._end:
                    break
        return out
