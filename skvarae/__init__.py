"""skvarae: sparse VAR (LARS-lasso) inside a convolutional autoencoder.

Public API
----------
lasso_lars
    Batched, differentiable LARS-lasso solver (torch).
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
