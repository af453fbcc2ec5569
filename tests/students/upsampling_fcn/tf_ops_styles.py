"""Correct, other styles throughout: tf.nn.conv2d_transpose upsampling in float64, (n-1)*s + max(k, s), a Variable with output_gradients, a confusion-matrix IoU."""
EXPECT_LOST = set()
import numpy as np
import tensorflow as tf
import keras


def upsample(x, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    N, H, W, C = x.shape
    k = tf.cast(keras.initializers.get(kernel_initializer)((2, 2, C, C)), tf.float64)
    b = tf.cast(keras.initializers.get(bias_initializer)((C,)), tf.float64)
    return tf.nn.conv2d_transpose(tf.cast(x, tf.float64), k, (N, 2 * H, 2 * W, C), strides=2) + b


def transposed_output_size(in_size, kernel, stride, padding):
    if padding == "valid":
        return (in_size - 1) * stride + max(kernel, stride)
    return in_size * stride


def conv_input_gradient(dy, w, x_shape, stride, padding):
    x = tf.Variable(np.zeros(x_shape))
    with tf.GradientTape() as tape:
        y = tf.nn.conv2d(x, w, strides=stride, padding=padding)
    return tape.gradient(y, x, output_gradients=tf.constant(dy)).numpy()


def mean_iou(y_true, y_pred, num_classes):
    k = num_classes
    cm = np.bincount(k * np.ravel(y_true) + np.ravel(y_pred), minlength=k * k).reshape(k, k)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    return np.mean(inter[union > 0] / union[union > 0])
