"""Tests of reading HDF5, NWB and suite2p output (skvarae.io.read_movie and friends).

Every file is written here by the format's own library (h5py, pynwb) or, for suite2p, as
suite2p writes it (``np.save`` of the ops dict, int16 frames in ``data.bin``). Frames are
non-square everywhere, so a swapped height and width cannot pass.
"""

import datetime
import doctest
import os
import pickle
import sys
import time

import h5py
import numpy as np
import pytest

from skvarae import SparseVARAutoencoder
from skvarae import _readers as skvarae_readers
from skvarae import io as skvarae_io
from skvarae.__main__ import main
from skvarae.io import LazyMovie, check_runs, iter_frame_batches, read_movie, read_runs
from skvarae.training import Windows

TINY = dict(
    latent_channels=1, max_latent_side=2, base_channels=2, max_epochs=2, batch_size=4,
    random_state=0,
)


def _movie(shape=(12, 10, 14), dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 4000), size=shape).astype(dtype)


def _write_h5(path, data, name="mov", labels=None, **kwargs):
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset(name, data=data, **kwargs)
        for axis, label in enumerate(labels or ()):
            dataset.dims[axis].label = label
    return path


# --------------------------------------------------------------------------------------
# HDF5
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_hdf5_contiguous_dataset_is_memory_mapped_read_only(tmp_path, dtype):
    movie = _movie((12, 10, 14), dtype)
    path = _write_h5(tmp_path / "movie.h5", movie)
    out = read_movie(path)
    assert isinstance(out, np.memmap) and not out.flags.writeable
    assert out.shape == (12, 10, 14) and out.dtype == dtype
    np.testing.assert_array_equal(out, movie)


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_hdf5_chunked_compressed_dataset_is_a_lazy_movie(tmp_path, dtype):
    movie = _movie((12, 10, 14), dtype)
    path = _write_h5(tmp_path / "movie.hdf5", movie, chunks=(4, 5, 7), compression="gzip")
    out = read_movie(path)
    assert isinstance(out, LazyMovie)
    assert out.shape == (12, 10, 14) and out.dtype == dtype and out.ndim == 3
    assert len(out) == 12 and out.size == movie.size and out.nbytes == movie.nbytes
    np.testing.assert_array_equal(np.asarray(out), movie)
    for key in [
        np.s_[3:7], np.s_[5], np.s_[-1], np.s_[::-1], np.s_[8:2:-2], np.s_[2:9:3, 1:8, ::2],
        np.s_[..., 3], np.s_[4, ..., 2:5], np.s_[:, 0], np.s_[10:20], np.s_[5:5],
        np.s_[np.int64(2)], np.s_[:, ::-3, -1],
    ]:
        np.testing.assert_array_equal(out[key], movie[key], err_msg=str(key))
    with pytest.raises(IndexError):
        out[12]
    with pytest.raises(TypeError, match="integers and slices"):
        out[[1, 2]]


@pytest.mark.parametrize(
    "labels, stored",
    [
        (("t", "y", "x"), lambda m: m),
        (("y", "x", "t"), lambda m: m.transpose(1, 2, 0)),
        (("x", "y", "t"), lambda m: m.transpose(2, 1, 0)),
        (("time", "height", "width"), lambda m: m),
        # SIMA's default layout: (t, z, y, x, c) with one plane and one channel
        (("t", "z", "y", "x", "c"), lambda m: m[:, None, :, :, None]),
    ],
    ids=["tyx", "yxt", "xyt", "words", "sima-tzyxc"],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["contiguous", "chunked"])
def test_hdf5_dimension_labels_give_the_axis_order(tmp_path, labels, stored, chunked):
    movie = _movie((9, 10, 14))
    kwargs = dict(chunks=True, compression="gzip") if chunked else {}
    path = _write_h5(tmp_path / "movie.h5", stored(movie), labels=labels, **kwargs)
    out = read_movie(path)
    assert isinstance(out, LazyMovie) == chunked
    assert out.shape == (9, 10, 14)
    np.testing.assert_array_equal(np.asarray(out), movie)
    np.testing.assert_array_equal(out[2:5, 3], movie[2:5, 3])


