"""Batch-level montage (MCL): canvases of sub-images drawn from the batch."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F


def montage(imgs: torch.Tensor,
            grid: int,
            perm: Optional[torch.Tensor] = None,
            num_canvases: Optional[int] = None
            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tile ``grid`` x ``grid`` nearest-downsampled images per canvas.

    Args:
        imgs (torch.Tensor): ``(B, C, S, S)``; ``S`` divisible by ``grid``.
        grid (int): Sub-images per side (1: the plain images).
        perm (torch.Tensor, optional): Source index of every cell, length
            ``G * grid**2`` (``G`` canvases); defaults to a random
            permutation of the batch, tiled (with repeats) to fill
            ``ceil(B / grid**2)`` canvases.
        num_canvases (int, optional): Without ``perm``: build this many
            canvases from ``randperm(num_canvases * grid**2) mod B`` (as
            ``random_combine_img`` of the released MCL code: every image is
            drawn equally often when ``B`` divides the cell count).

    Returns:
        tuple: ``canvas`` ``(G, C, S, S)``; ``boxes`` ``(G, grid**2, 4)``
        ``xyxy`` canvas pixels of every cell (raster order); ``src``
        ``(G, grid**2)`` long, the batch index drawn into each cell.
    """
    B, C, S, S2 = imgs.shape
    if S != S2 or S % grid:
        raise ValueError(f'montage needs square inputs divisible by the '
                         f'grid; got {S}x{S2}, grid {grid}')
    cells = grid * grid
    if perm is None and num_canvases is not None:
        perm = torch.randperm(num_canvases * grid * grid,
                              device=imgs.device) % B
    elif perm is None:
        num = -(-B // cells) * cells
        reps = -(-num // B)
        perm = torch.cat([torch.randperm(B, device=imgs.device)
                          for _ in range(reps)])[:num]
    perm = perm.to(imgs.device).long()
    if perm.numel() % cells:
        raise ValueError(f'perm length {perm.numel()} is not a multiple of '
                         f'{cells}')
    G = perm.numel() // cells
    c = S // grid
    small = imgs if grid == 1 else F.interpolate(imgs, size=(c, c),
                                                 mode='nearest')
    tiles = small[perm].view(G, grid, grid, C, c, c)
    canvas = tiles.permute(0, 3, 1, 4, 2, 5).reshape(G, C, S, S)
    r = torch.arange(grid, device=imgs.device, dtype=torch.float32)
    yy, xx = torch.meshgrid(r, r, indexing='ij')
    box = torch.stack([xx, yy, xx + 1, yy + 1], -1).view(cells, 4) * c
    return canvas, box.expand(G, cells, 4).clone(), perm.view(G, cells)
