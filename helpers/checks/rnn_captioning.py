"""Checkers for the ``rnn_captioning`` quiz (and the layers ``lstm_captioning`` reuses).

Forward functions are compared with expected values stored in
``data/expected/rnn_captioning.npz`` (rel. error < 1e-8). The public cases are
cs231n's ``np.linspace`` sanity checks, so the numbers match the ones printed in
cs231n's RNN_Captioning notebook; ``case="hidden"`` uses other shapes. Backward
functions are compared with centred-difference numeric gradients of the
student's own forward function (float64, rel. error < 1e-7), on any shape.
Known mistakes on the stored cases are named.

The expected file is written by ``tools/make_expected_captioning.py`` from the
reference solutions in ``solutions/``; nothing here contains a solution.
"""
from __future__ import annotations


import numpy as np

from ._compare import load_expected as _load_expected
from ._compare import (as_array, call, expect_close, expect_finite, expect_shape, fail, passed,
                       rel_error)

QUIZ = "rnn_captioning"
FWD_TOL = 1e-8
GRAD_TOL = 1e-7


def load_expected(quiz=QUIZ):
    """The stored expected arrays of a quiz, as a dict ``{"fn/case/name": array}``."""
    return _load_expected(quiz, "python tools/make_expected_captioning.py")


def expected(fn_name, case, quiz=QUIZ):
    """``{name: array}`` stored for ``fn_name`` on ``case``."""
    prefix = f"{fn_name}/{case}/"
    found = {k[len(prefix):]: v for k, v in load_expected(quiz).items() if k.startswith(prefix)}
    if not found:
        raise KeyError(f"no expected values for {fn_name!r} case {case!r} in {quiz}.npz")
    return found


def mistakes_for(exp, name, descriptions):
    """The stored mistake arrays ``exp["<name>~<key>"]``, keyed by their description."""
    return {text: exp[f"{name}~{key}"] for key, text in descriptions.items() if f"{name}~{key}" in exp}


def _unpack(result, count, fn_name, what):
    if not isinstance(result, (tuple, list)) or len(result) != count:
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else type(result).__name__
        fail(fn_name, f"should return {count} values ({what}), got {got}.")
    return result


# --------------------------------------------------------------------------- numeric gradients


def eval_numerical_gradient_array(f, x, df, h=1e-3):
    """Numeric gradient of array-valued f at x, contracted with df (fourth-order differences).

    Like cs231n's ``eval_numerical_gradient_array`` but with the five-point stencil
    (-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h: its error is ~1e-12 here instead of
    ~1e-10, so the rel. error < 1e-7 test also holds for small gradient entries.
    x: float64 array, changed in place during the evaluation and restored.
    Entries below 1e-10 (the method's accuracy) are returned as exact zeros.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for ix in np.ndindex(*x.shape):
        old = x[ix]
        vals = []
        for step in (2, 1, -1, -2):
            x[ix] = old + step * h
            vals.append(np.array(f(x), dtype=np.float64, copy=True))
        x[ix] = old
        grad[ix] = np.sum((-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) * df) / (12 * h)
    grad[np.abs(grad) < 1e-10] = 0.0      # below the stencil's accuracy: a true zero (unused word)
    return grad


def eval_numerical_gradient(f, x, h=1e-3):
    """Numeric gradient of a scalar function f at x (five-point stencil, see above)."""
    return eval_numerical_gradient_array(lambda v: np.asarray(f(v), dtype=np.float64), x, np.float64(1.0), h)


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
    exp = expected(name, case)
    next_h, _ = _unpack(call(fn, *rnn_step_inputs(case)), 2, name, "next_h, cache")
    err = _check_forward(name, next_h, exp, "next_h", {
        "no_tanh": "the tanh is missing: next_h = tanh(x @ Wx + prev_h @ Wh + b).",
        "no_bias": "the bias b is not added.",
        "swapped": "Wx and Wh are swapped: x goes with Wx, prev_h with Wh."})
    return passed(name, f"next_h matches (rel. error {err:.1e}).")


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
    N, D, H = STEP_SHAPES[case]
    x, h, Wx, Wh, b = random_inputs([(N, D), (N, H), (D, H), (H, H), (H,)], seed=sum(STEP_SHAPES[case]))
    dnext_h = random_inputs([(N, H)], seed=99)[0]
    _, cache = _unpack(call(forward, x, h, Wx, Wh, b), 2, "rnn_step_forward", "next_h, cache")
    grads = _unpack(call(backward, dnext_h, cache, fn_name=name), 5, name, "dx, dprev_h, dWx, dWh, db")
    args = [x, h, Wx, Wh, b]

    def f(i):
        return lambda v: forward(*args[:i], v, *args[i + 1:])[0]
    numeric = [eval_numerical_gradient_array(f(i), args[i].copy(), dnext_h) for i in range(5)]
    err = _grad_check(name, grads, numeric, ["dx", "dprev_h", "dWx", "dWh", "db"],
                      "Most likely: the tanh derivative is 1 - next_h**2, applied before the "
                      "matrix products; dx = da @ Wx.T, dWx = x.T @ da, db sums da over N.")
    return passed(name, f"all 5 gradients match numeric ones (max rel. error {err:.1e}).")


def check_rnn_forward(fn, case="public"):
    """rnn_forward(x, h0, Wx, Wh, b) -> h, cache, on cs231n's linspace test."""
    name = "rnn_forward"
    exp = expected(name, case)
    h, _ = _unpack(call(fn, *rnn_inputs(case)), 2, name, "h, cache")
    err = _check_forward(name, h, exp, "h", {
        "h0_every_step": "every step starts from h0; feed each step's next_h into the next step.",
        "h0_included": "h holds h0 and misses the last step: h[:, t] is the state after step t."})
    return passed(name, f"h {exp['h'].shape} matches (rel. error {err:.1e}).")


