"""The end-to-end main job: data -> proposals -> pre-training -> transfer.

Configs are the packaged ones (:func:`ccop_plugin.utils.get_config_path`),
so the job runs from any folder after a regular ``pip install``.

Stages (each resumable, each skipped when its result is already there):

1. ``data``: the embedded synthetic COCO dataset
   (:func:`ccop_plugin.datagen.generate_synthetic_coco`).
2. ``proposals``: selective search over the unlabeled split
   (:func:`ccop_plugin.proposals.run_proposals`, all cores).
3. ``pretrain_<method>``: pre-training in mmengine's ``Runner``, in this
   process (CCOP, MoCo v2, or nothing for the scratch baseline); an
   interrupted run resumes from its last checkpoint.
4. ``convert_<method>``: the query encoder to an mmdet checkpoint
   (:func:`ccop_plugin.converters.convert_to_mmdet`).
5. ``finetune_<method>``: Mask R-CNN fine-tuning and COCO bbox/segm evaluation
   (:func:`ccop_plugin.apis.finetune.finetune_detector`).

:func:`run_main_job` runs CCOP end to end and writes the report;
:func:`run_comparison` runs the same budget for CCOP, MoCo v2 and no
pre-training and returns one AP table.
"""
import glob
import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

from ccop_plugin.utils.config_path import get_config_path

#: Packaged configs (names for :func:`ccop_plugin.utils.get_config_path`).
PRETRAIN_CONFIGS = {
    'ccop': 'ccop/ccop_resnet18-fpn_cpu-tiny.py',
    'mocov2': 'mocov2/mocov2_resnet18_cpu-tiny.py',
}
FINETUNE_CONFIG = 'mask_rcnn/mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py'


@dataclass
class MainJobConfig:
    """Settings of the main job; defaults finish in minutes on 2 cores.

    Attributes:
        work_dir: Folder of every stage's output.
        seed: Seed of the data, the proposals and the training runs.
        num_unlabeled / num_train / num_val / img_size: Synthetic data sizes.
        pretrain_iters: Pre-training iterations (batch 4 per iteration...
            set by the pre-training config's batch size).
        finetune_epochs: Mask R-CNN epochs on the train split.
        workers: Proposal workers (None: all cores).
        with_fpn: Transfer the pre-trained FPN too (the papers' protocol).
    """
    work_dir: str = 'work_dirs/demo'
    seed: int = 0
    num_unlabeled: int = 200
    num_train: int = 120
    num_val: int = 40
    img_size: int = 128
    pretrain_iters: int = 200
    pretrain_batch: int = 16
    finetune_epochs: int = 6
    workers: Optional[int] = None
    with_fpn: bool = True
    extra: Dict = field(default_factory=dict)

    @property
    def data_root(self) -> str:
        return osp.join(self.work_dir, 'data')

    @property
    def proposal_file(self) -> str:
        return osp.join(self.data_root, 'annotations',
                        'unlabeled_proposals.json')


def _log(msg: str) -> None:
    print(f'[main job {time.strftime("%H:%M:%S")}] {msg}', flush=True)


class Stage:
    """A stage whose finished result is recorded in ``<dir>/stage.json``."""

    def __init__(self, work_dir: str, name: str):
        self.name = name
        self.dir = osp.join(work_dir, name)
        self.marker = osp.join(self.dir, 'stage.json')

    def done(self) -> Optional[Dict]:
        if osp.isfile(self.marker):
            with open(self.marker) as f:
                return json.load(f)
        return None

    def run(self, fn: Callable[[], Dict]) -> Dict:
        found = self.done()
        if found is not None:
            _log(f'{self.name}: done before, reusing ({self.marker})')
            return found
        os.makedirs(self.dir, exist_ok=True)
        _log(f'{self.name}: start')
        t0 = time.time()
        result = dict(fn())
        result['seconds'] = round(time.time() - t0, 1)
        tmp = self.marker + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, self.marker)
        _log(f'{self.name}: finished in {result["seconds"]:.0f} s')
        return result


