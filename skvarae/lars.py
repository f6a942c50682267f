"""Batched, differentiable LARS-lasso in torch.

:func:`lasso_lars` solves, for every target column of every batch item at once, the lasso problem
of scikit-learn's ``LassoLars(fit_intercept=False)``::

    (1 / (2 * n_samples)) * ||y - X b||^2 + alpha * ||b||_1

It works in two passes.

1. **Path** (no autograd, float64). Exact LARS with the lasso modification (Efron, Hastie,
   Johnstone and Tibshirani, "Least angle regression", Ann. Statist. 32(2), 2004, sec. 2 and 3),
   written after scikit-learn's ``_lars_path_solver`` but with every problem (target x batch
   item) advancing in the same vectorised step. It only has to find, for each problem, the
   active set ``A`` and the signs ``s_A`` at ``alpha``. :func:`_lars_path` runs it at the cost
   the algorithm allows: ``G = X^T X`` and ``X^T y`` are formed once; the Cholesky factor of
   ``G_AA`` gains one row per join (a triangular solve) and, where a regressor leaves, loses
   its row and column by a closed-form rank-one downdate; one more triangular solve gives the
   equiangular weights and one batched product with ``G`` their correlations.
   :func:`_lars_path_reference` is the same path refactorising ``G_AA`` at every step, the
   readable reference the fast path is tested against.
2. **Solution** (float64). On the segment of the path that contains ``alpha`` the solution has
   the closed form ``b_A = (X_A^T X_A)^{-1} (X_A^T y - n * alpha * s_A)``, ``b = 0`` off ``A``,
   computed with the path's final factors. Its derivative with ``A`` and ``s_A`` held fixed is
   the exact gradient of the (piecewise linear) lasso map with respect to ``X`` and ``Y`` wherever
   the active set is locally constant; :class:`_SolveWithFactor` computes it from the same
   factors (first derivatives only).

Cost per step and problem, with ``m`` features and ``a`` active ones: ``2 m^2`` flops for
``a = G w`` (dense, shared by the targets of a batch item: BLAS 3), ``2 a^2`` for the two
triangular solves, ~``30 m`` for the element-wise search of the step length, about ``10 a^2``
more on a drop (the downdate); one host synchronisation per step (two on steps with drops).
docs/scaling.rst ("The LARS layer") compares this with measured times.

Notation in the code follows Efron et al.: ``c`` the correlations ``X^T (y - X b)``, ``C`` their
common absolute value on the active set (``C = n * current alpha``), ``w`` the equiangular weights
``A_A * G_AA^{-1} s_A`` with ``A_A = (s_A^T G_AA^{-1} s_A)^{-1/2}``, ``a = X^T u = G w`` the
correlations with the equiangular direction ``u = X_A w_A`` (a unit vector), and ``gamma`` the step
length along ``u``.
"""

import math
import numbers
import warnings
from typing import NamedTuple

import torch
from sklearn.exceptions import ConvergenceWarning

__all__ = ["lasso_lars", "LarsInfo"]

#: Default degeneracy tolerance (see ``eps`` in :func:`lasso_lars`).
DEFAULT_EPS = 100 * torch.finfo(torch.float64).eps

# Relative tolerances of the path (float64 arithmetic):
# - stop when C <= n * alpha + _STOP_RTOL * C_0 (C_0 = max |X^T y|): a residual correlation this
#   small relative to the start of the path is rounding noise, not a knot;
_STOP_RTOL = 1e-12
# - an inactive regressor whose correlation approaches the level C slower than _DEN_RTOL * A_A
#   never reaches it (this is how exact duplicates of an active column behave);
_DEN_RTOL = 1e-10
# - a join that would happen within _END_RTOL of the end of the path (C = 0) is the end itself.
_END_RTOL = 1e-10


class LarsInfo(NamedTuple):
    """What the LARS path found, returned by ``lasso_lars(..., return_info=True)``.

    Attributes
    ----------
    active : torch.Tensor of shape (..., n_targets, n_features), bool
        The solver's own active set at ``alpha`` (the set used for the solution and its gradient).
        Not the same as ``coef != 0``: an active coefficient may be exactly at a knot.
    signs : torch.Tensor of shape (..., n_targets, n_features)
        Signs ``s_A`` of the active coefficients (the signs of their correlations with the
        residual), in {-1, 0, 1}, 0 off the active set; same dtype as the coefficients.
    n_iter : torch.Tensor of shape (..., n_targets), int64
        Number of LARS steps taken for each problem.
    converged : torch.Tensor of shape (..., n_targets), bool
        False where ``max_iter`` stopped the path before it reached ``alpha``; the coefficients of
        such a problem are the path point at the last step (as scikit-learn's), not the solution.
    """

    active: torch.Tensor
    signs: torch.Tensor
    n_iter: torch.Tensor
    converged: torch.Tensor


