"""Readers of the field's container formats: HDF5, NWB and suite2p's registered binary.

:mod:`skvarae.io` is the public entry point (``read_movie`` dispatches here by file suffix or
folder contents); this module holds one reader per format and the lazy array they share.

Every reader is lazy: opening a file reads its header only. Where the data lie contiguous
and uncompressed in the file (an HDF5 dataset without chunks, suite2p's ``data.bin``), the
movie is a read-only :class:`numpy.memmap`; otherwise (chunked or compressed HDF5 / NWB
datasets) it is a :class:`LazyMovie`, which reads frames when sliced and keeps its h5py file
open for as long as it is used. NWB files are searched with pynwb (the series, its type and
name), whose ``NWBHDF5IO`` is then closed; the frames are read through h5py, so a lazy NWB
movie holds only an h5py file, which closes with it (an ``NWBHDF5IO`` left open would need
an explicit close, and hdmf warns when one is garbage-collected open).
"""

import importlib
import io
import os
import pickle
import re

import numpy as np

__all__ = ["LazyMovie", "read_hdf5", "read_nwb", "read_suite2p", "suite2p_folder"]

#: First bytes of an HDF5 file (without a user block).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: Names of axes read from ``DIMENSION_LABELS`` / ``axes``, by what they mean.
_AXIS_NAMES = {
    "t": "t", "time": "t", "frame": "t", "frames": "t",
    "y": "y", "height": "y", "row": "y", "rows": "y",
    "x": "x", "width": "x", "col": "x", "cols": "x", "column": "x", "columns": "x",
    "z": "z", "plane": "z", "planes": "z", "depth": "z",
    "c": "c", "channel": "c", "channels": "c",
}


