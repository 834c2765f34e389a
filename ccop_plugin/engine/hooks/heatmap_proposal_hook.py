"""Refresh the training proposals from the network's own heat maps."""
import os.path as osp
from typing import Optional

import cv2
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmpretrain.registry import HOOKS, MODELS
from ccop_plugin.models.utils.heatmap_proposals import image_heatmap_boxes
from ccop_plugin.proposals.sources import ImageEntry
from ccop_plugin.proposals.store import write_coco_json
from ccop_plugin.utils.boxes import xyxy_to_xywh


def _find_transforms(pipeline, name):
    out = []
    for t in getattr(pipeline, 'transforms', []):
        if type(t).__name__ == name:
            out.append(t)
        out += _find_transforms(t, name)
    return out


@HOOKS.register_module()
class HeatmapProposalHook(Hook):
    """Heat-map proposals (semantic-aware localization), refreshed by epoch.

    Every ``interval`` epochs from ``start_epoch`` on, runs the momentum
    encoder's backbone (``model.encoder_k.module[0]``, else
    ``model.backbone``) over every training image resized to ``img_scale``,
    draws boxes with :class:`HeatmapProposalGenerator`, writes them as a
    proposal JSON (the format of ``tools/selective_search.py``) under
    ``work_dir`` and points every ``LoadProposals`` of the training pipeline
    at it. Before ``start_epoch``
    (warm-up) the dataset's own proposals are used -- an ``ann_file`` without
    annotations gives whole-image boxes (``LoadProposals``' fallback).
    Data-loader workers copy the dataset when they start: use
    ``persistent_workers=False`` so the next epoch sees the new file.

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

    def after_train_epoch(self, runner) -> None:
        ep = runner.epoch + 1
        if ep < self.start_epoch or (ep - self.start_epoch) % self.interval:
            return
        path = self.refresh(runner, osp.join(
            runner.work_dir, f'heatmap_proposals_epoch_{ep}.json'))
        print_log(f'heat-map proposals refreshed: {path}', logger='current')

    @torch.no_grad()
    def refresh(self, runner, out_file: str) -> str:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        enc = model.encoder_k.module[0] if hasattr(model, 'encoder_k') \
            else model.backbone
        pre = model.data_preprocessor
        dataset = runner.train_dataloader.dataset
        was_training = enc.training
        enc.eval()
        mean, std = pre.mean.flatten(), pre.std.flatten()
        to_rgb = bool(getattr(pre, '_channel_conversion', False))
        entries, results = [], {}
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            img = cv2.imread(info['img_path'], cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f'{info["img_path"]}: cannot read')
            h, w = img.shape[:2]
            boxes = image_heatmap_boxes(enc, img, self.generator,
                                        self.img_scale, mean, std, to_rgb)
            rel = osp.relpath(info['img_path'],
                              dataset.data_prefix.get('img_path', ''))
            entries.append(ImageEntry(i + 1, rel))
            results[rel] = dict(width=w, height=h,
                                boxes=xyxy_to_xywh(boxes))
        enc.train(was_training)
        # the proposal tool's writer: same format, written atomically
        write_coco_json(out_file, entries, results,
                        info=dict(source='HeatmapProposalHook'))
        for t in _find_transforms(dataset.pipeline, 'LoadProposals'):
            t.proposal_file = out_file
        return out_file
