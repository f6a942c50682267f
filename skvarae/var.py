"""Sparse vector autoregression (VAR) fitted by LARS-lasso, differentiable in torch.

A VAR(p) model of a sequence of latents z_1, ..., z_n (each of dimension d) reads

    z_t = c + A_1 z_{t-1} + ... + A_p z_{t-p} + e_t.

:func:`fit_var` fits it equation by equation with :func:`skvarae.lars.lasso_lars`, one sparse
model per sequence (leading batch dimensions are independent sequences, e.g. runs), so lags never
cross sequence boundaries. Coefficients follow statsmodels' order: ``coef[..., k - 1, i, j]`` is the
effect of latent ``j`` at lag ``k`` on latent ``i``.
"""

import torch

from ._validation import check_integer
from .lars import lasso_lars

__all__ = ["lagged_design", "fit_var", "forecast_var"]


def _check_sequences(Z, lags, caller_name):
    """Validate Z and lags; returns lags as an int (numpy integers accepted, bools refused)."""
    if not isinstance(Z, torch.Tensor):
        raise TypeError(f"Z must be a torch.Tensor of shape (..., n_frames, d), got {type(Z)}.")
    if Z.ndim < 2:
        raise ValueError(f"Z must have shape (..., n_frames, d), got shape {tuple(Z.shape)}.")
    lags = check_integer(lags, "lags", min_val=1, caller_name=caller_name)
    if Z.shape[-2] < lags + 2:
        raise ValueError(
            f"Z has {Z.shape[-2]} frames per sequence; a VAR({lags}) needs at least "
            f"lags + 2 = {lags + 2}."
        )
    return lags


def lagged_design(Z, lags):
    """Build the lagged design matrix and targets of a VAR(p), sequence by sequence.

    Parameters
    ----------
    Z : torch.Tensor of shape (..., n_frames, d)
        Latent sequences; leading dimensions index independent sequences, so lags never cross
        from one sequence into another.
    lags : int
        VAR order p.

    Returns
    -------
    design : torch.Tensor of shape (..., n_frames - lags, lags * d)
        Row ``t`` holds ``[z_{t+p-1}, z_{t+p-2}, ..., z_t]``: lag 1 first, as in statsmodels.
    targets : torch.Tensor of shape (..., n_frames - lags, d)
        ``z_{t+p}`` for every row.
    """
    lags = _check_sequences(Z, lags, "lagged_design")
    return _lag_columns(Z, lags), Z[..., lags:, :]


def _lag_columns(Z, lags):
    """(..., n_frames, d) -> (..., n_frames - lags, lags * d), lag 1 block first."""
    n_frames = Z.shape[-2]
    return torch.cat([Z[..., lags - k : n_frames - k, :] for k in range(1, lags + 1)], dim=-1)


