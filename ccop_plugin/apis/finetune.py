"""Fine-tune and evaluate an mmdet detector from a config (transfer runs).

Used by the end-to-end driver: pre-train -> convert ->
:func:`finetune_detector` -> AP dict. Everything is an mmengine ``Runner``
run; SyncBN configs work in one process because the Runner reverts SyncBN to
BN when not distributed.
"""
import copy
import os.path as osp
import time
import uuid
from typing import Dict, Optional, Sequence, Union

from mmengine.config import Config
from mmengine.hooks import Hook

from ccop_plugin.utils.coco_file import write_first_images
from ccop_plugin.utils.default_scope import keep_default_scope
from ccop_plugin.utils.fileio import atomic_write_json
from .label_space import DATALOADERS, apply_label_space, inner_dataset

_EVALUATORS = ('val_evaluator', 'test_evaluator')



def set_data_root(cfg: Config, data_root: str) -> None:
    """Point every dataloader and COCO evaluator of ``cfg`` at ``data_root``.

    Evaluator ``ann_file`` s become ``data_root`` + the val/test dataset's
    ``ann_file`` (the file the metric must read).
    """
    data_root = data_root.rstrip('/') + '/'
    for name in DATALOADERS:
        if cfg.get(name) and cfg[name].get('dataset'):
            inner_dataset(cfg[name].dataset).data_root = data_root
    for name, loader in (('val_evaluator', 'val_dataloader'),
                         ('test_evaluator', 'test_dataloader')):
        ev = cfg.get(name)
        if not ev or not cfg.get(loader):
            continue
        ann = inner_dataset(cfg[loader].dataset).get('ann_file')
        evs = ev if isinstance(ev, list) else [ev]
        for e in evs:
            if 'ann_file' in e and ann:
                e.ann_file = osp.join(data_root, ann)


def set_pretrained(cfg: Config, checkpoint: Optional[str]) -> None:
    """Initialise the whole detector from a converted checkpoint.

    A model-level ``Pretrained`` init loads every matching key (backbone and
    FPN) after the heads' own initialisation; the backbone's own
    ``init_cfg`` is removed so that nothing is downloaded.
    """
    cfg.model.backbone.init_cfg = None
    if checkpoint is None:
        cfg.model.init_cfg = None
    else:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'pre-trained checkpoint {checkpoint!r} '
                                    'does not exist')
        cfg.model.init_cfg = dict(type='Pretrained', checkpoint=checkpoint)


def unique_run_names(cfg: Config) -> None:
    """Give a run its own logger, message hub and visualizer.

    mmengine keeps these as process-wide instances looked up by name, and
    returns the existing one for a known name. mmdet's runtime names its
    visualizer ``'visualizer'``, so a second run in the same process (the
    comparison, the demo) reused the first run's visualizer and wrote its
    ``vis_data`` into the first run's folder; two runs of one config started
    in the same second would also share the logger. This sets a unique
    ``experiment_name`` (unless the config has one) and names the visualizer
    after it.
    """
    if not cfg.get('experiment_name'):
        stem = osp.splitext(osp.basename(cfg.filename or 'run'))[0]
        stamp = time.strftime('%Y%m%d_%H%M%S')
        cfg.experiment_name = f'{stem}_{stamp}_{uuid.uuid4().hex[:8]}'
    if cfg.get('visualizer') is not None:
        cfg.visualizer.name = cfg.experiment_name


