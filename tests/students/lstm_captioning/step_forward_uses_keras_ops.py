"""The LSTM step computes its gates with keras.ops (loses the step-forward cell only)."""
EXPECT_LOST = {"lstm_captioning_step_forward"}
import numpy as np
import keras


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o = (np.asarray(keras.ops.sigmoid(a[:, k * H:(k + 1) * H])) for k in range(3))
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    return o * tanh_c, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)
