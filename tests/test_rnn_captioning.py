"""rnn_captioning: the data set, the library, and the checkers (reference and alternative
solutions pass; each known mistake is rejected with its message); quality read from the
autograded reference notebook."""

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import load_tool
from helpers.checks import CheckFailed
from helpers.checks import rnn_captioning as checks

REPO = Path(__file__).resolve().parent.parent


def _tools():
    return load_tool("make_expected_captioning.py")


@pytest.fixture(scope="module")
def ref():
    """The reference solution: the solution cells of solutions/rnn_captioning."""
    return _tools().reference("rnn_captioning")


# --------------------------------------------------------------------------- data


def test_data_layout_and_vocabulary():
    from helpers.data.captioning import decode_captions, load_captioning_data, sample_coco_minibatch
    data = load_captioning_data()
    assert data["train_captions"].shape == (20000, 17) and data["val_captions"].shape == (2500, 17)
    assert data["train_features"].shape == (4000, 512) and data["val_features"].shape == (500, 512)
    assert data["train_images"].shape == (4000, 32, 32, 3)
    assert data["idx_to_word"][:3] == ["<NULL>", "<START>", "<END>"]
    assert 20 <= len(data["idx_to_word"]) <= 60
    assert all(data["word_to_idx"][w] == i for i, w in enumerate(data["idx_to_word"]))
    assert (data["train_captions"][:, 0] == 1).all()
    lengths = (data["train_captions"] != 0).sum(axis=1)
    assert lengths.min() < lengths.max() <= 17                     # variable lengths, padded
    first = decode_captions(data["train_captions"][:50], data["idx_to_word"])
    assert len(set(data["train_image_idxs"][:50])) == 50          # max_train=50: 50 images
    assert all(len(c.split()) >= 4 for c in first)
    small = load_captioning_data(max_train=50)
    assert small["train_captions"].shape == (50, 17)
    caps, feats, idxs = sample_coco_minibatch(data, 7, "val", rng=np.random.default_rng(0))
    assert caps.shape == (7, 17) and feats.shape == (7, 512)
    np.testing.assert_array_equal(feats, data["val_features"][idxs])
    with pytest.raises(KeyError, match="no split 'test'"):
        sample_coco_minibatch(data, 2, "test")


def test_generation_is_deterministic():
    from helpers.data import captioning as cap
    first, again = cap._split("val", 20), cap._split("val", 20)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key], err_msg=key)
    # The cached arrays are the generator's (same images as a fresh generation).
    np.testing.assert_array_equal(cap.load_captioning_data()["val_images"][:20], first["images"])


def test_bad_images_are_named():
    from helpers.data.captioning import extract_features
    with pytest.raises(ValueError, match=r"must be \(N, 32, 32, 3\)"):
        extract_features(np.zeros((2, 28, 28, 3)))


def test_library_layers_match_numeric_gradients():
    from helpers import captioning as lib
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 5)), rng.normal(size=5)
    dout = rng.normal(size=(2, 3, 5))
    out, cache = lib.temporal_affine_forward(x, w, b)
    dx, dw, db = lib.temporal_affine_backward(dout, cache)
    num = checks.eval_numerical_gradient_array
    assert checks.rel_error(dx, num(lambda v: lib.temporal_affine_forward(v, w, b)[0], x, dout)) < 1e-9
    assert checks.rel_error(dw, num(lambda v: lib.temporal_affine_forward(x, v, b)[0], w, dout)) < 1e-9
    assert checks.rel_error(db, num(lambda v: lib.temporal_affine_forward(x, w, v)[0], b, dout)) < 1e-9
    assert np.allclose(lib.sigmoid(np.array([-800.0, 0.0, 800.0])), [0, 0.5, 1])


# --------------------------------------------------------------------------- cs231n's numbers


