"""The end-to-end main job: data -> proposals -> pre-training -> transfer.

Configs are the packaged ones (:func:`ccop_plugin.utils.get_config_path`),
so the job runs from any folder after a regular ``pip install``.

Stages (each resumable, each reused when its result is already there and was
made with the same settings -- see :class:`Stage`; a change of settings
recomputes that stage and the stages after it, and the log and the report say
so):

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
6. ``test_<method>`` (when the data has a test split, ``num_test > 0``): the
   fine-tuned detector evaluated once on the held-out test split
   (:func:`ccop_plugin.apis.finetune.evaluate_detector`).
7. ``probe_<method>`` (comparison only): linear-probe accuracy of the
   pre-trained backbone (:func:`probe_accuracy`).

Seeds: ``seed`` makes the data (and the proposals); ``run_seed`` (default:
``seed``) seeds pre-training, fine-tuning and the probe (mmengine
``randomness.seed``: data order, initialisation, augmentation). The stages of
a run seed other than ``seed`` live in ``<stage>_<method>_seed<s>``.

:func:`run_main_job` runs CCOP end to end and writes the report;
:func:`run_comparison` runs the same data and budget for every method
(:data:`METHODS`: CCOP, MoCo v2, no pre-training, the ablations and the
related methods) and every run seed, and writes a mean +- std table, a plot
with error bars and the machine-readable record
(:func:`ccop_plugin.apis.science_record.write_science_record`).
"""
import glob
import hashlib
import inspect
import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence

from ccop_plugin.utils.config_path import get_config_path
from ccop_plugin.utils.fileio import atomic_write_json, atomic_write_text
from ccop_plugin.utils.machine import machine_info, machine_summary
from .methods import (
    DEFAULT_METHODS,
    FINETUNE_CONFIG,
    IMAGE_FOLDER_METHODS,
    METHODS,
    PRETRAIN_CONFIGS,
)
from .report import write_report
from .science_record import check_record_path, write_science_record
from .stats import compute_seconds
from .tables import comparison_table, paired_table, pretrain_loss_table

#: Function measuring the linear-probe accuracy (imported when needed).
PROBE_FUNCTION = 'ccop_plugin.evaluation.linear_probe.linear_probe'