def lasso_lars(X, Y, alpha, *, max_iter=None, eps=DEFAULT_EPS, return_info=False):
    """Lasso by least angle regression, batched over targets and leading dimensions.

    For every target column ``y`` of ``Y`` (and every batch item) this returns the solution of::

        min_b (1 / (2 * n_samples)) * ||y - X b||^2 + alpha * ||b||_1

    i.e. the coefficients of scikit-learn's ``LassoLars(alpha, fit_intercept=False)`` (the last
    coefficients of ``lars_path(X, y, method="lasso", alpha_min=alpha)``). Centre ``X`` and ``Y``
    first for a model with intercept.

    All problems follow the exact LARS-lasso path together: one shared Gram matrix ``X^T X`` per
    batch item, one active set per problem (a mask); one regressor joins per step (the one whose
    correlation reaches the common level first), and a regressor leaves when its coefficient
    crosses zero (it may re-enter later). The path runs in float64 without autograd; the returned
    coefficients come from the closed form on the final active set, in float64 with autograd, cast
    back to the input dtype.

    Parameters
    ----------
    X : torch.Tensor of shape (..., n_samples, n_features)
        Design matrices, real floating dtype (float32 or float64), CPU or CUDA.
    Y : torch.Tensor of shape (..., n_samples, n_targets)
        Targets, one lasso problem per column. Leading dimensions broadcast against those of
        ``X``; same device as ``X``.
    alpha : float or 0-d torch.Tensor
        Non-negative ℓ1 penalty (no gradient is taken with respect to it). With
        ``alpha >= max|X^T y| / n_samples`` the solution is zero; ``alpha=0`` gives the end of the
        path (least squares when ``n_samples > n_features`` and ``X`` has full column rank).
    max_iter : int, optional
        Maximum number of LARS steps per problem. Default ``8 * min(n_samples, n_features) +
        n_features + 16``, enough for the full path in practice. A problem cut short is flagged in
        ``LarsInfo.converged`` and a :class:`~sklearn.exceptions.ConvergenceWarning` says how many.
    eps : float, default=100 * float64 machine epsilon
        Degeneracy tolerance: a regressor about to join is "dropped for good" (as in
        scikit-learn) when its squared distance to the span of the active columns is at most
        ``eps * ||x_j||^2``, i.e. when it would make the active Gram matrix singular. This is what
        happens to duplicated or collinear columns.
    return_info : bool, default=False
        Also return a :class:`LarsInfo` with the active sets, signs, step counts and convergence
        flags.

    Returns
    -------
    coef : torch.Tensor of shape (..., n_targets, n_features)
        Lasso coefficients, ``coef[..., t, :]`` for target ``t``; dtype
        ``torch.promote_types(X.dtype, Y.dtype)``. Differentiable with respect to ``X`` and
        ``Y``: the gradient is that of the closed form with the active set and signs held fixed,
        exact away from knots of the path (and zero when the active set is empty).
    info : LarsInfo
        Only with ``return_info=True``.

    Raises
    ------
    TypeError
        If ``X`` or ``Y`` is not a real floating torch tensor, or ``alpha`` is not a number.
    ValueError
        On wrong dimensions, mismatched shapes or devices, NaN or infinite data, a negative or
        non-finite ``alpha``, or invalid ``max_iter`` / ``eps``.

    Warns
    -----
    sklearn.exceptions.ConvergenceWarning
        When ``max_iter`` stops the path of some problems before ``alpha``.

    See Also
    --------
    sklearn.linear_model.lars_path : The reference implementation (one target at a time).
    sklearn.linear_model.LassoLars : The estimator with the same objective.
    skvarae.var.fit_var : Sparse VAR fitted with this solver.

    Notes
    -----
    The gradient is undefined at knots (values of ``alpha`` where the active set changes); there
    the one-sided gradient of the final active set is returned; second derivatives are not
    available (the backward pass uses the path's Cholesky factors as constants). The path costs,
    per step, one batched product with the Gram matrices, two batched triangular solves with the
    Cholesky factors of the active Gram matrices (updated as regressors join and leave) and a
    few element-wise passes; memory is O(batch * n_targets *
    min(n_samples, n_features)^2) for the factors, kept for the backward pass.

    Differences from scikit-learn's solver. On generic data both agree to about 1e-12; the
    differences matter on degenerate designs, where they keep the result an exact lasso solution:

    - the coefficients returned are the closed form on the final active set, not the end of an
      accumulated path (no drift), and all tolerances are relative, so the result does not
      depend on the scale of the data;
    - ties (several regressors reaching the level together, e.g. an orthogonal design with equal
      correlations) are resolved one regressor per step with zero-length steps, and a regressor
      whose coefficient would immediately move against its sign leaves at once; scikit-learn
      instead skips zero-length steps and may stop early with a suboptimal objective;
    - degenerate regressors (squared distance to ``span(X_A)`` at most ``eps * ||x_j||^2``) are
      dropped for good, as in scikit-learn, but with a relative threshold. Columns collinear to
      within ``sqrt(eps)`` (~1.5e-7) are thus treated as duplicates, and the optimality
      conditions then hold to about that precision. Fitted values ``X @ coef`` are unique even
      when the coefficients are not (duplicated columns).

    Examples
    --------
    >>> import torch
    >>> from skvarae.lars import lasso_lars
    >>> X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    >>> Y = torch.tensor([[2.0], [0.0], [2.0]], dtype=torch.float64)
    >>> lasso_lars(X, Y, alpha=0.1)
    tensor([[1.8500, 0.0000]], dtype=torch.float64)
    >>> coef, info = lasso_lars(X, Y, alpha=0.1, return_info=True)
    >>> info.active
    tensor([[ True, False]])
    """
    alpha = _check_alpha(alpha)
    batch_shape, n_samples, n_features, n_targets = _check_data(X, Y)
    max_iter = _check_max_iter(max_iter, n_samples, n_features)
    eps = _check_eps(eps)
    out_dtype = torch.promote_types(X.dtype, Y.dtype)
    device = X.device

    n_batch = math.prod(batch_shape)
    n_problems = n_batch * n_targets
    if n_problems == 0:
        coef = torch.zeros(*batch_shape, n_targets, n_features, dtype=out_dtype, device=device)
        return (coef, _empty_info(batch_shape, n_targets, n_features, out_dtype, device)) \
            if return_info else coef

    # float64 for both passes (float32 rounding accumulates along a long path). These are new
    # tensors (or views never written to): the inputs are not modified.
    X64 = X.to(torch.float64).expand(*batch_shape, n_samples, n_features)
    Y64 = Y.to(torch.float64).expand(*batch_shape, n_samples, n_targets)
    X64 = X64.reshape(n_batch, n_samples, n_features)
    Y64 = Y64.reshape(n_batch, n_samples, n_targets)
    gram = X64.mT @ X64  # (B, m, m)
    xty = (X64.mT @ Y64).mT  # (B, k, m): row t holds X^T y_t

    with torch.no_grad():
        path = _lars_path(gram.detach(), xty.detach(), n_samples, n_samples * alpha, max_iter, eps)

    # Solution on the final segment: at C = n * alpha where the path reached alpha, at the last
    # path point where max_iter cut it short (scikit-learn returns that point too).
    level = torch.where(path.converged, torch.full_like(path.level, n_samples * alpha),
                        path.level)
    coef = _SolveWithFactor.apply(gram, xty, path.factors, level)

    n_truncated = int((~path.converged).sum())
    if n_truncated:
        warnings.warn(
            f"lasso_lars: max_iter={max_iter} reached before alpha={alpha:g} for {n_truncated} "
            f"of {n_problems} problems (targets x batch items); their coefficients are the path "
            "point at the last step, not the solution at alpha. Increase max_iter.",
            ConvergenceWarning, stacklevel=2)

    out_shape = (*batch_shape, n_targets, n_features)
    coef = coef.reshape(out_shape).to(out_dtype)
    if not return_info:
        return coef
    info = LarsInfo(
        active=path.active.reshape(out_shape),
        signs=path.signs.reshape(out_shape).to(out_dtype),
        n_iter=path.n_iter.reshape(*batch_shape, n_targets),
        converged=path.converged.reshape(*batch_shape, n_targets),
    )
    return coef, info


# --------------------------------------------------------------------------------------------
# Pass 1: the LARS-lasso path, with the Cholesky factor of the active Gram matrix updated


class _Factor(NamedTuple):
    """Cholesky factors of the final active Gram matrices of some problems (join order).

    ``chol[i]`` is lower triangular with ``chol @ chol.mT = G_AA`` on its first ``n_active[i]``
    rows and columns and the identity after them; slot ``s`` holds column ``order[i, s]`` with
    sign ``signs[i, s]`` (0 on padding slots).
    """

    rows: torch.Tensor  # (h,) int64: which problems
    n_active: torch.Tensor  # (h,) int64
    order: torch.Tensor  # (h, c) int64
    signs: torch.Tensor  # (h, c) float64
    chol: torch.Tensor  # (h, c, c) float64

    def valid(self):
        """Which slots hold an active regressor, (h, c) bool."""
        return torch.arange(self.order.shape[1], device=self.order.device) < self.n_active[:, None]


class _PathResult(NamedTuple):
    active: torch.Tensor  # (P, m) bool
    signs: torch.Tensor  # (P, m) float64 in {-1, 0, 1}
    level: torch.Tensor  # (P,) correlation level C where the path stopped
    n_iter: torch.Tensor  # (P,) int64
    converged: torch.Tensor  # (P,) bool
    factors: list = None  # of _Factor, covering every problem once (fast path only)


