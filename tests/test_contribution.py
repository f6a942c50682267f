import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from torch import nn

from skvarae import SparseVARAutoencoder
from skvarae.contribution import (
    contribution_map,
    contribution_maps,
    difference_map,
    difference_map_test,
    encoder_jacobian,
    latent_maps,
    latent_weights,
)
from skvarae.stats import permutation_test_maps
from skvarae.network import ConvEncoder
from skvarae.var import fit_var

# The paper's model: one mean frame bypasses a purely convolutional network, early stopping on the
# training loss. These tests pin its mechanics exactly; the defaults (running baseline, linear
# path, held-out tails) are tested in test_baseline.py, test_network.py and test_training.py.
PAPER_MODEL = dict(baseline="mean", linear_path=False, validation_fraction=0.0)

# Tiny and fast, as in test_estimator.py: d = 4 latents for 6 x 5 frames.
TINY = dict(
    latent_channels=1, max_latent_side=2, base_channels=2, max_epochs=3, batch_size=4,
    random_state=0, **PAPER_MODEL,
)


def ar_movies(n_runs=3, n_frames=24, shape=(6, 5), seed=0):
    """Pixels mixing 2 AR(1) latents through fixed patterns, on a bright static background."""
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((2,) + shape)
    background = 5.0 + rng.random(shape)
    movies = []
    for _ in range(n_runs):
        z = np.zeros((n_frames, 2))
        for t in range(1, n_frames):
            z[t] = 0.8 * z[t - 1] + rng.standard_normal(2)
        movie = background + np.einsum("tk,khw->thw", z, patterns)
        movies.append(movie + 0.05 * rng.standard_normal(movie.shape))
    return np.asarray(movies, dtype=np.float32)


