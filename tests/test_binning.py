"""Spatial binning (skvarae.binning) and the estimator's ``spatial_bin``."""

import pickle

import numpy as np
import pytest
import torch
from conftest import TINY_PARAMS, make_ar_movies
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import skvarae.estimator
from skvarae import SparseVARAutoencoder
from skvarae.baseline import RunningDeviation
from skvarae.binning import BinnedMovie, bin_frames, binned_shape, upsample_frames
from skvarae.io import iter_frame_batches


def block_constant(frames, factor, shape):
    """Frames whose ``factor x factor`` blocks (cropped to ``shape``) are constant."""
    return upsample_frames(frames, factor, shape)


# ------------------------------------------------------------------ the functions
def test_bin_frames_averages_each_block_and_the_partial_edge_blocks():
    frames = np.arange(2 * 3 * 5, dtype=np.uint16).reshape(2, 3, 5)
    expected_first = np.array([
        [(0 + 1 + 5 + 6) / 4, (2 + 3 + 7 + 8) / 4, (4 + 9) / 2],  # right edge: 2 pixels
        [(10 + 11) / 2, (12 + 13) / 2, 14.0],  # bottom edge: 2 pixels, corner: 1
    ])
    binned = bin_frames(frames, 2)
    assert binned.shape == (2, 2, 3) and binned.dtype == np.float32
    np.testing.assert_array_equal(binned[0], expected_first)
    np.testing.assert_array_equal(binned[1], expected_first + 15)
    np.testing.assert_array_equal(
        bin_frames(frames, 3, dtype=np.float64)[0],
        [[(0 + 1 + 2 + 5 + 6 + 7 + 10 + 11 + 12) / 9, (3 + 4 + 8 + 9 + 13 + 14) / 6]],
    )
    np.testing.assert_array_equal(bin_frames(frames, 1), frames.astype(np.float32))
    assert binned_shape((3, 5), 2) == (2, 3) and binned_shape((512, 512), 2) == (256, 256)


def test_bin_frames_dtype_and_single_frames():
    frames = np.random.default_rng(0).random((4, 6, 7))
    assert bin_frames(frames, 2).dtype == np.float32
    binned = bin_frames(frames, 2, dtype=np.float64)
    assert binned.dtype == np.float64
    np.testing.assert_allclose(binned[:, 0, 0], frames[:, :2, :2].mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_array_equal(bin_frames(frames[1], 2, dtype=np.float64), binned[1])
    with pytest.raises(ValueError, match="float32 or float64"):
        bin_frames(frames, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="height, width"):
        bin_frames(np.ones(5), 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("factor, shape", [(2, (6, 8)), (2, (5, 7)), (3, (7, 4)), (1, (3, 3))])
def test_upsampling_the_bins_of_block_constant_frames_is_exact(dtype, factor, shape):
    """Exact for float32 frames (block sums are exact in float64), whatever the output dtype."""
    coarse = np.random.default_rng(factor).standard_normal((3, *binned_shape(shape, factor)))
    coarse = coarse.astype(np.float32)
    frames = block_constant(coarse, factor, shape)
    assert frames.shape == (3, *shape) and frames.dtype == np.float32
    binned = bin_frames(frames, factor, dtype=dtype)
    np.testing.assert_array_equal(binned, coarse.astype(dtype))
    np.testing.assert_array_equal(upsample_frames(binned, factor, shape), frames.astype(dtype))
    # float64 frames: within one rounding of the sum.
    frames64 = block_constant(coarse.astype(np.float64) / 3, factor, shape)
    np.testing.assert_allclose(upsample_frames(bin_frames(frames64, factor, dtype=np.float64),
                                               factor, shape), frames64, rtol=1e-15)


def test_upsample_frames_gives_each_pixel_its_blocks_value():
    up = upsample_frames(np.array([[1.0, 2.0], [3.0, 4.0]]), 2, (3, 4))
    np.testing.assert_array_equal(up, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4]])
    with pytest.raises(ValueError, match="binned"):
        upsample_frames(np.ones((1, 2, 2)), 2, (5, 4))


class RecordingRun:
    """A run that records the keys it is indexed with (stands for a memory map or a file)."""

    def __init__(self, frames):
        self.frames, self.shape, self.dtype, self.keys = frames, frames.shape, frames.dtype, []

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, key):
        self.keys.append(key)
        return self.frames[key]


