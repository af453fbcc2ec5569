"""lstm_captioning: checkers pass the reference and an alternative solution, reject the
known mistakes (gate order, sums over time, ...); quality (LSTM beats the RNN) read from
the autograded reference notebooks."""

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import load_tool
from helpers.captioning import sigmoid
from helpers.checks import CheckFailed
from helpers.checks import lstm_captioning as checks

REPO = Path(__file__).resolve().parent.parent


def _tools():
    return load_tool("make_expected_captioning.py")


@pytest.fixture(scope="module")
def ref():
    return _tools().reference("lstm_captioning")


def test_reference_reproduces_cs231n_published_values(ref):
    from helpers.checks.rnn_captioning import model_fixed_case, rel_error
    next_h, next_c, _ = ref["lstm_step_forward"](*checks.lstm_step_inputs())
    assert rel_error(next_h, [[0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
                              [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
                              [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]]) < 1e-8
    assert rel_error(next_c, [[0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
                              [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
                              [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]]) < 1e-8
    h, _ = ref["lstm_forward"](*checks.lstm_inputs())
    assert rel_error(h, [[[0.01764008, 0.01823233, 0.01882671, 0.0194232],
                          [0.11287491, 0.12146228, 0.13018446, 0.13902939],
                          [0.31358768, 0.33338627, 0.35304453, 0.37250975]],
                         [[0.45767879, 0.4761092, 0.4936887, 0.51041945],
                          [0.6704845, 0.69350089, 0.71486014, 0.7346449],
                          [0.81733511, 0.83677871, 0.85403753, 0.86935314]]]) < 1e-7
    model, features, captions = model_fixed_case(ref["CaptioningRNN"], "lstm")
    assert abs(model.loss(features, captions)[0] - 9.82445935443) < 1e-10


def _all_checks(ns, case):
    checks.check_lstm_step_forward(ns["lstm_step_forward"], case)
    checks.check_lstm_step_backward(ns["lstm_step_forward"], ns["lstm_step_backward"], case)
    checks.check_lstm_forward(ns["lstm_forward"], case)
    checks.check_lstm_backward(ns["lstm_forward"], ns["lstm_backward"], case)


@pytest.mark.parametrize("case", ["public", "hidden"])
def test_reference_passes_every_check(ref, case, capsys):
    _all_checks(ref, case)
    checks.check_word_embedding_backward(ref["word_embedding_forward"], ref["word_embedding_backward"], case)
    checks.check_temporal_softmax_loss(ref["temporal_softmax_loss"], case)
    out = capsys.readouterr().out
    assert out.count("✔") == 6 and "✘" not in out


def test_reference_model_passes(ref):
    checks.check_captioning_loss(ref["CaptioningRNN"])
    checks.check_captioning_sample(ref["CaptioningRNN"])


# An alternative correct LSTM: weights split per gate, dict caches, sigmoid via exp.

def _split(W, H):
    return [W[..., k * H:(k + 1) * H] for k in range(4)]


def alt_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    pre = [x @ wx + prev_h @ wh + bb for wx, wh, bb in zip(_split(Wx, H), _split(Wh, H), _split(b, H))]
    i, f, o = (1 / (1 + np.exp(-p)) for p in pre[:3])
    g = np.tanh(pre[3])
    c = f * prev_c + i * g
    h = o * np.tanh(c)
    return h, c, dict(x=x, h=prev_h, c=prev_c, Wx=Wx, Wh=Wh, gates=(i, f, o, g), c_new=c)


def alt_step_backward(dnext_h, dnext_c, k):
    i, f, o, g = k["gates"]
    tc = np.tanh(k["c_new"])
    dc = dnext_c + dnext_h * o * (1 - tc * tc)
    dgates = [dc * g * i * (1 - i), dc * k["c"] * f * (1 - f), dnext_h * tc * o * (1 - o), dc * i * (1 - g * g)]
    da = np.hstack(dgates)
    return (da @ k["Wx"].T, da @ k["Wh"].T, dc * f, np.einsum("nd,ng->dg", k["x"], da),
            np.einsum("nh,ng->hg", k["h"], da), da.sum(0))


def alt_forward(x, h0, Wx, Wh, b):
    h, c, hs, ks = h0, np.zeros_like(h0), [], []
    for t in range(x.shape[1]):
        h, c, k = alt_step_forward(x[:, t], h, c, Wx, Wh, b)
        hs.append(h)
        ks.append(k)
    return np.stack(hs, 1), ks


def alt_backward(dh, ks):
    dx, dph, dpc, acc = [], 0, 0, None
    for t in range(dh.shape[1] - 1, -1, -1):
        g = alt_step_backward(dh[:, t] + dph, dpc + np.zeros_like(dh[:, t]), ks[t])
        dx.insert(0, g[0])
        dph, dpc = g[1], g[2]
        acc = g[3:] if acc is None else tuple(a + b for a, b in zip(acc, g[3:]))
    return (np.stack(dx, 1), dph) + acc


def test_alternative_correct_lstm_passes():
    ns = dict(lstm_step_forward=alt_step_forward, lstm_step_backward=alt_step_backward,
              lstm_forward=alt_forward, lstm_backward=alt_backward)
    for case in ("public", "hidden"):
        _all_checks(ns, case)


@pytest.mark.parametrize("order", ["ifgo", "fiog", "gifo", "iofg"])
@pytest.mark.parametrize("case", ["public", "hidden"])
def test_wrong_gate_order_is_named(order, case):
    def wrong(x, prev_h, prev_c, Wx, Wh, b):
        H = prev_h.shape[1]
        a = x @ Wx + prev_h @ Wh + b
        blocks = dict(zip(order, _split(a, H)))
        i, f, o = (sigmoid(blocks[n]) for n in "ifo")
        g = np.tanh(blocks["g"])
        c = f * prev_c + i * g
        return o * np.tanh(c), c, None
    with pytest.raises(CheckFailed, match=rf"order \({', '.join(order)}\)"):
        checks.check_lstm_step_forward(wrong, case)


def test_wrong_gate_order_in_forward_is_named(ref):
    def wrong_forward(x, h0, Wx, Wh, b):
        H = h0.shape[1]
        perm = lambda W: np.concatenate([_split(W, H)[k] for k in (1, 0, 2, 3)], axis=-1)  # noqa: E731
        return ref["lstm_forward"](x, h0, perm(Wx), perm(Wh), perm(b))
    with pytest.raises(CheckFailed, match="gates are read in the order"):
        checks.check_lstm_forward(wrong_forward)


def test_missing_tanh_of_cell_is_named(ref):
    def no_tanh(x, prev_h, prev_c, Wx, Wh, b):
        h, c, cache = ref["lstm_step_forward"](x, prev_h, prev_c, Wx, Wh, b)
        return h / np.tanh(c) * c, c, cache
    with pytest.raises(CheckFailed, match="tanh of the new cell is missing"):
        checks.check_lstm_step_forward(no_tanh)


def test_cell_reset_is_named(ref):
    def reset(x, h0, Wx, Wh, b):
        h, hs = h0, []
        for t in range(x.shape[1]):
            h, _, _ = ref["lstm_step_forward"](x[:, t], h, np.zeros_like(h0), Wx, Wh, b)
            hs.append(h)
        return np.stack(hs, 1), None
    with pytest.raises(CheckFailed, match="cell state is reset"):
        checks.check_lstm_forward(reset)


def test_step_backward_without_dnext_c_fails(ref):
    def ignore_dc(dnext_h, dnext_c, cache):
        return ref["lstm_step_backward"](dnext_h, np.zeros_like(dnext_c), cache)
    with pytest.raises(CheckFailed, match="does not match the numeric gradient"):
        checks.check_lstm_step_backward(ref["lstm_step_forward"], ignore_dc)


@pytest.mark.parametrize("case", ["public", "hidden"])
def test_backward_not_summed_is_named(ref, case):
    step = ref["lstm_step_backward"]

    def not_summed(dh, cache):
        N, T, H = dh.shape
        dx, dph, dpc = [], np.zeros((N, H)), np.zeros((N, H))
        for t in reversed(range(T)):
            g = step(dh[:, t] + dph, dpc, cache[t])
            dx.insert(0, g[0])
            dph, dpc = g[1], g[2]
            dWx, dWh, db = g[3:]
        return np.stack(dx, 1), dph, dWx, dWh, db
    with pytest.raises(CheckFailed, match="not summed over time"):
        checks.check_lstm_backward(ref["lstm_forward"], not_summed, case)


def test_model_without_mask_is_named(ref):
    softmax = ref["temporal_softmax_loss"]
    ns = _tools()._patched(dict(ref, __quiz__="lstm_captioning"),
                           temporal_softmax_loss=lambda x, y, m: softmax(x, y, np.ones_like(m)))
    with pytest.raises(CheckFailed, match="<NULL> words count in the loss"):
        checks.check_captioning_loss(ns["CaptioningRNN"])


def test_rnn_model_fails_the_lstm_check():
    from helpers.captioning import CaptioningModelBase

    class OnlyRNN(CaptioningModelBase):
        def loss(self, features, captions):
            if self.cell_type != "rnn":
                raise NotImplementedError
    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.check_captioning_loss(OnlyRNN)


def test_expected_file_is_up_to_date():
    from helpers.checks.rnn_captioning import load_expected
    fresh = _tools().make_lstm()
    stored = load_expected("lstm_captioning")
    assert set(fresh) == set(stored)
    for k, v in fresh.items():
        np.testing.assert_allclose(stored[k], v, rtol=1e-12, atol=0, err_msg=k)


# --------------------------------------------------------------------------- graded runs
# graded_overfit_loss / graded_bleu are shared (helpers.captioning) and tested in
# test_rnn_captioning.py; here: the LSTM notebook trains with the same recipes, and the
# graded run builds an LSTM.


@pytest.mark.parametrize("recipe, marker", [("overfit", "small_solver = CaptioningSolver("),
                                            ("full", "lstm_bleu = bleu4(")])
def test_graded_recipes_are_the_notebooks(recipe, marker):
    from test_rnn_captioning import _notebook_recipe

    from helpers.captioning import RECIPES
    found = _notebook_recipe("lstm_captioning", marker)
    assert {"CaptioningRNN", "CaptioningSolver"} <= set(found.pop("calls"))
    assert found.pop("cell_type") == "lstm" and found.pop("seed") == 0 and found.pop("input_dim") == 512
    assert found == RECIPES[recipe]


def test_graded_lstm_run_ignores_a_forged_score(monkeypatch, capsys, ref):
    from helpers import captioning
    monkeypatch.setenv("COURSE_GRADING", "1")
    monkeypatch.setitem(captioning.RECIPES, "full", dict(captioning.RECIPES["full"], num_iterations=20))
    built = []

    class Recording(ref["CaptioningRNN"]):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append((self.cell_type, self.params["Wh"].shape))
    bleu = captioning.graded_bleu(Recording, "lstm", 0.99)
    assert bleu < 0.5 and built == [("lstm", (64, 256))]
    assert "graded run: the LSTM trained here from your Recording on 20000 captions " \
           "(20 iterations of 100, seed 0)" in capsys.readouterr().out


# --------------------------------------------------------------------------- quality

def test_lstm_beats_rnn(demo_run):
    from conftest import autograded_notebook, cell_output_text
    lstm_text = cell_output_text(autograded_notebook(demo_run, "reference", "lstm_captioning"))
    rnn_text = cell_output_text(autograded_notebook(demo_run, "reference", "rnn_captioning"))
    from test_rnn_captioning import GRADED_OVERFIT
    overfit = float(re.search(GRADED_OVERFIT, lstm_text).group(1))
    lstm = float(re.search(r"LSTM validation BLEU-4: ([0-9.]+) \(target >= ([0-9.]+)\)", lstm_text).group(1))
    target = float(re.search(r"LSTM validation BLEU-4: ([0-9.]+) \(target >= ([0-9.]+)\)", lstm_text).group(2))
    rnn = float(re.search(r"RNN validation BLEU-4: ([0-9.]+)", rnn_text).group(1))
    assert overfit < 0.3, f"the LSTM should overfit 50 new captions below 0.3, got {overfit}"
    assert lstm >= target, f"LSTM validation BLEU-4 {lstm} < its target {target}"
    assert rnn < target, f"the RNN ({rnn}) reaches the LSTM's target {target}: the target does not separate them"
    assert lstm > rnn


# --------------------------------------------------------------------------- contracts (#19)

def test_step_backward_that_updates_dnext_c_in_place_passes(ref):
    """cs231n-style `dnext_c += ...` on the argument: correct, legal, full marks."""
    def in_place(dnext_h, dnext_c, k):
        i, f, o, g = k["gates"]
        tc = np.tanh(k["c_new"])
        dnext_c += dnext_h * o * (1 - tc * tc)          # changes the caller's array
        dgates = [dnext_c * g * i * (1 - i), dnext_c * k["c"] * f * (1 - f),
                  dnext_h * tc * o * (1 - o), dnext_c * i * (1 - g * g)]
        da = np.hstack(dgates)
        return (da @ k["Wx"].T, da @ k["Wh"].T, dnext_c * f, k["x"].T @ da, k["h"].T @ da, da.sum(0))
    for case in ("public", "hidden"):
        checks.check_lstm_step_backward(alt_step_forward, in_place, case=case)


def test_reference_sequence_layers_treat_step_caches_as_opaque():
    """The student's step pair keeps a dict cache; the given (reference) lstm_backward and
    the model must only hand it back, never unpack it."""
    ns = _tools().reference("lstm_captioning")
    ns.update(lstm_step_forward=alt_step_forward, lstm_step_backward=alt_step_backward)
    for case in ("public", "hidden"):
        checks.check_lstm_backward(ns["lstm_forward"], ns["lstm_backward"], case=case)
        checks.check_captioning_loss(ns["CaptioningRNN"], case=case)


def test_lstm_sample_may_stop_at_end(ref):
    class StopsAtEnd(ref["CaptioningRNN"]):
        def sample(self, features, max_length=30):
            full = super().sample(features, max_length)
            out = np.full_like(full, self._null)
            for n, row in enumerate(full):
                for t, word in enumerate(row):
                    out[n, t] = word
                    if word == self._end:
                        break
            return out
    checks.check_captioning_sample(StopsAtEnd)
    checks.check_captioning_sample(StopsAtEnd, case="hidden")


def test_lstm_layers_from_tensorflow_earn_nothing():
    import tensorflow as tf

    def tf_step(x, prev_h, prev_c, Wx, Wh, b):
        i, f, o, g = tf.split(x @ Wx + prev_h @ Wh + b, 4, axis=1)
        c = tf.sigmoid(f) * prev_c + tf.sigmoid(i) * tf.tanh(g)
        return (tf.sigmoid(o) * tf.tanh(c)).numpy(), c.numpy(), None
    with pytest.raises(CheckFailed, match="asks for the LSTM step in NumPy; your function called tf.split"):
        checks.check_lstm_step_forward(tf_step)
