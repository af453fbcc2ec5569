"""The student corpus (tests/students/<quiz>/<case>.py), graded by the real ``grade``.

Every case is a realistic submission: correct code written the ways students write it
(must get full marks) or one realistic mistake (must lose exactly the graded cells that
test that function). All cases of every graded quiz are graded in one ``grade`` run (2
workers), and each case is its own test, asserting the set of graded cells that lost points. See
tests/students/corpus.py for the case format.
"""
import ast
import textwrap

import nbformat
import pytest

from helpers.grading.sandbox import sandbox_problem
from students import corpus

CASES = [(q, p.stem) for q in corpus.quizzes() for p in corpus.case_files(q)]
_GRADED = {}


def _graded(quiz, tmp_path_factory):
    """(cases, verdicts, errors) of one quiz, by case name. The first call grades every quiz
    that is graded here in one run; a failure of that run is kept, so it is not graded again
    per case."""
    if not _GRADED:
        graded = [q for q in corpus.quizzes() if not corpus.skip_reason(q)]
        try:
            out = corpus.grade_quizzes(graded, tmp_path_factory.mktemp("corpus"), workers=2)
            _GRADED.update({q: ({c.name: c for c in cases}, verdicts, errors)
                            for q, (cases, verdicts, errors) in out.items()})
        except Exception as exc:      # noqa: BLE001 - kept, so one failure is not graded again per case
            _GRADED.update({q: exc for q in graded})
    if isinstance(_GRADED[quiz], Exception):
        raise _GRADED[quiz]
    return _GRADED[quiz]


@pytest.mark.parametrize("quiz,name", CASES, ids=[f"{q}/{n}" for q, n in CASES])
def test_case_gets_its_expected_per_cell_verdict(quiz, name, tmp_path_factory):
    reason = corpus.skip_reason(quiz)
    if reason:
        pytest.skip(f"{quiz} is not graded here: {reason}")
    problem = sandbox_problem()
    if problem:
        pytest.skip(f"sandbox unavailable: {problem}")
    cases, verdicts, errors = _graded(quiz, tmp_path_factory)
    if name in errors:
        raise errors[name]
    message = corpus.mismatch(cases[name], verdicts.get(name))
    assert not message, message


@pytest.mark.parametrize("quiz,name", CASES, ids=[f"{q}/{n}" for q, n in CASES])
def test_case_builds_a_notebook(quiz, name):
    """Cheap, no grading: each case file is well formed and every name it defines lands in
    a solution cell of its quiz."""
    case = corpus.load_case(corpus.HERE / quiz / f"{name}.py", quiz)
    nb = corpus.build_submission(case)
    text = "\n".join(c.source for c in nb.cells)
    for definition in case.definitions.values():
        assert definition in text


def _write_case(folder, quiz, name, body):
    (folder / quiz).mkdir(parents=True, exist_ok=True)
    path = folder / quiz / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_build_appends_the_case_code_to_the_cells_that_define_its_names(tmp_path):
    path = _write_case(tmp_path, "cnn_building_blocks", "demo", '''
        """A student who flattens with reshape and counts parameters by hand."""
        EXPECT_LOST = {"cnn_building_blocks_flatten"}
        import numpy as np
        from functools import lru_cache

        def flatten(x):
            return np.reshape(x, (x.shape[0], -1))

        @lru_cache(maxsize=None)
        def dense_param_count(in_features, units):
            return in_features * units + units
    ''')
    case = corpus.load_case(path)
    assert (case.quiz, case.name, case.expect_lost) == ("cnn_building_blocks", "demo",
                                                       {"cnn_building_blocks_flatten"})
    assert case.doc.startswith("A student who flattens")
    nb = corpus.build_submission(case)
    ref = nbformat.read(corpus.SOLUTIONS / "cnn_building_blocks" / "cnn_building_blocks.ipynb",
                        as_version=4)
    changed = [i for i, (a, b) in enumerate(zip(ref.cells, nb.cells)) if a.source != b.source]
    cells = corpus.solution_cells(ref)
    flat = next(i for i, names in cells.items() if "flatten" in names)
    params = next(i for i, names in cells.items() if "dense_param_count" in names)
    assert changed == sorted({flat, params})
    for i in changed:                       # reference kept, case appended after it
        assert nb.cells[i].source.startswith(ref.cells[i].source.rstrip("\n"))
        assert "import numpy as np\nfrom functools import lru_cache" in nb.cells[i].source
    assert "return np.reshape(x, (x.shape[0], -1))" in nb.cells[flat].source
    assert "return np.reshape" not in nb.cells[params].source
    assert "@lru_cache(maxsize=None)\ndef dense_param_count" in nb.cells[params].source
    # Python's last definition wins: the case's flatten is the one the cell leaves behind.
    tree = ast.parse(nb.cells[flat].source)
    last = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "flatten"][-1]
    assert "np.reshape" in ast.get_source_segment(nb.cells[flat].source, last)


def test_a_case_name_no_solution_cell_defines_fails_loudly(tmp_path):
    path = _write_case(tmp_path, "cnn_building_blocks", "typo", '''
        """A case with a misspelt function name."""
        EXPECT_LOST = set()
        def conv_forward_naiv(x, w, b, conv_param):
            return x
    ''')
    with pytest.raises(corpus.CaseError, match="conv_forward_naiv, which no solution cell"):
        corpus.build_submission(corpus.load_case(path))


@pytest.mark.parametrize("body,match", [
    ('"""doc"""\ndef flatten(x):\n    return x\n', "no EXPECT_LOST"),
    ('EXPECT_LOST = set()\ndef flatten(x):\n    return x\n', "no docstring"),
    ('"""doc"""\nEXPECT_LOST = {"a"}\nprint(1)\n', "only imports"),
    ('"""doc"""\nEXPECT_LOST = ["a"]\ndef flatten(x):\n    return x\n', "must be a set"),
])
def test_malformed_cases_are_rejected(tmp_path, body, match):
    path = _write_case(tmp_path, "cnn_building_blocks", "bad", body)
    with pytest.raises(corpus.CaseError, match=match):
        corpus.load_case(path)


def test_verdict_mismatch_names_the_case_the_cells_and_their_errors():
    case = corpus.Case("q", "c", "a mistake", {"q_a"}, [], {"f": "def f(): pass"})
    ok = corpus.Verdict("graded", "", 3, 5, 1.0, {"q_a"}, {"q_a": "CheckFailed: x"})
    assert corpus.mismatch(case, ok) == ""
    bad = corpus.Verdict("graded", "", 2, 5, 1.0, {"q_b"}, {"q_b": "AssertionError: shape"})
    msg = corpus.mismatch(case, bad)
    assert "q/c" in msg and "lost q_b, expected full marks there: AssertionError: shape" in msg
    assert "expected to lose q_a, but it got full marks" in msg
    assert "status 'error'" in corpus.mismatch(case, corpus.Verdict("error", "boom", 0, 5, 0, set(), {}))
