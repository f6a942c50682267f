"""Permutation test of whether two sets of sequences share the same sparse VAR dynamics.

The paper's claim is that the embedded statistical model lets one compare temporal sequences of
one observational unit (e.g. runs of one mouse in a familiar and a novel condition). This module
makes that a test of

    H0: the runs of condition a and the runs of condition b follow the same VAR dynamics.

It is built in three layers, each usable alone:

- :func:`permutation_test` works on per-unit VAR coefficients (numpy arrays). It computes the
  statistic, relabels the units and returns a :class:`PermutationTestResult`.
- :func:`compare_latents` works on latent sequences (no network): it cuts runs into blocks when
  there are too few runs, fits one sparse VAR per unit with :func:`skvarae.var.fit_var` and calls
  :func:`permutation_test`. Its calibration can be checked on simulated VAR data.
- :func:`compare_sequences` works on movies and a fitted
  :class:`~skvarae.estimator.SparseVARAutoencoder`: it encodes every run with the trained network
  and calls :func:`compare_latents` at the model's ``alpha`` and ``lags``.

**Statistic.** With ``B_u`` the VAR matrices of unit ``u`` (all lags, shape (lags, d, d)), and
``a`` / ``b`` the units of each condition,

    T = || mean_{u in a} B_u  -  mean_{u in b} B_u ||_F,

the Frobenius norm of the difference of the two groups' mean coefficient matrices, taken over all
lags. Larger values are more extreme. The VAR fits are scale-free (see :func:`fit_var`), so ``T``
does not depend on the scale of the latents. The intercepts are not compared: they describe the
latents' means, not their dynamics.

**Null distribution.** Under H0 the units are exchangeable, so the condition labels are permuted
across units; the VAR fits are reused (neither the network nor the VARs are refitted). When the
number of distinct relabellings, ``C(n_a + n_b, n_a)``, is at most ``n_permutations`` they are
all enumerated (``exact=True``) and ``p = #{T* >= T} / C(n_a + n_b, n_a)``, the observed
labelling included. Otherwise ``n_permutations`` random permutations are drawn and
``p = (1 + #{T* >= T}) / (1 + n_permutations)`` (Phipson and Smyth, 2010), which is never zero
and keeps the test valid. In both cases ``P(p <= level) <= level`` under H0.

**Blocks.** With too few runs the test could never reach p <= 0.05; :func:`compare_latents` then
cuts runs into contiguous blocks (see its Notes for the rule), with a warning: blocks of one run
are not fully exchangeable.
"""

import math
import warnings
from dataclasses import dataclass, fields, replace
from itertools import combinations
from typing import Optional

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from ._validation import (
    N_JOBS,
    RANDOM_STATE_OR_GENERATOR,
    Integer,
    StrOptions,
    check_integer,
    check_model_runs,
    check_params,
    check_random_state,
    validate_params,
)
from .var import fit_var

__all__ = [
    "PermutationTestResult",
    "permutation_test",
    "compare_latents",
    "compare_sequences",
    "choose_n_blocks",
    "MapPermutationTestResult",
    "permutation_test_maps",
]

#: Significance level that the blocking rule and the resolution warning refer to.
LEVEL = 0.05

#: Relative tolerance of ``T* >= T``: a relabelling counts as at least as extreme as the observed
#: one when ``T* >= T - RTOL * max(T, max |B_u|)``. Relabellings that are equal to the observed
#: one in exact arithmetic (e.g. the mirror image of the observed split when ``n_a == n_b``, or
#: units with identical coefficients) then count even if rounding made them differ in the last
#: bits. Differences this small relative to the coefficients carry no statistical information.
RTOL = 1e-9

# Elements (float64) of the gathered (chunk, n_units, n_coefs) array of one chunk: 32 MiB.
_CHUNK_ELEMENTS = 2**22
_MAX_CHUNK = 4096