@pytest.mark.parametrize("chunked", [False, True], ids=["contiguous", "chunked"])
def test_hdf5_axes_argument_overrides_labels(tmp_path, chunked):
    movie = _movie((9, 10, 14))
    kwargs = dict(chunks=True) if chunked else {}
    path = _write_h5(tmp_path / "movie.h5", movie.transpose(1, 2, 0), **kwargs)
    assert read_movie(path).shape == (10, 14, 9)  # default: frames first
    np.testing.assert_array_equal(np.asarray(read_movie(path, axes="yxt")), movie)
    labelled = _write_h5(tmp_path / "labelled.h5", movie.transpose(1, 2, 0),
                         labels=("t", "y", "x"), **kwargs)
    assert read_movie(labelled).shape == (10, 14, 9)
    np.testing.assert_array_equal(np.asarray(read_movie(labelled, axes="YXT")), movie)


def test_hdf5_several_candidates_need_a_dataset_name(tmp_path):
    movie, other = _movie((8, 10, 14)), _movie((5, 3, 4), seed=1)
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["scalars/fr"] = 30.0
        f["mov"] = movie
        f["group/other"] = other
    with pytest.raises(ValueError, match=r"two\.h5.*'group/other'.*'mov'.*dataset="):
        read_movie(path)
    np.testing.assert_array_equal(read_movie(path, dataset="mov"), movie)
    np.testing.assert_array_equal(read_movie(path, dataset="/group/other"), other)
    runs = read_runs([path, path], dataset="mov")
    assert [run.shape for run in runs] == [(8, 10, 14)] * 2


def test_hdf5_one_candidate_among_other_datasets(tmp_path):
    movie = _movie((8, 10, 14))
    path = tmp_path / "caiman.hdf5"
    with h5py.File(path, "w") as f:  # as CaImAn saves a movie
        f["mov"] = movie
        f["fr"] = 30.0
        f["meta_data"] = np.zeros(3)
    np.testing.assert_array_equal(read_movie(path), movie)


def test_hdf5_missing_dataset_name_names_file_and_lists_datasets(tmp_path):
    path = _write_h5(tmp_path / "movie.h5", _movie((8, 10, 14)))
    message = r"movie\.h5.*no dataset named 'imaging'.*'mov' \(8, 10, 14\)"
    with pytest.raises(ValueError, match=message):
        read_movie(path, dataset="imaging")


@pytest.mark.parametrize("shape", [(10, 14), (4, 8, 10, 14), (30,)])
def test_hdf5_dataset_that_is_not_3d_is_refused(tmp_path, shape):
    path = _write_h5(tmp_path / "bad.h5", np.zeros(shape, np.uint16))
    with pytest.raises(ValueError, match=r"bad\.h5.*3"):
        read_movie(path)
    if len(shape) != 3:
        with pytest.raises(ValueError, match=r"bad\.h5.*3-D"):
            read_movie(path, dataset="mov")


def test_hdf5_labelled_dataset_with_two_planes_is_refused(tmp_path):
    data = np.zeros((5, 2, 10, 14), np.uint16)
    path = _write_h5(tmp_path / "volume.h5", data, labels=("t", "z", "y", "x"))
    with pytest.raises(ValueError, match=r"volume\.h5.*2 entries along axis 'z'"):
        read_movie(path)


@pytest.mark.parametrize("axes", ["tyy", "tyxz", "tab", "ty", 5])
def test_hdf5_invalid_axes_names_the_argument(tmp_path, axes):
    path = _write_h5(tmp_path / "movie.h5", _movie((5, 10, 14)))
    with pytest.raises((ValueError, TypeError), match="axes"):
        read_movie(path, axes=axes)


def test_hdf5_non_numeric_dataset_is_refused(tmp_path):
    path = tmp_path / "strings.h5"
    with h5py.File(path, "w") as f:
        f["mov"] = np.zeros((4, 3, 2), dtype="S3")
    with pytest.raises(ValueError, match=r"strings\.h5.*dtype"):
        read_movie(path)


@pytest.mark.parametrize("chunked", [False, True], ids=["contiguous", "chunked"])
def test_truncated_hdf5_file_raises_naming_the_file(tmp_path, chunked):
    movie = _movie((40, 10, 14))
    kwargs = dict(chunks=(4, 10, 14), compression="gzip") if chunked else {}
    path = _write_h5(tmp_path / "whole.h5", movie, **kwargs)
    data = path.read_bytes()
    for fraction in (0.1, 0.5, 0.9, 0.99):
        cut = tmp_path / "cut.h5"
        cut.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(ValueError, match=r"cut\.h5"):
            read_movie(cut)
        with pytest.raises(ValueError, match=r"cut\.h5"):
            check_runs([cut])


