"""Parameter validation shared by every public function of skvarae: one rule, one place.

Built on scikit-learn's own tools (``validate_params``, ``Interval``, ``StrOptions``,
``check_scalar``, ``check_random_state``) with two house rules that scikit-learn's ``Interval``
does not apply:

- a numpy integer (``np.int64(2)``, an element of ``np.arange``) is an integer everywhere, and a
  bool (``True``) is not: :class:`Integer` and :class:`Real` refuse bools;
- a real parameter is finite unless its interval says otherwise: :class:`Real` refuses NaN and
  infinity.

Errors are scikit-learn's :class:`~sklearn.utils._param_validation.InvalidParameterError`, which is
both a ``ValueError`` and a ``TypeError``, and name the parameter and the offending value.

This module is private: its names may change without notice.
"""

import numbers
import operator

import numpy as np
import torch
from sklearn.utils import check_random_state as sklearn_check_random_state
from sklearn.utils._param_validation import (
    InvalidParameterError,
    Interval,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "InvalidParameterError",
    "Integer",
    "Real",
    "StrOptions",
    "validate_params",
    "check_params",
    "check_integer",
    "check_real",
    "check_frame_shape",
    "check_random_state",
    "resolve_device",
    "check_model_runs",
    "check_fitted_resolution",
    "N_JOBS",
    "RANDOM_STATE",
    "RANDOM_STATE_OR_GENERATOR",
]


def _closed(left, right):
    """``closed`` of an interval holding each of its given bounds (scikit-learn's spelling)."""
    return {(True, True): "both", (True, False): "left", (False, True): "right"}.get(
        (left is not None, right is not None), "neither"
    )


class Integer(Interval):
    """Integers in an interval (numpy integers included, bools excluded).

    Parameters
    ----------
    left, right : int or None, default=None
        Bounds; ``None`` is unbounded.
    closed : {"left", "right", "both", "neither"}, optional
        Which bounds belong to the interval; by default every given bound does.
    """

    def __init__(self, left=None, right=None, *, closed=None):
        super().__init__(numbers.Integral, left, right, closed=closed or _closed(left, right))

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


class Real(Interval):
    """Finite real numbers in an interval (integers and numpy scalars included, bools excluded).

    Parameters
    ----------
    left, right : float or None, default=None
        Bounds; ``None`` is unbounded (but infinity is still refused).
    closed : {"left", "right", "both", "neither"}, optional
        Which bounds belong to the interval; by default every given bound does.
    """

    def __init__(self, left=None, right=None, *, closed=None):
        super().__init__(numbers.Real, left, right, closed=closed or _closed(left, right))

    def is_satisfied_by(self, val):
        return (
            not isinstance(val, (bool, np.bool_))
            and super().is_satisfied_by(val)
            and bool(np.isfinite(val))
        )

    def __str__(self):
        return "a finite " + super().__str__()[2:]


#: ``n_jobs`` as joblib understands it: None, a positive number of jobs, or -1, -2, ... (all
#: cores, all but one, ...). Zero is refused.
N_JOBS = [Integer(None, -1), Integer(1, None), None]
#: Seeds, as :func:`sklearn.utils.check_random_state` understands them (bools refused).
RANDOM_STATE = [Integer(0, 2**32 - 1), np.random.RandomState, None]
#: The same, or a :class:`numpy.random.Generator`.
RANDOM_STATE_OR_GENERATOR = RANDOM_STATE + [np.random.Generator]


def check_params(params, constraints, caller_name):
    """Validate ``params`` (dict of name to value) against ``constraints`` (as ``validate_params``).

    Parameters
    ----------
    params : dict
        Parameter values by name.
    constraints : dict
        Lists of constraints by name (``Integer``, ``Real``, ``StrOptions``, types, None, ...).
    caller_name : str
        Named in the error message.

    Raises
    ------
    InvalidParameterError
        If a value satisfies none of its constraints (a ``ValueError`` and a ``TypeError``).
    """
    validate_parameter_constraints(constraints, params, caller_name=caller_name)


def check_integer(value, name, *, min_val=None, max_val=None, caller_name=None):
    """Return ``value`` as an int if it is an integer (not a bool) in ``[min_val, max_val]``.

    Parameters
    ----------
    value : object
        The value to check; a numpy integer is accepted.
    name : str
        Name of the parameter, for the message.
    min_val, max_val : int or None, default=None
        Inclusive bounds; ``None`` is unbounded.
    caller_name : str, optional
        Function or class named in the message.

    Returns
    -------
    value : int

    Raises
    ------
    InvalidParameterError
        If ``value`` is not an integer in range (a ``ValueError`` and a ``TypeError``).
    """
    check_params({name: value}, {name: [Integer(min_val, max_val)]}, caller_name or name)
    return operator.index(value)


def check_real(value, name, *, min_val=None, max_val=None, closed=None, caller_name=None):
    """Return ``value`` as a float if it is a finite real number (not a bool) in range.

    Parameters
    ----------
    value : object
        The value to check; numpy scalars and ints are accepted.
    name : str
        Name of the parameter, for the message.
    min_val, max_val : float or None, default=None
        Bounds; ``None`` is unbounded.
    closed : {"left", "right", "both", "neither"}, optional
        Which bounds are allowed; by default both given bounds.
    caller_name : str, optional
        Function or class named in the message.

    Returns
    -------
    value : float

    Raises
    ------
    InvalidParameterError
        If ``value`` is not a finite number in range.
    """
    check_params(
        {name: value}, {name: [Real(min_val, max_val, closed=closed)]}, caller_name or name
    )
    return float(value)


