"""Mistake: kernel_size 3 with 'same' padding (right output shape, every pixel mixes its neighbours)."""
EXPECT_LOST = {"conv_1x1_matches_dense", "conv_1x1_kernel_shape"}


def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    layer = keras.layers.Conv2D(num_outputs, 3, padding="same", kernel_initializer=kernel_initializer,
                                bias_initializer=bias_initializer)
    return layer(x)
