"""Reading calcium-imaging movies into runs, and validating sequences of runs.

A *run* is one movie, an array of shape (n_frames, height, width). This module reads
runs from disk (multi-page TIFF, ImageJ hyperstack, OME-TIFF, folders of single-frame
TIFFs, ``.npy`` files, HDF5 and NWB files, suite2p's registered binary) and implements the
data contract of the estimator (:func:`check_runs`).

Memory is the main concern: two-photon movies are often larger than RAM. Files are
memory-mapped whenever their layout allows it, other HDF5 / NWB datasets are read lazily
(:class:`LazyMovie`), :func:`check_runs` never copies or converts a run (integer movies
stay integer, memory maps stay memory maps) and checks finiteness in chunks of frames, and
:func:`iter_frame_batches` streams float32 batches.
"""

import contextlib
import glob
import logging
import os
import re
import threading

import numpy as np
import scipy.sparse
import tifffile

from ._readers import (
    HDF5_SIGNATURE,
    LazyMovie,
    read_hdf5,
    read_nwb,
    read_suite2p,
    suite2p_folder,
)
from ._validation import check_integer

__all__ = ["read_movie", "read_runs", "check_runs", "iter_frame_batches", "LazyMovie"]

#: Suffixes (lower case) of HDF5 files; NWB files (``.nwb``) are HDF5 files read with pynwb.
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")

#: What tifffile logs (it does not raise) when a file ends before its pages or image data.
_TIFF_DAMAGE = re.compile(
    r"invalid page offset|corrupted tag list|invalid offset to page|failed to reshape|"
    r"invalid value offset|circular reference|truncated|failed to read"
)

#: Suffixes (lower case) of the files taken from a folder of single-frame TIFFs.
_TIFF_SUFFIXES = (".tif", ".tiff")

#: Bytes of a run examined at once by the finiteness check of :func:`check_runs`.
_FINITE_CHECK_BYTES = 64 * 2**20

_GLOB_MAGIC = re.compile(r"[*?[]")


# --------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------


def _is_pathlike(obj):
    return isinstance(obj, (str, os.PathLike))


def _natural_key(text):
    """Sort key ordering ``frame2`` before ``frame10`` (case-insensitive)."""
    parts = re.split(r"(\d+)", str(text))
    key = [int(part) if i % 2 else part.lower() for i, part in enumerate(parts)]
    return key, str(text)


def _expand(path):
    """Expand one path or glob pattern into a naturally sorted list of paths."""
    text = os.path.expanduser(os.fspath(path))
    if os.path.exists(text) or not _GLOB_MAGIC.search(text):
        return [text]
    matches = sorted(glob.glob(text), key=_natural_key)
    if not matches:
        raise FileNotFoundError(f"No file or folder matches the pattern {text!r}.")
    return matches


def _tiffs_in_folder(folder):
    """The TIFF files of a folder, naturally sorted (hidden files ignored)."""
    files = [
        entry.path
        for entry in os.scandir(folder)
        if entry.is_file()
        and not entry.name.startswith(".")
        and entry.name.lower().endswith(_TIFF_SUFFIXES)
    ]
    if not files:
        raise ValueError(
            f"Folder {os.fspath(folder)!r} holds no TIFF files (*.tif, *.tiff); a folder "
            "is read as one run of single-frame TIFF files."
        )
    return sorted(files, key=_natural_key)


# --------------------------------------------------------------------------------------
# Single files
# --------------------------------------------------------------------------------------


def _movie_axes(path, shape, axes):
    """Plan how to turn a TIFF series of ``shape`` / ``axes`` into (n_frames, H, W).

    Returns ``(squeezed_shape, order)``: reshape the series to ``squeezed_shape`` (its
    singleton non-spatial axes removed, a view), then transpose by ``order`` (``None``
    when the axes are already in order); a single frame then gets a leading axis of
    length 1 (see :func:`_arrange`).
    """
    shape = tuple(int(n) for n in shape)
    axes = str(axes) if axes is not None and len(axes) == len(shape) else ""
    if len(shape) < 2:
        raise ValueError(
            f"{path!r} holds an image of shape {shape}, not a movie: expected "
            "(n_frames, height, width) or a single (height, width) frame."
        )
    if "Y" in axes and "X" in axes:
        y_pos, x_pos = axes.index("Y"), axes.index("X")
    else:
        y_pos, x_pos = len(shape) - 2, len(shape) - 1
    keep = [i for i, n in enumerate(shape) if n != 1 or i in (y_pos, x_pos)]
    others = [i for i in keep if i not in (y_pos, x_pos)]
    described = f"shape {shape}" + (f" with axes {axes!r}" if axes else "")
    if len(others) > 1:
        raise ValueError(
            f"{path!r} holds an image of {described}, not a movie: after removing "
            "singleton axes more than one non-spatial axis is left. read_movie reads one "
            "movie (n_frames, height, width) per file; split channels or z-planes into "
            "separate files first."
        )
    if others and axes and axes[others[0]] == "S":
        raise ValueError(
            f"{path!r} holds a colour image of {described} (axis 'S' holds colour "
            "samples), not a grey-level movie. Note that tifffile.imwrite stores an "
            "array of 3 or 4 frames as RGB unless photometric='minisblack' is given."
        )
    squeezed = tuple(shape[i] for i in keep)
    new_pos = {old: new for new, old in enumerate(keep)}
    if others:
        order = (new_pos[others[0]], new_pos[y_pos], new_pos[x_pos])
    else:
        order = (new_pos[y_pos], new_pos[x_pos])
    if order == tuple(range(len(order))):
        order = None
    return squeezed, order


