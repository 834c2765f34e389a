"""``PackBoxSelfSupInputs``: views and their boxes in mmpretrain's format."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.datasets.transforms import PackInputs
from mmpretrain.registry import TRANSFORMS
from mmpretrain.structures import DataSample


@TRANSFORMS.register_module()
class PackBoxSelfSupInputs(BaseTransform):
    """Pack multi-view images and their corresponding boxes.

    Output, as mmpretrain's ``PackInputs`` for multi-view self-supervision:

    - ``inputs``: a list of ``num_views`` uint8 tensors ``(3, H, W)``.
    - ``data_samples``: a :class:`DataSample` with the field ``view_bboxes``,
      a float32 tensor ``(num_views, N, 4)`` (``xyxy`` in view pixels, row
      ``i`` the same proposal in every view; ``N`` may differ between images,
      so batches keep one tensor per sample), and the ``meta_keys`` found.

    Batches collate with mmpretrain's ``default_collate``.

    Args:
        meta_keys (Sequence[str]): Keys stored as metainfo. The defaults
            include ``view_flips`` and ``view_crops``, which algorithms that
            map points or boxes between views need (``HeatmapBoxSource``,
            PLRC's dense distillation).
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'ori_shape',
                                             'img_shape', 'num_proposals',
                                             'num_dropped_proposals',
                                             'proposal_fallback',
                                             'view_flips', 'view_crops')
                 ) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack the views and their boxes.

        Required keys: ``img`` (the list of views), ``view_bboxes``
        (``(num_views, N, 4)``; :class:`BoxAwareMultiView` adds them).

        Optional keys: the ``meta_keys`` present are copied into the data
        sample's metainfo; absent ones are skipped.

        Args:
            results (dict): The result dict.

        Returns:
            dict: A new dict with ``inputs`` (list of ``num_views`` uint8
            ``(C, H, W)`` tensors) and ``data_samples`` (a
            :class:`DataSample` with ``view_bboxes``); the input dict's other
            keys are dropped, as in mmpretrain's ``PackInputs``.

        Raises:
            KeyError: ``view_bboxes`` is missing.
        """
        if 'view_bboxes' not in results:
            raise KeyError('PackBoxSelfSupInputs needs `view_bboxes`: put '
                           'BoxAwareMultiView before it')
        sample = DataSample()
        boxes = np.asarray(results['view_bboxes'], np.float32)
        sample.set_field(torch.from_numpy(boxes.reshape(boxes.shape[0], -1,
                                                        4)), 'view_bboxes')
        sample.set_metainfo({
            k: results[k]
            for k in self.meta_keys if k in results
        })
        return dict(
            inputs=PackInputs.format_input(results['img']),
            data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
