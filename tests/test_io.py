"""Tests of skvarae.io: reading movies and the data contract (check_runs)."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import tifffile

from skvarae import io
from skvarae.io import check_runs, iter_frame_batches, read_movie, read_runs


def _imwrite(path, data, **kwargs):
    """tifffile.imwrite storing grey-level pages (3 or 4 frames are not read as RGB)."""
    kwargs.setdefault("photometric", "minisblack")
    tifffile.imwrite(path, data, **kwargs)


def _movie(shape=(12, 10, 14), dtype=np.uint16, seed=0):
    """A random movie of ``shape`` in ``dtype`` (non-square frames by default)."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 4000), size=shape).astype(dtype)


# --------------------------------------------------------------------------------------
# read_movie: file formats
# --------------------------------------------------------------------------------------


def test_multipage_tiff_uint16_is_memory_mapped(tmp_path):
    movie = _movie((20, 30, 40), np.uint16)
    path = tmp_path / "movie.tif"
    _imwrite(path, movie)
    out = read_movie(path)
    assert isinstance(out, np.memmap)
    assert out.shape == (20, 30, 40) and out.dtype == np.uint16
    assert not out.flags.writeable
    np.testing.assert_array_equal(out, movie)
    # the memmap is backed by the file itself
    assert os.path.samefile(out.filename, path)


def test_mmap_false_reads_into_memory(tmp_path):
    movie = _movie((5, 6, 7), np.uint16)
    path = tmp_path / "movie.tif"
    _imwrite(path, movie)
    out = read_movie(path, mmap=False)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, movie)


def test_compressed_tiff_falls_back_to_reading(tmp_path):
    movie = _movie((9, 16, 24), np.uint16)
    path = tmp_path / "compressed.tif"
    _imwrite(path, movie, compression="zlib")
    out = read_movie(path)
    assert type(out) is np.ndarray  # not memory-mappable, read instead
    assert out.dtype == np.uint16 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, movie)


def test_imagej_hyperstack_with_singleton_channel_and_z(tmp_path):
    movie = _movie((7, 11, 13), np.uint16)
    path = tmp_path / "hyperstack.tif"
    _imwrite(
        path, movie[:, None, None], imagej=True, metadata={"axes": "TZCYX"}
    )
    out = read_movie(path)
    assert out.shape == (7, 11, 13)
    assert isinstance(out, np.memmap)
    np.testing.assert_array_equal(out, movie)


def test_imagej_stack_of_slices_is_one_movie(tmp_path):
    # ImageJ calls the frames of an unlabelled stack "slices" (axis Z)
    movie = _movie((6, 8, 5), np.uint8)
    path = tmp_path / "slices.tif"
    _imwrite(path, movie, imagej=True, metadata={"axes": "ZYX"})
    np.testing.assert_array_equal(read_movie(path), movie)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_ome_tiff(tmp_path, compression):
    movie = _movie((8, 12, 9), np.uint16)
    path = tmp_path / "movie.ome.tif"
    _imwrite(path, movie[:, None], metadata={"axes": "TCYX"}, compression=compression)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
    out = read_movie(path)
    assert out.shape == (8, 12, 9)
    assert isinstance(out, np.memmap) == (compression is None)
    np.testing.assert_array_equal(out, movie)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_dtypes_and_non_square_frames(tmp_path, dtype, suffix):
    movie = _movie((5, 7, 19), dtype)
    path = tmp_path / f"movie{suffix}"
    if suffix == ".npy":
        np.save(path, movie)
    else:
        _imwrite(path, movie)
    out = read_movie(path)
    assert out.shape == (5, 7, 19)
    assert out.dtype == dtype
    assert isinstance(out, np.memmap)
    np.testing.assert_array_equal(out, movie)


def test_npy_is_memory_mapped_read_only(tmp_path):
    movie = _movie((10, 4, 6), np.float32)
    path = tmp_path / "movie.npy"
    np.save(path, movie)
    out = read_movie(path)
    assert isinstance(out, np.memmap) and not out.flags.writeable
    np.testing.assert_array_equal(out, movie)
    assert type(read_movie(path, mmap=False)) is np.ndarray


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_single_frame_file_is_a_run_of_one_frame(tmp_path, suffix):
    frame = _movie((9, 4), np.uint16)
    path = tmp_path / f"frame{suffix}"
    np.save(path, frame) if suffix == ".npy" else _imwrite(path, frame)
    out = read_movie(path)
    assert out.shape == (1, 9, 4)
    np.testing.assert_array_equal(out[0], frame)


