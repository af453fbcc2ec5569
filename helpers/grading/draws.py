"""The judge's random draws: unknown to students, the same on every regrade.

The judged tests draw fresh cases as they run (a checker's inputs and weights, the scenes a
captioning model is measured on, the GAN replay's seed, the noise of the graded samples),
all through :func:`helpers.checks._compare.fresh_seed`. In the grader's judge those draws
come from a stream keyed by

- a secret of the course, ``grading/.judge-key`` (made on the first grading run, readable by
  its owner only; no student kernel sees that folder), and
- the submission's own bytes and the test cell's id.

So a student cannot know the cases before grading (the key never leaves the grader's
machine), cannot read them in one run and answer them from a table in the next (any change
to the notebook draws new ones), and a regrade of the same notebook draws the same cases and
gives the same grade. Deleting the key file draws new cases for everyone (and regrades:
the key's fingerprint is part of each result's key).

Outside the judge (a student's own kernel, tests) nothing is installed and every draw is new.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

#: The course's secret, in the grading work folder.
KEY_FILE = ".judge-key"
#: How the judge kernel receives its submission's key.
ENV = "COURSE_JUDGE_DRAWS"


def course_key(folder=None):
    """The course's secret (bytes): ``folder/.judge-key``, the course's grading folder
    (``grading/``) by default, whatever work folder a run uses; made if missing (written
    whole, then linked into place: two runs starting at once get the same key)."""
    from .course import WORK
    folder = Path(WORK if folder is None else folder)
    path = folder / KEY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".judge-key-")       # 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass                                                        # another run made it first
        finally:
            os.unlink(tmp)
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"{path} is not a key made by the grader (delete it to make a new one)")
    return text.encode()


def fingerprint(key):
    """A public digest of ``key``: part of each result's key, so that a new key regrades."""
    return hmac.new(key, b"fingerprint", hashlib.sha256).hexdigest()[:16]


def submission_key(key, assignment, notebooks):
    """The key of one submission's draws (hex): ``key`` with the assignment and the
    submission's notebooks ({name: bytes})."""
    h = hmac.new(key, assignment.encode() + b"\0", hashlib.sha256)
    for name in sorted(notebooks):
        h.update(name.encode() + b"\0" + hashlib.sha256(notebooks[name]).digest())
    return h.hexdigest()


def stream(submission, cell):
    """A function giving the draws of test cell ``cell``: 63-bit ints, in order."""
    count = [0]

    def draw():
        count[0] += 1
        mac = hmac.new(bytes.fromhex(submission), f"{cell}\0{count[0]}".encode(), hashlib.sha256)
        return int.from_bytes(mac.digest()[:8], "big") >> 1
    return draw


def install(cell):
    """In the judge's kernel, before test cell ``cell`` runs: its draws come from the stream
    of the submission's key (:data:`ENV`); no key there, fresh draws."""
    from helpers.checks import _compare
    submission = os.environ.get(ENV, "")
    _compare.DRAWS = stream(submission, cell) if submission else None
