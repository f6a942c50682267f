"""Regression tests of issue 10 (hardening): one test per defect D1-D10, named after what broke."""

import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from skvarae import SparseVARAutoencoder, fit_var
from skvarae import estimator as estimator_module
from skvarae.__main__ import main
from skvarae.estimator import FITTED_ATTRIBUTES


def _snapshot(model):
    """The estimator's attributes: name -> object identity (what 'unchanged' means)."""
    return {name: id(value) for name, value in vars(model).items()}


@pytest.fixture(scope="module")
def run_files(tmp_path_factory, ar_movies):
    folder = tmp_path_factory.mktemp("runs")
    paths = []
    for index, movie in enumerate(ar_movies):
        path = folder / f"run{index}.npy"
        np.save(path, movie)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_fitted):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    tiny_fitted.save(path)
    return path


def _one_error_line(capsys, *expected):
    err = capsys.readouterr().err
    # The training progress bar (tqdm, on stderr) is not an error line.
    lines = [line for line in err.strip().splitlines() if not line.startswith("training:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("skvarae ") and ": error: " in lines[0], err
    for text in expected:
        assert text in lines[0], err
    return lines[0]


# ------------------------------------------------------------------------------------------ D1
@pytest.mark.parametrize("failure", [KeyboardInterrupt, MemoryError, RuntimeError])
@pytest.mark.parametrize("step", ["var_fits", "contribution_maps"])
def test_failure_after_training_leaves_a_fresh_estimator_unfitted(
    failure, step, ar_movies, tiny_params, monkeypatch
):
    def boom(*args, **kwargs):
        raise failure("injected")

    if step == "var_fits":
        monkeypatch.setattr(SparseVARAutoencoder, "_fit_run_var", boom)
    else:
        monkeypatch.setattr(estimator_module.contribution, "contribution_maps", boom)
    model = SparseVARAutoencoder(**tiny_params)
    before = _snapshot(model)
    with pytest.raises(failure):
        model.fit(ar_movies)
    assert _snapshot(model) == before
    with pytest.raises(NotFittedError):
        model.contribution_map()


@pytest.mark.parametrize("step", ["var_fits", "contribution_maps"])
def test_failure_after_training_leaves_a_refit_estimator_as_it_was(
    step, ar_movies, tiny_params, monkeypatch, tmp_path
):
    model = SparseVARAutoencoder(**tiny_params).fit(ar_movies)
    before = _snapshot(model)
    coef = model.coef_.copy()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    if step == "var_fits":
        monkeypatch.setattr(SparseVARAutoencoder, "_fit_run_var", boom)
    else:
        monkeypatch.setattr(estimator_module.contribution, "contribution_maps", boom)
    with pytest.raises(KeyboardInterrupt):
        model.fit(ar_movies[:2])
    monkeypatch.undo()
    assert _snapshot(model) == before
    np.testing.assert_array_equal(model.coef_, coef)
    model.save(tmp_path / "m.pt")  # the previous fit is whole: it saves and loads
    restored = SparseVARAutoencoder.load(tmp_path / "m.pt")
    np.testing.assert_array_equal(restored.coef_, coef)


def test_fit_sets_exactly_the_listed_fitted_attributes(ar_movies, tiny_params):
    model = SparseVARAutoencoder(**tiny_params).fit(ar_movies)
    fitted = {name for name in vars(model) if name.endswith("_")}
    assert fitted == set(FITTED_ATTRIBUTES)


def test_estimator_missing_a_fitted_attribute_is_not_fitted(tiny_fitted):
    import copy

    partial = copy.copy(tiny_fitted)
    del partial.coef_
    with pytest.raises(NotFittedError):
        partial.contribution_map()


# ------------------------------------------------------------------------------------------ D2
def test_numpy_integer_lags_are_accepted_everywhere(ar_movies, tiny_params):
    model = SparseVARAutoencoder(**{**tiny_params, "max_epochs": 1, "lags": np.int64(2)})
    model.fit(ar_movies)
    assert model.coef_.shape[1] == 2
    Z = torch.randn(2, 20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    coef, _ = fit_var(Z, 0.1, np.int64(2))
    np.testing.assert_array_equal(coef.numpy(), fit_var(Z, 0.1, 2)[0].numpy())


def test_grid_search_over_a_numpy_range_of_lags(ar_movies, tiny_params):
    X = np.concatenate([ar_movies, ar_movies[:1]])  # 4 runs: 2 folds of 2
    search = GridSearchCV(
        SparseVARAutoencoder(**{**tiny_params, "max_epochs": 1}), {"lags": np.arange(1, 3)}, cv=2
    )
    search.fit(X)
    assert search.best_params_["lags"] in (1, 2)


@pytest.mark.parametrize("lags", [True, 1.0, 0, "1"])
def test_bool_float_and_non_positive_lags_are_refused(lags):
    with pytest.raises(ValueError, match="lags"):
        fit_var(torch.zeros(10, 2), 0.1, lags)


# ------------------------------------------------------------------------------------------ D3
@pytest.mark.parametrize("device", ["tpu", "", "meta", "cuda:99", "mps", "cpu:x"])
def test_unusable_device_is_a_value_error_naming_device(device, ar_movies, tiny_params):
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    model = SparseVARAutoencoder(**{**tiny_params, "device": device})
    with pytest.raises(ValueError, match="device"):
        model.fit(ar_movies)
    assert not hasattr(model, "coef_")


def test_cli_unusable_device_is_one_line(run_files, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["fit", *run_files, "--device", "tpu", "--epochs", "1", "--out", str(out)]) == 2
    _one_error_line(capsys, "device")
    assert not out.exists()


# ------------------------------------------------------------------------------------------ D4
def _bad_model_files(folder, model_file):
    data = model_file.read_bytes()
    files = {
        "truncated": data[: len(data) // 2],
        "random": np.random.default_rng(0).bytes(4096),
        "empty": b"",
        "text": b"this is not a model\n",
    }
    paths = {}
    for name, content in files.items():
        paths[name] = folder / f"{name}.pt"
        paths[name].write_bytes(content)
    payload = torch.load(model_file, weights_only=True)
    for name, drop in [("no-fitted", ("fitted",)), ("no-params", ("params",))]:
        broken = {k: v for k, v in payload.items() if k not in drop}
        paths[name] = folder / f"{name}.pt"
        torch.save(broken, paths[name])
    for key in ("coef_", "encoder_", "scale_"):
        broken = dict(payload, fitted={k: v for k, v in payload["fitted"].items() if k != key})
        paths[f"no-{key}"] = folder / f"no-{key}.pt"
        torch.save(broken, paths[f"no-{key}"])
    wrong = dict(payload, fitted=dict(payload["fitted"], coef_=torch.zeros(2)))
    paths["wrong-shape"] = folder / "wrong-shape.pt"
    torch.save(wrong, paths["wrong-shape"])
    wrong = dict(payload, params=dict(payload["params"], lags="two"))
    paths["bad-param"] = folder / "bad-param.pt"
    torch.save(wrong, paths["bad-param"])
    return paths


def test_load_of_a_broken_file_is_one_value_error_naming_the_file(tmp_path, model_file):
    for name, path in _bad_model_files(tmp_path, model_file).items():
        with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")) as info:
            SparseVARAutoencoder.load(path)
        assert "\n" not in str(info.value), name


class _Exploit:
    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_load_never_runs_code_from_a_malicious_pickle(tmp_path):
    exploit = _Exploit()
    exploit.marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format": 2, "params": exploit}))
    with pytest.raises(ValueError, match="evil.pt"):
        SparseVARAutoencoder.load(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("command", ["map", "compare"])
def test_cli_broken_model_file_is_one_line(command, tmp_path, model_file, run_files, capsys):
    path = _bad_model_files(tmp_path, model_file)["truncated"]
    if command == "map":
        argv = ["map", str(path), run_files[0], "--out", str(tmp_path / "map.png")]
    else:
        argv = ["compare", str(path), "--a", run_files[0], "--b", run_files[1]]
    assert main(argv) == 2
    _one_error_line(capsys, str(path))


# ------------------------------------------------------------------------------------------ D5
def test_save_into_a_missing_folder_is_an_os_error_naming_the_path(tiny_fitted, tmp_path):
    path = tmp_path / "missing" / "model.pt"
    with pytest.raises(FileNotFoundError, match="missing"):
        tiny_fitted.save(path)


def test_cli_fit_checks_the_output_folder_before_training(run_files, tmp_path, capsys, monkeypatch):
    def no_training(self, X, y=None):
        raise AssertionError("fit must not start when --out cannot be written")

    monkeypatch.setattr(SparseVARAutoencoder, "fit", no_training)
    out = tmp_path / "nodir" / "m.pt"
    assert main(["fit", *run_files, "--out", str(out)]) == 2
    _one_error_line(capsys, "--out", "nodir")
    assert main(["fit", *run_files, "--out", str(tmp_path)]) == 2  # a folder
    _one_error_line(capsys, "--out")


# ------------------------------------------------------------------------------------------ D6
def test_cli_bad_log_level_is_one_line(run_files, capsys):
    assert main(["--log-level", "BOGUS", "fit", *run_files]) == 2
    _one_error_line(capsys, "--log-level", "BOGUS")


def test_cli_diverging_training_is_one_line(run_files, tmp_path, capsys):
    argv = ["fit", *run_files, "--epochs", "5", "--learning-rate", "1e12",
            "--out", str(tmp_path / "m.pt")]
    assert main(argv) == 2
    _one_error_line(capsys, "learning_rate")
    assert not (tmp_path / "m.pt").exists()


# ------------------------------------------------------------------------------------------ D8
def test_float64_values_beyond_float32_range_are_refused_naming_the_run(ar_movies, tiny_params):
    X = ar_movies.astype(np.float64)
    X[1, 3, 2, 2] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no false "does not change over time" warning
        with pytest.raises(ValueError, match=r"run 1 of X.*float32.*frame 3"):
            SparseVARAutoencoder(**tiny_params).fit(X)


def test_inference_refuses_values_beyond_float32_range(tiny_fitted, ar_movies):
    X = ar_movies.astype(np.float64)
    X[0, 0, 0, 0] = -1e39
    with pytest.raises(ValueError, match="run 0 of X.*float32"):
        tiny_fitted.predict(X)


# ------------------------------------------------------------------------------------------ D9
def test_fit_var_with_nan_names_Z():
    Z = torch.zeros(10, 2)
    Z[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"^Z contains NaN"):
        fit_var(Z, 0.1)


def test_cli_map_with_a_folder_as_model_says_it_is_a_folder(tmp_path, run_files, capsys):
    assert main(["map", str(tmp_path), run_files[0], "--out", str(tmp_path / "m.png")]) == 2
    line = _one_error_line(capsys, "folder")
    assert "does not exist" not in line


# ----------------------------------------------------------------------------------------- D10
@pytest.mark.parametrize("n_jobs", [0, True, 1.5])
def test_bad_n_jobs_is_refused_before_training(n_jobs, ar_movies, tiny_params, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training must not start with an invalid n_jobs")

    monkeypatch.setattr(estimator_module, "train", no_training)
    with pytest.raises(ValueError, match="n_jobs"):
        SparseVARAutoencoder(**{**tiny_params, "n_jobs": n_jobs}).fit(ar_movies)


@pytest.mark.parametrize("name", ["max_epochs", "batch_size", "latent_channels", "window"])
def test_bool_integer_parameters_are_refused(name, ar_movies, tiny_params):
    with pytest.raises(ValueError, match=name):
        SparseVARAutoencoder(**{**tiny_params, name: True}).fit(ar_movies)


# --------------------------------------------------------------------------------- public seams
def test_decode_inverts_encode_in_frame_shape(tiny_fitted, ar_movies):
    latents = tiny_fitted.encode(ar_movies)
    frames = tiny_fitted.decode(latents)
    assert frames.shape == ar_movies.shape
    np.testing.assert_allclose(tiny_fitted.decode(latents[0]), frames[0])
    as_list = tiny_fitted.decode([latents[0], latents[1][:10]])
    assert isinstance(as_list, list) and as_list[1].shape == (10, 6, 5)
    with pytest.raises(ValueError, match="latents"):
        tiny_fitted.decode(latents[..., :2])


def test_offset_is_the_mean_frame_or_its_global_mean(tiny_fitted, ar_movies, tiny_params):
    # The running baseline (the default): the network's input is already a deviation.
    np.testing.assert_array_equal(tiny_fitted.offset_, np.zeros_like(tiny_fitted.mean_frame_))
    mean = SparseVARAutoencoder(**{**tiny_params, "max_epochs": 1, "baseline": "mean"})
    np.testing.assert_array_equal(mean.fit(ar_movies).offset_, mean.mean_frame_)
    plain = SparseVARAutoencoder(**{**tiny_params, "max_epochs": 1, "skip_connection": False})
    plain.fit(ar_movies)
    np.testing.assert_allclose(plain.offset_, plain.mean_frame_.mean())


def test_loads_a_format_1_file(tiny_fitted, tmp_path, ar_movies, model_file):
    payload = torch.load(model_file, weights_only=True)
    fitted = dict(payload["fitted"])
    old = dict(payload, format=1, encoder=fitted.pop("encoder_"), decoder=fitted.pop("decoder_"))
    del fitted["offset_"], fitted["n_features_in_"]
    old["fitted"] = fitted
    torch.save(old, tmp_path / "old.pt")
    restored = SparseVARAutoencoder.load(tmp_path / "old.pt")
    np.testing.assert_array_equal(restored.offset_, tiny_fitted.offset_)
    np.testing.assert_array_equal(restored.predict(ar_movies), tiny_fitted.predict(ar_movies))


def test_files_written_before_the_real_data_defaults_load_as_the_mean_frame_model(
    tmp_path, ar_movies, tiny_params
):
    """A file without baseline / linear_path / validation_fraction is the paper's model."""
    old_params = dict(baseline="mean", linear_path=False, validation_fraction=0.0)
    model = SparseVARAutoencoder(**{**tiny_params, **old_params}).fit(ar_movies)
    model.save(tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    for name in old_params:
        del payload["params"][name]
    torch.save(payload, tmp_path / "old.pt")
    restored = SparseVARAutoencoder.load(tmp_path / "old.pt")
    assert {name: getattr(restored, name) for name in old_params} == old_params
    np.testing.assert_array_equal(restored.predict(ar_movies), model.predict(ar_movies))
    state = model.__getstate__()
    for name in old_params:
        del state[name]
    unpickled = SparseVARAutoencoder.__new__(SparseVARAutoencoder)
    unpickled.__setstate__(state)
    np.testing.assert_array_equal(unpickled.predict(ar_movies), model.predict(ar_movies))


def test_cli_demo_checks_the_figure_folder_before_simulating(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["demo", "--out", str(blocker), "--runs", "2", "--epochs", "1"]) == 2
    _one_error_line(capsys, "--out", "not a folder")


def test_compare_sequences_refuses_n_jobs_zero_before_encoding(tiny_fitted, ar_movies, monkeypatch):
    def no_encoding(*args, **kwargs):
        raise AssertionError("runs must not be encoded with an invalid n_jobs")

    monkeypatch.setattr(type(tiny_fitted), "encode", no_encoding)
    with pytest.raises(ValueError, match="n_jobs"):
        tiny_fitted.compare_sequences(ar_movies[:2], ar_movies[2:], n_jobs=0)


def test_numpy_integer_n_jobs_runs_the_per_run_work(ar_movies, tiny_params):
    model = SparseVARAutoencoder(**{**tiny_params, "max_epochs": 1, "n_jobs": np.int64(2)})
    model.fit(ar_movies)
    serial = SparseVARAutoencoder(**{**tiny_params, "max_epochs": 1}).fit(ar_movies)
    np.testing.assert_array_equal(model.coef_, serial.coef_)


def test_save_and_load_refuse_a_non_path(tiny_fitted):
    with pytest.raises(TypeError):
        tiny_fitted.save(3)
    with pytest.raises(TypeError):
        SparseVARAutoencoder.load(3)


def test_cli_ctrl_c_is_one_line_and_exit_130(run_files, tmp_path, capsys, monkeypatch):
    def interrupted(self, X, y=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(SparseVARAutoencoder, "fit", interrupted)
    assert main(["fit", *run_files, "--out", str(tmp_path / "m.pt")]) == 130
    assert capsys.readouterr().err.strip() == "skvarae fit: interrupted"


def test_save_and_load_numpy_scalar_parameters(tmp_path, ar_movies, tiny_params):
    params = dict(
        tiny_params, baseline_time_constant=np.int64(5), validation_fraction=np.float64(0.1),
        alpha=np.float32(0.02), memory_budget=np.float64(1.0), skip_connection=np.bool_(True),
    )
    model = SparseVARAutoencoder(**params).fit(ar_movies)
    model.save(tmp_path / "m.pt")
    loaded = SparseVARAutoencoder.load(tmp_path / "m.pt")
    assert loaded.baseline_time_constant == 5 and type(loaded.baseline_time_constant) is int
    assert loaded.alpha == pytest.approx(0.02) and loaded.memory_budget == 1.0
    np.testing.assert_allclose(loaded.predict(ar_movies), model.predict(ar_movies), rtol=1e-6)
