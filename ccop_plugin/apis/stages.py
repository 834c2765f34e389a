"""The main job's stages, one small object each.

A step object has a ``name`` (its folder under the work dir), ``settings()``
(what its result depends on: the stage key hashes them with the keys of the
stages it reads, see :class:`ccop_plugin.apis.stage.Stage`) and
``compute(out_dir)`` (run it, return its record). The settings dicts are
those the stage keys were made of since they were introduced: changing one
recomputes every work dir's stage (``tests/test_apis/test_stage_keys.py``
pins them); an edited config changes them (:mod:`.config_digest`).
"""
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Optional

from ccop_plugin.engine.work_dir import (
    find_resume_checkpoint,
    list_checkpoints,
)
from ccop_plugin.utils.config_path import get_config_path
from .config_digest import with_config_digest
from .job_config import MainJobConfig, log
from .methods import PROTOCOL_WIDTH, finetune_config, pretrain_config
from .pretrain import pretrain, pretrain_budget, pretrain_options

#: ``probe(checkpoint, data_root, seed=..., val_split=...)``: the probe's
#: accuracy (a fraction, or a dict with ``acc``) of a pre-training checkpoint
#: (None: a randomly initialised backbone), fit on the train split. A probe
#: whose results change for the same input carries a new ``version``
#: attribute (part of the probe stage's key).
Probe = Callable[..., object]


def probe_name(probe: Callable) -> str:
    """The dotted name a probe (function or callable object) goes under."""
    name = getattr(probe, '__qualname__', type(probe).__qualname__)
    module = getattr(probe, '__module__', type(probe).__module__)
    return f'{module}.{name}'


def newest_checkpoint(work_dir: str) -> Optional[str]:
    """A finished run's newest checkpoint (numeric order)."""
    ckpts = list_checkpoints(work_dir)
    return ckpts[-1] if ckpts else None


def detector_config(cfg: MainJobConfig):
    """The fine-tuning config: the packaged Mask R-CNN one's path on
    synthetic data; on user data a config with the data's classes, Mask or
    Faster R-CNN, image scale and batch
    (:func:`ccop_plugin.apis.user_data.user_detector_config`)."""
    path = get_config_path(finetune_config(cfg.protocol))
    if not cfg.user_data:
        return narrowed(path, cfg)
    from ccop_plugin.utils.records import read_record
    from .user_data import user_detector_config
    data = read_record(osp.join(cfg.data_root, 'stage.json'))
    return narrowed(user_detector_config(cfg, data, path), cfg)


def narrowed(config, cfg: MainJobConfig):
    """``config`` (a path or a ``Config``) as it is, or, when
    ``cfg.base_channels`` is set, a ``Config`` whose ResNet-18s have that
    base width (:func:`ccop_plugin.testing.narrow_resnet18`)."""
    if cfg.base_channels is None:
        return config
    from mmengine.config import Config

    from ccop_plugin.testing.models import narrow_resnet18
    if isinstance(config, str):
        config = Config.fromfile(config)
    narrow_resnet18(config.model, cfg.base_channels)
    return config


def _with_width(cfg: MainJobConfig, settings: Dict) -> Dict:
    """A training stage's settings, with ``base_channels`` when set
    (absent by default: earlier keys stay valid)."""
    if cfg.base_channels is not None:
        settings['base_channels'] = cfg.base_channels
    return settings


def _launcher_option(cfg: MainJobConfig) -> Optional[Dict]:
    """``launcher`` for the runner of a distributed job, else None."""
    return None if cfg.launcher == 'none' else dict(launcher=cfg.launcher)


def _finite(metrics: Dict) -> Dict:
    """NaN (a category without objects) recorded as null."""
    return {k: (None if isinstance(v, float) and v != v else v)
            for k, v in metrics.items()}


