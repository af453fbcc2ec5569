"""The pretrained EfficientNet-Lite0 port: safe weight reading, predictions, helpers."""
import io
import os
import pickle

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from helpers import pretrained as P  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return P.load_pretrained()


@pytest.fixture(scope="module")
def probs(model):
    import tensorflow as tf
    X, _, names = P.example_images()
    return dict(zip(names, tf.nn.softmax(model(X, training=False)).numpy()))


def test_state_dict_read_without_torch():
    sd = P.read_torch_state_dict()
    assert len(sd) == 296
    tensors = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert len(tensors) == 247
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280) and sd["_fc.weight"].flags.c_contiguous
    assert sd["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(v.dtype == np.float32 and np.all(np.isfinite(v)) for v in tensors.values())
    # running variances are never negative; a mis-strided read would scramble that
    assert all(v.min() >= 0 for k, v in tensors.items() if k.endswith("running_var"))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_unpickler_rejects_other_globals(tmp_path):
    payload = pickle.dumps(_Evil(), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle global '(posix|os)\.system'"):
        P.RestrictedUnpickler(io.BytesIO(payload)).load()
    # the same payload inside a legacy torch file, where the state dict should be
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(obj, f, protocol=2)
        f.write(payload)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        P.read_torch_state_dict(path)


def test_reader_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        P.read_torch_state_dict(tmp_path / "nothere.pth")
    bad = tmp_path / "bad.pth"
    with open(bad, "wb") as f:
        pickle.dump(12345, f, protocol=2)
    with pytest.raises(ValueError, match="not a legacy torch file"):
        P.read_torch_state_dict(bad)


@pytest.mark.parametrize("name", P.example_names())
def test_examples_classified_correctly(probs, name):
    p = probs[name]
    top = int(np.argmax(p))
    assert top in P.example_accepted(name), (
        f"{name}: predicted {top} {P.class_name(top)!r} (p={p[top]:.2f}), "
        f"expected one of {P.example_accepted(name)}")


def test_specific_predictions(probs):
    assert 281 <= int(np.argmax(probs["chelsea"])) <= 285          # a cat
    assert int(np.argmax(probs["coffee"])) == 967 and probs["coffee"][967] > 0.9   # espresso
    assert int(np.argmax(probs["rocket"])) in (657, 744)            # missile / projectile
    assert int(np.argmax(probs["china"])) == 698                    # palace
    assert int(np.argmax(probs["flower"])) == 985                   # daisy
    assert int(np.argmax(probs["grace_hopper"])) in (400, 652)      # academic gown / uniform


def test_model_is_frozen_cached_and_outputs_logits(model):
    assert P.load_pretrained() is model
    assert not model.trainable and len(model.trainable_weights) == 0
    X, y, _ = P.example_images(["coffee"])
    logits = np.asarray(model(X, training=False))
    assert logits.shape == (1, 1000)
    assert logits.min() < 0 and not np.allclose(logits.sum(), 1.0)     # not probabilities
    assert y.tolist() == [967]


def test_feature_extractor(model):
    X, _, _ = P.example_images(["chelsea"])
    feats = P.feature_extractor(P.STYLE_LAYERS)(X)
    shapes = [tuple(f.shape) for f in feats]
    assert shapes == [(1, 112, 112, 32), (1, 56, 56, 24), (1, 28, 28, 40),
                      (1, 14, 14, 80), (1, 14, 14, 112)]
    head = P.feature_extractor(["head_relu"])(X[:, :160, :192])          # any image size
    assert tuple(head[0].shape if isinstance(head, list) else head.shape) == (1, 5, 6, 1280)
    assert set(P.BLOCK_OUTPUTS) <= set(P.layer_names())
    assert P.CONTENT_LAYER in P.layer_names()
    with pytest.raises(ValueError, match="no layer named 'conv4_1'"):
        P.feature_extractor(["conv4_1"])


def test_preprocess_deprocess_and_names():
    img = P.load_example("chelsea")
    x = P.preprocess(img)
    assert x.shape == (224, 224, 3) and x.dtype == np.float32
    assert P.PIXEL_MIN <= x.min() and x.max() <= P.PIXEL_MAX
    assert P.preprocess([img, img]).shape == (2, 224, 224, 3)
    assert np.allclose(P.preprocess(img / 255.0), x)                     # float [0, 1] input
    back = P.deprocess(x)
    assert back.dtype == np.uint8 and np.array_equal(P.preprocess(back, crop=1.0), x)
    assert P.class_name(967) == "espresso" and P.class_name(282) == "tiger cat"
    assert "Felis" in P.class_name(282, full=True) or "tiger cat" in P.class_name(282, full=True)
    assert len(P.class_names()) == 1000
    with pytest.raises(ValueError, match="0..999"):
        P.class_name(1000)
    with pytest.raises(ValueError, match=r"preprocess: expected an \(H, W\), \(H, W, 3\) or \(H, W, 4\) image"):
        P.preprocess(np.zeros((4, 5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        P.preprocess(np.full((8, 8, 3), np.nan))
