"""Library code for the captioning quizzes (``rnn_captioning``, ``lstm_captioning``).

What students do *not* write lives here, as in cs231n's ``layers.py``,
``rnn_layers.py`` (the given parts), ``optim.py`` and ``captioning_solver.py``:

- ``affine_forward/backward`` and ``temporal_affine_forward/backward``;
- :class:`CaptioningModelBase`: the parameters of cs231n's ``CaptioningRNN``
  (``__init__`` only; students write ``loss`` and ``sample`` in the notebook);
- :class:`CaptioningSolver`: minibatch Adam with a tqdm progress bar;
- :func:`bleu4`: corpus BLEU-4 of sampled captions with nltk's ``corpus_bleu``.

Plots of losses and of captions under images are in ``helpers.plots.captioning``.
"""
from __future__ import annotations

import numpy as np

from helpers.data.captioning import decode_captions, references_by_image
from helpers.rebuildable import in_another_kernel


# --------------------------------------------------------------------------- layers


def affine_forward(x, w, b):
    """out = x @ w + b.   x: (N, D), w: (D, M), b: (M,) -> out (N, M), cache."""
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    """dout: (N, M) -> dx (N, D), dw (D, M), db (M,)."""
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def temporal_affine_forward(x, w, b):
    """The same affine map at every time step (e.g. hidden states -> vocabulary scores).

    x: (N, T, D), w: (D, M), b: (M,). Returns out: (N, T, M) and cache.
    """
    n, t, d = x.shape
    out = (x.reshape(n * t, d) @ w).reshape(n, t, -1) + b
    return out, (x, w, b, out)


def temporal_affine_backward(dout, cache):
    """dout: (N, T, M) -> dx (N, T, D), dw (D, M), db (M,)."""
    x, w, b, _ = cache
    n, t, d = x.shape
    m = b.shape[0]
    dx = (dout.reshape(n * t, m) @ w.T).reshape(n, t, d)
    dw = x.reshape(n * t, d).T @ dout.reshape(n * t, m)
    db = dout.sum(axis=(0, 1))
    return dx, dw, db


def sigmoid(x):
    """Numerically stable logistic function, elementwise: 1 / (1 + exp(-x)) = (1 + tanh(x/2)) / 2."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def one_blas_thread():
    """A context manager that runs NumPy's BLAS on one thread.

    The matrices here are small; on a busy 2-core machine OpenBLAS' threads
    then cost far more than they give (we measured 100x slower steps).
    """
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1, user_api="blas")


# --------------------------------------------------------------------------- model


class CaptioningModelBase:
    """The parameters of cs231n's CaptioningRNN; subclasses add ``loss`` and ``sample``.

    word_to_idx: dict word -> index in [0, V); must hold '<NULL>' (and, to sample,
      '<START>' and '<END>').
    input_dim D: image feature size.  wordvec_dim W: word vector size.
    hidden_dim H: RNN hidden size.  cell_type: 'rnn' or 'lstm'.
    dtype: np.float32 for training, np.float64 for gradient checks.

    params: W_proj (D, H), b_proj (H,), W_embed (V, W), Wx (W, H) or (W, 4H) for
    'lstm', Wh (H, H) or (H, 4H), b (H,) or (4H,), W_vocab (H, V), b_vocab (V,).
    """

    def __init__(self, word_to_idx, input_dim=512, wordvec_dim=128, hidden_dim=128,
                 cell_type="rnn", dtype=np.float32, seed=None):
        if cell_type not in {"rnn", "lstm"}:
            raise ValueError(f'cell_type must be "rnn" or "lstm", got {cell_type!r}')
        if "<NULL>" not in word_to_idx:
            raise ValueError("word_to_idx must contain '<NULL>' (the padding token)")
        self.cell_type = cell_type
        self.dtype = dtype
        self.word_to_idx = word_to_idx
        self.idx_to_word = {i: w for w, i in word_to_idx.items()}
        self.params = {}
        vocab_size = len(word_to_idx)
        self._null = word_to_idx["<NULL>"]
        self._start = word_to_idx.get("<START>", None)
        self._end = word_to_idx.get("<END>", None)
        rng = np.random.default_rng(seed)
        dim_mul = {"lstm": 4, "rnn": 1}[cell_type]
        self.params["W_embed"] = rng.standard_normal((vocab_size, wordvec_dim)) / 100
        self.params["W_proj"] = rng.standard_normal((input_dim, hidden_dim)) / np.sqrt(input_dim)
        self.params["b_proj"] = np.zeros(hidden_dim)
        self.params["Wx"] = rng.standard_normal((wordvec_dim, dim_mul * hidden_dim)) / np.sqrt(wordvec_dim)
        self.params["Wh"] = rng.standard_normal((hidden_dim, dim_mul * hidden_dim)) / np.sqrt(hidden_dim)
        self.params["b"] = np.zeros(dim_mul * hidden_dim)
        self.params["W_vocab"] = rng.standard_normal((hidden_dim, vocab_size)) / np.sqrt(hidden_dim)
        self.params["b_vocab"] = np.zeros(vocab_size)
        for k, v in self.params.items():
            self.params[k] = v.astype(self.dtype)

    def loss(self, features, captions):
        raise NotImplementedError("write loss() in the notebook")

    def sample(self, features, max_length=30):
        raise NotImplementedError("write sample() in the notebook")


# --------------------------------------------------------------------------- training


def adam(w, dw, config):
    """One Adam step (cs231n's optim.adam). Returns (next_w, config)."""
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)
    config["t"] += 1
    config["m"] = config["beta1"] * config["m"] + (1 - config["beta1"]) * dw
    config["v"] = config["beta2"] * config["v"] + (1 - config["beta2"]) * dw ** 2
    mhat = config["m"] / (1 - config["beta1"] ** config["t"])
    vhat = config["v"] / (1 - config["beta2"] ** config["t"])
    return w - config["learning_rate"] * mhat / (np.sqrt(vhat) + config["epsilon"]), config


