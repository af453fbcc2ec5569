"""helpers.plots.diagrams: each diagram renders (Agg) and draws what the notebook computed (#22)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.authoring import solution_namespace  # noqa: E402
from helpers.plots import diagrams  # noqa: E402
from conftest import REPO  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _render(fig):
    fig.canvas.draw()
    return fig


def test_transposed_scatter_sums_kernel_copies_like_keras():
    import keras
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    k = np.arange(1.0, 10.0).reshape(3, 3) / 9
    copies, out = diagrams.transposed_scatter(x, k, stride=2)
    assert copies.shape == (2, 2, 5, 5) and out.shape == (5, 5)
    assert out[2, 2] == pytest.approx(k[2, 2] * 1 + k[2, 0] * 2 + k[0, 2] * 3 + k[0, 0] * -1)
    layer = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="valid", use_bias=False, dtype="float64")
    layer.build((None, 2, 2, 1))
    layer.kernel.assign(k[:, :, None, None])
    assert np.allclose(np.asarray(layer(x[None, :, :, None]))[0, :, :, 0], out)
    fig = _render(diagrams.show_transposed_scatter(x, k, stride=2))
    titles = [ax.get_title() for ax in fig.axes]
    assert "sum: output 5x5" in titles and "copies overlapping" in titles
    with pytest.raises(ValueError, match="at most 9 input pixels"):
        diagrams.show_transposed_scatter(np.ones((4, 4)), k)


def _build_fcn():
    import keras
    ns = solution_namespace(REPO / "solutions" / "upsampling_fcn" / "upsampling_fcn.ipynb",
                            {"keras": keras, "np": np}, grade_ids=["upsampling_fcn_fcn_impl"],
                            include=lambda cell: cell.source.startswith("def conv_block"))
    return ns["build_fcn"]


def test_fcn_diagram_is_read_from_the_model():
    build_fcn = _build_fcn()
    nodes = diagrams.fcn_graph(build_fcn(4, skips=True), input_size=64)
    kinds = [n["kind"] for n in nodes]
    assert sum(k == "Add" for k in kinds) == 2
    assert "Conv2D 16, 3x3+BN+ReLU" in kinds                    # batch norm and ReLU folded in
    adds = [n for n in nodes if n["kind"] == "Add"]
    assert [a["shape"] for a in adds] == [(16, 16, 4), (32, 32, 4)]
    assert all(len(a["inputs"]) == 2 for a in adds)
    assert nodes[-1]["shape"] == (64, 64, 4)
    fig = _render(diagrams.show_fcn(build_fcn(4, skips=True)))
    assert "2 additions" in fig.axes[0].get_title()
    plain = diagrams.fcn_graph(build_fcn(4, skips=False))
    assert not any(n["kind"] == "Add" for n in plain)
    _render(diagrams.show_fcn(build_fcn(4, skips=False)))


def test_lstm_gates_recomputed_from_parameters_not_the_cache():
    from helpers.captioning import sigmoid
    ns = solution_namespace(REPO / "solutions" / "lstm_captioning" / "lstm_captioning.ipynb",
                            {"np": np, "sigmoid": sigmoid},
                            grade_ids=["lstm_captioning_step_forward_impl", "lstm_captioning_forward_impl"])
    rng = np.random.default_rng(0)
    N, T, D, H = 2, 6, 3, 4
    x, h0 = rng.normal(size=(N, T, D)), rng.normal(size=(N, H))
    Wx, Wh, b = rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H)
    h, _ = ns["lstm_forward"](x, h0, Wx, Wh, b)
    gates = diagrams.lstm_gates(x, h0, Wx, Wh, b, h)
    assert {k: v.shape for k, v in gates.items()} == {k: (N, T, H) for k in ("i", "f", "o", "g", "c", "h_check")}
    assert np.allclose(gates["h_check"], h, atol=1e-12)
    assert np.all((gates["f"] > 0) & (gates["f"] < 1)) and np.all(np.abs(gates["g"]) < 1)

    def opaque_cache(x, h0, Wx, Wh, b):                       # a cache the plot must not read
        return ns["lstm_forward"](x, h0, Wx, Wh, b)[0], object()
    fig = _render(diagrams.show_lstm_gates(opaque_cache, x, h0, Wx, Wh, b, n=1))
    assert len(fig.axes) == 12                                  # six maps and their colour bars
    assert "max |h - o·tanh(c)| = " in fig._suptitle.get_text()