def driven_region_movies(corner, n_runs=3, n_frames=100, shape=(12, 12), side=4, seed=0):
    """Only a side x side block in one corner has dynamics (a shared AR(1) signal, phi = 0.9);
    every other pixel is white noise of the same variance (activity but no dynamics), all on a
    static, non-uniform background. Returns the movies and the mask of the driving block."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, dtype=bool)
    top = 0 if corner[0] == 0 else shape[0] - side
    left = 0 if corner[1] == 0 else shape[1] - side
    mask[top : top + side, left : left + side] = True
    background = 10.0 + 5.0 * rng.random(shape)
    gain = 1.0 + rng.random(shape)
    movies = []
    for _ in range(n_runs):
        z = np.zeros(n_frames)
        for t in range(1, n_frames):
            z[t] = 0.9 * z[t - 1] + np.sqrt(1 - 0.9**2) * rng.standard_normal()
        noise = rng.standard_normal((n_frames,) + shape)
        activity = np.where(mask, z[:, None, None], noise) * gain
        movies.append(background + activity + 0.05 * rng.standard_normal(activity.shape))
    return np.asarray(movies, dtype=np.float32), mask


@pytest.fixture(scope="module")
def movies():
    return ar_movies()


@pytest.fixture(scope="module")
def fitted(movies):
    return SparseVARAutoencoder(**TINY).fit(movies)


def tiny_encoder(frame_shape=(5, 4), seed=0):
    torch.manual_seed(seed)
    return ConvEncoder(frame_shape, latent_channels=1, max_latent_side=2, base_channels=2).double()


def brute_force_maps(encoder, runs, coef, offset, scale, baseline, kind="coefficient"):
    """The documented formulas, frame by frame, with torch.autograd.functional.jacobian."""
    maps = []
    for run, run_coef in zip(runs, coef):
        reading = []  # G_j: (d, h, w) per frame
        for frame in np.asarray(run, dtype=np.float32):
            x = torch.from_numpy((frame - offset) / scale).double()
            jac = torch.autograd.functional.jacobian(lambda f: encoder(f[None])[0], x).numpy()
            deviation = (frame - baseline) / scale
            reading.append(np.abs(jac * deviation))
        G = np.mean(reading, axis=0)
        A = np.abs(run_coef).sum(axis=0)  # sum over lags: |A|[i, j]
        d = len(A)
        out = np.array([sum(A[i, j] for i in range(d) if i != j) for j in range(d)])
        inflow = np.array([sum(A[j, i] for i in range(d) if i != j) for j in range(d)])
        if kind == "coefficient":
            w = A.sum(axis=0)  # w_j = sum_k sum_i |A_k[i, j]|
        elif kind == "cross":
            w = out
        else:
            w = np.maximum(out - inflow, 0.0)
        maps.append(np.einsum("j,jhw->hw", w, G))
    return np.stack(maps)


# ----------------------------------------------------------------------------- the maths
def test_latent_weights_is_outgoing_coefficient_mass():
    coef = np.array([[[0.5, -0.2], [0.0, 0.3]], [[0.1, 0.0], [-0.4, 0.0]]])  # lags=2, d=2
    np.testing.assert_allclose(latent_weights(coef, kind="coefficient"),
                               [0.5 + 0.1 + 0.4, 0.2 + 0.3])
    np.testing.assert_allclose(latent_weights(coef[None], kind="coefficient"), [[1.0, 0.5]])
    with pytest.raises(ValueError, match="lags, d, d"):
        latent_weights(np.zeros((2, 3)))


def test_encoder_jacobian_matches_autograd_and_finite_differences():
    encoder = tiny_encoder()
    frames = torch.randn(3, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    jacobian = encoder_jacobian(encoder, frames)
    assert jacobian.shape == (3, encoder.n_latent, 5, 4)
    for t in range(3):
        reference = torch.autograd.functional.jacobian(lambda f: encoder(f[None])[0], frames[t])
        torch.testing.assert_close(jacobian[t], reference, rtol=1e-10, atol=1e-12)
    # Central finite differences, pixel by pixel (fine on a 5 x 4 frame).
    eps = 1e-6
    with torch.no_grad():
        for h in range(5):
            for w in range(4):
                step = torch.zeros_like(frames)
                step[:, h, w] = eps
                numeric = (encoder(frames + step) - encoder(frames - step)) / (2 * eps)
                torch.testing.assert_close(jacobian[:, :, h, w], numeric, rtol=1e-6, atol=1e-8)


def test_contribution_maps_match_the_documented_formula():
    encoder = tiny_encoder()
    rng = np.random.default_rng(0)
    runs = [10 + rng.standard_normal((n, 5, 4)).astype(np.float32) for n in (7, 5)]
    coef = rng.standard_normal((2, 2, encoder.n_latent, encoder.n_latent))
    coef[coef < 0.3] = 0.0  # sparse, with some latents switched off entirely
    coef[0, :, :, 1] = 0.0
    baseline = 10 + 0.1 * rng.standard_normal((5, 4)).astype(np.float32)
    offset = np.full((5, 4), 9.5, dtype=np.float32)
    for kind in ("driving", "cross", "coefficient"):
        maps = contribution_maps(encoder, runs, coef, offset=offset, scale=2.0,
                                 baseline=baseline, kind=kind)
        expected = brute_force_maps(encoder, runs, coef, offset, 2.0, baseline, kind)
        assert maps.shape == (2, 5, 4) and maps.dtype == np.float64
        np.testing.assert_allclose(maps, expected, rtol=1e-9, atol=1e-12)
        # The baseline defaults to the offset (the skip connection: input and deviation
        # coincide).
        np.testing.assert_allclose(
            contribution_maps(encoder, runs, coef, offset=baseline, scale=2.0, kind=kind),
            brute_force_maps(encoder, runs, coef, baseline, 2.0, baseline, kind),
            rtol=1e-9,
            atol=1e-12,
        )


@pytest.mark.parametrize("batch_pixels", [1, 20, 61])
def test_batching_does_not_change_the_maps(batch_pixels):
    encoder = tiny_encoder()
    rng = np.random.default_rng(2)
    runs = [rng.standard_normal((9, 5, 4)).astype(np.float32)]
    coef = rng.standard_normal((1, 1, encoder.n_latent, encoder.n_latent))
    one_batch = contribution_maps(encoder, runs, coef, offset=0.0, scale=1.0)
    batched = contribution_maps(
        encoder, runs, coef, offset=0.0, scale=1.0, batch_pixels=batch_pixels
    )
    np.testing.assert_allclose(batched, one_batch, rtol=1e-12)


def test_zero_weights_and_silent_pixels_give_zero_contribution():
    encoder = tiny_encoder()
    rng = np.random.default_rng(3)
    run = rng.standard_normal((6, 5, 4)).astype(np.float32)
    run[:, 0, :] = 0.0  # a row that never leaves the baseline (zero here)
    d = encoder.n_latent
    coef = rng.standard_normal((2, 1, d, d))
    coef[1] = 0.0  # run 1: a VAR with no coefficients
    maps = contribution_maps(encoder, [run, run], coef, offset=0.0, scale=1.0)
    assert (maps >= 0).all()
    np.testing.assert_array_equal(maps[0, 0], 0.0)
    assert (maps[0, 1:] > 0).all()
    np.testing.assert_array_equal(maps[1], 0.0)


def test_contribution_maps_reject_mismatched_coef():
    encoder = tiny_encoder()
    run = np.zeros((6, 5, 4), dtype=np.float32)
    d = encoder.n_latent
    with pytest.raises(ValueError, match="n_runs = 2"):
        contribution_maps(encoder, [run, run], np.zeros((1, 1, d, d)), offset=0.0, scale=1.0)
    with pytest.raises(ValueError, match="latent dimensions"):
        contribution_maps(encoder, [run], np.zeros((1, 1, d + 1, d + 1)), offset=0.0, scale=1.0)


class BlockMeans(nn.Module):
    """A transparent encoder: latent (a, b) is the mean of the (a, b)-th block x block tile."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, frames):
        return nn.functional.avg_pool2d(frames[:, None], self.block).flatten(start_dim=1)


