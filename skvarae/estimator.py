"""`SparseVARAutoencoder`: the scikit-learn estimator. Validation, data contract, orchestration.

The maths lives elsewhere: the network in :mod:`skvarae.network`, the sparse VAR in
:mod:`skvarae.var` (on :mod:`skvarae.lars`), the optimisation loop in :mod:`skvarae.training`.
"""

import copy
import functools
import os
import platform
import warnings

import numpy as np
import sklearn
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.decomposition import PCA

from . import contribution, stats
from ._validation import (
    N_JOBS,
    RANDOM_STATE,
    Integer,
    Real,
    StrOptions,
    check_fitted_resolution,
    check_model_runs,
    check_random_state,
    resolve_device,
    validate_params,
)
from .baseline import RunningDeviation
from .binning import BinnedMovie, bin_frames, binned_shape, upsample_frames
from .io import check_runs, iter_frame_batches
from .latent_grid import max_latent_side_for_cells
from .network import ConvDecoder, ConvEncoder
from .training import (
    HeldOutTails,
    Windows,
    activation_bytes,
    end_to_end_loss,
    largest_step,
    plan_frames_per_chunk,
    train,
    two_stage_loss,
)
from .var import fit_var, forecast_var

__all__ = ["SparseVARAutoencoder", "FITTED_ATTRIBUTES", "held_out_split"]

#: Pixels (frames x height x width) per chunk when streaming frames without gradients (mean
#: frame, encoding, decoding): 16 MiB of float32 input, whatever the frame size.
_CHUNK_PIXELS = 2**22
#: Version of the file written by ``save``. 2 added ``offset_``; files of format 1 still load.
_SAVE_FORMAT = 2
_READABLE_FORMATS = (1, 2)

#: Every fitted attribute, listed once: ``fit`` computes all of them before assigning any,
#: ``save`` writes them, ``load`` reads them back (or refuses the file), and the estimator counts
#: as fitted only when it has all of them. Each name maps to how it is stored in a model file.
FITTED_ATTRIBUTES = {
    "encoder_": "module",
    "decoder_": "module",
    "device_": "str",
    "frame_shape_": "shape",
    "n_features_in_": "int",
    "mean_frame_": "array",
    "offset_": "array",
    "scale_": "float",
    "latent_shape_": "shape",
    "history_": "history",
    "n_iter_": "int",
    "best_epoch_": "int",
    "coef_": "array",
    "intercept_": "array",
    "contribution_maps_": "array",
}
#: Parameters added after the first release of the file format, and the values that reproduce
#: the model of files and pickles written before them: the real-data defaults (their networks
#: have no linear path), spatial binning, the latent grid that follows the cells, and the
#: subsampled reconstruction term (they were trained on every frame's reconstruction).
_PARAMS_OF_OLDER_FILES = dict(
    baseline="mean", linear_path=False, validation_fraction=0.0, spatial_bin=1, cell_radius=None,
    reconstruction_subsample=1.0,
)
_MODULES = tuple(name for name, kind in FITTED_ATTRIBUTES.items() if kind == "module")


