"""The building blocks of every student-facing checker.

A checker (``check_<fn>(fn)`` in ``helpers/checks/<quiz>.py``) calls the student's
function on small fixed inputs, then uses these helpers in order: shape first,
then values, then known mistakes. Each helper raises :class:`CheckFailed` (an
``AssertionError``, so nbgrader counts it as a failed test) with a message that
says what is wrong and, where we can tell, the likely cause. On success the
checker calls :func:`passed`, which prints one ``✔`` line.

Example message::

    ✘ word_embedding_backward: shape (5, 3) is right but values are off (rel. error 0.33).
      Most likely: a word that appears twice gets its gradient once.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

#: Where each quiz's stored reference values live: data/expected/<quiz>.npz.
EXPECTED_DIR = Path(__file__).resolve().parents[2] / "data" / "expected"

OK = "\u2714"     # ✔
FAIL = "\u2718"   # ✘


#: Set only in the grader's judge, before each test cell (helpers/grading/draws.py): the
#: next draw of a stream keyed by the course's secret and the submission, so that a regrade
#: draws the same cases. None anywhere else.
DRAWS = None


def fresh_seed():
    """A seed no one knew before this call (the checker's own draw of a fresh case: a
    kernel cannot answer it from a table): a 63-bit int."""
    if DRAWS is not None:
        return DRAWS()
    import secrets
    return secrets.randbits(63)


class CheckFailed(AssertionError):
    """A check that did not pass; the message is meant for the student."""


def rel_error(x, y):
    """Max relative error between two arrays, cs231n's definition.

    x, y: arrays of the same shape (anything np.asarray takes).
    Returns a float: max |x - y| / max(1e-8, |x| + |y|).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)), initial=0.0))


@lru_cache(maxsize=None)
def _read_expected(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def load_expected(quiz, regenerate):
    """The stored reference arrays of ``quiz``: dict name -> np.ndarray (fresh copies).

    quiz: the quiz id; the file is data/expected/<quiz>.npz.
    regenerate: the command that rewrites the file, named in the error if it is missing.
    Copies are returned so that a function which changes its inputs in place cannot
    change the values a later check compares with.
    """
    path = EXPECTED_DIR / f"{quiz}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"expected values {path} are missing: run `{regenerate}` "
                                "in the course folder")
    return {k: v.copy() for k, v in _read_expected(str(path)).items()}


def fail(fn_name, message, hint=None):
    """Raise CheckFailed with the standard ``✘ fn: message`` layout."""
    text = f"{FAIL} {fn_name}: {message}"
    if hint:
        text += f"\n  {hint}"
    raise CheckFailed(text)


def passed(fn_name, message="shape and values match"):
    """Print the standard success line.

    Returns None, so a checker call as a cell's last line shows only the ✔ line.
    """
    print(f"{OK} {fn_name}: {message}")


def as_array(value, name, fn_name):
    """Turn a student's return value (NumPy or TensorFlow) into a NumPy array.

    Fails with a clear message for None (the usual 'forgot to return') and for
    values that are not numeric.
    """
    if value is None:
        fail(fn_name, f"{name} is None.", "Most likely: the function does not `return` it.")
    if hasattr(value, "numpy") and callable(value.numpy):
        value = value.numpy()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic objects
        fail(fn_name, f"{name} is a {type(value).__name__}, not an array ({exc}).")
    if arr.dtype == object:
        fail(fn_name, f"{name} is not a numeric array (got {type(value).__name__}).")
    return arr


def expect_shape(value, shape, name, fn_name, hint=None):
    """Fail unless ``value`` has exactly ``shape``; returns the value as an array."""
    arr = as_array(value, name, fn_name)
    if tuple(arr.shape) != tuple(shape):
        fail(fn_name, f"{name} has shape {tuple(arr.shape)}, expected {tuple(shape)}.", hint)
    return arr


