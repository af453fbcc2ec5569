"""Mistake: use_bias=False (the bias starts at zero, so only a seeded bias shows it is missing)."""
EXPECT_LOST = {"conv_1x1_matches_dense"}


def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    layer = keras.layers.Conv2D(num_outputs, (1, 1), strides=(1, 1), use_bias=False,
                                kernel_initializer=kernel_initializer)
    return layer(x)