def test_reference_reproduces_cs231n_published_values(ref):
    next_h, _ = ref["rnn_step_forward"](*checks.rnn_step_inputs())
    published = [[-0.58172089, -0.50182032, -0.41232771, -0.31410098],
                 [0.66854692, 0.79562378, 0.87755553, 0.92795967],
                 [0.97934501, 0.99144213, 0.99646691, 0.99854353]]
    assert checks.rel_error(next_h, published) < 1e-8
    h, _ = ref["rnn_forward"](*checks.rnn_inputs())
    published_h = [[[-0.42070749, -0.27279261, -0.11074945, 0.05740409, 0.22236251],
                    [-0.39525808, -0.22554661, -0.0409454, 0.14649412, 0.32397316],
                    [-0.42305111, -0.24223728, -0.04287027, 0.15997045, 0.35014525]],
                   [[-0.55857474, -0.39065825, -0.19198182, 0.02378408, 0.23735671],
                    [-0.27150199, -0.07088804, 0.13562939, 0.33099728, 0.50158768],
                    [-0.51014825, -0.30524429, -0.06755202, 0.17806392, 0.40333043]]]
    assert checks.rel_error(h, published_h) < 1e-7      # printed to 8 decimals: ~8e-8
    model, features, captions = checks.model_fixed_case(ref["CaptioningRNN"], "rnn")
    assert abs(model.loss(features, captions)[0] - 9.83235591003) < 1e-10


# --------------------------------------------------------------------------- the checkers


def _all_checks(ns, case):
    checks.check_rnn_step_forward(ns["rnn_step_forward"], case)
    checks.check_rnn_step_backward(ns["rnn_step_forward"], ns["rnn_step_backward"], case)
    checks.check_rnn_forward(ns["rnn_forward"], case)
    checks.check_rnn_backward(ns["rnn_forward"], ns["rnn_backward"], case)
    checks.check_word_embedding_forward(ns["word_embedding_forward"], case)
    checks.check_word_embedding_backward(ns["word_embedding_forward"], ns["word_embedding_backward"], case)
    checks.check_temporal_softmax_loss(ns["temporal_softmax_loss"], case)


@pytest.mark.parametrize("case", ["public", "hidden"])
def test_reference_passes_every_check(ref, case, capsys):
    _all_checks(ref, case)
    checks.check_captioning_loss(ref["CaptioningRNN"])
    checks.check_captioning_sample(ref["CaptioningRNN"])
    out = capsys.readouterr().out
    assert out.count("✔") == 9 and "✘" not in out


# Alternative correct solutions: dict caches, einsum, loops, other softmax spelling.

def alt_step_forward(x, prev_h, Wx, Wh, b):
    a = np.einsum("nd,dh->nh", x, Wx) + np.einsum("nk,kh->nh", prev_h, Wh) + b[None]
    return np.tanh(a), {"x": x, "h": prev_h, "Wx": Wx, "Wh": Wh, "a": a}


def alt_step_backward(dnext_h, cache):
    da = dnext_h / np.cosh(cache["a"]) ** 2
    return (da.dot(cache["Wx"].T), da.dot(cache["Wh"].T), np.einsum("nd,nh->dh", cache["x"], da),
            np.einsum("nk,nh->kh", cache["h"], da), np.einsum("nh->h", da))


def alt_forward(x, h0, Wx, Wh, b):
    hs, caches, h = [], [], h0
    for t in range(x.shape[1]):
        h, c = alt_step_forward(x[:, t, :], h, Wx, Wh, b)
        hs.append(h)
        caches.append(c)
    return np.stack(hs, axis=1), {"steps": caches, "D": x.shape[2]}


def alt_backward(dh, cache):
    grads = None
    dx = []
    carry = np.zeros_like(dh[:, 0])
    for t in range(dh.shape[1] - 1, -1, -1):
        g = alt_step_backward(dh[:, t] + carry, cache["steps"][t])
        dx.insert(0, g[0])
        carry = g[1]
        grads = g[2:] if grads is None else tuple(a + b for a, b in zip(grads, g[2:]))
    return (np.stack(dx, axis=1), carry) + grads


