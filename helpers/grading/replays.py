"""The judge's verdict on a short replay: does the submission's code train as the reference's?

    same, how = replay_verdict(lambda: (want, start), lambda: got_from_the_kernel,
                               differ=fcn_replay.replays_differ, starts_differ=fcn_replay.init_differs,
                               steps=5, tolerance=0.01, other_shapes="another architecture")

Shared by :mod:`.fcn_judge` and :mod:`.caption_judge` (the GAN judge compares sketches, its
own way). A replay is never a verdict on the submission: False only means "train in full".
"""
from __future__ import annotations

import numpy as np


def replay_verdict(reference, submission, *, differ, starts_differ, steps, tolerance, other_shapes):
    """(True, how) when the submission's replay matches the reference's, else (False, why not).

    Inputs:
    - reference(): (want, start), the reference's replay and its starting point, computed here
      (an exception, or stored runs that do not hold, mean a full run: never a lost point).
    - submission(): the submission's replay, from wherever its code lives (its word: checked
      by ``differ``; an exception or {"error": str} means a full run).
    - differ(got, want, start) -> float, the largest relative difference (inf: not comparable);
      starts_differ(got, want) -> None, or why the submission's own start is not the reference's.
    - steps, tolerance: for the messages and the verdict; other_shapes: what an inf difference means.
    """
    try:
        want, start = reference()
    except Exception as err:  # noqa: BLE001 - the grader's side: never a lost point, a full run
        return False, f"the grader could not replay the reference ({type(err).__name__}: {str(err)[:200]})"
    try:
        got = submission()
    except Exception as err:  # noqa: BLE001 - any failure only means "train in full"
        return False, f"the replay failed ({type(err).__name__}: {str(err)[:200]})"
    if isinstance(got, dict) and isinstance(got.get("error"), str):
        return False, f"the replay failed ({got['error'][:200]})"
    distance = differ(got, want, start)
    if distance <= tolerance:
        why = starts_differ(got, want)
        if why:
            return False, f"{steps} replayed steps match the reference's, but it starts otherwise ({why})"
        return True, (f"{steps} replayed steps match the reference's (largest relative difference "
                      f"{distance:.1e}, tolerance {tolerance:g}), from the same start as the reference's")
    if not np.isfinite(distance):
        return False, f"the replay differs from the reference's ({other_shapes})"
    return False, (f"the replay differs from the reference's (largest relative difference "
                   f"{distance:.2g} > {tolerance:g})")


def inputs_digest(root, files, sources):
    """SHA-256 of ``files`` (their paths, relative to ``root``, and bytes) and of ``sources``
    (code cells' text): what a stored run of a recipe was made with."""
    import hashlib
    from pathlib import Path
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode() + b"\0" + (Path(root) / name).read_bytes())
    for source in sources:
        h.update(source.encode() + b"\0")
    return h.hexdigest()


def recorded_digest(path):
    """The digest a stored-runs file (``.npz``) was recorded with (its ``measured_with``)."""
    with np.load(path) as data:
        return str(data["measured_with"])