@dataclass
class DataStep:
    """The embedded synthetic COCO dataset, or the user's dataset checked
    and laid out the same way (:mod:`ccop_plugin.apis.user_data`)."""
    cfg: MainJobConfig
    name = 'data'

    def settings(self) -> Dict:
        from ccop_plugin.datagen.coco_writer import FORMAT_VERSION
        cfg = self.cfg
        if cfg.user_data:
            from .user_data import data_settings
            return data_settings(cfg)
        out = dict(seed=cfg.seed, num_unlabeled=cfg.num_unlabeled,
                   num_train=cfg.num_train, num_val=cfg.num_val,
                   img_size=cfg.img_size, format_version=FORMAT_VERSION)
        if cfg.num_test:  # absent when 0: earlier keys stay valid
            out['num_test'] = cfg.num_test
        return out

    def compute(self, out_dir: str) -> Dict:
        from ccop_plugin.datagen import generate_synthetic_coco
        cfg = self.cfg
        if cfg.user_data:
            from .user_data import prepare_user_data
            return prepare_user_data(cfg, cfg.data_root)
        meta = generate_synthetic_coco(
            cfg.data_root, seed=cfg.seed, num_unlabeled=cfg.num_unlabeled,
            num_train=cfg.num_train, num_val=cfg.num_val,
            img_size=cfg.img_size, num_test=cfg.num_test, verbose=True)
        return dict(data_root=cfg.data_root,
                    splits={k: v['num_images']
                            for k, v in meta['splits'].items()})


@dataclass
class ProposalsStep:
    """Selective search over the unlabeled split (all cores)."""
    cfg: MainJobConfig
    name = 'proposals'

    def settings(self) -> Dict:
        from ccop_plugin.proposals import get_preset
        return dict(preset='ccop', params=asdict(get_preset('ccop')))

    def compute(self, out_dir: str) -> Dict:
        from ccop_plugin.proposals import (
            RunOptions,
            get_preset,
            list_coco_images,
            run_proposals,
        )
        cfg = self.cfg
        ann = osp.join(cfg.data_root, 'annotations', 'unlabeled.json')
        summary = run_proposals(
            list_coco_images(ann),
            osp.join(cfg.data_root, 'images', 'unlabeled'),
            get_preset('ccop'), osp.join(out_dir, 'state'), RunOptions(
                out=cfg.proposal_file, workers=cfg.workers,
                source=dict(ann_file=ann), log=log)).to_dict()
        keep = ('images_in_shard', 'processed', 'failed',
                'proposals_per_image', 'images_per_s', 'workers')
        return dict(proposal_file=cfg.proposal_file,
                    **{k: summary[k] for k in keep if k in summary})


@dataclass
class PretrainStep:
    """Pre-training in mmengine's ``Runner``; an interrupted run resumes
    from its newest intact checkpoint."""
    cfg: MainJobConfig
    method: str

    all_ranks = True  # a training run every rank joins

    @property
    def name(self) -> str:
        return f'pretrain_{self.method}{self.cfg.stage_suffix}'

    def settings(self) -> Dict:
        cfg = self.cfg
        iters, batch = pretrain_budget(cfg, self.method)
        return _with_width(cfg, with_config_digest(dict(
            method=self.method,
            config=pretrain_config(self.method, cfg.protocol),
            iters=iters, batch=batch, seed=cfg.train_seed)))

    def compute(self, out_dir: str) -> Dict:
        cfg, method = self.cfg, self.method
        name = pretrain_config(method, cfg.protocol)
        config = get_config_path(name)
        resume = find_resume_checkpoint(out_dir, warn=log)
        if resume:
            log(f'{method}: resuming from {resume}')
        log(f'{method}: {config} -> {out_dir}')
        extra = {} if cfg.launcher == 'none' else dict(launcher=cfg.launcher)
        options = pretrain_options(cfg, method)
        if cfg.base_channels is not None:
            options['model'] = narrowed(config, cfg).model.to_dict()
        pretrain(config, out_dir, options, resume=resume, **extra)
        ckpt = newest_checkpoint(out_dir)
        if ckpt is None:
            raise RuntimeError(
                f'pre-training wrote no checkpoint in {out_dir}')
        iters, batch = pretrain_budget(cfg, method)
        return dict(checkpoint=ckpt, config=name, iters=iters, batch=batch,
                    seed=cfg.train_seed)


