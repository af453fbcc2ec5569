"""Write data/expected/{rnn,lstm}_captioning.npz from the reference solutions.

The reference functions are taken from the solution cells of
``solutions/<quiz>/<quiz>.ipynb`` (one source of truth); the known mistakes are
small mutations of them written below. Run from the course folder:

    python tools/make_expected_captioning.py

Keys are ``"<function>/<case>/<name>"``, mistakes ``"<function>/<case>/<name>~<mistake>"``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from helpers.grading.caption_judge import reference_namespace  # noqa: E402
from helpers.checks import lstm_captioning as L  # noqa: E402
from helpers.checks._captioning import hidden_loss_case, small_model_case  # noqa: E402
from helpers.checks import rnn_captioning as R  # noqa: E402

def reference(quiz):
    """Namespace holding the reference solution of ``quiz`` (its solution cells, executed; a
    new namespace on every call)."""
    return reference_namespace(quiz, cached=False)


def _seq_mistakes(step_backward, n_state):
    """rnn/lstm backward variants: weights not summed over time, state gradient not carried."""
    def make(kind):
        def backward(dh, cache):
            N, T, H = dh.shape
            D = cache[0][0].shape[1]
            G = cache[0][3].shape[1]
            dx = np.zeros((N, T, D))
            dWx, dWh, db = np.zeros((D, G)), np.zeros((H, G)), np.zeros(G)
            carry = [np.zeros((N, H)) for _ in range(n_state)]
            for t in reversed(range(T)):
                up = dh[:, t] if kind != "no_upstream" or t == T - 1 else np.zeros((N, H))
                if kind == "no_carry":
                    carry = [np.zeros((N, H)) for _ in range(n_state)]
                out = step_backward(up + carry[0], *carry[1:], cache[t])
                dx[:, t], carry = out[0], list(out[1:1 + n_state])
                gW = out[1 + n_state:]
                if kind == "not_summed":
                    dWx, dWh, db = gW
                else:
                    dWx, dWh, db = dWx + gW[0], dWh + gW[1], db + gW[2]
            return dx, carry[0], dWx, dWh, db
        return backward
    return {k: make(k) for k in list(R._SEQ_MISTAKES) + ["right"]}


def _sequence_case(quiz, name, forward, step_backward, n_state, gate_mul, out):
    for case, shape in R.SEQ_SHAPES.items():
        N, T, D, H = shape
        G = gate_mul * H
        args = R.random_inputs([(N, T, D), (N, H), (D, G), (H, G), (G,)], seed=sum(shape) + gate_mul)
        dh = R.random_inputs([(N, T, H)], seed=98)[0]
        _, cache = forward(*args)
        right = _seq_mistakes(step_backward, n_state)["right"](dh, cache)
        for key, bwd in _seq_mistakes(step_backward, n_state).items():
            for g, arr, ok in zip(["dx", "dh0", "dWx", "dWh", "db"], bwd(dh, cache), right):
                if key != "right" and R.rel_error(arr, ok) > 1e-6:   # only where it shows
                    out[f"{name}/{case}/{g}~{key}"] = arr


def _model_cases(ns, cell_type, out):
    cls = ns["CaptioningRNN"]
    model, features, captions = R.model_fixed_case(cls, cell_type)
    out[f"captioning_loss/{cell_type}/loss"] = np.float64(model.loss(features, captions)[0])
    # the loss where the gradients are checked, and on the hidden case (padded captions):
    # a loss that is right only on cs231n's fixed case (a constant) fails there
    model, features, captions = small_model_case(cls, cell_type)
    out[f"captioning_loss/{cell_type}_small/loss"] = np.float64(model.loss(features, captions)[0])
    model, features, captions = hidden_loss_case(cls, cell_type)
    out[f"captioning_loss/{cell_type}_hidden/loss"] = np.float64(model.loss(features, captions)[0])
    softmax, affine = ns["temporal_softmax_loss"], ns["affine_forward"]
    out[f"captioning_loss/{cell_type}/loss~no_mask"] = _patched_loss(
        ns, cell_type, temporal_softmax_loss=lambda x, y, mask: softmax(x, y, np.ones_like(mask)))
    out[f"captioning_loss/{cell_type}/loss~no_proj"] = _patched_loss(
        ns, cell_type, affine_forward=lambda x, w, b: (np.zeros((x.shape[0], w.shape[1])), (x, w)))
    model, features = R.sample_case(cls, cell_type)
    out[f"captioning_sample/{cell_type}/captions"] = np.asarray(model.sample(features, max_length=6))
    # sample_case: input_dim 6, hidden 7, '<START>' = 1.
    out[f"captioning_sample/{cell_type}/captions~no_proj"] = _patched_sample(
        ns, cell_type, affine_forward=lambda x, w, b: (
            (np.zeros((x.shape[0], w.shape[1])), None) if x.shape[1] == 6 else affine(x, w, b)))
    embed = ns["word_embedding_forward"]
    out[f"captioning_sample/{cell_type}/captions~start_every_step"] = _patched_sample(
        ns, cell_type, word_embedding_forward=lambda x, W: (
            embed(np.ones_like(x), W) if np.shape(x)[1] == 1 else embed(x, W)))


def _patched(ns, **patches):
    """Re-run the solution cells with some names replaced (to build a mistaken model)."""
    new = reference(ns["__quiz__"])
    new.update(patches)
    return new


def _patched_loss(ns, cell_type, **patches):
    new = _patched(ns, **patches)
    model, features, captions = R.model_fixed_case(new["CaptioningRNN"], cell_type)
    return np.float64(model.loss(features, captions)[0])


def _patched_sample(ns, cell_type, **patches):
    new = _patched(ns, **patches)
    model, features = R.sample_case(new["CaptioningRNN"], cell_type)
    return np.asarray(model.sample(features, max_length=6))


def make_rnn():
    ns = reference("rnn_captioning")
    ns["__quiz__"] = "rnn_captioning"
    out = {}
    for case in ("public", "hidden"):
        x, h, Wx, Wh, b = R.rnn_step_inputs(case)
        out[f"rnn_step_forward/{case}/next_h"] = ns["rnn_step_forward"](x, h, Wx, Wh, b)[0]
        out[f"rnn_step_forward/{case}/next_h~no_tanh"] = x @ Wx + h @ Wh + b
        out[f"rnn_step_forward/{case}/next_h~no_bias"] = np.tanh(x @ Wx + h @ Wh)
        if Wx.shape == Wh.shape:
            out[f"rnn_step_forward/{case}/next_h~swapped"] = np.tanh(x @ Wh + h @ Wx + b)
        x, h0, Wx, Wh, b = R.rnn_inputs(case)
        out[f"rnn_forward/{case}/h"] = ns["rnn_forward"](x, h0, Wx, Wh, b)[0]
        out[f"rnn_forward/{case}/h~h0_every_step"] = np.stack(
            [np.tanh(x[:, t] @ Wx + h0 @ Wh + b) for t in range(x.shape[1])], axis=1)
        full, _ = ns["rnn_forward"](x, h0, Wx, Wh, b)
        out[f"rnn_forward/{case}/h~h0_included"] = np.concatenate([h0[:, None], full[:, :-1]], axis=1)
        x, W = R.embedding_inputs(case)
        out[f"word_embedding_forward/{case}/out"] = ns["word_embedding_forward"](x, W)[0]
        x, y, mask = R.softmax_inputs(case)
        loss = ns["temporal_softmax_loss"]
        N, T = y.shape
        out[f"temporal_softmax_loss/{case}/loss"] = np.float64(loss(x, y, mask)[0])
        out[f"temporal_softmax_loss/{case}/loss~no_mask"] = np.float64(loss(x, y, np.ones_like(mask))[0])
        out[f"temporal_softmax_loss/{case}/loss~no_divide"] = np.float64(loss(x, y, mask)[0] * N)
        out[f"temporal_softmax_loss/{case}/loss~divide_nt"] = np.float64(loss(x, y, mask)[0] / T)
        out[f"temporal_softmax_loss/{case}/loss~divide_mask"] = np.float64(loss(x, y, mask)[0] * N / mask.sum())
    _sequence_case("rnn_captioning", "rnn_backward", ns["rnn_forward"], ns["rnn_step_backward"], 1, 1, out)
    _model_cases(ns, "rnn", out)
    return out


def _permute_gates(a, order):
    """Columns of a (..., 4H) rearranged so reading them in ``order`` gives i, f, o, g."""
    H = a.shape[-1] // 4
    blocks = {g: a[..., k * H:(k + 1) * H] for k, g in enumerate(L.GATES)}
    return np.concatenate([blocks[g] for g in order], axis=-1)


def make_lstm():
    ns = reference("lstm_captioning")
    ns["__quiz__"] = "lstm_captioning"
    step, fwd = ns["lstm_step_forward"], ns["lstm_forward"]
    sig = ns["sigmoid"]
    out = {}
    for case in ("public", "hidden"):
        x, h, c, Wx, Wh, b = L.lstm_step_inputs(case)
        nh, nc, _ = step(x, h, c, Wx, Wh, b)
        out[f"lstm_step_forward/{case}/next_h"], out[f"lstm_step_forward/{case}/next_c"] = nh, nc
        for order in L.WRONG_ORDERS:
            # A student reading the blocks in `order` computes, with their gate g_k = block k.
            inv = "".join(L.GATES[order.index(g)] for g in L.GATES)
            p = [_permute_gates(w, inv) for w in (Wx, Wh, b)]
            mh, mc, _ = step(x, h, c, *p)
            out[f"lstm_step_forward/{case}/next_h~order_{order}"] = mh
            out[f"lstm_step_forward/{case}/next_c~order_{order}"] = mc
        H = h.shape[1]
        a = x @ Wx + h @ Wh + b
        o = sig(a[:, 2 * H:3 * H])
        out[f"lstm_step_forward/{case}/next_h~no_tanh_c"] = o * nc
        x, h0, Wx, Wh, b = L.lstm_inputs(case)
        out[f"lstm_forward/{case}/h"] = fwd(x, h0, Wx, Wh, b)[0]
        for order in L.WRONG_ORDERS:
            inv = "".join(L.GATES[order.index(g)] for g in L.GATES)
            out[f"lstm_forward/{case}/h~order_{order}"] = fwd(x, h0, *[_permute_gates(w, inv) for w in (Wx, Wh, b)])[0]
        N, T, _ = x.shape
        out[f"lstm_forward/{case}/h~c_reset"] = np.stack(
            [_run_lstm(step, x, h0, Wx, Wh, b, reset_c=True)[:, t] for t in range(T)], axis=1)
        out[f"lstm_forward/{case}/h~h0_every_step"] = _run_lstm(step, x, h0, Wx, Wh, b, reset_h=True)
    _sequence_case("lstm_captioning", "lstm_backward", fwd, ns["lstm_step_backward"], 2, 4, out)
    _model_cases(ns, "lstm", out)
    return out


def _run_lstm(step, x, h0, Wx, Wh, b, reset_c=False, reset_h=False):
    N, T, _ = x.shape
    h, c = h0, np.zeros_like(h0)
    hs = []
    for t in range(T):
        nh, nc, _ = step(x[:, t], h0 if reset_h else h, np.zeros_like(h0) if reset_c else c, Wx, Wh, b)
        h, c = nh, nc
        hs.append(nh)
    return np.stack(hs, axis=1)


def main():
    target = REPO / "data" / "expected"
    target.mkdir(parents=True, exist_ok=True)
    for quiz, make in (("rnn_captioning", make_rnn), ("lstm_captioning", make_lstm)):
        arrays = make()
        np.savez_compressed(target / f"{quiz}.npz", **arrays)
        print(f"wrote {target / quiz}.npz ({len(arrays)} arrays)")


if __name__ == "__main__":
    main()
