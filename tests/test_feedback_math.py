"""Feedback pages show math offline: LaTeX in Markdown cells becomes MathML
(helpers/grading/feedback_math.py), safely, since the student writes those cells."""
import json
import re
from pathlib import Path

import nbformat
import pytest

from helpers.grading.feedback_math import MathToMathML, markdown_with_mathml, to_mathml

REPO = Path(__file__).resolve().parent.parent


def test_inline_and_display_math_become_mathml_and_code_stays():
    text = ("The loss $\\ell = -\\log \\sigma(s)$, costs \\$5.\n\n"
            "$$\\text{out}[n, k] = \\sum_{c} x[n, c]\\, w[c, k]$$\n\n"
            "Code `$x$` and\n```\n$y$ = 1\n```\n")
    out = markdown_with_mathml(text)
    assert out.count("<math") == 2 and '<math display="block"' in out and '<math display="inline"' in out
    assert "<mi>ℓ</mi>" in out and "∑" in out
    assert "\\$5" in out and "`$x$`" in out and "```\n$y$ = 1\n```" in out
    assert "\\sum" not in out and "\\ell" not in out


def test_what_markdown_would_read_inside_inline_math_is_written_as_references():
    out = to_mathml("a*b_c [x]", "inline")
    assert not re.search(r">[^<]*[*_\[\]][^<]*<", out), out


@pytest.mark.parametrize("tex", [
    "\\text{<img src=x onerror=alert(1)>}", "x</math><script>alert(1)</script>",
    "\\text{&lt;script&gt;alert(1)&lt;/script&gt;}", "\\text{&#60;svg onload=alert(1)&#62;}"])
def test_a_students_math_cannot_inject_html(tex):
    """Markdown cells are the student's; the instructor opens the page: text is escaped."""
    out = markdown_with_mathml(f"before ${tex}$ after")
    tags = set(re.findall(r"<\s*([a-zA-Z]+)", out))
    assert tags <= {"math", "mrow", "mi", "mo", "mn", "mtext", "msub", "msup"}, (tags, out)


def test_links_styles_and_failures_leave_the_tex_as_written():
    for tex in ("\\href{javascript:alert(1)}{x}", "\\frac{1}{", "\\color{red}{x}"):
        out = markdown_with_mathml(f"${tex}$")
        assert "href=" not in out and "style=" not in out and "javascript" not in out.replace(tex, "")


def test_every_formula_of_the_lessons_converts():
    """No formula of the notebooks' Markdown is left as TeX in a feedback page."""
    count = 0
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                source = "".join(cell["source"])
                count += source.count("$$") // 2
                out = markdown_with_mathml(source)
                left = [m for m in re.findall(r"\$[^$\n]+\$", out) if "\\$" not in m]
                assert not left, (path.name, left[:3])
    assert count >= 10


def test_the_feedback_html_holds_the_mathml():
    """conv_1x1's lesson through nbconvert's HTML exporter with the preprocessor, as the
    feedback is made: its display formula arrives as MathML, not as TeX for MathJax."""
    from nbconvert import HTMLExporter
    nb = nbformat.read(REPO / "notebooks" / "conv_1x1" / "conv_1x1.ipynb", as_version=4)
    exporter = HTMLExporter()
    exporter.register_preprocessor(MathToMathML)     # on, as GenerateFeedback lists it
    body, _ = exporter.from_notebook_node(nb)
    assert re.search(r'<div class="course-math"[^>]*><math display="block"[^>]*>.*?<munder><mo>∑</mo>', body)
    assert "\\sum_{c}" not in body


def test_a_line_break_written_as_a_reference_stays_inside_the_math():
    """``&#10;`` in \\text decodes to a line break; written out raw, a blank line would end the
    inline HTML and the rest would be read as Markdown (headings, paragraphs) inside <math>."""
    from nbconvert.filters.markdown import markdown2html
    page = markdown2html(markdown_with_mathml("a $\\text{x&#10;&#10;# Heading&#10;&#10;    code}$ b"))
    assert "<h1" not in page and "</p>" not in page.split("</math>")[0], page
