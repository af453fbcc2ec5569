"""helpers.plots.cnn_building_blocks: every figure renders from small arrays (Agg backend)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from helpers.plots import cnn_building_blocks as plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _images(ax):
    return ax.get_images()


def test_show_equivariance_draws_five_panels_and_the_difference():
    rng = np.random.default_rng(0)
    x, fm = rng.normal(size=(6, 7)), rng.normal(size=(6, 7))
    shifted_fm = np.zeros_like(fm)
    shifted_fm[1:, 2:] = fm[:-1, :-2]                    # an exactly equivariant pair
    fig = plots.show_equivariance(x, fm, np.roll(x, (1, 2), (0, 1)), shifted_fm, shift=(1, 2))
    assert isinstance(fig, Figure) and len(fig.axes) == 5
    assert all(len(_images(ax)) == 1 for ax in fig.axes)
    diff = np.asarray(_images(fig.axes[4])[0].get_array())
    assert diff.shape == (6, 7) and np.allclose(diff, 0)
    assert "(1, 2)" in fig.axes[2].get_title()
    fig.canvas.draw()


def test_show_equivariance_without_shift_still_renders():
    a = np.ones((4, 4))
    fig = plots.show_equivariance(a, a, a, a)
    assert len(fig.axes) == 5
    fig.canvas.draw()


def test_show_rotation_pooling_two_images_and_bars():
    x = np.arange(20.0).reshape(4, 5)
    fig = plots.show_rotation_pooling(x, np.rot90(x), np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.5]))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert len(_images(fig.axes[0])) == 1 and len(_images(fig.axes[1])) == 1
    assert len(fig.axes[2].patches) == 6                 # 3 filters x (original, rotated)
    fig.canvas.draw()


@pytest.mark.parametrize("shared", [False, True])
def test_show_maps_one_axis_per_map_with_sizes(shared):
    maps = {"image": np.eye(4), "pooled": np.ones((2, 2)) * 0.5, "tiny": np.zeros((1, 3))}
    fig = plots.show_maps(maps, shared_scale=shared)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert [len(_images(ax)) for ax in fig.axes] == [1, 1, 1]
    assert "2x2" in fig.axes[1].get_title() and "1x3" in fig.axes[2].get_title()
    if shared:
        assert _images(fig.axes[1])[0].get_clim() == (0.0, 1.0)
    fig.canvas.draw()
