"""Benchmark of skvarae.lars.lasso_lars against scikit-learn's LassoLars.

Problems are shaped like the sparse VAR fits of the model: a batch of runs, each with its own
design ``X`` (n_samples, m) and m targets (one lasso per latent dimension, k = m), solved at one
``alpha`` in a single batched call. The baseline, measured in the same process on the same data,
is scikit-learn's ``LassoLars(alpha, fit_intercept=False)`` fitted once per run with the m
targets as a 2-D ``y`` (it loops over the targets internally and shares the Gram matrix), i.e. a
Python loop over runs and targets. Only the solve is timed (data are prepared beforehand); each
figure is the median of ``--repeat`` runs after one warm-up call. ``max|diff|`` checks that both
give the same coefficients. On a shared machine, ``--threads 1`` avoids oversubscription.

Usage::

    python benchmarks/bench_lars.py
    python benchmarks/bench_lars.py --runs 8 --samples 200 500 --features 16 32 64 --alpha 0.02
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LassoLars

from skvarae.lars import lasso_lars


def make_problem(n_runs, n_samples, n_features, seed):
    """Standardised designs and targets from a sparse linear model (20% non-zero weights)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_runs, n_samples, n_features))
    B = rng.standard_normal((n_runs, n_features, n_features))
    B *= rng.random(B.shape) < 0.2
    Y = X @ B / np.sqrt(0.2 * n_features) + rng.standard_normal((n_runs, n_samples, n_features))
    X -= X.mean(axis=1, keepdims=True)
    Y -= Y.mean(axis=1, keepdims=True)
    return X, Y


def median_time(fn, repeat, sync=None):
    fn()  # warm-up (lazy initialisation, caches)
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sklearn_solve(X, Y, alpha):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return np.stack([LassoLars(alpha=alpha, fit_intercept=False).fit(x, y).coef_
                         for x, y in zip(X, Y)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="batch size (number of runs)")
    parser.add_argument("--samples", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--features", type=int, nargs="+", default=[16, 32, 64],
                        help="m = number of features = number of targets")
    parser.add_argument("--alpha", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-cuda", action="store_true", help="skip CUDA timings")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available() and not args.no_cuda

    print(f"lasso_lars vs sklearn LassoLars: {args.runs} runs, k = m targets, alpha={args.alpha}, "
          f"median of {args.repeat}; torch {torch.__version__}, {torch.get_num_threads()} CPU "
          f"thread(s)" + (f", CUDA: {torch.cuda.get_device_name()}" if cuda else ", no CUDA"))
    header = (f"{'n':>5} {'m=k':>4} {'problems':>8} {'steps':>5} {'sklearn ms':>10} "
              f"{'cpu f64 ms':>10} {'cpu f32 ms':>10} {'speed-up':>8} {'max|diff|':>9}")
    if cuda:
        header += f" {'cuda f64 ms':>11} {'cuda f32 ms':>11} {'speed-up':>8}"
    print(header)
    print("-" * len(header))
    for n_samples in args.samples:
        for m in args.features:
            X, Y = make_problem(args.runs, n_samples, m, seed=n_samples + m)
            Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
            Xf, Yf = Xt.float(), Yt.float()
            coef, info = lasso_lars(Xt, Yt, args.alpha, return_info=True)
            reference = sklearn_solve(X, Y, args.alpha)
            diff = np.abs(coef.numpy() - reference).max()

            t_sk = median_time(lambda: sklearn_solve(X, Y, args.alpha), args.repeat)
            t_64 = median_time(lambda: lasso_lars(Xt, Yt, args.alpha), args.repeat)
            t_32 = median_time(lambda: lasso_lars(Xf, Yf, args.alpha), args.repeat)
            row = (f"{n_samples:>5} {m:>4} {args.runs * m:>8} {int(info.n_iter.max()):>5} "
                   f"{1e3 * t_sk:>10.1f} {1e3 * t_64:>10.1f} {1e3 * t_32:>10.1f} "
                   f"{t_sk / t_64:>7.1f}x {diff:>9.1e}")
            if cuda:
                Xc, Yc, Xcf, Ycf = Xt.cuda(), Yt.cuda(), Xf.cuda(), Yf.cuda()
                sync = torch.cuda.synchronize
                t_c64 = median_time(lambda: lasso_lars(Xc, Yc, args.alpha), args.repeat, sync)
                t_c32 = median_time(lambda: lasso_lars(Xcf, Ycf, args.alpha), args.repeat, sync)
                row += f" {1e3 * t_c64:>11.1f} {1e3 * t_c32:>11.1f} {t_sk / t_c64:>7.1f}x"
            print(row)
    print("speed-up = sklearn time / lasso_lars float64 time; steps = longest path in the batch.")


if __name__ == "__main__":
    main()
