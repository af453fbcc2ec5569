"""The FCN replay (helpers/fcn_replay.py) and the judge's models (helpers/grading/fcn_judge.py).

A network that replays as the reference's is graded as the reference's stored full run; so
every correct way to write the quiz's network must replay within the tolerance, every mistake
must not (it is then trained in full, as before), and nothing but data may count as a replay.
"""
import os

import keras
import numpy as np
import pytest

from helpers import fcn_replay, fcn_training
from helpers.data import segmentation
from helpers.grading import fcn_judge

L = keras.layers
K = segmentation.NUM_CLASSES
SEED = 20261205


def conv_block(x, filters, momentum=0.9, relu=True):
    x = L.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = L.BatchNormalization(momentum=momentum)(x)
    return L.ReLU()(x) if relu else x


def network(variant="reference"):
    """The quiz's network with skips, written as the variant says (see CORRECT, MISTAKES)."""
    def build_fcn(num_classes, skips=True):
        m = 0.99 if variant == "bn_momentum" else 0.9
        inputs = keras.Input(shape=(None, None, 3))
        p1 = L.MaxPooling2D()(conv_block(inputs, 16, m))
        p2 = L.MaxPooling2D()(conv_block(p1, 32, m))
        p3 = L.MaxPooling2D()(conv_block(p2, 64, m))
        if variant == "skip_convs_first" and skips:
            s2, s1 = L.Conv2D(num_classes, 1)(p2), L.Conv2D(num_classes, 1)(p1)
        act = "relu" if variant == "relu_scores" else None
        scores = L.Conv2D(num_classes, 1, activation=act)(conv_block(p3, 64, m))
        up = L.Conv2DTranspose(num_classes, 4, strides=2, padding="same")(scores)
        if skips and variant != "no_skips":
            s2 = s2 if variant == "skip_convs_first" else L.Conv2D(num_classes, 1)(p2)
            up = {"plus": lambda: up + s2, "add_swapped": lambda: L.Add()([s2, up]),
                  "skip_subtracted": lambda: L.Subtract()([up, s2])}.get(variant, lambda: L.Add()([up, s2]))()
        up = L.Conv2DTranspose(num_classes, 4, strides=2, padding="same")(up)
        if skips and variant != "no_skips":
            s1 = s1 if variant == "skip_convs_first" else L.Conv2D(num_classes, 1)(p1)
            up = up + s1 if variant == "plus" else L.Add()([up, s1])
        kernel = 2 if variant == "transposed_kernel_2" else 4
        outputs = L.Conv2DTranspose(num_classes, kernel, strides=2, padding="same")(up)
        if variant == "softmax_out":
            outputs = L.Softmax()(outputs)
        model = keras.Model(inputs, outputs)
        if variant == "frozen_first_conv":
            next(layer for layer in model.layers if isinstance(layer, L.Conv2D)).trainable = False
        return model
    return build_fcn


def subclassed(num_classes, skips=True, reverse=False, **init):
    """Correct: the same network as a subclassed keras.Model (weights made on its first call;
    ``reverse``: its upsampling layers made last to first). ``init``: initializers of its
    3x3 convolutions' kernels and of batch norm's scale (mistakes)."""
    class FCN(keras.Model):
        def __init__(self):
            super().__init__()
            self.convs = [L.Conv2D(f, 3, padding="same", use_bias=False,
                                   kernel_initializer=init.get("kernel", "glorot_uniform")) for f in (16, 32, 64, 64)]
            self.norms = [L.BatchNormalization(momentum=0.9, gamma_initializer=init.get("gamma", "ones"))
                          for _ in range(4)]
            self.pool, self.relu = L.MaxPooling2D(), L.ReLU()
            self.score = L.Conv2D(num_classes, 1)
            self.ups = [L.Conv2DTranspose(num_classes, 4, strides=2, padding="same") for _ in range(3)]
            if reverse:
                self.ups = self.ups[::-1]
            self.skip2, self.skip1 = L.Conv2D(num_classes, 1), L.Conv2D(num_classes, 1)

        def block(self, i, x, training):
            return self.relu(self.norms[i](self.convs[i](x), training=training))

        def call(self, x, training=False):
            p1 = self.pool(self.block(0, x, training))
            p2 = self.pool(self.block(1, p1, training))
            p3 = self.pool(self.block(2, p2, training))
            up = self.ups[0](self.score(self.block(3, p3, training)))
            if skips:
                up = up + self.skip2(p2)
            up = self.ups[1](up)
            if skips:
                up = up + self.skip1(p1)
            return self.ups[2](up)
    return FCN()