@dataclass
class ConvertStep:
    """The query encoder of a pre-training checkpoint to an mmdet one."""
    cfg: MainJobConfig
    method: str
    checkpoint: Optional[str] = None

    @property
    def name(self) -> str:
        return f'convert_{self.method}{self.cfg.stage_suffix}'

    def settings(self) -> Dict:
        name = finetune_config(self.cfg.protocol)  # the conversion's target
        out = dict(with_fpn=self.cfg.with_fpn)
        if self.cfg.protocol != 'cpu-tiny':  # absent: earlier keys valid
            out['config'] = name
        return with_config_digest(out, name)

    def compute(self, out_dir: str) -> Dict:
        from ccop_plugin.converters import (
            convert_to_mmdet,
            expected_keys_from_config,
            require_full_backbone,
            save_mmdet_checkpoint,
        )
        with_fpn = self.cfg.with_fpn
        # the fine-tuned detector's keys: an FPN of other channels (MCL's)
        # is skipped and reported instead of loading half-way
        target = finetune_config(self.cfg.protocol)
        expected = expected_keys_from_config(
            narrowed(get_config_path(target), self.cfg), with_fpn=with_fpn)
        result = convert_to_mmdet(self.checkpoint, with_fpn=with_fpn,
                                  expected=expected)
        print(result.report())
        # a backbone of another width would keep none of its weights
        require_full_backbone(result, target)
        out = osp.join(out_dir, 'mmdet_init.pth')
        save_mmdet_checkpoint(result, out)
        return dict(checkpoint=out, num_mapped=len(result.mapped),
                    num_skipped=len(result.skipped),
                    num_missing=len(result.missing or ()))


@dataclass
class FinetuneStep:
    """Mask R-CNN fine-tuning and COCO evaluation on the val split."""
    cfg: MainJobConfig
    method: str
    checkpoint: Optional[str] = None  # the converted one; None: random

    all_ranks = True  # a training run every rank joins

    @property
    def name(self) -> str:
        return f'finetune_{self.method}{self.cfg.stage_suffix}'

    def settings(self) -> Dict:
        cfg = self.cfg
        out = dict(config=finetune_config(cfg.protocol),
                   epochs=cfg.finetune_epochs, seed=cfg.train_seed,
                   init=self.method)
        if cfg.user_data:  # absent on synthetic data: its keys stay valid
            out.update(img_scale=cfg.img_scale, batch=cfg.finetune_batch)
        if cfg.finetune_images:  # absent when unset: earlier keys valid
            out['train_images'] = cfg.finetune_images
        return _with_width(cfg, with_config_digest(out))

    def compute(self, out_dir: str) -> Dict:
        from ccop_plugin.apis.finetune import finetune_detector, train_subset
        cfg = self.cfg
        train_ann = (train_subset(cfg.data_root, out_dir, cfg.finetune_images)
                     if cfg.finetune_images else None)
        metrics = finetune_detector(
            detector_config(cfg), out_dir,
            checkpoint=self.checkpoint, data_root=cfg.data_root,
            max_epochs=cfg.finetune_epochs, seed=cfg.train_seed,
            cfg_options=_launcher_option(cfg), train_ann=train_ann)
        return dict(metrics=_finite(metrics),
                    checkpoint=newest_checkpoint(out_dir),
                    config=finetune_config(cfg.protocol))


@dataclass
class TestStep:
    """The fine-tuned detector evaluated once on the held-out test split."""
    cfg: MainJobConfig
    method: str
    checkpoint: Optional[str] = None

    all_ranks = True  # a training run every rank joins

    @property
    def name(self) -> str:
        return f'test_{self.method}{self.cfg.stage_suffix}'

    def settings(self) -> Dict:
        return _with_width(self.cfg, with_config_digest(dict(
            config=finetune_config(self.cfg.protocol),
            split=self.cfg.eval_split)))

    def compute(self, out_dir: str) -> Dict:
        from ccop_plugin.apis.finetune import evaluate_detector
        from ccop_plugin.datagen import SPLITS
        cfg = self.cfg
        metrics = evaluate_detector(
            detector_config(cfg), self.checkpoint, out_dir,
            data_root=cfg.data_root, ann_file=SPLITS[cfg.eval_split][1],
            img_prefix=f'images/{cfg.eval_split}/',
            cfg_options=_launcher_option(cfg))
        return dict(metrics=_finite(metrics), split=cfg.eval_split)