@dataclass(frozen=True, repr=False, eq=False)
class PermutationTestResult:
    """Result of :func:`permutation_test`, :func:`compare_latents` and :func:`compare_sequences`.

    Attributes
    ----------
    statistic : float
        Observed statistic ``T = ||mean_a(coef) - mean_b(coef)||_F`` (over all lags).
    pvalue : float
        Permutation p-value: ``#{T* >= T} / n_permutations`` when ``exact``, else
        ``(1 + #{T* >= T}) / (1 + n_permutations)``.
    null_distribution : ndarray of shape (n_permutations,)
        The statistic under each relabelling. When ``exact`` it holds every distinct
        relabelling, the observed one included (in the lexicographic order of the units given to
        condition a; the observed labelling is the first).
    n_permutations : int
        Number of relabellings evaluated: ``C(n_units_a + n_units_b, n_units_a)`` when ``exact``,
        else the number of random permutations.
    exact : bool
        Whether all distinct relabellings were enumerated.
    n_units_a, n_units_b : int
        Number of exchangeable units (runs, or blocks of runs) of each condition.
    min_pvalue : float
        The smallest p-value the test could have given with these units (its resolution). When
        ``n_units_a == n_units_b`` the statistic is the same for a labelling and its mirror
        image, so an exact test cannot go below ``2 / C(n, n_a)``.
    n_blocks : int or None
        Number of contiguous blocks each run was cut into (1: whole runs were the units).
        None from :func:`permutation_test`, which does not know where its units come from.
    block_length : int or None
        Number of frames in the shortest block when runs were cut into blocks, else None.
    """

    statistic: float
    pvalue: float
    null_distribution: np.ndarray
    n_permutations: int
    exact: bool
    n_units_a: int
    n_units_b: int
    min_pvalue: float
    n_blocks: Optional[int] = None
    block_length: Optional[int] = None

    def __repr__(self):
        parts = []
        for field in fields(self):
            if field.name == "null_distribution":
                continue
            value = getattr(self, field.name)
            if isinstance(value, float):
                parts.append(f"{field.name}={value:.4g}")
            else:
                parts.append(f"{field.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


# ------------------------------------------------------------------------------------ helpers
def _check_n_permutations(n_permutations, caller_name):
    return check_integer(n_permutations, "n_permutations", min_val=1, caller_name=caller_name)


def _check_rng(random_state):
    """A numpy Generator or RandomState; both provide ``.random(size)``."""
    return check_random_state(random_state, allow_generator=True)


def _min_pvalue(n_a, n_b, n_permutations):
    """Smallest p-value attainable with n_a vs n_b exchangeable units."""
    n_relabellings = math.comb(n_a + n_b, n_a)
    if n_relabellings <= n_permutations:
        # T is symmetric in the two groups: with equal sizes a labelling and its mirror image
        # give the same statistic, so at least two relabellings reach the observed value.
        return (2 if n_a == n_b else 1) / n_relabellings
    return 1 / (1 + n_permutations)


def _as_units(coefs, name):
    coefs = np.asarray(coefs, dtype=np.float64)
    if coefs.ndim < 2:
        raise ValueError(
            f"{name} must have shape (n_units, lags, d, d) (at least 2-D), got shape "
            f"{coefs.shape}."
        )
    if coefs.shape[0] == 0:
        raise ValueError(f"{name} holds no units: each condition needs at least one.")
    if not np.all(np.isfinite(coefs)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return coefs.reshape(coefs.shape[0], -1)


def _statistics(flat, units_a, n_b):
    """T for each relabelling.

    Parameters
    ----------
    flat : ndarray of shape (n_units, n_coefs)
    units_a : ndarray of shape (n_relabellings, n_a)
        Sorted indices of the units labelled a.
    n_b : int

    Returns
    -------
    ndarray of shape (n_relabellings,)
    """
    n_units = flat.shape[0]
    in_a = np.zeros((units_a.shape[0], n_units), dtype=bool)
    np.put_along_axis(in_a, units_a, True, axis=1)
    # Indices of the units labelled b, ascending (a stable sort puts the False entries first).
    units_b = np.argsort(in_a, axis=1, kind="stable")[:, :n_b]
    # Each group mean is summed over its units in ascending order, so one set of units always
    # gives bitwise the same mean, whatever the chunk or the labelling it appears in.
    diff = flat[units_a].mean(axis=1) - flat[units_b].mean(axis=1)
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


# ---------------------------------------------------------------------------- permutation test
def permutation_test(coefs_a, coefs_b, *, n_permutations=1000, random_state=None, n_jobs=None):
    """Permutation test of equal mean VAR coefficients in two groups of exchangeable units.

    The statistic is ``T = ||mean_a(coef) - mean_b(coef)||_F``: the Frobenius norm of the
    difference between the groups' mean coefficient matrices, over all lags. Its null
    distribution is obtained by permuting the condition labels across units, reusing the
    coefficients (nothing is refitted).

    Parameters
    ----------
    coefs_a : array-like of shape (n_units_a, lags, d, d)
        VAR coefficients of each unit of condition a (any trailing shape is accepted; it is
        flattened).
    coefs_b : array-like of shape (n_units_b, lags, d, d)
        Same for condition b; the trailing shape must match ``coefs_a``.
    n_permutations : int, default=1000
        When the number of distinct relabellings ``C(n_units_a + n_units_b, n_units_a)`` is at
        most this, all of them are enumerated (exact test). Otherwise, the number of random
        permutations.
    random_state : int, numpy Generator, RandomState instance or None, default=None
        Source of the random permutations (unused by an exact test). All permutations are drawn
        from it up front, so the result does not depend on ``n_jobs``.
    n_jobs : int or None, default=None
        Number of joblib jobs (threads by default) that compute the statistic of the
        relabellings, in chunks. ``None`` means 1 unless in a ``joblib.parallel_config``
        context; -1 means all processors. The result is identical for every ``n_jobs``.

    Returns
    -------
    result : PermutationTestResult
        ``statistic``, ``pvalue``, ``null_distribution`` (one value per relabelling),
        ``n_permutations`` (relabellings evaluated), ``exact``, ``n_units_a``, ``n_units_b``,
        ``min_pvalue``; ``n_blocks`` and ``block_length`` are None.

    Raises
    ------
    ValueError
        If a group has no units, the trailing shapes differ, a coefficient is not finite, or
        ``n_permutations < 1``.

    See Also
    --------
    compare_latents : Fit the VARs on latent sequences and run this test.
    compare_sequences : The same from movies, with a fitted SparseVARAutoencoder.

    Notes
    -----
    p-value. Exact: ``p = #{T* >= T} / C`` over all ``C`` relabellings, the observed one
    included. Random: ``p = (1 + #{T* >= T}) / (1 + n_permutations)`` (Phipson and Smyth,
    "Permutation p-values should never be zero", Stat. Appl. Genet. Mol. Biol. 9, 2010). Both
    are valid: ``P(p <= level) <= level`` when the units are exchangeable under H0.

    Ties. ``T* >= T`` is evaluated as ``T* >= T - RTOL * max(T, max |coef|)`` with
    ``RTOL = 1e-9``, so that relabellings equal to the observed one in exact arithmetic count
    although rounding may make them differ in the last bits (the p-value is never lowered by
    rounding).

    Resolution. ``T`` is symmetric in the two groups, so with ``n_units_a == n_units_b`` a
    labelling and its mirror image have the same statistic and an exact test cannot go below
    ``2 / C``; ``result.min_pvalue`` reports the smallest attainable p-value.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae.stats import permutation_test
    >>> rng = np.random.default_rng(0)
    >>> coefs_a = rng.normal(0.0, 0.1, (3, 1, 2, 2))
    >>> coefs_b = rng.normal(0.5, 0.1, (3, 1, 2, 2))
    >>> result = permutation_test(coefs_a, coefs_b)
    >>> result.exact, result.n_permutations, result.pvalue  # 2 of the 20 splits: observed, mirror
    (True, 20, 0.1)
    """
    n_permutations = _check_n_permutations(n_permutations, "permutation_test")
    check_params(
        {"random_state": random_state, "n_jobs": n_jobs},
        {"random_state": RANDOM_STATE_OR_GENERATOR, "n_jobs": N_JOBS},
        "permutation_test",
    )
    flat_a = _as_units(coefs_a, "coefs_a")
    flat_b = _as_units(coefs_b, "coefs_b")
    shape_a, shape_b = np.shape(coefs_a)[1:], np.shape(coefs_b)[1:]
    if shape_a != shape_b:
        raise ValueError(
            f"coefs_a and coefs_b must have the same shape per unit; got {shape_a} and {shape_b}."
        )
    n_a, n_b = flat_a.shape[0], flat_b.shape[0]
    n_units = n_a + n_b
    flat = np.concatenate([flat_a, flat_b])

    n_relabellings = math.comb(n_units, n_a)
    exact = n_relabellings <= n_permutations
    if exact:
        # Lexicographic order: the first combination, range(n_a), is the observed labelling.
        units_a = np.array(list(combinations(range(n_units), n_a)), dtype=np.intp)
    else:
        rng = _check_rng(random_state)
        # Uniform random permutations (argsort of i.i.d. uniforms), all drawn up front.
        order = np.argsort(rng.random((n_permutations, n_units)), axis=1)
        units_a = np.sort(order[:, :n_a], axis=1)

    observed = float(_statistics(flat, np.arange(n_a)[None, :], n_b)[0])
    # Chunk size fixed by the problem size only (not by n_jobs), so results never depend on it.
    chunk = int(np.clip(_CHUNK_ELEMENTS // (n_units * flat.shape[1]), 1, _MAX_CHUNK))
    starts = range(0, units_a.shape[0], chunk)
    parts = Parallel(n_jobs=None if n_jobs is None else int(n_jobs), prefer="threads")(
        delayed(_statistics)(flat, units_a[s : s + chunk], n_b) for s in starts
    )
    null = np.concatenate(parts)

    tol = RTOL * max(observed, float(np.abs(flat).max()))
    count = int(np.count_nonzero(null >= observed - tol))
    n_evaluated = int(null.shape[0])
    pvalue = count / n_evaluated if exact else (1 + count) / (1 + n_evaluated)
    return PermutationTestResult(
        statistic=observed,
        pvalue=float(pvalue),
        null_distribution=null,
        n_permutations=n_evaluated,
        exact=bool(exact),
        n_units_a=n_a,
        n_units_b=n_b,
        min_pvalue=float(_min_pvalue(n_a, n_b, n_permutations)),
    )


# -------------------------------------------------------------------------------- from latents
def _check_latents(latents, name, lags):
    """A list of float64 arrays (n_frames_r, d)."""
    if isinstance(latents, torch.Tensor):
        latents = latents.detach().cpu().numpy()
    if isinstance(latents, np.ndarray):
        if latents.ndim == 2:
            raise ValueError(
                f"{name} is a single 2-D array of shape {latents.shape}; pass a list of runs "
                f"(e.g. [{name}]) or a 3-D array (n_runs, n_frames, d)."
            )
        if latents.ndim != 3:
            raise ValueError(
                f"{name} must be a 3-D array (n_runs, n_frames, d) or a list of (n_frames, d) "
                f"arrays; got an array of shape {latents.shape}."
            )
        latents = list(latents)
    elif not isinstance(latents, (list, tuple)):
        raise TypeError(
            f"{name} must be a list of (n_frames, d) arrays or a 3-D array, got "
            f"{type(latents).__name__}."
        )
    if len(latents) == 0:
        raise ValueError(f"{name} holds no runs: each condition needs at least one.")
    runs = []
    for index, run in enumerate(latents):
        if isinstance(run, torch.Tensor):
            run = run.detach().cpu().numpy()
        run = np.asarray(run, dtype=np.float64)
        if run.ndim != 2:
            raise ValueError(
                f"Run {index} of {name} must be 2-D (n_frames, d), got shape {run.shape}."
            )
        if run.shape[0] < lags + 2:
            raise ValueError(
                f"Run {index} of {name} has {run.shape[0]} frames; a VAR({lags}) needs at "
                f"least lags + 2 = {lags + 2}."
            )
        if runs and run.shape[1] != runs[0].shape[1]:
            raise ValueError(
                f"Run {index} of {name} has d={run.shape[1]} latent dimensions, but run 0 has "
                f"d={runs[0].shape[1]}."
            )
        if not np.all(np.isfinite(run)):
            raise ValueError(f"Run {index} of {name} contains NaN or infinity.")
        runs.append(run)
    return runs


@validate_params(
    {
        "lengths_a": ["array-like"],
        "lengths_b": ["array-like"],
        "n_permutations": [Integer(1, None)],
        "min_block_length": [Integer(1, None)],
    },
    prefer_skip_nested_validation=True,
)
def choose_n_blocks(lengths_a, lengths_b, n_permutations, min_block_length):
    """Blocks per run chosen by :func:`compare_latents` with ``n_blocks="auto"``.

    Whole runs (1) when they suffice for the test to reach ``p <= 0.05`` (or nothing can help,
    because ``n_permutations`` is too small); else the fewest blocks per run that do, each of at
    least ``min_block_length`` frames; else as many such blocks as the shortest run allows.

    Parameters
    ----------
    lengths_a, lengths_b : sequence of int
        Number of frames of each run of the two conditions.
    n_permutations : int
        Number of permutations of the test.
    min_block_length : int
        Fewest frames per block.

    Returns
    -------
    n_blocks : int
        Contiguous blocks per run (1: whole runs).

    Examples
    --------
    >>> choose_n_blocks([1000] * 4, [1000] * 4, 1000, 50)  # 70 relabellings: enough
    1
    >>> choose_n_blocks([1000], [1000], 1000, 50)  # one run each: cut into blocks
    4
    """
    n_a, n_b = len(lengths_a), len(lengths_b)
    if _min_pvalue(n_a, n_b, n_permutations) <= LEVEL or 1 / (1 + n_permutations) > LEVEL:
        # Whole runs suffice, or no number of units can help (too few permutations).
        return 1
    max_blocks = min(min(lengths_a), min(lengths_b)) // min_block_length
    for k in range(2, max_blocks + 1):
        if _min_pvalue(k * n_a, k * n_b, n_permutations) <= LEVEL:
            return k
    return max(max_blocks, 1)


def _split(run, n_blocks):
    """Contiguous blocks covering the run, lengths differing by at most one frame."""
    return np.array_split(run, n_blocks) if n_blocks > 1 else [run]


def _fit_units(units, alpha, lags):
    """One sparse VAR per unit, batching units of equal length: (n_units, lags, d, d)."""
    d = units[0].shape[1]
    coefs = np.empty((len(units), lags, d, d))
    by_length = {}
    for index, unit in enumerate(units):
        by_length.setdefault(unit.shape[0], []).append(index)
    with torch.no_grad():
        for indices in by_length.values():
            Z = torch.from_numpy(np.stack([units[i] for i in indices]))
            coef, _ = fit_var(Z, alpha, lags)
            coefs[indices] = coef.numpy()
    return coefs


def _check_options(
    n_permutations, n_blocks, min_block_length, lags, caller_name, random_state, n_jobs
):
    n_permutations = _check_n_permutations(n_permutations, caller_name)
    check_params(
        {"random_state": random_state, "n_jobs": n_jobs},
        {"random_state": RANDOM_STATE_OR_GENERATOR, "n_jobs": N_JOBS},
        caller_name,
    )
    lags = check_integer(lags, "lags", min_val=1, caller_name=caller_name)
    check_integer(min_block_length, "min_block_length", min_val=lags + 2, caller_name=caller_name)
    check_params(
        {"n_blocks": n_blocks}, {"n_blocks": [StrOptions({"auto"}), Integer(1)]}, caller_name
    )
    return n_permutations


def compare_latents(
    latents_a,
    latents_b,
    alpha,
    lags=1,
    *,
    n_permutations=1000,
    random_state=None,
    n_jobs=None,
    n_blocks="auto",
    min_block_length=50,
):
    """Test whether two sets of latent sequences share the same sparse VAR dynamics.

    Each exchangeable unit (a run, or a contiguous block of a run, see ``n_blocks``) gets its own
    sparse VAR fit by :func:`skvarae.var.fit_var` at ``alpha`` and ``lags``; then
    :func:`permutation_test` compares the two groups' mean coefficient matrices.

    Parameters
    ----------
    latents_a : list of array-like of shape (n_frames_r, d), or ndarray (n_runs, n_frames, d)
        Latent sequences (runs) of condition a; lengths may differ.
    latents_b : list of array-like of shape (n_frames_r, d), or ndarray (n_runs, n_frames, d)
        Latent sequences of condition b, with the same ``d``.
    alpha : float
        ℓ1 penalty of the VAR fits (see :func:`skvarae.var.fit_var`).
    lags : int, default=1
        VAR order p.
    n_permutations : int, default=1000
        Exact enumeration when all relabellings fit, else the number of random permutations
        (see :func:`permutation_test`).
    random_state : int, numpy Generator, RandomState instance or None, default=None
        Source of the random permutations.
    n_jobs : int or None, default=None
        Number of joblib jobs for the permutations; the result does not depend on it.
    n_blocks : "auto" or int, default="auto"
        Number of contiguous blocks each run is cut into (blocks of one run differ in length by
        at most one frame; no frame is dropped). ``1`` uses whole runs as units. ``"auto"``
        applies the blocking rule below.
    min_block_length : int, default=50
        Fewest frames a block may have (at least ``lags + 2``). With an integer ``n_blocks > 1``,
        a run shorter than ``n_blocks * min_block_length`` raises ``ValueError``.

    Returns
    -------
    result : PermutationTestResult
        As from :func:`permutation_test`, with ``n_blocks`` (blocks per run, 1 for whole runs)
        and ``block_length`` (frames of the shortest block, None for whole runs).

    Raises
    ------
    ValueError
        If a group holds no runs, a run is not 2-D, is shorter than ``lags + 2`` frames or than
        the blocks need, contains NaN or infinity, the latent dimensions differ, or an option is
        out of range.

    Warns
    -----
    UserWarning
        When runs are cut into blocks (blocks are not fully exchangeable), and when the test
        cannot reach ``p <= 0.05`` with the units it has.

    See Also
    --------
    permutation_test : The test on per-unit coefficients.
    compare_sequences : The same from movies, with a fitted SparseVARAutoencoder.

    Notes
    -----
    Blocking rule (``n_blocks="auto"``). With few runs the test cannot reach a small p-value:
    the smallest attainable one is ``1 / C(n_a + n_b, n_a)`` for an exact test, or
    ``2 / C(n_a + n_b, n_a)`` when ``n_a == n_b`` (the statistic does not change when the two
    groups are swapped), and ``1 / (1 + n_permutations)`` for random permutations. When this
    exceeds 0.05, every run is cut into ``k`` contiguous blocks, with ``k`` the smallest number
    for which ``k * n_a`` vs ``k * n_b`` units can reach ``p <= 0.05`` (fewest cuts: blocks as
    long as possible, fewest boundaries between dependent blocks), subject to every block
    having at least ``min_block_length`` frames. For example 1 vs 1 runs give 4 blocks per run
    (smallest p = 2/70), 2 vs 2 runs 2 blocks per run (2/70), 1 vs 2 runs 3 blocks per run
    (1/84), and 4 vs 4 runs are not cut (2/70). If the shortest run cannot hold enough blocks
    of ``min_block_length`` frames, the largest number of blocks it can hold is used and a
    warning says that ``p <= 0.05`` is out of reach.

    Blocks of one run are not fully exchangeable: neighbouring blocks are serially dependent,
    and whatever distinguishes one run from another (not only the condition) is shared by its
    blocks. With one run per condition the test then asks whether the two *runs* differ, and
    rejects whenever they do for any reason. Its p-value is approximate; prefer several runs
    per condition. In simulations (``benchmarks/bench_test_calibration.py``: d = 3, 200 frames
    per run, 1000 datasets) blocked tests hold their size when all runs share one VAR (1 vs 1:
    0.036, 2 vs 2: 0.033, attainable size 0.029), but when every run has its own VAR matrix
    (entries perturbed with standard deviation 0.1, no condition effect) they reject a true H0
    in 29 % (1 vs 1) and 16 % (2 vs 2) of datasets, while tests on 4 vs 4 or 8 vs 8 whole runs
    stay at or below 0.05.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae.stats import compare_latents
    >>> rng = np.random.default_rng(0)
    >>> latents_a = [rng.normal(size=(100, 3)) for _ in range(4)]
    >>> latents_b = [rng.normal(size=(100, 3)) for _ in range(4)]
    >>> result = compare_latents(latents_a, latents_b, alpha=0.01, random_state=0)
    >>> result.exact, result.n_permutations, result.n_blocks
    (True, 70, 1)
    """
    return _compare_latents(
        latents_a,
        latents_b,
        alpha,
        lags,
        n_permutations=n_permutations,
        random_state=random_state,
        n_jobs=n_jobs,
        n_blocks=n_blocks,
        min_block_length=min_block_length,
        stacklevel=3,
    )


def _compare_latents(
    latents_a,
    latents_b,
    alpha,
    lags,
    *,
    n_permutations,
    random_state,
    n_jobs,
    n_blocks,
    min_block_length,
    stacklevel,
):
    """compare_latents; warnings point ``stacklevel`` frames up."""
    n_permutations = _check_options(
        n_permutations, n_blocks, min_block_length, lags, "compare_latents", random_state, n_jobs
    )
    runs_a = _check_latents(latents_a, "latents_a", lags)
    runs_b = _check_latents(latents_b, "latents_b", lags)
    if runs_a[0].shape[1] != runs_b[0].shape[1]:
        raise ValueError(
            f"latents_b has d={runs_b[0].shape[1]} latent dimensions, but latents_a has "
            f"d={runs_a[0].shape[1]}."
        )
    lengths_a = [run.shape[0] for run in runs_a]
    lengths_b = [run.shape[0] for run in runs_b]

    if n_blocks == "auto":
        k = choose_n_blocks(lengths_a, lengths_b, n_permutations, min_block_length)
    else:
        k = int(n_blocks)
        if k > 1:
            for name, lengths in (("latents_a", lengths_a), ("latents_b", lengths_b)):
                for index, length in enumerate(lengths):
                    if length // k < min_block_length:
                        raise ValueError(
                            f"Run {index} of {name} has {length} frames, too short for "
                            f"n_blocks={k} blocks of at least min_block_length="
                            f"{min_block_length} frames (needs {k * min_block_length})."
                        )

    units_a = [block for run in runs_a for block in _split(run, k)]
    units_b = [block for run in runs_b for block in _split(run, k)]
    coefs = _fit_units(units_a + units_b, alpha, lags)
    result = permutation_test(
        coefs[: len(units_a)],
        coefs[len(units_a) :],
        n_permutations=n_permutations,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    block_length = min(unit.shape[0] for unit in units_a + units_b) if k > 1 else None
    result = replace(result, n_blocks=k, block_length=block_length)

    if k > 1:
        warnings.warn(
            f"With {len(runs_a)} vs {len(runs_b)} runs, each run was cut into {k} contiguous "
            f"blocks (at least {block_length} frames each) to serve as units of the permutation "
            "test. Blocks of one run are not fully exchangeable (serial dependence, and "
            "anything specific to a run is shared by its blocks), so the p-value is "
            "approximate, and any difference between the runs, not only the condition, can "
            "make it small. Prefer several runs per condition.",
            UserWarning,
            stacklevel=stacklevel,
        )
    if result.min_pvalue > LEVEL:
        if 1 / (1 + n_permutations) > LEVEL:
            reason = f"n_permutations={n_permutations} is too small"
        elif n_blocks == "auto":
            reason = (
                f"the runs are too short to be cut into enough blocks of at least "
                f"min_block_length={min_block_length} frames"
            )
        else:
            reason = f"there are too few units with n_blocks={k}"
        warnings.warn(
            f"The test cannot reach p <= {LEVEL}: with {result.n_units_a} vs "
            f"{result.n_units_b} units the smallest attainable p-value is "
            f"{result.min_pvalue:.3g} ({reason}).",
            UserWarning,
            stacklevel=stacklevel,
        )
    return result


# -------------------------------------------------------------------------------- from movies
def compare_sequences(
    estimator,
    X_a,
    X_b,
    *,
    n_permutations=1000,
    random_state=None,
    n_jobs=None,
    n_blocks="auto",
    min_block_length=50,
):
    """Test whether two sets of runs share the same dynamics under a fitted model.

    Every run of both conditions is encoded by the trained network (``estimator.encode``); one
    sparse VAR is fitted per run (or per block of a run) at the model's ``alpha`` and ``lags``;
    the condition labels are permuted across these units to test H0: both sets of runs share the
    same dynamics. Neither the network nor the VARs are refitted under permutation.

    Parameters
    ----------
    estimator : SparseVARAutoencoder
        A fitted model (anything with ``encode``, ``alpha``, ``lags`` and ``frame_shape_``).
    X_a : array-like of shape (n_runs_a, n_frames, height, width), or list of runs
        Runs of condition a (any form the estimator accepts; lengths may differ).
    X_b : array-like of shape (n_runs_b, n_frames, height, width), or list of runs
        Runs of condition b, with frames of the same shape.
    n_permutations : int, default=1000
        Exact enumeration when all relabellings fit, else the number of random permutations.
    random_state : int, numpy Generator, RandomState instance or None, default=None
        Source of the random permutations.
    n_jobs : int or None, default=None
        Number of joblib jobs for the permutations; the result does not depend on it.
    n_blocks : "auto" or int, default="auto"
        Blocks per run (see :func:`compare_latents`); ``"auto"`` cuts runs into blocks only when
        there are too few runs for the test to reach ``p <= 0.05``.
    min_block_length : int, default=50
        Fewest frames per block.

    Returns
    -------
    result : PermutationTestResult
        ``statistic`` (Frobenius norm of the difference of the mean VAR matrices), ``pvalue``,
        ``null_distribution``, ``n_permutations``, ``exact``, and how the units were formed
        (``n_units_a``, ``n_units_b``, ``n_blocks``, ``block_length``, ``min_pvalue``).

    Raises
    ------
    ValueError
        If a group holds no runs, its frames do not have the model's shape (the message names
        the group), a run is too short, or an option is out of range.

    Warns
    -----
    UserWarning
        When runs are cut into blocks, and when ``p <= 0.05`` is out of reach.

    See Also
    --------
    compare_latents : The test on latent sequences (blocking rule in its Notes).
    permutation_test : The test on per-unit coefficients (statistic and p-value in its Notes).

    Notes
    -----
    All runs are encoded by the same network, so their latent coordinates are comparable. The
    latents of the test runs are those of the trained encoder: if the runs were also used for
    training, the network was chosen with both conditions in view but without their labels, so
    permuting the labels remains valid.

    Examples
    --------
    >>> from skvarae.datasets import make_calcium_movies
    >>> from skvarae.estimator import SparseVARAutoencoder
    >>> from skvarae.stats import compare_sequences
    >>> data = make_calcium_movies(n_runs=8, n_frames=60, random_state=0)
    >>> X = data.movies  # runs alternate between condition 0 and condition 1
    >>> model = SparseVARAutoencoder(max_epochs=2, random_state=0).fit(X)
    >>> result = compare_sequences(model, X[0::2], X[1::2], random_state=0)
    >>> result.n_units_a, result.n_units_b, result.exact, result.n_permutations
    (4, 4, True, 70)
    """
    check_is_fitted(estimator)
    lags = int(estimator.lags)
    _check_options(
        n_permutations, n_blocks, min_block_length, lags, "compare_sequences", random_state, n_jobs
    )
    groups = {
        name: check_model_runs(estimator, X, name=name) for name, X in (("X_a", X_a), ("X_b", X_b))
    }
    return _compare_latents(
        list(estimator.encode(groups["X_a"])),
        list(estimator.encode(groups["X_b"])),
        estimator.alpha,
        lags,
        n_permutations=n_permutations,
        random_state=random_state,
        n_jobs=n_jobs,
        n_blocks=n_blocks,
        min_block_length=min_block_length,
        stacklevel=3,
    )


# ------------------------------------------------------------------------- maps: per pixel
@dataclass(frozen=True, repr=False, eq=False)
class MapPermutationTestResult:
    """Result of :func:`permutation_test_maps` and :func:`skvarae.contribution.difference_map_test`.

    Attributes
    ----------
    difference : ndarray of shape (height, width)
        ``mean_a(maps) - mean_b(maps)``, the observed difference map (positive where condition a
        is larger).
    pvalues : ndarray of shape (height, width)
        Family-wise corrected p-value of every pixel, by the maximum statistic: the share of
        relabellings whose *largest* ``|difference|`` over all pixels reaches the pixel's
        observed ``|difference|``. ``pvalues <= level`` controls the probability of any false
        positive pixel at ``level``.
    pvalues_uncorrected : ndarray of shape (height, width)
        Per-pixel permutation p-values without correction.
    null_max : ndarray of shape (n_permutations,)
        ``max_p |difference|`` under each relabelling (the observed one first when ``exact``).
    n_permutations : int
        Relabellings evaluated.
    exact : bool
        Whether all distinct relabellings were enumerated.
    n_units_a, n_units_b : int
        Number of runs (units) of each condition.
    min_pvalue : float
        The smallest attainable p-value (see :class:`PermutationTestResult`).
    """

    difference: np.ndarray
    pvalues: np.ndarray
    pvalues_uncorrected: np.ndarray
    null_max: np.ndarray
    n_permutations: int
    exact: bool
    n_units_a: int
    n_units_b: int
    min_pvalue: float

    def significant(self, level=LEVEL):
        """Boolean mask (height, width) of the pixels with family-wise p-value <= ``level``."""
        return self.pvalues <= level

    def __repr__(self):
        return (
            f"{type(self).__name__}(shape={self.difference.shape}, "
            f"n_significant={int(np.count_nonzero(self.significant()))} at {LEVEL}, "
            f"min p={float(self.pvalues.min()):.4g}, n_permutations={self.n_permutations}, "
            f"exact={self.exact}, n_units_a={self.n_units_a}, n_units_b={self.n_units_b})"
        )


def _as_maps(maps, name):
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_runs, height, width), got shape {maps.shape}."
        )
    if maps.shape[0] == 0:
        raise ValueError(f"{name} holds no runs: each condition needs at least one.")
    if not np.all(np.isfinite(maps)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return maps


def permutation_test_maps(maps_a, maps_b, *, n_permutations=1000, random_state=None):
    """Per-pixel permutation test of equal mean maps, family-wise corrected by the maximum.

    The statistic of pixel p is ``T[p] = |mean_a maps[:, p] - mean_b maps[:, p]|``. Condition
    labels are permuted across runs (the exchangeable units under H0: both conditions share
    the same maps); under each relabelling the largest statistic over all pixels,
    ``M* = max_p T*[p]``, is recorded, and the family-wise corrected p-value of pixel p is the
    share of relabellings with ``M* >= T[p]`` (Westfall and Young's single-step maxT, as in
    nilearn's ``permuted_ols``). Counting and tolerance as in :func:`permutation_test`: exact
    enumeration when ``C(n_a + n_b, n_a) <= n_permutations`` (``#{M* >= T} / C``, the observed
    labelling included), else ``(1 + #{M* >= T}) / (1 + n_permutations)``.

    Parameters
    ----------
    maps_a : array-like of shape (n_runs_a, height, width)
        One map per run of condition a (e.g. ``contribution_map(model, X_a, per_run=True)``).
    maps_b : array-like of shape (n_runs_b, height, width)
        Same for condition b.
    n_permutations : int, default=1000
        Exact enumeration when all relabellings fit, else the number of random permutations.
    random_state : int, numpy Generator, RandomState instance or None, default=None
        Source of the random permutations (unused by an exact test).

    Returns
    -------
    result : MapPermutationTestResult
        ``difference``, family-wise ``pvalues``, ``pvalues_uncorrected``, ``null_max`` and the
        bookkeeping of the permutations.

    Raises
    ------
    ValueError
        If a group holds no maps, the map shapes differ, a value is not finite, or
        ``n_permutations < 1``.

    Notes
    -----
    Under H0 the probability that *any* pixel has ``pvalues <= level`` is at most ``level``
    (strong control for the maxT procedure under subset pivotality). With equal group sizes
    and exact enumeration a relabelling and its mirror image give the same statistics, so the
    p-values are multiples of ``2 / C`` (``min_pvalue``): with 4 vs 4 runs, 2/70 = 0.029, and
    the family-wise rate at 0.05 is at most 1/35 = 0.029.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae.stats import permutation_test_maps
    >>> rng = np.random.default_rng(0)
    >>> maps_a = rng.normal(0.0, 0.1, (4, 5, 5))
    >>> maps_b = rng.normal(0.0, 0.1, (4, 5, 5))
    >>> maps_b[:, 2, 2] += 1.0  # one pixel differs
    >>> result = permutation_test_maps(maps_a, maps_b)
    >>> result.exact, result.n_permutations, np.argwhere(result.significant()).tolist()
    (True, 70, [[2, 2]])
    """
    n_permutations = _check_n_permutations(n_permutations, "permutation_test_maps")
    maps_a, maps_b = _as_maps(maps_a, "maps_a"), _as_maps(maps_b, "maps_b")
    if maps_a.shape[1:] != maps_b.shape[1:]:
        raise ValueError(
            f"maps_a and maps_b must have maps of the same shape; got {maps_a.shape[1:]} and "
            f"{maps_b.shape[1:]}."
        )
    shape = maps_a.shape[1:]
    n_a, n_b = len(maps_a), len(maps_b)
    n_units = n_a + n_b
    flat = np.concatenate([maps_a, maps_b]).reshape(n_units, -1)

    n_relabellings = math.comb(n_units, n_a)
    exact = n_relabellings <= n_permutations
    if exact:
        units_a = np.array(list(combinations(range(n_units), n_a)), dtype=np.intp)
    else:
        rng = _check_rng(random_state)
        order = np.argsort(rng.random((n_permutations, n_units)), axis=1)
        units_a = np.sort(order[:, :n_a], axis=1)

    def contrasts(chunk_units):
        weights = np.full((len(chunk_units), n_units), -1.0 / n_b)
        np.put_along_axis(weights, chunk_units, 1.0 / n_a, axis=1)
        return weights @ flat

    difference = contrasts(np.arange(n_a)[None, :])[0]
    observed = np.abs(difference)
    tol = RTOL * max(float(observed.max()), float(np.abs(flat).max()))
    exceed = np.zeros(flat.shape[1], dtype=np.int64)
    null_max = []
    chunk = int(np.clip(_CHUNK_ELEMENTS // max(flat.shape[1], 1), 1, _MAX_CHUNK))
    for start in range(0, len(units_a), chunk):
        statistics = np.abs(contrasts(units_a[start : start + chunk]))
        exceed += np.count_nonzero(statistics >= observed - tol, axis=0)
        null_max.append(statistics.max(axis=1))
    null_max = np.concatenate(null_max)
    sorted_max = np.sort(null_max)
    # #{M* >= T[p] - tol} for every pixel at once.
    count = len(sorted_max) - np.searchsorted(sorted_max, observed - tol, side="left")
    n_evaluated = len(null_max)
    if exact:
        pvalues, uncorrected = count / n_evaluated, exceed / n_evaluated
    else:
        pvalues = (1 + count) / (1 + n_evaluated)
        uncorrected = (1 + exceed) / (1 + n_evaluated)
    return MapPermutationTestResult(
        difference=difference.reshape(shape),
        pvalues=pvalues.reshape(shape),
        pvalues_uncorrected=uncorrected.reshape(shape),
        null_max=null_max,
        n_permutations=int(n_evaluated),
        exact=bool(exact),
        n_units_a=n_a,
        n_units_b=n_b,
        min_pvalue=float(_min_pvalue(n_a, n_b, n_permutations)),
    )
