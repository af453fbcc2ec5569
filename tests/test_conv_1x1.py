"""The conv_1x1 checker passes correct solutions written differently and names mistakes."""
import keras
import pytest

from helpers.checks import CheckFailed
from helpers.checks import conv_1x1 as checks


def reference(x, k, init="glorot_uniform"):
    return keras.layers.Conv2D(k, kernel_size=(1, 1), strides=(1, 1), kernel_initializer=init)(x)


def test_reference_passes(capsys):
    checks.check_conv_1x1(reference)
    assert "✔ conv_1x1" in capsys.readouterr().out


def test_other_correct_spelling_passes():
    def alt(x, k, init="glorot_uniform"):      # ints, explicit padding and a functional model
        inp = keras.Input(shape=x.shape[1:])
        out = keras.layers.Conv2D(k, 1, 1, padding="valid", kernel_initializer=init)(inp)
        return keras.Model(inp, out)(x)
    checks.check_conv_1x1(alt)


def test_unimplemented_is_reported():
    def todo(x, k, init=None):
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.check_conv_1x1(todo)


def test_wrong_kernel_size_is_named():
    def k3(x, k, init="glorot_uniform"):
        return keras.layers.Conv2D(k, 3, padding="same", kernel_initializer=init)(x)
    with pytest.raises(CheckFailed, match=r"(?s)kernel has shape \(3, 3, 3, 4\).*kernel_size=\(1, 1\)"):
        checks.check_conv_1x1(k3)


def test_stride_two_is_named():
    def s2(x, k, init="glorot_uniform"):
        return keras.layers.Conv2D(k, 1, strides=2, kernel_initializer=init)(x)
    with pytest.raises(CheckFailed, match="strides=\\(1, 1\\)"):
        checks.check_conv_1x1(s2)


def test_ignored_initializer_is_named():
    def no_init(x, k, init="glorot_uniform"):
        return keras.layers.Conv2D(k, 1)(x)
    with pytest.raises(CheckFailed, match="kernel_initializer argument was never used"):
        checks.check_conv_1x1(no_init)


def test_activation_changes_values_and_fails():
    def relu(x, k, init="glorot_uniform"):
        return keras.layers.Conv2D(k, 1, activation="relu", kernel_initializer=init)(x)
    with pytest.raises(CheckFailed, match="values are off"):
        checks.check_conv_1x1(relu)


def test_missing_return_is_named():
    def no_return(x, k, init="glorot_uniform"):
        keras.layers.Conv2D(k, 1, kernel_initializer=init)(x)
    with pytest.raises(CheckFailed, match="does not `return`"):
        checks.check_conv_1x1(no_return)
