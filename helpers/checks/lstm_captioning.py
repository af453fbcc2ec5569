"""Checkers for the ``lstm_captioning`` quiz.

Same rules as ``rnn_captioning``: forward values against ``data/expected/lstm_captioning.npz``
(cs231n's linspace sanity tests; rel. error < 1e-8), backward passes against numeric
gradients of the student's own forward (float64, rel. error < 1e-7). The layers carried
over from the RNN quiz (word embedding, temporal softmax loss) use that quiz's checkers.
"""
from __future__ import annotations

import itertools

from . import rnn_captioning as _rnn
from ._compare import call, expect_close, passed
from ._captioning import numpy_only
from .rnn_captioning import (_grad_check, _output_of, _sequence_backward, _unpack, call_fresh,
                             eval_numerical_gradient_array, expected, fresh, linspace, mistakes_for,
                             random_inputs)

QUIZ = "lstm_captioning"
GATES = "ifog"
#: Every wrong order of the four gate blocks, as the key used in the expected file.
WRONG_ORDERS = ["".join(p) for p in itertools.permutations(GATES) if "".join(p) != GATES]

check_word_embedding_forward = _rnn.check_word_embedding_forward
check_word_embedding_backward = _rnn.check_word_embedding_backward
check_temporal_softmax_loss = _rnn.check_temporal_softmax_loss


def _gate_mistakes():
    return {f"order_{o}": (f"the gates are read in the order ({', '.join(o)}); use cs231n's "
                           "order i, f, o, g: a[:, :H] input, a[:, H:2H] forget, a[:, 2H:3H] "
                           "output, a[:, 3H:] the tanh candidate g.") for o in WRONG_ORDERS}


def lstm_step_inputs(case="public"):
    """(x, prev_h, prev_c, Wx, Wh, b). Public: cs231n's N, D, H = 3, 4, 5 linspace test."""
    if case == "public":
        N, D, H = 3, 4, 5
        return (linspace(-0.4, 1.2, N, D), linspace(-0.3, 0.7, N, H), linspace(-0.4, 0.9, N, H),
                linspace(-2.1, 1.3, D, 4 * H), linspace(-0.7, 2.2, H, 4 * H), linspace(0.3, 0.7, 4 * H))
    N, D, H = 2, 6, 3
    return (linspace(0.8, -0.5, N, D), linspace(0.4, -0.6, N, H), linspace(1.1, -0.2, N, H),
            linspace(-1.2, 1.5, D, 4 * H), linspace(0.9, -0.8, H, 4 * H), linspace(-0.4, 0.5, 4 * H))


def lstm_inputs(case="public"):
    """(x, h0, Wx, Wh, b). Public: cs231n's N, D, H, T = 2, 5, 4, 3 linspace test."""
    if case == "public":
        N, D, H, T = 2, 5, 4, 3
        return (linspace(-0.4, 0.6, N, T, D), linspace(-0.4, 0.8, N, H), linspace(-0.2, 0.9, D, 4 * H),
                linspace(-0.3, 0.6, H, 4 * H), linspace(0.2, 0.7, 4 * H))
    N, D, H, T = 3, 2, 3, 5
    return (linspace(0.7, -0.5, N, T, D), linspace(0.3, -0.6, N, H), linspace(-0.8, 0.6, D, 4 * H),
            linspace(0.5, -0.7, H, 4 * H), linspace(-0.3, 0.4, 4 * H))


def check_lstm_step_forward(fn, case="public"):
    """lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b) -> next_h, next_c, cache."""
    name = "lstm_step_forward"
    numpy_only(fn, name, "the LSTM step")
    exp = expected(name, case, QUIZ)
    next_h, next_c, _ = _unpack(call_fresh(fn, *lstm_step_inputs(case)), 3, name, "next_h, next_c, cache")
    mistakes = dict(_gate_mistakes(), no_tanh_c="next_h = o * tanh(next_c): the tanh of the new cell is missing.")
    err_c = expect_close(next_c, exp["next_c"], "next_c", name, tol=_rnn.FWD_TOL,
                         mistakes=mistakes_for(exp, "next_c", mistakes))
    err_h = expect_close(next_h, exp["next_h"], "next_h", name, tol=_rnn.FWD_TOL,
                         mistakes=mistakes_for(exp, "next_h", mistakes))
    return passed(name, f"next_h and next_c match (rel. error {max(err_h, err_c):.1e}).")


