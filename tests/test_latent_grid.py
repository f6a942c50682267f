import numpy as np
import pytest

from skvarae.latent_grid import max_latent_side_for_cells, tile_side_for_cells
from skvarae.network import latent_geometry


@pytest.mark.parametrize(
    "radius, tile", [(0.5, 2), (1.0, 2), (1.5, 4), (2.0, 4), (3.0, 8), (4.0, 8), (4.1, 16)]
)
def test_tile_is_the_smallest_power_of_two_covering_the_diameter(radius, tile):
    assert tile_side_for_cells(radius) == tile
    assert tile >= 2 * radius and (tile == 2 or tile / 2 < 2 * radius)


@pytest.mark.parametrize("shape", [(40, 40), (32, 48), (128, 128), (7, 5), (100, 60)])
@pytest.mark.parametrize("radius", [1.0, 3.0, 4.0, 6.0])
def test_the_network_then_reads_tiles_of_that_side(shape, radius):
    side = max_latent_side_for_cells(shape, radius)
    n_layers, padded, latent = latent_geometry(shape, side)
    tile = tile_side_for_cells(radius)
    # Tiles of the chosen side, unless the whole frame fits into fewer layers.
    assert 2**n_layers == tile or max(shape) <= 2 ** (n_layers + 1) <= tile
    assert max(latent) == side
    assert padded[0] >= shape[0] and padded[1] >= shape[1]


def test_invalid_arguments():
    for radius in (0, -1.0, np.inf, True, "3"):
        with pytest.raises(ValueError, match="cell_radius"):
            tile_side_for_cells(radius)
    for shape in ((40,), (40, 0), "40x40", (40.0, 40), (True, 3)):
        with pytest.raises(ValueError, match="frame_shape"):
            max_latent_side_for_cells(shape, 3.0)
