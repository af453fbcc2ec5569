"""Write helpers/grading/stored/fcn_reference.npz: the reference's full runs of the FCN recipe.

Run from the repository root (about a CPU minute)::

    python tools/make_fcn_reference.py

Trains both graded networks (with and without skips) from the solution notebook's
``build_fcn`` with the recipe, exactly as a grading kernel does
(:func:`helpers.fcn_training.train_graded`), and stores their weights with the digest of the
files they depend on (:func:`helpers.grading.fcn_judge.inputs_digest`). A submission whose
network replays as the reference's (:mod:`helpers.fcn_replay`) is graded on these models.
Prints each network's validation IoU. Reference code is read from
solutions/upsampling_fcn/upsampling_fcn.ipynb, which is why this lives here and not in helpers/.
"""
from pathlib import Path
import sys

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers import env  # noqa: E402,F401

from helpers import fcn_training  # noqa: E402
from helpers.grading import fcn_judge  # noqa: E402


def main():
    build_fcn = fcn_judge.reference_build_fcn()
    arrays = {"measured_with": np.array(fcn_judge.inputs_digest())}
    models = {}
    for skips in (True, False):
        model, seconds, cpu = fcn_training.train_graded(build_fcn, skips)
        weights = model.get_weights()
        arrays[f"skips={skips}/count"] = np.array(len(weights))
        for i, w in enumerate(weights):
            arrays[f"skips={skips}/{i:03d}"] = np.asarray(w, np.float32)
        models[skips] = model
        print(f"skips={skips}: trained in {seconds:.0f} s ({cpu:.0f} CPU-s)")
    ious = fcn_training.validation_ious(models)
    for skips, iou in ious.items():
        arrays[f"skips={skips}/validation_iou"] = np.array(iou)
    np.savez_compressed(fcn_judge.REFERENCE, **arrays)
    print(f"validation mean IoU: with skips {ious[True]:.3f}, without {ious[False]:.3f}; "
          f"wrote {fcn_judge.REFERENCE.relative_to(ROOT)} ({fcn_judge.REFERENCE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