def test_corrupt_hdf5_file_raises_naming_the_file(tmp_path):
    path = tmp_path / "garbage.h5"
    path.write_bytes(b"not an HDF5 file" * 100)
    with pytest.raises(ValueError, match=r"garbage\.h5.*HDF5"):
        read_movie(path)


def test_hdf5_file_is_recognised_by_its_signature(tmp_path):
    movie = _movie((6, 10, 14))
    path = _write_h5(tmp_path / "acquisition.dat", movie)
    np.testing.assert_array_equal(read_movie(path), movie)


def test_big_endian_hdf5_dataset_keeps_byte_order(tmp_path):
    movie = _movie((6, 10, 14))
    path = _write_h5(tmp_path / "big.h5", movie.astype(">u2"))
    out = read_movie(path)
    assert out.dtype == np.dtype(">u2")
    np.testing.assert_array_equal(out, movie)


def test_hdf5_mmap_false_reads_into_memory(tmp_path):
    movie = _movie((6, 10, 14))
    for name, kwargs in [("plain.h5", {}), ("chunked.h5", dict(chunks=True))]:
        out = read_movie(_write_h5(tmp_path / name, movie.transpose(1, 2, 0), **kwargs),
                         mmap=False, axes="yxt")
        assert type(out) is np.ndarray and out.flags.c_contiguous and out.flags.writeable
        np.testing.assert_array_equal(out, movie)


def test_options_for_another_format_are_refused(tmp_path):
    tif = tmp_path / "movie.npy"
    np.save(tif, _movie((5, 10, 14)))
    with pytest.raises(ValueError, match=r"dataset='mov' applies to HDF5 files only.*movie\.npy"):
        read_movie(tif, dataset="mov")
    h5 = _write_h5(tmp_path / "movie.h5", _movie((5, 10, 14)))
    with pytest.raises(ValueError, match=r"series='x' applies to NWB files only"):
        read_movie(h5, series="x")
    with pytest.raises(ValueError, match="list of files"):
        read_movie([h5, h5], dataset="mov")


# --------------------------------------------------------------------------------------
# LazyMovie
# --------------------------------------------------------------------------------------


@pytest.fixture
def lazy(tmp_path):
    movie = _movie((20, 10, 14), np.int16)
    path = _write_h5(tmp_path / "lazy.h5", movie, chunks=(3, 10, 14), compression="gzip")
    out = read_movie(path)
    yield out, movie
    out.close()


def test_lazy_movie_streams_as_the_estimator_slices_runs(lazy):
    out, movie = lazy
    (run,) = check_runs([out], min_frames=3)
    assert run is out  # passed through, not read
    batches = list(iter_frame_batches(run, 6))
    assert [len(b) for b in batches] == [6, 6, 6, 2]
    np.testing.assert_array_equal(np.concatenate(batches), movie.astype(np.float32))
    windows = Windows([run], 8, np.zeros((10, 14), np.float32), 2.0)
    for i, (_, start, length) in enumerate(windows.spans):
        expected = movie[start : start + length].astype(np.float32) / 2
        np.testing.assert_array_equal(windows[i].numpy(), expected)


def test_lazy_movie_pickles_by_reopening_its_file(lazy):
    out, movie = lazy
    again = pickle.loads(pickle.dumps(out))
    assert isinstance(again, LazyMovie) and again is not out
    np.testing.assert_array_equal(np.asarray(again), movie)
    again.close()


def test_lazy_movie_close_and_context_manager(lazy):
    out, movie = lazy
    with out as opened:
        np.testing.assert_array_equal(opened[0], movie[0])
    assert out.closed
    with pytest.raises(ValueError, match=r"lazy\.h5.*closed"):
        out[0]


def test_lazy_float_movie_with_nan_is_found_by_check_runs(tmp_path):
    movie = np.zeros((30, 10, 14), np.float32)
    movie[21, 2, 3] = np.nan
    path = _write_h5(tmp_path / "nan.h5", movie, chunks=(5, 10, 14))
    with pytest.raises(ValueError, match=r"run 0 of X \(.*nan\.h5'\) contains NaN.*frame 21"):
        check_runs(str(path))