def test_big_endian_tiff_keeps_file_byte_order(tmp_path):
    movie = _movie((4, 5, 6), np.uint16)
    path = tmp_path / "big.tif"
    _imwrite(path, movie, byteorder=">")
    out = read_movie(path)
    assert out.dtype == np.dtype(">u2")
    np.testing.assert_array_equal(out, movie)


# --------------------------------------------------------------------------------------
# read_movie: folders and lists of single-frame files
# --------------------------------------------------------------------------------------


def _write_frames(folder, movie, stem="frame"):
    folder.mkdir(exist_ok=True)
    paths = []
    for i, frame in enumerate(movie):
        path = folder / f"{stem}{i}.tif"  # frame10 must come after frame9
        _imwrite(path, frame)
        paths.append(path)
    return paths


def test_folder_of_single_frame_tiffs_is_one_run_sorted_naturally(tmp_path):
    movie = _movie((12, 6, 9), np.uint16)
    folder = tmp_path / "frames"
    _write_frames(folder, movie)
    (folder / "notes.txt").write_text("not a frame")
    _imwrite(folder / ".hidden.tif", np.zeros((3, 3), np.uint8))
    out = read_movie(folder)
    assert out.shape == (12, 6, 9) and out.dtype == np.uint16
    np.testing.assert_array_equal(out, movie)
    runs = read_runs(folder)
    assert len(runs) == 1
    np.testing.assert_array_equal(runs[0], movie)


def test_list_of_single_frame_paths_is_one_run_in_given_order(tmp_path):
    movie = _movie((5, 6, 9), np.int16)
    paths = _write_frames(tmp_path / "frames", movie)
    out = read_movie([str(p) for p in paths[::-1]])
    assert out.shape == (5, 6, 9) and out.dtype == np.int16
    np.testing.assert_array_equal(out, movie[::-1])


def test_folder_with_inconsistent_frames_names_files(tmp_path):
    folder = tmp_path / "frames"
    _write_frames(folder, _movie((2, 6, 9)))
    _imwrite(folder / "frame2.tif", np.zeros((6, 8), np.uint16))
    with pytest.raises(ValueError, match=r"frame0\.tif.*\(6, 9\).*frame2\.tif.*\(6, 8\)"):
        read_movie(folder)


def test_folder_of_multi_frame_files_is_refused(tmp_path):
    _imwrite(tmp_path / "run0.tif", np.zeros((5, 4, 3), np.uint16))
    _imwrite(tmp_path / "run1.tif", np.zeros((6, 4, 3), np.uint16))
    with pytest.raises(ValueError, match=r"run0\.tif' holds 5 frames.*\*\.tif"):
        read_movie(tmp_path)


def test_list_of_multi_frame_chunks_is_one_run(tmp_path):
    movie = _movie((11, 4, 3))
    _imwrite(tmp_path / "chunk_00001.tif", movie[:6])
    _imwrite(tmp_path / "chunk_00002.tif", movie[6:])
    out = read_movie([tmp_path / "chunk_00001.tif", tmp_path / "chunk_00002.tif"])
    np.testing.assert_array_equal(out, movie)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no TIFF files"):
        read_movie(tmp_path)


# --------------------------------------------------------------------------------------
# read_movie: errors
# --------------------------------------------------------------------------------------


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "missing.tif"
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        read_movie(path)
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        read_runs([path])


def test_unreadable_file_names_the_file(tmp_path):
    path = tmp_path / "garbage.tif"
    path.write_bytes(b"this is not a TIFF file at all")
    with pytest.raises(ValueError, match="garbage.tif"):
        read_movie(path)
    bad_npy = tmp_path / "garbage.npy"
    bad_npy.write_bytes(b"nonsense")
    with pytest.raises(ValueError, match="garbage.npy"):
        read_movie(bad_npy)


