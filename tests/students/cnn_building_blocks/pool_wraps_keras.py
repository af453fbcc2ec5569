"""Free points attempt: max pooling done by keras.layers.MaxPooling2D (loses the pooling cell only)."""
EXPECT_LOST = {"cnn_building_blocks_pool"}
import numpy as np
import keras


def max_pool_forward_naive(x, pool_param):
    layer = keras.layers.MaxPooling2D((pool_param["pool_height"], pool_param["pool_width"]),
                                      pool_param["stride"], pool_param["padding"].lower(), dtype="float64")
    return np.asarray(layer(x)), (x, pool_param)
