"""Tests of skvarae.plotting (matplotlib figures; skipped when matplotlib is not installed)."""

import importlib
import sys

import numpy as np
import pytest
import torch

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from skvarae import SparseVARAutoencoder  # noqa: E402
from skvarae.plotting import (  # noqa: E402
    plot_coef,
    plot_coef_from_estimator,
    plot_contribution_map,
    plot_contribution_map_from_estimator,
    plot_difference_map,
    plot_forecast,
    plot_forecast_from_estimator,
    plot_history,
    plot_history_from_estimator,
)
from skvarae.var import fit_var, forecast_var  # noqa: E402

TINY = dict(latent_channels=1, max_latent_side=2, base_channels=2, max_epochs=2, random_state=0)
FRAME_SHAPE = (6, 5)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def movies():
    return np.random.default_rng(0).random((3, 24, *FRAME_SHAPE), dtype=np.float32)


@pytest.fixture(scope="module")
def fitted(movies):
    return SparseVARAutoencoder(**TINY).fit(movies)


@pytest.fixture
def rng():
    return np.random.default_rng(1)


def _colorbars(fig):
    """Colour bars of a figure: the images that own one."""
    return [im for ax in fig.axes for im in ax.images if im.colorbar is not None]


def _is_symmetric(image):
    vmin, vmax = image.get_clim()
    return vmax > 0 and vmin == -vmax


# --- lazy import -------------------------------------------------------------------------------