def _arrange(data, squeezed, order):
    """Apply the plan of :func:`_movie_axes` to ``data`` (views only)."""
    data = data.reshape(squeezed)
    if order is not None:
        data = data.transpose(order)
    if data.ndim == 2:
        data = data[np.newaxis]
    return data


class _TiffDamage(logging.Handler):
    """Collects what tifffile logs, in this thread, about a damaged file."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.thread = threading.get_ident()
        self.messages = []

    def emit(self, record):
        if record.thread == self.thread:
            message = record.getMessage()
            if _TIFF_DAMAGE.search(message):
                self.messages.append(message)


@contextlib.contextmanager
def _intact_tiff(path):
    """Raise ValueError if tifffile reports, while reading ``path``, a truncated file.

    tifffile reads what it can of a damaged file and only logs the damage (e.g. a
    compressed 20-frame movie cut short reads as 1 frame); here that is an error.
    """
    handler = _TiffDamage()
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    if handler.messages:
        raise ValueError(
            f"{path!r} is truncated or corrupt: tifffile could not read all of it "
            f"({handler.messages[0]}). Nothing was read; copy or export the file again."
        )


def _check_tiff_pages(tif, series, path):
    """Raise ValueError if the image data of ``series`` are damaged or cut short.

    Contiguous image data (memory-mappable) are checked against the file size alone;
    otherwise every page is visited, which follows the chain of pages to its end (tifffile
    logs a broken chain, see :func:`_intact_tiff`), as decoding the pages will anyway.
    """
    try:
        if getattr(series, "dataoffset", None) is None:
            len(tif.pages)
        _check_tiff_extent(series, path)
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # tifffile raises several types for malformed pages
        if str(exc).startswith(repr(path)):
            raise  # ours, naming the file
        raise ValueError(
            f"{path!r} is truncated or corrupt: {exc}. Nothing was read; copy or export "
            "the file again."
        ) from exc


def _check_tiff_extent(series, path):
    """Raise ValueError if image data of ``series`` lie beyond the end of the file."""
    size = os.path.getsize(path)
    offset = getattr(series, "dataoffset", None)
    if offset is not None:  # contiguous image data
        if offset + series.nbytes > size:
            raise ValueError(
                f"{path!r} is truncated: its image data end at byte {offset + series.nbytes} "
                f"but the file has {size} bytes. Nothing was read; copy or export the file "
                "again."
            )
        return
    for page in series.pages:
        if page is None:
            continue
        offsets = getattr(page, "dataoffsets", ()) or ()
        counts = getattr(page, "databytecounts", ()) or ()
        end = max((o + c for o, c in zip(offsets, counts)), default=0)
        if end > size:
            raise ValueError(
                f"{path!r} is truncated: its image data end at byte {end} but the file has "
                f"{size} bytes. Nothing was read; copy or export the file again."
            )


def _open_tiff(path):
    try:
        return tifffile.TiffFile(path)
    except OSError:
        raise
    except Exception as exc:  # tifffile raises several types for malformed files
        raise ValueError(f"Could not read {path!r} as a TIFF file: {exc}") from exc


def _tiff_series(tif, path):
    """The single image series of an open TIFF file."""
    try:
        series = tif.series
    except Exception as exc:
        raise ValueError(
            f"Could not read the image series of {path!r} (truncated or corrupt?): {exc}"
        ) from exc
    if not series:
        raise ValueError(f"{path!r} holds no image data.")
    if len(series) > 1:
        shapes = ", ".join(str(tuple(s.shape)) for s in series)
        raise ValueError(
            f"{path!r} holds {len(series)} image series (shapes {shapes}); read_movie reads "
            "files that hold one movie."
        )
    return series[0]


def _probe_tiff(path):
    """Shape (n_frames, H, W) and dtype of a TIFF movie, without reading pixels."""
    with _intact_tiff(path), _open_tiff(path) as tif:
        series = _tiff_series(tif, path)
        squeezed, order = _movie_axes(path, series.shape, series.axes)
        dtype = np.dtype(series.dtype)
        _check_tiff_pages(tif, series, path)
    shape = squeezed if order is None else tuple(squeezed[i] for i in order)
    return (1, *shape) if len(shape) == 2 else shape, dtype


def _read_tiff(path, mmap):
    with _intact_tiff(path), _open_tiff(path) as tif:
        series = _tiff_series(tif, path)
        squeezed, order = _movie_axes(path, series.shape, series.axes)
        _check_tiff_pages(tif, series, path)
        data = None
        if mmap and getattr(series, "dataoffset", None) is not None:
            try:
                data = tifffile.memmap(path, mode="r", series=0)
            except (ValueError, OSError):
                data = None  # not contiguous after all: read it instead
            else:
                if data.size != int(np.prod(squeezed)):
                    data = None
        if data is None:
            try:
                data = np.asarray(series.asarray())
            except MemoryError:
                raise
            except Exception as exc:
                raise ValueError(f"Could not decode the image data of {path!r}: {exc}") from exc
            return np.ascontiguousarray(_arrange(data, squeezed, order))
    return _arrange(data, squeezed, order)


def _read_npy(path, mmap):
    try:
        data = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except OSError:
        raise
    except Exception as exc:
        raise ValueError(f"Could not read {path!r} as a .npy array: {exc}") from exc
    if not isinstance(data, np.ndarray):
        raise ValueError(f"{path!r} holds several arrays (.npz); save one movie per .npy file.")
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3:
        raise ValueError(
            f"{path!r} holds an array of shape {data.shape}, not a movie: expected "
            "(n_frames, height, width) or a single (height, width) frame."
        )
    return data


def _is_hdf5(path):
    if path.lower().endswith(_HDF5_SUFFIXES):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except OSError:
        return False


def _kind(path):
    """The format of ``path``: 'frames', 'suite2p', 'npy', 'nwb', 'hdf5' or 'tiff'."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file or folder: {path!r}.")
    lower = path.lower()
    if os.path.isdir(path):
        return "suite2p" if suite2p_folder(path) is not None else "frames"
    if lower.endswith((".npy", ".npz")):
        return "npy"
    if lower.endswith(".nwb"):
        return "nwb"
    if lower.endswith(".bin"):
        return "suite2p"
    if _is_hdf5(path):
        return "hdf5"
    return "tiff"


