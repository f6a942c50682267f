"""Tests of skvarae.stats: the permutation test of equal VAR dynamics.

The acceptance test of a test is its calibration: under H0 it must reject at its nominal level,
under an alternative it must have power. Both are checked on VAR-only data (no network), where
the truth is known; the network path gets one end-to-end test.
"""

import math
import warnings
from itertools import combinations

import numpy as np
import pytest
import torch

from skvarae import stats
from skvarae.stats import (
    permutation_test_maps,
    PermutationTestResult,
    compare_latents,
    compare_sequences,
    permutation_test,
)
from skvarae.var import fit_var

# A stable sparse VAR(1) in d=3: latent 0 drives latent 1, latent 2 is independent.
A0 = np.array([[0.5, 0.0, 0.0], [0.3, 0.4, 0.0], [0.0, 0.0, 0.6]])
ALPHA = 0.02


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def simulate_var(coef, shape, n_frames, rng, burn_in=50):
    """Sequences of a VAR(1) with N(0, I) innovations: array of shape (*shape, n_frames, d)."""
    d = coef.shape[-1]
    z = np.zeros(shape + (d,))
    out = np.empty(shape + (n_frames, d))
    for t in range(burn_in + n_frames):
        z = z @ coef.T + rng.standard_normal(shape + (d,))
        if t >= burn_in:
            out[..., t - burn_in, :] = z
    return out


def shifted(effect):
    """A0 with the coupling of latent 0 on latent 1 changed by ``effect``."""
    coef = A0.copy()
    coef[1, 0] += effect
    return coef


def brute_force_pvalue(coefs_a, coefs_b):
    """Exact p-value by enumerating all relabellings, written as plainly as possible."""
    units = np.concatenate([coefs_a, coefs_b])
    n, n_a = len(units), len(coefs_a)

    def stat(idx_a):
        idx_b = [i for i in range(n) if i not in idx_a]
        return np.linalg.norm(units[list(idx_a)].mean(0) - units[idx_b].mean(0))

    observed = stat(tuple(range(n_a)))
    null = np.array([stat(c) for c in combinations(range(n), n_a)])
    return np.mean(null >= observed * (1 - 1e-9)), null


# ------------------------------------------------------------------------------ result type
def test_result_repr_is_short_and_readable():
    result = permutation_test(np.zeros((3, 1, 2, 2)), np.ones((3, 1, 2, 2)))
    text = repr(result)
    assert text.startswith("PermutationTestResult(statistic=2, pvalue=0.1, n_permutations=20,")
    assert "exact=True" in text
    assert "null_distribution" not in text and "array" not in text
    assert isinstance(result, PermutationTestResult)
    with pytest.raises(AttributeError):
        result.pvalue = 0.0  # frozen


# -------------------------------------------------------------------------- permutation test
def test_exact_enumeration_3_vs_3_has_20_relabellings():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 0.1, (3, 1, 2, 2))
    b = rng.normal(1.0, 0.1, (3, 1, 2, 2))
    result = permutation_test(a, b, n_permutations=20)
    assert result.exact is True
    assert result.n_permutations == 20 == math.comb(6, 3)
    assert result.null_distribution.shape == (20,)
    # The observed labelling is the first relabelling enumerated.
    assert result.null_distribution[0] == result.statistic
    # Perfectly separated groups: only the observed split and its mirror image reach T.
    assert result.pvalue == pytest.approx(2 / 20)
    assert result.min_pvalue == pytest.approx(2 / 20)


def test_exact_pvalue_matches_brute_force_enumeration():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 2, 3, 3))
    b = rng.normal(0.3, 1.0, size=(4, 2, 3, 3))
    result = permutation_test(a, b, n_permutations=1000)
    expected_p, expected_null = brute_force_pvalue(a, b)
    assert result.exact and result.n_permutations == 35
    assert result.pvalue == pytest.approx(expected_p)
    np.testing.assert_allclose(result.null_distribution, expected_null, rtol=1e-12)
    assert result.min_pvalue == pytest.approx(1 / 35)  # unequal sizes: no mirror image


