"""Which submission to grade first: the longest expected first.

Workers take queued submissions in order. Queued student by student, a class ends with
one worker grading a long submission (a style transfer, a network visualization) while
the others have nothing left to do. Queued longest first, the run ends on the short ones
(the "longest processing time first" rule). The order never changes a grade.

What a submission of an assignment is expected to cost, in seconds:
1. the median time of this assignment's submissions already graded in this grading
   folder by the same grader (an earlier run of the same class, on the same machine; an
   older grader's times are not: a course update can change them many times over), else
2. the ``grading_seconds`` of the assignment's ``course`` metadata: the reference
   submission's CPU seconds on one worker, as ``benchmarks/class_run.py`` measures them,
   else
3. 0 (graded last, in the order given).
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path


def expected_seconds(work, names, settings, grader):
    """{assignment: expected seconds per submission}.

    work: the grading folder (its ``results/<student>/<assignment>.json``).
    names: the assignments. settings: {assignment: its ``course`` metadata dict}.
    grader: the digest of the grading code (``jobs.grader_code_digest()``); only results
      it graded count.
    """
    seen = {name: [] for name in names}
    for path in Path(work, "results").glob("*/*.json"):
        if path.stem not in seen:
            continue
        try:
            saved = json.loads(path.read_text())
            seconds = float(saved.get("seconds") or 0)
        except (OSError, ValueError, TypeError, AttributeError):
            continue                      # a result file being written, or not ours
        if saved.get("grader") == grader and saved.get("status") in ("graded", "incomplete") \
                and seconds > 0:
            seen[path.stem].append(seconds)
    out = {}
    for name in names:
        try:
            fallback = float(settings.get(name, {}).get("grading_seconds") or 0)
        except (TypeError, ValueError):
            fallback = 0.0
        out[name] = statistics.median(seen[name]) if seen[name] else max(0.0, fallback)
    return out


def longest_first(payloads, cost):
    """``payloads`` (dicts with an ``assignment``) sorted by ``cost[assignment]``, largest
    first; equal costs keep their order (stable)."""
    return sorted(payloads, key=lambda p: -cost.get(p["assignment"], 0.0))
