"""Tests of the calcium-imaging movie simulator (skvarae.datasets)."""

import doctest

import numpy as np
import pytest
from scipy import ndimage
from sklearn.utils import Bunch

from skvarae import datasets
from skvarae.datasets import PRESETS, make_calcium_movies, movie_statistics


@pytest.fixture(scope="module")
def data():
    return make_calcium_movies(random_state=0)


def _noiseless_frames(d, run):
    """anatomy + sum_i brightness_i footprint_i traces_i(t), (n_frames, height, width)."""
    weighted = d.brightness[:, None, None] * d.footprints
    return d.anatomy + np.tensordot(d.traces[run], weighted, axes=1)


def _lagged_ols(series_list):
    """Least squares of x[t] on [1, x[t-1]] pooled over runs: coef (d, d) and t-statistics."""
    lagged = np.concatenate([s[:-1] for s in series_list])
    current = np.concatenate([s[1:] for s in series_list])
    design = np.column_stack([np.ones(len(lagged)), lagged])
    beta, *_ = np.linalg.lstsq(design, current, rcond=None)
    resid = current - design @ beta
    sigma2 = (resid ** 2).sum(0) / (len(design) - design.shape[1])
    cov_diag = np.diag(np.linalg.inv(design.T @ design))
    se = np.sqrt(np.outer(cov_diag, sigma2))  # (1 + d, d)
    return beta[1:].T, (beta / se)[1:].T  # [i, j]: effect of j on i


def test_shapes_and_dtypes(data):
    n_cells = 12
    assert isinstance(data, Bunch)
    assert data.movies.shape == (4, 200, 32, 32)
    assert data.movies.dtype == np.float32
    assert data.conditions.tolist() == [0, 1, 0, 1]
    assert data.condition_names == ("familiar", "novel")
    assert data.anatomy.shape == data.background.shape == (32, 32)
    assert data.vessel_mask.shape == data.driver_mask.shape == (32, 32)
    assert data.vessel_mask.dtype == data.driver_mask.dtype == bool
    assert data.footprints.shape == (n_cells, 32, 32)
    assert data.centers.shape == (n_cells, 2)
    assert data.brightness.shape == (n_cells,)
    assert data.coef.shape == (2, n_cells, n_cells)
    for name in ("activity", "rates", "traces"):
        assert data[name].shape == (4, 200, n_cells)
    assert data.shifts.shape == (4, 200, 2)
    assert data.drivers.shape == (2,) and data.targets.shape == (4,)
    assert data.roles.shape == (n_cells,)
    assert isinstance(data.DESCR, str) and "VAR(1)" in data.DESCR


def test_custom_sizes():
    d = make_calcium_movies(3, 50, (24, 40), n_cells=6, n_drivers=1, n_targets=2,
                            random_state=1)
    assert d.movies.shape == (3, 50, 24, 40)
    assert d.footprints.shape == (6, 24, 40)
    assert d.conditions.tolist() == [0, 1, 0]
    assert np.count_nonzero(d.coef[0] - np.diag(np.diag(d.coef[0]))) == 2


@pytest.mark.parametrize(
    "make_state",
    [lambda: 7, lambda: np.random.RandomState(7), lambda: np.random.default_rng(7)],
    ids=["int", "RandomState", "Generator"],
)
def test_same_seed_bit_identical(make_state):
    a = make_calcium_movies(2, 60, random_state=make_state())
    b = make_calcium_movies(2, 60, random_state=make_state())
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key]


def test_different_seeds_differ():
    a = make_calcium_movies(2, 60, random_state=0)
    b = make_calcium_movies(2, 60, random_state=1)
    assert not np.array_equal(a.movies, b.movies)
    assert not np.array_equal(a.anatomy, b.anatomy)
    assert not np.array_equal(a.activity, b.activity)


def test_more_runs_keep_the_earlier_ones():
    short = make_calcium_movies(2, 60, random_state=3)
    long = make_calcium_movies(4, 60, random_state=3)
    np.testing.assert_array_equal(short.movies, long.movies[:2])
    np.testing.assert_array_equal(short.coef, long.coef)
    np.testing.assert_array_equal(short.anatomy, long.anatomy)