def test_random_permutations_when_relabellings_exceed_n_permutations():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 1, 2, 2))
    b = rng.normal(size=(3, 1, 2, 2))
    result = permutation_test(a, b, n_permutations=19, random_state=0)  # 20 relabellings
    assert result.exact is False
    assert result.n_permutations == 19
    assert result.null_distribution.shape == (19,)
    assert result.min_pvalue == pytest.approx(1 / 20)


def test_random_pvalue_formula():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(8, 1, 3, 3))
    b = rng.normal(0.2, 1.0, size=(8, 1, 3, 3))
    result = permutation_test(a, b, n_permutations=499, random_state=0)
    null, t = result.null_distribution, result.statistic
    assert not result.exact and null.shape == (499,)
    assert result.pvalue == pytest.approx((1 + np.sum(null >= t * (1 - 1e-9))) / (1 + 499))
    # Each null value is the statistic of some relabelling of the same units.
    units = np.concatenate([a, b]).reshape(16, -1)
    assert np.all(null <= np.linalg.norm(units, axis=1).max() * 2)
    assert result.pvalue >= 1 / 500


def test_pvalue_never_below_one_over_b_plus_one():
    a = np.zeros((10, 1, 2, 2))
    b = np.ones((10, 1, 2, 2))
    result = permutation_test(a, b, n_permutations=99, random_state=0)
    assert result.pvalue == pytest.approx(1 / 100)


def test_relabellings_equal_up_to_rounding_count_as_ties():
    # Units x, y, x vs y, x, y: 18 of the 20 relabellings give the observed statistic in exact
    # arithmetic (only in a different summation order); the other two give a larger one.
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(2, 1, 4, 4)) * np.array([1e3, 1e-3, 1.0, 7.0])
    result = permutation_test(np.stack([x, y, x]), np.stack([y, x, y]), n_permutations=20)
    assert result.exact
    assert result.pvalue == 1.0


def test_identical_units_give_pvalue_one():
    coefs = np.full((4, 1, 3, 3), 0.25)
    result = permutation_test(coefs, coefs, n_permutations=100, random_state=0)
    assert result.statistic == 0.0
    assert result.pvalue == 1.0


def test_random_state_makes_it_reproducible():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, 7, 1, 3, 3))
    first = permutation_test(a, b, n_permutations=200, random_state=42)
    second = permutation_test(a, b, n_permutations=200, random_state=42)
    other = permutation_test(a, b, n_permutations=200, random_state=43)
    np.testing.assert_array_equal(first.null_distribution, second.null_distribution)
    assert first.pvalue == second.pvalue
    assert not np.array_equal(first.null_distribution, other.null_distribution)
    # A numpy Generator and a RandomState are accepted as well.
    gen = permutation_test(a, b, n_permutations=200, random_state=np.random.default_rng(0))
    rs = permutation_test(a, b, n_permutations=200, random_state=np.random.RandomState(0))
    assert gen.n_permutations == rs.n_permutations == 200


def test_n_jobs_gives_identical_results(monkeypatch):
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(2, 9, 1, 4, 4))
    # Small chunks, so that two jobs really share the work.
    monkeypatch.setattr(stats, "_MAX_CHUNK", 37)
    one = permutation_test(a, b, n_permutations=500, random_state=0, n_jobs=1)
    two = permutation_test(a, b, n_permutations=500, random_state=0, n_jobs=2)
    np.testing.assert_array_equal(one.null_distribution, two.null_distribution)
    assert one.pvalue == two.pvalue and one.statistic == two.statistic
    # ... and identical to a single chunk.
    monkeypatch.setattr(stats, "_MAX_CHUNK", 4096)
    whole = permutation_test(a, b, n_permutations=500, random_state=0)
    np.testing.assert_array_equal(one.null_distribution, whole.null_distribution)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_permutations=0),
         "n_permutations.*must be an int in the range \\[1, inf\\)\\. Got 0"),
        (dict(n_permutations=10.5), "n_permutations.*must be an int"),
        (dict(n_permutations=True), "n_permutations.*must be an int"),
    ],
)
def test_permutation_test_rejects_bad_n_permutations(kwargs, match):
    with pytest.raises(ValueError, match=match):
        permutation_test(np.zeros((2, 1, 2, 2)), np.ones((2, 1, 2, 2)), **kwargs)


