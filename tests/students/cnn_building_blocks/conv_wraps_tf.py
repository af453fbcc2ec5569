"""Free points attempt: conv_forward_naive is a wrapper around tf.nn.conv2d (loses the convolution cells, nothing else)."""
EXPECT_LOST = {"cnn_building_blocks_conv", "cnn_building_blocks_equivariance"}
import numpy as np
import tensorflow as tf


def conv_forward_naive(x, w, b, conv_param):
    p = conv_param["pad"]
    out = tf.nn.conv2d(x, w, strides=conv_param["stride"], padding=[[0, 0], [p, p], [p, p], [0, 0]])
    return out.numpy() + b, (x, w, b, conv_param)