@pytest.mark.parametrize("ome", [False, True], ids=["tiff", "ome"])
@pytest.mark.parametrize("compression", ["zlib", None])
def test_truncated_compressed_tiff_raises_instead_of_reading_short(tmp_path, compression, ome):
    # issue 10, D7: a truncated zlib TIFF of 20 frames was read as 1 frame, with a log line
    movie = _movie((20, 32, 48), np.uint16)
    whole = tmp_path / "whole.tif"
    kwargs = dict(ome=True, metadata={"axes": "TYX"}) if ome else {}
    _imwrite(whole, movie, compression=compression, **kwargs)
    data = whole.read_bytes()
    for fraction in (0.3, 0.5, 0.75, 0.79, 0.95, 0.999):
        path = tmp_path / "truncated.tif"
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(ValueError, match=r"truncated\.tif.*(truncated|corrupt)"):
            read_movie(path)
        with pytest.raises(ValueError, match=r"truncated\.tif"):
            check_runs([path, whole])
        with pytest.raises(ValueError, match=r"truncated\.tif"):
            read_movie([whole, path])  # probed as part of a list of files too


def test_two_non_singleton_axes_is_not_a_movie(tmp_path):
    path = tmp_path / "two_channels.tif"
    data = np.zeros((5, 2, 6, 7), np.uint16)
    _imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    with pytest.raises(ValueError, match=r"two_channels\.tif.*\(5, 2, 6, 7\)"):
        read_movie(path)


def test_rgb_image_is_not_a_movie(tmp_path):
    path = tmp_path / "rgb.tif"
    _imwrite(path, np.zeros((6, 7, 3), np.uint8), photometric="rgb")
    with pytest.raises(ValueError, match=r"rgb\.tif.*\(6, 7, 3\).*colour"):
        read_movie(path)


@pytest.mark.parametrize("shape", [(4, 2, 5, 6), (7,)])
def test_npy_of_wrong_ndim_is_not_a_movie(tmp_path, shape):
    path = tmp_path / "wrong.npy"
    np.save(path, np.zeros(shape))
    with pytest.raises(ValueError, match=re.escape(f"wrong.npy' holds an array of shape {shape}")):
        read_movie(path)


# --------------------------------------------------------------------------------------
# read_runs
# --------------------------------------------------------------------------------------


def test_glob_pattern_is_sorted_naturally(tmp_path):
    lengths = {"run1": 5, "run2": 6, "run10": 7}
    for stem, n in lengths.items():
        _imwrite(tmp_path / f"{stem}.tif", np.full((n, 4, 3), n, np.uint16))
    runs = read_runs(str(tmp_path / "run*.tif"))
    assert [run.shape[0] for run in runs] == [5, 6, 7]  # run1, run2, run10
    assert all(isinstance(run, np.memmap) for run in runs)


def test_list_of_paths_and_patterns(tmp_path):
    for i in range(3):
        _imwrite(tmp_path / f"a{i}.tif", _movie((4 + i, 5, 6), seed=i))
    np.save(tmp_path / "b.npy", _movie((9, 5, 6)))
    runs = read_runs([tmp_path / "b.npy", str(tmp_path / "a*.tif")])
    assert [run.shape for run in runs] == [(9, 5, 6), (4, 5, 6), (5, 5, 6), (6, 5, 6)]


def test_pattern_matching_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="matches"):
        read_runs(str(tmp_path / "nothing*.tif"))


def test_inconsistent_frame_shapes_across_runs_name_the_files(tmp_path):
    _imwrite(tmp_path / "first.tif", np.zeros((4, 5, 6), np.uint16))
    _imwrite(tmp_path / "second.tif", np.zeros((4, 6, 5), np.uint16))
    with pytest.raises(ValueError, match=r"first\.tif.*\(5, 6\).*second\.tif.*\(6, 5\)"):
        read_runs([tmp_path / "first.tif", tmp_path / "second.tif"])


def test_read_runs_empty_list():
    with pytest.raises(ValueError, match="empty"):
        read_runs([])


# --------------------------------------------------------------------------------------
# check_runs: accepted forms
# --------------------------------------------------------------------------------------