def optional_import(module, extra=None):
    """Import ``module``, or raise an ImportError saying how to install it.

    ``extra`` names the optional extra of skvarae that installs it (None for a required
    dependency missing from a broken installation).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        how = f"pip install 'skvarae[{extra}]'" if extra else f"pip install {module}"
        raise ImportError(
            f"Reading this file needs {module}, which is not installed: install it with "
            f"{how}."
        ) from exc


# --------------------------------------------------------------------------------------
# The lazy array
# --------------------------------------------------------------------------------------


def _normalise_key(key, shape):
    """``key`` as a tuple of one int or slice per axis of ``shape`` (Ellipsis expanded)."""
    if not isinstance(key, tuple):
        key = (key,)
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...').")
    if Ellipsis in key:
        at = key.index(Ellipsis)
        fill = len(shape) - (len(key) - 1)
        key = key[:at] + (slice(None),) * fill + key[at + 1 :]
    if len(key) > len(shape):
        raise IndexError(
            f"too many indices: the movie has {len(shape)} axes but {len(key)} were indexed."
        )
    key = key + (slice(None),) * (len(shape) - len(key))
    out = []
    for k, n in zip(key, shape):
        if isinstance(k, slice):
            out.append(k)
        elif isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
            k = int(k)
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for an axis of length {n}.")
            out.append(k % n)
        else:
            raise TypeError(
                "A LazyMovie is indexed with integers and slices (e.g. movie[10:20] or "
                f"movie[5, :, 3]); got {type(k).__name__}. Use np.asarray(movie) to read it "
                "all into memory for other indexing."
            )
    return out


class LazyMovie:
    """A movie (n_frames, height, width) in a file, read only when sliced.

    :func:`skvarae.read_movie` returns one for HDF5 and NWB datasets that cannot be
    memory-mapped (chunked or compressed). It behaves as a read-only 3-D array for what the
    estimator needs: ``shape``, ``dtype``, ``ndim``, ``len()``, slicing with integers and
    slices (``movie[start:stop]`` reads those frames and returns a NumPy array) and
    ``np.asarray(movie)`` (reads everything). Frames are read through h5py, which may
    reorder the stored axes: indices are always in (frame, height, width) order.

    The file stays open as long as the object is in use; :meth:`close` (or a ``with``
    block) closes it early. A pickled LazyMovie holds the path and the reading options, and
    opens the file again when it is unpickled (e.g. in a joblib worker process).

    Parameters
    ----------
    dataset : h5py.Dataset
        The stored data.
    order : tuple of int
        Axes of ``dataset`` holding frames, height and width, in that order.
    fixed : dict, optional
        Other (singleton) axes of ``dataset``, indexed at the given position.
    path : str
        The file, for messages and for reopening.
    options : dict, optional
        Keyword arguments of :func:`skvarae.read_movie` that select this movie.
    resources : tuple, optional
        Objects to keep alive and close with the movie (the h5py file).

    Attributes
    ----------
    shape : tuple of int
        (n_frames, height, width).
    dtype : numpy.dtype
        The stored dtype; slices come back in it.
    ndim : int
        Always 3.
    filename : str
        The file read.

    Examples
    --------
    >>> import numpy as np, h5py, tempfile, os
    >>> from skvarae.io import read_movie
    >>> path = os.path.join(tempfile.mkdtemp(), "movie.h5")
    >>> with h5py.File(path, "w") as f:
    ...     _ = f.create_dataset("mov", data=np.arange(60, dtype=np.uint16).reshape(5, 3, 4),
    ...                          chunks=(1, 3, 4), compression="gzip")
    >>> with read_movie(path) as movie:
    ...     print(type(movie).__name__, movie.shape, movie[4, 2])
    LazyMovie (5, 3, 4) [56 57 58 59]
    """

    ndim = 3

    def __init__(self, dataset, order, *, fixed=None, path, options=None, resources=()):
        self._dataset = dataset
        self._order = tuple(int(axis) for axis in order)
        self._fixed = dict(fixed or {})
        self.filename = path
        self._options = dict(options or {})
        self._resources = tuple(resources)
        self.shape = tuple(int(dataset.shape[axis]) for axis in self._order)
        self.dtype = np.dtype(dataset.dtype)

    @property
    def size(self):
        """Number of elements."""
        return int(np.prod(self.shape))

    @property
    def nbytes(self):
        """Bytes the movie takes in memory once read."""
        return self.size * self.dtype.itemsize

    @property
    def itemsize(self):
        """Bytes per element."""
        return self.dtype.itemsize

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        name = getattr(self._dataset, "name", "?") if not self.closed else "(closed)"
        return (
            f"<LazyMovie {self.filename!r} {name} shape={self.shape} dtype={self.dtype.name}>"
        )

    @property
    def closed(self):
        """Whether the file has been closed."""
        return self._dataset is None

    def close(self):
        """Close the file; the movie cannot be read afterwards."""
        self._dataset = None
        for resource in reversed(self._resources):
            try:
                resource.close()
            except Exception:  # noqa: BLE001 - closing twice or at shutdown is harmless
                pass
        self._resources = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __reduce__(self):
        return (_reopen, (self.filename, self._options))

    def __array__(self, dtype=None, copy=None):
        data = self[:]
        return data if dtype is None else data.astype(dtype, copy=False)

    def __getitem__(self, key):
        if self.closed:
            raise ValueError(f"The movie read from {self.filename!r} has been closed.")
        key = _normalise_key(key, self.shape)
        storage = [slice(None)] * len(self._dataset.shape)
        for axis, index in self._fixed.items():
            storage[axis] = index
        flips, kept = [], []
        for out_axis, (index, axis) in enumerate(zip(key, self._order)):
            if isinstance(index, slice):
                start, stop, step = index.indices(self.shape[out_axis])
                if step < 0:  # h5py reads increasing indices only
                    count = len(range(start, stop, step))
                    last = start + step * (count - 1) if count else start
                    start, stop, step = (last, start + 1, -step) if count else (0, 0, 1)
                    flips.append(axis)
                storage[axis] = slice(start, max(start, stop), step)
                kept.append(axis)
            else:
                storage[axis] = index
        try:
            data = np.asarray(self._dataset[tuple(storage)])
        except (OSError, RuntimeError, KeyError) as exc:
            raise ValueError(
                f"Could not read frames of {self.filename!r} (dataset "
                f"{self._dataset.name!r}): the file may be truncated or corrupt: {exc}"
            ) from exc
        in_storage_order = sorted(kept)
        if flips:
            reverse = slice(None, None, -1)
            data = data[tuple(reverse if a in flips else slice(None) for a in in_storage_order)]
        perm = [in_storage_order.index(axis) for axis in kept]
        if perm != sorted(perm):
            data = np.ascontiguousarray(data.transpose(perm))
        return data


def _reopen(path, options):
    from .io import read_movie

    return read_movie(path, **options)


# --------------------------------------------------------------------------------------
# HDF5
# --------------------------------------------------------------------------------------


def _open_h5(path):
    h5py = optional_import("h5py")
    try:
        return h5py.File(path, "r")
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # h5py raises OSError for anything it cannot parse
        raise ValueError(
            f"Could not read {path!r} as an HDF5 file (truncated or corrupt?): {exc}"
        ) from exc


def _parse_axes(axes, shape, path, what):
    """Positions of the t, y and x axes in ``axes``; other named axes must be singleton."""
    if not isinstance(axes, str):
        axes = tuple(axes)
    if isinstance(axes, str) and axes.lower() in _AXIS_NAMES:
        names = [axes]
    elif isinstance(axes, str):
        names = list(axes)
    else:
        names = list(axes)
    if len(names) != len(shape):
        raise ValueError(
            f"{what} {axes!r} names {len(names)} axes but the dataset in {path!r} has "
            f"{len(shape)} (shape {tuple(shape)}); expected one letter per axis, e.g. "
            "axes='tyx' for (frames, height, width)."
        )
    meaning = []
    for name in names:
        key = str(name).strip().lower()
        if key not in _AXIS_NAMES:
            raise ValueError(
                f"{what} {axes!r} of {path!r}: unknown axis {name!r}; expected t (frames), "
                "y (height), x (width), and z or c for singleton axes, e.g. axes='tyx'."
            )
        meaning.append(_AXIS_NAMES[key])
    for needed in "tyx":
        if meaning.count(needed) != 1:
            raise ValueError(
                f"{what} {axes!r} of {path!r} must name the axis {needed!r} exactly once "
                "(t: frames, y: height, x: width)."
            )
    fixed = {}
    for axis, (name, n) in enumerate(zip(meaning, shape)):
        if name not in "tyx":
            if n != 1:
                raise ValueError(
                    f"The dataset in {path!r} (shape {tuple(shape)}, axes {axes!r}) has "
                    f"{n} entries along axis {name!r}; a movie has one plane and one "
                    "channel: split it into separate files or datasets first."
                )
            fixed[axis] = 0
    order = tuple(meaning.index(name) for name in "tyx")
    return order, fixed


def _labels(dataset):
    """The dataset's ``DIMENSION_LABELS`` (h5py's ``dims[i].label``), or None."""
    try:
        labels = [str(dim.label) for dim in dataset.dims]
    except Exception:  # noqa: BLE001 - no or unreadable labels
        return None
    return labels if any(labels) else None


def _candidates(h5file):
    """Names and shapes of the datasets of at least 3 dimensions, in file order."""
    h5py = importlib.import_module("h5py")
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim >= 3:
            found.append(name)

    h5file.visititems(visit)
    return found


def _memmap_dataset(path, h5file, dataset):
    """A read-only memmap of a contiguous, uncompressed, allocated dataset, or None."""
    try:
        offset = dataset.id.get_offset()
        if (
            offset is None
            or dataset.chunks is not None
            or dataset.compression is not None
            or dataset.external
            or dataset.is_virtual
            or h5file.userblock_size != 0
            or h5file.driver not in ("sec2", "stdio")
            or dataset.dtype.kind not in "biuf"
            or dataset.dtype.fields is not None
            or dataset.id.get_storage_size() != dataset.size * dataset.dtype.itemsize
        ):
            return None
    except Exception:  # noqa: BLE001 - any doubt: read through h5py instead
        return None
    try:
        return np.memmap(path, dtype=dataset.dtype, mode="r", offset=offset, shape=dataset.shape)
    except (ValueError, OSError) as exc:
        raise ValueError(
            f"Could not read the dataset {dataset.name!r} of {path!r}: it ends past the "
            f"end of the file (truncated?): {exc}"
        ) from exc


def _movie_from_dataset(path, h5file, dataset, order, fixed, mmap, options, resources):
    """The movie of ``dataset``: a memmap view, a LazyMovie, or (mmap=False) an array."""
    if mmap:
        mapped = _memmap_dataset(path, h5file, dataset)
        if mapped is not None:
            for resource in resources:
                resource.close()
            index = [slice(None)] * mapped.ndim
            for axis, position in fixed.items():
                index[axis] = position
            mapped = mapped[tuple(index)]
            kept = [axis for axis in range(len(dataset.shape)) if axis not in fixed]
            perm = [kept.index(axis) for axis in order]
            return mapped if perm == [0, 1, 2] else mapped.transpose(perm)
    movie = LazyMovie(
        dataset, order, fixed=fixed, path=path, options=options, resources=resources
    )
    if mmap:
        return movie
    try:
        return np.ascontiguousarray(movie[:])
    finally:
        movie.close()


def _check_movie_dtype(dtype, path, where):
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise ValueError(
            f"{where} of {path!r} has dtype {dtype}; expected a real numeric dtype "
            "(integer or floating point)."
        )


def read_hdf5(path, *, mmap=True, dataset=None, axes=None):
    """Read the movie of an HDF5 file; see :func:`skvarae.read_movie`."""
    h5file = _open_h5(path)
    try:
        if dataset is None:
            names = _candidates(h5file)
            if not names:
                listing = _describe_datasets(h5file)
                raise ValueError(
                    f"{path!r} holds no dataset with 3 dimensions (n_frames, height, width)"
                    + (f"; it holds {listing}." if listing else ": it holds no dataset.")
                )
            if len(names) > 1:
                shapes = ", ".join(f"{name!r} {h5file[name].shape}" for name in names)
                raise ValueError(
                    f"{path!r} holds several datasets that could be a movie: {shapes}; "
                    "choose one with dataset='name'."
                )
            name = names[0]
        else:
            if not isinstance(dataset, str):
                raise TypeError(f"dataset must be a str (a dataset name), got {dataset!r}.")
            name = dataset
            h5py = importlib.import_module("h5py")
            found = h5file.get(name)
            if not isinstance(found, h5py.Dataset):
                listing = _describe_datasets(h5file)
                raise ValueError(
                    f"{path!r} has no dataset named {name!r}"
                    + (f"; it holds {listing}." if listing else "; it holds no dataset.")
                )
        data = h5file[name]
        where = f"The dataset {data.name!r}"
        _check_movie_dtype(data.dtype, path, where)
        shape = tuple(data.shape)
        labels = _labels(data) if axes is None else None
        if axes is not None and not isinstance(axes, str):
            raise TypeError(
                f"axes must be a str with one letter per axis of the dataset, such as 'tyx', "
                f"got {axes!r}."
            )
        if axes is not None:
            order, fixed = _parse_axes(axes, shape, path, "axes")
        elif labels is not None:
            what = f"The DIMENSION_LABELS of {data.name!r},"
            order, fixed = _parse_axes(labels, shape, path, what)
        elif len(shape) == 3:
            order, fixed = (0, 1, 2), {}
        else:
            raise ValueError(
                f"{where} of {path!r} has shape {shape} ({len(shape)}-D); expected a 3-D "
                "movie (n_frames, height, width). Name its axes with axes='...' (e.g. "
                "axes='tzyx' when z has length 1) or give DIMENSION_LABELS."
            )
        options = {"dataset": data.name}
        if axes is not None:
            options["axes"] = axes
        return _movie_from_dataset(path, h5file, data, order, fixed, mmap, options, (h5file,))
    except BaseException:
        h5file.close()
        raise


def _describe_datasets(h5file, limit=10):
    h5py = importlib.import_module("h5py")
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found.append(f"{name!r} {obj.shape}")

    h5file.visititems(visit)
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return ", ".join(found[:limit]) + more


# --------------------------------------------------------------------------------------
# NWB
# --------------------------------------------------------------------------------------


def read_nwb(path, *, mmap=True, series=None):
    """Read an image series of an NWB file; see :func:`skvarae.read_movie`."""
    pynwb = optional_import("pynwb", "nwb")
    with open(path, "rb") as handle:  # a clear message before pynwb's for non-HDF5 files
        if handle.read(8) != HDF5_SIGNATURE:
            raise ValueError(
                f"Could not read {path!r} as an NWB file: it is not an HDF5 file (NWB files "
                "are HDF5; only HDF5-backed NWB files are read)."
            )
    try:
        nwb_io = pynwb.NWBHDF5IO(path, mode="r")
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as exc:
        raise ValueError(f"Could not open {path!r} as an NWB file: {exc}") from exc
    try:
        try:
            nwbfile = nwb_io.read()
        except Exception as exc:
            raise ValueError(
                f"Could not read {path!r} as an NWB file (truncated or corrupt?): {exc}"
            ) from exc
        image_series = pynwb.image.ImageSeries
        acquisition = dict(nwbfile.acquisition)
        movies = {name: obj for name, obj in acquisition.items() if isinstance(obj, image_series)}
        if series is None:
            if not movies:
                others = ", ".join(f"{n!r} ({type(o).__name__})" for n, o in acquisition.items())
                raise ValueError(
                    f"{path!r} holds no ImageSeries (TwoPhotonSeries, OnePhotonSeries, ...) in "
                    "its acquisition" + (f"; it holds {others}." if others else ".")
                )
            if len(movies) > 1:
                listing = ", ".join(
                    f"{n!r} ({type(o).__name__}, shape {_series_shape(o)})"
                    for n, o in movies.items()
                )
                raise ValueError(
                    f"{path!r} holds several image series in its acquisition: {listing}; "
                    "choose one with series='name'."
                )
            name = next(iter(movies))
        else:
            if not isinstance(series, str):
                raise TypeError(f"series must be a str (a series name), got {series!r}.")
            name = series
            if name not in movies:
                listing = ", ".join(repr(n) for n in movies) or "none"
                raise ValueError(
                    f"{path!r} has no image series named {name!r} in its acquisition; its "
                    f"image series: {listing}."
                )
        found = movies[name]
        external = getattr(found, "external_file", None)
        if external is not None and len(external) > 0:
            files = ", ".join(repr(str(f)) for f in external[:5])
            raise ValueError(
                f"The image series {name!r} of {path!r} stores its frames in external files "
                f"({files}); read those files directly."
            )
        data = found.data
        h5py = importlib.import_module("h5py")
        if not isinstance(data, h5py.Dataset):
            raise ValueError(
                f"The image series {name!r} of {path!r} holds no HDF5 dataset of frames "
                f"(got {type(data).__name__})."
            )
        shape = tuple(data.shape)
        if len(shape) != 3:
            raise ValueError(
                f"The image series {name!r} of {path!r} has data of shape {shape} "
                f"({len(shape)}-D); expected 3-D (frames, x, y): one plane, one channel."
            )
        _check_movie_dtype(data.dtype, path, f"The image series {name!r}")
        dataset_name = data.name
    finally:
        nwb_io.close()
    # pynwb found the series; its frames are read through h5py alone, so that a lazy movie
    # holds one h5py file (closed with it, or when it is garbage-collected) rather than an
    # open NWBHDF5IO, which must be closed explicitly.
    h5file = _open_h5(path)
    try:
        data = h5file[dataset_name]
        # NWB stores (frames, x, y) = (frames, width, height); skvarae's runs are
        # (frames, height, width). As roiextractors' NwbImagingExtractor (get_series:
        # data.transpose([0, 2, 1])), swap the two spatial axes.
        return _movie_from_dataset(
            path, h5file, data, (0, 2, 1), {}, mmap, {"series": name}, (h5file,)
        )
    except BaseException:
        h5file.close()
        raise


def _series_shape(series):
    try:
        return tuple(series.data.shape)
    except Exception:  # noqa: BLE001
        return "?"


# --------------------------------------------------------------------------------------
# suite2p
# --------------------------------------------------------------------------------------


def _numpy_core():
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    return multiarray, numeric


def _allowed_globals():
    import builtins
    import codecs
    import collections
    import pathlib

    multiarray, numeric = _numpy_core()
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = numeric._frombuffer  # protocol 5 arrays
    for module in ("builtins", "__builtin__"):
        for name in ("set", "frozenset", "complex", "slice", "range"):
            allowed[(module, name)] = getattr(builtins, name)
    for module in ("pathlib", "pathlib._local"):
        for name in ("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath",
                     "PureWindowsPath"):
            allowed[(module, name)] = getattr(pathlib, name)
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers, strings, numbers and numpy arrays; nothing else."""

    def find_class(self, module, name):
        allowed = _allowed_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module == "numpy.dtypes" and name.endswith("DType"):  # numpy 2 dtype classes
            return getattr(np.dtypes, name)
        raise pickle.UnpicklingError(
            f"refused to load the global {module}.{name}: only plain containers, numbers, "
            "strings and numpy arrays are allowed"
        )


