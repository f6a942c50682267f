"""Contribution maps: which pixels drive the learned sparse dynamics.

A fitted :class:`~skvarae.estimator.SparseVARAutoencoder` encodes each frame x_t into latents z_t
and models them by a sparse VAR, z_t = c + A_1 z_{t-1} + ... + A_p z_{t-p}. The contribution map
Ω of a run is a (height, width) image saying how much each pixel *drives* the run's dynamics:
how strongly activity at that pixel predicts the future of *other* places.

With x̃_t = (x_t - offset) / scale the encoder's input, J_t = ∂z/∂x̃ (x̃_t) the encoder's
Jacobian at frame t (shape (d, height, width)) and ``δ_t = (x_t - mean_frame_) / scale`` the
frame's deviation from the mean frame, the **reading map** of latent j in a run of T frames is::

    G_j[p] = (1 / T) Σ_t |J_t[j, p] · δ_t[p]|        (which pixels latent j reads, and how much),

and the map is ``Ω[p] = Σ_j w_j G_j[p]``, with the weights w_j of latent j computed from the
run's VAR matrices A_k. ``kind="driving"`` (the default) uses the **net outflow**::

    out_j = Σ_k Σ_{i≠j} |A_k[i, j]|      (how much latent j predicts the other latents),
    in_j  = Σ_k Σ_{i≠j} |A_k[j, i]|      (how much the other latents predict latent j),
    w_j   = max(out_j - in_j, 0).

``kind="cross"`` uses ``w_j = out_j`` (only the self-terms left out) and ``kind="coefficient"``
all outgoing mass, self-terms included, ``w_j = Σ_k Σ_i |A_k[i, j]|`` (the definition of
skvarae <= 0.1). The map of several runs is the mean of their maps, each run weighted equally
(a run is one sample). Ω is non-negative, and zero at pixels that never move away from the mean
frame or that only feed latents that predict the others no more than they are predicted.

Why this definition
-------------------
- **Driving, not persistence.** Calcium signals are slow, so every latent predicts *itself*:
  the diagonal of A dominates the coefficient mass, and a map weighted by all outgoing mass
  finds the *active* cells, not the drivers (evidence page: AUC of the drivers among the cells
  at chance). "Drives the dynamics" means: activity here predicts the future elsewhere.
- **Net flow, because a latent is not a cell.** Leaving out the diagonal is not enough: a cell
  that is split over two latents (neighbouring tiles of the latent grid, or two components that
  mix it) makes each latent predict the other, a cross-coefficient that is only the cell's own
  persistence, and it does so in both directions. A driver predicts its targets without being
  predicted by them. Subtracting the inflow cancels the symmetric part and keeps the directed
  one (a "net Granger outflow"); for latents that are exactly the cells, with one-way
  couplings, it is the plain cross-coefficient mass. Measured on simulated movies
  (``docs/evidence.md``), it ranks the driver cells above the other cells where the outflow
  alone does not.
- **Gradient × deviation rather than the bare Jacobian.** ``J_t[j, p] δ_t[p]`` is the first-order
  share of pixel p in the deviation of z_j(x_t) from its value at the mean frame (exact for a
  linear encoder). The bare sensitivity ``|J|`` of a convolutional encoder is nearly
  translation-invariant: it would rank a static pixel like an active one. With the skip
  connection the encoder's input *is* the deviation (δ_t = x̃_t): the usual gradient × input.
- **Unit-free in the input.** ∂z/∂x · (x - x̄) = ∂z/∂x̃ · (x - x̄) / scale: the map does not depend
  on the units of the movie (or on ``scale_``); it is in the units of the latents.
- **Absolute values per latent and per frame** so that effects on different latents, and of
  opposite sign at different times, do not cancel. The pixel's effect on the VAR forecasts of
  the other latents is ``∂ẑ_{t+k, i} / ∂x_t[p] = Σ_j A_k[i, j] J_t[j, p]``; by the triangle
  inequality, ``Σ_k Σ_{i≠j} |A_k[i, j] J_t[j, p] δ_t[p]|`` summed over j is bounded by
  ``Σ_j out_j |J_t[j, p] δ_t[p]|``: the ``"cross"`` map averages this bound over frames, and the
  ``"driving"`` map discounts each latent by what it receives.

The maps are in the units of the latents, so maps of one model (runs, conditions) are comparable
with each other; to compare models, normalise each map, e.g. ``omega / omega.sum()``. The
difference map between two conditions is :func:`difference_map`; :func:`difference_map_test`
adds per-pixel p-values, family-wise corrected by the maximum statistic over a permutation null
of the condition labels.

Computation: one backward pass per latent (a loop over the d latents, never over pixels) on
batches of frames, which are independent (the encoder has no batch statistics); the weighted
absolute gradients are accumulated at once, so memory stays bounded by one batch of frames.
"""

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._validation import check_integer, check_model_runs, check_params
from .baseline import RunningDeviation
from .binning import BinnedMovie, bin_frames, upsample_frames
from .io import iter_frame_batches
from .stats import MapPermutationTestResult, permutation_test_maps

