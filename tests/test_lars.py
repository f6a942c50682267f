"""Tests of skvarae.lars.lasso_lars against scikit-learn's LARS and the lasso optimality."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LassoLars, lars_path

from skvarae.lars import (DEFAULT_EPS, LarsInfo, _lars_path, _lars_path_reference,
                          _solve_on_active_set, lasso_lars)

# ---------------------------------------------------------------------------------------------
# helpers


def solve(X, Y, alpha, **kwargs):
    """lasso_lars on numpy float64 data (2-D X, 1-D or 2-D Y) -> numpy coef (k, p) [, info]."""
    Y = np.asarray(Y)
    Y2 = Y[:, None] if Y.ndim == 1 else Y
    out = lasso_lars(torch.from_numpy(np.asarray(X)), torch.from_numpy(Y2), alpha, **kwargs)
    if kwargs.get("return_info"):
        return out[0].numpy(), out[1]
    return out.numpy()


def sklearn_path_end(X, y, alpha, **kwargs):
    """Last coefficients of lars_path(method="lasso", alpha_min=alpha), shape (p,)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, _, coefs = lars_path(X, y, method="lasso", alpha_min=alpha, **kwargs)
    return coefs[:, -1]


def objective(X, y, b, alpha):
    return ((y - X @ b) ** 2).sum() / (2 * X.shape[0]) + alpha * np.abs(b).sum()


def alpha_max(X, y):
    return np.abs(X.T @ y).max() / X.shape[0]


def assert_kkt(X, y, b, alpha, active, signs, rtol=1e-8):
    """Lasso optimality, stated on the solver's own active set and signs.

    g = X^T (y - X b) / n must equal alpha * s_j on the active set (with b_j of sign s_j or 0)
    and stay within [-alpha, alpha] off it, where b_j = 0.
    """
    active = np.asarray(active, dtype=bool)
    signs = np.asarray(signs, dtype=float)
    g = X.T @ (y - X @ b) / X.shape[0]
    assert np.all(b[~active] == 0.0)
    assert np.all(b[active] * signs[active] >= 0.0), "an active coefficient has the wrong sign"
    assert np.all(np.abs(signs[active]) == 1.0)
    if active.any():
        assert np.abs(g[active] - alpha * signs[active]).max() <= rtol * alpha
    if (~active).any():
        assert np.abs(g[~active]).max() <= alpha * (1.0 + rtol)


def assert_matches_sklearn(X, y, b, info_active, info_signs, alpha):
    ref = sklearn_path_end(X, y, alpha)
    scale = max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(b, ref, rtol=0, atol=1e-8 * scale)
    f, f_ref = objective(X, y, b, alpha), objective(X, y, ref, alpha)
    assert abs(f - f_ref) <= 1e-9 * f_ref
    assert_kkt(X, y, b, alpha, info_active, info_signs)


def random_problem(rng, n, p, k=1, sparsity=3):
    X = rng.standard_normal((n, p))
    B = np.zeros((p, k))
    support = rng.choice(p, size=min(sparsity, p), replace=False)
    B[support] = rng.standard_normal((len(support), k))
    Y = X @ B + 0.5 * rng.standard_normal((n, k))
    return X, Y


# R's lars (type="lasso", intercept=FALSE) on the data of scikit-learn issue 7778, copied from
# sklearn/linear_model/tests/test_least_angle.py::test_lasso_lars_vs_R_implementation. Column i of
# R_COEF is the coefficient vector at the i-th knot of the path; variables 1 and 2 leave the active
# set and come back.
R_Y = np.array([-6.45006793, -3.51251449, -8.52445396, 6.12277822, -19.42109366])
R_X = np.array([
    [0.47299829, 0, 0, 0, 0],
    [0.08239882, 0.85784863, 0, 0, 0],
    [0.30114139, -0.07501577, 0.80895216, 0, 0],
    [-0.01460346, -0.1015233, 0.0407278, 0.80338378, 0],
    [-0.69363927, 0.06754067, 0.18064514, -0.0803561, 0.40427291],
]).T
R_COEF = np.array([
    [0, 0, 0, 0, 0, -79.810362809499026, -83.528788732782829, -83.777653739190711,
     -83.784156932888934, -84.033390591756657],
    [0, 0, 0, 0, -0.476624256777266, 0, 0, 0, 0, 0.025219751009936],
    [0, -3.577397088285891, -4.702795355871871, -7.016748621359461, -7.614898471899412,
     -0.336938391359179, 0, 0, 0.001213370600853, 0.048162321585148],
    [0, 0, 0, 2.231558436628169, 2.723267514525966, 2.811549786389614, 2.813766976061531,
     2.817462468949557, 2.817368178703816, 2.816221090636795],
    [0, 0, -1.218422599914637, -3.457726183014808, -4.021304522060710, -45.827461592423745,
     -47.776608869312305, -47.911561610746404, -47.914845922736234, -48.039562334265717],
])


def r_knots():
    """alphas of the R path (scikit-learn reproduces them), from largest to 0."""
    alphas, _, coefs = lars_path(R_X, R_Y, method="lasso")
    np.testing.assert_allclose(coefs, R_COEF, atol=1e-9)
    return alphas


# ---------------------------------------------------------------------------------------------
# agreement with scikit-learn


