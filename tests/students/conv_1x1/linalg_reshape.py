"""Correct: flatten the pixels, tf.linalg.matmul with the (C, K) slice of the kernel, reshape back."""
EXPECT_LOST = set()
import tensorflow as tf
import keras


def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    N, H, W, C = x.shape
    w = keras.initializers.get(kernel_initializer)((1, 1, C, num_outputs))[0, 0]   # (C, K)
    b = keras.initializers.get(bias_initializer)((num_outputs,))
    flat = tf.reshape(x, (-1, C))                                                   # (N*H*W, C)
    return tf.reshape(tf.linalg.matmul(flat, w) + b, (N, H, W, num_outputs))