def alt_embed_forward(x, W):
    return np.take(W, x, axis=0), {"x": x, "V": W.shape[0]}


def alt_embed_backward(dout, cache):
    x = cache["x"]
    dW = np.zeros((cache["V"], dout.shape[-1]))
    for n in range(x.shape[0]):
        for t in range(x.shape[1]):
            dW[x[n, t]] += dout[n, t]
    return dW


def alt_softmax_loss(x, y, mask):
    from scipy.special import log_softmax, softmax
    N = x.shape[0]
    logp = log_softmax(x, axis=-1)
    picked = np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
    loss = -(picked * mask).sum() / N
    onehot = np.eye(x.shape[-1])[y]
    return loss, (softmax(x, axis=-1) - onehot) * mask[..., None] / N


def test_alternative_correct_solutions_pass():
    ns = dict(rnn_step_forward=alt_step_forward, rnn_step_backward=alt_step_backward,
              rnn_forward=alt_forward, rnn_backward=alt_backward,
              word_embedding_forward=alt_embed_forward, word_embedding_backward=alt_embed_backward,
              temporal_softmax_loss=alt_softmax_loss)
    for case in ("public", "hidden"):
        _all_checks(ns, case)


def _alt_model_class(ref):
    """A CaptioningRNN written with the alternative layers (and a loss over all steps)."""
    from helpers import captioning as lib

    class AltCaptioningRNN(lib.CaptioningModelBase):
        def loss(self, features, captions):
            p = self.params
            h0 = features @ p["W_proj"] + p["b_proj"]
            x, ce = alt_embed_forward(captions[:, :-1], p["W_embed"])
            h, cr = alt_forward(x, h0, p["Wx"], p["Wh"], p["b"])
            scores = h @ p["W_vocab"] + p["b_vocab"]
            loss, ds = alt_softmax_loss(scores, captions[:, 1:], captions[:, 1:] != self._null)
            g = {"W_vocab": np.einsum("nth,ntv->hv", h, ds), "b_vocab": ds.sum(axis=(0, 1))}
            dh = ds @ p["W_vocab"].T
            dx, dh0, g["Wx"], g["Wh"], g["b"] = alt_backward(dh, cr)
            g["W_embed"] = alt_embed_backward(dx, ce)
            g["W_proj"], g["b_proj"] = features.T @ dh0, dh0.sum(axis=0)
            return loss, g

        def sample(self, features, max_length=30):
            p = self.params
            h = features @ p["W_proj"] + p["b_proj"]
            words = [np.full(len(features), self._start)]
            for _ in range(max_length):
                h, _ = alt_step_forward(p["W_embed"][words[-1]], h, p["Wx"], p["Wh"], p["b"])
                words.append(np.argmax(h @ p["W_vocab"] + p["b_vocab"], axis=1))
            return np.stack(words[1:], axis=1)
    return AltCaptioningRNN


def test_alternative_model_passes(ref):
    cls = _alt_model_class(ref)
    checks.check_captioning_loss(cls)
    checks.check_captioning_sample(cls)


def _with(ref, **over):
    ns = dict(ref)
    ns.update(over)
    return ns


def test_unimplemented_is_reported():
    def todo(*args):
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.check_rnn_step_forward(todo)


@pytest.mark.parametrize("case", ["public", "hidden"])
def test_step_forward_mistakes_are_named(case):
    with pytest.raises(CheckFailed, match="tanh is missing"):
        checks.check_rnn_step_forward(lambda x, h, Wx, Wh, b: (x @ Wx + h @ Wh + b, None), case)
    with pytest.raises(CheckFailed, match="bias b is not added"):
        checks.check_rnn_step_forward(lambda x, h, Wx, Wh, b: (np.tanh(x @ Wx + h @ Wh), None), case)
    with pytest.raises(CheckFailed, match="should return 2 values"):
        checks.check_rnn_step_forward(lambda x, h, Wx, Wh, b: np.tanh(x @ Wx + h @ Wh + b), case)