class _Work:
    """The problems still on their path (the working set), one row each.

    Every attribute is a tensor whose first dimension indexes the rows, so that finished
    problems can be dropped from all of them at once (:meth:`keep`). The Cholesky factors
    ``chol``, by far the largest, live at the start of a flat buffer ``store`` that is reused
    in place as the working set shrinks and its factors grow (:meth:`keep`, :func:`_grow`).
    """

    def __init__(self, store, **tensors):
        self.store = store
        self.__dict__.update(tensors)

    def keep(self, rows, in_place=False):
        """The working set of ``rows`` (increasing); ``in_place``: reuse this set's factor
        buffer, which this set may no longer use."""
        kept = {name: value[rows] for name, value in vars(self).items()
                if name not in ("store", "chol")}
        if not in_place:
            chol = self.chol[rows]
            return _Work(chol.view(-1), chol=chol, **kept)
        # Row rows[i] >= i moves to row i, in chunks through a small buffer: the rows a chunk
        # writes have all been read, by it or by earlier chunks.
        q, cap, _ = self.chol.shape
        chol = self.store[: len(rows) * cap * cap].view(len(rows), cap, cap)
        step = max(1, _CHUNK_ELEMENTS // max(1, cap * cap))
        block = self.chol.new_empty(min(step, len(rows)), cap, cap)
        for start in range(0, len(rows), step):
            part = block[: len(rows[start:start + step])]
            torch.index_select(self.chol, 0, rows[start:start + step], out=part)
            chol[start:start + len(part)] = part
        return _Work(self.store, chol=chol, **kept)


class _Buffers:
    """Work arrays reused from one step of the path to the next.

    ``buffers(name, *shape)`` is a view of the buffer ``name``, reallocated (1.5 times larger)
    only when too small. On the CPU, a fresh allocation of a few MiB costs page faults, often
    more than the arithmetic done in it.
    """

    def __init__(self, like):
        self.like = like
        self.buffers = {}

    def __call__(self, name, *shape):
        size = math.prod(shape)
        buffer = self.buffers.get(name)
        if buffer is None or buffer.numel() < size:
            buffer = self.like.new_empty(max(size, 3 * (0 if buffer is None else len(buffer)) // 2))
            self.buffers[name] = buffer
        return buffer[:size].view(shape)


def _lars_path(gram, xty, n_samples, n_alpha, max_iter, eps):
    """Run the LARS-lasso path of all problems down to ``C = n_alpha``.

    The same path as :func:`_lars_path_reference`, at the cost the algorithm allows. Per
    problem it keeps the active set in join order ("slots") with the Cholesky factor ``L`` of
    its Gram matrix (padded with the identity) and ``z = L^{-1} s_A``. A joining regressor adds
    one row to ``L`` (one triangular solve) and one entry to ``z``; a leaving one is removed
    from ``L`` by a rank-one downdate (:func:`_remove_slots`), in the problems concerned
    only. The equiangular weights are then
    ``w_A = A_A L^{-T} z`` with ``A_A = ||z||^{-1}`` (one triangular solve), their correlations
    ``a = G w`` (one batched product with the Gram matrices); correlations and level are
    updated, ``c <- c - gamma a`` and ``C <- C - gamma A_A``. The correlations of the active and
    the dead regressors are held at NaN, which excludes them from the join candidates without
    masks. Each step synchronises with the device at most twice (the counts of live and leaving
    problems, and which ones leave); problems that are done leave the working set once they
    are a fifth of it.

    Parameters
    ----------
    gram : torch.Tensor of shape (B, m, m), float64
        ``X^T X`` per batch item.
    xty : torch.Tensor of shape (B, k, m), float64
        ``X^T y`` per batch item and target; problem ``p = b * k + t``.
    n_samples : int
        Number of samples (bounds the size of the active set).
    n_alpha : float
        ``n_samples * alpha``, the correlation level where the path stops.
    max_iter : int
        Maximum number of steps per problem.
    eps : float
        Degeneracy tolerance (see :func:`lasso_lars`).

    Returns
    -------
    _PathResult
        Active sets and signs of shape (P, m), the level reached, steps and convergence of shape
        (P,), with ``P = B * k``, and the Cholesky factors of the final active sets.
    """
    n_batch, n_targets, m = xty.shape
    n_problems = n_batch * n_targets
    device, dtype = xty.device, xty.dtype
    limit = min(n_samples, m)  # the largest possible active set
    tiny = torch.finfo(dtype).tiny
    gram_rows = gram.reshape(-1, m)  # row b * m + j: G_j of batch item b
    gram_diag = gram.diagonal(dim1=-2, dim2=-1)  # ||x_j||^2, (B, m)
    xty = xty.reshape(n_problems, m)

    def zeros(*shape, dt=dtype):
        return torch.zeros(*shape, dtype=dt, device=device)

    ids = torch.arange(n_problems, device=device)
    work = _Work(
        zeros(0),
        ids=ids,  # problem index of each row
        batch=ids // n_targets,  # its batch item
        corr=xty.clone(),  # c = X^T (y - X b); NaN on A and on dead regressors
        big_c=xty.abs().amax(dim=1),  # the level C = |c_A|
        # A in join order ("slots"): columns, signs, coefficients, L and z = L^{-1} s_A.
        n_active=zeros(n_problems, dt=torch.int64),
        order=zeros(n_problems, 0, dt=torch.int64),
        slot_sign=zeros(n_problems, 0),
        slot_coef=zeros(n_problems, 0),
        z=zeros(n_problems, 0),
        chol=zeros(n_problems, 0, 0),
        # Events found by one step, applied at the start of the next one, and the column that
        # left at the previous step (-1: none), which may not rejoin at once.
        entering=xty.abs().argmax(dim=1),
        has_entering=torch.ones(n_problems, dtype=torch.bool, device=device),
        leaving=torch.full((n_problems,), -1, dtype=torch.int64, device=device),  # a slot
        left=torch.full((n_problems,), -1, dtype=torch.int64, device=device),  # a column
        level=zeros(n_problems),
        n_iter=zeros(n_problems, dt=torch.int64),
        converged=zeros(n_problems, dt=torch.bool),
        done=zeros(n_problems, dt=torch.bool),
        stop_tol=_STOP_RTOL * xty.abs().amax(dim=1),
    )
    finished = []  # parts of the working set whose problems are all done
    # Work arrays of the size of all correlations, allocated once and used through (q, m)
    # views: a step needs several, and a fresh allocation of this size can cost more than the
    # arithmetic done in it (the allocator may hand it back to the system and page it in again).
    buffers = _Buffers(xty)
    scratch = buffers("correlations", 5, n_problems, m)
    spans = None  # after the working set first shrinks: (batch item, first row, end row)

    def gram_times(w):  # G w for the working set: (q, m) -> (q, m), in scratch[1]
        a = scratch[1, : w.shape[0]]
        if spans is None:  # every problem: one batched product
            torch.matmul(w.view(n_batch, n_targets, m), gram, out=a.view(n_batch, n_targets, m))
        else:  # the rows of a batch item are contiguous (the working set is in problem order)
            for item, start, stop in spans:
                torch.matmul(w[start:stop], gram[item], out=a[start:stop])
        return a

    while True:
        # -- Stop where the path has reached alpha (n * alpha lies on the last segment,
        #    [C, C_previous]) or where max_iter is used up. A problem that is done stays as it
        #    is: A is that of the last segment (a pending drop is not applied), L its factor.
        live = ~work.done
        reached = live & (work.big_c <= n_alpha + work.stop_tol)
        truncated = live & ~reached & (work.n_iter >= max_iter)
        work.level = torch.where(truncated, work.big_c, work.level)
        work.converged |= reached
        work.done |= reached | truncated
        live = ~work.done
        leaving = live & (work.leaving >= 0)
        n_live, n_leaving, max_active, n_empty = torch.stack([  # host synchronisation 1
            live.sum(), leaving.sum(), work.n_active.max(),
            (live & (work.n_active == leaving.long())).sum()]).tolist()
        if n_live == 0:
            break
        if n_live <= 0.8 * work.ids.shape[0]:  # shrink the working set to the live problems
            finished.append(work.keep(torch.nonzero(work.done).squeeze(1)))
            keep = torch.nonzero(live).squeeze(1)
            work, live, leaving = work.keep(keep, in_place=True), live[keep], leaving[keep]
            stops = torch.bincount(work.batch, minlength=n_batch).cumsum(0).tolist()
            spans = [(item, start, stop) for item, (start, stop)
                     in enumerate(zip([0] + stops[:-1], stops)) if stop > start]
        if max_active + 1 > work.order.shape[1] and work.order.shape[1] < limit:
            _grow(work, min(limit, max_active + 1 + _CAP_GROWTH), limit)
        q, cap = work.order.shape
        rows = torch.arange(q, device=device)

        # -- A regressor leaves A: remove its slot, downdate those problems' factors.
        if n_leaving:
            _remove_slots(work, torch.nonzero(leaving).squeeze(1), buffers)  # sync 2

        # -- The entering regressor j joins A, with the sign of its correlation. The new row of
        #    L is [r, d] with L r = G_Aj and d^2 = G_jj - ||r||^2, the squared distance of x_j
        #    to span(X_A); where d^2 <= eps * G_jj, j is degenerate: it is dropped for good
        #    (scikit-learn's rule) and A does not change.
        j = work.entering
        slot = work.n_active.clamp(max=cap - 1)
        valid = torch.arange(cap, device=device) < work.n_active[:, None]
        g_aj = torch.index_select(gram_rows, 0, work.batch * m + j, out=scratch[2, :q])
        g_aj = g_aj.gather(1, work.order) * valid
        r = torch.linalg.solve_triangular(work.chol, g_aj.unsqueeze(-1), upper=False).squeeze(-1)
        g_jj = gram_diag[work.batch, j]
        d_sq = g_jj - r.square().sum(dim=1)
        joining = live & work.has_entering
        degenerate = joining & ~(d_sq > eps * g_jj)
        joins = joining & ~degenerate & (work.n_active < cap)  # (the growth rule ensures room)
        d = d_sq.clamp_min(tiny).sqrt()
        s_j = torch.sign(work.corr[rows, j])
        z_j = (s_j - (r * work.z).sum(dim=1)) / d
        work.chol[rows, slot] = torch.where(joins[:, None], r.index_put((rows, slot), d),
                                            work.chol[rows, slot])
        work.z[rows, slot] = torch.where(joins, z_j, work.z[rows, slot])
        work.order[rows, slot] = torch.where(joins, j, work.order[rows, slot])
        work.slot_sign[rows, slot] = torch.where(joins, s_j, work.slot_sign[rows, slot])
        work.n_active += joins.long()
        work.corr[rows, j] = torch.where(joins | degenerate, math.nan, work.corr[rows, j])

        # -- Equiangular weights w_A = A_A G_AA^{-1} s_A = A_A L^{-T} z with A_A = ||z||^{-1},
        #    and the correlations with the equiangular direction, a = G w.
        empty = work.n_active == 0
        norm_a = torch.where(empty, 1.0, work.z.square().sum(dim=1).clamp_min(tiny).rsqrt())
        w_slot = torch.linalg.solve_triangular(work.chol.mT, work.z.unsqueeze(-1),
                                               upper=True).squeeze(-1) * norm_a[:, None]
        w = scratch[0, :q].zero_().scatter_add_(1, work.order, w_slot)  # padding slots: 0
        a = gram_times(w)

        # -- Step lengths (Efron et al. eq. 2.13 and 3.4-3.5), in units of u, as in the
        #    reference: join, where an inactive correlation c_j - gamma a_j reaches
        #    +-(C - gamma A_A) (NaN correlations, of A and dead regressors, never do) ...
        big_c = work.big_c
        gamma_join = _join_steps(work.corr, a, big_c, norm_a,
                                 out=(scratch[2, :q], scratch[3, :q], scratch[4, :q]))
        #    (a regressor that has just left A sits on the boundary s_j C of its sign and may
        #    only rejoin on the other side, -s_j C, at gamma = 2 C / (A_A + s_j a_j))
        left = work.left.clamp_min(0)
        s_left = work.corr[rows, left].sign()
        den_left = norm_a + s_left * a[rows, left]
        gamma_left = torch.where((den_left > _DEN_RTOL * norm_a), 2.0 * big_c / den_left,
                                 math.inf)
        gamma_join[rows, left] = torch.where(work.left >= 0, gamma_left, gamma_join[rows, left])
        gamma_join, j_join = gamma_join.min(dim=1)
        #    (at most n_samples regressors can be active: X_A then spans R^n)
        gamma_join = torch.where(work.n_active < n_samples, gamma_join, math.inf)
        #    ... drop, where an active coefficient b_j + gamma w_j reaches zero moving against
        #    its sign (padding slots have s = 0 and never do) ...
        gamma_drop, slot_drop = _first_crossing(
            work.slot_coef * work.slot_sign, -(w_slot * work.slot_sign), 0.0).min(dim=1)
        #    ... end, where the level C - gamma A_A reaches zero.
        gamma_end = big_c / norm_a
        is_drop = gamma_drop <= torch.minimum(gamma_join, gamma_end)
        is_end = ~is_drop & (gamma_join >= gamma_end * (1.0 - _END_RTOL))
        is_join = ~is_drop & ~is_end
        gamma = torch.where(is_drop, gamma_drop, torch.where(is_end, gamma_end, gamma_join))
        if n_empty:  # nothing in A (every joiner degenerate): no step, the largest joins
            largest, biggest = work.corr.abs().nan_to_num(nan=-1.0).max(dim=1)
            big_c = torch.where(empty, largest.masked_fill(largest < 0, -math.inf), big_c)
            j_join = torch.where(empty, biggest, j_join)
            gamma = torch.where(empty, 0.0, gamma)
            is_join, is_end, is_drop = is_join | empty, is_end & ~empty, is_drop & ~empty
        gamma = torch.where(live, gamma, 0.0)
        is_drop &= live

        # -- Move along u (a leaving coefficient is set to exactly zero, not left as a rounding
        #    residue), then record the events for the next step.
        work.corr.addcmul_(gamma[:, None], a, value=-1.0)
        work.big_c = big_c - gamma * norm_a
        work.slot_coef.addcmul_(gamma[:, None], w_slot)
        work.slot_coef[rows, slot_drop] = torch.where(is_drop, 0.0,
                                                      work.slot_coef[rows, slot_drop])
        work.leaving = torch.where(is_drop, slot_drop, -1)
        work.left = torch.full_like(work.left, -1)
        work.entering = j_join
        work.has_entering = live & is_join
        work.n_iter += live.long()
        ended = live & is_end
        work.converged |= ended
        work.done |= ended

    finished.append(work)
    order = torch.cat([f.ids for f in finished]).argsort()

    def gather(name):
        return torch.cat([getattr(f, name) for f in finished])[order]

    factors = [_Factor(f.ids, f.n_active, f.order, f.slot_sign, f.chol) for f in finished]
    active = [zeros(len(f.rows), m).scatter_add_(1, f.order, f.valid().to(dtype)) > 0
              for f in factors]
    signs = [zeros(len(f.rows), m).scatter_add_(1, f.order, f.signs) for f in factors]
    factors = [f for f in factors if len(f.rows)]
    return _PathResult(torch.cat(active)[order], torch.cat(signs)[order], gather("level"),
                       gather("n_iter"), gather("converged"), factors)


def _join_steps(corr, a, big_c, norm_a, out=None):
    """Step length at which each inactive regressor would join, shape (q, m); ``inf`` if never.

    ``out``, if given, holds three (q, m) work arrays (overwritten), which saves allocations;
    the result is then one of them.

    The correlation ``c_j - gamma a_j`` reaches ``+(C - gamma A_A)`` at
    ``gamma+ = (C - c_j) / (A_A - a_j)`` and ``-(C - gamma A_A)`` at
    ``gamma- = (C + c_j) / (A_A + a_j)``, each valid where its denominator exceeds
    ``_DEN_RTOL * A_A``; the reference takes the smaller valid one. Where both denominators are
    positive, ``gamma+ <= gamma-`` exactly when ``C a_j <= A_A c_j``, so only the side
    ``sigma = sign(A_A c_j - C a_j)`` is evaluated, ``(C - sigma c_j) / (A_A - sigma a_j)``
    (``sigma = 0`` means both equal ``C / A_A``). Where that side's denominator is too small,
    ``|a_j| ~ A_A`` and ``|c_j| ~ C`` to within ``_DEN_RTOL``, so the other side would join at
    ``C / A_A`` within a relative ``_DEN_RTOL``: the end of the path, as when nothing joins.
    Half the element-wise passes of evaluating both sides.
    """
    side_buf, num_buf, den_buf = (None, None, None) if out is None else out
    c_col, a_col = big_c[:, None], norm_a[:, None]
    side = torch.mul(corr, a_col, out=side_buf).addcmul_(a, c_col, value=-1.0).sign_()
    num = torch.addcmul(c_col, side, corr, value=-1.0, out=num_buf)
    den = torch.addcmul(a_col, side, a, value=-1.0, out=den_buf)
    return _first_crossing(num, den, _DEN_RTOL * a_col, out=side)


def _first_crossing(num, den, min_den, out=None):
    """``num / den`` where ``den > min_den``, else ``inf``; a NaN numerator also gives ``inf``.

    ``num`` (overwritten, and returned) is clamped at zero first (a crossing already passed, by
    rounding, is immediate); ``out``, if given, is a work array of the shape of ``num``
    (overwritten). Written without ``torch.where``: an element-wise select with an irregular
    mask is several times slower on the CPU than this arithmetic (division by a 0/1 factor,
    then ``abs`` and ``nan_to_num``), and these are the largest arrays of a step.
    """
    ratio = num.clamp_min_(0.0).div_(den)
    keep = torch.sub(den, min_den, out=out).sign_().clamp_min_(0.0)  # 1 where den > min_den
    return ratio.div_(keep).abs_().nan_to_num_(nan=math.inf)


#: Slots added to the factors at once when an active set outgrows them.
_CAP_GROWTH = 4
#: Elements of the buffer through which factors move in place (2 MiB in float64).
_CHUNK_ELEMENTS = 1 << 18
#: Bytes of factor buffer reserved at once on the CPU (see :func:`_grow`).
_CPU_RESERVE = 1 << 30


def _grow(work, cap, limit):
    """Give the slot arrays of the working set ``cap`` slots (padding: zeros, identity).

    The factors are laid out again in place in ``work.store``, from the last row to the
    first (row ``i`` only moves forward, to where no row still to be moved lies; through a
    small buffer where it overlaps its own place). A new buffer
    is allocated only when this one is too small: on the CPU, one with room for ``limit`` slots
    when that is at most ``_CPU_RESERVE`` bytes (the system provides memory as it is first
    written, so it is not copied and paged in again at every doubling), otherwise one with room
    for twice the slots. On the CPU, writing fresh memory costs page faults, several times the
    copy.
    """
    q, old = work.order.shape
    for name in ("order", "slot_sign", "slot_coef", "z"):
        setattr(work, name, torch.nn.functional.pad(getattr(work, name), (0, cap - old)))
    if work.store.numel() < q * cap * cap:
        room = min(limit, 2 * cap)
        if work.store.device.type == "cpu" \
                and q * limit * limit * work.store.element_size() <= _CPU_RESERVE:
            room = limit
        store = work.store.new_empty(q * room * room)
        store[: work.chol.numel()] = work.chol.reshape(-1)
        work.store = store
    src = work.store[: q * old * old].view(q, old, old)
    chol = work.store[: q * cap * cap].view(q, cap, cap)
    eye = torch.eye(cap, dtype=chol.dtype, device=chol.device)[old:]
    step = max(1, _CHUNK_ELEMENTS // (cap * cap))
    block = src.new_empty(min(step, q), old, old)
    for stop in range(q, 0, -step):
        start = max(stop - step, 0)
        part = src[start:stop]
        if start * cap * cap < stop * old * old:  # where they go overlaps where they are
            part = block[: stop - start].copy_(part)
        chol[start:stop, :old, :old] = part
        chol[start:stop, :old, old:] = 0.0
        chol[start:stop, old:] = eye
    work.chol = chol


def _remove_slots(work, rows, buffers):
    """Remove the slot ``work.leaving`` of the problems ``rows``, downdating their factors.

    The slots after it move up one place. Deleting row and column ``k`` of ``L`` leaves a
    lower triangular ``L^`` with ``L^ L^^T + x x^T = G_A'A'`` (``A' = A - {k}``), where ``x`` is
    column ``k`` of ``L`` without its row ``k`` (zero above ``k``). The factor of that rank-one
    update is ``L' = L^ M`` with ``M M^T = I + p p^T``, ``p = L^^{-1} x``, in closed form:
    ``M_jj = sqrt(s_j / s_{j-1})`` and ``M_ij = p_i p_j / sqrt(s_j s_{j-1})`` below the
    diagonal, ``s_j = 1 + sum_{i<=j} p_i^2`` (Gill, Golub, Murray and Saunders, "Methods for
    modifying matrix factorizations", Math. Comp. 28, 1974). It costs one triangular solve and
    a few passes over the factors, against ``a^3 / 3`` for a refactorisation, and since ``p``
    is zero above ``k``, the rows before ``k`` do not change. ``z = L'^{-1} s_A'`` is solved
    again. The leaving regressor's correlation, held at NaN while it was active, is ``s_j C``.
    """
    cap = work.order.shape[1]
    slot = work.leaving[rows]
    col = work.order[rows, slot]
    work.corr[rows, col] = work.slot_sign[rows, slot] * work.big_c[rows]
    work.left[rows] = col
    n_active = work.n_active[rows] - 1
    work.n_active[rows] = n_active
    positions = torch.arange(cap, device=rows.device)
    shifted = (positions + (positions >= slot[:, None]).long()).clamp(max=cap - 1)
    valid = positions < n_active[:, None]
    order = work.order[rows].gather(1, shifted) * valid
    signs = work.slot_sign[rows].gather(1, shifted) * valid
    work.order[rows] = order
    work.slot_sign[rows] = signs
    work.slot_coef[rows] = work.slot_coef[rows].gather(1, shifted) * valid
    # L^ and x. Below row k, L^ holds L's rows one further down (gathered so from the factors
    # at once); right of column k, its columns one further right (above the diagonal both are
    # zero). L's identity padding stays identity; the slot freed at the end becomes padding.
    h = len(rows)
    source_rows = (rows[:, None] * cap + shifted).view(-1)
    chol = torch.index_select(work.chol.view(-1, cap), 0, source_rows,
                              out=buffers("rows", h * cap, cap)).view(h, cap, cap)
    after = positions[:-1] >= slot[:, None]  # (h, cap - 1): slots at or after k
    x = chol[:, :-1].gather(2, slot[:, None, None].expand(-1, cap - 1, 1)).squeeze(-1) * after
    x = torch.nn.functional.pad(x, (0, 1))
    hat = buffers("factor", h, cap, cap)
    torch.where(after[:, None, :], chol[:, :-1, 1:], chol[:, :-1, :-1], out=hat[:, :-1, :-1])
    hat[:, -1].zero_()
    hat[:, :, -1].zero_()
    hat[:, -1, -1] = 1.0
    # L' = L^ M: column j is M_jj L^_j + (p_j / sqrt(s_j s_{j-1})) sum_{i>j} p_i L^_i. The sum
    # over i > j is the total less the sum over i <= j (the same rounding as summing it), both
    # from one cumulative sum, so that it is exactly zero above the diagonal.
    p = torch.linalg.solve_triangular(hat, x.unsqueeze(-1), upper=False).squeeze(-1)
    s = p.square().cumsum(dim=1).add_(1.0)
    s_prev = torch.nn.functional.pad(s[:, :-1], (1, 0), value=1.0)
    weighted = torch.mul(hat, p[:, None, :], out=chol)  # p_i L^_i
    later = torch.cumsum(weighted, dim=-1, out=buffers("later", h, cap, cap))
    torch.sub(later[..., -1:].clone(), later, out=later)
    chol = hat.mul_((s / s_prev).sqrt_()[:, None, :])
    chol.addcmul_(later, (p / (s * s_prev).sqrt_())[:, None, :])
    work.chol.index_copy_(0, rows, chol)
    work.z[rows] = torch.linalg.solve_triangular(chol, signs.unsqueeze(-1),
                                                 upper=False).squeeze(-1)
    work.leaving[rows] = -1


# --------------------------------------------------------------------------------------------
# Pass 2: the solution on the final active set (differentiable)


class _SolveWithFactor(torch.autograd.Function):
    """``b_A = G_AA^{-1} (X_A^T y - level * s_A)``, ``b = 0`` off ``A``, from the path's factors.

    The factors ``L`` of the final ``G_AA`` come from the path (no factorisation here); the
    backward pass is that of the closed form with ``A`` and ``s_A`` fixed: with
    ``v_A = G_AA^{-1} dL/db_A``, ``dL/d(X^T y) = v`` and ``dL/dG = -v b^T`` (summed over the
    targets of each batch item), two triangular solves and one batched product.
    """

    @staticmethod
    def forward(ctx, gram, xty, factors, level):
        # gram (B, m, m) (only its gradient is used), xty (B, k, m), factors covering the
        # P = B * k problems, level (P,): as in _solve_on_active_set.
        n_batch, n_targets, m = xty.shape
        xty = xty.reshape(-1, m)
        coef = torch.zeros_like(xty)
        for f in factors:
            rhs = xty[f.rows].gather(1, f.order) - level[f.rows, None] * f.signs
            rhs = torch.where(f.valid(), rhs, 0.0)
            coef[f.rows] = coef.new_zeros(len(f.rows), m).scatter_add_(
                1, f.order, _cholesky_solve(f.chol, rhs))
        ctx.factors = factors
        ctx.save_for_backward(coef)
        return coef.view(n_batch, n_targets, m)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_coef):
        (coef,) = ctx.saved_tensors
        n_batch, n_targets, m = grad_coef.shape
        grad_coef = grad_coef.reshape(-1, m)
        v = torch.zeros_like(coef)
        for f in ctx.factors:
            g = torch.where(f.valid(), grad_coef[f.rows].gather(1, f.order), 0.0)
            v[f.rows] = v.new_zeros(len(f.rows), m).scatter_add_(
                1, f.order, _cholesky_solve(f.chol, g))
        v = v.view(n_batch, n_targets, m)
        grad_gram = -(v.mT @ coef.view(n_batch, n_targets, m))
        return grad_gram, v, None, None


def _cholesky_solve(chol, rhs):
    """``G^{-1} rhs`` for ``G = chol @ chol.mT``, shapes (h, c, c) and (h, c) -> (h, c).

    Two triangular solves on the factors where they lie (``torch.cholesky_solve`` would copy
    them first).
    """
    half = torch.linalg.solve_triangular(chol, rhs.unsqueeze(-1), upper=False)
    return torch.linalg.solve_triangular(chol.mT, half, upper=True).squeeze(-1)


# --------------------------------------------------------------------------------------------
# The reference: the same path, refactorising the active Gram matrices at every step


def _lars_path_reference(gram, xty, n_samples, n_alpha, max_iter, eps):
    """Run the LARS-lasso path of all problems down to ``C = n_alpha`` (the reference).

    The readable form of the path: correlations recomputed from ``X^T y - G b`` and the active
    Gram matrices refactorised at every step. :func:`_lars_path` takes the same steps at a lower
    cost; the tests check that both find the same active sets, signs and step counts.

    Parameters
    ----------
    gram : torch.Tensor of shape (B, m, m), float64
        ``X^T X`` per batch item.
    xty : torch.Tensor of shape (B, k, m), float64
        ``X^T y`` per batch item and target; problem ``p = b * k + t``.
    n_samples : int
        Number of samples (bounds the size of the active set).
    n_alpha : float
        ``n_samples * alpha``, the correlation level where the path stops.
    max_iter : int
        Maximum number of steps per problem.
    eps : float
        Degeneracy tolerance (see :func:`lasso_lars`).

    Returns
    -------
    _PathResult
        Active sets and signs of shape (P, m), the level reached, steps and convergence of shape
        (P,), with ``P = B * k``.
    """
    n_batch, n_targets, m = xty.shape
    n_problems = n_batch * n_targets
    device, dtype = xty.device, xty.dtype
    problem_batch = torch.arange(n_batch, device=device).repeat_interleave(n_targets)
    xty = xty.reshape(n_problems, m)
    col_sq_norm = gram.diagonal(dim1=-2, dim2=-1)[problem_batch]  # ||x_j||^2, (P, m)

    def gram_times(v):  # G v for every problem: (P, m) -> (P, m)
        return (v.view(n_batch, n_targets, m) @ gram).view(n_problems, m)

    def masked_max(values, mask):
        return torch.where(mask, values, -math.inf).amax(dim=1)

    zeros_pm = torch.zeros(n_problems, m, dtype=dtype, device=device)
    false_pm = torch.zeros(n_problems, m, dtype=torch.bool, device=device)
    coef = zeros_pm.clone()
    active = false_pm.clone()  # A, the active set
    signs = zeros_pm.clone()  # s_A, 0 off A
    # Active set and signs on the last segment travelled, i.e. before a drop at its lower end:
    # when the path stops, alpha lies on that segment.
    seg_active = false_pm.clone()
    seg_signs = zeros_pm.clone()
    dead = false_pm.clone()  # degenerate regressors, "dropped for good"
    just_dropped = false_pm.clone()  # left A at the previous step: may not rejoin at once
    # The regressor that reached the level at the previous step joins at the next one.
    entering = xty.abs().argmax(dim=1)
    has_entering = torch.ones(n_problems, dtype=torch.bool, device=device)
    level = torch.zeros(n_problems, dtype=dtype, device=device)
    n_iter = torch.zeros(n_problems, dtype=torch.int64, device=device)
    converged = torch.zeros(n_problems, dtype=torch.bool, device=device)
    done = torch.zeros(n_problems, dtype=torch.bool, device=device)
    stop_tol = _STOP_RTOL * xty.abs().amax(dim=1)

    while True:
        # -- Correlations with the current residual, c = X^T (y - X b), and their level C
        #    (equal on A; before anything is active, the largest one).
        corr = xty - gram_times(coef)
        abs_corr = corr.abs()
        big_c = torch.where(active.any(dim=1), masked_max(abs_corr, active),
                            masked_max(abs_corr, ~dead))

        # -- Stop where the path has reached alpha (n * alpha lies on the last segment,
        #    [C, C_previous]) or where max_iter is used up.
        live = ~done
        reached = live & (big_c <= n_alpha + stop_tol)
        truncated = live & ~reached & (n_iter >= max_iter)
        level = torch.where(truncated, big_c, level)
        converged |= reached
        done |= reached | truncated
        lv = torch.nonzero(~done).squeeze(1)  # live problems
        if lv.numel() == 0:
            break

        # -- The entering regressor joins A (trial set), with the sign of its correlation.
        add = has_entering[lv]
        ent = entering[lv]
        trial = active[lv].clone()
        trial_signs = signs[lv].clone()
        add_rows = torch.nonzero(add).squeeze(1)
        trial[add_rows, ent[add_rows]] = True
        trial_signs[add_rows, ent[add_rows]] = torch.sign(corr[lv[add_rows], ent[add_rows]])

        # -- Equiangular system G_AA w = s_A for all live problems at once, on the active
        #    columns compacted to the front (identity padding), the entering one last.
        last = torch.where(add, ent, -1)
        order, valid, sub_gram = _active_gram(gram, problem_batch[lv], trial, last=last)
        chol, info = torch.linalg.cholesky_ex(sub_gram)
        # A joining regressor is degenerate when its squared distance to span(X_A), the last
        # pivot of the Cholesky factor, is <= eps ||x_j||^2 (or the factorisation fails there).
        # Drop it for good (scikit-learn's rule).
        slot = (valid.sum(dim=1) - 1).clamp_min(0)
        pivot = chol.diagonal(dim1=-2, dim2=-1).gather(1, slot[:, None]).squeeze(1)
        degenerate = add & ((info != 0) | ~(pivot.square() > eps * col_sq_norm[lv, ent]))
        if bool(degenerate.any()):
            deg_rows = torch.nonzero(degenerate).squeeze(1)
            dead[lv[deg_rows], ent[deg_rows]] = True
            trial[deg_rows, ent[deg_rows]] = False
            trial_signs[deg_rows, ent[deg_rows]] = 0.0
            add = add & ~degenerate
            order, valid, sub_gram = _active_gram(gram, problem_batch[lv], trial)
            chol, info = torch.linalg.cholesky_ex(sub_gram)
        if bool((info != 0).any()):  # ill-conditioned but accepted active set: add a ridge
            chol = _jittered_cholesky(sub_gram, chol, info)
        s_sub = torch.where(valid, trial_signs.gather(1, order), 0.0)
        w_sub = torch.cholesky_solve(s_sub.unsqueeze(-1), chol).squeeze(-1)
        n_trial = valid.sum(dim=1)
        empty = n_trial == 0
        sGs = (s_sub * w_sub).sum(dim=1)  # s_A^T G_AA^{-1} s_A
        norm_a = torch.where(empty, 1.0, sGs.clamp_min(torch.finfo(dtype).tiny).rsqrt())  # A_A
        w = zeros_pm[: lv.numel()].scatter(1, order, w_sub * norm_a[:, None])  # (q, m)
        w_all = zeros_pm.clone()
        w_all[lv] = w
        a = gram_times(w_all)[lv]  # a_j = x_j^T u

        # -- Step lengths (Efron et al. eq. 2.13 and 3.4-3.5), in units of u:
        c_l, big_c_l, coef_l = corr[lv], big_c[lv], coef[lv]
        #    join: an inactive regressor's correlation c_j - gamma a_j reaches +-(C - gamma A_A);
        #    at most n_samples regressors can be active (X_A then spans R^n); a regressor that
        #    has just left A sits on the boundary +-C of its sign and may not rejoin there at
        #    once, only on the other side.
        candidates = ~trial & ~dead[lv] & (n_trial < n_samples)[:, None]
        jd_prev = just_dropped[lv]
        min_den = _DEN_RTOL * norm_a[:, None]
        den_up, den_down = norm_a[:, None] - a, norm_a[:, None] + a
        gamma_up = torch.where(candidates & (den_up > min_den) & ~(jd_prev & (c_l > 0)),
                               (big_c_l[:, None] - c_l).clamp_min(0.0) / den_up, math.inf)
        gamma_down = torch.where(candidates & (den_down > min_den) & ~(jd_prev & (c_l < 0)),
                                 (big_c_l[:, None] + c_l).clamp_min(0.0) / den_down, math.inf)
        gamma_join, j_join = torch.minimum(gamma_up, gamma_down).min(dim=1)
        #    drop (lasso modification): an active coefficient b_j + gamma w_j reaches zero
        #    (moving against its sign s_j; at once if it is already zero, e.g. after a tie);
        toward_zero = -(w * trial_signs)
        gamma_drop, j_drop = torch.where(
            trial & (toward_zero > 0),
            (coef_l * trial_signs).clamp_min(0.0) / toward_zero, math.inf).min(dim=1)
        #    end: the level C - gamma A_A reaches zero (least-squares fit on A).
        gamma_end = big_c_l / norm_a

        is_drop = gamma_drop <= torch.minimum(gamma_join, gamma_end)
        is_end = ~is_drop & (gamma_join >= gamma_end * (1.0 - _END_RTOL))
        is_join = ~is_drop & ~is_end
        gamma = torch.where(is_drop, gamma_drop, torch.where(is_end, gamma_end, gamma_join))
        # Nothing left in A (every joiner degenerate): take no step, let the largest join.
        if bool(empty.any()):
            biggest = torch.where(~trial & ~dead[lv], c_l.abs(), -math.inf).argmax(dim=1)
            j_join = torch.where(empty, biggest, j_join)
            gamma = torch.where(empty, 0.0, gamma)
            is_join, is_end, is_drop = is_join | empty, is_end & ~empty, is_drop & ~empty

        # -- Move along u, then apply the event.
        coef_l = coef_l + gamma[:, None] * w
        drop_rows = torch.nonzero(is_drop).squeeze(1)
        jd = false_pm[: lv.numel()].clone()
        jd[drop_rows, j_drop[drop_rows]] = True
        coef_l = coef_l.masked_fill(jd, 0.0)  # exactly zero, not a rounding residue

        coef[lv] = coef_l
        seg_active[lv] = trial
        seg_signs[lv] = trial_signs
        active[lv] = trial & ~jd
        signs[lv] = trial_signs.masked_fill(jd, 0.0)
        just_dropped[lv] = jd
        entering[lv] = j_join
        has_entering[lv] = is_join
        n_iter[lv] += 1
        ended = lv[is_end]
        converged[ended] = True
        done[ended] = True

    return _PathResult(seg_active, seg_signs, level, n_iter, converged)


def _active_gram(gram, batch_index, mask, last=None):
    """Gram matrices of the active columns, compacted to the front and padded with identity.

    Parameters
    ----------
    gram : torch.Tensor of shape (B, m, m)
        Gram matrices (may require grad: the gather is differentiable).
    batch_index : torch.Tensor of shape (q,), int64
        Batch item of each problem.
    mask : torch.Tensor of shape (q, m), bool
        Active set of each problem.
    last : torch.Tensor of shape (q,), int64, optional
        An active column to place after the others (``-1``: none).

    Returns
    -------
    order : torch.Tensor of shape (q, a), int64
        Column indices, active ones first in increasing order (``last`` at the end of them),
        ``a = max(1, max |A|)``; the padding slots hold distinct inactive indices.
    valid : torch.Tensor of shape (q, a), bool
        Which slots are active.
    sub_gram : torch.Tensor of shape (q, a, a)
        ``G_AA`` in the valid block, identity elsewhere (so padded problems stay well posed).
    """
    n_active = mask.sum(dim=1)
    size = max(int(n_active.max()), 1) if mask.shape[0] else 1
    key = 2 * (~mask).to(torch.uint8)  # active 0, inactive 2; `last` 1
    if last is not None:
        rows = torch.nonzero(last >= 0).squeeze(1)
        key[rows, last[rows]] = 1
    order = torch.argsort(key, dim=1, stable=True)[:, :size]
    valid = torch.arange(size, device=mask.device) < n_active[:, None]
    m = gram.shape[-1]
    flat_index = (batch_index[:, None, None] * m + order[:, :, None]) * m + order[:, None, :]
    sub = torch.take(gram, flat_index)
    eye = torch.eye(size, dtype=gram.dtype, device=gram.device)
    sub_gram = torch.where(valid[:, :, None] & valid[:, None, :], sub, eye)
    return order, valid, sub_gram


def _jittered_cholesky(matrices, chol, info, max_tries=20):
    """Cholesky factors, adding a growing ridge where the plain factorisation failed.

    As scikit-learn does when its active Gram matrix is too ill-conditioned; only reached for
    active sets that passed the degeneracy test yet are not numerically positive definite.
    """
    scale = matrices.diagonal(dim1=-2, dim2=-1).abs().amax(dim=-1)
    eye = torch.eye(matrices.shape[-1], dtype=matrices.dtype, device=matrices.device)
    ridge = torch.finfo(matrices.dtype).eps * scale
    for _ in range(max_tries):
        failed = info != 0
        if not bool(failed.any()):
            break
        retry, retry_info = torch.linalg.cholesky_ex(
            matrices[failed] + ridge[failed, None, None] * eye)
        chol = chol.clone()
        chol[failed] = retry
        info = info.clone()
        info[failed] = retry_info
        ridge = ridge * 4.0
    return chol


def _solve_on_active_set(gram, xty, batch_index, active, signs, level):
    """``b_A = G_AA^{-1} (X_A^T y - level * s_A)``, ``b = 0`` off ``A``, for all problems.

    Parameters
    ----------
    gram : torch.Tensor of shape (B, m, m)
        ``X^T X`` (float64, may require grad).
    xty : torch.Tensor of shape (P, m)
        ``X^T y`` per problem (float64, may require grad).
    batch_index : torch.Tensor of shape (P,), int64
        Batch item of each problem.
    active, signs : torch.Tensor of shape (P, m)
        Active sets and signs found by the path (constants).
    level : torch.Tensor of shape (P,)
        ``n_samples * alpha`` (or the last path level of a truncated problem), a constant.

    Returns
    -------
    torch.Tensor of shape (P, m)
        The coefficients, differentiable with respect to ``gram`` and ``xty``. With an empty
        active set they are zero with a zero (not missing) gradient.
    """
    order, valid, sub_gram = _active_gram(gram, batch_index, active)
    rhs = xty.gather(1, order) - level[:, None] * signs.gather(1, order)
    rhs = torch.where(valid, rhs, 0.0)
    chol, info = torch.linalg.cholesky_ex(sub_gram)
    if bool((info != 0).any()):  # not expected (degenerate regressors never join); LU is safe
        sol = torch.linalg.solve(sub_gram, rhs)
    else:
        sol = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    return torch.zeros_like(xty).scatter(1, order, sol)


# --------------------------------------------------------------------------------------------
# Argument checks


def _check_alpha(alpha):
    if isinstance(alpha, torch.Tensor):
        if alpha.ndim != 0 or alpha.is_complex() or alpha.dtype == torch.bool:
            raise TypeError(
                f"alpha must be a real number or a 0-d real tensor, got a tensor of shape "
                f"{tuple(alpha.shape)} and dtype {alpha.dtype}.")
        alpha = alpha.item()
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a real number, got {type(alpha).__name__} {alpha!r}.")
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite non-negative number, got {alpha!r}.")
    return alpha


def _check_data(X, Y):
    for name, value, last in (("X", X, "n_features"), ("Y", Y, "n_targets")):
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{name} must be a torch.Tensor of shape (..., n_samples, {last}), "
                f"got {type(value).__module__}.{type(value).__name__}.")
        if not value.is_floating_point():
            raise TypeError(
                f"{name} must have a real floating dtype (float32 or float64), got {value.dtype}.")
        if value.ndim < 2:
            hint = " For a single target use Y[..., None]." if name == "Y" else ""
            raise ValueError(
                f"{name} must have shape (..., n_samples, {last}) with at least 2 dimensions, "
                f"got shape {tuple(value.shape)}.{hint}")
    if X.device != Y.device:
        raise ValueError(f"X and Y must be on the same device, got {X.device} and {Y.device}.")
    n_samples, n_features = X.shape[-2:]
    if Y.shape[-2] != n_samples:
        raise ValueError(
            f"X and Y must have the same number of samples (dimension -2), got X of shape "
            f"{tuple(X.shape)} and Y of shape {tuple(Y.shape)}.")
    if n_samples == 0 or n_features == 0:
        raise ValueError(
            f"X must have at least one sample and one feature, got shape {tuple(X.shape)}.")
    try:
        batch_shape = torch.broadcast_shapes(X.shape[:-2], Y.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"The leading (batch) dimensions of X {tuple(X.shape[:-2])} and Y "
            f"{tuple(Y.shape[:-2])} do not broadcast.") from None
    for name, value in (("X", X), ("Y", Y)):
        if not bool(torch.isfinite(value.detach()).all()):
            raise ValueError(f"{name} contains NaN or infinity.")
    return tuple(batch_shape), n_samples, n_features, Y.shape[-1]


def _check_max_iter(max_iter, n_samples, n_features):
    if max_iter is None:
        return 8 * min(n_samples, n_features) + n_features + 16
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 0:
        raise ValueError(f"max_iter must be None or a non-negative integer, got {max_iter!r}.")
    return int(max_iter)


def _check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) \
            or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a positive finite number, got {eps!r}.")
    return float(eps)


def _empty_info(batch_shape, n_targets, n_features, dtype, device):
    shape = (*batch_shape, n_targets)
    return LarsInfo(
        active=torch.zeros(*shape, n_features, dtype=torch.bool, device=device),
        signs=torch.zeros(*shape, n_features, dtype=dtype, device=device),
        n_iter=torch.zeros(shape, dtype=torch.int64, device=device),
        converged=torch.ones(shape, dtype=torch.bool, device=device),
    )