def test_permutation_test_rejects_bad_coefficients():
    ok = np.zeros((2, 1, 2, 2))
    with pytest.raises(ValueError, match="coefs_a holds no units"):
        permutation_test(np.zeros((0, 1, 2, 2)), ok)
    with pytest.raises(ValueError, match="coefs_b holds no units"):
        permutation_test(ok, np.zeros((0, 1, 2, 2)))
    with pytest.raises(ValueError, match="same shape per unit"):
        permutation_test(ok, np.zeros((2, 1, 3, 3)))
    with pytest.raises(ValueError, match="coefs_b contains NaN"):
        permutation_test(ok, np.full((2, 1, 2, 2), np.nan))


# ----------------------------------------------------------------------------- calibration
def _rejection_rate(n_a, n_b, effect, n_permutations, n_datasets, seed):
    """Fraction of simulated datasets with p <= 0.05 (VARs of all datasets fitted at once)."""
    rng = np.random.default_rng(seed)
    Z = np.concatenate(
        [
            simulate_var(A0, (n_datasets, n_a), 100, rng),
            simulate_var(shifted(effect), (n_datasets, n_b), 100, rng),
        ],
        axis=1,
    )
    coefs = fit_var(torch.from_numpy(Z), ALPHA)[0].numpy()
    pvalues = np.array(
        [
            permutation_test(
                coefs[r, :n_a], coefs[r, n_a:], n_permutations=n_permutations, random_state=r
            ).pvalue
            for r in range(n_datasets)
        ]
    )
    return np.mean(pvalues <= 0.05)


# 4 vs 5 runs with 200 permutations is an exact test over 126 relabellings (its exact size is
# 6/126 = 0.048); 5 vs 5 runs with 199 permutations uses random permutations (252 relabellings).
CALIBRATION_DESIGNS = [(4, 5, 200), (5, 5, 199)]


@pytest.mark.parametrize("n_a, n_b, n_permutations", CALIBRATION_DESIGNS)
def test_calibration_under_the_null(n_a, n_b, n_permutations):
    # 400 null datasets: the binomial standard error at 0.05 is 0.011, so [0.02, 0.08] is
    # about +-2.7 standard errors around the nominal level.
    rate = _rejection_rate(n_a, n_b, 0.0, n_permutations, n_datasets=400, seed=n_a + 10 * n_b)
    assert 0.02 <= rate <= 0.08


@pytest.mark.parametrize("n_a, n_b, n_permutations", CALIBRATION_DESIGNS)
def test_power_against_one_changed_coupling(n_a, n_b, n_permutations):
    # Effect size: the coupling of latent 0 on latent 1 changes by 0.4 (0.3 -> 0.7), 100 frames
    # per run, d = 3.
    rate = _rejection_rate(n_a, n_b, 0.4, n_permutations, n_datasets=200, seed=1 + n_a * n_b)
    assert rate > 0.8


def test_compare_latents_is_fit_var_then_permutation_test():
    rng = np.random.default_rng(7)
    Z = simulate_var(A0, (9,), 100, rng)
    result = compare_latents(list(Z[:4]), Z[4:], ALPHA, n_permutations=200, random_state=0)
    coefs = fit_var(torch.from_numpy(Z), ALPHA)[0].numpy()
    expected = permutation_test(coefs[:4], coefs[4:], n_permutations=200, random_state=0)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.pvalue == expected.pvalue
    assert (result.n_units_a, result.n_units_b, result.n_blocks) == (4, 5, 1)
    assert result.block_length is None


def test_compare_latents_handles_runs_of_different_lengths_and_lags():
    rng = np.random.default_rng(8)
    runs = [simulate_var(A0, (), n, rng) for n in (80, 90, 100, 110, 120, 130, 140, 150)]
    result = compare_latents(runs[:4], runs[4:], ALPHA, lags=2, random_state=0)
    assert result.exact and result.n_permutations == 70
    assert 0.0 < result.pvalue <= 1.0