def test_step_backward_wrong_derivative_fails(ref):
    def no_tanh_grad(dnext_h, cache):
        x, prev_h, Wx, Wh, next_h = cache
        return dnext_h @ Wx.T, dnext_h @ Wh.T, x.T @ dnext_h, prev_h.T @ dnext_h, dnext_h.sum(0)
    with pytest.raises(CheckFailed, match="dx does not match the numeric gradient"):
        checks.check_rnn_step_backward(ref["rnn_step_forward"], no_tanh_grad)


def test_forward_h0_every_step_is_named(ref):
    def h0_every(x, h0, Wx, Wh, b):
        outs = [ref["rnn_step_forward"](x[:, t], h0, Wx, Wh, b)[0] for t in range(x.shape[1])]
        return np.stack(outs, 1), None
    with pytest.raises(CheckFailed, match="every step starts from h0"):
        checks.check_rnn_forward(h0_every)


def _bad_backward(ref, kind):
    step = ref["rnn_step_backward"]

    def backward(dh, cache):
        N, T, H = dh.shape
        dx, dprev, acc = [], np.zeros((N, H)), None
        for t in reversed(range(T)):
            g = step(dh[:, t] + (0 if kind == "no_carry" else dprev), cache[t])
            dx.insert(0, g[0])
            dprev = g[1]
            acc = g[2:] if (acc is None or kind == "not_summed") else tuple(a + b for a, b in zip(acc, g[2:]))
        return (np.stack(dx, 1), dprev) + tuple(acc)
    return backward


@pytest.mark.parametrize("case", ["public", "hidden"])
def test_backward_not_summed_over_time_is_caught(ref, case):
    with pytest.raises(CheckFailed, match="not summed over time"):
        checks.check_rnn_backward(ref["rnn_forward"], _bad_backward(ref, "not_summed"), case)


def test_backward_not_carried_is_caught(ref):
    with pytest.raises(CheckFailed, match="gradient flowing back through the state is dropped"):
        checks.check_rnn_backward(ref["rnn_forward"], _bad_backward(ref, "no_carry"))


@pytest.mark.parametrize("case", ["public", "hidden"])
def test_embedding_backward_without_add_at_is_named(ref, case):
    def no_accumulate(dout, cache):
        x, shape = cache
        dW = np.zeros(shape)
        dW[x] += dout
        return dW
    with pytest.raises(CheckFailed, match="np.add.at"):
        checks.check_word_embedding_backward(ref["word_embedding_forward"], no_accumulate, case)


@pytest.mark.parametrize("case", ["public", "hidden"])
def test_softmax_loss_mistakes_are_named(ref, case):
    good = ref["temporal_softmax_loss"]
    with pytest.raises(CheckFailed, match="mask is not applied"):
        checks.check_temporal_softmax_loss(lambda x, y, m: good(x, y, np.ones_like(m)), case)
    with pytest.raises(CheckFailed, match="not divided by N"):
        checks.check_temporal_softmax_loss(lambda x, y, m: (good(x, y, m)[0] * len(x), good(x, y, m)[1]), case)
    with pytest.raises(CheckFailed, match=r"divided by N \* T"):
        checks.check_temporal_softmax_loss(
            lambda x, y, m: (good(x, y, m)[0] / x.shape[1], good(x, y, m)[1]), case)
    with pytest.raises(CheckFailed, match="dx"):
        checks.check_temporal_softmax_loss(lambda x, y, m: (good(x, y, m)[0], good(x, y, m)[1] * 2), case)