def test_known_driving_region_ranks_highest_with_a_transparent_encoder():
    # Only the block at rows 4-7, columns 8-11 has dynamics; every other block carries white
    # noise of the same variance (coherent within the block, so every latent has the same
    # variance), one block never moves, and all sit on a static non-uniform background.
    rng = np.random.default_rng(0)
    block, shape, n_frames = 4, (12, 12), 200
    mask = np.zeros(shape, dtype=bool)
    mask[4:8, 8:12] = True
    silent = np.zeros(shape, dtype=bool)
    silent[8:12, 0:4] = True
    background = 10.0 + 5.0 * rng.random(shape)
    runs, coefs, encoder = [], [], BlockMeans(block)
    for _ in range(2):
        z = np.zeros(n_frames)
        for t in range(1, n_frames):
            z[t] = 0.9 * z[t - 1] + np.sqrt(1 - 0.81) * rng.standard_normal()
        noise = np.kron(rng.standard_normal((n_frames, 3, 3)), np.ones((block, block)))
        activity = np.where(mask, z[:, None, None], noise)
        activity[:, silent] = 0.0
        run = (background + activity).astype(np.float32)
        runs.append(run)
        latents = encoder(torch.from_numpy(run - background).double())
        coefs.append(fit_var(latents, alpha=0.1)[0].numpy())
    # A region that only persists: found by the coefficient mass, not by the driving map.
    maps = contribution_maps(encoder, runs, np.stack(coefs), offset=background, scale=1.0,
                             kind="coefficient")
    omega = maps.mean(axis=0)
    assert omega[mask].min() > omega[~mask].max()
    np.testing.assert_array_equal(omega[silent], 0.0)


# ----------------------------------------------------------------------- the estimator
def test_map_has_frame_shape_and_is_finite_and_non_negative(fitted, movies):
    assert fitted.contribution_maps_.shape == (3, 6, 5)
    for omega, shape in [
        (fitted.contribution_map(), (6, 5)),
        (fitted.contribution_map(movies[:2]), (6, 5)),
        (fitted.contribution_map(movies[:2], per_run=True), (2, 6, 5)),
        (fitted.contribution_map(per_run=True), (3, 6, 5)),
    ]:
        assert isinstance(omega, np.ndarray) and omega.shape == shape
        assert np.isfinite(omega).all() and (omega >= 0).all() and omega.max() > 0


def test_map_without_X_equals_the_map_on_the_training_runs(fitted, movies):
    np.testing.assert_allclose(
        fitted.contribution_map(per_run=True),
        fitted.contribution_map(movies, per_run=True),
        rtol=1e-5,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        fitted.contribution_map(), fitted.contribution_map(movies), rtol=1e-5, atol=1e-7
    )


