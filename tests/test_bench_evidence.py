"""The evidence benchmark (benchmarks/bench_evidence.py): its metrics and its --quick run."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_evidence.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_evidence", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_latent_snr_of_a_linear_mix_of_the_traces_is_high(bench):
    rng = np.random.default_rng(0)
    traces = [rng.random((100, 5)) for _ in range(3)]
    mixing = rng.standard_normal((5, 4))
    clean = [t @ mixing + 7.0 for t in traces]  # offsets are centred away per run
    noisy = [z + rng.standard_normal(z.shape) for z in clean]
    assert bench.latent_snr(clean, traces) > 100
    assert bench.latent_snr(noisy, traces) < 10


def test_map_metrics_of_the_truth(bench):
    driver_mask = np.zeros((6, 6), bool)
    driver_mask[:2, :2] = True
    cell_mask = driver_mask.copy()
    cell_mask[4:, 4:] = True
    sim = dict(driver_mask=driver_mask, cell_mask=cell_mask)
    metrics = bench.map_metrics(driver_mask.astype(float) + 0.1 * cell_mask, sim)
    assert metrics["auc"] == metrics["auc_cells"] == 1.0
    assert metrics["mass_drivers"] == pytest.approx(4.4 / 4.8)


def test_pca_baseline_scores_like_the_estimator_on_a_perfectly_predictable_movie(bench):
    # Frames = mean + a_t * pattern with a_t = 0.9^t: the VAR(1) forecast is exact, R² = 1.
    pattern = np.random.default_rng(1).random((8, 8))
    runs = np.stack([(2 + 0.9 ** np.arange(40 + r))[-40:, None, None] * pattern
                     for r in range(3)]).astype(np.float32)
    model = bench.PCAVAR(n_components=1, alpha=0.0).fit(runs)
    assert model.score(runs) == pytest.approx(1.0, abs=1e-4)
    assert model.contribution_map().shape == (8, 8)


def test_the_benchmark_test_is_the_estimators_compare_sequences(bench):
    args = bench.parse_args(["--n-train", "2", "--n-test", "8", "--frames", "40"])
    sim = bench.simulate(0, args)
    model = bench.SparseVARAutoencoder(max_epochs=1, random_state=0, device="cpu")
    model.fit(sim["train"])
    pvalues = bench.test_pvalues(model.encode, sim, model.alpha, model.lags, args, seed=0)
    for key, runs, conditions in (("p_effect", sim["test"], sim["test_conditions"]),
                                  ("p_null", sim["null_test"], sim["null_conditions"])):
        result = model.compare_sequences(runs[conditions == 0], runs[conditions == 1],
                                         random_state=0)
        assert pvalues[key] == result.pvalue


@pytest.mark.slow
def test_quick_benchmark_writes_its_tables_and_figures(bench, tmp_path):
    bench.main(["--quick", "--epochs", "2", "--n-jobs", "1", "--out", str(tmp_path)])
    names = ("table.md", "sweep.md", "results.json", "maps.png", "static.png", "sweep.png",
             "latents.png")
    for name in names:
        assert (tmp_path / name).stat().st_size > 0, name
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    for variant in bench.VARIANTS:
        assert f"| {variant} |" in table
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert {r["variant"] for r in results["records"]} == set(bench.VARIANTS)
    assert all(0 <= r["p_effect"] <= 1 and 0 <= r["p_null"] <= 1 for r in results["records"])
    assert len(results["sweep"]) == len(results["records"]) + 2 * 3  # 2 more λ, 3 variants

    # The tables can be rewritten from results.json alone, identically.
    again = tmp_path / "again"
    bench.main(["--tables-from", str(tmp_path / "results.json"), "--out", str(again)])
    for name in ("table.md", "sweep.md"):
        assert (again / name).read_text(encoding="utf-8") == (tmp_path / name).read_text(
            encoding="utf-8"
        )
