"""Write helpers/grading/stored/caption_reference.npz: the reference's full runs of the captioning recipe.

Run from the repository root (about a CPU minute)::

    python tools/make_caption_reference.py

Trains the graded "full" recipe (:data:`helpers.captioning.RECIPES`, seed 0) from each
solution notebook's ``CaptioningRNN`` (RNN and LSTM), exactly as a grading kernel does
(:func:`helpers.captioning.graded_params`), and stores the trained parameters, and the
"overfit" recipe's loss and share of captions repeated on the notebook's 50 captions
(measured as the judge measures them), with the digest
of the files they depend on (:func:`helpers.grading.caption_judge.inputs_digest`). A model
that replays as the reference's (:mod:`helpers.caption_replay`) is measured with these. Prints
each model's BLEU-4 on the validation split. Reference code is read from solutions/, which is
why this lives here and not in helpers/.
"""
from pathlib import Path
import sys
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers import captioning  # noqa: E402
from helpers.data.captioning import load_captioning_data  # noqa: E402
from helpers.grading import caption_judge  # noqa: E402


def overfit_on_the_notebooks_captions(cls, cell_type):
    """(loss, share repeated word for word) of the "overfit" recipe's model on the notebook's
    50 captions, measured as the judge measures a model trained on new ones."""
    from helpers.data.captioning import MAX_LENGTH, decode_captions
    data = load_captioning_data(max_train=50)
    features = data["train_features"][data["train_image_idxs"]]
    captions = data["train_captions"]
    params = captioning.overfit_params(cls, cell_type, features, captions)
    loss, model = caption_judge._best_order(caption_judge._reference_model(cell_type, "overfit", params),
                                            features.astype(np.float64), captions)
    with captioning.one_blas_thread():
        sampled = model.sample(features.astype(np.float64), max_length=MAX_LENGTH - 1)
    pairs = zip(decode_captions(np.asarray(sampled), data["idx_to_word"]), decode_captions(captions, data["idx_to_word"]))
    return loss, float(np.mean([got == want for got, want in pairs]))


def main():
    arrays = {"measured_with": np.array(caption_judge.inputs_digest())}
    for cell_type, quiz in (("rnn", "rnn_captioning"), ("lstm", "lstm_captioning")):
        cls = caption_judge.reference_namespace(quiz)["CaptioningRNN"]
        t0 = time.process_time()
        params = captioning.graded_params(cls, cell_type)
        for name, value in params.items():
            arrays[f"{cell_type}/params/{name}"] = np.asarray(value, np.float32)     # half the bytes; BLEU alike
        model = caption_judge._reference_model(cell_type, "full", params)
        bleu = captioning.bleu4(model, load_captioning_data(), "val")
        print(f"{cell_type}: trained in {time.process_time() - t0:.0f} CPU-s, validation BLEU-4 {bleu:.3f}")
        fit = overfit_on_the_notebooks_captions(cls, cell_type)
        arrays[f"{cell_type}/overfit_loss"], arrays[f"{cell_type}/overfit_reproduced"] = map(np.array, fit)
        print(f"{cell_type}: overfit recipe on the notebook's 50 captions: loss {fit[0]:.4f}, "
              f"{100 * fit[1]:.0f}% repeated")
    np.savez_compressed(caption_judge.REFERENCE, **arrays)
    print(f"wrote {caption_judge.REFERENCE.relative_to(ROOT)} ({caption_judge.REFERENCE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