def expect_finite(value, name, fn_name):
    """Fail if ``value`` holds NaN or inf, saying where the first one is."""
    arr = as_array(value, name, fn_name)
    if np.issubdtype(arr.dtype, np.number) and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        fail(fn_name, f"{name} holds NaN or inf (first at index {tuple(int(i) for i in bad)}).",
             "Most likely: a log or division of 0, or an overflow in exp.")
    return arr


def expect_close(value, expected, name, fn_name, tol=1e-7, mistakes=None, hint=None):
    """Fail unless ``value`` matches ``expected`` to relative error ``tol``.

    value: the student's array (any shape; checked against expected.shape first).
    expected: the reference array.
    mistakes: optional dict {description: array that mistake would produce}. If
      the student's value matches one of them, the message names it.
    Returns the relative error.
    """
    expected = np.asarray(expected)
    arr = expect_shape(value, expected.shape, name, fn_name, hint=hint)
    expect_finite(arr, name, fn_name)
    err = rel_error(arr, expected)
    if err <= tol:
        return err
    for description, wrong in (mistakes or {}).items():
        wrong = np.asarray(wrong)
        if wrong.shape == arr.shape and rel_error(arr, wrong) <= max(tol, 1e-6):
            fail(fn_name, f"shape {arr.shape} is right but values are off (rel. error {err:.2g}).",
                 f"Most likely: {description}")
    flat = np.abs(arr.astype(np.float64) - expected) / np.maximum(
        1e-8, np.abs(arr.astype(np.float64)) + np.abs(expected))
    where = tuple(int(i) for i in np.unravel_index(int(np.argmax(flat)), arr.shape)) if arr.ndim else ()
    detail = (f"shape {arr.shape} is right but values are off (rel. error {err:.2g}, "
              f"tolerance {tol:g}); worst at {name}{list(where)}: got "
              f"{arr[where]:.6g}, expected {expected[where]:.6g}.")
    fail(fn_name, detail, hint)


def expect_equal(value, expected, name, fn_name, hint=None):
    """Fail unless ``value == expected`` (for ints, tuples, strings)."""
    if value != expected:
        fail(fn_name, f"{name} is {value!r}, expected {expected!r}.", hint)


def call(fn, *args, fn_name=None, **kwargs):
    """Call the student's ``fn``; a NotImplementedError becomes a friendly failure.

    Any other exception propagates unchanged, so the student sees their own
    traceback.
    """
    name = fn_name or getattr(fn, "__name__", "your function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        fail(name, "not implemented yet.", "Fill in the code between the TODO markers and run the cell again.")


def scale_error(x, y):
    """max |x - y| / max |y|: the error relative to the array's scale (not element-wise).

    For outputs of sums that cross zero (a layer's output), where float32 and float64
    computations of the same function differ by ~1e-7 of the scale but element-wise
    relative errors near 0 can be anything.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y), initial=0.0) / max(np.max(np.abs(y), initial=0.0), 1e-12))


def expect_close_to_scale(value, expected, name, fn_name, tol=1e-5, mistakes=None, hint=None):
    """Like :func:`expect_close`, with :func:`scale_error` instead of element-wise errors.

    Returns the scale error; fails naming the matching mistake (scale error <= tol) or
    the worst element.
    """
    expected = np.asarray(expected, dtype=np.float64)
    arr = expect_shape(value, expected.shape, name, fn_name, hint=hint)
    expect_finite(arr, name, fn_name)
    err = scale_error(arr, expected)
    if err <= tol:
        return err
    for description, wrong in (mistakes or {}).items():
        wrong = np.asarray(wrong)
        if wrong.shape == arr.shape and scale_error(arr, wrong) <= tol:
            fail(fn_name, f"shape {arr.shape} is right but values are off ({err:.2g} of the "
                          "output's scale).", f"Most likely: {description}")
    diff = np.abs(arr.astype(np.float64) - expected)
    where = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), arr.shape)) if arr.ndim else ()
    fail(fn_name, f"shape {arr.shape} is right but values are off by {err:.2g} of the output's "
                  f"scale (tolerance {tol:g}); worst at {name}{list(where)}: got {arr[where]:.6g}, "
                  f"expected {expected[where]:.6g}.", hint)