def test_model_without_mask_is_named(ref):
    softmax = ref["temporal_softmax_loss"]
    ns = _tools()._patched(dict(ref, __quiz__="rnn_captioning"),
                           temporal_softmax_loss=lambda x, y, m: softmax(x, y, np.ones_like(m)))
    with pytest.raises(CheckFailed, match="<NULL> words count in the loss"):
        checks.check_captioning_loss(ns["CaptioningRNN"])


def test_model_wrong_gradient_is_caught(ref):
    class Bad(ref["CaptioningRNN"]):
        def loss(self, features, captions):
            loss, grads = super().loss(features, captions)
            grads["Wh"] = grads["Wh"] * 0.5
            return loss, grads
    with pytest.raises(CheckFailed, match=r"grads\['Wh'\] does not match"):
        checks.check_captioning_loss(Bad)


def test_sample_start_every_step_is_named(ref):
    embed = ref["word_embedding_forward"]
    ns = _tools()._patched(dict(ref, __quiz__="rnn_captioning"), word_embedding_forward=lambda x, W: (
        embed(np.ones_like(x), W) if np.shape(x)[1] == 1 else embed(x, W)))
    with pytest.raises(CheckFailed, match="every step is fed <START>"):
        checks.check_captioning_sample(ns["CaptioningRNN"])


def test_checks_are_fast(ref):
    import time
    t0 = time.perf_counter()
    _all_checks(ref, "public")
    checks.check_captioning_loss(ref["CaptioningRNN"])
    checks.check_captioning_sample(ref["CaptioningRNN"])
    assert time.perf_counter() - t0 < 20          # ~1 s on an idle 2-core machine


def test_expected_file_is_up_to_date(ref):
    fresh = _tools().make_rnn()
    stored = checks.load_expected("rnn_captioning")
    assert set(fresh) == set(stored)
    for k, v in fresh.items():
        np.testing.assert_allclose(stored[k], v, rtol=1e-12, atol=0, err_msg=k)


# --------------------------------------------------------------------------- quality


RNN_BLEU_TARGET = 0.55


def rnn_bleu_from(demo_run):
    from conftest import autograded_notebook, cell_output_text
    text = cell_output_text(autograded_notebook(demo_run, "reference", "rnn_captioning"))
    overfit = float(re.search(GRADED_OVERFIT, text).group(1))
    bleu = float(re.search(r"RNN validation BLEU-4: ([0-9.]+)", text).group(1))
    return overfit, bleu


#: What the judged overfitting test prints (helpers/grading/caption_judge.py): the loss of the
#: trained parameters on 50 captions of new scenes, graded < 0.3; or, for a model that replays
#: as the reference's (the reference does), the reference's stored run's loss.
GRADED_OVERFIT = r"loss on them is ([0-9.]+) \(target < 0.3\)"
#: What it prints when the model replays (helpers/caption_replay.py).
REPLAYED = "graded replay on 50 new captions: your model trains exactly as the reference's"


def test_reference_rnn_quality(demo_run):
    from conftest import autograded_notebook, cell_output_text
    text = cell_output_text(autograded_notebook(demo_run, "reference", "rnn_captioning"))
    assert REPLAYED in text and "graded replay: your model trains exactly as the reference's" in text
    overfit, bleu = rnn_bleu_from(demo_run)
    assert overfit < 0.3, f"the RNN should overfit 50 new captions below 0.3, got {overfit}"
    assert bleu >= RNN_BLEU_TARGET, f"RNN validation BLEU-4 {bleu} < {RNN_BLEU_TARGET}"



# --------------------------------------------------------------------------- graded runs
# Shared by both quizzes (helpers.captioning); test_lstm_captioning.py reuses _notebook_recipe.


