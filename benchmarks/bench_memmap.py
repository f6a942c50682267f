"""Fitting on memory-mapped movies larger than the memory the fit may use.

Writes float32 movies of 2 runs x N frames x 64x64 as ``.npy`` files (in chunks: never all in
memory), then, in a fresh process per size, fits ``SparseVARAutoencoder`` on the memory maps
(one epoch, plus the per-run VAR fits and contribution maps that ``fit`` computes) and encodes
every frame again (``encode``, inference only). The fitting process runs under a memory cap:

- always ``RLIMIT_DATA = --cap-mb`` (Linux): the process cannot hold more private memory than
  the cap, so any copy of the movie into memory would fail with a ``MemoryError``; the memory
  map itself is file-backed and not counted;
- with ``--cgroup`` (Linux, needs permission to create a memory cgroup, e.g. root), also a memory
  cgroup with the same limit, which counts *everything*, including the pages of the mapped file:
  the kernel must evict them as the fit streams through the movie.

Reported per size (the baseline is the smallest movie, measured in the same run):

- ``movie MiB``: size of the ``.npy`` files, and ``x cap``: movie size / cap;
- ``peak anon MiB``: peak anonymous resident memory (RssAnon, sampled every 20 ms): what the
  process itself holds;
- ``peak RSS MiB``: ``ru_maxrss`` from ``resource.getrusage``, which also counts the resident
  pages of the shared libraries (torch: some 300 MiB) and of the mapped movie (page cache that
  the kernel reclaims under pressure);
- ``cgroup peak MiB`` (with ``--cgroup``): the peak memory charged to the fit's cgroup, its
  private memory plus the movie pages it read (not the shared libraries, already loaded by
  other processes): what the cap actually limits;
- frames/s of the training epoch, of the whole ``fit``, and of ``encode``.

The model is small by default (``--base-channels 4 --latent-channels 1 --max-latent-side 2``,
batches of 1 window of 64 frames) so that a multi-GiB movie fits within minutes on a CPU; memory
per step grows with ``batch_size x window x`` frame size and with the network, not with movie
length (the process's peak memory still did in the last run, through the C allocator's heap:
see docs/scaling.rst). Pass ``--default-model`` to use the estimator's defaults instead.

    python benchmarks/bench_memmap.py            # movies of 0.25, 1, 3 GiB; 1536 MiB cap
    python benchmarks/bench_memmap.py --cgroup   # the same, also under a memory cgroup
    python benchmarks/bench_memmap.py --quick    # movies of 16 and 64 MiB

(RLIMIT_DATA counts address space reserved, not only memory used: below about 900 MiB,
torch's oneDNN cannot reserve the buffers of its channels-last convolutions and the fitting
process dies of a segmentation fault, and at 1024 MiB ``encode`` runs out of it; so the cap
defaults to 1536 MiB. The cgroup, with the same limit, measures what is actually used.)
"""

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

FRAME_SIDE = 64
RUNS = 2


def _status_mb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def peak_anon_mb(interval=0.02):
    """Sample this process's RssAnon every ``interval`` s while the block runs.

    Yields a dict whose ``"anon"`` entry holds the peak (MiB) once the block has ended.
    """
    peak = {"anon": _status_mb("RssAnon")}
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak["anon"] = max(peak["anon"], _status_mb("RssAnon"))
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak["anon"] = max(peak["anon"], _status_mb("RssAnon"))


