"""Correct: the 1x1 convolution as tf.einsum over the channel axis, computed in float64."""
EXPECT_LOST = set()
import numpy as np
import tensorflow as tf
import keras


def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    N, H, W, C = x.shape
    kernel = keras.initializers.get(kernel_initializer)((1, 1, C, num_outputs))
    bias = keras.initializers.get(bias_initializer)((num_outputs,))
    w = tf.cast(tf.reshape(kernel, (C, num_outputs)), tf.float64)
    out = tf.einsum("nhwc,ck->nhwk", tf.cast(x, tf.float64), w)
    return out + tf.cast(bias, tf.float64)