def _notebook_recipe(quiz, marker):
    """The recipe the notebook's training cell holding ``marker`` trains with (from its source).

    Returns a dict with the keys of helpers.captioning.RECIPES: the keyword arguments of its
    CaptioningRNN(...) and CaptioningSolver(...) calls, and max_train (from
    load_captioning_data(max_train=...) in that cell; None if the cell uses the full data).
    """
    import ast
    import json
    nb = json.loads((REPO / "solutions" / quiz / f"{quiz}.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"]
             if c["cell_type"] == "code" and marker in "".join(c["source"])]
    assert len(cells) == 1, f"{quiz}: {len(cells)} cells hold {marker!r}"
    found = {"max_train": None}
    for node in ast.walk(ast.parse(cells[0])):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "CaptioningRNN", "CaptioningSolver", "load_captioning_data"):
            found.update({k.arg: ast.literal_eval(k.value) for k in node.keywords
                          if isinstance(k.value, ast.Constant)})
            found.setdefault("calls", []).append(node.func.id)
    return found


@pytest.mark.parametrize("recipe, marker", [("overfit", "small_solver = CaptioningSolver("),
                                            ("full", "rnn_bleu = bleu4(")])
def test_graded_recipes_are_the_notebooks(recipe, marker):
    """The graded runs train exactly as the notebook's training cells do."""
    from helpers.captioning import RECIPES
    found = _notebook_recipe("rnn_captioning", marker)
    assert {"CaptioningRNN", "CaptioningSolver"} <= set(found.pop("calls"))
    assert found.pop("cell_type") == "rnn" and found.pop("seed") == 0 and found.pop("input_dim") == 512
    assert found == RECIPES[recipe]


def test_graded_results_are_the_notebooks_outside_grading(monkeypatch, ref):
    from types import SimpleNamespace

    from helpers import captioning, guard
    monkeypatch.setattr(guard, "_STATE", {})
    monkeypatch.delenv("COURSE_GRADING", raising=False)
    model_class = ref["CaptioningRNN"]
    mine = SimpleNamespace(loss_history=[3.0, 0.5, 0.05])
    assert captioning.graded_overfit_loss(model_class, "rnn", mine) == 0.05
    assert captioning.graded_bleu(model_class, "rnn", 0.61) == 0.61
    with pytest.raises(AssertionError, match=r"no training run of the RNN on 50 captions "
                                             r"\(small_solver\): run the training cell above first"):
        captioning.graded_overfit_loss(model_class, "rnn", None)
    with pytest.raises(AssertionError, match="run the training cell above first"):
        captioning.graded_overfit_loss(model_class, "rnn", SimpleNamespace(loss_history=[]))
    with pytest.raises(AssertionError, match=r"no BLEU-4 of the LSTM \(lstm_bleu\): run the training cell above"):
        captioning.graded_bleu(model_class, "lstm", None)
    with pytest.raises(ValueError, match="cell_type must be 'rnn' or 'lstm', got 'gru'"):
        captioning.graded_bleu(model_class, "gru", 0.61)


@pytest.fixture
def short_recipes(monkeypatch):
    """RECIPES cut to a few iterations (the real ones take 5-20 s each)."""
    from helpers import captioning
    monkeypatch.setitem(captioning.RECIPES, "overfit", dict(captioning.RECIPES["overfit"], num_iterations=30))
    monkeypatch.setitem(captioning.RECIPES, "full", dict(captioning.RECIPES["full"], num_iterations=30))
    return captioning


def _lazy_class(model_class):
    """model_class whose loss reports its true loss but zero gradients: it never learns."""
    class Lazy(model_class):
        def loss(self, features, captions):
            loss, grads = super().loss(features, captions)
            return loss, {k: np.zeros_like(v) for k, v in grads.items()}
    return Lazy


