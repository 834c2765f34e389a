from .box_jitter_curriculum import BoxJitterCurriculum, paired_box_iou
from .contrastive import queue_logits
from .dist_utils import all_gather_variable, enqueue_keys
from .fused_ema import FusedExponentialMovingAverage
from .heatmap_proposals import HeatmapBoxSource, HeatmapProposalGenerator
from .montage import montage
from .queue import KeyQueue
from .rois import boxes_to_rois

__all__ = [
    'BoxJitterCurriculum', 'paired_box_iou', 'all_gather_variable',
    'enqueue_keys', 'FusedExponentialMovingAverage',
    'HeatmapBoxSource', 'HeatmapProposalGenerator', 'KeyQueue', 'montage',
    'boxes_to_rois', 'queue_logits'
]
