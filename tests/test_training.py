import numpy as np
import pytest
import torch

from skvarae.training import Windows, make_batches


def test_windows_tile_every_frame_and_align_the_last_window_to_the_end():
    runs = [np.zeros((10, 2, 2)), np.zeros((4, 2, 2)), np.zeros((8, 2, 2))]
    windows = Windows(runs, 4, np.zeros((2, 2), np.float32), 1.0)
    assert windows.spans == [(0, 0, 4), (0, 4, 4), (0, 6, 4), (1, 0, 4), (2, 0, 4), (2, 4, 4)]
    for index, run in enumerate(runs):
        covered = np.zeros(len(run), bool)
        for r, start, length in windows.spans:
            if r == index:
                covered[start : start + length] = True
        assert covered.all()
    assert Windows(runs, None, np.zeros((2, 2), np.float32), 1.0).lengths == [10, 4, 8]


def test_windows_are_standardised_and_read_lazily_from_memmaps(tmp_path):
    movie = np.arange(6 * 2 * 3, dtype=np.uint16).reshape(6, 2, 3)
    np.save(tmp_path / "run.npy", movie)
    mapped = np.load(tmp_path / "run.npy", mmap_mode="r")
    offset = np.full((2, 3), 1.0, np.float32)
    windows = Windows([mapped], 4, offset, 2.0)
    assert windows.runs[0] is mapped  # nothing read or copied up front
    window = windows[1]
    assert isinstance(window, torch.Tensor) and window.dtype == torch.float32
    np.testing.assert_allclose(window.numpy(), (movie[2:6] - 1.0) / 2.0)


def test_batches_hold_equal_lengths_and_cover_every_sequence_once():
    lengths = [5, 5, 3, 5, 3, 7]
    batches = make_batches(lengths, 2, np.random.RandomState(0))
    assert sorted(i for batch in batches for i in batch) == list(range(6))
    assert all(len({lengths[i] for i in batch}) == 1 and len(batch) <= 2 for batch in batches)
    again = make_batches(lengths, 2, np.random.RandomState(0))
    assert again == batches


@pytest.mark.parametrize("batch_size", [1, 3, 10])
def test_batch_size_is_respected(batch_size):
    batches = make_batches([4] * 7, batch_size, np.random.RandomState(1))
    assert max(len(b) for b in batches) == min(batch_size, 7)


# ------------------------------------------------------------------------- train, called directly
import functools  # noqa: E402

from skvarae.network import ConvDecoder, ConvEncoder  # noqa: E402
from skvarae.training import end_to_end_loss, train, two_stage_loss  # noqa: E402
from skvarae.var import fit_var, forecast_var  # noqa: E402

NET = dict(latent_channels=1, max_latent_side=2, base_channels=2)


def _networks(seed=0):
    torch.manual_seed(seed)
    return ConvEncoder((6, 5), **NET), ConvDecoder((6, 5), **NET)


def _sequences(n=4, length=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(length, 6, 5, generator=g) for _ in range(n)]


def _train(loss, seed=0, **kwargs):
    encoder, decoder = _networks(seed)
    options = dict(max_epochs=3, learning_rate=1e-2, batch_size=2, tol=0.0, n_iter_no_change=10,
                   rng=np.random.RandomState(seed), device=torch.device("cpu"))
    options.update(kwargs)
    history, best = train(encoder, decoder, _sequences(), loss=loss, **options)
    return encoder, decoder, history, best


def _reference_end_to_end(encoder, decoder, frames, *, alpha, lags, forecast_weight=1.0,
                          reconstruction_weight=1.0):
    """The loss exactly as written before ``train`` took ``loss=`` (sequence_loss, end_to_end)."""
    n, t = frames.shape[:2]
    latents = encoder(frames.flatten(0, 1)).unflatten(0, (n, t))
    reconstruction = torch.mean((decoder(latents.flatten(0, 1)).unflatten(0, (n, t)) - frames) ** 2)
    coef, intercept = fit_var(latents, alpha, lags)
    forecast_latents = forecast_var(latents, coef, intercept)
    forecast_frames = decoder(forecast_latents.flatten(0, 1)).unflatten(0, (n, t - lags))
    forecast = torch.mean((forecast_frames - frames[:, lags:]) ** 2)
    return {"reconstruction": reconstruction, "forecast": forecast,
            "loss": forecast_weight * forecast + reconstruction_weight * reconstruction}


def test_end_to_end_loss_trains_bit_for_bit_like_the_reference_loss():
    options = dict(alpha=0.05, lags=2, forecast_weight=0.7, reconstruction_weight=1.3)
    got = _train(functools.partial(end_to_end_loss, **options))
    expected = _train(functools.partial(_reference_end_to_end, **options))
    for key in ("loss", "reconstruction", "forecast"):
        assert [h[key] for h in got[2]] == [h[key] for h in expected[2]]
    for module, reference in zip(got[:2], expected[:2]):
        for (name, a), (_, b) in zip(module.state_dict().items(), reference.state_dict().items()):
            assert torch.equal(a, b), name