@dataclass
class MainJobConfig:
    """Settings of the main job; defaults finish in minutes on 2 cores.

    Attributes:
        work_dir: Folder of every stage's output.
        seed: Seed of the data and the proposals, and of the training runs
            unless ``run_seed`` is given.
        run_seed: Seed of pre-training, fine-tuning and the probe (data
            order, initialisation, augmentation); None: ``seed``.
        num_unlabeled / num_train / num_val / img_size: Synthetic data sizes.
        num_test: Images of a held-out test split (0: none; the final
            figures then come from the val split).
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
    num_test: int = 0
    run_seed: Optional[int] = None
    pretrain_iters: int = 200
    pretrain_batch: int = 16
    finetune_epochs: int = 6
    workers: Optional[int] = None
    with_fpn: bool = True

    @property
    def train_seed(self) -> int:
        """The seed of the training runs (``run_seed``, else ``seed``)."""
        return self.seed if self.run_seed is None else self.run_seed

    @property
    def eval_split(self) -> str:
        """Split of the final figures: ``test`` when there is one."""
        return 'test' if self.num_test > 0 else 'val'

    @property
    def data_root(self) -> str:
        return osp.join(self.work_dir, 'data')

    @property
    def proposal_file(self) -> str:
        return osp.join(self.data_root, 'annotations',
                        'unlabeled_proposals.json')


def _log(msg: str) -> None:
    print(f'[main job {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def _flat(d: Dict, prefix: str = '') -> Dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


def settings_diff(old: Optional[Dict], new: Dict) -> str:
    """``'a 1 -> 2, b ...'``: what changed between two settings records."""
    if old is None:
        return 'recorded before stage keys'
    a, b = _flat(old), _flat(new)
    parts = [f'{k} {a.get(k, "unset")} -> {b.get(k, "unset")}'
             for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ', '.join(parts) or 'same settings'


class Stage:
    """A stage whose finished result is recorded in ``<dir>/stage.json``.

    Every stage is keyed on the settings it depends on and on the keys of
    the stages it reads (``upstream``): ``key`` is a hash of both. A finished
    stage is reused only when its recorded key matches; otherwise it is
    recomputed (``stage X: settings changed (...), recomputing``), and so is
    every stage after it, whose keys contain this one's. The previous output
    folder is moved to ``<work_dir>/superseded/<name>-<key>`` first (nothing
    is deleted); an unfinished stage with other settings starts afresh the
    same way instead of resuming (the key of a started stage is kept in
    ``<work_dir>/.stages/<name>.json``).

    ``run`` returns the record plus ``run``: ``'reused'``, ``'computed'`` or
    ``'recomputed (<what changed>)'`` (not stored).
    """

    def __init__(self, work_dir: str, name: str,
                 settings: Optional[Dict] = None,
                 upstream: Sequence[Dict] = ()):
        self.name = name
        self.work_dir = work_dir
        self.dir = osp.join(work_dir, name)
        self.marker = osp.join(self.dir, 'stage.json')
        # key of a started stage; outside its folder, which may have to
        # start empty (the data generator refuses a folder of other files)
        self.started = osp.join(work_dir, '.stages', f'{name}.json')
        self.settings = dict(
            settings or {},
            upstream={u['stage']: u['key'] for u in upstream})
        blob = json.dumps(self.settings, sort_keys=True, default=str)
        self.key = hashlib.sha256(blob.encode()).hexdigest()[:16]

    @staticmethod
    def _read(path: str) -> Optional[Dict]:
        if osp.isfile(path):
            with open(path) as f:
                return json.load(f)
        return None

    def done(self) -> Optional[Dict]:
        """The finished record when its key matches, else None."""
        found = self._read(self.marker)
        if found is not None and found.get('key') == self.key:
            return found
        return None

    def _supersede(self, old_key: Optional[str]) -> str:
        dest_dir = osp.join(self.work_dir, 'superseded')
        os.makedirs(dest_dir, exist_ok=True)
        base = osp.join(dest_dir,
                        f'{self.name}-{old_key or "unkeyed"}')
        dest, n = base, 1
        while osp.exists(dest):
            n += 1
            dest = f'{base}.{n}'
        os.replace(self.dir, dest)
        return dest

    def run(self, fn: Callable[[], Dict]) -> Dict:
        status = 'computed'
        found = self._read(self.marker)
        if found is not None and found.get('key') == self.key:
            _log(f'{self.name}: done before, reusing (same settings, '
                 f'{self.marker})')
            return dict(found, run='reused')
        old = found if found is not None else self._read(self.started)
        if old is not None and old.get('key') == self.key:
            pass  # unfinished with these settings: resume
        elif old is not None or (osp.isdir(self.dir) and os.listdir(self.dir)):
            why = settings_diff(old.get('settings') if old else None,
                                self.settings)
            moved = ''
            if osp.isdir(self.dir):
                dest = self._supersede(old.get('key') if old else None)
                moved = f' (previous output moved to {dest})'
            _log(f'stage {self.name}: settings changed ({why}), '
                 f'recomputing{moved}')
            status = f'recomputed ({why})'
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(osp.dirname(self.started), exist_ok=True)
        _write_json(self.started, dict(key=self.key, settings=self.settings))
        _log(f'{self.name}: start')
        t0 = time.time()
        result = dict(fn())
        result['seconds'] = round(time.time() - t0, 1)
        result['machine'] = machine_summary()  # where it was computed
        result.update(stage=self.name, key=self.key, settings=self.settings)
        _write_json(self.marker, result)
        _log(f'{self.name}: finished in {result["seconds"]:.0f} s')
        return dict(result, run=status)


def _write_json(path: str, obj: Dict) -> None:
    atomic_write_json(path, obj, default=str)


# ------------------------------------------------------------------ stages
def stage_data(cfg: MainJobConfig) -> Dict:
    from ccop_plugin.datagen import generate_synthetic_coco
    meta = generate_synthetic_coco(
        cfg.data_root, seed=cfg.seed, num_unlabeled=cfg.num_unlabeled,
        num_train=cfg.num_train, num_val=cfg.num_val, img_size=cfg.img_size,
        num_test=cfg.num_test, verbose=True)
    return dict(data_root=cfg.data_root,
                splits={k: v['num_images'] for k, v in meta['splits'].items()})


def stage_proposals(cfg: MainJobConfig, work_dir: str) -> Dict:
    from ccop_plugin.proposals import (
        get_preset,
        list_coco_images,
        run_proposals,
    )
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

    from ccop_plugin.apis.finetune import unique_run_names
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    unique_run_names(cfg)
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


def pretrain_options(cfg: MainJobConfig, method: str) -> Dict:
    """``--cfg-options`` of a method's pre-training: the data, the budget
    and the seed, the same for every method."""
    img_dir = osp.join(osp.abspath(cfg.data_root), 'images', 'unlabeled') + '/'
    # linear warm-up (at most 5 iterations, as the tiny configs), then cosine
    warmup = min(5, max(1, cfg.pretrain_iters // 2))
    if method not in IMAGE_FOLDER_METHODS:  # images listed with proposals
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
        # one schedule for every method (the tiny PLRC / MCL configs have
        # no warm-up of their own)
        'param_scheduler': [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                 end=warmup),
            dict(type='CosineAnnealingLR', T_max=cfg.pretrain_iters - warmup,
                 by_epoch=False, begin=warmup, end=cfg.pretrain_iters),
        ],
        'default_hooks.checkpoint.interval': max(1, cfg.pretrain_iters // 4),
        # the last two only (as the tiny CCOP / MoCo v2 configs): methods x
        # seeds runs would otherwise fill the disk
        'default_hooks.checkpoint.max_keep_ckpts': 2,
        'randomness.seed': cfg.train_seed,
    })
    return options


def stage_pretrain(cfg: MainJobConfig, method: str, work_dir: str) -> Dict:
    """Pre-train with the Runner (:func:`pretrain`); resumes if interrupted."""
    config = get_config_path(PRETRAIN_CONFIGS[method])
    options = pretrain_options(cfg, method)
    resume = _latest_checkpoint(work_dir)
    if resume:
        _log(f'{method}: resuming from {resume}')
    _log(f'{method}: {config} -> {work_dir}')
    pretrain(config, work_dir, options, resume=resume)
    ckpt = _latest_checkpoint(work_dir)
    if ckpt is None:
        raise RuntimeError(f'pre-training wrote no checkpoint in {work_dir}')
    return dict(checkpoint=ckpt, config=PRETRAIN_CONFIGS[method],
                iters=cfg.pretrain_iters, batch=cfg.pretrain_batch,
                seed=cfg.train_seed)


def stage_convert(cfg: MainJobConfig, checkpoint: str, work_dir: str) -> Dict:
    from ccop_plugin.converters import (
        convert_to_mmdet,
        expected_keys_from_config,
        save_mmdet_checkpoint,
    )
    # the fine-tuned detector's keys: an FPN of other channels (MCL's) is
    # skipped and reported instead of loading half-way
    expected = expected_keys_from_config(get_config_path(FINETUNE_CONFIG),
                                         with_fpn=cfg.with_fpn)
    result = convert_to_mmdet(checkpoint, with_fpn=cfg.with_fpn,
                              expected=expected)
    print(result.report())
    out = osp.join(work_dir, 'mmdet_init.pth')
    save_mmdet_checkpoint(result, out)
    return dict(checkpoint=out, num_mapped=len(result.mapped),
                num_skipped=len(result.skipped),
                num_missing=len(result.missing or ()))


def stage_finetune(cfg: MainJobConfig, checkpoint: Optional[str],
                   work_dir: str) -> Dict:
    from ccop_plugin.apis.finetune import finetune_detector
    metrics = finetune_detector(
        get_config_path(FINETUNE_CONFIG), work_dir, checkpoint=checkpoint,
        data_root=cfg.data_root, max_epochs=cfg.finetune_epochs,
        seed=cfg.train_seed)
    ckpts = sorted(glob.glob(osp.join(work_dir, 'epoch_*.pth')))
    return dict(metrics=metrics, checkpoint=ckpts[-1] if ckpts else None,
                config=FINETUNE_CONFIG)


def stage_test(cfg: MainJobConfig, checkpoint: str, work_dir: str) -> Dict:
    """Evaluate the fine-tuned detector once on the held-out test split."""
    from ccop_plugin.apis.finetune import evaluate_detector
    from ccop_plugin.datagen import SPLITS
    metrics = evaluate_detector(
        get_config_path(FINETUNE_CONFIG), checkpoint, work_dir,
        data_root=cfg.data_root, ann_file=SPLITS[cfg.eval_split][1],
        img_prefix=f'images/{cfg.eval_split}/')
    return dict(metrics=metrics, split=cfg.eval_split)


def _probe_function() -> Optional[Callable]:
    """:data:`PROBE_FUNCTION`, or None when its module is not there."""
    import importlib
    module, name = PROBE_FUNCTION.rsplit('.', 1)
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        _log(f'probe accuracy not measured ({PROBE_FUNCTION} unavailable: '
             f'{e}); recorded as null')
        return None


def probe_accuracy(checkpoint: Optional[str], data_root: str, seed: int,
                   work_dir: str, split: str = 'val') -> Optional[float]:
    """Linear-probe accuracy (a fraction in [0, 1]) of a pre-training
    checkpoint (None: the randomly initialised backbone) on ``split``, or
    None when the probe is not available. The one place that calls the
    probe (:data:`PROBE_FUNCTION`, which fits on the train split)."""
    fn = _probe_function()
    if fn is None:
        return None
    params = inspect.signature(fn).parameters
    kwargs = dict(seed=seed)
    if 'work_dir' in params:
        kwargs['work_dir'] = work_dir
    if 'val_split' in params:
        kwargs['val_split'] = split
    elif split != 'val':
        raise TypeError(f'{PROBE_FUNCTION} cannot score on the {split!r} '
                        'split (no val_split argument)')
    out = fn(checkpoint, data_root, **kwargs)
    acc = out['acc'] if isinstance(out, dict) else out
    return None if acc is None else float(acc)


def stage_probe(cfg: MainJobConfig, checkpoint: Optional[str],
                work_dir: str) -> Dict:
    acc = probe_accuracy(checkpoint, cfg.data_root, cfg.train_seed, work_dir,
                         split=cfg.eval_split)
    if acc is None:
        # not a result: the stage must not be recorded as done
        raise RuntimeError('the linear probe is not available')
    return dict(acc=acc, split=cfg.eval_split)


def stage_settings(cfg: MainJobConfig, stage: str,
                   method: Optional[str] = None) -> Dict:
    """The settings a stage's result depends on (its key hashes them and
    its upstream stages' keys)."""
    if stage == 'data':
        from ccop_plugin.datagen.coco_writer import FORMAT_VERSION
        out = dict(seed=cfg.seed, num_unlabeled=cfg.num_unlabeled,
                   num_train=cfg.num_train, num_val=cfg.num_val,
                   img_size=cfg.img_size, format_version=FORMAT_VERSION)
        if cfg.num_test:  # absent when 0: earlier keys stay valid
            out['num_test'] = cfg.num_test
        return out
    if stage == 'proposals':
        from ccop_plugin.proposals import get_preset
        return dict(preset='ccop', params=asdict(get_preset('ccop')))
    if stage == 'pretrain':
        return dict(method=method, config=PRETRAIN_CONFIGS.get(method),
                    iters=cfg.pretrain_iters, batch=cfg.pretrain_batch,
                    seed=cfg.train_seed)
    if stage == 'convert':
        return dict(with_fpn=cfg.with_fpn)
    if stage == 'finetune':
        return dict(config=FINETUNE_CONFIG, epochs=cfg.finetune_epochs,
                    seed=cfg.train_seed, init=method)
    if stage == 'test':
        return dict(config=FINETUNE_CONFIG, split=cfg.eval_split)
    if stage == 'probe':
        return dict(function=PROBE_FUNCTION, seed=cfg.train_seed,
                    init=method, split=cfg.eval_split)
    raise KeyError(f'unknown stage {stage!r}')


