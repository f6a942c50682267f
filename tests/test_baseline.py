"""The running baseline (skvarae.baseline) and the model's use of it."""

import numpy as np
import pytest

from skvarae import SparseVARAutoencoder
from skvarae.baseline import RunningDeviation, initial_baseline


def naive_deviation(run, tau):
    """x_t - b_{t-1} with the exponential moving average written as a plain loop."""
    baseline = initial_baseline(run, tau)
    out = []
    for frame in np.asarray(run, dtype=np.float64):
        out.append(frame - baseline)
        baseline = (1 - 1 / tau) * baseline + frame / tau
    return np.array(out)


@pytest.mark.parametrize("tau", [1, 3, 50])
@pytest.mark.parametrize("checkpoint", [1, 7, 256])
def test_running_deviation_matches_a_plain_loop(tau, checkpoint):
    run = np.random.default_rng(tau).integers(0, 60000, (97, 3, 5)).astype(np.uint16)
    deviation = RunningDeviation(run, tau, checkpoint=checkpoint)
    expected = naive_deviation(run, tau)
    np.testing.assert_allclose(deviation[:], expected, rtol=1e-5, atol=0.02)
    np.testing.assert_allclose(deviation[40:77], expected[40:77], rtol=1e-5, atol=0.02)
    np.testing.assert_allclose(deviation[-1], expected[-1], rtol=1e-5, atol=0.02)
    np.testing.assert_allclose(deviation[5:60:4, 1], expected[5:60:4, 1], rtol=1e-5, atol=0.02)
    assert deviation.shape == run.shape and deviation.dtype == np.float32
    assert np.asarray(deviation).shape == run.shape


def test_running_deviation_is_causal_after_the_first_half():
    """Changing the last frames changes nothing before them (score's held-out quarter)."""
    rng = np.random.default_rng(0)
    run = rng.random((40, 4, 4))
    changed = run.copy()
    changed[20:] += 100.0
    a, b = RunningDeviation(run, 8)[:], RunningDeviation(changed, 8)[:]
    np.testing.assert_array_equal(a[:20], b[:20])


def test_baseline_before_each_frame_and_block():
    run = np.arange(6, dtype=np.float64)[:, None, None] * np.ones((6, 2, 2))
    frames, baselines = RunningDeviation(run, 1).block(2, 5)
    np.testing.assert_array_equal(frames[:, 0, 0], [2, 3, 4])
    np.testing.assert_array_equal(baselines[:, 0, 0], [1, 2, 3])  # tau=1: the previous frame


def test_initial_baseline_uses_at_most_half_of_the_run():
    run = np.arange(10, dtype=float)[:, None, None] * np.ones((10, 1, 1))
    assert initial_baseline(run, 50)[0, 0] == np.mean(np.arange(5))
    assert initial_baseline(run, 2)[0, 0] == 0.5


@pytest.mark.parametrize("tau", [0, -1, 2.5, True])
def test_time_constant_must_be_a_positive_integer(tau):
    with pytest.raises(ValueError, match="time_constant"):
        RunningDeviation(np.zeros((5, 2, 2)), tau)


def test_out_of_range_frame_raises_index_error():
    with pytest.raises(IndexError):
        RunningDeviation(np.zeros((5, 2, 2)), 2)[5]


def drifting_runs(n_runs=3, n_frames=60, seed=0):
    """Runs whose pixels drift independently (random walks around a mean image), plus noise.

    More independent drifts (144 pixels) than latents (18), so no low-rank model of the
    deviations from one mean frame can follow them; a running baseline does.
    """
    rng = np.random.default_rng(seed)
    image = 100 + 50 * rng.random((12, 12))
    walks = np.cumsum(rng.normal(0, 1.0, (n_runs, n_frames, 12, 12)), axis=1)
    noise = rng.normal(0, 0.5, (n_runs, n_frames, 12, 12))
    return (image + walks + noise).astype(np.float32)


TINY = dict(base_channels=4, max_epochs=2, window=20, batch_size=2, device="cpu", random_state=0)


def test_running_baseline_model_forecasts_drift_better_than_the_mean_frame_model():
    """On drifting runs the running baseline follows the drift that one mean frame cannot."""
    runs = drifting_runs()
    running = SparseVARAutoencoder(**TINY).fit(runs[:2])
    mean = SparseVARAutoencoder(baseline="mean", **TINY).fit(runs[:2])
    assert running.score(runs[2:]) > mean.score(runs[2:]) + 0.3
    assert np.all(running.offset_ == 0)
    np.testing.assert_array_equal(mean.offset_, mean.mean_frame_)


def test_predict_adds_the_running_baseline_back():
    runs = drifting_runs()
    model = SparseVARAutoencoder(**TINY).fit(runs)
    forecast = model.predict(runs[:1])[0]
    # The forecast of frame t is within the noise of the frame, not of the dynamic part alone.
    assert np.abs(forecast - runs[0, 1:]).mean() < 0.1 * np.abs(runs[0]).mean()


def test_baseline_is_ignored_without_the_skip_connection():
    runs = drifting_runs()
    model = SparseVARAutoencoder(skip_connection=False, **TINY).fit(runs)
    assert np.allclose(model.offset_, model.mean_frame_.mean())


def test_reading_in_any_order_gives_the_same_deviations_as_one_pass():
    rng = np.random.default_rng(3)
    run = rng.random((40, 3, 4)).astype(np.float32) * 100
    whole = RunningDeviation(run, 5, checkpoint=8)[:]
    streamed = RunningDeviation(run, 5, checkpoint=8)
    consecutive = np.concatenate([streamed[start : start + 3] for start in range(0, 40, 3)])
    np.testing.assert_array_equal(consecutive, whole)
    for start, stop in [(17, 20), (3, 9), (20, 25), (0, 2), (39, 40), (25, 33)]:
        np.testing.assert_array_equal(streamed[start:stop], whole[start:stop])


class _CountingRun:
    """A run that counts the frames read from it."""

    def __init__(self, frames):
        self.frames, self.shape, self.dtype, self.read = frames, frames.shape, frames.dtype, 0

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, key):
        out = self.frames[key]
        self.read += len(out) if out.ndim == 3 else 1
        return out


def test_streaming_in_small_blocks_reads_each_frame_about_once():
    run = _CountingRun(np.random.default_rng(0).random((600, 2, 2)).astype(np.float32))
    deviation = RunningDeviation(run, 50)  # checkpoints every 256 frames
    after_init = run.read
    for start in range(0, 600, 4):
        deviation[start : start + 4]
    # 600 frames read once; refiltering from the last checkpoint would read ~75,000
    assert run.read - after_init == 600


def test_memory_kept_by_a_running_deviation_does_not_grow_with_its_blocks():
    """Only the checkpointed baselines stay in memory, one frame each.

    A stored baseline that was a view of its filter block kept the whole block alive: memory
    then grew with the length of the run (one block per checkpoint), which a memory-mapped
    movie larger than memory could not afford.
    """
    import tracemalloc

    run = np.random.default_rng(0).random((2048, 32, 32)).astype(np.float32)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        deviation = RunningDeviation(run, 50, checkpoint=64)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    frame_bytes = 32 * 32 * 8
    assert len(deviation._states) == 2048 // 64 + 1
    # 33 baselines of one frame (264 KiB), not 33 blocks of 64 frames (16.5 MiB)
    assert kept < 2 * len(deviation._states) * frame_bytes
