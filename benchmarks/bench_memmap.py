"""Memory of fitting on memory-mapped movies of growing length (movies larger than memory).

Writes uint16 movies of 2 runs x N frames x 64x64 as ``.npy`` files, then, in a fresh process
per size, fits ``SparseVARAutoencoder`` on the memory maps (one epoch) and computes the
contribution map, sampling the process's memory every 20 ms. Reported per size:

- ``movie MB``: the movie as float32 (what an eager float copy would cost);
- ``peak anon MB``: peak anonymous resident memory (RssAnon: what the process itself holds;
  file-backed pages of the memory map are page cache the kernel can drop at any time);
- ``peak RSS MB``: ``ru_maxrss``, which also counts resident pages of the mapped file;
- frames/s of the fit (training plus the final per-run VAR fits and maps).

The baseline is the smallest movie: peak anonymous memory should not grow with movie length.

    python benchmarks/bench_memmap.py            # 500, 2000, 8000 frames per run
    python benchmarks/bench_memmap.py --quick    # 200, 800 frames per run
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _rss_anon_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(paths, frame_side):
    """Fit on memory-mapped runs; print a JSON line with the measurements (child process)."""
    import torch

    from skvarae import SparseVARAutoencoder

    torch.set_num_threads(1)
    peak = {"anon": _rss_anon_mb()}
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak["anon"] = max(peak["anon"], _rss_anon_mb())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    runs = [np.load(path, mmap_mode="r") for path in paths]
    start = time.perf_counter()
    model = SparseVARAutoencoder(max_epochs=1, random_state=0).fit(runs)
    model.contribution_map()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    n_frames = sum(len(r) for r in runs)
    print(json.dumps({
        "frames": n_frames,
        "movie_mb": n_frames * frame_side**2 * 4 / 2**20,
        "peak_anon_mb": peak["anon"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "fps": n_frames / seconds,
        "seconds": seconds,
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure, args.side)
    if args.quick:
        args.frames = [200, 800]

    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n_frames in args.frames:
            paths = []
            for run in range(2):
                path = Path(folder) / f"n{n_frames}_run{run}.npy"
                movie = np.lib.format.open_memmap(
                    path, mode="w+", dtype=np.uint16, shape=(n_frames, args.side, args.side)
                )
                for start in range(0, n_frames, 500):  # write in chunks: never all in memory
                    stop = min(start + 500, n_frames)
                    movie[start:stop] = rng.poisson(1000, (stop - start, args.side, args.side))
                movie.flush()
                del movie
                paths.append(str(path))
            completed = subprocess.run(
                [sys.executable, __file__, "--side", str(args.side), "--measure", *paths],
                capture_output=True, text=True, check=True,
            )
            rows.append(json.loads(completed.stdout.strip().splitlines()[-1]))

    base = rows[0]
    print("| frames (2 runs) | movie MB (float32) | peak anon MB | peak RSS MB | frames/s |"
          " anon vs smallest | movie vs smallest |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['frames']} | {row['movie_mb']:.0f} | {row['peak_anon_mb']:.0f} |"
            f" {row['peak_rss_mb']:.0f} | {row['fps']:.0f} |"
            f" {row['peak_anon_mb'] / base['peak_anon_mb']:.2f}x |"
            f" {row['movie_mb'] / base['movie_mb']:.0f}x |"
        )


if __name__ == "__main__":
    main()
