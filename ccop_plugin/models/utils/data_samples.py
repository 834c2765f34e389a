"""Checked reads of the fields the pipeline packs into data samples.

The algorithms read per-image fields (``view_bboxes``) here, so a missing
or malformed field fails with one message that names the pipeline step
that adds it. Mapping points and boxes between the image and its views
(crop + resize + flip) is geometry and lives in
:mod:`ccop_plugin.utils.view_geometry`.
"""
from typing import List, Optional

import torch
from mmpretrain.structures import DataSample


def get_view_bboxes(data_samples: Optional[List[DataSample]], num_imgs: int,
                    min_views: int,
                    device: torch.device) -> List[torch.Tensor]:
    """The checked ``view_bboxes`` of a batch (``PackBoxSelfSupInputs``).

    Args:
        data_samples (list[DataSample], optional): One per image.
        num_imgs (int): Images in the batch.
        min_views (int): Views the algorithm reads.
        device (torch.device): Where the boxes go.

    Returns:
        list[torch.Tensor]: Per image float32 ``(V, N_b, 4)`` ``xyxy`` view
        pixels, ``V >= min_views``; row ``i`` is the same box in every view.

    Raises:
        ValueError: No data sample per image, or boxes of the wrong shape.
        KeyError: A data sample without ``view_bboxes``.
    """
    if data_samples is None or len(data_samples) != num_imgs:
        raise ValueError('one data sample with `view_bboxes` per image is '
                         f'needed; got {data_samples!r:.80} for {num_imgs} '
                         'images')
    out = []
    for i, ds in enumerate(data_samples):
        if 'view_bboxes' not in ds:
            raise KeyError(f'data sample {i} has no `view_bboxes`: the '
                           'pipeline needs a box source (LoadProposals or '
                           'GridRegions), BoxAwareMultiView and '
                           'PackBoxSelfSupInputs')
        vb = torch.as_tensor(ds.view_bboxes, dtype=torch.float32)
        if vb.dim() == 2 and vb.numel() == 0:
            vb = vb.reshape(min_views, 0, 4)
        if vb.dim() != 3 or vb.shape[0] < min_views or vb.shape[-1] != 4:
            raise ValueError(f'data sample {i}: view_bboxes must be '
                             f'(V>={min_views}, N, 4), got {tuple(vb.shape)}')
        out.append(vb.to(device))
    return out