# -------------------------------------------------------------------------------- blocking
@pytest.mark.parametrize(
    "n_a, n_b, expected",
    [
        (1, 1, 4),
        (2, 2, 2),
        (1, 2, 3),
        (1, 3, 2),
        (2, 3, 2),
        (3, 3, 2),
        (3, 4, 1),
        (4, 4, 1),
        (4, 5, 1),
    ],
)
def test_blocking_rule_uses_fewest_blocks_that_can_reach_005(n_a, n_b, expected):
    assert stats.choose_n_blocks([1000] * n_a, [1000] * n_b, 1000, 50) == expected
    if expected > 1:
        assert stats._min_pvalue(expected * n_a, expected * n_b, 1000) <= 0.05
        assert stats._min_pvalue((expected - 1) * n_a, (expected - 1) * n_b, 1000) > 0.05


@pytest.mark.parametrize("n_runs, n_frames, n_blocks", [(1, 400, 4), (2, 200, 2)])
def test_blocking_reaches_significance_with_one_or_two_runs_per_condition(
    n_runs, n_frames, n_blocks
):
    rng = np.random.default_rng(9)
    runs_a = list(simulate_var(A0, (n_runs,), n_frames, rng))
    runs_b = list(simulate_var(shifted(-0.6), (n_runs,), n_frames, rng))  # strong effect
    with pytest.warns(UserWarning, match="not fully exchangeable") as record:
        result = compare_latents(runs_a, runs_b, ALPHA, random_state=0)
    assert record[0].filename == __file__  # the warning points at the caller
    assert result.n_blocks == n_blocks
    assert result.n_units_a == result.n_units_b == n_runs * n_blocks
    assert result.block_length == n_frames // n_blocks
    assert result.exact and result.n_permutations == 70
    assert result.pvalue <= 0.05


def test_blocks_cover_the_run_without_dropping_frames():
    rng = np.random.default_rng(10)
    runs_a, runs_b = [rng.normal(size=(203, 3))], [rng.normal(size=(250, 3))]
    with pytest.warns(UserWarning, match="4 contiguous blocks"):
        result = compare_latents(runs_a, runs_b, ALPHA, random_state=0)
    assert result.block_length == 50  # 203 -> 51, 51, 51, 50
    blocks = stats._split(runs_a[0], 4)
    assert [len(b) for b in blocks] == [51, 51, 51, 50]
    np.testing.assert_array_equal(np.concatenate(blocks), runs_a[0])


