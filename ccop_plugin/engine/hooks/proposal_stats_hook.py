"""Epoch-end log of what ``LoadProposals`` dropped, over all workers/ranks."""
import logging
from typing import Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from ccop_plugin.datasets.proposal_dataset import find_proposal_dataset
from ccop_plugin.datasets.proposal_stats import format_proposal_stats

FIELDS = ('images', 'kept', 'dropped', 'fallback')


@HOOKS.register_module()
class ProposalStatsHook(Hook):
    """Log the proposal counts of every training epoch.

    ``LoadProposals`` drops invalid boxes and puts the whole image in for an
    image without a valid one; it writes ``num_proposals``,
    ``num_dropped_proposals`` and ``proposal_fallback`` into every sample
    (``PackBoxSelfSupInputs`` keeps them as metainfo). This hook sums them
    over the batches of an epoch -- so data-loader workers (separate
    processes) need no shared state -- adds them up over all ranks and logs
    one line at the epoch end (for ``IterBasedTrainLoop``: at the end of
    training), with the counts :class:`ProposalImageDataset` found in its
    proposal file when it was built. Warns when more than ``warn_fallback``
    of the epoch's images had no valid proposal (the whole image stood in),
    e.g. after a proposal file was swapped for a bad one during training.

    Args:
        warn_fallback (float): Fraction of whole-image fallbacks above which
            a warning is logged. Defaults to 0.5.
    """

    priority = 'LOW'

    def __init__(self, warn_fallback: float = 0.5) -> None:
        self.warn_fallback = warn_fallback
        self.counts = dict.fromkeys(FIELDS, 0)

    def before_train_epoch(self, runner) -> None:
        self.counts = dict.fromkeys(FIELDS, 0)

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs=None) -> None:
        samples = (data_batch or {}).get('data_samples') \
            if isinstance(data_batch, dict) else None
        for s in samples or []:
            meta = s.metainfo if hasattr(s, 'metainfo') else s
            if not isinstance(meta, dict) or 'proposal_fallback' not in meta:
                continue
            c = self.counts
            c['images'] += 1
            c['kept'] += int(meta.get('num_proposals', 0))
            c['dropped'] += int(meta.get('num_dropped_proposals', 0))
            c['fallback'] += int(bool(meta['proposal_fallback']))

    def after_train_epoch(self, runner) -> None:
        totals = torch.tensor([self.counts[k] for k in FIELDS],
                              dtype=torch.int64)
        all_reduce(totals, op='sum')
        t = dict(zip(FIELDS, totals.tolist()))
        ds = find_proposal_dataset(runner.train_dataloader.dataset)
        if ds is not None and ds.proposal_stats:
            print_log(format_proposal_stats(ds.proposal_stats),
                      logger='current')
        if not t['images']:
            print_log('ProposalStatsHook: no sample of this epoch carried '
                      'proposal counts (no LoadProposals + '
                      'PackBoxSelfSupInputs in the pipeline?)',
                      logger='current')
            return
        n = t['images']
        loop = getattr(runner, 'train_loop', None)
        when = (f'{runner.iter} iterations' if type(loop).__name__ ==
                'IterBasedTrainLoop' else f'epoch {runner.epoch + 1}')
        print_log(
            f'{when}: proposals of {n} training images: '
            f'{t["kept"]} kept, {t["dropped"]} invalid dropped, '
            f'{t["fallback"]} images ({100.0 * t["fallback"] / n:.1f}%) used '
            'the whole image', logger='current')
        if t['fallback'] > self.warn_fallback * n:
            print_log(
                f'ProposalStatsHook: {t["fallback"]} of {n} images ({when}) '
                'had no valid proposal and trained on the whole image; check '
                'the proposal file', logger='current',
                level=logging.WARNING)