def test_two_stage_loss_is_reconstruction_only():
    encoder, decoder = _networks()
    frames = torch.stack(_sequences(2))
    losses = two_stage_loss(encoder, decoder, frames)
    assert set(losses) == {"loss", "reconstruction"} and losses["loss"] is losses["reconstruction"]
    _, _, history, _ = _train(two_stage_loss)
    assert set(history[0]) == {"loss", "reconstruction", "epoch", "duration"}


def test_train_records_whatever_terms_a_custom_loss_returns():
    calls = []

    def custom(encoder, decoder, frames):
        calls.append(tuple(frames.shape))
        out = two_stage_loss(encoder, decoder, frames)
        return {**out, "extra": out["loss"].detach() * 0 + 7.0}

    _, _, history, best = _train(custom, max_epochs=2)
    assert calls and all(shape[1:] == (12, 6, 5) for shape in calls)
    assert [h["extra"] for h in history] == [7.0, 7.0] and best in (1, 2)


def test_train_stops_on_a_floating_point_error_from_the_loss_and_restores_the_best_weights():
    epochs = {"n": 0}

    def diverging(encoder, decoder, frames):
        out = two_stage_loss(encoder, decoder, frames)
        epochs["n"] += 1
        if epochs["n"] > 4:  # two batches per epoch: epoch 3 fails
            raise FloatingPointError("The latents became NaN, infinite or too large")
        return out

    encoder, decoder = _networks()
    snapshots = []
    original = two_stage_loss

    def recording(encoder, decoder, frames):
        snapshots.append({k: v.clone() for k, v in encoder.state_dict().items()})
        return diverging(encoder, decoder, frames)

    with pytest.raises(FloatingPointError, match="epoch 3.*learning_rate"):
        train(encoder, decoder, _sequences(), loss=recording, max_epochs=5, learning_rate=1e-2,
              batch_size=2, tol=0.0, n_iter_no_change=10, rng=np.random.RandomState(0),
              device=torch.device("cpu"))
    assert original is two_stage_loss
    # Restored: the weights at the end of epoch 1 or 2 (seen at the first batch of the next
    # epoch: calls 3 and 5), not weights from the failed epoch 3.
    state = encoder.state_dict()
    ends = [snapshots[2], snapshots[4]]
    assert any(all(torch.equal(state[k], end[k]) for k in state) for end in ends)


def test_end_to_end_loss_refuses_non_finite_latents_with_a_floating_point_error():
    encoder, decoder = _networks()
    with torch.no_grad():
        next(encoder.parameters()).fill_(float("inf"))
    with pytest.raises(FloatingPointError, match="latents"):
        end_to_end_loss(encoder, decoder, torch.stack(_sequences(2)), alpha=0.1, lags=1)


# ------------------------------------------------------------- validation on held-out tails
from skvarae.training import HeldOutTails  # noqa: E402


def _tails(n_train, **kwargs):
    runs = [np.random.default_rng(i).normal(size=(20, 6, 5)).astype(np.float32) for i in range(3)]
    sequences = Windows(runs, 8, np.zeros((6, 5), np.float32), 1.0, n_frames=n_train)
    options = dict(context=8, alpha=0.05, lags=1)
    options.update(kwargs)
    return sequences, HeldOutTails(sequences, n_train, **options)


def test_windows_with_n_frames_never_reach_the_held_out_tail():
    sequences, _ = _tails([16, 16, 20])
    for index, start, length in sequences.spans:
        assert start + length <= [16, 16, 20][index]


def test_held_out_tails_forecast_as_score_does():
    """The validation forecast: VAR on the context latents, one-step forecasts of the tail."""
    sequences, tails = _tails([16, 16, 20])
    assert tails.spans == [(0, 8, 16, 20), (1, 8, 16, 20)]  # run 2 has no tail
    encoder, decoder = _networks()
    encoder.eval(), decoder.eval()
    got = tails(encoder, decoder, torch.device("cpu"))
    expected = []
    with torch.no_grad():
        for index in (0, 1):
            frames = sequences.frames(index, 8, 20)
            z = encoder(frames).double()
            coef, intercept = fit_var(z[:8], 0.05, 1)
            forecast = decoder(forecast_var(z[7:], coef, intercept).float())
            expected.append(torch.mean((forecast - frames[8:]) ** 2).item())
    assert got["forecast"] == pytest.approx(np.mean(expected))
    assert got["loss"] == pytest.approx(got["forecast"] + got["reconstruction"])