def test_opening_a_huge_hdf5_dataset_reads_nothing(tmp_path):
    # 0.7 TiB of uint16 frames declared, none written: only the header exists on disk.
    path = tmp_path / "huge.h5"
    shape = (1_000_000, 512, 768)
    with h5py.File(path, "w") as f:
        f.create_dataset("mov", shape=shape, dtype=np.uint16, chunks=(1, 512, 768))
    assert path.stat().st_size < 100_000
    start = time.perf_counter()
    out = read_movie(path)
    (run,) = check_runs(str(path), min_frames=3)  # integer runs: not read by the checks
    elapsed = time.perf_counter() - start
    assert out.shape == run.shape == shape and out.nbytes > 2**39
    assert elapsed < 5, f"opening took {elapsed:.1f} s"
    assert out[123_456].shape == (512, 768) and not out[123_456].any()  # fill value
    out.close()
    run.close()


# --------------------------------------------------------------------------------------
# NWB
# --------------------------------------------------------------------------------------


def _nwbfile():
    pynwb = pytest.importorskip("pynwb")
    return pynwb.NWBFile(
        session_description="skvarae test",
        identifier="skvarae-test",
        session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    )


def _imaging_plane(nwbfile):
    from pynwb.ophys import OpticalChannel

    device = nwbfile.create_device(name="Microscope")
    channel = OpticalChannel(name="Green", description="GCaMP", emission_lambda=510.0)
    return nwbfile.create_imaging_plane(
        name="ImagingPlane", optical_channel=channel, imaging_rate=30.0, description="V1",
        device=device, excitation_lambda=920.0, indicator="GCaMP6f", location="V1",
    )


def _write_nwb(path, movies, kind="TwoPhotonSeries", compress=False):
    """Write ``movies`` ({name: (frames, height, width)}) as image series, stored (frames, x, y)."""
    from pynwb import NWBHDF5IO, image, ophys
    from hdmf.backends.hdf5.h5_utils import H5DataIO

    nwbfile = _nwbfile()
    plane = _imaging_plane(nwbfile) if kind != "ImageSeries" else None
    for name, movie in movies.items():
        data = np.ascontiguousarray(movie.transpose(0, 2, 1))  # NWB: (frames, width, height)
        if compress:
            data = H5DataIO(data, compression="gzip", chunks=(2, *data.shape[1:]))
        if kind == "ImageSeries":
            series = image.ImageSeries(name=name, data=data, rate=30.0, unit="n.a.")
        else:
            series = getattr(ophys, kind)(
                name=name, data=data, imaging_plane=plane, rate=30.0, unit="n.a."
            )
        nwbfile.add_acquisition(series)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


@pytest.mark.parametrize("kind", ["TwoPhotonSeries", "OnePhotonSeries", "ImageSeries"])
@pytest.mark.parametrize("compress", [False, True], ids=["contiguous", "compressed"])
def test_nwb_series_read_as_frames_height_width(tmp_path, kind, compress):
    pytest.importorskip("pynwb")
    movie = _movie((12, 10, 14), np.uint16)  # height 10, width 14
    path = _write_nwb(tmp_path / "session.nwb", {kind: movie}, kind=kind, compress=compress)
    out = read_movie(path)
    assert isinstance(out, LazyMovie) == compress
    assert out.shape == (12, 10, 14) and out.dtype == np.uint16
    np.testing.assert_array_equal(np.asarray(out), movie)
    np.testing.assert_array_equal(out[3:6, 2], movie[3:6, 2])  # row 2: height index
    np.testing.assert_array_equal(out[:, :, 13], movie[:, :, 13])  # last column
    if compress:
        out.close()


def test_opening_a_huge_nwb_series_reads_nothing(tmp_path):
    pytest.importorskip("pynwb")
    path = _write_nwb(tmp_path / "huge.nwb", {"TwoPhotonSeries": _movie((4, 10, 14))})
    shape = (1_000_000, 768, 512)  # NWB (frames, x, y): 0.7 TiB declared, nothing written
    with h5py.File(path, "r+") as f:
        del f["acquisition/TwoPhotonSeries/data"]
        f["acquisition/TwoPhotonSeries"].create_dataset(
            "data", shape=shape, dtype=np.uint16, chunks=(1, 768, 512), compression="gzip"
        )
    assert path.stat().st_size < 1_000_000
    start = time.perf_counter()
    out = read_movie(path)
    elapsed = time.perf_counter() - start
    assert isinstance(out, LazyMovie) and out.shape == (1_000_000, 512, 768)
    assert elapsed < 10, f"opening took {elapsed:.1f} s"
    assert out[999_999, :3, :4].shape == (3, 4)
    out.close()


