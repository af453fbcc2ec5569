"""Checkers for the ``rnn_captioning`` quiz (and the layers ``lstm_captioning`` reuses).

Forward functions are compared with expected values stored in
``data/expected/rnn_captioning.npz`` (rel. error < 1e-8). The public cases are
cs231n's ``np.linspace`` sanity checks, so the numbers match the ones printed in
cs231n's RNN_Captioning notebook; ``case="hidden"`` uses other shapes. Backward
functions are compared with centred-difference numeric gradients of the
student's own forward function (float64, rel. error < 1e-7), on any shape.
Known mistakes on the stored cases are named.

Student functions are called only through their cs231n contract: every call gets fresh
copies of its arrays (an implementation may update its arguments in place, as
``dnext_c += ...`` does), a cache goes back unchanged to the backward pass that belongs
to it, and only returned values are compared. The layers are asked for in NumPy: one
that computes its result with TensorFlow & co. or a checker's answers earns nothing
(:mod:`helpers.checks._numpy_only`).

The expected file is written by ``tools/make_expected_captioning.py`` from the
reference solutions in ``solutions/``; nothing here contains a solution.
"""
from __future__ import annotations


import numpy as np

from ._captioning import (CS231N_LOSS, FWD_TOL, GRAD_TOL, QUIZ, SAMPLE_SEED,  # noqa: F401
                          Outputs, call_fresh, check_captioning_loss, check_captioning_sample,
                          eval_numerical_gradient, eval_numerical_gradient_array, expected, fresh,
                          load_expected, mistakes_for, model_fixed_case, numpy_only, sample_case,
                          small_model_case)
from ._captioning import unpack as _unpack
from ._compare import as_array, call, expect_close, expect_finite, expect_shape, fail, passed, rel_error

# --------------------------------------------------------------------------- inputs


def linspace(lo, hi, *shape):
    return np.linspace(lo, hi, num=int(np.prod(shape))).reshape(*shape)


def rnn_step_inputs(case="public"):
    """(x, prev_h, Wx, Wh, b). Public: cs231n's N, D, H = 3, 10, 4 linspace test."""
    if case == "public":
        N, D, H = 3, 10, 4
        return (linspace(-0.4, 0.7, N, D), linspace(-0.2, 0.5, N, H), linspace(-0.1, 0.9, D, H),
                linspace(-0.3, 0.7, H, H), linspace(-0.2, 0.4, H))
    N, D, H = 5, 3, 7
    return (linspace(-1.1, 0.9, N, D), linspace(0.6, -0.4, N, H), linspace(-0.5, 0.6, D, H),
            linspace(0.4, -0.3, H, H), linspace(-0.3, 0.2, H))


def rnn_inputs(case="public"):
    """(x, h0, Wx, Wh, b). Public: cs231n's N, T, D, H = 2, 3, 4, 5 linspace test."""
    if case == "public":
        N, T, D, H = 2, 3, 4, 5
        return (linspace(-0.1, 0.3, N, T, D), linspace(-0.3, 0.1, N, H), linspace(-0.2, 0.4, D, H),
                linspace(-0.4, 0.1, H, H), linspace(-0.7, 0.1, H))
    N, T, D, H = 3, 6, 2, 4
    return (linspace(0.5, -0.6, N, T, D), linspace(-0.2, 0.3, N, H), linspace(-0.9, 0.7, D, H),
            linspace(0.5, -0.4, H, H), linspace(0.1, -0.2, H))


def random_inputs(shapes, seed):
    """Float64 normal arrays of the given shapes (scaled so tanh/sigmoid are not saturated)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) * (0.5 if len(s) == 2 and s[0] == s[1] else 1.0) for s in shapes]


#: Shapes for the backward checks: (N, D, H) for steps, (N, T, D, H) for sequences.
STEP_SHAPES = {"public": (4, 5, 6), "hidden": (2, 7, 3)}
SEQ_SHAPES = {"public": (2, 6, 3, 4), "hidden": (3, 4, 5, 2)}


def embedding_inputs(case="public"):
    """(x, W). Public: cs231n's N, T, V, D = 2, 4, 5, 3 test (words repeat across rows)."""
    if case == "public":
        return np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]]), linspace(0, 1, 5, 3)
    return np.asarray([[6, 0, 6, 2, 6], [1, 1, 4, 0, 6], [3, 6, 2, 2, 5]]), linspace(-0.7, 0.4, 7, 4)


def softmax_inputs(case="public"):
    """(x, y, mask) for temporal_softmax_loss, seeded; mask has NULL positions."""
    N, T, V, seed = {"public": (3, 5, 6, 0), "hidden": (7, 4, 9, 1)}[case]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, T, V))
    y = rng.integers(V, size=(N, T))
    mask = rng.random((N, T)) > 0.35
    mask[:, 0] = True
    return x, y, mask


# --------------------------------------------------------------------------- layers


