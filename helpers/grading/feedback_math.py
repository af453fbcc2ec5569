"""Math in feedback pages without a network: LaTeX in Markdown cells becomes MathML.

    from helpers.grading.feedback_math import MathToMathML, markdown_with_mathml
    markdown_with_mathml("The loss $\\ell = -\\log \\sigma(s)$ ...")   # '<math ...>...</math>' inline
    c.GenerateFeedback.preprocessors = [..., MathToMathML]

nbgrader's feedback page typesets math with MathJax from a CDN, so a page opened offline
(where this course is meant to work) shows raw ``$\\sum_c x[n, i, j, c] ...$``. Browsers
render MathML themselves (Chromium since 109, Firefox, Safari): this preprocessor turns each
``$...$`` and ``$$...$$`` of a Markdown cell into MathML with ``latex2mathml`` before the
page is written, and leaves code spans and fenced code alone.

Markdown cells are the student's to edit, and the page is opened by the instructor: the
MathML is rebuilt here from the converter's element tree, keeping only MathML's presentation
tags and a few layout attributes (no links, no styles), its text escaped. Math that does not
convert, or holds anything else, stays as the student wrote it.
"""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

#: MathML presentation elements kept; anything else and the math stays as written.
TAGS = frozenset("""math mrow mi mn mo mtext mspace ms msub msup msubsup mfrac msqrt mroot mstyle
    mover munder munderover mtable mtr mtd mpadded mphantom menclose merror mmultiscripts
    mprescripts none semantics annotation""".split())
#: Attributes kept, with values of letters, digits, spaces and ``.#%-`` only.
ATTRIBUTES = frozenset("""display mathvariant stretchy fence separator minsize maxsize
    displaystyle scriptlevel accent accentunder movablelimits lspace rspace width height depth
    columnalign rowalign columnspacing rowspacing columnlines rowlines frame notation linethickness
    largeop symmetric form""".split())
_VALUE = re.compile(r"[\w .#%-]*\Z")
_MATH_NS = "http://www.w3.org/1998/Math/MathML"
#: Characters Markdown would read in the text of inline MathML, written as references (line
#: breaks too: a blank line decoded from ``&#10;`` would end the inline HTML).
_MARKDOWN = {c: f"&#{ord(c)};" for c in "*_`\\$[]~|!\n\r"}

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)", re.S)   # a run opens only from its start
_BLOCK = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$(?![\s$])([^$\n]+?)(?<![\s\\])\$(?!\$)")


def to_mathml(tex, display):
    """``tex`` (LaTeX math, no delimiters) as a MathML string, ``display`` "inline" or
    "block"; None when it does not convert or its MathML holds more than :data:`TAGS` and
    :data:`ATTRIBUTES`."""
    from latex2mathml.converter import convert_to_element
    try:
        root = convert_to_element(tex, display=display)
    except Exception:                                # noqa: BLE001 - any failure: leave the TeX
        return None
    root.attrib.pop("xmlns", None)                   # set again below
    for element in root.iter():
        tag = element.tag.split("}")[-1]
        if tag not in TAGS:
            return None
        if any(name not in ATTRIBUTES or not _VALUE.match(value) for name, value in element.attrib.items()):
            return None
        element.tag = tag
        element.text = html.unescape(element.text) if element.text else element.text
        element.tail = html.unescape(element.tail) if element.tail else element.tail
    root.set("xmlns", _MATH_NS)
    text = ET.tostring(root, encoding="unicode")
    return re.sub(r">([^<]+)<", lambda m: ">" + "".join(_MARKDOWN.get(c, c) for c in m.group(1)) + "<", text)


def _convert_math(text):
    def block(match):
        mathml = to_mathml(match.group(1).strip(), "block")
        return match.group(0) if mathml is None else f"\n\n<div class=\"course-math\" style=\"font-size: 1.3em\">{mathml}</div>\n\n"

    def inline(match):
        mathml = to_mathml(match.group(1), "inline")
        return match.group(0) if mathml is None else mathml
    return _INLINE.sub(inline, _BLOCK.sub(block, text))


def markdown_with_mathml(source):
    """Markdown ``source`` with its ``$$...$$`` and ``$...$`` math as MathML (:func:`to_mathml`);
    fenced code blocks and code spans unchanged."""
    return _outside(_FENCE, source, lambda text: _outside(_CODE_SPAN, text, _convert_math))


def _outside(pattern, text, change):
    """``text`` with ``change`` applied to each part that ``pattern`` does not match."""
    out, last = [], 0
    for match in pattern.finditer(text):
        out += [change(text[last:match.start()]), match.group(0)]
        last = match.end()
    return "".join(out) + change(text[last:])


class MathToMathML(Preprocessor):
    """Feedback preprocessor: the math of every Markdown cell as MathML (:func:`markdown_with_mathml`)."""

    enabled = Bool(True).tag(config=True)             # nbconvert's preprocessors are off by default

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown" and "$" in cell.source:
            cell.source = markdown_with_mathml(cell.source)
        return cell, resources