#: The options of read_movie that select data inside a file, and the formats taking them.
_OPTIONS = {"dataset": ("hdf5",), "axes": ("hdf5",), "series": ("nwb",)}
_KIND_NAMES = {
    "hdf5": "HDF5 files", "nwb": "NWB files", "tiff": "TIFF files", "npy": ".npy files",
    "frames": "folders of TIFF frames", "suite2p": "suite2p output",
}


def _check_options(path, kind, options):
    for option, value in options.items():
        if value is not None and kind not in _OPTIONS[option]:
            takes = " and ".join(_KIND_NAMES[k] for k in _OPTIONS[option])
            raise ValueError(
                f"{option}={value!r} applies to {takes} only, but {path!r} is read as one of "
                f"the {_KIND_NAMES[kind]}."
            )


def _read_file(path, mmap, dataset=None, axes=None, series=None):
    kind = _kind(path)
    _check_options(path, kind, {"dataset": dataset, "axes": axes, "series": series})
    if kind == "frames":
        return _read_frames(_tiffs_in_folder(path), folder=path)
    if kind == "suite2p":
        return read_suite2p(path, mmap=mmap)
    if kind == "npy":
        return _read_npy(path, mmap)
    if kind == "nwb":
        return read_nwb(path, mmap=mmap, series=series)
    if kind == "hdf5":
        return read_hdf5(path, mmap=mmap, dataset=dataset, axes=axes)
    return _read_tiff(path, mmap)


def _probe_file(path):
    kind = _kind(path)
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder; a run given as a list of files lists files.")
    if kind == "tiff":
        return _probe_tiff(path)
    data = _read_file(path, mmap=True)  # lazy: the header only
    shape, dtype = tuple(data.shape), np.dtype(data.dtype)
    if isinstance(data, LazyMovie):
        data.close()
    return shape, dtype


def _read_frames(paths, folder=None):
    """Concatenate the frames of several files (one run) into one in-memory array.

    Files read from a ``folder`` must hold one frame each.
    """
    paths = [os.path.expanduser(os.fspath(p)) for p in paths]
    if not paths:
        raise ValueError("A run given as a list of files needs at least one file.")
    probes = [_probe_file(p) for p in paths]
    if folder is not None:
        for path, (shape, _) in zip(paths, probes):
            if shape[0] != 1:
                pattern = os.path.join(folder, "*.tif")
                raise ValueError(
                    f"Folder {folder!r} is read as one run of single-frame TIFF files, but "
                    f"{path!r} holds {shape[0]} frames. To read each file as one run, "
                    f"pass the pattern {pattern!r}; to join the files of one acquisition "
                    "into one run, pass the list of files to read_movie."
                )
    (_, h, w), dtype = probes[0]
    for path, (shape, other) in zip(paths[1:], probes[1:]):
        if shape[1:] != (h, w):
            raise ValueError(
                f"Frames of one run must share their shape: {paths[0]!r} has frames of "
                f"shape {(h, w)} but {path!r} has {tuple(shape[1:])}."
            )
        if other.newbyteorder("=") != dtype.newbyteorder("="):
            raise ValueError(
                f"Frames of one run must share their dtype: {paths[0]!r} is {dtype} but "
                f"{path!r} is {other}."
            )
    out = np.empty((sum(s[0] for s, _ in probes), h, w), dtype=dtype.newbyteorder("="))
    start = 0
    for path, (shape, _) in zip(paths, probes):
        frames = _read_file(path, mmap=True)
        if frames.shape != shape:  # file changed between the two passes
            raise ValueError(f"{path!r} changed while it was being read.")
        out[start : start + shape[0]] = frames
        start += shape[0]
        if isinstance(frames, LazyMovie):
            frames.close()
    return out


