"""Evidence for the paper's claims on simulated movies: variants, metrics, and a λ sweep.

Fits, on simulated calcium-imaging movies with known drivers (``make_calcium_movies``), for several
seeds:

- ``end-to-end``: ``SparseVARAutoencoder(training="end_to_end")``, the paper's model;
- ``two-stage``: ``training="two_stage"`` (autoencoder first, sparse VAR fitted afterwards);
- ``end-to-end, no skip``: ``skip_connection=False`` (the ablation of the paper's Figure 2);
- ``PCA + sparse VAR``: PCA of the dynamic part to the same latent size d, then the same sparse
  VAR (:func:`skvarae.var.fit_var`), a non-neural baseline;

and writes a Markdown table (mean ± sd over seeds) of held-out forecast R², contribution-map
ROC-AUC for the true driver cells, static / dynamic reconstruction quality, latent SNR,
permutation-test p-values with and without a true condition difference, and fit time; then a
λ sweep (sparsity of the VAR, forecast R², map AUC against λ, as in the paper's Figure 4), and
PNG figures. Every metric is defined in ``docs/evidence.md`` and in :func:`evaluate` below.

Protocol. Per seed, one simulator call gives ``n_train + n_test`` runs (conditions alternate);
models are fitted on the first ``n_train`` runs and every metric except the contribution maps is
computed on the ``n_test`` held-out runs. A second simulator call with the same seed and
``condition_effect=0`` gives the same anatomy, cells and innovations but identical dynamics in
both conditions; its held-out runs are the null case of the permutation test. Contribution maps
are those of the training runs (``contribution_map()``), as a user would look at them.

Usage::

    python benchmarks/bench_evidence.py --quick      # 1 seed, small: ~3 min
    python benchmarks/bench_evidence.py              # 3 seeds + λ sweep: ~20-25 min on 2 cores
    python benchmarks/bench_evidence.py --n-jobs 1   # the same on one core (~40 min)
    python benchmarks/bench_evidence.py --help       # sizes, training settings, --out
    python benchmarks/bench_evidence.py --maps --case hard --n-jobs 3   # map AUCs (issue 13)

``--maps`` is a separate protocol: per seed, every variant (end-to-end, two-stage, PCA + sparse
VAR, and the oracle on the true traces) is fitted on all runs of one simulated case ("hard":
40x40 pixels, 16 cells, 3 drivers, 6 targets, the "two_photon" preset with neuropil, bleaching
and jitter), with the latent grid from the cell size; it reports the ROC AUC of the driving map
for the driver pixels among cell pixels, of |Ω(condition 0) - Ω(condition 1)| for the drivers
whose couplings change, both also for the former map (``kind="coefficient"``), and the
family-wise significant pixels of the difference-map test. Outputs ``maps_<case>.md``,
``maps_<case>.json`` and ``maps_<case>.png``.

The default run is 15 neural fits of 50 epochs (3 seeds x end-to-end, two-stage, no skip, and
end-to-end retrained at 3 more λ), about 41 min of CPU time, run in 2 processes of 1 thread.

Outputs (default ``docs/_static/evidence/``, ``--out`` to change): ``table.md``, ``sweep.md``,
``results.json`` (every per-seed number and the settings), ``maps.png``, ``static.png``,
``sweep.png``, ``latents.png``.
"""

import argparse
import copy
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.utils.fixes import parse_version
from threadpoolctl import threadpool_limits

import skvarae
import skvarae.contribution
import skvarae.stats
from skvarae import SparseVARAutoencoder, make_calcium_movies
from skvarae.contribution import contribution_maps
from skvarae.estimator import held_out_split
from skvarae.stats import compare_latents
from skvarae.var import fit_var, forecast_var

# The fast PCA solver for many more frames than pixels; scikit-learn >= 1.5 has it.
_PCA_SOLVER = (
    "covariance_eigh" if parse_version(sklearn.__version__) >= parse_version("1.5") else "full"
)

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "_static" / "evidence"

VARIANTS = ("end-to-end", "two-stage", "end-to-end, no skip", "PCA + sparse VAR")
NEURAL = {
    "end-to-end": dict(training="end_to_end", skip_connection=True),
    "two-stage": dict(training="two_stage", skip_connection=True),
    "end-to-end, no skip": dict(training="end_to_end", skip_connection=False),
}
#: Variants refitted at every λ of the sweep. Two-stage training does not depend on λ (the VAR is
#: fitted after training), so its network is reused and only the VAR is refitted; PCA likewise.
SWEEP_VARIANTS = ("end-to-end", "two-stage", "PCA + sparse VAR")


# ------------------------------------------------------------------------------------ data
def simulate(seed, args):
    """Training runs, held-out runs, null held-out runs and the ground truth of one seed."""
    sizes = dict(
        n_runs=args.n_train + args.n_test,
        n_frames=args.frames,
        frame_shape=(args.size, args.size),
        random_state=seed,
    )
    data = make_calcium_movies(condition_effect=args.condition_effect, **sizes)
    # Same seed, no condition difference: same anatomy, cells, roles and innovations.
    null = make_calcium_movies(condition_effect=0.0, **sizes)
    train = slice(0, args.n_train)
    test = slice(args.n_train, None)
    n_cells = len(data.footprints)
    weighted = data.brightness[:, None] * data.footprints.reshape(n_cells, -1)

    def clean(traces):  # noise-free frames (no bleaching or jitter in these simulations)
        return data.anatomy + (traces @ weighted).reshape(len(traces), args.size, args.size)

    return dict(
        train=data.movies[train],
        test=data.movies[test],
        test_conditions=data.conditions[test],
        null_test=null.movies[test],
        null_conditions=null.conditions[test],
        test_clean=np.stack([clean(t) for t in data.traces[test]]),
        test_traces=data.traces[test],
        train_traces=data.traces[train],
        footprints=data.footprints,
        train_movies_std=data.movies[train].std(axis=1).mean(axis=0),
        anatomy=data.anatomy,
        driver_mask=data.driver_mask,
        cell_mask=(data.footprints > 0.5).any(axis=0),
    )


# ------------------------------------------------------------------------------- the models
class _LinearEncoder(torch.nn.Module):
    """z = W x̃ for frames x̃ (n, H, W): lets the PCA baseline reuse the library's Ω formula."""

    def __init__(self, components):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.from_numpy(components).float(), requires_grad=False)
        self.n_latent = len(components)

    def forward(self, frames):
        return frames.flatten(1) @ self.weight.T


