"""The trusted judge: the wire carries data only, the bridge reaches student code only as data.

Unit tests of :mod:`helpers.grading.wire` (no kernel), then the bridge against a real IPython
kernel standing in for a student's (a few seconds). Whole grading runs with the judge are in
tests/test_hostile.py (attacks) and tests/test_pipeline.py (reference full, release 0).
"""
import base64
import io
import json
import os
import time

import numpy as np
import pytest

from helpers.grading import bridge, wire
from helpers.grading.judge import INSTALL_WIRE, definitions, student_names, trusted_cells


def _roundtrip(value):
    handles = []
    data = json.loads(json.dumps(wire.encode(value, lambda v: handles.append(v) or {"h": 1})))
    return wire.decode(data, lambda spec: ("handle", spec["h"])), handles


def test_data_crosses_as_equal_copies_and_objects_as_handles():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    value = {"x": x, 3: (1, 2.5, None, True, "s", b"\x00"), "l": [np.int64(4), x[0]],
             "dtype": np.dtype("float32")}
    back, handles = _roundtrip(value)
    assert back.keys() == value.keys() and back[3] == value[3]
    assert back["x"].dtype == np.float32 and np.array_equal(back["x"], x) and back["x"] is not x
    assert back["l"][0] == 4 and isinstance(back["l"][0], np.int64)

    class Cache:
        pass
    from collections import namedtuple
    Pair = namedtuple("Pair", "a b")
    obj, pair = Cache(), Pair(1, 2)
    back, handles = _roundtrip([obj, pair, {1, 2}])
    assert back == [("handle", 1)] * 3 and handles == [obj, pair, {1, 2}]


def test_tensors_cross_as_tensors():
    tf = pytest.importorskip("tensorflow")
    back, _ = _roundtrip(tf.constant([[1.0, 2.0]]))
    assert isinstance(back, tf.Tensor) and back.numpy().tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize("evil", [
    {"nd": base64.b64encode(b"not an npy file").decode()},
    {"nd": "!!!"},
    {"l": {"not": "a list"}},
    {"d": [[1, 2, 3]]},
    {"h": 1, "sneaky": True},
    ["a bare list"],
    {"unknown": 1},
    {"dtype": "O"},
    {"dtype": "V8"},
])
def test_malformed_data_is_refused(evil):
    with pytest.raises((wire.WireError, ValueError)):
        wire.decode(evil, lambda spec: (_ for _ in ()).throw(wire.WireError("no handles")))


def test_pickled_arrays_are_never_loaded():
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        wire.decode({"nd": base64.b64encode(buf.getvalue()).decode()}, None)
    with pytest.raises(wire.WireError):
        wire.decode(json.loads("[" * 0 + '{"l": ' * 40 + "[]" + "}" * 40), None)


def test_test_cells_read_student_names_not_imports_or_their_own():
    imports = "import numpy as np\nfrom helpers.checks import conv_1x1 as checks"
    cell = "_x = np.ones(3)\nchecks.check(conv_1x1)\nfor _k in claims: print(_k, len)\n"
    assert student_names(cell, imports) == ["claims", "conv_1x1"]
    sources = ["def conv_1x1(x):\n    return x\n", "claims = {'a': True}\n%timeit 1",
               "def conv_1x1(x):\n    return 2 * x\n"]
    assert definitions(sources, ["conv_1x1", "claims", "absent"]) == {
        "conv_1x1": "def conv_1x1(x):\n    return 2 * x", "claims": "claims = {'a': True}"}


def test_only_cells_the_source_marks_go_to_the_judge():
    import nbformat
    nb = nbformat.v4.new_notebook(metadata={"course": {"judge": "trusted"}})
    test = {"nbgrader": {"grade": True, "solution": False, "grade_id": "t1", "points": 1}}
    nb.cells = [nbformat.v4.new_code_cell("assert f(1) == 1", metadata=test),
                nbformat.v4.new_code_cell("assert f(2) == 2", metadata={
                    **test, "nbgrader": {**test["nbgrader"], "grade_id": "t2"},
                    "course": {"judge": "kernel"}}),
                nbformat.v4.new_code_cell("def f(x): return x", metadata={
                    "nbgrader": {"grade": False, "solution": True, "grade_id": "s"}})]
    assert trusted_cells(nb) == {"t1": "assert f(1) == 1"}
    nb.metadata.course = {}
    assert trusted_cells(nb) == {}


