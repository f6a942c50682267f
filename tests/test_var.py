import numpy as np
import pytest
import torch

from skvarae.var import fit_var, forecast_var, lagged_design

statsmodels = pytest.importorskip("statsmodels")
from statsmodels.datasets import macrodata  # noqa: E402
from statsmodels.tsa.api import VAR  # noqa: E402


def macro_growth():
    """Δlog of realgdp, realcons, realinv: statsmodels' own VAR test data, (202, 3)."""
    data = macrodata.load_pandas().data[["realgdp", "realcons", "realinv"]].to_numpy()
    return np.diff(np.log(data), axis=0)


def simulate_var(coef, n_frames, rng, noise=1.0):
    """Simulate z_t = A_1 z_{t-1} + ... + e_t; coef (lags, d, d) -> (n_frames, d)."""
    lags, d, _ = coef.shape
    z = np.zeros((n_frames + 50, d))
    for t in range(lags, len(z)):
        z[t] = sum(coef[k] @ z[t - k - 1] for k in range(lags)) + noise * rng.standard_normal(d)
    return z[50:]


@pytest.mark.parametrize("lags", [1, 2, 3])
def test_alpha_zero_equals_statsmodels_on_macrodata(lags):
    data = macro_growth()
    reference = VAR(data).fit(lags, trend="c")
    coef, intercept = fit_var(torch.from_numpy(data), alpha=0.0, lags=lags)
    np.testing.assert_allclose(coef.numpy(), reference.coefs, atol=1e-6, rtol=0)
    np.testing.assert_allclose(intercept.numpy(), reference.intercept, atol=1e-6, rtol=0)


def test_lagged_design_order_matches_statsmodels():
    z = torch.arange(30, dtype=torch.float64).reshape(10, 3)
    design, targets = lagged_design(z, lags=2)
    assert design.shape == (8, 6) and targets.shape == (8, 3)
    # Row 0 predicts z_2 from [z_1, z_0] (lag 1 first).
    np.testing.assert_array_equal(design[0].numpy(), np.r_[z[1].numpy(), z[0].numpy()])
    np.testing.assert_array_equal(targets[0].numpy(), z[2].numpy())


def test_lags_never_cross_sequence_boundaries():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 40, 3))
    batched, _ = fit_var(torch.from_numpy(np.stack([a, b])), alpha=0.05, lags=2)
    alone_a, _ = fit_var(torch.from_numpy(a), alpha=0.05, lags=2)
    alone_b, _ = fit_var(torch.from_numpy(b), alpha=0.05, lags=2)
    np.testing.assert_allclose(batched[0].numpy(), alone_a.numpy(), atol=1e-12)
    np.testing.assert_allclose(batched[1].numpy(), alone_b.numpy(), atol=1e-12)


@pytest.mark.parametrize("factor", [1e-3, 7.0, 1e4])
def test_scaling_latents_leaves_coefficients_and_sparsity_unchanged(factor):
    rng = np.random.default_rng(1)
    z = torch.from_numpy(rng.standard_normal((2, 120, 5)))
    coef, intercept = fit_var(z, alpha=0.1, lags=2)
    scaled_coef, scaled_intercept = fit_var(factor * z + 3.0, alpha=0.1, lags=2)
    np.testing.assert_array_equal(coef.numpy() != 0, scaled_coef.numpy() != 0)
    np.testing.assert_allclose(scaled_coef.numpy(), coef.numpy(), atol=1e-9)
    assert (coef == 0).any() and (coef != 0).any()


def test_sparse_truth_is_recovered():
    rng = np.random.default_rng(2)
    truth = np.zeros((1, 6, 6))
    truth[0, 1, 0], truth[0, 2, 1], truth[0, 0, 0] = 0.8, -0.6, 0.5
    z = simulate_var(truth, 2000, rng)
    coef, _ = fit_var(torch.from_numpy(z), alpha=0.05, lags=1)
    np.testing.assert_array_equal(coef.numpy()[0] != 0, truth[0] != 0)


def test_larger_alpha_is_sparser():
    rng = np.random.default_rng(3)
    z = torch.from_numpy(rng.standard_normal((300, 6)))
    counts = [int((fit_var(z, alpha, lags=2)[0] != 0).sum()) for alpha in (0.0, 0.02, 0.1, 10.0)]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == 2 * 6 * 6 and counts[-1] == 0


def test_forecast_matches_manual_recursion_and_statsmodels():
    data = macro_growth()
    reference = VAR(data).fit(2, trend="c")
    coef, intercept = fit_var(torch.from_numpy(data), alpha=0.0, lags=2)
    forecast = forecast_var(torch.from_numpy(data), coef, intercept).numpy()
    np.testing.assert_allclose(forecast, reference.fittedvalues, atol=1e-9)


def test_constant_sequence_gives_zero_coefficients_without_nan():
    z = torch.ones(30, 4, dtype=torch.float64, requires_grad=True)
    coef, intercept = fit_var(z, alpha=0.01, lags=1)
    assert torch.all(coef == 0)
    np.testing.assert_allclose(intercept.detach().numpy(), 1.0)
    (coef.sum() + intercept.sum()).backward()
    assert torch.isfinite(z.grad).all()


def test_fit_var_is_differentiable():
    rng = np.random.default_rng(4)
    z = torch.from_numpy(rng.standard_normal((2, 25, 3))).requires_grad_()

    def fitted_forecast(z):
        coef, intercept = fit_var(z, alpha=0.02, lags=1)
        return forecast_var(z, coef, intercept)

    assert torch.autograd.gradcheck(fitted_forecast, (z,), eps=1e-6, atol=1e-5)


def test_float32_input_works_and_keeps_dtype():
    rng = np.random.default_rng(5)
    z64 = torch.from_numpy(rng.standard_normal((100, 4)))
    coef32, intercept32 = fit_var(z64.float(), alpha=0.05, lags=1)
    coef64, _ = fit_var(z64, alpha=0.05, lags=1)
    assert coef32.dtype == torch.float32 and intercept32.dtype == torch.float32
    np.testing.assert_allclose(coef32.numpy(), coef64.numpy(), atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(Z=np.zeros((10, 2))), TypeError, "torch.Tensor"),
        (dict(Z=torch.zeros(10)), ValueError, "n_frames, d"),
        (dict(Z=torch.zeros(10, 2), lags=0), ValueError, "lags"),
        (dict(Z=torch.zeros(10, 2), lags=1.5), ValueError, "lags"),
        (dict(Z=torch.zeros(3, 2), lags=2), ValueError, "at least"),
    ],
)
def test_bad_input_raises(kwargs, error, match):
    kwargs.setdefault("lags", 1)
    with pytest.raises(error, match=match):
        fit_var(kwargs.pop("Z"), 0.1, **kwargs)


def test_forecast_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="latent dimensions"):
        forecast_var(torch.zeros(10, 3), torch.zeros(1, 2, 2), torch.zeros(2))
