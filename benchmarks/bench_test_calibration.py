"""Calibration and power of the permutation test of :mod:`skvarae.stats`.

Simulates latent sequences from a known sparse VAR(1) (no network: this isolates the test from
the autoencoder), runs the public :func:`skvarae.stats.compare_latents` on each simulated
dataset, and prints a Markdown table of rejection rates at level 0.05 with binomial standard
errors, for several numbers of runs per condition (1 vs 1 uses blocks of runs) and effect sizes.

Model. d = 3 latents, VAR(1) with matrix

    A0 = [[0.5, 0,   0  ],
          [0.3, 0.4, 0  ],
          [0,   0,   0.6]]

and N(0, I) innovations (50 frames of burn-in). Condition a uses A0; condition b uses A0 with
the coupling of latent 0 on latent 1, ``A0[1, 0]``, changed by the *effect* (0 = H0). The
column "run heterogeneity" simulates H0 with run-to-run variability: every run, in both
conditions, gets its own matrix A0 + tau * E_r (E_r standard normal on the four non-zero
entries). Runs are still exchangeable across conditions, so a test on runs stays calibrated,
while blocks of one run share their run's matrix: this column shows what the "blocks are not
fully exchangeable" warning is about.

Reading the table. The null rows should be close to the attainable size of the test: with
exact enumeration of C relabellings (and equal group sizes, where a split and its mirror image
have the same statistic) the p-value takes values in multiples of 2 / C, so the largest size
at or below 0.05 is ``floor(0.05 * C / 2) * 2 / C`` (0.029 for C = 70). With random
permutations it is about 0.05.

Usage::

    python benchmarks/bench_test_calibration.py --quick     # ~1 minute
    python benchmarks/bench_test_calibration.py             # 1000 replicates, a few minutes
"""

import argparse
import math
import time
import warnings

import numpy as np
import torch
from joblib import Parallel, delayed

from skvarae.stats import LEVEL, choose_n_blocks, compare_latents

A0 = np.array([[0.5, 0.0, 0.0], [0.3, 0.4, 0.0], [0.0, 0.0, 0.6]])
SUPPORT = A0 != 0


def simulate(coefs, n_frames, rng, burn_in=50):
    """VAR(1) sequences, one coefficient matrix per sequence.

    Parameters
    ----------
    coefs : ndarray of shape (n_runs, d, d)
    n_frames : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (n_runs, n_frames, d)
    """
    n_runs, d = coefs.shape[0], coefs.shape[-1]
    z = np.zeros((n_runs, d))
    out = np.empty((n_runs, n_frames, d))
    for t in range(burn_in + n_frames):
        z = np.einsum("rij,rj->ri", coefs, z) + rng.standard_normal((n_runs, d))
        if t >= burn_in:
            out[:, t - burn_in] = z
    return out


def run_matrices(n_runs, effect, heterogeneity, rng):
    """(n_runs, d, d) matrices: A0 (+ effect on A0[1, 0]) (+ run-specific perturbation)."""
    base = A0.copy()
    base[1, 0] += effect
    coefs = np.repeat(base[None], n_runs, axis=0)
    if heterogeneity > 0:
        coefs = coefs + heterogeneity * rng.standard_normal(coefs.shape) * SUPPORT
        # Lower-triangular matrices: stable when the diagonal stays inside (-1, 1).
        diag = np.einsum("rii->ri", coefs)
        diag[...] = np.clip(diag, -0.95, 0.95)
    return coefs


def one_replicate(seed, n_a, n_b, effect, heterogeneity, args):
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    coefs = np.concatenate(
        [
            run_matrices(n_a, 0.0, heterogeneity, rng),
            run_matrices(n_b, effect, heterogeneity, rng),
        ]
    )
    Z = simulate(coefs, args.n_frames, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the blocking warning, expected here
        result = compare_latents(
            list(Z[:n_a]),
            list(Z[n_a:]),
            args.alpha,
            n_permutations=args.n_permutations,
            random_state=seed,
            min_block_length=args.min_block_length,
        )
    return result.pvalue


def attainable_size(n_a, n_b, n_permutations):
    """Largest P(p <= LEVEL) under H0 (no ties) for n_a vs n_b exchangeable units."""
    n_relabellings = math.comb(n_a + n_b, n_a)
    if n_relabellings > n_permutations:
        return math.floor(LEVEL * (1 + n_permutations)) / (1 + n_permutations)
    step = 2 if n_a == n_b else 1
    return math.floor(LEVEL * n_relabellings / step) * step / n_relabellings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=1000, help="datasets per cell")
    parser.add_argument("--effects", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.4])
    parser.add_argument(
        "--runs", type=int, nargs="+", default=[1, 2, 4, 8], help="runs per condition"
    )
    parser.add_argument("--n-frames", type=int, default=200, help="frames per run")
    parser.add_argument("--n-permutations", type=int, default=1000)
    parser.add_argument("--alpha", type=float, default=0.02, help="lasso penalty of the VARs")
    parser.add_argument("--min-block-length", type=int, default=50)
    parser.add_argument(
        "--heterogeneity",
        type=float,
        default=0.1,
        help="tau of the run-heterogeneity null column (0 to leave it out)",
    )
    parser.add_argument("--n-jobs", type=int, default=1, help="joblib processes over replicates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="200 replicates, 200 permutations")
    args = parser.parse_args(argv)
    if args.quick:
        args.replicates, args.n_permutations = 200, 200

    columns = [(effect, 0.0) for effect in args.effects]
    if args.heterogeneity > 0:
        columns.append((0.0, args.heterogeneity))
    start = time.perf_counter()
    rows = []
    for n_runs in args.runs:
        lengths = [args.n_frames] * n_runs
        k = choose_n_blocks(lengths, lengths, args.n_permutations, args.min_block_length)
        units = "runs" if k == 1 else f"{k} blocks × {args.n_frames // k} frames"
        size = attainable_size(k * n_runs, k * n_runs, args.n_permutations)
        cells = []
        for column, (effect, heterogeneity) in enumerate(columns):
            seeds = [
                args.seed + 1_000_003 * (n_runs * 31 + column) + r for r in range(args.replicates)
            ]
            pvalues = np.array(
                Parallel(n_jobs=args.n_jobs)(
                    delayed(one_replicate)(s, n_runs, n_runs, effect, heterogeneity, args)
                    for s in seeds
                )
            )
            rate = float(np.mean(pvalues <= LEVEL))
            se = math.sqrt(rate * (1 - rate) / args.replicates)
            cells.append(f"{rate:.3f} ± {se:.3f}")
        rows.append(f"| {n_runs} vs {n_runs} | {units} | {size:.3f} | " + " | ".join(cells) + " |")
    elapsed = time.perf_counter() - start

    header = [f"effect {e:g}" for e, h in columns if h == 0]
    if args.heterogeneity > 0:
        header.append(f"effect 0, run heterogeneity τ={args.heterogeneity:g}")
    print(
        f"Rejection rate at {LEVEL} (± binomial standard error), {args.replicates} datasets "
        f"per cell, {args.n_frames} frames per run, d=3, alpha={args.alpha}, "
        f"n_permutations={args.n_permutations}, min_block_length={args.min_block_length}. "
        "Effect: change of the coupling A[1, 0] (0.3) in condition b.\n"
    )
    print("| runs | units per run | attainable size | " + " | ".join(header) + " |")
    print("|---|---|---|" + "---|" * len(header))
    print("\n".join(rows))
    print(f"\n({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