def test_binned_movie_reads_only_the_frames_asked_for_and_equals_binning_them():
    frames = np.random.default_rng(0).integers(0, 4000, (12, 7, 9)).astype(np.uint16)
    run = RecordingRun(frames)
    movie = BinnedMovie(run, 2)
    assert run.keys == []  # nothing read at construction
    assert movie.shape == (12, 4, 5) and len(movie) == 12 and movie.dtype == np.float32
    np.testing.assert_array_equal(movie[3:7], bin_frames(frames[3:7], 2))
    assert run.keys == [slice(3, 7)]
    np.testing.assert_array_equal(movie[-1], bin_frames(frames[-1:], 2)[0])
    np.testing.assert_array_equal(movie[2:11:4, 1], bin_frames(frames[2:11:4], 2)[:, 1])
    np.testing.assert_array_equal(movie[5, 1:, 2], bin_frames(frames[5:6], 2)[0, 1:, 2])
    np.testing.assert_array_equal(np.asarray(movie), bin_frames(frames, 2))
    assert BinnedMovie(frames, 3, dtype=np.float64)[0].dtype == np.float64
    with pytest.raises(IndexError):
        movie[12]
    with pytest.raises(TypeError):
        movie[[0, 1]]


def test_binned_movie_streams_and_can_be_wrapped_by_the_running_baseline():
    frames = np.random.default_rng(1).random((30, 6, 10))
    movie = BinnedMovie(frames, 2)
    batches = list(iter_frame_batches(movie, 7))
    np.testing.assert_array_equal(np.concatenate(batches), bin_frames(frames, 2))
    deviation = RunningDeviation(movie, 5, checkpoint=8)
    # Binning and the running baseline are linear per pixel: they commute up to rounding.
    np.testing.assert_allclose(deviation[10:25], bin_frames(RunningDeviation(frames, 5)[10:25], 2),
                               atol=1e-5)


@pytest.mark.parametrize("factor", [0, -2, 1.5, "2", None])
def test_invalid_factor_is_refused_with_its_name(factor):
    for function in (lambda: bin_frames(np.ones((1, 4, 4)), factor),
                     lambda: upsample_frames(np.ones((1, 2, 2)), factor, (4, 4)),
                     lambda: BinnedMovie(np.ones((1, 4, 4)), factor)):
        with pytest.raises(ValueError, match="factor"):
            function()


# ------------------------------------------------------------------ the estimator
@pytest.fixture(scope="module")
def movies():
    """2 runs x 20 frames x 10 x 14 (read-only)."""
    X = make_ar_movies(n_runs=2, n_frames=20, shape=(10, 14))
    X.setflags(write=False)
    return X


@pytest.fixture(scope="module")
def binned_model(movies):
    return SparseVARAutoencoder(**TINY_PARAMS, spatial_bin=2).fit(movies)


@pytest.mark.parametrize("spatial_bin", [0, 2.0, "2"])
def test_invalid_spatial_bin_is_refused_with_its_name(spatial_bin, tiny_params):
    with pytest.raises(ValueError, match="spatial_bin"):
        SparseVARAutoencoder(**tiny_params, spatial_bin=spatial_bin).fit(make_ar_movies(2, 8))


def test_network_works_at_the_binned_resolution_and_outputs_at_the_input_one(binned_model, movies):
    model = binned_model
    assert model.frame_shape_ == (10, 14) and model.n_features_in_ == 140
    assert model.offset_.shape == (5, 7) and model.mean_frame_.shape == (10, 14)
    # The same model as one fitted on the binned movie: same network, latents and VAR.
    on_binned = SparseVARAutoencoder(**TINY_PARAMS).fit(bin_frames(movies, 2))
    assert model.latent_shape_ == on_binned.latent_shape_
    assert model.coef_.shape == on_binned.coef_.shape == (2, 1, 4, 4)
    np.testing.assert_array_equal(model.coef_, on_binned.coef_)
    np.testing.assert_array_equal(model.contribution_maps_,
                                  upsample_frames(on_binned.contribution_maps_, 2, (10, 14)))
    assert model.predict(movies).shape == (2, 19, 10, 14)
    assert model.decode(model.encode(movies)).shape == (2, 20, 10, 14)
    assert model.contribution_map().shape == (10, 14)
    maps = model.contribution_map(movies, per_run=True, kind="cross")
    assert maps.shape == (2, 10, 14)
    np.testing.assert_array_equal(maps, maps[:, ::2, ::2].repeat(2, 1).repeat(2, 2))
    assert np.isfinite(model.score(movies))


def test_only_the_dynamic_part_is_blurred(binned_model, movies):
    """Forecast = upsampled dynamic part + the running baseline of the full-resolution run."""
    forecast = binned_model.predict(movies)
    for run, predicted in zip(movies, forecast):
        baseline = RunningDeviation(run, binned_model.baseline_time_constant).block(1, 20)[1]
        dynamic = predicted - baseline
        np.testing.assert_allclose(dynamic, dynamic[:, ::2, ::2].repeat(2, 1).repeat(2, 2),
                                   atol=1e-5)
        assert not np.allclose(predicted, predicted[:, ::2, ::2].repeat(2, 1).repeat(2, 2))