STEP_SHAPES = {"public": (4, 5, 6), "hidden": (3, 2, 4)}


def check_lstm_step_backward(forward, backward, case="public"):
    """lstm_step_backward(dnext_h, dnext_c, cache) -> 6 gradients, against numeric ones."""
    name = "lstm_step_backward"
    numpy_only(backward, name, "the LSTM step's backward pass")
    N, D, H = STEP_SHAPES[case]
    args = random_inputs([(N, D), (N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)],
                         seed=sum(STEP_SHAPES[case]) + 4)
    dnext_h, dnext_c = random_inputs([(N, H), (N, H)], seed=97)
    _, _, cache = _unpack(call_fresh(forward, *args), 3, "lstm_step_forward", "next_h, next_c, cache")
    # Fresh copies: cs231n-style code may do `dnext_c += ...` on its argument, and the
    # numeric gradient below still needs the original dnext_h, dnext_c.
    grads = _unpack(call(backward, *fresh(dnext_h, dnext_c), cache, fn_name=name), 6, name,
                    "dx, dprev_h, dprev_c, dWx, dWh, db")

    def numeric(i):
        return (eval_numerical_gradient_array(_output_of(forward, args, i, 0), args[i].copy(), dnext_h)
                + eval_numerical_gradient_array(_output_of(forward, args, i, 1), args[i].copy(), dnext_c))
    nums = [numeric(i) for i in range(6)]
    err = _grad_check(name, grads, nums, ["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"],
                      "Most likely: dnext_c must be added to the gradient that reaches next_c "
                      "through next_h (dnext_h * o * (1 - tanh(next_c)**2)); the gate gradients "
                      "are concatenated in the order i, f, o, g before the matrix products.")
    return passed(name, f"all 6 gradients match numeric ones (max rel. error {err:.1e}).")


def check_lstm_forward(fn, case="public"):
    """lstm_forward(x, h0, Wx, Wh, b) -> h, cache, on cs231n's linspace test."""
    name = "lstm_forward"
    numpy_only(fn, name, "the LSTM over a sequence")
    exp = expected(name, case, QUIZ)
    h, _ = _unpack(call_fresh(fn, *lstm_inputs(case)), 2, name, "h, cache")
    mistakes = dict(_gate_mistakes(),
                    c_reset="the cell state is reset at every step; carry next_c into the next step.",
                    h0_every_step="every step starts from h0; feed each step's next_h into the next step.")
    err = expect_close(h, exp["h"], "h", name, tol=_rnn.FWD_TOL, mistakes=mistakes_for(exp, "h", mistakes))
    return passed(name, f"h {exp['h'].shape} matches (rel. error {err:.1e}).")


def check_lstm_backward(forward, backward, case="public"):
    """lstm_backward(dh, cache) -> dx, dh0, dWx, dWh, db, against numeric gradients."""
    return _sequence_backward("lstm_backward", forward, backward, case, 5, gate_mul=4, quiz=QUIZ)


def check_captioning_loss(model_class, case="public"):
    """CaptioningRNN(cell_type='lstm').loss: cs231n's 9.82445935443, then numeric gradients
    (case="hidden": other data, <NULL> padding, minibatch size)."""
    return _rnn.check_captioning_loss(model_class, "lstm", quiz=QUIZ, case=case)


def check_captioning_sample(model_class, case="public"):
    """CaptioningRNN(cell_type='lstm').sample: greedy captions of a fixed model, compared up
    to <END> (case="hidden": another length, captions independent across the minibatch)."""
    return _rnn.check_captioning_sample(model_class, "lstm", quiz=QUIZ, case=case)
