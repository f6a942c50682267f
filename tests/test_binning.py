"""Spatial binning (skvarae.binning) and the estimator's ``spatial_bin``."""

import numpy as np
import pytest

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