def _block_matplotlib(monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_import_without_matplotlib_then_clear_error_on_use(monkeypatch):
    _block_matplotlib(monkeypatch)
    monkeypatch.delitem(sys.modules, "skvarae.plotting")
    module = importlib.import_module("skvarae.plotting")  # no matplotlib needed to import

    with pytest.raises(ImportError, match=r'pip install "skvarae\[plot\]"'):
        module.plot_contribution_map(np.ones((4, 4)))
    with pytest.raises(ImportError, match=r'pip install "skvarae\[plot\]"'):
        module.plot_coef(np.ones((1, 2, 2)))
    with pytest.raises(ImportError, match=r'pip install "skvarae\[plot\]"'):
        module.plot_history([{"loss": 1.0}])


# --- contribution map --------------------------------------------------------------------------


def test_contribution_map_over_mean_frame(rng):
    fig = plot_contribution_map(rng.random(FRAME_SHAPE), rng.random(FRAME_SHAPE), title="Ω")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # the map and its colour bar
    assert len(ax.images) == 2  # grey mean frame, then the map on top
    assert ax.images[0].get_cmap().name == "gray"
    assert ax.images[1].get_alpha() == 0.6
    assert ax.get_title() == "Ω"
    assert _colorbars(fig) == [ax.images[1]]


def test_contribution_map_alone_into_given_axes(rng):
    fig, (left, right) = plt.subplots(1, 2)
    out = plot_contribution_map(rng.random(FRAME_SHAPE), ax=right, cmap="viridis")
    assert out is fig
    assert len(right.images) == 1 and not left.images
    assert right.images[0].get_cmap().name == "viridis"
    assert right.images[0].get_alpha() is None  # opaque without a mean frame


def test_contribution_map_accepts_duck_typed_estimator(rng):
    class Stub:
        mean_frame_ = rng.random(FRAME_SHAPE)

        def fit(self, X):
            return self

        def contribution_map(self, X=None):
            return np.full(FRAME_SHAPE, 2.0)

    fig = plot_contribution_map_from_estimator(Stub())
    images = fig.axes[0].images
    assert len(images) == 2
    np.testing.assert_array_equal(images[0].get_array(), Stub.mean_frame_)
    np.testing.assert_array_equal(images[1].get_array(), np.full(FRAME_SHAPE, 2.0))


def test_contribution_map_of_fitted_estimator(fitted):
    if not hasattr(fitted, "contribution_map"):
        pytest.skip("SparseVARAutoencoder.contribution_map is not available yet")
    fig = plot_contribution_map_from_estimator(fitted)
    ax = fig.axes[0]
    assert len(ax.images) == 2
    assert ax.images[1].get_array().shape == FRAME_SHAPE
    np.testing.assert_allclose(ax.images[0].get_array(), fitted.mean_frame_)


@pytest.mark.parametrize(
    "plot",
    [plot_contribution_map_from_estimator, plot_coef_from_estimator, plot_history_from_estimator],
)
def test_unfitted_estimator_is_refused(plot):
    with pytest.raises(NotFittedError, match="fit"):
        plot(SparseVARAutoencoder(**TINY))


def test_forecast_refuses_unfitted_estimator(movies):
    with pytest.raises(NotFittedError, match="fit"):
        plot_forecast_from_estimator(SparseVARAutoencoder(**TINY), movies[0])


def test_contribution_map_needs_the_method(rng):
    class Stub:
        mean_frame_ = rng.random(FRAME_SHAPE)

        def fit(self, X):
            return self

    with pytest.raises(AttributeError, match="contribution_map"):
        plot_contribution_map_from_estimator(Stub())


@pytest.mark.parametrize("plot", [plot_contribution_map, plot_coef, plot_history])
def test_array_entry_points_do_not_guess_estimators(plot, fitted):
    # Regression: the array functions used to guess whether their first argument was a model.
    with pytest.raises(ValueError, match="from_estimator|history must be"):
        plot(fitted)


@pytest.mark.parametrize(
    "contribution, mean_frame, match",
    [
        (np.ones(5), None, "contribution"),
        (np.ones((2, 6, 5)), None, "contribution"),
        (np.ones((0, 5)), None, "contribution"),
        ([["a", "b"]], None, "contribution"),
        (np.ones((6, 5)), np.ones((5, 6)), "mean_frame"),
        (np.ones((6, 5)), np.ones(30), "mean_frame"),
    ],
)
def test_contribution_map_bad_shapes(contribution, mean_frame, match):
    with pytest.raises(ValueError, match=match):
        plot_contribution_map(contribution, mean_frame)


def test_contribution_map_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        plot_contribution_map(np.ones((3, 3)), np.ones((3, 3)), alpha=1.5)


# --- difference map ----------------------------------------------------------------------------


def test_difference_map_is_centred_on_zero(rng):
    map_a, map_b = rng.random(FRAME_SHAPE), rng.random(FRAME_SHAPE)
    fig = plot_difference_map(map_a, map_b, rng.random(FRAME_SHAPE), labels=("F", "N"))
    ax = fig.axes[0]
    assert len(fig.axes) == 2 and len(ax.images) == 2
    difference = ax.images[1]
    np.testing.assert_allclose(difference.get_array(), map_a - map_b)
    assert _is_symmetric(difference)
    assert difference.get_clim()[1] == pytest.approx(np.abs(map_a - map_b).max())
    assert _colorbars(fig) == [difference]
    assert "Omega_{\\mathrm{F}}" in ax.get_title() and "Omega_{\\mathrm{N}}" in ax.get_title()


def test_difference_map_of_identical_maps_has_usable_scale(rng):
    image = rng.random(FRAME_SHAPE)
    fig = plot_difference_map(image, image)
    assert fig.axes[0].images[0].get_clim() == (-1.0, 1.0)


@pytest.mark.parametrize(
    "labels", [("day_1 $5 {x}", "50% ^~&\\ λ=0.003"), ('"#1"', "a$b `c`"), ("a\nb", "")]
)
def test_difference_map_labels_with_special_characters_render(rng, tmp_path, labels):
    fig = plot_difference_map(rng.random(FRAME_SHAPE), rng.random(FRAME_SHAPE), labels=labels)
    fig.savefig(tmp_path / "labels.png")  # the (mathtext) title must parse and draw


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(map_a=np.ones(4), map_b=np.ones(4)), "map_a"),
        (dict(map_a=np.ones((3, 3)), map_b=np.ones((3, 3, 1))), "map_b"),
        (dict(map_a=np.ones((3, 3)), map_b=np.ones((3, 4))), "same shape"),
        (dict(map_a=np.ones((3, 3)), map_b=np.ones((3, 3)), mean_frame=np.ones((4, 3))),
         "mean_frame"),
        (dict(map_a=np.ones((3, 3)), map_b=np.ones((3, 3)), labels=("A",)), "labels"),
        (dict(map_a=np.ones((3, 3)), map_b=np.ones((3, 3)), labels="AB"), "labels"),
    ],
)
def test_difference_map_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_difference_map(**kwargs)


# --- VAR coefficients --------------------------------------------------------------------------


