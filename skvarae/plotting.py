"""Matplotlib figures for fitted models: contribution maps, VAR matrices, forecasts, training.

matplotlib is an optional dependency (``pip install "skvarae[plot]"``). It is imported only when a
plotting function is called, so ``import skvarae.plotting`` works without it.

Every function returns the :class:`matplotlib.figure.Figure` it drew on (also when it drew into
an ``ax`` or ``fig`` passed by the caller) and never calls ``plt.show()``. Functions that draw one
panel take ``ax``; those that draw several take ``fig``.

Each figure has two named entry points, as scikit-learn's displays (``from_predictions`` /
``from_estimator``): ``plot_X(arrays...)`` draws arrays, and ``plot_X_from_estimator(estimator,
...)`` draws from a fitted :class:`~skvarae.SparseVARAutoencoder` through its public attributes
(``contribution_map``, ``mean_frame_``, ``coef_``, ``encode``, ``alpha``, ``lags``,
``history_``, ``best_epoch_``). Nothing guesses the type of its first argument.
"""

from collections.abc import Mapping

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from ._validation import Integer, Real, check_params, check_real
from .var import fit_var, forecast_var

__all__ = [
    "plot_coef",
    "plot_coef_from_estimator",
    "plot_contribution_map",
    "plot_contribution_map_from_estimator",
    "plot_difference_map",
    "plot_difference_map_test",
    "plot_forecast",
    "plot_forecast_from_estimator",
    "plot_history",
    "plot_history_from_estimator",
]

_INSTALL_HINT = 'pip install "skvarae[plot]"'
# The loss terms recorded in ``history_`` (see :func:`skvarae.training.sequence_loss`).
_HISTORY_TERMS = ("loss", "reconstruction", "forecast")
# Latent dimensions shown by :func:`plot_forecast` when ``dims`` is not given.
_DEFAULT_N_DIMS = 4


def _pyplot():
    """Import and return ``matplotlib.pyplot``, with an installation hint when it is missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skvarae.plotting needs matplotlib, which is not installed. "
            f"Install it with `{_INSTALL_HINT}` (or `pip install matplotlib`)."
        ) from exc
    return plt


def _check_fitted(estimator, attributes):
    """Raise NotFittedError unless ``estimator`` has every one of the fitted ``attributes``."""
    missing = [name for name in attributes if not hasattr(estimator, name)]
    if missing:
        raise NotFittedError(
            f"This {type(estimator).__name__} has no {', '.join(missing)}: fit it before "
            "plotting (a fitted SparseVARAutoencoder is expected)."
        )


def _as_float_array(value, name, ndims, shape_text):
    """``value`` as a float ndarray with one of ``ndims`` dimensions, or ValueError naming it."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        hint = ""
        if callable(getattr(value, "fit", None)):
            hint = " (for a fitted estimator, use the function's _from_estimator variant)"
        raise ValueError(
            f"{name} must be a numeric array of shape {shape_text}{hint}: {exc}"
        ) from exc
    if array.ndim not in ndims:
        raise ValueError(
            f"{name} must have shape {shape_text}, got an array of shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got an array of shape {array.shape}.")
    return array


def _as_image(value, name):
    return _as_float_array(value, name, (2,), "(height, width)")


def _check_mean_frame(mean_frame, shape):
    if mean_frame is None:
        return None
    mean_frame = _as_image(mean_frame, "mean_frame")
    if mean_frame.shape != shape:
        raise ValueError(
            f"mean_frame has shape {mean_frame.shape} but the map has shape {shape}; "
            "both must be (height, width) of the same movie."
        )
    return mean_frame


def _figure_and_axes(ax, figsize):
    if ax is None:
        return _pyplot().subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def _symmetric_limit(values):
    """Half-width of a colour scale centred on 0 that covers every finite value (1 if all zero)."""
    finite = np.abs(values[np.isfinite(values)])
    vmax = float(finite.max()) if finite.size else 0.0
    return vmax if vmax > 0 else 1.0


