"""Object proposals: the proposal file and selective search at dataset scale.

``tools/selective_search.py`` is the command line front end; the pieces:

* :mod:`.proposal_file` -- the COCO-style proposal file: its one reader
  (:func:`read_proposal_file`, validated) and writer
  (:func:`write_proposal_file`), the valid-box rule
* :mod:`.config` -- :class:`ProposalConfig` and the ``ccop`` / ``soco`` presets
* :mod:`.search` -- OpenCV selective search of one image (:func:`propose`)
* :mod:`.filters` -- aspect / size filters, SoCo's cascade, random-score NMS
* :mod:`.sources` -- image lists from a folder or a COCO file, sharding
* :mod:`.store` -- resumable JSON-lines work dir, merge
* :mod:`.runner` -- parallel resumable run with progress and summary, on
  the crash-isolating pool of :mod:`ccop_plugin.utils.process_pool`
* :mod:`.run_types` -- the run's options, summary and stop exception
* :mod:`.visualize` -- drawing proposals
* :mod:`.recall` -- proposal recall / AR against ground-truth boxes
* :mod:`.heatmap_file` -- heat-map proposals of an image set as a file

The names below are imported from their module on first use: the training
side (``import ccop_plugin``) loads only :mod:`.proposal_file` and
:mod:`.sources`, never the search, its process pool or the visualiser.
"""
import importlib

_EXPORTS = {
    'config': ('PRESETS', 'ProposalConfig', 'get_preset', 'parse_shard'),
    'filters': ('aspect_mask', 'ccop_filter', 'filter_boxes', 'image_seed',
                'min_wh_mask', 'nms', 'random_scores', 'rel_size_mask',
                'side_mask', 'soco_filter'),
    'heatmap_file': ('build_heatmap_backbone', 'write_heatmap_proposals'),
    'proposal_file': ('ProposalIndex', 'read_image_proposals',
                      'read_proposal_file', 'sanitize_boxes',
                      'valid_box_mask', 'write_proposal_file'),
    'recall': ('evaluate_proposal_file', 'evaluate_proposals',
               'format_recall_markdown', 'format_recall_table',
               'load_ground_truth', 'match_file_names', 'recall_table'),
    'run_types': ('ProposalRunInterrupted', 'RunOptions', 'RunSummary',
                  'format_summary'),
    'runner': ('iter_results', 'prestart_workers', 'process_image',
               'run_proposals', 'worker_context'),
    'search': ('propose', 'read_image', 'resize_for_search', 'search_shape',
               'selective_search'),
    'sources': ('ImageEntry', 'list_coco_images', 'list_image_dir',
                'list_images', 'shard_entries'),
    'store': ('ProposalStateError', 'collect_records', 'load_work_dir',
              'merge_work_dir'),
    'visualize': ('draw_proposals', ),
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'{__name__}.{mod}'), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
