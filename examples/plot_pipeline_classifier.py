"""
Sparse VAR features in a scikit-learn pipeline
==============================================

:meth:`~skvarae.SparseVARAutoencoder.transform` returns, for each run, its sparse VAR
matrices refitted on the run's latents and flattened: ``lags * d * d`` interpretable
features per run. Because ``fit`` ignores ``y``, the autoencoder can sit first in a
supervised :class:`~sklearn.pipeline.Pipeline`. Here a logistic regression learns to tell
the two simulated conditions apart from these features, and
:func:`~sklearn.model_selection.cross_validate` estimates its accuracy on held-out runs. The
autoencoder is refitted inside every fold, so no information leaks from the test runs.
"""

# %%
# Data and pipeline
# -----------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvarae import SparseVARAutoencoder, make_calcium_movies

data = make_calcium_movies(
    n_runs=8, n_frames=150, frame_shape=(32, 32), condition_effect=1.0, random_state=0
)
X, y = data.movies, data.conditions  # one label per run
print("X:", X.shape, "labels:", y)

pipeline = make_pipeline(
    SparseVARAutoencoder(
        alpha=0.01,
        latent_channels=2,
        base_channels=4,
        window=50,
        batch_size=2,
        learning_rate=1e-2,
        max_epochs=4,
        random_state=0,
    ),
    StandardScaler(),
    LogisticRegression(C=0.1),
)

# %%
# Cross-validation by runs
# ------------------------
# Each run is one sample, so every fold trains on whole runs and tests on others. With
# eight runs, two folds of four test runs each: the accuracy is a coarse estimate (each run
# is 25 % of a fold), which is why this is a demonstration rather than a benchmark.
cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
scores = cross_validate(pipeline, X, y, cv=cv, return_estimator=True)
print("accuracy per fold:", scores["test_score"])
print(f"mean accuracy: {scores['test_score'].mean():.2f} (chance: 0.50)")

# %%
# Which VAR coefficients separate the conditions?
# -----------------------------------------------
# The logistic regression's weights live in the space of the VAR matrices: reshaped to
# (lags, d, d), entry ``[k - 1, i, j]`` weighs the effect of latent ``j`` at lag ``k`` on
# latent ``i``. Latent coordinates are specific to each fitted network, so the weights of
# different folds are not comparable; the first fold is shown.
first = scores["estimator"][0]
autoencoder, classifier = first[0], first[-1]
d = int(np.prod(autoencoder.latent_shape_))
weights = classifier.coef_.reshape(autoencoder.lags, d, d)
limit = np.abs(weights).max()
fig, ax = plt.subplots(figsize=(4.5, 4), layout="constrained")
shown = ax.imshow(weights[0], cmap="RdBu_r", vmin=-limit, vmax=limit)
fig.colorbar(shown, ax=ax, label="weight towards 'novel'")
ax.set_xlabel("from latent j")
ax.set_ylabel("to latent i")
ax.set_title("logistic weights on A₁ (fold 1)")
