"""helpers.images.to_rgb_uint8: what the image functions accept, and clear errors otherwise."""
import numpy as np
import pytest

from helpers.images import to_rgb_uint8


def test_grey_rgba_and_float_images_become_rgb_uint8():
    grey = np.array([[0, 128], [255, 7]], np.uint8)
    out = to_rgb_uint8(grey, "t")
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8 and np.all(out[..., 1] == grey)
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 3] = 255
    assert np.array_equal(to_rgb_uint8(rgba, "t"), np.zeros((3, 4, 3), np.uint8))
    unit = np.array([[[0.0, 0.5, 1.0]]])                 # floats in [0, 1]: scaled and rounded
    assert to_rgb_uint8(unit, "t").tolist() == [[[0, 128, 255]]]
    big = np.array([[[-3.0, 100.4, 300.0]]])             # floats in 0..255: rounded and clipped
    assert to_rgb_uint8(big, "t").tolist() == [[[0, 100, 255]]]


@pytest.mark.parametrize("image, message", [
    (np.zeros((2, 3, 5)), r"where: expected an \(H, W\), \(H, W, 3\) or \(H, W, 4\) image, got shape \(2, 3, 5\)"),
    (np.zeros((1, 2, 2, 3)), "got shape"),
    (np.full((2, 2, 3), np.nan), "where: the image holds NaN or inf"),
])
def test_bad_images_are_named(image, message):
    with pytest.raises(ValueError, match=message):
        to_rgb_uint8(image, "where")