def stage_suffix(cfg: MainJobConfig) -> str:
    """``''`` for the data seed, ``'_seed<s>'`` for another run seed."""
    return '' if cfg.train_seed == cfg.seed else f'_seed{cfg.train_seed}'


def run_method(cfg: MainJobConfig, method: str,
               upstream: Optional[Dict] = None,
               seed: Optional[int] = None, probe: bool = False) -> Dict:
    """Pre-train (unless ``method == 'none'``), convert, fine-tune, and
    evaluate on the test split when the data has one.

    Args:
        cfg: The job's settings.
        method: A key of :data:`METHODS`.
        upstream: The records of the ``data`` and ``proposals`` stages
            (:func:`prepare_data`), whose keys are part of this method's keys.
        seed: Run seed (pre-training, fine-tuning, probe); None:
            ``cfg.train_seed``. The data stays that of ``cfg.seed``.
        probe: Also measure the linear-probe accuracy
            (:func:`probe_accuracy`); ``results['probe']['acc']`` is None
            when the probe is unavailable or fails (logged).
    """
    if method != 'none' and method not in PRETRAIN_CONFIGS:
        raise ValueError(f'unknown method {method!r}; known: '
                         f'{", ".join(METHODS)}')
    if seed is not None:
        cfg = replace(cfg, run_seed=seed)
    upstream = upstream or prepare_data(cfg)
    sfx = stage_suffix(cfg)
    results = {}
    init = None
    pre_ckpt = None
    before = [upstream['data']]  # what fine-tuning depends on
    if method != 'none':
        # methods reading the proposal file depend on it; the others only
        # on the images
        pre_up = [upstream['data' if method in IMAGE_FOLDER_METHODS
                           else 'proposals']]
        st = Stage(cfg.work_dir, f'pretrain_{method}{sfx}',
                   stage_settings(cfg, 'pretrain', method), pre_up)
        results['pretrain'] = st.run(
            lambda: stage_pretrain(cfg, method, st.dir))
        pre_ckpt = results['pretrain']['checkpoint']
        sc = Stage(cfg.work_dir, f'convert_{method}{sfx}',
                   stage_settings(cfg, 'convert', method),
                   [results['pretrain']])
        results['convert'] = sc.run(lambda: stage_convert(
            cfg, pre_ckpt, sc.dir))
        init = results['convert']['checkpoint']
        before.append(results['convert'])
    sf = Stage(cfg.work_dir, f'finetune_{method}{sfx}',
               stage_settings(cfg, 'finetune', method), before)
    results['finetune'] = sf.run(lambda: stage_finetune(cfg, init, sf.dir))
    if cfg.num_test > 0:
        se = Stage(cfg.work_dir, f'test_{method}{sfx}',
                   stage_settings(cfg, 'test', method),
                   [results['finetune'], upstream['data']])
        results['test'] = se.run(lambda: stage_test(
            cfg, results['finetune']['checkpoint'], se.dir))
    if probe:
        results['probe'] = _run_probe(cfg, method, pre_ckpt, sfx, upstream,
                                      results.get('pretrain'))
    return results