class CaptioningSolver:
    """Train a captioning model with minibatch Adam (cs231n's CaptioningSolver, shortened).

    model: has ``params`` (dict of arrays) and ``loss(features, captions) -> (loss, grads)``.
    data: the dict from ``load_captioning_data``.
    num_iterations, batch_size, learning_rate: the schedule; the learning rate is
      multiplied by ``lr_decay`` every ``decay_every`` iterations.
    grad_clip: clip every gradient to [-grad_clip, grad_clip] (None: no clipping).
    seed: seeds the minibatch sampler, so a run is reproducible.
    After ``train()``, ``loss_history`` holds one loss per iteration.
    """

    def __init__(self, model, data, num_iterations=1000, batch_size=100, learning_rate=5e-3,
                 lr_decay=1.0, decay_every=1000, grad_clip=None, seed=0, progress=True):
        self.model, self.data = model, data
        self.num_iterations, self.batch_size = int(num_iterations), int(batch_size)
        self.learning_rate, self.lr_decay, self.decay_every = learning_rate, lr_decay, decay_every
        self.grad_clip, self.progress = grad_clip, progress
        self.rng = np.random.default_rng(seed)
        self.loss_history = []
        self.configs = {k: {"learning_rate": learning_rate} for k in model.params}

    def step(self):
        """One minibatch update; returns the loss."""
        from helpers.data.captioning import sample_coco_minibatch
        captions, features, _ = sample_coco_minibatch(self.data, self.batch_size, "train", rng=self.rng)
        loss, grads = self.model.loss(features.astype(self.model.dtype), captions)
        if not np.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss} at iteration "
                                     f"{len(self.loss_history)}: lower the learning rate")
        for name, w in self.model.params.items():
            if name not in grads:
                raise KeyError(f"model.loss returned no gradient for parameter {name!r}")
            dw = grads[name]
            if self.grad_clip is not None:
                dw = np.clip(dw, -self.grad_clip, self.grad_clip)
            self.model.params[name], self.configs[name] = adam(w, dw, self.configs[name])
        self.loss_history.append(float(loss))
        return loss

    def train(self):
        """Run ``num_iterations`` updates with a progress bar; returns ``loss_history``."""
        from tqdm.auto import tqdm
        bar = tqdm(range(self.num_iterations), desc="training", disable=not self.progress,
                   mininterval=1.0)
        with one_blas_thread():
            self._run(bar)
        return self.loss_history

    def _run(self, bar):
        for it in bar:
            loss = self.step()
            if (it + 1) % self.decay_every == 0:
                for config in self.configs.values():
                    config["learning_rate"] *= self.lr_decay
            if it % 20 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")


# --------------------------------------------------------------------------- evaluation


