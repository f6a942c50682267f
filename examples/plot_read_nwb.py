"""
Movies from NWB files
=====================

Neurodata Without Borders (NWB) is the archive format of neurophysiology: two-photon data on
the public archives (DANDI) are NWB files whose ``acquisition`` holds a ``TwoPhotonSeries``.
This example writes two simulated runs as such files with pynwb, reads one back with
:func:`skvarae.read_movie`, and fits :class:`~skvarae.SparseVARAutoencoder` on the two
paths. Reading NWB files needs pynwb: ``pip install "skvarae[nwb]"``.

NWB stores an image series as (frames, x, y), that is (frames, width, height). skvarae
returns runs as (frames, height, width), swapping the two spatial axes as roiextractors'
``NwbImagingExtractor`` does, so that an NWB file written by neuroconv or roiextractors reads
back the right way round. The frames here are not square, so the swap shows.
"""

# %%
# Write one NWB file per run
# --------------------------
import datetime
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hdmf.backends.hdf5.h5_utils import H5DataIO
from pynwb import NWBHDF5IO, NWBFile
from pynwb.ophys import OpticalChannel, TwoPhotonSeries

from skvarae import SparseVARAutoencoder, make_calcium_movies, read_movie
from skvarae.plotting import plot_contribution_map_from_estimator

data = make_calcium_movies(n_runs=2, n_frames=80, frame_shape=(24, 40), random_state=0)
folder = Path(tempfile.mkdtemp(prefix="skvarae-nwb-"))
paths = []
for index, movie in enumerate(data.movies):
    counts = np.clip(np.round(movie * 1000), 0, np.iinfo(np.uint16).max).astype(np.uint16)
    nwbfile = NWBFile(
        session_description=f"simulated run {index}",
        identifier=f"skvarae-example-{index}",
        session_start_time=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    )
    device = nwbfile.create_device(name="Microscope")
    plane = nwbfile.create_imaging_plane(
        name="ImagingPlane", device=device, imaging_rate=30.0, description="simulated",
        optical_channel=OpticalChannel(name="Green", description="GCaMP", emission_lambda=510.0),
        excitation_lambda=920.0, indicator="GCaMP6f", location="V1",
    )
    stored = counts.transpose(0, 2, 1)  # NWB's (frames, x, y)
    nwbfile.add_acquisition(
        TwoPhotonSeries(
            name="TwoPhotonSeries",
            # compressed in chunks of frames, as archives store movies
            data=H5DataIO(stored, compression="gzip", chunks=(10, *stored.shape[1:])),
            imaging_plane=plane,
            rate=30.0,
            unit="n.a.",
        )
    )
    path = folder / f"sub-01_run-{index}_ophys.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    paths.append(path)
print([path.name for path in paths])

# %%
# Read one back
# -------------
# :func:`~skvarae.read_movie` finds the one image series in the file's acquisition (with
# several, name one with ``series="..."``). A compressed dataset cannot be memory-mapped, so
# the run is a :class:`~skvarae.io.LazyMovie`: nothing is read until frames are sliced,
# and slices come back as NumPy arrays in (frames, height, width) order.
movie = read_movie(paths[0])
print(movie)
print("first frames:", movie[:5].shape, movie.dtype)
expected = np.clip(np.round(data.movies[0] * 1000), 0, 65535).astype(np.uint16)
print("equal to the simulated movie:", np.array_equal(np.asarray(movie), expected))
movie.close()

# %%
# Fit on the paths
# ----------------
# The estimator (and ``skvarae fit *.nwb`` on the command line) reads each file as one run,
# batch by batch during training.
model = SparseVARAutoencoder(
    alpha=0.01,
    latent_channels=2,
    base_channels=4,
    window=40,
    batch_size=2,
    learning_rate=1e-2,
    max_epochs=4,
    random_state=0,
).fit(paths)
print("frame shape:", model.frame_shape_, "(height, width);", model.coef_.shape[0], "runs")
print(f"{model.n_iter_} epochs; a real analysis trains longer (see the quick start)")

# %%
# Contribution map of the two runs, over the mean frame, with the true driver cells
# outlined in cyan.
fig = plot_contribution_map_from_estimator(model)
fig.axes[0].contour(data.driver_mask, levels=[0.5], colors="cyan", linewidths=1)

# %%
# Clean up.
shutil.rmtree(folder, ignore_errors=True)
