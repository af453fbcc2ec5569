"""The judge's trained FCNs for ``upsampling_fcn``'s quality test: replay first, train only what differs.

    from helpers.grading.fcn_judge import judged_models
    models = judged_models(build_fcn)      # {True: keras.Model or proxy, False: ...}
    validation_ious(models)                 # as the quality test scores any two models

The quality cell runs in the grader's trusted kernel (:mod:`helpers.grading.judge`);
``build_fcn`` is a proxy of the student's function. For each network (with and without
skips), decided here:

1. **Replay.** The judge draws a fresh seed; the student's kernel builds the network with
   ``build_fcn``, sets its weights from that seed and takes a few steps of the recipe
   (:func:`helpers.fcn_replay.replay`), and returns the losses and the logits of images the
   seed generates, as data. The judge does the same with the solution notebook's
   ``build_fcn`` and compares (:func:`helpers.fcn_replay.replays_differ`). Within
   :data:`helpers.fcn_replay.TOLERANCE` the submission's network trains as the reference's,
   and the graded model is the reference's full run of the recipe, stored in
   ``helpers/grading/stored/fcn_reference.npz`` (its weights, loaded into the solution's network here).
2. **Full run.** Otherwise the network is trained in full in the student's kernel, as before
   (:func:`helpers.fcn_training.train_graded`); it stays there and answers masks.

Either way the IoUs are measured here, on validation images and fresh ones the judge draws.
No kernel can answer a replay on a fresh seed without computing what the reference network
computes, step by step: that is, without a correct network.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from helpers import fcn_replay, fcn_training
from helpers.checks._compare import fresh_seed
from helpers.data import segmentation
from helpers.rebuildable import beside

from .course import SOLUTIONS
from . import replays

SOLUTION = SOLUTIONS / "upsampling_fcn" / "upsampling_fcn.ipynb"
#: The reference's full runs of the recipe: per network, its trained weights (in the order of
#: the solution network's ``get_weights()``), and the digest of what they were made with.
REFERENCE = Path(__file__).resolve().parent / "stored" / "fcn_reference.npz"
#: What the stored runs depend on besides the solution's network: the recipe and training
#: loop, and the data generator. A change to any of them (or to the solution's ``build_fcn``
#: or ``conv_block``) needs ``python tools/make_fcn_reference.py`` again (about a CPU minute).
INPUTS = ("helpers/fcn_training.py", "helpers/data/segmentation.py")

_CACHE = {}


def _is_reference_cell(cell):
    return cell.source.lstrip().startswith("def conv_block")


def reference_build_fcn():
    """The solution notebook's ``build_fcn`` (with its ``conv_block``), run here once."""
    if "build_fcn" not in _CACHE:
        import keras
        import tensorflow as tf

        from helpers.authoring import solution_namespace
        ns = solution_namespace(SOLUTION, {"np": np, "tf": tf, "keras": keras},
                                grade_ids=["upsampling_fcn_fcn_impl"], include=_is_reference_cell)
        _CACHE["build_fcn"] = ns["build_fcn"]
    return _CACHE["build_fcn"]


def inputs_digest(root=None):
    """SHA-256 of :data:`INPUTS` and of the solution's ``conv_block`` and ``build_fcn`` cells:
    the stored runs hold while it is the one recorded with them."""
    import nbformat
    root = Path(root) if root else Path(__file__).resolve().parents[2]
    nb = nbformat.read(root / SOLUTION.relative_to(SOLUTIONS.parent), as_version=4)
    return replays.inputs_digest(root, INPUTS, [
        c.source for c in nb.cells if c.cell_type == "code" and (
            c.metadata.get("nbgrader", {}).get("grade_id") == "upsampling_fcn_fcn_impl" or _is_reference_cell(c))])


def stored_runs_hold():
    """Whether ``helpers/grading/stored/fcn_reference.npz`` was made with today's files (its digest)."""
    if "holds" not in _CACHE:
        _CACHE["holds"] = replays.recorded_digest(REFERENCE) == inputs_digest()
    return _CACHE["holds"]


def stored_model(skips):
    """The solution's network holding the weights of the reference's full run (``skips``)."""
    build_fcn = reference_build_fcn()
    model = build_fcn(segmentation.NUM_CLASSES, skips=bool(skips))
    with np.load(REFERENCE) as data:
        n = int(data[f"skips={bool(skips)}/count"])
        model.set_weights([data[f"skips={bool(skips)}/{i:03d}"] for i in range(n)])
    return model


def replay_verdict(build_fcn, skips, seed):
    """(True, how) when the network ``build_fcn`` makes trains as the reference's over the
    replay of ``seed``; else (False, why not). ``build_fcn`` may be a proxy (the student's
    kernel then replays, and its answer is checked here)."""
    def reference():
        if not stored_runs_hold():
            raise RuntimeError("its stored runs were made with other files")
        want = fcn_replay.replay(reference_build_fcn(), skips, seed)
        return want, want["start"]
    return replays.replay_verdict(reference, lambda: beside(build_fcn, fcn_replay.replay, skips, seed),
                                  differ=fcn_replay.replays_differ, starts_differ=fcn_replay.init_differs,
                                  steps=fcn_replay.STEPS, tolerance=fcn_replay.TOLERANCE,
                                  other_shapes="other weight shapes: another architecture")


def judged_models(build_fcn):
    """The two trained FCNs the quality test scores: {True: with skips, False: without}.

    build_fcn: the submission's function (a proxy under the judge). Each network replays
    first (:func:`replay_verdict`, on a seed drawn here); a network that trains as the
    reference's is graded as the reference's full run (:func:`stored_model`), any other is
    trained in full from ``build_fcn`` (where ``build_fcn`` lives) and graded as it comes out.
    """
    recipe = fcn_training.RECIPE
    seed = fresh_seed() % 2**31
    models = {}
    for skips in (True, False):
        t0 = time.perf_counter()
        same, how = replay_verdict(build_fcn, skips, seed)
        if same:
            try:
                models[skips] = stored_model(skips)
            except Exception as err:  # noqa: BLE001 - the grader's side: a full run instead
                same, how = False, f"the grader could not load its stored run ({type(err).__name__}: {err})"
        if same:
            print(f"skips={skips!s:5}: graded replay: your network trains exactly as the reference's: {how}. "
                  f"The recipe's full run ({recipe['epochs']} epochs of {recipe['num_train']} images, "
                  f"seed {recipe['seed']}), made once with the reference solution, is graded "
                  f"({time.perf_counter() - t0:.0f} s)")
            continue
        print(f"skips={skips!s:5}: graded replay: {how}; training the full recipe from your build_fcn "
              f"instead ({recipe['epochs']} epochs of {recipe['num_train']} images, batch "
              f"{recipe['batch_size']}, seed {recipe['seed']})")
        models[skips], seconds, cpu = beside(build_fcn, fcn_training.train_graded, skips)
        print(f"skips={skips!s:5}: trained in {float(seconds):.0f} s ({float(cpu):.0f} s CPU)")
    return models