def read_movie(path, *, mmap=True, dataset=None, axes=None, series=None):
    """Read one movie (one run) from disk.

    Parameters
    ----------
    path : str, os.PathLike, or list of str or os.PathLike
        One of:

        - a TIFF file: multi-page TIFF, ImageJ hyperstack or OME-TIFF (any suffix not
          listed below). Singleton axes (channel, z, ...) are squeezed; the one axis
          left beside height and width is the frame axis. A file with more than one
          non-singleton non-spatial axis (e.g. two channels and time), a colour
          (RGB samples) axis, or several image series is refused;
        - a ``.npy`` file holding a 3-D array (n_frames, height, width);
        - an **HDF5** file (``.h5``, ``.hdf5``, ``.hdf``, ``.he5``, or any file starting
          with the HDF5 signature): its one dataset of 3 or more dimensions, or the one
          named by ``dataset``. The axis order comes from ``axes``, else from the
          dataset's ``DIMENSION_LABELS`` (h5py's ``dataset.dims[i].label``, as SIMA
          writes them, e.g. ``t, y, x`` or ``t, z, y, x, c``), else frames first;
        - an **NWB** file (``.nwb``, read with pynwb: ``pip install 'skvarae[nwb]'``):
          the ``TwoPhotonSeries``, ``OnePhotonSeries`` or other ``ImageSeries`` in its
          acquisition (the one named by ``series`` if there are several). NWB stores
          frames as (x, y), i.e. (width, height); they are returned as (height, width),
          the mapping of roiextractors' ``NwbImagingExtractor``;
        - **suite2p output**: a plane folder (``.../suite2p/plane0``) or its ``data.bin``
          (or ``data_raw.bin``), with ``ops.npy`` beside it giving ``Ly``, ``Lx`` and
          ``nframes``: the int16 frames (nframes, Ly, Lx). A ``suite2p`` folder holding
          a single plane folder is read as that plane. ``ops.npy`` is read without
          executing code (only containers, numbers, strings and arrays are unpickled);
        - a folder of TIFFs: its ``*.tif`` / ``*.tiff`` files (hidden files ignored),
          sorted naturally (``frame2`` before ``frame10``), are the frames of one run;
          each must hold a single frame (a folder of multi-frame files is refused, so
          that separate runs are never joined silently);
        - a list of files: their frames, concatenated in the order given, form one run
          (typically single-frame TIFFs; multi-frame chunks of one acquisition, as
          ScanImage writes them, work too).

        A single 2-D TIFF image or ``.npy`` array is a run of one frame, shape
        (1, height, width).
    mmap : bool, default=True
        Read lazily: memory-map the file where its layout allows it (uncompressed TIFFs
        whose image data are contiguous, ``.npy`` files, HDF5 / NWB datasets stored
        contiguously without compression, suite2p's ``data.bin``), and return other HDF5
        / NWB datasets (chunked, compressed) as a :class:`LazyMovie` that reads frames
        when sliced. Other TIFFs (compressed, tiled, pages scattered in the file) are
        read into memory. Folders of TIFFs and lists of files are always read into
        memory. With ``mmap=False`` everything is read into memory.
    dataset : str, optional
        HDF5 only: the name (path) of the dataset holding the movie, e.g. ``"mov"`` or
        ``"/imaging"``. Needed when the file holds several datasets of 3 or more
        dimensions.
    axes : str, optional
        HDF5 only: the meaning of the dataset's axes, one letter each, ``t`` (frames),
        ``y`` (height), ``x`` (width), and ``z`` / ``c`` for singleton plane or channel
        axes, e.g. ``"tyx"`` (the default without ``DIMENSION_LABELS``), ``"yxt"`` or
        ``"tzyxc"``. Overrides ``DIMENSION_LABELS``.
    series : str, optional
        NWB only: the name of the image series in the file's acquisition. Needed when it
        holds several.

    Returns
    -------
    movie : ndarray or LazyMovie of shape (n_frames, height, width)
        In the file's dtype (uint8, uint16, int16, float32, ...). A memory-mapped
        result is a read-only :class:`numpy.memmap` (or a view of one) and keeps the
        file's byte order (big-endian files give e.g. ``>u2``); arrays read into memory
        are in native byte order. A :class:`LazyMovie` keeps its file open until it is
        closed or garbage-collected.

    Raises
    ------
    FileNotFoundError
        If a file or folder does not exist, or a suite2p folder lacks ``ops.npy`` or
        ``data.bin``.
    ValueError
        If a file cannot be read (truncated or corrupt: nothing is returned half-read),
        does not hold a movie (wrong number of axes, no or several candidate datasets or
        series, a missing ``dataset`` / ``series`` name), if suite2p's ``data.bin`` does
        not hold ``Ly * Lx * nframes`` int16 values, if an option does not apply to the
        file's format, or if the files of a list / folder differ in frame shape or
        dtype. The message names the file and what was expected.
    ImportError
        If an NWB file is read without pynwb installed (the message names the extra).

    See Also
    --------
    read_runs : Read several runs (files, folders, glob patterns).
    check_runs : Validate a sequence of runs.

    Notes
    -----
    HDF5 files written by h5py, CaImAn (dataset ``mov``) or SIMA (``DIMENSION_LABELS``)
    and NWB files written by pynwb or neuroconv are read; NWB image series stored in
    external files (``external_file``) are refused with the names of those files, which
    can be read directly.

    Examples
    --------
    >>> import numpy as np, tifffile, tempfile, os
    >>> from skvarae.io import read_movie
    >>> path = os.path.join(tempfile.mkdtemp(), "movie.tif")
    >>> tifffile.imwrite(path, np.zeros((20, 32, 48), dtype=np.uint16))
    >>> movie = read_movie(path)
    >>> movie.shape, movie.dtype, isinstance(movie, np.memmap)
    ((20, 32, 48), dtype('uint16'), True)

    An HDF5 file whose movie is stored (height, width, frames):

    >>> import h5py
    >>> path = os.path.join(tempfile.mkdtemp(), "movie.h5")
    >>> with h5py.File(path, "w") as f:
    ...     _ = f.create_dataset("mov", data=np.zeros((32, 48, 20), np.uint16), chunks=True)
    >>> movie = read_movie(path, axes="yxt")
    >>> movie.shape, type(movie).__name__, movie[:5].shape
    ((20, 32, 48), 'LazyMovie', (5, 32, 48))
    >>> movie.close()
    """
    if isinstance(path, (list, tuple)):
        if any(option is not None for option in (dataset, axes, series)):
            raise ValueError(
                "dataset, axes and series select data in one file; a run given as a list "
                "of files takes none of them."
            )
        return _read_frames(path)
    if not _is_pathlike(path):
        raise TypeError(
            f"path must be a str, os.PathLike or a list of them, got {type(path).__name__}."
        )
    return _read_file(
        os.path.expanduser(os.fspath(path)), mmap, dataset=dataset, axes=axes, series=series
    )


