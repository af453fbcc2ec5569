"""The judge's measures of the captioning notebooks' two training tests, on scenes it draws.

    from helpers.grading.caption_judge import judged_overfit, judged_bleu
    fit = judged_overfit(CaptioningRNN, "rnn")     # {"loss": float, "reproduced": float, "report": str}
    bleu = judged_bleu(CaptioningRNN, "rnn")       # float in [0, 1]

The captioning quality cells run in the grader's trusted kernel (:mod:`helpers.grading.judge`);
``CaptioningRNN`` is a proxy of the student's class. The student's kernel trains the graded
recipe with it and sends back only the trained **parameters** (``model.params``: the course's
contract, :class:`helpers.captioning.CaptioningModelBase`). The judge then measures them with
the solution notebook's model (``loss`` and ``sample``, run here) on new scenes it draws
(:func:`helpers.data.captioning.fresh_scenes`, a seed drawn as the test runs):

- **overfitting**: the judge sends 50 captions of new scenes; the student's kernel trains the
  "overfit" recipe on them (:func:`helpers.captioning.overfit_params`); the loss of the
  returned parameters on those captions, computed here, must be < 0.3 (the reference's, over
  25 draws: RNN 0.02-0.08, LSTM 0.05-0.16, where the notebook's own 50 captions give < 0.1).
  First the student's kernel replays 10 steps of that recipe on those captions from
  parameters the judge's seed draws (:mod:`helpers.caption_replay`); a model that trains as
  the reference's is given the reference's stored run on the notebook's 50 captions (loss
  0.028 RNN, 0.072 LSTM) and trains nothing.
- **BLEU-4**: the student's kernel first replays 10 steps of the "full" recipe from
  parameters the judge's seed draws (:mod:`helpers.caption_replay`), and the judge compares
  them with the reference's replay; a model that trains as the reference's is measured with
  the reference's full run (``helpers/grading/stored/caption_reference.npz``); any other trains the
  full recipe (:func:`helpers.captioning.graded_params`) and sends its parameters. The judge
  captions 1,000 new scenes from the parameters and scores them against those scenes'
  reference captions.

An LSTM may order its four gates otherwise than cs231n's i, f, o, g (its own step functions
then fail their cells, but it trains as well): its parameters are read in the gate order, of
the 24, under which they give the lowest loss on the scenes' captions (in the BLEU test: on the
first :data:`ORDER_SCENES` of them). A kernel can only pass with parameters that caption
scenes no one had seen, that is, a trained model.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from helpers import caption_replay, captioning
from helpers.checks._compare import fresh_seed
from helpers.data.captioning import MAX_LENGTH, decode_captions, fresh_scenes, load_captioning_data
from helpers.rebuildable import beside, plain_numbers

from .course import SOLUTIONS
from . import replays

#: New scenes the BLEU-4 is measured on (the notebook's validation split has 500). Measured
#: on the reference: RNN 0.609 on the validation split, 0.613-0.619 on five sets of 500 new
#: scenes; LSTM 0.678, and 0.675-0.689.
BLEU_SCENES = 1000
#: Captions of new scenes the overfitting test sends (the notebook's run uses 50).
OVERFIT_CAPTIONS = 50
#: Scenes whose captions choose an LSTM's gate order in the BLEU test (of its 1,000). Measured on
#: the full recipe's models (the reference, gates_in_order_ifgo and step_backward_drops_dnext_c
#: of tests/students, three draws each): the right order's loss is 6.0-8.7, the next best's
#: 8.0-10.6, on 50, 100 or 1,000 scenes alike; always the same order. 24 losses on 1,000 scenes
#: cost 6 CPU-s.
ORDER_SCENES = 100

_QUIZ = {"rnn": "rnn_captioning", "lstm": "lstm_captioning"}
_NAMES = {"rnn": "RNN", "lstm": "LSTM"}
#: The reference's runs: the "full" recipe's trained parameters of each cell type
#: ("rnn/params/W_embed", ...), the "overfit" recipe's loss and share of captions repeated on
#: the notebook's 50 ("rnn/overfit_loss", "rnn/overfit_reproduced"), and the digest of what
#: they were made with ("measured_with").
REFERENCE = Path(__file__).resolve().parent / "stored" / "caption_reference.npz"
#: What the stored runs depend on besides the solutions' answer cells: the recipe and solver,
#: and the data generator. A change to any of them needs ``python tools/make_caption_reference.py``.
INPUTS = ("helpers/captioning.py", "helpers/data/captioning.py")
_PREAMBLE = ("import numpy as np\n"
             "from helpers.captioning import (CaptioningModelBase, affine_forward, affine_backward,\n"
             "                                temporal_affine_forward, temporal_affine_backward, sigmoid)\n")
_CACHE = {}


def reference_namespace(quiz, cached=True):
    """The solution notebook's answer cells of ``quiz``, run here: dict name -> object (a new
    namespace each call with ``cached=False``, e.g. to swap a function in)."""
    if quiz not in _CACHE or not cached:
        from helpers.authoring import solution_namespace
        ns = {}
        exec(_PREAMBLE, ns)
        ns = solution_namespace(SOLUTIONS / quiz / f"{quiz}.ipynb", ns)
        if not cached:
            return ns
        _CACHE[quiz] = ns
    return _CACHE[quiz]


def _reference_model(cell_type, recipe, params):
    """The solution's CaptioningRNN of ``recipe``'s sizes holding ``params`` (checked: the
    contract's names and shapes, finite numbers), in float64."""
    r = captioning.RECIPES[recipe]
    data = load_captioning_data(max_train=0)
    model = reference_namespace(_QUIZ[cell_type])["CaptioningRNN"](
        data["word_to_idx"], input_dim=data["val_features"].shape[1], wordvec_dim=r["wordvec_dim"],
        hidden_dim=r["hidden_dim"], cell_type=cell_type, dtype=np.float64, seed=0)
    if not isinstance(params, dict) or set(params) != set(model.params):
        got = sorted(map(str, params))[:12] if isinstance(params, dict) else type(params).__name__
        raise AssertionError(f"the trained model's params are {got}, expected {sorted(model.params)}")
    for name, want in model.params.items():
        value = params[name]
        if not plain_numbers(value):                                # data only, no proxy
            raise AssertionError(f"params[{name!r}] is not an array of numbers")
        value = value.astype(np.float64)
        if value.shape != want.shape or not np.all(np.isfinite(value)):
            raise AssertionError(f"params[{name!r}] has shape {value.shape}, expected {want.shape} "
                                 "(finite numbers)")
        model.params[name] = value
    return model


def _gate_orders(model):
    """The model with its LSTM gate blocks in each of the 24 orders (an RNN: itself once)."""
    if model.cell_type != "lstm":
        yield model
        return
    blocks = {k: np.split(model.params[k], 4, axis=-1) for k in ("Wx", "Wh", "b")}
    for order in itertools.permutations(range(4)):
        for k, parts in blocks.items():
            model.params[k] = np.concatenate([parts[i] for i in order], axis=-1)
        yield model


def _best_order(model, features, captions):
    """(loss, model in the gate order with the lowest loss on ``captions``)."""
    best = None
    with captioning.one_blas_thread():
        for m in _gate_orders(model):
            loss = float(m.loss(features, captions)[0])
            loss = loss if np.isfinite(loss) else np.inf
            if best is None or loss < best[0]:
                best = (loss, {k: v.copy() for k, v in m.params.items()})
    model.params.update(best[1])
    return best[0], model


def judged_overfit(model_class, cell_type):
    """Train ``model_class`` (the student's, a proxy under the judge) on 50 captions of new
    scenes, in the student's kernel; measure the parameters it returns here.

    Returns {"loss": the loss of the trained parameters on the 50 captions (float),
    "reproduced": the share of the 50 captions their greedy captions repeat word for word,
    "report": both in a sentence}. Raises AssertionError when no parameters come back.
    First the model replays a few steps of the recipe on those captions (:func:`replay_verdict`);
    one that trains as the reference's is given the reference's stored run on the notebook's
    50 captions (its loss and share) instead, and trains nothing.
    """
    scenes = fresh_scenes(fresh_seed() % 2**31, OVERFIT_CAPTIONS)
    features = scenes["features"].astype(np.float64)
    captions = scenes["captions"][:OVERFIT_CAPTIONS]           # the first caption of each scene
    r = captioning.RECIPES["overfit"]
    same, how = replay_verdict(model_class, cell_type, fresh_seed() % 2**31, "overfit",
                               scenes["features"], captions)
    if same:
        with np.load(REFERENCE) as data:
            loss, reproduced = float(data[f"{cell_type}/overfit_loss"]), float(data[f"{cell_type}/overfit_reproduced"])
        return {"loss": loss, "reproduced": reproduced,
                "report": f"graded replay on 50 new captions: your model trains exactly as the reference's: {how}. "
                          f"The reference's run of the recipe ({r['num_iterations']} iterations of "
                          f"{r['batch_size']}, seed 0) on the notebook's 50 captions, made once, is graded: "
                          f"its loss on them is {loss:.4f} (target < 0.3) and its captions repeat "
                          f"{100 * reproduced:.0f}% of them word for word"}
    print(f"graded replay: {how}; training the recipe on the 50 new captions instead")
    params = beside(model_class, captioning.overfit_params, cell_type, scenes["features"], captions)
    loss, model = _best_order(_reference_model(cell_type, "overfit", params), features, captions)
    idx_to_word = load_captioning_data(max_train=0)["idx_to_word"]
    with captioning.one_blas_thread():
        sampled = model.sample(features, max_length=MAX_LENGTH - 1)
    pairs = zip(decode_captions(np.asarray(sampled), idx_to_word), decode_captions(captions, idx_to_word))
    reproduced = float(np.mean([got == want for got, want in pairs]))
    return {"loss": loss, "reproduced": reproduced,
            "report": f"graded: trained on 50 new captions, the model's loss on them is {loss:.4f} "
                      f"(target < 0.3); its captions of their scenes repeat {100 * reproduced:.0f}% "
                      "of them word for word"}


def stored_runs_hold():
    """Whether ``helpers/grading/stored/caption_reference.npz`` was made with today's files (its digest)."""
    if "holds" not in _CACHE:
        _CACHE["holds"] = replays.recorded_digest(REFERENCE) == inputs_digest()
    return _CACHE["holds"]


def stored_params(cell_type):
    """The parameters of the reference's full run of the "full" recipe (``cell_type``), as
    made by ``tools/make_caption_reference.py``: {name: float64 array}."""
    with np.load(REFERENCE) as data:
        return {key.split("/", 2)[2]: data[key].astype(np.float64)
                for key in data.files if key.startswith(f"{cell_type}/params/")}


def inputs_digest(root=None):
    """SHA-256 of :data:`INPUTS` and of both captioning solution notebooks' answer cells: the
    stored full runs hold while it is the one recorded with them."""
    import nbformat
    root = Path(root) if root else Path(__file__).resolve().parents[2]
    sources = []
    for quiz in sorted(_QUIZ.values()):
        nb = nbformat.read(root / "solutions" / quiz / f"{quiz}.ipynb", as_version=4)
        sources += [c.source for c in nb.cells
                    if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
    return replays.inputs_digest(root, INPUTS, sources)


def replay_verdict(model_class, cell_type, seed, recipe="full", features=None, captions=None):
    """(True, how) when ``model_class`` (the student's, a proxy under the judge) trains as
    the reference over the replay of ``seed`` (:mod:`helpers.caption_replay`, run where the
    class lives, checked here; ``recipe``, ``features``, ``captions`` as there); else (False,
    why not)."""
    def reference():
        if not stored_runs_hold():
            raise RuntimeError("its stored runs were made with other files")
        cls = reference_namespace(_QUIZ[cell_type])["CaptioningRNN"]
        want = caption_replay.replay(cls, cell_type, seed, recipe, features, captions)
        return want, caption_replay.start_params({k: v.shape for k, v in want["params"].items()}, seed)
    def submission():
        return beside(model_class, caption_replay.replay, cell_type, seed, recipe, features, captions)
    return replays.replay_verdict(reference, submission,
                                  differ=caption_replay.replays_differ, starts_differ=caption_replay.init_differs,
                                  steps=caption_replay.STEPS, tolerance=caption_replay.TOLERANCE,
                                  other_shapes="other parameters, or not numbers")


def judged_bleu(model_class, cell_type):
    """BLEU-4 on :data:`BLEU_SCENES` new scenes of the "full" recipe's model; the captions and
    their score are computed here. The model: when ``model_class`` replays as the reference
    (:func:`replay_verdict`, on a seed drawn here), the reference's stored full run
    (:func:`stored_params`); otherwise the recipe trained in full from ``model_class`` in the
    student's kernel, its parameters sent back as data. Returns a float in [0, 1]."""
    r = captioning.RECIPES["full"]
    same, how = replay_verdict(model_class, cell_type, fresh_seed() % 2**31)
    if same:
        print(f"graded replay: your model trains exactly as the reference's: {how}. The recipe's full "
              f"run ({r['num_iterations']} iterations of {r['batch_size']}, seed 0), made once with the "
              "reference solution, is what the new scenes are captioned with")
        params = stored_params(cell_type)
    else:
        print(f"graded replay: {how}; training the full recipe from your {_NAMES[cell_type]} instead "
              f"({r['num_iterations']} iterations of {r['batch_size']}, seed 0)")
        params = beside(model_class, captioning.graded_params, cell_type)
    model = _reference_model(cell_type, "full", params)
    scenes = fresh_scenes(fresh_seed() % 2**31, BLEU_SCENES)
    features = scenes["features"].astype(np.float64)
    _, model = _best_order(model, features[:ORDER_SCENES], scenes["captions"][:ORDER_SCENES])
    with captioning.one_blas_thread():
        sampled = model.sample(features, max_length=MAX_LENGTH - 1)
    return captioning.captions_bleu(sampled, scenes["captions"], scenes["image_idxs"],
                                    load_captioning_data(max_train=0)["idx_to_word"])
