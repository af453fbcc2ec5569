"""The student corpus: real-style submissions graded by the real ``grade`` with per-cell verdicts.

A case is one file ``tests/students/<quiz>/<case_name>.py``::

    \"\"\"One line: whose style this is, or which realistic mistake it makes.\"\"\"
    EXPECT_LOST = {"grade_id_x"}   # graded cells that must lose their points; set() = full marks
    import numpy as np             # the case's own top-level imports are copied too

    def conv_forward_naive(x, w, b, conv_param):
        ...

The case is read with ``ast`` only (never imported here: it may import TensorFlow). Its
submission is the reference notebook ``solutions/<quiz>/<quiz>.ipynb`` where every solution
cell (code cell with nbgrader ``solution: true``) that defines a top-level name the case
also defines gets, appended to its source, the case's import lines and the case's
definitions of those names (decorators included). Python's last definition wins, so the
case's code overrides the reference there and everything else stays reference. A top-level
name is a ``def``, a ``class`` or a plain ``name = ...`` assignment (the claims dict of
cnn_building_blocks); a case name that no solution cell defines is an error of the case
(:class:`CaseError`).

All cases of all quizzes are graded in ONE ``helpers.grading.grade`` run (student folder name =
case name; :func:`grade_quizzes`), which reads, per case, which graded cells lost points and with
which error. A quiz folder holding a file ``SKIP_GRADING`` (its text: the reason) is not
graded here; its cases are tested another way.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SOLUTIONS = REPO / "solutions"

#: Top-level names of a case file that are the case's metadata, not student code.
META = {"EXPECT_LOST"}


class CaseError(ValueError):
    """A case file is malformed (no EXPECT_LOST, a name no solution cell defines, ...)."""


@dataclass
class Case:
    """One corpus case, read statically from its file."""
    quiz: str
    name: str
    doc: str
    expect_lost: set
    imports: list                     # source lines of the top-level imports, in file order
    definitions: dict = field(default_factory=dict)   # name -> source (decorators included)


def quizzes(root=HERE):
    """The quiz folders under ``root`` that hold at least one case, sorted."""
    return sorted(p.name for p in Path(root).iterdir()
                  if p.is_dir() and not p.name.startswith(("_", ".")) and case_files(p.name, root))


def case_files(quiz, root=HERE):
    """The case files of one quiz, sorted by name."""
    return sorted(p for p in (Path(root) / quiz).glob("*.py") if not p.name.startswith("_"))


def skip_reason(quiz, root=HERE):
    """The text of ``<quiz>/SKIP_GRADING`` (why its cases are not graded here), or None."""
    marker = Path(root) / quiz / "SKIP_GRADING"
    if not marker.exists():
        return None
    return marker.read_text().strip() or "SKIP_GRADING (no reason given)"


def _defined_names(node):
    """Names a top-level statement defines: def, class, or ``a = ...`` / ``a: T = ...``."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
        return [node.target.id]
    return []


