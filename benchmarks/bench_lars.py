"""Benchmark of skvarae.lars.lasso_lars against scikit-learn's LARS, on sparse VAR fits.

Each case is the VAR(p) fit of the model's LARS layer: R runs (windows) of T frames of d latents,
one lasso per latent on the p lagged latents (m = p * d features, k = d targets, n = T - p
samples, P = R * d problems), solved at ``alpha = 0.03 * alpha_max`` (``alpha_max`` the smallest
alpha at which every problem's solution is zero), in float64. The latents are a simulated
stable sparse VAR(p), standardised, lagged and centred as :func:`skvarae.fit_var` does.

Baseline, measured in the same process on the same data: scikit-learn's ``lars_path_gram``
(method="lasso", ``alpha_min=alpha``), a Python loop over runs and targets with the Gram
matrix and ``X^T y`` built once per run (the fastest way to call scikit-learn's LARS on these
problems; ``LassoLars`` on a 2-D ``y`` does the same loop with more overhead). Candidate: one
batched call of ``lasso_lars`` (forward), then forward and backward of a random linear
functional of the coefficients. Each figure is the median of ``--repeat`` timings after one
warm-up call, candidate and baseline timed in turn (same machine load); CPU threads are fixed
with ``torch.set_num_threads`` (``--threads``, default 1: scikit-learn's loop runs on one
core) and the count is printed.

The flop model (see docs/scaling.rst, "The LARS layer"): one step of one problem with ``a``
active regressors costs ``2 m^2`` flops for ``a = G w`` (a dense product with the shared Gram
matrix, BLAS 3 over the targets), ``2 a^2`` for the two triangular solves (new row of the
factor, equiangular weights) and about ``30 m`` for the element-wise step-length search; a
drop adds the downdate of the factor, about ``10 a^2``. The benchmark adds this up over the
path actually taken (``a`` per step from the path's own step counts, assuming it grows one per
step up to the final size), and prints it with the time it would take at the dgemm rate
measured in this process, next to the time measured: "x flop bound" is how far the solver is
from it.

Usage::

    python benchmarks/bench_lars.py                  # the two cases of issue 12: M and d128
    python benchmarks/bench_lars.py --cases M d128 d128p2 S --repeat 5 --threads 1

Run it from a checkout with ``PYTHONPATH=.`` to time that checkout's skvarae.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import lars_path_gram

from skvarae.lars import lasso_lars
from skvarae.var import lagged_design

#: name: (d latents, p lags, T frames, R runs)
CASES = {
    "M": (64, 2, 1000, 16),
    "d128": (128, 1, 128, 8),
    "d128p2": (128, 2, 128, 8),
    "S": (64, 2, 1000, 4),
    "d256": (256, 1, 128, 8),
}
ALPHA_FRACTION = 0.03


def make_problem(d, p, T, R, seed=0):
    """Lagged designs and targets of R runs of a stable sparse VAR(p), as fit_var builds them."""
    rng = np.random.default_rng(seed)
    coef = rng.standard_normal((p, d, d)) * (rng.random((p, d, d)) < 0.1)
    radius = np.abs(np.linalg.eigvals(coef.sum(axis=0))).max()
    coef *= 0.5 / max(radius, 1e-9)
    burn_in = 50
    Z = np.zeros((R, T + burn_in, d))
    for t in range(p, T + burn_in):
        Z[:, t] = sum(Z[:, t - lag - 1] @ coef[lag].T for lag in range(p))
        Z[:, t] += rng.standard_normal((R, d))
    Z = torch.from_numpy(Z[:, burn_in:])
    Z = Z - Z.mean(dim=-2, keepdim=True)
    Z = Z / Z.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt()
    X, Y = lagged_design(Z, p)
    return X - X.mean(dim=-2, keepdim=True), Y - Y.mean(dim=-2, keepdim=True)


def median_time(fn, repeat):
    return interleaved_times({"fn": fn}, repeat)["fn"]


def interleaved_times(fns, repeat):
    """Median seconds of each function, timed in turn (a round of all, ``repeat`` rounds).

    Interleaving exposes candidate and baseline to the same machine load, which matters on a
    shared machine; each function is called once first as a warm-up.
    """
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def sklearn_solve(X, Y, alpha):
    """lars_path_gram looped over runs and targets, Gram and X^T y built once per run."""
    n_samples = X.shape[1]
    out = np.empty((X.shape[0], Y.shape[2], X.shape[2]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for r in range(X.shape[0]):
            gram, xty = X[r].T @ X[r], X[r].T @ Y[r]
            for t in range(Y.shape[2]):
                _, _, coefs = lars_path_gram(xty[:, t], gram, n_samples=n_samples,
                                             alpha_min=alpha, method="lasso")
                out[r, t] = coefs[:, -1]
    return out


def forward_backward(X, Y, alpha, V):
    X = X.detach().requires_grad_()
    Y = Y.detach().requires_grad_()
    (lasso_lars(X, Y, alpha) * V).sum().backward()


def dgemm_rate(m, repeat=5):
    """Flop/s of a batched (16, m, m) @ (16, m, m) float64 product on this process's threads."""
    A = torch.randn(16, m, m, dtype=torch.float64)
    seconds = median_time(lambda: A @ A, repeat)
    return 2 * 16 * m**3 / seconds


