"""cs231n rnn_layers.py style: .dot, tuple caches in their own order, a list of step caches, and a loop-over-time sample that stops writing at <END>."""
EXPECT_LOST = set()
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)
    cache = (next_h, x, prev_h, Wx, Wh)
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    next_h, x, prev_h, Wx, Wh = cache
    dtanh = dnext_h * (1 - next_h ** 2)
    dx = dtanh.dot(Wx.T)
    dprev_h = dtanh.dot(Wh.T)
    dWx = x.T.dot(dtanh)
    dWh = prev_h.T.dot(dtanh)
    db = np.sum(dtanh, axis=0)
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    cache = []
    prev_h = h0
    for t in range(T):
        prev_h, step_cache = rnn_step_forward(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = prev_h
        cache.append(step_cache)
    return h, cache


def rnn_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][1].shape[1]                # my own step cache: (next_h, x, prev_h, Wx, Wh)
    dx = np.zeros((N, T, D))
    dWx = np.zeros((D, H))
    dWh = np.zeros((H, H))
    db = np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        dx[:, t, :], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db


def word_embedding_forward(x, W):
    out = W[x, :]
    return out, (x, W)


def word_embedding_backward(dout, cache):
    x, W = cache
    dW = np.zeros_like(W)
    np.add.at(dW, x, dout)
    return dW


def temporal_softmax_loss(x, y, mask):
    N, T, V = x.shape
    scores = x.reshape(N * T, V)
    targets, keep = y.reshape(N * T), mask.reshape(N * T)
    scores = scores - np.max(scores, axis=1, keepdims=True)
    log_z = np.log(np.sum(np.exp(scores), axis=1, keepdims=True))
    log_p = scores - log_z
    loss = -np.sum(log_p[np.arange(N * T), targets] * keep) / N
    dscores = np.exp(log_p)
    dscores[np.arange(N * T), targets] -= 1
    dscores = dscores * keep[:, None] / N
    return loss, dscores.reshape(N, T, V)


class CaptioningRNN(CaptioningModelBase):
    def loss(self, features, captions):
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        mask = captions_out != self._null
        W_proj, b_proj = self.params["W_proj"], self.params["b_proj"]
        W_embed = self.params["W_embed"]
        Wx, Wh, b = self.params["Wx"], self.params["Wh"], self.params["b"]
        W_vocab, b_vocab = self.params["W_vocab"], self.params["b_vocab"]

        h0 = features.dot(W_proj) + b_proj
        x, embed_cache = word_embedding_forward(captions_in, W_embed)
        h, rnn_cache = rnn_forward(x, h0, Wx, Wh, b)
        scores, vocab_cache = temporal_affine_forward(h, W_vocab, b_vocab)
        loss, dscores = temporal_softmax_loss(scores, captions_out, mask)

        grads = {}
        dh, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, vocab_cache)
        dx, dh0, grads["Wx"], grads["Wh"], grads["b"] = rnn_backward(dh, rnn_cache)
        grads["W_embed"] = word_embedding_backward(dx, embed_cache)
        grads["W_proj"] = features.T.dot(dh0)
        grads["b_proj"] = np.sum(dh0, axis=0)
        return loss, grads

    def sample(self, features, max_length=30):
        N = features.shape[0]
        captions = self._null * np.ones((N, max_length), dtype=np.int32)
        W_embed = self.params["W_embed"]
        prev_h = features.dot(self.params["W_proj"]) + self.params["b_proj"]
        prev_word = self._start * np.ones(N, dtype=np.int32)
        done = np.zeros(N, dtype=bool)
        for t in range(max_length):
            prev_h, _ = rnn_step_forward(W_embed[prev_word], prev_h, self.params["Wx"],
                                         self.params["Wh"], self.params["b"])
            word = np.argmax(prev_h.dot(self.params["W_vocab"]) + self.params["b_vocab"], axis=1)
            captions[~done, t] = word[~done]         # nothing after a caption's <END>
            done |= word == self._end
            if done.all():
                break
            prev_word = word
        return captions