__all__ = [
    "latent_weights",
    "latent_maps",
    "encoder_jacobian",
    "contribution_maps",
    "contribution_map",
    "difference_map",
    "difference_map_test",
    "MapPermutationTestResult",
]

#: Kinds of contribution map; the first is the default.
KINDS = ("driving", "cross", "coefficient")


def _check_kind(kind):
    if not (isinstance(kind, str) and kind in KINDS):
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    return kind


#: Pixels (frames x height x width) per batch of the Jacobian pass. The retained graph of the
#: default encoder holds about ten floats per input pixel, so a batch needs some 50 MiB,
#: whatever the frame size.
_BATCH_PIXELS = 2**20


def latent_weights(coef, *, kind="driving"):
    """Weight of each latent in the contribution map, from its VAR coefficients.

    With ``out_j = Σ_k Σ_{i≠j} |A_k[i, j]|`` (how much latent j predicts the other latents) and
    ``in_j = Σ_k Σ_{i≠j} |A_k[j, i]|`` (how much they predict it):

    - ``"driving"``: ``w_j = max(out_j - in_j, 0)``, the net outflow;
    - ``"cross"``: ``w_j = out_j``;
    - ``"coefficient"``: ``w_j = Σ_k Σ_i |A_k[i, j]|``, self-terms included.

    Parameters
    ----------
    coef : array-like of shape (..., lags, d, d)
        VAR matrices in statsmodels' order: ``coef[..., k - 1, i, j]`` is the effect of latent
        ``j`` at lag ``k`` on latent ``i`` (as ``SparseVARAutoencoder.coef_``).
    kind : {"driving", "cross", "coefficient"}, default="driving"
        Which weights (module docstring of :mod:`skvarae.contribution` for why).

    Returns
    -------
    weights : ndarray of shape (..., d)
        Non-negative float64 weights.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[[0.9, 0.1], [0.5, 0.8]]])  # latent 0 drives latent 1 (0.5 against 0.1)
    >>> latent_weights(A), latent_weights(A, kind="cross"), latent_weights(A, kind="coefficient")
    (array([0.4, 0. ]), array([0.5, 0.1]), array([1.4, 0.9]))
    """
    kind = _check_kind(kind)
    coef = np.abs(np.asarray(coef, dtype=np.float64))
    if coef.ndim < 3 or coef.shape[-1] != coef.shape[-2]:
        raise ValueError(f"coef must have shape (..., lags, d, d), got {coef.shape}.")
    total = coef.sum(axis=-3)  # (..., d, d): Σ_k |A_k[i, j]|
    if kind == "coefficient":
        return total.sum(axis=-2)
    diagonal = np.diagonal(total, axis1=-2, axis2=-1)
    outflow = total.sum(axis=-2) - diagonal
    if kind == "cross":
        return outflow
    inflow = total.sum(axis=-1) - diagonal
    return np.maximum(outflow - inflow, 0.0)


def _latent_gradients(encoder, frames, indices=None):
    """Yield ``(j, ∂z_j/∂x)`` for the latents j in ``indices``: tensors (n_frames, height, width).

    Frames are independent (the encoder has no batch statistics), so the gradient of
    ``Σ_t z_j(x_t)`` with respect to the batch holds every frame's own gradient. One forward
    pass, then one backward pass per latent on the retained graph. ``indices`` defaults to all
    latents.
    """
    with torch.enable_grad():
        frames = frames.detach().requires_grad_(True)
        latents = encoder(frames)
        indices = range(latents.shape[1]) if indices is None else list(indices)
        for position, j in enumerate(indices):
            (gradient,) = torch.autograd.grad(
                latents[:, j].sum(), frames, retain_graph=position < len(indices) - 1
            )
            yield j, gradient