def fit_var(Z, alpha, lags=1, *, max_iter=None):
    """Fit one sparse VAR(p) with intercept per sequence by LARS-lasso.

    Each sequence is first centred and divided by one scalar, the root mean square of its centred
    values, so that ``alpha`` does not depend on the scale of the latents. Each latent dimension is
    then one lasso regression on the lagged (standardised) latents, with an unpenalised intercept
    (design and targets centred, as scikit-learn's ``LassoLars(fit_intercept=True)``) and the
    objective ``(1 / (2 n)) ||y - X b||^2 + alpha ||b||_1`` with ``n = n_frames - lags``.
    With ``alpha=0`` this is ordinary least squares, i.e. statsmodels' ``VAR(z).fit(p, trend="c")``.

    The result is differentiable with respect to ``Z`` (see :func:`skvarae.lars.lasso_lars`).

    Parameters
    ----------
    Z : torch.Tensor of shape (..., n_frames, d)
        Latent sequences (float32 or float64, any device); leading dimensions are independent
        sequences. ``n_frames`` must be at least ``lags + 2``.
    alpha : float
        Non-negative ℓ1 penalty, in units of the standardised latents.
    lags : int, default=1
        VAR order p.
    max_iter : int, optional
        Passed to :func:`skvarae.lars.lasso_lars`.

    Returns
    -------
    coef : torch.Tensor of shape (..., lags, d, d)
        ``coef[..., k - 1, i, j]``: effect of latent ``j`` at lag ``k`` on latent ``i``, in the
        units of ``Z`` (scale-free: identical for ``Z`` and ``c * Z``).
    intercept : torch.Tensor of shape (..., d)
        The constant ``c`` of the VAR, in the units of ``Z``.

    Raises
    ------
    ValueError
        If ``lags`` is not an integer >= 1 (numpy integers are accepted, bools are not), a
        sequence has fewer than ``lags + 2`` frames, or ``Z`` contains NaN or infinity or is too
        large to standardise in its dtype; the message names ``Z`` or ``lags``.

    Examples
    --------
    >>> import torch
    >>> from skvarae import fit_var
    >>> g = torch.Generator().manual_seed(0)
    >>> Z = torch.randn(3, 100, 4, generator=g, dtype=torch.float64)  # 3 sequences
    >>> coef, intercept = fit_var(Z, alpha=0.05, lags=2)
    >>> tuple(coef.shape), tuple(intercept.shape)
    ((3, 2, 4, 4), (3, 4))
    """
    lags = _check_sequences(Z, lags, "fit_var")
    if max_iter is not None:
        max_iter = check_integer(max_iter, "max_iter", min_val=0, caller_name="fit_var")
    if not bool(torch.isfinite(Z).all()):
        raise ValueError("Z contains NaN or infinity: fit_var needs finite latents.")
    d = Z.shape[-1]
    mean = Z.mean(dim=-2, keepdim=True)
    centred = Z - mean
    mean_square = centred.pow(2).mean(dim=(-2, -1), keepdim=True)
    if not bool(torch.isfinite(mean_square).all()):
        raise ValueError(f"Z is too large in magnitude: its mean square overflows {Z.dtype}.")
    # A constant sequence has nothing to model; dividing by 1 keeps it (and its gradient) finite.
    # The guard sits before the square root, whose derivative at 0 is infinite.
    usable = mean_square > torch.finfo(Z.dtype).tiny
    rms = torch.where(usable, mean_square, torch.ones_like(mean_square)).sqrt()
    design, targets = lagged_design(centred / rms, lags)
    design_mean = design.mean(dim=-2, keepdim=True)
    target_mean = targets.mean(dim=-2, keepdim=True)
    beta = lasso_lars(design - design_mean, targets - target_mean, alpha, max_iter=max_iter)
    # beta: (..., d, lags * d) -> (..., lags, d, d); column block k - 1 belongs to lag k.
    coef = beta.unflatten(-1, (lags, d)).transpose(-3, -2)
    # Intercept of the standardised model, then back to the units of Z:
    # z_t = mean + rms * c_std + sum_k A_k (z_{t-k} - mean).
    c_std = (target_mean - design_mean @ beta.transpose(-2, -1)).squeeze(-2)
    mean = mean.squeeze(-2)
    intercept = mean + rms.squeeze(-1) * c_std - (coef.sum(dim=-3) @ mean.unsqueeze(-1)).squeeze(-1)
    return coef, intercept


def forecast_var(Z, coef, intercept):
    """One-step-ahead forecasts of a VAR(p) from the observed past.

    Parameters
    ----------
    Z : torch.Tensor of shape (..., n_frames, d)
        Observed sequences.
    coef : torch.Tensor of shape (..., lags, d, d)
        VAR matrices in statsmodels' order (as returned by :func:`fit_var`).
    intercept : torch.Tensor of shape (..., d)
        VAR constants.

    Returns
    -------
    forecast : torch.Tensor of shape (..., n_frames - lags, d)
        ``forecast[..., t, :]`` predicts ``Z[..., t + lags, :]`` from ``Z[..., t : t + lags, :]``.
    """
    if coef.ndim < 3 or coef.shape[-1] != coef.shape[-2]:
        raise ValueError(f"coef must have shape (..., lags, d, d), got {tuple(coef.shape)}.")
    lags, d = coef.shape[-3], coef.shape[-1]
    if Z.shape[-1] != d:
        raise ValueError(f"Z has {Z.shape[-1]} latent dimensions but coef has {d}.")
    if Z.shape[-2] <= lags:
        raise ValueError(f"Z needs more than lags={lags} frames, got {Z.shape[-2]}.")
    design = _lag_columns(Z, lags)
    # (..., d, lags * d): row i holds [A_1[i, :], A_2[i, :], ...].
    stacked = coef.transpose(-3, -2).flatten(-2)
    return design @ stacked.transpose(-2, -1) + intercept.unsqueeze(-2)