def test_4d_array_gives_views_of_each_run():
    X = _movie((3, 8, 5, 6), np.uint16)
    runs = check_runs(X)
    assert len(runs) == 3
    for r, run in enumerate(runs):
        assert run.shape == (8, 5, 6) and run.dtype == np.uint16
        assert np.shares_memory(run, X)
        np.testing.assert_array_equal(run, X[r])


def test_list_of_runs_of_different_lengths_is_passed_through():
    X = [_movie((n, 5, 6), np.uint16, seed=n) for n in (8, 11, 9)]
    runs = check_runs(X)
    assert [run.shape[0] for run in runs] == [8, 11, 9]
    assert all(run is x for run, x in zip(runs, X))


def test_tuple_and_nested_lists_are_accepted():
    X = _movie((2, 4, 3, 2), np.float32)
    runs = check_runs(tuple(x.tolist() for x in X))
    assert [run.shape for run in runs] == [(4, 3, 2)] * 2
    np.testing.assert_allclose(np.stack(runs), X)


@pytest.mark.parametrize("as_list", [False, True])
def test_2d_input_gives_single_pixel_runs(as_list):
    X = np.arange(12.0).reshape(3, 4)
    runs = check_runs(X.tolist() if as_list else X)
    assert [run.shape for run in runs] == [(4, 1, 1)] * 3
    for r, run in enumerate(runs):
        np.testing.assert_array_equal(run[:, 0, 0], X[r])
        if not as_list:
            assert np.shares_memory(run, X)


def test_ragged_1d_runs_are_single_pixel_runs():
    runs = check_runs([np.arange(5.0), np.arange(3.0)])
    assert [run.shape for run in runs] == [(5, 1, 1), (3, 1, 1)]


def test_paths_single_path_and_glob(tmp_path):
    for i, n in enumerate((6, 7)):
        _imwrite(tmp_path / f"run{i}.tif", _movie((n, 5, 4), seed=i))
    by_list = check_runs([tmp_path / "run0.tif", str(tmp_path / "run1.tif")])
    by_glob = check_runs(str(tmp_path / "run*.tif"))
    single = check_runs(tmp_path / "run1.tif")
    assert [r.shape[0] for r in by_list] == [r.shape[0] for r in by_glob] == [6, 7]
    assert len(single) == 1 and single[0].shape == (7, 5, 4)
    assert all(isinstance(run, np.memmap) for run in by_list + by_glob + single)


def test_mixed_list_of_paths_and_arrays(tmp_path):
    _imwrite(tmp_path / "run.tif", _movie((6, 5, 4)))
    array = _movie((8, 5, 4), seed=3)
    runs = check_runs([array, tmp_path / "run.tif"])
    assert runs[0] is array and runs[1].shape == (6, 5, 4)
    with pytest.raises(ValueError, match=r"run 1 of X \('.*run\.tif'\) has 6 frames"):
        check_runs([array, tmp_path / "run.tif"], min_frames=7)


def test_bool_runs_are_accepted_as_numeric():
    X = np.zeros((2, 5, 3, 3), dtype=bool)
    runs = check_runs(X)
    assert runs[0].dtype == bool


def test_numeric_object_array_is_converted():
    X = _movie((2, 5, 3, 3), np.float64).astype(object)
    runs = check_runs(X)
    assert runs[0].dtype == np.float64


def test_memmap_and_read_only_inputs_are_not_copied(tmp_path):
    movie = _movie((10, 6, 7), np.uint16)
    path = tmp_path / "movie.dat"
    mm = np.memmap(path, dtype=np.uint16, mode="w+", shape=movie.shape)
    mm[:] = movie
    mm.flush()
    ro = np.memmap(path, dtype=np.uint16, mode="r", shape=movie.shape)
    frozen = movie.copy()
    frozen.setflags(write=False)
    runs = check_runs([mm, ro, frozen])
    assert runs[0] is mm and runs[1] is ro and runs[2] is frozen
    assert isinstance(runs[1], np.memmap) and not runs[1].flags.writeable
    # a 4-D memmap is split into views of the file, not copies
    mm4 = np.memmap(tmp_path / "four.dat", dtype=np.float32, mode="w+", shape=(2, 5, 6, 7))
    mm4[:] = 1.0
    ro4 = np.memmap(tmp_path / "four.dat", dtype=np.float32, mode="r", shape=(2, 5, 6, 7))
    for run in check_runs(ro4):
        assert np.shares_memory(run, ro4) and not run.flags.writeable