def bleu4(model, data, split="val", max_length=16, batch_size=500):
    """Corpus BLEU-4 (nltk's ``corpus_bleu``, uniform weights) of the model's captions.

    Samples one caption per image of ``split`` with ``model.sample`` and scores it
    against all of that image's reference captions. Returns a float in [0, 1].
    """
    features = data[f"{split}_features"]
    sampled = []
    with one_blas_thread():
        for s in range(0, features.shape[0], batch_size):
            sampled += list(np.asarray(model.sample(features[s:s + batch_size].astype(model.dtype),
                                                    max_length=max_length)))
    return captions_bleu(sampled, data[f"{split}_captions"], data[f"{split}_image_idxs"], data["idx_to_word"])


def captions_bleu(sampled, captions, image_idxs, idx_to_word):
    """Corpus BLEU-4 (nltk's ``corpus_bleu``, uniform weights, smoothing method 1).

    Inputs:
    - sampled: (N, T) word indices, one sampled caption per image.
    - captions: (Nc, 17) the reference captions; image_idxs: (Nc,) the image of each.
    - idx_to_word: list of V words.
    Returns a float in [0, 1].
    """
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu
    hyps = [c.split() for c in decode_captions(np.asarray(sampled), idx_to_word)]
    refs = references_by_image(captions, image_idxs, len(hyps), idx_to_word)
    return float(corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method1))


# --------------------------------------------------------------------------- graded runs

#: The two training runs the quality tests grade, exactly as the notebooks' training cells
#: run them (``env.seed_everything(0)``, model seed 0, minibatch sampler seed 0):
#: "overfit" trains on the first 50 captions (50 images), "full" on all 20000.
RECIPES = {
    "overfit": dict(max_train=50, wordvec_dim=64, hidden_dim=128, num_iterations=400,
                    batch_size=25, learning_rate=1e-2, lr_decay=0.95, decay_every=20),
    "full": dict(max_train=None, wordvec_dim=64, hidden_dim=64, num_iterations=1000,
                 batch_size=100, learning_rate=5e-3, lr_decay=0.5, decay_every=333),
}
_NAMES = {"rnn": "RNN", "lstm": "LSTM"}


def train_recipe(model_class, cell_type, recipe, progress=True):
    """Build ``model_class`` and train it with ``RECIPES[recipe]`` (seed 0), as the notebook does.

    Inputs:
    - model_class: a CaptioningModelBase subclass with ``loss`` and ``sample`` (the
      notebook's CaptioningRNN).
    - cell_type: 'rnn' or 'lstm'.
    - recipe: 'overfit' or 'full' (a key of :data:`RECIPES`).
    Returns a tuple of:
    - model: the trained model (input_dim D = 512 features)
    - solver: its CaptioningSolver; ``solver.loss_history`` holds one loss per iteration
    """
    from helpers import env
    from helpers.data.captioning import load_captioning_data
    if cell_type not in _NAMES:
        raise ValueError(f"cell_type must be 'rnn' or 'lstm', got {cell_type!r}")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: expected one of {sorted(RECIPES)}")
    r = RECIPES[recipe]
    env.seed_everything(0)
    data = load_captioning_data(max_train=r["max_train"])
    model = model_class(data["word_to_idx"], input_dim=data["train_features"].shape[1],
                        wordvec_dim=r["wordvec_dim"], hidden_dim=r["hidden_dim"],
                        cell_type=cell_type, seed=0)
    solver = CaptioningSolver(model, data, num_iterations=r["num_iterations"],
                              batch_size=r["batch_size"], learning_rate=r["learning_rate"],
                              lr_decay=r["lr_decay"], decay_every=r["decay_every"],
                              progress=progress)
    solver.train()
    return model, solver


def _plain_params(model):
    """``model.params`` as a dict of float arrays (what crosses the judge's wire)."""
    return {str(name): np.asarray(value) for name, value in model.params.items()}


def graded_params(model_class, cell_type):
    """The parameters of the graded "full" recipe's model, trained from ``model_class`` (seed
    0): {name: array}. Under the grader's judge this runs in the student's kernel
    (:func:`helpers.rebuildable.beside`); the judge captions new scenes from them itself."""
    return _plain_params(train_recipe(model_class, cell_type, "full", progress=False)[0])