def _run_probe(cfg: MainJobConfig, method: str, checkpoint: Optional[str],
               sfx: str, upstream: Dict, pretrain: Optional[Dict]) -> Dict:
    name = f'probe_{method}{sfx}'
    if _probe_function() is None:
        return dict(acc=None, run='not measured (probe unavailable)')
    up = [upstream['data']] + ([pretrain] if pretrain else [])
    sp = Stage(cfg.work_dir, name, stage_settings(cfg, 'probe', method), up)
    try:
        return sp.run(lambda: stage_probe(cfg, checkpoint, sp.dir))
    except Exception as e:  # a missing figure, not a lost comparison
        _log(f'{name}: the probe failed ({type(e).__name__}: {e}); '
             'probe_acc recorded as null')
        return dict(acc=None, run=f'failed ({type(e).__name__}: {e})')


def prepare_data(cfg: MainJobConfig) -> Dict:
    sd = Stage(cfg.work_dir, 'data', stage_settings(cfg, 'data'))
    out = dict(data=sd.run(lambda: stage_data(cfg)))
    sp = Stage(cfg.work_dir, 'proposals', stage_settings(cfg, 'proposals'),
               [out['data']])
    out['proposals'] = sp.run(lambda: stage_proposals(cfg, sp.dir))
    return out


