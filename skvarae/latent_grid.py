"""Choosing the latent grid from the size of the cells.

A latent of the convolutional encoder reads one tile of the frame (its stride is ``2 ** n_layers``
pixels, see :func:`skvarae.network.latent_geometry`). A tile that covers several cells cannot tell
a driver from its neighbour; a tile much smaller than a cell splits the cell over several latents
that predict each other (its persistence, not driving) and multiplies the number of latents
d, and with it the cost of every LARS fit (d lasso problems of d regressors per run).

The rule here: the tile side is the smallest power of two that is at least the cell diameter,
so that a soma fits in about one tile. On simulated movies (40x40 pixels, 16 cells of radius 3,
"two_photon" preset, a fixed encoder of block means standing for the tiles) the driver AUC of
the contribution map among cell pixels was best for tiles of 8 pixels, the diameter rounded up
(``docs/evidence.md``, "Latent grid").
"""

import math

from ._validation import check_frame_shape, check_real

__all__ = ["tile_side_for_cells", "max_latent_side_for_cells"]


def _check_radius(cell_radius, caller_name):
    return check_real(cell_radius, "cell_radius", min_val=0.0, closed="neither",
                      caller_name=caller_name)


def tile_side_for_cells(cell_radius):
    """Side in pixels of the frame tile read by one latent: a power of two >= the cell diameter.

    Parameters
    ----------
    cell_radius : float
        Typical soma radius in pixels (> 0).

    Returns
    -------
    side : int
        ``2 ** max(1, ceil(log2(2 * cell_radius)))``: at least 2 (one stride-2 layer).

    Examples
    --------
    >>> tile_side_for_cells(3.0), tile_side_for_cells(4.0), tile_side_for_cells(5.0)
    (8, 8, 16)
    """
    diameter = 2.0 * _check_radius(cell_radius, "tile_side_for_cells")
    return 2 ** max(1, math.ceil(math.log2(diameter) - 1e-9))


def max_latent_side_for_cells(frame_shape, cell_radius=4.0):
    """``max_latent_side`` that gives latent tiles about one cell wide.

    Parameters
    ----------
    frame_shape : tuple of two ints
        (height, width) of a frame in pixels.
    cell_radius : float, default=4.0
        Typical soma radius in pixels (> 0). The default is that of the real two-photon sample
        movie measured for the simulator's ``"two_photon"`` preset (somata of about 40-50
        pixels at 128x128).

    Returns
    -------
    max_latent_side : int
        ``ceil(max(height, width) / tile_side_for_cells(cell_radius))``, to pass as
        ``SparseVARAutoencoder(max_latent_side=...)``; the encoder then uses
        ``log2(tile side)`` stride-2 layers (fewer if the frame is smaller than one tile).

    Raises
    ------
    ValueError
        If ``frame_shape`` is not two positive integers or ``cell_radius`` is not a positive
        number (``InvalidParameterError``, a ``ValueError``).

    Examples
    --------
    >>> max_latent_side_for_cells((40, 40), cell_radius=3.0)
    5
    >>> max_latent_side_for_cells((128, 128))
    16
    >>> from skvarae.network import latent_geometry
    >>> latent_geometry((40, 40), max_latent_side_for_cells((40, 40), cell_radius=3.0))[2]
    (5, 5)
    """
    frame_shape = check_frame_shape(frame_shape)
    _check_radius(cell_radius, "max_latent_side_for_cells")
    tile = tile_side_for_cells(cell_radius)
    return max(1, math.ceil(max(frame_shape) / tile))