class PCAVAR:
    """Non-neural baseline: PCA of the dynamic part to d components, then the same sparse VAR.

    Mirrors :class:`skvarae.SparseVARAutoencoder` with ``skip_connection=True``: ``mean_frame_``
    is the mean over all training frames, the dynamic part (x - mean_frame_) / scale_ is
    projected onto the first d principal components (fitted on the training frames), and a
    sparse VAR is fitted per run on the scores with :func:`skvarae.var.fit_var` at ``alpha``.
    """

    def __init__(self, n_components, alpha, lags=1):
        self.n_components = n_components
        self.alpha = alpha
        self.lags = lags

    def fit(self, runs):
        frames = np.concatenate([r.reshape(len(r), -1) for r in runs]).astype(np.float64)
        self.frame_shape_ = runs[0].shape[1:]
        self.mean_frame_ = frames.mean(axis=0).reshape(self.frame_shape_)
        self.offset_ = self.mean_frame_  # as the estimator's offset_ with the skip connection
        dynamic = frames - self.mean_frame_.ravel()
        self.scale_ = float(np.sqrt(np.mean(dynamic**2)))
        self.pca_ = PCA(self.n_components, svd_solver=_PCA_SOLVER).fit(dynamic / self.scale_)
        self.encoder_ = _LinearEncoder(self.pca_.components_)
        self.coef_ = np.stack([self._fit_var(z)[0] for z in self.encode(runs)])
        self.contribution_maps_ = contribution_maps(
            self.encoder_, list(runs), self.coef_, offset=self.mean_frame_, scale=self.scale_
        )
        return self

    def _fit_var(self, latents):
        coef, intercept = fit_var(torch.from_numpy(np.asarray(latents, np.float64)),
                                  self.alpha, self.lags)
        return coef.numpy(), intercept.numpy()

    def encode(self, runs):
        """Scores of the dynamic part (without PCA's centring: it is the mean frame already)."""
        return np.stack([
            ((r.reshape(len(r), -1) - self.mean_frame_.ravel()) / self.scale_)
            @ self.pca_.components_.T
            for r in runs
        ])

    def decode(self, latents):
        frames = (latents @ self.pca_.components_) * self.scale_ + self.mean_frame_.ravel()
        return frames.reshape(len(latents), *self.frame_shape_)

    def score(self, runs):
        """As the estimator's ``score``: last-quarter one-step forecast R², mean over runs."""
        scores = []
        for run, latents in zip(runs, self.encode(runs)):
            n_fit, n_test = held_out_split(len(run))
            z = torch.from_numpy(latents)
            coef, intercept = fit_var(z[:n_fit], self.alpha, self.lags)
            forecast = forecast_var(z[n_fit - self.lags:], coef, intercept).numpy()
            predicted = (self.decode(forecast) - self.mean_frame_).reshape(n_test, -1)
            observed = (run[n_fit:].astype(np.float64) - self.mean_frame_).reshape(n_test, -1)
            residual = np.sum((observed - predicted) ** 2)
            total = np.sum((observed - observed.mean(axis=0)) ** 2)
            scores.append(1.0 - residual / total)
        return float(np.mean(scores))

    def contribution_map(self, runs=None):
        if runs is None:
            return self.contribution_maps_.mean(axis=0)
        coef = np.stack([self._fit_var(z)[0] for z in self.encode(runs)])
        return contribution_maps(self.encoder_, list(runs), coef, offset=self.mean_frame_,
                                 scale=self.scale_).mean(axis=0)

    def autoencode(self, run):
        return self.decode(self.encode([run])[0])


def neural_model(variant, alpha, seed, args):
    extra = {} if args.linear_path is None else dict(linear_path=args.linear_path)
    if args.reconstruction_subsample is not None:
        extra["reconstruction_subsample"] = args.reconstruction_subsample
    if args.estimator_defaults:  # only λ, the variant and the device/seed are set
        return SparseVARAutoencoder(alpha=alpha, device="cpu", random_state=seed,
                                    **NEURAL[variant], **extra)
    return SparseVARAutoencoder(
        alpha=alpha,
        latent_channels=args.latent_channels,
        max_epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        window=args.window,
        forecast_weight=args.forecast_weight,
        n_iter_no_change=args.n_iter_no_change or args.epochs,
        device="cpu",
        random_state=seed,
        **NEURAL[variant],
        **extra,
    )


def autoencode(model, run):
    """Reconstruction of a run through the autoencoding path, decoder(encoder(x_t)), in pixels."""
    return model.decode(model.encode([run])[0])


# ------------------------------------------------------------------------------- the metrics
def map_metrics(omega, sim, omega_off=None):
    """ROC-AUC of Ω for the driver pixels: over all pixels, and among cell pixels only.

    ``mass_drivers`` is the share of Ω's total on driver pixels (localisation; the driver pixels
    are about 5 % of the frame). ``auc_cells_off`` is the AUC among cell pixels of
    ``omega_off``, the map with the VAR's self-terms (diagonal of every A_k) left out of w_j.
    """
    drivers, cells = sim["driver_mask"].ravel(), sim["cell_mask"].ravel()
    omega = np.asarray(omega, dtype=np.float64).ravel()
    out = dict(
        auc=float(roc_auc_score(drivers, omega)),
        auc_cells=float(roc_auc_score(drivers[cells], omega[cells])),
        mass_drivers=float(omega[drivers].sum() / omega.sum()) if omega.sum() > 0 else np.nan,
    )
    if omega_off is not None:
        omega_off = np.asarray(omega_off, dtype=np.float64).ravel()
        out["auc_cells_off"] = float(roc_auc_score(drivers[cells], omega_off[cells]))
    return out


def without_self_terms(coef):
    """VAR matrices with the diagonal of every lag's matrix set to zero."""
    coef = np.array(coef, dtype=np.float64, copy=True)
    index = np.arange(coef.shape[-1])
    coef[..., index, index] = 0.0
    return coef


def map_without_self_terms(model, runs):
    """Ω of the training runs with w_j = Σ_k Σ_{i != j} |A_k[i, j]| (self-terms left out).

    Not offered by the library; computed with its own :func:`contribution_maps` and the fitted
    encoder, reference frames as the estimator uses them (``offset_``, ``mean_frame_``).
    """
    return contribution_maps(
        model.encoder_, list(runs), without_self_terms(model.coef_), offset=model.offset_,
        scale=model.scale_, baseline=model.mean_frame_,
    ).mean(axis=0)