def test_train_with_validation_restores_the_starting_weights_when_nothing_improves():
    """Epoch 0 counts: a validation loss that only gets worse returns the initial weights."""
    encoder, decoder = _networks()
    start = {k: v.clone() for k, v in encoder.state_dict().items()}
    calls = {"n": 0}

    def worsening(encoder, decoder, device):
        calls["n"] += 1
        return {"loss": float(calls["n"])}

    history, best = train(encoder, decoder, _sequences(), loss=two_stage_loss, max_epochs=3,
                          learning_rate=1e-2, batch_size=2, tol=0.0, n_iter_no_change=10,
                          rng=np.random.RandomState(0), device=torch.device("cpu"),
                          validation=worsening)
    assert best == 0 and calls["n"] == 4
    assert [h["validation_loss"] for h in history] == [2.0, 3.0, 4.0]
    assert all(torch.equal(v, start[k]) for k, v in encoder.state_dict().items())


def test_train_stops_early_on_the_validation_loss():
    encoder, decoder = _networks()
    history, best = train(encoder, decoder, _sequences(), loss=two_stage_loss, max_epochs=20,
                          learning_rate=1e-2, batch_size=2, tol=0.0, n_iter_no_change=2,
                          rng=np.random.RandomState(0), device=torch.device("cpu"),
                          validation=lambda e, d, device: {"loss": 1.0})
    assert len(history) == 2 and best == 0


# ------------------------------------------------------------------ memory: chunks and budget
from skvarae import training as training_module  # noqa: E402
from skvarae.training import (  # noqa: E402
    activation_bytes,
    decoding_error,
    encode_frames,
    largest_step,
    plan_frames_per_chunk,
)


def _loss_and_gradients(loss, frames, seed=0):
    encoder, decoder = _networks(seed)
    losses = loss(encoder, decoder, frames)
    losses["loss"].backward()
    parameters = list(encoder.parameters()) + list(decoder.parameters())
    return {k: v.item() for k, v in losses.items()}, [p.grad.clone() for p in parameters]


