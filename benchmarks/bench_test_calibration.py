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

Difference maps (``--maps``). The per-pixel test of
:func:`skvarae.contribution.difference_map_test` (max-statistic family-wise correction) on
simulated *movies*: one small model is trained once on movies of its own seed (the fixed
encoder of the fast path), then for each replicate new movies are simulated with
``condition_effect=0`` (the null: both conditions share the dynamics) or with an effect, and the
test compares the runs of condition 0 with those of condition 1 under the fixed model. The table
gives the family-wise rate, the share of datasets with *any* pixel at p <= 0.05 (it must not
exceed 0.05 under the null; with 4 vs 4 runs the attainable size is 2/70 = 0.029), and, with an
effect, the share of datasets with a significant pixel and the share of significant pixels on
the cells whose outgoing couplings changed::

    python benchmarks/bench_test_calibration.py --maps --replicates 200   # ~10 min on 1 core
"""

import argparse
import math
import time
import warnings

import numpy as np
import torch
from joblib import Parallel, delayed

from skvarae import SparseVARAutoencoder, make_calcium_movies
from skvarae.contribution import difference_map_test
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


# ------------------------------------------------------------------------- difference maps
MAP_MOVIES = dict(frame_shape=(24, 24), n_cells=8, n_drivers=2, n_targets=3, cell_radius=2.5,
                  jitter=0.2, bleaching=1e-4)


def changed_driver_mask(data):
    """Pixels of the cells whose outgoing couplings differ between the two conditions."""
    change = np.abs(data.coef[0] - data.coef[1])
    np.fill_diagonal(change, 0.0)
    changed = np.flatnonzero(change.sum(axis=0) > 0)
    return (data.footprints[changed] > 0.5).any(axis=0)


def fixed_model(args):
    """The fixed encoder: a small model trained once, on movies of a seed no replicate uses."""
    torch.set_num_threads(1)
    train = make_calcium_movies(n_runs=4, n_frames=args.n_frames, random_state=10**9 + args.seed,
                                **MAP_MOVIES)
    return SparseVARAutoencoder(alpha=args.alpha, max_epochs=args.map_epochs, batch_size=2,
                                learning_rate=5e-3, device="cpu", random_state=args.seed).fit(
        train.movies)


def one_map_replicate(model, seed, n_runs, effect, args):
    """(any pixel significant, share of significant pixels on changed drivers) of one dataset."""
    torch.set_num_threads(1)
    data = make_calcium_movies(n_runs=2 * n_runs, n_frames=args.n_frames, condition_effect=effect,
                               random_state=seed, **MAP_MOVIES)
    result = difference_map_test(model, data.movies[0::2], data.movies[1::2],
                                 n_permutations=args.n_permutations, random_state=seed)
    significant = result.significant(LEVEL)
    on_changed = significant[changed_driver_mask(data)].mean() if effect > 0 else np.nan
    return bool(significant.any()), float(on_changed)


def maps_main(args):
    start = time.perf_counter()
    model = fixed_model(args)
    print(
        f"Difference-map test (difference_map_test, maxT family-wise correction), level {LEVEL}; "
        f"{args.replicates} simulated datasets per cell, {args.n_frames} frames per run, movies "
        f"{MAP_MOVIES}; fixed encoder: SparseVARAutoencoder(alpha={args.alpha}, "
        f"max_epochs={args.map_epochs}) trained once on 4 other runs; "
        f"n_permutations={args.n_permutations}.\n"
    )
    print("| runs per condition | attainable size | condition_effect | any pixel p ≤ 0.05 "
          "(± s.e.) | significant share of changed-driver pixels |")
    print("|---|---|---|---|---|")
    for n_runs in args.map_runs:
        size = attainable_size(n_runs, n_runs, args.n_permutations)
        for effect in args.map_effects:
            seeds = [args.seed + 7_000_003 * n_runs + 1_000 * int(100 * effect) + r
                     for r in range(args.replicates)]
            out = Parallel(n_jobs=args.n_jobs)(
                delayed(one_map_replicate)(model, s, n_runs, effect, args) for s in seeds
            )
            rate = float(np.mean([o[0] for o in out]))
            se = math.sqrt(rate * (1 - rate) / args.replicates)
            share = np.nanmean([o[1] for o in out]) if effect > 0 else float("nan")
            share_text = "" if effect == 0 else f"{share:.3f}"
            print(f"| {n_runs} vs {n_runs} | {size:.3f} | {effect:g} | {rate:.3f} ± {se:.3f} | "
                  f"{share_text} |", flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=1000, help="datasets per cell")
    parser.add_argument("--effects", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.4])
    parser.add_argument(
        "--runs", type=int, nargs="+", default=[1, 2, 4, 8], help="runs per condition"
    )
    parser.add_argument("--n-frames", type=int, default=None,
                        help="frames per run (default 200; 120 with --maps)")
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
    parser.add_argument("--maps", action="store_true",
                        help="calibrate the difference-map test on simulated movies instead")
    parser.add_argument("--map-runs", type=int, nargs="+", default=[4, 6],
                        help="runs per condition (--maps)")
    parser.add_argument("--map-effects", type=float, nargs="+", default=[0.0, 1.0],
                        help="condition_effect values (--maps); 0 is the null")
    parser.add_argument("--map-epochs", type=int, default=20,
                        help="training epochs of the fixed model (--maps)")
    args = parser.parse_args(argv)
    if args.maps:
        args.n_frames = args.n_frames or 120
        return maps_main(args)
    args.n_frames = args.n_frames or 200
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
