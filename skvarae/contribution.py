"""Contribution maps: which pixels drive the learned sparse dynamics.

A fitted :class:`~skvarae.estimator.SparseVARAutoencoder` encodes each frame x_t into latents z_t
and models them by a sparse VAR, z_t = c + A_1 z_{t-1} + ... + A_p z_{t-p}. The contribution map
Ω of a run is a (height, width) image saying how much each pixel feeds the latents that drive
the run's dynamics. With x̃_t = (x_t - offset) / scale the encoder's input, J_t = ∂z/∂x̃ (x̃_t) the
encoder's Jacobian at frame t (shape (d, height, width)), ``δ_t = (x_t - mean_frame_) / scale`` the
frame's deviation from the mean frame, and::

    w_j = Σ_k Σ_i |A_k[i, j]|     (the outgoing VAR coefficient mass of latent j, all lags),

the map of a run of T frames is::

    Ω[p] = (1 / T) Σ_t Σ_j w_j · |J_t[j, p] · δ_t[p]|,

and the map of several runs is the mean of their maps, each run weighted equally (a run is one
sample). Ω is non-negative, and zero at pixels that never move away from the mean frame or that
only feed latents with no outgoing VAR coefficient.

Why this definition
-------------------
- **Gradient × deviation rather than the bare Jacobian.** ``J_t[j, p] δ_t[p]`` is the first-order
  share of pixel p in the deviation of z_j(x_t) from its value at the mean frame (exact for a
  linear encoder, where z_j(x_t) - z_j(x̄) = Σ_p J[j, p] δ_t[p]). The bare sensitivity ``|J|`` of a
  convolutional encoder is nearly translation-invariant: it would rank a static pixel, or a
  pixel that never changes, like an active one. Weighting by the deviation keeps only pixels
  whose activity actually enters the latents. With the skip connection, the encoder's input
  *is* the deviation (δ_t = x̃_t), so this is the usual gradient × input.
- **Unit-free in the input.** ∂z/∂x · (x - x̄) = ∂z/∂x̃ · (x - x̄) / scale: the map does not depend
  on the units of the movie (or on ``scale_``); it is in the units of the latents.
- **Absolute values per latent and per frame** so that effects on different latents, and of
  opposite sign at different times (a pixel that rises and falls), do not cancel.
- **Weights w_j.** The pixel's effect on the VAR forecasts of all latents, all lags, is
  ``∂ẑ_{t+k, i} / ∂x_t[p] = Σ_j A_k[i, j] J_t[j, p]``; by the triangle inequality
  ``Σ_k Σ_i |∂ẑ_{t+k, i} / ∂x_t[p] · δ_t[p]| <= Σ_j w_j |J_t[j, p] δ_t[p]|``. Ω is this bound
  averaged over frames: a latent counts by how strongly it drives the forecasts (its own future
  included), and latents that the lasso cut off from the dynamics count for nothing.

The maps are in the units of the latents, so maps of one model (runs, conditions) are comparable
with each other; to compare models (e.g. end-to-end against two-stage training), normalise each
map, e.g. ``omega / omega.sum()``. A difference map between two conditions is a one-liner,
``model.contribution_map(X_a) - model.contribution_map(X_b)`` (:func:`difference_map`).

Computation: one backward pass per latent (a loop over the d latents, never over pixels) on
batches of frames, which are independent (the encoder has no batch statistics); the weighted
absolute gradients are accumulated at once, so memory stays bounded by one batch of frames.
"""

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._validation import check_integer, check_model_runs, check_params
from .baseline import RunningDeviation
from .io import iter_frame_batches

__all__ = [
    "latent_weights",
    "encoder_jacobian",
    "contribution_maps",
    "contribution_map",
    "difference_map",
]

#: Pixels (frames x height x width) per batch of the Jacobian pass. The retained graph of the
#: default encoder holds about ten floats per input pixel, so a batch needs some 50 MiB,
#: whatever the frame size.
_BATCH_PIXELS = 2**20


def latent_weights(coef):
    """Outgoing VAR coefficient mass of each latent, ``w_j = Σ_k Σ_i |A_k[i, j]|``.

    Parameters
    ----------
    coef : array-like of shape (..., lags, d, d)
        VAR matrices in statsmodels' order: ``coef[..., k - 1, i, j]`` is the effect of latent
        ``j`` at lag ``k`` on latent ``i`` (as ``SparseVARAutoencoder.coef_``).

    Returns
    -------
    weights : ndarray of shape (..., d)
        ``weights[..., j]``: sum of the absolute effects of latent ``j`` on all latents, at all
        lags (float64, non-negative).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[[0.5, -0.2], [0.0, 0.3]]])  # one lag, d = 2
    >>> latent_weights(A)
    array([0.5, 0.5])
    """
    coef = np.asarray(coef, dtype=np.float64)
    if coef.ndim < 3 or coef.shape[-1] != coef.shape[-2]:
        raise ValueError(f"coef must have shape (..., lags, d, d), got {coef.shape}.")
    return np.abs(coef).sum(axis=(-3, -2))


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