def measure(paths, args):
    """Fit and encode the memory-mapped runs; print one JSON line of measurements (child)."""
    cap = args.cap_mb * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    if args.cgroup_procs:
        Path(args.cgroup_procs).write_text(str(os.getpid()))

    import torch

    from skvarae import SparseVARAutoencoder

    torch.set_num_threads(args.threads)
    with peak_anon_mb() as peak:
        runs = [np.load(path, mmap_mode="r") for path in paths]
        n_frames = sum(len(run) for run in runs)
        model_params = dict(max_epochs=1, random_state=0)
        if not args.default_model:
            model_params.update(batch_size=1, window=64, base_channels=4, latent_channels=1,
                                max_latent_side=2)
        model = SparseVARAutoencoder(**model_params)
        start = time.perf_counter()
        model.fit(runs)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        model.encode(runs)
        encode_seconds = time.perf_counter() - start
    print(json.dumps({
        "frames": n_frames,
        "movie_mb": sum(os.path.getsize(path) for path in paths) / 2**20,
        "peak_anon_mb": peak["anon"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "train_fps": n_frames / model.history_[0]["duration"],
        "fit_fps": n_frames / fit_seconds,
        "encode_fps": n_frames / encode_seconds,
        "fit_seconds": fit_seconds,
        "params": model_params,
    }))


@contextlib.contextmanager
def memory_cgroup(limit_bytes):
    """A new child memory cgroup of this process's cgroup, limited to ``limit_bytes``.

    Yields its folder: a process joins by writing its pid to ``cgroup.procs``; read the peak
    memory charged to it with :func:`cgroup_peak_mb`. cgroup v2 (``memory.max``, swap off) and
    v1 (``memory.limit_in_bytes``) are supported.
    """
    entries = Path("/proc/self/cgroup").read_text().splitlines()
    v1 = [line.split(":", 2)[2] for line in entries if line.split(":")[1] == "memory"]
    name = f"skvarae-bench-{os.getpid()}-{time.monotonic_ns()}"
    if v1:
        folder = Path("/sys/fs/cgroup/memory") / v1[0].lstrip("/") / name
        limits = {"memory.limit_in_bytes": limit_bytes}
    else:
        v2 = [line.split(":", 2)[2] for line in entries if line.startswith("0::")]
        folder = Path("/sys/fs/cgroup") / v2[0].lstrip("/") / name
        limits = {"memory.max": limit_bytes, "memory.swap.max": 0}
    folder.mkdir()
    try:
        for name, value in limits.items():
            (folder / name).write_text(str(value))
        yield folder
    finally:
        folder.rmdir()


def cgroup_peak_mb(folder):
    """Peak memory charged to the cgroup (its processes' memory and the file pages they read)."""
    for name in ("memory.max_usage_in_bytes", "memory.peak"):  # v1, v2 (Linux >= 5.19)
        if (folder / name).exists():
            return int((folder / name).read_text()) / 2**20
    return float("nan")


def write_movie(path, n_frames, rng):
    movie = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                      shape=(n_frames, FRAME_SIDE, FRAME_SIDE))
    yy, xx = np.mgrid[:FRAME_SIDE, :FRAME_SIDE]
    anatomy = 1000 + 200 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    for start in range(0, n_frames, 1024):
        stop = min(start + 1024, n_frames)
        movie[start:stop] = rng.poisson(anatomy, (stop - start, FRAME_SIDE, FRAME_SIDE))
    movie.flush()
    del movie
    # Drop the file from the page cache: the fit reads it from disk, and (with --cgroup) its
    # pages are charged to the fitting process's cgroup, not to this one.
    with open(path, "rb") as file:
        os.fsync(file.fileno())
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def torch_threads_default():
    return min(2, os.cpu_count() or 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[8192, 32768, 98304],
                        help="frames per run (2 runs of 64x64 float32; 32768 frames = 1 GiB)")
    parser.add_argument("--cap-mb", type=int, default=1536, help="memory cap of the fit, MiB")
    parser.add_argument("--cgroup", action="store_true",
                        help="also enforce the cap with a memory cgroup (Linux, permissions)")
    parser.add_argument("--default-model", action="store_true",
                        help="the estimator's default network, batch size and window")
    parser.add_argument("--threads", type=int, default=torch_threads_default(),
                        help="torch threads of the fitting process")
    parser.add_argument("--dir", type=Path, default=None,
                        help="folder for the movie files (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--cgroup-procs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure, args)
    if args.quick:
        args.frames = [512, 2048]

    print(f"# bench_memmap: 2 runs x N frames x {FRAME_SIDE}x{FRAME_SIDE} float32, cap "
          f"{args.cap_mb} MiB (RLIMIT_DATA{' + memory cgroup' if args.cgroup else ''}), "
          f"{args.threads} torch thread(s), "
          f"{'default' if args.default_model else 'small'} model", flush=True)
    rng = np.random.default_rng(0)
    rows = []
    with contextlib.ExitStack() as stack:
        folder = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for n_frames in args.frames:
            paths = [str(Path(folder) / f"bench_memmap_{n_frames}_{run}.npy")
                     for run in range(RUNS)]
            for path in paths:
                write_movie(path, n_frames, rng)
            command = [sys.executable, __file__, "--cap-mb", str(args.cap_mb),
                       "--threads", str(args.threads), "--measure", *paths]
            if args.default_model:
                command.append("--default-model")
            with contextlib.ExitStack() as cgroup:
                if args.cgroup:
                    group = cgroup.enter_context(memory_cgroup(args.cap_mb * 2**20))
                    command += ["--cgroup-procs", str(group / "cgroup.procs")]
                try:
                    completed = subprocess.run(command, capture_output=True, text=True)
                finally:
                    for path in paths:
                        os.remove(path)
                cgroup_peak = cgroup_peak_mb(group) if args.cgroup else float("nan")
            if completed.returncode:
                how = (f"killed by signal {-completed.returncode} (a cap too small for torch's "
                       "buffers? raise --cap-mb)" if completed.returncode < 0
                       else f"exit status {completed.returncode}")
                sys.exit(f"fit on {n_frames} frames per run failed, {how}:\n{completed.stderr}")
            rows.append(json.loads(completed.stdout.strip().splitlines()[-1]))
            row = rows[-1]
            row["cgroup_peak_mb"] = cgroup_peak
            print(f"  {row['frames']} frames: {row['movie_mb']:.0f} MiB, peak anon "
                  f"{row['peak_anon_mb']:.0f} MiB, fit {row['fit_seconds']:.0f} s", flush=True)

    base = rows[0]
    print(f"\nmodel: {base['params']}")
    print("| frames (2 runs) | movie MiB | x cap | peak anon MiB | peak RSS MiB | cgroup peak MiB"
          " | training frames/s | fit frames/s | encode frames/s | peak anon vs smallest |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['frames']} | {row['movie_mb']:.0f} | {row['movie_mb'] / args.cap_mb:.2f} |"
            f" {row['peak_anon_mb']:.0f} | {row['peak_rss_mb']:.0f} |"
            f" {row['cgroup_peak_mb']:.0f} | {row['train_fps']:.0f} |"
            f" {row['fit_fps']:.0f} | {row['encode_fps']:.0f} |"
            f" {row['peak_anon_mb'] / base['peak_anon_mb']:.2f}x |"
        )


if __name__ == "__main__":
    main()
