"""Real data: held-out forecast and reconstruction on a real two-photon movie, against baselines.

The movie is the mouse two-photon recording shipped in the ``optinist`` 2.4.1 wheel
(``sample_data/tutorial/input/sample_mouse2p_image.tiff``, 2000 x 128 x 128 uint16, GPL-3.0). It
is downloaded at run time with ``pip download --no-deps optinist==2.4.1``, read out of the wheel,
checked against its sha256 and cached outside the repository (``$SKVARAE_DATA`` or
``~/.cache/skvarae``); nothing derived from it is written here. Offline, the benchmark says so and
exits with status 77 ("skipped").

The movie is cut into runs of ``--run-frames`` frames; the last ``--held-out`` runs are held out.
Every row is computed by the same code (``evaluate``) on the held-out runs:

- forecast R²: :meth:`SparseVARAutoencoder.score`'s metric, i.e. for each held-out run the VAR
  is fitted on its first three quarters, the last quarter is forecast one step ahead, and R² is
  pooled over pixels; mean over runs;
- reconstruction R²: the autoencoding path x_t -> z_t -> x̂_t on the whole held-out run;
- fit time in seconds.

Rows: persistence (the previous frame); PCA(d) + ``fit_var`` at the model's ``alpha`` with
d = the model's latent size, measured from the training mean frame (the issue's baseline) and
from the model's running baseline (the same linear model on the same inputs as the neural one);
two-stage; end-to-end with default parameters.

    python benchmarks/bench_real.py                  # 64x64 (2x2 binned) and 128x128, 3 seeds
    python benchmarks/bench_real.py --quick          # 64x64, 1 seed, a few minutes
    python benchmarks/bench_real.py --bin 2 --seeds 0 1 2
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import tifffile
import torch
from sklearn.decomposition import PCA

from skvarae import SparseVARAutoencoder
from skvarae.baseline import RunningDeviation
from skvarae.estimator import held_out_split
from skvarae.var import fit_var, forecast_var

WHEEL = "optinist==2.4.1"
MEMBER = "sample_data/tutorial/input/sample_mouse2p_image.tiff"
SHA256 = "4859210d5f7f323d4af3470432097dec7b91776a83adae47833525a20f5568b5"
SKIPPED = 77


class RealDataUnavailable(RuntimeError):
    """The real movie could not be downloaded (offline, or pip missing)."""


def cache_dir():
    return Path(os.environ.get("SKVARAE_DATA", Path.home() / ".cache" / "skvarae"))


def fetch_movie(timeout=300):
    """Path of the cached real movie, downloading the optinist wheel once if needed.

    Raises
    ------
    RealDataUnavailable
        When the wheel cannot be downloaded.
    ValueError
        When the file read from the wheel does not have the expected sha256.
    """
    path = cache_dir() / "sample_mouse2p_image.tiff"
    if path.is_file() and _sha256(path.read_bytes()) == SHA256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", tmp]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=timeout)
        except (subprocess.SubprocessError, OSError) as error:
            raise RealDataUnavailable(f"could not download {WHEEL}: {error}") from error
        (wheel,) = Path(tmp).glob("optinist-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    if _sha256(data) != SHA256:
        raise ValueError(f"{MEMBER} from {WHEEL} does not have the expected sha256 {SHA256}.")
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)
    return path


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def load_runs(path, *, bin_factor, run_frames, n_runs):
    """(n_runs, run_frames, H / bin, W / bin) float32 runs, block-averaged by ``bin_factor``."""
    movie = tifffile.imread(path).astype(np.float32)[: n_runs * run_frames]
    n, height, width = movie.shape
    if n < n_runs * run_frames:
        raise ValueError(f"the movie has {n} frames, fewer than {n_runs} x {run_frames}.")
    if bin_factor > 1:
        movie = movie.reshape(
            n, height // bin_factor, bin_factor, width // bin_factor, bin_factor
        ).mean(axis=(2, 4))
    return movie.reshape(n_runs, run_frames, *movie.shape[1:])


# ----------------------------------------------------------------------------- the metrics
def r2(observed, predicted):
    """R² pooled over pixels (``r2_score(..., "variance_weighted")``) of (n, H, W) frames."""
    observed = np.asarray(observed, np.float64).reshape(len(observed), -1)
    predicted = np.asarray(predicted, np.float64).reshape(len(predicted), -1)
    total = np.sum((observed - observed.mean(axis=0)) ** 2)
    return 1.0 - np.sum((observed - predicted) ** 2) / total


class Persistence:
    """The previous frame as the forecast and as the 'reconstruction' (identity: R² 1)."""

    name = "persistence"

    def fit(self, runs):
        return self

    def forecast_tail(self, run):
        n_fit, _ = held_out_split(len(run))
        return run[n_fit - 1 : -1]

    def reconstruct(self, run):
        return None


class PCAVAR:
    """PCA(d) of what the network would see, then the same sparse VAR (``fit_var``) per run.

    ``reference="mean"``: frames minus the training mean frame (the issue's baseline).
    ``reference="running"``: frames minus their running baseline, as the default model sees them.
    """

    def __init__(self, d, alpha, lags, reference, time_constant):
        self.d, self.alpha, self.lags = d, alpha, lags
        self.reference, self.time_constant = reference, time_constant
        self.name = f"PCA({d}) + fit_var, {reference} baseline"

    def _inputs(self, run):
        """(deviations, what was subtracted) of one run, float64 (n, pixels)."""
        n = len(run)
        if self.reference == "running":
            frames, baselines = RunningDeviation(run, self.time_constant).block(0, n)
        else:
            frames = np.asarray(run, np.float64)
            baselines = np.broadcast_to(self.mean_frame_, frames.shape)
        return (frames - baselines).reshape(n, -1), baselines.reshape(n, -1)

    def fit(self, runs):
        self.frame_shape_ = runs[0].shape[1:]
        self.mean_frame_ = np.mean([r.mean(axis=0, dtype=np.float64) for r in runs], axis=0)
        inputs = np.concatenate([self._inputs(r)[0] for r in runs])
        self.pca_ = PCA(self.d, svd_solver="full").fit(inputs)
        return self

    def _encode(self, deviations):
        return (deviations - self.pca_.mean_) @ self.pca_.components_.T

    def _decode(self, latents):
        return latents @ self.pca_.components_ + self.pca_.mean_

    def forecast_tail(self, run):
        n_fit, n_test = held_out_split(len(run))
        deviations, baselines = self._inputs(run)
        z = torch.from_numpy(self._encode(deviations))
        coef, intercept = fit_var(z[:n_fit], self.alpha, self.lags)
        forecast = forecast_var(z[n_fit - self.lags :], coef, intercept).numpy()
        return (self._decode(forecast) + baselines[n_fit:]).reshape(n_test, *self.frame_shape_)

    def reconstruct(self, run):
        deviations, baselines = self._inputs(run)
        frames = self._decode(self._encode(deviations)) + baselines
        return frames.reshape(len(run), *self.frame_shape_)


class Neural:
    """A fitted SparseVARAutoencoder, through its public API only."""

    def __init__(self, name, model):
        self.name, self.model = name, model

    def fit(self, runs):
        self.model.fit(runs)
        return self

    def forecast_tail(self, run):
        """The forecast ``score`` compares with the last quarter (VAR fitted on the rest)."""
        n_fit, _ = held_out_split(len(run))
        model = self.model
        latents = torch.from_numpy(model.encode([run])[0]).double()
        coef, intercept = fit_var(latents[:n_fit], model.alpha, model.lags)
        forecast = forecast_var(latents[n_fit - model.lags :], coef, intercept)
        frames = model.decode(forecast.numpy())
        if model.baseline == "running" and model.skip_connection:
            frames = frames + RunningDeviation(run, model.baseline_time_constant).block(
                n_fit, len(run)
            )[1]
        return frames

    def reconstruct(self, run):
        model = self.model
        frames = model.decode(model.encode([run])[0])
        if model.baseline == "running" and model.skip_connection:
            frames = frames + RunningDeviation(run, model.baseline_time_constant).block(
                0, len(run)
            )[1]
        return frames


def evaluate(method, train_runs, test_runs):
    """Fit ``method`` on the training runs; held-out forecast and reconstruction R², fit time."""
    start = time.perf_counter()
    method.fit(train_runs)
    seconds = time.perf_counter() - start
    forecast, reconstruction = [], []
    for run in test_runs:
        n_fit, _ = held_out_split(len(run))
        forecast.append(r2(run[n_fit:], method.forecast_tail(run)))
        frames = method.reconstruct(run)
        reconstruction.append(np.nan if frames is None else r2(run, frames))
    record = dict(
        method=method.name,
        forecast=float(np.mean(forecast)),
        reconstruction=float(np.mean(reconstruction)),
        seconds=seconds,
    )
    if isinstance(method, Neural):
        # The estimator's own score must agree with the benchmark's forecast metric.
        record["score"] = float(method.model.score(test_runs))
        record["epochs"] = f"{method.model.best_epoch_}/{method.model.n_iter_}"
    return record


def methods(seed, args):
    extra = {} if args.linear_path is None else dict(linear_path=args.linear_path)
    default = SparseVARAutoencoder(device=args.device, random_state=seed, **extra)
    d = default.latent_channels * 16 if args.d is None else args.d
    params = dict(alpha=default.alpha, lags=default.lags)
    tau = default.baseline_time_constant
    yield Persistence()
    yield PCAVAR(d, reference="mean", time_constant=tau, **params)
    yield PCAVAR(d, reference="running", time_constant=tau, **params)
    yield Neural(
        "two-stage", SparseVARAutoencoder(training="two_stage", device=args.device,
                                          random_state=seed, **extra)
    )
    yield Neural("end-to-end (defaults)", default)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=int, nargs="+", default=[2, 1],
                        help="spatial binning factors (2: 64x64, 1: 128x128)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--run-frames", type=int, default=200)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--held-out", type=int, default=2)
    parser.add_argument("--d", type=int, default=None, help="PCA size (default: the model's d)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="64x64 only, seed 0")
    parser.add_argument("--linear-path", type=lambda v: False if v == "False" else v,
                        choices=["local", "global", False], default=None,
                        help="linear_path of the neural rows (default: the estimator's)")
    args = parser.parse_args(argv)
    if args.quick:
        args.bin, args.seeds = [2], [0]
    torch.set_num_threads(args.threads)
    try:
        path = fetch_movie()
    except RealDataUnavailable as error:
        print(f"skipped: {error}")
        return SKIPPED

    print(f"# {MEMBER} from {WHEEL}; {args.runs} runs x {args.run_frames} frames, last "
          f"{args.held_out} held out; {args.threads} torch threads, device {args.device}"
          + ("" if args.linear_path is None else f", linear_path {args.linear_path}"))
    print("| frames | seed | method | forecast R² | reconstruction R² | fit s "
          "| epochs (best/run) |")
    print("|---|---|---|---|---|---|---|")
    for bin_factor in args.bin:
        runs = load_runs(path, bin_factor=bin_factor, run_frames=args.run_frames, n_runs=args.runs)
        train_runs, test_runs = runs[: -args.held_out], runs[-args.held_out :]
        side = f"{runs.shape[2]}x{runs.shape[3]}"
        for seed in args.seeds:
            for method in methods(seed, args):
                if isinstance(method, (Persistence, PCAVAR)) and seed != args.seeds[0]:
                    continue  # deterministic: one row is enough
                record = evaluate(method, train_runs, test_runs)
                if "score" in record:
                    assert abs(record["score"] - record["forecast"]) < 1e-4, record
                print(f"| {side} | {seed} | {record['method']} | {record['forecast']:.3f} | "
                      f"{record['reconstruction']:.3f} | {record['seconds']:.0f} | "
                      f"{record.get('epochs', '')} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