def path_flops(info, m):
    """The flop model above, summed over the steps each problem took."""
    steps = info.n_iter.reshape(-1).double()
    final = info.active.reshape(-1, m).sum(dim=1).double()
    drops = ((steps - final).clamp_min(0) / 2)  # a drop and its re-entry are two extra steps
    # sum over steps of a^2 with a growing linearly to its final size: ~ steps * final^2 / 3
    sum_a2 = steps * final.square() / 3
    flops = steps * (2 * m * m + 30 * m) + 2 * sum_a2 + drops * 10 * final.square()
    return float(flops.sum())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["M", "d128"], choices=sorted(CASES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--no-sklearn", action="store_true",
                        help="skip the scikit-learn baseline (no ratios)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rate = dgemm_rate(128)

    print(f"lasso_lars vs scikit-learn lars_path_gram (loop over runs and targets), float64, "
          f"alpha = {ALPHA_FRACTION} * alpha_max, median of {args.repeat}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} CPU thread(s); dgemm "
          f"{rate / 1e9:.1f} GFlop/s")
    header = (f"{'case':>7} {'d':>4} {'p':>2} {'T':>5} {'R':>3} {'P':>5} {'steps':>5} "
              f"{'|A|':>5} {'sklearn s':>9} {'fwd s':>7} {'ratio':>6} {'fwd+bwd s':>9} "
              f"{'fb/f':>5} {'f32 fwd s':>9} {'GFlop':>6} {'MFlop/step':>10} {'x flop bound':>12} "
              f"{'max|diff|':>9}")
    print(header)
    print("-" * len(header))
    for name in args.cases:
        d, p, T, R = CASES[name]
        X, Y = make_problem(d, p, T, R)
        n_samples, m = X.shape[-2], X.shape[-1]
        alpha = ALPHA_FRACTION * float((X.mT @ Y).abs().amax()) / n_samples
        V = torch.randn(R, d, m, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        coef, info = lasso_lars(X, Y, alpha, return_info=True)

        Xf, Yf, Xn, Yn = X.float(), Y.float(), X.numpy(), Y.numpy()
        candidates = {
            "fwd": lambda: lasso_lars(X, Y, alpha),
            "fb": lambda: forward_backward(X, Y, alpha, V),
            "f32": lambda: lasso_lars(Xf, Yf, alpha),
        }
        if not args.no_sklearn:
            candidates["sklearn"] = lambda: sklearn_solve(Xn, Yn, alpha)
        times = interleaved_times(candidates, args.repeat)
        t_fwd, t_fb, t_32 = times["fwd"], times["fb"], times["f32"]
        if args.no_sklearn:
            t_sk, diff = float("nan"), float("nan")
        else:
            t_sk = times["sklearn"]
            diff = float(np.abs(sklearn_solve(Xn, Yn, alpha) - coef.numpy()).max())
        flops = path_flops(info, m)
        print(f"{name:>7} {d:>4} {p:>2} {T:>5} {R:>3} {R * d:>5} {int(info.n_iter.max()):>5} "
              f"{float(info.active.sum(-1).double().mean()):>5.1f} {t_sk:>9.2f} {t_fwd:>7.3f} "
              f"{t_sk / t_fwd:>5.1f}x {t_fb:>9.3f} {t_fb / t_fwd:>5.2f} {t_32:>9.3f} "
              f"{flops / 1e9:>6.2f} {flops / 1e6 / int(info.n_iter.max()):>10.1f} "
              f"{t_fwd / (flops / rate):>11.1f}x {diff:>9.1e}", flush=True)
    print("ratio = sklearn / fwd (float64); fb/f = forward+backward / forward; steps = longest "
          "path; |A| = mean final active set; GFlop = the flop model of the path (MFlop/step: "
          "per step of the whole batch, over the longest path); x flop bound = fwd / (GFlop at "
          "the dgemm rate); max|diff| = largest difference from scikit-learn's coefficients.")


if __name__ == "__main__":
    main()
