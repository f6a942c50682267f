"""
Scaling out: a grid search on a Dask cluster
============================================

Everything in skvarae that takes ``n_jobs`` runs through :mod:`joblib`, and so does
scikit-learn's :class:`~sklearn.model_selection.GridSearchCV`. Inside
``with joblib.parallel_backend("dask"):`` those jobs become tasks of a
`Dask <https://www.dask.org>`_ cluster: the candidate fits of a grid search spread over
its workers, and so do the permutations of
:meth:`~skvarae.SparseVARAutoencoder.compare_sequences`.

This example starts a small local cluster, in this process, so that it runs anywhere. On
a real cluster, replace ``Client(processes=False)`` by ``Client("tcp://scheduler:8786")``
(or a ``dask_jobqueue`` cluster on an HPC system) and install skvarae on every worker. It
needs ``pip install "dask[distributed]"``; without it, it prints a note and does nothing.
"""

# %%
# Is Dask installed?
# ------------------
try:
    from dask.distributed import Client
except ImportError:
    Client = None
    print(
        "This example needs dask.distributed: pip install 'dask[distributed]'. "
        "Nothing to run."
    )

# %%
# Data and model
# --------------
# Eight short runs, four per condition; the grid search uses the first four. The settings
# are tiny: the point here is where the work runs, not the fit.
import joblib
from sklearn.model_selection import GridSearchCV, KFold

from skvarae import SparseVARAutoencoder, make_calcium_movies

data = make_calcium_movies(n_runs=8, n_frames=60, frame_shape=(32, 32), random_state=0)
X = data.movies
model = SparseVARAutoencoder(
    latent_channels=2,
    base_channels=4,
    window=30,
    batch_size=2,
    learning_rate=1e-2,
    max_epochs=2,
    random_state=0,
)

# %%
# Run the search and the test on the cluster
# ------------------------------------------
# ``n_jobs=-1`` asks for as many jobs as the backend offers: with the Dask backend, as many
# as the cluster has worker threads. Large arguments (the movies) are sent to the workers
# once. With paths instead of arrays (see :doc:`/data_contract`) only the file names
# travel, provided every worker sees the same file system.
if Client is not None:
    client = Client(processes=False, dashboard_address=None)
    print(client)
    with joblib.parallel_backend("dask"):
        search = GridSearchCV(
            model, {"alpha": [0.003, 0.03]}, cv=KFold(n_splits=2), n_jobs=-1
        ).fit(X[:4])
        result = search.best_estimator_.compare_sequences(
            X[data.conditions == 0], X[data.conditions == 1], n_jobs=-1, random_state=0
        )
    client.close()
    print("best alpha:", search.best_params_["alpha"])
    print("mean held-out R² per alpha:", search.cv_results_["mean_test_score"].round(3))
    print(result)