def test_input_is_not_modified():
    X = [_movie((6, 4, 5), np.float32, seed=s) for s in range(2)]
    X[1][2, 1, 1] = np.float32(3e38)  # large but finite
    before = [x.copy() for x in X]
    runs = check_runs(X)
    for x, b, run in zip(X, before, runs):
        np.testing.assert_array_equal(x, b)
        assert x.flags.writeable and run.dtype == np.float32


# --------------------------------------------------------------------------------------
# check_runs: refused forms
# --------------------------------------------------------------------------------------


def test_bare_3d_array_is_refused_with_a_hint():
    with pytest.raises(ValueError, match=r"pass \[movie\]"):
        check_runs(np.zeros((10, 4, 4)))


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 4, 4), ()])
def test_wrong_ndim_is_refused(shape):
    with pytest.raises(ValueError, match=re.escape(f"shape {shape}")):
        check_runs(np.zeros(shape))


def test_run_that_is_not_3d_names_the_run():
    X = [np.zeros((5, 3, 3)), np.zeros((5, 3, 3)), np.zeros((3, 3))]
    with pytest.raises(ValueError, match=r"run 2 of X has shape \(3, 3\)"):
        check_runs(X)
    with pytest.raises(ValueError, match=r"run 0 of X has shape \(2, 5, 3, 3\)"):
        check_runs([np.zeros((2, 5, 3, 3))])


@pytest.mark.parametrize(
    "X",
    [
        np.zeros((2, 5, 3, 3), dtype=complex),
        np.full((2, 5), "a"),
        np.array([[{"a": 1}, 2.0]], dtype=object),
        [np.zeros((5, 3, 3)), np.zeros((5, 3, 3), dtype=complex)],
    ],
    ids=["complex", "strings", "object", "complex-run"],
)
def test_non_numeric_dtypes_raise_type_error(X):
    with pytest.raises(TypeError, match="dtype"):
        check_runs(X)


# scikit-learn's common estimator checks run on 2-D input (n_runs, n_frames); these
# tests pin the parts of the messages they match.


def test_object_array_error_matches_sklearn_check_dtype_object():
    X = np.zeros((3, 6), dtype=object)
    X[0, 0] = {"foo": "bar"}
    with pytest.raises(TypeError, match="argument must be .* string.* number"):
        check_runs(X)


def test_complex_error_matches_sklearn_check_complex_data():
    X = np.ones((10, 1)) + 1j
    with pytest.raises(ValueError, match="Complex data not supported"):
        check_runs(X)
    with pytest.raises(TypeError, match="Complex data not supported"):
        check_runs(X)


@pytest.mark.parametrize("X", [np.ones(3), [1.0, 2.0, 3.0]])
def test_1d_error_matches_sklearn_check_fit2d_predict1d(X):
    with pytest.raises(ValueError, match="Reshape your data"):
        check_runs(X)


@pytest.mark.parametrize("n_frames, min_frames", [(0, 1), (1, 3)])
def test_2d_short_runs_match_sklearn_feature_messages(n_frames, min_frames):
    X = np.empty((12, n_frames))
    sklearn_msg = (
        rf"{n_frames} feature\(s\) \(shape=\(\d*, {n_frames}\)\) "
        r"while a minimum of \d* is required."
    )
    with pytest.raises(ValueError, match=sklearn_msg):
        check_runs(X, min_frames=min_frames)
    with pytest.raises(ValueError, match=f"run 0 of X has {n_frames} frames"):
        check_runs(X, min_frames=min_frames)


def test_nested_list_run_with_odd_frame_shape_names_run_and_frame():
    # issue 10, D9: numpy's "inhomogeneous shape" error named neither run nor frame
    frame, odd = np.zeros((4, 5)).tolist(), np.zeros((4, 6)).tolist()
    X = [[frame, frame, frame], [frame, frame, odd, frame]]
    message = r"Run 1 of X .*frame 0 has shape \(4, 5\) but frame 2 has \(4, 6\)"
    with pytest.raises(ValueError, match=message):
        check_runs(X)
    with pytest.raises(ValueError, match=r"Run 1 of X_test .*frame 1 is itself irregular"):
        check_runs([np.zeros((3, 4, 5)), [frame, [[0, 1], [2]], frame]], name="X_test")
    with pytest.raises(ValueError, match=r"Run 1 of X .*frame 1 has \(4, 6\)"):
        check_runs([np.zeros((3, 4, 5)), [frame, odd]])  # a mixed list of arrays and lists


