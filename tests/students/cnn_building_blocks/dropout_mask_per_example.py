"""Dropout whose mask has the shape of one example and is broadcast over the batch (same units dropped for everyone)."""
EXPECT_LOST = {"cnn_building_blocks_dropout"}
import numpy as np


def dropout_forward(x, rate, train):
    if not train:
        return x, None
    mask = (np.random.rand(*x.shape[1:]) >= rate) / (1 - rate)
    return x * mask, mask