# ------------------------------------------------------------------ stages
def stage_data(cfg: MainJobConfig) -> Dict:
    from ccop_plugin.datagen import generate_synthetic_coco
    meta = generate_synthetic_coco(
        cfg.data_root, seed=cfg.seed, num_unlabeled=cfg.num_unlabeled,
        num_train=cfg.num_train, num_val=cfg.num_val, img_size=cfg.img_size,
        verbose=True)
    return dict(data_root=cfg.data_root,
                splits={k: v['num_images'] for k, v in meta['splits'].items()})


def stage_proposals(cfg: MainJobConfig, work_dir: str) -> Dict:
    from ccop_plugin.proposals import get_preset, list_coco_images, run_proposals
    ann = osp.join(cfg.data_root, 'annotations', 'unlabeled.json')
    entries = list_coco_images(ann)
    summary = run_proposals(
        entries, osp.join(cfg.data_root, 'images', 'unlabeled'),
        get_preset('ccop'), work_dir=osp.join(work_dir, 'state'),
        out=cfg.proposal_file, workers=cfg.workers,
        source=dict(ann_file=ann), log=_log)
    keep = ('images_in_shard', 'processed', 'failed', 'proposals_per_image',
            'images_per_s', 'workers')
    return dict(proposal_file=cfg.proposal_file,
                **{k: summary[k] for k in keep if k in summary})


def _latest_checkpoint(work_dir: str) -> Optional[str]:
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            path = f.read().strip()
        if osp.isfile(path):
            return path
    ckpts = sorted(glob.glob(osp.join(work_dir, 'iter_*.pth')),
                   key=lambda p: int(p.rsplit('_', 1)[1][:-4]))
    return ckpts[-1] if ckpts else None


def pretrain(config: str, work_dir: str, cfg_options: Optional[Dict] = None,
             resume: Optional[str] = None) -> None:
    """Run a pre-training config in mmengine's ``Runner``, in this process.

    Args:
        config (str): Config file (e.g. from :func:`get_config_path`).
        work_dir (str): Run folder (logs, checkpoints).
        cfg_options (dict, optional): ``--cfg-options`` style overrides.
        resume (str, optional): Checkpoint to resume from.
    """
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    if resume is not None:
        cfg.resume, cfg.load_from = True, resume
    # the Runner makes the config's scope the process default: restore it
    saved = dict(DefaultScope._instance_dict)
    try:
        Runner.from_cfg(cfg).train()
    finally:
        DefaultScope._instance_dict.clear()
        DefaultScope._instance_dict.update(saved)