#: Cells of a notebook that rebinds names at run time (the student fixture runs them).
REBOUND = '''
def fast(x):
    return tf.nn.relu(x)
def relu(x):
    return np.maximum(x, 0)
globals()["relu"] = fast
exec("def made(x):\\n    return x")
class Net:
    def forward(self, x):
        return np.tanh(x)
Net.extra = lambda self: 1
def plain(x):
    return helper(x)
def helper(x):
    return np.abs(x)
def decoy(x):
    return np.abs(x)
globals()["helper"] = lambda x: tf.abs(x)
'''


@pytest.fixture(scope="module")
def student():
    """A plain IPython kernel with the wire installed, as the grader prepares a student's."""
    from jupyter_client import KernelManager
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    kc.execute_interactive(INSTALL_WIRE + '''
import numpy as np, time
class Model:
    def __init__(self, scale):
        self.params = {"W": np.ones(2) * scale}
    def loss(self, x):
        return float(self.params["W"] @ x)
def double_in_place(x, conf):
    x *= 2
    conf["seen"] = True
    return x, (x, conf)
def backward(dout, cache):
    x, conf = cache
    return dout * x
def broken(x):
    raise NotImplementedError("not yet")
def custom_error(x):
    class Weird(Exception):
        pass
    raise Weird("hidden")
def slow(seconds):
    time.sleep(seconds)
    return "woke"
def huge():
    return np.zeros(2_000_000)
''' + REBOUND, timeout=60)
    info = km.get_connection_info(session=False)
    info["key"] = info["key"].decode()
    kernel = bridge.StudentKernel(info, timeout=5)
    ns = {}
    old, bridge._KERNEL = bridge._KERNEL, kernel
    bridge.bind(ns, ["Model", "double_in_place", "backward", "broken", "custom_error", "slow",
                     "huge", "absent"], {"double_in_place": "def double_in_place(x, conf): ..."})
    yield ns, kernel, info
    bridge._KERNEL = old
    kernel.close()
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_arguments_are_copies_and_caches_pass_back(student):
    ns = student[0]
    x, conf = np.arange(3.0), {"seen": False}
    out, cache = ns["double_in_place"](x, conf)
    assert x.tolist() == [0, 1, 2] and conf == {"seen": False}, "the caller's data must not change"
    assert out.tolist() == [0, 2, 4]
    assert ns["backward"](np.ones(3), cache).tolist() == [0, 2, 4]
    assert ns["double_in_place"].__course_source__.startswith("def double_in_place")
    assert "absent" not in ns


def test_objects_stay_remote_and_their_dicts_by_reference(student):
    ns = student[0]
    model = ns["Model"](3.0)
    assert isinstance(model, bridge.Remote)
    assert model.params["W"].tolist() == [3, 3]
    model.params["W"] = np.array([1.0, -1.0])            # cs231n's sanity checks do this
    assert model.loss(np.array([5.0, 2.0])) == 3.0
    assert sorted(model.params) == ["W"]


def test_course_code_runs_next_to_a_student_class(student):
    """A training loop runs in the student's kernel with the student's class, not call by call."""
    ns = student[0]
    model = ns["Model"].__course_run__("builtins", "getattr", "__name__")
    assert model == "Model"
    made = ns["Model"].__course_run__("functools", "partial", 2.0)
    assert isinstance(made, bridge.Remote) and made().params["W"].tolist() == [2, 2]


def test_student_errors_are_raised_here_by_name(student):
    ns = student[0]
    with pytest.raises(NotImplementedError, match="not yet"):
        ns["broken"](1)
    with pytest.raises(bridge.StudentCodeError, match="Weird: hidden") as info:
        ns["custom_error"](1)
    assert "custom_error" in info.value.student_traceback


def test_a_call_that_runs_too_long_is_interrupted(student):
    ns = student[0]
    with pytest.raises(TimeoutError, match="did not return within 5 s"):
        ns["slow"](60)
    assert ns["slow"](0) == "woke", "the student's kernel must be usable again"


def test_an_answer_past_the_cap_is_refused_not_buffered(student, monkeypatch):
    ns, _, info = student
    assert ns["huge"]().shape == (2_000_000,)          # 16 MB: under the real cap
    monkeypatch.setattr(bridge, "MAX_ANSWER_BYTES", 2**20)
    small = bridge.StudentKernel(info, timeout=5)
    try:
        with pytest.raises((TimeoutError, RuntimeError)):
            bridge.Remote(small, ns["huge"]._spec)()
    finally:
        small.close()