def test_coef_one_panel_per_lag_shared_symmetric_scale(rng):
    coef = rng.normal(size=(3, 4, 4))
    coef[0, 0, 1] = 0.0
    fig = plot_coef(coef)
    assert len(fig.axes) == 4  # three lags and one colour bar
    panels = fig.axes[:3]
    vmax = np.abs(coef).max()
    for k, ax in enumerate(panels):
        (image,) = ax.images
        np.testing.assert_array_equal(image.get_array(), coef[k])
        assert image.get_clim() == pytest.approx((-vmax, vmax))
        assert ax.get_xlabel() == "from latent j"
    assert panels[0].get_ylabel() == "to latent i"
    assert "15/16 non-zero" in panels[0].get_title()
    assert len(_colorbars(fig)) == 1


def test_coef_per_run_mean_by_default_and_run_selection(rng):
    coef = rng.normal(size=(5, 2, 3, 3))
    fig = plot_coef(coef)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), coef.mean(axis=0)[0])
    assert "mean over 5 runs" in fig.get_suptitle()

    fig = plot_coef(coef, run=3)
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), coef[3, 1])
    assert "run 3 of 5" in fig.get_suptitle()


def test_coef_draws_into_given_figure_and_handles_all_zero(rng):
    fig = plt.figure()
    assert plot_coef(np.zeros((1, 2, 2)), fig=fig) is fig
    image = fig.axes[0].images[0]
    assert image.get_clim() == (-1.0, 1.0)
    assert "0/4 non-zero" in fig.axes[0].get_title()


def test_coef_of_fitted_estimator(fitted):
    lags, d = fitted.coef_.shape[1], fitted.coef_.shape[-1]
    fig = plot_coef_from_estimator(fitted, run=1)
    assert len(fig.axes) == lags + 1
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), fitted.coef_[1, 0])
    assert fig.axes[0].images[0].get_array().shape == (d, d)
    assert _is_symmetric(fig.axes[0].images[0])


@pytest.mark.parametrize(
    "coef, run, match",
    [
        (np.ones((2, 2)), None, "coef"),
        (np.ones((1, 1, 2, 2, 2)), None, "coef"),
        (np.ones((1, 2, 3)), None, "square"),
        (np.ones((1, 2, 2)), 0, "run"),
        (np.ones((3, 1, 2, 2)), 3, "run"),
        (np.ones((3, 1, 2, 2)), -1, "run"),
        (np.ones((3, 1, 2, 2)), 1.0, "run"),
    ],
)
def test_coef_bad_inputs(coef, run, match):
    with pytest.raises(ValueError, match=match):
        plot_coef(coef, run=run)


# --- forecasts ---------------------------------------------------------------------------------