def test_sparse_matrix_raises_type_error():
    with pytest.raises(TypeError, match="sparse"):
        check_runs(scipy.sparse.csr_matrix(np.eye(3)))


@pytest.mark.parametrize("X", [[], (), np.zeros((0, 5, 3, 3)), np.zeros((0, 4))])
def test_empty_input_is_refused(X):
    with pytest.raises(ValueError, match="empty"):
        check_runs(X)


def test_run_with_zero_frames_names_the_run():
    with pytest.raises(ValueError, match="run 1 of X has zero frames"):
        check_runs([np.zeros((4, 3, 3)), np.zeros((0, 3, 3))])


def test_mismatched_frame_shapes_name_run_and_shapes():
    X = [np.zeros((4, 3, 3)), np.zeros((4, 3, 3)), np.zeros((4, 3, 5))]
    with pytest.raises(ValueError, match=r"\(3, 3\).*run 2 of X has \(3, 5\)"):
        check_runs(X)


def test_short_run_names_run_length_and_minimum():
    X = [np.zeros((6, 2, 2)), np.zeros((3, 2, 2))]
    with pytest.raises(ValueError, match="run 1 of X has 3 frames, fewer than the minimum of 5"):
        check_runs(X, min_frames=5)
    assert len(check_runs(X, min_frames=3)) == 2


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_run(value):
    X = [np.zeros((6, 2, 2), np.float32), np.zeros((6, 2, 2), np.float32)]
    X[1][4, 1, 0] = value
    with pytest.raises(ValueError, match="run 1 of X contains NaN or infinity .*frame 4"):
        check_runs(X)


def test_name_appears_in_messages():
    with pytest.raises(ValueError, match="run 0 of X_test"):
        check_runs([np.zeros((1, 2, 2))], min_frames=2, name="X_test")


def test_paths_refused_when_not_allowed(tmp_path):
    with pytest.raises(TypeError, match="paths"):
        check_runs(str(tmp_path / "x.tif"), allow_paths=False)
    with pytest.raises(TypeError, match="paths"):
        check_runs([np.zeros((3, 2, 2)), str(tmp_path / "x.tif")], allow_paths=False)


@pytest.mark.parametrize("min_frames", [0, -1, 2.5, True])
def test_invalid_min_frames(min_frames):
    with pytest.raises(ValueError, match="min_frames"):
        check_runs([np.zeros((3, 2, 2))], min_frames=min_frames)


def test_nan_in_memmap_is_found_in_chunks_without_copying_the_run(tmp_path, monkeypatch):
    n_frames, h, w = 200, 16, 12
    path = tmp_path / "movie.dat"
    writer = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_frames, h, w))
    writer[:] = 1.0
    writer[150, 3, 4] = np.nan
    writer.flush()
    del writer
    mm = np.memmap(path, dtype=np.float32, mode="r", shape=(n_frames, h, w))

    chunk_frames = 16
    monkeypatch.setattr(io, "_FINITE_CHECK_BYTES", chunk_frames * h * w * 4)
    seen = []
    original = io._block_nonfinite

    def spy(block):
        # a view of the files, not a float copy
        assert np.shares_memory(block, mm) or np.shares_memory(block, ok)
        seen.append(block.shape[0])
        return original(block)

    ok = np.memmap(tmp_path / "ok.dat", dtype=np.float32, mode="w+", shape=(4, h, w))
    monkeypatch.setattr(io, "_block_nonfinite", spy)
    with pytest.raises(ValueError, match="run 1 of X contains NaN or infinity .*frame 150"):
        check_runs([ok, mm])
    assert seen[0] == 4  # run 0 in one block
    assert max(seen) == chunk_frames
    assert sum(seen[1:]) == 160  # stopped at the chunk holding frame 150