# --------------------------------------------------------------------------------------
# Several runs
# --------------------------------------------------------------------------------------


def _read_runs_with_sources(paths, mmap, **options):
    if _is_pathlike(paths):
        paths = [paths]
    elif not isinstance(paths, (list, tuple)):
        raise TypeError(
            "paths must be a str, os.PathLike, glob pattern or a list of them, got "
            f"{type(paths).__name__}."
        )
    sources = []
    for item in paths:
        if not _is_pathlike(item):
            raise TypeError(
                f"paths must hold str or os.PathLike items, got {type(item).__name__}."
            )
        sources.extend(_expand(item))
    if not sources:
        raise ValueError("No runs: the list of paths is empty.")
    runs = [_read_file(source, mmap, **options) for source in sources]
    for source, run in zip(sources[1:], runs[1:]):
        if run.shape[1:] != runs[0].shape[1:]:
            raise ValueError(
                "All runs must have the same frame shape (height, width): "
                f"{sources[0]!r} has frames of shape {tuple(runs[0].shape[1:])} but "
                f"{source!r} has {tuple(run.shape[1:])}."
            )
    return runs, sources


def read_runs(paths, *, mmap=True, dataset=None, axes=None, series=None):
    """Read a sequence of runs from files, folders or glob patterns.

    Parameters
    ----------
    paths : str, os.PathLike, or list of str or os.PathLike
        A path, a glob pattern (``"session1/run_*.tif"``, expanded and sorted
        naturally), or a list of paths and patterns. Each TIFF, ``.npy``, HDF5 or NWB
        file is one run; each suite2p plane folder is one run, and so is each other
        folder, made of its single-frame TIFF files (see :func:`read_movie`). ``~`` is
        expanded. A path that exists is never treated as a pattern.
    mmap : bool, default=True
        Read lazily where possible (see :func:`read_movie`).
    dataset, axes, series : str, optional
        Passed to :func:`read_movie` for every file (so every file must be of the
        format that takes them).

    Returns
    -------
    runs : list of ndarray or LazyMovie of shape (n_frames_r, height, width)
        One array per run, in order; run lengths may differ, frame shapes may not.

    Raises
    ------
    FileNotFoundError
        If a path does not exist or a pattern matches nothing.
    ValueError
        If a file is not a readable movie, if ``paths`` is empty, or if runs differ in
        frame shape (the message names both files and shapes).

    See Also
    --------
    read_movie : Read one run.
    check_runs : Validate a sequence of runs (accepts paths too).

    Examples
    --------
    >>> import numpy as np, tifffile, tempfile, os
    >>> from skvarae.io import read_runs
    >>> folder = tempfile.mkdtemp()
    >>> for r, n in enumerate([30, 25]):
    ...     tifffile.imwrite(os.path.join(folder, f"run{r}.tif"), np.zeros((n, 16, 24), np.uint16))
    >>> [run.shape for run in read_runs(os.path.join(folder, "run*.tif"))]
    [(30, 16, 24), (25, 16, 24)]
    """
    return _read_runs_with_sources(paths, mmap, dataset=dataset, axes=axes, series=series)[0]