def stage_pretrain(cfg: MainJobConfig, method: str, work_dir: str) -> Dict:
    """Pre-train with the Runner (:func:`pretrain`); resumes if interrupted."""
    config = get_config_path(PRETRAIN_CONFIGS[method])
    img_dir = osp.join(osp.abspath(cfg.data_root), 'images', 'unlabeled') + '/'
    # linear warm-up (at most 5 iterations, as the tiny configs), then cosine
    warmup = min(5, max(1, cfg.pretrain_iters // 2))
    if method == 'ccop':  # images listed with their proposals
        options = {
            'train_dataloader.dataset.data_root': img_dir,
            'train_dataloader.dataset.ann_file':
            osp.abspath(cfg.proposal_file),
            'train_dataloader.dataset.data_prefix.img_path': '',
        }
    else:  # an image folder
        options = {'train_dataloader.dataset.data_root': img_dir}
    options.update({
        'train_dataloader.batch_size': cfg.pretrain_batch,
        'train_cfg.max_iters': cfg.pretrain_iters,
        'param_scheduler.0.end': warmup,
        'param_scheduler.1.begin': warmup,
        'param_scheduler.1.T_max': cfg.pretrain_iters - warmup,
        'param_scheduler.1.end': cfg.pretrain_iters,
        'default_hooks.checkpoint.interval': max(1, cfg.pretrain_iters // 4),
        'randomness.seed': cfg.seed,
    })
    resume = _latest_checkpoint(work_dir)
    if resume:
        _log(f'{method}: resuming from {resume}')
    _log(f'{method}: {config} -> {work_dir}')
    pretrain(config, work_dir, options, resume=resume)
    ckpt = _latest_checkpoint(work_dir)
    if ckpt is None:
        raise RuntimeError(f'pre-training wrote no checkpoint in {work_dir}')
    return dict(checkpoint=ckpt, config=PRETRAIN_CONFIGS[method],
                iters=cfg.pretrain_iters, batch=cfg.pretrain_batch)


def stage_convert(cfg: MainJobConfig, checkpoint: str, work_dir: str) -> Dict:
    from ccop_plugin.converters import convert_to_mmdet, save_mmdet_checkpoint
    result = convert_to_mmdet(checkpoint, with_fpn=cfg.with_fpn)
    print(result.report())
    out = osp.join(work_dir, 'mmdet_init.pth')
    save_mmdet_checkpoint(result, out)
    return dict(checkpoint=out, num_mapped=len(result.mapped))


def stage_finetune(cfg: MainJobConfig, checkpoint: Optional[str],
                   work_dir: str) -> Dict:
    from ccop_plugin.apis.finetune import finetune_detector
    metrics = finetune_detector(
        get_config_path(FINETUNE_CONFIG), work_dir, checkpoint=checkpoint,
        data_root=cfg.data_root, max_epochs=cfg.finetune_epochs,
        seed=cfg.seed)
    ckpts = sorted(glob.glob(osp.join(work_dir, 'epoch_*.pth')))
    return dict(metrics=metrics, checkpoint=ckpts[-1] if ckpts else None,
                config=FINETUNE_CONFIG)


def run_method(cfg: MainJobConfig, method: str) -> Dict:
    """Pre-train (unless ``method == 'none'``), convert, fine-tune."""
    results = {}
    init = None
    if method != 'none':
        st = Stage(cfg.work_dir, f'pretrain_{method}')
        results['pretrain'] = st.run(
            lambda: stage_pretrain(cfg, method, st.dir))
        sc = Stage(cfg.work_dir, f'convert_{method}')
        results['convert'] = sc.run(lambda: stage_convert(
            cfg, results['pretrain']['checkpoint'], sc.dir))
        init = results['convert']['checkpoint']
    sf = Stage(cfg.work_dir, f'finetune_{method}')
    results['finetune'] = sf.run(lambda: stage_finetune(cfg, init, sf.dir))
    return results


def prepare_data(cfg: MainJobConfig) -> Dict:
    out = dict(data=Stage(cfg.work_dir, 'data').run(lambda: stage_data(cfg)))
    sp = Stage(cfg.work_dir, 'proposals')
    out['proposals'] = sp.run(lambda: stage_proposals(cfg, sp.dir))
    return out


def run_main_job(cfg: MainJobConfig) -> Dict:
    """Run the CCOP main job and write ``<work_dir>/report.md``."""
    from .report import write_report
    t0 = time.time()
    results = prepare_data(cfg)
    results['ccop'] = run_method(cfg, 'ccop')
    report = write_report(cfg, results, ['ccop'])
    _log(f'main job done in {time.time() - t0:.0f} s; report: {report}')
    return results


def run_comparison(cfg: MainJobConfig,
                   methods: List[str] = ('ccop', 'mocov2', 'none')) -> Dict:
    """Same data and budget for each method; returns and writes an AP table."""
    from .report import ap_table, write_report
    results = prepare_data(cfg)
    for m in methods:
        results[m] = run_method(cfg, m)
    table = ap_table({m: results[m]['finetune']['metrics'] for m in methods})
    with open(osp.join(cfg.work_dir, 'comparison.md'), 'w') as f:
        f.write(table)
    write_report(cfg, results, list(methods))
    print(table)
    return results


def config_dict(cfg: MainJobConfig) -> Dict:
    return asdict(cfg)
