"""One place that quiets TensorFlow and seeds randomness.

Import this module *before* TensorFlow (every notebook's first code cell does
``from helpers import env``): TensorFlow reads its log settings when it is first
imported.
"""
import os
import random

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")      # no INFO/WARNING lines from C++
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")     # no oneDNN banner, reproducible sums
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

#: True inside an autograding run (the grading command sets COURSE_GRADING=1).
#: Notebooks may train for fewer steps then, and say so.
GRADING = os.environ.get("COURSE_GRADING", "") == "1"


def grading_kernel():
    """True in a kernel started by the grader: its guard is active, or COURSE_GRADING=1 now.

    For graded test cells that must recompute a result from the submission's functions
    instead of trusting a notebook global (a submission can assign any value to it, or
    ``env.GRADING = False``; the guard's state and the process environment are checked at
    call time).
    """
    from helpers import guard
    return guard.active() or os.environ.get("COURSE_GRADING", "") == "1"


def notebook_result(value, missing):
    """What a graded test uses outside a grading kernel: the notebook's own ``value``.

    The ``graded_*`` functions of the quiz modules recompute a result from the submission's
    functions when :func:`grading_kernel` is true; elsewhere they return the result of the
    student's run of a cell, through this function, so nothing is trained twice.

    Inputs:
    - value: the notebook's result (any object), or None when the cell has not run.
    - missing: the message of the AssertionError raised when ``value`` is None; it says
      which cell to run.
    """
    if value is None:
        raise AssertionError(missing)
    return value


def seed_everything(seed=0):
    """Seed Python, NumPy and, if it is imported, TensorFlow (so call it after importing
    TensorFlow). It does not import TensorFlow itself: the NumPy quizzes (the captioning
    notebooks) never load it, which saves each of their kernels ~5 CPU-s."""
    import sys

    import numpy as np
    random.seed(seed)
    np.random.seed(seed)
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].keras.utils.set_random_seed(seed)


def quiet_tensorflow():
    """Silence absl/TensorFlow Python-side warnings after TF is imported."""
    import logging
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover
        pass
