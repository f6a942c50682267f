"""skvarae: sparse VAR (LARS-lasso) inside a convolutional autoencoder, for calcium imaging.

Public API
----------
SparseVARAutoencoder
    The scikit-learn estimator.
lasso_lars
    Batched, differentiable LARS-lasso solver (torch).
fit_var
    Sparse VAR(p) per sequence, differentiable (torch).
make_calcium_movies
    Simulated calcium-imaging movies with known sparse dynamics.
compare_sequences, PermutationTestResult
    Permutation test: do two sets of runs differ in their dynamics?
read_movie
    Read a TIFF stack, a folder of TIFF frames or a ``.npy`` file as one run.
"""

__version__ = "0.1.0.dev0"

from .datasets import make_calcium_movies
from .estimator import SparseVARAutoencoder
from .io import read_movie
from .lars import lasso_lars
from .stats import PermutationTestResult, compare_sequences
from .var import fit_var

__all__ = [
    "PermutationTestResult",
    "SparseVARAutoencoder",
    "compare_sequences",
    "__version__",
    "fit_var",
    "lasso_lars",
    "make_calcium_movies",
    "read_movie",
]