def test_no_blocking_when_runs_suffice():
    rng = np.random.default_rng(11)
    runs = list(rng.normal(size=(8, 200, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compare_latents(runs[:4], runs[4:], ALPHA, random_state=0)
    assert result.n_blocks == 1 and result.n_units_a == 4


def test_warns_but_returns_when_blocking_cannot_reach_005():
    rng = np.random.default_rng(12)
    runs_a, runs_b = [rng.normal(size=(120, 3))], [rng.normal(size=(120, 3))]
    with pytest.warns(UserWarning) as record:
        result = compare_latents(runs_a, runs_b, ALPHA, random_state=0)
    messages = [str(w.message) for w in record]
    assert any("not fully exchangeable" in m for m in messages)
    assert any("cannot reach p <= 0.05" in m and "too short" in m for m in messages)
    assert result.n_blocks == 2  # 120 frames hold two blocks of at least 50
    assert result.min_pvalue == pytest.approx(2 / 6)
    # Runs too short for any block: whole runs, one warning.
    with pytest.warns(UserWarning, match="cannot reach p <= 0.05"):
        result = compare_latents([runs_a[0][:60]], [runs_b[0][:60]], ALPHA)
    assert result.n_blocks == 1 and result.pvalue == 1.0


def test_explicit_n_blocks():
    rng = np.random.default_rng(13)
    runs = list(rng.normal(size=(4, 300, 3)))
    with pytest.warns(UserWarning, match="3 contiguous blocks"):
        result = compare_latents(runs[:2], runs[2:], ALPHA, n_blocks=3, random_state=0)
    assert (result.n_units_a, result.block_length) == (6, 100)
    with pytest.warns(UserWarning, match=r"with n_blocks=1"):
        result = compare_latents(runs[:2], runs[2:], ALPHA, n_blocks=1)
    assert result.n_blocks == 1 and result.n_permutations == 6


def test_warns_when_n_permutations_is_too_small():
    rng = np.random.default_rng(14)
    runs = list(rng.normal(size=(20, 60, 3)))
    with pytest.warns(UserWarning, match="n_permutations=10 is too small"):
        result = compare_latents(runs[:10], runs[10:], ALPHA, n_permutations=10, random_state=0)
    assert result.n_blocks == 1


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "latents_a, latents_b, kwargs, match",
    [
        ([], [np.zeros((100, 3))], {}, "latents_a holds no runs"),
        ([np.zeros((100, 3))], np.zeros((0, 100, 3)), {}, "latents_b holds no runs"),
        ([np.zeros((100, 3))], [np.zeros((100, 4))], {}, "latents_b has d=4"),
        ([np.zeros((100, 3)), np.zeros((100, 2))], [np.zeros((100, 3))], {}, "Run 1 of latents_a"),
        (np.zeros((100, 3)), [np.zeros((100, 3))], {}, r"pass a list of runs"),
        ([np.zeros((2, 3))], [np.zeros((100, 3))], {}, "Run 0 of latents_a has 2 frames"),
        ([np.full((100, 3), np.nan)], [np.zeros((100, 3))], {}, "contains NaN"),
        (
            [np.zeros((200, 3))],
            [np.zeros((100, 3)), np.zeros((120, 3))],
            dict(n_blocks=3),
            "Run 0 of latents_b has 100 frames, too short for n_blocks=3",
        ),
        ([np.zeros((100, 3))] * 2, [np.zeros((100, 3))] * 2, dict(n_permutations=0), "n_perm"),
        ([np.zeros((100, 3))] * 2, [np.zeros((100, 3))] * 2, dict(n_blocks=0), "n_blocks"),
        ([np.zeros((100, 3))] * 2, [np.zeros((100, 3))] * 2, dict(n_blocks="x"), "n_blocks"),
        ([np.zeros((100, 3))] * 2, [np.zeros((100, 3))] * 2, dict(min_block_length=2), "min_b"),
        ([np.zeros((100, 3))] * 2, [np.zeros((100, 3))] * 2, dict(lags=0), "lags"),
    ],
)
def test_compare_latents_rejects_bad_input(latents_a, latents_b, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare_latents(latents_a, latents_b, ALPHA, **kwargs)


# ------------------------------------------------------------------------ with the network
@pytest.fixture(scope="module")
def fitted_model():
    estimator = pytest.importorskip("skvarae.estimator")
    datasets = pytest.importorskip("skvarae.datasets")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = datasets.make_calcium_movies(n_runs=4, n_frames=120, random_state=0)
        model = estimator.SparseVARAutoencoder(
            max_epochs=1, latent_channels=1, random_state=0
        ).fit(data.movies)
    finally:
        torch.set_num_threads(previous)
    return model, data.movies


def test_compare_sequences_end_to_end(fitted_model):
    model, X = fitted_model
    # Runs alternate between conditions; 2 vs 2 runs of 120 frames -> 2 blocks of 60 per run.
    with pytest.warns(UserWarning, match="2 contiguous blocks") as record:
        result = compare_sequences(model, X[0::2], list(X[1::2]), random_state=0)
    assert record[0].filename == __file__
    assert isinstance(result, PermutationTestResult)
    assert (result.n_units_a, result.n_units_b, result.n_blocks) == (4, 4, 2)
    assert result.exact and result.n_permutations == 70
    assert np.isfinite(result.statistic) and 0.0 < result.pvalue <= 1.0
    # The same as encoding by hand and testing the latents.
    with pytest.warns(UserWarning):
        expected = compare_latents(
            list(model.encode(X[0::2])), list(model.encode(X[1::2])), model.alpha, model.lags
        )
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.pvalue == expected.pvalue


def test_compare_sequences_rejects_bad_input(fitted_model):
    model, X = fitted_model
    with pytest.raises(ValueError, match="X_a is empty"):
        compare_sequences(model, [], X[1::2])
    with pytest.raises(ValueError, match=r"X_b has frames of shape \(16, 16\)"):
        compare_sequences(model, X[0::2], X[1::2, :, :16, :16])
    with pytest.raises(ValueError, match="n_permutations"):
        compare_sequences(model, X[0::2], X[1::2], n_permutations=0)


def test_compare_sequences_needs_a_fitted_model():
    from sklearn.exceptions import NotFittedError

    estimator = pytest.importorskip("skvarae.estimator")
    with pytest.raises(NotFittedError):
        compare_sequences(estimator.SparseVARAutoencoder(), np.zeros((2, 10, 8, 8)), None)


# ------------------------------------------------------------------ per-pixel map test
def _brute_force_maxT(maps_a, maps_b):
    """Exact maxT p-values by explicit enumeration (reference for permutation_test_maps)."""
    from itertools import combinations as _combinations

    flat = np.concatenate([maps_a, maps_b]).reshape(len(maps_a) + len(maps_b), -1)
    n, n_a = len(flat), len(maps_a)
    observed = np.abs(flat[:n_a].mean(0) - flat[n_a:].mean(0))
    maxima = []
    for units in _combinations(range(n), n_a):
        rest = [u for u in range(n) if u not in units]
        maxima.append(np.abs(flat[list(units)].mean(0) - flat[rest].mean(0)).max())
    maxima = np.array(maxima)
    return np.array([(maxima >= t - 1e-9 * max(t, 1)).mean() for t in observed])


def test_map_test_matches_brute_force_enumeration():
    rng = np.random.default_rng(0)
    maps_a, maps_b = rng.random((3, 4, 3)), rng.random((4, 4, 3))
    result = permutation_test_maps(maps_a, maps_b)
    assert result.exact and result.n_permutations == 35
    np.testing.assert_allclose(result.pvalues.ravel(), _brute_force_maxT(maps_a, maps_b))
    np.testing.assert_allclose(result.difference, maps_a.mean(0) - maps_b.mean(0))
    assert (result.pvalues >= result.pvalues_uncorrected).all()


def test_map_test_under_the_null_controls_the_family_wise_rate():
    # 5 vs 5 exchangeable runs (252 relabellings, exact), 30 pixels with unequal variances
    # and correlations: the rate of any pixel with p <= 0.05 must not exceed 0.05 beyond noise.
    rng = np.random.default_rng(1)
    mixing = rng.standard_normal((30, 30)) * rng.uniform(0.1, 3.0, 30)
    any_significant = []
    for _ in range(300):
        maps = (rng.standard_normal((10, 30)) @ mixing).reshape(10, 5, 6)
        result = permutation_test_maps(maps[:5], maps[5:])
        any_significant.append(result.significant(0.05).any())
    rate = np.mean(any_significant)
    assert 0.01 <= rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 300)


def test_map_test_finds_the_changed_region_only():
    rng = np.random.default_rng(2)
    maps = rng.normal(1.0, 0.1, (12, 8, 8))
    maps[6:, 2:4, 5:7] += 1.0  # condition b drives more in a 2 x 2 region
    result = permutation_test_maps(maps[:6], maps[6:], n_permutations=500, random_state=0)
    assert not result.exact and result.n_permutations == 500
    significant = result.significant(0.05)
    assert significant[2:4, 5:7].all() and significant.sum() == 4
    assert result.pvalues[2:4, 5:7].max() == pytest.approx(1 / 501)
    assert (result.difference[2:4, 5:7] < -0.5).all()
    # Random permutations are reproducible from the seed.
    again = permutation_test_maps(maps[:6], maps[6:], n_permutations=500, random_state=0)
    np.testing.assert_array_equal(again.null_max, result.null_max)


def test_map_test_rejects_bad_input():
    maps = np.zeros((3, 4, 4))
    with pytest.raises(ValueError, match="maps_a must have shape"):
        permutation_test_maps(maps[0], maps)
    with pytest.raises(ValueError, match="same shape"):
        permutation_test_maps(maps, maps[:, :3])
    with pytest.raises(ValueError, match="no runs"):
        permutation_test_maps(maps[:0], maps)
    bad = maps.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        permutation_test_maps(bad, maps)
    with pytest.raises(ValueError, match="n_permutations"):
        permutation_test_maps(maps, maps, n_permutations=0)
