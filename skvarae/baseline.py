"""Running baselines of calcium-imaging runs: the slow part of every pixel, removed causally.

Real recordings drift: the indicator bleaches, the focal plane and the neuropil change slowly, and
the brightness of a pixel at the end of a run is often far from its mean over the training movie.
A model that subtracts one fixed mean frame (the paper's skip connection) must then spend its
latents, or its forecast error, on that drift. Calcium-imaging pipelines remove it with a running
baseline F0 (suite2p's ``baseline``, CaImAn's running percentile) before anything else; this
module does the same, causally, so that forecasts never look ahead.

The baseline of run x_0, ..., x_{n-1} (each frame a (height, width) image) is an exponential
moving average with time constant τ (``time_constant``, in frames)::

    b_{-1} = mean(x_0, ..., x_{m-1}),    m = min(τ, max(1, n // 2))
    b_t    = (1 - 1/τ) b_{t-1} + (1/τ) x_t

and the *dynamic part* of frame t is its deviation from the baseline *before* it,
``x_t - b_{t-1}``: it depends on frames up to t only (and, for the first frames, on the first
m ≤ n/2 frames through b_{-1}, which never reach the last half of a run, so the last quarter that
:meth:`SparseVARAutoencoder.score` holds out is never seen). A one-step forecast of frame t is
``b_{t-1}`` plus the forecast of its dynamic part.

:class:`RunningDeviation` exposes the dynamic part of a run as a read-only, lazily computed
array: slicing it reads only the frames it needs (plus at most ``checkpoint`` frames before them),
so memory-mapped movies larger than memory stream as before.
"""

import numpy as np
from scipy.signal import lfilter

from ._validation import check_integer

__all__ = ["RunningDeviation", "initial_baseline"]

#: Frames per chunk when running the filter over a run.
_CHUNK_PIXELS = 2**22


def _frames_per_chunk(frame_shape):
    return max(1, _CHUNK_PIXELS // int(np.prod(frame_shape)))


def initial_baseline(run, time_constant):
    """Baseline before the first frame: the mean of the first ``min(τ, max(1, n // 2))`` frames.

    Parameters
    ----------
    run : array-like of shape (n_frames, height, width)
        One run (any numeric dtype, possibly memory-mapped).
    time_constant : int
        τ, in frames.

    Returns
    -------
    baseline : ndarray of shape (height, width)
        float64.
    """
    n_first = min(int(time_constant), max(1, len(run) // 2))
    return np.asarray(run[:n_first], dtype=np.float64).mean(axis=0)


class RunningDeviation:
    """The dynamic part ``x_t - b_{t-1}`` of a run, computed lazily (see the module docstring).

    Parameters
    ----------
    run : array-like of shape (n_frames, height, width)
        One validated run (any numeric dtype; ndarray, memory map or lazy file-backed movie).
        It is read, never modified.
    time_constant : int
        τ of the exponential moving average, in frames (at least 1; 1 makes the baseline the
        previous frame).
    checkpoint : int, default=256
        The baseline is stored every ``checkpoint`` frames (one pass over the run at
        construction), so a slice recomputes at most ``checkpoint`` extra frames.

    Attributes
    ----------
    shape : tuple of int
        Same as the run's.
    dtype : numpy.dtype
        float32.

    Examples
    --------
    >>> import numpy as np
    >>> run = np.ones((6, 2, 2)) * np.arange(6)[:, None, None]
    >>> deviation = RunningDeviation(run, time_constant=1)   # baseline = previous frame
    >>> deviation[2:4, 0, 0]
    array([1., 1.], dtype=float32)
    """

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, run, time_constant, *, checkpoint=256):
        self.run = run
        self.time_constant = check_integer(time_constant, "time_constant", min_val=1)
        self.checkpoint = check_integer(checkpoint, "checkpoint", min_val=1)
        self.shape = tuple(int(s) for s in run.shape)
        self._rate = 1.0 / self.time_constant
        # Baselines b_{s-1} before frames s = 0, checkpoint, 2 checkpoint, ...
        state = initial_baseline(run, self.time_constant)
        self._states = [state]
        chunk = max(1, min(self.checkpoint, _frames_per_chunk(self.shape[1:])))
        for start in range(0, len(run), self.checkpoint):
            stop = min(start + self.checkpoint, len(run))
            for first in range(start, stop, chunk):
                _, state = self._filter(run[first : min(first + chunk, stop)], state)
            self._states.append(state)
        # (frame, baseline before it) where the last block read ended: reading the run in
        # consecutive blocks (as streaming does) continues from there instead of refiltering
        # from the last checkpoint. One tuple, replaced at once (safe to share across threads).
        self._cursor = (0, self._states[0])

    def __len__(self):
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        frames = self[:]
        return frames if dtype is None else frames.astype(dtype)

    def _filter(self, frames, state):
        """Baselines before each of ``frames`` from the baseline before the first, and the last."""
        frames = np.asarray(frames, dtype=np.float64)
        if len(frames) == 0:
            return frames, state
        keep = 1.0 - self._rate
        # y_t = keep * y_{t-1} + rate * x_t along the frames, starting from y_{-1} = state.
        after, _ = lfilter([self._rate], [1.0, -keep], frames, axis=0, zi=(keep * state)[None])
        before = np.concatenate([state[None], after[:-1]])
        # A copy: a view would keep the whole block alive with every checkpoint stored.
        return before, after[-1].copy()

    def block(self, start, stop):
        """Frames ``start:stop`` of the run and the baselines before each of them.

        Parameters
        ----------
        start, stop : int
            ``0 <= start <= stop <= n_frames``.

        Returns
        -------
        frames : ndarray of shape (stop - start, height, width)
            float64 frames x_t.
        baselines : ndarray of shape (stop - start, height, width)
            float64 b_{t-1} for each t.
        """
        cursor_frame, state = self._cursor
        if cursor_frame != start:
            first = (start // self.checkpoint) * self.checkpoint
            state = self._states[start // self.checkpoint]
            if first < start:
                _, state = self._filter(self.run[first:start], state)
        frames = np.asarray(self.run[start:stop], dtype=np.float64)
        baselines, end_state = self._filter(frames, state)
        self._cursor = (stop, end_state)
        return frames, baselines

    def __getitem__(self, key):
        if isinstance(key, tuple):
            first, rest = key[0], key[1:]
        else:
            first, rest = key, ()
        if isinstance(first, (int, np.integer)):
            index = int(first) + (self.shape[0] if first < 0 else 0)
            if not 0 <= index < self.shape[0]:
                raise IndexError(f"frame {first} is out of range for {self.shape[0]} frames.")
            return self[(slice(index, index + 1), *rest)][0]
        if not isinstance(first, slice):
            raise TypeError("RunningDeviation supports integer and slice indexing of frames.")
        start, stop, step = first.indices(self.shape[0])
        if step != 1:
            return self[start:stop][::step][(slice(None), *rest)]
        stop = max(start, stop)
        frames, baselines = self.block(start, stop)
        return (frames - baselines).astype(np.float32)[(slice(None), *rest)]