def test_integer_runs_are_not_read_by_the_finiteness_check(monkeypatch):
    monkeypatch.setattr(io, "_block_nonfinite", lambda block: pytest.fail("read int run"))
    check_runs([np.zeros((5, 3, 3), np.uint16)])


# --------------------------------------------------------------------------------------
# iter_frame_batches
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, ">u2"])
def test_iter_frame_batches(dtype):
    run = _movie((7, 3, 4), np.uint16).astype(dtype)
    batches = list(iter_frame_batches(run, 3))
    assert [b.shape for b in batches] == [(3, 3, 4), (3, 3, 4), (1, 3, 4)]
    for b in batches:
        assert b.dtype == np.float32 and b.flags.c_contiguous and b.flags.writeable
        assert not np.shares_memory(b, run)
    np.testing.assert_array_equal(np.concatenate(batches), run.astype(np.float32))


@pytest.mark.parametrize("batch_size", [0, -2, 1.5])
def test_iter_frame_batches_invalid_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_frame_batches(np.zeros((3, 2, 2)), batch_size))


# --------------------------------------------------------------------------------------
# Real two-photon data (GPL, downloaded at test time, never stored in the repository)
# --------------------------------------------------------------------------------------

_SIMA = "sima==1.3.2"
_SIMA_FILES = {
    "example.tif": "sima/tests/data/example.tif",
    "example-tiffs/0.tif": "sima/tests/data/example-tiffs/0.tif",
    "example-tiffs/1.tif": "sima/tests/data/example-tiffs/1.tif",
    "example-tiffs/2.tif": "sima/tests/data/example-tiffs/2.tif",
    "example.h5": "sima/tests/data/example.h5",  # written by SIMA: (y, x, t), no labels
    "example-volume.h5": "sima/tests/data/example-volume.h5",  # (t, z, y, x, c), labelled
}


def _sima_cache_dir():
    root = os.environ.get("SKVARAE_TEST_DATA")
    if root is None:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "skvarae-test-data"
    return Path(root) / "sima-1.3.2"


def _download_sima_sdist(download_dir):
    """``pip download`` the sima sdist; returns its path or None."""
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "sima",
            "--disable-pip-version-check", "-q", _SIMA, "-d", str(download_dir)]
    # pip prepares the sdist's metadata; without build isolation that is fast, with it
    # pip first installs the build requirements (a fallback for other environments).
    for extra in (["--no-build-isolation"], []):
        try:
            subprocess.run(base + extra, check=True, capture_output=True, timeout=120)
        except (subprocess.SubprocessError, OSError):
            continue
        found = sorted(Path(download_dir).glob("sima-1.3.2.*"))
        if found:
            return found[0]
    return None


def _extract(sdist, target):
    wanted = {f"sima-1.3.2/{member}": name for name, member in _SIMA_FILES.items()}
    if sdist.suffix == ".zip":
        with zipfile.ZipFile(sdist) as archive:
            members = {m: archive.read(m) for m in wanted if m in archive.namelist()}
    else:
        with tarfile.open(sdist) as archive:
            members = {}
            for m in wanted:
                try:
                    members[m] = archive.extractfile(m).read()
                except (KeyError, AttributeError):
                    pass
    if len(members) != len(wanted):
        return False
    for member, data in members.items():  # fixed target names: no path traversal
        out = target / wanted[member]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return True


@pytest.fixture(scope="module")
def sima_data():
    if os.environ.get("SKVARAE_NO_NETWORK"):
        pytest.skip("SKVARAE_NO_NETWORK is set")
    target = _sima_cache_dir()
    if all((target / name).is_file() for name in _SIMA_FILES):
        return target
    try:
        download_dir = target / "download"
        download_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        pytest.skip(f"cannot create the test-data cache {target}: {exc}")
    sdist = _download_sima_sdist(download_dir)
    if sdist is None:
        pytest.skip(f"could not download the {_SIMA} sdist (no network?)")
    if not _extract(sdist, target):
        pytest.skip(f"{sdist.name} does not hold the expected test files")
    shutil.rmtree(download_dir, ignore_errors=True)
    return target


