import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvarae import SparseVARAutoencoder
from skvarae import estimator as estimator_module
from skvarae import training as training_module
from skvarae.var import fit_var, forecast_var

# The paper's model: one mean frame bypasses a purely convolutional network, early stopping on the
# training loss. These tests pin its mechanics exactly; the defaults (running baseline, linear
# path, held-out tails) are tested in test_baseline.py, test_network.py and test_training.py.
PAPER_MODEL = dict(baseline="mean", linear_path=False, validation_fraction=0.0)

# Tiny and fast: 2x2 latent map of one channel (d = 4), two stride-2 layers for 6x5 frames.
TINY = dict(
    latent_channels=1, max_latent_side=2, base_channels=2, max_epochs=3, batch_size=4,
    random_state=0, **PAPER_MODEL,
)


def ar_movies(n_runs=3, n_frames=24, shape=(6, 5), phi=0.8, seed=0):
    """Movies whose pixels mix 2 AR(1) latents through fixed spatial patterns, plus a mean frame."""
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((2,) + shape)
    background = 5.0 + rng.random(shape)
    movies = []
    phis = np.broadcast_to(phi, (n_runs,))
    for run in range(n_runs):
        z = np.zeros((n_frames, 2))
        for t in range(1, n_frames):
            z[t] = phis[run] * z[t - 1] + rng.standard_normal(2)
        movie = background + np.einsum("tk,khw->thw", z, patterns)
        movies.append(movie + 0.05 * rng.standard_normal(movie.shape))
    return np.asarray(movies, dtype=np.float32)


@pytest.fixture(scope="module")
def movies():
    return ar_movies()


@pytest.fixture(scope="module")
def fitted(movies):
    return SparseVARAutoencoder(**TINY).fit(movies)


def test_fit_returns_self_and_sets_documented_attributes(movies):
    model = SparseVARAutoencoder(**TINY)
    assert model.fit(movies) is model
    d = int(np.prod(model.latent_shape_))
    assert model.latent_shape_ == (1, 2, 2)
    assert model.coef_.shape == (3, 1, d, d)
    assert model.intercept_.shape == (3, d)
    assert model.mean_frame_.shape == (6, 5) and model.frame_shape_ == (6, 5)
    np.testing.assert_allclose(model.mean_frame_, movies.mean(axis=(0, 1)), rtol=1e-5)
    dynamic = movies - movies.mean(axis=(0, 1))
    np.testing.assert_allclose(model.scale_, dynamic.std(), rtol=1e-4)
    assert model.n_features_in_ == 30
    assert model.device_ == "cpu"
    assert model.n_iter_ == len(model.history_) == 3
    assert {"loss", "forecast", "reconstruction", "epoch"} <= set(model.history_[0])
    arrays = (model.coef_, model.intercept_, model.mean_frame_)
    assert all(isinstance(a, np.ndarray) for a in arrays)


def test_outputs_have_documented_shapes_and_are_numpy(fitted, movies):
    d = int(np.prod(fitted.latent_shape_))
    latents = fitted.encode(movies)
    assert isinstance(latents, np.ndarray) and latents.shape == (3, 24, d)
    features = fitted.transform(movies)
    assert isinstance(features, np.ndarray) and features.shape == (3, d * d)
    forecasts = fitted.predict(movies)
    assert isinstance(forecasts, np.ndarray) and forecasts.shape == (3, 23, 6, 5)
    assert np.isfinite(forecasts).all()


def test_transform_on_training_runs_equals_coef(fitted, movies):
    np.testing.assert_allclose(fitted.transform(movies), fitted.coef_.reshape(3, -1), atol=1e-6)


def test_ragged_runs_give_lists(fitted, movies):
    runs = [movies[0], movies[1][:15], movies[2][:20]]
    latents = fitted.encode(runs)
    assert isinstance(latents, list) and [len(z) for z in latents] == [24, 15, 20]
    forecasts = fitted.predict(runs)
    assert [f.shape for f in forecasts] == [(23, 6, 5), (14, 6, 5), (19, 6, 5)]
    assert fitted.transform(runs).shape[0] == 3
    model = SparseVARAutoencoder(**TINY).fit(runs)
    assert model.coef_.shape[0] == 3