def test_footprints_and_driver_mask(data):
    fp = data.footprints
    assert np.all(fp >= 0)
    np.testing.assert_allclose(fp.max(axis=(1, 2)), 1.0)
    # Each soma covers a compact blob of roughly pi * radius**2 pixels (radius 3 +- 15 %).
    area = (fp > 0.5).sum(axis=(1, 2))
    assert np.all((area > 12) & (area < 60)), area
    # Cells are separated (centres at least 1.8 radii apart); elongated somata may touch.
    dist = np.hypot(*(data.centers[:, None] - data.centers[None]).transpose(2, 0, 1))
    assert dist[np.triu_indices(len(fp), 1)].min() >= 1.8 * 3.0
    overlap = (fp > 0.5).sum(axis=0)
    assert (overlap > 1).sum() <= 0.05 * (overlap > 0).sum()
    np.testing.assert_array_equal(data.driver_mask, (fp[data.drivers] > 0.5).any(axis=0))
    assert data.driver_mask.sum() > 0
    # Centres sit on the footprint and off the vessels.
    rows, cols = np.round(data.centers).astype(int).T
    assert np.all(fp[np.arange(len(fp)), rows, cols] > 0.5)
    assert not data.vessel_mask[rows, cols].any()


def test_roles_and_coupling_structure(data):
    coef, drivers, targets = data.coef, data.drivers, data.targets
    assert set(drivers).isdisjoint(targets)
    np.testing.assert_array_equal(np.flatnonzero(data.roles == "driver"), drivers)
    np.testing.assert_array_equal(np.flatnonzero(data.roles == "target"), targets)
    for c in range(2):
        assert np.max(np.abs(np.linalg.eigvals(coef[c]))) < 1
        off = coef[c] - np.diag(np.diag(coef[c]))
        rows, cols = np.nonzero(off)
        # Off-diagonal couplings only from drivers onto targets: targets never act on drivers,
        # independent cells neither send nor receive.
        assert set(rows) <= set(targets) and set(cols) <= set(drivers)
        assert np.all(off[np.ix_(drivers, targets)] == 0)
    base = coef[0] - np.diag(np.diag(coef[0]))
    assert np.all((base[targets][:, drivers] > 0).sum(axis=1) == 1)  # one driver per target
    assert np.all((base[targets][:, drivers] > 0).sum(axis=0) >= 1)  # a target per driver


def test_condition_effect_zero_gives_identical_dynamics():
    d = make_calcium_movies(2, 30, condition_effect=0.0, random_state=0)
    np.testing.assert_array_equal(d.coef[0], d.coef[1])


@pytest.mark.parametrize("effect", [0.3, 1.0])
def test_condition_effect_scales_half_of_the_couplings(effect):
    d = make_calcium_movies(2, 30, condition_effect=effect, random_state=0)
    base = d.coef[0] - np.diag(np.diag(d.coef[0]))
    changed = d.coef[1] != d.coef[0]
    assert changed.sum() == int(np.ceil(np.count_nonzero(base) / 2))
    assert np.all(base[changed] > 0)  # only driver-to-target couplings change
    np.testing.assert_allclose(d.coef[1][changed], (1 - effect) * d.coef[0][changed])
    # The same seed gives the same condition-0 dynamics whatever the effect size.
    d0 = make_calcium_movies(2, 30, condition_effect=0.0, random_state=0)
    np.testing.assert_array_equal(d.coef[0], d0.coef[0])


def test_activity_is_the_var_with_coef(data):
    resid = []
    for r, c in enumerate(data.conditions):
        act = data.activity[r]
        resid.append(act[1:] - act[:-1] @ data.coef[c].T)
    resid = np.concatenate(resid)
    # Unit-variance, zero-mean innovations: ~800 samples per cell, ~9600 pooled.
    np.testing.assert_allclose(resid.mean(0), 0, atol=0.2)
    np.testing.assert_allclose(resid.std(0), 1, atol=0.15)
    assert abs(resid.std() - 1) < 0.03
    np.testing.assert_allclose(data.rates, np.maximum(data.activity - 1.0, 0))
    assert np.all(data.traces >= 0)


