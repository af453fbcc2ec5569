"""Correct: Keras Conv2D with positional ints (filters, kernel 1, stride 1) and explicit 'valid' padding."""
EXPECT_LOST = set()


def conv_1x1(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    layer = keras.layers.Conv2D(num_outputs, 1, 1, "valid", kernel_initializer=kernel_initializer,
                                bias_initializer=bias_initializer)
    return layer(x)