@pytest.mark.parametrize("loss", [
    functools.partial(end_to_end_loss, alpha=0.01, lags=1),
    two_stage_loss,
])
@pytest.mark.parametrize("frames_per_chunk", [1, 3, 7])
def test_chunked_losses_give_the_same_values_and_gradients(loss, frames_per_chunk):
    frames = torch.randn(2, 9, 6, 5, generator=torch.Generator().manual_seed(0))
    whole, whole_grads = _loss_and_gradients(loss, frames)
    chunked, chunked_grads = _loss_and_gradients(
        functools.partial(loss, frames_per_chunk=frames_per_chunk), frames
    )
    assert whole.keys() == chunked.keys()
    for name in whole:
        assert chunked[name] == pytest.approx(whole[name], rel=1e-5)
    for a, b in zip(whole_grads, chunked_grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def _saved_bytes(function):
    """Bytes of the tensors autograd keeps for the backward pass of ``function()``."""
    storages = {}

    def pack(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        function()
    return sum(storages.values())


def test_chunks_keep_less_for_the_backward_pass():
    torch.manual_seed(0)
    encoder, decoder = ConvEncoder((32, 32), **NET), ConvDecoder((32, 32), **NET)
    frames = torch.randn(2, 16, 32, 32)
    loss = functools.partial(end_to_end_loss, encoder, decoder, frames, alpha=0.01, lags=1)
    whole = _saved_bytes(loss)
    chunked = _saved_bytes(functools.partial(loss, frames_per_chunk=4))
    assert chunked < whole / 3


def test_encode_frames_and_decoding_error_chunk_without_gradients_too():
    encoder, decoder = _networks()
    frames = torch.randn(2, 5, 6, 5)
    with torch.no_grad():
        latents = encode_frames(encoder, frames)
        torch.testing.assert_close(encode_frames(encoder, frames, 2), latents)
        error = decoding_error(decoder, latents, frames)
        assert decoding_error(decoder, latents, frames, 3).item() == pytest.approx(
            error.item(), rel=1e-6)


def test_activation_bytes_grow_with_the_frame_and_are_per_frame():
    small = activation_bytes(*_networks(), (6, 5), torch.device("cpu"))
    torch.manual_seed(0)
    encoder, decoder = ConvEncoder((24, 20), **NET), ConvDecoder((24, 20), **NET)
    large = activation_bytes(encoder, decoder, (24, 20), torch.device("cpu"))
    assert all(b > 0 for b in small + large)
    # 16 times the pixels (padded: 8x8 -> 32x32): roughly 16 times the bytes
    assert 8 < large[0] / small[0] < 24 and 8 < large[1] / small[1] < 24


def test_plan_frames_per_chunk():
    shape, e, g, f = (10, 10), 1000, 3000, training_module._BACKWARD_FACTOR
    batch = 64 * 800  # the float32 batch and its copy
    whole = batch + f * 64 * (e + 2 * g)
    assert plan_frames_per_chunk(64, shape, e, g, n_decodes=2, budget=None) is None
    assert plan_frames_per_chunk(64, shape, e, g, n_decodes=2, budget=whole) is None
    chunk = plan_frames_per_chunk(64, shape, e, g, n_decodes=2, budget=whole - 1)
    assert chunk == int((whole - 1 - batch) // (f * (e + g)))
    assert plan_frames_per_chunk(64, shape, e, g, n_decodes=2, budget=batch + f * (e + g)) == 1
    with pytest.raises(ValueError, match="needs at least"):
        plan_frames_per_chunk(64, shape, e, g, n_decodes=2, budget=batch + f * (e + g) - 1)
    # two-stage training decodes each frame once: the whole step fits a smaller budget
    assert plan_frames_per_chunk(64, shape, e, g, n_decodes=1, budget=whole - f * 64 * g) is None


def test_largest_step_follows_make_batches():
    lengths = [5, 5, 3, 5, 3, 7]
    for batch_size in (1, 2, 3, 10):
        batches = make_batches(lengths, batch_size, np.random.RandomState(0))
        drawn = max(sum(lengths[i] for i in batch) for batch in batches)
        assert largest_step(lengths, batch_size) == drawn


# ------------------------------------------------------------------ subsampled reconstruction
from skvarae.training import subsample_frames  # noqa: E402


def test_subsample_frames_keeps_the_same_frames_of_latents_and_frames_in_time_order():
    frames = torch.arange(3 * 10 * 2 * 2, dtype=torch.float64).reshape(3, 10, 2, 2)
    latents = frames.flatten(2)[..., :1] * 10  # latent t of sequence b identifies frame (b, t)
    generator = torch.Generator().manual_seed(0)
    kept_latents, kept_frames = subsample_frames(latents, frames, 0.3, generator)
    assert kept_latents.shape == (3, 3, 1) and kept_frames.shape == (3, 3, 2, 2)
    torch.testing.assert_close(kept_latents, kept_frames.flatten(2)[..., :1] * 10)
    index = (kept_frames[:, :, 0, 0] / 4).long() % 10  # the time index of each kept frame
    assert torch.all(index[:, 1:] > index[:, :-1])  # distinct and in time order
    assert torch.equal((kept_frames[:, :, 0, 0] / 40).long(), torch.arange(3)[:, None].expand(3, 3))
    # fraction 1, or a fraction that rounds to every frame, returns the inputs themselves
    assert subsample_frames(latents, frames, 1.0)[1] is frames
    assert subsample_frames(latents, frames, 0.97)[0] is latents
    assert subsample_frames(latents, frames, 0.01)[1].shape == (3, 1, 2, 2)  # at least one frame


def test_subsample_frames_draws_every_frame_equally_often_and_repeats_with_its_generator():
    frames = torch.arange(8.0)[None, :, None, None]
    latents = frames[..., 0]
    counts = torch.zeros(8)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2000):
        counts[subsample_frames(latents, frames, 0.25, generator)[1].flatten().long()] += 1
    assert counts.sum() == 4000
    assert torch.all((counts > 400) & (counts < 600))  # 500 expected, binomial sd 19
    draw = [subsample_frames(latents, frames, 0.5, torch.Generator().manual_seed(3))[1]
            for _ in range(2)]
    assert torch.equal(*draw)


def test_subsampled_reconstruction_is_an_unbiased_estimate_and_leaves_the_forecast_alone():
    encoder, decoder = _networks()
    frames = torch.stack(_sequences(2, length=8))
    options = dict(alpha=0.05, lags=1)
    with torch.no_grad():
        full = end_to_end_loss(encoder, decoder, frames, **options)
        generator = torch.Generator().manual_seed(0)
        draws = [
            end_to_end_loss(encoder, decoder, frames, reconstruction_subsample=0.25,
                            generator=generator, **options)
            for _ in range(400)
        ]
    assert all(torch.equal(d["forecast"], full["forecast"]) for d in draws)
    estimates = torch.stack([d["reconstruction"] for d in draws])
    assert estimates.std() > 0.01 * full["reconstruction"]  # the subsets do differ
    standard_error = estimates.std() / len(draws) ** 0.5
    assert abs(estimates.mean() - full["reconstruction"]) < 4 * standard_error


def test_subsampled_reconstruction_trains_and_is_deterministic_with_its_generator():
    def loss(seed):
        return functools.partial(end_to_end_loss, alpha=0.05, lags=1, reconstruction_subsample=0.5,
                                 generator=torch.Generator().manual_seed(seed))

    first, again, other = _train(loss(0)), _train(loss(0)), _train(loss(1))
    assert [h["loss"] for h in first[2]] == [h["loss"] for h in again[2]]
    assert [h["loss"] for h in first[2]] != [h["loss"] for h in other[2]]
