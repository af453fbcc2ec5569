"""A PyTorch habit: flatten after moving channels first (NCHW order), so the features come out in the wrong order."""
EXPECT_LOST = {"cnn_building_blocks_flatten"}
import numpy as np


def flatten(x):
    if x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)
    return x.reshape(x.shape[0], -1)