def test_graded_runs_train_again_and_ignore_forged_values(monkeypatch, capsys, ref, short_recipes):
    """When graded, values assigned by hand do not count: the runs are redone from the
    submission's class (here one that does not learn), with the fixed recipe and seed."""
    captioning = short_recipes
    monkeypatch.setenv("COURSE_GRADING", "1")
    forged_solver = type("Forged", (), {"loss_history": [0.0]})()
    lazy = _lazy_class(ref["CaptioningRNN"])
    loss = captioning.graded_overfit_loss(lazy, "rnn", forged_solver)
    assert loss > 10, f"a model that does not learn cannot reach {loss} on 50 captions"
    bleu = captioning.graded_bleu(lazy, "rnn", 0.99)
    assert bleu < 0.05
    out = capsys.readouterr().out
    assert "graded run: the RNN trained here from your Lazy on 50 captions (30 iterations of 25, seed 0)" in out
    assert "graded run: the RNN trained here from your Lazy on 20000 captions (30 iterations of 100, seed 0)" in out
    # The honest class learns in the same 30 iterations, reproducibly (seeded).
    good = captioning.graded_overfit_loss(ref["CaptioningRNN"], "rnn", forged_solver)
    assert good < loss - 3
    assert captioning.graded_overfit_loss(ref["CaptioningRNN"], "rnn", None) == good


def test_graded_runs_are_the_notebook_runs(ref, short_recipes):
    """train_recipe gives what the notebook's cell gives with the same settings (same seeds)."""
    from helpers import env
    from helpers.captioning import CaptioningSolver, RECIPES, train_recipe
    from helpers.data.captioning import load_captioning_data
    _, solver = train_recipe(ref["CaptioningRNN"], "rnn", "overfit", progress=False)
    r = RECIPES["overfit"]
    env.seed_everything(0)
    model = ref["CaptioningRNN"](load_captioning_data()["word_to_idx"], input_dim=512,
                                 wordvec_dim=r["wordvec_dim"], hidden_dim=r["hidden_dim"],
                                 cell_type="rnn", seed=0)
    again = CaptioningSolver(model, load_captioning_data(max_train=50), num_iterations=r["num_iterations"],
                             batch_size=r["batch_size"], learning_rate=r["learning_rate"],
                             lr_decay=r["lr_decay"], decay_every=r["decay_every"], progress=False)
    again.train()
    assert solver.loss_history == again.loss_history
    with pytest.raises(ValueError, match="unknown recipe 'tiny'"):
        train_recipe(ref["CaptioningRNN"], "rnn", "tiny")

def test_plots_return_figures():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from helpers.plots.captioning import show_captions, show_losses
    fig = show_losses({"a": [3.0, 2.0, 1.0]}, target=0.1)
    assert fig.axes[0].get_title() == "Training loss"
    fig2 = show_captions(np.zeros((3, 32, 32, 3)), ["a b", "c", "d"], ["x", "y", "z"], title="t")
    assert len(fig2.axes) == 4 and "model: a b" in fig2.axes[0].texts[0].get_text()
    plt.close("all")


# --------------------------------------------------------------------------- contracts (#19)

def _dict_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, {"Wh": Wh, "next_h": next_h, "x": x, "Wx": Wx, "prev_h": prev_h}


def _dict_step_backward(dnext_h, cache):
    dnext_h *= 1 - cache["next_h"] ** 2              # in place, on the argument
    return (dnext_h @ cache["Wx"].T, dnext_h @ cache["Wh"].T, cache["x"].T @ dnext_h,
            cache["prev_h"].T @ dnext_h, dnext_h.sum(axis=0))


def test_in_place_step_backward_with_a_dict_cache_passes():
    for case in ("public", "hidden"):
        checks.check_rnn_step_backward(_dict_step_forward, _dict_step_backward, case=case)