def _check_forward(name, out, exp, key, mistakes):
    return expect_close(out, exp[key], key, name, tol=FWD_TOL,
                        mistakes=mistakes_for(exp, key, mistakes))


def check_rnn_step_forward(fn, case="public"):
    """rnn_step_forward(x, prev_h, Wx, Wh, b) -> next_h, cache, on cs231n's linspace test."""
    name = "rnn_step_forward"
    numpy_only(fn, name, "the RNN step")
    exp = expected(name, case)
    next_h, _ = _unpack(call_fresh(fn, *rnn_step_inputs(case)), 2, name, "next_h, cache")
    err = _check_forward(name, next_h, exp, "next_h", {
        "no_tanh": "the tanh is missing: next_h = tanh(x @ Wx + prev_h @ Wh + b).",
        "no_bias": "the bias b is not added.",
        "swapped": "Wx and Wh are swapped: x goes with Wx, prev_h with Wh."})
    return passed(name, f"next_h matches (rel. error {err:.1e}).")


def _output_of(forward, args, i, k):
    """v -> output k of ``forward`` with argument i set to v, every call on fresh copies
    (evaluated in batches under the judge: :class:`~helpers.checks._captioning.Outputs`)."""
    return Outputs(forward, args, i, k)


def _grad_check(name, grads, numeric, names, hint):
    worst = 0.0
    for got, num, gname in zip(grads, numeric, names):
        arr = expect_shape(got, num.shape, gname, name, hint=f"{gname} must have the shape of "
                           f"the input it is the gradient of, {num.shape}.")
        expect_finite(arr, gname, name)
        err = rel_error(arr, num)
        if err > GRAD_TOL:
            fail(name, f"{gname} does not match the numeric gradient (rel. error {err:.2g}, "
                       f"tolerance {GRAD_TOL:g}).", hint)
        worst = max(worst, err)
    return worst


def check_rnn_step_backward(forward, backward, case="public"):
    """rnn_step_backward(dnext_h, cache) against numeric gradients of ``forward``."""
    name = "rnn_step_backward"
    numpy_only(backward, name, "the RNN step's backward pass")
    N, D, H = STEP_SHAPES[case]
    args = random_inputs([(N, D), (N, H), (D, H), (H, H), (H,)], seed=sum(STEP_SHAPES[case]))
    dnext_h = random_inputs([(N, H)], seed=99)[0]
    _, cache = _unpack(call_fresh(forward, *args), 2, "rnn_step_forward", "next_h, cache")
    grads = _unpack(call(backward, *fresh(dnext_h), cache, fn_name=name), 5, name, "dx, dprev_h, dWx, dWh, db")
    numeric = [eval_numerical_gradient_array(_output_of(forward, args, i, 0), args[i].copy(), dnext_h)
               for i in range(5)]
    err = _grad_check(name, grads, numeric, ["dx", "dprev_h", "dWx", "dWh", "db"],
                      "Most likely: the tanh derivative is 1 - next_h**2, applied before the "
                      "matrix products; dx = da @ Wx.T, dWx = x.T @ da, db sums da over N.")
    return passed(name, f"all 5 gradients match numeric ones (max rel. error {err:.1e}).")


def check_rnn_forward(fn, case="public"):
    """rnn_forward(x, h0, Wx, Wh, b) -> h, cache, on cs231n's linspace test."""
    name = "rnn_forward"
    numpy_only(fn, name, "the RNN over a sequence")
    exp = expected(name, case)
    h, _ = _unpack(call_fresh(fn, *rnn_inputs(case)), 2, name, "h, cache")
    err = _check_forward(name, h, exp, "h", {
        "h0_every_step": "every step starts from h0; feed each step's next_h into the next step.",
        "h0_included": "h holds h0 and misses the last step: h[:, t] is the state after step t."})
    return passed(name, f"h {exp['h'].shape} matches (rel. error {err:.1e}).")


def _sequence_backward(name, forward, backward, case, n_out, gate_mul=1, quiz=QUIZ):
    numpy_only(backward, name, "backpropagation through time")
    N, T, D, H = SEQ_SHAPES[case]
    G = gate_mul * H
    args = random_inputs([(N, T, D), (N, H), (D, G), (H, G), (G,)], seed=sum(SEQ_SHAPES[case]) + gate_mul)
    dh = random_inputs([(N, T, H)], seed=98)[0]
    fwd_name = name.replace("backward", "forward")
    _, cache = _unpack(call_fresh(forward, *args), 2, fwd_name, "h, cache")
    grads = _unpack(call(backward, *fresh(dh), cache, fn_name=name), 5, name, "dx, dh0, dWx, dWh, db")
    numeric = [eval_numerical_gradient_array(_output_of(forward, args, i, 0), args[i].copy(), dh)
               for i in range(5)]
    names = ["dx", "dh0", "dWx", "dWh", "db"]
    hint = ("Most likely: dWx, dWh and db must be summed over all time steps (+=, not =), "
            "and the gradient into step t is dh[:, t] plus the dprev_h coming back from step t + 1.")
    try:                                   # name the classic mistakes on the stored cases
        exp = expected(name, case, quiz)
    except KeyError:
        exp = {}
    for got, num, gname in zip(grads, numeric, names):
        arr = as_array(got, gname, name)
        if arr.shape == num.shape and rel_error(arr, num) > GRAD_TOL:
            for key, text in _SEQ_MISTAKES.items():
                wrong = exp.get(f"{gname}~{key}")       # stored only where it differs from right
                if wrong is not None and rel_error(arr, wrong) < 1e-6:
                    fail(name, f"{gname} does not match the numeric gradient "
                               f"(rel. error {rel_error(arr, num):.2g}).", f"Most likely: {text}")
    err = _grad_check(name, grads, numeric, names, hint)
    return passed(name, f"all 5 gradients match numeric ones on (N, T, D, H) = {(N, T, D, H)} "
                        f"(max rel. error {err:.1e}).")