def _frames_per_chunk(frame_shape):
    """Frames per chunk of streamed inference, about ``_CHUNK_PIXELS`` pixels (at least 1)."""
    return max(1, _CHUNK_PIXELS // int(np.prod(frame_shape)))


def _offset(mean_frame, skip_connection):
    """What the network's input is measured from: the mean frame, or its global mean."""
    if skip_connection:
        return mean_frame
    return np.full_like(mean_frame, mean_frame.mean())


@validate_params({"n_frames": [Integer(1, None)]}, prefer_skip_nested_validation=True)
def held_out_split(n_frames):
    """How :meth:`SparseVARAutoencoder.score` splits a run: frames to fit on, frames to forecast.

    The last quarter of the frames (at least 2) is held out; the VAR is fitted on the rest.

    Parameters
    ----------
    n_frames : int
        Frames of the run.

    Returns
    -------
    n_fit, n_test : int
        ``run[:n_fit]`` fits the VAR; ``run[n_fit:]`` (``n_test`` frames) is forecast.

    Examples
    --------
    >>> held_out_split(100)
    (75, 25)
    """
    n_test = max(2, int(n_frames) // 4)
    return int(n_frames) - n_test, n_test


#: Values (frames x pixels) of the frame sample that initialises the linear path: 128 MiB of
#: float32 at most, e.g. every frame of 8 runs of 200 frames of 64 x 64, 128 frames of 512 x 512.
_PCA_SAMPLE_VALUES = 2**25


def _pca_sample(sequences, n_components):
    """Evenly spaced sample of the standardised training frames, (n_frames, H * W), float32.

    Every frame when they fit in ``_PCA_SAMPLE_VALUES`` values, and at least ``2 * n_components``
    frames.
    """
    n_pixels = int(np.prod(sequences.runs[0].shape[1:]))
    n_frames = sum(sequences.lengths)
    budget = max(2 * n_components, _PCA_SAMPLE_VALUES // n_pixels)
    stride = max(1, -(-n_frames // budget))
    return np.concatenate(
        [sequences[i][::stride].reshape(-1, n_pixels).numpy() for i in range(len(sequences))]
    )


def _pca_components(sample, n_components, seed):
    """First ``n_components`` principal directions of ``sample``; zero rows beyond its rank."""
    n_fitted = min(n_components, *sample.shape)
    components = np.zeros((n_components, sample.shape[1]), dtype=np.float32)
    if n_fitted == 0:
        return components
    pca = PCA(
        n_fitted,
        svd_solver="full" if min(sample.shape) <= 500 else "randomized",
        random_state=seed,
    )
    components[:n_fitted] = pca.fit(sample).components_
    return components


def _principal_components(sequences, n_components, rng):
    """First principal directions of the standardised training frames, (n_components, H * W).

    Fitted on an evenly spaced sample of the training frames (all of them when they fit in
    ``_PCA_SAMPLE_VALUES`` values) by scikit-learn's PCA (randomized for large samples). When
    there are fewer frames (or pixels) than components, the remaining rows are zero.
    """
    sample = _pca_sample(sequences, n_components)
    return _pca_components(sample, n_components, rng.randint(np.iinfo(np.int32).max))


def _tile_principal_components(sequences, latent_shape, tile, rng):
    """Per-tile principal directions: the local linear path's start, (*latent_shape, tile, tile).

    ``components[:, i, j]`` holds the first ``channels`` principal directions of the pixels of
    tile (i, j) (rows ``i * tile`` to ``(i + 1) * tile``, columns likewise, clipped to the
    frame), fitted on the same frame sample as :func:`_principal_components`; entries beyond the
    frame, and rows beyond the rank of a tile's sample, are zero.
    """
    channels, h, w = latent_shape
    frame_shape = tuple(sequences.runs[0].shape[1:])
    sample = _pca_sample(sequences, channels * h * w).reshape(-1, *frame_shape)
    seed = rng.randint(np.iinfo(np.int32).max)
    components = np.zeros((channels, h, w, tile, tile), dtype=np.float32)
    for i in range(h):
        for j in range(w):
            block = sample[:, i * tile:(i + 1) * tile, j * tile:(j + 1) * tile]
            rows, cols = block.shape[1:]
            local = _pca_components(block.reshape(len(block), -1), channels, seed)
            components[:, i, j, :rows, :cols] = local.reshape(channels, rows, cols)
    return components


def _same_shape_or_list(arrays):
    """Stack arrays of one shape into one array, else return the list."""
    if len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    return arrays


class SparseVARAutoencoder(TransformerMixin, BaseEstimator):
    """Convolutional autoencoder with a sparse VAR fitted by LARS-lasso in every forward pass.

    Frames x_t of each run are modelled as ``mean_frame_ + scale_ * f_dec(ẑ_t)``, where
    ``z_t = f_enc((x_t - mean_frame_) / scale_)`` is a small latent (the flattened latent map of
    shape ``latent_shape_``) and ``ẑ_t = c + A_1 z_{t-1} + ... + A_p z_{t-p}`` is its one-step
    forecast by a sparse VAR(p). The VAR is fitted from scratch per sequence by LARS-lasso on
    latents centred and divided by one RMS scalar (so ``alpha`` does not depend on their scale),
    and end-to-end training backpropagates through that fit.

    Parameters
    ----------
    alpha : float, default=0.01
        ℓ1 penalty of the VAR fit (scikit-learn's ``LassoLars`` objective on standardised
        latents). Larger values give sparser ``coef_``.
    lags : int, default=1
        VAR order p.
    latent_channels : int, default=2
        Channels of the latent map; the latent dimension is
        ``d = latent_channels * h * w``.
    max_latent_side : int, default=4
        The encoder downsamples by 2 until both sides of the latent map are at most this.
        Unused when ``cell_radius`` is set.
    cell_radius : float or None, default=None
        Typical soma radius in pixels of the input frames. When set, the latent grid follows
        the cells instead of ``max_latent_side``: each latent position covers a tile of the
        cell diameter rounded up to a power of two
        (:func:`skvarae.latent_grid.max_latent_side_for_cells`, on the binned frames with
        ``spatial_bin``), e.g. a 5 x 5 grid of 8-pixel tiles for 40 x 40 frames and radius 3.
        Tiles of one cell let contribution maps tell a cell from its neighbour (``d`` grows
        with the frame: 2 x 16 x 16 = 512 latents at 128 x 128 with radius 4). ``None``: the
        grid is set by ``max_latent_side``.
    base_channels : int, default=8
        Channels of the first convolution (doubling per layer, at most 64).
    training : {"end_to_end", "two_stage"}, default="end_to_end"
        ``"end_to_end"``: the loss includes the forecast through the per-sequence VAR fit and
        gradients flow through LARS. ``"two_stage"``: train a plain autoencoder, then fit the VAR.
    skip_connection : bool, default=True
        Subtract the static part of each frame before encoding and add it back after decoding
        (what is subtracted is set by ``baseline``). With ``False`` the network sees the raw
        frame (minus its global scalar mean) and must reproduce it; ``baseline`` is then unused.
    baseline : {"running", "mean"}, default="running"
        The static part bypassed by the skip connection. ``"running"``: a causal running
        baseline per pixel, an exponential moving average of the run's past frames with time
        constant ``baseline_time_constant`` (:mod:`skvarae.baseline`): the network models each
        frame's deviation from the baseline before it, and forecasts add that baseline back.
        It follows bleaching and slow drift, as the F0 of suite2p and CaImAn does. ``"mean"``:
        the mean frame of the training movie, as in the paper. On a real two-photon movie the
        running baseline doubles the held-out forecast R² of every model (see the changelog).
    baseline_time_constant : int, default=50
        τ of the running baseline, in frames: slower changes than this go to the baseline,
        faster ones to the network and the VAR. Choose it above the decay time of the
        indicator's transients (e.g. 50 frames = 1.7 s at 30 Hz; GCaMP6s decays in ~1 s).
    spatial_bin : int, default=1
        Average frames over ``spatial_bin x spatial_bin`` blocks of pixels
        (:mod:`skvarae.binning`; partial blocks at the edges are averaged over the pixels they
        hold) before anything else the model does: running baseline, scaling, network and VAR
        work on frames of ``ceil(height / spatial_bin) x ceil(width / spatial_bin)`` pixels.
        The network's memory and time (training steps, encoding, decoding) fall by about
        ``spatial_bin ** 2``; reading the frames and the static part stay at full resolution
        (fitting 2 runs of 64 frames of 128 x 128: 3 times faster with 2, 4 times with 4).
        Inputs and outputs stay at the input resolution: :meth:`predict`, :meth:`decode`,
        :meth:`score`, ``mean_frame_`` and the contribution maps are (height, width), the
        dynamic part upsampled (each pixel takes its block's value) and the static part (the
        mean frame or the running baseline) at full resolution. Rule of thumb: keep a cell
        body at least 3-4 binned pixels across, ``spatial_bin ≈ cell diameter in pixels / 4``
        (e.g. 2 for 12-pixel somata in 512 x 512 frames). ``1`` does not bin.
    linear_path : {"local", "global"} or bool, default="local"
        Add a linear path to the encoder and the decoder, initialised at principal components
        of the training frames (the convolutional path starts at zero). The model then starts
        as PCA + sparse VAR and training refines it; with ``validation_fraction > 0`` it can
        only keep what improves held-out frames. ``"local"``: latent (c, i, j) reads and writes
        only the pixels of its tile, the block of ``2 ** n_layers`` pixels the encoder
        downsamples to position (i, j) of the latent map, and starts at the first
        ``latent_channels`` principal components of that tile's pixels; the restriction is
        structural (:class:`skvarae.network.TileLinear`), so training cannot make it global.
        Latents stay tied to places, which contribution maps need to tell neighbouring cells
        apart. ``"global"`` (``True``, its meaning before ``"local"`` existed): a dense path
        started at the first ``d`` principal components of whole frames; every latent then
        reads every pixel, and maps cannot localise what drives the dynamics. ``False``: the
        purely convolutional network of the paper.
    forecast_weight, reconstruction_weight : float, default=1.0
        Weights of the forecast and reconstruction mean squared errors in the loss
        (see :mod:`skvarae.training`).
    reconstruction_subsample : float in (0, 1], default=0.25
        End-to-end training: fraction of each window's frames whose reconstruction enters the
        loss at each step, drawn at random (:func:`skvarae.training.subsample_frames`). The
        mean over them is an unbiased estimate of the reconstruction error of the whole window
        (consecutive frames of a calcium movie are much alike), and the decoder, the costliest
        part of a step, decodes a quarter of the frames a second time instead of all of them:
        an end-to-end step costs about 1.2x a two-stage step instead of 1.7x
        (``benchmarks/bench_fit.py``). Every frame is still encoded, fits the VAR and is
        forecast; validation and early stopping use every frame. ``1`` decodes every frame's
        reconstruction (the model before this parameter existed).
    max_epochs : int, default=100
        Maximum number of passes over the training sequences.
    learning_rate : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=4
        Sequences (runs, or windows of runs) per optimisation step. With few runs, smaller
        batches give more steps per epoch. Memory per step is bounded by ``memory_budget``.
    window : int or None, default=64
        Runs longer than this are cut into windows of this many frames (tiling the run, the last
        window aligned to its end); each window gets its own VAR fit during training. ``None``
        trains on whole runs.
    validation_fraction : float in [0, 0.5), default=0.1
        The last fraction of every training run is held out from training and used for early
        stopping: after each epoch (and before the first) the VAR is fitted on the ``window``
        frames before the tail and the tail is forecast one step ahead, as :meth:`score`
        does; the monitored loss is the forecast and reconstruction error there. ``0`` monitors
        the training loss (the tails are then trained on). The final VAR fits, ``coef_`` and
        maps use every frame.
    memory_budget : float or None, default=2.0
        GiB that the activations of one training step may take (CPU memory, or GPU memory on
        CUDA). Without a budget, a step of ``batch_size x window`` frames keeps about 160 bytes
        per pixel of every frame (2.5 GiB for the defaults at 256 x 256, 10 GiB at 512 x 512).
        When that exceeds the budget, the networks run on chunks of frames and recompute their
        activations in the backward pass (activation checkpointing: the same gradients, about
        a third more time per step); the chunk size is the largest that fits. ``fit`` raises
        ``ValueError`` at once, before reading the movie, when even one frame per chunk does
        not fit. ``None``: no limit. The result does not depend on the budget (up to
        floating-point summation order).
    tol : float, default=1e-4
        Minimum decrease of the monitored loss that counts as an improvement.
    n_iter_no_change : int, default=10
        Stop after this many epochs without improvement; the best weights are restored (the
        starting weights, ``best_epoch_ = 0``, when no epoch improved the validation loss).
    device : str or torch.device, default="auto"
        Torch device; ``"auto"`` picks CUDA when available, else the CPU (resolved in ``fit``,
        which raises ``ValueError`` for a device that does not exist or is not available).
    n_jobs : int or None, default=None
        Threads (joblib) for the per-run work after training: encoding, per-run VAR refits,
        forecasts and scores of many runs (``transform``, ``predict``, ``score``, ``encode``).
        ``None`` runs them one after the other; ``-1`` uses all cores (``-2`` all but one);
        ``0`` is refused. Training itself is not parallelised by this; run
        ``GridSearchCV(n_jobs=...)`` for parallel fits.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation and batch shuffling (local generators only). With a
        fixed seed, results on the CPU are identical from run to run.
    verbose : int, default=0
        Show a progress bar with the loss during training.

    Attributes
    ----------
    coef_ : ndarray of shape (n_runs, lags, d, d)
        VAR matrices per training run: ``coef_[r, k - 1][i, j]`` is the effect of latent ``j`` at
        lag ``k`` on latent ``i`` in run ``r`` (statsmodels' order).
    intercept_ : ndarray of shape (n_runs, d)
        VAR constants per training run.
    contribution_maps_ : ndarray of shape (n_runs, height, width)
        Contribution map of each training run (weighted by ``coef_[r]``), computed at the end of
        ``fit``; see :meth:`contribution_map`. At the input resolution (with ``spatial_bin``,
        each pixel holds its block's value).
    latent_shape_ : tuple of int
        ``(channels, h, w)`` of the latent map (of the binned frames with ``spatial_bin``).
    mean_frame_ : ndarray of shape (height, width)
        Mean over all frames of all training runs (the static structure), at the input
        resolution.
    offset_ : ndarray of shape (h_net, w_net)
        What the network's input is measured from: zero with the running baseline (the input is
        already the deviation ``x_t - b_{t-1}``), ``mean_frame_`` with ``baseline="mean"``,
        ``mean_frame_``'s global mean in every pixel without the skip connection. The encoder
        sees ``(input_t - offset_) / scale_`` and :meth:`decode` returns
        ``offset_ + scale_ * f_dec(z)`` (the deviation from the running baseline, in pixel
        units, with ``baseline="running"``). At the network's resolution: ``(h_net, w_net)``
        is ``(height, width)``, or ``(ceil(height / spatial_bin), ceil(width / spatial_bin))``
        with ``spatial_bin``.
    scale_ : float
        Root mean square of the network's input before scaling: the deviations from the running
        baseline, ``x_t - mean_frame_`` with ``baseline="mean"``, or ``x_t`` minus its global
        mean without the skip connection.
    history_ : list of dict
        Per-epoch losses (``loss``, ``reconstruction``, ``forecast``) and durations.
    n_iter_ : int
        Number of epochs run.
    best_epoch_ : int
        The (1-based) epoch whose weights were kept; 0 for the starting weights (the linear
        path's PCA, when no epoch improved the held-out tails).
    device_ : str
        The device the network lives on.
    frame_shape_ : tuple of int
        ``(height, width)`` of the training frames (before ``spatial_bin``): the shape of the
        frames every method takes and returns.
    n_features_in_ : int
        Pixels per frame.
    encoder_, decoder_ : torch.nn.Module
        The trained networks.

    See Also
    --------
    skvarae.fit_var : The sparse VAR fit used inside the model.
    skvarae.lasso_lars : The differentiable LARS-lasso solver.

    Notes
    -----
    Input ``X`` is a sequence of runs: a 4-D array (n_runs, n_frames, height, width), a list of
    3-D arrays (lengths may differ), paths to TIFF / ``.npy`` files, or a 2-D array
    (n_runs, n_frames) of single-pixel runs. One sample is one run, so cross-validation splits
    by run. Outputs are always numpy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae import SparseVARAutoencoder
    >>> movies = np.random.default_rng(0).random((2, 20, 8, 8), dtype=np.float32)
    >>> model = SparseVARAutoencoder(max_epochs=2, random_state=0).fit(movies)
    >>> model.coef_.shape
    (2, 1, 32, 32)
    """

    _parameter_constraints = {
        "alpha": [Real(0, None, closed="left")],
        "lags": [Integer(1, None)],
        "latent_channels": [Integer(1, None)],
        "max_latent_side": [Integer(1, None)],
        "cell_radius": [Real(0, None, closed="neither"), None],
        "base_channels": [Integer(1, None)],
        "training": [StrOptions({"end_to_end", "two_stage"})],
        "skip_connection": ["boolean"],
        "baseline": [StrOptions({"running", "mean"})],
        "baseline_time_constant": [Integer(1, None)],
        "spatial_bin": [Integer(1, None)],
        "linear_path": [StrOptions({"local", "global"}), "boolean"],
        "validation_fraction": [Real(0, 0.5, closed="left")],
        "forecast_weight": [Real(0, None, closed="left")],
        "reconstruction_weight": [Real(0, None, closed="left")],
        "reconstruction_subsample": [Real(0, 1, closed="right")],
        "max_epochs": [Integer(1, None)],
        "learning_rate": [Real(0, None, closed="neither")],
        "batch_size": [Integer(1, None)],
        "window": [Integer(3, None), None],
        "memory_budget": [Real(0, None, closed="neither"), None],
        "tol": [Real(0, None, closed="left")],
        "n_iter_no_change": [Integer(1, None)],
        "device": [str, torch.device],
        "n_jobs": N_JOBS,
        "random_state": RANDOM_STATE,
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        alpha=0.01,
        lags=1,
        latent_channels=2,
        max_latent_side=4,
        cell_radius=None,
        base_channels=8,
        training="end_to_end",
        skip_connection=True,
        baseline="running",
        baseline_time_constant=50,
        spatial_bin=1,
        linear_path="local",
        forecast_weight=1.0,
        reconstruction_weight=1.0,
        reconstruction_subsample=0.25,
        max_epochs=100,
        learning_rate=1e-3,
        batch_size=4,
        window=64,
        validation_fraction=0.1,
        memory_budget=2.0,
        tol=1e-4,
        n_iter_no_change=10,
        device="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.lags = lags
        self.latent_channels = latent_channels
        self.max_latent_side = max_latent_side
        self.cell_radius = cell_radius
        self.base_channels = base_channels
        self.training = training
        self.skip_connection = skip_connection
        self.baseline = baseline
        self.baseline_time_constant = baseline_time_constant
        self.spatial_bin = spatial_bin
        self.linear_path = linear_path
        self.validation_fraction = validation_fraction
        self.forecast_weight = forecast_weight
        self.reconstruction_weight = reconstruction_weight
        self.reconstruction_subsample = reconstruction_subsample
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.window = window
        self.memory_budget = memory_budget
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder and fit one sparse VAR per training run.

        Everything (training, the per-run VAR fits, the contribution maps) is computed before
        any fitted attribute is assigned: if anything fails or is interrupted, the estimator is
        left exactly as it was (unfitted, or with its previous fit).

        Parameters
        ----------
        X : array-like of shape (n_runs, n_frames, height, width), list of runs, or paths
            Training runs (see the class Notes for every accepted form).
        y : None
            Ignored; present so the estimator can sit in a supervised Pipeline.

        Returns
        -------
        self : SparseVARAutoencoder
            The fitted estimator.
        """
        if self.window is not None and self.window < self.lags + 2:
            raise ValueError(f"window={self.window} must be at least lags + 2 = {self.lags + 2}.")
        device = resolve_device(self.device)
        runs = check_runs(X, min_frames=self.lags + 2)
        rng = check_random_state(self.random_state)
        frame_shape = runs[0].shape[1:]
        network_runs = self._binned(runs)  # the runs themselves without spatial_bin
        n_train = [len(run) - int(round(self.validation_fraction * len(run))) for run in runs]

        seed = int(rng.randint(np.iinfo(np.int32).max))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder, decoder = self._build_network(network_runs[0].shape[1:])
        encoder.to(device)
        decoder.to(device)
        frames_per_chunk = self._plan_memory(encoder, decoder, network_runs, n_train, device)

        mean_frame = self._mean_frame(runs)
        network_mean_frame = self._binned_frame(mean_frame)
        offset = self._network_offset(network_mean_frame)
        inputs = self._network_inputs(network_runs)
        scale = self._scale(inputs, offset)
        sequences = Windows(inputs, self.window, offset, scale, n_frames=n_train)
        validation = self._validation(sequences, n_train)
        if encoder.linear_path == "local":
            components = _tile_principal_components(
                sequences, encoder.latent_shape, encoder.tile, rng
            )
        elif encoder.linear_path == "global":
            components = _principal_components(sequences, encoder.n_latent, rng)
        if encoder.linear_path:
            encoder.init_linear_path(components)
            decoder.init_linear_path(components)
        history, best_epoch = train(
            encoder,
            decoder,
            sequences,
            loss=self._loss(frames_per_chunk, seed=int(rng.randint(np.iinfo(np.int32).max))),
            validation=validation,
            max_epochs=self.max_epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            rng=rng,
            device=device,
            verbose=self.verbose,
        )
        state = {
            "encoder_": encoder,
            "decoder_": decoder,
            "device_": str(device),
            "frame_shape_": tuple(int(s) for s in frame_shape),
            "n_features_in_": int(np.prod(frame_shape)),
            "mean_frame_": mean_frame,
            "offset_": offset,
            "scale_": scale,
            "latent_shape_": tuple(int(s) for s in encoder.latent_shape),
            "history_": history,
            "n_iter_": len(history),
            "best_epoch_": best_epoch,
        }
        # The per-run work runs on a candidate holding the new state, never on self.
        candidate = type(self)(**self.get_params(deep=False))
        candidate.__dict__.update(state)
        coefs, intercepts = zip(*candidate._per_run(candidate._fit_run_var, runs))
        state["coef_"] = np.stack(coefs)
        state["intercept_"] = np.stack(intercepts)
        maps = contribution.contribution_maps(
            encoder, inputs, state["coef_"], offset=offset, scale=scale,
            baseline=offset if self._running_baseline() else network_mean_frame,
        )
        state["contribution_maps_"] = self._upsampled(maps, frame_shape)
        self._set_fitted_state(state)
        return self

    def _set_fitted_state(self, state):
        """Assign every fitted attribute at once (``state`` must hold each one)."""
        if set(state) != set(FITTED_ATTRIBUTES):
            mismatch = sorted(set(state) ^ set(FITTED_ATTRIBUTES))
            raise RuntimeError(f"fitted state mismatch: {mismatch}")
        self.__dict__.update(state)  # one step: an interruption cannot leave half of it

    def __sklearn_is_fitted__(self):
        return all(name in self.__dict__ for name in FITTED_ATTRIBUTES)

    def _loss(self, frames_per_chunk=None, seed=0):
        """The training loss of :func:`skvarae.training.train` for these parameters.

        ``seed`` seeds the generator that draws the subsampled reconstruction frames.
        """
        if self.training == "two_stage":
            return functools.partial(two_stage_loss, frames_per_chunk=frames_per_chunk)
        return functools.partial(
            end_to_end_loss,
            alpha=self.alpha,
            lags=int(self.lags),
            forecast_weight=self.forecast_weight,
            reconstruction_weight=self.reconstruction_weight,
            reconstruction_subsample=self.reconstruction_subsample,
            generator=torch.Generator().manual_seed(seed),
            frames_per_chunk=frames_per_chunk,
        )

    def _decodes_per_frame(self):
        """Decoder passes per training frame: the forecast, and a share of reconstructions."""
        if self.training == "two_stage":
            return 1
        return 1 + self.reconstruction_subsample

    def _plan_memory(self, encoder, decoder, runs, n_train, device):
        """Frames per chunk of a training step within ``memory_budget`` (None: all at once).

        Raises ValueError, before anything is read, when the budget cannot hold the step.
        """
        frame_shape = tuple(runs[0].shape[1:])
        lengths = Windows(runs, self.window, 0.0, 1.0, n_frames=n_train).lengths
        n_frames = largest_step(lengths, self.batch_size)
        budget = None if self.memory_budget is None else self.memory_budget * 2**30
        try:
            return plan_frames_per_chunk(
                n_frames, frame_shape, *activation_bytes(encoder, decoder, frame_shape, device),
                n_decodes=self._decodes_per_frame(), budget=budget,
            )
        except ValueError as error:
            raise ValueError(
                f"{error} Lower batch_size={self.batch_size} or window={self.window}, bin the "
                f"frames (raise spatial_bin={self.spatial_bin}), or raise "
                f"memory_budget={self.memory_budget} (GiB)."
            ) from None

    def _running_baseline(self):
        """Whether frames are measured from a running baseline (see :mod:`skvarae.baseline`)."""
        return self.baseline == "running" and self.skip_connection

    def _network_offset(self, mean_frame):
        """What the network's input is measured from (``offset_``), in the input's units."""
        if self._running_baseline():
            return np.zeros_like(mean_frame)
        return _offset(mean_frame, self.skip_connection)

    def _network_inputs(self, runs):
        """The runs as the network sees them before ``- offset_`` and ``/ scale_`` (lazy)."""
        if self._running_baseline():
            return [RunningDeviation(run, self.baseline_time_constant) for run in runs]
        return runs

    def _binned(self, runs):
        """The runs at the network's resolution: lazily binned, or the runs themselves."""
        if self.spatial_bin == 1:
            return runs
        return [BinnedMovie(run, self.spatial_bin) for run in runs]

    def _binned_frame(self, frame):
        """One (height, width) frame at the network's resolution (itself without binning)."""
        if self.spatial_bin == 1:
            return frame
        return bin_frames(frame, self.spatial_bin)

    def _upsampled(self, frames, frame_shape):
        """Frames (..., h_net, w_net) back at ``frame_shape``, each pixel its block's value."""
        if self.spatial_bin == 1:
            return frames
        return upsample_frames(frames, self.spatial_bin, frame_shape)

    def _mean_frame(self, runs):
        """Mean over all frames of all runs, float32 (height, width)."""
        total, n_frames = 0.0, 0
        chunk = _frames_per_chunk(runs[0].shape[1:])
        for run in runs:
            for batch in iter_frame_batches(run, chunk):
                total = total + batch.sum(axis=0, dtype=np.float64)
                n_frames += len(batch)
        return (total / n_frames).astype(np.float32)

    def _scale(self, inputs, offset):
        """Root mean square of what the network models, ``inputs - offset``, over all frames."""
        squares, n_values = 0.0, 0
        chunk = _frames_per_chunk(inputs[0].shape[1:])
        offset = np.asarray(offset, dtype=np.float64)
        for run in inputs:
            for batch in iter_frame_batches(run, chunk, dtype=np.float64):
                squares += float(np.sum((batch - offset) ** 2))
                n_values += batch.size
        scale = float(np.sqrt(squares / n_values))
        if not np.isfinite(scale):
            raise ValueError(
                "The training movie is too large in magnitude for float32 computations "
                f"(the standard deviation of its dynamic part is {scale}); rescale it."
            )
        if not scale > 0:
            warnings.warn(
                "The training movie does not change over time (its dynamic part is zero); "
                "scale_ is set to 1.",
                UserWarning,
                stacklevel=3,
            )
            scale = 1.0
        return scale

    def _validation(self, sequences, n_train):
        """Held-out tails of the training runs for early stopping, or None."""
        if self.validation_fraction == 0:
            return None
        held_out = HeldOutTails(
            sequences,
            n_train,
            context=self.window,
            alpha=self.alpha,
            lags=int(self.lags),
            forecast_weight=0.0 if self.training == "two_stage" else self.forecast_weight,
            reconstruction_weight=(
                1.0 if self.training == "two_stage" else self.reconstruction_weight
            ),
            frames_per_chunk=_frames_per_chunk(sequences.runs[0].shape[1:]),
        )
        if len(held_out) == 0:
            warnings.warn(
                f"validation_fraction={self.validation_fraction} leaves no run with a held-out "
                "tail of at least 2 frames; early stopping monitors the training loss.",
                UserWarning,
                stacklevel=3,
            )
            return None
        return held_out

    def _max_latent_side(self, frame_shape):
        """``max_latent_side``, or the grid of one cell per tile with ``cell_radius``."""
        if self.cell_radius is None:
            return self.max_latent_side
        return max_latent_side_for_cells(frame_shape, self.cell_radius / self.spatial_bin)

    def _build_network(self, frame_shape):
        kwargs = dict(
            latent_channels=self.latent_channels,
            max_latent_side=self._max_latent_side(frame_shape),
            base_channels=self.base_channels,
            linear_path=self.linear_path,
        )
        return ConvEncoder(frame_shape, **kwargs), ConvDecoder(frame_shape, **kwargs)

    # --------------------------------------------------------------- inference
    def _per_run(self, function, runs):
        """``[function(run) for run in runs]``, in ``n_jobs`` joblib threads when set."""
        if self.n_jobs is None or len(runs) < 2:
            return [function(run) for run in runs]
        return Parallel(n_jobs=int(self.n_jobs), prefer="threads")(
            delayed(function)(run) for run in runs
        )

    @torch.no_grad()
    def _encode_run(self, run):
        """Latents of one run as a float64 CPU tensor of shape (n_frames, d)."""
        offset, device = self.offset_, torch.device(self.device_)
        (inputs,) = self._network_inputs(self._binned([run]))
        latents = [
            self.encoder_(torch.from_numpy((batch - offset) / self.scale_).float().to(device))
            for batch in iter_frame_batches(inputs, _frames_per_chunk(offset.shape))
        ]
        return torch.cat(latents).double().cpu()

    @torch.no_grad()
    def _decode_tensor(self, latents):
        """Frames in pixel units, (n, H, W) numpy float32, from a latents tensor (n, d).

        ``offset_ + scale_ * f_dec(z)``; with ``spatial_bin``, ``scale_ * f_dec(z)`` is
        upsampled to the input resolution and added to the offset there (``mean_frame_``
        with ``baseline="mean"``, else the constant ``offset_``).
        """
        device = torch.device(self.device_)
        frames = [
            self.decoder_(chunk.float().to(device)).cpu().numpy()
            for chunk in torch.split(latents, _frames_per_chunk(self.offset_.shape))
        ]
        if self.spatial_bin == 1:
            return np.concatenate(frames) * self.scale_ + self.offset_
        if self.skip_connection and not self._running_baseline():
            offset = self.mean_frame_
        else:
            offset = self._upsampled(self.offset_, self.frame_shape_)
        return self._upsampled(np.concatenate(frames) * self.scale_, self.frame_shape_) + offset

    def decode(self, latents):
        """Frames from latents: the inverse of :meth:`encode` (up to the autoencoder's error).

        Parameters
        ----------
        latents : array-like of shape (n_frames, d) or (n_runs, n_frames, d), or list
            Latents of one run, of several runs of equal length, or a list of
            ``(n_frames_r, d)`` arrays (as :meth:`encode` returns them); ``d`` is
            ``prod(latent_shape_)``. Numpy arrays or torch tensors.

        Returns
        -------
        frames : ndarray of shape (n_frames, height, width) or (n_runs, n_frames, height, width)
            Float32 frames in pixel units, ``offset_ + scale_ * f_dec(z)`` (with the running
            baseline, ``offset_`` is zero: the deviation from the baseline): one run for 2-D
            ``latents``, several for 3-D; a list of runs for a list (stacked when the lengths
            are equal, as :meth:`encode` does). At the input resolution: with ``spatial_bin``,
            ``scale_ * f_dec(z)`` is upsampled (each pixel takes its block's value) and added
            to ``mean_frame_`` with ``baseline="mean"`` (to the constant ``offset_`` otherwise).

        Raises
        ------
        ValueError
            If the latents do not have ``d`` columns, are empty, or are not finite.

        Examples
        --------
        >>> import numpy as np
        >>> from skvarae import SparseVARAutoencoder
        >>> movies = np.random.default_rng(0).random((2, 20, 8, 8), dtype=np.float32)
        >>> model = SparseVARAutoencoder(max_epochs=2, random_state=0).fit(movies)
        >>> model.decode(model.encode(movies)).shape
        (2, 20, 8, 8)
        """
        check_fitted_resolution(self)
        if isinstance(latents, (list, tuple)):
            runs = [self._check_latents(z, f"latents[{r}]", (2,)) for r, z in enumerate(latents)]
            if not runs:
                raise ValueError("latents is an empty list: at least one run is needed.")
            return _same_shape_or_list([self._decode_tensor(z) for z in runs])
        z = self._check_latents(latents, "latents", (2, 3))
        if z.ndim == 2:
            return self._decode_tensor(z)
        return np.stack([self._decode_tensor(run) for run in z])

    def _check_latents(self, latents, name, ndims):
        """``latents`` as a float64 CPU tensor with ``d`` columns and one of ``ndims`` dims."""
        if isinstance(latents, torch.Tensor):
            latents = latents.detach().cpu().numpy()
        latents = np.asarray(latents, dtype=np.float64)
        d = int(np.prod(self.latent_shape_))
        if latents.ndim not in ndims or latents.shape[-1] != d or latents.size == 0:
            shapes = " or ".join({2: "(n_frames, d)", 3: "(n_runs, n_frames, d)"}[n] for n in ndims)
            raise ValueError(
                f"{name} must have shape {shapes} with d={d} latents, got shape {latents.shape}."
            )
        if not np.all(np.isfinite(latents)):
            raise ValueError(f"{name} contains NaN or infinity.")
        return torch.from_numpy(latents)

    def _fit_run_var(self, run):
        """Sparse VAR of one run's latents: coef (lags, d, d) and intercept (d,), numpy."""
        coef, intercept = fit_var(self._encode_run(run), self.alpha, self.lags)
        return coef.numpy(), intercept.numpy()

    def encode(self, X):
        """Latents of every frame.

        Parameters
        ----------
        X : runs
            See the class Notes; frames of shape ``frame_shape_`` (binned by ``spatial_bin``
            before encoding).

        Returns
        -------
        latents : ndarray of shape (n_runs, n_frames, d), or list of (n_frames_r, d) arrays
            A list when run lengths differ.
        """
        runs = check_model_runs(self, X)
        latents = self._per_run(self._encode_run, runs)
        return _same_shape_or_list([z.float().numpy() for z in latents])

    def transform(self, X):
        """Refit the sparse VAR on each run's latents and return its coefficients.

        Parameters
        ----------
        X : runs
            See the class Notes; frames of shape ``frame_shape_``.

        Returns
        -------
        features : ndarray of shape (n_runs, lags * d * d)
            Each run's VAR matrices flattened in ``coef_`` order: sparse, interpretable features
            for a downstream estimator.
        """
        runs = check_model_runs(self, X)
        return np.stack([coef.ravel() for coef, _ in self._per_run(self._fit_run_var, runs)])

    def predict(self, X):
        """One-step-ahead forecast frames, with the VAR refitted on each run.

        Parameters
        ----------
        X : runs
            See the class Notes; frames of shape ``frame_shape_``.

        Returns
        -------
        frames : ndarray of shape (n_runs, n_frames - lags, height, width), or list
            ``frames[r, t]`` forecasts frame ``t + lags`` of run ``r`` from the frames before it.
            A list when run lengths differ. At the input resolution: with ``spatial_bin``, the
            forecast dynamic part is upsampled (each pixel takes its block's value) and added
            to the static part at full resolution (the running baseline of the unbinned run, or
            ``mean_frame_``).
        """
        runs = check_model_runs(self, X)
        return _same_shape_or_list(self._per_run(self._forecast_run, runs))

    def _forecast_run(self, run):
        latents = self._encode_run(run)
        coef, intercept = fit_var(latents, self.alpha, self.lags)
        forecast = self._decode_tensor(forecast_var(latents, coef, intercept))
        return forecast + self._baselines(run, self.lags, len(run))

    def _baselines(self, run, start, stop):
        """What is added to decoded frames ``start:stop`` of a run besides ``offset_``.

        The running baseline before each frame (float32, (stop - start, H, W)), or 0.
        """
        if not self._running_baseline():
            return np.float32(0)
        (inputs,) = self._network_inputs([run])
        return inputs.block(start, stop)[1].astype(np.float32)

    def score(self, X, y=None):
        """Held-out one-step forecast R² of the dynamic part, averaged over runs.

        For each run, the VAR is fitted on the latents of the first three quarters of its frames
        only; the frames of the last quarter are then forecast one step ahead (from the observed
        frames before them) and compared with the truth. R² is computed on the dynamic part
        ``x_t - mean_frame_``, pooled over pixels (``r2_score(..., "variance_weighted")``).

        Parameters
        ----------
        X : runs
            See the class Notes; every run needs at least ``lags + 4`` frames.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean R² over runs (1 is perfect; higher is better).
        """
        runs = check_model_runs(self, X)
        for index, run in enumerate(runs):
            if held_out_split(len(run))[0] < self.lags + 2:
                raise ValueError(
                    f"Run {index} has {len(run)} frames: too few to hold out its last quarter "
                    f"(at least 2 frames) and fit a VAR({self.lags}) on the rest "
                    f"(need at least {self.lags + 4} frames)."
                )
        return float(np.mean(self._per_run(self._score_run, runs)))

    def _score_run(self, run):
        """Held-out R² of one run (see :meth:`score`)."""
        n_fit, n_test = held_out_split(len(run))
        latents = self._encode_run(run)
        coef, intercept = fit_var(latents[:n_fit], self.alpha, self.lags)
        forecast = forecast_var(latents[n_fit - self.lags :], coef, intercept)
        predicted = self._decode_tensor(forecast) + self._baselines(run, n_fit, len(run))
        predicted = (predicted - self.mean_frame_).reshape(n_test, -1)
        observed = np.asarray(run[n_fit:], dtype=np.float64) - self.mean_frame_
        observed = observed.reshape(n_test, -1)
        # Variance-weighted R² over pixels (as r2_score(..., "variance_weighted")).
        residual = np.sum((observed - predicted) ** 2)
        total = np.sum((observed - observed.mean(axis=0)) ** 2)
        return 1.0 - residual / total if total > 0 else float(residual == 0)

    def contribution_map(self, X=None, *, per_run=False, kind="driving"):
        """How much each pixel drives the learned dynamics: the contribution map Ω.

        For each run r (T_r frames), with the encoder's Jacobian J_t = ∂z/∂x̃ at the
        standardised frame x̃_t and the deviation ``δ_t = (x_t - mean_frame_) / scale_``, the
        reading map of latent j is ``G_j[p] = (1 / T_r) Σ_t |J_t[j, p] · δ_t[p]|``; with
        ``out_j = Σ_k Σ_{i≠j} |A_k[i, j]|`` and ``in_j = Σ_k Σ_{i≠j} |A_k[j, i]|``
        (``kind="driving"``)::

            w_j = max(out_j - in_j, 0),   Ω_r[p] = Σ_j w_j G_j[p],   Ω = mean_r Ω_r.

        Activity at a pixel counts by how much it feeds latents that predict the future of the
        other latents more than they predict it (a latent's own persistence, or the mutual
        prediction of two latents sharing a cell, is not driving). The
        reasons and the other kinds are in :mod:`skvarae.contribution`; the difference between
        two conditions, with family-wise corrected p-values, is
        :func:`skvarae.contribution.difference_map_test`.

        Parameters
        ----------
        X : runs, optional
            See the class Notes; frames of shape ``frame_shape_``. Each run's VAR is refitted on
            its latents (as in :meth:`transform`) to give its weights. ``None`` returns the maps
            of the training runs (``contribution_maps_``, weighted by ``coef_``).
        per_run : bool, default=False
            Return one map per run instead of their mean.
        kind : {"driving", "cross", "coefficient"}, default="driving"
            ``"cross"`` leaves out only the self-terms; ``"coefficient"`` is all outgoing mass,
            self-terms included (skvarae <= 0.1). Kinds other than the default need ``X``.

        Returns
        -------
        omega : ndarray of shape (height, width), or (n_runs, height, width)
            Non-negative float64 map(s), in the units of the latents; (n_runs, height, width)
            with ``per_run=True``. At the input resolution: with ``spatial_bin``, the map is
            computed on the binned frames and each pixel holds the value of its block.
        """
        return contribution.contribution_map(self, X, per_run=per_run, kind=kind)

    def compare_sequences(
        self, X_a, X_b, *, n_permutations=1000, random_state=None, n_jobs=None, **kwargs
    ):
        """Permutation test of whether two sets of runs share the same dynamics.

        Shortcut for :func:`skvarae.stats.compare_sequences` ``(self, X_a, X_b, ...)``: runs
        are encoded by this model, one sparse VAR is fitted per run (or block of a run), and the
        condition labels are permuted across them.

        Parameters
        ----------
        X_a, X_b : runs
            Runs of the two conditions; frames of shape ``frame_shape_``.
        n_permutations : int, default=1000
            Exact enumeration when all relabellings fit, else the number of random permutations.
        random_state : int, RandomState instance or None, default=None
            Source of the random permutations.
        n_jobs : int or None, default=None
            Number of joblib jobs for the permutations.
        **kwargs
            Further options of :func:`skvarae.stats.compare_sequences`.

        Returns
        -------
        result : PermutationTestResult
            Statistic, p-value, null distribution and how the test was run.
        """
        return stats.compare_sequences(
            self,
            X_a,
            X_b,
            n_permutations=n_permutations,
            random_state=random_state,
            n_jobs=n_jobs,
            **kwargs,
        )

    # ---------------------------------------------------------- persistence
    def __getstate__(self):
        state = self.__dict__.copy()
        for name in _MODULES:
            if name in state:
                state[name] = copy.deepcopy(state[name]).cpu()
        return state

    def __setstate__(self, state):
        for name, value in _PARAMS_OF_OLDER_FILES.items():
            state.setdefault(name, value)  # pickled before these parameters existed
        self.__dict__.update(state)
        if "mean_frame_" in state and "offset_" not in state:  # pickled before offset_ existed
            self.offset_ = self._network_offset(self.mean_frame_)
        if "device_" in state:
            self.device_ = self._loadable_device(state["device_"])
            for name in _MODULES:
                getattr(self, name).to(self.device_)

    @staticmethod
    def _loadable_device(device):
        """``device`` if it is usable here, else ``"cpu"`` with a warning."""
        try:
            return str(resolve_device(device))
        except ValueError as error:
            warnings.warn(
                f"This model was fitted on {device!r}, which cannot be used here "
                f"({str(error).rstrip('.')}); "
                "it is loaded on the CPU.",
                UserWarning,
                stacklevel=3,
            )
            return "cpu"

    def save(self, path):
        """Save parameters, fitted state and library versions to ``path`` (a torch file).

        Parameters
        ----------
        path : str or path-like
            Destination file, conventionally ``*.pt``. Its folder must exist.

        Raises
        ------
        NotFittedError
            If the estimator is not fitted.
        OSError
            If the file cannot be written (e.g. ``FileNotFoundError`` when its folder does not
            exist); the message names the path.

        See Also
        --------
        load : Read the file back (with ``torch.load(weights_only=True)``).
        """
        path = os.fspath(path)
        check_fitted_resolution(self)
        params = self.get_params()
        random_state = params["random_state"]
        if isinstance(random_state, np.integer):
            params["random_state"] = int(random_state)
        elif random_state is not None and not isinstance(random_state, int):
            warnings.warn(
                "random_state is not an int or None and is saved as None.",
                UserWarning,
                stacklevel=2,
            )
            params["random_state"] = None
        for name, value in params.items():  # numpy scalars as Python numbers (weights_only)
            if isinstance(value, (np.integer, np.floating, np.bool_)):
                params[name] = value.item()
        params["device"] = str(params["device"])
        payload = {
            "format": _SAVE_FORMAT,
            "params": params,
            "versions": {
                "skvarae": _version(),
                "torch": str(torch.__version__),
                "scikit-learn": str(sklearn.__version__),
                "numpy": str(np.__version__),
                "python": platform.python_version(),
            },
            "fitted": {
                name: _encode_fitted(kind, getattr(self, name))
                for name, kind in FITTED_ATTRIBUTES.items()
            },
        }
        with open(path, "wb") as file:
            torch.save(payload, file)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`.

        The file is read with ``torch.load(weights_only=True)``: it can hold tensors and plain
        Python data only, so a malicious file cannot run code; it is refused instead.

        Parameters
        ----------
        path : str or path-like
            File written by :meth:`save`.

        Returns
        -------
        model : SparseVARAutoencoder
            The fitted estimator, on its original device when available, else on the CPU.

        Raises
        ------
        OSError
            If the file cannot be opened (``FileNotFoundError``, ``IsADirectoryError``, ...).
        ValueError
            If the file is not a complete model file written by :meth:`save` (empty, truncated,
            text, another kind of torch or pickle file, or missing entries); the message names
            the file.
        """
        path = os.fspath(path)
        with open(path, "rb") as file:
            try:
                payload = torch.load(file, map_location="cpu", weights_only=True)
            except Exception as exc:  # any parse failure: not a model file (no code was run)
                raise ValueError(
                    f"{os.fspath(path)} is not a model file written by "
                    f"SparseVARAutoencoder.save: it could not be read ({_one_line(exc)})."
                ) from None
        try:
            return cls._from_payload(payload)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
            reason = f"missing entry {exc}" if isinstance(exc, KeyError) else _one_line(exc)
            raise ValueError(
                f"{os.fspath(path)} is not a valid model file written by "
                f"SparseVARAutoencoder.save: {reason}."
            ) from None

    @classmethod
    def _from_payload(cls, payload):
        """The fitted model held by a loaded payload; KeyError/TypeError/ValueError if broken."""
        if not isinstance(payload, dict) or payload.get("format") not in _READABLE_FORMATS:
            raise ValueError("it is not a model file (no known save format)")
        params = payload["params"]
        if not isinstance(params, dict):
            raise TypeError("its parameters are not a dict")
        model = cls(**{**_PARAMS_OF_OLDER_FILES, **params})
        model._validate_params()
        fitted = dict(payload["fitted"])
        if payload["format"] == 1:  # before offset_ was saved; networks outside "fitted"
            fitted["encoder_"], fitted["decoder_"] = payload["encoder"], payload["decoder"]
        state = {}
        for name, kind in FITTED_ATTRIBUTES.items():
            if payload["format"] == 1 and name in ("offset_", "n_features_in_"):
                continue
            state[name] = _decode_fitted(kind, fitted[name], name)
        if payload["format"] == 1:
            state["offset_"] = model._network_offset(state["mean_frame_"])
            state["n_features_in_"] = int(np.prod(state["frame_shape_"]))
        encoder, decoder = model._build_network(
            binned_shape(state["frame_shape_"], model.spatial_bin)
        )
        encoder.load_state_dict(state["encoder_"])
        decoder.load_state_dict(state["decoder_"])
        state["encoder_"], state["decoder_"] = encoder, decoder
        _check_fitted_state(state, model.lags, model.spatial_bin)
        state["device_"] = cls._loadable_device(state["device_"])
        for module in (encoder, decoder):
            module.to(state["device_"]).eval()
        model._set_fitted_state(state)
        return model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.two_d_array = True
        return tags


def _version():
    from . import __version__

    return __version__


def _one_line(error):
    """``error`` as ``Type: first line of its message`` (at most 200 characters)."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= 200 else text[:197] + "..."


def _encode_fitted(kind, value):
    """A fitted attribute as ``torch.save(weights_only=True)``-loadable data."""
    if kind == "module":
        return {key: tensor.cpu() for key, tensor in value.state_dict().items()}
    if kind == "array":
        return torch.from_numpy(np.ascontiguousarray(value))
    if kind == "shape":
        return [int(s) for s in value]
    if kind == "history":
        return [dict(record) for record in value]
    return {"int": int, "float": float, "str": str}[kind](value)


def _decode_fitted(kind, value, name):
    """Inverse of :func:`_encode_fitted`; TypeError naming the attribute if ``value`` is wrong."""
    expected = {
        "module": "a dict of tensors",
        "array": "a tensor",
        "shape": "a list of integers",
        "history": "a list of dicts",
        "int": "an integer",
        "float": "a number",
        "str": "a string",
    }[kind]
    ok = {
        "module": lambda v: isinstance(v, dict)
        and all(isinstance(t, torch.Tensor) for t in v.values()),
        "array": lambda v: isinstance(v, torch.Tensor),
        "shape": lambda v: isinstance(v, (list, tuple))
        and all(Integer(1, None).is_satisfied_by(s) for s in v),
        "history": lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v),
        "int": lambda v: Integer().is_satisfied_by(v),
        "float": lambda v: Real().is_satisfied_by(v),
        "str": lambda v: isinstance(v, str),
    }[kind](value)
    if not ok:
        raise TypeError(f"{name} is not {expected} (got {type(value).__name__})")
    if kind == "array":
        return value.numpy()
    if kind == "shape":
        return tuple(value)
    if kind == "float":
        return float(value)
    return value


def _check_fitted_state(state, lags, spatial_bin=1):
    """ValueError unless the loaded fitted attributes have consistent shapes."""
    frame_shape = state["frame_shape_"]
    d = int(np.prod(state["latent_shape_"]))
    n_runs = len(state["coef_"])
    expected = {
        "mean_frame_": frame_shape,
        "offset_": binned_shape(frame_shape, spatial_bin),
        "coef_": (n_runs, lags, d, d),
        "intercept_": (n_runs, d),
        "contribution_maps_": (n_runs,) + tuple(frame_shape),
    }
    for name, shape in expected.items():
        if state[name].shape != tuple(shape):
            raise ValueError(f"{name} has shape {state[name].shape}, expected {tuple(shape)}")
    if len(frame_shape) != 2 or state["n_features_in_"] != int(np.prod(frame_shape)):
        raise ValueError("frame_shape_ and n_features_in_ disagree")
    if not (np.isfinite(state["scale_"]) and state["scale_"] > 0):
        raise ValueError(f"scale_ is {state['scale_']}, expected a positive number")
