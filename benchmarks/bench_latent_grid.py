"""How fine must the latent grid be for the driving map to find the driver cells?

A latent of the convolutional encoder reads one tile of the frame. This benchmark isolates the
effect of the tile size from training: the encoder is fixed to *block means* (latent (a, b) is
the mean of the (a, b)-th tile of ``tile x tile`` pixels of the standardised dynamic part, a
transparent stand-in for a trained encoder with that stride), a sparse VAR is fitted per run on
its latents with :func:`skvarae.var.fit_var`, and the library's
:func:`skvarae.contribution.contribution_maps` gives the driving map (``kind="driving"``) and the
former definition (``kind="coefficient"``). For each tile size it prints the ROC AUC of the
driver pixels among all cell pixels (the map of all runs) and of the drivers whose outgoing
couplings change among all cell pixels (``|Ω(condition 0) - Ω(condition 1)|``), per seed and
their mean.

Data: the "hard" case of ``bench_evidence.py --maps`` (40x40 pixels, 16 cells of radius 3,
i.e. diameter about 6, 3 drivers, 6 targets, the "two_photon" preset, bleaching 1e-4, jitter
0.2 pixel), 8 runs of 256 frames, ``condition_effect=0.5``.

Usage::

    python benchmarks/bench_latent_grid.py              # 3 seeds, 7 tile sizes: ~3 min
    python benchmarks/bench_latent_grid.py --tiles 4 8 16 --seeds 0 1 2 3 4
"""

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from skvarae import make_calcium_movies
from skvarae.contribution import contribution_maps
from skvarae.latent_grid import tile_side_for_cells
from skvarae.var import fit_var

CASE = dict(frame_shape=(40, 40), n_cells=16, n_drivers=3, n_targets=6, cell_radius=3.0,
            preset="two_photon", bleaching=1e-4, jitter=0.2)


class BlockMeans(nn.Module):
    """Latent (a, b) = mean of the (a, b)-th tile (the last tiles may be partial)."""

    def __init__(self, tile):
        super().__init__()
        self.tile = tile

    def forward(self, frames):
        return nn.functional.avg_pool2d(frames[:, None], self.tile, ceil_mode=True).flatten(1)


def changed_driver_mask(data):
    change = np.abs(data.coef[0] - data.coef[1])
    np.fill_diagonal(change, 0.0)
    changed = np.flatnonzero(change.sum(axis=0) > 0)
    return (data.footprints[changed] > 0.5).any(axis=0)


def aucs(per_run, data):
    cells = (data.footprints > 0.5).any(axis=0)
    a, b = data.conditions == 0, data.conditions == 1
    omega = per_run.mean(axis=0)
    difference = np.abs(per_run[a].mean(axis=0) - per_run[b].mean(axis=0))
    return (roc_auc_score(data.driver_mask[cells], omega[cells]),
            roc_auc_score(changed_driver_mask(data)[cells], difference[cells]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[3, 4, 6, 8, 10, 14, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--frames", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    results = {}
    for seed in args.seeds:
        data = make_calcium_movies(n_runs=args.runs, n_frames=args.frames, random_state=seed,
                                   **CASE)
        movies = data.movies.astype(np.float64)
        mean = movies.mean(axis=(0, 1))
        scale = float(np.sqrt(np.mean((movies - mean) ** 2)))
        for tile in args.tiles:
            encoder = BlockMeans(tile)
            coef = np.stack([
                fit_var(encoder(torch.from_numpy((run - mean) / scale)), args.alpha)[0].numpy()
                for run in movies
            ])
            for kind in ("driving", "coefficient"):
                maps = contribution_maps(encoder, list(movies), coef, offset=mean, scale=scale,
                                         kind=kind)
                results.setdefault((tile, kind), []).append(aucs(maps, data))
    print(f"Block-mean encoders on the 'hard' case {CASE}, {args.runs} runs x {args.frames} "
          f"frames, alpha={args.alpha}, seeds {args.seeds}. The rule of "
          f"skvarae.latent_grid picks tiles of {tile_side_for_cells(CASE['cell_radius'])} "
          "pixels for this cell radius.\n")
    print("| tile (pixels) | latents | driver AUC among cells, driving | changed-driver AUC, "
          "driving | driver AUC, coefficient | changed-driver AUC, coefficient |")
    print("|---|---|---|---|---|---|")
    side = CASE["frame_shape"][0]
    for tile in args.tiles:
        cells = []
        for kind in ("driving", "coefficient"):
            values = np.array(results[(tile, kind)])
            for column in range(2):
                per_seed = ", ".join(f"{v:.2f}" for v in values[:, column])
                cells.append(f"{values[:, column].mean():.3f} ({per_seed})")
        n_latents = int(np.ceil(side / tile)) ** 2
        print(f"| {tile} | {n_latents} | " + " | ".join(cells) + " |")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