def overfit_params(model_class, cell_type, features, captions):
    """The parameters of ``model_class`` trained with the "overfit" recipe (seed 0) on the
    given captions: {name: array}.

    Inputs:
    - features: (N, 512) float32, one image per caption; captions: (N, 17) int32 word indices.
    Under the grader's judge this runs in the student's kernel, on captions the judge drew.
    """
    from helpers import env
    from helpers.data.captioning import load_captioning_data
    r = RECIPES["overfit"]
    features, captions = np.asarray(features, np.float32), np.asarray(captions, np.int32)
    env.seed_everything(0)
    data = dict(load_captioning_data(max_train=0), train_features=features, train_captions=captions,
                train_image_idxs=np.arange(len(captions), dtype=np.int32))
    model = model_class(data["word_to_idx"], input_dim=features.shape[1], wordvec_dim=r["wordvec_dim"],
                        hidden_dim=r["hidden_dim"], cell_type=cell_type, seed=0)
    CaptioningSolver(model, data, num_iterations=r["num_iterations"], batch_size=r["batch_size"],
                     learning_rate=r["learning_rate"], lr_decay=r["lr_decay"], decay_every=r["decay_every"],
                     progress=False).train()
    return _plain_params(model)


def _graded_run(model_class, cell_type, recipe, what):
    r = RECIPES[recipe]
    print(f"graded run: the {_NAMES[cell_type]} trained here from your {model_class.__name__} "
          f"on {what} ({r['num_iterations']} iterations of {r['batch_size']}, seed 0)")
    return train_recipe(model_class, cell_type, recipe)


def graded_overfit_loss(model_class, cell_type, notebook_solver):
    """The final training loss on 50 captions that the overfitting test grades.

    In a grading kernel (:func:`helpers.env.grading_kernel`): trains ``model_class`` here
    with ``RECIPES["overfit"]`` (seed 0) and returns its last loss; ``notebook_solver`` is
    ignored. Elsewhere: returns the last loss of ``notebook_solver``, the student's own run
    of the training cell (so the notebook does not train twice). Handed the grader's proxy
    of a class (under its judge): returns None; the judge's hidden test measures the model
    on captions it draws (:mod:`helpers.grading.caption_judge`).

    Inputs:
    - model_class: the notebook's CaptioningRNN class.
    - cell_type: 'rnn' or 'lstm'.
    - notebook_solver: the notebook's ``small_solver`` (has ``loss_history``), or None.
    Returns: a float, the loss of the last iteration (or None, above).
    """
    from helpers import env
    if cell_type not in _NAMES:
        raise ValueError(f"cell_type must be 'rnn' or 'lstm', got {cell_type!r}")
    if in_another_kernel(model_class):      # the judge's hidden test scores it
        return None
    if not env.grading_kernel():
        history = getattr(notebook_solver, "loss_history", None)
        return float(env.notebook_result(
            history[-1] if history else None,
            f"no training run of the {_NAMES[cell_type]} on 50 captions (small_solver): "
            "run the training cell above first"))
    _, solver = _graded_run(model_class, cell_type, "overfit", "50 captions")
    return float(solver.loss_history[-1])


def graded_bleu(model_class, cell_type, notebook_bleu):
    """The validation BLEU-4 that the quality test grades.

    In a grading kernel (:func:`helpers.env.grading_kernel`): trains ``model_class`` here
    with ``RECIPES["full"]`` (seed 0) and scores it with :func:`bleu4` on the 500 validation
    images; ``notebook_bleu`` is ignored. Elsewhere: returns ``notebook_bleu``, the score
    of the student's own run of the training cell. Handed the grader's proxy of a class
    (under its judge): returns None; the judge's hidden test scores the model on scenes it
    draws (:mod:`helpers.grading.caption_judge`).

    Inputs:
    - model_class: the notebook's CaptioningRNN class.
    - cell_type: 'rnn' or 'lstm'.
    - notebook_bleu: the notebook's ``rnn_bleu`` / ``lstm_bleu`` (a float), or None.
    Returns: a float in [0, 1] (or None, above).
    """
    from helpers import env
    from helpers.data.captioning import load_captioning_data
    if cell_type not in _NAMES:
        raise ValueError(f"cell_type must be 'rnn' or 'lstm', got {cell_type!r}")
    if in_another_kernel(model_class):      # the judge's hidden test scores it
        return None
    if not env.grading_kernel():
        return float(env.notebook_result(notebook_bleu, f"no BLEU-4 of the {_NAMES[cell_type]} "
                                         f"({cell_type}_bleu): run the training cell above first"))
    model, solver = _graded_run(model_class, cell_type, "full", "20000 captions")
    print(f"final training loss: {np.mean(solver.loss_history[-50:]):.3f}")
    return bleu4(model, load_captioning_data(), "val")