def test_real_two_photon_stack_from_sima(sima_data):
    path = sima_data / "example.tif"
    movie = read_movie(path)
    assert movie.shape == (20, 128, 256) and movie.dtype == np.uint16
    np.testing.assert_array_equal(movie, tifffile.imread(path))
    runs = read_runs(str(sima_data / "example*.tif"))
    assert len(runs) == 1 and runs[0].shape == (20, 128, 256)
    checked = check_runs([path, path], min_frames=3)
    assert [run.shape for run in checked] == [(20, 128, 256)] * 2


def test_real_single_frame_files_with_malformed_imagej_metadata(sima_data):
    folder = sima_data / "example-tiffs"
    frames = [tifffile.imread(folder / f"{i}.tif") for i in range(3)]
    run = read_movie(folder)
    assert run.shape == (3, *frames[0].shape) and run.dtype == np.uint16
    np.testing.assert_array_equal(run, np.stack(frames))
    runs = read_runs(folder)
    assert len(runs) == 1
    np.testing.assert_array_equal(runs[0], run)
    np.testing.assert_array_equal(read_movie(sorted(folder.glob("*.tif"))), run)


@pytest.mark.slow
def test_real_sima_hdf5_equals_its_tiff(sima_data):
    tiff = tifffile.imread(sima_data / "example.tif")
    # SIMA stores this movie (y, x, t) without DIMENSION_LABELS: the order is given
    movie = read_movie(sima_data / "example.h5", axes="yxt")
    assert movie.shape == (20, 128, 256) and movie.dtype == np.uint16
    np.testing.assert_array_equal(movie, tiff)
    assert read_movie(sima_data / "example.h5").shape == (128, 256, 20)  # default: t first


@pytest.mark.slow
def test_real_sima_volume_hdf5_is_refused_by_its_labels(sima_data):
    # SIMA's DIMENSION_LABELS t, z, y, x, c with 3 planes and 2 channels: not one movie
    with pytest.raises(ValueError, match=r"example-volume\.h5.*3 entries along axis 'z'"):
        read_movie(sima_data / "example-volume.h5")


@pytest.mark.slow
def test_real_movie_through_every_format(sima_data, tmp_path):
    h5py = pytest.importorskip("h5py")
    movie = tifffile.imread(sima_data / "example.tif")
    with h5py.File(tmp_path / "movie.h5", "w") as f:
        f.create_dataset("imaging", data=movie[:, None, :, :, None], chunks=(1, 1, 64, 64, 1),
                         compression="gzip")
        for axis, label in enumerate("tzyxc"):
            f["imaging"].dims[axis].label = label
    plane = tmp_path / "suite2p" / "plane0"
    plane.mkdir(parents=True)
    np.save(plane / "ops.npy", {"Ly": 128, "Lx": 256, "nframes": 20})
    movie.astype(np.int16).tofile(plane / "data.bin")
    paths = [tmp_path / "movie.h5", plane]
    if importlib.util.find_spec("pynwb") is not None:
        paths.append(_write_nwb_two_photon(tmp_path / "movie.nwb", movie))
    for run in check_runs(paths, min_frames=3):
        np.testing.assert_array_equal(np.asarray(run), movie)


def _write_nwb_two_photon(path, movie):
    """A minimal NWB file with ``movie`` (frames, height, width) as its TwoPhotonSeries."""
    import datetime

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import OpticalChannel, TwoPhotonSeries

    nwbfile = NWBFile(
        session_description="sima example", identifier="sima",
        session_start_time=datetime.datetime(2016, 9, 8, tzinfo=datetime.timezone.utc),
    )
    device = nwbfile.create_device(name="Microscope")
    plane = nwbfile.create_imaging_plane(
        name="ImagingPlane", device=device, imaging_rate=30.0, description="plane",
        optical_channel=OpticalChannel(name="Ch2", description="GCaMP", emission_lambda=510.0),
        excitation_lambda=920.0, indicator="GCaMP", location="unknown",
    )
    nwbfile.add_acquisition(TwoPhotonSeries(
        name="TwoPhotonSeries", data=movie.transpose(0, 2, 1), imaging_plane=plane,
        rate=30.0, unit="n.a.",
    ))  # NWB stores (frames, x, y)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path
