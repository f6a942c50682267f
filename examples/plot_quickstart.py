"""
Quickstart: fit, score and map a simulated movie
================================================

Simulate calcium-imaging runs whose ground truth is known, fit a
:class:`~skvarae.SparseVARAutoencoder`, check its held-out forecasts and the sparsity of
its VAR matrices, and compare its contribution map with the true driver cells.

The network here is deliberately small and trained for a few epochs so that the example
runs in seconds on a laptop CPU. On real movies keep the defaults (and a GPU if you have
one).
"""

# %%
# Simulated movies
# ----------------
# :func:`~skvarae.make_calcium_movies` draws a static anatomy (background, blood vessels,
# cell bodies) and makes a few *driver* cells excite *target* cells through a sparse VAR(1).
# A run does not depend on the runs after it, so the first four runs are used for training
# and the last two are held out.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score

from skvarae import SparseVARAutoencoder, make_calcium_movies
from skvarae.plotting import (
    plot_coef_from_estimator,
    plot_contribution_map_from_estimator,
    plot_forecast_from_estimator,
    plot_history_from_estimator,
)

data = make_calcium_movies(n_runs=6, n_frames=120, frame_shape=(32, 32), random_state=0)
X_train, X_test = data.movies[:4], data.movies[4:]
print("movies:", data.movies.shape, data.movies.dtype)
print("driver cells:", data.drivers, "target cells:", data.targets)

fig, axes = plt.subplots(1, 3, figsize=(9, 3), layout="constrained")
axes[0].imshow(X_train[0, 0], cmap="gray")
axes[0].set_title("frame 0 of run 0")
axes[1].imshow(data.anatomy, cmap="gray")
axes[1].set_title("static anatomy")
axes[2].imshow(data.driver_mask, cmap="gray")
axes[2].set_title("true driver cells")
for ax in axes:
    ax.set_axis_off()

# %%
# Fit
# ---
# ``X`` is a sequence of runs: here a 4-D array (n_runs, n_frames, height, width). One
# sample is one run. The small settings (``base_channels``, ``window``, ``batch_size``,
# ``learning_rate``, ``max_epochs``) only make the example fast.
model = SparseVARAutoencoder(
    alpha=0.01,
    latent_channels=2,
    base_channels=4,
    window=50,
    batch_size=2,
    learning_rate=1e-2,
    max_epochs=10,
    random_state=0,
)
start = time.perf_counter()
model.fit(X_train)
print(f"fitted in {time.perf_counter() - start:.1f} s, {model.n_iter_} epochs on {model.device_}")
print("latent map (channels, h, w):", model.latent_shape_)
print("VAR matrices coef_ (n_runs, lags, d, d):", model.coef_.shape)

# %%
# The training losses: ``reconstruction`` (decoder of the encoded frame) and ``forecast``
# (decoder of the VAR's one-step forecast of the latent), in standardised units.
plot_history_from_estimator(model)

# %%
# Held-out forecasts
# ------------------
# :meth:`~skvarae.SparseVARAutoencoder.score` fits each run's VAR on its first three
# quarters and forecasts the last quarter one step ahead: the R² of the dynamic part of the
# frames (1 is perfect, 0 is no better than the run's mean). It needs no labels, which is
# what makes ``alpha`` selectable by cross-validation (see the next example).
print(f"held-out forecast R², training runs: {model.score(X_train):.3f}")
print(f"held-out forecast R², new runs:      {model.score(X_test):.3f}")

# %%
# The latents of a new run and their one-step forecasts by its own sparse VAR.
plot_forecast_from_estimator(model, X_test[0], dims=[0, 1, 2])

# %%
# Sparse VAR matrices
# -------------------
# ``coef_[r, k - 1][i, j]`` is the effect of latent ``j`` at lag ``k`` on latent ``i`` in
# training run ``r``. The lasso sets most of them to exactly zero.
print(f"zero VAR coefficients: {np.mean(model.coef_ == 0):.0%}")
plot_coef_from_estimator(model)

# %%
# Contribution map
# ----------------
# The contribution map Ω says how much each pixel *drives* the learned dynamics: how much its
# activity feeds latents that predict the other latents more than they are predicted by them
# (a latent's own persistence does not count). The true driver cells are outlined in cyan.
# The ROC AUC among the pixels of all cells measures how well Ω singles out the drivers from
# the other active cells (0.5 is chance). ``kind="coefficient"`` gives the former map, all
# outgoing VAR mass, which lights up every active cell.
omega = model.contribution_map()
cells = (data.footprints > 0.5).any(axis=0)
auc = roc_auc_score(data.driver_mask[cells], omega[cells])
fig = plot_contribution_map_from_estimator(
    model, title=f"contribution map Ω (driver AUC among cells {auc:.2f})"
)
fig.axes[0].contour(data.driver_mask, levels=[0.5], colors="cyan", linewidths=1)
print(f"ROC AUC of Ω for the driver pixels among cell pixels: {auc:.2f}")

# %%
# The map of new runs refits each run's VAR on its latents:
omega_test = model.contribution_map(X_test)
print("map of the held-out runs:", omega_test.shape)
