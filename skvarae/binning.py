"""Spatial binning of frames: block means, their nearest-neighbour inverse, and a lazy binned run.

Large frames (512 x 512 two-photon movies) cost memory and time in every part of the model in
proportion to their pixels, and a cell body spans many more pixels than the model needs to tell
it from its neighbours. Binning by a factor f replaces each f x f block of pixels by its mean::

    binned[t, i, j] = mean(x_t[f i : f (i + 1), f j : f (j + 1)])

so a (height, width) frame becomes (ceil(height / f), ceil(width / f)). Means, not sums: the
binned frames stay in the units of the movie (a mean frame, a running baseline or a scale
computed on them is in the same units as on the input). When a side is not a multiple of f,
the last block of that side is partial and is averaged over the pixels it holds: no pixel is
dropped (cropping to a multiple of f would lose the edge of the field of view).

Binning is linear and acts on each frame alone, so it commutes with the model's other linear
steps per pixel (the mean frame, the running baseline of :mod:`skvarae.baseline`) up to
rounding. Going back, :func:`upsample_frames` gives each pixel the value of its block (nearest
neighbour): ``upsample_frames(bin_frames(x, f), f, x.shape[-2:])`` is ``x`` when ``x`` is
constant on the blocks (exactly for integer and float32 frames, whose block sums are exact in
float64; within rounding for float64 frames), and its block means otherwise.

:class:`BinnedMovie` is the binned view of a run, computed lazily: slicing it reads only the
frames asked for, so memory-mapped and file-backed movies (:class:`skvarae.io.LazyMovie`) stay
on disk, and it can itself be wrapped (e.g. by :class:`skvarae.baseline.RunningDeviation`).
"""

import math

import numpy as np

from ._validation import check_integer

