"""Refresh the training proposals from the network's own heat maps."""
import logging
import os.path as osp
from typing import Optional

from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS, MODELS

from ccop_plugin.datasets.proposal_dataset import (
    ProposalImageDataset,
    find_proposal_dataset,
)
from ccop_plugin.engine.model_wrappers import unwrap_model
from ccop_plugin.models.utils.heatmap_proposals import draw_heatmap_proposals
from ccop_plugin.proposals.proposal_file import write_proposal_file
from ccop_plugin.proposals.sources import ImageEntry


@HOOKS.register_module()
class HeatmapProposalHook(Hook):
    """Heat-map proposals (semantic-aware localization), refreshed by epoch.

    Every ``interval`` epochs from ``start_epoch`` on, runs the momentum
    encoder's backbone (``model.encoder_k.module[0]``, else
    ``model.backbone``) over every training image resized to ``img_scale``,
    draws boxes with :class:`HeatmapProposalGenerator`, writes them as a
    proposal file (``work_dir/heatmap_proposals_epoch_<e>.json``, the format
    of ``tools/selective_search.py``, written by the main process) and makes
    the training dataset (:class:`ProposalImageDataset`, also inside dataset
    wrappers) load it (:meth:`ProposalImageDataset.load_proposals`), as
    mmdet's ``PipelineSwitchHook`` swaps a pipeline. Persistent data-loader
    workers are restarted so that the next epoch sees the new boxes; a
    resumed run goes on with the last refresh's file. Before
    ``start_epoch`` (warm-up) the dataset's own proposals are used -- an
    ``ann_file`` without annotations gives whole-image boxes
    (``LoadProposals``' counted fallback).

    Args:
        generator (dict): ``HeatmapProposalGenerator`` config.
        interval (int): Refresh every this many epochs. Defaults to 20.
        start_epoch (int): First refresh after this many epochs (warm-up).
            Defaults to 20.
        img_scale (int): Square side the images are resized to.
            Defaults to 224.
    """

    priority = 'LOW'

    def __init__(self, generator: Optional[dict] = None, interval: int = 20,
                 start_epoch: int = 20, img_scale: int = 224) -> None:
        generator = dict(generator or {})
        generator.setdefault('type', 'HeatmapProposalGenerator')
        generator['warmup_iters'] = 0
        self.generator = MODELS.build(generator)
        self.interval = interval
        self.start_epoch = start_epoch
        self.img_scale = img_scale

    def _due(self, epoch: int) -> bool:
        """A refresh happens at the end of (1-based) ``epoch``."""
        return (epoch >= self.start_epoch
                and (epoch - self.start_epoch) % self.interval == 0)

    def _path(self, runner, epoch: int) -> str:
        return osp.join(runner.work_dir,
                        f'heatmap_proposals_epoch_{epoch}.json')

    def before_train(self, runner) -> None:
        """Check there is a dataset to refresh (at the start, not after the
        warm-up); on resume, go on with the proposals of the last refresh.

        After resuming at epoch ``e`` past a refresh, the dataset loads that
        refresh's file from ``work_dir``; when the file is gone (another
        work dir), the proposals are drawn again from the resumed model.
        """
        self._dataset(runner)
        last = next((e for e in range(runner.epoch, 0, -1) if self._due(e)),
                    None)
        if last is None:
            return
        path = self._path(runner, last)
        if osp.isfile(path):
            self._dataset(runner).load_proposals(path)
            print_log(f'resumed with the heat-map proposals of epoch {last}: '
                      f'{path}', logger='current')
        else:
            self.refresh(runner, path)
            print_log(f'resumed after epoch {runner.epoch}: {path} (the '
                      f'proposals of epoch {last}) was not found, drawn again '
                      'from the resumed model', logger='current',
                      level=logging.WARNING)

    def after_train_epoch(self, runner) -> None:
        ep = runner.epoch + 1
        if not self._due(ep):
            return
        path = self.refresh(runner, self._path(runner, ep))
        print_log(f'heat-map proposals refreshed: {path}', logger='current')

    @staticmethod
    def _dataset(runner) -> ProposalImageDataset:
        dataset = find_proposal_dataset(runner.train_dataloader.dataset)
        if dataset is None:
            raise TypeError(
                'HeatmapProposalHook: the training dataset '
                f'({type(runner.train_dataloader.dataset).__name__}) is no '
                'ProposalImageDataset and wraps none; the hook refreshes '
                "that dataset's proposals")
        return dataset

    def compute(self, runner, dataset: ProposalImageDataset) -> tuple:
        """``(entries, results)`` of :func:`write_proposal_file`: the
        heat-map boxes of every image of ``dataset``, drawn by
        :func:`draw_heatmap_proposals` (the loop of
        ``tools/heatmap_proposals.py``)."""
        model = unwrap_model(runner.model)
        enc = model.encoder_k.module[0] if hasattr(model, 'encoder_k') \
            else model.backbone
        pre = model.data_preprocessor
        mean, std = pre.mean.flatten(), pre.std.flatten()
        to_rgb = bool(getattr(pre, '_channel_conversion', False))
        img_dir = dataset.data_prefix.get('img_path', '') or ''
        paths = [dataset.get_data_info(i)['img_path']
                 for i in range(len(dataset))]
        entries = [ImageEntry(i + 1, osp.relpath(p, img_dir))
                   for i, p in enumerate(paths)]
        results = draw_heatmap_proposals(
            [(e.file_name, p) for e, p in zip(entries, paths)], enc,
            self.generator, self.img_scale, mean, std, to_rgb)
        return entries, results

    def refresh(self, runner, out_file: str) -> str:
        """Write the heat-map proposals to ``out_file`` (main process) and
        make the training dataset load them on every rank."""
        dataset = self._dataset(runner)
        if is_main_process():
            entries, results = self.compute(runner, dataset)
            write_proposal_file(out_file, entries, results,
                                info=dict(source='HeatmapProposalHook'))
        barrier()
        dataset.load_proposals(out_file)
        loader = runner.train_dataloader
        if getattr(loader, 'persistent_workers', False):
            # the workers hold a copy of the dataset: start new ones for the
            # next epoch (as mmdet's PipelineSwitchHook does)
            loader._iterator = None
        return out_file