def test_static_checks_see_the_notebooks_imports_and_helpers_without_its_kernel():
    """On the judge's side a proxy has no __globals__: an alias imported in another cell, or
    a notebook helper that calls TensorFlow, is still found from the submitted text."""
    import types
    from helpers.checks import _numpy_only, cnn_building_blocks  # noqa: F401 - registers answer keys
    from helpers.grading.judge import static_scope
    cells = ["import numpy as np\nimport tensorflow as T\n"
             "from helpers.checks.cnn_building_blocks import conv_reference as _ref\n",
             "def helper(x):\n    return T.nn.relu(x)\n",
             "def conv(x, w, b, p):\n    return _ref(x, w, b, 1, 0), None\n",
             "def pool(x):\n    return helper(x)\n",
             "def fine(x):\n    return np.maximum(x, 0) if x.size else fine(x)\n"]
    scope = static_scope(cells)
    assert scope["imports"]["_ref"] == "helpers.checks.cnn_building_blocks.conv_reference"

    def proxy(name):
        return types.SimpleNamespace(__course_source__=definitions(cells, [name])[name],
                                     __course_scope__=scope)
    assert _numpy_only.library_uses(proxy("conv")) == ["_ref"]
    assert _numpy_only.library_uses(proxy("pool")) == ["T.nn.relu"]
    assert _numpy_only.library_uses(proxy("fine")) == []


def test_the_imports_rerun_in_the_students_kernel_are_ones_it_can_import(tmp_path):
    """Before each test cell that runs in the student's kernel the guard re-runs the source's
    imports there. Imports of the grading machinery (hidden from that kernel's sandbox: the
    import fails, and the cell with it) and those of cells the judge runs are not among them."""
    import nbformat
    from helpers.grading.jobs import _source_guard_info
    nb = nbformat.v4.new_notebook()
    cell = lambda src, **meta: nbformat.v4.new_code_cell(src, metadata={"nbgrader": meta})  # noqa: E731
    nb.cells = [cell("import numpy as np\nfrom helpers.checks import gans as checks"),
                cell("x = 1", solution=True, grade_id="a"),
                cell("from helpers.grading.gan_reference import expected_step\nimport helpers.grading.bridge\n"
                     "from helpers import grading\nimport secrets", grade=True, grade_id="t", points=1),
                cell("import json\nfrom helpers.grading import wire", grade=True, grade_id="k", points=1)]
    path = tmp_path / "a.ipynb"
    nbformat.write(nb, path)
    imports, _ = _source_guard_info(path, trusted={"t": ""})
    assert imports.splitlines() == ["import numpy as np", "from helpers.checks import gans as checks", "import json"]
    everything = _source_guard_info(path)[0].splitlines()
    assert "import secrets" in everything and not any("grading" in line for line in everything)


def test_a_kernel_that_prints_without_end_does_not_hold_the_judge_before_a_request():
    """Before each request the judge drops what the kernel printed, for half a second at
    most: a background thread that prints forever must not keep it there."""
    class Flood:
        def get_iopub_msg(self, timeout=0):
            return {"msg_type": "stream", "parent_header": {}}
    kernel = object.__new__(bridge.StudentKernel)
    kernel.kc = Flood()
    start = time.monotonic()
    kernel._drain()
    assert time.monotonic() - start < 2.0


def test_course_models_cross_as_the_call_that_made_them():
    """A model from a rebuildable course constructor crosses as that call; the student's side
    makes its own copy. A call to anything but a course constructor is refused there."""
    pytest.importorskip("tensorflow")
    from helpers.checks.network_visualization import tiny_model
    model = tiny_model(seed=3, size=4, classes=2)
    sender = object.__new__(bridge.StudentKernel)
    data = json.loads(json.dumps(wire.encode({"model": model, "n": 1}, sender._outgoing)))
    assert data["d"][0][1]["recipe"] == ["helpers.checks.network_visualization", "tiny_model"]
    copy = wire.decode(data, wire._local)["model"]
    assert copy is not model
    x = np.ones((1, 4, 4, 3), np.float32)
    assert np.array_equal(np.asarray(copy(x)), np.asarray(model(x)))
    with pytest.raises(TypeError, match="cannot pass"):
        wire.encode(object(), sender._outgoing)
    for module, name in (("os", "system"), ("helpers.grading.batch", "grade")):
        evil = {"recipe": [module, name], "args": {"l": ["true"]}, "kwargs": {"d": []}}
        with pytest.raises(wire.WireError, match="not a course constructor"):
            wire.decode(evil, wire._local)


