"""Averages the loss over all N * T positions instead of dividing by N (cs231n divides by N); Adam does not care about the scale, so training still meets its targets."""
EXPECT_LOST = {"rnn_captioning_softmax", "rnn_captioning_model_loss"}
import numpy as np


def temporal_softmax_loss(x, y, mask):
    N, T, V = x.shape
    shifted = x - x.max(axis=2, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=2, keepdims=True)
    picked = np.take_along_axis(probs, y[..., None], axis=2)[..., 0]       # (N, T)
    loss = -np.sum(np.log(picked) * mask) / (N * T)
    dx = probs.copy()
    np.put_along_axis(dx, y[..., None], np.take_along_axis(dx, y[..., None], axis=2) - 1, axis=2)
    dx *= mask[..., None] / (N * T)
    return loss, dx