@pytest.mark.parametrize("n, p", [(40, 12), (25, 25), (12, 30), (60, 40)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_lars_path_on_random_designs(n, p, seed):
    rng = np.random.default_rng(seed)
    X, Y = random_problem(rng, n, p, k=4)
    for frac in [0.95, 0.5, 0.1, 0.01]:
        alpha = frac * min(alpha_max(X, Y[:, t]) for t in range(Y.shape[1]))
        coef, info = solve(X, Y, alpha, return_info=True)
        assert info.converged.all()
        for t in range(Y.shape[1]):
            assert_matches_sklearn(X, Y[:, t], coef[t], info.active[t], info.signs[t], alpha)


@pytest.mark.parametrize("alpha", [0.5, 0.05, 0.005])
def test_matches_lasso_lars_estimator_multi_target(alpha):
    rng = np.random.default_rng(3)
    X, Y = random_problem(rng, 50, 15, k=5)
    reference = LassoLars(alpha=alpha, fit_intercept=False).fit(X, Y).coef_
    coef = solve(X, Y, alpha)
    atol = 1e-8 * max(1, np.abs(reference).max())
    np.testing.assert_allclose(coef, reference, rtol=0, atol=atol)


def test_r_lars_path_with_drops_and_re_entries():
    alphas = r_knots()
    # At every knot of R's path (including alpha = 0, the least-squares end).
    for i, alpha in enumerate(alphas):
        coef = solve(R_X, R_Y, alpha)[0]
        np.testing.assert_allclose(coef, R_COEF[:, i], rtol=0, atol=1e-9 * np.abs(R_COEF).max())
    # Between knots the solver's active sets follow R's supports; a variable really leaves and
    # comes back.
    supports = []
    for i in range(len(alphas) - 1):
        mid = 0.5 * (alphas[i] + alphas[i + 1])
        coef, info = solve(R_X, R_Y, mid, return_info=True)
        expected = (R_COEF[:, i] != 0) | (R_COEF[:, i + 1] != 0)
        np.testing.assert_array_equal(info.active[0].numpy(), expected)
        assert_kkt(R_X, R_Y, coef[0], mid, info.active[0], info.signs[0])
        supports.append(info.active[0].numpy())
    supports = np.array(supports)
    left = supports[:-1] & ~supports[1:]
    came_back = [j for j in range(5) if left[:, j].any() and supports[-1, j]]
    assert left.any(), "the R path must contain a drop step"
    assert came_back == [1, 2]


def test_diabetes_entry_order_and_coefficients():
    X, y = load_diabetes(return_X_y=True)
    alphas, active_order, coefs = lars_path(X, y, method="lasso")
    mids = 0.5 * (alphas[:-1] + alphas[1:])  # one alpha inside each segment of the path
    last_entry = {}
    previous = np.zeros(X.shape[1], dtype=bool)
    for i, mid in enumerate(mids):
        coef, info = solve(X, y, mid, return_info=True)
        ref = 0.5 * (coefs[:, i] + coefs[:, i + 1])  # the path is linear between knots
        np.testing.assert_allclose(coef[0], ref, rtol=0, atol=1e-8 * np.abs(ref).max())
        current = info.active[0].numpy()
        for j in np.flatnonzero(current & ~previous):
            last_entry[j] = i
        previous = current
    # Order of (last) entry equals lars_path's `active` list; one variable is dropped and re-added.
    order = sorted(last_entry, key=lambda j: (last_entry[j], j))
    assert order == list(active_order)
    assert len(mids) > X.shape[1]
    coef = solve(X, y, 0.0)[0]
    np.testing.assert_allclose(coef, coefs[:, -1], rtol=0, atol=1e-8 * np.abs(coefs).max())


def test_batched_problems_equal_single_problems():
    rng = np.random.default_rng(4)
    n, p, k = 30, 10, 3
    X = rng.standard_normal((2, 3, n, p))
    B = rng.standard_normal((2, 3, p, k)) * (rng.random((2, 3, p, k)) < 0.3)
    Y = X @ B
    Y += 0.3 * rng.standard_normal(Y.shape)
    alpha = 0.05
    coef, info = lasso_lars(torch.from_numpy(X), torch.from_numpy(Y), alpha, return_info=True)
    assert coef.shape == (2, 3, k, p)
    assert info.active.shape == info.signs.shape == (2, 3, k, p)
    assert info.n_iter.shape == info.converged.shape == (2, 3, k)
    for a in range(2):
        for b in range(3):
            for t in range(k):
                ref = sklearn_path_end(X[a, b], Y[a, b, :, t], alpha)
                atol = 1e-9 * max(1, np.abs(ref).max())
                np.testing.assert_allclose(coef[a, b, t].numpy(), ref, rtol=0, atol=atol)
                single = solve(X[a, b], Y[a, b, :, t], alpha)[0]
                np.testing.assert_allclose(coef[a, b, t].numpy(), single, rtol=0, atol=1e-12)


def test_batch_dimensions_broadcast():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((20, 6))
    Y = rng.standard_normal((4, 20, 2))
    coef = lasso_lars(torch.from_numpy(X)[None], torch.from_numpy(Y), 0.05)
    assert coef.shape == (4, 2, 6)
    for i in range(4):
        np.testing.assert_allclose(coef[i].numpy(), solve(X, Y[i], 0.05), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# gradients


def gradcheck_point(seed, n=15, p=5, k=2, frac=0.3):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(2, n, p, generator=g, dtype=torch.float64)
    B = torch.randn(2, p, k, generator=g, dtype=torch.float64)
    Y = X @ B + torch.randn(2, n, k, generator=g, dtype=torch.float64)
    alpha = frac * (X.mT @ Y).abs().amax().item() / n
    return X.requires_grad_(), Y.requires_grad_(), alpha


@pytest.mark.parametrize("seed", [0, 1])
def test_gradcheck_in_float64(seed):
    X, Y, alpha = gradcheck_point(seed)
    _, info = lasso_lars(X, Y, alpha, return_info=True)
    assert info.active.any() and not info.active.all()  # a genuinely sparse point
    assert torch.autograd.gradcheck(lambda X, Y: lasso_lars(X, Y, alpha), (X, Y),
                                    eps=1e-6, atol=1e-7)


def test_gradient_equals_closed_form():
    """d(v . b)/dy = X_A z and d(v . b)/dX_A = (y - X b) z^T - X z b_A^T with z = G_AA^{-1} v_A."""
    rng = np.random.default_rng(6)
    X, Y = random_problem(rng, 30, 8)
    y = Y[:, 0]
    alpha = 0.2 * alpha_max(X, y)
    v = rng.standard_normal(8)
    Xt = torch.from_numpy(X).requires_grad_()
    Yt = torch.from_numpy(Y).requires_grad_()
    coef, info = lasso_lars(Xt, Yt, alpha, return_info=True)
    (coef[0] @ torch.from_numpy(v)).backward()

    A = info.active[0].numpy()
    b = coef[0].detach().numpy()
    XA = X[:, A]
    z = np.linalg.solve(XA.T @ XA, v[A])
    grad_X = np.zeros_like(X)
    grad_X[:, A] = np.outer(y - X @ b, z) - np.outer(XA @ z, b[A])
    np.testing.assert_allclose(Yt.grad.numpy()[:, 0], XA @ z, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Xt.grad.numpy(), grad_X, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("factor", [1.0, 1.5, 1e3])
def test_zero_solution_has_zero_gradient(factor):
    rng = np.random.default_rng(7)
    X, Y = random_problem(rng, 20, 6, k=3)
    alpha = factor * max(alpha_max(X, Y[:, t]) for t in range(3))
    Xt = torch.from_numpy(X).requires_grad_()
    Yt = torch.from_numpy(Y).requires_grad_()
    coef, info = lasso_lars(Xt, Yt, alpha, return_info=True)
    assert torch.all(coef == 0) and not info.active.any()
    coef.sum().backward()
    assert Xt.grad is not None and Yt.grad is not None
    assert torch.all(Xt.grad == 0) and torch.all(Yt.grad == 0)


def test_dropped_variable_is_not_in_gradient_active_set():
    """Just after a drop knot the dropped coefficient is exactly 0 and carries no gradient.

    Regression test for taking ``coef != 0`` as the active set: a coefficient that crossed zero
    can be left as a rounding residue along the path.
    """
    alphas = r_knots()
    # Knot 5 is where variable 1 leaves (R_COEF[1, 5] == 0 after being non-zero at knot 4).
    assert R_COEF[1, 4] != 0 and R_COEF[1, 5] == 0
    alpha = alphas[5] * (1 - 1e-9) + alphas[6] * 1e-9  # just below the drop knot
    Xt = torch.from_numpy(R_X).requires_grad_()
    Yt = torch.from_numpy(R_Y[:, None].copy()).requires_grad_()
    coef, info = lasso_lars(Xt, Yt, alpha, return_info=True)
    active = info.active[0].numpy()
    np.testing.assert_array_equal(active, [True, False, True, True, True])
    assert coef[0, 1].item() == 0.0
    coef[0].sum().backward()
    XA = R_X[:, active]
    z = np.linalg.solve(XA.T @ XA, np.ones(active.sum()))
    np.testing.assert_allclose(Yt.grad.numpy()[:, 0], XA @ z, rtol=1e-9)
    assert torch.all(Xt.grad[:, 1] == 0)


# ---------------------------------------------------------------------------------------------
# known traps


def test_float32_close_to_float64_on_long_path():
    rng = np.random.default_rng(8)
    X, Y = random_problem(rng, 150, 70, k=3, sparsity=30)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    alpha = 0.002 * alpha_max(X, Y[:, 0])
    c32, info32 = lasso_lars(torch.from_numpy(X32), torch.from_numpy(Y32), alpha, return_info=True)
    assert c32.dtype == torch.float32 and info32.signs.dtype == torch.float32
    assert info32.n_iter.min() >= 60  # a long path
    # Same as the float64 solver on the float32-rounded data, to float32 output precision ...
    c64r = solve(X32.astype(np.float64), Y32.astype(np.float64), alpha)
    np.testing.assert_allclose(c32.numpy(), c64r, rtol=0, atol=1e-6 * np.abs(c64r).max())
    # ... and close to the float64 answer on the original data.
    c64 = solve(X, Y, alpha)
    np.testing.assert_allclose(c32.numpy(), c64, rtol=0, atol=1e-4 * np.abs(c64).max())
    for t in range(3):
        ref = sklearn_path_end(X32.astype(np.float64), Y32[:, t].astype(np.float64), alpha)
        np.testing.assert_allclose(c32[t].numpy(), ref, rtol=0, atol=1e-6 * np.abs(ref).max())


def test_max_iter_truncation_warns_and_flags():
    rng = np.random.default_rng(9)
    X, Y = random_problem(rng, 40, 10, k=3)
    Y = np.column_stack([Y, np.zeros(40)])  # the zero target needs no step at all
    alpha = 1e-3
    with pytest.warns(ConvergenceWarning, match=r"max_iter=2 reached .* for 3 of 4 problems"):
        coef, info = solve(X, Y, alpha, max_iter=2, return_info=True)
    np.testing.assert_array_equal(info.converged.numpy(), [False, False, False, True])
    np.testing.assert_array_equal(info.n_iter.numpy(), [2, 2, 2, 0])
    # The truncated coefficients are scikit-learn's path point after 2 steps.
    for t in range(3):
        ref = sklearn_path_end(X, Y[:, t], alpha, max_iter=2)
        np.testing.assert_allclose(coef[t], ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, info = solve(X, Y, alpha, return_info=True)  # the default is enough: no warning
    assert info.converged.all()


def test_duplicated_and_collinear_columns_give_sklearn_fitted_values():
    rng = np.random.default_rng(10)
    X, Y = random_problem(rng, 30, 8)
    y = Y[:, 0]
    designs = {
        "duplicated": np.hstack([X, X[:, [0, 3]]]),
        "negated duplicate": np.hstack([X, -X[:, [2]]]),
        "collinear": np.hstack([X, X[:, [0]] - X[:, [1]]]),
    }
    for name, D in designs.items():
        for frac in [0.3, 0.05, 0.0]:
            alpha = frac * alpha_max(D, y)
            coef, info = solve(D, y, alpha, return_info=True)
            assert np.isfinite(coef).all() and info.converged.all(), name
            if alpha > 0:
                ref = sklearn_path_end(D, y, alpha)
                assert_kkt(D, y, coef[0], alpha, info.active[0], info.signs[0])
            else:
                # scikit-learn's absolute pivot threshold (1e-7) misses some duplicates at the
                # end of the path and then stops early; the least-squares fit is unique.
                ref = np.linalg.lstsq(D, y, rcond=None)[0]
            np.testing.assert_allclose(D @ coef[0], D @ ref, rtol=0, atol=1e-9 * np.abs(y).max(),
                                       err_msg=name)


def test_tied_correlations_solve_the_lasso():
    """Orthogonal design with equal correlations: the solution is soft-thresholding.

    All regressors tie at every step; one joins per step with a zero-length step. (scikit-learn's
    lars_path stops early on this design.)
    """
    X = np.vstack([np.eye(4), np.eye(4)])
    y = np.array([1.0, 1, -1, 1, 1, 1, -1, 1])
    n = 8
    for alpha in [0.0, 0.05, 0.2, 0.3]:
        coef, info = solve(X, y, alpha, return_info=True)
        expected = np.sign(X.T @ y) * np.maximum(np.abs(X.T @ y) - n * alpha, 0) / 2
        np.testing.assert_allclose(coef[0], expected, atol=1e-12)
        assert info.converged.all()


def test_many_ties_and_duplicates_terminate_without_nan():
    """Integer designs (many exact ties) with duplicated columns: the lasso is still solved."""
    rng = np.random.default_rng(11)
    for _ in range(15):
        n, p = rng.integers(4, 15), rng.integers(3, 12)
        X = rng.integers(-1, 2, size=(n, p)).astype(float)
        X = np.hstack([X, X[:, : rng.integers(1, p + 1)]])
        y = rng.integers(-3, 4, size=n).astype(float)
        if not np.any(X.T @ y):
            continue
        for frac in [0.05, 0.3, 0.7]:
            alpha = frac * alpha_max(X, y)
            coef, info = solve(X, y, alpha, return_info=True)
            assert np.isfinite(coef).all() and info.converged.all()
            assert_kkt(X, y, coef[0], alpha, info.active[0], info.signs[0], rtol=1e-9)
            # Optimal: never worse than scikit-learn (which is sometimes worse on such designs).
            ref = sklearn_path_end(X, y, alpha)
            assert objective(X, y, coef[0], alpha) <= objective(X, y, ref, alpha) * (1 + 1e-12)


def test_alpha_zero_is_least_squares_when_n_greater_than_p():
    rng = np.random.default_rng(12)
    X, Y = random_problem(rng, 50, 12, k=3)
    coef = solve(X, Y, 0.0)
    lstsq = np.linalg.lstsq(X, Y, rcond=None)[0].T
    np.testing.assert_allclose(coef, lstsq, rtol=0, atol=1e-10 * np.abs(lstsq).max())


def test_alpha_zero_with_n_less_than_p_interpolates_like_sklearn():
    rng = np.random.default_rng(13)
    X, Y = random_problem(rng, 10, 25)
    coef, info = solve(X, Y, 0.0, return_info=True)
    assert info.active.sum() == 10
    np.testing.assert_allclose(X @ coef[0], Y[:, 0], atol=1e-10)
    np.testing.assert_allclose(coef[0], sklearn_path_end(X, Y[:, 0], 0.0), atol=1e-8)


@pytest.mark.parametrize("target", ["zero", "constant"])
def test_zero_and_constant_targets(target):
    rng = np.random.default_rng(14)
    X = rng.standard_normal((20, 5))
    y = np.zeros(20) if target == "zero" else np.full(20, 3.0)
    for alpha in [0.0, 0.1]:
        coef, info = solve(X, y, alpha, return_info=True)
        assert np.isfinite(coef).all() and info.converged.all()
        np.testing.assert_allclose(coef[0], sklearn_path_end(X, y, alpha), atol=1e-10)


@pytest.mark.parametrize("x_scale, y_scale", [(1e6, 1.0), (1e-5, 1e-7), (1.0, 1e8)])
def test_scale_invariance(x_scale, y_scale):
    """coef(c X, d y, c d alpha) = (d / c) coef(X, y, alpha): all tolerances are relative."""
    rng = np.random.default_rng(18)
    X, Y = random_problem(rng, 30, 12, k=2)
    X[:, 5] = X[:, 2]  # and a degenerate column
    alpha = 0.02
    coef, info = solve(X, Y, alpha, return_info=True)
    scaled, scaled_info = solve(x_scale * X, y_scale * Y, x_scale * y_scale * alpha,
                                return_info=True)
    np.testing.assert_array_equal(scaled_info.active, info.active)
    np.testing.assert_allclose(scaled * x_scale / y_scale, coef,
                               rtol=0, atol=1e-10 * np.abs(coef).max())


def test_inputs_are_not_modified():
    rng = np.random.default_rng(15)
    for dtype in [torch.float32, torch.float64]:
        X = torch.from_numpy(rng.standard_normal((2, 20, 6))).to(dtype).requires_grad_()
        Y = torch.from_numpy(rng.standard_normal((2, 20, 3))).to(dtype)
        X_before, Y_before = X.detach().clone(), Y.clone()
        coef = lasso_lars(X, Y, 0.01)
        coef.sum().backward()
        assert torch.equal(X.detach(), X_before) and torch.equal(Y, Y_before)
        assert X.dtype == dtype and Y.dtype == dtype


def test_non_contiguous_inputs_and_output_dtype():
    rng = np.random.default_rng(16)
    Xt = torch.from_numpy(rng.standard_normal((6, 20)))  # transposed view below
    Y = torch.from_numpy(rng.standard_normal((3, 20))).float()
    coef = lasso_lars(Xt.T, Y.T, 0.05)
    assert coef.dtype == torch.float64  # promote_types(float64, float32)
    expected = solve(Xt.T.numpy().copy(), Y.T.double().numpy().copy(), 0.05)
    np.testing.assert_allclose(coef.numpy(), expected,
                               atol=1e-12)


def test_info_is_a_named_tuple_and_empty_targets():
    X = torch.randn(10, 4, dtype=torch.float64)
    coef, info = lasso_lars(X, torch.zeros(10, 0, dtype=torch.float64), 0.1, return_info=True)
    assert isinstance(info, LarsInfo)
    assert coef.shape == (0, 4) and info.active.shape == (0, 4) and info.n_iter.shape == (0,)
    coef, info = lasso_lars(X, torch.randn(10, 2, dtype=torch.float64), 0.01, return_info=True)
    assert info._fields == ("active", "signs", "n_iter", "converged")
    assert info.active.dtype == torch.bool and info.n_iter.dtype == torch.int64
    assert set(info.signs.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_alpha_as_zero_dim_tensor():
    X = torch.randn(15, 4, dtype=torch.float64)
    Y = torch.randn(15, 2, dtype=torch.float64)
    torch.testing.assert_close(lasso_lars(X, Y, torch.tensor(0.05)), lasso_lars(X, Y, 0.05))


# ---------------------------------------------------------------------------------------------
# argument checks

X_OK = torch.zeros(5, 3, dtype=torch.float64)
Y_OK = torch.zeros(5, 2, dtype=torch.float64)


@pytest.mark.parametrize("X, Y, alpha, kwargs, error, match", [
    (X_OK, Y_OK, -0.1, {}, ValueError, r"alpha must be a finite non-negative number, got -0.1"),
    (X_OK, Y_OK, float("nan"), {}, ValueError, r"alpha must be a finite non-negative .* got nan"),
    (X_OK, Y_OK, float("inf"), {}, ValueError, r"alpha must be a finite non-negative"),
    (X_OK, Y_OK, "0.1", {}, TypeError, r"alpha must be a real number, got str"),
    (X_OK, Y_OK, True, {}, TypeError, r"alpha must be a real number, got bool"),
    (X_OK, Y_OK, torch.ones(2), {}, TypeError, r"alpha must be a real number or a 0-d real"),
    (np.zeros((5, 3)), Y_OK, 0.1, {}, TypeError, r"X must be a torch.Tensor .* got numpy.ndarray"),
    (X_OK, [[0.0]] * 5, 0.1, {}, TypeError, r"Y must be a torch.Tensor .* got builtins.list"),
    (X_OK.long(), Y_OK, 0.1, {}, TypeError, r"X must have a real floating dtype .* torch.int64"),
    (X_OK, Y_OK.bool(), 0.1, {}, TypeError, r"Y must have a real floating dtype .* torch.bool"),
    (X_OK[0], Y_OK, 0.1, {}, ValueError, r"X must have shape \(..., n_samples, n_features\)"),
    (X_OK, Y_OK[:, 0], 0.1, {}, ValueError, r"Y must have shape .* Y\[..., None\]"),
    (X_OK, Y_OK[:4], 0.1, {}, ValueError, r"same number of samples .* \(5, 3\) .* \(4, 2\)"),
    (X_OK.expand(2, 5, 3), Y_OK.expand(3, 5, 2), 0.1, {}, ValueError,
     r"\(2,\) and Y \(3,\) do not broadcast"),
    (X_OK[:, :0], Y_OK, 0.1, {}, ValueError, r"at least one sample and one feature"),
    (X_OK.index_fill(0, torch.tensor([1]), float("nan")), Y_OK, 0.1, {}, ValueError,
     r"X contains NaN or infinity"),
    (X_OK, Y_OK.index_fill(0, torch.tensor([1]), float("inf")), 0.1, {}, ValueError,
     r"Y contains NaN or infinity"),
    (X_OK, Y_OK, 0.1, {"max_iter": -1}, ValueError,
     r"max_iter must be None or a non-negative integer, got -1"),
    (X_OK, Y_OK, 0.1, {"max_iter": 2.5}, ValueError, r"max_iter must be .* got 2.5"),
    (X_OK, Y_OK, 0.1, {"eps": 0.0}, ValueError, r"eps must be a positive finite number, got 0.0"),
])
def test_bad_arguments_raise_clear_errors(X, Y, alpha, kwargs, error, match):
    with pytest.raises(error, match=match):
        lasso_lars(X, Y, alpha, **kwargs)


# ---------------------------------------------------------------------------------------------
# CUDA


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype):
    rng = np.random.default_rng(17)
    X, Y = random_problem(rng, 60, 20, k=6, sparsity=8)
    X = torch.from_numpy(X).to(dtype).expand(3, 60, 20).clone()
    Y = torch.from_numpy(Y).to(dtype).expand(3, 60, 6).clone()
    alpha = 0.02
    coef_cpu, info_cpu = lasso_lars(X, Y, alpha, return_info=True)
    Xc, Yc = X.cuda().requires_grad_(), Y.cuda().requires_grad_()
    coef_gpu, info_gpu = lasso_lars(Xc, Yc, alpha, return_info=True)
    assert coef_gpu.device.type == "cuda" and coef_gpu.dtype == dtype
    assert torch.equal(info_gpu.active.cpu(), info_cpu.active)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(coef_gpu.cpu(), coef_cpu, rtol=tol, atol=tol)
    coef_gpu.sum().backward()
    assert torch.isfinite(Xc.grad).all() and torch.isfinite(Yc.grad).all()


# ---------------------------------------------------------------------------------------------
# the fast path (Cholesky factor updated along the path) against the reference path
# (refactorised at every step) and scikit-learn


def reference_solve(X, Y, alpha, max_iter=None, eps=DEFAULT_EPS):
    """lasso_lars computed with the reference path and the differentiable closed form."""
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    batch_shape = torch.broadcast_shapes(Xt.shape[:-2], Yt.shape[:-2])
    n, m = Xt.shape[-2:]
    k = Yt.shape[-1]
    B = int(np.prod(batch_shape))
    X64 = Xt.double().expand(*batch_shape, n, m).reshape(B, n, m)
    Y64 = Yt.double().expand(*batch_shape, n, k).reshape(B, n, k)
    gram, xty = X64.mT @ X64, (X64.mT @ Y64).mT
    max_iter = 8 * min(n, m) + m + 16 if max_iter is None else max_iter
    with torch.no_grad():
        path = _lars_path_reference(gram, xty, n, n * alpha, max_iter, eps)
    level = torch.where(path.converged, torch.full_like(path.level, n * alpha), path.level)
    coef = _solve_on_active_set(gram, xty.reshape(B * k, m),
                                torch.arange(B).repeat_interleave(k), path.active,
                                path.signs, level)
    return coef.reshape(*batch_shape, k, m), path


def drop_rich_problem(seed, batch=4, n=30, m=60, k=8):
    """Wide designs (n < m) with correlated columns: long paths with many drops."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((batch, n, m // 2))
    X = np.concatenate([base, base + 0.6 * rng.standard_normal((batch, n, m // 2))], axis=-1)
    B = rng.standard_normal((batch, m, k)) * (rng.random((batch, m, k)) < 0.2)
    Y = X @ B + 0.5 * rng.standard_normal((batch, n, k))
    return X, Y


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("frac", [0.1, 0.01, 0.0])
def test_fast_path_follows_the_reference_path_through_drops(seed, frac):
    X, Y = drop_rich_problem(seed)
    alpha = frac * np.abs(np.swapaxes(X, -1, -2) @ Y).max() / X.shape[-2]
    coef, info = lasso_lars(torch.from_numpy(X), torch.from_numpy(Y), alpha, return_info=True)
    ref, path = reference_solve(X, Y, alpha)
    # Same path: same steps, same active sets and signs where it stops, same coefficients.
    np.testing.assert_array_equal(info.n_iter.reshape(-1).numpy(), path.n_iter.numpy())
    np.testing.assert_array_equal(info.active.reshape(-1, X.shape[-1]).numpy(),
                                  path.active.numpy())
    np.testing.assert_array_equal(info.signs.reshape(-1, X.shape[-1]).numpy(),
                                  path.signs.numpy())
    np.testing.assert_allclose(coef.numpy(), ref.numpy(), rtol=0,
                               atol=1e-10 * np.abs(ref.numpy()).max())
    # The paths contain drops (a drop and the re-entry cost two steps beyond |A|).
    drops = info.n_iter - info.active.sum(dim=-1)
    assert int(drops.max()) >= 2 and int((drops > 0).sum()) >= 4
    if alpha > 0:
        for b in range(X.shape[0]):
            for t in range(Y.shape[-1]):
                assert_matches_sklearn(X[b], Y[b, :, t], coef[b, t].numpy(), info.active[b, t],
                                       info.signs[b, t], alpha)


def test_batched_mix_where_most_problems_finish_early():
    """Zero targets, targets above their alpha_max and long paths in one batch.

    More than half of the problems finish at once, so the working set is compacted (and the
    factors of the finished problems harvested) while the others go on.
    """
    rng = np.random.default_rng(19)
    n, p = 40, 25
    X = rng.standard_normal((3, n, p))
    Y = np.zeros((3, n, 6))
    Y[:, :, 0] = X[:, :, :8] @ rng.standard_normal(8) + 0.1 * rng.standard_normal((3, n))
    Y[:, :, 1] = 1e-4 * rng.standard_normal((3, n))  # alpha above its alpha_max: zero at once
    Y[:, :, 2] = X[:, :, 3]  # one regressor
    Y[:, :, 5] = X @ rng.standard_normal(p) + rng.standard_normal((3, n))
    alpha = 0.002
    for dtype in [torch.float64, torch.float32]:
        Xt, Yt = torch.from_numpy(X).to(dtype), torch.from_numpy(Y).to(dtype)
        coef, info = lasso_lars(Xt, Yt, alpha, return_info=True)
        assert coef.dtype == dtype and info.converged.all()
        assert info.n_iter[:, [1, 3, 4]].max() == 0 and info.n_iter[:, 5].min() > 20
        X64, Y64 = Xt.double().numpy(), Yt.double().numpy()
        for b in range(3):
            single = solve(X64[b], Y64[b], alpha)
            tol = 1e-12 if dtype == torch.float64 else 1e-6
            np.testing.assert_allclose(coef[b].double().numpy(), single, rtol=0,
                                       atol=tol * max(1, np.abs(single).max()))
            for t in range(6):
                ref = sklearn_path_end(X64[b], Y64[b, :, t], alpha)
                np.testing.assert_allclose(single[t], ref, rtol=0,
                                           atol=1e-8 * max(1, np.abs(ref).max()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_path_equals_reference_in_both_dtypes(dtype):
    X, Y = drop_rich_problem(3, batch=2, n=50, m=40, k=5)
    X, Y = torch.from_numpy(X).to(dtype), torch.from_numpy(Y).to(dtype)
    alpha = 0.005
    coef, info = lasso_lars(X, Y, alpha, return_info=True)
    ref, path = reference_solve(X, Y, alpha)
    assert coef.dtype == dtype
    np.testing.assert_array_equal(info.active.reshape(-1, 40).numpy(), path.active.numpy())
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(coef, ref.to(dtype), rtol=0, atol=tol * float(ref.abs().max()))


@pytest.mark.parametrize("growth, reserve", [(1, 1 << 30), (3, 0)])
def test_factor_buffer_moved_in_place_row_by_row_gives_the_same_path(monkeypatch, growth,
                                                                     reserve):
    """The factors move inside their buffer in chunks (growth, compaction of the working set).

    With one row per chunk and slots added one or three at a time, every chunk boundary and
    many growths are exercised, in a buffer reserved at once or reallocated as it fills; the
    path and the solution must not change.
    """
    X, Y = drop_rich_problem(6, batch=3, n=30, m=40, k=7)
    Y[:, :, :3] *= 1e-3  # problems that finish early: the working set is compacted
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    alpha = 0.01 * float((X.mT @ Y).abs().amax()) / 30
    coef, info = lasso_lars(X, Y, alpha, return_info=True)
    monkeypatch.setattr("skvarae.lars._CHUNK_ELEMENTS", 1)
    monkeypatch.setattr("skvarae.lars._CAP_GROWTH", growth)
    monkeypatch.setattr("skvarae.lars._CPU_RESERVE", reserve)
    coef_rows, info_rows = lasso_lars(X, Y, alpha, return_info=True)
    assert torch.equal(info_rows.n_iter, info.n_iter)
    assert torch.equal(info_rows.active, info.active)
    torch.testing.assert_close(coef_rows, coef, rtol=0, atol=1e-12 * float(coef.abs().max()))
    ref, path = reference_solve(X, Y, alpha)
    np.testing.assert_array_equal(info_rows.n_iter.reshape(-1).numpy(), path.n_iter.numpy())
    assert int((info.n_iter < info.n_iter.max() // 2).sum()) >= 3  # some finished early


def test_factors_after_many_drops_are_those_of_the_final_active_sets():
    """After joins and closed-form downdates, L L^T is the Gram matrix of the active set.

    The final factors are what the solution and its gradient are computed with: they must be
    those of G_AA (in slot order, identity on the padding) to rounding, however many
    regressors left on the way.
    """
    X, Y = drop_rich_problem(7, batch=3, n=30, m=60, k=8)
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    gram, xty = X.mT @ X, (X.mT @ Y).mT
    path = _lars_path(gram, xty, 30, 30 * 1e-3, 10_000, DEFAULT_EPS)
    drops = path.n_iter - path.active.sum(dim=1)
    assert int(drops.max()) >= 6 and int((drops >= 2).sum()) >= 10
    for f in path.factors:
        batch = f.rows // Y.shape[-1]
        valid = f.valid()
        order = f.order * valid
        g = gram[batch[:, None, None], order[:, :, None], order[:, None, :]]
        eye = torch.eye(order.shape[1], dtype=g.dtype)
        expected = torch.where(valid[:, :, None] & valid[:, None, :], g, eye)
        torch.testing.assert_close(f.chol @ f.chol.mT, expected, rtol=0,
                                   atol=1e-11 * float(gram.diagonal(dim1=1, dim2=2).max()))
        assert torch.equal(f.chol, f.chol.tril())


def test_degenerate_designs_in_a_batch_agree_with_the_reference():
    """Duplicated, negated and collinear columns and a zero column, several targets at once."""
    rng = np.random.default_rng(20)
    X, Y = random_problem(rng, 30, 8, k=4)
    designs = np.stack([
        np.hstack([X, X[:, [0, 3]], np.zeros((30, 1))]),
        np.hstack([X, -X[:, [2]], X[:, [0]] - X[:, [1]], X[:, [5]]]),
    ])
    for frac in [0.3, 0.05, 1e-4]:
        alpha = frac * np.abs(np.swapaxes(designs, -1, -2) @ Y).max() / 30
        coef, info = lasso_lars(torch.from_numpy(designs), torch.from_numpy(Y), alpha,
                                return_info=True)
        ref, path = reference_solve(designs, Y, alpha)
        assert info.converged.all() and torch.isfinite(coef).all()
        np.testing.assert_array_equal(info.active.reshape(-1, 11).numpy(), path.active.numpy())
        # Fitted values are unique even where coefficients are not (duplicated columns).
        fitted, fitted_ref = designs @ np.swapaxes(coef.numpy(), -1, -2), \
            designs @ np.swapaxes(ref.numpy(), -1, -2)
        np.testing.assert_allclose(fitted, fitted_ref, rtol=0, atol=1e-9 * np.abs(Y).max())
        for b in range(2):
            for t in range(4):
                assert_kkt(designs[b], Y[:, t], coef[b, t].numpy(), alpha, info.active[b, t],
                           info.signs[b, t], rtol=1e-6)


def test_every_joiner_degenerate_gives_zero():
    """With eps >= 1 no regressor can join (the empty-active-set branch): zero, no NaN."""
    rng = np.random.default_rng(21)
    X, Y = random_problem(rng, 20, 6, k=3)
    coef, info = solve(X, Y, 0.01, eps=2.0, return_info=True)
    assert np.all(coef == 0) and info.converged.all() and not info.active.any()
    ref, path = reference_solve(X, Y, 0.01, eps=2.0)
    assert np.all(ref.numpy() == 0)
    np.testing.assert_array_equal(info.n_iter.numpy(), path.n_iter.numpy())


def test_max_iter_truncation_in_a_batch_equals_the_reference():
    X, Y = drop_rich_problem(4, batch=2)
    for max_iter in [1, 7, 25]:
        with pytest.warns(ConvergenceWarning):
            coef, info = lasso_lars(torch.from_numpy(X), torch.from_numpy(Y), 1e-4,
                                    max_iter=max_iter, return_info=True)
        ref, path = reference_solve(X, Y, 1e-4, max_iter=max_iter)
        np.testing.assert_array_equal(info.converged.reshape(-1).numpy(), path.converged.numpy())
        np.testing.assert_allclose(coef.numpy(), ref.numpy(), rtol=0,
                                   atol=1e-10 * np.abs(ref.numpy()).max())


def test_gradients_equal_those_of_the_closed_form_through_drops():
    """The backward pass from the path's factors equals autograd through the closed form."""
    X, Y = drop_rich_problem(5, batch=3, n=25, m=30, k=6)
    alpha = 0.02
    V = torch.from_numpy(np.random.default_rng(22).standard_normal((3, 6, 30)))
    grads = []
    for fn in [lambda X, Y: lasso_lars(X, Y, alpha), lambda X, Y: reference_solve(X, Y, alpha)[0]]:
        Xt = torch.from_numpy(X).requires_grad_()
        Yt = torch.from_numpy(Y).requires_grad_()
        (fn(Xt, Yt) * V).sum().backward()
        grads.append((Xt.grad, Yt.grad))
    for new, ref in zip(grads[0], grads[1]):
        torch.testing.assert_close(new, ref, rtol=1e-9, atol=1e-11 * float(ref.abs().max()))


def test_gradcheck_through_drops_and_compaction():
    g = torch.Generator().manual_seed(23)
    X = torch.randn(2, 10, 14, generator=g, dtype=torch.float64)
    X[..., 7:] += X[..., :7]  # correlated columns: drops
    Y = torch.cat([X @ torch.randn(2, 14, 2, generator=g, dtype=torch.float64),
                   torch.zeros(2, 10, 3, dtype=torch.float64)], dim=-1)  # 3 finish at once
    Y[..., :2] += 0.3 * torch.randn(2, 10, 2, generator=g, dtype=torch.float64)
    alpha = 0.05 * float((X.mT @ Y).abs().amax()) / 10
    _, info = lasso_lars(X, Y, alpha, return_info=True)
    assert (info.n_iter - info.active.sum(-1)).max() >= 2  # a drop on the way
    assert torch.autograd.gradcheck(lambda X, Y: lasso_lars(X, Y, alpha),
                                    (X.requires_grad_(), Y.requires_grad_()), eps=1e-6,
                                    atol=1e-7, fast_mode=True)


def test_second_derivatives_raise():
    """The backward pass holds the path's factors fixed: it is not differentiable again."""
    X, Y, alpha = gradcheck_point(0)
    coef = lasso_lars(X, Y, alpha)
    (grad_x,) = torch.autograd.grad(coef.square().sum(), X, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        grad_x.sum().backward()
