"""The memory budget of a training step (``memory_budget``)."""

import numpy as np
import pytest
import torch

from skvarae import SparseVARAutoencoder
from skvarae.network import ConvDecoder, ConvEncoder
from skvarae.training import _BACKWARD_FACTOR, activation_bytes, plan_frames_per_chunk


def _budget_for_chunks(params, shape, n_frames, frames_per_chunk):
    """A memory_budget (GiB) that makes fit use ``frames_per_chunk`` frames per chunk."""
    net = {k: params[k] for k in ("latent_channels", "max_latent_side", "base_channels")}
    net["linear_path"] = SparseVARAutoencoder().linear_path  # the default the fit builds
    encoder_bytes, decoder_bytes = activation_bytes(
        ConvEncoder(shape, **net), ConvDecoder(shape, **net), shape, torch.device("cpu"),
    )
    budget = n_frames * 8 * shape[0] * shape[1] + frames_per_chunk * (
        _BACKWARD_FACTOR * (encoder_bytes + decoder_bytes))
    assert plan_frames_per_chunk(n_frames, shape, encoder_bytes, decoder_bytes, n_decodes=2,
                                 budget=budget) == frames_per_chunk
    return budget / 2**30


def test_a_budget_below_the_whole_step_gives_the_same_model(ar_movies, tiny_params):
    # 3 runs of 24 frames, 10 % held out: windows of 22 frames, 3 per step (66 frames).
    budget = _budget_for_chunks(tiny_params, ar_movies.shape[2:], 66, 5)
    whole = SparseVARAutoencoder(**tiny_params, memory_budget=None).fit(ar_movies)
    chunked = SparseVARAutoencoder(**tiny_params, memory_budget=budget).fit(ar_movies)
    for a, b in zip(whole.history_, chunked.history_):
        for name in ("loss", "forecast", "reconstruction", "validation_loss"):
            assert b[name] == pytest.approx(a[name], rel=1e-4)
    np.testing.assert_allclose(chunked.coef_, whole.coef_, atol=1e-4)


def test_a_budget_that_cannot_hold_one_frame_fails_before_reading_the_movie(
    ar_movies, tiny_params, monkeypatch
):
    model = SparseVARAutoencoder(**tiny_params, memory_budget=1e-9)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the movie was read before the budget was checked")

    monkeypatch.setattr(SparseVARAutoencoder, "_mean_frame", must_not_run)
    with pytest.raises(ValueError, match=r"batch_size=4.*memory_budget=1e-09"):
        model.fit(ar_movies)
    assert not hasattr(model, "coef_")


def test_the_message_says_what_the_step_needs(ar_movies, tiny_params):
    with pytest.raises(ValueError, match=r"66 frames of 6x5 needs at least .* GiB"):
        SparseVARAutoencoder(**tiny_params, memory_budget=1e-9).fit(ar_movies)


@pytest.mark.parametrize("bad", [0, -1.0, "2GB"])
def test_memory_budget_is_validated(ar_movies, tiny_params, bad):
    with pytest.raises((ValueError, TypeError), match="memory_budget"):
        SparseVARAutoencoder(**tiny_params, memory_budget=bad).fit(ar_movies)


def test_binning_brings_a_step_within_the_budget(tiny_params):
    movies = np.random.default_rng(0).random((2, 12, 24, 24), dtype=np.float32)
    params = dict(tiny_params, validation_fraction=0.0)
    shape = (24, 24)
    # A budget that holds the binned step (12x12 frames) whole but not one frame at 24x24.
    budget = 24 * 8 * shape[0] * shape[1] / 2**30
    with pytest.raises(ValueError, match="spatial_bin=1"):
        SparseVARAutoencoder(**params, memory_budget=budget).fit(movies)
    model = SparseVARAutoencoder(**params, memory_budget=budget, spatial_bin=2).fit(movies)
    assert model.predict(movies).shape == (2, 11, 24, 24)


@pytest.mark.parametrize("subsample, training, expected", [
    (1.0, "end_to_end", 2.0), (0.25, "end_to_end", 1.25), (0.25, "two_stage", 1),
])
def test_the_plan_counts_the_decoder_passes_a_step_makes(subsample, training, expected):
    model = SparseVARAutoencoder(training=training, reconstruction_subsample=subsample)
    assert model._decodes_per_frame() == expected


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, "all"])
def test_reconstruction_subsample_is_validated(ar_movies, tiny_params, bad):
    with pytest.raises((ValueError, TypeError), match="reconstruction_subsample"):
        SparseVARAutoencoder(**tiny_params, reconstruction_subsample=bad).fit(ar_movies)


def test_a_subsampled_reconstruction_fit_is_deterministic_and_changes_the_training(
    ar_movies, tiny_params
):
    def fit(subsample):
        return SparseVARAutoencoder(**tiny_params, reconstruction_subsample=subsample).fit(
            ar_movies
        )

    first, again, full = fit(0.5), fit(0.5), fit(1.0)
    assert [h["loss"] for h in first.history_] == [h["loss"] for h in again.history_]
    np.testing.assert_array_equal(first.coef_, again.coef_)
    assert first.history_[0]["reconstruction"] != full.history_[0]["reconstruction"]