def test_training_maps_use_coef_as_weights(fitted, movies):
    encoder = copy.deepcopy(fitted.encoder_).double()
    expected = brute_force_maps(
        encoder, movies, fitted.coef_, fitted.mean_frame_, fitted.scale_, fitted.mean_frame_,
        kind="driving",
    )
    np.testing.assert_allclose(fitted.contribution_maps_, expected, rtol=1e-4, atol=1e-7)


def test_per_run_maps_average_to_the_overall_map_with_equal_run_weights(fitted, movies):
    runs = [movies[0], movies[1][:10], movies[2][:17]]  # ragged: runs count equally, not frames
    per_run = fitted.contribution_map(runs, per_run=True)
    np.testing.assert_allclose(per_run.mean(axis=0), fitted.contribution_map(runs), rtol=1e-12)
    # A run's map depends on that run only.
    np.testing.assert_allclose(per_run[1], fitted.contribution_map([runs[1]]), rtol=1e-12)
    np.testing.assert_allclose(
        fitted.contribution_map(per_run=True).mean(axis=0), fitted.contribution_map(), rtol=1e-12
    )


def test_returned_maps_do_not_alias_the_fitted_attribute(fitted):
    maps = fitted.contribution_map(per_run=True)
    maps[:] = -1.0
    assert (fitted.contribution_maps_ >= 0).all()


def test_difference_map_is_the_difference_of_the_condition_maps(fitted, movies):
    a, b = movies[:2], movies[2:]
    expected = fitted.contribution_map(a) - fitted.contribution_map(b)
    np.testing.assert_allclose(difference_map(fitted, a, b), expected, rtol=1e-12)
    np.testing.assert_allclose(difference_map(fitted, a, a), 0.0, atol=0)


def test_module_function_and_method_agree(fitted, movies):
    np.testing.assert_array_equal(contribution_map(fitted), fitted.contribution_map())
    np.testing.assert_array_equal(
        contribution_map(fitted, movies, per_run=True),
        fitted.contribution_map(movies, per_run=True),
    )


def test_bad_X_raises_value_error(fitted, movies):
    with pytest.raises(ValueError, match=r"frames of shape \(6, 4\)"):
        fitted.contribution_map(movies[:, :, :, :4])
    with pytest.raises(ValueError, match=r"\[movie\]"):
        fitted.contribution_map(movies[0])
    with pytest.raises(ValueError, match="X_b has frames of shape"):
        difference_map(fitted, movies, movies[:, :, :4])


def test_unfitted_model_raises_not_fitted(movies):
    with pytest.raises(NotFittedError):
        SparseVARAutoencoder().contribution_map()
    with pytest.raises(NotFittedError):
        difference_map(SparseVARAutoencoder(), movies, movies)


def test_maps_survive_pickle_and_save_load(fitted, tmp_path):
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.contribution_map(), fitted.contribution_map())
    fitted.save(tmp_path / "model.pt")
    loaded = SparseVARAutoencoder.load(tmp_path / "model.pt")
    np.testing.assert_array_equal(loaded.contribution_maps_, fitted.contribution_maps_)


@pytest.mark.parametrize("params", [dict(skip_connection=False), dict(lags=2)])
def test_variants_give_maps_consistent_with_refitting(movies, params):
    model = SparseVARAutoencoder(**{**TINY, **params}).fit(movies)
    np.testing.assert_allclose(
        model.contribution_map(), model.contribution_map(movies), rtol=1e-5, atol=1e-7
    )