def build_finetune_cfg(config: Union[str, Config],
                       work_dir: str,
                       checkpoint: Optional[str] = None,
                       data_root: Optional[str] = None,
                       max_epochs: Optional[int] = None,
                       max_iters: Optional[int] = None,
                       cfg_options: Optional[Dict] = None,
                       seed: Optional[int] = 0,
                       train_ann: Optional[str] = None) -> Config:
    """The config of a fine-tuning run, validation only at the end.

    Args:
        config (str | Config): mmdet config (e.g.
            ``configs/mask_rcnn/mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py``).
        work_dir (str): Run folder (logs, checkpoints, metrics).
        checkpoint (str, optional): Converted (mmdet) pre-training checkpoint;
            None keeps the config's initialisation if it has one, else random.
        data_root (str, optional): Dataset root replacing the config's.
        max_epochs (int, optional): Override the epoch count.
        max_iters (int, optional): Iteration-based training instead (smoke
            tests); the LR schedule becomes a short linear warm-up.
        cfg_options (dict, optional): Further ``--cfg-options`` style keys,
            merged last.
        seed (int, optional): Random seed.
        train_ann (str, optional): Annotation file of the train split
            replacing the config's (e.g. :func:`train_subset`'s subset; an
            absolute path is read as it is).

    A ``CocoDataset`` config gets the label space of its train annotation
    file (:func:`ccop_plugin.apis.label_space.apply_label_space`):
    ``metainfo.classes`` of every split and the heads' ``num_classes``.
    """
    cfg = (copy.deepcopy(config) if isinstance(config, Config) else
           Config.fromfile(config))
    cfg.work_dir = work_dir
    if checkpoint is not None:
        set_pretrained(cfg, checkpoint)
    if data_root is not None:
        set_data_root(cfg, data_root)
    if train_ann is not None:
        inner_dataset(cfg.train_dataloader.dataset).ann_file = train_ann
    if max_iters is not None:
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                             val_interval=max_iters + 1)
        warm = max(1, min(max_iters, 50))
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                 begin=0, end=warm)
        ]
        cfg.train_dataloader.sampler = dict(
            type='InfiniteSampler', shuffle=True)
        cfg.default_hooks.checkpoint = dict(
            type='CheckpointHook', interval=max_iters, by_epoch=False,
            max_keep_ckpts=1)
        cfg.log_processor = dict(by_epoch=False)
    else:
        epochs = max_epochs or cfg.train_cfg.get('max_epochs')
        cfg.train_cfg.max_epochs = epochs
        cfg.train_cfg.val_interval = epochs + 1  # once, after the last
        for sch in cfg.param_scheduler:
            if sch.get('by_epoch', True) and sch.get('end', 0) > epochs:
                sch.end = epochs
            if 'milestones' in sch:
                sch.milestones = [m for m in sch.milestones if m < epochs]
        if cfg.default_hooks.get('checkpoint'):
            cfg.default_hooks.checkpoint.interval = epochs
    if seed is not None:
        cfg.randomness = dict(seed=seed)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    # classes and heads from the train file: a category subset or other
    # names would otherwise fail in evaluation after a whole training
    apply_label_space(cfg)
    unique_run_names(cfg)
    return cfg


class _MetricsCatcher(Hook):
    """Hook keeping the metrics of the latest validation."""
    priority = 'LOWEST'

    def __init__(self):
        self.metrics = None

    def after_val_epoch(self, runner, metrics=None):
        self.metrics = dict(metrics or {})


def finetune_detector(config: Union[str, Config],
                      work_dir: str,
                      checkpoint: Optional[str] = None,
                      data_root: Optional[str] = None,
                      max_epochs: Optional[int] = None,
                      max_iters: Optional[int] = None,
                      cfg_options: Optional[Dict] = None,
                      seed: Optional[int] = 0,
                      metrics_file: str = 'finetune_metrics.json',
                      train_ann: Optional[str] = None
                      ) -> Dict[str, float]:
    """Fine-tune a detector, evaluate it once, return the metrics.

    Arguments as :func:`build_finetune_cfg`. The metrics (e.g.
    ``coco/bbox_mAP``, ``coco/segm_mAP``, ``..._50``, ``..._75``) are also
    written to ``<work_dir>/<metrics_file>``.

    Returns:
        dict: Metric name -> float.
    """
    from mmdet.utils import register_all_modules
    from mmengine.runner import Runner
    register_all_modules(init_default_scope=False)
    cfg = build_finetune_cfg(config, work_dir, checkpoint, data_root,
                             max_epochs, max_iters, cfg_options, seed,
                             train_ann)
    with keep_default_scope():  # the Runner changes the process's scope
        runner = Runner.from_cfg(cfg)
        catcher = _MetricsCatcher()
        runner.register_hook(catcher, priority='LOWEST')
        runner.train()  # mmengine validates after the last epoch / iteration
        metrics = catcher.metrics
        if metrics is None:
            metrics = runner.val()
    out = {k: float(v) for k, v in (metrics or {}).items()
           if isinstance(v, (int, float))}
    atomic_write_json(osp.join(work_dir, metrics_file), out)
    return out