def _sequence_backward(name, forward, backward, case, n_out, gate_mul=1, quiz=QUIZ):
    N, T, D, H = SEQ_SHAPES[case]
    G = gate_mul * H
    x, h0, Wx, Wh, b = random_inputs([(N, T, D), (N, H), (D, G), (H, G), (G,)],
                                     seed=sum(SEQ_SHAPES[case]) + gate_mul)
    dh = random_inputs([(N, T, H)], seed=98)[0]
    fwd_name = name.replace("backward", "forward")
    _, cache = _unpack(call(forward, x, h0, Wx, Wh, b), 2, fwd_name, "h, cache")
    grads = _unpack(call(backward, dh, cache, fn_name=name), 5, name, "dx, dh0, dWx, dWh, db")
    args = [x, h0, Wx, Wh, b]

    def f(i):
        return lambda v: forward(*args[:i], v, *args[i + 1:])[0]
    numeric = [eval_numerical_gradient_array(f(i), args[i].copy(), dh) for i in range(5)]
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
    exp = expected(name, case)
    x, W = embedding_inputs(case)
    out, _ = _unpack(call(fn, x, W), 2, name, "out, cache")
    err = _check_forward(name, out, exp, "out", {})
    return passed(name, f"out {exp['out'].shape} matches (rel. error {err:.1e}).")


def check_word_embedding_backward(forward, backward, case="public"):
    """word_embedding_backward(dout, cache) -> dW, numerically, with words that repeat."""
    name = "word_embedding_backward"
    x, W = embedding_inputs(case)
    W = W.copy()
    dout = np.random.default_rng(5).normal(size=x.shape + (W.shape[1],))
    _, cache = _unpack(call(forward, x, W), 2, "word_embedding_forward", "out, cache")
    dW = call(backward, dout, cache, fn_name=name)
    if isinstance(dW, tuple):
        fail(name, f"should return dW alone, got a tuple of {len(dW)} values.")
    numeric = eval_numerical_gradient_array(lambda v: forward(x, v)[0], W, dout)
    no_accumulate = np.zeros_like(W)
    no_accumulate[x] += dout                       # what `dW[x] += dout` gives
    err = expect_close(dW, numeric, "dW", name, tol=GRAD_TOL, mistakes={
        "a word that appears twice gets its gradient once. `dW[x] += dout` does not "
        "accumulate repeated indices; look up np.add.at.": no_accumulate})
    return passed(name, f"dW matches the numeric gradient (rel. error {err:.1e}).")


def check_temporal_softmax_loss(fn, case="public"):
    """temporal_softmax_loss(x, y, mask) -> loss, dx: loss value and numeric gradient."""
    name = "temporal_softmax_loss"
    exp = expected(name, case)
    x, y, mask = softmax_inputs(case)
    loss, dx = _unpack(call(fn, x, y, mask), 2, name, "loss, dx")
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
    numeric = eval_numerical_gradient(lambda v: float(fn(v, y, mask)[0]), x.copy())
    err = expect_close(dx, numeric, "dx", name, tol=GRAD_TOL,
                       hint="dx = (softmax(x) - one_hot(y)) * mask / N at every (n, t).")
    return passed(name, f"loss and dx match (dx rel. error {err:.1e}).")


# --------------------------------------------------------------------------- the model


def model_fixed_case(model_class, cell_type="rnn"):
    """cs231n's fixed CaptioningRNN test: linspace parameters and features, float64.

    Returns (model, features, captions); cs231n's expected losses are 9.83235591003
    ('rnn') and 9.82445935443 ('lstm').
    """
    N, D, W, H = 10, 20, 30, 40
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    V, T = len(word_to_idx), 13
    model = model_class(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H,
                        cell_type=cell_type, dtype=np.float64)
    for k, v in model.params.items():
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    lo, hi = (-1.5, 0.3) if cell_type == "rnn" else (-0.5, 1.7)
    features = np.linspace(lo, hi, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % V).reshape(N, T)
    return model, features, captions


CS231N_LOSS = {"rnn": 9.83235591003, "lstm": 9.82445935443}