def test_single_pixel_runs_and_integer_movies(movies):
    series = np.random.default_rng(0).standard_normal((4, 12))
    model = SparseVARAutoencoder(**TINY).fit(series)
    assert model.contribution_map().shape == (1, 1)
    assert model.contribution_map(series, per_run=True).shape == (4, 1, 1)
    as_uint16 = (movies * 1000).astype(np.uint16)
    model = SparseVARAutoencoder(**TINY).fit(as_uint16)
    np.testing.assert_allclose(
        model.contribution_map(as_uint16), model.contribution_map(), rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize("corner", [(0, 0), (1, 1)], ids=["top-left", "bottom-right"])
def test_trained_model_ranks_the_driving_region_highest(corner):
    X, mask = driven_region_movies(corner)
    model = SparseVARAutoencoder(
        latent_channels=1, max_latent_side=3, base_channels=4, max_epochs=10,
        learning_rate=1e-2, batch_size=4, alpha=0.2, random_state=0, **PAPER_MODEL,
    ).fit(X)
    # The block only persists (no other place depends on it): the coefficient mass finds it.
    omega = model.contribution_map(X, kind="coefficient")
    assert roc_auc_score(mask.ravel(), omega.ravel()) > 0.9
    assert omega[mask].mean() > 4 * omega[~mask].mean()
    # What leaks out of the block stays within the receptive field of the latents that read it
    # (7 pixels wide, stride 4, here): the far corner of the frame gets (almost) nothing.
    far = np.zeros_like(mask)
    far[:4, :4] = True
    far = far[:: 2 * corner[0] - 1, :: 2 * corner[1] - 1]  # the corner opposite the block
    assert omega[far].max() < 0.05 * omega[mask].max()


# ------------------------------------------------------------------ the driving map (issue 13)
class LinearEncoder(nn.Module):
    """z = W x for frames x (n, h, w): a transparent, linear encoder."""

    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(torch.as_tensor(weight, dtype=torch.float64),
                                   requires_grad=False)
        self.n_latent = len(weight)

    def forward(self, frames):
        return frames.flatten(1) @ self.weight.T


def test_driving_map_on_a_linear_toy_is_known_exactly():
    # 4 latents, each the sum of one 2 x 2 block of a 4 x 4 frame (disjoint supports, so the
    # reading maps do not overlap and S is the identity). Every latent persists (A[j, j] = 0.9);
    # only latent 0 drives another latent (A[2, 0] = 0.5), and latent 3 drives latent 1 weakly
    # (A[1, 3] = 0.2). The driving map is then exactly 0.5 G_0 + 0.2 G_3, with
    # G_j[p] = mean_t |W[j, p] δ_t[p]| = mean_t |δ_t[p]| on block j.
    blocks = np.zeros((4, 4, 4))
    for j, (r, c) in enumerate([(0, 0), (0, 2), (2, 0), (2, 2)]):
        blocks[j, r : r + 2, c : c + 2] = 1.0
    encoder = LinearEncoder(blocks.reshape(4, -1))
    coef = 0.9 * np.eye(4)[None, None].repeat(2, axis=0)
    coef[:, 0, 2, 0], coef[:, 0, 1, 3] = 0.5, 0.2
    rng = np.random.default_rng(0)
    runs = [rng.standard_normal((30, 4, 4)), rng.standard_normal((20, 4, 4))]
    activity = np.stack([np.abs(run).mean(axis=0) for run in runs])  # mean_t |δ_t|
    expected = activity * (0.5 * blocks[0] + 0.2 * blocks[3])
    maps = contribution_maps(encoder, runs, coef, offset=0.0, scale=1.0)
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-9)
    # Leaving out only the self-terms gives the same map here (no overlap between latents) ...
    np.testing.assert_allclose(
        contribution_maps(encoder, runs, coef, offset=0.0, scale=1.0, kind="cross"),
        expected, rtol=1e-6, atol=1e-9,
    )
    # ... while the coefficient mass counts every latent's persistence: all blocks light up.
    coefficient = contribution_maps(encoder, runs, coef, offset=0.0, scale=1.0,
                                    kind="coefficient")
    np.testing.assert_allclose(
        coefficient, activity * (1.4 * blocks[0] + 0.9 * blocks[1] + 0.9 * blocks[2]
                                 + 1.1 * blocks[3]), rtol=1e-6, atol=1e-9,
    )


