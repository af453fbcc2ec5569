"""gans' quality cells under the grader's judge (helpers/grading/gan_judge.py): the score is
decided on the trusted side, from a replay on a seed the judge draws or from the full run's
samples, never from what the student's kernel says it scored.

The submission's functions are wrapped in tests/in_kernel.InKernel, the judge's proxy in
miniature: what the judge runs beside them (``__course_run__``) can be forged as a hostile
kernel would.
"""
import numpy as np
import pytest

from helpers import gan_replay, gan_training
from helpers.grading import gan_judge
from tests.in_kernel import InKernel


def _functions(label, **changes):
    """The solution's functions for ``label``'s recipe (and its sample_noise), as proxies."""
    fns = dict(gan_judge.reference_functions(label), sample_noise=gan_judge.solution_functions()["sample_noise"])
    fns.update(changes)
    return {name: InKernel(fn) if not isinstance(fn, InKernel) else fn for name, fn in fns.items()}


def _digits(n, seed=0):
    from helpers.data.mnist import load_mnist
    x = load_mnist(scale="tanh", flatten=True)[0]
    return x[np.random.default_rng(seed).choice(len(x), n, replace=False)].astype(np.float32)


def test_a_correct_submission_replays_on_a_fresh_seed_and_gets_the_recipes_score(monkeypatch, capsys):
    seeds = []
    draw = gan_judge.fresh_seed
    monkeypatch.setattr(gan_judge, "fresh_seed", lambda: seeds.append(draw()) or seeds[-1])
    for _ in range(2):
        score = gan_judge.judged_score("vanilla GAN", **_functions("vanilla GAN"))
        assert score["replayed"] and score["confident"] == gan_replay.stored_score("vanilla GAN")["confident"]
    assert len(set(seeds)) == 2, "the judge replayed twice on the same seed"
    assert "12 replayed steps on a fresh seed match the judge's own replay" in capsys.readouterr().out


def _stored_sketch(label):
    """What a kernel can know: the sketch stored for the fixed seed, as the wire sends it."""
    ref = gan_replay._load_sketches(label)["simultaneous", 2]
    return {"shapes": gan_replay._shapes(ref), "norms": ref["norms"], "projections": ref["projections"],
            "losses": ref["losses"]}


def _forged_step(label, answers):
    step = gan_judge.reference_functions(label)["train_step"]
    return InKernel(step, forged=answers)


def test_the_stored_sketch_does_not_answer_the_judges_replay_and_copied_digits_are_not_samples(capsys):
    """A kernel that answers the replay with the sketch in data/expected/ (for the fixed seed)
    goes to the full run; samples that are MNIST digits, even with a little noise, fail."""
    label = "vanilla GAN"
    digits = _digits(1000)
    noisy = np.clip(digits + np.random.default_rng(1).normal(0, 0.02, digits.shape), -1, 1).astype(np.float32)
    for samples in (digits, noisy):
        step = _forged_step(label, {"sketch_beside": _stored_sketch(label), "graded_samples": samples})
        with pytest.raises(AssertionError, match="1,000 samples are copies of MNIST digits"):
            gan_judge.judged_score(label, **_functions(label, train_step=step))
        assert "the replayed steps differ from the recipe's" in capsys.readouterr().out
    for samples, why in ((InKernel(digits), "not an array"), (digits[:10], "shape \\(10, 784\\)"),
                         (digits * 3, "finite images in \\[-1, 1\\]"),
                         ("images", "shape|not an array"), (np.full((1000, 784), np.nan, np.float32), "finite")):
        step = _forged_step(label, {"sketch_beside": "same", "graded_samples": samples})
        with pytest.raises(AssertionError, match=why):
            gan_judge.judged_score(label, **_functions(label, train_step=step))


def test_a_mistake_trains_in_full_in_the_kernel_and_the_judge_scores_its_samples(monkeypatch, capsys):
    """A flipped generator loss replays differently: the full recipe (cut to 20 steps here)
    trains beside the student's functions and only its samples come back, scored here."""
    import tensorflow as tf
    monkeypatch.setitem(gan_training.RECIPES, "vanilla GAN", {"steps": 20, "batch_size": 64, "average": False})

    def flipped(scores_fake):
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(scores_fake), scores_fake))
    score = gan_judge.judged_score("vanilla GAN", **_functions("vanilla GAN", g_loss_fn=flipped))
    out = capsys.readouterr().out
    assert not score["replayed"] and score["steps"] == 20 and score["n"] == 1000
    assert score["confident"] < 0.05, score
    assert "the replayed steps differ" in out and "its samples scored by the grader" in out


def test_copies_are_digits_within_the_stated_distance_and_real_variations_are_not():
    """COPY_RMS: MNIST digits (and with noise of RMS 0.02) are copies; the same digits
    shifted by two pixels, and blends of two digits, are not."""
    digits = _digits(200, seed=3)
    assert gan_judge.copies(digits) == 200
    noisy = np.clip(digits + np.random.default_rng(2).normal(0, 0.02, digits.shape), -1, 1)
    assert gan_judge.copies(noisy) == 200
    shifted = np.roll(digits.reshape(-1, 28, 28), 2, axis=2).reshape(-1, 784)
    assert gan_judge.copies(shifted) == 0
    assert gan_judge.copies((digits[:100] + digits[100:]) / 2) == 0
    rms = gan_judge.nearest_digit_rms(shifted)
    assert rms.min() > 2 * gan_judge.COPY_RMS


def test_graded_score_leaves_a_proxy_to_the_judge():
    """Under the judge the notebook's visible call returns None (its hidden test scores the
    submission with judged_score); it never trains proxies of the student's functions."""
    assert gan_training.graded_score("DCGAN", {"confident": 1.0}, **_functions("DCGAN")) is None


def test_a_sketch_must_be_data():
    """What comes back as a sketch is read only if it is plain data: a proxy of an object in
    the kernel (whose methods would run there), or parts of one, is not a sketch."""
    ref = gan_replay._load_sketches("vanilla GAN")["simultaneous", 2]
    ref = {"shapes": gan_replay._shapes(ref), **{k: ref[k] for k in ("norms", "projections", "losses")}}
    assert gan_replay.sketches_differ(dict(ref), ref) == 0
    for forged in (InKernel(ref), dict(ref, norms=InKernel(ref["norms"])), dict(ref, shapes=[InKernel([1])]),
                   dict(ref, losses=[[0.0, 0.0]] * 12), dict(ref, shapes="23")):
        assert gan_replay.sketches_differ(forged, ref) == np.inf