def _draw_map(ax, image, mean_frame, *, cmap, alpha, vmin=None, vmax=None):
    """Map over the mean frame (grey) with a colour bar; returns the map's image."""
    if mean_frame is not None:
        ax.imshow(mean_frame, cmap="gray", interpolation="nearest")
    shown = ax.imshow(
        image,
        cmap=cmap,
        alpha=alpha if mean_frame is not None else None,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    ax.figure.colorbar(shown, ax=ax)
    return shown


def _check_alpha(alpha, caller_name):
    check_params({"alpha": alpha}, {"alpha": [Real(0, 1)]}, caller_name)


def plot_contribution_map(
    contribution, mean_frame=None, *, ax=None, alpha=0.6, cmap="magma", title=None
):
    """Show a contribution map Ω over the mean frame.

    Parameters
    ----------
    contribution : array-like of shape (height, width)
        The map, e.g. from ``estimator.contribution_map(X)`` (for a fitted estimator, see
        :func:`plot_contribution_map_from_estimator`). Per-run maps (n_runs, height, width)
        are refused: average them first (``maps.mean(axis=0)``), as the paper does over the
        runs of one mouse.
    mean_frame : array-like of shape (height, width), optional
        Drawn in grey underneath the map. Without it the map is drawn alone and opaque.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is created when omitted.
    alpha : float, default=0.6
        Opacity of the map over the mean frame, in [0, 1].
    cmap : str or matplotlib.colors.Colormap, default="magma"
        Colour map of the contribution.
    title : str, optional
        Axes title; defaults to ``"contribution map Ω"``.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the axes (and its colour bar).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If ``contribution`` or ``mean_frame`` is not a 2-D array, or their shapes differ.

    See Also
    --------
    plot_contribution_map_from_estimator : The map of a fitted model over its mean frame.
    plot_difference_map : Difference of two maps (e.g. two conditions).

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae.plotting import plot_contribution_map
    >>> rng = np.random.default_rng(0)
    >>> fig = plot_contribution_map(rng.random((8, 8)), mean_frame=rng.random((8, 8)))
    >>> len(fig.axes)  # the map and its colour bar
    2
    """
    _check_alpha(alpha, "plot_contribution_map")
    contribution = _as_image(contribution, "contribution")
    mean_frame = _check_mean_frame(mean_frame, contribution.shape)
    fig, ax = _figure_and_axes(ax, (5, 4))
    _draw_map(ax, contribution, mean_frame, cmap=cmap, alpha=alpha)
    ax.set_title("contribution map Ω" if title is None else title)
    return fig


def plot_contribution_map_from_estimator(
    estimator, X=None, *, ax=None, alpha=0.6, cmap="magma", title=None
):
    """Show a fitted model's contribution map Ω over its mean frame.

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model; ``estimator.contribution_map(X)`` is drawn over ``mean_frame_``.
    X : runs, optional
        Runs to map (see :meth:`~skvarae.SparseVARAutoencoder.contribution_map`); by default
        the training runs.
    ax, alpha, cmap, title
        As in :func:`plot_contribution_map`.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the axes (and its colour bar).

    Raises
    ------
    NotFittedError
        If the estimator is not fitted.
    """
    _check_fitted(estimator, ["mean_frame_"])
    return plot_contribution_map(
        estimator.contribution_map(X),
        estimator.mean_frame_,
        ax=ax,
        alpha=alpha,
        cmap=cmap,
        title=title,
    )


def plot_difference_map(
    map_a, map_b, mean_frame=None, *, labels=("A", "B"), ax=None, alpha=0.6, cmap="RdBu_r"
):
    """Show the difference Ω_a − Ω_b of two contribution maps on a colour scale centred on 0.

    As in the paper's Figure 3 (familiar minus novel condition), positive values mark pixels that
    drive the dynamics more in condition ``a``.

    Parameters
    ----------
    map_a, map_b : array-like of shape (height, width)
        The two contribution maps.
    mean_frame : array-like of shape (height, width), optional
        Drawn in grey underneath the difference.
    labels : tuple of two str, default=("A", "B")
        Names of the two maps, used in the title ``"Ω_A − Ω_B"`` (as subscripts).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is created when omitted.
    alpha : float, default=0.6
        Opacity of the difference over the mean frame, in [0, 1].
    cmap : str or matplotlib.colors.Colormap, default="RdBu_r"
        A diverging colour map; its centre is mapped to 0 and its limits to ``±max|Ω_a − Ω_b|``.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the axes (and its colour bar).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If a map or ``mean_frame`` is not 2-D, the shapes differ, or ``labels`` is not two
        strings.

    See Also
    --------
    plot_contribution_map : One map over the mean frame.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae.plotting import plot_difference_map
    >>> rng = np.random.default_rng(0)
    >>> fig = plot_difference_map(rng.random((8, 8)), rng.random((8, 8)), labels=("F", "N"))
    >>> vmin, vmax = fig.axes[0].images[0].get_clim()
    >>> bool(vmin == -vmax)
    True
    """
    map_a = _as_image(map_a, "map_a")
    map_b = _as_image(map_b, "map_b")
    if map_a.shape != map_b.shape:
        raise ValueError(
            f"map_a and map_b must have the same shape, got {map_a.shape} and {map_b.shape}."
        )
    if (
        isinstance(labels, str)
        or len(labels) != 2
        or not all(isinstance(label, str) for label in labels)
    ):
        raise ValueError(f"labels must be a pair of strings, got {labels!r}.")
    _check_alpha(alpha, "plot_difference_map")
    mean_frame = _check_mean_frame(mean_frame, map_a.shape)
    difference = map_a - map_b
    vmax = _symmetric_limit(difference)
    fig, ax = _figure_and_axes(ax, (5, 4))
    _draw_map(ax, difference, mean_frame, cmap=cmap, alpha=alpha, vmin=-vmax, vmax=vmax)
    ax.set_title(f"{_omega(labels[0])} − {_omega(labels[1])}")
    return fig


def plot_difference_map_test(
    result, mean_frame=None, *, level=0.05, labels=("A", "B"), outlines=None, ax=None,
    alpha=0.8, cmap="RdBu_r",
):
    """Show where two conditions differ beyond chance: the thresholded difference map.

    Pixels whose family-wise corrected p-value (from
    :func:`skvarae.contribution.difference_map_test`) is at most ``level`` are coloured by the
    difference Ω_a − Ω_b on a scale centred on 0; all other pixels show the mean frame only.

    Parameters
    ----------
    result : skvarae.stats.MapPermutationTestResult
        The result of ``difference_map_test`` (or ``skvarae.stats.permutation_test_maps``).
    mean_frame : array-like of shape (height, width), optional
        Drawn in grey underneath (e.g. the model's ``mean_frame_``).
    level : float, default=0.05
        Family-wise significance level, in (0, 1).
    labels : tuple of two str, default=("A", "B")
        Names of the two conditions, used in the title.
    outlines : array-like of bool of shape (height, width), optional
        Regions to outline in green (e.g. the cells whose couplings are known to change).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is created when omitted.
    alpha : float, default=0.8
        Opacity of the significant pixels over the mean frame, in [0, 1].
    cmap : str or matplotlib.colors.Colormap, default="RdBu_r"
        A diverging colour map; limits ``±max|Ω_a − Ω_b|`` over all pixels.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the axes (and its colour bar).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If ``result`` has no ``difference`` and ``pvalues`` of one shape, ``level`` is not in
        (0, 1), or ``mean_frame`` / ``outlines`` do not have the maps' shape.

    See Also
    --------
    plot_difference_map : The unthresholded difference of two maps.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae.stats import permutation_test_maps
    >>> from skvarae.plotting import plot_difference_map_test
    >>> rng = np.random.default_rng(0)
    >>> maps = rng.normal(1.0, 0.1, (8, 6, 6))
    >>> maps[4:, 1:3, 1:3] += 1.0
    >>> result = permutation_test_maps(maps[:4], maps[4:])
    >>> fig = plot_difference_map_test(result, labels=("F", "N"))
    >>> int(np.isfinite(fig.axes[0].images[-1].get_array().filled(np.nan)).sum())
    4
    """
    difference = getattr(result, "difference", None)
    pvalues = getattr(result, "pvalues", None)
    if difference is None or pvalues is None:
        raise ValueError(
            "result must be the result of difference_map_test (with difference and pvalues), "
            f"got {type(result).__name__}."
        )
    difference = _as_image(difference, "result.difference")
    pvalues = _as_image(pvalues, "result.pvalues")
    if difference.shape != pvalues.shape:
        raise ValueError(
            f"result.difference and result.pvalues must have one shape, got {difference.shape} "
            f"and {pvalues.shape}."
        )
    level = check_real(level, "level", min_val=0.0, max_val=1.0, closed="neither",
                       caller_name="plot_difference_map_test")
    if (
        isinstance(labels, str)
        or len(labels) != 2
        or not all(isinstance(label, str) for label in labels)
    ):
        raise ValueError(f"labels must be a pair of strings, got {labels!r}.")
    _check_alpha(alpha, "plot_difference_map_test")
    mean_frame = _check_mean_frame(mean_frame, difference.shape)
    vmax = _symmetric_limit(difference)
    shown = np.ma.masked_where(~(pvalues <= level), difference)
    fig, ax = _figure_and_axes(ax, (5, 4))
    _draw_map(ax, shown, mean_frame, cmap=cmap, alpha=alpha, vmin=-vmax, vmax=vmax)
    if outlines is not None:
        outlines = np.asarray(outlines, dtype=bool)
        if outlines.shape != difference.shape:
            raise ValueError(
                f"outlines must have the maps' shape {difference.shape}, got {outlines.shape}."
            )
        if outlines.any() and not outlines.all():
            ax.contour(outlines.astype(float), levels=[0.5], colors="lime", linewidths=1.0)
    n_significant = int(np.count_nonzero(pvalues <= level))
    ax.set_title(f"{_omega(labels[0])} − {_omega(labels[1])}, {n_significant} pixels at "
                 f"family-wise p ≤ {level:g}")
    return fig


# Characters with a meaning in matplotlib's mathtext, and how to write them literally.
_MATHTEXT_ESCAPES = {
    "\\": r"\backslash{}",
    "$": r"\$",
    "_": r"\_",
    "^": r"\^{}",
    "{": r"\{",
    "}": r"\}",
    "%": r"\%",
    "~": r"\sim{}",
    " ": r"\ ",
}
# Characters mathtext cannot show inside a subscript.
_MATHTEXT_UNSUPPORTED = frozenset('"#`')


def _omega(label):
    """``Ω`` with ``label`` as an upright subscript in mathtext; ``Ω(label)`` if mathtext can't."""
    if _MATHTEXT_UNSUPPORTED.intersection(label) or not label.isprintable():
        return "Ω(" + label.replace("$", r"\$") + ")"
    escaped = "".join(_MATHTEXT_ESCAPES.get(char, char) for char in label)
    return rf"$\Omega_{{\mathrm{{{escaped}}}}}$"


def _select_coef(coef, run):
    """(lags, d, d) matrices to draw and the figure title."""
    coef = _as_float_array(coef, "coef", (3, 4), "(lags, d, d) or (n_runs, lags, d, d)")
    if coef.shape[-1] != coef.shape[-2]:
        raise ValueError(
            f"coef must have shape (lags, d, d) or (n_runs, lags, d, d) with square matrices, "
            f"got shape {coef.shape}."
        )
    if coef.ndim == 3:
        if run is not None:
            raise ValueError(
                f"run={run!r} selects a run of coef of shape (n_runs, lags, d, d), but coef has "
                f"shape {coef.shape}."
            )
        return coef, "VAR coefficients"
    n_runs = coef.shape[0]
    if run is None:
        return coef.mean(axis=0), f"VAR coefficients, mean over {n_runs} runs"
    check_params({"run": run}, {"run": [Integer(0, n_runs - 1)]}, "plot_coef")
    return coef[run], f"VAR coefficients, run {run} of {n_runs}"


def plot_coef(coef, *, run=None, fig=None, cmap="RdBu_r"):
    """Show the VAR matrices A_1 … A_p, one panel per lag, on one colour scale centred on 0.

    Panel ``k`` shows ``A_k``: the pixel in row ``i``, column ``j`` is the effect of latent ``j``
    at lag ``k`` on latent ``i`` (statsmodels' order, as ``coef_``). Each panel title gives the
    number of non-zero coefficients, the sparsity chosen by the lasso.

    Parameters
    ----------
    coef : array-like of shape (lags, d, d) or (n_runs, lags, d, d)
        VAR matrices, e.g. a model's ``coef_`` (see :func:`plot_coef_from_estimator`).
    run : int, optional
        With per-run coefficients, the run to show. By default the mean over runs is shown, and
        the figure title says so.
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (one row of ``lags`` panels is added); a new one when omitted.
    cmap : str or matplotlib.colors.Colormap, default="RdBu_r"
        A diverging colour map; its centre is mapped to 0 and its limits to ``±max|coef|``,
        shared by all panels (one colour bar).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, with ``lags`` panels and a colour bar.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If ``coef`` has the wrong shape, or ``run`` is out of range or given for 3-D ``coef``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae.plotting import plot_coef
    >>> coef = np.random.default_rng(0).normal(size=(5, 2, 4, 4))  # 5 runs, VAR(2), d = 4
    >>> fig = plot_coef(coef, run=0)
    >>> len(fig.axes)  # two lags and the colour bar
    3
    """
    matrices, title = _select_coef(coef, run)
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator
    lags = matrices.shape[0]
    if fig is None:
        fig = plt.figure(figsize=(3.2 * lags + 1.2, 3.4), layout="constrained")
    axes = fig.subplots(1, lags, squeeze=False)[0]
    vmax = _symmetric_limit(matrices)
    for k, (ax, matrix) in enumerate(zip(axes, matrices), start=1):
        shown = ax.imshow(matrix, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
        n_nonzero = int(np.count_nonzero(matrix))
        ax.set_title(f"$A_{{{k}}}$ (lag {k}): {n_nonzero}/{matrix.size} non-zero")
        ax.set_xlabel("from latent j")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("to latent i")
    fig.colorbar(shown, ax=list(axes))
    fig.suptitle(title)
    return fig


def plot_coef_from_estimator(estimator, *, run=None, fig=None, cmap="RdBu_r"):
    """Show a fitted model's VAR matrices ``coef_`` (mean over training runs, or one run).

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model; its ``coef_`` (n_runs, lags, d, d) is drawn.
    run, fig, cmap
        As in :func:`plot_coef`.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, with ``lags`` panels and a colour bar.

    Raises
    ------
    NotFittedError
        If the estimator is not fitted.
    """
    _check_fitted(estimator, ["coef_"])
    return plot_coef(estimator.coef_, run=run, fig=fig, cmap=cmap)


def _check_dims(dims, d):
    if dims is None:
        return list(range(min(d, _DEFAULT_N_DIMS)))
    index = Integer(0, d - 1)
    if index.is_satisfied_by(dims):
        dims = [dims]
    try:
        dims = list(dims)
    except TypeError:
        raise ValueError(f"dims must be a sequence of latent indices, got {dims!r}.") from None
    bad = [i for i in dims if not index.is_satisfied_by(i)]
    if not dims or bad:
        raise ValueError(
            f"dims must be a non-empty sequence of integers in [0, {d}), got {dims!r}."
        )
    return [int(i) for i in dims]


def plot_forecast(latents, forecasts, *, dims=None, lags=None, fig=None):
    """Show latent time series z_t and their one-step VAR forecasts ẑ_t, one panel per dimension.

    As in the paper's Figure 4a: each panel shows one latent dimension over time (solid) and its
    forecast from the previous ``lags`` frames (dashed, same colour), which starts at frame
    ``lags``.

    The arrays come e.g. from :func:`skvarae.var.fit_var` and :func:`skvarae.var.forecast_var`;
    for a fitted model and one run, see :func:`plot_forecast_from_estimator`.

    Parameters
    ----------
    latents : array-like of shape (n_frames, d)
        The latent sequence of one run.
    forecasts : array-like of shape (n_frames - lags, d)
        ``forecasts[t]`` predicts ``latents[t + lags]`` (the layout of
        :func:`~skvarae.var.forecast_var`).
    dims : int or sequence of int, optional
        Latent dimensions to show, one panel each; by default the first (up to) four.
    lags : int, optional
        VAR order. By default inferred as ``n_frames - len(forecasts)``; when given it must
        agree.
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (one column of panels is added); a new one when omitted.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, with one panel (two lines) per dimension in ``dims``.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If the shapes of ``latents`` and ``forecasts`` do not match, ``lags`` disagrees with
        them, or ``dims`` holds an index out of range.

    Examples
    --------
    >>> import torch
    >>> from skvarae.var import fit_var, forecast_var
    >>> from skvarae.plotting import plot_forecast
    >>> Z = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> coef, intercept = fit_var(Z, alpha=0.01, lags=2)
    >>> fig = plot_forecast(Z.numpy(), forecast_var(Z, coef, intercept).numpy(), dims=[0, 2])
    >>> [len(ax.lines) for ax in fig.axes]
    [2, 2]
    """
    latents = _as_float_array(latents, "latents", (2,), "(n_frames, d)")
    forecasts = _as_float_array(forecasts, "forecasts", (2,), "(n_frames - lags, d)")
    n_frames, d = latents.shape
    if forecasts.shape[1] != d:
        raise ValueError(
            f"forecasts has {forecasts.shape[1]} latent dimensions but latents has {d}."
        )
    inferred = n_frames - forecasts.shape[0]
    if inferred < 1:
        raise ValueError(
            f"forecasts must have fewer frames than latents (n_frames - lags), got "
            f"{forecasts.shape[0]} forecasts for {n_frames} frames."
        )
    if lags is not None and lags != inferred:
        raise ValueError(
            f"lags={lags!r} does not match the shapes: {n_frames} frames and "
            f"{forecasts.shape[0]} forecasts imply lags={inferred}."
        )
    dims = _check_dims(dims, d)
    plt = _pyplot()
    if fig is None:
        fig = plt.figure(figsize=(8, 1.2 + 1.5 * len(dims)), layout="constrained")
    axes = fig.subplots(len(dims), 1, sharex=True, squeeze=False)[:, 0]
    frames = np.arange(n_frames)
    for ax, i in zip(axes, dims):
        (line,) = ax.plot(frames, latents[:, i], label="$z_t$")
        ax.plot(
            frames[inferred:], forecasts[:, i], "--", color=line.get_color(), label=r"$\hat z_t$"
        )
        ax.set_ylabel(f"latent {i}")
    axes[0].legend(loc="upper right", ncol=2, fontsize="small")
    axes[0].set_title(f"latents and one-step forecasts (lags={inferred})")
    axes[-1].set_xlabel("frame t")
    return fig


def plot_forecast_from_estimator(estimator, run, *, dims=None, fig=None):
    """Show one run's latents under a fitted model and their one-step VAR forecasts.

    The run is encoded with ``estimator.encode([run])``, and a sparse VAR is fitted to its
    latents at the model's ``alpha`` and ``lags`` (as
    :meth:`~skvarae.SparseVARAutoencoder.predict` does); then :func:`plot_forecast` draws them.

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model.
    run : array-like of shape (n_frames, height, width), or a path
        One run, with frames of the model's shape.
    dims, fig
        As in :func:`plot_forecast`.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, with one panel (two lines) per dimension in ``dims``.

    Raises
    ------
    NotFittedError
        If the estimator is not fitted.
    """
    _check_fitted(estimator, ["coef_"])
    latents = np.asarray(estimator.encode([run])[0], dtype=np.float64)
    Z = torch.from_numpy(latents)
    coef, intercept = fit_var(Z, estimator.alpha, estimator.lags)
    forecasts = forecast_var(Z, coef, intercept).numpy()
    return plot_forecast(latents, forecasts, dims=dims, lags=int(estimator.lags), fig=fig)


def _check_history(history):
    if isinstance(history, Mapping) or isinstance(history, str):
        raise ValueError("history must be a list of per-epoch dicts.")
    try:
        history = list(history)
    except TypeError:
        raise ValueError(
            f"history must be a list of per-epoch dicts, got {type(history).__name__}."
        ) from None
    if not history:
        raise ValueError("history is empty: no epoch to plot.")
    for epoch, record in enumerate(history):
        if not isinstance(record, Mapping) or "loss" not in record:
            raise ValueError(
                f"history[{epoch}] must be a dict with at least a 'loss' entry, got {record!r}."
            )
    return history


def plot_history(history, *, best_epoch=None, ax=None):
    """Show the training losses per epoch on a logarithmic scale.

    One line per loss term present: ``loss`` (the minimised total), ``reconstruction`` and, for
    end-to-end training, ``forecast``. A dotted vertical line marks ``best_epoch`` when given
    (see :func:`plot_history_from_estimator`).

    Parameters
    ----------
    history : list of dict
        Per-epoch records as in ``history_``. Each has ``"loss"``; ``"reconstruction"``,
        ``"forecast"`` and ``"epoch"`` (1-based; by default the position in the list) are used
        when present.
    best_epoch : int, optional
        The epoch whose weights were kept (``best_epoch_``), marked by a dotted line; 0 means
        the starting weights (no epoch improved the validation loss).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is created when omitted.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the axes. The y axis is logarithmic unless a loss is not positive.
        Validation losses (``validation_loss`` etc., when training monitored held-out tails)
        are drawn dashed.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If ``history`` is empty or a record is not a dict with a ``"loss"`` entry.

    Examples
    --------
    >>> from skvarae.plotting import plot_history
    >>> history = [{"epoch": e, "loss": 1 / e, "reconstruction": 0.5 / e} for e in (1, 2, 3)]
    >>> fig = plot_history(history)
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['loss', 'reconstruction']
    """
    if best_epoch is not None:
        check_params({"best_epoch": best_epoch}, {"best_epoch": [Integer(0, None)]}, "plot_history")
    history = _check_history(history)
    epochs = [record.get("epoch", position) for position, record in enumerate(history, start=1)]
    fig, ax = _figure_and_axes(ax, (6, 4))
    from matplotlib.ticker import MaxNLocator

    all_positive = True
    for term in _HISTORY_TERMS:
        if not any(term in record for record in history):
            continue
        values = np.array([record.get(term, np.nan) for record in history], dtype=float)
        all_positive &= bool(np.all(values[np.isfinite(values)] > 0))
        ax.plot(epochs, values, marker="o" if len(history) < 30 else None, label=term)
        held_out = f"validation_{term}"
        if any(held_out in record for record in history):
            values = np.array([record.get(held_out, np.nan) for record in history], dtype=float)
            all_positive &= bool(np.all(values[np.isfinite(values)] > 0))
            ax.plot(epochs, values, linestyle="--", label=held_out)
    if best_epoch is not None:
        ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch ({best_epoch})")
    if all_positive:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("training history")
    ax.legend()
    return fig


def plot_history_from_estimator(estimator, *, ax=None):
    """Show a fitted model's training losses ``history_``, marking ``best_epoch_``.

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model.
    ax : matplotlib.axes.Axes, optional
        As in :func:`plot_history`.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    NotFittedError
        If the estimator is not fitted.
    """
    _check_fitted(estimator, ["history_", "best_epoch_"])
    return plot_history(estimator.history_, best_epoch=estimator.best_epoch_, ax=ax)
