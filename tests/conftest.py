import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def single_torch_thread():
    """Run torch on one thread during tests.

    The test models are tiny: thread start-up and synchronisation cost more than they save, and on
    a loaded 2-core CI machine torch's default thread pool slows these tests down many times over.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


#: Tiny and fast estimator parameters: a 2x2 latent map of one channel (d = 4) for 6x5 frames.
TINY_PARAMS = dict(
    latent_channels=1, max_latent_side=2, base_channels=2, max_epochs=2, batch_size=4,
    random_state=0,
)


def make_ar_movies(n_runs=3, n_frames=24, shape=(6, 5), phi=0.8, seed=0):
    """Movies whose pixels mix 2 AR(1) latents through fixed spatial patterns, plus a mean frame."""
    import numpy as np

    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((2,) + shape)
    background = 5.0 + rng.random(shape)
    movies = []
    for _ in range(n_runs):
        z = np.zeros((n_frames, 2))
        for t in range(1, n_frames):
            z[t] = phi * z[t - 1] + rng.standard_normal(2)
        movie = background + np.einsum("tk,khw->thw", z, patterns)
        movies.append(movie + 0.05 * rng.standard_normal(movie.shape))
    return np.asarray(movies, dtype=np.float32)


@pytest.fixture
def tiny_params():
    """Parameters of a tiny, fast SparseVARAutoencoder (a fresh dict per test)."""
    return dict(TINY_PARAMS)


@pytest.fixture(scope="session")
def ar_movies():
    """Three 24-frame runs of 6x5 frames with AR(1) dynamics (float32, read-only)."""
    movies = make_ar_movies()
    movies.setflags(write=False)
    return movies


@pytest.fixture(scope="session")
def tiny_fitted(ar_movies):
    """A tiny SparseVARAutoencoder fitted on ``ar_movies`` (do not modify)."""
    from skvarae import SparseVARAutoencoder

    return SparseVARAutoencoder(**TINY_PARAMS).fit(ar_movies)