def encoder_jacobian(encoder, frames):
    """Jacobian of the encoder at each frame.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps frames (n_frames, height, width) to latents (n_frames, d), frame by frame (no
        batch statistics), e.g. :class:`skvarae.network.ConvEncoder`.
    frames : torch.Tensor of shape (n_frames, height, width)
        Encoder inputs, same dtype and device as the encoder's parameters.

    Returns
    -------
    jacobian : torch.Tensor of shape (n_frames, d, height, width)
        ``jacobian[t, j, h, w] = ∂z_j / ∂x[h, w]`` evaluated at ``frames[t]`` (detached).

    See Also
    --------
    contribution_maps : Uses the same gradients, accumulated without storing the Jacobian.

    Examples
    --------
    >>> import torch
    >>> from skvarae.network import ConvEncoder
    >>> encoder = ConvEncoder((5, 7))
    >>> encoder_jacobian(encoder, torch.zeros(3, 5, 7)).shape
    torch.Size([3, 24, 5, 7])
    """
    return torch.stack([gradient for _, gradient in _latent_gradients(encoder, frames)], dim=1)


def _module_device_dtype(module):
    parameter = next(module.parameters(), None)
    if parameter is None:
        return torch.device("cpu"), torch.get_default_dtype()
    return parameter.device, parameter.dtype


