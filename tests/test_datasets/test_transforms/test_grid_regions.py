"""GridRegions: PLRC's grid of regions."""
import numpy as np

import ccop_plugin  # noqa: F401
from ccop_plugin.datasets.transforms.grid_regions import GridRegions


# ------------------------------------------------------------- PLRC
def test_grid_regions():
    res = GridRegions(4).transform(dict(img=np.zeros((40, 80, 3), np.uint8)))
    p = res['proposals']
    assert p.shape == (16, 4) and p.dtype == np.float32
    assert p[0].tolist() == [0, 0, 20, 10]
    assert p[5].tolist() == [20, 10, 40, 20]  # row 1, col 1
    assert p[15].tolist() == [60, 30, 80, 40]