def check_frame_shape(frame_shape, *, min_side=1, name="frame_shape"):
    """Return ``frame_shape`` as a tuple of two ints ``(height, width)``, each ``>= min_side``.

    Parameters
    ----------
    frame_shape : sequence of two integers
        Height and width in pixels.
    min_side : int, default=1
        Smallest allowed side.
    name : str, default="frame_shape"
        Name of the parameter, for the message.

    Returns
    -------
    frame_shape : tuple of two int

    Raises
    ------
    InvalidParameterError
        If ``frame_shape`` is not a pair of integers ``>= min_side``.
    """
    if isinstance(frame_shape, (str, bytes)) or not hasattr(frame_shape, "__len__"):
        raise InvalidParameterError(
            f"{name} must be a pair of integers (height, width), got {frame_shape!r}."
        )
    if len(frame_shape) != 2:
        raise InvalidParameterError(
            f"{name} must be a pair of integers (height, width), got {len(frame_shape)} "
            f"entries: {tuple(frame_shape)!r}."
        )
    return tuple(
        check_integer(side, f"{name}[{k}]", min_val=min_side) for k, side in enumerate(frame_shape)
    )


def check_random_state(random_state, *, allow_generator=False, name="random_state"):
    """A numpy random generator from ``random_state`` (as scikit-learn's, bools refused).

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        ``None``: numpy's global RandomState; an int (numpy integers included) seeds a new
        RandomState; a RandomState (or, with ``allow_generator``, a Generator) is returned as is.
    allow_generator : bool, default=False
        Accept a :class:`numpy.random.Generator`.
    name : str, default="random_state"
        Name of the parameter, for the message.

    Returns
    -------
    rng : numpy.random.RandomState or numpy.random.Generator

    Raises
    ------
    InvalidParameterError
        If ``random_state`` is none of the above (a bool, a float, a negative int, ...).
    """
    constraints = RANDOM_STATE_OR_GENERATOR if allow_generator else RANDOM_STATE
    check_params({name: random_state}, {name: constraints}, name)
    if isinstance(random_state, np.random.Generator):
        return random_state
    return sklearn_check_random_state(random_state)


def resolve_device(device):
    """The :class:`torch.device` named by ``device``, checked to be usable here.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
        ``"mps"``, ...

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        If ``device`` is not a torch device, names a device that is not available here (CUDA
        or MPS missing, a CUDA index out of range), or cannot hold the model's tensors
        (``"meta"``). The message names ``device`` and its value.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda', 'cuda:<index>' "
            f"or 'mps' ({exc})."
        ) from None
    if resolved.type == "cpu":
        return resolved
    if resolved.type == "meta":
        raise ValueError(
            f"device={device!r} holds no data (a 'meta' tensor has shapes only); use 'auto', "
            "'cpu' or 'cuda'."
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} CUDA "
                "device(s) are available."
            )
        return resolved
    if resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device={device!r} was requested but MPS is not available.")
        return resolved
    try:  # any other backend (xpu, ...): usable if it can hold a tensor
        torch.empty(1, device=resolved)
    except Exception as exc:  # whatever the backend raises, the device cannot be used
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"device={device!r} is not available here ({reason}).") from None
    return resolved


def check_model_runs(estimator, X, *, name="X"):
    """Validate runs ``X`` for a fitted model: the data contract, and the model's frame shape.

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model (its public ``lags`` and ``frame_shape_`` are read).
    X : runs
        Any form :func:`skvarae.io.check_runs` accepts.
    name : str, default="X"
        Name of the argument, for the messages.

    Returns
    -------
    runs : list of ndarray of shape (n_frames_r, height, width)

    Raises
    ------
    NotFittedError
        If the estimator is not fitted.
    ValueError
        If ``X`` breaks the data contract (the message names the run), or its frames do not
        have the model's shape.
    """
    from .io import check_runs

    check_fitted_resolution(estimator)
    runs = check_runs(X, min_frames=estimator.lags + 2, name=name)
    shape = tuple(runs[0].shape[1:])
    if shape != tuple(estimator.frame_shape_):
        raise ValueError(
            f"{name} has frames of shape {shape}, but the model was fitted on frames of shape "
            f"{tuple(estimator.frame_shape_)}."
        )
    return runs


def check_fitted_resolution(estimator):
    """Check that ``spatial_bin`` is still the value the fitted networks were trained at.

    ``set_params(spatial_bin=...)`` after ``fit`` would otherwise feed the networks frames of
    another size (or save a file that cannot be loaded).

    Raises
    ------
    NotFittedError
        If the estimator is not fitted.
    ValueError
        If ``spatial_bin`` bins ``frame_shape_`` to another shape than the one the model was
        fitted at (the shape of ``offset_``).
    """
    from .binning import binned_shape

    check_is_fitted(estimator)
    fitted = tuple(estimator.offset_.shape)
    binned = binned_shape(tuple(estimator.frame_shape_), estimator.spatial_bin)
    if tuple(binned) != fitted:
        raise ValueError(
            f"spatial_bin={estimator.spatial_bin} bins frames of shape "
            f"{tuple(estimator.frame_shape_)} to {tuple(binned)}, but the model was fitted on "
            f"frames binned to {fitted}: set spatial_bin back to the value it was fitted with, "
            "or fit again."
        )