def test_drivers_drive_targets_in_activity(data):
    runs = [data.activity[r] for r in np.flatnonzero(data.conditions == 0)]
    est, tstat = _lagged_ols(runs)
    true = data.coef[0]
    drivers, targets = data.drivers, data.targets
    edges = true[np.ix_(targets, drivers)] != 0
    # Driver -> target couplings are recovered and strongly significant ...
    assert np.all(np.abs(tstat[np.ix_(targets, drivers)][edges]) > 8)
    np.testing.assert_allclose(est[np.ix_(targets, drivers)][edges],
                               true[np.ix_(targets, drivers)][edges], atol=0.15)
    # ... while target -> driver effects are indistinguishable from zero.
    assert np.all(np.abs(tstat[np.ix_(drivers, targets)]) < 4.5)
    assert np.all(np.abs(est[np.ix_(drivers, targets)]) < 0.2)


def test_drivers_granger_cause_targets_in_traces():
    # Through the rectification and the indicator the coupling is no longer exactly linear:
    # a target's trace may carry a weak Granger-causal signal about its driver (the driver's
    # sub-threshold activity), so the test asks for a strong forward and a much weaker reverse
    # effect rather than an exact zero.
    statsmodels_var = pytest.importorskip("statsmodels.tsa.api").VAR
    d = make_calcium_movies(1, 600, random_state=0)
    forward, reverse = [], []
    for target, driver in zip(*np.nonzero(d.coef[0])):
        if target == driver:
            continue
        res = statsmodels_var(d.traces[0][:, [driver, target]]).fit(2)
        forward.append(res.test_causality(1, [0], kind="f"))
        reverse.append(res.test_causality(0, [1], kind="f"))
    assert len(forward) == 4
    assert max(f.pvalue for f in forward) < 1e-8
    for f, r in zip(forward, reverse):
        assert f.test_statistic > 5 * r.test_statistic


def test_movie_is_anatomy_plus_cell_fluorescence_without_noise():
    d = make_calcium_movies(2, 40, photons_per_unit=None, read_noise=0.0, random_state=2)
    for r in range(2):
        np.testing.assert_allclose(d.movies[r], _noiseless_frames(d, r), rtol=1e-6)
    assert np.all(d.shifts == 0)


def test_shot_noise_variance_is_proportional_to_brightness():
    photons, read = 50.0, 0.01
    d = make_calcium_movies(2, 200, photons_per_unit=photons, read_noise=read, random_state=4)
    expected = np.stack([_noiseless_frames(d, r) for r in range(2)])
    z = (d.movies - expected) / np.sqrt(expected / photons + read ** 2)
    dark = expected < np.quantile(expected, 0.3)
    bright = expected > np.quantile(expected, 0.7)
    assert abs(z.mean()) < 0.02
    assert abs(z[dark].std() - 1) < 0.05 and abs(z[bright].std() - 1) < 0.05
    # Variance grows with brightness (not a constant noise level).
    resid = d.movies - expected
    assert resid[bright].var() > 2 * resid[dark].var()


def test_movies_finite_positive_and_show_the_anatomy(data):
    movies = data.movies
    assert np.all(np.isfinite(movies))
    assert np.all(data.anatomy > 0)
    mean_frame = movies.mean(axis=(0, 1))
    assert np.all(mean_frame > 0)
    assert (movies < 0).mean() < 1e-3
    assert np.corrcoef(mean_frame.ravel(), data.anatomy.ravel())[0, 1] > 0.9
    # Non-sparse static structure: the background fills the frame ...
    assert (data.background > 0.25 * np.median(data.background)).mean() > 0.9
    # ... and vessels are darker than the rest of it.
    assert data.vessel_mask.any()
    inside, outside = data.background[data.vessel_mask], data.background[~data.vessel_mask]
    assert inside.mean() < 0.6 * outside.mean()