def small_model_case(model_class, cell_type="rnn", seed=0):
    """A small random model and minibatch with <NULL> padding, for gradient checks."""
    N, T, D, W, H = 3, 5, 4, 5, 6
    words = ["<NULL>", "<START>", "<END>", "a", "red", "circle", "above"]
    word_to_idx = {w: i for i, w in enumerate(words)}
    model = model_class(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H,
                        cell_type=cell_type, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for k, v in model.params.items():
        model.params[k] = rng.normal(size=v.shape) * 0.5
    features = rng.normal(size=(N, D))
    captions = rng.integers(3, len(words), size=(N, T))
    captions[:, 0] = 1
    captions[0, 3:], captions[1, 4:] = 0, 0        # <NULL> padding after the caption
    return model, features, captions


_LOSS_MISTAKES = {
    "no_mask": "<NULL> words count in the loss: pass mask = (captions_out != self._null).",
    "no_proj": "h0 should be the affine projection of the image features (W_proj, b_proj).",
}


def check_captioning_loss(model_class, cell_type="rnn", quiz=QUIZ):
    """CaptioningRNN.loss: cs231n's fixed loss value, then numeric gradients of every parameter."""
    name = "CaptioningRNN.loss"
    model, features, captions = model_fixed_case(model_class, cell_type)
    result = _unpack(call(model.loss, features, captions, fn_name=name), 2, name, "loss, grads")
    loss = float(as_array(result[0], "loss", name).reshape(-1)[0])
    exp = expected("captioning_loss", cell_type, quiz)
    expect_close(np.float64(loss), exp["loss"], "loss", name, tol=FWD_TOL,
                 mistakes=mistakes_for(exp, "loss", _LOSS_MISTAKES))
    err_cs231n = abs(loss - CS231N_LOSS[cell_type]) / CS231N_LOSS[cell_type]
    model, features, captions = small_model_case(model_class, cell_type)
    _, grads = model.loss(features, captions)
    if not isinstance(grads, dict):
        fail(name, f"grads should be a dict of parameter name -> gradient, got {type(grads).__name__}.")
    worst = 0.0
    for pname in sorted(model.params):
        if pname not in grads:
            fail(name, f"grads has no entry {pname!r}.", "Return a gradient for every parameter in self.params.")

        def f(_):
            return float(model.loss(features, captions)[0])
        numeric = eval_numerical_gradient(f, model.params[pname])
        arr = expect_shape(grads[pname], numeric.shape, f"grads[{pname!r}]", name)
        err = rel_error(arr, numeric)
        if err > GRAD_TOL:
            fail(name, f"grads[{pname!r}] does not match the numeric gradient (rel. error {err:.2g}).",
                 "Go through the backward passes in the reverse order of the forward ones; "
                 "every parameter's gradient comes from its own layer's backward.")
        worst = max(worst, err)
    return passed(name, f"loss {loss:.11g} matches cs231n's {CS231N_LOSS[cell_type]} "
                        f"(rel. error {err_cs231n:.1e}); all {len(grads)} gradients match numeric "
                        f"ones (max rel. error {worst:.1e}).")


SAMPLE_SEED = 2


def sample_case(model_class, cell_type="rnn"):
    """A fixed model (seeded normal parameters) with <START>/<END> and 4 feature vectors."""
    words = ["<NULL>", "<START>", "<END>", "a", "red", "circle", "above", "blue"]
    word_to_idx = {w: i for i, w in enumerate(words)}
    model = model_class(word_to_idx, input_dim=6, wordvec_dim=5, hidden_dim=7,
                        cell_type=cell_type, dtype=np.float64)
    rng = np.random.default_rng(SAMPLE_SEED)
    for k in sorted(model.params):
        model.params[k] = rng.normal(size=model.params[k].shape)
    features = rng.normal(size=(4, 6))
    return model, features


def check_captioning_sample(model_class, cell_type="rnn", quiz=QUIZ):
    """CaptioningRNN.sample: greedy captions of a fixed model equal the expected ones."""
    name = "CaptioningRNN.sample"
    model, features = sample_case(model_class, cell_type)
    exp = expected("captioning_sample", cell_type, quiz)
    got = as_array(call(model.sample, features, max_length=6, fn_name=name), "captions", name)
    expect_shape(got, exp["captions"].shape, "captions", name,
                 hint="Return an int array (N, max_length): the word chosen at each step.")
    if not np.array_equal(got, exp["captions"]):
        for key, text in {"start_every_step": "every step is fed <START>; feed the word sampled "
                                              "at the previous step.",
                          "no_proj": "the first hidden state should be the projected features "
                                     "(W_proj, b_proj)."}.items():
            if f"captions~{key}" in exp and np.array_equal(got, exp[f"captions~{key}"]):
                fail(name, "the sampled words differ from the expected ones.", f"Most likely: {text}")
        fail(name, f"the sampled words differ from the expected ones:\n    got      {got.tolist()}"
                   f"\n    expected {exp['captions'].tolist()}",
             "Start from h0 = features @ W_proj + b_proj and the <START> word; at each step "
             "embed the previous word, take one RNN step, score the vocabulary and pick the argmax.")
    return passed(name, f"greedy captions {got.shape} match.")
