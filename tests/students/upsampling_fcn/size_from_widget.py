"""Free answer: transposed_output_size returns the explorer's output_shapes (Keras computes it), so that part earns nothing."""
EXPECT_LOST = {"upsampling_fcn_size"}


def transposed_output_size(in_size, kernel, stride, padding):
    return output_shapes(in_size, kernel, stride, padding)["Conv2DTranspose"]