def oracle_maps(sim, alpha, lags=1):
    """Maps of a cell-level sparse VAR fitted on the true traces (no imaging, no unmixing).

    Per training run, ``fit_var`` on the (T, n_cells) true dF/F traces at the same λ; cell i
    gets w_i (outgoing coefficient mass, with and without its self-term), averaged over runs,
    and the map is Σ_i w_i footprint_i. An upper reference for what a map of this form can
    reach when the latents are exactly the cells.
    """
    coef, _ = fit_var(torch.from_numpy(sim["train_traces"]), alpha, lags)
    coef = coef.numpy()
    footprints = sim["footprints"]
    weights = np.abs(coef).sum(axis=(-3, -2)).mean(axis=0)
    weights_off = np.abs(without_self_terms(coef)).sum(axis=(-3, -2)).mean(axis=0)
    return (np.tensordot(weights, footprints, axes=1),
            np.tensordot(weights_off, footprints, axes=1))


def latent_snr(latents, traces):
    """Variance of the latents explained by the true traces over the residual (pooled, dB).

    Per run, latents (T, d) and traces (T, n_cells) are centred; one least-squares map
    traces -> latents is fitted on all held-out runs together. SNR = ||fit||² / ||residual||²
    summed over latent dimensions (a variance-weighted ratio, invariant to one common scale).
    """
    Z = np.concatenate([z - z.mean(axis=0) for z in latents]).astype(np.float64)
    C = np.concatenate([c - c.mean(axis=0) for c in traces])
    B, *_ = np.linalg.lstsq(C, Z, rcond=None)
    fitted = C @ B
    return float(10 * np.log10(np.sum(fitted**2) / np.sum((Z - fitted) ** 2)))


def traces_from_latents_r2(latents, traces):
    """How well the true traces can be read out of the latents: mean R² over cells.

    The reverse regression of :func:`latent_snr`: per run, traces and latents are centred; one
    least-squares map latents -> traces is fitted on all held-out runs together; the R² of each
    cell's trace is averaged over cells (each cell counts equally, drivers included).
    """
    Z = np.concatenate([z - z.mean(axis=0) for z in latents]).astype(np.float64)
    C = np.concatenate([c - c.mean(axis=0) for c in traces])
    B, *_ = np.linalg.lstsq(Z, C, rcond=None)
    r2 = 1 - np.sum((C - Z @ B) ** 2, axis=0) / np.sum(C**2, axis=0)
    return float(np.mean(r2))


def reconstruction_metrics(reconstructions, sim):
    """Static error and dynamic R² of the autoencoding reconstructions of the held-out runs.

    - static error: ||mean_t x̂_t - mean_t x*_t||² / ||mean_t x*_t - its spatial mean||², with
      x*_t the noise-free frame (anatomy + cell fluorescence) and means over all held-out frames;
    - dynamic R²: 1 - Σ ||(x̂_t - mean_r x̂) - (x*_t - mean_r x*)||² / Σ ||x*_t - mean_r x*||²,
      each run demeaned over its own frames, sums over runs, frames and pixels.
    """
    rec = np.asarray(reconstructions, dtype=np.float64)
    clean = sim["test_clean"]
    static_hat, static_true = rec.mean(axis=(0, 1)), clean.mean(axis=(0, 1))
    static_error = np.sum((static_hat - static_true) ** 2) / np.sum(
        (static_true - static_true.mean()) ** 2
    )
    dyn_hat = rec - rec.mean(axis=1, keepdims=True)
    dyn_true = clean - clean.mean(axis=1, keepdims=True)
    dynamic_r2 = 1 - np.sum((dyn_hat - dyn_true) ** 2) / np.sum(dyn_true**2)
    return dict(static_error=float(static_error), dynamic_r2=float(dynamic_r2)), static_hat


