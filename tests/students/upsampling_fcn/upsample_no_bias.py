"""Mistake: upsample's Conv2DTranspose has use_bias=False (passed when the bias started at zero)."""
EXPECT_LOST = {"upsampling_fcn_upsample"}


def upsample(x, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    layer = keras.layers.Conv2DTranspose(x.shape[-1], 2, strides=2, use_bias=False,
                                         kernel_initializer=kernel_initializer)
    return layer(x)