def test_traces_are_visible_in_the_movie(data):
    # Unmixing the movie with the true footprints recovers the traces.
    weighted = (data.brightness[:, None, None] * data.footprints).reshape(len(data.brightness), -1)
    dynamic = (data.movies[0] - data.anatomy).reshape(len(data.movies[0]), -1)
    unmixed = np.linalg.lstsq(weighted.T, dynamic.T, rcond=None)[0].T
    corr = [np.corrcoef(u, t)[0, 1] for u, t in zip(unmixed.T, data.traces[0].T)]
    # Cells that happen to be nearly silent in a run are the hardest to unmix.
    assert min(corr) > 0.8 and np.median(corr) > 0.95


def test_bleaching_dims_the_movie():
    rate = 2e-3
    d = make_calcium_movies(2, 200, bleaching=rate, random_state=0)
    per_frame = d.movies.mean(axis=(0, 2, 3))
    no_bleach = make_calcium_movies(2, 200, random_state=0).movies.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(per_frame / no_bleach, np.exp(-rate * np.arange(200)), rtol=0.02)


def test_jitter_shifts_the_frames():
    d = make_calcium_movies(1, 100, jitter=1.0, photons_per_unit=None, read_noise=0.0,
                            random_state=5)
    assert 0.8 < d.shifts.std() < 1.2
    expected = _noiseless_frames(d, 0)
    t = int(np.argmax(np.abs(d.shifts[0]).sum(axis=1)))
    shifted = ndimage.shift(expected[t], d.shifts[0, t], order=1, mode="nearest")
    np.testing.assert_allclose(d.movies[0, t], shifted, rtol=1e-5, atol=1e-6)
    assert np.abs(d.movies[0, t] - expected[t]).max() > 0.1


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_runs": 0}, ValueError, "n_runs"),
        ({"n_runs": 2.0}, TypeError, "n_runs"),
        ({"n_runs": True}, TypeError, "n_runs"),
        ({"n_frames": 1}, ValueError, "n_frames"),
        ({"frame_shape": 32}, TypeError, "frame_shape"),
        ({"frame_shape": (32, 32, 3)}, ValueError, "frame_shape"),
        ({"frame_shape": (32, 2)}, ValueError, r"frame_shape\[1\]"),
        ({"frame_shape": (32.0, 32)}, TypeError, r"frame_shape\[0\]"),
        ({"n_cells": 1}, ValueError, "n_cells"),
        ({"n_drivers": 0}, ValueError, "n_drivers"),
        ({"n_drivers": 3, "n_targets": 2}, ValueError, "n_targets"),
        ({"n_cells": 5, "n_drivers": 2, "n_targets": 4}, ValueError, "n_cells"),
        ({"cell_radius": 0.0}, ValueError, "cell_radius"),
        ({"ar_coef": 1.0}, ValueError, "ar_coef"),
        ({"ar_coef": "0.5"}, TypeError, "ar_coef"),
        ({"coupling": 0.0}, ValueError, "coupling"),
        ({"condition_effect": 1.5}, ValueError, "condition_effect"),
        ({"condition_effect": -0.1}, ValueError, "condition_effect"),
        ({"spike_threshold": np.nan}, ValueError, "spike_threshold"),
        ({"tau_rise": -1.0}, ValueError, "tau_rise"),
        ({"tau_decay": 0.0}, ValueError, "tau_decay"),
        ({"dff": 0.0}, ValueError, "dff"),
        ({"background_level": -0.1}, ValueError, "background_level"),
        ({"cell_brightness": 0.0}, ValueError, "cell_brightness"),
        ({"n_vessels": -1}, ValueError, "n_vessels"),
        ({"vessel_width": 0.0}, ValueError, "vessel_width"),
        ({"vessel_contrast": 1.2}, ValueError, "vessel_contrast"),
        ({"photons_per_unit": 0.0}, ValueError, "photons_per_unit"),
        ({"photons_per_unit": np.inf}, ValueError, "photons_per_unit"),
        ({"read_noise": -0.01}, ValueError, "read_noise"),
        ({"bleaching": -1e-3}, ValueError, "bleaching"),
        ({"jitter": -1.0}, ValueError, "jitter"),
        ({"random_state": "seed"}, ValueError, "seed"),
        ({"n_cells": 60, "n_targets": 4}, ValueError, "n_cells=60"),
    ],
)
def test_invalid_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_calcium_movies(**{"n_runs": 1, "n_frames": 10, **kwargs})