def test_static_checks_read_the_code_the_name_is_bound_to(student):
    """Under the judge the NumPy-only check reads the text whose compiled code is what the
    name is bound to in the student's kernel: a decoy def rebound through globals() is read
    as the function that really runs; code made by exec matches no text and fails; a class
    with a method added later is still its class text."""
    from helpers.checks._compare import CheckFailed
    from helpers.checks._numpy_only import check_numpy_only, library_uses
    from helpers.grading.judge import code_index, static_scope
    names = ["relu", "made", "Net", "plain"]
    ns = {}
    bridge.bind(ns, names, definitions([REBOUND], names), static_scope([REBOUND]),
                code_index([REBOUND]))
    assert ns["relu"].__course_source__.startswith("def fast")
    assert library_uses(ns["relu"]) == ["tf.nn.relu"]
    assert ns["made"].__course_source__ == ""
    with pytest.raises(CheckFailed, match="cannot find the code that made is bound to"):
        check_numpy_only(ns["made"], "made", "the identity")
    assert ns["Net"].__course_source__.startswith("class Net")
    assert library_uses(ns["Net"]) == []
    assert ns["plain"].__course_source__.startswith("def plain")
    assert library_uses(ns["plain"]) == ["tf.abs"]          # the lambda helper is bound to


def test_number_types_cross_as_themselves():
    """cs231n passes ``dtype=np.float64`` (the type, not a dtype) to CaptioningRNN."""
    for t in (np.float64, np.float32, np.int64):
        back, handles = _roundtrip({"dtype": t})
        assert back["dtype"] is t and not handles
    back, handles = _roundtrip([np.floating, np.object_])    # abstract or not a number: handles
    assert len(handles) == 2


