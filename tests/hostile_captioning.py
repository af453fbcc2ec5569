"""Submissions of rnn_captioning written against the judge's numeric gradients (red team,
#18): each replaces solution cells of the blank release by grade_id. Used by
tests/test_judged_quizzes.py."""

#: Correct forward passes (the cells they fill earn their points).
FORWARD = {
    "rnn_captioning_step_forward_impl": """\
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache""",
    "rnn_captioning_forward_impl": """\
def rnn_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    h = np.zeros((N, T, h0.shape[1]), dtype=x.dtype)
    cache = []
    prev_h = h0
    for t in range(T):
        prev_h, c = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        h[:, t] = prev_h
        cache.append(c)
    return h, cache""",
    "rnn_captioning_embedding_forward_impl": """\
def word_embedding_forward(x, W):
    return W[x], (x, W.shape)""",
}

#: Backward passes that return zeros of the right shapes, and a model whose loss is right
#: but whose gradients are zeros: none of them deserves a point.
ZERO_BACKWARD = {
    "rnn_captioning_step_backward_impl": """\
def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    return np.zeros_like(x), np.zeros_like(prev_h), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0])""",
    "rnn_captioning_backward_impl": """\
def rnn_backward(dh, cache):
    N, T, H = dh.shape
    x0, _, Wx, Wh, _ = cache[0]
    return np.zeros((N, T, x0.shape[1])), np.zeros((N, H)), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H)""",
    "rnn_captioning_embedding_backward_impl": """\
def word_embedding_backward(dout, cache):
    x, shape = cache
    return np.zeros(shape)""",
    "rnn_captioning_softmax_impl": """\
def temporal_softmax_loss(x, y, mask):
    N, T, V = x.shape
    xf, yf, mf = x.reshape(N * T, V), y.reshape(N * T), mask.reshape(N * T)
    s = xf - xf.max(axis=1, keepdims=True)
    lp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    loss = -np.sum(mf * lp[np.arange(N * T), yf]) / N
    return loss, np.zeros_like(x)""",
    "rnn_captioning_model_impl": """\
class CaptioningRNN(CaptioningModelBase):
    def loss(self, features, captions):
        captions_in = captions[:, :-1]
        captions_out = captions[:, 1:]
        mask = captions_out != self._null
        p = self.params
        h0, _ = affine_forward(features, p["W_proj"], p["b_proj"])
        x, _ = word_embedding_forward(captions_in, p["W_embed"])
        h, _ = rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"])
        scores, _ = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])
        loss, _ = temporal_softmax_loss(scores, captions_out, mask)
        return loss, {k: np.zeros_like(v) for k, v in p.items()}

    def sample(self, features, max_length=30):
        raise NotImplementedError()""",
}

#: Replaces, in the student's kernel, the course code that evaluates a batch of points for a
#: numeric gradient: every point gives the same output, so every numeric gradient is 0.
CONSTANT_BATCHES = """\
import helpers.checks._captioning as _cc
def _call_many(fn, arglists, k=None):
    r = fn(*arglists[0])
    r = r if k is None else r[k]
    return [r] * len(arglists)            # every point gives the same output: numeric gradient 0
_cc.call_many = _call_many
_cc.losses_with_param = lambda model, pname, values, features, captions: [0.0] * len(values)
"""

#: A loss that is cs231n's value on its fixed case and constant everywhere, zero gradients.
CONSTANT_LOSS = {
    "rnn_captioning_model_impl": """\
class CaptioningRNN(CaptioningModelBase):
    def loss(self, features, captions):
        return 9.83235591003, {k: np.zeros_like(v) for k, v in self.params.items()}

    def sample(self, features, max_length=30):
        raise NotImplementedError()""",
}