def test_score_is_held_out_forecast_r2_of_dynamic_part(fitted, movies):
    expected = []
    for run in movies:
        n_test = len(run) // 4
        n_fit = len(run) - n_test
        latents = torch.from_numpy(fitted.encode([run])[0]).double()
        coef, intercept = fit_var(latents[:n_fit], fitted.alpha, fitted.lags)
        forecast = forecast_var(latents[n_fit - 1 :], coef, intercept)
        predicted = fitted.decoder_(forecast.float()).detach().numpy() * fitted.scale_
        observed = run[n_fit:] - fitted.mean_frame_
        expected.append(
            r2_score(observed.reshape(n_test, -1), predicted.reshape(n_test, -1),
                     multioutput="variance_weighted")
        )
    assert fitted.score(movies) == pytest.approx(np.mean(expected), abs=1e-4)


def test_score_does_not_peek_at_the_held_out_quarter(fitted, movies, monkeypatch):
    # The VAR used for the held-out forecasts must be fitted on the first three quarters only.
    seen = []

    def spy_fit_var(latents, *args, **kwargs):
        seen.append(latents.shape[-2])
        return fit_var(latents, *args, **kwargs)

    monkeypatch.setattr(estimator_module, "fit_var", spy_fit_var)
    fitted.score(movies)
    assert seen == [24 - 24 // 4] * 3
    # Editing a held-out frame cannot change any fit, only that frame's target and the forecast
    # that uses it as its observed past.
    changed = movies.copy()
    changed[:, -1] = movies[:, 0]
    seen.clear()
    fitted.score(changed)
    assert seen == [18] * 3


def test_uint16_readonly_and_memmap_input_are_accepted_and_not_modified(tmp_path, movies):
    as_uint16 = (movies * 1000).astype(np.uint16)
    path = tmp_path / "movies.npy"
    np.save(path, as_uint16)
    mapped = np.load(path, mmap_mode="r")
    before = as_uint16.copy()
    as_uint16.setflags(write=False)
    model = SparseVARAutoencoder(**TINY).fit(mapped)
    model.predict(as_uint16)
    np.testing.assert_array_equal(as_uint16, before)
    np.testing.assert_array_equal(np.asarray(mapped), before)
    float_model = SparseVARAutoencoder(**TINY).fit(before.astype(np.float32))
    np.testing.assert_allclose(model.coef_, float_model.coef_, atol=1e-5)


def test_user_arrays_are_never_modified(movies):
    original = movies.copy()
    runs = [movies[0].copy(), movies[1].copy()]
    runs_before = [r.copy() for r in runs]
    model = SparseVARAutoencoder(**TINY).fit(movies)
    model.score(movies)
    model.fit(runs)
    np.testing.assert_array_equal(movies, original)
    for run, before in zip(runs, runs_before):
        np.testing.assert_array_equal(run, before)


@pytest.mark.parametrize(
    "make_X, match",
    [
        (lambda m: m[0], r"\[movie\]"),
        (lambda m: [], "no runs|empty"),
        (lambda m: [m[0], m[1][:, :4]], "run 1"),
        (lambda m: [m[0], m[1][:2]], "run 1"),
        (lambda m: [m[0], np.where(np.arange(24)[:, None, None] == 3, np.nan, m[1])], "run 1"),
        (lambda m: [m[0], np.full_like(m[1], np.inf)], "run 1"),
    ],
    ids=["bare-3d", "empty", "frame-shape", "too-short", "nan", "inf"],
)
def test_bad_input_raises_value_error_naming_the_problem(movies, make_X, match):
    with pytest.raises(ValueError, match=match):
        SparseVARAutoencoder(**TINY).fit(make_X(movies))


def test_predict_rejects_other_frame_shape(fitted, movies):
    with pytest.raises(ValueError, match="frames of shape"):
        fitted.predict(movies[:, :, :4])


def test_unfitted_model_raises_not_fitted():
    with pytest.raises(NotFittedError):
        SparseVARAutoencoder().predict(np.zeros((1, 5, 2, 2)))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(alpha=-1.0), "alpha"),
        (dict(lags=0), "lags"),
        (dict(training="joint"), "training"),
        (dict(learning_rate=0), "learning_rate"),
        (dict(window=2), "window"),
    ],
)
def test_invalid_parameters_raise_at_fit(movies, params, match):
    model = SparseVARAutoencoder(**{**TINY, **params})
    with pytest.raises(ValueError, match=match):
        model.fit(movies)


def test_same_seed_gives_identical_results_on_cpu(movies):
    a = SparseVARAutoencoder(**TINY).fit(movies)
    b = SparseVARAutoencoder(**TINY).fit(movies)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.predict(movies), b.predict(movies))
    c = SparseVARAutoencoder(**{**TINY, "random_state": 1}).fit(movies)
    assert not np.array_equal(a.predict(movies), c.predict(movies))