def _read_npy_header(handle):
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(handle)
    return np.lib.format._read_array_header(handle, version)  # (3, 0): utf-8 field names


def load_ops(path):
    """Read suite2p's ``ops.npy`` (a pickled dict) without executing code.

    Parameters
    ----------
    path : str
        The ``ops.npy`` file.

    Returns
    -------
    ops : dict

    Raises
    ------
    ValueError
        If the file is not a ``.npy`` file holding a pickled dict of plain values, or its
        pickle refers to anything but containers, numbers, strings and numpy arrays.
    """
    try:
        with open(path, "rb") as handle:
            shape, _, dtype = _read_npy_header(handle)
            if dtype != np.dtype(object):
                raise ValueError(f"it holds a {dtype} array of shape {shape}, not a pickled dict")
            payload = handle.read()
        value = _RestrictedUnpickler(io.BytesIO(payload)).load()
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as exc:
        raise ValueError(
            f"Could not read {path!r} as suite2p's ops.npy (a saved dict of settings): {exc}"
        ) from exc
    if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(()).item()
    if not isinstance(value, dict):
        raise ValueError(
            f"{path!r} holds a {type(value).__name__}, not suite2p's ops dict."
        )
    return value


def suite2p_folder(path):
    """The suite2p plane folder that ``path`` names, or None if it is not suite2p output.

    ``path`` is a plane folder (holding ``ops.npy`` or ``data.bin``), a ``.bin`` file in
    one, or a ``suite2p`` folder holding plane folders (used if there is exactly one).
    """
    if os.path.isfile(path):
        if not path.lower().endswith(".bin"):
            return None
        return os.path.dirname(path) or "."
    if not os.path.isdir(path):
        return None
    names = set(os.listdir(path))
    if "ops.npy" in names or "data.bin" in names:
        return path
    planes = sorted(
        (n for n in names if re.fullmatch(r"plane\d+", n)
         and os.path.isfile(os.path.join(path, n, "ops.npy"))),
        key=lambda n: int(n[5:]),
    )
    if len(planes) > 1:
        raise ValueError(
            f"{path!r} holds suite2p output of {len(planes)} planes ({', '.join(planes)}); "
            "a run is one plane: pass one plane folder, e.g. "
            f"{os.path.join(path, planes[0])!r}."
        )
    return os.path.join(path, planes[0]) if planes else None


