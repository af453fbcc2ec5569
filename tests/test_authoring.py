"""helpers.authoring turns a percent script into an nbgrader source notebook."""
import nbformat
import pytest

from helpers.authoring import notebook_from_percent

SCRIPT = '''# %% notebook {"cell_timeout": 90}
# %% [markdown]
# # Title
# %% solution id=answer
def f():
    ### BEGIN SOLUTION
    return 1
    ### END SOLUTION
# %% test id=check_f points=2
assert f() == 1
'''


def test_cells_and_metadata():
    nb = notebook_from_percent(SCRIPT)
    nbformat.validate(nb)
    assert nb.metadata.course == {"cell_timeout": 90}
    md, sol, test = nb.cells
    assert md.source == "# Title"
    assert sol.metadata.nbgrader["solution"] and not sol.metadata.nbgrader["grade"]
    assert test.metadata.nbgrader["points"] == 2.0 and test.metadata.nbgrader["locked"]


def test_graded_cell_needs_an_id():
    with pytest.raises(ValueError, match="needs id="):
        notebook_from_percent("# %% test points=1\nassert True\n")
