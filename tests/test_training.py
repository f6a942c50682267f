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