def test_nwb_several_series_need_a_name(tmp_path):
    pytest.importorskip("pynwb")
    movies = {"plane0": _movie((8, 10, 14)), "plane1": _movie((9, 10, 14), seed=1)}
    path = _write_nwb(tmp_path / "two.nwb", movies)
    with pytest.raises(ValueError, match=r"two\.nwb.*'plane0'.*'plane1'.*series="):
        read_movie(path)
    np.testing.assert_array_equal(read_movie(path, series="plane1"), movies["plane1"])
    with pytest.raises(ValueError, match=r"two\.nwb.*no image series named 'plane2'.*'plane0'"):
        read_movie(path, series="plane2")


def test_nwb_without_image_series_is_refused(tmp_path):
    pynwb = pytest.importorskip("pynwb")
    nwbfile = _nwbfile()
    nwbfile.add_acquisition(
        pynwb.TimeSeries(name="running", data=np.zeros(10), rate=10.0, unit="cm/s")
    )
    path = tmp_path / "behaviour.nwb"
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    with pytest.raises(ValueError, match=r"behaviour\.nwb.*no ImageSeries.*'running'"):
        read_movie(path)


def test_nwb_volumetric_series_is_refused(tmp_path):
    pytest.importorskip("pynwb")
    from pynwb import NWBHDF5IO
    from pynwb.ophys import TwoPhotonSeries

    nwbfile = _nwbfile()
    plane = _imaging_plane(nwbfile)
    nwbfile.add_acquisition(TwoPhotonSeries(
        name="volume", data=np.zeros((4, 14, 10, 3), np.uint16), imaging_plane=plane,
        rate=30.0, unit="n.a.",
    ))
    path = tmp_path / "volume.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    with pytest.raises(ValueError, match=r"volume\.nwb.*\(4, 14, 10, 3\).*3-D"):
        read_movie(path)


def test_nwb_series_in_external_files_is_refused(tmp_path):
    pytest.importorskip("pynwb")
    from pynwb import NWBHDF5IO
    from pynwb.image import ImageSeries

    nwbfile = _nwbfile()
    nwbfile.add_acquisition(ImageSeries(
        name="external", external_file=["movie.tif"], starting_frame=[0], format="external",
        timestamps=np.arange(10) / 30.0, unit="n.a.",
    ))
    path = tmp_path / "external.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    with pytest.raises(ValueError, match=r"external\.nwb.*external files.*movie\.tif"):
        read_movie(path)


def test_truncated_and_corrupt_nwb_files_raise_naming_the_file(tmp_path):
    pytest.importorskip("pynwb")
    path = _write_nwb(tmp_path / "whole.nwb", {"TwoPhotonSeries": _movie((40, 10, 14))})
    data = path.read_bytes()
    for fraction in (0.05, 0.5, 0.95):
        cut = tmp_path / "cut.nwb"
        cut.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(ValueError, match=r"cut\.nwb"):
            read_movie(cut)
    garbage = tmp_path / "garbage.nwb"
    garbage.write_bytes(b"\x00" * 4096)
    with pytest.raises(ValueError, match=r"garbage\.nwb.*not an HDF5 file"):
        read_movie(garbage)


def test_nwb_without_pynwb_says_which_extra_to_install(tmp_path, monkeypatch):
    path = tmp_path / "session.nwb"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb now raises ImportError
    with pytest.raises(ImportError, match=r"pynwb.*pip install 'skvarae\[nwb\]'"):
        read_movie(path)