def _segment(source, node):
    """Source of a top-level statement, decorators included."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    lines = source.splitlines()
    return "\n".join(lines[first - 1:node.end_lineno])


def load_case(path, quiz=None):
    """Read one case file (statically). Raises :class:`CaseError` naming the file and problem."""
    path = Path(path)
    source = path.read_text()
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise CaseError(f"{path}: not valid Python: {exc}") from exc
    doc = ast.get_docstring(tree)
    if not doc:
        raise CaseError(f"{path}: starts with no docstring saying whose style or which mistake it is")
    expect, imports, defs = None, [], {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(ast.get_source_segment(source, node))
            continue
        names = _defined_names(node)
        if names == ["EXPECT_LOST"]:
            try:
                expect = ast.literal_eval(node.value)
            except ValueError as exc:
                raise CaseError(f"{path}: EXPECT_LOST must be a literal set of grade ids") from exc
            if expect == {}:
                expect = set()
            if not isinstance(expect, (set, frozenset)) or not all(isinstance(g, str) for g in expect):
                raise CaseError(f"{path}: EXPECT_LOST must be a set of grade-id strings, got {expect!r}")
            continue
        if isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant) \
                and node is tree.body[0]:
            continue                  # the docstring
        if not names:
            raise CaseError(f"{path}, line {node.lineno}: only imports, EXPECT_LOST and top-level "
                            "def / class / name = ... are allowed (put helpers inside functions)")
        for name in names:
            if name in defs:
                raise CaseError(f"{path}: {name} is defined twice")
            defs[name] = _segment(source, node)
    if expect is None:
        raise CaseError(f"{path}: no EXPECT_LOST = {{...}} (use set() for full marks)")
    if not defs:
        raise CaseError(f"{path}: defines nothing to submit")
    return Case(quiz or path.parent.name, path.stem, doc.splitlines()[0], set(expect), imports, defs)


def solution_cells(nb):
    """{index: set of top-level names} of the solution cells of a notebook."""
    out = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            out[i] = {n for node in tree.body for n in _defined_names(node)}
    return out


def build_submission(case, solutions=SOLUTIONS):
    """The reference notebook of ``case.quiz`` with the case's definitions appended to the
    solution cells that define the same names (an nbformat NotebookNode; nothing written).
    Raises :class:`CaseError` if the case defines a name no solution cell defines."""
    import nbformat
    nb = nbformat.read(Path(solutions) / case.quiz / f"{case.quiz}.ipynb", as_version=4)
    cells = solution_cells(nb)
    placed = set()
    for index, names in cells.items():
        mine = [n for n in case.definitions if n in names]
        if not mine:
            continue
        head = "\n".join([f"# --- student corpus case {case.name}: {', '.join(mine)} ---", *case.imports])
        added = [head] + [case.definitions[n] for n in mine]
        nb.cells[index].source = nb.cells[index].source.rstrip("\n") + "\n\n\n" + "\n\n".join(added) + "\n"
        placed.update(mine)
    unknown = sorted(set(case.definitions) - placed)
    if unknown:
        raise CaseError(f"case {case.quiz}/{case.name} defines {', '.join(unknown)}, which no "
                        f"solution cell of {case.quiz} defines")
    return nb


def write_submissions(quiz, folder, root=HERE, solutions=SOLUTIONS):
    """Write every well-formed case of ``quiz`` as ``folder/<case>/<quiz>/<quiz>.ipynb``.

    Returns (cases, errors): the cases written, and {case name: CaseError} for the others
    (a malformed case is that case's failure, not the whole quiz's).
    """
    import nbformat
    cases, errors = [], {}
    for path in case_files(quiz, root):
        try:
            case = load_case(path, quiz)
            nb = build_submission(case, solutions)
        except CaseError as exc:
            errors[path.stem] = exc
            continue
        dest = Path(folder) / case.name / quiz
        dest.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest / f"{quiz}.ipynb")
        cases.append(case)
    return cases, errors


@dataclass
class Verdict:
    """What grading made of one case."""
    status: str
    reason: str
    score: float
    max_score: float
    seconds: float
    lost: set                         # grade ids of the graded cells that lost points
    errors: dict                      # grade id -> the error that cell ended with


def grade_quizzes(quizzes, work, workers=2, root=HERE, solutions=SOLUTIONS, log=lambda *_: None):
    """Grade all cases of every quiz in ``quizzes`` in ONE real ``grade`` run under ``work``
    (one run keeps both workers busy to the end, where a run per quiz leaves one idle at each
    quiz's last odd case, and prepares the grading folder once).

    Returns {quiz: (cases, {case name: Verdict}, {case name: CaseError of a malformed case})}.
    A student folder is a case name; it holds only its own quiz, so the other quizzes of the
    run are "missing" for it and are not read.
    """
    from helpers import grading
    from helpers.grading import item_analysis
    work = Path(work)
    out, names = {}, []
    for quiz in quizzes:
        cases, errors = write_submissions(quiz, work / "submissions", root, solutions)
        out[quiz] = (cases, {}, errors)
        if cases:
            names.append(quiz)
    if not names:
        return out
    results = grading.grade(work / "submissions", work=work / "grading", names=names,
                            solutions=solutions, workers=workers, feedback=False, log=log)
    for r in results:
        if r.assignment not in out or r.student not in {c.name for c in out[r.assignment][0]}:
            continue                      # another quiz's case: "missing" here
        lost = {c.split(":", 1)[1] for c in r.failed_cells}
        errors = {}
        if r.status in item_analysis.GRADED:
            for _, grade_id, _, _, error in item_analysis.cell_scores(work / "grading", r.assignment, r.student):
                if error:
                    errors[grade_id] = error
                    lost.add(grade_id)
        out[r.assignment][1][r.student] = Verdict(r.status, r.reason, r.score, r.max_score, r.seconds,
                                                  lost, errors)
    return out


def mismatch(case, verdict):
    """Why ``verdict`` is not what ``case`` expects, as a message; "" if it is."""
    if verdict is None:
        return f"{case.quiz}/{case.name}: no grading result"
    if verdict.status != "graded":
        return (f"{case.quiz}/{case.name} ({case.doc}): status {verdict.status!r}, not graded: "
                f"{verdict.reason}")
    if verdict.lost == case.expect_lost:
        return ""
    lines = [f"{case.quiz}/{case.name} ({case.doc}): {verdict.score:g}/{verdict.max_score:g}"]
    for grade_id in sorted(verdict.lost - case.expect_lost):
        lines.append(f"  lost {grade_id}, expected full marks there: "
                     f"{verdict.errors.get(grade_id, '(no error text)')}")
    for grade_id in sorted(case.expect_lost - verdict.lost):
        lines.append(f"  expected to lose {grade_id}, but it got full marks")
    return "\n".join(lines)
