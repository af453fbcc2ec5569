"""Free answer: conv_input_gradient calls tf.nn.conv2d_transpose instead of the tape (the answer the part derives)."""
EXPECT_LOST = {"upsampling_fcn_grad"}
import tensorflow as tf


def conv_input_gradient(dy, w, x_shape, stride, padding):
    return tf.nn.conv2d_transpose(dy, w, output_shape=x_shape, strides=stride, padding=padding)