def test_reference_sequence_layers_and_model_use_only_the_contracts():
    """Step caches in another layout and an embedding that unpacks N, T = x.shape: the
    given (reference) rnn_backward and CaptioningRNN must still work."""
    def embed_loops(x, W):
        N, T = x.shape
        out = np.zeros((N, T, W.shape[1]))
        for n in range(N):
            for t in range(T):
                out[n, t] = W[x[n, t]]
        return out, (x, W.shape)
    ns = _tools().reference("rnn_captioning")
    ns.update(rnn_step_forward=_dict_step_forward, rnn_step_backward=_dict_step_backward,
              word_embedding_forward=embed_loops)
    for case in ("public", "hidden"):
        checks.check_rnn_backward(ns["rnn_forward"], ns["rnn_backward"], case=case)
        checks.check_captioning_loss(ns["CaptioningRNN"], case=case)
        checks.check_captioning_sample(ns["CaptioningRNN"], case=case)


def test_sample_is_compared_up_to_end(ref):
    """cs231n lets sample stop at <END>; the words after it are never read."""
    exp = checks.expected("captioning_sample", "rnn")["captions"]
    assert any(2 in row[:-1] for row in exp.tolist()), "the fixed case must end a caption early"

    class StopsAtEnd(ref["CaptioningRNN"]):
        def sample(self, features, max_length=30):
            out = super().sample(features, max_length)
            for row in out:
                ends = np.flatnonzero(row == self._end)
                if ends.size:
                    row[ends[0] + 1:] = self._null
            return out

    class WrongAfterEnd(StopsAtEnd):
        def sample(self, features, max_length=30):
            out = super().sample(features, max_length)
            out[:, 0] = self.word_to_idx["blue"]          # a different first word
            return out
    checks.check_captioning_sample(StopsAtEnd)
    checks.check_captioning_sample(StopsAtEnd, case="hidden")
    with pytest.raises(CheckFailed, match=r"differ from the expected ones \(compared up to <END>\)"):
        checks.check_captioning_sample(WrongAfterEnd)


def test_hidden_model_checks_name_their_mistakes(ref):
    class Coupled(ref["CaptioningRNN"]):
        def sample(self, features, max_length=30):       # normalises over the minibatch
            return super().sample(features - features.mean(axis=0), max_length)
    with pytest.raises(CheckFailed, match="changes with the minibatch"):
        checks.check_captioning_sample(Coupled, case="hidden")

    class NotAveraged(ref["CaptioningRNN"]):
        def loss(self, features, captions):
            loss, grads = super().loss(features, captions)
            n = len(features)
            return loss * n, {k: v * n for k, v in grads.items()}
    with pytest.raises(CheckFailed, match="divide the summed loss by N"):
        checks.check_captioning_loss(NotAveraged, case="hidden")

    class NaNGradients(ref["CaptioningRNN"]):        # a NaN error is not above a tolerance
        def loss(self, features, captions):
            loss, grads = super().loss(features, captions)
            return loss, {k: np.full(np.shape(v), np.nan) for k, v in grads.items()}
    with pytest.raises(CheckFailed, match=r"grads\['W_embed'\] holds NaN"):
        checks.check_captioning_loss(NaNGradients)

    class Constant(ref["CaptioningRNN"]):             # cs231n's value, constant elsewhere
        def loss(self, features, captions):
            return checks.CS231N_LOSS["rnn"], {k: np.zeros_like(v) for k, v in self.params.items()}
    with pytest.raises(CheckFailed, match="right on cs231n's fixed case but not on these inputs"):
        checks.check_captioning_loss(Constant)


def test_layers_from_tensorflow_or_stored_answers_earn_nothing():
    import tensorflow as tf

    def tf_step(x, prev_h, Wx, Wh, b):
        next_h = tf.tanh(x @ Wx + prev_h @ Wh + b).numpy()
        return next_h, None

    def answer_step(x, prev_h, Wx, Wh, b):
        return checks.expected("rnn_step_forward", "public")["next_h"], None
    with pytest.raises(CheckFailed, match="asks for the RNN step in NumPy; your function called tf.tanh"):
        checks.check_rnn_step_forward(tf_step)
    with pytest.raises(CheckFailed, match="your function called checks.expected"):
        checks.check_rnn_step_forward(answer_step)