def contribution_maps(encoder, runs, coef, *, offset, scale, baseline=None, batch_pixels=None):
    """Contribution map of each run, given the encoder and each run's VAR matrices.

    For run r with T_r frames, encoder input x̃_t = (x_t - offset) / scale, deviation
    δ_t = (x_t - baseline) / scale and weights w = :func:`latent_weights` ``(coef[r])``::

        maps[r, p] = (1 / T_r) Σ_t Σ_j w_j |∂z_j/∂x̃[p] (x̃_t) · δ_t[p]|

    (see the module docstring for why). Frames are processed in batches of about
    ``batch_pixels`` pixels, with one backward pass per latent.

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
    weights = latent_weights(coef)
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


def _maps_on(estimator, runs):
    """Per-run maps of runs under a fitted model, each run's VAR refitted on its latents.

    Reads the model's public attributes only: ``transform``, ``encoder_``, ``offset_``,
    ``scale_``, ``mean_frame_``, ``latent_shape_``, ``lags``, ``skip_connection`` and the running
    baseline's parameters.
    """
    d = int(np.prod(estimator.latent_shape_))
    coef = estimator.transform(runs).reshape(len(runs), estimator.lags, d, d)
    reference = estimator.mean_frame_
    if getattr(estimator, "baseline", "mean") == "running" and estimator.skip_connection:
        # The network sees each frame's deviation from its running baseline (offset_ = 0).
        runs = [RunningDeviation(run, estimator.baseline_time_constant) for run in runs]
        reference = estimator.offset_
    return contribution_maps(
        estimator.encoder_,
        runs,
        coef,
        offset=estimator.offset_,
        scale=estimator.scale_,
        baseline=reference,
    )


def contribution_map(estimator, X=None, *, per_run=False):
    """How much each pixel drives the learned dynamics: the contribution map Ω.

    For each run r (T_r frames), with the encoder's Jacobian J_t = ∂z/∂x̃ at the standardised
    frame x̃_t, the deviation ``δ_t = (x_t - mean_frame_) / scale_`` from the mean frame, and the
    outgoing VAR coefficient mass ``w_j = Σ_k Σ_i |A_k[i, j]|`` of latent j in run r::

        Ω_r[p] = (1 / T_r) Σ_t Σ_j w_j |J_t[j, p] · δ_t[p]|,      Ω = (1 / n_runs) Σ_r Ω_r.

    That is the encoder's sensitivity of each latent to each pixel, times the pixel's activity
    (gradient × deviation from the mean frame), weighted by how strongly the latent drives the
    VAR forecasts, averaged over frames and then over runs (each run weighted equally). See
    :mod:`skvarae.contribution` for why this variant.

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model.
    X : runs, optional
        Runs with frames of the model's shape (any form the estimator accepts). Each run's VAR
        is refitted on its latents (as in ``transform``) to give its weights. With ``None``, the
        maps of the training runs computed at the end of ``fit`` (with ``coef_``) are returned.
    per_run : bool, default=False
        Return one map per run instead of their mean.

    Returns
    -------
    omega : ndarray of shape (height, width), or (n_runs, height, width) with ``per_run=True``
        Non-negative float64 map(s) in the units of the latents; the overall map is the mean of
        the per-run maps.

    Raises
    ------
    ValueError
        If ``X`` is not valid runs, or its frames do not have the model's shape.

    See Also
    --------
    difference_map : Ω_a - Ω_b between two conditions.
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
    if X is None:
        maps = np.array(estimator.contribution_maps_, copy=True)
    else:
        maps = _maps_on(estimator, check_model_runs(estimator, X, name="X"))
    return maps if per_run else maps.mean(axis=0)


def difference_map(estimator, X_a, X_b):
    """Difference of the contribution maps of two sets of runs, Ω_a - Ω_b.

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model.
    X_a, X_b : runs
        Runs of the two conditions, with frames of the model's shape.

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
    """
    check_is_fitted(estimator)
    omega = [
        _maps_on(estimator, check_model_runs(estimator, X, name=name)).mean(axis=0)
        for name, X in (("X_a", X_a), ("X_b", X_b))
    ]
    return omega[0] - omega[1]
