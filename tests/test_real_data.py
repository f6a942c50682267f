"""A small version of benchmarks/bench_real.py on the real optinist movie (slow, needs network).

The movie is GPL-3.0: it is downloaded at run time into a cache outside the repository
(``$SKVARAE_DATA`` or ``~/.cache/skvarae``) and the test skips when it cannot be fetched.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from skvarae import SparseVARAutoencoder

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_real.py"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_real", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(bench):
    try:
        path = bench.fetch_movie()
    except bench.RealDataUnavailable as error:
        pytest.skip(f"the real movie cannot be fetched: {error}")
    # 32 x 32 (4 x 4 binned), 8 runs of 100 frames: 6 to train on, 2 held out.
    return bench.load_runs(path, bin_factor=4, run_frames=100, n_runs=8)


def test_default_model_beats_persistence_and_pca_on_the_real_movie(bench, runs):
    train, test = runs[:6], runs[6:]
    model = SparseVARAutoencoder(max_epochs=15, device="cpu", random_state=0)
    d = int(model.latent_channels * 16)
    rows = {
        "persistence": bench.evaluate(bench.Persistence(), train, test),
        "pca": bench.evaluate(
            bench.PCAVAR(d, model.alpha, model.lags, "mean", model.baseline_time_constant),
            train, test,
        ),
        "model": bench.evaluate(bench.Neural("end-to-end", model), train, test),
    }
    forecast = {name: row["forecast"] for name, row in rows.items()}
    assert rows["model"]["score"] == pytest.approx(forecast["model"], abs=1e-4)
    assert forecast["model"] > forecast["persistence"], forecast
    assert forecast["model"] > forecast["pca"], forecast
    assert rows["model"]["reconstruction"] >= rows["pca"]["reconstruction"], rows


def test_r2_is_the_score_metric(bench):
    observed = np.random.default_rng(0).random((10, 3, 3))
    assert bench.r2(observed, observed) == 1.0
    assert bench.r2(observed, np.broadcast_to(observed.mean(0), observed.shape)) == 0.0
