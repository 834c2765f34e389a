"""Selective-search object proposals at dataset scale.

``tools/selective_search.py`` is the command line front end; the pieces:

* :mod:`.config` -- :class:`ProposalConfig` and the ``ccop`` / ``soco`` presets
* :mod:`.search` -- OpenCV selective search of one image (:func:`propose`)
* :mod:`.filters` -- aspect / size filters, SoCo's cascade, random-score NMS
* :mod:`.sources` -- image lists from a folder or a COCO file, sharding
* :mod:`.store` -- resumable JSON-lines work dir, merge, COCO JSON output
* :mod:`.runner` -- parallel resumable run with progress and summary
* :mod:`.visualize` -- drawing proposals
* :mod:`.recall` -- proposal recall / AR against ground-truth boxes
* :mod:`.heatmap_file` -- heat-map proposals of an image set as a file
* :mod:`.synthetic` -- procedural test / benchmark scenes
"""
from .config import PRESETS, ProposalConfig, get_preset, parse_shard
from .filters import (aspect_mask, ccop_filter, filter_boxes, image_seed,
                      min_wh_mask, nms, random_scores, rel_size_mask,
                      side_mask, soco_filter)
from .heatmap_file import build_heatmap_backbone, write_heatmap_proposals
from .recall import (evaluate_proposal_file, evaluate_proposals,
                     format_recall_markdown, format_recall_table,
                     load_ground_truth, match_file_names, recall_table)
from .runner import (format_summary, iter_results, prestart_workers,
                     process_image, run_proposals)
from .search import (propose, read_image, resize_for_search, search_shape,
                     selective_search)
from .sources import (ImageEntry, list_coco_images, list_image_dir,
                      list_images, shard_entries)
from .store import (ProposalStateError, collect_records, load_work_dir,
                    merge_work_dir, write_coco_json)
from .visualize import draw_proposals, load_proposals_for_image

__all__ = [
    'PRESETS', 'ProposalConfig', 'get_preset', 'parse_shard', 'aspect_mask',
    'ccop_filter', 'filter_boxes', 'image_seed', 'min_wh_mask', 'nms',
    'random_scores', 'rel_size_mask', 'side_mask', 'soco_filter',
    'build_heatmap_backbone', 'write_heatmap_proposals',
    'evaluate_proposal_file', 'evaluate_proposals', 'format_recall_markdown',
    'format_recall_table', 'load_ground_truth', 'match_file_names',
    'recall_table', 'format_summary', 'iter_results', 'prestart_workers', 'process_image',
    'run_proposals',
    'propose', 'read_image', 'resize_for_search', 'search_shape',
    'selective_search',
    'ImageEntry', 'list_coco_images', 'list_image_dir', 'list_images',
    'shard_entries', 'ProposalStateError', 'collect_records',
    'load_work_dir', 'merge_work_dir', 'write_coco_json',
    'draw_proposals', 'load_proposals_for_image'
]
