"""``LoadProposals``: the object proposals of a sample, validated.

The proposal file itself is read by the dataset
(:class:`ProposalImageDataset`, through
:func:`ccop_plugin.proposals.proposal_file.read_proposal_file`), which puts
each image's boxes into its sample as ``proposals_xywh``; this transform only
works on ``results``.
"""
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import MMLogger
from mmpretrain.registry import TRANSFORMS

from ccop_plugin.proposals.proposal_file import sanitize_boxes
from ccop_plugin.utils.boxes import xywh_to_xyxy


@TRANSFORMS.register_module()
class LoadProposals(BaseTransform):
    """Turn a sample's proposals into usable ``xyxy`` boxes.

    Takes the COCO ``xywh`` boxes that :class:`ProposalImageDataset` put into
    the sample (``proposals_xywh``: CCOP's selective-search boxes, or the
    heat-map boxes of ``HeatmapProposalHook``), drops the invalid ones
    (non-finite, zero or negative size, entirely outside the image), clips
    the rest to the image and keeps the first ``max_num`` (the file lists
    them best first). An image without any valid proposal is no error: its
    whole-image box stands in, and that is counted too. The counts are logged
    every ``log_interval`` images (per data-loader worker); ``self.stats``
    holds the running totals (``images``, ``kept``, ``dropped``,
    ``fallback``) of this process. For counts over all workers and ranks
    use ``ProposalStatsHook`` (it sums the per-sample keys below).

    Required Keys:

    - img_shape (after ``LoadImageFromFile``)
    - proposals_xywh (np.ndarray): ``(N, 4)`` COCO ``xywh`` in image pixels

    Added Keys:

    - proposals (np.ndarray): ``(M, 4)`` float32 ``xyxy`` in image pixels,
      ``1 <= M <= max_num``.
    - num_proposals (int): valid proposals kept (0 when the whole image
      stands in).
    - num_dropped_proposals (int): invalid boxes dropped in this image.
    - proposal_fallback (bool): the whole image stands in.

    Args:
        max_num (int): Most proposals kept per image. Defaults to 100.
        log_interval (int): Log the counters every this many images
            (0 disables). Defaults to 5000.
        proposal_file: Not accepted: give the file to the dataset
            (``ProposalImageDataset(proposal_file=...)``); a one-line error
            says so for configs written for earlier versions.
    """

    def __init__(self,
                 max_num: int = 100,
                 log_interval: int = 5000,
                 *,
                 proposal_file=None) -> None:
        if proposal_file is not None:
            raise ValueError(
                f'LoadProposals(proposal_file={proposal_file!r}): the '
                'transform no longer reads files; set proposal_file on the '
                'dataset instead (ProposalImageDataset(proposal_file=...))')
        if max_num < 1:
            raise ValueError(f'max_num must be >= 1, got {max_num}')
        self.max_num = max_num
        self.log_interval = log_interval
        self.stats = dict(images=0, kept=0, dropped=0, fallback=0)

    def transform(self, results: dict) -> dict:
        """Sanitise the sample's proposals.

        Reads ``img_shape`` and ``proposals_xywh``; adds ``proposals``,
        ``num_proposals``, ``num_dropped_proposals`` and
        ``proposal_fallback`` (see the class docstring) and updates
        ``self.stats``.

        Args:
            results (dict): The sample, from :class:`ProposalImageDataset`
                and ``LoadImageFromFile``.

        Returns:
            dict: ``results`` with the keys above added.

        Raises:
            KeyError: naming the image when the sample has no
                ``proposals_xywh`` (the dataset is no
                :class:`ProposalImageDataset`).
        """
        if 'proposals_xywh' not in results:
            raise KeyError(
                f'{results.get("img_path")}: the sample has no '
                '"proposals_xywh": LoadProposals needs a ProposalImageDataset '
                '(with its ann_file or proposal_file)')
        img_shape = results['img_shape']
        boxes, dropped = sanitize_boxes(
            xywh_to_xyxy(results['proposals_xywh']), img_shape, self.max_num)
        results['num_proposals'] = len(boxes)
        fallback = len(boxes) == 0
        if fallback:
            h, w = img_shape[:2]
            boxes = np.array([[0, 0, w, h]], dtype=np.float32)
        results['proposals'] = boxes
        results['num_dropped_proposals'] = dropped
        results['proposal_fallback'] = fallback
        self._count(len(boxes), dropped, fallback)
        return results

    def _count(self, kept: int, dropped: int, fallback: bool) -> None:
        s = self.stats
        s['images'] += 1
        s['kept'] += kept
        s['dropped'] += dropped
        s['fallback'] += int(fallback)
        if self.log_interval and s['images'] % self.log_interval == 0:
            MMLogger.get_current_instance().info(
                f'LoadProposals: {s["images"]} images, {s["kept"]} boxes '
                f'kept, {s["dropped"]} invalid boxes dropped, '
                f'{s["fallback"]} images without a valid proposal (whole '
                'image used)')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(max_num={self.max_num}, '
                f'log_interval={self.log_interval})')
