"""What the captioning checkers share: stored answers, fresh copies, numeric gradients, the model.

``rnn_captioning`` and ``lstm_captioning`` import from here (never the other way round):

- the stored expected values (``data/expected/<quiz>.npz``; :func:`expected`), marked as
  answer keys so that a student function that reads them earns nothing;
- :func:`fresh` / :func:`call_fresh`: every call into student code gets its own copies of
  the arrays, so code that updates an argument in place (``dnext_c += ...``) is judged on
  what it returns, and nothing the checker reuses can change;
- five-point numeric gradients (float64);
- the checks of ``CaptioningRNN.loss`` and ``CaptioningRNN.sample``, which talk to the
  model only through cs231n's interface: the constructor, ``params`` (set by assignment,
  as the solver does), ``loss(features, captions)`` and ``sample(features, max_length)``.
"""
from __future__ import annotations

import random

import numpy as np

from ._compare import load_expected as _load_expected
from ._compare import (as_array, call, expect_close, expect_finite, expect_shape, fail, fresh_seed, passed,
                       rel_error)
from ._numpy_only import answer_key, check_numpy_only

#: The functions students write in the captioning quizzes: each is judged by its own check,
#: so a NumPy check of one does not follow calls into another.
LAYERS = ("rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
          "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
          "word_embedding_forward", "word_embedding_backward", "temporal_softmax_loss")


def numpy_only(fn, name, what):
    """:func:`~helpers.checks._numpy_only.check_numpy_only` for a captioning layer or model."""
    check_numpy_only(fn, name, what, graded=LAYERS)

QUIZ = "rnn_captioning"
FWD_TOL = 1e-8
GRAD_TOL = 1e-7


@answer_key
def load_expected(quiz=QUIZ):
    """The stored expected arrays of a quiz, as a dict ``{"fn/case/name": array}``."""
    return _load_expected(quiz, "python tools/make_expected_captioning.py")


@answer_key
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


def fresh(*values):
    """Copies of the arrays among ``values`` (in tuples, lists and dicts too); other values
    as they are. Every call into student code gets its own, so an argument updated in place
    changes nothing the checker uses later."""
    out = []
    for v in values:
        if isinstance(v, np.ndarray):
            v = v.copy()
        elif isinstance(v, tuple) and hasattr(v, "_fields"):     # a namedtuple
            v = type(v)(*fresh(*v))
        elif isinstance(v, (tuple, list)):
            v = type(v)(fresh(*v))
        elif isinstance(v, dict):
            v = dict(zip(v, fresh(*v.values())))
        out.append(v)
    return out


def call_fresh(fn, *args, fn_name=None):
    """``call(fn, *copies of args)``: the student's function never sees our arrays."""
    return call(fn, *fresh(*args), fn_name=fn_name)


