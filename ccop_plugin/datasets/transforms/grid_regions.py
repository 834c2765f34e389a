"""``GridRegions``: PLRC's pseudo-regions as proposals."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class GridRegions(BaseTransform):
    """Emit a ``grid`` x ``grid`` partition of the image as ``proposals``.

    PLRC (Bai et al., CVPR 2022) uses a 4x4 grid of pseudo-regions carried
    through the crops. Put this before ``BoxAwareMultiView`` (in place of
    ``LoadProposals``) so the cells follow every geometric step; rows are in
    raster order (row-major), ``xyxy`` float32 image pixels.

    Args:
        grid (int): Cells per side. Defaults to 4.
    """

    def __init__(self, grid: int = 4) -> None:
        if grid < 1:
            raise ValueError(f'grid must be >= 1, got {grid}')
        self.grid = grid

    def transform(self, results: dict) -> dict:
        """Add the grid cells of the image as proposals.

        Required keys: ``img`` (only its height and width are read).

        Added keys: ``proposals`` (float32 ``(grid * grid, 4)`` ``xyxy``
        image pixels, raster order); an existing value is replaced.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict with ``proposals``.
        """
        h, w = results['img'].shape[:2]
        g = self.grid
        xs = np.linspace(0, w, g + 1, dtype=np.float32)
        ys = np.linspace(0, h, g + 1, dtype=np.float32)
        boxes = [[xs[j], ys[i], xs[j + 1], ys[i + 1]] for i in range(g)
                 for j in range(g)]
        results['proposals'] = np.asarray(boxes, np.float32).reshape(-1, 4)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(grid={self.grid})'