def _positive_int(ops, key, ops_path):
    value = ops.get(key)
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"{ops_path!r} must give {key!r} as a positive integer, got {value!r}; expected "
            "suite2p's ops with Ly, Lx (frame height and width) and nframes."
        )
    return int(value)


def read_suite2p(path, *, mmap=True):
    """Read suite2p's registered binary; see :func:`skvarae.read_movie`."""
    folder = suite2p_folder(path)
    binary = path if os.path.isfile(path) else os.path.join(folder, "data.bin")
    ops_path = os.path.join(folder, "ops.npy")
    if not os.path.isfile(ops_path):
        raise FileNotFoundError(
            f"suite2p output {path!r} has no ops.npy: expected {ops_path!r}, which gives the "
            "frame shape (Ly, Lx) and the number of frames of data.bin."
        )
    if not os.path.isfile(binary):
        raise FileNotFoundError(
            f"suite2p folder {folder!r} has no registered binary: expected {binary!r} "
            "(suite2p writes it with ops['keep_movie_raw'] or by default as data.bin)."
        )
    ops = load_ops(ops_path)
    height = _positive_int(ops, "Ly", ops_path)
    width = _positive_int(ops, "Lx", ops_path)
    frame_bytes = height * width * 2
    size = os.path.getsize(binary)
    if "nframes" in ops:
        n_frames = _positive_int(ops, "nframes", ops_path)
    elif size % frame_bytes == 0 and size > 0:
        n_frames = size // frame_bytes
    else:
        n_frames = None
    if n_frames is None or size != n_frames * frame_bytes:
        expected = (
            f"Ly*Lx*nframes*2 = {height}*{width}*{n_frames}*2 = {n_frames * frame_bytes} bytes"
            if n_frames is not None
            else f"a positive multiple of Ly*Lx*2 = {frame_bytes} bytes"
        )
        raise ValueError(
            f"{binary!r} holds {size} bytes but {ops_path!r} implies {expected} (int16 "
            "frames of Ly x Lx pixels): the binary is truncated or does not belong to these ops."
        )
    shape = (n_frames, height, width)
    if not mmap:
        return np.fromfile(binary, dtype="<i2").reshape(shape)
    return np.memmap(binary, dtype="<i2", mode="r", shape=shape)
