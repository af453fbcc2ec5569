"""The conv_1x1 checkers pass correct solutions written differently and name mistakes.

Every call into the student's function gets data only (an array, an int, two
initializer config dicts): see helpers/checks/conv_1x1.py.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.checks import CheckFailed
from helpers.checks import conv_1x1 as checks


def reference(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    return keras.layers.Conv2D(k, kernel_size=(1, 1), strides=(1, 1), kernel_initializer=kernel_initializer,
                               bias_initializer=bias_initializer)(x)


def functional(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    inp = keras.Input(shape=x.shape[1:])
    out = keras.layers.Conv2D(k, 1, 1, padding="valid", kernel_initializer=kernel_initializer,
                              bias_initializer=bias_initializer)(inp)
    return keras.Model(inp, out)(x)


def tf_nn(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    c = x.shape[-1]
    w = keras.initializers.get(kernel_initializer)((1, 1, c, k))
    b = keras.initializers.get(bias_initializer)((k,))
    return tf.nn.conv2d(x, w, strides=1, padding="VALID") + b


def einsum64(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    w = np.asarray(keras.initializers.get(kernel_initializer)((1, 1, x.shape[-1], k)), np.float64)
    b = np.asarray(keras.initializers.get(bias_initializer)((k,)), np.float64)
    return tf.einsum("nhwc,ck->nhwk", tf.cast(x, tf.float64), w[0, 0]) + b


#: The notebook's hidden cases of conv_1x1_matches_dense.
HIDDEN = [((1, 8, 8, 5), 2, 7), ((3, 4, 9, 1), 6, 8), ((2, 1, 1, 16), 3, 9)]


@pytest.mark.parametrize("fn", [reference, functional, tf_nn, einsum64])
def test_correct_styles_pass(fn, capsys):
    checks.check_conv_1x1(fn)
    for shape, k, seed in HIDDEN:        # float64 einsum is off by 2e-5 element-wise here (near 0)
        checks.check_conv_1x1(fn, shape=shape, num_outputs=k, seed=seed)
    checks.check_one_pixel(fn)
    assert capsys.readouterr().out.count("✔ conv_1x1") == 2 + len(HIDDEN)


def test_no_bias_is_named():
    """use_bias=False passed the old checker (the bias started at zero); now it is named."""
    def no_bias(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        return keras.layers.Conv2D(k, 1, use_bias=False, kernel_initializer=kernel_initializer)(x)
    with pytest.raises(CheckFailed, match="(?s)no bias.*use_bias=True"):
        checks.check_conv_1x1(no_bias)
    checks.check_one_pixel(no_bias)          # its kernel is (1, 1, C, K): that cell is right


def test_ignored_bias_initializer_is_named():
    def zero_bias(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        return keras.layers.Conv2D(k, 1, kernel_initializer=kernel_initializer)(x)
    with pytest.raises(CheckFailed, match="bias_initializer=bias_initializer"):
        checks.check_conv_1x1(zero_bias)


def test_unimplemented_is_reported():
    def todo(x, k, kernel_initializer=None, bias_initializer=None):
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.check_conv_1x1(todo)


def test_wrong_kernel_size_is_named():
    def k3(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        return keras.layers.Conv2D(k, 3, padding="same", kernel_initializer=kernel_initializer,
                                   bias_initializer=bias_initializer)(x)
    with pytest.raises(CheckFailed, match=r"(?s)9 positions \(a 3x3 patch\).*kernel_size=\(1, 1\)"):
        checks.check_one_pixel(k3)
    with pytest.raises(CheckFailed, match="values are off"):
        checks.check_conv_1x1(k3)


def test_valid_kernel_three_is_named_by_shape():
    def k3(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        return keras.layers.Conv2D(k, 3, kernel_initializer=kernel_initializer)(x)
    with pytest.raises(CheckFailed, match="kernel larger than 1x1"):
        checks.check_conv_1x1(k3)


def test_stride_two_is_named():
    def s2(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        return keras.layers.Conv2D(k, 1, strides=2, kernel_initializer=kernel_initializer,
                                   bias_initializer=bias_initializer)(x)
    with pytest.raises(CheckFailed, match="strides=\\(1, 1\\)"):
        checks.check_conv_1x1(s2)
    checks.check_one_pixel(s2)               # still one pixel per output: the kernel is 1x1


def test_ignored_initializer_is_named():
    def no_init(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        return keras.layers.Conv2D(k, 1, bias_initializer=bias_initializer)(x)
    with pytest.raises(CheckFailed, match="kernel_initializer .*argument is not used"):
        checks.check_conv_1x1(no_init)


def test_activation_is_named():
    def relu(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        return keras.layers.Conv2D(k, 1, activation="relu", kernel_initializer=kernel_initializer,
                                   bias_initializer=bias_initializer)(x)
    with pytest.raises(CheckFailed, match="an activation is applied"):
        checks.check_conv_1x1(relu)


def test_missing_return_is_named():
    def no_return(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        reference(x, k, kernel_initializer, bias_initializer)
    with pytest.raises(CheckFailed, match="does not `return`"):
        checks.check_conv_1x1(no_return)


def test_wrong_channel_count_is_named():
    def fixed(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        return reference(x, 8, kernel_initializer, bias_initializer)
    with pytest.raises(CheckFailed, match="num_outputs = 4 channels"):
        checks.check_conv_1x1(fixed)
    with pytest.raises(CheckFailed, match="4 output channels"):
        checks.check_one_pixel(fixed)


def test_student_gets_data_and_fresh_copies():
    """Only arrays, ints and dicts reach the student; changing them in place changes nothing."""
    seen = []

    def spoiler(x, k, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        seen.append((type(x), type(k), type(kernel_initializer), type(bias_initializer)))
        out = reference(x, k, dict(kernel_initializer), dict(bias_initializer))
        x[...] = 0
        kernel_initializer["config"]["seed"] = 99
        bias_initializer["config"]["seed"] = 99
        return out
    checks.check_conv_1x1(spoiler)
    checks.check_one_pixel(spoiler)
    assert {s for s in seen} == {(np.ndarray, int, dict, dict)}


def test_an_all_zero_output_is_not_a_one_pixel_convolution():
    """(red team) zeros of the right shape touch no output pixel: not 'one pixel at a time'."""
    def zeros(x, num_outputs, kernel_initializer="glorot_uniform", bias_initializer="zeros"):
        return np.zeros(np.shape(x)[:-1] + (num_outputs,), "float32")
    with pytest.raises(AssertionError, match="never reached the output"):
        checks.check_one_pixel(zeros)
