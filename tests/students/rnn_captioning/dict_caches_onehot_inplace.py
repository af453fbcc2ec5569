"""Dict caches everywhere, an in-place tanh derivative on dnext_h, one-hot embedding and softmax, float64, a dict sequence cache."""
EXPECT_LOST = set()
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    h = np.tanh(np.asarray(x, np.float64) @ Wx + prev_h @ Wh + b)
    return h, {"x": x, "prev_h": prev_h, "Wx": Wx, "Wh": Wh, "h": h}


def rnn_step_backward(dnext_h, cache):
    dnext_h *= 1 - cache["h"] ** 2               # in place: my argument is mine to change
    return (dnext_h @ cache["Wx"].T, dnext_h @ cache["Wh"].T, cache["x"].T @ dnext_h,
            cache["prev_h"].T @ dnext_h, dnext_h.sum(axis=0))


def rnn_forward(x, h0, Wx, Wh, b):
    steps, hs, h = {}, [], h0
    for t in range(x.shape[1]):
        h, steps[t] = rnn_step_forward(x[:, t], h, Wx, Wh, b)
        hs.append(h)
    return np.stack(hs, axis=1), {"steps": steps, "T": x.shape[1]}


def rnn_backward(dh, cache):
    grads, dnext = None, np.zeros_like(dh[:, 0])
    dxs = [None] * cache["T"]
    for t in reversed(range(cache["T"])):
        dxs[t], dnext, *dW = rnn_step_backward(dh[:, t] + dnext, cache["steps"][t])
        grads = dW if grads is None else [g + d for g, d in zip(grads, dW)]
    return (np.stack(dxs, axis=1), dnext, *grads)


def word_embedding_forward(x, W):
    onehot = np.eye(W.shape[0])[x]               # (N, T, V)
    return onehot @ W, {"onehot": onehot}


def word_embedding_backward(dout, cache):
    return np.einsum("ntv,ntd->vd", cache["onehot"], dout)


def temporal_softmax_loss(x, y, mask):
    N, T, V = x.shape
    Y = np.eye(V)[y]                             # (N, T, V) one-hot targets
    z = x - x.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    m = mask[..., None].astype(np.float64)
    loss = -(m * Y * logp).sum() / N
    return loss, (np.exp(logp) - Y) * m / N


class CaptioningRNN(CaptioningModelBase):
    def loss(self, features, captions):
        p, grads = self.params, {}
        cin, cout = captions[:, :-1], captions[:, 1:]
        h0 = features @ p["W_proj"] + p["b_proj"]
        emb, c_emb = word_embedding_forward(cin, p["W_embed"])
        h, c_rnn = rnn_forward(emb, h0, p["Wx"], p["Wh"], p["b"])
        scores = h @ p["W_vocab"] + p["b_vocab"]
        loss, ds = temporal_softmax_loss(scores, cout, cout != self._null)
        grads["W_vocab"] = np.einsum("nth,ntv->hv", h, ds)
        grads["b_vocab"] = ds.sum(axis=(0, 1))
        demb, dh0, grads["Wx"], grads["Wh"], grads["b"] = rnn_backward(ds @ p["W_vocab"].T, c_rnn)
        grads["W_embed"] = word_embedding_backward(demb, c_emb)
        grads["W_proj"], grads["b_proj"] = features.T @ dh0, dh0.sum(axis=0)
        return loss, grads

    def sample(self, features, max_length=30):
        p = self.params
        words = np.full((features.shape[0], 1), self._start)
        h = features @ p["W_proj"] + p["b_proj"]
        out = []
        for _ in range(max_length):
            emb, _ = word_embedding_forward(words, p["W_embed"])      # (N, 1, W)
            h, _ = rnn_step_forward(emb[:, 0], h, p["Wx"], p["Wh"], p["b"])
            words = np.argmax(h @ p["W_vocab"] + p["b_vocab"], axis=1)[:, None]
            out.append(words[:, 0])
        return np.stack(out, axis=1)