def test_keyword_only_parameters():
    with pytest.raises(TypeError):
        make_calcium_movies(1, 10, (32, 32), 12)


def test_docstring_examples():
    result = doctest.testmod(datasets, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------ neuropil, preset, statistics
def test_neuropil_adds_a_diffuse_copy_of_the_cells():
    kwargs = dict(n_runs=1, n_frames=50, photons_per_unit=None, read_noise=0.0, random_state=3)
    plain = make_calcium_movies(**kwargs)
    with_neuropil = make_calcium_movies(neuropil=0.5, **kwargs)
    assert not np.any(plain.neuropil_footprints)
    extra = with_neuropil.movies[0] - plain.movies[0]
    expected = np.tensordot(plain.traces[0], with_neuropil.neuropil_footprints, axes=1)
    np.testing.assert_allclose(extra, expected, atol=1e-5)
    # Diffuse: it reaches pixels outside every cell, and its weights average 0.5 / background.
    outside = (plain.footprints < 1e-3).all(axis=0)
    assert with_neuropil.neuropil_footprints.sum(axis=0)[outside].max() > 0
    ratio = with_neuropil.neuropil_footprints.sum(axis=0) / plain.background
    np.testing.assert_allclose(ratio.mean(), 0.5, rtol=1e-6)


def test_preset_sets_defaults_and_explicit_arguments_win():
    a = make_calcium_movies(n_runs=1, n_frames=20, preset="two_photon", random_state=0)
    b = make_calcium_movies(n_runs=1, n_frames=20, random_state=0, **PRESETS["two_photon"])
    np.testing.assert_array_equal(a.movies, b.movies)
    c = make_calcium_movies(n_runs=1, n_frames=20, preset="two_photon", neuropil=0.0,
                            random_state=0)
    assert not np.any(c.neuropil_footprints)
    with pytest.raises(ValueError, match="preset must be"):
        make_calcium_movies(preset="widefield")


def test_two_photon_preset_matches_the_real_movie_statistics():
    # Real mouse two-photon movie (see the make_calcium_movies Notes): median lag-1
    # autocorrelation 0.04 (full), 0.21 (4x4 binned); noise 98 % of the pixel s.d.
    movie = make_calcium_movies(
        n_runs=1, n_frames=300, frame_shape=(64, 64), n_cells=10, cell_radius=3.5,
        preset="two_photon", random_state=5,
    ).movies[0]
    stats = movie_statistics(movie)
    assert 0.02 <= stats["lag1_median"][1] <= 0.07
    assert 0.05 <= stats["lag1_median"][2] <= 0.16
    assert 0.12 <= stats["lag1_median"][4] <= 0.35
    assert stats["noise_fraction_median"][1] >= 0.95
    # Without the preset the background is static: the median pixel, outside the cells, is
    # white noise even after binning, unlike the real movie.
    clean = make_calcium_movies(
        n_runs=1, n_frames=300, frame_shape=(64, 64), n_cells=10, cell_radius=3.5,
        random_state=5,
    ).movies[0]
    assert movie_statistics(clean, bins=(4,))["lag1_median"][4] < 0.1


def test_movie_statistics_on_white_noise_and_a_drift():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((400, 8, 8)) + 10.0
    stats = movie_statistics(noise)
    assert abs(stats["lag1_median"][1]) < 0.05
    assert stats["noise_fraction_median"][1] > 0.95
    assert abs(stats["drift"]) < 0.01
    ramp = noise + np.linspace(0, 5, 400)[:, None, None]
    assert movie_statistics(ramp)["drift"] > 0.3
    with pytest.raises(ValueError, match="at least 3 frames"):
        movie_statistics(noise[:2])
