"""Peak memory of a default fit against frame size, with and without the memory budget.

For each frame side (64 to 512 px), a fresh process fits ``SparseVARAutoencoder`` with default
parameters and ``max_epochs=1`` on 2 runs x 256 frames of float32 (an in-memory array of
smooth random frames: memory does not depend on the content), and reports:

- ``movie MiB``: the input array;
- ``peak RSS MiB``: ``ru_maxrss`` of the fitting process (everything it held at its peak,
  including torch's libraries, some 300-400 MiB, and the movie);
- ``peak anon MiB``: peak anonymous resident memory (RssAnon, sampled every 20 ms);
- ``chunk``: frames per chunk of the training step that the budget chose ("-": whole step);
- ``fit s`` and training frames/s of the epoch.

Rows come in pairs: ``budget`` (the default ``memory_budget``) and the same fit with
``memory_budget=None`` (no limit: the step keeps every activation, as before the budget existed),
the baseline measured in the same run; the ratio column is unbounded peak RSS / budgeted peak
RSS. Unbounded fits whose estimated step exceeds ``--max-unbounded-gib`` are not run (their
estimate is printed instead).

    python benchmarks/bench_memory.py                    # 64, 128, 256, 512 px
    python benchmarks/bench_memory.py --sides 64 256     # a subset
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from bench_memmap import peak_anon_mb  # the same RssAnon sampler (this folder is on sys.path)

N_RUNS, N_FRAMES = 2, 256
#: The estimator's default memory_budget, GiB.
DEFAULT_BUDGET = 2.0


def movie(side, seed=0):
    """2 runs x 256 frames of side x side float32: a static image plus smooth moving blobs."""
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((N_RUNS, N_FRAMES, 8, 8)).astype(np.float32)
    coarse = np.cumsum(coarse, axis=1) * np.float32(0.1)  # slow dynamics
    frames = np.repeat(np.repeat(coarse, side // 8, axis=2), side // 8, axis=3)
    frames += np.float32(100.0) + rng.standard_normal((1, 1, side, side), dtype=np.float32)
    return frames


def measure(side, budget, threads):
    """Fit on one movie in this process and print one JSON line (child)."""
    import torch

    import skvarae.estimator as estimator_module
    from skvarae import SparseVARAutoencoder

    torch.set_num_threads(threads)
    runs = movie(side)
    chunks = []
    plan = estimator_module.plan_frames_per_chunk

    def recording_plan(*args, **kwargs):  # records the chunk size the fit chose
        chunks.append(plan(*args, **kwargs))
        return chunks[-1]

    estimator_module.plan_frames_per_chunk = recording_plan
    model = SparseVARAutoencoder(max_epochs=1, random_state=0, memory_budget=budget)
    with peak_anon_mb() as peak:
        start = time.perf_counter()
        model.fit(runs)
        seconds = time.perf_counter() - start
    n_train = sum(len(run) - round(0.1 * len(run)) for run in runs)
    print(json.dumps({
        "side": side,
        "budget": budget,
        "chunk": chunks[-1],
        "movie_mb": runs.nbytes / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_anon_mb": peak["anon"],
        "fit_seconds": seconds,
        "train_fps": n_train / model.history_[0]["duration"],
    }))


def estimated_unbounded_gib(side):
    """The training module's estimate of the default step without a budget."""
    import torch

    from skvarae.network import ConvDecoder, ConvEncoder
    from skvarae.training import activation_bytes

    shape = (side, side)
    e, g = activation_bytes(ConvEncoder(shape, linear_path="local"),
                            ConvDecoder(shape, linear_path="local"), shape, torch.device("cpu"))
    n_frames = 4 * 64  # batch_size x window of the defaults
    return n_frames * (8 * side * side + e + 2 * g) / 2**30


def run_child(side, budget, threads):
    command = [sys.executable, __file__, "--child", str(side), "--budget", str(budget),
               "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return {"side": side, "budget": budget, "error": result.stderr.strip().splitlines()[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-unbounded-gib", type=float, default=12.0)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--budget", default=str(DEFAULT_BUDGET), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        budget = None if args.budget == "None" else float(args.budget)
        measure(args.child, budget, args.threads)
        return

    header = (f"{'side':>5} {'budget':>7} {'movie MiB':>10} {'peak RSS MiB':>13} "
              f"{'peak anon MiB':>14} {'chunk':>6} {'fit s':>7} {'train fr/s':>10} "
              f"{'unbounded/budget':>17}")
    print("Default fit, max_epochs=1, 2 runs x 256 frames float32; "
          f"{args.threads} torch threads; fresh process per row")
    print(header)
    print("-" * len(header))
    for side in args.sides:
        rows = [run_child(side, DEFAULT_BUDGET, args.threads)]
        estimate = estimated_unbounded_gib(side)
        if estimate <= args.max_unbounded_gib:
            rows.append(run_child(side, "None", args.threads))
        for row in rows:
            label = "none" if row["budget"] is None else f"{row['budget']:g} GiB"
            if "error" in row:
                print(f"{side:>5} {label:>7}  failed: {row['error']}")
                continue
            ratio = ""
            if row["budget"] is None and "peak_rss_mb" in rows[0]:
                ratio = f"{row['peak_rss_mb'] / rows[0]['peak_rss_mb']:.2f}x"
            chunk = "-" if row["chunk"] is None else row["chunk"]
            print(f"{side:>5} {label:>7} {row['movie_mb']:>10.0f} {row['peak_rss_mb']:>13.0f} "
                  f"{row['peak_anon_mb']:>14.0f} {chunk:>6} {row['fit_seconds']:>7.1f} "
                  f"{row['train_fps']:>10.1f} {ratio:>17}")
        if estimate > args.max_unbounded_gib:
            print(f"{side:>5} {'none':>7}  not run: the unbounded step alone is estimated at "
                  f"{estimate:.1f} GiB")


if __name__ == "__main__":
    main()
