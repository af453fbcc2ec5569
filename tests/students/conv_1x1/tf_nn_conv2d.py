"""Correct: tf.nn.conv2d with a kernel and bias drawn through keras.initializers.get (a tf.nn-ops student)."""
EXPECT_LOST = set()
import tensorflow as tf
import keras


def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    C = x.shape[-1]
    w = tf.Variable(keras.initializers.get(kernel_initializer)((1, 1, C, num_outputs)))
    b = tf.Variable(keras.initializers.get(bias_initializer)((num_outputs,)))
    out = tf.nn.conv2d(tf.convert_to_tensor(x), w, strides=[1, 1, 1, 1], padding="SAME")
    return tf.nn.bias_add(out, b)
