"""
Choosing the ℓ1 penalty ``alpha`` by cross-validation
=====================================================

``alpha`` sets how sparse the per-run VAR matrices are. The latents are standardised per
sequence before every VAR fit, so ``alpha`` does not depend on the units of the movie or of
the latents, and one grid suits most data sets.

:meth:`~skvarae.SparseVARAutoencoder.score` is the held-out one-step forecast R² of each
run's last quarter, with no labels involved, so scikit-learn's
:class:`~sklearn.model_selection.GridSearchCV` can choose ``alpha`` directly. Each run is
one sample, so the validation runs are whole runs that the candidate's network never saw.

To run in seconds, this example trains tiny networks for five epochs, on one split of six
runs. The :doc:`evidence page </evidence>` has a λ sweep with properly trained models.
"""

# %%
# Data and model
# --------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, PredefinedSplit

from skvarae import SparseVARAutoencoder, make_calcium_movies

data = make_calcium_movies(n_runs=6, n_frames=120, frame_shape=(32, 32), random_state=0)
X = data.movies  # 6 runs: one sample per run

model = SparseVARAutoencoder(
    latent_channels=2,
    base_channels=4,
    window=50,
    batch_size=2,
    learning_rate=1e-2,
    max_epochs=5,
    random_state=0,
)

# %%
# The search
# ----------
# In everyday use the call is just ``GridSearchCV(model, {"alpha": alphas}, cv=5).fit(X)``:
# ``cv=5`` holds out a fifth of the runs in turn (use
# :class:`~sklearn.model_selection.GroupKFold` to hold out whole mice or sessions), the
# search maximises ``score``, and it then refits the best ``alpha`` on all runs
# (``search.best_estimator_``).
#
# To save time, this example uses a single split (train on runs 0-3, validate on runs 4
# and 5), skips the final refit (``refit=False``), and records two scorers: the model's own
# ``score``, which picks ``alpha``, and, as a diagnostic, the fraction of zero VAR
# coefficients on the validation runs.


def forecast_r2(estimator, X, y=None):
    """The estimator's own score: held-out one-step forecast R²."""
    return estimator.score(X)


def sparsity(estimator, X, y=None):
    """Fraction of zero VAR coefficients, refitted on each held-out run."""
    return float(np.mean(estimator.transform(X) == 0))


alphas = [0.003, 0.03, 0.3]
search = GridSearchCV(
    model,
    {"alpha": alphas},
    cv=PredefinedSplit([-1, -1, -1, -1, 0, 0]),  # runs 4 and 5 are the validation runs
    scoring={"score": forecast_r2, "sparsity": sparsity},
    refit=False,
)
search.fit(X)

results = search.cv_results_
best = int(np.argmax(results["mean_test_score"]))
for alpha, score, zeros in zip(
    alphas, results["mean_test_score"], results["mean_test_sparsity"]
):
    print(f"alpha={alpha:<6} held-out R²={score:+.3f}  zero coefficients={zeros:.0%}")
print(f"chosen alpha: {alphas[best]}")

# %%
# Score and sparsity against ``alpha``
# ------------------------------------
# Larger ``alpha`` gives sparser VAR matrices. Too large, and the VAR forecasts little more
# than each latent's mean; too small, and it spends coefficients on noise. Two checks: the
# best score should be clearly positive, and clearly above the score of the largest
# ``alpha`` (a nearly empty VAR). If it is not, the networks are under-trained (raise
# ``max_epochs``, give them more runs) rather than ``alpha`` being wrong.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.plot(alphas, results["mean_test_score"], "o-", label="held-out forecast R²")
ax.axvline(alphas[best], color="grey", linestyle=":", label="chosen alpha")
ax.set_xscale("log")
ax.set_xlabel("alpha")
ax.set_ylabel("held-out forecast R² (validation runs)")
twin = ax.twinx()
twin.plot(alphas, results["mean_test_sparsity"], "s--", color="tab:orange")
twin.set_ylabel("fraction of zero VAR coefficients", color="tab:orange")
twin.set_ylim(0, 1)
ax.legend(loc="lower left")
ax.set_title("choosing alpha on held-out runs")

# %%
# With the default ``refit=True``, ``search.best_estimator_`` is the model refitted on all
# runs at the chosen ``alpha``; equivalently:
#
# .. code-block:: python
#
#     best_model = model.set_params(alpha=alphas[best]).fit(X)