def test_driving_map_ignores_a_cell_split_over_two_latents():
    # Latents 0 and 1 read two halves of one "cell" and predict each other (0.6 both ways):
    # that is the cell's persistence, not driving. Latent 2 reads another block and drives
    # latent 0 (0.3), unanswered: the only driver. Latent 0 also gets a weak 0.1 from 1 more.
    weight = np.zeros((3, 4, 4))
    weight[0, :2, 0] = 1.0
    weight[1, :2, 1] = 1.0
    weight[2, 2:, 2:] = 1.0
    encoder = LinearEncoder(weight.reshape(3, -1))
    coef = np.zeros((1, 1, 3, 3))
    coef[0, 0, 0, 1], coef[0, 0, 1, 0] = 0.7, 0.6
    coef[0, 0, 0, 2] = 0.3
    run = np.random.default_rng(1).standard_normal((40, 4, 4))
    omega = contribution_maps(encoder, [run], coef, offset=0.0, scale=1.0)[0]
    activity = np.abs(run).mean(axis=0)
    # w = max(out - in, 0): latent 0: 0.6 - 1.0 -> 0; latent 1: 0.7 - 0.6 = 0.1; latent 2: 0.3.
    expected = 0.1 * weight[1] * activity + 0.3 * weight[2] * activity
    np.testing.assert_allclose(omega, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(latent_weights(coef[0]), [0.0, 0.1, 0.3], atol=1e-12)
    # kind="cross" counts the split cell's mutual prediction as driving.
    cross = contribution_maps(encoder, [run], coef, offset=0.0, scale=1.0, kind="cross")[0]
    assert cross[:2, 0].min() > cross[2:, 2:].max()


def test_latent_weights_kinds():
    A = np.array([[[0.9, 0.4, 0.3], [0.4, 0.9, 0.0], [0.0, 0.2, 0.9]]])
    np.testing.assert_allclose(latent_weights(A, kind="coefficient"), [1.3, 1.5, 1.2])
    np.testing.assert_allclose(latent_weights(A, kind="cross"), [0.4, 0.6, 0.3])
    np.testing.assert_allclose(latent_weights(A), [0.0, 0.6 - 0.4, 0.3 - 0.2])
    np.testing.assert_allclose(latent_weights(np.stack([A, 2 * A])), [[0, 0.2, 0.1],
                                                                      [0, 0.4, 0.2]])
    with pytest.raises(ValueError, match="kind must be one of"):
        latent_weights(A, kind="net")


def test_latent_maps_sum_to_the_coefficient_map():
    encoder = tiny_encoder()
    rng = np.random.default_rng(4)
    runs = [rng.standard_normal((6, 5, 4)).astype(np.float32)]
    coef = np.abs(rng.standard_normal((1, 1, encoder.n_latent, encoder.n_latent)))
    G = latent_maps(encoder, runs, offset=0.0, scale=1.0)
    assert G.shape == (1, encoder.n_latent, 5, 4)
    np.testing.assert_allclose(
        np.tensordot(latent_weights(coef[0], kind="coefficient"), G[0], axes=1),
        contribution_maps(encoder, runs, coef, offset=0.0, scale=1.0, kind="coefficient")[0],
        rtol=1e-9,
    )


def test_unknown_kind_and_kind_without_X_raise(fitted, movies):
    with pytest.raises(ValueError, match="kind must be one of"):
        fitted.contribution_map(movies, kind="total")
    with pytest.raises(ValueError, match="needs the runs"):
        fitted.contribution_map(kind="coefficient")
    assert fitted.contribution_map(movies, kind="coefficient").shape == (6, 5)


# ------------------------------------------------------------------ the difference-map test
def test_difference_map_test_matches_difference_map_and_the_array_test(fitted, movies):
    X_a, X_b = movies[:2], movies[1:]
    result = difference_map_test(fitted, X_a, X_b)
    np.testing.assert_allclose(result.difference, difference_map(fitted, X_a, X_b),
                               rtol=1e-10, atol=1e-12)
    maps_a = fitted.contribution_map(X_a, per_run=True)
    maps_b = fitted.contribution_map(X_b, per_run=True)
    direct = permutation_test_maps(maps_a, maps_b)
    np.testing.assert_allclose(result.pvalues, direct.pvalues)
    assert result.exact and result.n_permutations == 6  # C(4, 2)
    assert result.pvalues.shape == (6, 5) and (result.pvalues > 0).all()
    assert (result.pvalues >= result.pvalues_uncorrected - 1e-12).all()
    with pytest.raises(ValueError, match="X_b"):
        difference_map_test(fitted, X_a, movies[:, :, :3])