def probe_accuracy(probe: Probe, checkpoint: Optional[str], data_root: str,
                   seed: int, split: str = 'val', **kwargs):
    """The accuracy ``probe`` reports (a fraction in [0, 1], or None)."""
    out = probe(checkpoint, data_root, seed=seed, val_split=split, **kwargs)
    acc = out['acc'] if isinstance(out, dict) else out
    return None if acc is None else float(acc)


def _function_key(fn: Callable, **settings) -> Dict:
    """A probe stage's settings: ``fn``'s name, ``version`` and (from 4 on)
    ``probe_version``, each only when set (earlier keys stay valid)."""
    out = dict(function=probe_name(fn), **settings)
    if getattr(fn, 'version', None) is not None:
        out['version'] = fn.version
    if getattr(fn, 'probe_version', 3) != 3:
        out['probe_version'] = fn.probe_version
    return out


@dataclass
class ProbeStep:
    """Linear-probe accuracy of the pre-trained backbone (comparison)."""
    cfg: MainJobConfig
    method: str
    probe: Probe
    checkpoint: Optional[str] = None  # pre-training's; None: random init

    @property
    def name(self) -> str:
        return f'probe_{self.method}{self.cfg.stage_suffix}'

    def settings(self) -> Dict:
        cfg = self.cfg
        out = _function_key(self.probe, seed=cfg.train_seed,
                            init=self.method, split=cfg.eval_split)
        if cfg.protocol != 'cpu-tiny':  # random init of the protocol's width
            out['width'] = PROTOCOL_WIDTH[cfg.protocol]
        return out

    def compute(self, out_dir: str) -> Dict:
        cfg = self.cfg
        kw = ({} if cfg.protocol == 'cpu-tiny' else
              dict(random_width=PROTOCOL_WIDTH[cfg.protocol]))
        acc = probe_accuracy(self.probe, self.checkpoint, cfg.data_root,
                             cfg.train_seed, split=cfg.eval_split, **kw)
        if acc is None:
            # not a result: the stage must not be recorded as done
            raise RuntimeError('the probe measured nothing')
        return dict(acc=acc, split=cfg.eval_split)


@dataclass
class SupervisedStep:
    """The probe's positive control (comparison): the protocol's ResNet
    trained with the train split's labels, then probed like every method
    (``control(data_root, seed=..., val_split=..., width=...)``, e.g.
    :func:`ccop_plugin.evaluation.supervised_probe`)."""
    cfg: MainJobConfig
    control: Callable[..., Dict]
    steps: Optional[int] = None  # its training steps; None: its default

    @property
    def name(self) -> str:
        return f'supervised{self.cfg.stage_suffix}'

    def settings(self) -> Dict:
        cfg = self.cfg
        out = _function_key(self.control, seed=cfg.train_seed,
                            split=cfg.eval_split,
                            width=PROTOCOL_WIDTH[cfg.protocol])
        if self.steps is not None:
            out['steps'] = self.steps
        return out

    def compute(self, out_dir: str) -> Dict:
        cfg = self.cfg
        kw = {} if self.steps is None else dict(steps=self.steps)
        res = self.control(cfg.data_root, seed=cfg.train_seed,
                           val_split=cfg.eval_split,
                           width=PROTOCOL_WIDTH[cfg.protocol], log=log, **kw)
        acc = res['acc'] if isinstance(res, dict) else res
        if acc is None:
            raise RuntimeError('the supervised control measured nothing')
        train = (res.get('supervised') or {}) if isinstance(res, dict) else {}
        return dict(acc=float(acc), split=cfg.eval_split,
                    train_acc=train.get('train_acc'))