def test_spatial_bin_1_is_the_model_without_binning(movies, monkeypatch):
    default = SparseVARAutoencoder(**TINY_PARAMS).fit(movies)

    def no_binning(*args, **kwargs):
        raise AssertionError("spatial_bin=1 must not bin")

    for name in ("BinnedMovie", "bin_frames", "upsample_frames"):
        monkeypatch.setattr(skvarae.estimator, name, no_binning)
    model = SparseVARAutoencoder(**TINY_PARAMS, spatial_bin=1).fit(movies)
    np.testing.assert_array_equal(model.predict(movies), default.predict(movies))
    np.testing.assert_array_equal(model.coef_, default.coef_)
    np.testing.assert_array_equal(model.contribution_maps_, default.contribution_maps_)
    np.testing.assert_array_equal(model.decode(model.encode(movies)),
                                  default.decode(default.encode(movies)))


@pytest.mark.parametrize("baseline", ["running", "mean"])
def test_block_constant_movie_gives_block_constant_forecasts(baseline):
    coarse = make_ar_movies(n_runs=2, n_frames=20, shape=(5, 7))
    X = np.stack([block_constant(run, 2, (10, 14)) for run in coarse])
    model = SparseVARAutoencoder(**TINY_PARAMS, spatial_bin=2, baseline=baseline).fit(X)
    for frames in (model.predict(X), model.decode(model.encode(X)), model.mean_frame_[None]):
        np.testing.assert_array_equal(frames, frames[..., ::2, ::2].repeat(2, -2).repeat(2, -1))


def test_clone_get_params_and_grid_search_over_spatial_bin(tiny_params):
    X = make_ar_movies(n_runs=4, n_frames=16, shape=(8, 6))
    model = SparseVARAutoencoder(**tiny_params, spatial_bin=2)
    assert model.get_params()["spatial_bin"] == 2 and clone(model).spatial_bin == 2
    assert SparseVARAutoencoder().spatial_bin == 1
    search = GridSearchCV(model, {"spatial_bin": [1, 2]}, cv=2).fit(X)
    assert [p["spatial_bin"] for p in search.cv_results_["params"]] == [1, 2]
    best = search.best_params_["spatial_bin"]
    assert search.best_estimator_.offset_.shape == binned_shape((8, 6), best)


def test_save_load_and_pickle_keep_spatial_bin(binned_model, movies, tmp_path):
    binned_model.save(tmp_path / "m.pt")
    restored = SparseVARAutoencoder.load(tmp_path / "m.pt")
    assert restored.spatial_bin == 2 and restored.offset_.shape == (5, 7)
    np.testing.assert_array_equal(restored.predict(movies), binned_model.predict(movies))
    unpickled = pickle.loads(pickle.dumps(binned_model))
    np.testing.assert_array_equal(unpickled.decode(unpickled.encode(movies)),
                                  binned_model.decode(binned_model.encode(movies)))


def test_files_and_pickles_without_spatial_bin_load_unbinned(movies, tmp_path):
    model = SparseVARAutoencoder(**{**TINY_PARAMS, "max_epochs": 1}).fit(movies)
    model.save(tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    del payload["params"]["spatial_bin"]
    torch.save(payload, tmp_path / "old.pt")
    restored = SparseVARAutoencoder.load(tmp_path / "old.pt")
    assert restored.spatial_bin == 1
    np.testing.assert_array_equal(restored.predict(movies), model.predict(movies))
    state = model.__getstate__()
    del state["spatial_bin"]
    unpickled = SparseVARAutoencoder.__new__(SparseVARAutoencoder)
    unpickled.__setstate__(state)
    assert unpickled.get_params()["spatial_bin"] == 1


def test_inputs_are_not_modified(binned_model):
    X = make_ar_movies(n_runs=2, n_frames=20, shape=(10, 14))
    copy = X.copy()
    model = clone(binned_model).fit(X)
    model.predict(X), model.score(X), model.transform(X), model.contribution_map(X)
    model.decode(model.encode(X))
    np.testing.assert_array_equal(X, copy)


def test_changing_spatial_bin_after_fit_is_refused_by_name(binned_model, movies, tmp_path):
    """The networks were fitted at one resolution: another spatial_bin cannot be used."""
    model = clone(binned_model).fit(movies)
    model.set_params(spatial_bin=3)
    for call in [lambda: model.predict(movies), lambda: model.score(movies),
                 lambda: model.transform(movies), lambda: model.encode(movies),
                 lambda: model.contribution_map(movies),
                 lambda: model.compare_sequences(movies[:1], movies[1:], n_permutations=10),
                 lambda: model.decode(np.zeros((5, int(np.prod(model.latent_shape_))))),
                 lambda: model.save(tmp_path / "model.pt")]:
        with pytest.raises(ValueError, match=r"spatial_bin=3 .* fitted on frames binned to"):
            call()
    assert not (tmp_path / "model.pt").exists()
    model.set_params(spatial_bin=2)  # back to the fitted value: usable again
    np.testing.assert_allclose(model.predict(movies), binned_model.predict(movies), rtol=1e-5,
                               atol=1e-6)