__all__ = ["BinnedMovie", "bin_frames", "binned_shape", "upsample_frames"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check_dtype(dtype, caller_name):
    dtype = np.dtype(dtype)
    if dtype not in _DTYPES:
        raise ValueError(f"{caller_name}: dtype must be float32 or float64, got {dtype}.")
    return dtype


def _check_factor(factor, caller_name):
    return check_integer(factor, "factor", min_val=1, caller_name=caller_name)


def binned_shape(frame_shape, factor):
    """Shape of a frame after binning: ``(ceil(height / factor), ceil(width / factor))``.

    Parameters
    ----------
    frame_shape : tuple of int
        ``(height, width)`` of the input frames.
    factor : int
        Side of the blocks (at least 1).

    Returns
    -------
    shape : tuple of int
        ``(ceil(height / factor), ceil(width / factor))``.

    Examples
    --------
    >>> binned_shape((512, 512), 2), binned_shape((10, 15), 4)
    ((256, 256), (3, 4))
    """
    factor = _check_factor(factor, "binned_shape")
    return tuple(math.ceil(int(side) / factor) for side in frame_shape)


def bin_frames(frames, factor, *, dtype=np.float32):
    """Block means of frames: each ``factor x factor`` block of pixels becomes one pixel.

    Parameters
    ----------
    frames : array-like of shape (..., height, width)
        Frames in any numeric dtype, e.g. a run (n_frames, height, width) or one frame.
        Read, never modified.
    factor : int
        Side of the blocks (at least 1; 1 returns a copy of ``frames`` in ``dtype``).
    dtype : {np.float32, np.float64}, default=np.float32
        Dtype of the result. Sums are accumulated in float64 whatever it is.

    Returns
    -------
    binned : ndarray of shape (..., ceil(height / factor), ceil(width / factor))
        ``binned[..., i, j]`` is the mean of ``frames[..., f*i : f*(i+1), f*j : f*(j+1)]``;
        the partial blocks at the bottom and right edges are averaged over the pixels they
        hold.

    Raises
    ------
    ValueError
        If ``factor`` is not an integer of at least 1 (an ``InvalidParameterError``), if
        ``frames`` has fewer than 2 dimensions or an empty side, or ``dtype`` is not a float
        dtype listed above.

    See Also
    --------
    upsample_frames : Back to the input resolution, each pixel taking its block's value.
    BinnedMovie : The same, lazily, for a whole run.

    Examples
    --------
    >>> import numpy as np
    >>> frames = np.arange(15, dtype=np.uint16).reshape(1, 3, 5)
    >>> bin_frames(frames, 2)
    array([[[ 3. ,  5. ,  6.5],
            [10.5, 12.5, 14. ]]], dtype=float32)
    """
    factor = _check_factor(factor, "bin_frames")
    dtype = _check_dtype(dtype, "bin_frames")
    frames = np.asarray(frames)
    if frames.ndim < 2 or 0 in frames.shape[-2:]:
        raise ValueError(
            f"bin_frames needs frames of shape (..., height, width) with non-empty sides, got "
            f"shape {frames.shape}."
        )
    if factor == 1:
        return np.array(frames, dtype=dtype)
    height, width = frames.shape[-2:]
    rows, cols = np.arange(0, height, factor), np.arange(0, width, factor)
    sums = np.add.reduceat(frames, rows, axis=-2, dtype=np.float64)
    sums = np.add.reduceat(sums, cols, axis=-1)
    counts = np.outer(np.diff(rows, append=height), np.diff(cols, append=width))
    return (sums / counts).astype(dtype, copy=False)


def upsample_frames(frames, factor, shape):
    """Nearest-neighbour inverse of :func:`bin_frames`: each pixel takes its block's value.

    Parameters
    ----------
    frames : array-like of shape (..., h, w)
        Binned frames (or maps), ``(h, w) = binned_shape(shape, factor)``.
    factor : int
        Side of the blocks the frames were binned by (at least 1).
    shape : tuple of int
        ``(height, width)`` of the frames before binning; the upsampled frames are cropped to
        it (the partial edge blocks).

    Returns
    -------
    upsampled : ndarray of shape (..., height, width)
        ``upsampled[..., y, x] = frames[..., y // factor, x // factor]``, in the dtype of
        ``frames`` (a new array).

    Raises
    ------
    ValueError
        If ``factor`` is not an integer of at least 1, or the frames are not of the binned
        shape of ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> upsample_frames(np.array([[[1, 2], [3, 4]]]), 2, (3, 3))
    array([[[1, 1, 2],
            [1, 1, 2],
            [3, 3, 4]]])
    """
    factor = _check_factor(factor, "upsample_frames")
    frames = np.asarray(frames)
    shape = tuple(int(side) for side in shape)
    expected = binned_shape(shape, factor) if len(shape) == 2 else None
    if frames.ndim < 2 or tuple(frames.shape[-2:]) != expected:
        raise ValueError(
            f"upsample_frames: frames of shape {frames.shape} are not frames of shape {shape} "
            f"binned by factor={factor} (expected (..., {expected}))."
        )
    rows, cols = np.arange(shape[0]) // factor, np.arange(shape[1]) // factor
    return frames[..., rows, :][..., cols]


class BinnedMovie:
    """A run binned by ``factor x factor`` blocks, computed lazily frame by frame.

    Parameters
    ----------
    run : array-like of shape (n_frames, height, width)
        One run (any numeric dtype; ndarray, memory map, :class:`skvarae.io.LazyMovie` or any
        object sliced along its frames). It is read, never modified.
    factor : int
        Side of the blocks (at least 1). See :func:`bin_frames` for the partial edge blocks.
    dtype : {np.float32, np.float64}, default=np.float32
        Dtype of the frames returned.

    Attributes
    ----------
    run : array-like
        The run binned.
    factor : int
        Side of the blocks.
    shape : tuple of int
        ``(n_frames, ceil(height / factor), ceil(width / factor))``.
    dtype : numpy.dtype
        Dtype of the frames returned.

    Notes
    -----
    ``movie[key]`` accepts an integer or a slice for the frames, optionally followed by indices
    of the binned rows and columns: ``movie[start:stop]`` reads ``run[start:stop]`` only and
    returns ``bin_frames(run[start:stop], factor)``. ``np.asarray(movie)`` bins every frame.

    Examples
    --------
    >>> import numpy as np
    >>> run = np.arange(4 * 4 * 6).reshape(4, 4, 6)
    >>> movie = BinnedMovie(run, 2)
    >>> movie.shape, movie[1:3].shape, movie[-1, 0]
    ((4, 2, 3), (2, 2, 3), array([75.5, 77.5, 79.5], dtype=float32))
    """

    ndim = 3

    def __init__(self, run, factor, *, dtype=np.float32):
        self.run = run
        self.factor = _check_factor(factor, "BinnedMovie")
        self.dtype = _check_dtype(dtype, "BinnedMovie")
        if len(run.shape) != 3:
            raise ValueError(
                f"BinnedMovie needs a run of shape (n_frames, height, width), got shape "
                f"{tuple(run.shape)}."
            )
        n_frames, height, width = (int(s) for s in run.shape)
        self.shape = (n_frames, *binned_shape((height, width), self.factor))

    def __len__(self):
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        frames = self[:]
        return frames if dtype is None else frames.astype(dtype)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            first, rest = key[0], key[1:]
        else:
            first, rest = key, ()
        if isinstance(first, (int, np.integer)) and not isinstance(first, (bool, np.bool_)):
            index = int(first) + (self.shape[0] if first < 0 else 0)
            if not 0 <= index < self.shape[0]:
                raise IndexError(f"frame {first} is out of range for {self.shape[0]} frames.")
            return self[(slice(index, index + 1), *rest)][0]
        if not isinstance(first, slice):
            raise TypeError("BinnedMovie supports integer and slice indexing of frames.")
        frames = bin_frames(self.run[first], self.factor, dtype=self.dtype)
        return frames[(slice(None), *rest)]
