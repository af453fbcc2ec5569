"""The captioning replay (helpers/caption_replay.py) and the judge's BLEU test with it
(helpers/grading/caption_judge.py).

A model that replays as the reference's is measured with the reference's stored full run; so
every correct way to write the quiz (the corpus' styles) must replay within the tolerance,
every mistake that changes training must not (it then trains in full, as before), and
nothing but data may count as a replay.
"""
import os

import numpy as np
import pytest

from helpers import caption_replay, captioning
from helpers.data.captioning import load_captioning_data
from helpers.grading import caption_judge as judge
from tests.in_kernel import InKernel
from tests.test_caption_judge import _student_class

SEED = 20261205
CELL_TYPES = {"rnn_captioning": "rnn", "lstm_captioning": "lstm"}

#: Corpus cases (tests/students) whose loss and gradients are the reference's: they replay.
#: (Their other mistakes, in sampling or a library call, lose the cells that test those.)
REPLAYS = {"rnn_captioning": {"cs231n_style_stops_at_end.py", "dict_caches_onehot_inplace.py",
                              "layers_only_namedtuple_loops.py", "sample_feeds_start_every_step.py",
                              "step_forward_calls_tf.py"},
           "lstm_captioning": {"cs231n_inplace_dnext_c.py", "step_forward_uses_keras_ops.py",
                               "step_namedtuple_loops_stop_at_end.py"}}
#: Corpus cases that train otherwise (a wrong loss or gradient, another gate order): no replay.
DIFFERS = {"rnn_captioning": {"softmax_divides_by_NT.py"},
           "lstm_captioning": {"gates_in_order_ifgo.py", "step_backward_drops_dnext_c.py"}}


@pytest.fixture(scope="module")
def references():
    out = {}
    for quiz, cell_type in CELL_TYPES.items():
        want = caption_replay.replay(_student_class(quiz), cell_type, SEED)
        out[quiz] = want, caption_replay.start_params({k: v.shape for k, v in want["params"].items()}, SEED)
    return out


def test_every_corpus_case_is_classified():
    from students import corpus
    for quiz in CELL_TYPES:
        names = {p.name for p in corpus.case_files(quiz)}
        assert names == REPLAYS[quiz] | DIFFERS[quiz], f"classify the new {quiz} cases here"


@pytest.mark.parametrize("quiz, case", sorted((q, c) for q, cases in REPLAYS.items() for c in cases))
def test_correct_training_replays_as_the_reference(references, quiz, case):
    want, start = references[quiz]
    got = caption_replay.replay(_student_class(quiz, case), CELL_TYPES[quiz], SEED)
    assert caption_replay.replays_differ(got, want, start) < 1e-3
    assert caption_replay.init_differs(got, want) is None


