"""Free points attempt: the convolution is the checker's own conv_reference, imported under another name."""
EXPECT_LOST = {"cnn_building_blocks_conv", "cnn_building_blocks_equivariance"}
from helpers.checks.cnn_building_blocks import conv_reference as _ref


def conv_forward_naive(x, w, b, conv_param):
    return _ref(x, w, b, conv_param["stride"], conv_param["pad"]), (x, w, b, conv_param)