def run_main_job(cfg: MainJobConfig) -> Dict:
    """Run the CCOP main job and write ``<work_dir>/report.md``."""
    t0 = time.time()
    results = prepare_data(cfg)
    results['ccop'] = run_method(cfg, 'ccop', results)
    report = write_report(cfg, results, ['ccop'])
    _log(f'main job done in {time.time() - t0:.0f} s; report: {report}')
    return results


def comparison_seeds(cfg: MainJobConfig, num_seeds: int) -> List[int]:
    """``num_seeds`` run seeds: ``seed``, ``seed + 1``, ..."""
    if num_seeds < 1:
        raise ValueError(f'--seeds must be >= 1, got {num_seeds}')
    return [cfg.seed + i for i in range(num_seeds)]


def check_methods(methods: Sequence[str]) -> List[str]:
    """The methods, checked (known, no repeats)."""
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f'unknown method(s) {", ".join(unknown)}; known: '
                         f'{", ".join(METHODS)}')
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(f'methods must be given once each, got {methods}')
    return methods


def comparison_protocol(cfg: MainJobConfig, methods: Sequence[str],
                        seeds: Sequence[int],
                        command: Optional[str] = None) -> Dict:
    """Every setting that defines a comparison run (the record's
    ``protocol``; ``command``: the command line that ran it, if any)."""
    settings = asdict(cfg)
    settings.pop('run_seed')
    return dict(
        command=command,
        settings=settings,
        methods=list(methods),
        seeds=list(seeds),
        data_seed=cfg.seed,
        seed_scope=('each run seed seeds pre-training, fine-tuning and the '
                    'probe (data order, initialisation, augmentation); the '
                    'data and proposals are those of data_seed for every '
                    'method and seed'),
        data=dict(num_unlabeled=cfg.num_unlabeled, num_train=cfg.num_train,
                  num_val=cfg.num_val, num_test=cfg.num_test,
                  img_size=cfg.img_size),
        pretrain=dict(
            iters=cfg.pretrain_iters, batch=cfg.pretrain_batch,
            schedule='linear warm-up (min(5, iters // 2) iterations) then '
            'cosine, the same for every method',
            configs={m: PRETRAIN_CONFIGS.get(m) for m in methods}),
        finetune=dict(config=FINETUNE_CONFIG, epochs=cfg.finetune_epochs,
                      with_fpn=cfg.with_fpn,
                      model_selection='none (the last epoch)'),
        evaluation=dict(
            split=cfg.eval_split,
            selection_split='val',
            bbox_ap='COCO bbox mAP (fraction) of the fine-tuned Mask R-CNN '
            f'on the {cfg.eval_split} split',
            segm_ap=f'COCO segm mAP (fraction) on the {cfg.eval_split} split',
            probe_acc=f'{PROBE_FUNCTION} accuracy (fraction; fit on the '
            f'train split, scored on the {cfg.eval_split} split); null when '
            'not measured'),
        machine=machine_info())


