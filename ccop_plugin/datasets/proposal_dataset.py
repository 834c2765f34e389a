"""Unlabeled images with their object proposals."""
import os.path as osp
from typing import List, Optional

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from mmpretrain.registry import DATASETS
from ..proposals.sources import list_image_dir
from .transforms.loading import load_proposal_index


@DATASETS.register_module()
class ProposalImageDataset(BaseDataset):
    """Unlabeled images plus object proposals, for CCOP-style pre-training.

    Two layouts:

    * a COCO-style JSON as ``ann_file`` whose ``images`` are the training
      images (the proposal tool's output itself, whose ``annotations`` are the
      proposals; or any COCO annotation file, whose annotations are ignored
      when ``proposal_file`` is given);
    * ``ann_file=''``: every image under ``data_prefix['img_path']``, with the
      proposals of ``proposal_file``.

    Each data info holds ``img_path`` and ``proposals_xywh`` (``(N, 4)``
    float32, COCO ``xywh``), read by :class:`LoadProposals`. Images without
    proposals stay in the dataset (``LoadProposals`` uses the whole image)
    and are counted in the log.

    Args:
        ann_file (str): COCO-style JSON, or '' to scan the image folder.
        proposal_file (str, optional): COCO-style proposal JSON; None takes
            the proposals from ``ann_file``.
        data_root (str): Root of ``ann_file``, ``proposal_file`` and images.
        data_prefix (dict): ``img_path``: image folder under ``data_root``.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``pipeline``, ``indices``, ``serialize_data``...).
    """

    METAINFO = dict(classes=('proposal', ))

    def __init__(self,
                 ann_file: str = '',
                 proposal_file: Optional[str] = None,
                 data_root: str = '',
                 data_prefix: dict = dict(img_path=''),
                 **kwargs) -> None:
        self.proposal_file = proposal_file
        if proposal_file and data_root and not osp.isabs(proposal_file):
            self.proposal_file = osp.join(data_root, proposal_file)
        if not ann_file and not proposal_file:
            raise ValueError('ProposalImageDataset needs an ann_file (COCO '
                             'JSON) or a proposal_file')
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '') or ''
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(f'{self.ann_file}: no such file')
            listed = load_proposal_index(self.ann_file)
            names = list(listed)
            index = (load_proposal_index(self.proposal_file)
                     if self.proposal_file else listed)
        else:
            names = [e.file_name for e in list_image_dir(img_dir)]
            index = load_proposal_index(self.proposal_file)
        empty = np.zeros((0, 4), np.float32)
        data_list, missing = [], 0
        for name in names:
            boxes = index.get(name)
            if boxes is None or len(boxes) == 0:
                missing += 1
                boxes = empty
            data_list.append(
                dict(img_path=osp.join(img_dir, name), proposals_xywh=boxes))
        if missing:
            src = self.proposal_file or self.ann_file
            MMLogger.get_current_instance().warning(
                f'ProposalImageDataset: {missing} of {len(names)} images have '
                f'no proposal in {src}; the whole image stands in for them')
        return data_list