def _run_reading_maps(encoder, run, offset, baseline, scale, batch_pixels, device, dtype, d):
    """Reading maps G of one run, (d, height, width) float64 tensor."""
    n_frames, height, width = run.shape
    batch_frames = max(1, batch_pixels // (height * width))
    same_reference = baseline is offset or np.array_equal(baseline, offset)
    total = torch.zeros((d, height, width), dtype=torch.float64, device=device)
    for batch in iter_frame_batches(run, batch_frames):
        inputs = torch.from_numpy((batch - offset) / scale).to(device=device, dtype=dtype)
        if same_reference:
            deviation = inputs.abs()
        else:
            deviation = torch.from_numpy(np.abs(batch - baseline) / scale).to(device, dtype)
        for j, gradient in _latent_gradients(encoder, inputs):
            total[j] += (gradient.abs_() * deviation).sum(dim=0, dtype=torch.float64)
    return total / n_frames


def latent_maps(encoder, runs, *, offset, scale, baseline=None, batch_pixels=None):
    """Reading map of every latent in every run: ``G_j[p] = (1/T) Σ_t |J_t[j, p] · δ_t[p]|``.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps frames (n, height, width) to latents (n, d), frame by frame.
    runs : list of array-like of shape (n_frames_r, height, width)
        Frames in pixel units.
    offset : float or array-like of shape (height, width)
        Subtracted from frames before encoding.
    scale : float
        Frames are divided by it (after subtracting ``offset``) before encoding.
    baseline : array-like of shape (height, width), optional
        Reference frame of the deviation δ_t. Defaults to ``offset``.
    batch_pixels : int, optional
        Pixels (frames x height x width) per batch; defaults to 2**20.

    Returns
    -------
    maps : ndarray of shape (n_runs, d, height, width)
        Non-negative float64 reading maps (memory: d times that of one frame per run).

    See Also
    --------
    contribution_maps : Ω = Σ_j w_j G_j per run, without storing every G.
    """
    device, dtype = _module_device_dtype(encoder)
    offset = np.asarray(offset, dtype=np.float32)
    baseline = offset if baseline is None else np.asarray(baseline, dtype=np.float32)
    batch_pixels = _BATCH_PIXELS if batch_pixels is None else int(batch_pixels)
    first = torch.from_numpy(np.asarray(runs[0][:1], dtype=np.float32)).to(device, dtype)
    with torch.no_grad():
        d = int(encoder(first).shape[1])
    return np.stack([
        _run_reading_maps(encoder, run, offset, baseline, scale, batch_pixels, device, dtype,
                          d).cpu().numpy()
        for run in runs
    ])


def contribution_maps(encoder, runs, coef, *, offset, scale, baseline=None, batch_pixels=None,
                      kind="driving"):
    """Contribution map of each run, given the encoder and each run's VAR matrices.

    For run r with T_r frames, encoder input x̃_t = (x_t - offset) / scale, deviation
    δ_t = (x_t - baseline) / scale and weights w = :func:`latent_weights` ``(coef[r], kind)``::

        maps[r, p] = (1 / T_r) Σ_t Σ_j w_j |∂z_j/∂x̃[p] (x̃_t) · δ_t[p]|  =  Σ_j w_j G_j[p]

    (see the module docstring for why). Frames are processed in batches of about
    ``batch_pixels`` pixels, with one backward pass per latent of non-zero weight.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps frames (n, height, width) to latents (n, d), frame by frame.
    runs : list of array-like of shape (n_frames_r, height, width)
        Frames in pixel units (any numeric dtype; memory maps are streamed).
    coef : array-like of shape (n_runs, lags, d, d)
        VAR matrices of each run (statsmodels' order); ``coef[r]`` weights run ``r``.
    offset : float or array-like of shape (height, width)
        Subtracted from frames before encoding.
    scale : float
        Frames are divided by it (after subtracting ``offset``) before encoding.
    baseline : array-like of shape (height, width), optional
        Reference frame of the deviation δ_t (the model's mean frame). Defaults to ``offset``.
    batch_pixels : int, optional
        Pixels (frames x height x width) per batch; bounds memory. Results do not depend on it
        beyond rounding. Defaults to 2**20.
    kind : {"driving", "cross", "coefficient"}, default="driving"
        Which outgoing coefficient mass weights the latents (module docstring).

    Returns
    -------
    maps : ndarray of shape (n_runs, height, width)
        Non-negative float64 maps, one per run.

    Raises
    ------
    ValueError
        If ``coef`` does not hold one set of VAR matrices per run, or its latent dimension is
        not the encoder's.
    """
    weights = latent_weights(coef, kind=kind)
    if weights.ndim != 2 or len(weights) != len(runs):
        raise ValueError(
            f"coef must have shape (n_runs, lags, d, d) with n_runs = {len(runs)}, got "
            f"{np.shape(coef)}."
        )
    n_latent = getattr(encoder, "n_latent", weights.shape[-1])
    if weights.shape[-1] != n_latent:
        raise ValueError(
            f"coef has {weights.shape[-1]} latent dimensions but the encoder has {n_latent}."
        )
    device, dtype = _module_device_dtype(encoder)
    offset = np.asarray(offset, dtype=np.float32)
    baseline = offset if baseline is None else np.asarray(baseline, dtype=np.float32)
    same_reference = baseline is offset or np.array_equal(baseline, offset)
    batch_pixels = (
        _BATCH_PIXELS
        if batch_pixels is None
        else check_integer(batch_pixels, "batch_pixels", min_val=1, caller_name="contribution_maps")
    )
    maps = []
    for run, run_weights in zip(runs, weights):
        n_frames, height, width = run.shape
        batch_frames = max(1, batch_pixels // (height * width))
        # Latents without outgoing VAR coefficients contribute nothing: no backward pass.
        active = np.flatnonzero(run_weights)
        total = torch.zeros((height, width), dtype=torch.float64, device=device)
        for batch in iter_frame_batches(run, batch_frames) if len(active) else ():
            inputs = torch.from_numpy((batch - offset) / scale).to(device=device, dtype=dtype)
            if same_reference:
                deviation = inputs.abs()
            else:
                deviation = torch.from_numpy(np.abs(batch - baseline) / scale).to(device, dtype)
            sensitivity = torch.zeros_like(inputs)
            for j, gradient in _latent_gradients(encoder, inputs, active):
                sensitivity.add_(gradient.abs_(), alpha=float(run_weights[j]))
            total += (sensitivity * deviation).sum(dim=0, dtype=torch.float64)
        maps.append((total / n_frames).cpu().numpy())
    return np.stack(maps)


def _maps_on(estimator, runs, kind="driving"):
    """Per-run maps of runs under a fitted model, each run's VAR refitted on its latents.

    Reads the model's public attributes only: ``transform``, ``encoder_``, ``offset_``,
    ``scale_``, ``mean_frame_``, ``latent_shape_``, ``lags``, ``skip_connection``,
    ``spatial_bin`` and the running baseline's parameters. With ``spatial_bin``, the maps are
    computed on the binned runs, as the network sees them, and returned at the input resolution
    (each pixel holds its block's value).
    """
    d = int(np.prod(estimator.latent_shape_))
    coef = estimator.transform(runs).reshape(len(runs), estimator.lags, d, d)
    factor = getattr(estimator, "spatial_bin", 1)
    reference = estimator.mean_frame_
    if factor > 1:
        runs = [BinnedMovie(run, factor) for run in runs]
        reference = bin_frames(reference, factor)
    if getattr(estimator, "baseline", "mean") == "running" and estimator.skip_connection:
        # The network sees each frame's deviation from its running baseline (offset_ = 0).
        runs = [RunningDeviation(run, estimator.baseline_time_constant) for run in runs]
        reference = estimator.offset_
    maps = contribution_maps(
        estimator.encoder_,
        runs,
        coef,
        offset=estimator.offset_,
        scale=estimator.scale_,
        baseline=reference,
        kind=kind,
    )
    if factor > 1:
        maps = upsample_frames(maps, factor, estimator.frame_shape_)
    return maps


def contribution_map(estimator, X=None, *, per_run=False, kind="driving"):
    """How much each pixel drives the learned dynamics: the contribution map Ω.

    For each run r (T_r frames), with the encoder's Jacobian J_t = ∂z/∂x̃ at the standardised
    frame x̃_t and the deviation ``δ_t = (x_t - mean_frame_) / scale_`` from the mean frame, the
    reading map of latent j is ``G_j[p] = (1 / T_r) Σ_t |J_t[j, p] · δ_t[p]|``; with
    ``out_j = Σ_k Σ_{i≠j} |A_k[i, j]|`` and ``in_j = Σ_k Σ_{i≠j} |A_k[j, i]|`` the run's VAR
    coefficient mass from latent j to the others and back (``kind="driving"``)::

        w_j = max(out_j - in_j, 0),   Ω_r[p] = Σ_j w_j G_j[p],   Ω = mean_r Ω_r.

    A pixel counts by how much its activity enters latents that predict the future of the
    other latents more than they are predicted by them: activity here that predicts activity
    elsewhere. A latent's own persistence, and the mutual prediction of two latents that share
    a cell, are not driving. See :mod:`skvarae.contribution` for the reasoning and the other
    kinds.

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model.
    X : runs, optional
        Runs with frames of the model's shape (any form the estimator accepts). Each run's VAR
        is refitted on its latents (as in ``transform``) to give its weights. With ``None``, the
        maps of the training runs computed at the end of ``fit`` (with ``coef_``, default kind)
        are returned.
    per_run : bool, default=False
        Return one map per run instead of their mean.
    kind : {"driving", "cross", "coefficient"}, default="driving"
        ``"driving"``: net outflow ``max(out_j - in_j, 0)``; ``"cross"``: ``out_j``, all
        outgoing mass except the self-terms; ``"coefficient"``: all outgoing mass, self-terms
        included (the definition of skvarae <= 0.1). Kinds other than the default need ``X``
        (the training runs are not stored).

    Returns
    -------
    omega : ndarray of shape (height, width), or (n_runs, height, width) with ``per_run=True``
        Non-negative float64 map(s) in the units of the latents; the overall map is the mean of
        the per-run maps. At the input resolution: with the estimator's ``spatial_bin``, the
        maps are computed at the network's (binned) resolution and each pixel holds the value
        of its block.

    Raises
    ------
    ValueError
        If ``X`` is not valid runs, or its frames do not have the model's shape, or ``kind`` is
        unknown, or ``X`` is None with a kind other than ``"driving"``.

    See Also
    --------
    difference_map : Ω_a - Ω_b between two conditions.
    difference_map_test : The same with family-wise corrected per-pixel p-values.
    contribution_maps : The computation on an encoder and VAR matrices.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae import SparseVARAutoencoder
    >>> from skvarae.contribution import contribution_map
    >>> movies = np.random.default_rng(0).random((2, 20, 8, 8), dtype=np.float32)
    >>> model = SparseVARAutoencoder(max_latent_side=2, max_epochs=2, random_state=0).fit(movies)
    >>> contribution_map(model).shape, contribution_map(model, movies, per_run=True).shape
    ((8, 8), (2, 8, 8))
    """
    check_is_fitted(estimator)
    check_params({"per_run": per_run}, {"per_run": ["boolean"]}, "contribution_map")
    kind = _check_kind(kind)
    if X is None:
        if kind != KINDS[0]:
            raise ValueError(
                f"kind={kind!r} needs the runs: pass X (e.g. the training runs); only the "
                f"default kind {KINDS[0]!r} is stored for the training runs."
            )
        maps = np.array(estimator.contribution_maps_, copy=True)
    else:
        maps = _maps_on(estimator, check_model_runs(estimator, X, name="X"), kind)
    return maps if per_run else maps.mean(axis=0)


def difference_map(estimator, X_a, X_b, *, kind="driving"):
    """Difference of the contribution maps of two sets of runs, Ω_a - Ω_b.

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model.
    X_a, X_b : runs
        Runs of the two conditions, with frames of the model's shape.
    kind : {"driving", "cross", "coefficient"}, default="driving"
        Kind of contribution map (see :func:`contribution_map`).

    Returns
    -------
    difference : ndarray of shape (height, width)
        ``contribution_map(estimator, X_a) - contribution_map(estimator, X_b)``: positive where
        pixels drive the dynamics more in condition a.

    Raises
    ------
    ValueError
        If a group is not valid runs or its frames do not have the model's shape (the message
        names the group).

    See Also
    --------
    contribution_map : The map of one set of runs.
    difference_map_test : Where the difference is beyond chance (permutation test).
    """
    check_is_fitted(estimator)
    kind = _check_kind(kind)
    omega = [
        _maps_on(estimator, check_model_runs(estimator, X, name=name), kind).mean(axis=0)
        for name, X in (("X_a", X_a), ("X_b", X_b))
    ]
    return omega[0] - omega[1]


def difference_map_test(estimator, X_a, X_b, *, kind="driving", n_permutations=1000,
                        random_state=None):
    """Where do two conditions' contribution maps differ beyond chance? A permutation test.

    Every run of both conditions gets its own map (its VAR refitted on its latents, as in
    :func:`contribution_map` with ``per_run=True``); the statistic of pixel p is
    ``|mean_a Ω_r[p] - mean_b Ω_r[p]|``. Condition labels are permuted across runs, as
    :func:`skvarae.stats.compare_sequences` does (runs are the exchangeable units; neither the
    network nor the VARs are refitted), and every pixel's p-value is family-wise corrected by
    the maximum statistic over pixels (:func:`skvarae.stats.permutation_test_maps`).

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model.
    X_a, X_b : runs
        Runs of the two conditions (at least one each; several are needed for a useful test:
        4 vs 4 runs give p-values down to 2/70 = 0.029).
    kind : {"driving", "cross", "coefficient"}, default="driving"
        Kind of contribution map.
    n_permutations : int, default=1000
        Exact enumeration when all relabellings fit, else the number of random permutations.
    random_state : int, numpy Generator, RandomState instance or None, default=None
        Source of the random permutations.

    Returns
    -------
    result : skvarae.stats.MapPermutationTestResult
        ``difference`` (Ω_a - Ω_b, (height, width)), family-wise ``pvalues`` (height, width),
        ``pvalues_uncorrected``, ``null_max`` and the bookkeeping; ``result.significant(0.05)``
        is the mask of pixels where the conditions differ at family-wise level 0.05.

    Raises
    ------
    ValueError
        If a group is not valid runs or its frames do not have the model's shape.

    See Also
    --------
    skvarae.plotting.plot_difference_map_test : The thresholded map over the mean frame.

    Notes
    -----
    The test is calibrated when the runs are exchangeable under H0 (same dynamics in both
    conditions): ``benchmarks/bench_test_calibration.py --maps`` measures the family-wise rate
    on simulated null movies. Blocks of runs are not used here: a map needs a whole run.

    Examples
    --------
    >>> from skvarae.datasets import make_calcium_movies
    >>> from skvarae.estimator import SparseVARAutoencoder
    >>> from skvarae.contribution import difference_map_test
    >>> X = make_calcium_movies(n_runs=8, n_frames=60, random_state=0).movies
    >>> model = SparseVARAutoencoder(max_epochs=2, random_state=0).fit(X)
    >>> result = difference_map_test(model, X[0::2], X[1::2])
    >>> result.pvalues.shape, result.n_permutations, result.exact
    ((32, 32), 70, True)
    """
    check_is_fitted(estimator)
    kind = _check_kind(kind)
    maps = [
        _maps_on(estimator, check_model_runs(estimator, X, name=name), kind)
        for name, X in (("X_a", X_a), ("X_b", X_b))
    ]
    return permutation_test_maps(
        maps[0], maps[1], n_permutations=n_permutations, random_state=random_state
    )