#: Correct ways to write the network: each replays as the reference's.
CORRECT = {"the solution's own code": None, "skip convolutions made first": network("skip_convs_first"),
           "skips added with +": network("plus"), "Add's inputs swapped": network("add_swapped"),
           "a subclassed model": subclassed,
           "upsampling layers made last to first": lambda k, skips=True: subclassed(k, skips, reverse=True),
           "Glorot normal kernels": lambda k, skips=True: subclassed(k, skips, kernel="glorot_normal")}
#: Initializers that would replay perfectly (the replay sets the weights) but train badly.
WRONG_INIT = {"zero kernels": dict(kernel="zeros"), "kernels of ones": dict(kernel="ones"),
              "batch norm's scale zero": dict(gamma="zeros")}
#: Mistakes that keep the network's shape: each replays far from the reference's.
MISTAKES = ["relu_scores", "softmax_out", "skip_subtracted", "bn_momentum", "frozen_first_conv"]
#: Mistakes or other architectures with other weights: no replay at all (infinitely far).
OTHER_SHAPES = ["no_skips", "transposed_kernel_2"]


@pytest.fixture(scope="module")
def reference():
    build = fcn_judge.reference_build_fcn()
    want = fcn_replay.replay(build, True, SEED)
    return build, want, want["start"]


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_networks_replay_as_the_reference(reference, name):
    build, want, start = reference
    got = fcn_replay.replay(CORRECT[name] or build, True, SEED)
    assert fcn_replay.replays_differ(got, want, start) < 1e-4
    assert fcn_replay.init_differs(got, want) is None


@pytest.mark.parametrize("name", sorted(WRONG_INIT))
def test_networks_that_make_their_weights_otherwise_train_in_full(reference, name):
    """The replay starts from drawn weights, so these replay exactly; their own initializers
    (zeros, ones, a zero batch-norm scale: measured in full, IoU 0.216 with skips) would train
    otherwise, so they are not graded as the reference's run."""
    build, want, start = reference
    wrong = lambda k, skips=True: subclassed(k, skips, **WRONG_INIT[name])     # noqa: E731
    got = fcn_replay.replay(wrong, True, SEED)
    assert fcn_replay.replays_differ(got, want, start) < 1e-4
    assert "starts with mean" in fcn_replay.init_differs(got, want)
    same, why = fcn_judge.replay_verdict(wrong, True, SEED)
    assert not same and "starts otherwise" in why
    for forged in (None, {**got, "init": got["init"][:3]}, {**got, "init": got["init"].tolist()}):
        assert fcn_replay.init_differs(forged or {}, want)


@pytest.mark.parametrize("variant", MISTAKES)
def test_mistakes_replay_far_from_the_reference(reference, variant):
    _, want, start = reference
    distance = fcn_replay.replays_differ(fcn_replay.replay(network(variant), True, SEED), want, start)
    assert 3 * fcn_replay.TOLERANCE < distance < np.inf, distance


@pytest.mark.parametrize("variant", OTHER_SHAPES)
def test_other_weight_shapes_do_not_replay(reference, variant):
    _, want, start = reference
    assert fcn_replay.replays_differ(fcn_replay.replay(network(variant), True, SEED), want, start) == np.inf


def test_only_data_counts_as_a_replay(reference):
    _, want, start = reference

    class Posing(np.ndarray):
        __course_run__ = "x"
    forged = [None, [], {"shapes": want["shapes"]},
              dict(want, logits=want["logits"].tolist()),                          # lists, not arrays
              dict(want, logits=want["logits"].astype(object)),
              dict(want, losses=np.array([np.nan] * fcn_replay.STEPS)),
              dict(want, shapes=[[float(d) for d in s] for s in want["shapes"]]),
              dict(want, logits=want["logits"][:2]),
              dict(want, shapes=want["shapes"][1:])]
    for got in forged:
        assert fcn_replay.replays_differ(got, want, start) == np.inf, str(got)[:80]
    assert fcn_replay.replays_differ(dict(want), want, start) == 0.0
    # the start is no answer: the logits must have moved as the reference's did
    assert fcn_replay.replays_differ(dict(want, logits=start.astype(np.float32)), want, start) > 0.5


def test_initial_weights_depend_on_shapes_and_seed_not_on_the_order():
    a = fcn_replay.initial_weights([(3, 3, 3, 16), (16,), (1, 1, 16, 4), (4,), (1, 1, 16, 4)], 5)
    b = fcn_replay.initial_weights([(1, 1, 16, 4), (4,), (16,), (3, 3, 3, 16), (1, 1, 16, 4)], 5)
    assert np.array_equal(a[0], b[3]) and np.array_equal(a[2], b[0]) and np.array_equal(a[4], b[4])
    assert np.array_equal(a[1], b[2]) and np.all(a[1] > 0)
    assert np.array_equal(a[2], a[4]) and not np.array_equal(a[0][..., :4], a[2][..., :4])
    c = fcn_replay.initial_weights([(3, 3, 3, 16)], 6)
    assert not np.array_equal(a[0], c[0])