def _judged_course(root, test_source):
    """A one-cell course whose judged test runs ``test_source``, and a correct submission."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    def grading(kind, gid):
        meta = {"schema_version": 3, "grade_id": gid, "task": False, "locked": kind == "test",
                "solution": kind == "solution", "grade": kind == "test"}
        return {"nbgrader": {**meta, "points": 1.0} if kind == "test" else meta}
    nb = new_notebook(metadata={"kernelspec": {"display_name": "Python 3", "language": "python",
                                               "name": "python3"},
                                "course": {"judge": "trusted", "cell_timeout": 120}})
    nb.cells = [new_code_cell("import numpy as np"),
                new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION",
                              metadata=grading("solution", "f")),
                new_code_cell(test_source, metadata=grading("test", "calls")),
                new_code_cell("g = 2"),
                new_code_cell("assert f(5) == 5", metadata=grading("test", "after"))]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    for path in (root / "solutions" / "loop" / "loop.ipynb", root / "sub" / "amy" / "loop" / "loop.ipynb"):
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)


def test_a_notebook_that_ends_before_the_judge_has_booted_leaves_no_judge_behind(tmp_path, monkeypatch):
    """The judge boots beside the student's kernel. A submission with nothing to run (its
    answer emptied, its tests deleted) ends while the judge still imports TensorFlow: that
    judge's kernel is killed and its folder removed, not left running for the rest of the
    class (red team: three such submissions left three 600 MB kernels behind)."""
    import shutil
    import tempfile
    from pathlib import Path

    import nbformat
    from helpers.grading import batch
    _judged_course(tmp_path, "assert f(1) == 1")
    src = tmp_path / "solutions" / "loop" / "loop.ipynb"
    nb = nbformat.read(src, as_version=4)
    nb.cells[0].source = "import numpy as np\nimport tensorflow as tf"     # a judge that boots slowly
    nbformat.write(nb, src)
    sub = tmp_path / "sub" / "amy" / "loop" / "loop.ipynb"
    nb.cells = [nb.cells[1]]
    nb.cells[0].source = ""
    nbformat.write(nb, sub)
    scratch = Path(tempfile.mkdtemp(prefix="cj-", dir="/tmp"))   # short: Unix socket paths live here
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    from helpers.grading import judge_zygote
    judge_zygote.Zygote.close_all()                  # the zygote this test starts lives in scratch too
    try:
        [res] = batch.grade(tmp_path / "sub", work=tmp_path / "work", solutions=tmp_path / "solutions",
                            feedback=False, workers=1, log=lambda *a, **k: None)
        running = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:      # a kernel started as a new process names its folder; a forked one sits in it
                if str(scratch).encode() in (proc / "cmdline").read_bytes() or \
                        os.readlink(proc / "cwd").startswith(str(scratch) + "/course-judge-"):
                    running.append(proc.name)
            except OSError:
                continue
        judge_zygote.Zygote.close_all()
        left = [p.name for p in scratch.iterdir()]
    finally:
        monkeypatch.undo()
        shutil.rmtree(scratch, ignore_errors=True)
    assert (res.status, res.score, res.reason) == ("graded", 0.0, "")
    assert left == [], left
    assert running == [], f"judge kernels left running: {running}"


def test_the_drain_stops_at_its_own_markers_idle_only():
    """After a judged cell the grader drops IOPub frames until the idle status of its own
    marker request: not at another request's idle, a busy status, or a malformed message."""
    from helpers.grading.execute import _is_idle_of

    def frames(msg_type, parent_id, state):
        header = json.dumps({"msg_type": msg_type, "msg_id": "x"}).encode()
        parent = json.dumps({"msg_id": parent_id}).encode()
        content = json.dumps({"execution_state": state}).encode()
        return [b"kernel.status", b"<IDS|MSG>", b"sig", header, parent, b"{}", content]

    mine = b"5f1c0e8a-marker"
    assert _is_idle_of(frames("status", "5f1c0e8a-marker", "idle"), mine)
    assert not _is_idle_of(frames("status", "5f1c0e8a-marker", "busy"), mine)
    assert not _is_idle_of(frames("status", "judge-call-17", "idle"), mine)
    assert not _is_idle_of(frames("status", "5f1c0e8a-marker-but-longer", "idle"), mine)
    assert not _is_idle_of(frames("stream", "5f1c0e8a-marker", "idle"), mine)
    assert not _is_idle_of([b"<IDS|MSG>", b"sig"], mine)
    assert not _is_idle_of([b"no delimiter"], mine)
    bad = frames("status", "5f1c0e8a-marker", "idle")
    assert not _is_idle_of(bad[:6] + [b"not json"], mine)
    assert not _is_idle_of(bad[:4] + [b'["5f1c0e8a-marker"]'] + bad[5:], mine)


def test_a_judged_cell_of_thousands_of_calls_leaves_the_next_cells_on_time(tmp_path):
    """Each call of the judge leaves IOPub messages that the notebook's own client receives
    too; after 3,000 of them the next cell must not wait past nbclient's IOPub timeout (it
    was marked 'ran past ... s' and the CSV's reason said so)."""
    from helpers.grading import batch
    _judged_course(tmp_path, "for _i in range(3000):\n    assert f(_i) == _i")
    batch.grade(tmp_path / "sub", work=tmp_path / "work", solutions=tmp_path / "solutions",
                feedback=False, workers=1, log=lambda *a, **k: None)
    result = json.loads((tmp_path / "work" / "results" / "amy" / "loop.json").read_text())
    assert (result["score"], result["max_score"], result["reason"]) == (2.0, 2.0, "")


def test_a_judged_test_that_will_not_stop_times_out_and_the_judge_restarts(tmp_path):
    """A judged test that ignores the interrupt is marked 'ran past' and the judge's kernel is
    restarted (its imports rerun, killably): the next judged test is graded as usual."""
    import nbformat
    from helpers.grading import batch
    _judged_course(tmp_path, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                             "assert f(1) == 1\nwhile True:\n    pass")
    for path in (tmp_path / "solutions" / "loop" / "loop.ipynb", tmp_path / "sub" / "amy" / "loop" / "loop.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nb.metadata["course"]["cell_timeout"] = 5
        nbformat.write(nb, path)
    batch.grade(tmp_path / "sub", work=tmp_path / "work", solutions=tmp_path / "solutions",
                feedback=False, workers=1, log=lambda *a, **k: None)
    result = json.loads((tmp_path / "work" / "results" / "amy" / "loop.json").read_text())
    assert (result["score"], result["max_score"]) == (1.0, 2.0), result
    assert "ran past 5 s" in json.dumps(result), result