_SEQ_MISTAKES = {
    "not_summed": "the weight gradients are not summed over time (dWx = ... instead of dWx += ...); "
                  "Wx, Wh and b are shared by every step.",
    "no_carry": "the gradient flowing back through the state is dropped: step t gets "
                "dh[:, t] + dprev_h (and, in an LSTM, dprev_c) from step t + 1.",
    "no_upstream": "only dh[:, -1] is used; every step's dh[:, t] flows in.",
}


def check_rnn_backward(forward, backward, case="public"):
    """rnn_backward(dh, cache) -> dx, dh0, dWx, dWh, db against numeric gradients of ``forward``."""
    return _sequence_backward("rnn_backward", forward, backward, case, 5)


def check_word_embedding_forward(fn, case="public"):
    """word_embedding_forward(x, W) -> out, cache on cs231n's test (with repeated words)."""
    name = "word_embedding_forward"
    numpy_only(fn, name, "the word embedding")
    exp = expected(name, case)
    x, W = embedding_inputs(case)
    out, _ = _unpack(call_fresh(fn, x, W), 2, name, "out, cache")
    err = _check_forward(name, out, exp, "out", {})
    return passed(name, f"out {exp['out'].shape} matches (rel. error {err:.1e}).")


def check_word_embedding_backward(forward, backward, case="public"):
    """word_embedding_backward(dout, cache) -> dW, numerically, with words that repeat."""
    name = "word_embedding_backward"
    numpy_only(backward, name, "the word embedding's backward pass")
    x, W = embedding_inputs(case)
    dout = np.random.default_rng(5).normal(size=x.shape + (W.shape[1],))
    _, cache = _unpack(call_fresh(forward, x, W), 2, "word_embedding_forward", "out, cache")
    dW = call(backward, *fresh(dout), cache, fn_name=name)
    if isinstance(dW, tuple):
        fail(name, f"should return dW alone, got a tuple of {len(dW)} values.")
    numeric = eval_numerical_gradient_array(_output_of(forward, [x, W], 1, 0), W.copy(), dout)
    no_accumulate = np.zeros_like(W)
    no_accumulate[x] += dout                       # what `dW[x] += dout` gives
    err = expect_close(dW, numeric, "dW", name, tol=GRAD_TOL, mistakes={
        "a word that appears twice gets its gradient once. `dW[x] += dout` does not "
        "accumulate repeated indices; look up np.add.at.": no_accumulate})
    return passed(name, f"dW matches the numeric gradient (rel. error {err:.1e}).")


def check_temporal_softmax_loss(fn, case="public"):
    """temporal_softmax_loss(x, y, mask) -> loss, dx: loss value and numeric gradient."""
    name = "temporal_softmax_loss"
    numpy_only(fn, name, "the softmax loss")
    exp = expected(name, case)
    x, y, mask = softmax_inputs(case)
    loss, dx = _unpack(call_fresh(fn, x, y, mask), 2, name, "loss, dx")
    loss = as_array(loss, "loss", name)
    if loss.size != 1:
        fail(name, f"loss should be a single number, got shape {loss.shape}.",
             "Sum over all masked time steps and divide by N.")
    expect_close(loss.reshape(()), exp["loss"], "loss", name, tol=FWD_TOL,
                 mistakes=mistakes_for(exp, "loss", {
                     "no_mask": "the mask is not applied: positions with mask == False "
                                "(<NULL> words) must not count.",
                     "no_divide": "the loss is not divided by N (the minibatch size).",
                     "divide_nt": "the loss is divided by N * T; cs231n divides by N only.",
                     "divide_mask": "the loss is divided by the number of real words; divide by N."}))
    numeric = eval_numerical_gradient(Outputs(fn, [x, y, mask], 0, 0), x.copy())
    err = expect_close(dx, numeric, "dx", name, tol=GRAD_TOL,
                       hint="dx = (softmax(x) - one_hot(y)) * mask / N at every (n, t).")
    return passed(name, f"loss and dx match (dx rel. error {err:.1e}).")