def _latents_and_forecasts(n_frames=40, d=5, lags=2):
    Z = torch.randn(n_frames, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    coef, intercept = fit_var(Z, 0.01, lags)
    return Z.numpy(), forecast_var(Z, coef, intercept).numpy()


def test_forecast_panels_lines_and_alignment():
    latents, forecasts = _latents_and_forecasts(lags=2)
    fig = plot_forecast(latents, forecasts, dims=[4, 1])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    for ax, i in zip(fig.axes, [4, 1]):
        observed, forecast = ax.lines
        np.testing.assert_array_equal(observed.get_ydata(), latents[:, i])
        np.testing.assert_array_equal(forecast.get_ydata(), forecasts[:, i])
        np.testing.assert_array_equal(forecast.get_xdata(), np.arange(2, 40))  # t = lags, ...
        assert forecast.get_linestyle() == "--"
        assert forecast.get_color() == observed.get_color()
    assert "lags=2" in fig.axes[0].get_title()


def test_forecast_default_dims_and_given_figure():
    latents, forecasts = _latents_and_forecasts(d=6, lags=1)
    fig = plt.figure()
    assert plot_forecast(latents, forecasts, fig=fig, lags=1) is fig
    assert len(fig.axes) == 4  # the first four of six dimensions

    latents, forecasts = _latents_and_forecasts(d=2, lags=1)
    assert len(plot_forecast(latents, forecasts, dims=1).axes) == 1


def test_forecast_of_fitted_estimator(fitted, movies):
    fig = plot_forecast_from_estimator(fitted, movies[0], dims=[0])
    (ax,) = fig.axes
    observed, forecast = ax.lines
    np.testing.assert_allclose(observed.get_ydata(), fitted.encode(movies[:1])[0][:, 0])
    assert len(forecast.get_ydata()) == movies.shape[1] - fitted.lags
    with pytest.raises(TypeError, match="lags"):
        plot_forecast_from_estimator(fitted, movies[0], lags=fitted.lags + 1)


@pytest.mark.parametrize(
    "latents, forecasts, kwargs, match",
    [
        (np.ones(10), np.ones((9, 1)), {}, "latents"),
        (np.ones((10, 2)), np.ones(9), {}, "forecasts"),
        (np.ones((10, 2)), np.ones((9, 3)), {}, "forecasts"),
        (np.ones((10, 2)), np.ones((10, 2)), {}, "forecasts"),
        (np.ones((10, 2)), np.ones((9, 2)), {"lags": 2}, "lags"),
        (np.ones((10, 2)), np.ones((9, 2)), {"dims": [2]}, "dims"),
        (np.ones((10, 2)), np.ones((9, 2)), {"dims": []}, "dims"),
        (np.ones((10, 2)), np.ones((9, 2)), {"dims": ["a"]}, "dims"),
    ],
)
def test_forecast_bad_inputs(latents, forecasts, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_forecast(latents, forecasts, **kwargs)


# --- training history --------------------------------------------------------------------------


def test_history_lines_per_term_log_scale():
    history = [
        {"epoch": e, "loss": 3 / e, "reconstruction": 1 / e, "forecast": 2 / e, "duration": 0.1}
        for e in (1, 2, 3)
    ]
    fig = plot_history(history)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["loss", "reconstruction", "forecast"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    assert ax.get_yscale() == "log"
    assert ax.get_legend() is not None


def test_history_two_stage_without_forecast_and_nonpositive_values():
    fig, ax = plt.subplots()
    history = [{"loss": 0.0, "reconstruction": 0.0}, {"loss": 1.0, "reconstruction": 1.0}]
    assert plot_history(history, ax=ax) is fig
    assert [line.get_label() for line in ax.lines] == ["loss", "reconstruction"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2])  # epochs default to 1, 2, ...
    assert ax.get_yscale() == "linear"  # a log scale would hide the zero loss


def test_history_of_fitted_estimator(fitted):
    fig = plot_history_from_estimator(fitted)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    # Training losses solid, the held-out tails' validation losses dashed after each.
    assert labels[:6] == [
        "loss", "validation_loss", "reconstruction", "validation_reconstruction",
        "forecast", "validation_forecast",
    ]
    assert [line.get_linestyle() for line in ax.lines[1:6:2]] == ["--"] * 3
    assert labels[6].startswith("best epoch")
    assert len(ax.lines[0].get_xdata()) == len(fitted.history_)


@pytest.mark.parametrize(
    "history",
    [[], [{"reconstruction": 1.0}], [1.0, 2.0], {"loss": [1.0]}, 3.0],
)
def test_history_bad_inputs(history):
    with pytest.raises(ValueError, match="history"):
        plot_history(history)


def test_saved_figure_is_a_non_empty_png(rng, tmp_path):
    fig = plot_coef(rng.normal(size=(2, 2, 3, 3)))
    path = tmp_path / "coef.png"
    fig.savefig(path)
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ plot_difference_map_test
def test_plot_difference_map_test_shows_only_significant_pixels():
    from skvarae.plotting import plot_difference_map_test
    from skvarae.stats import permutation_test_maps

    rng = np.random.default_rng(0)
    maps = rng.normal(1.0, 0.1, (8, 6, 6))
    maps[4:, 1:3, 1:3] += 1.0
    result = permutation_test_maps(maps[:4], maps[4:])
    outlines = np.zeros((6, 6), dtype=bool)
    outlines[1:3, 1:3] = True
    fig = plot_difference_map_test(result, rng.random((6, 6)), outlines=outlines,
                                   labels=("F", "N"))
    shown = fig.axes[0].images[-1].get_array()
    np.testing.assert_array_equal(~np.ma.getmaskarray(shown), result.significant())
    assert "4 pixels" in fig.axes[0].get_title()
    vmin, vmax = fig.axes[0].images[-1].get_clim()
    assert vmin == -vmax
    with pytest.raises(ValueError, match="level"):
        plot_difference_map_test(result, level=1.5)
    with pytest.raises(ValueError, match="outlines"):
        plot_difference_map_test(result, outlines=np.zeros((5, 5), bool))
    with pytest.raises(ValueError, match="difference_map_test"):
        plot_difference_map_test(maps)
