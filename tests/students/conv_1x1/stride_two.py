"""Mistake: strides=2 (a 1x1 kernel, but half the output size)."""
EXPECT_LOST = {"conv_1x1_matches_dense"}


def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    return keras.layers.Conv2D(num_outputs, kernel_size=1, strides=2, kernel_initializer=kernel_initializer,
                               bias_initializer=bias_initializer)(x)
