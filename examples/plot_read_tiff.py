"""
Movies from TIFF files
======================

Two-photon microscopes write movies as multi-page TIFF stacks, usually in ``uint16``. This
example writes simulated runs as such files into a temporary folder, reads them back with
:func:`skvarae.io.read_runs`, and passes the file names straight to
:meth:`~skvarae.SparseVARAutoencoder.fit`: the estimator accepts paths wherever it accepts
arrays, and reads each file as one run (memory-mapped where the file allows it, so movies
larger than memory work).
"""

# %%
# Write one TIFF stack per run
# ----------------------------
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from skvarae import SparseVARAutoencoder, make_calcium_movies
from skvarae.io import read_runs
from skvarae.plotting import plot_contribution_map_from_estimator

data = make_calcium_movies(n_runs=4, n_frames=120, frame_shape=(32, 32), random_state=0)
folder = Path(tempfile.mkdtemp(prefix="skvarae-example-"))
for index, movie in enumerate(data.movies):
    # photon counts as a microscope would store them: unsigned 16-bit integers
    counts = np.clip(np.round(movie * 1000), 0, np.iinfo(np.uint16).max).astype(np.uint16)
    tifffile.imwrite(folder / f"run{index:02d}.tif", counts)
print(sorted(path.name for path in folder.iterdir()))

# %%
# Read them back
# --------------
# :func:`~skvarae.io.read_runs` takes a path, a glob pattern or a list of them (sorted
# naturally: ``run2`` before ``run10``) and returns one array per run, in the file's dtype.
# Uncompressed stacks are memory-mapped: nothing is loaded until frames are used.
runs = read_runs(str(folder / "run*.tif"))
for run in runs:
    print(run.shape, run.dtype, "memory-mapped" if isinstance(run, np.memmap) else "in memory")

# %%
# Fit on the paths
# ----------------
# The same files can go straight to the estimator. Integer movies are converted to float
# batch by batch during training.
paths = sorted(folder.glob("run*.tif"))
model = SparseVARAutoencoder(
    alpha=0.01,
    latent_channels=2,
    base_channels=4,
    window=50,
    batch_size=2,
    learning_rate=1e-2,
    max_epochs=8,
    random_state=0,
).fit(paths)
print(f"score on the files: {model.score(paths):.3f}")
print("mean frame:", model.mean_frame_.shape, "in the files' units (counts)")

# %%
# Contribution map of the files' runs (the training runs' maps, computed during ``fit``),
# with the true driver cells outlined in cyan.
fig = plot_contribution_map_from_estimator(model)
fig.axes[0].contour(data.driver_mask, levels=[0.5], colors="cyan", linewidths=1)

# %%
# The command line does the same from a shell (see :doc:`/cli`)::
#
#     skvarae fit run*.tif --out model.pt
#     skvarae map model.pt run*.tif --out map.png
#
# Clean up: release the memory maps, then remove the folder.
del runs
shutil.rmtree(folder, ignore_errors=True)
