"""Training speed of SparseVARAutoencoder: end-to-end versus two-stage (the named baseline).

For each frame size, fits simulated movies (``--runs`` runs x ``--frames`` frames) with the
estimator's default step (batches of 4 windows of 64 frames) and prints, per training mode:
training frames per second, the time per optimisation step, the share of training time spent
in the LARS forward solve, and peak memory. Early stopping and the held-out tails are off
(``validation_fraction=0``, ``n_iter_no_change=epochs``) so that a fixed number of steps is
timed. Ratios are against two-stage training (a plain autoencoder step, no VAR) at the same
size, measured in the same run.

    python benchmarks/bench_fit.py                                  # 64, 128, 256 px, d=32
    python benchmarks/bench_fit.py --sizes 128 --max-latent-side 8  # d=128 at 128x128
    python benchmarks/bench_fit.py --device cuda                    # GPU
    python benchmarks/bench_fit.py --quick                          # 32x32, a few seconds
    python benchmarks/bench_fit.py --reconstruction-subsample 1     # every frame decoded twice
"""

import argparse
import resource
import time

import numpy as np
import torch

import skvarae.var
from skvarae import SparseVARAutoencoder, make_calcium_movies


class LarsTimer:
    """Wrap skvarae.var.lasso_lars to accumulate the time spent in the LARS forward solve."""

    def __init__(self, device):
        self.device = device
        self.seconds = 0.0
        self.calls = 0
        self._original = skvarae.var.lasso_lars

    def __enter__(self):
        def timed(*args, **kwargs):
            self._sync()
            start = time.perf_counter()
            out = self._original(*args, **kwargs)
            self._sync()
            self.seconds += time.perf_counter() - start
            self.calls += 1
            return out

        skvarae.var.lasso_lars = timed
        return self

    def __exit__(self, *exc):
        skvarae.var.lasso_lars = self._original

    def _sync(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()


def peak_memory_mb(device):
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def run(movies, training, args):
    model = SparseVARAutoencoder(
        training=training,
        alpha=args.alpha,
        max_epochs=args.epochs,
        n_iter_no_change=args.epochs,  # no early stop: time a fixed amount of work
        validation_fraction=0.0,
        batch_size=args.batch_size,
        window=args.window,
        latent_channels=args.latent_channels,
        max_latent_side=args.max_latent_side,
        reconstruction_subsample=args.reconstruction_subsample,
        device=args.device,
        random_state=0,
    )
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with LarsTimer(args.device) as lars:
        start = time.perf_counter()
        model.fit(movies)
        total = time.perf_counter() - start
    train_time = sum(h["duration"] for h in model.history_)
    n_frames = movies.shape[0] * movies.shape[1]
    n_steps = model.n_iter_ * int(np.ceil(len(movies) * np.ceil(movies.shape[1] / args.window)
                                          / args.batch_size))
    return dict(
        training=training,
        fps=n_frames * model.n_iter_ / train_time,
        step_ms=1e3 * train_time / n_steps,
        lars_share=lars.seconds / train_time,
        lars_calls=lars.calls,
        fit_s=total,
        peak_mb=peak_memory_mb(args.device),
        d=int(np.prod(model.latent_shape_)),
        sparsity=float(np.mean(model.coef_ == 0)),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--latent-channels", type=int, default=2)
    parser.add_argument("--max-latent-side", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--reconstruction-subsample", type=float, default=0.25,
                        help="end-to-end: share of frames whose reconstruction is decoded")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="2 runs x 200 frames x 32x32")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.frames, args.sizes, args.epochs = 2, 200, [32], 2
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"# {args.runs} runs x {args.frames} frames, device={args.device},"
        f" torch threads={torch.get_num_threads()}, epochs={args.epochs}, window={args.window},"
        f" batch_size={args.batch_size}, reconstruction_subsample={args.reconstruction_subsample},"
        f" torch {torch.__version__}"
    )
    print()
    print("| size | training | d | frames/s | ms/step | LARS fwd share | peak MB | fit s |"
          " vs two-stage |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        movies = make_calcium_movies(
            n_runs=args.runs, n_frames=args.frames, frame_shape=(size, size), random_state=0
        ).movies
        # Two-stage first: it is the baseline, and it warms up the allocator and kernels.
        results = [run(movies, "two_stage", args), run(movies, "end_to_end", args)]
        baseline = results[0]
        for r in results:
            print(
                f"| {size}x{size} | {r['training']} | {r['d']} | {r['fps']:.1f} |"
                f" {r['step_ms']:.0f} | {100 * r['lars_share']:.0f}% ({r['lars_calls']} calls) |"
                f" {r['peak_mb']:.0f} | {r['fit_s']:.1f} |"
                f" {r['step_ms'] / baseline['step_ms']:.2f}x time |",
                flush=True,
            )


if __name__ == "__main__":
    main()