def test_fit_does_not_touch_global_torch_or_numpy_random_state(movies):
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_numpy = torch.rand(1), np.random.rand()
    torch.manual_seed(123)
    np.random.seed(123)
    SparseVARAutoencoder(**TINY).fit(movies)
    assert torch.rand(1) == expected_torch and np.random.rand() == expected_numpy


@pytest.mark.parametrize(
    "params",
    [dict(training="two_stage"), dict(skip_connection=False), dict(lags=2), dict(window=10)],
)
def test_variants_fit_and_predict(movies, params):
    model = SparseVARAutoencoder(**{**TINY, **params}).fit(movies)
    lags = params.get("lags", 1)
    assert model.coef_.shape[1] == lags
    assert model.predict(movies).shape == (3, 24 - lags, 6, 5)
    assert np.isfinite(model.score(movies))
    if params.get("training") == "two_stage":
        assert "forecast" not in model.history_[0]


def test_skip_connection_false_scales_around_the_global_mean(movies):
    model = SparseVARAutoencoder(**{**TINY, "skip_connection": False}).fit(movies)
    np.testing.assert_allclose(model.scale_, movies.std(), rtol=1e-4)


def test_training_reduces_the_loss(movies):
    model = SparseVARAutoencoder(**{**TINY, "max_epochs": 40, "learning_rate": 1e-2}).fit(movies)
    losses = [h["loss"] for h in model.history_]
    assert min(losses[-5:]) < 0.8 * losses[0]


def test_early_stopping_restores_best_weights(movies):
    model = SparseVARAutoencoder(**{**TINY, "max_epochs": 50, "tol": 10.0, "n_iter_no_change": 2})
    model.fit(movies)
    assert model.n_iter_ == 3  # epoch 1 sets the best; 2 and 3 cannot beat it by tol = 10
    losses = [h["loss"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmin(losses)) + 1


def test_non_finite_loss_raises_naming_the_epoch_and_leaves_model_unfitted(movies, monkeypatch):
    real_loss = training_module.end_to_end_loss
    calls = {"n": 0}

    def exploding_loss(*args, **kwargs):
        calls["n"] += 1
        losses = real_loss(*args, **kwargs)
        if calls["n"] > 1:  # one batch per epoch here: epoch 2 explodes
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(estimator_module, "end_to_end_loss", exploding_loss)
    model = SparseVARAutoencoder(**TINY)
    with pytest.raises(FloatingPointError, match="epoch 2"):
        model.fit(movies)
    with pytest.raises(NotFittedError):
        model.predict(movies)


def test_verbose_shows_progress_on_stderr_and_never_prints(movies, capsys):
    SparseVARAutoencoder(**{**TINY, "verbose": 1}).fit(movies)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "loss" in captured.err
    SparseVARAutoencoder(**TINY).fit(movies)
    assert capsys.readouterr().err == ""


def test_pickle_and_joblib_round_trip_predict_identically(fitted, movies, tmp_path):
    expected = fitted.predict(movies)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(movies), expected)
    joblib.dump(fitted, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict(movies), expected)


def test_pickled_pipeline_round_trip(movies):
    labels = np.array([0, 1, 0])
    pipe = make_pipeline(SparseVARAutoencoder(**TINY), LogisticRegression()).fit(movies, labels)
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(restored.predict_proba(movies), pipe.predict_proba(movies))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks loading on a CPU-only machine")
def test_model_fitted_on_cuda_loads_on_cpu_with_a_warning(fitted, movies):
    as_if_gpu = pickle.loads(pickle.dumps(fitted))
    as_if_gpu.device_ = "cuda:0"  # what a GPU fit stores; the modules pickle on the CPU anyway
    with pytest.warns(UserWarning, match="CUDA is not available"):
        restored = pickle.loads(pickle.dumps(as_if_gpu))
    assert restored.device_ == "cpu"
    np.testing.assert_array_equal(restored.predict(movies), fitted.predict(movies))


def test_save_and_load_round_trip(fitted, movies, tmp_path):
    path = tmp_path / "model.pt"
    fitted.save(path)
    payload = torch.load(path, weights_only=True)
    assert payload["versions"]["torch"] == torch.__version__
    restored = SparseVARAutoencoder.load(path)
    assert restored.get_params() == fitted.get_params()
    np.testing.assert_array_equal(restored.coef_, fitted.coef_)
    np.testing.assert_array_equal(restored.predict(movies), fitted.predict(movies))
    assert restored.score(movies) == fitted.score(movies)


def test_load_rejects_foreign_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a model file"):
        SparseVARAutoencoder.load(path)


def test_clone_gives_unfitted_copy_with_same_params(fitted):
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params()
    assert not hasattr(twin, "coef_")