def test_a_model_that_starts_otherwise_trains_in_full(references):
    """The replay starts from drawn parameters, so a model whose own __init__ sets its
    parameters otherwise (zeros, cs231n's np.random draws) replays exactly, but is not graded
    as the reference's run: its full run starts elsewhere."""
    want, start = references["rnn_captioning"]
    base = _student_class("rnn_captioning")

    class ZeroStart(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.params = {k: np.zeros_like(v) for k, v in self.params.items()}

    class NumpyGlobalDraws(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.params["W_vocab"] = (np.random.randn(*self.params["W_vocab"].shape)
                                      / np.sqrt(self.params["W_vocab"].shape[0])).astype(np.float32)
    for cls in (ZeroStart, NumpyGlobalDraws):
        got = caption_replay.replay(cls, "rnn", SEED)
        assert caption_replay.replays_differ(got, want, start) < 1e-3
        assert caption_replay.init_differs(got, want)
        same, why = judge.replay_verdict(cls, "rnn", SEED)
        assert not same and "starts otherwise" in why, why
    assert caption_replay.init_differs({**got, "init": {k: v.tolist() for k, v in got["init"].items()}}, want)


@pytest.mark.parametrize("quiz, case", sorted((q, c) for q, cases in DIFFERS.items() for c in cases))
def test_training_that_differs_does_not_replay(references, quiz, case):
    want, start = references[quiz]
    got = caption_replay.replay(_student_class(quiz, case), CELL_TYPES[quiz], SEED)
    assert caption_replay.replays_differ(got, want, start) > 50 * caption_replay.TOLERANCE


def test_only_data_counts_as_a_replay(references):
    want, start = references["rnn_captioning"]
    p = want["params"]
    large = want["large"]
    forged = [None, {"params": p}, {"params": p, "losses": want["losses"].tolist()},
              dict(want, large=None), dict(want, large={**large, "loss": np.array([np.nan])}),
              dict(want, large={**large, "grads": {**large["grads"], "b": large["grads"]["b"] * np.inf}}),
              {"params": {k: v for k, v in p.items() if k != "b"}, "losses": want["losses"]},
              {"params": {**p, "extra": p["b"]}, "losses": want["losses"]},
              {"params": {**p, "b": p["b"].tolist()}, "losses": want["losses"]},
              {"params": {**p, "b": InKernel(p["b"])}, "losses": want["losses"]},
              {"params": {**p, "b": np.full_like(p["b"], np.nan)}, "losses": want["losses"]},
              {"params": {**p, "Wx": p["Wx"][:3]}, "losses": want["losses"]},
              {"params": p, "losses": want["losses"][:3]}]
    for got in forged:
        assert caption_replay.replays_differ(got, want, start) == np.inf, str(got)[:80]
    assert caption_replay.replays_differ(dict(want), want, start) == 0.0
    # the start is no answer: the parameters must have moved as the reference's did
    assert caption_replay.replays_differ({"params": start, "losses": want["losses"]}, want, start) >= 1.0


def test_start_params_are_keyed_by_name_and_seed():
    a = caption_replay.start_params({"Wx": (4, 8), "b": (8,)}, 1)
    b = caption_replay.start_params({"b": (8,), "Wx": (4, 8)}, 1)
    c = caption_replay.start_params({"Wx": (4, 8), "b": (8,)}, 2)
    assert all(np.array_equal(a[k], b[k]) for k in a) and not np.array_equal(a["Wx"], c["Wx"])


def test_stale_stored_runs_are_not_used(monkeypatch):
    monkeypatch.setitem(judge._CACHE, "holds", False)
    same, why = judge.replay_verdict(_student_class("rnn_captioning"), "rnn", SEED)
    assert not same and "stored runs were made with other files" in why


def test_the_stored_runs_were_made_with_these_files():
    with np.load(judge.REFERENCE) as data:
        assert str(data["measured_with"]) == judge.inputs_digest(), (
            "helpers/grading/stored/caption_reference.npz was made with other versions of "
            f"{', '.join(judge.INPUTS)} or of the captioning solutions: make it again with "
            "python tools/make_caption_reference.py (about a CPU minute)")


@pytest.mark.parametrize("quiz, target", [("rnn_captioning", 0.55), ("lstm_captioning", 0.645)])
def test_a_replayed_model_is_measured_with_the_stored_run(quiz, target, capsys):
    cls = InKernel(_student_class(quiz, sorted(REPLAYS[quiz])[0]))
    bleu = judge.judged_bleu(cls, CELL_TYPES[quiz])
    out = capsys.readouterr().out
    assert "graded replay: your model trains exactly as the reference's" in out, out
    assert bleu >= target


def test_a_model_that_differs_trains_in_full_and_forged_replays_change_nothing(capsys):
    """softmax_divides_by_NT trains the full recipe in its kernel (as before the replay); a
    kernel that refuses the replay or answers it with the starting parameters does too, and
    its untrained parameters score nothing."""
    assert judge.judged_bleu(InKernel(_student_class("rnn_captioning", "softmax_divides_by_NT.py")), "rnn") >= 0
    assert "training the full recipe from your RNN instead" in capsys.readouterr().out
    cls = _student_class("rnn_captioning")
    small = {k: np.asarray(v) for k, v in cls(load_captioning_data(max_train=0)["word_to_idx"], input_dim=512,
                                              wordvec_dim=64, hidden_dim=64, seed=0).params.items()}
    start = caption_replay.start_params({k: v.shape for k, v in small.items()}, 0)
    for replay in ({"error": "no replay here"}, {"params": start, "losses": np.ones(caption_replay.STEPS)}):
        assert judge.judged_bleu(InKernel(cls, {"graded_params": small, "replay": replay}), "rnn") < 0.1
        assert "training the full recipe" in capsys.readouterr().out


@pytest.mark.skipif(os.environ.get("COURSE_SLOW_TESTS") != "1",
                    reason="trains both captioning models in full (about 40 CPU-s): COURSE_SLOW_TESTS=1")
def test_the_stored_runs_are_the_recipes_full_runs():
    for quiz, cell_type in CELL_TYPES.items():
        fresh = captioning.graded_params(_student_class(quiz), cell_type)
        bleus = [captioning.bleu4(judge._reference_model(cell_type, "full", p), load_captioning_data(), "val")
                 for p in (fresh, judge.stored_params(cell_type))]
        assert abs(bleus[0] - bleus[1]) <= 0.01, (quiz, bleus)


@pytest.mark.parametrize("quiz", sorted(CELL_TYPES))
def test_overfitting_replays_on_the_new_captions(quiz, capsys):
    """The overfitting test replays its own recipe on the judge's 50 new captions: a correct
    style is given the reference's stored run (on the notebook's 50 captions), a mistake that
    trains otherwise trains the recipe on the new captions as before."""
    cell_type = CELL_TYPES[quiz]
    fit = judge.judged_overfit(InKernel(_student_class(quiz, sorted(REPLAYS[quiz])[-1])), cell_type)
    with np.load(judge.REFERENCE) as data:
        assert fit["loss"] == float(data[f"{cell_type}/overfit_loss"]) < 0.1 and fit["reproduced"] == 1.0
    assert "graded replay on 50 new captions: your model trains exactly as the reference's" in fit["report"]
    wrong = sorted(DIFFERS[quiz])[-1]
    judge.judged_overfit(InKernel(_student_class(quiz, wrong)), cell_type)
    assert "training the recipe on the 50 new captions instead" in capsys.readouterr().out


#: Numerics that are exact at the replay's small parameters but overflow in float32 at a
#: trained model's activations (a red team's cases: the LSTM's full run ends in nan at
#: iteration 170), and a correct float32 backward that does not.
SIGMOID_BY_EXP = '''
def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    sig = lambda z: np.exp(z) / (1 + np.exp(z))
    i, f, o, g = sig(a[:, :H]), sig(a[:, H:2*H]), sig(a[:, 2*H:3*H]), np.tanh(a[:, 3*H:])
    next_c = f * prev_c + i * g
    return o * np.tanh(next_c), next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, np.tanh(next_c))
'''
FLOAT32_BACKWARD = '''
def lstm_backward(dh, cache):
    N, T, H = dh.shape
    dxs, dWx, dWh, db = [None] * T, 0, 0, 0
    dprev_h, dprev_c = np.zeros_like(dh[:, 0]), np.zeros_like(dh[:, 0])
    for t in reversed(range(T)):
        dxs[t], dprev_h, dprev_c, a, b_, c = lstm_step_backward(dh[:, t] + dprev_h, dprev_c, cache[t])
        dWx, dWh, db = dWx + a, dWh + b_, db + c
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db
'''
TANH_BY_EXP = '''
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    e = np.exp(2 * (x @ Wx + prev_h @ Wh + b))
    next_h = (e - 1) / (e + 1)
    return next_h, (x, prev_h, Wx, Wh, next_h)
'''


@pytest.mark.parametrize("quiz, code, replays", [
    ("lstm_captioning", FLOAT32_BACKWARD, True),
    ("lstm_captioning", SIGMOID_BY_EXP + FLOAT32_BACKWARD, False),
    ("rnn_captioning", TANH_BY_EXP, False)])
def test_formulas_that_overflow_at_trained_sizes_do_not_replay(references, quiz, code, replays):
    want, start = references[quiz]
    ns = judge.reference_namespace(quiz, cached=False)
    exec(code, ns)
    distance = caption_replay.replays_differ(caption_replay.replay(ns["CaptioningRNN"], CELL_TYPES[quiz], SEED),
                                             want, start)
    assert (distance < 1e-3) if replays else distance == np.inf, distance