def collect_results(runs: Dict[str, Dict[int, Dict]], methods: Sequence[str],
                    seeds: Sequence[int]) -> Dict[str, Dict[str, List]]:
    """``{method: {probe_acc, bbox_ap, segm_ap: [one value per seed]}}``
    from :func:`run_method`'s records (test split when there is one)."""
    out = {}
    for m in methods:
        vals = dict(probe_acc=[], bbox_ap=[], segm_ap=[])
        for s in seeds:
            r = runs[m][s]
            metrics = (r.get('test') or r['finetune'])['metrics']
            vals['bbox_ap'].append(metrics.get('coco/bbox_mAP'))
            vals['segm_ap'].append(metrics.get('coco/segm_mAP'))
            vals['probe_acc'].append((r.get('probe') or {}).get('acc'))
        out[m] = vals
    return out


def run_comparison(cfg: MainJobConfig,
                   methods: Sequence[str] = DEFAULT_METHODS,
                   seeds: Optional[Sequence[int]] = None,
                   record: Optional[str] = None,
                   probe: bool = True,
                   command: Optional[str] = None) -> Dict:
    """Every method with every run seed on the same data and budget.

    Writes ``<work_dir>/comparison.md`` (mean +- std per method and the
    values of each seed), the report with a plot with error bars, and the
    record (:func:`ccop_plugin.apis.science_record.write_science_record`) at
    ``record`` (default ``<work_dir>/science.json``).

    Args:
        cfg: Settings; ``cfg.seed`` makes the data, used by every run.
        methods: Keys of :data:`METHODS`.
        seeds: Run seeds; default ``[cfg.seed]``.
        record: Path of the record.
        probe: Measure the linear-probe accuracy too.
        command: The command line that ran the comparison (recorded in the
            record's ``protocol.command``).

    Returns:
        dict: ``data``, ``proposals``, ``runs`` (method -> seed -> stage
        records), ``values`` (the record's results), ``record`` (its path),
        and per method the records of the first seed.
    """
    methods = check_methods(methods)
    seeds = [cfg.seed] if seeds is None else [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f'seeds must be distinct and at least one, got '
                         f'{seeds}')
    record = record or osp.join(cfg.work_dir, 'science.json')
    check_record_path(record)  # before hours of work, not after
    t0 = time.time()
    started = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    results = prepare_data(cfg)
    runs: Dict[str, Dict[int, Dict]] = {m: {} for m in methods}
    for s in seeds:  # every method once per seed: a partial run is balanced
        for m in methods:
            _log(f'comparison: {m}, seed {s}')
            runs[m][s] = run_method(cfg, m, results, seed=s, probe=probe)
    for m in methods:
        results[m] = runs[m][seeds[0]]
    values = collect_results(runs, methods, seeds)
    protocol = comparison_protocol(cfg, methods, seeds, command)
    protocol.update(started_utc=started,
                    seconds=round(time.time() - t0, 1),
                    compute_seconds=compute_seconds(results, runs))
    table = comparison_table(values, seeds, split=cfg.eval_split)
    # read once (the loss table reads every run's scalars), shown twice
    extras = [t for t in (paired_table(values),
                          pretrain_loss_table(runs, methods, seeds)) if t]
    for extra in extras:
        table += '\n' + extra
    atomic_write_text(osp.join(cfg.work_dir, 'comparison.md'), table)
    write_science_record(record, protocol, values)
    results.update(runs=runs, values=values, record=record)
    write_report(cfg, results, list(methods), comparison=dict(
        values=values, seeds=seeds, runs=runs, split=cfg.eval_split,
        extras=extras))
    print(table)
    _log(f'comparison done in {time.time() - t0:.0f} s; record: {record}')
    return results

