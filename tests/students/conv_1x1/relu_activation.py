"""Mistake: activation='relu' on the layer (Dense has no activation)."""
EXPECT_LOST = {"conv_1x1_matches_dense"}


def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    return keras.layers.Conv2D(num_outputs, (1, 1), activation="relu", kernel_initializer=kernel_initializer,
                               bias_initializer=bias_initializer)(x)