def unpack(result, count, fn_name, what):
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
    x: float64 array (not changed); f gets its own copy at every point. An ``f`` with a
    ``many`` method (:class:`Outputs`) is asked for all the points at once.
    Entries below 1e-10 (the method's accuracy) are returned as exact zeros.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    points = []
    for ix in np.ndindex(*x.shape):
        for step in (2, 1, -1, -2):
            v = x.copy()
            v[ix] = x[ix] + step * h
            points.append(v)
    many = getattr(f, "many", None)
    vals = many(points) if many is not None else [f(v) for v in points]
    if len(vals) != len(points):
        raise AssertionError(f"{len(vals)} answers for {len(points)} evaluations")
    vals = [np.array(v, dtype=np.float64, copy=True) for v in vals]
    grad = np.zeros_like(x)
    for j, ix in enumerate(np.ndindex(*x.shape)):
        a, b, c, d = vals[4 * j:4 * j + 4]
        grad[ix] = np.sum((-a + 8 * b - 8 * c + d) * df) / (12 * h)
    grad[np.abs(grad) < 1e-10] = 0.0      # below the stencil's accuracy: a true zero (unused word)
    return grad


def eval_numerical_gradient(f, x, h=1e-3):
    """Numeric gradient of a scalar function f at x (five-point stencil, see above)."""
    return eval_numerical_gradient_array(f, x, np.float64(1.0), h)


#: How many evaluations one request to the student's kernel carries, under the judge.
BATCH = 256


class Outputs:
    """v -> output ``k`` of ``fn`` with argument ``i`` set to v, every call on fresh copies.

    ``many(values)`` evaluates a list of points. Under the grader's judge ``fn`` lives in
    the student's kernel: the points then go there in batches (:func:`call_many`, one
    request per :data:`BATCH` calls instead of one each) and the outputs come back as
    data; the numeric gradient is computed here from them.
    """

    def __init__(self, fn, args, i, k):
        self.fn, self.args, self.i, self.k = fn, list(args), i, k

    def _arglist(self, v):
        return fresh(*self.args[:self.i]) + [v] + fresh(*self.args[self.i + 1:])

    def __call__(self, v):
        return self.fn(*self._arglist(v))[self.k]

    def many(self, values):
        run = getattr(self.fn, "__course_run__", None)
        if run is None:
            return [self(v) for v in values]
        return _in_batches(values, lambda chunk: run(
            __name__, "call_many", [self._arglist(v) for v in chunk], self.k), one=self)


#: How many points of each batch the judge asks for again, one plain call each, at random.
AUDITS = 2


def _in_batches(values, ask, one):
    """``ask(chunk)`` for each chunk of :data:`BATCH` values, the answers joined in order:
    under the judge, one request to the student's kernel per chunk.

    The batch runs course code in the student's kernel, where a submission can replace it;
    so :data:`AUDITS` points of each chunk, drawn here at random, are asked again through
    ``one(value)`` (a plain call of the student's function) and must agree exactly.
    """
    out = []
    for s in range(0, len(values), BATCH):
        chunk = values[s:s + BATCH]
        answers = list(ask(chunk))
        if len(answers) != len(chunk):
            raise AssertionError(f"{len(answers)} answers for {len(chunk)} evaluations")
        for j in random.Random(fresh_seed()).sample(range(len(chunk)), min(AUDITS, len(chunk))):
            again, batched = (np.asarray(a, np.float64) for a in (one(chunk[j]), answers[j]))
            if again.shape != batched.shape or not np.allclose(again, batched, rtol=1e-12,
                                                               atol=0, equal_nan=True):
                raise AssertionError("your kernel's answers for a batch of evaluations disagree "
                                     "with your function's own answer at the same point (were "
                                     "the course's helpers in your kernel changed?)")
        out += answers
    return out


def call_many(fn, arglists, k=None):
    """[fn(*args)[k] for args in arglists]: where ``fn`` lives (the student's kernel, under
    the judge), so a batch of evaluations costs one request. Its answers are data that the
    judge checks like any other; nothing here decides a grade."""
    out = []
    for args in arglists:
        result = fn(*args)
        out.append(result if k is None else result[k])
    return list(out)


def losses_with_param(model, pname, values, features, captions):
    """[model.loss(features, captions)[0] with model.params[pname] = v, for v in values],
    where the model lives; the parameter is put back afterwards (see :func:`call_many`)."""
    base = model.params[pname]
    try:
        out = []
        for v in values:
            model.params[pname] = v
            out.append(float(model.loss(*fresh(features, captions))[0]))
        return out
    finally:
        model.params[pname] = base


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

#: The seed of the hidden loss case, per cell type.
HIDDEN_LOSS_SEED = {"rnn": 3, "lstm": 4}


def hidden_loss_case(model_class, cell_type="rnn"):
    """The hidden loss case: :func:`small_model_case` with its own seed, every caption padded
    with two <NULL>. Returns (model, features, captions)."""
    model, features, captions = small_model_case(model_class, cell_type, seed=HIDDEN_LOSS_SEED[cell_type])
    captions[:, -2:] = model._null
    return model, features, captions


def model_loss(model, features, captions, name):
    """(loss as a float, grads) of ``model.loss`` on fresh copies of the inputs."""
    result = unpack(call_fresh(model.loss, features, captions, fn_name=name), 2, name, "loss, grads")
    return float(as_array(result[0], "loss", name).reshape(-1)[0]), result[1]


def numeric_param_gradient(model, pname, features, captions):
    """Numeric gradient of the loss in ``model.params[pname]``.

    The parameter is set by assignment (``model.params[pname] = value``, as the solver
    sets it) for every evaluation and put back afterwards.
    """
    class Losses:
        def many(self, values):
            run = getattr(model, "__course_run__", None)
            if run is None:
                return losses_with_param(model, pname, values, features, captions)
            return _in_batches(values, lambda chunk: run(
                __name__, "losses_with_param", pname, chunk, features, captions),
                one=lambda v: losses_with_param(model, pname, [v], features, captions)[0])
    return eval_numerical_gradient(Losses(), np.array(model.params[pname], dtype=np.float64, copy=True))


def _check_gradients(model, features, captions, name, where="", want_loss=None):
    """Every parameter's gradient against the numeric gradient of the model's own loss; the
    loss itself against ``want_loss`` (the reference's, on these inputs), so a loss that is
    right elsewhere but constant here (numeric gradients 0) cannot pass with zero gradients."""
    loss, grads = model_loss(model, features, captions, name)
    if want_loss is not None:
        expect_close(np.float64(loss), want_loss, f"loss{where}", name, tol=FWD_TOL,
                     hint="The loss is right on cs231n's fixed case but not on these inputs.")
    if not isinstance(grads, dict):
        fail(name, f"grads should be a dict of parameter name -> gradient, got {type(grads).__name__}.")
    worst = 0.0
    for pname in sorted(model.params):
        if pname not in grads:
            fail(name, f"grads has no entry {pname!r}.", "Return a gradient for every parameter in self.params.")
        numeric = numeric_param_gradient(model, pname, features, captions)
        arr = expect_shape(grads[pname], numeric.shape, f"grads[{pname!r}]", name)
        expect_finite(arr, f"grads[{pname!r}]", name)
        err = rel_error(arr, numeric)
        if not err <= GRAD_TOL:                           # a NaN error fails too
            fail(name, f"grads[{pname!r}] does not match the numeric gradient{where} (rel. error {err:.2g}).",
                 "Go through the backward passes in the reverse order of the forward ones; "
                 "every parameter's gradient comes from its own layer's backward.")
        worst = max(worst, err)
    return worst, len(grads)


def check_captioning_loss(model_class, cell_type="rnn", quiz=QUIZ, case="public"):
    """CaptioningRNN.loss: cs231n's fixed loss value, then numeric gradients of every parameter.

    case="hidden": other data, every caption padded with two <NULL>; the padding must not
    change the loss, and 4 copies of one caption must cost what that caption costs (/ N).
    """
    name = "CaptioningRNN.loss"
    numpy_only(model_class, name, "the model's loss and gradients")
    if case == "hidden":
        model, features, captions = hidden_loss_case(model_class, cell_type)
        padded, _ = model_loss(model, features, captions, name)   # the mistakes it names first
        short, _ = model_loss(model, features, captions[:, :-2], name)
        if not np.isclose(padded, short):
            fail(name, f"<NULL> padding changed the loss ({padded:.6g} with it, {short:.6g} without).",
                 "The mask must remove those positions: mask = (captions_out != self._null).")
        four, _ = model_loss(model, np.repeat(features[:1], 4, axis=0), np.repeat(captions[:1], 4, axis=0), name)
        one, _ = model_loss(model, features[:1], captions[:1], name)
        if not np.isclose(four, one):
            fail(name, f"4 copies of one caption cost {four:.6g}, the caption alone {one:.6g}.",
                 "Average over the minibatch: divide the summed loss by N.")
        want = expected("captioning_loss", f"{cell_type}_hidden", quiz)["loss"]
        worst, count = _check_gradients(model, features, captions, name, " (other data)", want)
        return passed(name, f"other data: all {count} gradients match (max rel. error {worst:.1e}); "
                            "padding and minibatch size handled.")
    model, features, captions = model_fixed_case(model_class, cell_type)
    loss, _ = model_loss(model, features, captions, name)
    exp = expected("captioning_loss", cell_type, quiz)
    expect_close(np.float64(loss), exp["loss"], "loss", name, tol=FWD_TOL,
                 mistakes=mistakes_for(exp, "loss", _LOSS_MISTAKES))
    err_cs231n = abs(loss - CS231N_LOSS[cell_type]) / CS231N_LOSS[cell_type]
    worst, count = _check_gradients(*small_model_case(model_class, cell_type), name,
                                    want_loss=expected("captioning_loss", f"{cell_type}_small", quiz)["loss"])
    return passed(name, f"loss {loss:.11g} matches cs231n's {CS231N_LOSS[cell_type]} "
                        f"(rel. error {err_cs231n:.1e}); all {count} gradients match numeric "
                        f"ones (max rel. error {worst:.1e}).")


SAMPLE_SEED = 2
SAMPLE_WORDS = ["<NULL>", "<START>", "<END>", "a", "red", "circle", "above", "blue"]


def sample_case(model_class, cell_type="rnn"):
    """A fixed model (seeded normal parameters) with <START>/<END> and 4 feature vectors."""
    word_to_idx = {w: i for i, w in enumerate(SAMPLE_WORDS)}
    model = model_class(word_to_idx, input_dim=6, wordvec_dim=5, hidden_dim=7,
                        cell_type=cell_type, dtype=np.float64)
    rng = np.random.default_rng(SAMPLE_SEED)
    for k in sorted(model.params):
        model.params[k] = rng.normal(size=model.params[k].shape)
    features = rng.normal(size=(4, 6))
    return model, features


def caption_words(captions):
    """Each row of sampled word indices as its words up to and including the first <END>.

    What a caption says: the words after <END> are never read (``decode_captions`` stops
    there), so a ``sample`` that stops at <END> and one that goes on agree.
    """
    rows = []
    for row in np.asarray(captions):
        words = []
        for t in row:
            words.append(SAMPLE_WORDS[int(t)] if 0 <= int(t) < len(SAMPLE_WORDS) else f"#{int(t)}")
            if words[-1] == "<END>":
                break
        rows.append(words)
    return rows


def _sample(model, features, max_length, name):
    got = as_array(call(model.sample, *fresh(features), max_length=max_length, fn_name=name), "captions", name)
    expect_shape(got, (len(features), max_length), "captions", name,
                 hint="Return an int array (N, max_length): the word chosen at each step.")
    return got


def check_captioning_sample(model_class, cell_type="rnn", quiz=QUIZ, case="public"):
    """CaptioningRNN.sample: greedy captions of a fixed model say what the expected ones say
    (compared up to <END>). case="hidden": another length, and each image's caption must
    not depend on the other images of the minibatch."""
    name = "CaptioningRNN.sample"
    numpy_only(model_class, name, "the model's sampling")
    model, features = sample_case(model_class, cell_type)
    if case == "hidden":
        together = caption_words(_sample(model, features, 9, name))
        for i in (2, 3):                               # the images with long captions
            alone = caption_words(_sample(model, features[i:i + 1], 9, name))[0]
            if together[i] != alone:
                fail(name, f"image {i}'s caption changes with the minibatch: "
                           f"{' '.join(together[i])!r} among 4 images, {' '.join(alone)!r} alone.",
                     "Each image's caption must depend on its own features only.")
        return passed(name, "captions of length 9; each image's caption depends on its features only.")
    exp = expected("captioning_sample", cell_type, quiz)
    got = caption_words(_sample(model, features, 6, name))
    want = caption_words(exp["captions"])
    if got != want:
        for key, text in {"start_every_step": "every step is fed <START>; feed the word sampled "
                                              "at the previous step.",
                          "no_proj": "the first hidden state should be the projected features "
                                     "(W_proj, b_proj)."}.items():
            if f"captions~{key}" in exp and got == caption_words(exp[f"captions~{key}"]):
                fail(name, "the sampled words differ from the expected ones.", f"Most likely: {text}")
        lines = "".join(f"\n    image {i}: got {' '.join(g)!r}, expected {' '.join(w)!r}"
                        for i, (g, w) in enumerate(zip(got, want)) if g != w)
        fail(name, f"the sampled words differ from the expected ones (compared up to <END>):{lines}",
             "Start from h0 = features @ W_proj + b_proj and the <START> word; at each step "
             "embed the previous word, take one RNN step, score the vocabulary and pick the argmax.")
    return passed(name, "greedy captions match (compared up to <END>).")