# --------------------------------------------------------------------------------------
# Data contract
# --------------------------------------------------------------------------------------


def _label(name, index, sources):
    text = f"run {index} of {name}"
    if sources is not None and sources[index] is not None:
        text += f" ({sources[index]!r})"
    return text


class _ComplexDataError(TypeError, ValueError):
    """Complex input: a TypeError, and a ValueError as scikit-learn's checks expect."""


def _check_dtype(array, what):
    """Return ``array`` unchanged if numeric, converted if a numeric object array."""
    kind = array.dtype.kind
    if kind in "biuf":
        return array
    if kind == "c":
        raise _ComplexDataError(
            f"Complex data not supported: {what} has dtype {array.dtype}; expected a real "
            "numeric dtype (bool, integer or floating point)."
        )
    if kind == "O":
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{what} has dtype object and could not be converted to numbers: {exc}"
            ) from exc
    raise TypeError(
        f"{what} has dtype {array.dtype}; expected a real numeric dtype (bool, integer "
        "or floating point)."
    )


def _block_nonfinite(block):
    """Index of the first frame of ``block`` holding NaN or inf, or None."""
    # Summing in float64 neither allocates a copy nor overflows for float16/32 data;
    # a non-finite sum of float64 data is re-checked exactly.
    if np.isfinite(np.sum(block, dtype=np.float64)):
        return None
    bad = ~np.isfinite(block).reshape(block.shape[0], -1).all(axis=1)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def _first_nonfinite_frame(run):
    """Index of the first frame of ``run`` holding NaN or inf, or None.

    Examines ``_FINITE_CHECK_BYTES`` of the run at a time, so a large memory-mapped run
    is never loaded (or converted) as a whole.
    """
    if run.dtype.kind != "f" or run.size == 0:
        return None
    frame_bytes = max(1, run.shape[1] * run.shape[2] * run.dtype.itemsize)
    step = max(1, _FINITE_CHECK_BYTES // frame_bytes)
    for start in range(0, run.shape[0], step):
        bad = _block_nonfinite(run[start : start + step])
        if bad is not None:
            return start + bad
    return None


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _first_frame_beyond_float32(run):
    """Index of the first frame of a finite float64 (or wider) run with |x| > float32 max."""
    if run.dtype.kind != "f" or run.dtype.itemsize <= 4 or run.size == 0:
        return None
    frame_bytes = max(1, run.shape[1] * run.shape[2] * run.dtype.itemsize)
    step = max(1, _FINITE_CHECK_BYTES // frame_bytes)
    for start in range(0, run.shape[0], step):
        block = run[start : start + step]
        if max(-float(block.min()), float(block.max())) > _FLOAT32_MAX:
            big = (np.abs(block) > _FLOAT32_MAX).reshape(block.shape[0], -1).any(axis=1)
            return start + int(np.flatnonzero(big)[0])
    return None


def _shape_or_none(item):
    try:
        return np.shape(item)
    except ValueError:  # itself ragged
        return None


def _irregular_run(run, index, name):
    """ValueError for a run given as nested lists whose frames differ in shape."""
    detail = ""
    try:
        frames = list(run)
    except TypeError:
        frames = []
    if frames:
        first = _shape_or_none(frames[0])
        for j, frame in enumerate(frames[1:], start=1):
            shape = _shape_or_none(frame)
            if shape is None or shape != first:
                shown = (
                    "is itself irregular (rows of different lengths)"
                    if shape is None
                    else f"has {shape}"
                )
                detail = f": frame 0 has shape {first} but frame {j} {shown}"
                break
    return ValueError(
        f"Run {index} of {name} is not a regular array (n_frames, height, width); its "
        f"frames differ in shape{detail}."
    )


def _as_run(x, index, name):
    """One run of a list as an array (a LazyMovie or ndarray is returned as it is)."""
    if isinstance(x, (np.ndarray, LazyMovie)):
        return x
    try:
        run = np.asarray(x)
    except ValueError as exc:  # ragged nested lists (numpy >= 1.24)
        raise _irregular_run(x, index, name) from exc
    if run.dtype == object and run.ndim >= 1 and any(np.ndim(item) > 0 for item in run.flat):
        raise _irregular_run(x, index, name)  # ragged nested lists (older numpy)
    return run


def _as_runs_from_list(X, name, min_frames):
    runs = [_as_run(x, index, name) for index, x in enumerate(X)]
    if runs and all(run.ndim == 0 for run in runs):  # a list of numbers: 1-D X
        return _as_runs_from_array(np.asarray(X), name, min_frames)
    if runs and all(run.ndim == 1 for run in runs):
        # single-pixel runs of (possibly) different lengths, like a 2-D X
        return [run[:, np.newaxis, np.newaxis] for run in runs]
    for index, run in enumerate(runs):
        if run.ndim != 3:
            hint = ""
            if run.ndim == 2:
                hint = (
                    " If X is one movie given as a list of frames, pass [np.stack(frames)]."
                )
            elif run.ndim == 4:
                hint = " If X is a 4-D array of runs, pass it directly, not inside a list."
            raise ValueError(
                f"Each run must be 3-D (n_frames, height, width); run {index} of {name} "
                f"has shape {run.shape} (ndim {run.ndim}).{hint}"
            )
    return runs


def _as_runs_from_array(X, name, min_frames):
    X = _check_dtype(X, name)
    if X.ndim == 4:
        return list(X)
    if X.ndim == 2:
        n_runs, n_frames = X.shape
        if n_runs > 0 and n_frames < min_frames:
            # worded as scikit-learn's check_array too, since for 2-D input the frames
            # are what scikit-learn calls features
            raise ValueError(
                f"{name} is a 2-D array of single-pixel runs (n_runs, n_frames); found "
                f"array with {n_frames} feature(s) (shape={X.shape}) while a minimum of "
                f"{min_frames} is required: run 0 of {name} has {n_frames} frames, fewer "
                f"than the minimum of {min_frames} frames."
            )
        return list(X[:, :, np.newaxis, np.newaxis])
    if X.ndim == 1:
        raise ValueError(
            f"{name} is a 1-D array of shape {X.shape}, but a sequence of runs is "
            "expected. Reshape your data: a 1-D array is one single-pixel run, pass "
            f"{name}[None] (shape (1, n_frames)) or [movie] for a 3-D movie."
        )
    if X.ndim == 3:
        raise ValueError(
            f"{name} is a single 3-D array of shape {X.shape}, but a sequence of runs is "
            "expected. If it is one movie (n_frames, height, width), pass [movie] (or "
            "movie[None]); a 2-D array (n_runs, n_frames) means single-pixel runs."
        )
    raise ValueError(
        f"{name} must be a 4-D array (n_runs, n_frames, height, width), a list of 3-D "
        "runs, a list of paths, or a 2-D array (n_runs, n_frames) of single-pixel runs; "
        f"got an array of shape {X.shape} (ndim {X.ndim})."
    )


def check_runs(X, *, min_frames=1, name="X", allow_paths=True):
    """Validate a sequence of runs; returns a list of 3-D arrays (n_frames_r, H, W).

    This is the data contract of the estimators of skvarae. Runs are returned as they
    are, without conversion or copy: integer movies (uint16 from microscopes) stay
    integer, memory maps, :class:`LazyMovie` objects and read-only arrays are passed
    through (the same object or a view of it) and nothing is modified in place. Callers
    convert batches of frames to float32 as they go (see :func:`iter_frame_batches`).

    Parameters
    ----------
    X : array-like, list of array-like, str, os.PathLike or list of paths
        The runs, as one of:

        - a 4-D array-like of shape (n_runs, n_frames, height, width);
        - a list or tuple of 3-D array-likes (n_frames_r, height, width), or of
          :class:`LazyMovie` objects; run lengths may differ;
        - a 2-D array-like of shape (n_runs, n_frames): runs of single-pixel movies,
          each returned as (n_frames, 1, 1) (a list of 1-D array-likes of different
          lengths is read the same way);
        - a path, glob pattern, or list of them (read with :func:`read_runs`; each
          TIFF, ``.npy``, HDF5 or NWB file and each suite2p plane folder is one run,
          each other folder one run of single-frame TIFFs). A list may mix paths and
          arrays.

        Boolean movies are accepted as numeric (0 / 1). Object arrays holding numbers
        are converted to float64 (this copies, so that scikit-learn's
        ``check_dtype_object`` passes); other object arrays, strings and complex
        numbers are refused.
    min_frames : int, default=1
        Minimum number of frames of every run (e.g. ``lags + 2`` for a VAR fit).
    name : str, default="X"
        Name of the argument, used in error messages.
    allow_paths : bool, default=True
        Whether paths are accepted. With False, paths raise ``TypeError``.

    Returns
    -------
    runs : list of ndarray or LazyMovie of shape (n_frames_r, height, width)
        One array per run, all with the same (height, width), in their input dtype.
        Runs read from HDF5 / NWB files that cannot be memory-mapped are
        :class:`LazyMovie` objects: sliced (``run[start:stop]``) they return arrays.

    Raises
    ------
    TypeError
        If ``X`` is a sparse matrix, has a non-numeric, complex or non-convertible
        object dtype, or is a path while ``allow_paths=False``. The error for complex
        data is also a ``ValueError`` ("Complex data not supported"), as scikit-learn's
        ``check_complex_data`` expects.
    ValueError
        If ``X`` is empty or a bare 3-D array (pass ``[movie]``), has the wrong number
        of dimensions, or a run is not 3-D, has zero frames or pixels, has a frame shape
        different from run 0, has fewer than ``min_frames`` frames, contains NaN or
        infinity, or holds (float64) values beyond the float32 range. The message names the
        run index.
        different from run 0 (or, given as nested lists, frames of different shapes),
        has fewer than ``min_frames`` frames, or contains NaN or infinity; or if a file
        cannot be read as a movie. The message names the run index (and frame, or file).
    FileNotFoundError
        If a path does not exist.

    Notes
    -----
    The finiteness check looks at floating-point runs only (integer and bool runs are
    finite by construction, and are not read at all), a chunk of at most 64 MiB of
    frames at a time, so a memory-mapped or lazy run is never loaded or converted as a
    whole.

    A few messages also carry the wording that scikit-learn's common estimator checks
    look for, since for 2-D input the runs are samples and the frames are features:
    "Reshape your data" for 1-D input, "found array with 0 feature(s) (shape=(n, 0))
    while a minimum of m is required" for 2-D input with too few frames.

    See Also
    --------
    read_runs : Read runs from files.
    iter_frame_batches : Stream a run as float32 batches of frames.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae.io import check_runs
    >>> runs = check_runs([np.zeros((30, 8, 12), np.uint16), np.zeros((20, 8, 12), np.uint16)])
    >>> [(run.shape, run.dtype.name) for run in runs]
    [((30, 8, 12), 'uint16'), ((20, 8, 12), 'uint16')]
    >>> check_runs(np.zeros((3, 50)))[0].shape  # 2-D: single-pixel runs
    (50, 1, 1)
    """
    min_frames = check_integer(min_frames, "min_frames", min_val=1, caller_name="check_runs")
    if scipy.sparse.issparse(X):
        raise TypeError(
            f"{name} is a sparse matrix ({type(X).__name__}); sparse input is not "
            "supported: pass dense runs."
        )

    sources = None
    if _is_pathlike(X) or (
        isinstance(X, (list, tuple)) and len(X) > 0 and any(_is_pathlike(x) for x in X)
    ):
        if not allow_paths:
            raise TypeError(f"{name} holds paths, which are not accepted here; pass arrays.")
        if _is_pathlike(X) or all(_is_pathlike(x) for x in X):
            runs, sources = _read_runs_with_sources(X, mmap=True)
        else:  # mixed list: a path may expand to several runs
            runs, sources = [], []
            for item in X:
                if _is_pathlike(item):
                    item_runs, item_sources = _read_runs_with_sources(item, mmap=True)
                    runs.extend(item_runs)
                    sources.extend(item_sources)
                else:
                    runs.append(_as_run(item, len(runs), name))
                    sources.append(None)
    elif isinstance(X, (list, tuple)):
        runs = _as_runs_from_list(X, name, min_frames)
    else:
        X = X if isinstance(X, np.ndarray) else np.asarray(X)
        runs = _as_runs_from_array(X, name, min_frames)

    if len(runs) == 0:
        raise ValueError(f"{name} is empty: at least one run is needed.")

    checked = []
    for index, run in enumerate(runs):
        label = _label(name, index, sources)
        if run.ndim != 3:
            raise ValueError(
                f"Each run must be 3-D (n_frames, height, width); {label} has shape "
                f"{run.shape} (ndim {run.ndim})."
            )
        run = _check_dtype(run, label)
        if run.shape[0] == 0:
            raise ValueError(f"{label} has zero frames (shape {run.shape}).")
        if run.shape[1] == 0 or run.shape[2] == 0:
            raise ValueError(f"{label} has empty frames (shape {run.shape}).")
        if index > 0 and run.shape[1:] != checked[0].shape[1:]:
            raise ValueError(
                "All runs must have the same frame shape (height, width): run 0 of "
                f"{name} has frames of shape {checked[0].shape[1:]} but {label} has "
                f"{run.shape[1:]}."
            )
        if run.shape[0] < min_frames:
            raise ValueError(
                f"{label} has {run.shape[0]} frames, fewer than the minimum of "
                f"{min_frames} frames."
            )
        bad = _first_nonfinite_frame(run)
        if bad is not None:
            raise ValueError(f"{label} contains NaN or infinity (first in frame {bad}).")
        bad = _first_frame_beyond_float32(run)
        if bad is not None:
            raise ValueError(
                f"{label} holds values beyond the float32 range (|x| > {_FLOAT32_MAX:.3g}, "
                f"first in frame {bad}); the model computes in float32: rescale the movie."
            )
        checked.append(run)
    return checked


def iter_frame_batches(run, batch_size, *, dtype=np.float32):
    """Yield consecutive frames of a run as float batches, for streaming.

    Parameters
    ----------
    run : ndarray of shape (n_frames, height, width)
        One run, e.g. an element of :func:`check_runs`' output (any numeric dtype,
        possibly a memory map).
    batch_size : int
        Number of frames per batch (the last batch may be shorter).
    dtype : dtype, default=np.float32
        Floating-point dtype of the batches.

    Yields
    ------
    batch : ndarray of shape (n_batch, height, width)
        A new, C-contiguous, writeable array in native byte order (never a view of
        ``run``, so it may be modified in place), holding frames ``start`` to
        ``start + n_batch`` with ``n_batch <= batch_size``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae.io import iter_frame_batches
    >>> run = np.arange(5 * 2 * 3, dtype=np.uint16).reshape(5, 2, 3)
    >>> [(b.shape[0], b.dtype.name) for b in iter_frame_batches(run, 2)]
    [(2, 'float32'), (2, 'float32'), (1, 'float32')]
    """
    batch_size = check_integer(
        batch_size, "batch_size", min_val=1, caller_name="iter_frame_batches"
    )
    dtype = np.dtype(dtype).newbyteorder("=")
    for start in range(0, len(run), int(batch_size)):
        yield np.array(run[start : start + batch_size], dtype=dtype, order="C", copy=True)