def test_the_stored_runs_were_made_with_these_files():
    with np.load(fcn_judge.REFERENCE) as data:
        assert str(data["measured_with"]) == fcn_judge.inputs_digest(), (
            "helpers/grading/stored/fcn_reference.npz was made with other versions of "
            f"{', '.join(fcn_judge.INPUTS)} or of the solution's build_fcn: make it again with "
            "python tools/make_fcn_reference.py (about a CPU minute)")
        for skips in (True, False):
            assert float(data[f"skips={skips}/validation_iou"]) > 0
    # the stored weights fit the solution's network
    for skips in (True, False):
        assert isinstance(fcn_judge.stored_model(skips), keras.Model)


def test_stale_stored_runs_are_not_used(monkeypatch):
    """Stored runs made with other files (the solution or the recipe changed since): no
    replay, every network trains in full; a grader that cannot replay trains in full too."""
    monkeypatch.setitem(fcn_judge._CACHE, "holds", False)
    same, why = fcn_judge.replay_verdict(fcn_judge.reference_build_fcn(), True, SEED)
    assert not same and "stored runs were made with other files" in why
    monkeypatch.setitem(fcn_judge._CACHE, "holds", True)
    monkeypatch.setattr(fcn_judge, "reference_build_fcn", lambda: 1 / 0)
    same, why = fcn_judge.replay_verdict(network(), True, SEED)
    assert not same and "could not replay the reference (ZeroDivisionError" in why


def test_judged_models_grade_a_replayed_network_as_the_stored_run(capsys):
    models = fcn_judge.judged_models(fcn_judge.reference_build_fcn())
    out = capsys.readouterr().out
    assert out.count("graded replay: your network trains exactly as the reference's") == 2, out
    ious = fcn_training.validation_ious(models)
    with np.load(fcn_judge.REFERENCE) as data:
        for skips in (True, False):
            assert ious[skips] == pytest.approx(float(data[f"skips={skips}/validation_iou"]), abs=1e-6)
    assert ious[True] >= 0.75 and ious[True] - ious[False] >= 0.1


def test_judged_models_train_a_network_that_differs_in_full(monkeypatch, capsys):
    """A mistake does not replay: its networks are trained with the recipe (a tiny one here)
    and graded as they come out."""
    monkeypatch.setitem(fcn_training.RECIPE, "num_train", 64)
    monkeypatch.setitem(fcn_training.RECIPE, "epochs", 1)
    models = fcn_judge.judged_models(network("relu_scores"))
    out = capsys.readouterr().out
    assert out.count("training the full recipe from your build_fcn instead (1 epochs of 64 images") == 2, out
    assert "largest relative difference" in out
    stored = fcn_judge.stored_model(True).get_weights()
    assert not any(w.shape == s.shape and np.array_equal(w, s)
                   for w, s in zip(models[True].get_weights(), stored))

    def broken(k, skips=True):
        raise NotImplementedError("not yet")
    with pytest.raises(NotImplementedError):
        fcn_judge.judged_models(broken)
    assert "the replay failed (NotImplementedError: not yet)" in capsys.readouterr().out


@pytest.mark.skipif(os.environ.get("COURSE_SLOW_TESTS") != "1",
                    reason="trains both FCNs of the recipe (about a CPU minute): COURSE_SLOW_TESTS=1")
def test_the_stored_runs_are_the_recipes_full_runs():
    build = fcn_judge.reference_build_fcn()
    fresh = fcn_training.validation_ious({s: fcn_training.train_graded(build, s)[0] for s in (True, False)})
    stored = fcn_training.validation_ious({s: fcn_judge.stored_model(s) for s in (True, False)})
    assert all(abs(fresh[s] - stored[s]) <= 0.01 for s in (True, False)), (fresh, stored)


def test_the_stored_runs_are_where_no_student_kernel_can_read_them(tmp_path):
    """A kernel that could load the reference's trained weights could answer a full run with
    them (a red team did, for the captioning parameters in data/expected): they live in the
    grading package, which the sandbox replaces with an empty folder, and count in the
    grader's code digest (a changed file grades again)."""
    from helpers.grading import caption_judge, jobs, sandbox
    from tests.conftest import REPO
    hidden = [REPO.joinpath(*package.split(".")) for package in sandbox.GRADER_ONLY]
    for path in (fcn_judge.REFERENCE, caption_judge.REFERENCE):
        assert path.is_file() and any(path.is_relative_to(h) for h in hidden), path
    stored = tmp_path / "helpers" / "grading" / "stored"
    stored.mkdir(parents=True)
    (stored / "runs.npz").write_bytes(b"one")
    before = jobs.grader_code_digest(tmp_path)
    (stored / "runs.npz").write_bytes(b"two")
    jobs._CODE.pop(tmp_path, None)
    assert jobs.grader_code_digest(tmp_path) != before
