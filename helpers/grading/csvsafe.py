"""CSV fields a spreadsheet reads as text, never as a formula (the OWASP CSV injection rule).

Every CSV the course writes (``grades.csv``, ``cells.csv``) goes through :class:`SafeWriter`.
A text field that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
(also after leading spaces) gets a single quote in front, so Excel, LibreOffice or Google
Sheets show it as text: an error message a student's code chose, such as
``=HYPERLINK("http://evil", "click")``, cannot become a live formula on the instructor's
machine. Plain numbers (``3``, ``-1``, ``0.5``) are numbers, not formulas: they stay as
they are, so score columns stay numeric.

A field that already begins with a quote gets one more, so the escape can be undone
exactly: :func:`unescape` drops one leading quote, and ``unescape(escape(v)) == v`` for
every string. Where the course reads its own CSV back (:func:`helpers.grading.item_analysis
.read_cells_csv`) it reads through :func:`read_rows`, which undoes the escape.
"""
from __future__ import annotations

import csv
import re

#: Characters that make a spreadsheet treat a field as a formula (OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def escape(value):
    """``value`` as a CSV field that is never a formula (non-strings are returned as they are).

    >>> escape('=HYPERLINK("http://x")'), escape("-1"), escape("'quoted"), escape("ok")
    ('\\'=HYPERLINK("http://x")', '-1', "''quoted", 'ok')
    """
    if not isinstance(value, str) or _NUMBER.fullmatch(value):
        return value
    if value.startswith("'") or value.lstrip(" ").startswith(FORMULA_START):
        return "'" + value
    return value


def unescape(text):
    """Undo :func:`escape` on a field read back from a course CSV."""
    return text[1:] if isinstance(text, str) and text.startswith("'") else text


class SafeWriter(csv.DictWriter):
    """A ``csv.DictWriter`` whose every field goes through :func:`escape`."""

    def writerow(self, rowdict):
        return super().writerow({key: escape(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts):
        for row in rowdicts:
            self.writerow(row)


def read_rows(f):
    """The rows of a course CSV (``csv.DictReader``) with :func:`escape` undone."""
    return [{key: unescape(value) for key, value in row.items()} for row in csv.DictReader(f)]