def test_pipeline_classifies_runs_by_their_dynamics():
    # Condition 0: white-noise latents; condition 1: strongly autocorrelated latents.
    phis = np.array([0.0, 0.9] * 6)
    movies = ar_movies(n_runs=12, n_frames=40, phi=phis, seed=3)
    labels = (phis > 0).astype(int)
    pipe = make_pipeline(
        SparseVARAutoencoder(**{**TINY, "max_epochs": 5, "alpha": 0.001}),
        StandardScaler(),
        LogisticRegression(),
    )
    accuracy = cross_val_score(pipe, movies, labels, cv=3)
    assert accuracy.mean() >= 0.8


def test_grid_search_over_alpha_selects_by_score_without_labels(movies):
    search = GridSearchCV(SparseVARAutoencoder(**TINY), {"alpha": [0.001, 0.1, 10.0]}, cv=3)
    search.fit(movies)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    assert search.best_params_["alpha"] == [0.001, 0.1, 10.0][int(np.argmax(scores))]
    assert search.best_estimator_.coef_.shape[0] == 3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_matches_documented_contract(movies):
    model = SparseVARAutoencoder(**TINY, device="cuda").fit(movies)
    assert model.device_.startswith("cuda")
    assert isinstance(model.predict(movies), np.ndarray)
    buffer = io.BytesIO()
    pickle.dump(model, buffer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = pickle.loads(buffer.getvalue())
    np.testing.assert_allclose(restored.predict(movies), model.predict(movies), atol=1e-5)


def test_compare_sequences_method_delegates_to_skvarae_stats(fitted, movies):
    from skvarae import stats
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # too few runs for p <= 0.05
        expected = stats.compare_sequences(
            fitted, movies[:2], movies[2:], n_permutations=10, random_state=0, n_blocks=2,
            min_block_length=5,
        )
        result = fitted.compare_sequences(
            movies[:2], movies[2:], n_permutations=10, random_state=0, n_blocks=2,
            min_block_length=5,
        )
    assert type(result) is type(expected)
    assert result.statistic == expected.statistic and result.pvalue == expected.pvalue
    np.testing.assert_array_equal(result.null_distribution, expected.null_distribution)
    with pytest.raises(ValueError, match="frames of shape"):
        fitted.compare_sequences(movies, movies[:, :, :4])


def test_n_jobs_threads_give_identical_per_run_results(fitted, movies):
    parallel = clone(fitted).set_params(n_jobs=2)
    parallel.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    np.testing.assert_array_equal(parallel.transform(movies), fitted.transform(movies))
    np.testing.assert_array_equal(parallel.predict(movies), fitted.predict(movies))
    np.testing.assert_array_equal(parallel.encode(movies), fitted.encode(movies))
    assert parallel.score(movies) == fitted.score(movies)


def test_streaming_in_small_chunks_gives_the_same_results(fitted, movies, monkeypatch):
    frame_pixels = int(np.prod(movies.shape[2:]))
    assert estimator_module._frames_per_chunk(movies.shape[2:]) >= movies.shape[1]

    def frame_statistics(runs):
        mean_frame = fitted._mean_frame(runs)
        offset = fitted._network_offset(mean_frame)
        return mean_frame, fitted._scale(fitted._network_inputs(runs), offset)

    expected = fitted.encode(movies), fitted.predict(movies), frame_statistics(movies)
    monkeypatch.setattr(estimator_module, "_CHUNK_PIXELS", 5 * frame_pixels)  # 5 frames a chunk
    assert estimator_module._frames_per_chunk(movies.shape[2:]) == 5
    np.testing.assert_allclose(fitted.encode(movies), expected[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fitted.predict(movies), expected[1], rtol=1e-5, atol=1e-5)
    mean_frame, scale = frame_statistics(movies)
    np.testing.assert_allclose(mean_frame, expected[2][0], rtol=1e-6)
    assert scale == pytest.approx(expected[2][1], rel=1e-9)
    monkeypatch.setattr(estimator_module, "_CHUNK_PIXELS", 1)  # frames larger than a chunk
    assert estimator_module._frames_per_chunk(movies.shape[2:]) == 1
    np.testing.assert_allclose(fitted.encode(movies), expected[0], rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ the tile-local linear path
def test_local_linear_path_starts_at_the_principal_components_of_each_tile():
    """Per-tile PCA of the standardised frames; a 1-pixel tile gets one component, one zero row."""
    from sklearn.decomposition import PCA

    from skvarae.training import Windows

    rng = np.random.default_rng(0)
    runs = [rng.standard_normal((30, 9, 9)).astype(np.float32) for _ in range(2)]
    sequences = Windows(runs, None, np.zeros((9, 9), np.float32), 1.0)
    # 9 x 9 frames, tiles of 8: a full tile, two 8 x 1 strips and a 1 x 1 corner
    components = estimator_module._tile_principal_components(
        sequences, (2, 2, 2), 8, np.random.RandomState(0)
    )
    assert components.shape == (2, 2, 2, 8, 8)
    frames = np.concatenate(runs)
    for i, j in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        block = frames[:, 8 * i:8 * i + 8, 8 * j:8 * j + 8]
        rows, cols = block.shape[1:]
        pca = PCA(min(2, rows * cols)).fit(block.reshape(len(block), -1))
        expected = np.zeros((2, rows * cols))
        expected[: pca.n_components_] = pca.components_
        got = components[:, i, j, :rows, :cols].reshape(2, -1)
        np.testing.assert_allclose(np.abs(got), np.abs(expected), atol=1e-5)
        assert not components[:, i, j, rows:].any() and not components[:, i, j, :, cols:].any()
    assert not components[1, 1, 1].any()  # the 1-pixel tile has one direction only


def test_local_linear_path_is_the_default_and_stays_local_in_the_fitted_encoder(movies):
    model = SparseVARAutoencoder(**{**TINY, "linear_path": "local"}).fit(movies)
    assert SparseVARAutoencoder().linear_path == "local"
    encoder = model.encoder_
    assert encoder.linear_path == "local" and not hasattr(encoder, "linear")
    dense = encoder.tile_linear.dense_weight().detach().numpy()
    rows, cols = np.indices(model.frame_shape_)
    _, h, w = model.latent_shape_
    for index in range(model.latent_shape_[0] * h * w):
        _, i, j = np.unravel_index(index, model.latent_shape_)
        inside = ((rows // encoder.tile == i) & (cols // encoder.tile == j)).ravel()
        assert not dense[index, ~inside].any()


@pytest.mark.parametrize("linear_path", ["local", "global", True])
def test_save_load_and_pickle_keep_the_linear_path(movies, tmp_path, linear_path):
    """Files with linear_path=True (written before "local" existed) load as the dense path."""
    model = SparseVARAutoencoder(**{**TINY, "max_epochs": 1, "linear_path": linear_path})
    model.fit(movies)
    model.save(tmp_path / "m.pt")
    restored = SparseVARAutoencoder.load(tmp_path / "m.pt")
    assert restored.linear_path == linear_path
    assert restored.encoder_.linear_path == ("local" if linear_path == "local" else "global")
    np.testing.assert_array_equal(restored.predict(movies), model.predict(movies))
    unpickled = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(unpickled.predict(movies), model.predict(movies))


def test_cell_radius_sets_the_latent_grid_and_survives_save_load(tmp_path):
    from skvarae.latent_grid import max_latent_side_for_cells

    movies = ar_movies(n_runs=2, n_frames=12, shape=(20, 20))
    params = {**TINY, "max_epochs": 1, "latent_channels": 1}
    model = SparseVARAutoencoder(**params, cell_radius=2.0).fit(movies)
    side = max_latent_side_for_cells((20, 20), 2.0)  # tiles of 4 pixels: 5 x 5
    assert model.latent_shape_ == (1, side, side) == (1, 5, 5)
    binned = SparseVARAutoencoder(**params, cell_radius=2.0, spatial_bin=2).fit(movies)
    assert binned.latent_shape_ == (1, 5, 5)  # radius 1 on 10 x 10 binned frames: tiles of 2
    model.save(tmp_path / "m.pt")
    restored = SparseVARAutoencoder.load(tmp_path / "m.pt")
    assert restored.cell_radius == 2.0
    np.testing.assert_array_equal(restored.predict(movies), model.predict(movies))


def test_files_and_pickles_from_before_reconstruction_subsample_keep_every_frame(movies, tmp_path):
    """A model saved before the parameter existed was trained on every frame's reconstruction."""
    model = SparseVARAutoencoder(**{**TINY, "max_epochs": 1}).fit(movies)
    assert SparseVARAutoencoder().reconstruction_subsample == 0.25
    model.save(tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    del payload["params"]["reconstruction_subsample"]
    torch.save(payload, tmp_path / "old.pt")
    assert SparseVARAutoencoder.load(tmp_path / "old.pt").reconstruction_subsample == 1.0
    state = model.__getstate__()
    del state["reconstruction_subsample"]
    unpickled = SparseVARAutoencoder.__new__(SparseVARAutoencoder)
    unpickled.__setstate__(state)
    assert unpickled.reconstruction_subsample == 1.0
    np.testing.assert_array_equal(unpickled.predict(movies), model.predict(movies))