def train_subset(data_root: str, out_dir: str, num_images: int) -> str:
    """The first ``num_images`` of ``data_root``'s train split as an
    annotation file of ``out_dir``
    (:func:`~ccop_plugin.utils.coco_file.write_first_images`); its
    absolute path."""
    out = osp.abspath(osp.join(out_dir,
                               f'instances_train_first{num_images}.json'))
    write_first_images(
        osp.join(data_root, 'annotations', 'instances_train.json'), out,
        num_images)
    return out


def evaluate_detector(config: Union[str, Config],
                      checkpoint: str,
                      work_dir: str,
                      data_root: str,
                      ann_file: str,
                      img_prefix: str,
                      metrics_file: str = 'test_metrics.json',
                      cfg_options: Optional[Dict] = None
                      ) -> Dict[str, float]:
    """Evaluate a fine-tuned detector once on one split (``Runner.test``).

    The config's test dataloader and evaluator are pointed at
    ``data_root/ann_file`` with images under ``data_root/img_prefix`` (e.g.
    a held-out test split that no selection has seen); nothing is trained.
    ``cfg_options``: further config keys (e.g. ``launcher``).

    Returns:
        dict: Metric name -> float, also written to
        ``<work_dir>/<metrics_file>``.
    """
    from mmdet.utils import register_all_modules
    from mmengine.runner import Runner
    register_all_modules(init_default_scope=False)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'detector checkpoint {checkpoint!r} does '
                                'not exist')
    ann = osp.join(data_root, ann_file)
    if not osp.isfile(ann):
        raise FileNotFoundError(f'{ann}: no such annotation file')
    cfg = build_finetune_cfg(config, work_dir, data_root=data_root, seed=None,
                             cfg_options=cfg_options)
    cfg.model.backbone.init_cfg = None
    cfg.model.init_cfg = None
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    ds = inner_dataset(cfg.test_dataloader.dataset)
    ds.ann_file = ann_file
    ds.data_prefix = dict(img=img_prefix)
    ev = copy.deepcopy(cfg.val_evaluator)
    for e in (ev if isinstance(ev, list) else [ev]):
        e.ann_file = ann
    cfg.test_evaluator = ev
    cfg.load_from = checkpoint
    cfg.resume = False
    with keep_default_scope():
        metrics = Runner.from_cfg(cfg).test()
    out = {k: float(v) for k, v in (metrics or {}).items()
           if isinstance(v, (int, float))}
    atomic_write_json(osp.join(work_dir, metrics_file), out)
    return out


def summarize(metrics: Dict[str, float],
              keys: Sequence[str] = ('coco/bbox_mAP', 'coco/bbox_mAP_50',
                                     'coco/segm_mAP', 'coco/segm_mAP_50')
              ) -> str:
    """One line of the headline AP numbers (x100, as papers report)."""
    return ', '.join(f'{k.split("/")[-1]} {100 * metrics[k]:.1f}'
                     for k in keys if k in metrics)


def _pipelines(cfg: Config):
    """Every pipeline list of ``cfg``'s dataloaders (inner datasets)."""
    for name in DATALOADERS:
        loader = cfg.get(name)
        if loader and loader.get('dataset'):
            pipe = inner_dataset(loader.dataset).get('pipeline')
            if pipe:
                yield pipe


def boxes_only(cfg: Config) -> None:
    """Turn a Mask R-CNN config into Faster R-CNN (annotations with boxes
    only): no mask head, no masks loaded, bbox evaluation only."""
    cfg.model.type = 'FasterRCNN'
    cfg.model.roi_head.mask_roi_extractor = None
    cfg.model.roi_head.mask_head = None
    if cfg.model.get('train_cfg') and cfg.model.train_cfg.get('rcnn'):
        cfg.model.train_cfg.rcnn.pop('mask_size', None)
    for pipe in _pipelines(cfg):
        for t in pipe:
            if t.get('type') == 'LoadAnnotations':
                t.with_mask = False
    for name in _EVALUATORS:
        ev = cfg.get(name)
        for e in (ev if isinstance(ev, list) else [ev] if ev else []):
            if isinstance(e.get('metric'), (list, tuple)):
                e.metric = [m for m in e.metric if m != 'segm']


def set_img_scale(cfg: Config, scale: int) -> None:
    """Every ``Resize`` of ``cfg``'s pipelines to a longer side of
    ``scale`` px (aspect ratio kept)."""
    for pipe in _pipelines(cfg):
        for t in pipe:
            if t.get('type') == 'Resize':
                t.scale = (scale, scale)
                t.keep_ratio = True