def test_pvalues(latents_of, sim, alpha, lags, args, seed):
    """compare_latents p-values: held-out runs of condition 0 vs 1, with and without an effect."""
    out = {}
    for key, runs, conditions in (
        ("p_effect", sim["test"], sim["test_conditions"]),
        ("p_null", sim["null_test"], sim["null_conditions"]),
    ):
        latents = latents_of(runs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = compare_latents(
                [z for z, c in zip(latents, conditions) if c == 0],
                [z for z, c in zip(latents, conditions) if c == 1],
                alpha=alpha,
                lags=lags,
                n_permutations=args.n_permutations,
                random_state=seed,
            )
        out[key] = float(result.pvalue)
        out["test_units"] = f"{result.n_units_a} vs {result.n_units_b}"
        out["test_warnings"] = sorted({str(w.message).split(":")[0] for w in caught})
    return out


def evaluate(model, sim, args, seed, *, with_test=True):
    """Every metric of one fitted model (neural or PCA) on one seed's data."""
    # Both kinds of model have encode, score, contribution_map, coef_, alpha and lags.
    if isinstance(model, PCAVAR):
        reconstructions = [model.autoencode(r) for r in sim["test"]]
    else:
        reconstructions = [autoencode(model, r) for r in sim["test"]]
    omega = model.contribution_map()
    omega_off = map_without_self_terms(model, sim["train"])
    result = dict(score=model.score(sim["test"]), sparsity=float(np.mean(model.coef_ == 0)),
                  **map_metrics(omega, sim, omega_off))
    rec, static_hat = reconstruction_metrics(reconstructions, sim)
    result.update(rec)
    latents = model.encode(sim["test"])
    result["latent_snr_db"] = latent_snr(latents, sim["test_traces"])
    result["traces_r2"] = traces_from_latents_r2(latents, sim["test_traces"])
    if with_test:
        result.update(test_pvalues(model.encode, sim, model.alpha, model.lags, args, seed))
    return result, (omega, omega_off), static_hat


def refit_var(model, alpha, sim):
    """A copy of a fitted model whose VARs (coef_, maps) are refitted at another λ.

    Used for the λ sweep of the variants whose representation does not depend on λ (two-stage
    training, PCA). The network / PCA is shared with ``model``.
    """
    if isinstance(model, PCAVAR):
        other = copy.copy(model)
        other.alpha = alpha
        other.coef_ = np.stack([other._fit_var(z)[0] for z in other.encode(sim["train"])])
        other.contribution_maps_ = contribution_maps(
            other.encoder_, list(sim["train"]), other.coef_, offset=other.mean_frame_,
            scale=other.scale_,
        )
        return other
    other = copy.copy(model)  # shallow: shares encoder_ / decoder_, which are not modified
    other.alpha = alpha
    d = int(np.prod(model.latent_shape_))
    other.coef_ = other.transform(sim["train"]).reshape(len(sim["train"]), model.lags, d, d)
    other.contribution_maps_ = other.contribution_map(sim["train"], per_run=True)
    return other


def latent_forecast(model, run):
    """One latent of a held-out run and its one-step VAR forecast, as ``score`` computes them.

    The VAR is fitted on the first three quarters of the run's latents and forecasts the last
    quarter. The latent shown is the one with the largest outgoing VAR mass w_j (for the
    paper's Figure 4: latents and their forecasts at several λ).
    """
    z = np.asarray(model.encode([run])[0], dtype=np.float64)
    n_fit, _ = held_out_split(len(z))
    latents = torch.from_numpy(z)
    coef, intercept = fit_var(latents[:n_fit], model.alpha, model.lags)
    forecast = forecast_var(latents[n_fit - model.lags:], coef, intercept).numpy()
    weights = np.abs(coef.numpy()).sum(axis=(0, 1))
    j = int(np.argmax(weights))
    return dict(observed=z[:, j], forecast=forecast[:, j], n_fit=n_fit, dim=j,
                n_nonzero=int(np.count_nonzero(coef.numpy())), n_coef=int(coef.numel()))


# ------------------------------------------------------------------------------- the tasks
def make_tasks(args):
    """One task per model fit: (seed, variant, λ). Longest first, for load balancing.

    Two-stage and PCA tasks evaluate their refits at every λ of the sweep (their representation
    does not depend on λ); end-to-end is retrained at every λ.
    """
    tasks = []
    for seed in args.seeds:
        tasks += [(seed, v, args.alpha) for v in args.variants]
        if "end-to-end" in args.variants:
            tasks += [(seed, "end-to-end", a) for a in args.sweep
                      if not np.isclose(a, args.alpha)]
    cost = {"end-to-end": 2, "end-to-end, no skip": 2, "two-stage": 1.5, "PCA + sparse VAR": 0}
    return sorted(tasks, key=lambda t: -cost[t[1]])


def run_task(task, sim, args):
    """Fit one model and evaluate it; returns (records, figure data of the main λ or None)."""
    torch.set_num_threads(args.threads)
    # Limit numpy's BLAS too: an oversubscribed OpenBLAS makes the PCA 10x slower on a busy CPU.
    with threadpool_limits(args.threads):
        return _run_task(task, sim, args)


def _run_task(task, sim, args):
    seed, variant, alpha = task
    main = np.isclose(alpha, args.alpha)
    start = time.perf_counter()
    if variant == "PCA + sparse VAR":
        d = args.latent_channels * int(np.prod(latent_hw(args)))
        model = PCAVAR(d, alpha).fit(sim["train"])
    else:
        model = neural_model(variant, alpha, seed, args).fit(sim["train"])
    fit_time = time.perf_counter() - start
    metrics, omega, static_hat = evaluate(model, sim, args, seed, with_test=main)
    metrics.update(seed=seed, variant=variant, alpha=alpha, fit_time=fit_time, main=bool(main))
    if variant != "PCA + sparse VAR":
        metrics.update(epochs=model.n_iter_, best_epoch=model.best_epoch_)
    records = [metrics]
    _log(metrics)
    if main and variant in ("two-stage", "PCA + sparse VAR"):
        for other_alpha in args.sweep:
            if np.isclose(other_alpha, args.alpha):
                continue
            start = time.perf_counter()
            other = refit_var(model, other_alpha, sim)
            refit_time = time.perf_counter() - start
            other_metrics, _, _ = evaluate(other, sim, args, seed, with_test=False)
            # Fit time of a refit = training (shared) + the VAR refits.
            other_metrics.update(seed=seed, variant=variant, alpha=other_alpha, main=False,
                                 fit_time=fit_time + refit_time)
            records.append(other_metrics)
            _log(other_metrics)
    figure = dict(omega=omega, static=static_hat) if main else {}
    if variant == "end-to-end":
        figure["latent"] = latent_forecast(model, sim["test"][0])
    return records, figure


def latent_hw(args):
    from skvarae.network import latent_geometry

    return latent_geometry((args.size, args.size), 4)[2]


def _log(metrics):
    keys = ("score", "auc", "auc_cells", "auc_cells_off", "static_error", "latent_snr_db",
            "p_effect", "p_null", "fit_time")
    print(f"  seed {metrics['seed']} {metrics['variant']} λ={metrics['alpha']:g}: " + ", ".join(
        f"{k}={metrics[k]:.3g}" for k in keys if k in metrics), flush=True)


def references(sim, args):
    """Model-free references of one seed: the R² noise ceiling and two maps.

    - noise ceiling: the estimator's R² with the noise-free frame x*_t itself as the "forecast"
      of the last quarter of each held-out run (what is left is the imaging noise);
    - the pixel s.d. map: temporal s.d. of each pixel over the training runs (an activity map);
    - the oracle: :func:`oracle_maps`.
    """
    mean_frame = np.concatenate(list(sim["train"])).mean(axis=0, dtype=np.float64)
    ceiling = []
    for run, clean in zip(sim["test"], sim["test_clean"]):
        n_fit = len(run) - max(2, len(run) // 4)
        observed = (run[n_fit:].astype(np.float64) - mean_frame).reshape(len(run) - n_fit, -1)
        predicted = (clean[n_fit:] - mean_frame).reshape(len(run) - n_fit, -1)
        ceiling.append(1 - np.sum((observed - predicted) ** 2)
                       / np.sum((observed - observed.mean(axis=0)) ** 2))
    oracle, oracle_off = oracle_maps(sim, args.alpha)
    reference = dict(
        noise_ceiling=float(np.mean(ceiling)),
        **{f"std_{k}": v for k, v in map_metrics(sim["train_movies_std"], sim).items()},
        **{f"oracle_{k}": v for k, v in map_metrics(oracle, sim, oracle_off).items()},
    )
    return reference, (oracle, oracle_off)


# ------------------------------------------------------------------------------- reporting
def _mean_sd(values, fmt):
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(values.mean(), fmt)} ± {format(values.std(ddof=1), fmt)}"


TABLE_COLUMNS = [
    [
        ("forecast R² ↑", "score", ".3f"),
        ("AUC drivers ↑", "auc", ".3f"),
        ("AUC drivers among cells ↑", "auc_cells", ".3f"),
        ("AUC among cells, Ω w/o self-terms ↑", "auc_cells_off", ".3f"),
        ("Ω mass on drivers ↑", "mass_drivers", ".3f"),
    ],
    [
        ("static error ↓", "static_error", ".4f"),
        ("dynamic recon. R² ↑", "dynamic_r2", ".3f"),
        ("latent SNR (dB) ↑", "latent_snr_db", ".1f"),
        ("traces from latents R² ↑", "traces_r2", ".3f"),
        ("p, effect ↓", "p_effect", ".3f"),
        ("p, no effect", "p_null", ".3f"),
        ("fit time (s)", "fit_time", ".0f"),
    ],
]


def results_table(records, references):
    """Two Markdown tables (forecast, maps; reconstruction, test, time): mean ± sd over seeds."""
    ref = {k: [r[k] for r in references] for k in references[0] if k != "seed"}
    reference_rows = [
        ("reference: the noise-free frame as the forecast", {"score": ref["noise_ceiling"]}),
        ("reference: pixel s.d. as the map", {k: ref[f"std_{k}"] for k in
                                              ("auc", "auc_cells", "mass_drivers")}),
        ("reference: cell-level sparse VAR on the true traces", {
            k: ref[f"oracle_{k}"] for k in ("auc", "auc_cells", "auc_cells_off", "mass_drivers")
        }),
    ]
    blocks = []
    for table_index, columns in enumerate(TABLE_COLUMNS):
        lines = ["| variant | " + " | ".join(c[0] for c in columns) + " |",
                 "|---|" + "---|" * len(columns)]
        for variant in VARIANTS:
            rows = [r for r in records if r["variant"] == variant]
            if not rows:
                continue
            cells = []
            for _, key, fmt in columns:
                cell = _mean_sd([r[key] for r in rows], fmt)
                if key in ("p_effect", "p_null"):
                    cell += f" ({sum(r[key] <= 0.05 for r in rows)}/{len(rows)} ≤ 0.05)"
                cells.append(cell)
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        if table_index == 0:
            for name, values in reference_rows:
                lines.append(f"| {name} | " + " | ".join(
                    _mean_sd(values[key], fmt) if key in values else "–"
                    for _, key, fmt in columns) + " |")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def sweep_table(sweep):
    columns = [("sparsity of coef_", "sparsity", ".3f"), ("forecast R²", "score", ".3f"),
               ("AUC drivers", "auc", ".3f"), ("AUC drivers among cells", "auc_cells", ".3f"),
               ("AUC among cells, Ω w/o self-terms", "auc_cells_off", ".3f"),
               ("fit time (s)", "fit_time", ".1f")]
    lines = ["| variant | λ | " + " | ".join(c[0] for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    alphas = sorted({r["alpha"] for r in sweep})
    for variant in SWEEP_VARIANTS:
        for alpha in alphas:
            rows = [r for r in sweep if r["variant"] == variant and np.isclose(r["alpha"], alpha)]
            if rows:
                lines.append(f"| {variant} | {alpha:g} | " + " | ".join(
                    _mean_sd([r[key] for r in rows], fmt) for _, key, fmt in columns) + " |")
    return "\n".join(lines) + "\n"


def _normalised(omega):
    return omega / omega.max() if omega.max() > 0 else omega


def plot_maps(figure_data, path):
    import matplotlib.pyplot as plt

    fixed = [("anatomy", figure_data["anatomy"]),
             ("true driver mask", figure_data["driver_mask"].astype(float)),
             ("pixel s.d. (no model)", figure_data["pixel_std"])]
    variants = list(figure_data["maps"])
    n_cols = max(len(fixed), len(variants)) + 1
    fig, axes = plt.subplots(3, n_cols, figsize=(2.2 * n_cols, 7.0))
    rows = [fixed + [("oracle: cell VAR, Ω", figure_data["oracle"][0])],
            [(f"Ω {v}", figure_data["maps"][v][0]) for v in variants],
            [(f"Ω w/o self-terms,\n{v}", figure_data["maps"][v][1]) for v in variants]
            + [("oracle, w/o self-terms", figure_data["oracle"][1])]]
    for row_axes, panels in zip(axes, rows):
        for ax in row_axes:
            ax.set_axis_off()
        for ax, (title, image) in zip(row_axes, panels):
            cmap = "gray" if title == "anatomy" else "magma"
            ax.imshow(_normalised(np.asarray(image, float)), cmap=cmap)
            ax.contour(figure_data["driver_mask"], levels=[0.5], colors="cyan", linewidths=0.7)
            ax.contour(figure_data["cell_mask"], levels=[0.5], colors="white", linewidths=0.3)
            ax.set_title(title, fontsize=8)
    fig.suptitle("Contribution maps of the training runs (first seed), each scaled to its "
                 "maximum. Cyan: driver cells; white: all cells", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_statics(figure_data, path):
    import matplotlib.pyplot as plt

    truth = figure_data["static_true"]
    panels = [("noise-free mean frame", truth)]
    panels += list(figure_data["statics"].items())
    fig, axes = plt.subplots(2, len(panels), figsize=(2.4 * len(panels), 5))
    vmin, vmax = truth.min(), truth.max()
    err = max(np.abs(s - truth).max() for _, s in panels)
    for col, (title, image) in enumerate(panels):
        axes[0, col].imshow(image, cmap="gray", vmin=vmin, vmax=vmax)
        axes[0, col].set_title(title, fontsize=8)
        axes[1, col].imshow(image - truth, cmap="RdBu_r", vmin=-err, vmax=err)
        error = np.sum((image - truth) ** 2) / np.sum((truth - truth.mean()) ** 2)
        axes[1, col].set_title(f"minus noise-free mean\n(static error {error:.4f})", fontsize=8)
        for ax in axes[:, col]:
            ax.set_axis_off()
    axes[1, 0].set_visible(False)
    fig.suptitle("Time-average of the reconstructions of the held-out runs (static part)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sweep_values(sweep, variant, alpha, key):
    rows = sorted((r for r in sweep if r["variant"] == variant and np.isclose(r["alpha"], alpha)),
                  key=lambda r: r["seed"])
    return np.array([r[key] for r in rows], dtype=np.float64), [r["seed"] for r in rows]


def _errorbar(ax, xs, values, **kwargs):
    mean = [np.mean(v) for v in values]
    sd = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in values]
    ax.errorbar(xs, mean, yerr=sd, capsize=2, **kwargs)


def plot_sweep(sweep, path):
    import matplotlib.pyplot as plt

    keys = [("sparsity", "sparsity of coef_ (fraction of zeros)"),
            ("score", "held-out forecast R²"), ("auc", "ROC-AUC of Ω (drivers)"),
            ("auc_cells", "ROC-AUC of Ω (drivers among cells)")]
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(3.3 * (len(keys) + 1), 3.1))
    alphas = sorted({r["alpha"] for r in sweep})
    for variant, marker in zip(SWEEP_VARIANTS, "osD"):
        for ax, (key, label) in zip(axes, keys):
            pairs = [(a, _sweep_values(sweep, variant, a, key)[0]) for a in alphas]
            pairs = [(a, v) for a, v in pairs if len(v)]
            if pairs:
                _errorbar(ax, [a for a, _ in pairs], [v for _, v in pairs], marker=marker,
                          label=variant)
            ax.set_title(label, fontsize=9)
    # Paired (same seed) differences end-to-end minus two-stage.
    ax = axes[-1]
    for key, marker, label in (("score", "o", "forecast R²"),
                               ("auc_cells", "s", "AUC among cells")):
        xs, values = [], []
        for alpha in alphas:
            e2e, seeds_e = _sweep_values(sweep, "end-to-end", alpha, key)
            two, seeds_t = _sweep_values(sweep, "two-stage", alpha, key)
            if len(e2e) and seeds_e == seeds_t:
                xs.append(alpha)
                values.append(e2e - two)
        if xs:
            _errorbar(ax, xs, values, marker=marker, label=label)
    ax.axhline(0.0, color="gray", linewidth=0.8)
    ax.set_title("end-to-end minus two-stage (same seed)", fontsize=9)
    ax.legend(fontsize=7)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(alphas, [f"{a:g}" for a in alphas])
        ax.minorticks_off()
        ax.set_xlabel("λ (alpha)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_latents(latents, path):
    """Figure-4-like: one latent of a held-out run and its forecast, end-to-end model per λ."""
    import matplotlib.pyplot as plt

    alphas = sorted(latents)
    fig, axes = plt.subplots(len(alphas), 1, figsize=(7.5, 1.6 * len(alphas) + 0.6),
                             sharex=True, squeeze=False)
    for ax, alpha in zip(axes[:, 0], alphas):
        item = latents[alpha]
        n_fit, observed = item["n_fit"], item["observed"]
        start = max(0, n_fit - len(observed) // 4)
        frames = np.arange(len(observed))
        ax.plot(frames[start:], observed[start:], color="black", linewidth=1, label="z_t")
        ax.plot(frames[n_fit:], item["forecast"], color="C1", linewidth=1.2, linestyle="--",
                label="forecast ẑ_t")
        ax.axvline(n_fit - 0.5, color="gray", linewidth=0.8)
        ax.set_title(f"λ = {alpha:g}: latent {item['dim']} (largest outgoing VAR mass); "
                     f"{item['n_nonzero']} of {item['n_coef']} VAR coefficients non-zero",
                     fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("frame of the first held-out run (VAR fitted left of the grey line)")
    fig.suptitle("End-to-end models trained at each λ (first seed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, 4+4 runs x 128 frames, 8 epochs, λ sweep of 2 values")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-train", type=int, default=6, help="training runs per seed")
    parser.add_argument("--n-test", type=int, default=8, help="held-out runs per seed")
    parser.add_argument("--frames", type=int, default=256, help="frames per run")
    parser.add_argument("--size", type=int, default=32, help="frame side in pixels")
    parser.add_argument("--condition-effect", type=float, default=0.5)
    parser.add_argument("--alpha", type=float, default=0.01, help="λ of the main table")
    parser.add_argument("--sweep", type=float, nargs="*", default=[0.003, 0.01, 0.03, 0.1],
                        help="λ values of the sweep (empty: no sweep)")
    parser.add_argument("--epochs", type=int, default=50, help="max_epochs")
    parser.add_argument("--n-iter-no-change", type=int, default=None,
                        help="early stopping patience; default: none (a fixed budget of "
                        "--epochs for every variant, the best epoch's weights restored)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--latent-channels", type=int, default=2)
    parser.add_argument("--forecast-weight", type=float, default=1.0)
    parser.add_argument("--reconstruction-subsample", type=float, default=None,
                        help="reconstruction_subsample of the neural models (default: the "
                             "estimator's)")
    parser.add_argument("--n-permutations", type=int, default=1000)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
                        metavar="VARIANT", help=f"subset of {VARIANTS}")
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads per job")
    parser.add_argument("--n-jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="model fits run in parallel (processes); 1 on a shared machine")
    parser.add_argument("--maps", action="store_true",
                        help="map benchmark instead: driver and changed-driver AUCs per variant, "
                        "models fitted on all runs of one case (see --case)")
    parser.add_argument("--case", choices=sorted(MAP_CASES), default="hard",
                        help="simulated case of --maps")
    parser.add_argument("--map-runs", type=int, default=8, help="runs per seed (--maps)")
    parser.add_argument("--max-latent-side", type=int, default=None,
                        help="--maps: latent grid side; default from the cell radius "
                        "(skvarae.latent_grid.max_latent_side_for_cells)")
    parser.add_argument("--pca-components", type=int, default=None,
                        help="--maps: PCA components (default: the neural models' d)")
    parser.add_argument("--variants-maps", nargs="+", default=list(MAP_VARIANTS),
                        choices=MAP_VARIANTS, help="variants of --maps")
    parser.add_argument("--estimator-defaults", action="store_true",
                        help="neural models with the estimator's defaults (training budget, "
                        "early stopping, batches, windows, learning rate); only λ, the "
                        "variant, the device and, with --maps, the latent grid are set")
    parser.add_argument("--linear-path", type=lambda v: False if v == "False" else v,
                        choices=["local", "global", False], default=None,
                        help="linear_path of the neural models (default: the estimator's)")
    parser.add_argument("--tables-from", type=Path, default=None, metavar="RESULTS_JSON",
                        help="fit nothing: rewrite table.md and sweep.md in --out from the "
                        "results.json of an earlier run")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.n_train, args.n_test, args.frames = args.seeds[:1], 4, 4, 128
        args.epochs, args.sweep = min(args.epochs, 25), [0.003, 0.03]
    args.variants = [v for v in VARIANTS if v in args.variants]
    return args


def write_tables(records, sweep, references_, out):
    table = results_table(records, references_)
    sweep_md = sweep_table(sweep) if len(sweep) > len(records) else ""
    (out / "table.md").write_text(table, encoding="utf-8")
    (out / "sweep.md").write_text(sweep_md, encoding="utf-8")
    return table, sweep_md


# ------------------------------------------------------------------ maps that find drivers
#: Simulated cases of the map benchmark (``--maps``). "evidence": the simulator's defaults, as in
#: the main table. "hard": more cells, the "two_photon" preset (shot noise of a real movie,
#: neuropil, fine background fluctuations), bleaching (about 2.5 % over 256 frames) and motion
#: jitter (0.2 pixel s.d.).
MAP_CASES = {
    "evidence": dict(frame_shape=(32, 32), n_cells=12, n_drivers=2, n_targets=4,
                     cell_radius=3.0),
    "hard": dict(frame_shape=(40, 40), n_cells=16, n_drivers=3, n_targets=6, cell_radius=3.0,
                 preset="two_photon", bleaching=1e-4, jitter=0.2),
}
MAP_VARIANTS = ("end-to-end", "two-stage", "PCA + sparse VAR", "oracle (true traces)")
MAP_KINDS = ("driving", "coefficient")


def changed_driver_mask(data):
    """Pixels of the cells whose outgoing couplings differ between the two conditions."""
    change = np.abs(data.coef[0] - data.coef[1])
    np.fill_diagonal(change, 0.0)
    changed = np.flatnonzero(change.sum(axis=0) > 0)
    return (data.footprints[changed] > 0.5).any(axis=0)


def map_case_data(seed, args):
    return make_calcium_movies(n_runs=args.map_runs, n_frames=args.frames,
                               condition_effect=args.condition_effect, random_state=seed,
                               **MAP_CASES[args.case])


def per_run_maps(variant, data, seed, args):
    """Per-run maps (n_runs, H, W) of every kind, for one variant fitted on all runs."""
    runs = list(data.movies)
    if variant == "oracle (true traces)":
        coef = fit_var(torch.from_numpy(data.traces), args.alpha, 1)[0].numpy()
        maps = {kind: np.einsum("rc,chw->rhw",
                                skvarae.contribution.latent_weights(coef, kind=kind),
                                data.footprints) for kind in MAP_KINDS}
        return maps, dict(fit_seconds=0.0, d=len(data.footprints))
    start = time.perf_counter()
    if variant == "PCA + sparse VAR":
        model = PCAVAR(args.pca_components or args.map_d, args.alpha).fit(runs)
        fit_seconds = time.perf_counter() - start
        maps = {kind: contribution_maps(model.encoder_, runs, model.coef_,
                                        offset=model.mean_frame_, scale=model.scale_, kind=kind)
                for kind in MAP_KINDS}
        return maps, dict(fit_seconds=fit_seconds, d=model.pca_.n_components_)
    model = neural_model(variant, args.alpha, seed, args)
    model.set_params(max_latent_side=args.max_latent_side)
    model.fit(data.movies)
    fit_seconds = time.perf_counter() - start
    maps = {kind: model.contribution_map(data.movies, per_run=True, kind=kind)
            for kind in MAP_KINDS}
    return maps, dict(fit_seconds=fit_seconds, d=int(np.prod(model.latent_shape_)),
                      latent_shape=list(model.latent_shape_), best_epoch=int(model.best_epoch_),
                      n_iter=int(model.n_iter_))


def map_task(seed, variant, args):
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        data = map_case_data(seed, args)
        maps, info = per_run_maps(variant, data, seed, args)
    cells = (data.footprints > 0.5).any(axis=0)
    changed = changed_driver_mask(data)
    a, b = data.conditions == 0, data.conditions == 1
    record = dict(seed=seed, variant=variant, **info)
    for kind, per_run in maps.items():
        omega = per_run.mean(axis=0)
        difference = np.abs(per_run[a].mean(axis=0) - per_run[b].mean(axis=0))
        record[f"auc_drivers_{kind}"] = float(roc_auc_score(data.driver_mask[cells],
                                                            omega[cells]))
        record[f"auc_changed_{kind}"] = float(roc_auc_score(changed[cells], difference[cells]))
        if kind == MAP_KINDS[0]:
            test = skvarae.stats.permutation_test_maps(per_run[a], per_run[b])
            significant = test.significant(0.05)
            record["n_significant"] = int(significant.sum())
            record["significant_on_changed"] = (
                float(changed[significant].mean()) if significant.any() else float("nan"))
    print(f"  seed {seed} {variant}: " + ", ".join(
        f"{k} {v:.3f}" for k, v in record.items() if k.startswith("auc_") or k == "fit_seconds")
        + (f", epochs {record['best_epoch']}/{record['n_iter']}" if "best_epoch" in record else ""),
        flush=True)
    return record, (maps[MAP_KINDS[0]].mean(axis=0), data) if seed == args.seeds[0] else None


def maps_table(records, args):
    columns = [("auc_drivers_driving", "driver AUC among cells, Ω (driving)"),
               ("auc_changed_driving", "changed-driver AUC among cells, abs(ΔΩ) (driving)"),
               ("auc_drivers_coefficient", "driver AUC, Ω (coefficient, ≤ 0.1)"),
               ("auc_changed_coefficient", "changed-driver AUC, abs(ΔΩ) (coefficient)"),
               ("n_significant", "pixels at family-wise p ≤ 0.05"),
               ("significant_on_changed", "of which on changed drivers"),
               ("fit_seconds", "fit time (s)")]
    lines = ["| variant | d | " + " | ".join(c[1] for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for variant in args.variants_maps:
        rows = [r for r in records if r["variant"] == variant]
        if not rows:
            continue
        cells = []
        for key, _ in columns:
            values = np.array([r[key] for r in rows], dtype=float)
            fmt = "{:.0f}" if key in ("fit_seconds", "n_significant") else "{:.3f}"
            per_seed = ", ".join(fmt.format(v) for v in values)
            if len(values) > 1 and np.isfinite(values).all():
                cells.append(f"{fmt.format(values.mean())} ± {fmt.format(values.std(ddof=1))} "
                             f"({per_seed})")
            else:
                cells.append(per_seed)
        lines.append(f"| {variant} | {rows[0]['d']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_map_case(first, path):
    plt = __import__("matplotlib.pyplot").pyplot
    variants = list(first)
    data = next(iter(first.values()))[1]
    changed = changed_driver_mask(data)
    fig, axes = plt.subplots(1, len(variants) + 1, figsize=(3 * (len(variants) + 1), 3.2),
                             layout="constrained")
    axes[0].imshow(data.anatomy, cmap="gray")
    axes[0].set_title("anatomy")
    for ax, variant in zip(axes[1:], variants):
        omega = first[variant][0]
        ax.imshow(omega / max(omega.max(), 1e-12), cmap="magma")
        ax.set_title(variant, fontsize=9)
    for ax in axes:
        ax.contour(data.driver_mask.astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
        ax.contour(changed.astype(float), levels=[0.5], colors="lime", linewidths=0.8,
                   linestyles="dashed")
        ax.set_axis_off()
    fig.suptitle("Ω (driving) of the first seed; cyan: drivers, dashed green: changed drivers",
                 fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def maps_main(args):
    start = time.perf_counter()
    if args.max_latent_side is None:
        from skvarae.latent_grid import max_latent_side_for_cells

        args.max_latent_side = max_latent_side_for_cells(
            MAP_CASES[args.case]["frame_shape"], MAP_CASES[args.case]["cell_radius"])
    args.map_d = args.latent_channels * args.max_latent_side**2
    print(f"# bench_evidence --maps: case {args.case} {MAP_CASES[args.case]}, seeds {args.seeds}, "
          f"{args.map_runs} runs x {args.frames} frames, alpha {args.alpha}, "
          f"max_latent_side {args.max_latent_side}, "
          + ("estimator defaults" if args.estimator_defaults else f"{args.epochs} epochs")
          + f", linear_path {args.linear_path if args.linear_path is not None else 'default'}",
          flush=True)
    tasks = [(seed, variant) for seed in args.seeds for variant in args.variants_maps]
    if args.n_jobs == 1:
        outputs = [map_task(seed, variant, args) for seed, variant in tasks]
    else:
        from joblib import Parallel, delayed

        outputs = Parallel(n_jobs=args.n_jobs, batch_size=1)(
            delayed(map_task)(seed, variant, args) for seed, variant in tasks)
    records = [record for record, _ in outputs]
    for record in records:
        print(json.dumps(record), flush=True)
    table = maps_table(records, args)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"maps_{args.case}"
    (args.out / f"{stem}.md").write_text(table + "\n", encoding="utf-8")
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings.update(total_seconds=time.perf_counter() - start, case_settings=MAP_CASES[args.case])
    (args.out / f"{stem}.json").write_text(json.dumps(dict(settings=settings, records=records),
                                                      indent=1, default=float), encoding="utf-8")
    first = {task[1]: figure for task, (_, figure) in zip(tasks, outputs) if figure is not None}
    if first:
        plot_map_case(first, args.out / f"{stem}.png")
    print(table)
    print(f"# total {time.perf_counter() - start:.0f} s; outputs in {args.out}/{stem}.*")


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.maps:
        return maps_main(args)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.tables_from is not None:
        saved = json.loads(args.tables_from.read_text(encoding="utf-8"))
        table, sweep_md = write_tables(saved["records"], saved["sweep"], saved["references"],
                                       args.out)
        print(table)
        print(sweep_md)
        return
    start = time.perf_counter()
    print(f"# bench_evidence: seeds {args.seeds}, {args.n_train}+{args.n_test} runs x "
          f"{args.frames} frames x {args.size}x{args.size}, {args.epochs} epochs, "
          f"torch threads {args.threads}, jobs {args.n_jobs}", flush=True)
    with threadpool_limits(args.threads):
        sims = {seed: simulate(seed, args) for seed in args.seeds}
        refs = {seed: references(sims[seed], args) for seed in args.seeds}
    tasks = make_tasks(args)
    if args.n_jobs == 1:
        outputs = [run_task(task, sims[task[0]], args) for task in tasks]
    else:
        from joblib import Parallel, delayed

        outputs = Parallel(n_jobs=args.n_jobs, batch_size=1)(
            delayed(run_task)(task, sims[task[0]], args) for task in tasks
        )
    total = time.perf_counter() - start
    order = {v: i for i, v in enumerate(VARIANTS)}
    sweep = sorted((r for records, _ in outputs for r in records),
                   key=lambda r: (r["seed"], order[r["variant"]], r["alpha"]))
    variants = args.variants
    records = [r for r in sweep if r["main"]]
    references_ = [dict(seed=seed, **refs[seed][0]) for seed in args.seeds]

    first = args.seeds[0]
    sim = sims[first]
    figures = {task[1]: figure for task, (_, figure) in zip(tasks, outputs)
               if task[0] == first and np.isclose(task[2], args.alpha)}
    latents = {task[2]: figure["latent"] for task, (_, figure) in zip(tasks, outputs)
               if task[0] == first and "latent" in figure}
    figure_data = dict(
        maps={v: figures[v]["omega"] for v in variants},
        statics={v: figures[v]["static"] for v in variants},
        anatomy=sim["anatomy"], oracle=refs[first][1],
        static_true=sim["test_clean"].mean(axis=(0, 1)),
        driver_mask=sim["driver_mask"], cell_mask=sim["cell_mask"],
        pixel_std=sim["train_movies_std"],
    )

    table, sweep_md = write_tables(records, sweep, references_, args.out)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings.update(total_seconds=total, skvarae=skvarae.__version__, torch=torch.__version__,
                    python=platform.python_version(), cpu_count=os.cpu_count())
    (args.out / "results.json").write_text(json.dumps(
        dict(settings=settings, records=records, sweep=sweep, references=references_),
        indent=1, default=float), encoding="utf-8")
    plot_maps(figure_data, args.out / "maps.png")
    plot_statics(figure_data, args.out / "static.png")
    if latents:
        plot_latents(latents, args.out / "latents.png")
    if len(args.sweep):
        plot_sweep(sweep, args.out / "sweep.png")
    print()
    print(table)
    print(sweep_md)
    print(f"# total {total:.0f} s; outputs in {args.out}")


if __name__ == "__main__":
    main()