def test_importing_skvarae_does_not_import_pynwb_or_h5py():
    code = (
        "import sys, skvarae, skvarae.io; "
        "print(sorted(m for m in ('pynwb', 'h5py', 'hdmf') if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------
# suite2p
# --------------------------------------------------------------------------------------


def _write_suite2p(root, movie, *, ops=None, plane="plane0"):
    """Write suite2p's registered output: ``suite2p/planeN/{ops.npy,data.bin}``."""
    folder = root / "suite2p" / plane
    folder.mkdir(parents=True)
    n_frames, height, width = movie.shape
    settings = {
        "Ly": height, "Lx": width, "nframes": n_frames, "fs": 30.0, "nplanes": 1,
        "reg_file": "/elsewhere/suite2p/plane0/data.bin", "filelist": ["a.tif", "b.tif"],
        "meanImg": movie.mean(axis=0).astype(np.float32), "xoff": np.zeros(n_frames, np.int32),
        "yrange": [0, height], "do_registration": True, "tau": np.float64(1.0),
        "batch_size": np.int64(500), "tags": {"x", "y"},
    }
    settings.update(ops or {})
    np.save(folder / "ops.npy", settings, allow_pickle=True)
    movie.astype(np.int16).tofile(folder / "data.bin")
    return folder


def test_suite2p_plane_folder_bin_and_root_are_read_as_int16_memmap(tmp_path):
    movie = _movie((12, 10, 14), np.int16)
    folder = _write_suite2p(tmp_path, movie)
    for path in (folder, folder / "data.bin", tmp_path / "suite2p"):
        out = read_movie(path)
        assert isinstance(out, np.memmap) and not out.flags.writeable, path
        assert out.shape == (12, 10, 14) and out.dtype == np.int16
        np.testing.assert_array_equal(out, movie)
    assert type(read_movie(folder, mmap=False)) is np.ndarray
    np.testing.assert_array_equal(read_runs([folder, folder])[1], movie)


def test_suite2p_raw_binary_beside_ops_is_read(tmp_path):
    movie = _movie((12, 10, 14), np.int16)
    folder = _write_suite2p(tmp_path, movie)
    raw = movie[::-1].copy()
    raw.tofile(folder / "data_raw.bin")
    np.testing.assert_array_equal(read_movie(folder / "data_raw.bin"), raw)


def test_suite2p_ops_without_nframes_infers_it_from_the_file_size(tmp_path):
    movie = _movie((7, 10, 14), np.int16)
    folder = _write_suite2p(tmp_path, movie)
    ops = np.load(folder / "ops.npy", allow_pickle=True).item()
    del ops["nframes"]
    np.save(folder / "ops.npy", ops, allow_pickle=True)
    np.testing.assert_array_equal(read_movie(folder), movie)


def test_suite2p_with_several_planes_asks_for_one(tmp_path):
    _write_suite2p(tmp_path, _movie((5, 10, 14), np.int16), plane="plane0")
    _write_suite2p(tmp_path, _movie((5, 10, 14), np.int16), plane="plane1")
    with pytest.raises(ValueError, match=r"2 planes \(plane0, plane1\).*plane0"):
        read_movie(tmp_path / "suite2p")
    assert read_movie(tmp_path / "suite2p" / "plane1").shape == (5, 10, 14)


def test_suite2p_folder_without_ops_is_a_file_not_found_error(tmp_path):
    folder = _write_suite2p(tmp_path, _movie((5, 10, 14), np.int16))
    (folder / "ops.npy").unlink()
    for path in (folder, folder / "data.bin"):
        with pytest.raises(FileNotFoundError, match=r"no ops\.npy.*plane0.ops\.npy"):
            read_movie(path)


def test_suite2p_folder_without_binary_is_a_file_not_found_error(tmp_path):
    folder = _write_suite2p(tmp_path, _movie((5, 10, 14), np.int16))
    (folder / "data.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"data\.bin"):
        read_movie(folder)


@pytest.mark.parametrize(
    "ops, cut",
    [({"nframes": 13}, 0), ({}, 100), ({"Ly": 11}, 0), ({"nframes": None}, 2)],
    ids=["more-frames-in-ops", "truncated-bin", "wrong-Ly", "no-nframes-odd-size"],
)
def test_suite2p_binary_size_must_match_ops(tmp_path, ops, cut):
    folder = _write_suite2p(tmp_path, _movie((12, 10, 14), np.int16), ops=ops)
    if ops.get("nframes", 0) is None:
        settings = np.load(folder / "ops.npy", allow_pickle=True).item()
        del settings["nframes"]
        np.save(folder / "ops.npy", settings, allow_pickle=True)
    if cut:
        data = (folder / "data.bin").read_bytes()
        (folder / "data.bin").write_bytes(data[:-cut])
    with pytest.raises(ValueError, match=r"data\.bin' holds \d+ bytes but .*ops\.npy' implies"):
        read_movie(folder)


@pytest.mark.parametrize("ops", [{"Ly": 0}, {"Lx": "14"}, {"Lx": None}])
def test_suite2p_ops_without_a_frame_shape_is_refused(tmp_path, ops):
    folder = _write_suite2p(tmp_path, _movie((5, 10, 14), np.int16), ops=ops)
    with pytest.raises(ValueError, match=r"ops\.npy.*'L[xy]'.*positive integer"):
        read_movie(folder)


def test_suite2p_ops_that_is_not_a_dict_is_refused(tmp_path):
    folder = _write_suite2p(tmp_path, _movie((5, 10, 14), np.int16))
    np.save(folder / "ops.npy", np.arange(3))
    with pytest.raises(ValueError, match=r"ops\.npy.*not a pickled dict"):
        read_movie(folder)
    (folder / "ops.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"ops\.npy"):
        read_movie(folder)


def test_suite2p_ops_loads_what_numpy_loads(tmp_path):
    from skvarae._readers import load_ops

    folder = _write_suite2p(tmp_path, _movie((5, 10, 14), np.int16))
    ours = load_ops(str(folder / "ops.npy"))
    theirs = np.load(folder / "ops.npy", allow_pickle=True).item()
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        np.testing.assert_equal(ours[key], value, err_msg=key)
        assert type(ours[key]) is type(value)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_suite2p_ops_pickled_with_any_protocol_loads(tmp_path, protocol):
    movie = _movie((6, 10, 14), np.int16)
    folder = _write_suite2p(tmp_path, movie)
    ops = np.load(folder / "ops.npy", allow_pickle=True).item()
    ops["ragged"] = np.array([[1], [1, 2]], dtype=object)
    ops["nested"] = {"values": [np.zeros(2, np.int16), 1 + 2j, None, b"raw"], "t": (1, 2.5)}
    _write_pickle_npy(folder / "ops.npy", ops, protocol=protocol)
    np.testing.assert_array_equal(read_movie(folder), movie)


class _System:
    """A pickle payload running a shell command when unpickled."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Open:
    """A pickle payload creating a file when unpickled, without a shell."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _write_pickle_npy(path, payload, protocol=3):
    """An object .npy file (as np.save writes a dict) whose pickle is ``payload``."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "|O", "fortran_order": False, "shape": ()}
        )
        pickle.dump(payload, handle, protocol=protocol)


@pytest.mark.parametrize("kind", ["os.system", "builtins.open"])
def test_malicious_ops_npy_is_not_executed(tmp_path, kind):
    folder = _write_suite2p(tmp_path, _movie((5, 10, 14), np.int16))
    marker, proof = tmp_path / "pwned", tmp_path / "payload-works"
    if kind == "os.system":
        if os.name != "posix":
            pytest.skip("the shell payload is POSIX")
        make = lambda target: {"Ly": 10, "Lx": 14, "x": _System(f"touch '{target}'")}  # noqa: E731
    else:
        make = lambda target: {"Ly": 10, "Lx": 14, "x": _Open(str(target))}  # noqa: E731

    # the payload is live: numpy's own pickle loading runs it
    _write_pickle_npy(tmp_path / "proof.npy", make(proof))
    result = np.load(tmp_path / "proof.npy", allow_pickle=True)["x"]
    if hasattr(result, "close"):
        result.close()  # the file object the payload opened
    assert proof.exists()

    _write_pickle_npy(folder / "ops.npy", make(marker))
    with pytest.raises(ValueError, match=r"ops\.npy.*refused to load the global"):
        read_movie(folder)
    with pytest.raises(ValueError, match=r"ops\.npy"):
        check_runs([folder])
    assert not marker.exists()


def test_opening_a_huge_sparse_suite2p_binary_reads_nothing(tmp_path):
    n_frames, height, width = 131_072, 512, 512  # 64 GiB of int16 frames, a sparse file
    folder = tmp_path / "plane0"
    folder.mkdir()
    np.save(folder / "ops.npy", {"Ly": height, "Lx": width, "nframes": n_frames})
    with open(folder / "data.bin", "wb") as handle:
        handle.truncate(n_frames * height * width * 2)
    start = time.perf_counter()
    out = read_movie(folder)
    (run,) = check_runs([folder], min_frames=3)
    elapsed = time.perf_counter() - start
    assert out.shape == run.shape == (n_frames, height, width)
    assert elapsed < 5, f"opening took {elapsed:.1f} s"
    assert not out[100_000].any()


# --------------------------------------------------------------------------------------
# Fitting on files, and the command line
# --------------------------------------------------------------------------------------


def _ar_movies(n_runs=2, n_frames=24, shape=(6, 5), seed=0):
    rng = np.random.default_rng(seed)
    movies = []
    for _ in range(n_runs):
        z = np.zeros(n_frames)
        for t in range(1, n_frames):
            z[t] = 0.8 * z[t - 1] + rng.normal()
        pattern = rng.normal(size=shape)
        movies.append((1000 + 100 * z[:, None, None] * pattern).astype(np.uint16))
    return movies


def test_fit_on_hdf5_nwb_and_suite2p_files_equals_fit_on_arrays(tmp_path):
    pytest.importorskip("pynwb")
    a, b = _ar_movies()
    expected = SparseVARAutoencoder(**TINY).fit([a, b])
    h5 = _write_h5(tmp_path / "a.h5", a, chunks=(5, 6, 5), compression="gzip")  # lazy
    nwb = _write_nwb(tmp_path / "b.nwb", {"TwoPhotonSeries": b})  # memory-mapped
    nwb_lazy = _write_nwb(tmp_path / "b_lazy.nwb", {"TwoPhotonSeries": b}, compress=True)
    s2p = _write_suite2p(tmp_path, b.astype(np.int16))
    for files in ([h5, nwb], [str(h5), str(nwb_lazy)], [h5, s2p]):
        model = SparseVARAutoencoder(**TINY).fit(files)
        np.testing.assert_array_equal(model.mean_frame_, expected.mean_frame_)
        np.testing.assert_array_equal(model.coef_, expected.coef_)
        losses = [{k: v for k, v in epoch.items() if k != "duration"} for epoch in model.history_]
        assert losses == [
            {k: v for k, v in epoch.items() if k != "duration"} for epoch in expected.history_
        ]
        np.testing.assert_array_equal(model.predict(files)[1], expected.predict([a, b])[1])
        assert model.score(files) == expected.score([a, b])
    # per-run work in joblib threads reads the lazy files concurrently
    threaded = SparseVARAutoencoder(**TINY, n_jobs=2).fit([h5, nwb_lazy])
    np.testing.assert_array_equal(threaded.coef_, expected.coef_)
    np.testing.assert_array_equal(threaded.contribution_map([h5, nwb_lazy]),
                                  expected.contribution_map([a, b]))


def test_cli_fits_on_nwb_files(tmp_path, capsys):
    pytest.importorskip("pynwb")
    a, b = _ar_movies(n_frames=30)
    paths = [
        str(_write_nwb(tmp_path / f"{name}.nwb", {"TwoPhotonSeries": movie}))
        for name, movie in (("a", a), ("b", b))
    ]
    out = tmp_path / "m.pt"
    assert main(["fit", *paths, "--out", str(out), "--epochs", "2", "--batch-size", "2"]) == 0
    assert "Saved to" in capsys.readouterr().out
    model = SparseVARAutoencoder.load(out)
    assert model.frame_shape_ == (6, 5) and model.coef_.shape[0] == 2


def test_cli_reports_a_bad_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"nonsense")
    assert main(["fit", str(bad), "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert "bad.h5" in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_map_with_a_folder_as_model_says_it_is_not_a_model_file(tmp_path, capsys):
    # issue 10, D9: "skvarae map <folder> run.tif" said the model file "does not exist"
    run = tmp_path / "run.npy"
    np.save(run, _movie((10, 6, 5)))
    folder = tmp_path / "models"
    folder.mkdir()
    for command in (["map", str(folder), str(run)],
                    ["compare", str(folder), "--a", str(run), "--b", str(run)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "is a folder, not a model file" in err and "does not exist" not in err
        assert err.count("\n") == 1


@pytest.mark.parametrize("module", [skvarae_io, skvarae_readers], ids=["io", "_readers"])
def test_io_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
